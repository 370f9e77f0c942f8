// Package loader feeds the row store (ClickHouse) from Kafka, in a
// consumer group of its own, so that detection depends on Kafka alone.
//
// It reads the streaming job's internal rows topic (aggregate rows), the
// alerts topic and, when raw CDRs are stored, the input topic, and writes
// what it reads through a Store. A partition's offset is committed only
// once the Store has accepted every row read before it, and only through
// the generation that owns the partition, so an outage of the store, of
// any length, delays the loader and loses nothing: when the store is
// back the loader catches up from Kafka. Every table the Store writes
// replaces duplicates (alert IDs, rows keyed by caller and period,
// CDRs by call ID), so rows read again after a crash or a rebalance
// change nothing.
//
// When the store cannot be reached at start, the loader logs a warning
// and tries again with backoff; it joins its group only once the store
// is open.
package loader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/health"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/rows"
	"github.com/cdrguard/cdrguard/schemas"
)

// Store makes rows durable. Write blocks until the store holds every row
// of b (or ctx ends, or the write fails); it may be called concurrently.
// partition is the input partition the rows came from. Write may retry
// transient failures itself; an error it returns is retried by the loader
// with backoff, for as long as it takes.
type Store interface {
	Write(ctx context.Context, partition int32, b *rows.Batch) error
}

// Opener opens the store: it connects and prepares the tables. The
// returned func closes it. An error is logged and Open is tried again.
type Opener func(ctx context.Context) (Store, func(), error)

// Config is a loader's configuration.
type Config struct {
	// Kafka reaches the brokers; Group is the loader's consumer group
	// (default "<job group>-clickhouse", set by the caller).
	Kafka *kafkaio.Client
	Group string
	// RowsTopic and AlertsTopic are read always; InputTopic (the CDRs)
	// only when StoreCDRs is set.
	RowsTopic, AlertsTopic, InputTopic string
	StoreCDRs                          bool
	// Plan normalises numbers of stored CDRs as the job does;
	// MaxRecordBytes and MaxFuture reject the records the job rejects.
	Plan           *schemas.NumberPlan
	MaxRecordBytes int
	MaxFuture      time.Duration
	// Open opens the store.
	Open Opener
	// MaxRows is the most rows gathered per partition before a write;
	// FlushInterval the longest rows wait for more. Defaults 50000, 200ms.
	MaxRows       int
	FlushInterval time.Duration
	// SessionTimeout and RebalanceTimeout of the group. Defaults 10s, 30s.
	SessionTimeout, RebalanceTimeout time.Duration
	// ShutdownTimeout bounds the last writes when ctx ends. Default 30s.
	ShutdownTimeout time.Duration
	// Log and Metrics (Metrics may be nil); Health receives the
	// "clickhouse" readiness check (may be nil).
	Log     *zap.Logger
	Metrics *Metrics
	Health  *health.Registry
	// Now is the wall clock (for MaxFuture). Default time.Now.
	Now func() time.Time

	state *storeState
}

// storeState is what the readiness check reads of the store.
type storeState struct {
	mu           sync.Mutex
	open         bool
	lastErr      error
	failingSince time.Time
}

func (s *storeState) set(open bool, err error, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = s.open || open
	s.lastErr = err
	switch {
	case err == nil:
		s.failingSince = time.Time{}
	case s.failingSince.IsZero():
		s.failingSince = now
	}
}

func (s *storeState) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !s.open && s.lastErr != nil:
		return fmt.Errorf("not connected: %w", s.lastErr)
	case !s.open:
		return errors.New("connecting")
	case s.lastErr != nil:
		return fmt.Errorf("writes failing since %s: %w", s.failingSince.UTC().Format(time.RFC3339), s.lastErr)
	}
	return nil
}

func (c *Config) defaults() {
	if c.MaxRows <= 0 {
		c.MaxRows = 50000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 10 * time.Second
	}
	if c.RebalanceTimeout <= 0 {
		c.RebalanceTimeout = 30 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.MaxFuture <= 0 {
		c.MaxFuture = 24 * time.Hour
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks c after defaults; messages name the field.
func (c *Config) Validate() error {
	c.defaults()
	switch {
	case c.Kafka == nil:
		return errors.New("loader: no Kafka client")
	case c.Group == "":
		return errors.New("loader: no consumer group")
	case c.RowsTopic == "" || c.AlertsTopic == "":
		return errors.New("loader: rows and alerts topics must be set")
	case c.StoreCDRs && c.InputTopic == "":
		return errors.New("loader: storing CDRs needs the input topic")
	case c.Open == nil:
		return errors.New("loader: no store")
	}
	return nil
}

// Metrics are the loader's Prometheus figures.
type Metrics struct {
	Messages *prometheus.CounterVec // topic, outcome (loaded, skipped)
	Rows     prometheus.Counter
	Lag      *prometheus.GaugeVec // topic, partition
	Opens    *prometheus.CounterVec
}

// NewMetrics registers the loader's metrics with reg (nil: none).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_loader_messages_total",
			Help: "Messages the ClickHouse loader read, by topic and outcome (loaded, skipped)."}, []string{"topic", "outcome"}),
		Rows: prometheus.NewCounter(prometheus.CounterOpts{Name: "cdrguard_loader_rows_total",
			Help: "Rows the ClickHouse loader wrote."}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "cdrguard_loader_lag",
			Help: "Messages between a partition's end and the loader's next one."}, []string{"topic", "partition"}),
		Opens: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cdrguard_loader_store_opens_total",
			Help: "Attempts to open the row store, by outcome (ok, failed)."}, []string{"outcome"}),
	}
	if reg != nil {
		reg.MustRegister(m.Messages, m.Rows, m.Lag, m.Opens)
	}
	return m
}

// Run opens the store (retrying while it cannot be reached) and loads
// until ctx ends; it then writes what it has read, commits and leaves the
// group within ShutdownTimeout.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	cfg.state = &storeState{}
	cfg.Health.Add("clickhouse", cfg.state.check)
	store, closeStore, err := open(ctx, &cfg)
	if err != nil {
		return nil // ctx ended before the store could be opened
	}
	defer closeStore()

	topics := []string{cfg.RowsTopic, cfg.AlertsTopic}
	if cfg.StoreCDRs {
		topics = append(topics, cfg.InputTopic)
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: cfg.Group, Brokers: cfg.Kafka.Conn.Brokers, Dialer: cfg.Kafka.Dialer, Topics: topics,
		StartOffset: kafka.FirstOffset, SessionTimeout: cfg.SessionTimeout, RebalanceTimeout: cfg.RebalanceTimeout,
		HeartbeatInterval: cfg.SessionTimeout / 4, JoinGroupBackoff: time.Second, WatchPartitionChanges: true,
		ErrorLogger: kafka.LoggerFunc(cfg.Log.Sugar().Debugf),
	})
	if err != nil {
		return fmt.Errorf("cannot join consumer group %s: %w", cfg.Group, err)
	}
	cfg.Log.Info("loading", zap.String("group", cfg.Group), zap.Strings("topics", topics))
	var wg sync.WaitGroup
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				break
			}
			cfg.Log.Warn("loader group: no generation; retrying", zap.Error(err))
			continue
		}
		wg.Add(1)
		gen.Start(func(genCtx context.Context) {
			defer wg.Done()
			loadGeneration(ctx, genCtx, &cfg, store, gen)
		})
	}
	wg.Wait()
	if err := group.Close(); err != nil {
		cfg.Log.Warn("leaving the loader group", zap.Error(err))
	}
	return nil
}

// open opens the store, retrying with backoff (capped at 5 s) until it
// works or ctx ends.
func open(ctx context.Context, cfg *Config) (Store, func(), error) {
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval, eb.MaxInterval = 500*time.Millisecond, 5*time.Second
	type opened struct {
		s     Store
		close func()
	}
	o, err := backoff.Retry(ctx, func() (opened, error) {
		s, c, err := cfg.Open(ctx)
		cfg.state.set(err == nil, err, cfg.Now())
		if err != nil {
			cfg.Metrics.Opens.WithLabelValues("failed").Inc()
			return opened{}, err
		}
		cfg.Metrics.Opens.WithLabelValues("ok").Inc()
		return opened{s, c}, nil
	}, backoff.WithBackOff(eb), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, d time.Duration) {
		cfg.Log.Warn("row store unreachable; detection goes on, the loader catches up once it is back",
			zap.Duration("retry_in", d), zap.Error(err))
	}))
	return o.s, o.close, err
}

// loadGeneration runs one partition loader per assigned partition until
// the generation or the loader ends.
func loadGeneration(ctx, genCtx context.Context, cfg *Config, store Store, gen *kafka.Generation) {
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	defer context.AfterFunc(genCtx, cancel)()
	var wg sync.WaitGroup
	for topic, parts := range gen.Assignments {
		for _, pa := range parts {
			p := &partition{cfg: cfg, store: store, gen: gen, topic: topic, id: pa.ID, from: pa.Offset,
				log: cfg.Log.With(zap.String("topic", topic), zap.Int("partition", pa.ID))}
			wg.Go(func() {
				if err := p.run(wctx, ctx, genCtx); err != nil {
					p.log.Warn("partition loader stopped; restarting the generation", zap.Error(err))
					cancel()
				}
			})
		}
	}
	wg.Wait()
}

// partition loads one partition for one generation.
type partition struct {
	cfg   *Config
	store Store
	gen   *kafka.Generation
	topic string
	id    int
	from  int64
	log   *zap.Logger

	parser  schemas.JSONParser
	pending map[int32]*rows.Batch // by source partition
	n       int                   // rows pending
	next    int64                 // offset after the last message read
}

// run reads, gathers and writes until ctx ends. Writes and commits are
// made under genCtx: a loader whose generation has ended writes and
// commits nothing more. When jobCtx ends, what was read is written
// within the shutdown timeout.
func (p *partition) run(ctx, jobCtx, genCtx context.Context) error {
	from := p.from
	if from < 0 {
		from = kafka.FirstOffset
	}
	r, err := p.cfg.Kafka.NewReader(p.topic, p.id, from, max(2*p.cfg.MaxRecordBytes, 4<<20))
	if err != nil {
		return err
	}
	defer r.Close()
	p.parser.Plan = p.cfg.Plan
	p.pending = map[int32]*rows.Batch{}
	lag := p.cfg.Metrics.Lag.WithLabelValues(p.topic, strconv.Itoa(p.id))
	defer p.cfg.Metrics.Lag.DeleteLabelValues(p.topic, strconv.Itoa(p.id))

	msgs := make(chan kafka.Message, 256)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					fetchErr <- fmt.Errorf("cannot fetch from %s/%d: %w", p.topic, p.id, err)
				}
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	flush := time.NewTimer(p.cfg.FlushInterval)
	defer flush.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				select {
				case err := <-fetchErr:
					return err
				default:
				}
				return p.last(jobCtx, genCtx)
			}
			p.take(&m)
			if p.n >= p.cfg.MaxRows {
				if err := p.write(genCtx); err != nil {
					return nil // the generation ended
				}
			}
		case <-flush.C:
			lag.Set(float64(r.Stats().Lag))
			if err := p.write(genCtx); err != nil {
				return nil
			}
			flush.Reset(p.cfg.FlushInterval)
		case <-ctx.Done():
			return p.last(jobCtx, genCtx)
		}
	}
}

// last writes what was read when the loader stops (not when the
// generation ended: then another member may own the partition).
func (p *partition) last(jobCtx, genCtx context.Context) error {
	if jobCtx.Err() == nil || genCtx.Err() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(genCtx, p.cfg.ShutdownTimeout)
	defer cancel()
	if err := p.write(ctx); err != nil {
		p.log.Warn("rows not written within the shutdown timeout; they are loaded again at the next start", zap.Error(err))
	}
	return nil
}

// take decodes one message into the pending rows.
func (p *partition) take(m *kafka.Message) {
	p.next = m.Offset + 1
	b := func(part int32) *rows.Batch {
		if p.pending[part] == nil {
			p.pending[part] = &rows.Batch{}
		}
		return p.pending[part]
	}
	var err error
	switch p.topic {
	case p.cfg.RowsTopic:
		var part int32
		tmp := rows.Batch{}
		if part, err = rows.Decode(m.Value, &tmp); err == nil {
			dst := b(part)
			dst.CallerMinutes = append(dst.CallerMinutes, tmp.CallerMinutes...)
			dst.CallerHours = append(dst.CallerHours, tmp.CallerHours...)
			dst.CallerDays = append(dst.CallerDays, tmp.CallerDays...)
			dst.NetworkMinutes = append(dst.NetworkMinutes, tmp.NetworkMinutes...)
			p.n += tmp.Aggregates()
		}
	case p.cfg.AlertsTopic:
		var a schemas.Alert
		if err = json.Unmarshal(m.Value, &a); err == nil {
			dst := b(int32(p.id))
			dst.Alerts = append(dst.Alerts, a)
			p.n++
		}
	default: // the input topic: raw CDRs
		var c schemas.CDR
		switch {
		case len(m.Value) > p.cfg.MaxRecordBytes:
			err = errors.New("record larger than the limit")
		default:
			if err = p.parser.Parse(&c, m.Value); err == nil && c.StartMS > p.cfg.Now().Add(p.cfg.MaxFuture).UnixMilli() {
				err = errors.New("start_time too far ahead")
			}
		}
		if err == nil {
			dst := b(int32(p.id))
			dst.CDRs = append(dst.CDRs, c.Clone())
			p.n++
		}
	}
	outcome := "loaded"
	if err != nil {
		// The streaming job sets undecodable CDRs aside in its dead-letter
		// topic; anything else unreadable here is not cdrguard's.
		outcome = "skipped"
		p.log.Debug("message skipped", zap.Int64("offset", m.Offset), zap.Error(err))
	}
	p.cfg.Metrics.Messages.WithLabelValues(p.topic, outcome).Inc()
}

// write hands the pending rows to the store, retrying with backoff until
// they are written or ctx ends, then commits the offset after the last
// message read.
func (p *partition) write(ctx context.Context) error {
	if p.next == 0 || (p.next <= p.from && p.n == 0) {
		return ctx.Err() // nothing read, or nothing new since the last commit
	}
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval, eb.MaxInterval = 200*time.Millisecond, 5*time.Second
	for part, b := range p.pending {
		if b.Len() == 0 {
			continue
		}
		_, err := backoff.Retry(ctx, func() (struct{}, error) {
			err := p.store.Write(ctx, part, b)
			if ctx.Err() == nil {
				p.cfg.state.set(true, err, p.cfg.Now())
			}
			return struct{}{}, err
		}, backoff.WithBackOff(eb), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, d time.Duration) {
			p.log.Warn("row store write failed; retrying", zap.Int("rows", b.Len()), zap.Duration("in", d), zap.Error(err))
		}))
		if err != nil {
			return err
		}
		p.cfg.Metrics.Rows.Add(float64(b.Len()))
		b.Reset()
	}
	p.n = 0
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if p.next > p.from {
		if err := p.gen.CommitOffsets(map[string]map[int]int64{p.topic: {p.id: p.next}}); err != nil {
			p.log.Info("cannot commit offset", zap.Int64("offset", p.next), zap.Error(err))
			return nil
		}
		p.from = p.next
	}
	return nil
}
