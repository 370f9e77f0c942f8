package hooks

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func parseConfig(t *testing.T, text string) (Config, error) {
	t.Helper()
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(text)))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	return c, err
}

func TestConfigResolve(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "sps.secret")
	if err := os.WriteFile(secretFile, []byte(newSecretText(t)+"\n"+newSecretText(t)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CDRGUARD_TEST_HOOK_SECRET", newSecretText(t))
	good := `
endpoints:
  - name: sps
    url: https://sps.example/hooks/cdrguard
    secret_file: ` + secretFile + `
    actions: [suspend, release]
    min_severity: critical
    rules: [dialling_burst]
    subject_kinds: [caller]
    mode: enforce
    timeout: 15s
    retry_schedule: [5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h]
    budget: {requests: 50, per: 10m}
  - name: trial
    url: http://127.0.0.1:8080/x
    secret_env: CDRGUARD_TEST_HOOK_SECRET
    mode: shadow
`
	c, err := parseConfig(t, good)
	if err != nil {
		t.Fatal(err)
	}
	rc, eps, err := c.Resolve("cdr-alerts")
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 2 || len(eps[0].Secrets) != 2 || len(eps[1].Secrets) != 1 {
		t.Fatalf("endpoints %+v", eps)
	}
	if eps[0].Budget.Requests != 50 || eps[0].Budget.Per != 10*time.Minute || eps[0].Timeout != 15*time.Second {
		t.Errorf("endpoint 0: %+v", eps[0])
	}
	if eps[1].Timeout != 15*time.Second || len(eps[1].RetrySchedule) != 9 || len(eps[1].Actions) != 2 {
		t.Errorf("endpoint 1 defaults: %+v", eps[1])
	}
	if rc.RetryTopic != "cdr-alerts.hooks-retry" || rc.ParkedTopic != "cdr-alerts.hooks-parked" || rc.HeldTopic != "cdr-alerts.hooks-held" {
		t.Errorf("topics %s %s %s", rc.RetryTopic, rc.ParkedTopic, rc.HeldTopic)
	}
	var total time.Duration
	for _, d := range DefaultRetrySchedule {
		total += d
	}
	if total < 72*time.Hour || total > 80*time.Hour {
		t.Errorf("default schedule spans %v, want about three days", total)
	}

	base := "endpoints:\n  - name: sps\n    url: https://sps.example/h\n    secret_env: CDRGUARD_TEST_HOOK_SECRET\n"
	f := func(extra, wantErr string) {
		t.Helper()
		c, err := parseConfig(t, extra)
		if err == nil {
			_, _, err = c.Resolve("cdr-alerts")
		}
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("config\n%s\nerror %v, want %q", extra, err, wantErr)
		}
	}
	f("endpoints: []", "hooks.endpoints: at least one")
	f(base+"    colour: red\n", "field colour not found")
	f(strings.Replace(base, "name: sps", "name: 'a b'", 1), `hooks.endpoints[0].name "a b"`)
	f(strings.Replace(base, "https://sps.example/h", "ftp://x", 1), `hooks.endpoints[0].url "ftp://x"`)
	f(strings.Replace(base, "https://sps.example/h", "https://u:p@x/", 1), `hooks.endpoints[0].url must not hold credentials`)
	f(base+"    actions: [suspend, block]\n", `hooks.endpoints[0].actions[1] "block"`)
	f(base+"    min_severity: fatal\n", `hooks.endpoints[0].min_severity: severity "fatal"`)
	f(base+"    rules: ['']\n", `hooks.endpoints[0].rules[0] is empty`)
	f(base+"    subject_kinds: [cell]\n", `hooks.endpoints[0].subject_kinds[0]`)
	f(base+"    mode: dry\n", `hooks.endpoints[0].mode "dry"`)
	f(base+"    timeout: 10m\n", `hooks.endpoints[0].timeout 10m0s`)
	f(base+"    retry_schedule: [5s, 0s]\n", `hooks.endpoints[0].retry_schedule[1] 0s`)
	f(base+"    budget: {requests: 0, per: 10m}\n", `hooks.endpoints[0].budget.requests 0`)
	f(base+"    budget: {requests: 5}\n", `hooks.endpoints[0].budget.per 0s`)
	f(base+"    secret_file: /nonexistent\n", `hooks.endpoints[0]: set secret_file or secret_env, not both`)
	f(strings.Replace(base, "secret_env: CDRGUARD_TEST_HOOK_SECRET", "secret_file: /nonexistent/x", 1), `hooks.endpoints[0].secret_file: open /nonexistent/x`)
	f(strings.Replace(base, "CDRGUARD_TEST_HOOK_SECRET", "CDRGUARD_TEST_NO_SUCH", 1), `hooks.endpoints[0].secret_env: $CDRGUARD_TEST_NO_SUCH is not set`)
	f(strings.Replace(base, "    secret_env: CDRGUARD_TEST_HOOK_SECRET\n", "", 1), `hooks.endpoints[0]: secret_file or secret_env is needed`)
	f(base+strings.Replace(base, "endpoints:\n", "", 1), `hooks.endpoints[1].name "sps" is used twice`)
	f(base+"protected:\n  numbers: [abc]\n", `hooks.protected.numbers[0] "abc"`)
	f(base+"protected:\n  prefixes: ['+44x']\n", `hooks.protected.prefixes[0] "+44x"`)
	f(base+"workers: 0\nqueue_size: -1\n", `hooks.queue_size -1`)
	f(base+"breaker: {failures: -1}\n", `hooks.breaker.failures -1`)

	t.Setenv("CDRGUARD_TEST_BAD_SECRET", "whsec_c2hvcnQ=")
	f(strings.Replace(base, "CDRGUARD_TEST_HOOK_SECRET", "CDRGUARD_TEST_BAD_SECRET", 1), `hooks.endpoints[0].secret_env: line 1: secret key is 5 bytes`)
}
