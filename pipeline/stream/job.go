package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/health"
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
	broker            broker
	producer          Producer
	inputPartitions   int
	sourcesPartitions int
	rowsPartitions    int
	// states are the partitions this member owns, kept across a
	// rebalance that leaves them here with everything durable.
	states   map[topicPartition]*partitionState
	statesMu sync.Mutex
	// published holds the IDs of alerts already in the alerts topic when
	// workers started on partitions whose outputs may have been written
	// before (read-only while workers run).
	published map[string]bool
	wg        sync.WaitGroup
	status    status
	// leaseUntil is the member's membership lease (Unix ns): the latest
	// expiry any worker's accepted commit (or a generation's start) gave.
	// Past it, the fenced transport refuses to send produce requests.
	leaseUntil atomic.Int64
}

// renewLease extends the member's lease to t (never shortens it).
func (j *job) renewLease(t time.Time) {
	n := t.UnixNano()
	for {
		cur := j.leaseUntil.Load()
		if n <= cur || j.leaseUntil.CompareAndSwap(cur, n) {
			return
		}
	}
}

// leaseHolds reports whether the member's lease has not run out.
func (j *job) leaseHolds() bool { return j.cfg.Now().UnixNano() < j.leaseUntil.Load() }

// status is what the readiness checks read.
type status struct {
	// generation is the running generation's ID and partitions, 0 between
	// generations.
	generation, partitions atomic.Int32
	// rebuilding counts workers still replaying quietly.
	rebuilding atomic.Int32
	// failingSince is when output writes started failing (Unix ns), 0
	// while they succeed.
	failingSince atomic.Int64
}

func (j *job) registerChecks(h *health.Registry) {
	h.Add("kafka group", func() error {
		if j.status.generation.Load() == 0 {
			return fmt.Errorf("not in a generation of group %s (joining or rebalancing)", j.cfg.Group)
		}
		return nil
	})
	h.Add("kafka outputs", func() error {
		if since := j.status.failingSince.Load(); since != 0 {
			return fmt.Errorf("writes failing since %s", time.Unix(0, since).UTC().Format(time.RFC3339))
		}
		return nil
	})
	h.Add("rebuild", func() error {
		if n := j.status.rebuilding.Load(); n > 0 {
			return fmt.Errorf("%d partitions still rebuilding their windows", n)
		}
		return nil
	})
}

// Run runs the streaming job until ctx ends, then stops fetching, makes
// the outputs durable, commits and leaves the group within
// Config.ShutdownTimeout.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	j := &job{cfg: cfg, broker: kafkaBroker{cfg.Kafka}, producer: cfg.Producer,
		states: map[topicPartition]*partitionState{}, published: map[string]bool{}}
	j.registerChecks(cfg.Health)
	if err := j.connect(ctx); err != nil {
		return err
	}
	if j.producer == nil {
		w := NewWriter(cfg.Kafka)
		w.Transport = fencedTransport{next: w.Transport, j: j}
		defer w.Close()
		j.producer = w
	}

	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                    cfg.Group,
		Brokers:               cfg.Kafka.Conn.Brokers,
		Dialer:                cfg.Kafka.Dialer,
		Topics:                []string{cfg.Topic, cfg.SourcesTopic},
		StartOffset:           kafka.FirstOffset,
		SessionTimeout:        cfg.SessionTimeout,
		RebalanceTimeout:      cfg.RebalanceTimeout,
		HeartbeatInterval:     cfg.SessionTimeout / 4,
		JoinGroupBackoff:      time.Second,
		WatchPartitionChanges: true,
		ErrorLogger:           kafka.LoggerFunc(cfg.Log.Sugar().Debugf),
	})
	if err != nil {
		return fmt.Errorf("cannot join consumer group %s: %w", cfg.Group, err)
	}
	cfg.Log.Info("consuming", zap.String("topic", cfg.Topic), zap.String("group", cfg.Group),
		zap.Int("input_partitions", j.inputPartitions), zap.Int("source_partitions", j.sourcesPartitions),
		zap.Bool("rows", cfg.Rows), zap.String("kafka", cfg.Kafka.Conn.Redacted()))
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			cfg.Log.Warn("consumer group: no generation; retrying", zap.Error(err))
			continue
		}
		// Preparing a generation reads offsets and messages; a broker that
		// is still electing leaders (new topics) answers with retriable
		// errors, so try again until it works, the generation ends or the
		// job stops.
		genCtx := generationContext(gen)
		for attempt := 0; ; attempt++ {
			starts, err := j.prepare(ctx, gen.Assignments)
			if err == nil {
				j.launch(ctx, gen, starts)
				break
			}
			if ctx.Err() != nil || genCtx.Err() != nil {
				break
			}
			cfg.Log.Warn("cannot start generation; retrying", zap.Int32("generation", gen.ID), zap.Int("attempt", attempt), zap.Error(err))
			select {
			case <-ctx.Done():
			case <-genCtx.Done():
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

// NewWriter returns the writer the job makes its outputs durable with:
// internal messages go to the partition they name, others by key.
func NewWriter(kc *kafkaio.Client) *kafka.Writer { return kc.NewWriter(&balancer{}) }

// generationContext returns a context that ends with gen, without
// registering a routine in it.
func generationContext(gen *kafka.Generation) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	j := make(chan struct{})
	gen.Start(func(genCtx context.Context) {
		close(j)
		<-genCtx.Done()
		cancel()
	})
	<-j
	return ctx
}

// connect checks the topics, waiting with backoff while the brokers
// cannot be reached, for at most ConnectTimeout: a job started before its
// brokers (a cluster coming up) waits; one pointed at the wrong brokers
// stops with an error that names them. A missing input topic is an error
// at once.
func (j *job) connect(ctx context.Context) error {
	start := j.cfg.Now()
	wait := 500 * time.Millisecond
	for {
		err := j.topics(ctx)
		if err == nil || errors.Is(err, errNoInput) || ctx.Err() != nil {
			return err
		}
		if j.cfg.Now().Sub(start) >= j.cfg.ConnectTimeout {
			return fmt.Errorf("kafka.brokers %s unreachable for %v (kafka.connect_timeout): %w",
				strings.Join(j.cfg.Kafka.Conn.Brokers, ","), j.cfg.ConnectTimeout, err)
		}
		j.cfg.Log.Warn("waiting for the Kafka brokers", zap.Strings("brokers", j.cfg.Kafka.Conn.Brokers),
			zap.Duration("retry_in", wait), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// errNoInput is returned when the input topic does not exist.
var errNoInput = errors.New("input topic does not exist")

// topics checks the input topic and creates the others when asked.
func (j *job) topics(ctx context.Context) error {
	b := j.broker
	n, err := b.Partitions(ctx, j.cfg.Topic)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("kafka.topic %s: %w", j.cfg.Topic, errNoInput)
	}
	j.inputPartitions = n
	if j.cfg.CreateTopics {
		rf := j.cfg.ReplicationFactor
		if rf == 0 {
			rf = -1
		}
		big := map[string]string{"max.message.bytes": strconv.Itoa(2*j.cfg.MaxRecordBytes + 64<<10)}
		specs := []kafkaio.TopicSpec{
			{Name: j.cfg.AlertsTopic, Partitions: n, ReplicationFactor: rf},
			{Name: j.cfg.DLQTopic, Partitions: n, ReplicationFactor: rf, Configs: big},
			{Name: j.cfg.SourcesTopic, Partitions: n, ReplicationFactor: rf},
		}
		if j.cfg.Rows {
			specs = append(specs, kafkaio.TopicSpec{Name: j.cfg.RowsTopic, Partitions: n, ReplicationFactor: rf,
				Configs: map[string]string{"max.message.bytes": strconv.Itoa(maxRowsMessage + 64<<10)}})
		}
		if err := b.EnsureTopics(ctx, specs...); err != nil {
			return err
		}
	}
	if j.sourcesPartitions, err = b.Partitions(ctx, j.cfg.SourcesTopic); err != nil {
		return err
	}
	if j.sourcesPartitions == 0 {
		return fmt.Errorf("internal topic %s does not exist (create it, or set create_topics)", j.cfg.SourcesTopic)
	}
	if j.cfg.Rows {
		if j.rowsPartitions, err = b.Partitions(ctx, j.cfg.RowsTopic); err != nil {
			return err
		}
		if j.rowsPartitions == 0 {
			return fmt.Errorf("internal topic %s does not exist (create it, or set create_topics)", j.cfg.RowsTopic)
		}
	}
	return nil
}

// launch runs one worker per started partition in one routine of the
// generation, so that the generation ends when kafka-go ends it (a
// rebalance, a failed heartbeat) or when every worker has stopped, never
// because one worker finished draining before the others.
func (j *job) launch(ctx context.Context, gen *kafka.Generation, starts []start) {
	j.cfg.Log.Info("generation", zap.Int32("id", gen.ID), zap.Int("partitions", len(starts)))
	j.wg.Add(1)
	gen.Start(func(genCtx context.Context) {
		defer j.wg.Done()
		j.status.generation.Store(max(gen.ID, 1))
		j.status.partitions.Store(int32(len(starts)))
		defer j.status.generation.Store(0)
		// A worker that fails ends the generation for all: the group
		// rejoins and the partitions restart from their committed offsets.
		wctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stop := context.AfterFunc(ctx, cancel)
		defer stop()
		stopGen := context.AfterFunc(genCtx, cancel)
		defer stopGen()
		var wg sync.WaitGroup
		for _, s := range starts {
			wg.Go(func() {
				w := newWorker(j, s.st, gen, s.from)
				if err := w.run(wctx, ctx, genCtx); err != nil {
					w.log.Error("partition worker stopped; restarting the generation", zap.Error(err))
					cancel()
				}
				if !w.clean {
					j.forget(s.st)
				}
			})
		}
		wg.Wait()
	})
}

// forget drops a partition's state: it restarts from its committed
// offset, rebuilt, if this member owns it in a later generation.
func (j *job) forget(st *partitionState) {
	j.statesMu.Lock()
	defer j.statesMu.Unlock()
	key := topicPartition{st.topic, st.partition}
	if j.states[key] == st {
		delete(j.states, key)
		j.cfg.Metrics.removePartition(st.topic, st.partition)
	}
}

// The key kinds of the two roles' engines.
var (
	callerKinds = []schemas.SubjectKind{schemas.SubjectCaller}
	sourceKinds = []schemas.SubjectKind{schemas.SubjectTrunk, schemas.SubjectIMEI, schemas.SubjectIMSI, schemas.SubjectSourceIP}
)

// newState makes a fresh engine for a partition.
func (j *job) newState(topic string, partition int) (*partitionState, error) {
	dc := j.cfg.Detect
	st := &partitionState{topic: topic, partition: partition}
	if topic == j.cfg.Topic {
		st.role = inputRole
		dc.Kinds = callerKinds
		dc.Aggregates = j.cfg.Rows
	} else {
		st.role = sourcesRole
		dc.Kinds = sourceKinds
		dc.Aggregates = false
		dc.ExternalWatermark = true
		// Input workers drop duplicates before they re-key records; the
		// packs carry too little of a record to fingerprint it here.
		dc.DedupHorizon = -1
		st.upstream = newUpstream(j.inputPartitions)
		st.lastSeq = map[int]int64{}
	}
	eng, err := detectors.NewEngine(dc, j.cfg.Rules.Rules(), j.cfg.Rules.Allowlist)
	if err != nil {
		return nil, err
	}
	st.engine = eng
	return st, nil
}
