package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/hooks"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/stream"
)

// runConfig is the file layout of `cdrguard run --config FILE`. Every
// field is documented in the README with its default.
type runConfig struct {
	Kafka           kafkaConfig      `yaml:"kafka"`
	Input           inputConfig      `yaml:"input"`
	Detect          detectConfig     `yaml:"detect"`
	ClickHouse      clickhouseConfig `yaml:"clickhouse"`
	Metrics         metricsConfig    `yaml:"metrics"`
	Log             logConfig        `yaml:"log"`
	ShutdownTimeout time.Duration    `yaml:"shutdown_timeout"`
	// Hooks configures the suspension webhooks (cdrguard hooks); nil
	// without a hooks section.
	Hooks *hooks.Config `yaml:"hooks"`
	// Console configures cdrguard console; nil without a console section.
	Console *consoleConfig `yaml:"console"`
}

type kafkaConfig struct {
	kafkaio.Conn      `yaml:",inline"`
	Topic             string        `yaml:"topic"`
	Group             string        `yaml:"group"`
	AlertsTopic       string        `yaml:"alerts_topic"`
	DLQTopic          string        `yaml:"dlq_topic"`
	SourcesTopic      string        `yaml:"sources_topic"`
	RowsTopic         string        `yaml:"rows_topic"`
	CreateTopics      bool          `yaml:"create_topics"`
	ReplicationFactor int           `yaml:"replication_factor"`
	CommitInterval    time.Duration `yaml:"commit_interval"`
	ConnectTimeout    time.Duration `yaml:"connect_timeout"`
	SessionTimeout    time.Duration `yaml:"session_timeout"`
	RebalanceTimeout  time.Duration `yaml:"rebalance_timeout"`
	MaxInFlight       int           `yaml:"max_in_flight"`
	MaxBatch          int           `yaml:"max_batch"`
}

type inputConfig struct {
	CountryCode    string        `yaml:"country_code"`
	NationalPrefix string        `yaml:"national_prefix"`
	MaxRecordBytes int           `yaml:"max_record_bytes"`
	MaxFuture      time.Duration `yaml:"max_future"`
}

type windowConfig struct {
	Size    time.Duration `yaml:"size"`
	Buckets int           `yaml:"buckets"`
}

type detectConfig struct {
	Rules           string         `yaml:"rules"`
	Lateness        time.Duration  `yaml:"lateness"`
	ShortCallS      int            `yaml:"short_call_s"`
	Windows         []windowConfig `yaml:"windows"`
	DetailCalls     int            `yaml:"detail_calls"`
	ExactPeers      int            `yaml:"exact_peers"`
	CallerFloor     int            `yaml:"caller_floor"`
	WatermarkQuorum int            `yaml:"watermark_quorum"`
	// EndOrder runs records in end order, EndLateness behind the latest
	// end (false: start order, Lateness behind the latest start).
	EndOrder    bool          `yaml:"end_order"`
	EndLateness time.Duration `yaml:"end_lateness"`
	// DedupHorizon is how long copies of a record are dropped; 0 turns
	// deduplication off.
	DedupHorizon time.Duration `yaml:"dedup_horizon"`
	IdleRelease  time.Duration `yaml:"idle_release"`
	Rebuild      bool          `yaml:"rebuild"`
}

type clickhouseConfig struct {
	DSN                 string        `yaml:"dsn"`
	Username            string        `yaml:"username"`
	Password            string        `yaml:"password"`
	PasswordFile        string        `yaml:"password_file"`
	TLS                 bool          `yaml:"tls"`
	CAFile              string        `yaml:"ca_file"`
	InsecureSkipVerify  bool          `yaml:"insecure_skip_verify"`
	Cluster             string        `yaml:"cluster"`
	StoreCDRs           bool          `yaml:"store_cdrs"`
	CDRRetentionDays    int           `yaml:"cdr_retention_days"`
	PseudonymizeCallees bool          `yaml:"pseudonymize_callees"`
	PseudonymKeyFile    string        `yaml:"pseudonym_key_file"`
	MaxRows             int           `yaml:"max_rows"`
	FlushInterval       time.Duration `yaml:"flush_interval"`
	Migrate             bool          `yaml:"migrate"`
	// Loader runs the ClickHouse loader inside `cdrguard run`; with it
	// off, run only publishes the rows and `cdrguard load` writes them.
	Loader bool `yaml:"loader"`
	// Group is the loader's consumer group (default <kafka.group>-clickhouse).
	Group string `yaml:"group"`
}

type metricsConfig struct {
	Listen string `yaml:"listen"`
	// PprofListen serves the Go profiler; empty (the default) for none.
	PprofListen string `yaml:"pprof_listen"`
}

type logConfig struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// defaultRunConfig is what `cdrguard run` uses without a config file: a
// local broker on 127.0.0.1:9092.
func defaultRunConfig() runConfig {
	sd, dd := stream.DefaultConfig(), detectors.DefaultConfig()
	var windows []windowConfig
	for _, w := range dd.Windows {
		windows = append(windows, windowConfig{Size: w.Size, Buckets: w.Buckets})
	}
	return runConfig{
		Kafka: kafkaConfig{
			Conn:         kafkaio.Conn{Brokers: []string{"127.0.0.1:9092"}, ClientID: "cdrguard"},
			Topic:        "cdrs",
			Group:        "cdrguard",
			AlertsTopic:  "cdr-alerts",
			CreateTopics: true, ReplicationFactor: -1,
			CommitInterval: sd.CommitInterval, ConnectTimeout: sd.ConnectTimeout,
			SessionTimeout: sd.SessionTimeout, RebalanceTimeout: sd.RebalanceTimeout,
			MaxInFlight: sd.MaxInFlight, MaxBatch: sd.MaxBatch,
		},
		Input: inputConfig{NationalPrefix: "0", MaxRecordBytes: sd.MaxRecordBytes, MaxFuture: sd.MaxFuture},
		Detect: detectConfig{
			Rules: "", Lateness: dd.Lateness, ShortCallS: dd.ShortCallS, Windows: windows,
			DetailCalls: dd.DetailCalls, ExactPeers: dd.ExactPeers, CallerFloor: dd.CallerFloor,
			WatermarkQuorum: dd.WatermarkQuorum, EndOrder: !dd.StartOrder, EndLateness: dd.EndLateness,
			DedupHorizon: dd.DedupHorizon, IdleRelease: sd.IdleRelease, Rebuild: true,
		},
		ClickHouse:      clickhouseConfig{CDRRetentionDays: 30, MaxRows: 100000, FlushInterval: 250 * time.Millisecond, Migrate: true, Loader: true},
		Metrics:         metricsConfig{Listen: "127.0.0.1:9464"},
		Log:             logConfig{Level: "info", Format: "json"},
		ShutdownTimeout: sd.ShutdownTimeout,
	}
}

// loadRunConfig reads a config file strictly (unknown keys are errors)
// over the defaults; an empty path gives the defaults.
func loadRunConfig(path string) (runConfig, error) {
	cfg := defaultRunConfig()
	if path == "" {
		return cfg, nil
	}
	// Settings whose defaults derive from others (the lateness, the
	// windows) are derived once the file is read, unless it sets them.
	cfg.Detect.EndLateness, cfg.Detect.DedupHorizon = unsetDuration, unsetDuration
	data, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("cannot read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(&cfg)
	cfg.Detect.derive()
	if err != nil && !errors.Is(err, io.EOF) {
		return cfg, yamlErrors(path, data, err)
	}
	return cfg, nil
}

// unsetDuration marks a derived setting the file did not set.
const unsetDuration = -time.Nanosecond

// derive fills in the settings whose defaults the engine derives from
// others: end_lateness (at most the lateness) and dedup_horizon (one hour
// past the lateness, at most the longest window).
func (d *detectConfig) derive() {
	dc := detectors.Config{Lateness: d.Lateness}
	for _, w := range d.Windows {
		dc.Windows = append(dc.Windows, detectors.Window{Size: w.Size, Buckets: w.Buckets})
	}
	dc = dc.WithDefaults()
	if d.EndLateness == unsetDuration {
		d.EndLateness = dc.EndLateness
	}
	if d.DedupHorizon == unsetDuration {
		d.DedupHorizon = dc.DedupHorizon
	}
}

// resolveConfig is what the commands that read a run config do first:
// the file over the defaults, the flags and environment over the file,
// then every check, before anything connects.
func resolveConfig(path string, o *overrides) (runConfig, error) {
	cfg, err := loadRunConfig(path)
	if err != nil {
		return cfg, err
	}
	o.apply(&cfg)
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("invalid configuration: %w", err)
	}
	return cfg, nil
}

// validate checks the settings; messages name the field and the value.
func (c *runConfig) validate() error {
	if err := c.Kafka.Conn.Validate(); err != nil {
		return err
	}
	for field, v := range map[string]string{"kafka.topic": c.Kafka.Topic, "kafka.group": c.Kafka.Group, "kafka.alerts_topic": c.Kafka.AlertsTopic} {
		if strings.TrimSpace(v) == "" {
			return fmt.Errorf("%s is empty", field)
		}
	}
	positive := []struct {
		field string
		v     time.Duration
	}{{"kafka.commit_interval", c.Kafka.CommitInterval}, {"kafka.session_timeout", c.Kafka.SessionTimeout},
		{"kafka.connect_timeout", c.Kafka.ConnectTimeout},
		{"kafka.rebalance_timeout", c.Kafka.RebalanceTimeout}, {"input.max_future", c.Input.MaxFuture},
		{"shutdown_timeout", c.ShutdownTimeout}}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("%s %v must be positive", p.field, p.v)
		}
	}
	switch {
	case c.Kafka.MaxInFlight < 1 || c.Kafka.MaxInFlight > 1000:
		return fmt.Errorf("kafka.max_in_flight %d must be between 1 and 1000", c.Kafka.MaxInFlight)
	case c.Kafka.MaxBatch < 1 || c.Kafka.MaxBatch > 1_000_000:
		return fmt.Errorf("kafka.max_batch %d must be between 1 and 1000000", c.Kafka.MaxBatch)
	case c.Input.MaxRecordBytes < 1024 || c.Input.MaxRecordBytes > 64<<20:
		return fmt.Errorf("input.max_record_bytes %d must be between 1024 and 67108864", c.Input.MaxRecordBytes)
	case c.Input.CountryCode != "" && !isDigits(c.Input.CountryCode):
		return fmt.Errorf("input.country_code %q must be digits (e.g. 44)", c.Input.CountryCode)
	case c.ClickHouse.DSN == "" && (c.ClickHouse.StoreCDRs || c.ClickHouse.PseudonymizeCallees):
		return errors.New("clickhouse.store_cdrs and clickhouse.pseudonymize_callees need clickhouse.dsn")
	case c.ClickHouse.PseudonymizeCallees && c.ClickHouse.PseudonymKeyFile == "" && os.Getenv("CDRGUARD_PSEUDONYM_KEY") == "":
		return errors.New("clickhouse.pseudonymize_callees needs clickhouse.pseudonym_key_file or $CDRGUARD_PSEUDONYM_KEY")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log.level %q is not debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		return fmt.Errorf("log.format %q is not json or console", c.Log.Format)
	}
	switch {
	case c.Detect.EndLateness < 0:
		return fmt.Errorf("detect.end_lateness %v must not be negative", c.Detect.EndLateness)
	case c.Detect.DedupHorizon < 0:
		return fmt.Errorf("detect.dedup_horizon %v must not be negative (0 turns deduplication off)", c.Detect.DedupHorizon)
	}
	if err := c.detectorConfig().Validate(); err != nil {
		return fmt.Errorf("detect: %w", err)
	}
	// The optional sections are checked here too, before anything
	// connects, whichever command reads the file.
	if c.Hooks != nil {
		if _, _, err := c.Hooks.Resolve(c.Kafka.AlertsTopic); err != nil {
			return err
		}
	}
	if c.Console != nil {
		if err := c.Console.validate(); err != nil {
			return err
		}
	}
	return nil
}

// loaderGroup is the ClickHouse loader's consumer group.
func (c *runConfig) loaderGroup() string {
	if c.ClickHouse.Group != "" {
		return c.ClickHouse.Group
	}
	return c.Kafka.Group + "-clickhouse"
}

// rowsTopic is the internal topic of aggregate rows.
func (c *runConfig) rowsTopic() string {
	if c.Kafka.RowsTopic != "" {
		return c.Kafka.RowsTopic
	}
	return c.Kafka.Topic + ".rows"
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// detectorConfig maps the detect section to the engine's configuration.
func (c *runConfig) detectorConfig() detectors.Config {
	dc := detectors.Config{
		Lateness:        c.Detect.Lateness,
		ShortCallS:      c.Detect.ShortCallS,
		DetailCalls:     c.Detect.DetailCalls,
		ExactPeers:      c.Detect.ExactPeers,
		CallerFloor:     c.Detect.CallerFloor,
		WatermarkQuorum: c.Detect.WatermarkQuorum,
		StartOrder:      !c.Detect.EndOrder,
		EndLateness:     c.Detect.EndLateness,
		DedupHorizon:    c.Detect.DedupHorizon,
	}
	if dc.DedupHorizon == 0 {
		dc.DedupHorizon = -1 // the engine's "off"; its zero is the default
	}
	for _, w := range c.Detect.Windows {
		dc.Windows = append(dc.Windows, detectors.Window{Size: w.Size, Buckets: w.Buckets})
	}
	return dc
}
