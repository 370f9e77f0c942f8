package console

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestQueryTimesOnAYear measures the console's queries on a year of
// alerts (CDRGUARD_CONSOLE_YEAR_ALERTS of them, default 1,000,000, spread
// over 365 days on 50,000 subjects, with 20,000 decisions) and logs the
// median of five runs of each. It runs only with CDRGUARD_CONSOLE_YEAR=1.
func TestQueryTimesOnAYear(t *testing.T) {
	if os.Getenv("CDRGUARD_CONSOLE_YEAR") != "1" {
		t.Skip("set CDRGUARD_CONSOLE_YEAR=1 to measure the queries on a year of alerts")
	}
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("CDRGUARD_CONSOLE_YEAR_ALERTS")); err == nil && v > 0 {
		n = v
	}
	d := loadDay(t, 0.01)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	end := time.Now().UTC().Truncate(24 * time.Hour)
	start := end.Add(-365 * 24 * time.Hour)
	conn := d.client.Conn()
	rulesList := "['call_shop_agent','dialling_burst','sustained_dialling','repeat_harassment','war_dialling','sim_rotation','dialler_pool_trunk']"
	if err := conn.Exec(ctx, `INSERT INTO `+d.store.db+`.alerts (alert_id, rule, severity, action, subject_kind, subject, window_start, window_end, detected_at, score, reason, caller_ids, calls, short_calls, distinct_callees, window_s)
SELECT hex(cityHash64(number)), `+rulesList+`[number % 7 + 1], if(number % 3 = 0, 'critical', 'warning'), if(number % 3 = 0, 'suspend', 'alert'),
    'caller', concat('+1555', toString(1000000 + number % 50000)), toDateTime(`+strconv.FormatInt(start.Unix(), 10)+` + intDiv(number * 31536000, `+strconv.Itoa(n)+`)) - 3600,
    toDateTime(`+strconv.FormatInt(start.Unix(), 10)+` + intDiv(number * 31536000, `+strconv.Itoa(n)+`)), toDateTime(`+strconv.FormatInt(start.Unix(), 10)+` + intDiv(number * 31536000, `+strconv.Itoa(n)+`)),
    (number * 7919) % 1000, 'synthetic', [], 100 + number % 500, 80 + number % 400, 90 + number % 400, 3600
FROM system.numbers LIMIT `+strconv.Itoa(n)); err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, `INSERT INTO `+d.store.db+`.decisions (time, decision_id, subject_kind, subject, action, alert_id, request_id, by, reason, source)
SELECT now() - number, hex(cityHash64(number, 1)), 'caller', concat('+1555', toString(1000000 + (number * 50) % 50000)),
    ['confirm','false_positive','acknowledge'][number % 3 + 1], hex(cityHash64(number * 50)), '', 'ana', 'bulk', 'console'
FROM system.numbers LIMIT 20000`); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	measure := func(name string, f func() error) {
		var ds []time.Duration
		for range 5 {
			t0 := time.Now()
			if err := f(); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		t.Logf("%-40s median %7.1f ms (min %.1f, max %.1f)", name, ms(ds[2]), ms(ds[0]), ms(ds[4]))
	}
	week := QueueFilter{From: now.Add(-7 * 24 * time.Hour), To: now, Decided: "open", Limit: pageSize + 1}
	year := QueueFilter{From: now.Add(-366 * 24 * time.Hour), To: now, Decided: "open", Limit: pageSize + 1}
	yearRule := year
	yearRule.Rule, yearRule.Severity, yearRule.Offset = "call_shop_agent", "critical", 10*pageSize
	measure("queue page, last 7 days", func() error { _, err := d.store.QueueGroups(ctx, week); return err })
	measure("queue counts by rule, last 7 days", func() error { _, err := d.store.QueueCounts(ctx, week); return err })
	measure("queue page, whole year", func() error { _, err := d.store.QueueGroups(ctx, year); return err })
	measure("queue counts by rule, whole year", func() error { _, err := d.store.QueueCounts(ctx, year); return err })
	measure("queue page 11, year, rule+severity", func() error { _, err := d.store.QueueGroups(ctx, yearRule); return err })
	measure("subject alerts (one number)", func() error { _, err := d.store.SubjectAlerts(ctx, "caller", "+15551000042", 200); return err })
	measure("subject decisions (one number)", func() error { _, err := d.store.SubjectDecisions(ctx, "caller", "+15551000050", 200); return err })
	measure("rule quality, last 30 days", func() error { _, err := d.store.RuleQuality(ctx, now.Add(-30*24*time.Hour), now); return err })
	measure("rule quality, whole year", func() error { _, err := d.store.RuleQuality(ctx, now.Add(-366*24*time.Hour), now); return err })
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
