package stream

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/health"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/schemas"
)

// Config is a streaming job's resolved configuration.
type Config struct {
	// Kafka reaches the brokers.
	Kafka *kafkaio.Client
	// Topic is the input CDR topic (keyed by caller); Group the consumer
	// group.
	Topic, Group string
	// AlertsTopic receives alerts (key: subject); DLQTopic undecodable
	// records; SourcesTopic is the internal topic of re-keyed sources;
	// RowsTopic the internal topic of aggregate rows for the row store
	// (default <Topic>.rows).
	AlertsTopic, DLQTopic, SourcesTopic, RowsTopic string
	// CreateTopics creates the output and internal topics when missing,
	// with ReplicationFactor replicas (-1: the broker default).
	CreateTopics      bool
	ReplicationFactor int
	// Detect is the engine configuration (Kinds and Aggregates are set per
	// topic by the job).
	Detect detectors.Config
	// Rules and their allowlist.
	Rules *rules.Set
	// Plan normalises numbers written without a country code.
	Plan *schemas.NumberPlan
	// Rows turns on the aggregate rows (caller minutes, hours and days,
	// network minutes), published to RowsTopic with the alerts for the
	// ClickHouse loader. The job never writes ClickHouse itself.
	Rows bool
	// Producer writes the outputs; nil for a kafka-go writer on Kafka
	// (tests inject faults here).
	Producer Producer
	// CommitInterval is how often offsets are committed. Default 1s.
	CommitInterval time.Duration
	// FlushInterval bounds how long outputs wait in an open batch.
	// Default 100ms.
	FlushInterval time.Duration
	// MaxBatch is the most records per output batch. Default 5000.
	MaxBatch int
	// MaxInFlight is how many output batches may wait per partition
	// before the worker stops taking records. Default 4.
	MaxInFlight int
	// MaxRecordBytes is the largest record accepted; larger ones go to
	// the dead-letter topic. Default 1 MiB.
	MaxRecordBytes int
	// MaxFuture rejects records that start further ahead of the wall
	// clock (a broken switch clock). Default 24h.
	MaxFuture time.Duration
	// IdleRelease: when a partition receives nothing for this long, its
	// engine releases what it holds; 0 (or negative) never. DefaultConfig
	// has 60s.
	IdleRelease time.Duration
	// Rebuild replays a newly owned partition's recent records quietly
	// before its alerts resume. Default on (NoRebuild turns it off).
	NoRebuild bool
	// ConnectTimeout bounds the wait for the brokers at start: past it,
	// Run gives up with an error naming them. Default 60s.
	ConnectTimeout time.Duration
	// SessionTimeout and RebalanceTimeout of the consumer group.
	// Defaults 10s and 30s.
	SessionTimeout, RebalanceTimeout time.Duration
	// ShutdownTimeout bounds the final flush and commit when the job
	// stops. Default 30s. (A generation that ends for any other reason
	// writes nothing more; its partitions restart from their committed
	// offsets.)
	ShutdownTimeout time.Duration
	// Health receives the job's readiness checks (may be nil): the group
	// joined, outputs writable, rebuilds finished.
	Health *health.Registry
	// Log receives the job's events; Metrics its figures (may be nil).
	Log     *zap.Logger
	Metrics *Metrics
	// Now is the job's one wall clock (tests may set it): idleness,
	// max_future, latencies. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the job's defaults, the one source of them: a
// zero field of a Config takes its value from here (IdleRelease excepted:
// zero is "never"), and `cdrguard run`'s configuration starts from it.
func DefaultConfig() Config {
	return Config{
		CommitInterval: time.Second, FlushInterval: 100 * time.Millisecond, MaxBatch: 5000, MaxInFlight: 4,
		MaxRecordBytes: 1 << 20, MaxFuture: 24 * time.Hour, IdleRelease: time.Minute,
		SessionTimeout: 10 * time.Second, RebalanceTimeout: 30 * time.Second, ShutdownTimeout: 30 * time.Second,
		ConnectTimeout: time.Minute,
	}
}

func (c *Config) defaults() {
	d := DefaultConfig()
	for _, f := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&c.CommitInterval, d.CommitInterval}, {&c.FlushInterval, d.FlushInterval}, {&c.MaxFuture, d.MaxFuture},
		{&c.SessionTimeout, d.SessionTimeout}, {&c.RebalanceTimeout, d.RebalanceTimeout},
		{&c.ShutdownTimeout, d.ShutdownTimeout}, {&c.ConnectTimeout, d.ConnectTimeout}} {
		if *f.v <= 0 {
			*f.v = f.def
		}
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = d.MaxBatch
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = d.MaxRecordBytes
	}
	if c.DLQTopic == "" {
		c.DLQTopic = c.Topic + ".dlq"
	}
	if c.SourcesTopic == "" {
		c.SourcesTopic = c.Topic + ".sources"
	}
	if c.RowsTopic == "" {
		c.RowsTopic = c.Topic + ".rows"
	}
	if c.Log == nil {
		c.Log = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks c after defaults; messages name the field and value.
func (c *Config) Validate() error {
	c.defaults()
	switch {
	case c.Kafka == nil:
		return errors.New("stream: no Kafka client")
	case c.Topic == "":
		return errors.New("kafka.topic is empty")
	case c.Group == "":
		return errors.New("kafka.group is empty")
	case c.AlertsTopic == "":
		return errors.New("kafka.alerts_topic is empty")
	case c.Rules == nil:
		return errors.New("stream: no rules")
	}
	names := map[string]string{"kafka.topic": c.Topic, "kafka.alerts_topic": c.AlertsTopic, "kafka.dlq_topic": c.DLQTopic, "kafka.sources_topic": c.SourcesTopic, "kafka.rows_topic": c.RowsTopic}
	seen := map[string]string{}
	for _, field := range slices.Sorted(maps.Keys(names)) {
		name := names[field]
		if other, dup := seen[name]; dup {
			return fmt.Errorf("%s and %s are both %q", other, field, name)
		}
		seen[name] = field
	}
	if err := c.Detect.Validate(); err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	return nil
}
