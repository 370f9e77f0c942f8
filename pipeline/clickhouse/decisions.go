package clickhouse

import (
	"context"
	"time"
)

// Decision is one row of decisions (see migration 006_decisions): what a
// person, or the dispatcher on their behalf, decided about a subject.
type Decision struct {
	Time        time.Time
	DecisionID  string
	SubjectKind string
	Subject     string
	Action      string
	AlertID     string
	RequestID   string
	By          string
	Reason      string
	Source      string
}

// InsertDecisions appends rows to decisions in one insert. The table is
// append-only: a retried insert of the same rows leaves duplicates that
// share their decision_id, which readers collapse on.
func (c *Client) InsertDecisions(ctx context.Context, rows []Decision) error {
	if len(rows) == 0 {
		return nil
	}
	table := c.opts.Database + ".decisions"
	b, err := c.conn.PrepareBatch(ctx, "INSERT INTO "+table+
		" (time, decision_id, subject_kind, subject, action, alert_id, request_id, by, reason, source)")
	if err != nil {
		return c.wrapWriteErr(table, err)
	}
	defer func() { _ = b.Close() }()
	for _, r := range rows {
		if err := b.Append(r.Time.UTC(), r.DecisionID, r.SubjectKind, r.Subject, r.Action, r.AlertID, r.RequestID,
			r.By, r.Reason, r.Source); err != nil {
			return c.wrapWriteErr(table, err)
		}
	}
	if err := b.Send(); err != nil {
		return c.wrapWriteErr(table, err)
	}
	return nil
}
