package console

import (
	"context"
	"fmt"
	"time"
)

// The aggregate tables hold callers only: a source's (trunk, IMEI, IMSI,
// source IP) traffic comes from the cdrs table, filled with store_cdrs,
// whose sorting key starts with the caller. A source's queries therefore
// read every CDR of the partitions (days) in their time range, filtering
// on the source's column in PREWHERE (only that column is read for the
// rows that do not match): the time range, not the table's size, bounds
// their cost. They count calls as distinct call ids instead of reading
// with FINAL, so a replayed CDR still counts once.

// sourceColumns are the cdrs columns of each source kind.
var sourceColumns = map[string]string{
	"trunk":     "trunk",
	"imei":      "imei",
	"imsi":      "imsi",
	"source_ip": "source_ip",
}

// Longest ranges of a source's chart: the cdrs table is read for every
// day of the range.
const (
	maxSourceMinuteRange = 48 * time.Hour
	maxSourceHourRange   = 14 * 24 * time.Hour
	// sourceCDRLookback bounds the recent CDRs of a source: those of the
	// day before the selected alert's window end.
	sourceCDRLookback = 24 * time.Hour
)

func sourceColumn(kind string) (string, error) {
	col, ok := sourceColumns[kind]
	if !ok {
		return "", fmt.Errorf("%q is not a source kind", kind)
	}
	return col, nil
}

// SourceSeries returns a source's calls, short calls (not answered, or
// under shortS seconds of talk, as the detectors count them), distinct
// callees and distinct caller IDs per minute or, with hourly, per hour
// in [from, to), from the stored CDRs. One query.
func (s *Store) SourceSeries(ctx context.Context, kind, source string, from, to time.Time, hourly bool, shortS int) ([]Point, error) {
	col, err := sourceColumn(kind)
	if err != nil {
		return nil, fmt.Errorf("cannot read the traffic of %s: %w", source, err)
	}
	bucket := "toStartOfMinute(start_time)"
	if hourly {
		bucket = "toStartOfHour(start_time)"
	}
	q := "SELECT " + bucket + " AS t, uniqExact(call_id), uniqExactIf(call_id, disposition != 'answered' OR duration_s < ?), " +
		"uniqExact(callee), uniqExact(caller) FROM " + s.t("cdrs") + " PREWHERE " + col + " = ? WHERE start_time >= ? AND start_time < ? " +
		"GROUP BY t ORDER BY t LIMIT 10000"
	rows, err := s.conn.Query(ctx, q, uint32(max(shortS, 0)), source, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read the traffic of %s %s: %w", kind, source, err)
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		var p Point
		var calls, short, callees, callers uint64
		if err := rows.Scan(&p.T, &calls, &short, &callees, &callers); err != nil {
			return nil, fmt.Errorf("cannot read the traffic of %s %s: %w", kind, source, err)
		}
		p.Calls, p.ShortCalls, p.DistinctCallees, p.DistinctCallers = sat32(calls), sat32(short), sat32(callees), sat32(callers)
		out = append(out, p)
	}
	return out, rows.Err()
}

// SourceCDRs returns a source's latest stored CDRs in the day up to
// `before`, newest first, each call once. One query.
func (s *Store) SourceCDRs(ctx context.Context, kind, source string, before time.Time, limit int) ([]CDRRow, error) {
	col, err := sourceColumn(kind)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CDRs of %s: %w", source, err)
	}
	q := "SELECT start_time, call_id, caller, callee, disposition, duration_s, cause_code, trunk, source_ip, imei, imsi FROM " + s.t("cdrs") +
		" PREWHERE " + col + " = ? WHERE start_time > ? AND start_time <= ? ORDER BY start_time DESC, call_id LIMIT 1 BY call_id LIMIT " +
		fmt.Sprint(max(limit, 1))
	rows, err := s.conn.Query(ctx, q, source, before.Add(-sourceCDRLookback).UTC(), before.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read the CDRs of %s %s: %w", kind, source, err)
	}
	defer rows.Close()
	var out []CDRRow
	for rows.Next() {
		var c CDRRow
		if err := rows.Scan(&c.Start, &c.CallID, &c.Caller, &c.Callee, &c.Disposition, &c.DurationS, &c.CauseCode, &c.Trunk,
			&c.SourceIP, &c.IMEI, &c.IMSI); err != nil {
			return nil, fmt.Errorf("cannot read the CDRs of %s %s: %w", kind, source, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CallerCount is one caller ID behind a source and its calls.
type CallerCount struct {
	Caller string
	Calls  uint64
}

// SourceCallers returns the caller IDs that called through a source in
// [from, to), most calls first, at most limit. One query.
func (s *Store) SourceCallers(ctx context.Context, kind, source string, from, to time.Time, limit int) ([]CallerCount, error) {
	col, err := sourceColumn(kind)
	if err != nil {
		return nil, fmt.Errorf("cannot read the callers of %s: %w", source, err)
	}
	q := "SELECT caller, uniqExact(call_id) AS n FROM " + s.t("cdrs") + " PREWHERE " + col + " = ? WHERE start_time >= ? AND start_time < ? " +
		"GROUP BY caller ORDER BY n DESC, caller LIMIT " + fmt.Sprint(max(limit, 1))
	rows, err := s.conn.Query(ctx, q, source, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read the callers of %s %s: %w", kind, source, err)
	}
	defer rows.Close()
	var out []CallerCount
	for rows.Next() {
		var c CallerCount
		if err := rows.Scan(&c.Caller, &c.Calls); err != nil {
			return nil, fmt.Errorf("cannot read the callers of %s %s: %w", kind, source, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// AlertSeries returns, per minute or (hourly) hour of detection in
// [from, to), the largest calls and short calls of a subject's alert
// windows detected then: the alerts' own figures, for a source whose
// CDRs are not stored. One query.
func (s *Store) AlertSeries(ctx context.Context, kind, subject string, from, to time.Time, hourly bool) ([]Point, error) {
	bucket := "toStartOfMinute(detected_at)"
	if hourly {
		bucket = "toStartOfHour(detected_at)"
	}
	q := "SELECT " + bucket + " AS t, max(calls), max(short_calls) FROM " + s.t("alerts") +
		" FINAL WHERE subject_kind = ? AND subject = ? AND detected_at >= ? AND detected_at < ? GROUP BY t ORDER BY t LIMIT 10000"
	rows, err := s.conn.Query(ctx, q, kind, subject, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read the alert figures of %s %s: %w", kind, subject, err)
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		var p Point
		var calls, short int64
		if err := rows.Scan(&p.T, &calls, &short); err != nil {
			return nil, fmt.Errorf("cannot read the alert figures of %s %s: %w", kind, subject, err)
		}
		p.Calls, p.ShortCalls = sat32(uint64(max(calls, 0))), sat32(uint64(max(short, 0)))
		out = append(out, p)
	}
	return out, rows.Err()
}

func sat32(v uint64) uint32 { return uint32(min(v, 1<<32-1)) }
