package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
)

// hooksConfig writes a config with a hooks section on the test broker.
func hooksConfig(t *testing.T, brokers []string, alerts, extra string) string {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "sps.secret")
	if err := os.WriteFile(secret, []byte("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, fmt.Sprintf(`kafka:
  brokers: [%q]
  alerts_topic: %s
  group: %s
detect:
  rules: %s
hooks:
  endpoints:
    - name: sps
      url: http://127.0.0.1:1/hooks
      secret_file: %s
%s`, brokers[0], alerts, alerts+"-g", abs, secret, extra))
}

func hcli(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestHooksCLIUsage: exit code 2 and a message naming what is missing,
// without a broker.
func TestHooksCLIUsage(t *testing.T) {
	noHooks := writeConfig(t, "kafka:\n  topic: cdrs\n")
	f := func(want string, args ...string) {
		t.Helper()
		code, _, stderr := hcli(args...)
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", args, code, stderr, want)
		}
	}
	f("name the SUBJECT", "release", "--reason", "x", "--by", "ana")
	f("--reason TEXT is needed", "release", "+15550100001", "--by", "ana")
	f("--by NAME is needed", "release", "+15550100001", "--reason", "x")
	f("no hooks section (hooks.endpoints)", "release", "+15550100001", "--reason", "x", "--by", "ana", "--config", noHooks)
	f("no hooks section", "hooks", "held", "--config", noHooks)
	f("unknown hooks subcommand", "hooks", "frobnicate")
	bad := writeConfig(t, "hooks:\n  api: {listen: \"0.0.0.0:8086\", tokens_file: /x}\n  endpoints: [{name: a, url: \"http://x\", secret_env: NOPE_NOT_SET}]\n")
	code, _, stderr := hcli("hooks", "held", "--config", bad)
	if code != 1 || !strings.Contains(stderr, "hooks.api.listen") {
		t.Errorf("bad api: exit %d, %q", code, stderr)
	}
}

// TestHooksCLIOnKafka: release, held, parked, approve, reject,
// redeliver and enable against the real broker.
func TestHooksCLIOnKafka(t *testing.T) {
	kc := kafkatest.Client(t)
	alerts := kafkatest.Name(t, "alerts")
	cfg := hooksConfig(t, kafkatest.Brokers(t), alerts, "")
	code, out, stderr := hcli("release", "+15550100001", "--reason", "customer called", "--by", "ana", "--config", cfg)
	if code != 0 || !strings.Contains(out, "allowlisted") || !strings.Contains(out, "decision dec_") {
		t.Fatalf("release: exit %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = hcli("release", "--kind", "nope", "--reason", "x", "--by", "ana", "--config", cfg, "+15550100001")
	if code != 2 || !strings.Contains(stderr, "--kind") {
		t.Errorf("bad kind: exit %d %q %q", code, out, stderr)
	}
	code, out, _ = hcli("release", "+15550100001", "--action", "confirm", "--reason", "robo", "--by", "bo", "--config", cfg)
	if code != 0 || !strings.Contains(out, "confirmed caller +15550100001") {
		t.Errorf("confirm: exit %d %q", code, out)
	}
	for _, sub := range []string{"held", "parked"} {
		code, out, stderr := hcli("hooks", sub, "--config", cfg)
		if code != 0 || !strings.HasPrefix(out, "WEBHOOK-ID") {
			t.Errorf("hooks %s: exit %d %q %q", sub, code, out, stderr)
		}
	}
	// A held request, approved; another rejected; a parked one redelivered.
	l := hooks.NewKafkaLog(kc)
	defer l.Close()
	ctx := context.Background()
	for topic, id := range map[string]string{alerts + ".hooks-held": "msg_h1", alerts + ".hooks-parked": "msg_p1"} {
		r := hooks.Request{ID: id, Endpoint: "sps", Action: "suspend", Subject: "+15550100002", SubjectKind: "caller", Body: []byte("{}")}
		if err := l.Produce(ctx, hooks.Message{Topic: topic, Key: []byte(id), Value: r.Encode()}); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, _ := hcli("hooks", "held", "--config", cfg); code != 0 || !strings.Contains(out, "msg_h1") {
		t.Errorf("held: %d %q", code, out)
	}
	if code, _, stderr := hcli("hooks", "approve", "--config", cfg, "msg_nope"); code != 1 || !strings.Contains(stderr, "no request msg_nope") {
		t.Errorf("approve unknown: %d %q", code, stderr)
	}
	if code, out, _ := hcli("hooks", "approve", "--config", cfg, "msg_h1"); code != 0 || !strings.Contains(out, "approve msg_h1 sps") {
		t.Errorf("approve: %d %q", code, out)
	}
	if code, out, _ := hcli("hooks", "redeliver", "--config", cfg, "msg_p1"); code != 0 || !strings.Contains(out, "redeliver msg_p1") {
		t.Errorf("redeliver: %d %q", code, out)
	}
	if code, _, stderr := hcli("hooks", "reject", "--config", cfg, "--by", "", "all"); code != 2 || !strings.Contains(stderr, "--by NAME") {
		t.Errorf("reject without --by: %d %q", code, stderr)
	}
	if code, _, stderr := hcli("hooks", "redeliver", "--config", cfg); code != 2 || !strings.Contains(stderr, "webhook-ids") {
		t.Errorf("redeliver without ids: %d %q", code, stderr)
	}
	if code, _, stderr := hcli("hooks", "enable", "--config", cfg); code != 2 || !strings.Contains(stderr, "name one endpoint") {
		t.Errorf("enable without endpoint: %d %q", code, stderr)
	}
	if code, _, _ := hcli("hooks", "enable", "--config", cfg, "sps"); code != 0 {
		t.Errorf("enable: %d", code)
	}
}

// TestHooksCreatesTheTopicsItWrites: with kafka.create_topics (the
// default) the dispatcher creates its dead-letter topic, and the alerts
// topic (as many partitions as the input topic) once the input topic
// exists.
func TestHooksCreatesTheTopicsItWrites(t *testing.T) {
	kc := kafkatest.Client(t)
	alerts := kafkatest.Name(t, "alerts")
	input := kafkatest.Name(t, "cdrs")
	path := hooksConfig(t, kafkatest.Brokers(t), alerts, "")
	cfg, err := loadRunConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Kafka.Topic = input
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env, err := openHooksEnv(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer env.close()
	partitions := func(topic string) int {
		n, err := kc.Partitions(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := partitions(alerts + ".hooks-dlq"); n != 1 {
		t.Errorf("dead-letter topic has %d partitions, want 1", n)
	}
	if err := ensureAlertsTopic(ctx, kc, cfg, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if n := partitions(alerts); n != 0 {
		t.Errorf("alerts topic created (%d partitions) without an input topic", n)
	}
	if err := kc.EnsureTopics(ctx, kafkaio.TopicSpec{Name: input, Partitions: 3, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	if err := ensureAlertsTopic(ctx, kc, cfg, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if n := partitions(alerts); n != 3 {
		t.Errorf("alerts topic has %d partitions, want the input's 3", n)
	}
}
