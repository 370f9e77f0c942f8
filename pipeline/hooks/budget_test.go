package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/schemas"
)

// TestTwoDispatchersShareTheBudget: two dispatchers on one alerts topic
// (each owning one of its two partitions), a budget of 5 per window and
// 12 suspension alerts over both partitions: exactly 5 delivered, 7
// held, one budget alert; approving the held ones delivers them, each
// under its webhook-id, once.
func TestTwoDispatchersShareTheBudget(t *testing.T) {
	kc := kafkatest.Client(t)
	alerts := kafkatest.Name(t, "alerts")
	group := kafkatest.Name(t, "group") + "-hooks"
	var mu sync.Mutex
	delivered := map[string]int{} // webhook-id -> 200s
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		delivered[r.Header.Get(HeaderID)]++
	}))
	defer srv.Close()
	count := func() (ids, total int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range delivered {
			total += c
		}
		return len(delivered), total
	}
	e := testEndpoint(t, "sps")
	e.URL = srv.URL
	e.Budget = &BudgetConfig{Requests: 5, Per: 10 * time.Minute}
	cfg := Config{Endpoints: []EndpointConfig{e}}
	rec1, rec2 := &memRecorder{}, &memRecorder{}
	d1, joined1, stop1 := electedRunJoined(t, kc, alerts, group, cfg, rec1)
	defer stop1()
	d2, joined2, stop2 := electedRunJoined(t, kc, alerts, group, cfg, rec2)
	defer stop2()
	eventually(t, 40*time.Second, "both alerts readers in a generation, and a retry runner", func() bool {
		return joined1() == nil && joined2() == nil && (d1.leading.Load() || d2.leading.Load())
	})

	var want []string
	for i := range 12 {
		a := testAlert("b"+itoa(i), "+155507000"+itoa(10+i))
		produceAlerts(t, kc, alerts, a)
		want = append(want, WebhookID(a.AlertID, ActionSuspend, "sps"))
	}
	held := func(d *Dispatcher) int { h, _, _, _ := d.sched.counts(); return h["sps"] }
	eventually(t, 40*time.Second, "12 alerts resolved: 7 held, nothing pending", func() bool {
		return d1.Idle() && d2.Idle() && d1.Pending() == 0 && d2.Pending() == 0 && held(d1) == 7 && held(d2) == 7
	})
	if ids, total := count(); ids != 5 || total != 5 {
		t.Errorf("delivered %d requests (%d ids), want the budget's 5", total, ids)
	}
	// Both dispatchers made first attempts: the alerts were spread.
	for i, r := range []*memRecorder{rec1, rec2} {
		if q := r.outcomes("sps")[OutcomeQueued]; q == 0 {
			t.Errorf("dispatcher %d queued no first attempt: the alerts were not spread", i+1)
		}
	}
	var budgetAlerts int
	for _, a := range kafkatest.Alerts(t, kafkatest.ReadAll(t, kc, alerts)) {
		if a.Rule == BudgetAlertRule {
			budgetAlerts++
			if a.Action != schemas.ActionAlert || a.Score != 5 {
				t.Errorf("budget alert %+v", a)
			}
		}
	}
	if budgetAlerts != 1 {
		t.Errorf("%d budget alerts, want 1", budgetAlerts)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := NewKafkaLog(kc)
	defer l.Close()
	heldReqs, err := Requeue(ctx, l, alerts+".hooks-held", alerts+".hooks-retry", []string{"all"}, true, time.Now())
	if err != nil || len(heldReqs) != 7 {
		t.Fatalf("approved %d, %v; want 7", len(heldReqs), err)
	}
	eventually(t, 40*time.Second, "the approved ones delivered", func() bool { ids, _ := count(); return ids == 12 })
	mu.Lock()
	defer mu.Unlock()
	for _, id := range want {
		if delivered[id] != 1 {
			t.Errorf("%s delivered %d times, want once", id, delivered[id])
		}
	}
	for _, r := range heldReqs {
		if !slices.Contains(want, r.ID) {
			t.Errorf("held %s is no alert's webhook-id", r.ID)
		}
	}
	if len(delivered) != 12 {
		t.Errorf("%d webhook-ids delivered, want 12", len(delivered))
	}
}

// TestBudgetCountsOnAfterARestart: the next retry runner counts on from
// the budget record the previous one wrote.
func TestBudgetCountsOnAfterARestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newMemLog()
		ep := testEndpoint(t, "sps")
		ep.Budget = &BudgetConfig{Requests: 5, Per: 10 * time.Minute}
		r := newReceiver(t, ep.SecretEnv, 200)
		cfg := Config{Endpoints: []EndpointConfig{ep}}
		stop := run(t, l, cfg, map[string]http.Handler{"sps": r}, &memRecorder{}, nil)
		for i := range 3 {
			l.produceAlerts(t, testAlert("a"+itoa(i), "+1555010000"+itoa(i)))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		stop()
		if n := len(r.received()); n != 3 {
			t.Fatalf("delivered %d before the restart, want 3", n)
		}
		var rec BudgetRecord
		if err := json.Unmarshal(l.live("alerts.hooks-state")[BudgetKey("sps")].Value, &rec); err != nil || len(rec.Admitted) != 3 {
			t.Fatalf("budget record %+v, %v; want 3 admissions", rec, err)
		}
		time.Sleep(time.Minute)
		stop = run(t, l, cfg, map[string]http.Handler{"sps": r}, &memRecorder{}, nil)
		defer stop()
		for i := range 4 {
			l.produceAlerts(t, testAlert("b"+itoa(i), "+1555020000"+itoa(i)))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(r.received()); n != 5 {
			t.Errorf("delivered %d in all, want the budget's 5", n)
		}
		if n := len(l.live("alerts.hooks-held")); n != 2 {
			t.Errorf("held %d, want 2", n)
		}
	})
}

// TestBudgetAlertWaitsForTheAlertsTopic: while the dispatcher cannot
// write the alerts topic (the job has not created it yet), the budget
// alert waits and is retried, and the one worker goes on delivering
// meanwhile.
func TestBudgetAlertWaitsForTheAlertsTopic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &topicDown{memLog: newMemLog(), topic: "alerts"}
		l.down.Store(true)
		ep := testEndpoint(t, "sps")
		ep.Budget = &BudgetConfig{Requests: 2, Per: 10 * time.Minute}
		r := newReceiver(t, ep.SecretEnv, 200)
		d, err := New(Options{Config: Config{Endpoints: []EndpointConfig{ep}, Workers: 1}, AlertsTopic: "alerts", Log: l,
			Doer: func(Endpoint) Doer { return handlerDoer{r} }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- d.Run(ctx, l.source()) }()
		defer func() {
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v", err)
			}
		}()
		// The test's alerts go through memLog, as the job's would.
		for i := range 4 {
			l.produceAlerts(t, testAlert("a"+itoa(i), "+1555010000"+itoa(i)))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n, h := len(r.received()), len(l.live("alerts.hooks-held")); n != 2 || h != 2 {
			t.Fatalf("delivered %d, held %d; want 2 and 2", n, h)
		}
		budgetAlerts := func() (n int) {
			for _, m := range l.messages("alerts") {
				if m.Headers["rule"] == BudgetAlertRule {
					n++
				}
			}
			return n
		}
		if n := budgetAlerts(); n != 0 {
			t.Fatalf("%d budget alerts written while the topic is down", n)
		}
		// The worker is free: an approved request is delivered at once.
		reqs, err := Requeue(ctx, l, "alerts.hooks-held", "alerts.hooks-retry", []string{"all"}, true, time.Now())
		if err != nil || len(reqs) != 2 {
			t.Fatalf("approved %d, %v", len(reqs), err)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := len(r.received()); n != 4 {
			t.Errorf("delivered %d after the approvals while the alert waits, want 4", n)
		}
		l.down.Store(false)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n := budgetAlerts(); n != 1 {
			t.Errorf("%d budget alerts once the topic is writable, want 1", n)
		}
	})
}
