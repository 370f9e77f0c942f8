package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

func sampleAlert() schemas.Alert {
	return schemas.Alert{
		AlertID:     "6f1c0a4e9b2d4c1e8f3a5b7c9d0e1f20",
		Rule:        "short_burst",
		Severity:    schemas.SeverityCritical,
		Action:      schemas.ActionSuspend,
		SubjectKind: schemas.SubjectCaller,
		Subject:     "+15550100001",
		WindowStart: ts("2026-11-26 11:20:00"),
		WindowEnd:   ts("2026-11-26 11:30:20"),
		DetectedAt:  ts("2026-11-26 11:30:20"),
		Score:       912.5,
		Reason:      "+15550100001 made 120 calls in 10m, 119 short",
		Metrics: schemas.Metrics{
			WindowS: 600, Calls: 120, Answered: 2, ShortCalls: 119, Rejected: 80, TalkS: 9,
			AnswerRatio: 0.0166, ShortRatio: 0.9916, MeanTalkS: 4.5, DistinctCallees: 118,
			MaxCalleeCalls: 2, MaxCalleeRejected: 2, MaxSeqRun: 17,
		},
	}
}

func sampleSourceAlert() schemas.Alert {
	return schemas.Alert{
		AlertID:     "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
		Rule:        "source_pool",
		Severity:    schemas.SeverityWarning,
		Action:      schemas.ActionAlert,
		SubjectKind: schemas.SubjectTrunk,
		Subject:     "trunk-7",
		WindowStart: ts("2026-11-26 10:50:00"),
		WindowEnd:   ts("2026-11-26 11:50:00"),
		DetectedAt:  ts("2026-11-26 11:50:00"),
		Score:       80,
		Reason:      "trunk trunk-7 carried 40 caller IDs",
		Metrics: schemas.Metrics{
			WindowS: 3600, Calls: 80, ShortCalls: 70, DistinctCallers: 40, CallsPerCaller: 2,
			LightCalls: 75, LightShortRatio: 0.9333,
		},
		CallerIDs: []string{"+15550300001", "+15550300002", "+15550300003"},
	}
}

func sampleRows() *Rows {
	return &Rows{
		Alerts: []schemas.Alert{sampleAlert(), sampleSourceAlert()},
		CallerMinutes: []detectors.CallerMinute{
			{Caller: "+15550100001", Minute: ts("2026-11-26 11:29:00"), Calls: 60, Answered: 1, ShortCalls: 60, Rejected: 40, TalkS: 3, DistinctCallees: 59},
			{Caller: "+15550100001", Minute: ts("2026-11-26 11:30:00"), Calls: 61, Answered: 1, ShortCalls: 59, Rejected: 40, TalkS: 6, DistinctCallees: 61},
		},
		CallerHours: []detectors.CallerPeriod{
			{Caller: "+15550100001", Start: ts("2026-11-26 11:00:00"), Calls: 121, Answered: 2, ShortCalls: 119, Rejected: 80, TalkS: 9, DistinctCallees: 118, Version: 29402370},
		},
		CallerDays: []detectors.CallerPeriod{
			{Caller: "+15550100001", Start: ts("2026-11-26 00:00:00"), Calls: 121, Answered: 2, ShortCalls: 119, Rejected: 80, TalkS: 9, DistinctCallees: 118, Version: 29402370},
		},
		NetworkMinutes: []detectors.NetworkMinute{
			{Minute: ts("2026-11-26 11:29:00"), Calls: 5000, Answered: 3500, ShortCalls: 1200, Rejected: 300, TalkS: 250000},
		},
		CDRs: []schemas.CDR{
			{CallID: "call-1", Caller: "+15550100001", Callee: "+15550200042", StartMS: ts("2026-11-26 11:29:01").UnixMilli() + 250,
				AnswerMS: ts("2026-11-26 11:29:05").UnixMilli(), EndMS: ts("2026-11-26 11:29:07").UnixMilli(), DurationS: 2,
				Disposition: schemas.Answered, Attestation: 'C', CauseCode: 16, Trunk: "trunk-7", SourceIP: "198.51.100.7",
				IMSI: "310150123456789", IMEI: "352099001761481", CellID: "cell-42"},
			{Caller: "+15550100001", Callee: "+15550200043", StartMS: ts("2026-11-26 11:29:10").UnixMilli(),
				Disposition: schemas.Rejected, CauseCode: 21, Trunk: "trunk-7"},
		},
	}
}

func newTestSink(t *testing.T, c *Client) *Sink {
	t.Helper()
	s := c.NewSink()
	t.Cleanup(func() {
		if err := s.Close(ctxTimeout(t, 30*time.Second)); err != nil {
			t.Errorf("Sink.Close: %v", err)
		}
	})
	return s
}

// TestSinkRoundTrip writes one Rows with every table and reads every
// value back.
func TestSinkRoundTrip(t *testing.T) {
	c, opts := testClient(t, true, nil)
	s := newTestSink(t, c)
	rows := sampleRows()
	if err := s.Write(ctxTimeout(t, time.Minute), 3, rows); err != nil {
		t.Fatal(err)
	}
	conn := adminConn(t, opts.Database)
	startFmt := "2026-11-26 11:29:01"
	if c.Features().DateTime64 {
		startFmt = "2026-11-26 11:29:01.250"
	}
	syntheticID := SyntheticCallID(&rows.CDRs[1])
	for _, tc := range []struct {
		query string
		want  [][]string
	}{
		{"SELECT alert_id, rule, severity, action, subject_kind, subject, window_start, window_end, detected_at, score, reason, caller_ids FROM alerts FINAL ORDER BY subject_kind, subject",
			[][]string{
				{"6f1c0a4e9b2d4c1e8f3a5b7c9d0e1f20", "short_burst", "critical", "suspend", "caller", "+15550100001", "2026-11-26 11:20:00", "2026-11-26 11:30:20", "2026-11-26 11:30:20", "912.5", "+15550100001 made 120 calls in 10m, 119 short", "[]"},
				{"0a1b2c3d4e5f60718293a4b5c6d7e8f9", "source_pool", "warning", "alert", "trunk", "trunk-7", "2026-11-26 10:50:00", "2026-11-26 11:50:00", "2026-11-26 11:50:00", "80", "trunk trunk-7 carried 40 caller IDs", "[+15550300001 +15550300002 +15550300003]"},
			}},
		{"SELECT calls, answered, short_calls, rejected, talk_s, answer_ratio, short_ratio, mean_talk_s, distinct_callees, max_callee_calls, max_callee_rejected, max_seq_run, distinct_callers, calls_per_caller, light_calls, light_short_ratio, window_s FROM alerts FINAL ORDER BY subject_kind, subject",
			[][]string{
				{"120", "2", "119", "80", "9", "0.0166", "0.9916", "4.5", "118", "2", "2", "17", "0", "0", "0", "0", "600"},
				{"80", "0", "70", "0", "0", "0", "0", "0", "0", "0", "0", "0", "40", "2", "75", "0.9333", "3600"},
			}},
		{"SELECT caller, minute, calls, answered, short_calls, rejected, talk_s, distinct_callees FROM caller_minute FINAL ORDER BY minute",
			[][]string{
				{"+15550100001", "2026-11-26 11:29:00", "60", "1", "60", "40", "3", "59"},
				{"+15550100001", "2026-11-26 11:30:00", "61", "1", "59", "40", "6", "61"},
			}},
		{"SELECT caller, hour, calls, answered, short_calls, rejected, talk_s, distinct_callees, version FROM caller_hourly FINAL",
			[][]string{{"+15550100001", "2026-11-26 11:00:00", "121", "2", "119", "80", "9", "118", "29402370"}}},
		{"SELECT caller, day, calls, answered, short_calls, rejected, talk_s, distinct_callees, version FROM caller_daily FINAL",
			[][]string{{"+15550100001", "2026-11-26 00:00:00", "121", "2", "119", "80", "9", "118", "29402370"}}},
		{"SELECT minute, source_partition, calls, answered, short_calls, rejected, talk_s FROM network_minute FINAL",
			[][]string{{"2026-11-26 11:29:00", "3", "5000", "3500", "1200", "300", "250000"}}},
		{"SELECT call_id, call_id_synthetic, caller, callee, start_time, answer_time, end_time, duration_s, disposition, attestation, cause_code, trunk, source_ip, imsi, imei, cell_id FROM cdrs FINAL ORDER BY start_time",
			[][]string{
				{"call-1", "0", "+15550100001", "+15550200042", startFmt, "2026-11-26 11:29:05", "2026-11-26 11:29:07", "2", "answered", "C", "16", "trunk-7", "198.51.100.7", "310150123456789", "352099001761481", "cell-42"},
				{syntheticID, "1", "+15550100001", "+15550200043", "2026-11-26 11:29:10", "NULL", "NULL", "0", "rejected", "", "21", "trunk-7", "", "", "", ""},
			}},
	} {
		_, got := queryStrings(t, conn, tc.query)
		if !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("%s\ngot:\n%swant:\n%s", tc.query, tableText(got), tableText(tc.want))
		}
	}
	st := s.Stats()
	for table, n := range map[string]uint64{TableAlerts: 2, TableCallerMinute: 2, TableCallerHourly: 1, TableCallerDaily: 1, TableNetworkMinute: 1, TableCDRs: 2} {
		if st.RowsWritten[table] != n || st.Inserts[table] != 1 {
			t.Errorf("Stats: %s rows %d inserts %d, want %d rows in 1 insert", table, st.RowsWritten[table], st.Inserts[table], n)
		}
	}
	if st.Writes != 1 || st.WriteErrors != 0 || st.Retries != 0 || st.PendingRows != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestSinkDuplicates writes the same rows twice and a day's rows out of
// version order: FINAL shows each row once, with the highest version.
func TestSinkDuplicates(t *testing.T) {
	c, opts := testClient(t, true, nil)
	s := newTestSink(t, c)
	ctx := ctxTimeout(t, time.Minute)
	for range 2 {
		if err := s.Write(ctx, 1, sampleRows()); err != nil {
			t.Fatal(err)
		}
	}
	day := func(calls uint32, version uint64) detectors.CallerPeriod {
		return detectors.CallerPeriod{Caller: "+15550100009", Start: ts("2026-11-26 00:00:00"), Calls: calls, ShortCalls: calls, Version: version}
	}
	hour := func(calls uint32, version uint64) detectors.CallerPeriod {
		return detectors.CallerPeriod{Caller: "+15550100009", Start: ts("2026-11-26 10:00:00"), Calls: calls, Version: version}
	}
	// Higher version first, then a lower one (a late replay), then the
	// highest, in separate inserts.
	for _, r := range []*Rows{
		{CallerDays: []detectors.CallerPeriod{day(50, 200)}, CallerHours: []detectors.CallerPeriod{hour(30, 200)}},
		{CallerDays: []detectors.CallerPeriod{day(20, 100)}, CallerHours: []detectors.CallerPeriod{hour(10, 100)}},
		{CallerDays: []detectors.CallerPeriod{day(70, 300)}, CallerHours: []detectors.CallerPeriod{hour(35, 300)}},
		{CallerDays: []detectors.CallerPeriod{day(60, 250)}},
	} {
		if err := s.Write(ctx, 1, r); err != nil {
			t.Fatal(err)
		}
	}
	conn := adminConn(t, opts.Database)
	for query, want := range map[string]string{
		"SELECT count() FROM alerts FINAL":                                      "2",
		"SELECT count() FROM caller_minute FINAL":                               "2",
		"SELECT count() FROM caller_hourly FINAL WHERE caller = '+15550100001'": "1",
		"SELECT count() FROM network_minute FINAL":                              "1",
		"SELECT count() FROM cdrs FINAL":                                        "2",
		"SELECT sum(calls) FROM network_minute FINAL":                           "5000",
		"SELECT concat(toString(calls), '@', toString(version)) FROM caller_daily FINAL WHERE caller = '+15550100009'":  "70@300",
		"SELECT concat(toString(calls), '@', toString(version)) FROM caller_hourly FINAL WHERE caller = '+15550100009'": "35@300",
	} {
		_, rows := queryStrings(t, conn, query)
		if len(rows) != 1 || rows[0][0] != want {
			t.Errorf("%s = %v, want %s", query, rows, want)
		}
	}
	// After merges the duplicates are gone even without FINAL.
	for _, tb := range []string{"alerts", "caller_minute", "caller_daily", "cdrs"} {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE "+tb+" FINAL"); err != nil {
			t.Fatal(err)
		}
	}
	for query, want := range map[string]string{
		"SELECT count() FROM alerts":                                        "2",
		"SELECT count() FROM cdrs":                                          "2",
		"SELECT max(calls) FROM caller_daily WHERE caller = '+15550100009'": "70",
		"SELECT count() FROM caller_daily WHERE caller = '+15550100009'":    "1",
	} {
		_, rows := queryStrings(t, conn, query)
		if len(rows) != 1 || rows[0][0] != want {
			t.Errorf("after OPTIMIZE: %s = %v, want %s", query, rows, want)
		}
	}
}

// TestSinkBatchesConcurrentWriters has many partition workers write at
// once: every row arrives, in fewer INSERTs than writes.
func TestSinkBatchesConcurrentWriters(t *testing.T) {
	c, opts := testClient(t, true, func(o *Options) {
		o.FlushInterval = 200 * time.Millisecond
		o.MaxRows = 1_000_000
		o.FlushWorkers = 1
	})
	s := newTestSink(t, c)
	const writers, perWriter, rowsPerWrite = 16, 5, 100
	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				r := &Rows{NetworkMinutes: []detectors.NetworkMinute{{Minute: ts("2026-11-26 00:00:00").Add(time.Duration(i) * time.Minute), Calls: 1}}}
				for j := range rowsPerWrite - 1 {
					r.CallerMinutes = append(r.CallerMinutes, detectors.CallerMinute{
						Caller: fmt.Sprintf("+1555%03d%04d", w, j), Minute: ts("2026-11-26 00:00:00").Add(time.Duration(i) * time.Minute), Calls: 1})
				}
				errs <- s.Write(ctxTimeout(t, time.Minute), int32(w), r)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	conn := adminConn(t, opts.Database)
	_, rows := queryStrings(t, conn, "SELECT (SELECT count() FROM caller_minute FINAL), (SELECT sum(calls) FROM network_minute FINAL), (SELECT uniqExact(source_partition) FROM network_minute)")
	want := []string{fmt.Sprint(writers * perWriter * (rowsPerWrite - 1)), fmt.Sprint(writers * perWriter), fmt.Sprint(writers)}
	if !slices.Equal(rows[0], want) {
		t.Errorf("caller_minute rows, network calls, partitions = %v, want %v", rows[0], want)
	}
	st := s.Stats()
	if st.Writes != writers*perWriter || st.Inserts[TableCallerMinute] >= writers*perWriter/2 {
		t.Errorf("%d writes in %d caller_minute inserts: want batching across writers", st.Writes, st.Inserts[TableCallerMinute])
	}
	t.Logf("%d writes in %d inserts per table", st.Writes, st.Inserts[TableCallerMinute])
}

// TestSinkSchemaError drops a column the Sink writes: the write fails at
// once, without retries, with an error that says to run cdrguard migrate.
func TestSinkSchemaError(t *testing.T) {
	c, opts := testClient(t, true, nil)
	s := newTestSink(t, c)
	conn := adminConn(t, opts.Database)
	ctx := ctxTimeout(t, time.Minute)
	if err := conn.Exec(ctx, "ALTER TABLE caller_minute DROP COLUMN talk_s"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := s.Write(ctx, 0, &Rows{CallerMinutes: sampleRows().CallerMinutes})
	if err == nil {
		t.Fatal("write to a table without talk_s succeeded")
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("schema error took %v: it must not be retried", took)
	}
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), `run "cdrguard migrate"`) ||
		!strings.Contains(err.Error(), opts.Database+".caller_minute") || !strings.Contains(err.Error(), "talk_s") {
		t.Errorf("error = %v; want ErrSchema naming the table, the column and cdrguard migrate", err)
	}
	t.Logf("error: %v", err)
	if st := s.Stats(); st.Retries != 0 || st.Failures != 1 || st.WriteErrors != 1 {
		t.Errorf("Stats = %+v, want 0 retries, 1 failure", st)
	}
	// A table that is gone is a schema error too.
	if err := conn.Exec(ctx, "DROP TABLE alerts"); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, 0, &Rows{Alerts: []schemas.Alert{sampleAlert()}}); !errors.Is(err, ErrSchema) {
		t.Errorf("write to a dropped table: %v, want ErrSchema", err)
	}
	// The sink still works for the tables that are fine.
	if err := s.Write(ctx, 0, &Rows{CallerDays: sampleRows().CallerDays}); err != nil {
		t.Errorf("write to a good table after schema errors: %v", err)
	}
}

// TestSinkPseudonymizesCallees stores CDRs with pseudonymised callees:
// the stored callee is the HMAC pseudonym, counts and grouping still work.
func TestSinkPseudonymizesCallees(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	c, opts := testClient(t, true, func(o *Options) {
		o.PseudonymizeCallees = true
		o.PseudonymKey = key
	})
	s := newTestSink(t, c)
	base := ts("2026-11-26 10:00:00").UnixMilli()
	var cdrs []schemas.CDR
	for i, callee := range []string{"+15550200042", "+15550200042", "+15550200043"} {
		cdrs = append(cdrs, schemas.CDR{CallID: fmt.Sprint("c", i), Caller: "+15550100001", Callee: callee,
			StartMS: base + int64(i)*1000, Disposition: schemas.Busy})
	}
	if err := s.Write(ctxTimeout(t, time.Minute), 0, &Rows{CDRs: cdrs}); err != nil {
		t.Fatal(err)
	}
	_, rows := queryStrings(t, adminConn(t, opts.Database), "SELECT callee, count() FROM cdrs FINAL GROUP BY callee ORDER BY count() DESC")
	want := [][]string{{Pseudonymize(key, "+15550200042"), "2"}, {Pseudonymize(key, "+15550200043"), "1"}}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("stored callees:\n%swant:\n%s", tableText(rows), tableText(want))
	}
	for _, r := range rows {
		if strings.HasPrefix(r[0], "+") || len(r[0]) != PseudonymLen {
			t.Errorf("callee %q is not a pseudonym", r[0])
		}
	}
	if cdrs[0].Callee != "+15550200042" {
		t.Errorf("Write changed the caller's CDR: callee %q", cdrs[0].Callee)
	}
}

// TestSinkDropsCDRsUnlessStored: without StoreCDRs, Rows.CDRs are not
// written.
func TestSinkDropsCDRsUnlessStored(t *testing.T) {
	c, opts := testClient(t, true, func(o *Options) { o.StoreCDRs = false })
	s := newTestSink(t, c)
	if err := s.Write(ctxTimeout(t, time.Minute), 0, &Rows{CDRs: sampleRows().CDRs}); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctxTimeout(t, time.Minute), 0, sampleRows()); err != nil {
		t.Fatal(err)
	}
	_, rows := queryStrings(t, adminConn(t, opts.Database), "SELECT (SELECT count() FROM cdrs), (SELECT count() FROM alerts)")
	if !slices.Equal(rows[0], []string{"0", "2"}) {
		t.Errorf("cdrs, alerts rows = %v, want [0 2]", rows[0])
	}
}

// TestSinkCloseFlushes: rows pending at Close are written; writes after
// Close fail with ErrClosed.
func TestSinkCloseFlushes(t *testing.T) {
	c, opts := testClient(t, true, func(o *Options) { o.FlushInterval = time.Hour })
	s := c.NewSink()
	done := make(chan error, 1)
	go func() { done <- s.Write(ctxTimeout(t, time.Minute), 0, sampleRows()) }()
	// Wait until the write is pending (the hour-long flush interval keeps
	// it there), then close.
	deadline := time.Now().Add(30 * time.Second)
	for s.Stats().PendingRows == 0 {
		select {
		case err := <-done:
			t.Fatalf("write returned before Close: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("the write was not pending within 30s")
		}
	}
	if err := s.Close(ctxTimeout(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_, rows := queryStrings(t, adminConn(t, opts.Database), "SELECT count() FROM caller_minute")
	if rows[0][0] != "2" {
		t.Errorf("caller_minute has %s rows after Close, want 2", rows[0][0])
	}
	if err := s.Write(ctxTimeout(t, time.Minute), 0, sampleRows()); !errors.Is(err, ErrClosed) {
		t.Errorf("write after Close: %v, want ErrClosed", err)
	}
}

// TestReplaceAllowlist replaces the allowlist twice: only the second set
// remains.
func TestReplaceAllowlist(t *testing.T) {
	c, opts := testClient(t, true, nil)
	ctx := ctxTimeout(t, time.Minute)
	if err := c.ReplaceAllowlist(ctx, []string{"+15550000001"}, []string{"+1800"}, []string{"trunk-1"}, "old.yaml"); err != nil {
		t.Fatal(err)
	}
	if err := c.ReplaceAllowlist(ctx, []string{"+15550000002", "+15550000003"}, []string{"+1888"}, nil, "/etc/cdrguard/rules.yaml"); err != nil {
		t.Fatal(err)
	}
	_, rows := queryStrings(t, adminConn(t, opts.Database), "SELECT kind, entry, source_file FROM allowlist FINAL ORDER BY kind, entry")
	want := [][]string{
		{"number", "+15550000002", "/etc/cdrguard/rules.yaml"},
		{"number", "+15550000003", "/etc/cdrguard/rules.yaml"},
		{"prefix", "+1888", "/etc/cdrguard/rules.yaml"},
	}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("allowlist:\n%swant:\n%s", tableText(rows), tableText(want))
	}
	if err := c.ReplaceAllowlist(ctx, nil, nil, nil, "empty.yaml"); err != nil {
		t.Fatal(err)
	}
	if _, rows := queryStrings(t, adminConn(t, opts.Database), "SELECT count() FROM allowlist"); rows[0][0] != "0" {
		t.Errorf("allowlist has %s rows after an empty replace", rows[0][0])
	}
}

// TestWriteGivesUpWithContext: a writer whose ctx ends gets ctx's error
// while the rows stay with the sink.
func TestWriteGivesUpWithContext(t *testing.T) {
	c, opts := testClient(t, true, func(o *Options) { o.FlushInterval = time.Hour })
	s := newTestSink(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rows := sampleRows()
	err := s.Write(ctx, 0, rows)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Write = %v, want deadline exceeded", err)
	}
	rows.CallerMinutes[0].Caller = "changed after the write gave up"
	if err := s.Close(ctxTimeout(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	_, got := queryStrings(t, adminConn(t, opts.Database), "SELECT DISTINCT caller FROM caller_minute")
	if len(got) != 1 || got[0][0] != "+15550100001" {
		t.Errorf("callers written: %v, want the rows as they were at Write", got)
	}
}
