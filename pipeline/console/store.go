package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/cdrguard/cdrguard/schemas"
)

// Store reads and appends the console's ClickHouse tables. Every query
// is bounded (a time range on the partition key or a sorting-key prefix,
// and a LIMIT). It is safe for concurrent use; every method blocks until
// ClickHouse answered or ctx ended.
type Store struct {
	conn driver.Conn
	db   string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewStore reads database db through conn.
func NewStore(conn driver.Conn, db string) (*Store, error) {
	if !identRE.MatchString(db) {
		return nil, fmt.Errorf("clickhouse database %q is not a plain identifier", db)
	}
	return &Store{conn: conn, db: db}, nil
}

func (s *Store) t(name string) string { return s.db + "." + name }

// Decision is one row of the decisions table.
type Decision struct {
	Time        time.Time
	ID          string
	SubjectKind string
	Subject     string
	Action      string
	AlertID     string
	RequestID   string
	By          string
	Reason      string
	Source      string
}

// Decided reports whether d is a decision (the zero Decision is none).
func (d Decision) Decided() bool { return !d.Time.IsZero() && d.Time.Unix() > 0 }

// Decision actions the console shows on alerts. subjectActions are about
// the number as a whole: they decide its earlier alerts too.
const (
	alertActions   = "('confirm','false_positive','release','acknowledge')"
	subjectActions = "('confirm','false_positive','release')"
)

// QueueFilter selects the alerts of the queue.
type QueueFilter struct {
	From, To    time.Time // detected_at in [From, To)
	Rule        string
	Severity    string // info, warning, critical
	SubjectKind string // caller, trunk, imei, imsi, source_ip
	Action      string // alert, suspend
	Decided     string // "open" (undecided), "decided" or "all"
	Offset      int
	Limit       int
}

// withDecisions wraps a SELECT of cols (which include alert_id,
// subject_kind, subject and detected_at) from alerts with the latest
// alert and subject decisions made since `since`, as columns ad_* and sd_*,
// and the condition `decided`.
func (s *Store) withDecisions(cols, inner string) string {
	return `SELECT ` + cols + `, ad_time, ad_action, ad_by, ad_reason, sd_time, sd_action, sd_by, sd_reason,
    (ad_time > toDateTime(0) OR (sd_time > toDateTime(0) AND sd_time >= detected_at)) AS decided
FROM (
    SELECT ` + cols + `, ad_time, ad_action, ad_by, ad_reason
    FROM (` + inner + `)
    ANY LEFT JOIN (
        SELECT alert_id, max(time) AS ad_time, argMax(action, time) AS ad_action, argMax(by, time) AS ad_by, argMax(reason, time) AS ad_reason
        FROM ` + s.t("decisions") + `
        WHERE alert_id != '' AND action IN ` + alertActions + ` AND time >= ?
        GROUP BY alert_id
    ) USING alert_id
)
ANY LEFT JOIN (
    SELECT subject_kind, subject, max(time) AS sd_time, argMax(action, time) AS sd_action, argMax(by, time) AS sd_by, argMax(reason, time) AS sd_reason
    FROM ` + s.t("decisions") + `
    WHERE action IN ` + subjectActions + ` AND time >= ?
    GROUP BY subject_kind, subject
) USING subject_kind, subject`
}

// queueWhere is the alerts condition of f; withRule false leaves the rule
// filter out (for the counts by rule).
func queueWhere(f QueueFilter, withRule bool) (string, []any) {
	conds := []string{"detected_at >= ?", "detected_at < ?"}
	args := []any{f.From.UTC(), f.To.UTC()}
	add := func(col, v string) {
		if v != "" {
			conds = append(conds, col+" = ?")
			args = append(args, v)
		}
	}
	if withRule {
		add("rule", f.Rule)
	}
	add("toString(severity)", f.Severity)
	add("subject_kind", f.SubjectKind)
	add("action", f.Action)
	return strings.Join(conds, " AND "), args
}

func decidedWhere(d string) string {
	switch d {
	case "decided":
		return " WHERE decided"
	case "all":
		return ""
	}
	return " WHERE NOT decided"
}

// AlertGroup is the queue's row: the alerts of one subject and rule
// that the filter selects, with the top-scored one's figures.
type AlertGroup struct {
	SubjectKind string
	Subject     string
	Rule        string
	Alerts      uint64 // alerts in the group
	Decided     uint64 // of them decided
	First, Last time.Time
	// Top is the group's highest-scored alert (latest on a tie of the
	// page's order): score, severity, action and metrics.
	Top schemas.Alert
	// Decision is the latest decision covering an alert of the group.
	Decision Decision
}

// groupCols are the alert columns the queue's groups are made of.
const groupCols = "alert_id, rule, severity, action, subject_kind, subject, detected_at, score, calls, short_calls, distinct_callees, distinct_callers"

// coveringCols are, per alert row of withDecisions, the latest decision
// covering it (alert decision, or subject decision made at or after it).
const coveringCols = `if(ad_time >= sd_time OR sd_time < detected_at, ad_time, sd_time) AS cov_time,
    if(ad_time >= sd_time OR sd_time < detected_at, ad_action, sd_action) AS cov_action,
    if(ad_time >= sd_time OR sd_time < detected_at, ad_by, sd_by) AS cov_by`

// QueueGroups returns one page of the queue: the selected alerts grouped
// by subject and rule, highest top score first. One query.
func (s *Store) QueueGroups(ctx context.Context, f QueueFilter) ([]AlertGroup, error) {
	where, args := queueWhere(f, true)
	inner := "SELECT " + groupCols + " FROM " + s.t("alerts") + " FINAL WHERE " + where
	q := `SELECT subject_kind, subject, rule, count(), countIf(decided), min(detected_at), max(detected_at) AS last, max(score) AS top,
    argMax(alert_id, score), argMax(toString(severity), score), argMax(action, score),
    argMax(calls, score), argMax(short_calls, score), argMax(distinct_callees, score), argMax(distinct_callers, score),
    max(cov_time), argMax(cov_action, cov_time), argMax(cov_by, cov_time)
FROM (SELECT ` + groupCols + `, decided, ` + coveringCols + ` FROM (` + s.withDecisions(groupCols, inner) + `)` + decidedWhere(f.Decided) + `)
GROUP BY subject_kind, subject, rule` +
		fmt.Sprintf("\nORDER BY top DESC, last DESC, subject, rule LIMIT %d, %d", max(f.Offset, 0), max(f.Limit, 1))
	args = append(args, f.From.UTC(), f.From.UTC())
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read the alert queue: %w", err)
	}
	defer rows.Close()
	var out []AlertGroup
	for rows.Next() {
		var g AlertGroup
		var sev, act string
		a := &g.Top
		if err := rows.Scan(&g.SubjectKind, &g.Subject, &g.Rule, &g.Alerts, &g.Decided, &g.First, &g.Last, &a.Score,
			&a.AlertID, &sev, &act, &a.Metrics.Calls, &a.Metrics.ShortCalls, &a.Metrics.DistinctCallees,
			&a.Metrics.DistinctCallers, &g.Decision.Time, &g.Decision.Action, &g.Decision.By); err != nil {
			return nil, fmt.Errorf("cannot read the alert queue: %w", err)
		}
		a.Rule, a.Subject = g.Rule, g.Subject
		a.Severity, _ = schemas.ParseSeverity(sev)
		a.Action = schemas.Action(act)
		a.SubjectKind, _ = schemas.ParseSubjectKind(g.SubjectKind)
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the alert queue: %w", err)
	}
	return out, nil
}

// GroupRef names one queue row for a bulk action.
type GroupRef struct {
	SubjectKind, Subject, Rule string
}

// OpenAlertsOf returns the undecided alerts of groups that f selects
// (its decided mode aside), at most limit. One query.
func (s *Store) OpenAlertsOf(ctx context.Context, f QueueFilter, groups []GroupRef, limit int) ([]AlertRef, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	where, args := queueWhere(f, false)
	var tuples []string
	for _, g := range groups {
		tuples = append(tuples, "(?, ?, ?)")
		args = append(args, g.SubjectKind, g.Subject, g.Rule)
	}
	const cols = "alert_id, rule, subject_kind, subject, detected_at"
	inner := "SELECT " + cols + " FROM " + s.t("alerts") + " FINAL WHERE " + where + " AND (subject_kind, subject, rule) IN (" + strings.Join(tuples, ", ") + ")"
	q := "SELECT subject_kind, subject, alert_id FROM (" + s.withDecisions(cols, inner) + ") WHERE NOT decided ORDER BY subject, alert_id LIMIT " + fmt.Sprint(max(limit, 1))
	args = append(args, f.From.UTC(), f.From.UTC())
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot look up the alerts to acknowledge: %w", err)
	}
	defer rows.Close()
	var out []AlertRef
	for rows.Next() {
		var r AlertRef
		if err := rows.Scan(&r.SubjectKind, &r.Subject, &r.AlertID); err != nil {
			return nil, fmt.Errorf("cannot look up the alerts to acknowledge: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// RuleCount is the number of alerts of one rule, and of queue rows
// (subjects) they make.
type RuleCount struct {
	Rule   string
	Count  uint64
	Groups uint64
}

// QueueCounts counts the alerts f selects per rule, ignoring f.Rule.
func (s *Store) QueueCounts(ctx context.Context, f QueueFilter) ([]RuleCount, error) {
	where, args := queueWhere(f, false)
	const cols = "alert_id, rule, subject_kind, subject, detected_at"
	inner := "SELECT " + cols + " FROM " + s.t("alerts") + " FINAL WHERE " + where
	q := "SELECT rule, count() AS n, uniqExact(subject_kind, subject) FROM (" + s.withDecisions(cols, inner) + ")" + decidedWhere(f.Decided) + " GROUP BY rule ORDER BY n DESC, rule"
	args = append(args, f.From.UTC(), f.From.UTC())
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot count alerts by rule: %w", err)
	}
	defer rows.Close()
	var out []RuleCount
	for rows.Next() {
		var c RuleCount
		if err := rows.Scan(&c.Rule, &c.Count, &c.Groups); err != nil {
			return nil, fmt.Errorf("cannot count alerts by rule: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot count alerts by rule: %w", err)
	}
	return out, nil
}

const alertCols = "alert_id, rule, severity, action, subject_kind, subject, window_start, window_end, detected_at, score, reason, caller_ids, " +
	"calls, answered, short_calls, rejected, talk_s, answer_ratio, short_ratio, mean_talk_s, distinct_callees, max_callee_calls, " +
	"max_callee_rejected, max_seq_run, distinct_callers, calls_per_caller, light_calls, light_short_ratio, window_s"

// SubjectAlerts returns a subject's latest alerts, newest first.
func (s *Store) SubjectAlerts(ctx context.Context, kind, subject string, limit int) ([]schemas.Alert, error) {
	q := "SELECT " + alertCols + " FROM " + s.t("alerts") + " FINAL WHERE subject_kind = ? AND subject = ? ORDER BY detected_at DESC, alert_id LIMIT " + fmt.Sprint(max(limit, 1))
	rows, err := s.conn.Query(ctx, q, kind, subject)
	if err != nil {
		return nil, fmt.Errorf("cannot read the alerts of %s %s: %w", kind, subject, err)
	}
	defer rows.Close()
	var out []schemas.Alert
	for rows.Next() {
		var a schemas.Alert
		var sev, act, kindS string
		m := &a.Metrics
		if err := rows.Scan(&a.AlertID, &a.Rule, &sev, &act, &kindS, &a.Subject, &a.WindowStart, &a.WindowEnd, &a.DetectedAt,
			&a.Score, &a.Reason, &a.CallerIDs, &m.Calls, &m.Answered, &m.ShortCalls, &m.Rejected, &m.TalkS, &m.AnswerRatio,
			&m.ShortRatio, &m.MeanTalkS, &m.DistinctCallees, &m.MaxCalleeCalls, &m.MaxCalleeRejected, &m.MaxSeqRun,
			&m.DistinctCallers, &m.CallsPerCaller, &m.LightCalls, &m.LightShortRatio, &m.WindowS); err != nil {
			return nil, fmt.Errorf("cannot read the alerts of %s %s: %w", kind, subject, err)
		}
		a.Severity, _ = schemas.ParseSeverity(sev)
		a.Action = schemas.Action(act)
		a.SubjectKind, _ = schemas.ParseSubjectKind(kindS)
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cannot read the alerts of %s %s: %w", kind, subject, err)
	}
	return out, nil
}

// AlertRef names one alert for a bulk action.
type AlertRef struct {
	SubjectKind, Subject, AlertID string
}

// ExistingAlerts returns those of refs that are alerts in the table (by
// the sorting key's subject prefix).
func (s *Store) ExistingAlerts(ctx context.Context, refs []AlertRef) ([]AlertRef, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	var pairs, ids []string
	var args []any
	for _, r := range refs {
		pairs = append(pairs, "(?, ?)")
		args = append(args, r.SubjectKind, r.Subject)
	}
	for _, r := range refs {
		ids = append(ids, "?")
		args = append(args, r.AlertID)
	}
	q := "SELECT DISTINCT subject_kind, subject, alert_id FROM " + s.t("alerts") + " WHERE (subject_kind, subject) IN (" +
		strings.Join(pairs, ", ") + ") AND alert_id IN (" + strings.Join(ids, ", ") + ")"
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("cannot look up alerts: %w", err)
	}
	defer rows.Close()
	var out []AlertRef
	for rows.Next() {
		var r AlertRef
		if err := rows.Scan(&r.SubjectKind, &r.Subject, &r.AlertID); err != nil {
			return nil, fmt.Errorf("cannot look up alerts: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const decisionCols = "time, decision_id, subject_kind, subject, action, alert_id, request_id, by, reason, source"

func scanDecisions(rows driver.Rows) ([]Decision, error) {
	defer rows.Close()
	var out []Decision
	for rows.Next() {
		var d Decision
		if err := rows.Scan(&d.Time, &d.ID, &d.SubjectKind, &d.Subject, &d.Action, &d.AlertID, &d.RequestID, &d.By, &d.Reason, &d.Source); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SubjectDecisions returns a subject's decisions, newest first.
func (s *Store) SubjectDecisions(ctx context.Context, kind, subject string, limit int) ([]Decision, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+decisionCols+" FROM "+s.t("decisions")+
		" WHERE subject = ? AND subject_kind = ? ORDER BY time DESC, decision_id LIMIT "+fmt.Sprint(max(limit, 1)), subject, kind)
	if err != nil {
		return nil, fmt.Errorf("cannot read the decisions on %s: %w", subject, err)
	}
	out, err := scanDecisions(rows)
	if err != nil {
		return nil, fmt.Errorf("cannot read the decisions on %s: %w", subject, err)
	}
	return out, nil
}

// RequestDecisions returns the latest decisions naming each of the
// webhook requests since `since`, by request id.
func (s *Store) RequestDecisions(ctx context.Context, since time.Time) (map[string]Decision, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+decisionCols+" FROM "+s.t("decisions")+
		" WHERE request_id != '' AND time >= ? ORDER BY time DESC LIMIT 1000", since.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read the decisions on webhook requests: %w", err)
	}
	ds, err := scanDecisions(rows)
	if err != nil {
		return nil, fmt.Errorf("cannot read the decisions on webhook requests: %w", err)
	}
	out := map[string]Decision{}
	for _, d := range ds {
		if _, ok := out[d.RequestID]; !ok {
			out[d.RequestID] = d
		}
	}
	return out, nil
}

// NewDecisionID returns a fresh decision id.
func NewDecisionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// InsertDecisions appends decisions in one insert.
func (s *Store) InsertDecisions(ctx context.Context, ds []Decision) error {
	if len(ds) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO "+s.t("decisions")+" ("+decisionCols+")")
	if err != nil {
		return fmt.Errorf("cannot record decisions: %w", err)
	}
	defer func() { _ = b.Close() }()
	for _, d := range ds {
		if err := b.Append(d.Time.UTC(), d.ID, d.SubjectKind, d.Subject, d.Action, d.AlertID, d.RequestID, d.By, d.Reason, d.Source); err != nil {
			return fmt.Errorf("cannot record decisions: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("cannot record decisions: %w", err)
	}
	return nil
}

// Point is one period of a caller's or a source's traffic.
type Point struct {
	T               time.Time
	Calls           uint32
	ShortCalls      uint32
	DistinctCallees uint32
	DistinctCallers uint32 // sources only
}

// CallerSeries returns a caller's calls, short calls and distinct callees
// per minute (caller_minute) or, with hourly, per hour (caller_hourly) in
// [from, to).
func (s *Store) CallerSeries(ctx context.Context, caller string, from, to time.Time, hourly bool) ([]Point, error) {
	table, col := "caller_minute", "minute"
	if hourly {
		table, col = "caller_hourly", "hour"
	}
	q := "SELECT " + col + ", calls, short_calls, distinct_callees FROM " + s.t(table) + " FINAL WHERE caller = ? AND " +
		col + " >= ? AND " + col + " < ? ORDER BY " + col + " LIMIT 10000"
	rows, err := s.conn.Query(ctx, q, caller, from.UTC(), to.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read the traffic of %s: %w", caller, err)
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		var p Point
		if err := rows.Scan(&p.T, &p.Calls, &p.ShortCalls, &p.DistinctCallees); err != nil {
			return nil, fmt.Errorf("cannot read the traffic of %s: %w", caller, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// CDRRow is one stored CDR as the console shows it. Callee is as stored:
// a pseudonym when callees are pseudonymised.
type CDRRow struct {
	Start       time.Time
	CallID      string
	Caller      string // sources' CDRs only
	Callee      string
	Disposition string
	DurationS   uint32
	CauseCode   uint16
	Trunk       string
	SourceIP    string
	IMEI        string
	IMSI        string // sources' CDRs only
}

// RecentCDRs returns a caller's latest stored CDRs up to `before`.
func (s *Store) RecentCDRs(ctx context.Context, caller string, before time.Time, limit int) ([]CDRRow, error) {
	q := "SELECT start_time, call_id, callee, disposition, duration_s, cause_code, trunk, source_ip, imei FROM " + s.t("cdrs") +
		" FINAL WHERE caller = ? AND start_time <= ? ORDER BY start_time DESC LIMIT " + fmt.Sprint(max(limit, 1))
	rows, err := s.conn.Query(ctx, q, caller, before.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read the CDRs of %s: %w", caller, err)
	}
	defer rows.Close()
	var out []CDRRow
	for rows.Next() {
		var c CDRRow
		if err := rows.Scan(&c.Start, &c.CallID, &c.Callee, &c.Disposition, &c.DurationS, &c.CauseCode, &c.Trunk, &c.SourceIP, &c.IMEI); err != nil {
			return nil, fmt.Errorf("cannot read the CDRs of %s: %w", caller, err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Delivery is one row of hook_deliveries.
type Delivery struct {
	Time        time.Time
	RequestID   string
	AlertID     string
	Endpoint    string
	Action      string
	SubjectKind string
	Subject     string
	Rule        string
	Attempt     uint16
	StatusCode  uint16
	LatencyMS   float64
	Error       string
	Outcome     string
	Mode        string
}

const deliveryCols = "time, request_id, alert_id, endpoint, action, subject_kind, subject, rule, attempt, status_code, latency_ms, error, outcome, mode"

func scanDeliveries(rows driver.Rows) ([]Delivery, error) {
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		var d Delivery
		if err := rows.Scan(&d.Time, &d.RequestID, &d.AlertID, &d.Endpoint, &d.Action, &d.SubjectKind, &d.Subject, &d.Rule,
			&d.Attempt, &d.StatusCode, &d.LatencyMS, &d.Error, &d.Outcome, &d.Mode); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// SubjectDeliveries returns the webhook attempts about a subject since
// `since`, newest first.
func (s *Store) SubjectDeliveries(ctx context.Context, kind, subject string, since time.Time, limit int) ([]Delivery, error) {
	rows, err := s.conn.Query(ctx, "SELECT "+deliveryCols+" FROM "+s.t("hook_deliveries")+
		" WHERE time >= ? AND subject = ? AND subject_kind = ? ORDER BY time DESC LIMIT "+fmt.Sprint(max(limit, 1)), since.UTC(), subject, kind)
	if err != nil {
		return nil, fmt.Errorf("cannot read the deliveries about %s: %w", subject, err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("cannot read the deliveries about %s: %w", subject, err)
	}
	return out, nil
}

// Deliveries returns the webhook attempts in [from, to), newest first,
// of one outcome unless outcome is empty.
func (s *Store) Deliveries(ctx context.Context, from, to time.Time, outcome string, limit int) ([]Delivery, error) {
	q := "SELECT " + deliveryCols + " FROM " + s.t("hook_deliveries") + " WHERE time >= ? AND time < ?"
	args := []any{from.UTC(), to.UTC()}
	if outcome != "" {
		q += " AND outcome = ?"
		args = append(args, outcome)
	}
	rows, err := s.conn.Query(ctx, q+" ORDER BY time DESC LIMIT "+fmt.Sprint(max(limit, 1)), args...)
	if err != nil {
		return nil, fmt.Errorf("cannot read hook deliveries: %w", err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("cannot read hook deliveries: %w", err)
	}
	return out, nil
}

// Pending returns the webhook requests whose latest row since `since` is
// held or parked: those waiting for a supervisor.
func (s *Store) Pending(ctx context.Context, since time.Time, limit int) ([]Delivery, error) {
	q := `SELECT t, request_id, alert_id, endpoint, action, subject_kind, subject, rule, attempt, status_code, latency_ms, error, outcome, mode FROM (
    SELECT request_id, max(time) AS t, argMax(alert_id, time) AS alert_id, argMax(endpoint, time) AS endpoint, argMax(action, time) AS action,
        argMax(subject_kind, time) AS subject_kind, argMax(subject, time) AS subject, argMax(rule, time) AS rule, max(attempt) AS attempt,
        argMax(status_code, time) AS status_code, argMax(latency_ms, time) AS latency_ms, argMax(error, time) AS error,
        argMax(outcome, time) AS outcome, argMax(mode, time) AS mode
    FROM ` + s.t("hook_deliveries") + ` WHERE time >= ? GROUP BY request_id
) WHERE outcome IN ('held', 'parked') ORDER BY t DESC LIMIT ` + fmt.Sprint(max(limit, 1))
	rows, err := s.conn.Query(ctx, q, since.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read held and parked requests: %w", err)
	}
	out, err := scanDeliveries(rows)
	if err != nil {
		return nil, fmt.Errorf("cannot read held and parked requests: %w", err)
	}
	return out, nil
}

// RuleStats is one rule's triage record over a period.
type RuleStats struct {
	Rule           string
	Alerts         uint64
	Subjects       uint64
	Suspend        uint64 // alerts asking for suspension
	Decided        uint64
	FalsePositives uint64
	Confirmed      uint64
}

// FPShare is the share of decided alerts that were false positives.
func (r RuleStats) FPShare() float64 {
	if r.Decided == 0 {
		return 0
	}
	return float64(r.FalsePositives) / float64(r.Decided)
}

// RuleQuality returns per rule the alerts detected in [from, to), how
// many are decided and how those decisions went.
func (s *Store) RuleQuality(ctx context.Context, from, to time.Time) ([]RuleStats, error) {
	const cols = "alert_id, rule, action, subject_kind, subject, detected_at"
	inner := "SELECT " + cols + " FROM " + s.t("alerts") + " FINAL WHERE detected_at >= ? AND detected_at < ?"
	q := `SELECT rule, count(), uniqExact(subject_kind, subject), countIf(action = 'suspend'), countIf(decided),
    countIf(decided AND if(ad_time >= sd_time OR sd_time < detected_at, ad_action, sd_action) = 'false_positive'),
    countIf(decided AND if(ad_time >= sd_time OR sd_time < detected_at, ad_action, sd_action) = 'confirm')
FROM (` + s.withDecisions(cols, inner) + `) GROUP BY rule ORDER BY rule`
	rows, err := s.conn.Query(ctx, q, from.UTC(), to.UTC(), from.UTC(), from.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read rule quality: %w", err)
	}
	defer rows.Close()
	var out []RuleStats
	for rows.Next() {
		var r RuleStats
		if err := rows.Scan(&r.Rule, &r.Alerts, &r.Subjects, &r.Suspend, &r.Decided, &r.FalsePositives, &r.Confirmed); err != nil {
			return nil, fmt.Errorf("cannot read rule quality: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ShadowStats is what one shadow-mode endpoint would have suspended for
// one rule.
type ShadowStats struct {
	Rule, Endpoint string
	Requests       uint64
	Subjects       uint64
	// FalsePositives counts those subjects whose latest decision is a
	// false positive: suspensions enforce mode would have got wrong.
	FalsePositives uint64
}

// Shadow returns, per rule and endpoint, the suspensions shadow mode
// recorded in [from, to).
func (s *Store) Shadow(ctx context.Context, from, to time.Time) ([]ShadowStats, error) {
	q := `SELECT rule, endpoint, count(), uniqExact(subject_kind, subject), uniqExactIf(subject_kind, subject, sd_action = 'false_positive')
FROM (
    SELECT rule, endpoint, subject_kind, subject FROM ` + s.t("hook_deliveries") + `
    WHERE time >= ? AND time < ? AND outcome = 'shadow' AND action = 'suspend'
) ANY LEFT JOIN (
    SELECT subject_kind, subject, argMax(action, time) AS sd_action FROM ` + s.t("decisions") + `
    WHERE time >= ? AND action IN ` + subjectActions + ` GROUP BY subject_kind, subject
) USING subject_kind, subject
GROUP BY rule, endpoint ORDER BY rule, endpoint`
	rows, err := s.conn.Query(ctx, q, from.UTC(), to.UTC(), from.UTC())
	if err != nil {
		return nil, fmt.Errorf("cannot read shadow-mode suspensions: %w", err)
	}
	defer rows.Close()
	var out []ShadowStats
	for rows.Next() {
		var r ShadowStats
		if err := rows.Scan(&r.Rule, &r.Endpoint, &r.Requests, &r.Subjects, &r.FalsePositives); err != nil {
			return nil, fmt.Errorf("cannot read shadow-mode suspensions: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
