package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cdrguard/cdrguard/pipeline/health"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/stream"
)

// overrides are the common settings given as flags or environment
// variables; they win over the config file.
type overrides struct {
	brokers, topic, group, alertsTopic, rules, clickhouse, metrics, logLevel string
}

func (o *overrides) register(fs *flag.FlagSet) {
	fs.StringVar(&o.brokers, "kafka-brokers", os.Getenv("CDRGUARD_KAFKA_BROKERS"), "comma-separated Kafka brokers [$CDRGUARD_KAFKA_BROKERS] (default 127.0.0.1:9092)")
	fs.StringVar(&o.topic, "topic", os.Getenv("CDRGUARD_TOPIC"), "input CDR topic [$CDRGUARD_TOPIC] (default cdrs)")
	fs.StringVar(&o.group, "group", os.Getenv("CDRGUARD_GROUP"), "consumer group [$CDRGUARD_GROUP] (default cdrguard)")
	fs.StringVar(&o.alertsTopic, "alerts-topic", os.Getenv("CDRGUARD_ALERTS_TOPIC"), "alerts topic [$CDRGUARD_ALERTS_TOPIC] (default cdr-alerts)")
	fs.StringVar(&o.rules, "rules", os.Getenv("CDRGUARD_RULES"), "rules file [$CDRGUARD_RULES] (default deploy/rules.yaml)")
	fs.StringVar(&o.clickhouse, "clickhouse", os.Getenv("CDRGUARD_CLICKHOUSE"), "ClickHouse DSN clickhouse://HOST:PORT/DATABASE; turns the sink on [$CDRGUARD_CLICKHOUSE]")
	fs.StringVar(&o.metrics, "metrics-listen", os.Getenv("CDRGUARD_METRICS_LISTEN"), "address of the Prometheus /metrics endpoint, \"off\" for none [$CDRGUARD_METRICS_LISTEN] (default 127.0.0.1:9464)")
	fs.StringVar(&o.logLevel, "log-level", os.Getenv("CDRGUARD_LOG_LEVEL"), "debug, info, warn or error [$CDRGUARD_LOG_LEVEL] (default info)")
}

func (o *overrides) apply(c *runConfig) {
	if o.brokers != "" {
		c.Kafka.Brokers = strings.Split(o.brokers, ",")
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&c.Kafka.Topic, o.topic)
	set(&c.Kafka.Group, o.group)
	set(&c.Kafka.AlertsTopic, o.alertsTopic)
	set(&c.Detect.Rules, o.rules)
	set(&c.ClickHouse.DSN, o.clickhouse)
	set(&c.Metrics.Listen, o.metrics)
	set(&c.Log.Level, o.logLevel)
	if c.Metrics.Listen == "off" {
		c.Metrics.Listen = ""
	}
}

func runRun(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("run", "run [--config FILE] [flags]", stderr)
	configPath := fs.String("config", os.Getenv("CDRGUARD_CONFIG"), "config file (YAML) [$CDRGUARD_CONFIG]")
	var o overrides
	o.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := resolveConfig(*configPath, &o)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	return serve(ctx, cfg, log)
}

// newMetricsRegistry returns the registry a process serves on /metrics,
// with the Go and process collectors.
func newMetricsRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serve wires and runs the streaming job and, with a ClickHouse DSN and
// clickhouse.loader on, the ClickHouse loader beside it; with a hooks
// section, the hook dispatcher too (serveHooks). They share one /metrics
// and one /readyz.
func serve(ctx context.Context, cfg runConfig, log *zap.Logger) error {
	reg := newMetricsRegistry()
	probes := health.NewRegistry()
	if cfg.Hooks != nil {
		hooksStarting(probes)
	}
	stop, err := serveAdmin(cfg.Metrics, reg, probes, log)
	if err != nil {
		return err
	}
	defer stop()
	if cfg.Hooks != nil {
		job := cfg
		job.Hooks = nil
		return alongside(ctx, func(ctx context.Context) error { return serveJob(ctx, job, log, reg, probes) },
			func(ctx context.Context) error { return serveHooks(ctx, cfg, log, reg, probes) })
	}
	return serveJob(ctx, cfg, log, reg, probes)
}

// serveJob runs the streaming job (and the loader), its metrics on reg and
// its checks on probes.
func serveJob(ctx context.Context, cfg runConfig, log *zap.Logger, reg *prometheus.Registry, probes *health.Registry) error {
	set, err := loadRules(cfg)
	if err != nil {
		return err
	}
	kc, err := kafkaio.NewClient(cfg.Kafka.Conn)
	if err != nil {
		return err
	}
	defer kc.Close()
	metrics := stream.NewMetrics(reg)

	sc := stream.Config{
		Kafka: kc, Topic: cfg.Kafka.Topic, Group: cfg.Kafka.Group,
		AlertsTopic: cfg.Kafka.AlertsTopic, DLQTopic: cfg.Kafka.DLQTopic, SourcesTopic: cfg.Kafka.SourcesTopic,
		RowsTopic: cfg.rowsTopic(), Rows: cfg.ClickHouse.DSN != "",
		CreateTopics: cfg.Kafka.CreateTopics, ReplicationFactor: cfg.Kafka.ReplicationFactor,
		Detect: cfg.detectorConfig(), Rules: set, Plan: cfg.numberPlan(),
		CommitInterval: cfg.Kafka.CommitInterval, MaxBatch: cfg.Kafka.MaxBatch, MaxInFlight: cfg.Kafka.MaxInFlight,
		MaxRecordBytes: cfg.Input.MaxRecordBytes, MaxFuture: cfg.Input.MaxFuture,
		IdleRelease: cfg.Detect.IdleRelease, NoRebuild: !cfg.Detect.Rebuild,
		ConnectTimeout: cfg.Kafka.ConnectTimeout,
		SessionTimeout: cfg.Kafka.SessionTimeout, RebalanceTimeout: cfg.Kafka.RebalanceTimeout,
		ShutdownTimeout: cfg.ShutdownTimeout, Log: log, Metrics: metrics, Health: probes,
	}
	if err := sc.Validate(); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	log.Info("cdrguard run", zap.String("version", version), zap.Int("rules", set.Len()), zap.String("rules_file", cfg.Detect.Rules),
		zap.Bool("rows", sc.Rows), zap.Bool("loader", sc.Rows && cfg.ClickHouse.Loader))
	if !sc.Rows || !cfg.ClickHouse.Loader {
		return stream.Run(ctx, sc)
	}
	// The job and the loader stand and fall together: if one fails, the
	// other stops too and the process exits with the error.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	loadErr := make(chan error, 1)
	go func() {
		err := runLoader(ctx, cfg, kc, set, reg, probes, log)
		if err != nil {
			cancel()
		}
		loadErr <- err
	}()
	err = stream.Run(ctx, sc)
	cancel()
	return errors.Join(err, <-loadErr)
}

func newLogger(c logConfig, w io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(c.Level)); err != nil {
		return nil, fmt.Errorf("log.level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	enc := zapcore.NewJSONEncoder(encCfg)
	if c.Format == "console" {
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), lvl)), nil
}
