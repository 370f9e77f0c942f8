package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

func TestDefaultRulesLoad(t *testing.T) {
	set, err := Load("../../deploy/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() < 8 {
		t.Fatalf("%d rules", set.Len())
	}
	kinds := map[schemas.SubjectKind]bool{}
	for _, r := range set.Rules() {
		kinds[r.Kind] = true
		for _, l := range r.Levels {
			if l.MinCalls < 1 {
				t.Fatalf("rule %s has no volume gate", r.Name)
			}
		}
	}
	for _, k := range []schemas.SubjectKind{schemas.SubjectCaller, schemas.SubjectTrunk, schemas.SubjectIMEI, schemas.SubjectIMSI, schemas.SubjectSourceIP} {
		if !kinds[k] {
			t.Errorf("no default rule watches %v", k)
		}
	}
	if !set.Allowlist.Exempt(schemas.SubjectCaller, "+18005550100") {
		t.Error("the default allowlist does not exempt the bulk notifier prefix")
	}
}

func TestConditionsEvaluate(t *testing.T) {
	set, err := Parse([]byte(`
rules:
  - name: burst
    key: caller
    window: 1h
    when: calls >= 30 && short_ratio > 0.75
    severity: warning
    cooldown: 6h
    score: short_calls * 2
    escalate:
      - when: calls > 99.5 && short_ratio > 0.8
        severity: critical
        action: suspend
`), "inline")
	if err != nil {
		t.Fatal(err)
	}
	r := set.Rules()[0]
	if r.Kind != schemas.SubjectCaller || r.Window != time.Hour || r.Cooldown != 6*time.Hour {
		t.Fatalf("rule %+v", r)
	}
	if r.Levels[0].MinCalls != 30 || r.Levels[1].MinCalls != 100 {
		t.Fatalf("derived gates %d, %d; want 30 and 100", r.Levels[0].MinCalls, r.Levels[1].MinCalls)
	}
	if r.Levels[0].Action != schemas.ActionAlert || r.Levels[1].Action != schemas.ActionSuspend {
		t.Fatalf("actions %v %v", r.Levels[0].Action, r.Levels[1].Action)
	}
	m := &schemas.Metrics{Calls: 40, ShortCalls: 36, ShortRatio: 0.9}
	if ok, err := r.Levels[0].When.Match(m); err != nil || !ok {
		t.Fatalf("match = %v, %v", ok, err)
	}
	m.ShortRatio = 0.5
	if ok, _ := r.Levels[0].When.Match(m); ok {
		t.Fatal("matched with short_ratio 0.5")
	}
	if s, err := r.Score.Score(m); err != nil || s != 72 {
		t.Fatalf("score = %v, %v; want 72", s, err)
	}
}

func TestBadRulesFiles(t *testing.T) {
	f := func(yaml, want string) {
		t.Helper()
		_, err := Parse([]byte(yaml), "bad.yaml")
		if err == nil {
			t.Fatalf("no error for:\n%s", yaml)
		}
		if !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "rules file bad.yaml: ") {
			t.Fatalf("error %q, want one naming the file and containing %q", err, want)
		}
	}
	const ok = "    key: caller\n    window: 1h\n    when: calls >= 10\n    severity: warning\n    cooldown: 1h\n"
	f("", "empty file")
	f("rules: []\n", "no rules")
	f("rulez: []\n", "field rulez not found")
	f("rules:\n  - name: a\n"+ok+"  - name: a\n"+ok, `rule "a" (line 8): name already used by the rule at line 2`)
	f("rules:\n  - name: a\n    key: caller\n    window: 1h\n    when: calls >= 10\n    severity: warning\n    cooldown: 1h\n    colour: red\n", "field colour not found")
	f("rules:\n  - key: caller\n    window: 1h\n    when: calls >= 10\n    severity: warning\n    cooldown: 1h\n", "rule 1 (line 2): missing name")
	f("rules:\n  - name: a\n    key: phone\n    window: 1h\n    when: calls >= 10\n    severity: warning\n    cooldown: 1h\n", `rule "a" (line 2): key: subject kind "phone"`)
	f("rules:\n  - name: a\n    key: caller\n    window: 1 hour\n    when: calls >= 10\n    severity: warning\n    cooldown: 1h\n", `window: "1 hour" is not a duration`)
	f("rules:\n  - name: a\n    key: caller\n    window: 1h\n    when: calls >= 10 && colour == 1\n    severity: warning\n    cooldown: 1h\n", "when: unknown name colour")
	f("rules:\n  - name: a\n    key: caller\n    window: 1h\n    when: calls + 1\n    severity: warning\n    cooldown: 1h\n", "when:")
	f("rules:\n  - name: a\n    key: caller\n    window: 1h\n    when: short_ratio > 0.5\n    severity: warning\n    cooldown: 1h\n", "no volume gate")
	f("rules:\n  - name: a\n    key: caller\n    window: 1h\n    when: calls >= 10\n    severity: severe\n    cooldown: 1h\n", `severity "severe"`)
	f("rules:\n  - name: a\n    key: caller\n    window: 1h\n    when: calls >= 10\n    severity: warning\n    action: block\n    cooldown: 1h\n", `action "block"`)
	f("rules:\n  - name: a\n    key: caller\n    window: 1h\n    when: calls >= 10\n    severity: warning\n", "missing cooldown")
	f("rules:\n  - name: a\n"+ok+"    escalate:\n      - when: calls >= 50\n        severity: info\n", "escalate[0]: severity info must be higher than warning")
	f("allowlist:\n  numbers: [\"hello\"]\nrules:\n  - name: a\n"+ok, `allowlist: "hello" is not an E.164 number`)
	f("rules:\n  - name: a\n"+ok+"    suspend_for: 24h\n", `rule "a" (line 2): suspend_for needs action suspend`)
	f("rules:\n  - name: a\n"+ok+"    action: suspend\n    suspend_for: soon\n", `suspend_for "soon" must be a positive duration`)
}

func TestSuspendFor(t *testing.T) {
	const ok = "    key: caller\n    window: 1h\n    when: calls >= 10\n    severity: warning\n    cooldown: 1h\n"
	set, err := Parse([]byte("rules:\n  - name: a\n"+ok+"    action: suspend\n    suspend_for: 1d\n  - name: b\n"+ok), "x.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := set.SuspendFor("a"); got != 24*time.Hour {
		t.Errorf("a: %v", got)
	}
	if got := set.SuspendFor("b"); got != 0 {
		t.Errorf("b: %v", got)
	}
}

func TestCheckNamesFileRuleAndWindows(t *testing.T) {
	set, err := Parse([]byte(`
rules:
  - name: hourly
    key: caller
    window: 1h
    when: calls >= 10
    severity: warning
    cooldown: 1h
  - name: daily
    key: trunk
    window: 24h
    when: calls >= 1000
    severity: warning
    cooldown: 6h
`), "carrier.yaml")
	if err != nil {
		t.Fatal(err)
	}
	short := []detectors.Window{{Size: 5 * time.Minute, Buckets: 5}, {Size: time.Hour, Buckets: 12}}
	for _, tc := range []struct {
		name string
		cfg  detectors.Config
		want string // "" for no error
	}{
		{"default windows", detectors.Config{}, ""},
		{"sources only: kinds are not checked", detectors.Config{Kinds: []schemas.SubjectKind{schemas.SubjectTrunk}}, ""},
		{"window not configured", detectors.Config{Windows: short},
			`rules file carrier.yaml: line 9: rule "daily": window 24h is not one of the configured windows 5m, 1h`},
		{"bad configuration is not the file's fault", detectors.Config{Windows: short, CallerFloor: -1},
			"invalid detector config: caller_floor -1 must be at least 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := set.Check(tc.cfg)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
				t.Fatalf("Check: %v, want %q", err, tc.want)
			}
		})
	}
}
