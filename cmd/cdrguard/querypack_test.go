package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cdrguard/cdrguard/pipeline/synth"
)

// runQuery runs a query-pack file over ClickHouse's HTTP interface with
// now() and __CALLER__ replaced, and returns its rows.
func runQuery(t *testing.T, httpAddr, db, file, now, caller string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../schemas/clickhouse/queries", file))
	if err != nil {
		t.Fatal(err)
	}
	q := strings.ReplaceAll(string(b), "now()", now)
	q = strings.ReplaceAll(q, "__CALLER__", caller)
	q = strings.TrimRight(strings.TrimSpace(q), ";") + "\nFORMAT JSONEachRow"
	resp, err := http.Post("http://"+httpAddr+"/?database="+url.QueryEscape(db), "text/plain", strings.NewReader(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s: HTTP %d: %s", file, resp.StatusCode, msg)
	}
	var rows []map[string]any
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var row map[string]any
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		rows = append(rows, row)
	}
	return rows
}

func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case string:
		var f float64
		fmt.Sscan(x, &f)
		return f
	}
	return 0
}

// checkQueryPack runs every analyst query on the tables a run wrote from
// a generated day and checks its answer against the day's ground truth.
func checkQueryPack(t *testing.T, httpAddr, db string, day *synth.Day, alertCount int) {
	t.Helper()
	robo := map[string]bool{}
	class := map[string]synth.Class{}
	for _, l := range day.Labels {
		robo[l.Kind+" "+l.Subject] = l.Robo
		class[l.Kind+" "+l.Subject] = l.Class
	}
	const dayEnd = "toDateTime('2026-11-03 00:00:00', 'UTC')"
	isRobo := func(row map[string]any) bool {
		if c, ok := row["caller"]; ok { // traffic queries list callers
			k := "caller " + fmt.Sprint(c)
			return robo[k] || class[k] == synth.BulkNotifier // the allowlisted notifier does make short calls
		}
		return robo[fmt.Sprint(row["subject_kind"])+" "+fmt.Sprint(row["subject"])]
	}

	for _, q := range []struct{ file, now string }{
		{"top_offenders_last_day.sql", dayEnd},
		{"top_offenders_last_hour.sql", "toDateTime('2026-11-02 15:00:00', 'UTC')"},
	} {
		rows := runQuery(t, httpAddr, db, q.file, q.now, "")
		if len(rows) == 0 {
			t.Errorf("%s: no offenders", q.file)
		}
		if len(rows) > 0 && num(rows[0]["alerts"]) == 0 {
			t.Errorf("%s: the top offender has no alert: %v", q.file, rows[0])
		}
		for _, r := range rows {
			if num(r["alerts"]) > 0 && !isRobo(r) {
				t.Errorf("%s lists %v, flagged but not a robo-dialer", q.file, r)
			}
		}
	}

	var agent string
	for _, l := range day.Labels {
		if l.Class == synth.Telemarketer {
			agent = l.Subject
			break
		}
	}
	rows := runQuery(t, httpAddr, db, "number_timeline.sql", dayEnd, agent)
	var minuteCalls, alerts int
	for _, r := range rows {
		switch r["kind"] {
		case "minute":
			minuteCalls += int(num(r["calls"]))
		case "alert":
			alerts++
		}
	}
	fileCalls := 0
	for i := range day.Records {
		if day.Records[i].Caller == agent {
			fileCalls++
		}
	}
	if alerts == 0 || minuteCalls == 0 || minuteCalls > fileCalls {
		t.Errorf("timeline of telemarketer %s: %d alerts, %d calls in minute rows (the file has %d)", agent, alerts, minuteCalls, fileCalls)
	}

	total := 0
	for _, r := range runQuery(t, httpAddr, db, "alerts_by_rule_hourly.sql", dayEnd, "") {
		total += int(num(r["alerts"]))
	}
	if total != alertCount {
		t.Errorf("alerts_by_rule_hourly counts %d alerts, the table holds %d", total, alertCount)
	}

	pools := map[string]bool{}
	for _, r := range runQuery(t, httpAddr, db, "sources_many_callers.sql", dayEnd, "") {
		if !isRobo(r) {
			t.Errorf("sources_many_callers lists %v %v, which is not a robo source", r["subject_kind"], r["subject"])
		}
		pools[fmt.Sprint(r["subject_kind"])+" "+fmt.Sprint(r["subject"])] = true
	}
	for _, l := range day.Labels {
		if l.Class == synth.AIPool && l.Kind == "trunk" && !pools["trunk "+l.Subject] {
			t.Errorf("sources_many_callers does not list AI-pool trunk %s", l.Subject)
		}
	}

	// Repeat victims: the number each harasser called most is listed.
	most := map[string]map[string]int{}
	for i := range day.Records {
		c := &day.Records[i]
		if class["caller "+c.Caller] == synth.Harasser {
			if most[c.Caller] == nil {
				most[c.Caller] = map[string]int{}
			}
			most[c.Caller][c.Callee]++
		}
	}
	victims := map[string]bool{}
	for _, r := range runQuery(t, httpAddr, db, "repeat_victims.sql", dayEnd, "") {
		victims[fmt.Sprint(r["callee"])] = true
	}
	listed := 0
	for _, callees := range most {
		best, n := "", 0
		for callee, k := range callees {
			if k > n {
				best, n = callee, k
			}
		}
		if victims[best] {
			listed++
		}
	}
	if listed < len(most)*8/10 {
		t.Errorf("repeat_victims lists the main victim of %d of %d harassers", listed, len(most))
	}

	if rows := runQuery(t, httpAddr, db, "allowlisted_alerts.sql", dayEnd, ""); len(rows) != 0 {
		t.Errorf("allowlisted_alerts: %d alerts on allowlisted numbers, want none (they are exempt): %v", len(rows), rows[0])
	}

	hits := 0
	for _, r := range runQuery(t, httpAddr, db, "rule_hit_rates.sql", dayEnd, "") {
		hits += int(num(r["alerts"]))
		if num(r["active_callers"]) == 0 {
			t.Errorf("rule_hit_rates: no active callers on %v", r["day"])
		}
	}
	if hits != alertCount {
		t.Errorf("rule_hit_rates counts %d alerts, the table holds %d", hits, alertCount)
	}
	t.Logf("query pack checked on the generated day: %d alerts, telemarketer %s with %d alerts, %d of %d harassers' victims listed",
		alertCount, agent, alerts, listed, len(most))
}
