package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
)

const testToken = "test-token-0123456789abcdef"

// runD starts a dispatcher over l and returns it; stop cancels it.
func runD(t *testing.T, l *memLog, opts Options, handlers map[string]http.Handler) (*Dispatcher, func()) {
	t.Helper()
	opts.AlertsTopic, opts.Log, opts.APITokens = "alerts", l, []string{testToken}
	opts.Doer = func(ep Endpoint) Doer { return handlerDoer{handlers[ep.Name]} }
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx, l.source()) }()
	return d, func() {
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
}

type decisions struct{ rows []Decision }

func (r *decisions) Record(d Decision) { r.rows = append(r.rows, d) }

func call(t *testing.T, h http.Handler, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func bodies(r *receiver) []schemas.HookBody {
	var out []schemas.HookBody
	for _, g := range r.received() {
		var b schemas.HookBody
		_ = json.Unmarshal(g.body, &b)
		out = append(out, b)
	}
	return out
}

// TestReleaseThroughAPI: a delivered suspension is released through the
// API (number.release to its endpoint, the decision recorded, the
// subject on the dynamic allowlist); a pending suspension of the subject
// on another endpoint is cancelled; a later alert of the subject is
// refused (blocked_allowlist); the API answers 401 and 400 naming the
// field.
func TestReleaseThroughAPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		up, down := testEndpoint(t, "up"), testEndpoint(t, "down", time.Hour)
		ru, rd := newReceiver(t, up.SecretEnv, 200), newReceiver(t, down.SecretEnv, 503, 200)
		rec, decs := &memRecorder{}, &decisions{}
		d, stop := runD(t, l, Options{Config: Config{Endpoints: []EndpointConfig{up, down}}, Recorder: rec, Decisions: decs},
			map[string]http.Handler{"up": ru, "down": rd})
		defer stop()
		l.produceAlerts(t, testAlert("a1", "+15550100001"))
		synctest.Wait()
		if len(ru.received()) != 1 || len(rd.received()) != 1 {
			t.Fatalf("up got %d, down got %d", len(ru.received()), len(rd.received()))
		}
		h := d.Handler()
		if code, _ := call(t, h, "POST", "/api/v1/releases", "", `{}`); code != 401 {
			t.Errorf("no token: %d", code)
		}
		if code, _ := call(t, h, "POST", "/api/v1/releases", "wrong-token-0123456789", `{}`); code != 401 {
			t.Errorf("bad token: %d", code)
		}
		for body, field := range map[string]string{
			`{"subject":"abc","reason":"x","by":"ana"}`:                           "subject",
			`{"subject":"+15550100001","subject_kind":"x","reason":"x","by":"a"}`: "subject_kind",
			`{"subject":"+15550100001","reason":"x"}`:                             "by",
			`{"subject":"+15550100001","by":"ana"}`:                               "reason",
			`{"subject":"+15550100001","reason":"x","by":"a","action":"confirm"}`: "action",
			`{"subject":"+15550100001","reason":"x","by":"a","colour":"red"}`:     "colour",
		} {
			if code, out := call(t, h, "POST", "/api/v1/releases", testToken, body); code != 400 || out["field"] != field {
				t.Errorf("%s: %d %v, want 400 naming %s", body, code, out, field)
			}
		}
		code, out := call(t, h, "POST", "/api/v1/releases", testToken,
			`{"subject":"+15550100001","subject_kind":"caller","reason":"customer called","by":"ana","action":"false_positive"}`)
		if code != 202 || !strings.HasPrefix(out["decision_id"].(string), "dec_") {
			t.Fatalf("release: %d %v", code, out)
		}
		synctest.Wait()
		b := bodies(ru)
		if len(b) != 2 || b[1].Type != schemas.HookRelease || b[1].Reason != "customer called" || len(b[1].Alert) < 10 {
			t.Fatalf("up got %+v, want a suspension then a release", b)
		}
		// down's suspension was waiting for its retry (in an hour): it is
		// cancelled and down gets the release instead.
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if b := bodies(rd); len(b) != 2 || b[1].Type != schemas.HookRelease {
			t.Errorf("down got %+v, want the failed suspension then a release", b)
		}
		if o := rec.outcomes("down"); o[OutcomeCancelled] != 1 {
			t.Errorf("down outcomes %v", o)
		}
		if len(decs.rows) != 1 || decs.rows[0].Action != DecisionFalsePositive || decs.rows[0].By != "ana" || decs.rows[0].Source != SourceAPI {
			t.Errorf("decisions %+v", decs.rows)
		}
		if live := l.live("alerts.allowlist"); len(live) != 1 || live[AllowKey("caller", "+15550100001")].Value == nil {
			t.Errorf("allowlist topic %v", live)
		}
		// A later alert of the released number: no suspension.
		l.produceAlerts(t, testAlert("a2", "+15550100001"))
		synctest.Wait()
		if len(ru.received()) != 2 {
			t.Errorf("up got %d requests, want no new suspension", len(ru.received()))
		}
		if o := rec.outcomes("up"); o[OutcomeAllowlisted] != 1 {
			t.Errorf("up outcomes %v, want one blocked_allowlist", o)
		}
		code, out = call(t, h, "GET", "/api/v1/subjects/+15550100001?kind=caller", testToken, "")
		if code != 200 || out["allowlisted"] != true || len(out["endpoints"].([]any)) != 2 {
			t.Errorf("subject: %d %v", code, out)
		}
	})
}

// TestReleaseSurvivesRestart: a new dispatcher reads the allowlist topic
// at start and refuses suspensions of the released subject.
func TestReleaseSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps")
		r := newReceiver(t, ep.SecretEnv, 200)
		cfg := Config{Endpoints: []EndpointConfig{ep}}
		d, stop := runD(t, l, Options{Config: cfg}, map[string]http.Handler{"sps": r})
		synctest.Wait()
		if _, err := d.Release(context.Background(), DecisionRequest{Subject: "+15550100009", Reason: "vip", By: "ana"}, SourceCLI); err != nil {
			t.Fatal(err)
		}
		stop()
		rec := &memRecorder{}
		_, stop = runD(t, l, Options{Config: cfg, Recorder: rec}, map[string]http.Handler{"sps": r})
		defer stop()
		l.produceAlerts(t, testAlert("a1", "+15550100009"))
		synctest.Wait()
		if n := len(r.received()); n != 0 {
			t.Errorf("receiver got %d requests", n)
		}
		if o := rec.outcomes(""); o[OutcomeAllowlisted] != 1 {
			t.Errorf("outcomes %v", o)
		}
	})
}

// TestExpiryAndConfirm: a suspension with suspend_for is released at
// expires_at; a confirmed one is not, even across a restart.
func TestExpiryAndConfirm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps")
		r := newReceiver(t, ep.SecretEnv, 200)
		cfg := Config{Endpoints: []EndpointConfig{ep}}
		opts := Options{Config: cfg, SuspendFor: func(string) time.Duration { return 24 * time.Hour }}
		d, stop := runD(t, l, opts, map[string]http.Handler{"sps": r})
		l.produceAlerts(t, testAlert("a1", "+15550100001"), testAlert("a2", "+15550100002"))
		synctest.Wait()
		b := bodies(r)
		if len(b) != 2 || b[0].ExpiresAt == nil || time.Until(*b[0].ExpiresAt) < 23*time.Hour {
			t.Fatalf("suspensions %+v", b)
		}
		code, out := call(t, d.Handler(), "POST", "/api/v1/decisions", testToken,
			`{"subject":"+15550100002","reason":"confirmed robo-dialer","by":"bo","action":"confirm"}`)
		if code != 202 {
			t.Fatalf("confirm: %d %v", code, out)
		}
		stop() // the schedule is in the retry topic
		time.Sleep(time.Hour)
		_, stop = runD(t, l, opts, map[string]http.Handler{"sps": r})
		defer stop()
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		b = bodies(r)
		if len(b) != 3 || b[2].Type != schemas.HookRelease || b[2].Subject != "+15550100001" {
			t.Fatalf("got %+v, want one expiry release of +15550100001", b)
		}
		if g := r.received(); g[2].id != WebhookID("a1", ActionRelease, "sps") {
			t.Errorf("expiry release id %s", g[2].id)
		}
	})
}
