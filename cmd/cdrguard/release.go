package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
)

// runRelease is `cdrguard release SUBJECT --reason TEXT --by NAME`: the
// same release as POST /api/v1/releases, written straight to the hooks'
// topics (the running dispatchers send the number.release requests).
func runRelease(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("release", "release SUBJECT --reason TEXT --by NAME [--kind caller|trunk|imei|imsi|source_ip] [--action release|false_positive|confirm] [--config FILE]", stderr)
	configPath := fs.String("config", os.Getenv("CDRGUARD_CONFIG"), "config file (YAML) [$CDRGUARD_CONFIG]")
	reason := fs.String("reason", "", "why (recorded in decisions and sent to the receivers)")
	by := fs.String("by", "", "who decides (recorded in decisions)")
	kind := fs.String("kind", "caller", "subject kind: caller, trunk, imei, imsi or source_ip")
	action := fs.String("action", hooks.DecisionRelease, "release, false_positive, or confirm (keep the suspension past its expiry)")
	alertID := fs.String("alert-id", "", "the alert the decision is about (optional)")
	var o overrides
	o.register(fs)
	var subject string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		subject, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if subject == "" && fs.NArg() > 0 {
		subject = fs.Arg(0)
	}
	switch {
	case subject == "":
		return fmt.Errorf("%w: name the SUBJECT to release", errUsage)
	case strings.TrimSpace(*reason) == "":
		return fmt.Errorf("%w: --reason TEXT is needed", errUsage)
	case strings.TrimSpace(*by) == "":
		return fmt.Errorf("%w: --by NAME is needed", errUsage)
	}
	cfg, err := resolveConfig(*configPath, &o)
	if err != nil {
		return err
	}
	if cfg.Hooks == nil {
		return fmt.Errorf("%w: the config has no hooks section (hooks.endpoints)", errUsage)
	}
	_, eps, err := cfg.Hooks.Resolve(cfg.Kafka.AlertsTopic)
	if err != nil {
		return fmt.Errorf("invalid configuration: %w", err)
	}
	env, err := openHooksEnv(ctx, cfg)
	if err != nil {
		return err
	}
	defer env.close()
	var rec hooks.Recorder
	var decs hooks.DecisionRecorder
	if cfg.ClickHouse.DSN != "" {
		r, d, closeRec, err := openRecorders(ctx, cfg, zap.NewNop())
		if err != nil {
			fmt.Fprintf(stderr, "cdrguard release: warning: decisions not recorded in ClickHouse: %v\n", err)
		} else {
			defer closeRec()
			rec, decs = r, d
		}
	}
	dr := hooks.DecisionRequest{Subject: subject, SubjectKind: *kind, Reason: *reason, By: *by, AlertID: *alertID, Action: *action}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var dec hooks.Decision
	if *action == hooks.DecisionConfirm {
		var cancelled []hooks.Request
		dec, cancelled, err = hooks.Confirm(ctx, env.log, env.hcfg, dr, hooks.SourceCLI, time.Now(), rec)
		if err == nil {
			fmt.Fprintf(stdout, "confirmed %s %s: %d expiry releases cancelled\n", dec.SubjectKind, dec.Subject, len(cancelled))
		}
	} else {
		var res hooks.ReleaseResult
		res, err = hooks.Release(ctx, env.log, env.hcfg, eps, dr, hooks.SourceCLI, time.Now(), rec)
		dec = res.Decision
		if err == nil {
			fmt.Fprintf(stdout, "%s %s %s: allowlisted; %d suspensions cancelled\n", dec.Action, dec.SubjectKind, dec.Subject, len(res.Cancelled))
			for _, q := range res.Requests {
				fmt.Fprintf(stdout, "release %s %s\n", q.ID, q.Endpoint)
			}
			for _, ep := range res.NoRelease {
				fmt.Fprintf(stdout, "warning: endpoint %s got a suspension but takes no releases (hooks.endpoints actions)\n", ep)
			}
		}
	}
	if fe, ok := errors.AsType[*hooks.FieldError](err); ok {
		flagName := map[string]string{"subject": "SUBJECT", "subject_kind": "--kind", "by": "--by", "reason": "--reason", "action": "--action", "alert_id": "--alert-id"}[fe.Field]
		return fmt.Errorf("%w: %s %s", errUsage, flagName, fe.Msg)
	}
	if err != nil {
		return err
	}
	if decs != nil {
		decs.Record(dec)
	}
	fmt.Fprintf(stdout, "decision %s\n", dec.ID)
	return nil
}
