package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/clickhouse"
	"github.com/cdrguard/cdrguard/pipeline/health"
	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
)

// hooksEnv is what every hooks subcommand needs: the configuration, a
// Kafka client and the hooks' log.
type hooksEnv struct {
	cfg   runConfig
	hcfg  hooks.Config // with defaults
	kc    *kafkaio.Client
	log   *hooks.KafkaLog
	close func()
}

func openHooksEnv(ctx context.Context, cfg runConfig) (*hooksEnv, error) {
	if cfg.Hooks == nil {
		return nil, errors.New("the config has no hooks section")
	}
	hcfg, _, err := cfg.Hooks.Resolve(cfg.Kafka.AlertsTopic)
	if err != nil {
		return nil, err
	}
	kc, err := kafkaio.NewClient(cfg.Kafka.Conn)
	if err != nil {
		return nil, err
	}
	if err := waitForBrokers(ctx, kc, cfg, zap.NewNop()); err != nil {
		kc.Close()
		return nil, err
	}
	l := hooks.NewKafkaLog(kc)
	if cfg.Kafka.CreateTopics {
		if err := l.EnsureTopics(ctx, hcfg, cfg.Kafka.ReplicationFactor); err != nil {
			_ = l.Close()
			kc.Close()
			return nil, err
		}
	}
	return &hooksEnv{cfg: cfg, hcfg: hcfg, kc: kc, log: l, close: func() { _ = l.Close(); kc.Close() }}, nil
}

func runHooks(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := ""
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	synopsis := map[string]string{
		"":          "hooks [--config FILE] [flags]",
		"parked":    "hooks parked [--config FILE]",
		"held":      "hooks held [--config FILE]",
		"redeliver": "hooks redeliver [--config FILE] ID...|all",
		"approve":   "hooks approve [--config FILE] ID...|all",
		"reject":    "hooks reject [--config FILE] --by NAME ID...|all",
		"enable":    "hooks enable [--config FILE] ENDPOINT",
	}[sub]
	if synopsis == "" {
		return fmt.Errorf("%w: unknown hooks subcommand %q (parked, redeliver, held, approve, reject, enable)", errUsage, sub)
	}
	fs := newFlagSet("hooks", synopsis, stderr)
	configPath := fs.String("config", os.Getenv("CDRGUARD_CONFIG"), "config file (YAML) [$CDRGUARD_CONFIG]")
	by := fs.String("by", os.Getenv("USER"), "who rejects (reject)")
	var o overrides
	o.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := resolveConfig(*configPath, &o)
	if err != nil {
		return err
	}
	if cfg.Hooks == nil {
		return fmt.Errorf("%w: the config has no hooks section", errUsage)
	}
	if sub == "" {
		log, err := newLogger(cfg.Log, stderr)
		if err != nil {
			return err
		}
		defer func() { _ = log.Sync() }()
		reg := newMetricsRegistry()
		probes := health.NewRegistry()
		hooksStarting(probes)
		stop, err := serveAdmin(cfg.Metrics, reg, probes, log)
		if err != nil {
			return err
		}
		defer stop()
		return serveHooks(ctx, cfg, log, reg, probes)
	}
	env, err := openHooksEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer env.close()
	ids := fs.Args()
	now := time.Now()
	switch sub {
	case "parked", "held":
		topic := env.hcfg.ParkedTopic
		if sub == "held" {
			topic = env.hcfg.HeldTopic
		}
		reqs, err := hooks.Snapshot(ctx, env.log, topic)
		if err != nil {
			return err
		}
		return printRequests(stdout, reqs, sub == "held")
	case "enable":
		if len(ids) != 1 {
			return fmt.Errorf("%w: name one endpoint", errUsage)
		}
		return hooks.Enable(ctx, env.log, env.hcfg.RetryTopic, ids[0])
	}
	if len(ids) == 0 {
		return fmt.Errorf("%w: name the webhook-ids, or all", errUsage)
	}
	var reqs []hooks.Request
	switch sub {
	case "redeliver":
		reqs, err = hooks.Requeue(ctx, env.log, env.hcfg.ParkedTopic, env.hcfg.RetryTopic, ids, false, now)
	case "approve":
		reqs, err = hooks.Requeue(ctx, env.log, env.hcfg.HeldTopic, env.hcfg.RetryTopic, ids, true, now)
	case "reject":
		if strings.TrimSpace(*by) == "" {
			return fmt.Errorf("%w: --by NAME is needed", errUsage)
		}
		var rec hooks.Recorder
		var closeRec func()
		if cfg.ClickHouse.DSN != "" {
			rec, closeRec, err = openDeliveryRecorder(ctx, cfg, zap.NewNop())
			if err != nil {
				return err
			}
			defer closeRec()
		}
		reqs, err = hooks.Reject(ctx, env.log, env.hcfg.HeldTopic, ids, rec, *by, now)
	}
	if err != nil {
		return err
	}
	for _, r := range reqs {
		fmt.Fprintf(stdout, "%s %s %s %s\n", sub, r.ID, r.Endpoint, r.Subject)
	}
	return nil
}

func printRequests(w io.Writer, reqs []hooks.Request, held bool) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "WEBHOOK-ID\tENDPOINT\tACTION\tSUBJECT\tRULE\tALERT\tSINCE\tATTEMPTS\tWHY")
	for _, r := range reqs {
		why := r.LastError
		if held {
			why = r.HeldReason
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", r.ID, r.Endpoint, r.Action, r.Subject, r.Rule, r.AlertID,
			r.CreatedAt.UTC().Format(time.RFC3339), r.Attempts, why)
	}
	return tw.Flush()
}

// openDeliveryRecorder connects to ClickHouse (migrating when
// clickhouse.migrate is on) and returns the hook_deliveries recorder;
// close flushes it.
func openDeliveryRecorder(ctx context.Context, cfg runConfig, log *zap.Logger) (hooks.Recorder, func(), error) {
	rec, _, closeRec, err := openRecorders(ctx, cfg, log)
	return rec, closeRec, err
}

// openRecorders returns the hook_deliveries and decisions recorders;
// close flushes both. Neither ever blocks its caller, and ClickHouse need
// not be up: the recorders connect (and migrate, when clickhouse.migrate
// is on) on their first write and buffer and retry until it is, so a
// ClickHouse outage, at start or later, delays the rows and never the
// deliveries or the releases.
func openRecorders(ctx context.Context, cfg runConfig, log *zap.Logger) (hooks.Recorder, hooks.DecisionRecorder, func(), error) {
	opts, err := chOptions(cfg.ClickHouse)
	if err != nil {
		return nil, nil, nil, err
	}
	var mu sync.Mutex
	var client *clickhouse.Client
	conn := func(ctx context.Context) (*clickhouse.Client, error) {
		mu.Lock()
		defer mu.Unlock()
		if client != nil {
			return client, nil
		}
		c, err := clickhouse.Open(ctx, opts, log)
		if err != nil {
			return nil, err
		}
		if cfg.ClickHouse.Migrate {
			if err := c.Migrate(ctx); err != nil {
				_ = c.Close()
				return nil, err
			}
		}
		client = c
		return c, nil
	}
	go func() { // connect early, without holding up the dispatcher
		if _, err := conn(ctx); err != nil && ctx.Err() == nil {
			log.Warn("clickhouse unreachable: webhook deliveries and decisions are buffered until it is back", zap.Error(err))
		}
	}()
	decs := hooks.NewBatchRecorder(func(ctx context.Context, ds []hooks.Decision) error {
		c, err := conn(ctx)
		if err != nil {
			return err
		}
		rows := make([]clickhouse.Decision, len(ds))
		for i, d := range ds {
			rows[i] = clickhouse.Decision{Time: d.Time, DecisionID: d.ID, SubjectKind: d.SubjectKind, Subject: d.Subject, Action: d.Action,
				AlertID: d.AlertID, RequestID: d.RequestID, By: d.By, Reason: d.Reason, Source: d.Source}
		}
		return c.InsertDecisions(ctx, rows)
	}, 100_000, log)
	rec := hooks.NewBatchRecorder(func(ctx context.Context, ds []hooks.Delivery) error {
		c, err := conn(ctx)
		if err != nil {
			return err
		}
		rows := make([]clickhouse.HookDelivery, len(ds))
		for i, d := range ds {
			rows[i] = clickhouse.HookDelivery{Time: d.Time, RequestID: d.RequestID, AlertID: d.AlertID, Endpoint: d.Endpoint,
				Action: d.Action, SubjectKind: d.SubjectKind, Subject: d.Subject, Rule: d.Rule, Attempt: uint16(min(d.Attempt, 65535)),
				StatusCode: uint16(d.StatusCode), LatencyMS: float64(d.Latency.Microseconds()) / 1000, Error: d.Error,
				Outcome: d.Outcome, Mode: d.Mode, NextAttempt: d.NextAt, Body: string(d.Body)}
		}
		return c.InsertHookDeliveries(ctx, rows)
	}, 100_000, log)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(rctx) })
	wg.Go(func() { decs.Run(rctx) })
	return rec, decs, func() {
		cancel()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if client != nil {
			_ = client.Close()
		}
	}, nil
}

// hooksStarting registers the dispatcher's readiness checks as not ready
// yet, so /readyz says so before serveHooks replaces them.
func hooksStarting(probes *health.Registry) {
	starting := func() error { return errors.New("starting") }
	probes.Add("hooks alerts group", starting)
	probes.Add("hooks topics", starting)
}

// serveHooks runs the dispatcher in the group <group>-hooks, and its
// release API when hooks.api is set, until ctx ends or one fails. Its
// metrics go on reg, its readiness checks on probes.
func serveHooks(ctx context.Context, cfg runConfig, log *zap.Logger, reg prometheus.Registerer, probes *health.Registry) error {
	set, err := loadRules(cfg)
	if err != nil {
		return err
	}
	env, err := openHooksEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer env.close()
	if cfg.Kafka.CreateTopics {
		if err := ensureAlertsTopic(ctx, env.kc, cfg, log); err != nil {
			return err
		}
	}
	var tokens []string
	if env.hcfg.API != nil {
		if tokens, err = hooks.ReadTokens(env.hcfg.API.TokensFile); err != nil {
			return err
		}
	}
	var rec hooks.Recorder
	var decs hooks.DecisionRecorder
	if cfg.ClickHouse.DSN != "" {
		r, dr, closeRec, err := openRecorders(ctx, cfg, log)
		if err != nil {
			return err
		}
		defer closeRec()
		rec, decs = r, dr
	} else {
		log.Warn("no clickhouse.dsn: hook_deliveries and decisions are not recorded")
	}
	group := cfg.Kafka.Group + "-hooks"
	// One dispatcher at a time runs the retry topic: the one elected in
	// <group>-hooks-retry (on the one-partition held topic).
	elector, err := hooks.NewKafkaElector(env.kc, group+"-retry", env.hcfg.HeldTopic, log)
	if err != nil {
		return err
	}
	d, err := hooks.New(hooks.Options{Config: *cfg.Hooks, AlertsTopic: cfg.Kafka.AlertsTopic, Log: env.log, Recorder: rec,
		Decisions: decs, Allowlist: set.Allowlist, SuspendFor: set.SuspendFor, APITokens: tokens, Logger: log, Registerer: reg,
		Elector: elector})
	if err != nil {
		return err
	}
	// The job creates the alerts topic; a group reader that joined
	// before it existed would never read it.
	probes.Add("hooks alerts group", func() error { return fmt.Errorf("waiting for the alerts topic %s", cfg.Kafka.AlertsTopic) })
	probes.Add("hooks topics", d.Ready)
	if err := hooks.WaitTopic(ctx, env.kc, cfg.Kafka.AlertsTopic); err != nil {
		return err
	}
	src, err := hooks.NewAlertSource(env.kc, cfg.Kafka.AlertsTopic, group)
	if err != nil {
		return err
	}
	defer src.Close()
	probes.Add("hooks alerts group", hooks.JoinedCheck(src, group))
	for _, ep := range cfg.Hooks.Endpoints {
		log.Info("hook endpoint", zap.String("name", ep.Name), zap.String("url", ep.URL), zap.String("mode", ep.Mode), zap.Strings("actions", ep.Actions))
	}
	log.Info("cdrguard hooks", zap.String("version", version), zap.String("group", group), zap.String("retry_election_group", group+"-retry"), zap.String("alerts_topic", cfg.Kafka.AlertsTopic),
		zap.String("retry_topic", env.hcfg.RetryTopic), zap.String("parked_topic", env.hcfg.ParkedTopic), zap.String("held_topic", env.hcfg.HeldTopic),
		zap.String("allowlist_topic", env.hcfg.AllowlistTopic), zap.String("state_topic", env.hcfg.StateTopic), zap.String("dlq_topic", env.hcfg.DLQTopic))
	return runDispatcher(ctx, d, src)
}

// ensureAlertsTopic creates the alerts topic, which the dispatcher writes
// its suspension_budget_exceeded alerts to, as the job does (as many
// partitions as the input topic) when the input topic exists; otherwise
// the job creates it later, and those alerts wait for it.
func ensureAlertsTopic(ctx context.Context, kc *kafkaio.Client, cfg runConfig, log *zap.Logger) error {
	n, err := kc.Partitions(ctx, cfg.Kafka.Topic)
	if err != nil {
		return err
	}
	if n == 0 {
		log.Info("input topic missing: the alerts topic is left for the job to create", zap.String("topic", cfg.Kafka.Topic))
		return nil
	}
	rf := cfg.Kafka.ReplicationFactor
	if rf == 0 {
		rf = -1
	}
	return kc.EnsureTopics(ctx, kafkaio.TopicSpec{Name: cfg.Kafka.AlertsTopic, Partitions: n, ReplicationFactor: rf})
}

// runDispatcher runs d on src and its API beside it; they stop together.
// A stop by ctx is a nil error.
func runDispatcher(parent context.Context, d *hooks.Dispatcher, src hooks.AlertSource) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	apiErr := make(chan error, 1)
	go func() {
		err := d.ServeAPI(ctx)
		if err != nil {
			cancel()
		}
		apiErr <- err
	}()
	runErr := d.Run(ctx, src)
	cancel()
	if err := <-apiErr; err != nil {
		return err
	}
	if errors.Is(runErr, context.Canceled) && parent.Err() != nil {
		return nil
	}
	return runErr
}

// alongside runs every fn until ctx ends or one returns an error; then
// the others are stopped too. It returns their errors joined.
func alongside(ctx context.Context, fns ...func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Go(func() {
			errs[i] = fn(ctx)
			cancel()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
