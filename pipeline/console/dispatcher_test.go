package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/cdrguard/cdrguard/pipeline/clickhouse"
	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/schemas"
)

// receivedHook is one webhook the test receiver verified.
type receivedHook struct {
	id   string
	body schemas.HookBody
}

// hookReceiver is a suspension system: it verifies Standard Webhooks
// signatures with the specification's own Go library, and answers 204,
// or status while that is set.
type hookReceiver struct {
	mu     sync.Mutex
	got    []receivedHook
	errs   []error
	status int
}

func newHookReceiver(t *testing.T, secret string) (*hookReceiver, *httptest.Server) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		if err := wh.Verify(body, req.Header); err != nil {
			r.errs = append(r.errs, err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.status != 0 {
			http.Error(w, "refused by the test", r.status)
			return
		}
		var b schemas.HookBody
		if err := json.Unmarshal(body, &b); err != nil {
			r.errs = append(r.errs, err)
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		r.got = append(r.got, receivedHook{id: req.Header.Get(hooks.HeaderID), body: b})
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(ts.Close)
	return r, ts
}

// received returns the verified webhooks of type typ about subject, and
// the verification errors so far.
func (r *hookReceiver) received(typ schemas.HookType, subject string) ([]receivedHook, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []receivedHook
	for _, g := range r.got {
		if g.body.Type == typ && g.body.Subject == subject {
			out = append(out, g)
		}
	}
	return out, append([]error(nil), r.errs...)
}

func (r *hookReceiver) refuse(status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status = status
}

// realHooks is the real hook dispatcher (pipeline/hooks) running in the
// test process on the real Kafka, with unique topics, as pipeline/hooks'
// own integration tests run it: it consumes the alerts topic, delivers
// signed webhooks, and serves its release API on a loopback listener
// with a bearer tokens file. Its deliveries and decisions go to the test
// day's ClickHouse tables through the same batch recorders cdrguard uses.
type realHooks struct {
	kc     *kafkaio.Client
	log    *hooks.KafkaLog
	d      *hooks.Dispatcher
	cfg    hooks.Config // with defaults
	alerts string
	apiURL string
	token  string
}

// testSecret signs every test endpoint's webhooks.
const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// startHooks runs the dispatcher with endpoints (their secret_file is
// set here) until the test ends, and waits for its API to answer.
func startHooks(t *testing.T, d *testDay, endpoints ...hooks.EndpointConfig) *realHooks {
	t.Helper()
	kc := kafkatest.Client(t)
	dir := t.TempDir()
	secretFile, tokensFile := filepath.Join(dir, "bss.secret"), filepath.Join(dir, "api.tokens")
	token := "console-test-token-" + NewDecisionID()
	if err := os.WriteFile(secretFile, []byte(testSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokensFile, []byte("# the console's token\n"+token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for i := range endpoints {
		endpoints[i].SecretFile = secretFile
	}
	h := &realHooks{kc: kc, log: hooks.NewKafkaLog(kc), alerts: kafkatest.Name(t, "alerts"), token: token}
	listen := freeAddr(t)
	cfg := hooks.Config{Endpoints: endpoints, API: &hooks.APIConfig{Listen: listen, TokensFile: tokensFile},
		Breaker: hooks.BreakerConfig{Failures: 100, OpenFor: time.Second}}
	tokens, err := hooks.ReadTokens(tokensFile)
	if err != nil {
		t.Fatal(err)
	}
	logger := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	ctx, cancel := context.WithCancel(context.Background())
	decs := hooks.NewBatchRecorder(func(ctx context.Context, ds []hooks.Decision) error {
		rows := make([]clickhouse.Decision, len(ds))
		for i, x := range ds {
			rows[i] = clickhouse.Decision{Time: x.Time, DecisionID: x.ID, SubjectKind: x.SubjectKind, Subject: x.Subject, Action: x.Action,
				AlertID: x.AlertID, RequestID: x.RequestID, By: x.By, Reason: x.Reason, Source: x.Source}
		}
		return d.client.InsertDecisions(ctx, rows)
	}, 10_000, logger)
	dels := hooks.NewBatchRecorder(func(ctx context.Context, ds []hooks.Delivery) error {
		rows := make([]clickhouse.HookDelivery, len(ds))
		for i, x := range ds {
			rows[i] = clickhouse.HookDelivery{Time: x.Time, RequestID: x.RequestID, AlertID: x.AlertID, Endpoint: x.Endpoint,
				Action: x.Action, SubjectKind: x.SubjectKind, Subject: x.Subject, Rule: x.Rule, Attempt: uint16(min(x.Attempt, 65535)),
				StatusCode: uint16(x.StatusCode), LatencyMS: float64(x.Latency.Microseconds()) / 1000, Error: x.Error,
				Outcome: x.Outcome, Mode: x.Mode, NextAttempt: x.NextAt, Body: string(x.Body)}
		}
		return d.client.InsertHookDeliveries(ctx, rows)
	}, 10_000, logger)
	h.d, err = hooks.New(hooks.Options{Config: cfg, AlertsTopic: h.alerts, Log: h.log, Recorder: dels, Decisions: decs,
		Allowlist: d.rules.Allowlist, SuspendFor: d.rules.SuspendFor, APITokens: tokens, Logger: logger, CommitInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = h.d.Config()
	ectx, ecancel := context.WithTimeout(ctx, time.Minute)
	defer ecancel()
	if err := h.log.EnsureTopics(ectx, h.cfg, -1); err != nil {
		t.Fatal(err)
	}
	if err := kc.EnsureTopics(ectx, kafkaio.TopicSpec{Name: h.alerts, Partitions: 2, ReplicationFactor: -1}); err != nil {
		t.Fatal(err)
	}
	src, err := hooks.NewAlertSource(kc, h.alerts, h.alerts+"-hooks")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() { decs.Run(ctx) })
	wg.Go(func() { dels.Run(ctx) })
	runErr, apiErr := make(chan error, 1), make(chan error, 1)
	go func() { runErr <- h.d.Run(ctx, src) }()
	go func() { apiErr <- h.d.ServeAPI(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runErr; !errors.Is(err, context.Canceled) {
			t.Errorf("dispatcher: %v", err)
		}
		if err := <-apiErr; err != nil {
			t.Errorf("release api: %v", err)
		}
		wg.Wait() // the recorders flush what they hold
		src.Close()
		_ = h.log.Close()
	})
	h.apiURL = "http://" + listen
	waitFor(t, 30*time.Second, "the release API to answer", func() bool {
		req, _ := http.NewRequest(http.MethodGet, h.apiURL+"/api/v1/subjects/%2B1", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return h
}

// releaser is the console's client of this dispatcher's API.
func (h *realHooks) releaser(t *testing.T) *HTTPReleaser {
	t.Helper()
	rel, err := NewHTTPReleaser(h.apiURL, h.token, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// produce writes alerts to the alerts topic, keyed by subject, as
// cdrguard run does.
func (h *realHooks) produce(t *testing.T, alerts ...schemas.Alert) {
	t.Helper()
	values, keys := make([][]byte, len(alerts)), make([][]byte, len(alerts))
	for i, a := range alerts {
		values[i], _ = a.AppendJSON(nil)
		keys[i] = []byte(a.Subject)
	}
	kafkatest.Produce(t, h.kc, h.alerts, 2, values, keys, make([]time.Time, len(alerts)))
}

// freeAddr returns a loopback address no one listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// suspendAlerts are the alerts of subject asking for suspension.
func (d *testDay) suspendAlerts(subject string) []schemas.Alert {
	var out []schemas.Alert
	for _, a := range d.alerts {
		if a.Subject == subject && a.Action == schemas.ActionSuspend {
			out = append(out, a)
		}
	}
	return out
}
