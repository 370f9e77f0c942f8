package stream

import (
	"bytes"
	"context"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

// start is where a generation's worker begins on a partition.
type start struct {
	st *partitionState
	// from is the first offset whose outputs may not be durable: records
	// below it (from st.next on) are replayed quietly to rebuild state.
	from int64
}

// keep reports whether a partition's state from the previous generation
// can go on where it stopped: only if that generation left every output
// of the records it took durable (a worker that lost outputs forgets its
// state) and nobody committed the partition since.
func keep(st *partitionState, committed int64) bool {
	return st != nil && st.committed == committed && st.next >= committed
}

// prepare decides, for every assigned partition, whether this member
// goes on with the state it has or starts a fresh engine that rebuilds
// its windows from before the committed offset.
func (j *job) prepare(ctx context.Context, assignments map[string][]kafka.PartitionAssignment) ([]start, error) {
	j.statesMu.Lock()
	defer j.statesMu.Unlock()
	var starts []start
	assigned := map[topicPartition]bool{}
	fresh := map[topicPartition]*partitionState{}
	var since time.Time
	for topic, parts := range assignments {
		if len(parts) == 0 {
			continue
		}
		first, next, err := j.broker.Offsets(ctx, topic, max(j.inputPartitions, j.sourcesPartitions))
		if err != nil {
			return nil, err
		}
		for _, pa := range parts {
			key := topicPartition{topic, pa.ID}
			assigned[key] = true
			committed := pa.Offset
			if committed < 0 {
				committed = first[pa.ID] // nothing committed: from the beginning
			}
			if st := j.states[key]; keep(st, committed) {
				starts = append(starts, start{st, st.next})
				continue
			}
			st, err := j.newState(topic, pa.ID)
			if err != nil {
				return nil, err
			}
			st.committed, st.next = committed, committed
			if committed > first[pa.ID] {
				if !j.cfg.NoRebuild {
					if st.next, err = j.rewind(ctx, st, committed, first[pa.ID]); err != nil {
						return nil, err
					}
				}
				if committed < next[pa.ID] {
					// Alerts of records from the committed offset on may have
					// been published by the member that had the partition.
					m, err := j.broker.MessageAt(ctx, topic, pa.ID, committed, j.maxFetchBytes())
					if err != nil {
						return nil, err
					}
					if t := m.Time.Add(-time.Minute); since.IsZero() || t.Before(since) {
						since = t
					}
				}
			}
			fresh[key] = st
			starts = append(starts, start{st, committed})
		}
	}
	if !since.IsZero() {
		ids, err := j.broker.HeaderValues(ctx, j.cfg.AlertsTopic, hdrAlertID, since, 4<<20)
		if err != nil {
			return nil, err
		}
		j.published = ids
		j.cfg.Log.Info("read published alert IDs", zap.Int("alerts", len(ids)), zap.Time("since", since))
	}
	// Only now that nothing can fail: states of partitions no longer
	// assigned go, fresh ones replace the old.
	for key := range j.states {
		if !assigned[key] {
			delete(j.states, key)
			j.cfg.Metrics.removePartition(key.topic, key.partition)
		}
	}
	for key, st := range fresh {
		j.states[key] = st
	}
	return starts, nil
}

func (j *job) maxFetchBytes() int { return max(2*j.cfg.MaxRecordBytes, 4<<20) }

// rewind finds where to start replaying a partition quietly so that its
// windows hold every record that started within the longest window (plus
// the lateness) before the committed offset — and, when aggregates are
// written, since the start of that record's UTC day.
func (j *job) rewind(ctx context.Context, st *partitionState, committed, first int64) (int64, error) {
	m, err := j.broker.MessageAt(ctx, st.topic, st.partition, committed-1, j.maxFetchBytes())
	if err != nil {
		return 0, err
	}
	back, ok := rewindTime(eventTime(&m), j.cfg.Detect, st.role == inputRole && j.cfg.Rows)
	if !ok {
		// No usable time (a watermark message sent before anything was
		// released): replay the partition from its first record.
		return first, nil
	}
	from, err := j.broker.OffsetAt(ctx, st.topic, st.partition, back)
	if err != nil {
		return 0, err
	}
	return min(max(from, first), committed), nil
}

// eventTime is the latest event time a message of the job's topics
// covers: a CDR's start, the latest start in a pack, a watermark; the
// message's timestamp when it has none.
func eventTime(m *kafka.Message) time.Time {
	at := m.Time
	switch {
	case bytes.Equal(m.Key, watermarkKey):
		if wm, ok := headerInt(m, hdrWatermark); ok {
			at = time.UnixMilli(wm)
		}
	case bytes.Equal(m.Key, packKey):
		var latest int64
		if unpack(m.Value, 0, func(c *schemas.CDR, _ int64) { latest = max(latest, c.StartMS) }) == nil && latest > 0 {
			at = time.UnixMilli(latest)
		}
	default:
		var p schemas.JSONParser
		var c schemas.CDR
		if p.Parse(&c, m.Value) == nil {
			at = c.Start()
		}
	}
	return at
}

// rewindTime is the message timestamp to rebuild from when the last
// committed record covers event time at: one longest window plus the
// lateness (and a minute of margin) before it, and with day aggregates
// no later than the start of its UTC day. Producers stamp records no
// earlier than the call's start, so the first message stamped at or
// after that time is early enough. ok is false when at is not a usable
// time.
func rewindTime(at time.Time, dc detectors.Config, dayRows bool) (back time.Time, ok bool) {
	windows := dc.Windows
	if len(windows) == 0 {
		windows = detectors.DefaultWindows
	}
	var longest time.Duration
	for _, w := range windows {
		longest = max(longest, w.Size)
	}
	lateness := dc.Lateness
	if lateness == 0 {
		lateness = 10 * time.Minute
	}
	back = at.Add(-longest - lateness - time.Minute)
	if dayRows {
		y, m, d := at.UTC().Date()
		if dayStart := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(-lateness - time.Minute); dayStart.Before(back) {
			back = dayStart
		}
	}
	return back, back.UnixMilli() >= schemas.MinStartMS
}
