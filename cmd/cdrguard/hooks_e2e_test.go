package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/schemas"
)

// startHooks runs `cdrguard hooks --config cfg` as a child process.
func startHooks(t *testing.T, cfg string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(binary(t), "hooks", "--config", cfg)
	logf, err := os.Create(filepath.Join(t.TempDir(), "hooks.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("hooks log:\n%s", tail(string(b), 3000))
		}
	})
	return cmd
}

// TestHooksSurviveSIGKILL: the real binary, killed with SIGKILL while its
// receiver answers 503 and restarted, delivers every request, each under
// one webhook-id, and parks none.
func TestHooksSurviveSIGKILL(t *testing.T) {
	kc := kafkatest.Client(t)
	alerts := kafkatest.Name(t, "alerts")
	var mu sync.Mutex
	seen := map[string]map[string]bool{} // subject -> webhook-ids
	delivered := map[string]int{}
	failing := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b schemas.HookBody
		body, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(body, &b)
		mu.Lock()
		defer mu.Unlock()
		if seen[b.Subject] == nil {
			seen[b.Subject] = map[string]bool{}
		}
		seen[b.Subject][r.Header.Get(hooks.HeaderID)] = true
		if failing {
			w.WriteHeader(503)
			return
		}
		delivered[b.Subject]++
	}))
	defer srv.Close()
	cfg := hooksConfig(t, kafkatest.Brokers(t), alerts, "      retry_schedule: [300ms, 300ms, 1s, 1s, 2s, 2s, 2s, 2s, 2s, 2s]\n  breaker: {failures: 1000, open_for: 1s}\n")
	b, _ := os.ReadFile(cfg)
	text := strings.Replace(string(b), "http://127.0.0.1:1/hooks", srv.URL+"/hooks", 1) + "metrics:\n  listen: \"off\"\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var values, keys [][]byte
	const n = 5
	for i := range n {
		a := schemas.Alert{AlertID: "e2e" + itoa(i), Rule: "dialling_burst", Severity: schemas.SeverityCritical, Action: schemas.ActionSuspend,
			SubjectKind: schemas.SubjectCaller, Subject: "+1555020000" + itoa(i), WindowStart: time.Now(), WindowEnd: time.Now(), DetectedAt: time.Now()}
		v, _ := a.AppendJSON(nil)
		values, keys = append(values, v), append(keys, []byte(a.Subject))
	}
	kafkatest.Produce(t, kc, alerts, 2, values, keys, make([]time.Time, n))
	cmd := startHooks(t, cfg)
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(40 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("every subject to get a 503", func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == n })
	_ = cmd.Process.Kill() // SIGKILL during the retries
	_ = cmd.Wait()
	mu.Lock()
	failing = false
	mu.Unlock()
	startHooks(t, cfg)
	wait("every subject delivered", func() bool { mu.Lock(); defer mu.Unlock(); return len(delivered) == n })
	mu.Lock()
	for s, ids := range seen {
		if len(ids) != 1 {
			t.Errorf("%s got %d webhook-ids", s, len(ids))
		}
	}
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	parked, err := hooks.Snapshot(ctx, hooks.NewKafkaLog(kc), alerts+".hooks-parked")
	if err != nil || len(parked) != 0 {
		t.Errorf("parked %d, %v", len(parked), err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
