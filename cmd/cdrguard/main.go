// Command cdrguard catches robo-dialers in a carrier's call-detail
// records. Subcommands:
//
//	cdrguard run      consume CDRs from Kafka, publish alerts (streaming)
//	cdrguard hooks    deliver suspension webhooks (and manage parked and held requests)
//	cdrguard console  the fraud team's web console over ClickHouse
//	cdrguard release  lift a suspension and allowlist the subject
//	cdrguard replay   run CDR files through the detectors (backtesting)
//	cdrguard gen      generate a synthetic carrier day with ground truth
//	cdrguard migrate  create or upgrade the ClickHouse tables
//	cdrguard schema   print the JSON Schema of CDRs or alerts
//	cdrguard version  print the version
//
// Run `cdrguard COMMAND --help` for each command's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "consume CDRs from Kafka and publish alerts (the streaming job)", runRun},
		{"load", "load alerts, aggregate rows and CDRs from Kafka into ClickHouse (run does it too, unless clickhouse.loader is off)", runLoad},
		{"hooks", "deliver suspension webhooks; hooks parked|redeliver|held|approve|reject|enable", runHooks},
		{"console", "the fraud team's web console; console hash-password makes a users-file hash", runConsole},
		{"release", "lift the suspensions of a number (or source) and allowlist it; --action confirm keeps one past its expiry", runRelease},
		{"rules", "rules print: the built-in default rules; rules check FILE: validate a rules file", runRules},
		{"config", "config check FILE: validate a configuration and print the effective one, secrets redacted", runConfigCmd},
		{"replay", "run CDR files through the detectors and print alerts (backtest rules)", runReplay},
		{"gen", "generate a synthetic carrier day of CDRs with ground-truth labels", runGen},
		{"migrate", "create or upgrade the ClickHouse tables", runMigrate},
		{"schema", "print the JSON Schema of the canonical CDR or of alerts", runSchema},
		{"version", "print the version", func(_ context.Context, _ []string, stdout, _ io.Writer) error {
			_, err := fmt.Fprintln(stdout, "cdrguard", version)
			return err
		}},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// errUsage marks errors whose message is a usage problem (exit code 2).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errUsage):
			fmt.Fprintf(stderr, "cdrguard %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "cdrguard %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "cdrguard: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "cdrguard catches robo-dialers in call-detail records.")
	fmt.Fprintln(w, "\nUsage: cdrguard COMMAND [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'cdrguard COMMAND --help' for a command's flags.")
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cdrguard %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return nil
}

// createOutput returns path opened for writing, or stdout when path is
// empty, and a close function whose error the caller must check (a failed
// close can mean the last writes never reached the disk). Calling close
// again does nothing.
func createOutput(path string, stdout io.Writer) (io.Writer, func() error, error) {
	if path == "" {
		return stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot create output: %w", err)
	}
	closed := false
	return f, func() error {
		if closed {
			return nil
		}
		closed = true
		if err := f.Close(); err != nil {
			return fmt.Errorf("cannot write %s: %w", path, err)
		}
		return nil
	}, nil
}
