package console

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/schemas"
)

// TestDeliveriesRealPath runs the real dispatcher with an endpoint whose
// budget holds every suspension after the first, and one whose receiver
// refuses (400: parked at once). The deliveries page lists the held and
// parked requests from the dispatcher's topics; an analyst can neither
// approve nor redeliver; a supervisor approves one held request (it
// reaches the receiver), rejects the other (it never does), and
// redelivers a parked one once its receiver accepts again; each
// decision is in ClickHouse with who and why.
func TestDeliveriesRealPath(t *testing.T) {
	d := loadDay(t, 0.01)
	bss, bssTS := newHookReceiver(t, testSecret)
	lab, labTS := newHookReceiver(t, testSecret)
	lab.refuse(http.StatusBadRequest)
	sched := []time.Duration{200 * time.Millisecond, time.Second}
	h := startHooks(t, d,
		hooks.EndpointConfig{Name: "bss", URL: bssTS.URL, RetrySchedule: sched, Budget: &hooks.BudgetConfig{Requests: 1, Per: time.Hour}},
		hooks.EndpointConfig{Name: "lab", URL: labTS.URL, RetrySchedule: sched, Actions: []string{hooks.ActionSuspend}})
	subjects := []string{"+15550400001", "+15550400002", "+15550400003"}
	now := time.Now().UTC()
	for i, s := range subjects {
		h.produce(t, schemas.Alert{AlertID: "deliveries-test-" + s, Rule: "sustained_dialling", Severity: schemas.SeverityCritical,
			Action: schemas.ActionSuspend, SubjectKind: schemas.SubjectCaller, Subject: s, WindowStart: now.Add(-time.Hour),
			WindowEnd: now, DetectedAt: now.Add(time.Duration(i) * time.Second), Score: 300, Reason: "test"})
	}
	srv, err := New(Options{Store: d.store, Releaser: h.releaser(t), Users: testUsers(t), SessionKey: []byte(strings.Repeat("k", 32)),
		Rules: d.rules.Rules(), Waiting: TopicWaiting{Follower: h.log, HeldTopic: h.cfg.HeldTopic, ParkedTopic: h.cfg.ParkedTopic}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(ts.Close)
	ana, sue := newBrowser(t, ts.URL), newBrowser(t, ts.URL)
	ana.login("ana", testPassword)
	sue.login("sue", testPassword)
	var page string
	waitFor(t, 40*time.Second, "2 held and 3 parked requests on the deliveries page", func() bool {
		_, page, _ = sue.get("/deliveries")
		return strings.Contains(page, "2 held, 3 parked · from the dispatcher&#39;s held and parked topics")
	})
	var first string
	for _, s := range subjects {
		if got, _ := bss.received(schemas.HookSuspend, s); len(got) == 1 {
			first = s
		}
	}
	if first == "" {
		t.Fatalf("bss got no suspension within its budget")
	}
	var held []string
	for _, s := range subjects {
		if s != first {
			held = append(held, hooks.WebhookID("deliveries-test-"+s, hooks.ActionSuspend, "bss"))
		}
	}
	parked := hooks.WebhookID("deliveries-test-"+first, hooks.ActionSuspend, "lab")
	for _, id := range append(held, parked) {
		if !strings.Contains(page, "/deliveries/held/"+id+"/approve") && !strings.Contains(page, "/deliveries/parked/"+id+"/redeliver") {
			t.Errorf("the supervisor's page offers no action on %s", id)
		}
	}

	_, anaPage, _ := ana.get("/deliveries")
	if strings.Contains(anaPage, "/approve") || strings.Contains(anaPage, "/redeliver") || !strings.Contains(anaPage, "Only supervisors") {
		t.Errorf("the analyst is offered supervisor actions")
	}
	tok := csrf(t, anaPage)
	for _, path := range []string{"/deliveries/held/" + held[0] + "/approve", "/deliveries/parked/" + parked + "/redeliver"} {
		if code, _, _ := ana.post(path, url.Values{"csrf": {tok}, "reason": {"let it through"}, "back": {"/deliveries"}}); code != http.StatusForbidden {
			t.Errorf("an analyst POST %s: HTTP %d, want 403", path, code)
		}
	}

	tok = csrf(t, page)
	act := func(path, reason string) string {
		t.Helper()
		code, _, hd := sue.post(path, url.Values{"csrf": {tok}, "reason": {reason}, "back": {"/deliveries"}})
		if code != http.StatusSeeOther {
			t.Fatalf("POST %s: HTTP %d", path, code)
		}
		return hd.Get("Location")
	}
	if loc := act("/deliveries/held/"+held[0]+"/approve", " "); !strings.Contains(loc, "err=") {
		t.Errorf("an approval without a reason went to %s", loc)
	}
	if loc := act("/deliveries/held/"+held[0]+"/approve", "checked the numbers with the fraud desk"); !strings.Contains(loc, "msg=approve") {
		t.Errorf("approve went to %s", loc)
	}
	if loc := act("/deliveries/held/"+held[1]+"/reject", "a known survey campaign"); !strings.Contains(loc, "msg=reject") {
		t.Errorf("reject went to %s", loc)
	}
	if loc := act("/deliveries/held/"+held[1]+"/reject", "again"); !strings.Contains(loc, "err=") || !strings.Contains(loc, "404") {
		t.Errorf("rejecting a request no longer held went to %s, want the API's 404", loc)
	}
	lab.refuse(0)
	if loc := act("/deliveries/parked/"+parked+"/redeliver", "lab is back"); !strings.Contains(loc, "msg=redeliver") {
		t.Errorf("redeliver went to %s", loc)
	}
	approved := subjects[0]
	rejected := subjects[1]
	for _, s := range subjects {
		if hooks.WebhookID("deliveries-test-"+s, hooks.ActionSuspend, "bss") == held[0] {
			approved = s
		}
		if hooks.WebhookID("deliveries-test-"+s, hooks.ActionSuspend, "bss") == held[1] {
			rejected = s
		}
	}
	waitFor(t, 30*time.Second, "the approved suspension to reach bss and the redelivered one lab", func() bool {
		a, _ := bss.received(schemas.HookSuspend, approved)
		b, _ := lab.received(schemas.HookSuspend, first)
		return len(a) == 1 && len(b) == 1
	})
	if got, errs := bss.received(schemas.HookSuspend, rejected); len(got) != 0 || len(errs) != 0 {
		t.Errorf("bss got the rejected suspension of %s: %v (errors %v)", rejected, got, errs)
	}
	if got, _ := bss.received(schemas.HookSuspend, approved); got[0].id != held[0] {
		t.Errorf("the approved suspension came with webhook-id %s, want %s", got[0].id, held[0])
	}
	var rows []string
	waitFor(t, 30*time.Second, "the three decisions in ClickHouse", func() bool {
		rows = d.query(t, "SELECT action, request_id, by, reason, source FROM "+d.store.db+".decisions WHERE request_id != '' ORDER BY action")
		return len(rows) >= 3
	})
	want := []string{"approve " + held[0] + " sue checked the numbers with the fraud desk api", "redeliver " + parked + " sue lab is back api",
		"reject " + held[1] + " sue a known survey campaign api"}
	if strings.Join(rows, "\n") != strings.Join(want, "\n") {
		t.Errorf("decisions:\n%s\nwant\n%s", strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}
	waitFor(t, 30*time.Second, "the page to show nothing waiting but the two other parked requests", func() bool {
		_, page, _ = sue.get("/deliveries")
		return strings.Contains(page, "0 held, 2 parked")
	})
}
