package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/cdrguard/cdrguard/pipeline/clickhouse"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate", "migrate [--config FILE] [--clickhouse DSN] [--print --server-version X.Y]", stderr)
	configPath := fs.String("config", os.Getenv("CDRGUARD_CONFIG"), "config file (YAML); its clickhouse section is used [$CDRGUARD_CONFIG]")
	dsn := fs.String("clickhouse", os.Getenv("CDRGUARD_CLICKHOUSE"), "ClickHouse DSN clickhouse://HOST:PORT/DATABASE [$CDRGUARD_CLICKHOUSE]")
	print := fs.Bool("print", false, "print the DDL for --server-version instead of applying it (no connection)")
	serverVersion := fs.String("server-version", "24.8", "with --print: the ClickHouse version to write DDL for")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadRunConfig(*configPath)
	if err != nil {
		return err
	}
	if *dsn != "" {
		cfg.ClickHouse.DSN = *dsn
	}
	if cfg.ClickHouse.DSN == "" {
		return fmt.Errorf("%w: no ClickHouse: set --clickhouse or clickhouse.dsn in the config", errUsage)
	}
	opts, err := chOptions(cfg.ClickHouse)
	if err != nil {
		return err
	}
	if *print {
		v, err := clickhouse.ParseVersion(*serverVersion)
		if err != nil {
			return fmt.Errorf("%w: --server-version: %v", errUsage, err)
		}
		plan, err := clickhouse.Render(opts, v)
		if err != nil {
			return err
		}
		for _, s := range plan.Bootstrap {
			fmt.Fprintf(stdout, "%s;\n\n", s)
		}
		for _, m := range plan.Migrations {
			fmt.Fprintf(stdout, "-- migration %s\n", m.Name)
			for _, s := range m.Statements {
				fmt.Fprintf(stdout, "%s;\n\n", s)
			}
		}
		return nil
	}
	log, err := newLogger(logConfig{Level: "warn", Format: "console"}, stderr)
	if err != nil {
		return err
	}
	client, err := clickhouse.Open(ctx, opts, log)
	if err != nil {
		return err
	}
	defer client.Close()
	if err := client.Migrate(ctx); err != nil {
		return err
	}
	applied, err := client.AppliedMigrations(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ClickHouse %s, database %s: migrations applied: %v\n", client.ServerVersion(), client.Database(), applied)
	return nil
}
