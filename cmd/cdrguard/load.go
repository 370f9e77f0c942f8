package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/deploy"
	"github.com/cdrguard/cdrguard/pipeline/health"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/loader"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/schemas"
)

// runLoad is `cdrguard load`: the ClickHouse loader alone, for operators
// who scale it apart from the streaming job (clickhouse.loader: false on
// the job).
func runLoad(ctx context.Context, args []string, _, stderr io.Writer) error {
	fs := newFlagSet("load", "load [--config FILE] [flags]", stderr)
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
	if cfg.ClickHouse.DSN == "" {
		return errors.New("invalid configuration: clickhouse.dsn is empty: the loader has nowhere to write")
	}
	log, err := newLogger(cfg.Log, stderr)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	set, err := loadRules(cfg)
	if err != nil {
		return err
	}
	kc, err := kafkaio.NewClient(cfg.Kafka.Conn)
	if err != nil {
		return err
	}
	defer kc.Close()
	if err := waitForBrokers(ctx, kc, cfg, log); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	probes := health.NewRegistry()
	stop, err := serveAdmin(cfg.Metrics, reg, probes, log)
	if err != nil {
		return err
	}
	defer stop()
	log.Info("cdrguard load", zap.String("version", version), zap.String("group", cfg.loaderGroup()))
	return runLoader(ctx, cfg, kc, set, reg, probes, log)
}

// runLoader runs the ClickHouse loader until ctx ends.
func runLoader(ctx context.Context, cfg runConfig, kc *kafkaio.Client, set *rules.Set, reg prometheus.Registerer, probes *health.Registry, log *zap.Logger) error {
	if _, err := chOptions(cfg.ClickHouse); err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	log = log.With(zap.String("component", "loader"))
	return loader.Run(ctx, loader.Config{
		Kafka: kc, Group: cfg.loaderGroup(),
		RowsTopic: cfg.rowsTopic(), AlertsTopic: cfg.Kafka.AlertsTopic, InputTopic: cfg.Kafka.Topic,
		StoreCDRs: cfg.ClickHouse.StoreCDRs, Plan: cfg.numberPlan(),
		MaxRecordBytes: cfg.Input.MaxRecordBytes, MaxFuture: cfg.Input.MaxFuture,
		SessionTimeout: cfg.Kafka.SessionTimeout, RebalanceTimeout: cfg.Kafka.RebalanceTimeout,
		ShutdownTimeout: cfg.ShutdownTimeout, Log: log, Metrics: loader.NewMetrics(reg), Health: probes,
		Open: func(ctx context.Context) (loader.Store, func(), error) {
			return openClickHouse(ctx, cfg, set, reg, log)
		},
	})
}

// loadRules reads the rules file and checks it against the detection
// settings, so a rule naming an unknown window stops the process at start.
func loadRules(cfg runConfig) (*rules.Set, error) {
	var set *rules.Set
	var err error
	if cfg.Detect.Rules == "" {
		set, err = rules.Parse(deploy.DefaultRules, deploy.DefaultRulesName)
	} else {
		set, err = rules.Load(cfg.Detect.Rules)
	}
	if err != nil {
		return nil, err
	}
	if err := set.Check(cfg.detectorConfig()); err != nil {
		return nil, err
	}
	return set, nil
}

// numberPlan is how numbers written without a country code are read.
func (c *runConfig) numberPlan() *schemas.NumberPlan {
	if c.Input.CountryCode == "" {
		return nil
	}
	return &schemas.NumberPlan{CountryCode: c.Input.CountryCode, NationalPrefix: c.Input.NationalPrefix}
}
