package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

const rulesFile = "../../deploy/rules.yaml"

// cli runs the command line and returns its exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func readJSONLines[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	return out
}

func readCDRs(t *testing.T, path string) []schemas.CDR {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec, err := schemas.NewDecoder("jsonl", f, schemas.DecodeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []schemas.CDR
	var c schemas.CDR
	for {
		if err := dec.Decode(&c); err != nil {
			if err.Error() == "EOF" {
				return out
			}
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, c.Clone())
	}
}

// TestReplayOfGeneratedDayAgainstTruth backtests the default rules on a
// generated carrier day, the way a fraud team would before switching them
// on, and holds them to the figures the team asks for.
func TestReplayOfGeneratedDayAgainstTruth(t *testing.T) {
	dir := t.TempDir()
	day := filepath.Join(dir, "day.jsonl")
	alertsPath := filepath.Join(dir, "alerts.jsonl")
	if code, _, stderr := cli(t, "gen", "--seed", "42", "--out", day); code != 0 {
		t.Fatalf("gen exited %d: %s", code, stderr)
	}
	code, stdout, stderr := cli(t, "replay", "--rules", rulesFile, "--out", alertsPath, day)
	if code != 0 {
		t.Fatalf("replay exited %d: %s", code, stderr)
	}
	if stdout != "" {
		t.Fatalf("replay with --out wrote to stdout: %.200s", stdout)
	}
	for _, want := range []string{"records read:", "alerts:", "call_shop_agent", "top subjects"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}

	labels := readJSONLines[synth.Label](t, day+".labels.jsonl")
	alerts := readJSONLines[schemas.Alert](t, alertsPath)
	recs := readCDRs(t, day)
	rep := synth.Evaluate(labels, recs, alerts)
	var report bytes.Buffer
	rep.Print(&report)
	t.Logf("\n%s", report.String())

	if rep.Precision < 0.99 {
		t.Errorf("caller-level precision %.4f, want >= 0.99", rep.Precision)
	}
	if rep.Recall < 0.98 {
		t.Errorf("caller-level recall %.4f, want >= 0.98", rep.Recall)
	}
	for _, c := range []synth.Class{synth.Courier, synth.Switchboard, synth.CallCentre, synth.BulkNotifier, synth.Enterprise, synth.CallbackDesk} {
		if n := len(rep.LegitFlagged[c]); n > 0 {
			t.Errorf("%d %s numbers flagged, e.g. %s", n, c, rep.LegitFlagged[c][0])
		}
	}
	if rep.SparedRatio < 0.93 {
		t.Errorf("only %.2f%% of robo-dialers' calls came after their first alert, want >= 93%%", 100*rep.SparedRatio)
	}
	// Every dialer pool's trunks and addresses and every SIM box's
	// handsets are flagged; no legitimate source, labelled or not (an
	// ordinary subscriber's handset), is.
	must := map[synth.Class]int{}
	for _, s := range rep.Sources {
		switch s.Class {
		case synth.AIPool, synth.SpreadPool, synth.SIMRotation, synth.SIMBox:
			must[s.Class]++
			if !s.Flagged {
				t.Errorf("%s source %s %s not flagged", s.Class, s.Kind, s.Subject)
			}
		}
		if !s.Robo && s.Flagged {
			t.Errorf("legitimate source %s %s (%s) flagged", s.Kind, s.Subject, s.Class)
		}
	}
	for _, c := range []synth.Class{synth.AIPool, synth.SpreadPool, synth.SIMRotation, synth.SIMBox} {
		if must[c] == 0 {
			t.Errorf("the generated day has no %s source", c)
		}
	}
	if len(rep.UnlabelledSources) > 0 {
		t.Errorf("%d sources outside the truth flagged, e.g. %s", len(rep.UnlabelledSources), rep.UnlabelledSources[0])
	}
	seen := map[string]bool{}
	for _, a := range alerts {
		if seen[a.AlertID] {
			t.Errorf("alert ID %s raised twice", a.AlertID)
		}
		seen[a.AlertID] = true
	}

	// What replay wrote (decoded in batches on another goroutine, strings
	// copied into arenas, alerts encoded as JSON) is, to the last figure,
	// what the engine raises over the same records handed to it directly.
	got, want := alertLines(t, alerts), alertLines(t, kafkatest.Replay(t, rulesFile, recs))
	if !slices.Equal(got, want) {
		t.Errorf("replay wrote %d alerts, the engine raises %d; they differ", len(got), len(want))
		for i := range min(len(got), len(want)) {
			if got[i] != want[i] {
				t.Errorf("first difference:\n replay: %s\n engine: %s", got[i], want[i])
				break
			}
		}
	}
}

// alertLines returns alerts as sorted JSON lines.
func alertLines(t *testing.T, alerts []schemas.Alert) []string {
	t.Helper()
	out := make([]string, len(alerts))
	for i := range alerts {
		b, err := alerts[i].AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = string(b)
	}
	slices.Sort(out)
	return out
}

func TestReplayCountsRejectsAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "mixed.jsonl")
	good := `{"caller":"+15550100001","callee":"+15550100002","start_time":"2026-11-02T09:00:00Z","disposition":"answered","duration_s":30}`
	lines := []string{good, `{"caller":"+15550100001",`, `{"callee":"+15550100002","start_time":"2026-11-02T09:00:00Z"}`,
		`{"caller":"+15550100001","callee":"+15550100002","start_time":"9999-01-01T00:00:00Z"}`,
		`{"caller":"+15550100001","callee":"+15550100002","start_time":"2026-11-02T09:00:00Z","trunk":"t-` + "\xff" + `"}`,
		`{"caller":"+15550100001","callee":"+15550100002","start_time":"2026-11-02T09:00:00Z","trunk":"\ud800"}`, good}
	if err := os.WriteFile(in, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := cli(t, "replay", "--rules", rulesFile, in)
	if code != 0 {
		t.Fatalf("replay exited %d: %s", code, stderr)
	}
	for _, want := range []string{"records read:   7 (5 rejected)", "malformed JSON", "field caller: missing", "field start_time", "line 3",
		"      2  field trunk: invalid UTF-8"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("summary lacks %q:\n%s", want, stderr)
		}
	}
}

func TestReplayFailsOnUnreadableInput(t *testing.T) {
	code, _, stderr := cli(t, "replay", "--rules", rulesFile, filepath.Join(t.TempDir(), "missing.jsonl"))
	if code == 0 || !strings.Contains(stderr, "cannot read input") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = cli(t, "replay", "--rules", "nope.yaml", "x")
	if code == 0 || !strings.Contains(stderr, "cannot read rules file") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	code, _, stderr = cli(t, "replay", "--format", "xml", "--rules", rulesFile, rulesFile)
	if code != 2 || !strings.Contains(stderr, `unknown format "xml"`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestHelpForEachCommand(t *testing.T) {
	for _, c := range commands() {
		code, _, stderr := cli(t, c.name, "--help")
		if c.name == "version" {
			continue
		}
		if code != 0 || !strings.Contains(stderr, "Usage: cdrguard "+c.name) {
			t.Errorf("%s --help: exit %d, %q", c.name, code, stderr)
		}
	}
}

// replay --config runs a backtest with the live job's detection settings:
// the config's lateness and windows give the same alerts as the flags,
// and other alerts than the defaults.
func TestReplayUsesTheRunConfig(t *testing.T) {
	dir := t.TempDir()
	day := filepath.Join(dir, "day.jsonl")
	if code, _, stderr := cli(t, "gen", "--seed", "4", "--scale", "0.05", "--out", day); code != 0 {
		t.Fatalf("gen: exit %d: %s", code, stderr)
	}
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "detect:\n  rules: "+rules+"\n  lateness: 2m\n  short_call_s: 6\n")
	code, fromConfig, stderr := cli(t, "replay", "--config", cfg, day)
	if code != 0 {
		t.Fatalf("replay --config: exit %d: %s", code, stderr)
	}
	code, fromFlags, stderr := cli(t, "replay", "--rules", rules, "--lateness", "2m", "--short-call-s", "6", day)
	if code != 0 {
		t.Fatalf("replay with flags: exit %d: %s", code, stderr)
	}
	_, defaults, _ := cli(t, "replay", "--rules", rules, day)
	if fromConfig == "" || fromConfig != fromFlags {
		t.Fatalf("replay --config and the same settings as flags differ (%d and %d bytes of alerts)", len(fromConfig), len(fromFlags))
	}
	if fromConfig == defaults {
		t.Fatal("the config's detection settings changed nothing")
	}
	// A flag wins over the config.
	_, flagOverConfig, _ := cli(t, "replay", "--config", cfg, "--lateness", "10m", "--short-call-s", "10", day)
	if flagOverConfig != defaults {
		t.Fatal("flags did not override the config's settings")
	}
}

// The default rules are in the binary: replay works from any directory,
// rules print shows them, rules check validates a file.
func TestDefaultRulesAreBuiltIn(t *testing.T) {
	dir := t.TempDir()
	day := filepath.Join(dir, "day.jsonl")
	if code, _, stderr := cli(t, "gen", "--seed", "2", "--scale", "0.02", "--out", day); code != 0 {
		t.Fatalf("gen: exit %d: %s", code, stderr)
	}
	want, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	rules, _ := filepath.Abs(rulesFile)
	_, withFile, _ := cli(t, "replay", "--rules", rules, day)
	t.Chdir(dir) // no deploy/rules.yaml here
	code, builtIn, stderr := cli(t, "replay", day)
	if code != 0 || builtIn == "" || builtIn != withFile {
		t.Fatalf("replay outside the repository: exit %d, %d bytes of alerts (want the %d the rules file gives): %s", code, len(builtIn), len(withFile), stderr)
	}
	if code, out, _ := cli(t, "rules", "print"); code != 0 || out != string(want) {
		t.Fatalf("rules print: exit %d, %d bytes; want deploy/rules.yaml (%d bytes)", code, len(out), len(want))
	}
	if code, out, stderr := cli(t, "rules", "check", rules); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("rules check of the default rules: exit %d %q %q", code, out, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("rules:\n  - name: x\n    key: caller\n    window: 7m\n    when: calls > 1\n    severity: info\n    action: alert\n    cooldown: 1h\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cli(t, "rules", "check", bad); code == 0 || !strings.Contains(stderr, `rule "x"`) || !strings.Contains(stderr, "7m") {
		t.Fatalf("rules check of a rule with an unknown window: exit %d %q", code, stderr)
	}
}
