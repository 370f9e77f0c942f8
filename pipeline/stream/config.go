package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/schemas"
)

// Rows are what a partition's records produced for the row store
// (ClickHouse): alerts, aggregates and, when stored, the raw records.
type Rows struct {
	Alerts         []schemas.Alert
	CallerMinutes  []detectors.CallerMinute
	CallerHours    []detectors.CallerPeriod
	CallerDays     []detectors.CallerPeriod
	NetworkMinutes []detectors.NetworkMinute
	CDRs           []schemas.CDR
}

func (r *Rows) len() int {
	return len(r.Alerts) + len(r.CallerMinutes) + len(r.CallerHours) + len(r.CallerDays) + len(r.NetworkMinutes) + len(r.CDRs)
}

// RowSink makes rows durable. Write is called concurrently by the
// partition workers and returns only when the rows are stored (or ctx is
// done); it retries transient failures itself. An error it returns is
// retried by the worker with backoff too.
type RowSink interface {
	Write(ctx context.Context, partition int32, r *Rows) error
}

// Config is a streaming job's resolved configuration.
type Config struct {
	// Kafka reaches the brokers.
	Kafka *kafkaio.Client
	// Topic is the input CDR topic (keyed by caller); Group the consumer
	// group.
	Topic, Group string
	// AlertsTopic receives alerts (key: subject); DLQTopic undecodable
	// records; SourcesTopic is the internal topic of re-keyed sources.
	AlertsTopic, DLQTopic, SourcesTopic string
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
	// Sink stores rows (ClickHouse); nil for none. StoreCDRs also sends
	// the raw records.
	Sink      RowSink
	StoreCDRs bool
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
	// engine releases what it holds. Default 60s; 0 means the default, a
	// negative value never.
	IdleRelease time.Duration
	// Rebuild replays a newly owned partition's recent records quietly
	// before its alerts resume. Default on (NoRebuild turns it off).
	NoRebuild bool
	// SessionTimeout and RebalanceTimeout of the consumer group.
	// Defaults 10s and 30s.
	SessionTimeout, RebalanceTimeout time.Duration
	// ShutdownTimeout bounds the final flush and commit. Default 30s.
	ShutdownTimeout time.Duration
	// Log receives the job's events; Metrics its figures (may be nil).
	Log     *zap.Logger
	Metrics *Metrics
	// Now is the wall clock (tests may set it). Default time.Now.
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.CommitInterval <= 0 {
		c.CommitInterval = time.Second
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 5000
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4
	}
	if c.MaxRecordBytes <= 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.MaxFuture <= 0 {
		c.MaxFuture = 24 * time.Hour
	}
	if c.IdleRelease == 0 {
		c.IdleRelease = time.Minute
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
	if c.DLQTopic == "" {
		c.DLQTopic = c.Topic + ".dlq"
	}
	if c.SourcesTopic == "" {
		c.SourcesTopic = c.Topic + ".sources"
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
	names := map[string]string{"kafka.topic": c.Topic, "kafka.alerts_topic": c.AlertsTopic, "kafka.dlq_topic": c.DLQTopic, "kafka.sources_topic": c.SourcesTopic}
	seen := map[string]string{}
	for field, name := range names {
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
