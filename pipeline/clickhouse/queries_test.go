package clickhouse

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
	chschema "github.com/cdrguard/cdrguard/schemas/clickhouse"
)

// queryNow is the time reference the query test substitutes for now().
const queryNow = "toDateTime('2026-11-26 12:00:00', 'UTC')"

// queryCaller is the number the test puts in for the pack's __CALLER__.
const queryCaller = "+15550100001"

func alertAt(id, rule string, sev schemas.Severity, action schemas.Action, kind schemas.SubjectKind, subject, at string, score float64, m schemas.Metrics, ids ...string) schemas.Alert {
	return schemas.Alert{AlertID: id, Rule: rule, Severity: sev, Action: action, SubjectKind: kind, Subject: subject,
		WindowStart: ts(at).Add(-10 * time.Minute), WindowEnd: ts(at), DetectedAt: ts(at), Score: score,
		Metrics: m, Reason: rule + " on " + subject, CallerIDs: ids}
}

// queryDataset is the data the query pack runs on: t_now is 2026-11-26
// 12:00:00 UTC; some rows are just outside each query's period.
func queryDataset() []*Rows {
	const (
		crit, warn = schemas.SeverityCritical, schemas.SeverityWarning
		susp, alrt = schemas.ActionSuspend, schemas.ActionAlert
		caller     = schemas.SubjectCaller
	)
	alerts := []schemas.Alert{
		alertAt("a1", "short_burst", crit, susp, caller, "+15550100001", "2026-11-26 11:30:20", 100, schemas.Metrics{Calls: 120, ShortCalls: 119, DistinctCallees: 118}),
		alertAt("a2", "wardialer", warn, alrt, caller, "+15550100001", "2026-11-26 11:45:10", 50, schemas.Metrics{Calls: 140, ShortCalls: 130, DistinctCallees: 140}),
		alertAt("a3", "short_burst", warn, alrt, caller, "+15550100002", "2026-11-26 11:10:00", 30, schemas.Metrics{Calls: 40, ShortCalls: 35}),
		alertAt("a4", "short_burst", crit, susp, caller, "+15550100003", "2026-11-26 09:00:00", 500, schemas.Metrics{Calls: 600, ShortCalls: 590}),
		alertAt("a5", "source_pool", warn, alrt, schemas.SubjectTrunk, "trunk-7", "2026-11-26 11:50:00", 80, schemas.Metrics{Calls: 80, DistinctCallers: 40, CallsPerCaller: 2}, "+15550300001", "+15550300002"),
		alertAt("a6", "source_pool", warn, alrt, schemas.SubjectTrunk, "trunk-7", "2026-11-26 10:00:00", 60, schemas.Metrics{Calls: 75, DistinctCallers: 25, CallsPerCaller: 3}, "+15550300009"),
		alertAt("a7", "source_pool", warn, alrt, schemas.SubjectIMEI, "352099001761481", "2026-11-26 11:55:00", 20, schemas.Metrics{Calls: 36, DistinctCallers: 12, CallsPerCaller: 3}, "+15550400001"),
		alertAt("a8", "short_burst", warn, alrt, caller, "+18005550123", "2026-11-26 11:20:00", 10, schemas.Metrics{Calls: 30, ShortCalls: 25}),
		alertAt("a9", "short_burst", crit, susp, caller, "+15550100001", "2026-11-10 11:00:00", 999, schemas.Metrics{Calls: 999}),
	}
	hour := func(caller, at string, calls, short uint32, version uint64) detectors.CallerPeriod {
		return detectors.CallerPeriod{Caller: caller, Start: ts(at), Calls: calls, ShortCalls: short, Answered: calls - short, Rejected: short / 2, DistinctCallees: calls, Version: version}
	}
	minute := func(caller, at string, calls uint32) detectors.CallerMinute {
		return detectors.CallerMinute{Caller: caller, Minute: ts(at), Calls: calls, ShortCalls: calls - 1, Answered: 1, Rejected: calls / 2, TalkS: 3, DistinctCallees: calls}
	}
	var days []detectors.CallerPeriod
	for i := range 8 {
		days = append(days, detectors.CallerPeriod{Caller: fmt.Sprintf("+1555010000%d", i+1), Start: ts("2026-11-26 00:00:00"), Calls: 30, Version: 1})
	}
	days = append(days,
		detectors.CallerPeriod{Caller: "+15550100001", Start: ts("2026-11-26 00:00:00"), Calls: 400, Version: 2},
		detectors.CallerPeriod{Caller: "+15550100001", Start: ts("2026-11-25 00:00:00"), Calls: 40, Version: 1})
	cdr := func(id, caller, callee, at string, disp schemas.Disposition, talk int32) schemas.CDR {
		c := schemas.CDR{CallID: id, Caller: caller, Callee: callee, StartMS: ts(at).UnixMilli(), Disposition: disp, DurationS: talk}
		if disp == schemas.Answered {
			c.AnswerMS = c.StartMS + 3000
			c.EndMS = c.AnswerMS + int64(talk)*1000
		}
		return c
	}
	var cdrs []schemas.CDR
	// V1 is called 4 times by the flagged +15550100001 (2 short answers,
	// 2 rejections) and once, properly, by someone else.
	cdrs = append(cdrs,
		cdr("v1a", "+15550100001", "+15550200001", "2026-11-26 11:29:01", schemas.Answered, 2),
		cdr("v1b", "+15550100001", "+15550200001", "2026-11-26 11:31:01", schemas.Answered, 1),
		cdr("v1c", "+15550100001", "+15550200001", "2026-11-26 11:33:01", schemas.Rejected, 0),
		cdr("", "+15550100001", "+15550200001", "2026-11-26 11:35:01", schemas.Busy, 0),
		cdr("v1e", "+15550999999", "+15550200001", "2026-11-26 08:00:00", schemas.Answered, 60))
	// V2 refuses 6 calls from 6 callers nobody flagged.
	for i := range 6 {
		disp := schemas.Rejected
		if i%2 == 1 {
			disp = schemas.Busy
		}
		cdrs = append(cdrs, cdr(fmt.Sprint("v2", i), fmt.Sprintf("+1555088800%d", i), "+15550200002", fmt.Sprintf("2026-11-26 10:0%d:00", i), disp, 0))
	}
	// V3: only twice by a flagged caller. V4: 5 long calls. V5: outside the day.
	cdrs = append(cdrs,
		cdr("v3a", "+15550100001", "+15550200003", "2026-11-26 12:00:00", schemas.Rejected, 0),
		cdr("v3b", "+15550100001", "+15550200003", "2026-11-26 11:41:00", schemas.Rejected, 0))
	for i := range 5 {
		cdrs = append(cdrs, cdr(fmt.Sprint("v4", i), "+15550777777", "+15550200004", fmt.Sprintf("2026-11-26 09:0%d:00", i), schemas.Answered, 120))
	}
	for i := range 6 {
		cdrs = append(cdrs, cdr(fmt.Sprint("v5", i), "+15550100001", "+15550200005", fmt.Sprintf("2026-11-24 09:0%d:00", i), schemas.Rejected, 0))
	}
	return []*Rows{
		{
			Alerts: alerts,
			CallerHours: []detectors.CallerPeriod{
				hour("+15550100001", "2026-11-26 10:00:00", 100, 90, 1),
				hour("+15550100001", "2026-11-26 11:00:00", 200, 190, 2),
				hour("+15550100003", "2026-11-26 09:00:00", 500, 480, 2),
				hour("+15550100004", "2026-11-26 05:00:00", 30, 3, 1),
				hour("+15550100004", "2026-11-24 05:00:00", 900, 900, 1),
			},
			CallerMinutes: []detectors.CallerMinute{
				minute("+15550100001", "2026-11-26 11:29:00", 60),
				minute("+15550100001", "2026-11-26 11:30:00", 61),
				minute("+15550100001", "2026-11-26 11:44:00", 30),
				minute("+15550100001", "2026-11-24 11:44:00", 99),
				minute("+15550100002", "2026-11-26 11:30:00", 20),
			},
			CallerDays: days,
			CDRs:       cdrs,
		},
		// A replay: the same alerts and CDRs again (deduplicated), and a
		// newer version of one hour.
		{
			Alerts:      alerts[:3],
			CDRs:        cdrs[:4],
			CallerHours: []detectors.CallerPeriod{hour("+15550100001", "2026-11-26 10:00:00", 150, 140, 3)},
		},
	}
}

// queryChecks maps every file of the query pack to the columns to check
// and the rows expected from queryDataset.
var queryChecks = map[string]struct {
	cols []string
	want [][]string
}{
	"top_offenders_last_hour.sql": {
		[]string{"subject_kind", "subject", "alerts", "rules", "worst_severity", "max_score", "max_calls"},
		[][]string{
			{"caller", "+15550100001", "2", "[short_burst wardialer]", "critical", "100", "140"},
			{"trunk", "trunk-7", "1", "[source_pool]", "warning", "80", "80"},
			{"caller", "+15550100002", "1", "[short_burst]", "warning", "30", "40"},
			{"imei", "352099001761481", "1", "[source_pool]", "warning", "20", "36"},
			{"caller", "+18005550123", "1", "[short_burst]", "warning", "10", "30"},
		},
	},
	"top_offenders_last_day.sql": {
		[]string{"caller", "calls", "short_calls", "answered", "short_ratio", "alerts", "max_score"},
		[][]string{
			{"+15550100003", "500", "480", "20", "0.96", "1", "500"},
			{"+15550100001", "350", "330", "20", "0.943", "2", "100"},
			{"+15550100004", "30", "3", "27", "0.1", "0", "0"},
		},
	},
	"number_timeline.sql": {
		[]string{"t", "kind", "calls", "short_calls", "rule", "severity", "score"},
		[][]string{
			{"2026-11-26 11:29:00", "minute", "60", "59", "", "", "0"},
			{"2026-11-26 11:30:00", "minute", "61", "60", "", "", "0"},
			{"2026-11-26 11:30:20", "alert", "120", "119", "short_burst", "critical", "100"},
			{"2026-11-26 11:44:00", "minute", "30", "29", "", "", "0"},
			{"2026-11-26 11:45:10", "alert", "140", "130", "wardialer", "warning", "50"},
		},
	},
	"alerts_by_rule_hourly.sql": {
		[]string{"hour", "rule", "alerts", "subjects", "suspend", "critical"},
		[][]string{
			{"2026-11-26 09:00:00", "short_burst", "1", "1", "1", "1"},
			{"2026-11-26 10:00:00", "source_pool", "1", "1", "0", "0"},
			{"2026-11-26 11:00:00", "short_burst", "3", "3", "1", "1"},
			{"2026-11-26 11:00:00", "source_pool", "2", "2", "0", "0"},
			{"2026-11-26 11:00:00", "wardialer", "1", "1", "0", "0"},
		},
	},
	"sources_many_callers.sql": {
		[]string{"subject_kind", "subject", "alerts", "max_distinct_callers", "max_calls", "min_calls_per_caller", "caller_ids"},
		[][]string{
			{"trunk", "trunk-7", "2", "40", "80", "2", "[+15550300001 +15550300002]"},
			{"imei", "352099001761481", "1", "12", "36", "3", "[+15550400001]"},
		},
	},
	"repeat_victims.sql": {
		[]string{"callee", "calls", "callers", "flagged_calls", "flagged_callers", "refused", "first_call", "last_call"},
		[][]string{
			{"+15550200001", "5", "2", "4", "1", "4", "2026-11-26 08:00:00", "2026-11-26 11:35:01"},
			{"+15550200002", "6", "6", "0", "0", "6", "2026-11-26 10:00:00", "2026-11-26 10:05:00"},
		},
	},
	"allowlisted_alerts.sql": {
		[]string{"detected_at", "rule", "subject_kind", "subject", "entry", "kind", "source_file"},
		[][]string{
			{"2026-11-26 11:10:00", "short_burst", "caller", "+15550100002", "+15550100002", "number", "rules.yaml"},
			{"2026-11-26 11:20:00", "short_burst", "caller", "+18005550123", "+1800555", "prefix", "rules.yaml"},
			{"2026-11-26 11:55:00", "source_pool", "imei", "352099001761481", "352099001761481", "source", "rules.yaml"},
		},
	},
	"rule_hit_rates.sql": {
		[]string{"day", "rule", "alerts", "subjects", "callers_flagged", "active_callers", "share_of_active_callers"},
		[][]string{
			{"2026-11-26 00:00:00", "short_burst", "4", "4", "4", "8", "0.5"},
			{"2026-11-26 00:00:00", "source_pool", "3", "2", "0", "8", "0"},
			{"2026-11-26 00:00:00", "wardialer", "1", "1", "1", "8", "0.125"},
		},
	},
}

// TestQueryPack runs every query of the pack on the real server against
// queryDataset (now() replaced by 2026-11-26 12:00:00 UTC, __CALLER__ by
// a number) and checks the answers.
func TestQueryPack(t *testing.T) {
	c, opts := testClient(t, true, nil)
	s := newTestSink(t, c)
	ctx := ctxTimeout(t, time.Minute)
	for _, r := range queryDataset() {
		if err := s.Write(ctx, 0, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.ReplaceAllowlist(ctx, []string{"+15550100002"}, []string{"+1800555", "+1900"}, []string{"352099001761481", "trunk-9"}, "rules.yaml"); err != nil {
		t.Fatal(err)
	}
	conn := adminConn(t, opts.Database)
	names, err := fs.Glob(chschema.Queries, "queries/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no queries in the pack: %v", err)
	}
	for _, name := range names {
		base := path.Base(name)
		t.Run(base, func(t *testing.T) {
			check, ok := queryChecks[base]
			if !ok {
				t.Fatalf("query %s has no expected answer in queryChecks", base)
			}
			text, err := fs.ReadFile(chschema.Queries, name)
			if err != nil {
				t.Fatal(err)
			}
			q := string(text)
			if !strings.Contains(q, "now()") {
				t.Errorf("%s has no now() time reference", base)
			}
			q = strings.ReplaceAll(q, "now()", queryNow)
			q = strings.ReplaceAll(q, "__CALLER__", queryCaller)
			cols, rows := queryStrings(t, conn, q)
			got := pick(t, cols, rows, check.cols...)
			if !slices.EqualFunc(got, check.want, slices.Equal) {
				t.Errorf("%s answered (%s):\n%swant:\n%s", base, strings.Join(check.cols, ", "), tableText(got), tableText(check.want))
			}
		})
	}
	for name := range queryChecks {
		if !slices.Contains(names, "queries/"+name) {
			t.Errorf("queryChecks has %s, which is not in the pack", name)
		}
	}
}

// TestQueryPackHeaders: every query starts with a comment block saying
// what it answers, its parameters and an example.
func TestQueryPackHeaders(t *testing.T) {
	names, _ := fs.Glob(chschema.Queries, "queries/*.sql")
	for _, name := range names {
		text, err := fs.ReadFile(chschema.Queries, name)
		if err != nil {
			t.Fatal(err)
		}
		var header []string
		for line := range strings.SplitSeq(string(text), "\n") {
			if !strings.HasPrefix(line, "--") {
				break
			}
			header = append(header, line)
		}
		h := strings.Join(header, "\n")
		for _, want := range []string{"Answers:", "Parameters:", "Example:"} {
			if !strings.Contains(h, want) {
				t.Errorf("%s: the leading comment block lacks %q", name, want)
			}
		}
		if strings.Contains(string(text), "WITH ") && strings.Contains(string(text), " AS (") {
			t.Errorf("%s looks like it uses a CTE (WITH name AS (…)), which ClickHouse 18.16 lacks", name)
		}
	}
}
