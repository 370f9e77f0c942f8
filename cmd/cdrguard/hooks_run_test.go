package main

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
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
	kafkatest.Client(t)
	alerts := kafkatest.Name(t, "alerts")
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
