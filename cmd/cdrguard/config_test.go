package main

import (
	"github.com/cdrguard/cdrguard/detectors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "run.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigFileOverridesDefaults(t *testing.T) {
	cfg, err := loadRunConfig(writeConfig(t, `
kafka:
  brokers: ["k1:9092", "k2:9092"]
  topic: mediation.cdrs
  sasl: {mechanism: SCRAM-SHA-512, username: cdrguard, password: s3cret}
detect:
  lateness: 5m
  windows: [{size: 10m, buckets: 10}, {size: 1h, buckets: 12}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Topic != "mediation.cdrs" || len(cfg.Kafka.Brokers) != 2 || cfg.Kafka.Group != "cdrguard" {
		t.Fatalf("kafka %+v", cfg.Kafka)
	}
	if cfg.Detect.Lateness != 5*time.Minute || cfg.Detect.ShortCallS != 10 || len(cfg.detectorConfig().Windows) != 2 {
		t.Fatalf("detect %+v", cfg.Detect)
	}
	if r := cfg.Kafka.Conn.Redacted(); strings.Contains(r, "s3cret") || !strings.Contains(r, "SCRAM-SHA-512 as cdrguard") {
		t.Fatalf("redacted connection %q", r)
	}
	o := overrides{brokers: "k9:9092", topic: "other", rules: "r.yaml", metrics: "off"}
	o.apply(&cfg)
	if cfg.Kafka.Brokers[0] != "k9:9092" || cfg.Kafka.Topic != "other" || cfg.Detect.Rules != "r.yaml" || cfg.Metrics.Listen != "" {
		t.Fatalf("overrides not applied: %+v", cfg)
	}
}

func TestBadConfigs(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		cfg, err := loadRunConfig(writeConfig(t, body))
		if err == nil {
			err = cfg.validate()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("config:\n%s\nerror %v, want one containing %q", body, err, want)
		}
	}
	f("kafka:\n  topik: cdrs\n", "line 2: kafka.topik is not a setting")
	f("kafka:\n  brokers: [localhost]\n", `kafka.brokers[0] "localhost" is not host:port`)
	f("kafka:\n  brokers: []\n", "kafka.brokers: at least one broker")
	f("kafka:\n  group: \"\"\n", "kafka.group is empty")
	f("kafka:\n  sasl: {mechanism: GSSAPI, username: u}\n", `kafka.sasl.mechanism "GSSAPI"`)
	f("kafka:\n  sasl: {mechanism: PLAIN}\n", "kafka.sasl.username is empty")
	f("kafka:\n  tls: {enabled: true, cert_file: c.pem}\n", "cert_file and key_file go together")
	f("kafka:\n  commit_interval: 0s\n", "kafka.commit_interval 0s must be positive")
	f("kafka:\n  commit_interval: soon\n", `line 2: kafka.commit_interval: "soon" is not a duration (for example 30s or 5m)`)
	f("detect:\n  windows: [{size: 5m, buckets: many}]\n", `line 2: detect.windows[0].buckets: "many" is not a whole number`)
	f("detect: [1, 2]\n", "line 1: detect: a list where a section (key: value lines) is expected")
	f("clickhouse:\n  store_cdrs: maybe\n", `clickhouse.store_cdrs: "maybe" is not true or false`)
	f("kafka:\n  max_in_flight: 0\n", "kafka.max_in_flight 0")
	f("input:\n  country_code: \"+44\"\n", `input.country_code "+44" must be digits`)
	f("input:\n  max_record_bytes: 10\n", "input.max_record_bytes 10")
	f("detect:\n  short_call_s: -1\n", "short_call_s -1")
	f("detect:\n  end_lateness: 11m\n", "detect: end_lateness 11m0s must be whole seconds between 0 and the lateness 10m0s")
	f("detect:\n  end_lateness: -5s\n", "detect.end_lateness -5s must not be negative")
	f("detect:\n  end_order: soon\n", `detect.end_order: "soon" is not true or false`)
	f("detect:\n  dedup_horizon: 30s\n", "detect: dedup_horizon 30s must be whole seconds and at least 1m")
	f("detect:\n  dedup_horizon: 25h\n", "detect: dedup_horizon 25h0m0s must not be longer than the longest window 24h0m0s")
	f("detect:\n  dedup_horizon: -1m\n", "detect.dedup_horizon -1m0s must not be negative")
	f("detect:\n  windows: [{size: 45s, buckets: 10}]\n", "windows[0].size 45s")
	f("clickhouse:\n  store_cdrs: true\n", "need clickhouse.dsn")
	f("clickhouse:\n  dsn: clickhouse://x:9000/db\n  pseudonymize_callees: true\n", "pseudonym_key_file")
	f("log:\n  level: loud\n", `log.level "loud"`)
	f("shutdown_timeout: -1s\n", "shutdown_timeout -1s must be positive")
}

func TestRunRefusesBadConfigBeforeConnecting(t *testing.T) {
	code, _, stderr := cli(t, "run", "--config", writeConfig(t, "kafka:\n  brokers: [nope]\n"))
	if code != 1 || !strings.Contains(stderr, "invalid configuration") || !strings.Contains(stderr, `"nope" is not host:port`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// A rule naming a window the configuration does not define stops run at
// start, before anything connects (the broker here does not exist), with
// the file, the rule and the window in the message.
func TestRunRefusesRuleWithUnknownWindow(t *testing.T) {
	rulesPath := filepath.Join(t.TempDir(), "carrier.yaml")
	if err := os.WriteFile(rulesPath, []byte(`rules:
  - name: daily_burst
    key: caller
    window: 24h
    when: calls >= 100
    severity: warning
    action: alert
    cooldown: 6h
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, "kafka:\n  brokers: [\"127.0.0.1:1\"]\ndetect:\n  rules: "+rulesPath+"\n  windows: [{size: 5m, buckets: 10}, {size: 1h, buckets: 12}]\n")
	start := time.Now()
	code, _, stderr := cli(t, "run", "--config", cfg)
	if code != 1 || !strings.Contains(stderr, "carrier.yaml") || !strings.Contains(stderr, `"daily_burst"`) || !strings.Contains(stderr, "24h") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v to refuse the rules: it must not wait for the broker", took)
	}
}

// Brokers that cannot be reached at start: a bounded wait, then an exit
// with a message naming them and the key.
func TestRunGivesUpOnUnreachableBrokers(t *testing.T) {
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("CDRGUARD_TEST_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	cfg := writeConfig(t, "kafka:\n  brokers: [\"127.0.0.1:1\"]\n  connect_timeout: 2s\ndetect:\n  rules: "+rules+
		"\nclickhouse:\n  dsn: clickhouse://127.0.0.1:1/x\nhooks:\n  endpoints:\n    - name: sps\n      url: http://127.0.0.1:9/h\n      secret_env: CDRGUARD_TEST_SECRET\nmetrics:\n  listen: \"off\"\n")
	for _, cmd := range []string{"run", "load", "hooks"} {
		start := time.Now()
		code, _, stderr := cli(t, cmd, "--config", cfg)
		took := time.Since(start)
		if code != 1 || !strings.Contains(stderr, "kafka.brokers 127.0.0.1:1 unreachable for 2s (kafka.connect_timeout)") {
			t.Fatalf("%s: exit %d after %v, stderr %q", cmd, code, took, stderr)
		}
		if took < 2*time.Second || took > 20*time.Second {
			t.Errorf("%s gave up after %v, want about the 2s connect timeout", cmd, took)
		}
	}
}

// config check validates without connecting and prints the effective
// configuration, which loads again to the same settings, with every
// secret redacted.
func TestConfigCheckPrintsEffectiveConfigRedacted(t *testing.T) {
	rules, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, `kafka:
  brokers: ["k1:9092", "k2:9092"]
  sasl: {mechanism: SCRAM-SHA-512, username: cdrguard, password: hunter2}
  session_timeout: 15s
clickhouse:
  dsn: clickhouse://fraud:s3cr3t@ch:9000/cdrguard
  password: also-secret
detect:
  rules: `+rules+`
  lateness: 5m
`)
	code, out, stderr := cli(t, "config", "check", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, secret := range []string{"hunter2", "s3cr3t", "also-secret"} {
		if strings.Contains(out+stderr, secret) {
			t.Errorf("config check printed the secret %q", secret)
		}
	}
	if !strings.Contains(out, "lateness: 5m") || !strings.Contains(out, "session_timeout: 15s") || !strings.Contains(out, "short_call_s: 10") {
		t.Errorf("effective configuration lacks the file's settings or the defaults:\n%s", out)
	}
	again, err := loadRunConfig(writeConfig(t, out))
	if err != nil {
		t.Fatalf("the printed configuration does not load: %v\n%s", err, out)
	}
	want, _ := loadRunConfig(path)
	want.Kafka.SASL.Password, want.ClickHouse.Password = redacted, redacted
	want.ClickHouse.DSN = "clickhouse://fraud:" + redacted + "@ch:9000/cdrguard"
	if !reflect.DeepEqual(again, want) {
		t.Errorf("printed configuration loads to\n%+v\nwant\n%+v", again, want)
	}
	// A bad one names the key, without connecting.
	code, _, stderr = cli(t, "config", "check", writeConfig(t, "kafka:\n  max_batch: 0\n"))
	if code == 0 || !strings.Contains(stderr, "kafka.max_batch 0") {
		t.Errorf("bad config: exit %d, %q", code, stderr)
	}
}

// A bad hooks or console section stops every command that runs them
// before anything connects, naming the key; replay ignores them.
func TestOptionalSectionsCheckedAtStart(t *testing.T) {
	bad := writeConfig(t, "kafka:\n  brokers: [\"127.0.0.1:1\"]\nhooks:\n  endpoints:\n    - name: sps\n      url: ftp://x\n      secret_env: NOPE\n")
	start := time.Now()
	code, _, stderr := cli(t, "run", "--config", bad)
	if code == 0 || !strings.Contains(stderr, "hooks.endpoints[0].url") {
		t.Fatalf("run with a bad hooks section: exit %d, %q", code, stderr)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("run waited for the brokers before refusing the hooks section")
	}
	if code, _, stderr := cli(t, "config", "check", bad); code == 0 || !strings.Contains(stderr, "hooks.endpoints[0].url") {
		t.Fatalf("config check: exit %d, %q", code, stderr)
	}
	dir := t.TempDir()
	day := filepath.Join(dir, "day.jsonl")
	if code, _, stderr := cli(t, "gen", "--scale", "0.01", "--out", day); code != 0 {
		t.Fatal(stderr)
	}
	if code, _, stderr := cli(t, "replay", "--config", bad, day); code != 0 {
		t.Fatalf("replay --config with a hooks section it does not use: exit %d, %q", code, stderr)
	}
}

// The detect section's order and dedup settings reach the engine; those
// left out are derived from the lateness and windows as the engine
// derives them.
func TestDetectOrderAndDedupSettings(t *testing.T) {
	f := func(body string, want detectors.Config) {
		t.Helper()
		cfg, err := loadRunConfig(writeConfig(t, body))
		if err == nil {
			err = cfg.validate()
		}
		if err != nil {
			t.Fatalf("config:\n%s\n%v", body, err)
		}
		got := cfg.detectorConfig()
		if got.StartOrder != want.StartOrder || got.EndLateness != want.EndLateness || got.DedupHorizon != want.DedupHorizon {
			t.Fatalf("config:\n%s\nstart order %v, end lateness %v, dedup horizon %v; want %v %v %v", body,
				got.StartOrder, got.EndLateness, got.DedupHorizon, want.StartOrder, want.EndLateness, want.DedupHorizon)
		}
	}
	d := detectors.DefaultConfig()
	f("detect: {}\n", detectors.Config{EndLateness: d.EndLateness, DedupHorizon: d.DedupHorizon})
	f("detect:\n  lateness: 20m\n", detectors.Config{EndLateness: 75 * time.Second, DedupHorizon: 80 * time.Minute})
	f("detect:\n  lateness: 1m\n", detectors.Config{EndLateness: time.Minute, DedupHorizon: 61 * time.Minute})
	f("detect:\n  windows: [{size: 5m, buckets: 10}, {size: 1h, buckets: 12}]\n", detectors.Config{EndLateness: 75 * time.Second, DedupHorizon: time.Hour})
	f("detect:\n  end_order: false\n  end_lateness: 2m\n  dedup_horizon: 0s\n", detectors.Config{StartOrder: true, EndLateness: 2 * time.Minute, DedupHorizon: -1})
}
