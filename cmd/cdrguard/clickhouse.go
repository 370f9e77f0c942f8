package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/clickhouse"
	"github.com/cdrguard/cdrguard/pipeline/loader"
	"github.com/cdrguard/cdrguard/pipeline/rules"
)

// chOptions maps the clickhouse section of the config to the sink's
// options, reading secrets from their files.
func chOptions(c clickhouseConfig) (clickhouse.Options, error) {
	o := clickhouse.Options{
		DSN: c.DSN, Username: c.Username, Password: c.Password, Cluster: c.Cluster,
		StoreCDRs: c.StoreCDRs, CDRRetentionDays: c.CDRRetentionDays,
		PseudonymizeCallees: c.PseudonymizeCallees, MaxRows: c.MaxRows, FlushInterval: c.FlushInterval,
	}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return o, fmt.Errorf("clickhouse.password_file: %w", err)
		}
		o.Password = strings.TrimRight(string(b), "\r\n")
	}
	if c.TLS {
		o.TLS = &tls.Config{InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // operator's choice
		if c.CAFile != "" {
			pem, err := os.ReadFile(c.CAFile)
			if err != nil {
				return o, fmt.Errorf("clickhouse.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return o, fmt.Errorf("clickhouse.ca_file %s holds no PEM certificate", c.CAFile)
			}
			o.TLS.RootCAs = pool
		}
	}
	if c.PseudonymizeCallees {
		key := []byte(os.Getenv("CDRGUARD_PSEUDONYM_KEY"))
		if c.PseudonymKeyFile != "" {
			b, err := os.ReadFile(c.PseudonymKeyFile)
			if err != nil {
				return o, fmt.Errorf("clickhouse.pseudonym_key_file: %w", err)
			}
			key = []byte(strings.TrimRight(string(b), "\r\n"))
		}
		o.PseudonymKey = key
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// openClickHouse connects, applies the migrations (unless turned off),
// loads the allowlist for analysts and returns the sink. It registers the
// sink's metrics with reg on success, so call it until it succeeds once.
func openClickHouse(ctx context.Context, cfg runConfig, set *rules.Set, reg prometheus.Registerer, log *zap.Logger) (loader.Store, func(), error) {
	opts, err := chOptions(cfg.ClickHouse)
	if err != nil {
		return nil, nil, err
	}
	client, err := clickhouse.Open(ctx, opts, log)
	if err != nil {
		return nil, nil, err
	}
	if cfg.ClickHouse.Migrate {
		if err := client.Migrate(ctx); err != nil {
			client.Close()
			return nil, nil, err
		}
	}
	numbers, prefixes, sources := set.AllowlistEntries()
	if err := client.ReplaceAllowlist(ctx, numbers, prefixes, sources, set.Source); err != nil {
		client.Close()
		return nil, nil, err
	}
	sink := client.NewSink()
	if err := sink.Register(reg); err != nil {
		client.Close()
		return nil, nil, err
	}
	log.Info("clickhouse", zap.Stringer("options", opts), zap.String("server", client.ServerVersion().String()))
	return sink, func() {
		cctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := sink.Close(cctx); err != nil {
			log.Warn("clickhouse sink close", zap.Error(err))
		}
		client.Close()
	}, nil
}
