package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

// httpGet returns the status and body of a GET, or 0 when nothing
// answers.
func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestHooksServesMetricsAndProbes: `cdrguard hooks` serves /healthz,
// /readyz (alerts group joined, topics read) and /metrics with the
// dispatcher's series per endpoint.
func TestHooksServesMetricsAndProbes(t *testing.T) {
	kc := kafkatest.Client(t)
	alerts := kafkatest.Name(t, "alerts")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := kc.EnsureTopics(ctx, kafkaio.TopicSpec{Name: alerts, Partitions: 2, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	cfg := hooksConfig(t, kafkatest.Brokers(t), alerts, "")
	addr := "127.0.0.1:" + freePort(t)
	b, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append(b, "metrics:\n  listen: "+addr+"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	startHooks(t, cfg)
	deadline := time.Now().Add(40 * time.Second)
	var code int
	var body string
	for {
		if code, body = httpGet("http://" + addr + "/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within 40 s: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []string{"hooks alerts group: ok", "hooks topics: ok"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz %q lacks %q", body, want)
		}
	}
	if code, body := httpGet("http://" + addr + "/healthz"); code != 200 {
		t.Errorf("/healthz %d %q", code, body)
	}
	code, body = httpGet("http://" + addr + "/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d", code)
	}
	for _, want := range []string{`cdrguard_hook_breaker_state{endpoint="sps"} 0`, `cdrguard_hook_held_requests{endpoint="sps"} 0`,
		`cdrguard_hook_parked_requests{endpoint="sps"} 0`, `cdrguard_hook_pending_retries{endpoint="sps"} 0`,
		`cdrguard_hook_endpoint_disabled{endpoint="sps"} 0`, "cdrguard_hook_ready 1", "go_goroutines"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// hookCall is one request a test receiver got.
type hookCall struct {
	id, typ, subject string
}

// TestRunSendsSuspensionsOfAGeneratedDay: `cdrguard run` with a hooks
// section delivers one signed number.suspend per subject of the day's
// suspend alerts to a local receiver, none for a protected number
// (blocked_protected in hook_deliveries); then a subject released through
// the API gets its number.release, and a later suspend alert for it sends
// nothing (blocked_allowlist).
func TestRunSendsSuspensionsOfAGeneratedDay(t *testing.T) {
	kc := kafkatest.Client(t)
	chAddr := clickhouseAddr(t)
	day := synth.Generate(synth.Config{Seed: 7, Scale: 0.15})
	want := map[string]bool{} // subjects of the day's suspend alerts
	var protected string
	for _, a := range kafkatest.Replay(t, rulesFile, day.Records) {
		if a.Action != schemas.ActionSuspend {
			continue
		}
		if protected == "" && a.SubjectKind == schemas.SubjectCaller {
			protected = a.Subject
			continue
		}
		if a.Subject != protected {
			want[a.Subject] = true
		}
	}
	if protected == "" || len(want) < 2 {
		t.Fatalf("the day has too few suspend alerts: %d subjects", len(want))
	}
	topic, group, alerts := kafkatest.Name(t, "cdrs"), kafkatest.Name(t, "g"), kafkatest.Name(t, "alerts")
	kafkatest.ProduceCDRs(t, kc, topic, 3, day.Records)
	db := "hooksrun_" + suffix()
	dropDB(t, chAddr, db)

	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var calls []hookCall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("receiver: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var b schemas.HookBody
		if err := json.Unmarshal(body, &b); err != nil {
			t.Errorf("receiver: %v", err)
		}
		mu.Lock()
		calls = append(calls, hookCall{id: r.Header.Get(hooks.HeaderID), typ: string(b.Type), subject: b.Subject})
		mu.Unlock()
	}))
	defer srv.Close()
	got := func() []hookCall { mu.Lock(); defer mu.Unlock(); return slices.Clone(calls) }

	dir := t.TempDir()
	secretFile, tokensFile := filepath.Join(dir, "sps.secret"), filepath.Join(dir, "api.tokens")
	const token = "test-token-0123456789abcdef"
	for f, v := range map[string]string{secretFile: secret + "\n", tokensFile: token + "\n"} {
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	apiAddr := "127.0.0.1:" + freePort(t)
	cfg := e2eConfig(t, kc.Conn.Brokers, topic, group, alerts, "clickhouse://"+chAddr+"/"+db)
	b, _ := os.ReadFile(cfg)
	b = append(b, fmt.Sprintf(`hooks:
  endpoints:
    - name: sps
      url: %s/hooks
      secret_file: %s
  protected: {prefixes: [%q]}
  api: {listen: %q, tokens_file: %s}
`, srv.URL, secretFile, protected, apiAddr, tokensFile)...)
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	run := child(t, cfg)
	kafkatest.WaitCaughtUp(t, kc, group, 3*time.Minute, topic, topic+".sources")
	kafkatest.WaitCaughtUp(t, kc, group+"-hooks", 2*time.Minute, alerts)

	suspended := map[string]int{}
	for _, c := range got() {
		if c.typ == string(schemas.HookSuspend) {
			suspended[c.subject]++
		}
	}
	for s := range want {
		if suspended[s] != 1 {
			t.Errorf("%s got %d number.suspend, want 1", s, suspended[s])
		}
	}
	for s, n := range suspended {
		if !want[s] {
			t.Errorf("%s got %d number.suspend, not a subject of the day's suspend alerts (protected %s)", s, n, protected)
		}
	}
	conn := chConn(t, chAddr, db)
	waitRow := func(what, query string, args ...any) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var n uint64
			if err := conn.QueryRow(context.Background(), query, args...).Scan(&n); err == nil && n > 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s in hook_deliveries within 30 s", what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitRow("blocked_protected row for "+protected, "SELECT count() FROM hook_deliveries WHERE subject = ? AND outcome = 'blocked_protected'", protected)
	t.Logf("%d subjects suspended through the receiver; protected %s blocked", len(suspended), protected)

	// Release one through the API: its number.release arrives.
	var released string
	for s := range want {
		if strings.HasPrefix(s, "+") {
			released = s
			break
		}
	}
	if released == "" {
		t.Fatal("no caller among the suspended subjects")
	}
	body := fmt.Sprintf(`{"subject":%q,"reason":"customer called","by":"ana"}`, released)
	req, _ := http.NewRequest(http.MethodPost, "http://"+apiAddr+"/api/v1/releases", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("release: %d %s", resp.StatusCode, rb)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !slices.ContainsFunc(got(), func(c hookCall) bool { return c.typ == string(schemas.HookRelease) && c.subject == released }) {
		if time.Now().After(deadline) {
			t.Fatalf("no number.release for %s within 30 s", released)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A later suspend alert for it: nothing is sent, blocked_allowlist.
	now := time.Now().UTC()
	late := schemas.Alert{AlertID: "late-" + suffix(), Rule: "dialling_burst", Severity: schemas.SeverityCritical, Action: schemas.ActionSuspend,
		SubjectKind: schemas.SubjectCaller, Subject: released, WindowStart: now.Add(-5 * time.Minute), WindowEnd: now, DetectedAt: now, Reason: "test"}
	v, _ := late.AppendJSON(nil)
	kafkatest.Produce(t, kc, alerts, 3, [][]byte{v}, [][]byte{[]byte(released)}, []time.Time{now})
	waitRow("blocked_allowlist row for the late alert", "SELECT count() FROM hook_deliveries WHERE alert_id = ? AND outcome = 'blocked_allowlist'", late.AlertID)
	lateID := hooks.WebhookID(late.AlertID, hooks.ActionSuspend, "sps")
	for _, c := range got() {
		if c.id == lateID {
			t.Errorf("the late suspension of released %s was sent", released)
		}
	}
	stopChild(t, run)
}
