package detectors

import (
	"fmt"
	"strings"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

// epochMS is the engine's time origin: event times are kept as uint32
// seconds since 1999-12-31T00:00:00Z, a day before the earliest valid start
// time, so that 0 can mean "never" and buckets stay aligned to UTC days.
const epochMS = schemas.MinStartMS - 86400*1000

func toTS(ms int64) uint32   { return uint32((ms - epochMS) / 1000) }
func fromTS(ts uint32) int64 { return int64(ts)*1000 + epochMS }

// tsTime converts an event time to time.Time (UTC).
func tsTime(ts uint32) time.Time { return time.UnixMilli(fromTS(ts)).UTC() }

// sub is a-b clamped at 0.
func sub(a, b uint32) uint32 {
	if a > b {
		return a - b
	}
	return 0
}

// compiledRule is a Rule bound to the engine's windows.
type compiledRule struct {
	Rule
	index    int // position in the engine's rule list (stats)
	win      int // index of the rule's window
	cooldown uint32
	// gate[i] is the smallest MinCalls among levels i and above.
	gate []int64
}

// Engine runs the detectors over one stream of CDRs: one engine per
// partition. It keeps sliding windows per calling number and per calling
// source, evaluates the rules when a record lands, and appends alerts (and,
// when configured, aggregates) to an Output. Time is the records' event
// time only. An Engine is not safe for concurrent use.
type Engine struct {
	cfg     Config
	allow   *Allowlist
	rules   []*compiledRule
	byKind  [schemas.NumSubjectKinds][]*compiledRule
	tables  [schemas.NumSubjectKinds]*table
	heavies []*heavy
	hfree   []uint32

	windows  []uint32 // window sizes, seconds
	longest  uint32   // longest window, seconds
	gateRing int      // ring used to decide demotion (smallest window >= 1h)
	lateness uint32
	shortS   uint32

	maxTS  uint32 // latest start time seen
	maxEnd uint32 // latest end time seen (end order)
	// starts follows the stream's latest start times: the watermark is
	// its clock minus the lateness. ends follows the latest end times:
	// with end order, held records run once its clock minus the end
	// lateness passes their end.
	starts, ends quorum
	// endOrder: held records run in end-time order (unless
	// Config.StartOrder); otherwise in start-time order.
	endOrder    bool
	endLateness uint32
	// startReleased is, with end order, the start watermark applied so
	// far: records that started before it came, or are late.
	startReleased uint32
	// emitAt is the emitted_at of what the record being run raises.
	emitAt uint32

	now   uint32 // latest start time run through the detectors
	quiet bool
	held  *reorder
	dedup *dedup // nil when off

	metrics [maxWindows]schemas.Metrics // per-window scratch for one evaluation
	mvalid  [maxWindows]bool
	buf     []byte
	// touched keeps runHeld's early table reads from being optimised away.
	touched uint64

	agg   *aggregator
	stats Stats
}

// Stats are an engine's running counters.
type Stats struct {
	// Records is the number of records processed.
	Records uint64
	// Late counts records whose start was behind the watermark.
	Late uint64
	// Outliers counts records that started more than the lateness ahead
	// of the Config.WatermarkQuorum-th latest start when they came: held
	// without moving the watermark. A clock far ahead shows here, and so
	// do the first few records after a stream resumed from a long gap.
	Outliers uint64
	// Duplicates counts records dropped as copies of a record taken
	// within Config.DedupHorizon (included in Records).
	Duplicates uint64
	// Invalid counts records the engine could not use (start time out of
	// range); decoders normally reject these first.
	Invalid uint64
	// Promotions counts keys that got detailed windows; Demotions those
	// that went back to compact state; Evictions keys forgotten when idle.
	Promotions, Demotions, Evictions uint64
	// Exempted counts allowlisted keys that reached the detail gate.
	Exempted uint64
	// Evaluations counts rule condition evaluations.
	Evaluations uint64
	// Alerts counts alerts raised (including suppressed ones while quiet).
	Alerts uint64
	// RuleAlerts counts alerts per rule, in rule order.
	RuleAlerts []uint64
	// RuleErrors counts condition errors per rule, in rule order.
	RuleErrors []uint64
	// LastRuleError is the latest condition error, for logs.
	LastRuleError error
}

// NewEngine returns an engine for cfg (zero fields get defaults) running
// rules, with allow (may be nil) exempting known bulk callers.
// It fails with the error of cfg.CheckRules(rules).
func NewEngine(cfg Config, rules []Rule, allow *Allowlist) (*Engine, error) {
	if err := cfg.CheckRules(rules); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	e := &Engine{
		cfg:      cfg,
		allow:    allow,
		lateness: uint32(cfg.Lateness / time.Second),
		shortS:   uint32(cfg.ShortCallS),
	}
	e.held = newReorder()
	if cfg.DedupHorizon > 0 {
		e.dedup = &dedup{period: uint32(cfg.DedupHorizon / time.Second)}
	}
	e.starts = newQuorum(cfg.WatermarkQuorum)
	e.ends = newQuorum(cfg.WatermarkQuorum)
	e.endOrder = !cfg.StartOrder
	e.endLateness = uint32(cfg.EndLateness / time.Second)
	for _, w := range cfg.Windows {
		s := uint32(w.Size / time.Second)
		e.windows = append(e.windows, s)
		e.longest = max(e.longest, s)
	}
	// Demotion watches the smallest window of an hour or more.
	e.gateRing = -1
	for i, s := range e.windows {
		if s >= 3600 && (e.gateRing < 0 || s < e.windows[e.gateRing]) {
			e.gateRing = i
		}
	}
	if e.gateRing < 0 {
		for i, s := range e.windows {
			if s == e.longest {
				e.gateRing = i
			}
		}
	}
	for i := range rules {
		r := rules[i]
		cr := &compiledRule{Rule: r, index: len(e.rules), win: cfg.windowIndex(r.Window), cooldown: uint32(r.Cooldown / time.Second)}
		cr.gate = make([]int64, len(r.Levels))
		for li := len(r.Levels) - 1; li >= 0; li-- {
			g := r.Levels[li].MinCalls
			if li+1 < len(r.Levels) && cr.gate[li+1] < g {
				g = cr.gate[li+1]
			}
			cr.gate[li] = g
		}
		e.rules = append(e.rules, cr)
		e.byKind[r.Kind] = append(e.byKind[r.Kind], cr)
	}
	for _, k := range cfg.Kinds {
		e.tables[k] = newTable(k)
	}
	e.stats.RuleAlerts = make([]uint64, len(e.rules))
	e.stats.RuleErrors = make([]uint64, len(e.rules))
	if cfg.Aggregates {
		e.agg = newAggregator(e)
	}
	return e, nil
}

func windowList(ws []Window) string {
	var b strings.Builder
	for i, w := range ws {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(FormatDuration(w.Size))
	}
	return b.String()
}

// FormatDuration writes a window size the way rules files do: "5m", "1h",
// "24h", "90s".
func FormatDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

// SetQuiet switches quiet mode: while quiet the engine updates its windows
// and cooldowns but emits nothing. A streaming worker rebuilds a newly
// owned partition's windows quietly, so alerts already raised before a
// restart are not raised again.
func (e *Engine) SetQuiet(q bool) { e.quiet = q }

// Watermark returns the Config.WatermarkQuorum-th latest start time seen
// minus the allowed lateness (Unix ms), or 0 before that many records.
// With an external watermark see Released.
func (e *Engine) Watermark() int64 {
	if e.starts.latest[0] == 0 {
		return 0
	}
	return fromTS(sub(e.starts.latest[0], e.lateness))
}

// Latest returns the latest start time seen (Unix ms), outliers included,
// 0 before the first record.
func (e *Engine) Latest() int64 {
	if e.maxTS == 0 {
		return 0
	}
	return fromTS(e.maxTS)
}

// Stats returns the engine's counters. The slices are the engine's own:
// copy them to keep.
func (e *Engine) Stats() Stats { return e.stats }

// Rules returns the names of the engine's rules, in the order of
// Stats.RuleAlerts.
func (e *Engine) Rules() []string {
	names := make([]string, len(e.rules))
	for i, r := range e.rules {
		names[i] = r.Name
	}
	return names
}

// Keys returns how many keys of kind the engine tracks, and how many of
// them have detailed windows.
func (e *Engine) Keys(kind schemas.SubjectKind) (keys, detailed int) {
	t := e.tables[kind]
	if t == nil {
		return 0, 0
	}
	for _, h := range e.heavies {
		if h != nil && h.kind == kind {
			detailed++
		}
	}
	return t.len(), detailed
}

// Output collects what an engine emits. Reuse one across calls with Reset.
type Output struct {
	// Alerts raised, in the order raised.
	Alerts []schemas.Alert
	// CallerMinutes, CallerHours, CallerDays and NetworkMinutes are
	// aggregate rows (Config.Aggregates).
	CallerMinutes  []CallerMinute
	CallerHours    []CallerPeriod
	CallerDays     []CallerPeriod
	NetworkMinutes []NetworkMinute
}

// Reset empties o, keeping its capacity.
func (o *Output) Reset() {
	clear(o.Alerts) // drop references to strings and slices
	o.Alerts = o.Alerts[:0]
	o.CallerMinutes = o.CallerMinutes[:0]
	o.CallerHours = o.CallerHours[:0]
	o.CallerDays = o.CallerDays[:0]
	o.NetworkMinutes = o.NetworkMinutes[:0]
}

// Len returns the number of items in o.
func (o *Output) Len() int {
	return len(o.Alerts) + len(o.CallerMinutes) + len(o.CallerHours) + len(o.CallerDays) + len(o.NetworkMinutes)
}

// Process takes one finalized record. The engine holds it until the
// watermark passes its start time, then runs it, in start-time order with
// the other records, through the detectors, appending what that raises to
// out; so out receives what earlier records raised. A record that starts
// behind the watermark is late: it runs at once. The record's strings are
// not retained.
func (e *Engine) Process(c *schemas.CDR, out *Output) { e.ProcessTagged(c, 0, out) }

// ProcessTagged is Process with a tag (a Kafka offset, say) that Pending
// reports while the record is held. It reports whether the engine took
// the record: false for a duplicate (Stats.Duplicates) or an invalid
// one, which a streaming worker then does not re-key.
func (e *Engine) ProcessTagged(c *schemas.CDR, tag int64, out *Output) (taken bool) {
	if c.StartMS < schemas.MinStartMS || c.StartMS >= schemas.MaxStartMS {
		e.stats.Invalid++
		return false
	}
	e.stats.Records++
	if e.dedup != nil && e.dedup.seen(fingerprint(c), e.clock(), toTS(c.StartMS)) {
		e.stats.Duplicates++
		return false
	}
	ts := toTS(c.StartMS)
	e.maxTS = max(e.maxTS, ts)
	if kth := e.starts.latest[0]; ts > kth && e.starts.observe(ts, kth, e.lateness) {
		e.stats.Outliers++
	}
	key := ts
	if e.endOrder {
		key = endTS(c)
		e.maxEnd = max(e.maxEnd, key)
		if kth := e.ends.latest[0]; key > kth {
			e.ends.observe(key, kth, e.lateness)
			if !e.cfg.ExternalWatermark && e.ends.latest[0] > kth {
				e.release(sub(e.ends.latest[0], e.endLateness), sub(e.starts.latest[0], e.lateness), out)
			}
		}
	} else if kth := e.starts.latest[0]; !e.cfg.ExternalWatermark && kth > e.held.released+e.lateness {
		e.release(sub(kth, e.lateness), 0, out)
	}
	if !e.held.put(c, key, tag, e.quiet) {
		e.stats.Late++
		r := record{startMS: c.StartMS, durationS: c.DurationS, disposition: c.Disposition,
			caller: c.Caller, callee: c.Callee, trunk: c.Trunk, imei: c.IMEI, imsi: c.IMSI, sourceIP: c.SourceIP}
		var k recordKeys
		e.keys(&r, &k)
		e.emitAt = e.held.released + e.delay()
		e.run(&r, &k, e.quiet, out)
	}
	return true
}

// endTS is the order key of c with end order: its end time, or without
// one its start plus talk time.
func endTS(c *schemas.CDR) uint32 {
	if c.EndMS > c.StartMS {
		return toTS(c.EndMS)
	}
	return toTS(c.StartMS) + uint32(max(c.DurationS, 0))
}

// delay is how long, in the engine's clock, a record is held after its
// order key: the end lateness with end order, else the lateness.
func (e *Engine) delay() uint32 {
	if e.endOrder {
		return e.endLateness
	}
	return e.lateness
}

// clock is the engine's event-time clock: the WatermarkQuorum-th latest
// end seen with end order, else the WatermarkQuorum-th latest start.
func (e *Engine) clock() uint32 {
	if e.endOrder {
		return e.ends.latest[0]
	}
	return e.starts.latest[0]
}

// quorum follows the latest times of a stream, unmoved by outliers.
// latest holds the WatermarkQuorum latest times (0 until as many records
// came), ascending: the clock is latest[0]. ahead holds, unordered, the
// times of up to as many records that came more than the lateness ahead
// of latest[0]: they are dropped when latest[0] passes them, and join
// latest all at once when ahead is full (the whole stream jumped).
type quorum struct {
	latest []uint32
	ahead  []uint32
}

func newQuorum(n int) quorum {
	return quorum{latest: make([]uint32, n), ahead: make([]uint32, 0, n)}
}

// observe takes a time ts later than kth (latest[0]); it reports whether
// ts is an outlier, more than far ahead of kth.
func (q *quorum) observe(ts, kth, far uint32) (outlier bool) {
	if kth != 0 && ts-kth > far {
		// Far ahead of the stream: held without moving the clock until
		// the stream reaches it or enough records confirm it.
		q.ahead = append(q.ahead, ts)
		if len(q.ahead) < cap(q.ahead) {
			return true
		}
		for _, a := range q.ahead {
			q.add(a)
		}
		q.ahead = q.ahead[:0]
		return true
	}
	q.add(ts)
	for i := 0; i < len(q.ahead); {
		if q.ahead[i] <= q.latest[0] {
			// The stream passed it: it is not among the latest times,
			// and it never counted as one.
			q.ahead[i] = q.ahead[len(q.ahead)-1]
			q.ahead = q.ahead[:len(q.ahead)-1]
			continue
		}
		i++
	}
	return false
}

// add puts ts among the latest times, dropping latest[0]; a ts not later
// than latest[0] is no longer among them.
func (q *quorum) add(ts uint32) {
	l := q.latest
	if ts <= l[0] {
		return
	}
	i := 0
	for i+1 < len(l) && l[i+1] < ts {
		l[i] = l[i+1]
		i++
	}
	l[i] = ts
}

// Advance moves the watermark to wm (Unix ms) when that is later than
// where it stands, running the records held before it. With an external
// watermark, wm is on the order key: end times (a source engine advances
// to the least EndReleased of the input engines feeding it), or start
// times with Config.StartOrder. With the engine's own and end order it
// applies to both clocks: records that ended before wm run, and
// aggregates close up to it. It can only move the watermark ahead: a
// stream that went idle releases what it holds.
func (e *Engine) Advance(wm int64, out *Output) {
	if wm <= epochMS {
		return
	}
	ts := toTS(wm)
	if ts > e.held.released || e.endOrder && ts > e.startReleased {
		e.release(ts, ts, out)
	}
}

// ReleaseAll runs every held record (the watermark moves past the latest
// start and end seen). A worker calls it when its stream has been idle
// for a while, so the last records' alerts do not wait for traffic that
// may not come; records that then arrive with earlier times count as
// late.
func (e *Engine) ReleaseAll(out *Output) {
	if e.maxTS != 0 {
		e.Advance(fromTS(max(e.maxTS, e.maxEnd)+1), out)
	}
}

// Released returns the watermark on start times as it stands (Unix ms):
// every record that started before it has come, except late ones. With
// an external watermark (start order) those records have also run; with
// end order a record runs once the end watermark passes its end (see
// Pending). 0 before the first release.
func (e *Engine) Released() int64 {
	at := e.held.released
	if e.endOrder {
		at = e.startReleased
	}
	if at == 0 {
		return 0
	}
	return fromTS(at)
}

// EndReleased returns the watermark on end times as it stands (Unix ms):
// every record that ended before it has come, except late ones, and has
// run. With start order it is Released (a record that ended before a
// time started before it). A streaming worker tells it to the source
// engines, whose Advance it is. 0 before the first release.
func (e *Engine) EndReleased() int64 {
	if e.held.released == 0 {
		return 0
	}
	return fromTS(e.held.released)
}

// LatestEnd returns the latest end time seen (Unix ms), outliers
// included, and at least Latest; 0 before the first record.
func (e *Engine) LatestEnd() int64 {
	if e.maxTS == 0 {
		return 0
	}
	return fromTS(max(e.maxTS, e.maxEnd))
}

// Pending returns the smallest tag of the records the engine still holds
// (records whose outputs are not produced yet); ok is false when it
// holds none. A streaming worker commits no offset past it.
func (e *Engine) Pending() (tag int64, ok bool) { return e.held.minTag() }

// Held returns how many records wait for the watermark.
func (e *Engine) Held() int { return e.held.n }

// release runs the held records whose order key is before upto (event
// seconds) and then closes the aggregates: with end order up to
// startUpto, but never past the start of a record still held; with
// start order up to upto.
func (e *Engine) release(upto, startUpto uint32, out *Output) {
	e.held.release(upto, func(sec uint32, recs []held, order []uint32) { e.runHeld(sec, recs, order, out) })
	if !e.endOrder {
		if e.agg != nil {
			e.agg.advance(upto, out)
		}
		return
	}
	if startUpto <= e.startReleased {
		return
	}
	e.startReleased = startUpto
	if e.agg != nil && startUpto/60 > e.agg.closed {
		e.agg.advance(min(startUpto, e.held.minStart()), out)
	}
}

// runGroup is how many released records runHeld looks up at once.
const runGroup = 8

// recordKeys are the packed keys of a record's subjects.
type recordKeys struct {
	caller, callee uint64
	calleeNumeric  bool
	// sources are the keys of the record's trunk, IMEI, IMSI and source
	// address (sourceKinds); 0 where absent or not tracked.
	sources [4]uint64
}

// sourceKinds are the kinds of recordKeys.sources, in order.
var sourceKinds = [4]schemas.SubjectKind{schemas.SubjectTrunk, schemas.SubjectIMEI, schemas.SubjectIMSI, schemas.SubjectSourceIP}

// keys packs the keys of r into k.
func (e *Engine) keys(r *record, k *recordKeys) {
	k.caller, _ = packKey(r.caller)
	k.callee, k.calleeNumeric = packKey(r.callee)
	for i, id := range [...]string{r.trunk, r.imei, r.imsi, r.sourceIP} {
		k.sources[i] = 0
		if e.tables[sourceKinds[i]] != nil && id != "" {
			k.sources[i], _ = packKey(id)
		}
	}
}

// touch reads the first table slot of each of k's keys (see
// hashTable.touch).
func (e *Engine) touch(k *recordKeys) (touched uint64) {
	if t := e.tables[schemas.SubjectCaller]; t != nil {
		touched = t.touch(k.caller)
	}
	for i, key := range k.sources {
		if key != 0 {
			touched ^= e.tables[sourceKinds[i]].touch(key)
		}
	}
	return touched
}

// runHeld runs the released records of second sec (their order key) in
// the given order, runGroup records at
// a time: it packs the keys of a group's records, then reads their first
// table slots in a tight loop, so that the cache misses of those reads
// overlap instead of stalling each record in turn, and then runs the
// group.
func (e *Engine) runHeld(sec uint32, recs []held, order []uint32, out *Output) {
	// What these records raise leaves the engine at the earliest clock
	// that releases them, whatever the clock stood at: so emitted_at does
	// not depend on how the records were batched.
	e.emitAt = sec + 1 + e.delay()
	var keys [runGroup]recordKeys
	for len(order) > 0 {
		g := order[:min(len(order), runGroup)]
		order = order[len(g):]
		for j, i := range g {
			e.keys(&recs[i].r, &keys[j])
		}
		var touched uint64
		for j := range g {
			touched ^= e.touch(&keys[j])
		}
		e.touched = touched
		for j, i := range g {
			e.run(&recs[i].r, &keys[j], recs[i].quiet, out)
		}
	}
}

// run runs one record, whose keys are k, through the detectors. quiet says
// whether the record arrived in quiet mode.
func (e *Engine) run(c *record, k *recordKeys, quiet bool, out *Output) {
	was := e.quiet
	e.quiet = quiet
	ts := toTS(c.startMS)
	if ts > e.now {
		hour := ts/3600 != e.now/3600
		e.now = ts
		if hour {
			e.sweep()
		}
	}
	cl := call{ts: ts, talk: uint32(max(c.durationS, 0)), answered: c.disposition == schemas.Answered,
		rejected: c.disposition == schemas.Rejected || c.disposition == schemas.Busy}
	cl.short = !cl.answered || cl.talk < e.shortS
	cl.refused = cl.rejected || cl.answered && cl.short

	if t := e.tables[schemas.SubjectCaller]; t != nil {
		newCallee := e.update(t, k.caller, c.caller, k.callee, k.calleeNumeric, k.callee, c.caller, &cl, out)
		if e.agg != nil {
			e.agg.add(k.caller, c.caller, k.callee, newCallee, &cl)
		}
	}
	if e.agg != nil {
		e.agg.network(&cl)
	}
	for i, id := range [...]string{c.trunk, c.imei, c.imsi, c.sourceIP} {
		if key := k.sources[i]; key != 0 {
			e.update(e.tables[sourceKinds[i]], key, id, k.caller, false, 0, c.caller, &cl, out)
		}
	}
	e.quiet = was
}

// Flush runs every held record and emits every open aggregate row, as if
// the watermark had passed them: call it at the end of a finite input (a
// replay).
func (e *Engine) Flush(out *Output) {
	e.held.release(max(e.maxTS, e.maxEnd)+1, func(sec uint32, recs []held, order []uint32) { e.runHeld(sec, recs, order, out) })
	if e.agg != nil && !e.quiet {
		e.agg.flush(out)
	}
}

// update runs one call through the state of one key. For caller keys peer
// is the callee; for sources peer is the caller and callee the callee.
// It reports whether the call is the key's first to that peer in the
// call's UTC day, as far as the key's state remembers.
func (e *Engine) update(t *table, key uint64, subject string, peer uint64, peerNumeric bool,
	callee uint64, caller string, cl *call, out *Output) (newPeer bool) {
	l, _ := t.upsert(key) // valid throughout: nothing below touches t
	if l.heavy != 0 {
		h := e.heavies[l.heavy-1]
		l.ts = max(l.ts, cl.ts)
		prev := e.heavyAdd(h, cl, peer, peerNumeric, callee, caller)
		e.evaluate(h, l.ts, out)
		return prev == 0 || prev/86400 < cl.ts/86400
	}
	newPeer = l.ts == 0 || l.peer != peer || l.ts/86400 != cl.ts/86400
	if l.flags&flagExempt != 0 || !e.lightGate(l, t.kind, peer, cl) {
		l.remember(peer, cl)
		return newPeer
	}
	if e.allow.Exempt(t.kind, subject) {
		l.flags |= flagExempt
		e.stats.Exempted++
		l.remember(peer, cl)
		return newPeer
	}
	h := e.promote(t.kind, l, subject)
	// The detailed windows start with the key's previous call, then this.
	if l.ts != 0 {
		old := callFromInfo(l.ts, l.info)
		if t.kind == schemas.SubjectCaller {
			e.heavyAdd(h, &old, l.peer, l.peer&keyOpaque == 0, l.peer, "")
		} else {
			e.heavyAdd(h, &old, l.peer, false, 0, "")
		}
	}
	l.remember(peer, cl)
	e.heavyAdd(h, cl, peer, peerNumeric, callee, caller)
	e.evaluate(h, l.ts, out)
	return newPeer
}

// lightGate decides whether a key in compact state needs detailed windows
// now. Callers: enough calls in the current and previous half hour
// (Config.DetailCalls), or a refused call to the callee of its previous,
// short call (repeat dialling despite refusal). Trunks and addresses:
// enough calls. IMEIs and IMSIs: a second caller ID, since their rules are
// about several numbers on one handset or SIM.
func (e *Engine) lightGate(l *light, kind schemas.SubjectKind, peer uint64, cl *call) bool {
	l.countHalfHour(cl.ts)
	switch kind {
	case schemas.SubjectCaller:
		return int(l.nCur)+int(l.nPrev) >= e.cfg.DetailCalls ||
			l.ts != 0 && l.peer == peer && cl.refused && l.info&infoShort != 0
	case schemas.SubjectIMEI, schemas.SubjectIMSI:
		return l.ts != 0 && l.peer != peer
	}
	return int(l.nCur)+int(l.nPrev) >= e.cfg.DetailCalls
}

// promote gives the key of l detailed windows.
func (e *Engine) promote(kind schemas.SubjectKind, l *light, subject string) *heavy {
	e.stats.Promotions++
	h := &heavy{kind: kind, subject: strings.Clone(subject)}
	h.rings = make([]ring, len(e.windows))
	for i, w := range e.cfg.Windows {
		h.rings[i] = newRing(e.windows[i]/uint32(w.Buckets), w.Buckets)
	}
	h.callees.repeat = true
	h.callers.repeat = true // per caller ID counts: how lightly each is used
	if kind == schemas.SubjectCaller {
		h.seq = new(seqTable)
	}
	h.rules = make([]ruleState, len(e.byKind[kind]))
	if n := len(e.hfree); n > 0 {
		l.heavy = e.hfree[n-1] + 1
		e.hfree = e.hfree[:n-1]
		e.heavies[l.heavy-1] = h
	} else {
		e.heavies = append(e.heavies, h)
		l.heavy = uint32(len(e.heavies))
	}
	return h
}

// demote drops the detailed windows of the key of l.
func (e *Engine) demote(l *light) {
	i := l.heavy - 1
	e.heavies[i] = nil
	e.hfree = append(e.hfree, i)
	l.heavy = 0
	l.nCur, l.nPrev = 0, 0
}

// heavyAdd adds one call to a busy key's windows. It returns when the key
// last called the callee before (0: new, or not within the longest window).
func (e *Engine) heavyAdd(h *heavy, cl *call, peer uint64, peerNumeric bool, callee uint64, caller string) (calleePrev uint32) {
	ts := cl.ts
	stale := sub(e.now, e.longest+e.lateness)
	rings := h.rings
	// cur[i] is ring i's bucket for ts, nil when ts is older than the
	// window; nothing below moves a window, so they stay valid.
	var cur [len(Engine{}.metrics)]*bucket
	for i := range rings {
		b := rings[i].at(ts)
		if b == nil {
			continue
		}
		cur[i] = b
		rings[i].calls++
		b.calls++
		b.talk += cl.talk
		if cl.answered {
			b.answered++
		}
		if cl.short {
			b.short++
		}
		if cl.rejected {
			b.rejected++
		}
	}
	if callee != 0 {
		prev, rec, sl := h.callees.touch(ts, callee, cl.refused, stale)
		calleePrev = prev
		if prev == 0 || ts > prev {
			for i := range rings {
				if prev != 0 {
					if ob := rings[i].bucketOf(prev); ob != nil && ob.newCallees > 0 {
						ob.newCallees--
					}
				}
				if nb := cur[i]; nb != nil {
					nb.newCallees++
				}
			}
		}
		for i := range rings {
			b := cur[i]
			if b == nil {
				continue
			}
			var n, rej int
			switch {
			case rec != nil:
				n, rej = rec.count(sub(ts, e.windows[i]), ts)
			case sl != nil:
				n, rej = int(sl.calls), int(sl.refused)
			}
			b.maxCallee = max(b.maxCallee, uint16(min(n, 65535)))
			b.maxCalleeRej = max(b.maxCalleeRej, uint16(min(rej, 65535)))
		}
		if h.seq != nil && peerNumeric && h.kind == schemas.SubjectCaller {
			run := uint16(min(h.seq.add(callee, ts, stale), 65535))
			for i := range rings {
				if b := cur[i]; b != nil {
					b.maxSeq = max(b.maxSeq, run)
				}
			}
		}
		if e.overflow(&h.callees, stale) {
			e.sketch(h, &h.callees, func(b *bucket) *uint32 { return &b.newCallees })
		}
	}
	if h.kind.IsSource() && peer != 0 {
		prev, rec, sl := h.callers.touch(ts, peer, false, stale)
		for i := range rings {
			b := cur[i]
			if b == nil {
				continue
			}
			// A light call comes from a caller ID used fewer than
			// peerTimes times in the window, this call included.
			n := peerTimes
			switch {
			case rec != nil:
				n, _ = rec.count(sub(ts, e.windows[i]), ts)
			case sl != nil:
				n = int(sl.calls)
			}
			if n < peerTimes {
				b.lightCalls++
				if cl.short {
					b.lightShort++
				}
			}
		}
		if prev == 0 || ts > prev {
			for i := range rings {
				if prev != 0 {
					if ob := rings[i].bucketOf(prev); ob != nil && ob.newCallers > 0 {
						ob.newCallers--
					}
				}
				if nb := cur[i]; nb != nil {
					nb.newCallers++
				}
			}
		}
		if prev == 0 {
			if peer&keyOpaque != 0 && caller != "" && len(h.names) < e.cfg.ExactPeers {
				if h.names == nil {
					h.names = make(map[uint64]string)
				}
				if _, ok := h.names[peer]; !ok {
					h.names[peer] = strings.Clone(caller)
				}
			}
			if h.callers.sketched() {
				if len(h.recent) < schemas.MaxAlertCallerIDs {
					h.recent = append(h.recent, recentCaller{peer, ts})
				} else {
					copy(h.recent, h.recent[1:])
					h.recent[len(h.recent)-1] = recentCaller{peer, ts}
				}
			}
		}
		if e.overflow(&h.callers, stale) {
			e.sketch(h, &h.callers, func(b *bucket) *uint32 { return &b.newCallers })
		}
	}
	return calleePrev
}

// overflow reports whether an exact peer set outgrew its bound even after
// forgetting stale peers. Purging must free a quarter of the bound, so a
// set hovering at the bound is not purged on every call.
func (e *Engine) overflow(s *peerSet, stale uint32) bool {
	if s.sketched() || s.size() <= e.cfg.ExactPeers {
		return false
	}
	return s.purge(stale) > e.cfg.ExactPeers*3/4
}

// sketch switches a peer set of h to its estimate and rebuilds the
// per-bucket counts field(b) from the sketch's slots.
func (e *Engine) sketch(h *heavy, s *peerSet, field func(*bucket) *uint32) {
	for i := range h.rings {
		for j := range h.rings[i].b {
			*field(&h.rings[i].b[j]) = 0
		}
	}
	s.toSketch(e.cfg.SketchSlots, func(last uint32) {
		for i := range h.rings {
			if b := h.rings[i].bucketOf(last); b != nil {
				*field(b)++
			}
		}
	})
}

// sweep walks every table when event time enters a new hour, evicting keys idle
// for longer than the longest window (plus lateness) and demoting busy
// keys that went quiet. Keys are independent, so the result does not
// depend on the walk's order.
func (e *Engine) sweep() {
	for _, t := range e.tables {
		if t == nil {
			continue
		}
		// filter may visit a key twice; a key kept (and maybe demoted)
		// on its first visit is kept again, and not demoted twice.
		t.filter(func(_ uint64, l *light) bool {
			if l.ts+e.longest+e.lateness < e.now {
				if l.heavy != 0 {
					e.demote(l)
				}
				e.stats.Evictions++
				return false
			}
			if l.heavy != 0 {
				h := e.heavies[l.heavy-1]
				if h.rings[e.gateRing].callsAt(e.now) == 0 && h.longestCalls(e) < uint32(2*e.cfg.DetailCalls) && !h.coolingDown(e.now) {
					e.demote(l)
					e.stats.Demotions++
				}
			}
			return true
		})
	}
	if e.agg != nil {
		e.agg.sweep()
	}
}

// longestCalls returns the calls in the key's longest window as it stands
// at the engine's latest event time.
func (h *heavy) longestCalls(e *Engine) uint32 {
	var best uint32
	for i, s := range e.windows {
		if s == e.longest {
			best = h.rings[i].callsAt(e.now)
		}
	}
	return best
}

func (h *heavy) coolingDown(now uint32) bool {
	for _, st := range h.rules {
		if st.until > now {
			return true
		}
	}
	return false
}

// Remembered returns how many record fingerprints the engine remembers
// to drop duplicates (Config.DedupHorizon), and the bytes they take.
func (e *Engine) Remembered() (records, bytes int) {
	if e.dedup == nil {
		return 0, 0
	}
	return e.dedup.size()
}
