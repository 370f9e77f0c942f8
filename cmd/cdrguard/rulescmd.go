package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/cdrguard/cdrguard/deploy"
)

// runRules is `cdrguard rules print` (the built-in default rules, to
// start a carrier's own file from) and `cdrguard rules check FILE`
// (validate a rules file against the detection settings of a config, or
// the defaults).
func runRules(_ context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fs := newFlagSet("rules", "rules print | rules check [--config FILE] RULES_FILE", stderr)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		return fmt.Errorf("%w: rules print | rules check [--config FILE] RULES_FILE", errUsage)
	}
	switch args[0] {
	case "print":
		_, err := stdout.Write(deploy.DefaultRules)
		return err
	case "check":
		fs := newFlagSet("rules check", "rules check [--config FILE] RULES_FILE", stderr)
		configPath := fs.String("config", os.Getenv("CDRGUARD_CONFIG"), "config whose detect settings (windows) the rules must fit [$CDRGUARD_CONFIG]")
		if err := parseFlags(fs, args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: rules check [--config FILE] RULES_FILE", errUsage)
		}
		cfg, err := loadRunConfig(*configPath)
		if err != nil {
			return err
		}
		cfg.Hooks, cfg.Console = nil, nil // only the detect settings matter here
		if err := cfg.validate(); err != nil {
			return fmt.Errorf("invalid configuration: %w", err)
		}
		cfg.Detect.Rules = fs.Arg(0)
		set, err := loadRules(cfg)
		if err != nil {
			return err
		}
		numbers, prefixes, sources := set.AllowlistEntries()
		_, err = fmt.Fprintf(stdout, "%s: %d rules, allowlist of %d numbers, %d prefixes and %d sources: ok\n",
			fs.Arg(0), set.Len(), len(numbers), len(prefixes), len(sources))
		return err
	default:
		return fmt.Errorf("%w: unknown rules subcommand %q (print, check)", errUsage, args[0])
	}
}
