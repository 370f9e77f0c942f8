package hooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/schemas"
)

// AlertSource is the alerts topic read in the dispatcher's consumer group;
// *kafka.Reader (with a GroupID) is one.
type AlertSource interface {
	// FetchMessage blocks until the next message or ctx's end.
	FetchMessage(ctx context.Context) (kafka.Message, error)
	// CommitMessages commits each message's offset+1 for its partition.
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Exempter says whether a subject is on the allowlist;
// *detectors.Allowlist is one.
type Exempter interface {
	// Exempt reports whether subject of kind is allowlisted. Safe for
	// concurrent use.
	Exempt(kind schemas.SubjectKind, subject string) bool
}

// Options configure a Dispatcher.
type Options struct {
	// Config is the hooks section (defaults are applied by New).
	Config Config
	// AlertsTopic names the derived topics' defaults and receives the
	// suspension_budget_exceeded alerts.
	AlertsTopic string
	// Log holds the retry, parked and held topics.
	Log Log
	// Doer returns each endpoint's HTTP client; nil: NewHTTPClient.
	Doer func(Endpoint) Doer
	// Recorder keeps hook_deliveries rows; nil: none.
	Recorder Recorder
	// Allowlist is checked again before every suspension attempt; nil:
	// none. The dynamic allowlist (released subjects) is checked too.
	Allowlist Exempter
	// SuspendFor returns the suspend_for of a rule (0: none); the
	// suspension's expires_at is set from it and the subject is released
	// then unless confirmed. nil: no expiry.
	SuspendFor func(rule string) time.Duration
	// Decisions keeps the decisions taken through the API; nil: none.
	Decisions DecisionRecorder
	// APITokens are the bearer tokens of the API (ServeAPI).
	APITokens []string
	// Registerer gets the dispatcher's Prometheus metrics
	// (cdrguard_hook_*); nil: not registered.
	Registerer prometheus.Registerer
	// Elector elects the one dispatcher, among those on the alerts
	// topic, that runs the retry topic; nil: this one always does (a
	// single dispatcher).
	Elector Elector
	// Now is the clock; nil: time.Now.
	Now func() time.Time
	// Logger; nil: none.
	Logger *zap.Logger
	// CommitInterval is how often resolved alerts offsets are committed
	// (default 500ms).
	CommitInterval time.Duration
}

// Elector elects one member among the dispatchers of an alerts topic to
// run the retry topic.
type Elector interface {
	// Elect blocks until ctx ends (then returns ctx's error) or the
	// election fails. Each time this member is elected it calls lead
	// with a term context that ends when the member stops being the
	// leader, and no other member is elected before lead returns (as
	// long as lead returns within the election's rebalance timeout).
	Elect(ctx context.Context, lead func(term context.Context)) error
}

// drainGrace is how long attempts in flight may go on after their term
// or the dispatcher ends, before they are cut short (unresolved: they
// are attempted again, under the same webhook-id). It is below the
// election's rebalance timeout, so that a member hands the retries over
// before another is elected.
const drainGrace = 4 * time.Second

// Dispatcher turns suspension alerts into webhook requests and delivers
// them. Create it with New and start it with Run.
type Dispatcher struct {
	cfg       Config
	opts      Options
	now       func() time.Time
	log       *zap.Logger
	endpoints []*endpoint
	byName    map[string]*endpoint
	sched     *scheduler
	protected protected
	tracker   *tracker
	mem       *memory
	metrics   *metrics
	ready     atomic.Bool
	// async runs the writes that resolve an alert outside the consumer
	// loop (dead letters) and the alerts the dispatcher raises (raise);
	// Run waits for them. runCtx is Run's context.
	async  sync.WaitGroup
	runCtx context.Context
	// leading is true while this dispatcher runs the retry topic.
	leading atomic.Bool
}

// New validates opts.Config and builds the dispatcher.
func New(opts Options) (*Dispatcher, error) {
	if opts.AlertsTopic == "" {
		return nil, errors.New("hooks: the alerts topic is not set")
	}
	if opts.Log == nil {
		return nil, errors.New("hooks: no Log for the retry, parked and held topics")
	}
	cfg, eps, err := opts.Config.Resolve(opts.AlertsTopic)
	if err != nil {
		return nil, err
	}
	d := &Dispatcher{cfg: cfg, opts: opts, now: opts.Now, log: opts.Logger, byName: map[string]*endpoint{}, tracker: newTracker(), mem: newMemory(), metrics: newMetrics()}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = zap.NewNop()
	}
	if d.opts.CommitInterval <= 0 {
		d.opts.CommitInterval = 500 * time.Millisecond
	}
	rec := d.opts.Recorder
	if rec == nil {
		rec = RecorderFunc(func(Delivery) {})
	}
	// Every row, from the dispatcher or its API (cancelled, rejected),
	// is counted.
	d.opts.Recorder = RecorderFunc(func(del Delivery) {
		d.metrics.deliveries.WithLabelValues(del.Endpoint, del.Action, del.Outcome).Inc()
		rec.Record(del)
	})
	if d.opts.SuspendFor == nil {
		d.opts.SuspendFor = func(string) time.Duration { return 0 }
	}
	d.protected = newProtected(cfg.Protected)
	d.sched = newScheduler(d.now)
	for _, ep := range eps {
		var doer Doer
		if opts.Doer != nil {
			doer = opts.Doer(ep)
		} else {
			doer = NewHTTPClient(ep)
		}
		e := newEndpoint(ep, doer, cfg)
		d.endpoints = append(d.endpoints, e)
		d.byName[ep.Name] = e
	}
	if opts.Registerer != nil {
		if err := d.register(opts.Registerer); err != nil {
			return nil, fmt.Errorf("hooks: cannot register metrics: %w", err)
		}
	}
	return d, nil
}

// Config returns the configuration with its defaults.
func (d *Dispatcher) Config() Config { return d.cfg }

// Ready reports nil once the dispatcher has read its retry, held, parked,
// allowlist and state topics to their ends (as they were when Run
// started) and consumes alerts, or why not (a readiness check).
func (d *Dispatcher) Ready() error {
	if !d.ready.Load() {
		return errors.New("reading the retry, held, parked, allowlist and state topics")
	}
	return nil
}

// Pending returns the number of requests waiting in the retry topic.
func (d *Dispatcher) Pending() int { return d.sched.pending() }

// Run loads the retry, parked and held topics, then consumes src until
// ctx ends, delivering requests and committing resolved offsets. It
// returns ctx's cause on a clean stop, or the error that stopped it.
func (d *Dispatcher) Run(ctx context.Context, src AlertSource) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	d.runCtx = ctx
	var bg sync.WaitGroup
	defer bg.Wait()

	var ready sync.WaitGroup
	follow := func(topic string, apply func(Message)) {
		ready.Add(1)
		var once sync.Once
		bg.Go(func() {
			err := d.opts.Log.Follow(ctx, topic, apply, func() { once.Do(ready.Done) })
			once.Do(ready.Done)
			if err != nil && ctx.Err() == nil {
				cancel(fmt.Errorf("cannot follow %s: %w", topic, err))
			}
		})
	}
	follow(d.cfg.RetryTopic, func(m Message) {
		if err := d.sched.applyRetry(m); err != nil {
			d.log.Error("bad retry record, skipped", zap.String("key", string(m.Key)), zap.Error(err))
		}
	})
	follow(d.cfg.HeldTopic, func(m Message) { d.sched.applySet(d.sched.held, m) })
	follow(d.cfg.ParkedTopic, func(m Message) { d.sched.applySet(d.sched.parked, m) })
	follow(d.cfg.AllowlistTopic, func(m Message) {
		if err := d.mem.applyAllow(m); err != nil {
			d.log.Error("bad allowlist record, skipped", zap.String("key", string(m.Key)), zap.Error(err))
		}
	})
	follow(d.cfg.StateTopic, func(m Message) {
		if err := d.mem.applyState(m); err != nil {
			d.log.Error("bad state record, skipped", zap.String("key", string(m.Key)), zap.Error(err))
		}
	})
	loaded := make(chan struct{})
	go func() { ready.Wait(); close(loaded) }()
	select {
	case <-loaded:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	d.seed()
	d.ready.Store(true)
	d.log.Info("hooks dispatcher ready", zap.Int("pending_retries", d.sched.pending()), zap.Int("endpoints", len(d.endpoints)))

	// Attempts in flight at the stop may finish within drainGrace.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	workersGone := make(chan struct{})
	var workers sync.WaitGroup
	for _, e := range d.endpoints {
		for range d.cfg.Workers {
			workers.Go(func() { d.work(ctx, work, e) })
		}
	}
	bg.Go(func() {
		if err := d.elect(ctx, workersGone); err != nil && ctx.Err() == nil {
			cancel(fmt.Errorf("cannot elect the retry runner: %w", err))
		}
	})
	bg.Go(func() { d.commitLoop(ctx, src) })

	err := d.consume(ctx, src)
	cancel(err)
	drain := time.AfterFunc(drainGrace, cancelWork)
	workers.Wait()
	drain.Stop()
	close(workersGone)
	d.async.Wait()
	// Commit what was resolved before the stop.
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer ccancel()
	d.commit(cctx, src)
	return context.Cause(ctx)
}

// consume reads alerts until ctx ends.
func (d *Dispatcher) consume(ctx context.Context, src AlertSource) error {
	for {
		m, err := src.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("cannot read alerts: %w", err)
		}
		d.tracker.add(m)
		if err := d.handleAlert(ctx, m); err != nil {
			return err
		}
	}
}

func (d *Dispatcher) commitLoop(ctx context.Context, src AlertSource) {
	t := time.NewTicker(d.opts.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.commit(ctx, src)
		}
	}
}

func (d *Dispatcher) commit(ctx context.Context, src AlertSource) {
	msgs := d.tracker.committable()
	if len(msgs) == 0 {
		return
	}
	if err := src.CommitMessages(ctx, msgs...); err != nil {
		if ctx.Err() == nil {
			d.log.Warn("cannot commit alerts offsets", zap.Error(err))
		}
		return
	}
	d.tracker.committed(msgs)
}

// Idle reports whether every alert read so far is resolved and its
// offset committed.
func (d *Dispatcher) Idle() bool { return d.tracker.idle() }

// handleAlert plans the requests of one alert and hands them over; the
// message is resolved once every request is.
func (d *Dispatcher) handleAlert(ctx context.Context, m kafka.Message) error {
	resolve := func() { d.tracker.resolve(m.Partition, m.Offset) }
	var a schemas.Alert
	if err := schemas.ParseAlertJSON(m.Value, &a); err != nil {
		// Not ours to fix (cdrguard run writes the alerts topic): set
		// aside in the dead-letter topic, resolved once it is there.
		d.metrics.badAlerts.Inc()
		d.log.Error("undecodable alert, set aside in the dead-letter topic", zap.String("dlq_topic", d.cfg.DLQTopic),
			zap.Int("partition", m.Partition), zap.Int64("offset", m.Offset), zap.Error(err))
		dl := deadLetter(d.cfg.DLQTopic, m, err)
		d.async.Go(func() {
			if err := d.write(ctx, dl); err == nil {
				resolve()
			}
		})
		return nil
	}
	if a.Action != schemas.ActionSuspend {
		resolve()
		return nil
	}
	var remaining atomic.Int32
	remaining.Store(1) // the planning itself
	done := func() {
		if remaining.Add(-1) == 0 {
			resolve()
		}
	}
	defer done()
	now := d.now()
	for _, e := range d.endpoints {
		if !e.wants(ActionSuspend, &a) {
			continue
		}
		id := WebhookID(a.AlertID, ActionSuspend, e.Name)
		if d.sched.known(id) {
			continue // queued, held or parked already (a replay)
		}
		if st, ok := d.mem.state(e.Name, a.SubjectKind.String(), a.Subject); ok && st.RequestID == id {
			// Resolved already, by this dispatcher or another one that
			// owned the alerts partition before a rebalance.
			continue
		}
		body := schemas.HookBody{Type: schemas.HookSuspend, Subject: a.Subject, SubjectKind: a.SubjectKind, Alert: m.Value}
		if sf := d.opts.SuspendFor(a.Rule); sf > 0 {
			exp := now.Add(sf).UTC().Truncate(time.Second)
			body.ExpiresAt = &exp
		}
		raw, err := body.AppendJSON(nil)
		if err != nil {
			return err
		}
		req := Request{ID: id, Endpoint: e.Name, Action: ActionSuspend, AlertID: a.AlertID, Rule: a.Rule,
			Subject: a.Subject, SubjectKind: a.SubjectKind.String(), Body: raw, NextAt: now, CreatedAt: now, ExpiresAt: body.ExpiresAt}
		remaining.Add(1)
		if err := d.admit(ctx, e, &req, done); err != nil {
			return err
		}
	}
	return nil
}

// deadLetter is m set aside in topic, with the reason and its origin in
// headers (as the streaming job's dead letters).
func deadLetter(topic string, m kafka.Message, cause error) Message {
	h := make(map[string]string, len(m.Headers)+5)
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	h["cdrguard-error"] = cause.Error()
	h["cdrguard-topic"] = m.Topic
	h["cdrguard-partition"] = strconv.Itoa(m.Partition)
	h["cdrguard-offset"] = strconv.FormatInt(m.Offset, 10)
	h["cdrguard-timestamp"] = m.Time.UTC().Format(time.RFC3339Nano)
	return Message{Topic: topic, Key: m.Key, Value: m.Value, Headers: h}
}

// admit runs the valves on a new suspension request and hands it to its
// endpoint; done is called once it is resolved.
func (d *Dispatcher) admit(ctx context.Context, e *endpoint, req *Request, done func()) error {
	now := d.now()
	if out := d.blocked(req); out != "" {
		d.record(e, req, Delivery{Outcome: out})
		done()
		return nil
	}
	if st, ok := d.mem.state(e.Name, req.SubjectKind, req.Subject); ok && st.Action == ActionSuspend && st.Outcome != OutcomeHeld &&
		st.RequestID != req.ID && now.Sub(st.Since) < d.cfg.SubjectPeriod {
		// Another dispatcher (or this one before a restart) sent one
		// within the period.
		d.record(e, req, Delivery{Outcome: OutcomeDuplicate})
		done()
		return nil
	}
	if !e.admitSubject(req, now, d.cfg.SubjectPeriod) {
		d.record(e, req, Delivery{Outcome: OutcomeDuplicate})
		done()
		return nil
	}
	if e.Mode == ModeShadow {
		d.record(e, req, Delivery{Outcome: OutcomeShadow})
		done()
		return nil
	}
	if e.Budget != nil {
		// Counted by the retry runner alone, so that the budget holds
		// whatever the number of dispatchers.
		req.AwaitBudget = true
		return d.queue(ctx, e, *req, now, "waiting for the retry runner to count it against the budget", done)
	}
	if e.offer(job{req: *req, done: done}) {
		return nil
	}
	// Queue full: wait in the retry topic, due now.
	return d.queue(ctx, e, *req, now, "endpoint queue full", done)
}

// admitBudget counts req, a first attempt waiting in the retry topic for
// e's budget, in the retry runner. Admitted, it is counted in the budget
// record (written before the attempt, so the next runner counts on from
// there) and true is returned; otherwise it is held (held topic, then
// its retry record's tombstone) with a budget alert once per window.
func (d *Dispatcher) admitBudget(ctx context.Context, e *endpoint, req *Request) (bool, error) {
	req.AwaitBudget = false
	if e.Budget == nil {
		return true, nil // the budget was removed from the config
	}
	now := d.now()
	e.budgetMu.Lock()
	ok, again, raise, n := e.countBudget(req, now)
	var err error
	if (ok && !again) || raise {
		err = d.write(ctx, d.budgetRecord(e, now))
	}
	e.budgetMu.Unlock()
	if err != nil || ok {
		return ok && err == nil, err
	}
	req.HeldReason = fmt.Sprintf("budget of %d suspension requests per %v reached", e.Budget.Requests, e.Budget.Per)
	if err := d.write(ctx, Message{Topic: d.cfg.HeldTopic, Key: []byte(req.ID), Value: req.Encode()}); err != nil {
		return false, err
	}
	if err := d.putState(ctx, req, OutcomeHeld); err != nil {
		return false, err
	}
	if err := d.write(ctx, Message{Topic: d.cfg.RetryTopic, Key: []byte(req.ID)}); err != nil {
		return false, err
	}
	d.record(e, req, Delivery{Outcome: OutcomeHeld, Error: req.HeldReason})
	if raise {
		d.raise(d.budgetAlert(e, req, n, now))
	}
	return false, nil
}

// raise writes alert to the alerts topic in the background, retrying
// until it is written or the dispatcher stops (then it is logged): the
// alerts topic may not exist yet (the job creates it), and deliveries
// must not wait for it.
func (d *Dispatcher) raise(alert Message) {
	ctx := d.runCtx
	d.async.Go(func() {
		if err := d.write(ctx, alert); err != nil {
			d.log.Error("alert not written to the alerts topic: the dispatcher stopped first", zap.String("topic", alert.Topic),
				zap.String("alert_id", alert.Headers["alert_id"]), zap.String("rule", alert.Headers["rule"]), zap.ByteString("alert", alert.Value))
			return
		}
		d.log.Warn("alert raised", zap.String("rule", alert.Headers["rule"]), zap.String("alert_id", alert.Headers["alert_id"]))
	})
}

// budgetRecord is e's budget record as it is now (the caller holds
// e.budgetMu).
func (d *Dispatcher) budgetRecord(e *endpoint, now time.Time) Message {
	v, err := json.Marshal(BudgetRecord{Endpoint: e.Name, Admitted: e.admitted, AlertedAt: e.alerted, At: now})
	if err != nil {
		// Only strings and times: cannot fail.
		panic(fmt.Sprintf("hooks: cannot encode the budget record of %s: %v", e.Name, err))
	}
	return Message{Topic: d.cfg.StateTopic, Key: []byte(BudgetKey(e.Name)), Value: v}
}

// loadBudgets sets, at the start of a leadership term, every budgeted
// endpoint's window from its budget record in the state topic, once
// everything written to the state and retry topics before the term (by
// the previous runner too) has been read back. Without a record (the
// first term after an upgrade, or a new budget) the window is rebuilt
// from the delivered, parked and pending suspensions. It returns only
// when term ends (its error) or the windows are loaded: until then
// nothing is counted, so nothing is admitted.
func (d *Dispatcher) loadBudgets(term context.Context) error {
	budgeted := false
	for _, e := range d.endpoints {
		budgeted = budgeted || e.Budget != nil
	}
	if !budgeted {
		return nil
	}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := d.opts.Log.Sync(term, d.cfg.StateTopic)
		if err == nil {
			err = d.opts.Log.Sync(term, d.cfg.RetryTopic)
		}
		if err == nil {
			break
		}
		if term.Err() != nil {
			return term.Err()
		}
		d.log.Warn("cannot read the state topic to its end, the budgets wait", zap.Error(err))
		select {
		case <-term.Done():
			return term.Err()
		case <-time.After(wait):
		}
	}
	now := d.now()
	for _, e := range d.endpoints {
		if e.Budget == nil {
			continue
		}
		e.budgetMu.Lock()
		if rec, ok := d.mem.budget(e.Name); ok {
			e.loadBudget(slices.Clone(rec.Admitted), rec.AlertedAt)
		} else {
			e.loadBudget(d.admissionsOf(e, now), time.Time{})
		}
		e.budgetMu.Unlock()
	}
	return nil
}

// admissionsOf returns the suspensions of e the state and retry topics
// show within its budget window, once each.
func (d *Dispatcher) admissionsOf(e *endpoint, now time.Time) []Admission {
	seen := map[string]bool{}
	var out []Admission
	add := func(id, rule string, at time.Time) {
		if seen[id] || now.Sub(at) >= e.Budget.Per {
			return
		}
		seen[id] = true
		key := ""
		if e.Budget.PerRule {
			key = rule
		}
		out = append(out, Admission{ID: id, Key: key, At: at})
	}
	for _, s := range d.mem.suspensions() {
		if s.Endpoint == e.Name && s.Outcome != OutcomeHeld {
			add(s.RequestID, s.Rule, s.Since)
		}
	}
	for _, r := range d.sched.requests() {
		if r.Endpoint == e.Name && r.Action == ActionSuspend && !r.AwaitBudget {
			add(r.ID, r.Rule, r.CreatedAt)
		}
	}
	return out
}

// blocked returns the outcome of a suspension a valve stops at dispatch
// time, or "".
func (d *Dispatcher) blocked(req *Request) string {
	if req.Action != ActionSuspend {
		return ""
	}
	kind, _ := schemas.ParseSubjectKind(req.SubjectKind)
	if kind == schemas.SubjectCaller && d.protected.match(req.Subject) {
		return OutcomeProtected
	}
	if d.opts.Allowlist != nil && d.opts.Allowlist.Exempt(kind, req.Subject) {
		return OutcomeAllowlisted
	}
	if _, ok := d.mem.allowed(req.SubjectKind, req.Subject); ok {
		return OutcomeAllowlisted
	}
	return ""
}

// queue writes req to the retry topic, due at at, without counting an
// attempt, and resolves it.
func (d *Dispatcher) queue(ctx context.Context, e *endpoint, req Request, at time.Time, why string, done func()) error {
	req.NextAt = at
	if err := d.write(ctx, Message{Topic: d.cfg.RetryTopic, Key: []byte(req.ID), Value: req.Encode()}); err != nil {
		return err
	}
	d.record(e, &req, Delivery{Outcome: OutcomeQueued, Error: why, NextAt: at})
	if done != nil {
		done()
	}
	return nil
}

// elect runs the retry topic whenever this dispatcher is elected (always
// without an Elector) until ctx ends.
func (d *Dispatcher) elect(ctx context.Context, workersGone <-chan struct{}) error {
	lead := func(term context.Context) { d.lead(term, workersGone) }
	if d.opts.Elector == nil {
		lead(ctx)
		return nil
	}
	return d.opts.Elector.Elect(ctx, lead)
}

// lead runs the retry topic for one leadership term: due requests go to
// their endpoints' workers until term ends; then it waits for the
// attempts handed over in the term (cut short drainGrace after the end),
// so that it returns only once this dispatcher attempts none of them.
func (d *Dispatcher) lead(term context.Context, workersGone <-chan struct{}) {
	d.sched.resetInflight()
	if err := d.loadBudgets(term); err != nil {
		return
	}
	d.leading.Store(true)
	d.log.Info("hooks dispatcher runs the retry topic", zap.Int("pending_retries", d.sched.pending()))
	work, cancelWork := context.WithCancel(context.WithoutCancel(term))
	defer cancelWork()
	var inflight sync.WaitGroup
	d.sched.run(term, func(req Request) bool {
		e := d.byName[req.Endpoint]
		if e == nil || term.Err() != nil {
			// An endpoint removed from the config: offer it to no one;
			// it stays in the retry topic until the endpoint comes back.
			return false
		}
		inflight.Add(1)
		if e.offer(job{req: req, fromRetry: true, ctx: work, term: term, finish: inflight.Done}) {
			return true
		}
		inflight.Done()
		return false
	})
	d.leading.Store(false)
	drain := time.AfterFunc(drainGrace, cancelWork)
	defer drain.Stop()
	done := make(chan struct{})
	go func() { inflight.Wait(); close(done) }()
	select {
	case <-done:
	case <-workersGone: // nobody takes the queued ones any more
	}
	d.log.Info("hooks dispatcher no longer runs the retry topic")
}

// work runs one worker of e until ctx ends; attempts use work (which
// outlives ctx by drainGrace) unless the job carries its own context.
func (d *Dispatcher) work(ctx, work context.Context, e *endpoint) {
	for {
		select {
		case <-ctx.Done():
			return
		case j := <-e.queue:
			d.handle(work, e, j)
		}
	}
}

// handle runs one job of e.
func (d *Dispatcher) handle(work context.Context, e *endpoint, j job) {
	if j.finish != nil {
		defer j.finish()
	}
	if j.term != nil && j.term.Err() != nil {
		return // handed over by a term that ended: the next leader has it
	}
	ctx := work
	if j.ctx != nil {
		ctx = j.ctx
	}
	if err := d.process(ctx, e, j); err != nil && ctx.Err() == nil {
		d.log.Error("hook request not resolved", zap.String("endpoint", e.Name), zap.String("webhook_id", j.req.ID), zap.Error(err))
	}
}

// process attempts one request and resolves it: delivered, queued for a
// retry, or parked. An error (only ctx's end) leaves it unresolved, so it
// is attempted again after a restart.
func (d *Dispatcher) process(ctx context.Context, e *endpoint, j job) error {
	req := j.req
	resolved := func() error {
		if j.done != nil {
			j.done()
		}
		return nil
	}
	tombstone := func() error {
		if !j.fromRetry {
			return nil
		}
		return d.write(ctx, Message{Topic: d.cfg.RetryTopic, Key: []byte(req.ID)})
	}
	if out := d.blocked(&req); out != "" {
		d.record(e, &req, Delivery{Outcome: out})
		if err := tombstone(); err != nil {
			return err
		}
		return resolved()
	}
	switch req.Action {
	case ActionSuspend:
		// In flight until the attempt ends; a release of the subject
		// waits for it, and one allowlisted meanwhile stops it here.
		if !d.mem.takeOff(req.SubjectKind, req.Subject) {
			d.record(e, &req, Delivery{Outcome: OutcomeAllowlisted})
			if err := tombstone(); err != nil {
				return err
			}
			return resolved()
		}
		defer d.mem.land(req.SubjectKind, req.Subject)
	case ActionRelease:
		if req.Expiry && d.mem.confirmedSince(req.SubjectKind, req.Subject, req.CreatedAt) {
			d.record(e, &req, Delivery{Outcome: OutcomeCancelled, Error: "suspension confirmed by an operator"})
			if err := tombstone(); err != nil {
				return err
			}
			return resolved()
		}
		if req.DecisionID != "" {
			if _, ok := d.mem.allowed(req.SubjectKind, req.Subject); !ok {
				d.mem.addAllow(AllowEntry{SubjectKind: req.SubjectKind, Subject: req.Subject, DecisionID: req.DecisionID, Action: DecisionRelease, At: req.CreatedAt})
			}
		}
		if err := d.mem.waitLanded(ctx, req.SubjectKind, req.Subject); err != nil {
			return err
		}
	}
	if d.sched.isDisabled(e.Name) {
		req.LastError = "endpoint disabled after HTTP 410; re-enable with cdrguard hooks enable"
		return d.park(ctx, e, j, req)
	}
	if req.AwaitBudget && !req.Approved {
		if d.sched.isHeld(req.ID) {
			// Held already (a runner stopped before its tombstone).
			if err := tombstone(); err != nil {
				return err
			}
			return resolved()
		}
		admitted, err := d.admitBudget(ctx, e, &req)
		if err != nil {
			return err
		}
		if !admitted {
			return resolved() // held
		}
	}
	r, err := e.breaker.Execute(func() (attemptResult, error) {
		r := e.attempt(ctx, &req, d.now)
		if r.out == outRetry {
			return r, errRetryable
		}
		return r, nil
	})
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		if err := d.queue(ctx, e, req, d.now().Add(d.cfg.Breaker.OpenFor), "circuit open", nil); err != nil {
			return err
		}
		return resolved()
	}
	if ctx.Err() != nil {
		return ctx.Err() // the attempt was cut short by the stop: not an answer
	}
	d.metrics.attempts.WithLabelValues(e.Name, statusClass(r.status)).Inc()
	d.metrics.latency.WithLabelValues(e.Name).Observe(r.latency.Seconds())
	req.Attempts++
	req.LastStatus = r.status
	req.LastError = ""
	if r.err != nil {
		req.LastError = r.err.Error()
	}
	del := Delivery{Attempt: req.Attempts, StatusCode: r.status, Latency: r.latency, Error: req.LastError}
	switch r.out {
	case outDelivered:
		if err := d.delivered(ctx, &req); err != nil {
			return err
		}
		del.Outcome = OutcomeDelivered
		d.record(e, &req, del)
		if err := tombstone(); err != nil {
			return err
		}
		return resolved()
	case outRetry:
		if wait, ok := e.nextWait(req.Attempts, r.retryAfter); ok {
			req.NextAt = d.now().Add(wait)
			if err := d.write(ctx, Message{Topic: d.cfg.RetryTopic, Key: []byte(req.ID), Value: req.Encode()}); err != nil {
				return err
			}
			del.Outcome, del.NextAt = OutcomeRetry, req.NextAt
			d.record(e, &req, del)
			return resolved()
		}
		req.LastError = fmt.Sprintf("retry schedule exhausted after %d attempts: %s", req.Attempts, req.LastError)
	case outGone:
		if err := d.write(ctx, d.disableMarker(e, req)); err != nil {
			return err
		}
		d.log.Error("endpoint answered 410 Gone: disabled until an operator re-enables it", zap.String("endpoint", e.Name))
	}
	d.recordAttemptParked(e, &req, del)
	return d.park(ctx, e, j, req)
}

func (d *Dispatcher) recordAttemptParked(e *endpoint, req *Request, del Delivery) {
	del.Outcome = OutcomeParked
	d.record(e, req, del)
}

// park writes req to the parked topic, then (for a retry) its tombstone
// in the retry topic, and resolves it.
func (d *Dispatcher) park(ctx context.Context, e *endpoint, j job, req Request) error {
	if err := d.write(ctx, Message{Topic: d.cfg.ParkedTopic, Key: []byte(req.ID), Value: req.Encode()}); err != nil {
		return err
	}
	if req.Action == ActionSuspend {
		// Parked after a timeout, the receiver may have acted on it: a
		// release goes to this endpoint too.
		if err := d.putState(ctx, &req, OutcomeParked); err != nil {
			return err
		}
	}
	if j.fromRetry {
		if err := d.write(ctx, Message{Topic: d.cfg.RetryTopic, Key: []byte(req.ID)}); err != nil {
			return err
		}
	}
	d.log.Warn("hook request parked", zap.String("endpoint", e.Name), zap.String("webhook_id", req.ID),
		zap.String("subject", req.Subject), zap.String("last_error", req.LastError))
	if j.done != nil {
		j.done()
	}
	return nil
}

func (d *Dispatcher) disableMarker(e *endpoint, req Request) Message {
	v := fmt.Appendf(nil, `{"endpoint":%q,"disabled_at":%q,"reason":%q}`, e.Name, d.now().UTC().Format(time.RFC3339), req.LastError)
	return Message{Topic: d.cfg.RetryTopic, Key: []byte(DisabledKey(e.Name)), Value: v}
}

// write produces msgs, retrying until ctx ends.
func (d *Dispatcher) write(ctx context.Context, msgs ...Message) error {
	return produce(ctx, d.opts.Log, func(err error) {
		d.log.Warn("cannot write to kafka, retrying", zap.String("topic", msgs[0].Topic), zap.Error(err))
	}, msgs...)
}

func (d *Dispatcher) record(e *endpoint, req *Request, del Delivery) {
	del.RequestID, del.AlertID, del.Endpoint, del.Action = req.ID, req.AlertID, e.Name, req.Action
	del.Subject, del.SubjectKind, del.Rule, del.Mode = req.Subject, req.SubjectKind, req.Rule, e.Mode
	if del.Time.IsZero() {
		del.Time = d.now()
	}
	if del.Outcome == OutcomeShadow || del.Attempt > 0 {
		del.Body = req.Body
	}
	d.opts.Recorder.Record(del)
}

// BudgetAlertRule is the rule name of the alert raised when an endpoint's
// suspension budget is exceeded.
const BudgetAlertRule = "suspension_budget_exceeded"

// budgetAlert is the alert raised when e's budget holds req.
func (d *Dispatcher) budgetAlert(e *endpoint, req *Request, n int, now time.Time) Message {
	kind, _ := schemas.ParseSubjectKind(req.SubjectKind)
	h := sha256.Sum256([]byte(BudgetAlertRule + "\x00" + e.Name + "\x00" + now.UTC().Format(time.RFC3339Nano)))
	a := schemas.Alert{
		AlertID: hex.EncodeToString(h[:16]), Rule: BudgetAlertRule, Severity: schemas.SeverityCritical, Action: schemas.ActionAlert,
		SubjectKind: kind, Subject: req.Subject,
		WindowStart: now.Add(-e.Budget.Per).UTC(), WindowEnd: now.UTC(), DetectedAt: now.UTC(),
		Score:   float64(n),
		Metrics: schemas.Metrics{WindowS: int64(e.Budget.Per / time.Second)},
		Reason: fmt.Sprintf("endpoint %s: %d suspension requests in %v reached the budget of %d; further requests (from %s, rule %s) are held for approval (cdrguard hooks held)",
			e.Name, n, e.Budget.Per, e.Budget.Requests, req.Subject, req.Rule),
	}
	v, _ := a.AppendJSON(nil)
	return Message{Topic: d.opts.AlertsTopic, Key: []byte(a.Subject), Value: v, Headers: map[string]string{
		"alert_id": a.AlertID, "rule": a.Rule, "severity": a.Severity.String(), "subject_kind": a.SubjectKind.String()}}
}

// protected matches protected numbers and prefixes, with or without a
// leading +.
type protected struct {
	numbers  map[string]bool
	prefixes []string
}

func newProtected(c ProtectedConfig) protected {
	p := protected{numbers: map[string]bool{}}
	if !c.NoDefaults {
		for _, n := range DefaultProtectedNumbers {
			p.numbers[n] = true
		}
	}
	for _, n := range c.Numbers {
		p.numbers[strings.TrimPrefix(n, "+")] = true
	}
	for _, n := range c.Prefixes {
		p.prefixes = append(p.prefixes, strings.TrimPrefix(n, "+"))
	}
	return p
}

func (p protected) match(subject string) bool {
	s := strings.TrimPrefix(subject, "+")
	if p.numbers[s] {
		return true
	}
	for _, pre := range p.prefixes {
		if strings.HasPrefix(s, pre) {
			return true
		}
	}
	return false
}

// delivered writes what a delivered request leaves behind, before its
// retry record is tombstoned (so a crash in between only repeats the
// attempt, with the same webhook-id): the subject's state, and for a
// suspension with expires_at its expiry release, due then.
func (d *Dispatcher) delivered(ctx context.Context, req *Request) error {
	if err := d.putState(ctx, req, OutcomeDelivered); err != nil {
		return err
	}
	if req.Action != ActionSuspend || req.ExpiresAt == nil {
		return nil
	}
	rel, err := expiryRelease(req)
	if err != nil {
		return err
	}
	return d.write(ctx, Message{Topic: d.cfg.RetryTopic, Key: []byte(rel.ID), Value: rel.Encode()})
}

// expiryRelease is the release of suspension sus at its ExpiresAt.
func expiryRelease(sus *Request) (Request, error) {
	var b schemas.HookBody
	if err := json.Unmarshal(sus.Body, &b); err != nil {
		return Request{}, fmt.Errorf("cannot read the body of %s: %w", sus.ID, err)
	}
	kind, _ := schemas.ParseSubjectKind(sus.SubjectKind)
	body := schemas.HookBody{Type: schemas.HookRelease, Subject: sus.Subject, SubjectKind: kind, Alert: b.Alert,
		Reason: "suspension expired at " + sus.ExpiresAt.UTC().Format(time.RFC3339) + " (rule " + sus.Rule + " suspend_for)"}
	raw, err := body.AppendJSON(nil)
	if err != nil {
		return Request{}, err
	}
	return Request{ID: WebhookID(sus.AlertID, ActionRelease, sus.Endpoint), Endpoint: sus.Endpoint, Action: ActionRelease,
		AlertID: sus.AlertID, Rule: sus.Rule, Subject: sus.Subject, SubjectKind: sus.SubjectKind, Body: raw,
		NextAt: *sus.ExpiresAt, CreatedAt: sus.CreatedAt, Expiry: true}, nil
}

// putState writes the state of req's subject on its endpoint.
func (d *Dispatcher) putState(ctx context.Context, req *Request, outcome string) error {
	s := SubjectState{Endpoint: req.Endpoint, SubjectKind: req.SubjectKind, Subject: req.Subject, Action: req.Action,
		RequestID: req.ID, AlertID: req.AlertID, Rule: req.Rule, Outcome: outcome, Since: req.CreatedAt, At: d.now(),
		ExpiresAt: req.ExpiresAt}
	if req.Action == ActionSuspend {
		var b schemas.HookBody
		if json.Unmarshal(req.Body, &b) == nil {
			s.Alert = b.Alert
		}
	}
	v, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("cannot encode the state of %s: %w", req.ID, err)
	}
	if err := d.write(ctx, Message{Topic: d.cfg.StateTopic, Key: []byte(StateKey(s.Endpoint, s.SubjectKind, s.Subject)), Value: v}); err != nil {
		return err
	}
	d.mem.putState(s)
	return nil
}

// seed rebuilds, after the topics are loaded, each endpoint's subject
// period from the state topic's suspensions and the
// retry topic's pending suspensions, so a restart forgets neither.
func (d *Dispatcher) seed() {
	for _, s := range d.mem.suspensions() {
		if e := d.byName[s.Endpoint]; e != nil && s.Outcome != OutcomeHeld {
			e.seed(s.SubjectKind, s.Subject, s.Since)
		}
	}
	for _, r := range d.sched.requests() {
		if e := d.byName[r.Endpoint]; e != nil && r.Action == ActionSuspend {
			e.seed(r.SubjectKind, r.Subject, r.CreatedAt)
		}
	}
}
