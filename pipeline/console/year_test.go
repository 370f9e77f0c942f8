package console

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/schemas"
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

// TestSourceQueryTimes measures a source's queries (chart, caller IDs,
// recent CDRs, from the cdrs table) on the generated day, then on a year
// of generated CDRs (CDRGUARD_CONSOLE_YEAR_CDRS, default 20,000,000, on
// eight trunks), and logs the median of five runs of each. It runs only
// with CDRGUARD_CONSOLE_YEAR=1.
func TestSourceQueryTimes(t *testing.T) {
	if os.Getenv("CDRGUARD_CONSOLE_YEAR") != "1" {
		t.Skip("set CDRGUARD_CONSOLE_YEAR=1 to measure a source's queries on a year of CDRs")
	}
	n := 20_000_000
	if v, err := strconv.Atoi(os.Getenv("CDRGUARD_CONSOLE_YEAR_CDRS")); err == nil && v > 0 {
		n = v
	}
	d := loadDay(t, 0.05)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
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
		t.Logf("%-48s median %7.1f ms (min %.1f, max %.1f)", name, ms(ds[2]), ms(ds[0]), ms(ds[4]))
	}
	pages := func(label, kind, source string, end time.Time) {
		day := end.Truncate(24 * time.Hour)
		measure(label+": chart, one day per minute", func() error {
			_, err := d.store.SourceSeries(ctx, kind, source, day, day.Add(24*time.Hour), false, 10)
			return err
		})
		measure(label+": chart, 7 days per hour", func() error {
			_, err := d.store.SourceSeries(ctx, kind, source, day.Add(-6*24*time.Hour), day.Add(24*time.Hour), true, 10)
			return err
		})
		measure(label+": chart, 14 days per hour (the longest)", func() error {
			_, err := d.store.SourceSeries(ctx, kind, source, day.Add(-13*24*time.Hour), day.Add(24*time.Hour), true, 10)
			return err
		})
		measure(label+": caller IDs, one day", func() error {
			_, err := d.store.SourceCallers(ctx, kind, source, day, day.Add(24*time.Hour), 200)
			return err
		})
		measure(label+": recent CDRs", func() error { _, err := d.store.SourceCDRs(ctx, kind, source, end, 50); return err })
	}
	trunk, imei := d.topAlert(schemas.SubjectTrunk), d.topAlert(schemas.SubjectIMEI)
	pages("day, trunk "+trunk.Subject, "trunk", trunk.Subject, trunk.WindowEnd)
	pages("day, imei "+imei.Subject, "imei", imei.Subject, imei.WindowEnd)

	end := time.Now().UTC().Truncate(24 * time.Hour)
	start := end.Add(-365 * 24 * time.Hour)
	t0 := time.Now()
	const chunk = 2_000_000 // rows per insert, about 36 days: under 18.16's partitions per insert block
	for off := 0; off < n; off += chunk {
		q := fmt.Sprintf(`INSERT INTO %s.cdrs (call_id, call_id_synthetic, caller, callee, start_time, duration_s, disposition, attestation, cause_code, trunk, source_ip, imsi, imei, cell_id)
SELECT concat('g-', toString(number)), 0, concat('+1556', toString(1000000 + number %% 200000)), concat('+1557', toString(number * 7 %% 1000000)),
    toDateTime(%d + intDiv(number * 31536000, %d)), number %% 120, ['answered','no_answer','busy','rejected'][number %% 4 + 1], 'B', 16,
    concat('tr-gen-', toString(number %% 8)), concat('10.0.', toString(number %% 250), '.1'), '', concat('35', toString(number %% 100000)), ''
FROM system.numbers LIMIT %d, %d`, d.store.db, start.Unix(), n, off, min(chunk, n-off))
		if err := d.client.Conn().Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("inserted %d CDRs over 365 days (%d a day, %d a day on each trunk) in %s", n, n/365, n/365/8, time.Since(t0).Round(time.Second))
	pages("year, trunk tr-gen-3", "trunk", "tr-gen-3", end.Add(-time.Hour))
	pages("year, imei 3512345", "imei", "3512345", end.Add(-time.Hour))
	measure("year, trunk tr-gen-3: chart over the whole year (unbounded)", func() error {
		_, err := d.store.SourceSeries(ctx, "trunk", "tr-gen-3", start, end, true, 10)
		return err
	})
}
