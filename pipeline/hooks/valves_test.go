package hooks

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

func TestShadowSendsNothingRecordsEverything(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "trial")
		ep.Mode = ModeShadow
		r := newReceiver(t, ep.SecretEnv, 200)
		rec := &memRecorder{}
		stop := run(t, l, Config{Endpoints: []EndpointConfig{ep}}, map[string]http.Handler{"trial": r}, rec, nil)
		defer stop()
		l.produceAlerts(t, testAlert("a1", "+15550100001"), testAlert("a2", "+15550100002"))
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(r.received()); n != 0 {
			t.Errorf("shadow endpoint got %d requests", n)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.rows) != 2 {
			t.Fatalf("recorded %d rows, want 2", len(rec.rows))
		}
		for _, d := range rec.rows {
			var b schemas.HookBody
			if d.Outcome != OutcomeShadow || d.Mode != ModeShadow || jsonUnmarshal(d.Body, &b) != nil || b.Type != schemas.HookSuspend {
				t.Errorf("row %+v", d)
			}
		}
		if c := l.committedAlerts(); c != 2 {
			t.Errorf("committed %d", c)
		}
	})
}

func TestBudgetHoldsAndApprovalReleases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps")
		ep.Budget = &BudgetConfig{Requests: 3, Per: 10 * time.Minute}
		r := newReceiver(t, ep.SecretEnv, 200)
		rec := &memRecorder{}
		stop := run(t, l, Config{Endpoints: []EndpointConfig{ep}}, map[string]http.Handler{"sps": r}, rec, nil)
		defer stop()
		for i := range 5 {
			l.produceAlerts(t, testAlert("a"+itoa(i), "+1555010000"+itoa(i)))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(r.received()); n != 3 {
			t.Fatalf("delivered %d, want the budget's 3", n)
		}
		held := l.live("alerts.hooks-held")
		if len(held) != 2 {
			t.Fatalf("held %d, want 2", len(held))
		}
		// One budget alert on the alerts topic, which the dispatcher skips.
		var budgetAlerts int
		for _, m := range l.messages("alerts") {
			var a schemas.Alert
			if err := schemas.ParseAlertJSON(m.Value, &a); err != nil {
				t.Fatal(err)
			}
			if a.Rule == BudgetAlertRule {
				budgetAlerts++
				if a.Action != schemas.ActionAlert || m.Headers["rule"] != BudgetAlertRule {
					t.Errorf("budget alert %+v %v", a, m.Headers)
				}
			}
		}
		if budgetAlerts != 1 {
			t.Errorf("%d budget alerts, want 1", budgetAlerts)
		}
		if c := l.committedAlerts(); c != 6 {
			t.Errorf("committed %d of 6 (5 + budget alert)", c)
		}
		ctx := context.Background()
		// Reject one, approve the other: only the approved one is sent,
		// though the budget is still spent.
		reqs, err := Snapshot(ctx, l, "alerts.hooks-held")
		if err != nil || len(reqs) != 2 {
			t.Fatalf("snapshot %d %v", len(reqs), err)
		}
		if _, err := Reject(ctx, l, "alerts.hooks-held", []string{reqs[0].ID}, rec, "ops", time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := Requeue(ctx, l, "alerts.hooks-held", "alerts.hooks-retry", []string{reqs[1].ID}, true, time.Now()); err != nil {
			t.Fatal(err)
		}
		if _, err := Requeue(ctx, l, "alerts.hooks-held", "alerts.hooks-retry", []string{"msg_nosuch"}, true, time.Now()); err == nil {
			t.Error("approving an unknown id works")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		g := r.received()
		if len(g) != 4 || g[3].id != reqs[1].ID {
			t.Fatalf("after approval got %d, last %v, want 4 ending with %s", len(g), g[len(g)-1].id, reqs[1].ID)
		}
		if len(l.live("alerts.hooks-held")) != 0 {
			t.Error("held requests left")
		}
		if o := rec.outcomes("sps"); o[OutcomeHeld] != 2 || o[OutcomeRejected] != 1 || o[OutcomeDelivered] != 4 {
			t.Errorf("outcomes %v", o)
		}
		// The window slides: ten minutes on, requests pass again.
		time.Sleep(10 * time.Minute)
		l.produceAlerts(t, testAlert("b1", "+15550200001"))
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(r.received()); n != 5 {
			t.Errorf("after the window got %d, want 5", n)
		}
	})
}

func TestProtectedAllowlistAndSubjectPeriod(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps")
		r := newReceiver(t, ep.SecretEnv, 200)
		rec := &memRecorder{}
		cfg := Config{Endpoints: []EndpointConfig{ep}, Protected: ProtectedConfig{Numbers: []string{"+15550999999"}, Prefixes: []string{"+1555077"}},
			SubjectPeriod: time.Hour}
		allow := detectors.NewAllowlist([]string{"+15550888888"}, nil, nil)
		stop := run(t, l, cfg, map[string]http.Handler{"sps": r}, rec, allow)
		defer stop()
		l.produceAlerts(t,
			testAlert("e1", "112"), testAlert("e2", "+911"), testAlert("e3", "999"),
			testAlert("p1", "+15550999999"), testAlert("p2", "+15550770001"),
			testAlert("w1", "+15550888888"),
			testAlert("d1", "+15550100001"), testAlert("d2", "+15550100001"))
		time.Sleep(time.Second)
		synctest.Wait()
		g := r.received()
		if len(g) != 1 || g[0].id != WebhookID("d1", ActionSuspend, "sps") {
			t.Fatalf("sent %d requests, want only d1's", len(g))
		}
		if o := rec.outcomes(""); o[OutcomeProtected] != 5 || o[OutcomeAllowlisted] != 1 || o[OutcomeDuplicate] != 1 || o[OutcomeDelivered] != 1 {
			t.Errorf("outcomes %v", o)
		}
		time.Sleep(time.Hour)
		l.produceAlerts(t, testAlert("d3", "+15550100001"))
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(r.received()); n != 2 {
			t.Errorf("after the subject period got %d, want 2", n)
		}
	})
}

// TestBreakerQueues: after the configured failures the breaker opens and
// requests wait in the retry topic instead of being attempted; once the
// receiver is back they are all delivered.
func TestBreakerQueues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps", time.Second, time.Second, time.Second, time.Second, time.Second, time.Second)
		r := newReceiver(t, ep.SecretEnv, 503)
		rec := &memRecorder{}
		cfg := Config{Endpoints: []EndpointConfig{ep}, Breaker: BreakerConfig{Failures: 3, OpenFor: 10 * time.Second}, Workers: 1}
		stop := run(t, l, cfg, map[string]http.Handler{"sps": r}, rec, nil)
		defer stop()
		var alerts []schemas.Alert
		for i := range 10 {
			alerts = append(alerts, testAlert("a"+itoa(i), "+1555010000"+itoa(i)))
		}
		l.produceAlerts(t, alerts...)
		synctest.Wait()
		if n := len(r.received()); n != 3 {
			t.Errorf("%d attempts before the breaker opened, want 3", n)
		}
		if o := rec.outcomes(""); o[OutcomeQueued] != 7 {
			t.Errorf("outcomes %v, want 7 queued", o)
		}
		if c := l.committedAlerts(); c != 10 {
			time.Sleep(time.Second)
			synctest.Wait()
			if c = l.committedAlerts(); c != 10 {
				t.Errorf("committed %d of 10", c)
			}
		}
		r.mu.Lock()
		r.script = []int{200}
		r.got = nil
		r.mu.Unlock()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		ids := map[string]bool{}
		for _, g := range r.received() {
			ids[g.id] = true
		}
		if len(ids) != 10 {
			t.Errorf("delivered %d distinct requests, want 10", len(ids))
		}
		if n := len(l.live("alerts.hooks-retry")) + len(l.live("alerts.hooks-parked")); n != 0 {
			t.Errorf("%d left in retry/parked", n)
		}
	})
}

// TestRestartDuringRetries: a dispatcher stopped while requests wait for
// their retries, and a new one over the same topics and committed
// offsets, deliver every request once to the receiver's eyes (one id per
// alert), and park none.
func TestRestartDuringRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps", 5*time.Second, 5*time.Second)
		r := newReceiver(t, ep.SecretEnv, 503)
		cfg := Config{Endpoints: []EndpointConfig{ep}}
		stop := run(t, l, cfg, map[string]http.Handler{"sps": r}, &memRecorder{}, nil)
		var alerts []schemas.Alert
		for i := range 20 {
			alerts = append(alerts, testAlert("a"+itoa(i), "+155501000"+itoa(10+i)))
		}
		l.produceAlerts(t, alerts...)
		time.Sleep(time.Second)
		synctest.Wait()
		stop()
		if n := len(l.live("alerts.hooks-retry")); n != 20 {
			t.Fatalf("%d in the retry topic at the stop, want 20", n)
		}
		r.mu.Lock()
		r.script = []int{200}
		r.mu.Unlock()
		stop = run(t, l, cfg, map[string]http.Handler{"sps": r}, &memRecorder{}, nil)
		defer stop()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		delivered := map[string]int{}
		for _, g := range r.received() {
			delivered[g.id]++
		}
		if len(delivered) != 20 {
			t.Errorf("receiver saw %d distinct ids, want 20", len(delivered))
		}
		if n := len(l.live("alerts.hooks-parked")) + len(l.live("alerts.hooks-retry")); n != 0 {
			t.Errorf("%d left parked or in retry", n)
		}
	})
}
