package deploy_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
)

// hookSecret is the receiver's Standard Webhooks secret (test only).
const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// hookReceiver is a suspension system for the generated day: it verifies
// each request's signature with the Standard Webhooks library, answers
// 503 to a request's first attempt and 200 after, so the hook panels see
// retries and deliveries.
type hookReceiver struct {
	srv *httptest.Server
	mu  sync.Mutex
	ids map[string]int // webhook-id -> attempts
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{ids: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := wh.Verify(body, req.Header); err != nil {
			t.Errorf("hook receiver: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.mu.Lock()
		r.ids[req.Header.Get("webhook-id")]++
		n := r.ids[req.Header.Get("webhook-id")]
		r.mu.Unlock()
		if n == 1 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.ids {
		n += c
	}
	return n
}

// config is the hooks section of the run's config: the receiver, and a
// shadow-mode endpoint that is never called.
func (r *hookReceiver) config(t *testing.T) string {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "sps.secret")
	if err := os.WriteFile(secret, []byte(hookSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`hooks:
  endpoints:
    - name: sps
      url: %s/sps
      secret_file: %s
      retry_schedule: [300ms, 300ms, 1s, 1s]
    - name: sps-shadow
      url: http://127.0.0.1:1/never
      secret_file: %s
      mode: shadow
  breaker: {failures: 1000, open_for: 1s}
`, r.srv.URL, secret, secret)
}

// metricValues reads the samples of family name from a /metrics
// endpoint: the series' labels as written -> value.
func metricValues(t *testing.T, addr, name string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[strings.TrimPrefix(line[:i], name)] = v
		}
	}
	return out
}

// waitHooksRecorded waits until the dispatcher inside the run has
// resolved every alert (its group caught up), has no retry pending, and
// ClickHouse holds a row for every delivery it counted.
func waitHooksRecorded(t *testing.T, kc *kafkaio.Client, group, alerts, metricsAddr, httpAddr, db string) {
	t.Helper()
	defer func() {
		if t.Failed() {
			for _, m := range []string{"cdrguard_hook_deliveries_total", "cdrguard_hook_pending_retries", "cdrguard_hook_ready", "cdrguard_hook_retry_leader"} {
				t.Logf("%s: %v", m, metricValues(t, metricsAddr, m))
			}
		}
	}()
	kafkatest.WaitCaughtUp(t, kc, group+"-hooks", 2*time.Minute, alerts)
	deadline := time.Now().Add(time.Minute)
	for {
		pending := metricValues(t, metricsAddr, "cdrguard_hook_pending_retries")[`{endpoint="sps"}`]
		delivered := metricValues(t, metricsAddr, "cdrguard_hook_deliveries_total")[`{action="suspend",endpoint="sps",outcome="delivered"}`]
		rows, err := chQuery(httpAddr, db, "SELECT count() AS n FROM hook_deliveries WHERE outcome = 'delivered'")
		stored := ""
		if err == nil && len(rows) == 1 {
			stored = strings.Trim(strings.TrimPrefix(rows[0], `{"n":`), `"}`)
		}
		if pending == 0 && delivered > 0 && stored == strconv.Itoa(int(delivered)) {
			t.Logf("hooks: %v suspensions delivered to the receiver and recorded", delivered)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("hooks not settled within a minute: %v pending, %v delivered, stored %s %v", pending, delivered, stored, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
