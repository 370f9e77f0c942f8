package console

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/clickhouse"
)

// TestHandlers drives every page and action over HTTP against the real
// ClickHouse filled by a generated day, with a fake release API.
func TestHandlers(t *testing.T) {
	d := loadDay(t, 0.05)
	rel := &fakeReleaser{}
	ts := newTestServer(t, d, rel)
	ana := newBrowser(t, ts.URL)
	if code := ana.login("ana", testPassword); code != http.StatusSeeOther {
		t.Fatalf("login: HTTP %d, want 303", code)
	}

	t.Run("queue", func(t *testing.T) {
		code, page, _ := ana.get("/")
		if code != 200 {
			t.Fatalf("queue: HTTP %d\n%.3000s", code, page)
		}
		if !strings.Contains(page, "&#43;"+d.agent[1:]) {
			t.Errorf("the queue does not list the top telemarketer %s", d.agent)
		}
		if n := len(groupRefs(page)); n == 0 || n > pageSize {
			t.Errorf("the queue shows %d rows, want 1..%d", n, pageSize)
		}
		groups := map[string]bool{}
		for _, a := range d.alerts {
			groups[a.SubjectKind.String()+"|"+a.Subject+"|"+a.Rule] = true
		}
		_, p1, _ := ana.get("/?decided=all")
		_, p2, _ := ana.get("/?decided=all&p=2")
		want := fmt.Sprintf("%d all alerts on %d subject–rule rows", len(d.alerts), len(groups))
		if !strings.Contains(p1, want) || !strings.Contains(p1, fmt.Sprintf("Page 1 of %d", (len(groups)+pageSize-1)/pageSize)) {
			t.Errorf("the queue's header lacks %q and the page count", want)
		}
		r1, r2 := groupRefs(p1), groupRefs(p2)
		if len(groups) > pageSize && (len(r1) != pageSize || len(r2) == 0) {
			t.Errorf("pages of %d and %d rows for %d groups", len(r1), len(r2), len(groups))
		}
		for _, g := range r2 {
			if slices.Contains(r1, g) {
				t.Errorf("row %s on pages 1 and 2", g)
			}
		}
		if !strings.Contains(page, "call_shop_agent <b>") {
			t.Errorf("no count for call_shop_agent on the queue")
		}
		code, page, _ = ana.get("/?rule=call_shop_agent&severity=critical&decided=all&p=1")
		if code != 200 || strings.Contains(page, "dialling_burst</td>") {
			t.Errorf("rule filter: HTTP %d, or other rules listed", code)
		}
	})

	var subjectPage string
	t.Run("subject", func(t *testing.T) {
		code, page, _ := ana.get("/subject?kind=caller&id=" + url.QueryEscape(d.agent))
		if code != 200 {
			t.Fatalf("subject: HTTP %d\n%.3000s", code, page)
		}
		for _, want := range []string{"Why it fired", "<svg class=\"chart\"", "<polyline class=\"s-calls\"", "short_ratio &gt;= 0.75",
			"distinct_callees &gt;= 0.7 * calls", "Recent CDRs", "matched",
			"<td>bss</td>\n<td><b>suspended</b></td>", "<td>lab</td>", "parked: <small>msg_lab1", "Not on the dynamic allowlist"} {
			if !strings.Contains(page, want) {
				t.Errorf("the subject page lacks %q", want)
			}
		}
		subjectPage = page
		if code, page, _ := ana.get("/subject?kind=caller&id=" + url.QueryEscape(d.agent) + "&res=hour"); code != 200 || !strings.Contains(page, "per hour") {
			t.Errorf("hourly chart: HTTP %d", code)
		}
	})

	t.Run("sources", func(t *testing.T) {
		noCDRs := newBrowser(t, newTestServer(t, d, rel, func(o *Options) { o.StoreCDRs = false }).URL)
		noCDRs.login("vic", testPassword)
		testSources(t, d, ana, noCDRs)
	})

	alert := d.alertOf(d.agent)
	t.Run("decide", func(t *testing.T) {
		tok := csrf(t, subjectPage)
		back := "/subject?kind=caller&id=" + url.QueryEscape(d.agent)
		code, _, h := ana.post("/decide", url.Values{"csrf": {tok}, "kind": {"caller"}, "subject": {d.agent}, "alert_id": {alert},
			"action": {"confirm"}, "reason": {"call shop, 90% rejected"}, "back": {back}})
		if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "msg=") {
			t.Fatalf("confirm: HTTP %d to %s", code, h.Get("Location"))
		}
		rows := d.query(t, "SELECT action, by, reason, source, alert_id FROM "+d.store.db+".decisions WHERE subject = ?", d.agent)
		if len(rows) != 1 || rows[0] != "confirm ana call shop, 90% rejected console "+alert {
			t.Errorf("decisions after confirm: %q", rows)
		}
		_, page, _ := ana.get(back)
		if !strings.Contains(page, "Decided: <b>confirm</b> by ana") {
			t.Errorf("the subject page does not show the decision")
		}
		_, page, _ = ana.get("/?decided=open")
		if strings.Contains(page, alert) {
			t.Errorf("the open queue still lists the decided alert %s", alert)
		}
		_, page, _ = ana.get("/?decided=decided")
		if !strings.Contains(page, "confirm by ana") {
			t.Errorf("the decided queue does not show confirm by ana")
		}

		code, _, _ = ana.post("/decide", url.Values{"csrf": {tok}, "kind": {"caller"}, "subject": {d.agent}, "alert_id": {alert},
			"action": {"false_positive"}, "reason": {"customer's survey line"}, "back": {back}})
		if code != http.StatusSeeOther || len(rel.releases) != 1 {
			t.Fatalf("false positive: HTTP %d, %d releases", code, len(rel.releases))
		}
		if r := rel.releases[0]; r != (ReleaseRequest{Subject: d.agent, SubjectKind: "caller", Reason: "customer's survey line", By: "ana", AlertID: alert, Action: "false_positive"}) {
			t.Errorf("release request %+v", r)
		}
		code, _, h = ana.post("/decide", url.Values{"csrf": {tok}, "kind": {"caller"}, "subject": {d.agent}, "alert_id": {alert},
			"action": {"confirm"}, "reason": {"  "}, "back": {back}})
		if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "err=") {
			t.Errorf("a decision without a reason: HTTP %d to %s", code, h.Get("Location"))
		}
	})

	t.Run("bulk acknowledge", func(t *testing.T) {
		_, page, _ := ana.get("/?decided=open")
		var picked []string
		for _, g := range groupRefs(page) {
			if !strings.Contains(g, d.agent) && len(picked) < 3 {
				picked = append(picked, g)
			}
		}
		if len(picked) == 0 {
			t.Fatal("no open rows on the page to acknowledge")
		}
		want := 0
		for _, a := range d.alerts {
			if slices.Contains(picked, a.SubjectKind.String()+"|"+a.Subject+"|"+a.Rule) {
				want++
			}
		}
		code, _, h := ana.post("/ack", url.Values{"csrf": {csrf(t, page)}, "group": append(picked, "caller|+1|forged"), "reason": {"reviewed"}, "back": {"/?decided=open"}})
		if code != http.StatusSeeOther || !strings.Contains(h.Get("Location"), "msg=") {
			t.Fatalf("ack: HTTP %d to %s", code, h.Get("Location"))
		}
		rows := d.query(t, "SELECT count() FROM "+d.store.db+".decisions WHERE action = 'acknowledge' AND by = 'ana'")
		if rows[0] != itoaT(want) {
			t.Errorf("acknowledged %s alerts, want %d: every alert of the %d rows ticked (the forged one skipped)", rows[0], want, len(picked))
		}
		_, page, _ = ana.get("/?decided=open")
		for _, g := range groupRefs(page) {
			if slices.Contains(picked, g) {
				t.Errorf("the acknowledged row %s is still open", g)
			}
		}
	})

	t.Run("deliveries and quality", func(t *testing.T) {
		now := time.Now().UTC()
		err := d.client.InsertHookDeliveries(context.Background(), []clickhouse.HookDelivery{
			{Time: now.Add(-time.Minute), RequestID: "req-held", AlertID: alert, Endpoint: "bss", Action: "suspend", SubjectKind: "caller", Subject: d.agent, Rule: "call_shop_agent", Outcome: "held", Mode: "enforce"},
			{Time: now.Add(-time.Minute), RequestID: "req-parked", Endpoint: "bss", Action: "suspend", SubjectKind: "caller", Subject: "+15550000001", Rule: "call_shop_agent", Attempt: 8, StatusCode: 503, Outcome: "parked", Mode: "enforce", Error: "HTTP 503"},
			{Time: now.Add(-2 * time.Minute), RequestID: "req-shadow", Endpoint: "lab", Action: "suspend", SubjectKind: "caller", Subject: d.agent, Rule: "call_shop_agent", Outcome: "shadow", Mode: "shadow"},
		})
		if err != nil {
			t.Fatal(err)
		}
		code, page, _ := ana.get("/deliveries")
		if code != 200 || !strings.Contains(page, "req-parked") || !strings.Contains(page, "1 held, 1 parked") {
			t.Fatalf("deliveries: HTTP %d\n%.3000s", code, page)
		}
		if strings.Contains(page, "/approve") {
			t.Errorf("an analyst is offered approve")
		}
		code, _, _ = ana.post("/deliveries/held/req-held/approve", url.Values{"csrf": {csrf(t, page)}, "reason": {"ok"}})
		if code != http.StatusForbidden || len(rel.held) != 0 {
			t.Errorf("an analyst approving: HTTP %d, %v", code, rel.held)
		}
		sue := newBrowser(t, ts.URL)
		sue.login("sue", testPassword)
		_, page, _ = sue.get("/deliveries")
		code, _, _ = sue.post("/deliveries/held/req-held/approve", url.Values{"csrf": {csrf(t, page)}, "reason": {"checked"}, "back": {"/deliveries"}})
		code2, _, _ := sue.post("/deliveries/parked/req-parked/redeliver", url.Values{"csrf": {csrf(t, page)}, "reason": {"bss back"}, "back": {"/deliveries"}})
		if code != http.StatusSeeOther || code2 != http.StatusSeeOther || strings.Join(rel.held, ",") != "req-held true sue,req-parked redeliver sue" {
			t.Errorf("supervisor approve and redeliver: HTTP %d %d, %v", code, code2, rel.held)
		}
		code, page, _ = ana.get("/quality")
		if code != 200 || !strings.Contains(page, "call_shop_agent") || !strings.Contains(page, "<td>lab</td>") {
			t.Fatalf("quality: HTTP %d\n%.3000s", code, page)
		}
	})
}

// TestSubjectWithoutReleaseAPI: when the release API cannot be reached
// the subject page says so plainly and still shows the evidence.
func TestSubjectWithoutReleaseAPI(t *testing.T) {
	d := loadDay(t, 0.01)
	rel, err := NewHTTPReleaser("http://"+freeAddr(t), "some-token-0123456789", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, d, rel)
	b := newBrowser(t, ts.URL)
	b.login("vic", testPassword)
	a := d.alerts[0]
	code, page, _ := b.get("/subject?kind=" + a.SubjectKind.String() + "&id=" + url.QueryEscape(a.Subject))
	if code != 200 {
		t.Fatalf("subject: HTTP %d\n%.2000s", code, page)
	}
	for _, want := range []string{"The release API cannot be reached, so the suspension state is unknown right now", "Why it fired", a.AlertID, "Webhook attempts", "Decisions"} {
		if !strings.Contains(page, want) {
			t.Errorf("the subject page lacks %q", want)
		}
	}
}

// TestAccessControl: a viewer cannot decide, requests without a session
// or the CSRF token are refused, wrong passwords are rate-limited.
func TestAccessControl(t *testing.T) {
	d := loadDay(t, 0.01)
	rel := &fakeReleaser{}
	ts := newTestServer(t, d, rel)
	a := d.alerts[0]
	form := func(tok string) url.Values {
		return url.Values{"csrf": {tok}, "kind": {a.SubjectKind.String()}, "subject": {a.Subject}, "alert_id": {a.AlertID},
			"action": {"false_positive"}, "reason": {"x"}}
	}
	anon := newBrowser(t, ts.URL)
	if code, _, h := anon.get("/"); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/login") {
		t.Errorf("queue without a session: HTTP %d to %s", code, h.Get("Location"))
	}
	if code, _, _ := anon.post("/decide", form("")); code != http.StatusUnauthorized {
		t.Errorf("decide without a session: HTTP %d, want 401", code)
	}
	vic := newBrowser(t, ts.URL)
	if code := vic.login("vic", testPassword); code != http.StatusSeeOther {
		t.Fatalf("viewer login: HTTP %d", code)
	}
	_, page, _ := vic.get("/subject?kind=" + a.SubjectKind.String() + "&id=" + url.QueryEscape(a.Subject))
	if strings.Contains(page, `action="/decide"`) {
		t.Errorf("a viewer is shown the decide form")
	}
	if code, _, _ := vic.post("/decide", form(csrf(t, page))); code != http.StatusForbidden {
		t.Errorf("a viewer deciding: HTTP %d, want 403", code)
	}
	ana := newBrowser(t, ts.URL)
	ana.login("ana", testPassword)
	_, page, _ = ana.get("/")
	if code, _, _ := ana.post("/decide", form("")); code != http.StatusForbidden {
		t.Errorf("decide without the CSRF token: HTTP %d, want 403", code)
	}
	if code, _, _ := ana.post("/decide", form(csrf(t, mustGet(t, vic, "/")))); code != http.StatusForbidden {
		t.Errorf("decide with another session's CSRF token: HTTP %d, want 403", code)
	}
	if code, _, _ := ana.post("/decide", form(csrf(t, page))); code != http.StatusSeeOther {
		t.Errorf("decide with the token: HTTP %d, want 303", code)
	}
	if len(rel.releases) != 1 || rel.releases[0].By != "ana" {
		t.Errorf("releases: %+v, want one by ana", rel.releases)
	}
	// Cross-site POSTs are refused whatever the cookie.
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/decide", strings.NewReader(form(csrf(t, page)).Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, err := ana.c.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site decide: %v %v, want 403", resp.StatusCode, err)
	}

	mallory := newBrowser(t, ts.URL)
	var codes []int
	for range 7 {
		codes = append(codes, mallory.login("sue", "wrong password"))
	}
	if codes[0] != http.StatusUnauthorized || codes[6] != http.StatusTooManyRequests {
		t.Errorf("wrong passwords answered %v, want 401 first and 429 after the burst", codes)
	}
	if code := newBrowser(t, ts.URL).login("sue", testPassword); code != http.StatusTooManyRequests {
		t.Errorf("the right password during the lockout: HTTP %d, want 429 (per user name)", code)
	}
	forged := newBrowser(t, ts.URL)
	u, _ := url.Parse(ts.URL)
	forged.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: "eyJ1IjoiZXZlIiwiciI6MywiZSI6OTk5OTk5OTk5OSwibiI6IngifQ.AAAA"}})
	if code, _, _ := forged.get("/"); code != http.StatusSeeOther {
		t.Errorf("a forged session cookie: HTTP %d, want a redirect to login", code)
	}
}

var groupRE = regexp.MustCompile(`name="group" value="([^"]+)"`)

// groupRefs are the queue rows' checkbox values of a page.
func groupRefs(page string) []string {
	var out []string
	for _, m := range groupRE.FindAllStringSubmatch(page, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

func mustGet(t *testing.T, b *browser, path string) string {
	t.Helper()
	code, page, _ := b.get(path)
	if code != 200 {
		t.Fatalf("GET %s: HTTP %d", path, code)
	}
	return page
}

// alertOf is the highest-scored alert of a subject.
func (d *testDay) alertOf(subject string) string {
	best, id := -1.0, ""
	for _, a := range d.alerts {
		if a.Subject == subject && a.Score > best {
			best, id = a.Score, a.AlertID
		}
	}
	return id
}

// query returns each row's columns joined by spaces.
func (d *testDay) query(t *testing.T, q string, args ...any) []string {
	t.Helper()
	rows, err := d.client.Conn().Query(context.Background(), q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		cols := rows.ColumnTypes()
		vals := make([]any, len(cols))
		for i := range vals {
			var s string
			vals[i] = &s
		}
		if err := rows.Scan(vals...); err != nil {
			// fall back to counts
			var n uint64
			if err2 := rows.Scan(&n); err2 != nil {
				t.Fatalf("scan: %v", err)
			}
			out = append(out, itoaT(int(n)))
			continue
		}
		var parts []string
		for _, v := range vals {
			parts = append(parts, *v.(*string))
		}
		out = append(out, strings.Join(parts, " "))
	}
	return out
}

func itoaT(n int) string { return strconvItoa(n) }

var strconvItoa = strconv.Itoa
