package stream

import (
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/rows"
)

// Outputs: what a worker writes to Kafka for its records. Alerts go to
// the alerts topic keyed by subject; undecodable records to the
// dead-letter topic with the reason in their headers; aggregate rows to
// the internal rows topic, for the ClickHouse loader; re-keyed packs and
// watermarks to the sources topic (rekey.go, watermarks.go).

// rowsKey is the key of a rows message; like the internal topic's keys it
// starts with a zero byte, so the balancer sends it to the partition the
// message names.
var rowsKey = []byte("\x00rows")

// maxRowsMessage bounds one rows message; a batch with more rows is split.
const maxRowsMessage = 256 << 10

// collect moves what the engine emitted into the open batch.
func (w *worker) collect(quiet bool) {
	o := &w.out
	if o.Len() == 0 {
		return
	}
	if !quiet {
		b := w.cur
		for i := range o.Alerts {
			a := &o.Alerts[i]
			if w.j.published[a.AlertID] {
				continue // in the alerts topic already: published before a restart
			}
			val, err := a.AppendJSON(nil)
			if err != nil {
				w.log.Error("cannot encode alert", zap.Error(err))
				continue
			}
			b.msgs = append(b.msgs, kafka.Message{
				Topic: w.j.cfg.AlertsTopic, Key: []byte(a.Subject), Value: val,
				Headers: []kafka.Header{
					{Key: hdrAlertID, Value: []byte(a.AlertID)},
					{Key: "rule", Value: []byte(a.Rule)},
					{Key: "severity", Value: []byte(a.Severity.String())},
					{Key: "subject_kind", Value: []byte(a.SubjectKind.String())},
				},
			})
			b.alerts = append(b.alerts, *a)
		}
		if w.j.cfg.Rows {
			b.rows.CallerMinutes = append(b.rows.CallerMinutes, o.CallerMinutes...)
			b.rows.CallerHours = append(b.rows.CallerHours, o.CallerHours...)
			b.rows.CallerDays = append(b.rows.CallerDays, o.CallerDays...)
			b.rows.NetworkMinutes = append(b.rows.NetworkMinutes, o.NetworkMinutes...)
		}
	}
	o.Reset()
}

// rowMessages appends r's aggregate rows as messages of the rows topic,
// in the partition of the same number as this input partition (modulo
// the rows topic's partitions), split so that none exceeds
// maxRowsMessage.
func (w *worker) rowMessages(msgs []kafka.Message, r *rows.Batch) []kafka.Message {
	val := rows.AppendEncoded(nil, int32(w.st.partition), r)
	if len(val) > maxRowsMessage && r.Aggregates() > 1 {
		a, b := splitRows(r)
		return w.rowMessages(w.rowMessages(msgs, &a), &b)
	}
	return append(msgs, kafka.Message{
		Topic: w.j.cfg.RowsTopic, Partition: w.st.partition % max(w.j.rowsPartitions, 1), Key: rowsKey, Value: val,
	})
}

// splitRows halves r's aggregate rows, table by table.
func splitRows(r *rows.Batch) (a, b rows.Batch) {
	a.CallerMinutes, b.CallerMinutes = halves(r.CallerMinutes)
	a.CallerHours, b.CallerHours = halves(r.CallerHours)
	a.CallerDays, b.CallerDays = halves(r.CallerDays)
	a.NetworkMinutes, b.NetworkMinutes = halves(r.NetworkMinutes)
	if a.Aggregates() == 0 { // one row per table: move one table over
		a, b = rows.Batch{CallerMinutes: b.CallerMinutes}, rows.Batch{CallerHours: b.CallerHours, CallerDays: b.CallerDays, NetworkMinutes: b.NetworkMinutes}
	}
	return a, b
}

func halves[T any](s []T) ([]T, []T) { return s[: len(s)/2 : len(s)/2], s[len(s)/2:] }

// deadLetter sets a record aside with the reason in its headers.
func (w *worker) deadLetter(m *kafka.Message, cause error) {
	w.m.deadLetter.Inc()
	headers := append([]kafka.Header(nil), m.Headers...)
	headers = append(headers,
		kafka.Header{Key: "cdrguard-error", Value: []byte(cause.Error())},
		kafka.Header{Key: "cdrguard-topic", Value: []byte(m.Topic)},
		kafka.Header{Key: "cdrguard-partition", Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafka.Header{Key: "cdrguard-offset", Value: strconv.AppendInt(nil, m.Offset, 10)},
		kafka.Header{Key: "cdrguard-timestamp", Value: []byte(m.Time.UTC().Format(time.RFC3339Nano))},
	)
	w.cur.msgs = append(w.cur.msgs, kafka.Message{Topic: w.j.cfg.DLQTopic, Key: m.Key, Value: m.Value, Headers: headers})
	w.log.Debug("record set aside", zap.Int64("offset", m.Offset), zap.Error(cause))
}
