package hooks

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
)

// KafkaLog is the Log on Apache Kafka. It is safe for concurrent use;
// Close it when done.
type KafkaLog struct {
	kc *kafkaio.Client
	w  *kafka.Writer

	mu      sync.Mutex
	follows map[string]map[*followed]bool // topic -> running Follows
}

// followed is the progress of one Follow: per partition, the offset
// after the last message applied.
type followed struct{ next []atomic.Int64 }

// NewKafkaLog returns a Log writing and reading through kc.
func NewKafkaLog(kc *kafkaio.Client) *KafkaLog {
	w := kc.NewWriter(nil)
	w.BatchTimeout = time.Millisecond
	return &KafkaLog{kc: kc, w: w, follows: map[string]map[*followed]bool{}}
}

// Close flushes and closes the writer.
func (k *KafkaLog) Close() error {
	if err := k.w.Close(); err != nil {
		return fmt.Errorf("cannot close the hooks writer: %w", err)
	}
	return nil
}

// EnsureTopics creates the retry, parked, held, allowlist and state
// topics of cfg (with its defaults applied) when missing, compacted, and
// its dead-letter topic (deleted after the broker's retention).
func (k *KafkaLog) EnsureTopics(ctx context.Context, cfg Config, replicationFactor int) error {
	compact := map[string]string{"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
	return k.kc.EnsureTopics(ctx,
		kafkaio.TopicSpec{Name: cfg.RetryTopic, Partitions: 4, ReplicationFactor: replicationFactor, Configs: compact},
		kafkaio.TopicSpec{Name: cfg.ParkedTopic, Partitions: 1, ReplicationFactor: replicationFactor, Configs: compact},
		kafkaio.TopicSpec{Name: cfg.HeldTopic, Partitions: 1, ReplicationFactor: replicationFactor, Configs: compact},
		kafkaio.TopicSpec{Name: cfg.AllowlistTopic, Partitions: 1, ReplicationFactor: replicationFactor, Configs: compact},
		kafkaio.TopicSpec{Name: cfg.StateTopic, Partitions: 4, ReplicationFactor: replicationFactor, Configs: compact},
		kafkaio.TopicSpec{Name: cfg.DLQTopic, Partitions: 1, ReplicationFactor: replicationFactor})
}

// Produce implements Producer.
func (k *KafkaLog) Produce(ctx context.Context, msgs ...Message) error {
	km := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		km[i] = kafka.Message{Topic: m.Topic, Key: m.Key, Value: m.Value}
		if len(m.Value) == 0 {
			km[i].Value = nil // a tombstone
		}
		for hk, hv := range m.Headers {
			km[i].Headers = append(km[i].Headers, kafka.Header{Key: hk, Value: []byte(hv)})
		}
	}
	if err := k.w.WriteMessages(ctx, km...); err != nil {
		return fmt.Errorf("cannot write to %s: %w", msgs[0].Topic, err)
	}
	return nil
}

// Follow implements Follower: one reader per partition from its first
// offset.
func (k *KafkaLog) Follow(ctx context.Context, topic string, apply func(Message), ready func()) error {
	// A topic created moments ago may not have a leader yet: ask again
	// for a while.
	var n int
	var first, next []int64
	var err error
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		if n, err = k.kc.Partitions(ctx, topic); err == nil && n == 0 {
			err = fmt.Errorf("topic %s does not exist (cdrguard hooks creates it)", topic)
		}
		if err == nil {
			if first, next, err = k.kc.Offsets(ctx, topic, n); err == nil {
				break
			}
		}
		if wait >= 2*time.Second || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	prog := &followed{next: make([]atomic.Int64, n)}
	for p := range n {
		prog.next[p].Store(first[p])
	}
	k.mu.Lock()
	if k.follows[topic] == nil {
		k.follows[topic] = map[*followed]bool{}
	}
	k.follows[topic][prog] = true
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		delete(k.follows[topic], prog)
		k.mu.Unlock()
	}()
	var waiting atomic.Int32
	waiting.Store(int32(n))
	var once sync.Once
	caughtUp := func() {
		if waiting.Add(-1) == 0 {
			once.Do(ready)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for p := range n {
		if first[p] >= next[p] {
			caughtUp()
		}
		r, err := k.kc.NewReader(topic, p, first[p], 8<<20)
		if err != nil {
			cancel(err)
			break
		}
		wg.Go(func() {
			defer r.Close()
			behind := first[p] < next[p]
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						cancel(fmt.Errorf("cannot read %s/%d: %w", topic, p, err))
					}
					return
				}
				apply(Message{Topic: topic, Key: m.Key, Value: m.Value})
				prog.next[p].Store(m.Offset + 1)
				if behind && m.Offset+1 >= next[p] {
					behind = false
					caughtUp()
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// Sync implements Syncer: it reads topic's end offsets, then waits
// (asking every 5 ms) until every Follow of topic has applied the
// messages before them.
func (k *KafkaLog) Sync(ctx context.Context, topic string) error {
	k.mu.Lock()
	var progs []*followed
	for f := range k.follows[topic] {
		progs = append(progs, f)
	}
	k.mu.Unlock()
	if len(progs) == 0 {
		return fmt.Errorf("cannot sync %s: nothing follows it", topic)
	}
	n := len(progs[0].next)
	_, end, err := k.kc.Offsets(ctx, topic, n)
	if err != nil {
		return fmt.Errorf("cannot sync %s: %w", topic, err)
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		behind := false
		for _, f := range progs {
			for p := range min(n, len(f.next)) {
				behind = behind || f.next[p].Load() < end[p]
			}
		}
		if !behind {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// WaitTopic waits until topic exists (has partitions), asking every
// 200 ms, until ctx ends. The dispatcher's group reader must not join
// before its topic exists: it would be assigned nothing and not notice
// the topic's creation.
func WaitTopic(ctx context.Context, kc *kafkaio.Client, topic string) error {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		n, err := kc.Partitions(ctx, topic)
		if err == nil && n > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s does not exist yet: %w", topic, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// JoinedCheck returns a readiness check (health.Check) that passes once
// r, a group reader, has joined a generation of group. It reads r.Stats,
// which resets r's counters: nothing else may read them.
func JoinedCheck(r *kafka.Reader, group string) func() error {
	var joined atomic.Bool
	return func() error {
		if joined.Load() || r.Stats().Rebalances > 0 {
			joined.Store(true)
			return nil
		}
		return fmt.Errorf("not in a generation of group %s yet (joining)", group)
	}
}

// NewAlertSource returns the reader of the alerts topic in group (the
// dispatcher's own, "<group>-hooks"), committing only when told. The
// caller closes it.
func NewAlertSource(kc *kafkaio.Client, topic, group string) (*kafka.Reader, error) {
	cfg := kafka.ReaderConfig{
		Brokers: kc.Conn.Brokers, Topic: topic, GroupID: group, Dialer: kc.Dialer,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond,
		StartOffset: kafka.FirstOffset, CommitInterval: 0,
		HeartbeatInterval: time.Second, SessionTimeout: 10 * time.Second, RebalanceTimeout: 10 * time.Second,
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("alerts reader: %w", err)
	}
	return kafka.NewReader(cfg), nil
}
