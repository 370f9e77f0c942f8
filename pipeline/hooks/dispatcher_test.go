package hooks

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/cdrguard/cdrguard/schemas"
)

// receiver is a test receiver: it answers with the next status of its
// script (the last one forever after) and keeps what it got.
type receiver struct {
	mu      sync.Mutex
	script  []int
	headers map[int]http.Header // status -> extra headers
	got     []got
	block   bool // hang until the request's context ends
	verify  *standardwebhooks.Webhook
	t       testing.TB
}

type got struct {
	id   string
	at   time.Time
	body []byte
}

func newReceiver(t testing.TB, secretEnv string, script ...int) *receiver {
	wh, err := standardwebhooks.NewWebhook(strings.TrimSpace(getenv(secretEnv)))
	if err != nil {
		t.Fatal(err)
	}
	return &receiver{script: script, headers: map[int]http.Header{}, verify: wh, t: t}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.block {
		<-req.Context().Done()
		return
	}
	if err := r.verify.Verify(body, req.Header); err != nil {
		r.t.Errorf("receiver: signature does not verify: %v", err)
	}
	r.mu.Lock()
	r.got = append(r.got, got{id: req.Header.Get(HeaderID), at: time.Now(), body: body})
	status := r.script[min(len(r.got)-1, len(r.script)-1)]
	h := r.headers[status]
	r.mu.Unlock()
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
}

func (r *receiver) received() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.got...)
}

// run starts a dispatcher over l; stop cancels it and waits for Run.
func run(t *testing.T, l *memLog, cfg Config, handlers map[string]http.Handler, rec Recorder, allow Exempter) (stop func()) {
	t.Helper()
	d, err := New(Options{Config: cfg, AlertsTopic: "alerts", Log: l, Recorder: rec, Allowlist: allow,
		Doer: func(ep Endpoint) Doer { return handlerDoer{handlers[ep.Name]} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx, l.source()) }()
	return func() {
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
}

func TestRetryThenDeliver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps")
		r := newReceiver(t, ep.SecretEnv, 503, 503, 200)
		rec := &memRecorder{}
		stop := run(t, l, Config{Endpoints: []EndpointConfig{ep}}, map[string]http.Handler{"sps": r}, rec, nil)
		defer stop()
		start := time.Now()
		l.produceAlerts(t, testAlert("a1", "+15550100001"))
		time.Sleep(10 * time.Second)
		synctest.Wait()

		g := r.received()
		if len(g) != 3 {
			t.Fatalf("receiver got %d attempts, want 3", len(g))
		}
		for _, x := range g[1:] {
			if x.id != g[0].id || string(x.body) != string(g[0].body) {
				t.Errorf("attempts differ: %s %s", x.id, g[0].id)
			}
		}
		if g[0].id != WebhookID("a1", ActionSuspend, "sps") {
			t.Errorf("webhook-id %s", g[0].id)
		}
		// Waits follow the schedule (1 s, 2 s ±10 %).
		if d := g[1].at.Sub(g[0].at); d < 900*time.Millisecond || d > 1100*time.Millisecond {
			t.Errorf("first retry after %v, want 1s ±10%%", d)
		}
		if d := g[2].at.Sub(g[1].at); d < 1800*time.Millisecond || d > 2200*time.Millisecond {
			t.Errorf("second retry after %v, want 2s ±10%%", d)
		}
		if g[0].at.Sub(start) > time.Millisecond {
			t.Errorf("first attempt %v after the alert", g[0].at.Sub(start))
		}
		if n := len(l.live("alerts.hooks-retry")); n != 0 {
			t.Errorf("%d requests left in the retry topic", n)
		}
		if n := len(l.live("alerts.hooks-parked")); n != 0 {
			t.Errorf("%d requests parked", n)
		}
		if c := l.committedAlerts(); c != 1 {
			t.Errorf("committed %d alerts, want 1", c)
		}
		if o := rec.outcomes(""); o[OutcomeRetry] != 2 || o[OutcomeDelivered] != 1 {
			t.Errorf("recorded %v", o)
		}
		var body schemas.HookBody
		if err := jsonUnmarshal(g[0].body, &body); err != nil || body.Type != schemas.HookSuspend || body.Subject != "+15550100001" {
			t.Errorf("body %s: %v", g[0].body, err)
		}
	})
}

func TestClientErrorParksAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps")
		r := newReceiver(t, ep.SecretEnv, 400)
		rec := &memRecorder{}
		stop := run(t, l, Config{Endpoints: []EndpointConfig{ep}}, map[string]http.Handler{"sps": r}, rec, nil)
		defer stop()
		l.produceAlerts(t, testAlert("a1", "+15550100001"))
		time.Sleep(time.Minute) // past the whole schedule, in the bubble's time
		synctest.Wait()
		if n := len(r.received()); n != 1 {
			t.Errorf("receiver got %d attempts, want 1", n)
		}
		parked := l.live("alerts.hooks-parked")
		if len(parked) != 1 {
			t.Fatalf("parked %d, want 1", len(parked))
		}
		for _, m := range parked {
			req, _ := DecodeRequest(m.Value)
			if req.LastStatus != 400 || !strings.Contains(req.LastError, "HTTP 400") || req.Attempts != 1 {
				t.Errorf("parked %+v", req)
			}
		}
		if c := l.committedAlerts(); c != 1 {
			t.Errorf("committed %d, want 1", c)
		}
	})
}

func TestRetryAfterHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps")
		r := newReceiver(t, ep.SecretEnv, 429, 200)
		r.headers[429] = http.Header{"Retry-After": {"30"}}
		stop := run(t, l, Config{Endpoints: []EndpointConfig{ep}}, map[string]http.Handler{"sps": r}, &memRecorder{}, nil)
		defer stop()
		l.produceAlerts(t, testAlert("a1", "+15550100001"))
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if n := len(r.received()); n != 1 {
			t.Fatalf("%d attempts within 29 s, want 1 (Retry-After: 30)", n)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		g := r.received()
		if len(g) != 2 {
			t.Fatalf("%d attempts after 31 s, want 2", len(g))
		}
		if d := g[1].at.Sub(g[0].at); d < 30*time.Second {
			t.Errorf("retried after %v, Retry-After said 30s", d)
		}
	})
}

func TestScheduleExhaustedParks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps", time.Second, time.Second)
		r := newReceiver(t, ep.SecretEnv, 500)
		stop := run(t, l, Config{Endpoints: []EndpointConfig{ep}}, map[string]http.Handler{"sps": r}, &memRecorder{}, nil)
		defer stop()
		l.produceAlerts(t, testAlert("a1", "+15550100001"))
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(r.received()); n != 3 {
			t.Errorf("%d attempts, want 3 (1 + 2 retries)", n)
		}
		parked := l.live("alerts.hooks-parked")
		if len(parked) != 1 || len(l.live("alerts.hooks-retry")) != 0 {
			t.Fatalf("parked %d, retry %d", len(parked), len(l.live("alerts.hooks-retry")))
		}
		for _, m := range parked {
			if req, _ := DecodeRequest(m.Value); !strings.Contains(req.LastError, "retry schedule exhausted after 3 attempts: HTTP 500") {
				t.Errorf("last error %q", req.LastError)
			}
		}
	})
}

func TestGoneDisablesEndpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps")
		r := newReceiver(t, ep.SecretEnv, 410)
		stop := run(t, l, Config{Endpoints: []EndpointConfig{ep}}, map[string]http.Handler{"sps": r}, &memRecorder{}, nil)
		defer stop()
		l.produceAlerts(t, testAlert("a1", "+15550100001"))
		time.Sleep(time.Second)
		synctest.Wait()
		l.produceAlerts(t, testAlert("a2", "+15550100002"))
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := len(r.received()); n != 1 {
			t.Errorf("%d attempts, want 1: a disabled endpoint gets nothing", n)
		}
		if n := len(l.live("alerts.hooks-parked")); n != 2 {
			t.Errorf("parked %d, want 2", n)
		}
		if _, ok := l.live("alerts.hooks-retry")[DisabledKey("sps")]; !ok {
			t.Error("no disabled marker")
		}
		// Re-enable and redeliver: delivered.
		r.mu.Lock()
		r.script = []int{200}
		r.mu.Unlock()
		ctx := context.Background()
		if err := Enable(ctx, l, "alerts.hooks-retry", "sps"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		moved, err := Requeue(ctx, l, "alerts.hooks-parked", "alerts.hooks-retry", []string{"all"}, false, time.Now())
		if err != nil || len(moved) != 2 {
			t.Fatalf("requeue: %d, %v", len(moved), err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(r.received()); n != 3 {
			t.Errorf("%d attempts after redelivery, want 3", n)
		}
		if n := len(l.live("alerts.hooks-parked")) + len(l.live("alerts.hooks-retry")); n != 0 {
			t.Errorf("%d requests left", n)
		}
	})
}

// TestEndpointIsolation: one endpoint hanging (every attempt times out)
// does not delay another.
func TestEndpointIsolation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		down, up := testEndpoint(t, "down"), testEndpoint(t, "up")
		rd, ru := newReceiver(t, down.SecretEnv, 200), newReceiver(t, up.SecretEnv, 200)
		rd.block = true
		cfg := Config{Endpoints: []EndpointConfig{down, up}, QueueSize: 64, Workers: 2}
		stop := run(t, l, cfg, map[string]http.Handler{"down": rd, "up": ru}, &memRecorder{}, nil)
		defer stop()
		start := time.Now()
		var alerts []schemas.Alert
		for i := range 50 {
			alerts = append(alerts, testAlert("a"+itoa(i), "+1555010"+itoa(1000+i)))
		}
		l.produceAlerts(t, alerts...)
		synctest.Wait()
		g := ru.received()
		if len(g) != 50 {
			t.Fatalf("up got %d of 50 at once", len(g))
		}
		if last := g[len(g)-1].at.Sub(start); last > 0 {
			t.Errorf("up's last delivery %v after the alerts", last)
		}
		// Every alert is resolved once down's attempts in flight time out
		// (5 s each, two at a time) and its breaker opens after five:
		// up delivered, down queued in the retry topic.
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if c := l.committedAlerts(); c != 50 {
			t.Errorf("committed %d of 50 while down hangs", c)
		}
		if n := len(l.live("alerts.hooks-retry")); n != 50 {
			t.Errorf("%d requests of down in the retry topic, want 50", n)
		}
	})
}

func jsonUnmarshal(b []byte, v any) error { return jsonUnmarshalStrict(b, v) }
