package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/schemas"
)

type topicPartition struct {
	topic     string
	partition int
}

// job is one running `cdrguard run`.
type job struct {
	cfg               Config
	ctx               context.Context
	writer            *kafka.Writer
	inputPartitions   int
	sourcesPartitions int
	states            map[topicPartition]*partitionState
	// published holds the IDs of alerts already in the alerts topic when
	// workers started on partitions whose outputs may have been written
	// before (read-only while workers run).
	published map[string]bool
	wg        sync.WaitGroup
}

// Run runs the streaming job until ctx ends, then stops fetching, makes
// the outputs durable, commits and leaves the group within
// Config.ShutdownTimeout.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	j := &job{cfg: cfg, ctx: ctx, states: map[topicPartition]*partitionState{}, published: map[string]bool{}}
	if err := j.topics(ctx); err != nil {
		return err
	}
	j.writer = cfg.Kafka.NewWriter(&balancer{})
	defer j.writer.Close()

	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    cfg.Group,
		Brokers:               cfg.Kafka.Conn.Brokers,
		Dialer:                cfg.Kafka.Dialer,
		Topics:                []string{cfg.Topic, cfg.SourcesTopic},
		StartOffset:           kafka.FirstOffset,
		SessionTimeout:        cfg.SessionTimeout,
		RebalanceTimeout:      cfg.RebalanceTimeout,
		HeartbeatInterval:     cfg.SessionTimeout / 4,
		JoinGroupBackoff:      2 * time.Second,
		WatchPartitionChanges: true,
		ErrorLogger:           kafka.LoggerFunc(cfg.Log.Sugar().Debugf),
	})
	if err != nil {
		return fmt.Errorf("cannot join consumer group %s: %w", cfg.Group, err)
	}
	cfg.Log.Info("consuming", zap.String("topic", cfg.Topic), zap.String("group", cfg.Group),
		zap.Int("input_partitions", j.inputPartitions), zap.Int("source_partitions", j.sourcesPartitions),
		zap.String("kafka", cfg.Kafka.Conn.Redacted()))
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			cfg.Log.Warn("consumer group: no generation; retrying", zap.Error(err))
			continue
		}
		// Preparing a generation reads offsets and messages; a broker that
		// is still electing leaders (new topics) answers with retriable
		// errors, so try again until it works or the job stops.
		for attempt := 0; ; attempt++ {
			err := j.generation(ctx, gen)
			if err == nil || ctx.Err() != nil {
				break
			}
			cfg.Log.Warn("cannot start generation; retrying", zap.Int32("generation", gen.ID), zap.Int("attempt", attempt), zap.Error(err))
			select {
			case <-ctx.Done():
			case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)):
			}
		}
	}
	j.wg.Wait() // workers drain and commit
	if err := group.Close(); err != nil {
		cfg.Log.Warn("leaving the consumer group", zap.Error(err))
	}
	cfg.Log.Info("stopped")
	return nil
}

// topics checks the input topic and creates the others when asked.
func (j *job) topics(ctx context.Context) error {
	k := j.cfg.Kafka
	n, err := k.Partitions(ctx, j.cfg.Topic)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("input topic %s does not exist", j.cfg.Topic)
	}
	j.inputPartitions = n
	if j.cfg.CreateTopics {
		rf := j.cfg.ReplicationFactor
		if rf == 0 {
			rf = -1
		}
		big := map[string]string{"max.message.bytes": strconv.Itoa(2*j.cfg.MaxRecordBytes + 64<<10)}
		err := k.EnsureTopics(ctx,
			kafkaio.TopicSpec{Name: j.cfg.AlertsTopic, Partitions: n, ReplicationFactor: rf},
			kafkaio.TopicSpec{Name: j.cfg.DLQTopic, Partitions: n, ReplicationFactor: rf, Configs: big},
			kafkaio.TopicSpec{Name: j.cfg.SourcesTopic, Partitions: n, ReplicationFactor: rf})
		if err != nil {
			return err
		}
	}
	if j.sourcesPartitions, err = k.Partitions(ctx, j.cfg.SourcesTopic); err != nil {
		return err
	}
	if j.sourcesPartitions == 0 {
		return fmt.Errorf("internal topic %s does not exist (create it, or set create_topics)", j.cfg.SourcesTopic)
	}
	return nil
}

// generation starts one worker per assigned partition.
func (j *job) generation(ctx context.Context, gen *kafka.Generation) error {
	type start struct {
		st   *partitionState
		from int64 // first offset whose outputs may not be durable
	}
	var starts []start
	assigned := map[topicPartition]bool{}
	var since time.Time
	for topic, parts := range gen.Assignments {
		if len(parts) == 0 {
			continue
		}
		first, next, err := j.cfg.Kafka.Offsets(ctx, topic, max(j.inputPartitions, j.sourcesPartitions))
		if err != nil {
			return err
		}
		for _, pa := range parts {
			key := topicPartition{topic, pa.ID}
			assigned[key] = true
			committed := pa.Offset
			if committed < 0 {
				committed = first[pa.ID] // nothing committed: from the beginning
			}
			st := j.states[key]
			if st != nil && st.committed == committed && st.next >= committed {
				// Still ours, nobody committed meanwhile: go on where we were.
				starts = append(starts, start{st, st.next})
				continue
			}
			st, err := j.newState(topic, pa.ID)
			if err != nil {
				return err
			}
			st.committed = committed
			st.next = committed
			if committed > first[pa.ID] {
				if !j.cfg.NoRebuild {
					if st.next, err = j.rewind(ctx, st, committed, first[pa.ID]); err != nil {
						return err
					}
				}
				if committed < next[pa.ID] {
					m, err := j.cfg.Kafka.MessageAt(ctx, topic, pa.ID, committed, max(2*j.cfg.MaxRecordBytes, 4<<20))
					if err != nil {
						return err
					}
					if t := m.Time.Add(-time.Minute); since.IsZero() || t.Before(since) {
						since = t
					}
				}
			}
			j.states[key] = st
			starts = append(starts, start{st, committed})
		}
	}
	for key := range j.states {
		if !assigned[key] {
			delete(j.states, key)
		}
	}
	if !since.IsZero() {
		ids, err := j.cfg.Kafka.HeaderValues(ctx, j.cfg.AlertsTopic, hdrAlertID, since, 4<<20)
		if err != nil {
			return err
		}
		j.published = ids
		j.cfg.Log.Info("read published alert IDs", zap.Int("alerts", len(ids)), zap.Time("since", since))
	}
	j.cfg.Log.Info("generation", zap.Int32("id", gen.ID), zap.Int("partitions", len(starts)))
	for _, s := range starts {
		j.wg.Add(1)
		gen.Start(func(genCtx context.Context) {
			defer j.wg.Done()
			wctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stop1 := context.AfterFunc(genCtx, cancel)
			stop2 := context.AfterFunc(ctx, cancel)
			defer stop1()
			defer stop2()
			if s.st.lastRecord.IsZero() {
				s.st.lastRecord = j.cfg.Now()
			}
			newWorker(j, s.st, gen, s.from).run(wctx)
		})
	}
	return nil
}

// newState makes a fresh engine for a partition.
func (j *job) newState(topic string, partition int) (*partitionState, error) {
	dc := j.cfg.Detect
	st := &partitionState{topic: topic, partition: partition}
	if topic == j.cfg.Topic {
		st.role = inputRole
		dc.Kinds = []schemas.SubjectKind{schemas.SubjectCaller}
		dc.Aggregates = j.cfg.Sink != nil
	} else {
		st.role = sourcesRole
		dc.Kinds = []schemas.SubjectKind{schemas.SubjectTrunk, schemas.SubjectIMEI, schemas.SubjectIMSI, schemas.SubjectSourceIP}
		dc.Aggregates = false
		dc.ExternalWatermark = true
		st.upstream = map[int]upstreamMark{}
		st.lastSeq = map[int]int64{}
	}
	eng, err := detectors.NewEngine(dc, j.cfg.Rules.Rules(), j.cfg.Rules.Allowlist)
	if err != nil {
		return nil, err
	}
	st.engine = eng
	return st, nil
}

// rewind finds where to start replaying a partition quietly so that its
// windows hold every record that started within the longest window (plus
// the lateness) before the committed offset — and, when aggregates are
// written, since the start of that record's UTC day. Producers stamp records no
// earlier than the call's start, so the first message stamped at or after
// that time is early enough.
func (j *job) rewind(ctx context.Context, st *partitionState, committed, first int64) (int64, error) {
	m, err := j.cfg.Kafka.MessageAt(ctx, st.topic, st.partition, committed-1, max(2*j.cfg.MaxRecordBytes, 4<<20))
	if err != nil {
		return 0, err
	}
	// The event time of the last record the committed offset covers.
	// Message timestamps are never earlier than it (a record is written
	// after its call started), so rewinding by timestamp to that time
	// minus the window replays at least the records the window needs.
	at := m.Time
	switch {
	case bytes.Equal(m.Key, watermarkKey):
		if wm, ok := headerInt(&m, hdrWatermark); ok {
			at = time.UnixMilli(wm)
		}
	case bytes.Equal(m.Key, packKey):
		var latest int64
		if unpack(m.Value, func(c *schemas.CDR) { latest = max(latest, c.StartMS) }) == nil && latest > 0 {
			at = time.UnixMilli(latest)
		}
	default:
		var p schemas.JSONParser
		var c schemas.CDR
		if p.Parse(&c, m.Value) == nil {
			at = c.Start()
		}
	}
	windows := j.cfg.Detect.Windows
	if len(windows) == 0 {
		windows = detectors.DefaultWindows
	}
	var longest time.Duration
	for _, w := range windows {
		longest = max(longest, w.Size)
	}
	lateness := j.cfg.Detect.Lateness
	if lateness == 0 {
		lateness = 10 * time.Minute
	}
	back := at.Add(-longest - lateness - time.Minute)
	if st.role == inputRole && j.cfg.Sink != nil {
		// Day rows count a caller's whole UTC day: rebuild from its start.
		y, m, d := at.UTC().Date()
		if dayStart := time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Add(-lateness - time.Minute); dayStart.Before(back) {
			back = dayStart
		}
	}
	if back.UnixMilli() < schemas.MinStartMS {
		// No usable time (a watermark message sent before anything was
		// released): replay the partition from its first record.
		return first, nil
	}
	from, err := j.cfg.Kafka.OffsetAt(ctx, st.topic, st.partition, back)
	if err != nil {
		return 0, err
	}
	return min(max(from, first), committed), nil
}
