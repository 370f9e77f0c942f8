package clickhouse

import (
	"context"
	"time"
)

// HookDelivery is one row of hook_deliveries (see migration
// 005_hook_deliveries).
type HookDelivery struct {
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
	NextAttempt time.Time
	Body        string
}

// InsertHookDeliveries appends rows to hook_deliveries in one insert.
func (c *Client) InsertHookDeliveries(ctx context.Context, rows []HookDelivery) error {
	if len(rows) == 0 {
		return nil
	}
	table := c.opts.Database + ".hook_deliveries"
	b, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+table+
		" (time, request_id, alert_id, endpoint, action, subject_kind, subject, rule, attempt, status_code, latency_ms, error, outcome, mode, next_attempt, body)")
	if err != nil {
		return c.wrapWriteErr(table, err)
	}
	defer func() { _ = b.Close() }()
	for _, r := range rows {
		next := r.NextAttempt
		if next.IsZero() {
			next = time.Unix(0, 0)
		}
		if err := b.Append(r.Time.UTC(), r.RequestID, r.AlertID, r.Endpoint, r.Action, r.SubjectKind, r.Subject, r.Rule,
			r.Attempt, r.StatusCode, r.LatencyMS, r.Error, r.Outcome, r.Mode, next.UTC(), r.Body); err != nil {
			return c.wrapWriteErr(table, err)
		}
	}
	if err := b.Send(); err != nil {
		return c.wrapWriteErr(table, err)
	}
	return nil
}
