// Package kafkaio connects cdrguard to Apache Kafka with segmentio/kafka-go:
// connection settings (TLS, SASL PLAIN and SCRAM), topic creation, the
// shared writer, producing a day of CDRs (Produce, ProduceCDRs), and the
// small admin reads the streaming job needs (offsets
// by time, one message at an offset, the IDs in a topic's tail).
//
// Everything here is safe for concurrent use unless a doc comment says
// otherwise.
package kafkaio

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// TLS configures TLS to the brokers.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// SASL configures SASL authentication.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty for none.
	Mechanism string `yaml:"mechanism"`
	Username  string `yaml:"username"`
	// Password, or PasswordFile naming a file that holds it. Neither is
	// ever logged.
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// Conn holds how to reach the brokers.
type Conn struct {
	Brokers  []string `yaml:"brokers"`
	ClientID string   `yaml:"client_id"`
	TLS      TLS      `yaml:"tls"`
	SASL     SASL     `yaml:"sasl"`
}

// Validate checks c; messages name the field and value.
func (c *Conn) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka.brokers: at least one broker is needed (host:port)")
	}
	for i, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("kafka.brokers[%d] %q is not host:port", i, b)
		}
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("kafka.sasl.mechanism %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", c.SASL.Mechanism)
	}
	if c.SASL.Mechanism != "" && c.SASL.Username == "" {
		return fmt.Errorf("kafka.sasl.username is empty (mechanism %s)", c.SASL.Mechanism)
	}
	if c.SASL.Password != "" && c.SASL.PasswordFile != "" {
		return errors.New("kafka.sasl: set password or password_file, not both")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return errors.New("kafka.tls: cert_file and key_file go together")
	}
	return nil
}

// String returns the redacted description, so printing a Conn with %v or
// %+v never shows the password.
func (c Conn) String() string { return c.Redacted() }

// GoString is String for %#v.
func (c Conn) GoString() string { return c.Redacted() }

// Redacted returns a description of c for logs, without secrets.
func (c *Conn) Redacted() string {
	auth := "none"
	if c.SASL.Mechanism != "" {
		auth = c.SASL.Mechanism + " as " + c.SASL.Username
	}
	return fmt.Sprintf("brokers=%s tls=%v sasl=%s", strings.Join(c.Brokers, ","), c.TLS.Enabled, auth)
}

func (c *Conn) tlsConfig() (*tls.Config, error) {
	if !c.TLS.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{ServerName: c.TLS.ServerName, InsecureSkipVerify: c.TLS.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // operator's choice
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka.tls.ca_file %s holds no PEM certificate", c.TLS.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.tls client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func (c *Conn) mechanism() (sasl.Mechanism, error) {
	pw := c.SASL.Password
	if c.SASL.PasswordFile != "" {
		b, err := os.ReadFile(c.SASL.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("kafka.sasl.password_file: %w", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
	}
	switch strings.ToUpper(c.SASL.Mechanism) {
	case "":
		return nil, nil
	case "PLAIN":
		return plain.Mechanism{Username: c.SASL.Username, Password: pw}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, c.SASL.Username, pw)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, c.SASL.Username, pw)
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism %q is not supported", c.SASL.Mechanism)
}

// Client bundles the kafka-go pieces built from a Conn.
type Client struct {
	Conn      Conn
	Dialer    *kafka.Dialer
	Transport *kafka.Transport
	Admin     *kafka.Client
}

// NewClient builds the dialer, transport and admin client for c.
func NewClient(c Conn) (*Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	mech, err := c.mechanism()
	if err != nil {
		return nil, err
	}
	id := c.ClientID
	if id == "" {
		id = "cdrguard"
	}
	d := &kafka.Dialer{ClientID: id, Timeout: 10 * time.Second, DualStack: true, TLS: tlsCfg, SASLMechanism: mech, KeepAlive: 30 * time.Second}
	t := &kafka.Transport{ClientID: id, DialTimeout: 10 * time.Second, TLS: tlsCfg, SASL: mech, MetadataTTL: 30 * time.Second, IdleTimeout: time.Minute}
	return &Client{
		Conn:      c,
		Dialer:    d,
		Transport: t,
		Admin:     &kafka.Client{Addr: kafka.TCP(c.Brokers...), Transport: t, Timeout: 15 * time.Second},
	}, nil
}

// Close releases idle connections.
func (c *Client) Close() { c.Transport.CloseIdleConnections() }

// adminErr returns err from an Admin call. When the transport could not
// connect at all (a wrong SASL password, an untrusted certificate, ...),
// kafka-go answers requests it routes to the controller (CreateTopics)
// with a bare [8] Broker Not Available; the connection error is only kept
// for metadata requests, so ask for it and put it first. (ListOffsets
// reads metadata itself and reports the real error already.)
func (c *Client) adminErr(ctx context.Context, err error) error {
	if !errors.Is(err, kafka.BrokerNotAvailable) || ctx.Err() != nil {
		return err
	}
	if _, merr := c.Admin.Metadata(ctx, &kafka.MetadataRequest{}); merr != nil && ctx.Err() == nil {
		return fmt.Errorf("%w (%w)", merr, err)
	}
	return err
}

// TopicSpec describes a topic cdrguard creates when it is missing.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int // -1: the broker's default
	Configs           map[string]string
}

// EnsureTopics creates the topics that do not exist yet. Existing topics
// are left as they are.
func (c *Client) EnsureTopics(ctx context.Context, specs ...TopicSpec) error {
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: s.ReplicationFactor}
		for k, v := range s.Configs {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: v})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := c.Admin.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("cannot create topics: %w", c.adminErr(ctx, err))
	}
	for name, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("cannot create topic %s: %w", name, err)
		}
	}
	return nil
}

// Partitions returns the number of partitions of topic; 0 if it does not
// exist. It asks a broker directly: the transport's metadata cache may not
// know a topic created moments ago.
func (c *Client) Partitions(ctx context.Context, topic string) (int, error) {
	var lastErr error
	for _, b := range c.Conn.Brokers {
		conn, err := c.Dialer.DialContext(ctx, "tcp", b)
		if err != nil {
			lastErr = err
			continue
		}
		parts, err := conn.ReadPartitions(topic)
		conn.Close()
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			return 0, nil
		}
		if err != nil {
			lastErr = err
			continue
		}
		return len(parts), nil
	}
	return 0, fmt.Errorf("cannot read metadata of topic %s: %w", topic, lastErr)
}

// Offsets returns the first and next (high watermark) offsets of every
// partition of topic.
func (c *Client) Offsets(ctx context.Context, topic string, partitions int) (first, next []int64, err error) {
	if first, err = c.listOffsets(ctx, topic, partitions, kafka.FirstOffsetOf); err != nil {
		return nil, nil, err
	}
	if next, err = c.listOffsets(ctx, topic, partitions, kafka.LastOffsetOf); err != nil {
		return nil, nil, err
	}
	return first, next, nil
}

// listOffsets asks for one kind of offset (first or last) of every
// partition. One request asks one question per partition: kafka-go merges
// the answers to mixed questions about one partition by position, which
// mixed them up once in a while (a first offset that was the last).
func (c *Client) listOffsets(ctx context.Context, topic string, partitions int, of func(int) kafka.OffsetRequest) ([]int64, error) {
	reqs := make([]kafka.OffsetRequest, partitions)
	for p := range partitions {
		reqs[p] = of(p)
	}
	resp, err := c.Admin.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("cannot list offsets of %s: %w", topic, err)
	}
	out := make([]int64, partitions)
	seen := 0
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		if po.Partition < 0 || po.Partition >= partitions {
			continue
		}
		if reqs[0].Timestamp == kafka.FirstOffset {
			out[po.Partition] = po.FirstOffset
		} else {
			out[po.Partition] = po.LastOffset
		}
		seen++
	}
	if seen != partitions {
		return nil, fmt.Errorf("offsets of %s: %d of %d partitions answered", topic, seen, partitions)
	}
	return out, nil
}

// EndOffset returns the next offset (high watermark) of topic/partition.
func (c *Client) EndOffset(ctx context.Context, topic string, partition int) (int64, error) {
	resp, err := c.Admin.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.LastOffsetOf(partition)}}})
	if err != nil {
		return 0, fmt.Errorf("cannot read the end of %s/%d: %w", topic, partition, err)
	}
	parts := resp.Topics[topic]
	if len(parts) == 0 {
		return 0, fmt.Errorf("end of %s/%d: no answer", topic, partition)
	}
	if parts[0].Error != nil {
		return 0, fmt.Errorf("end of %s/%d: %w", topic, partition, parts[0].Error)
	}
	return parts[0].LastOffset, nil
}

// OffsetAt returns the first offset of topic/partition whose timestamp is
// at or after t (the next offset when there is none). t must be after the
// Unix epoch: Kafka reads negative timestamps as "earliest" and "latest".
func (c *Client) OffsetAt(ctx context.Context, topic string, partition int, t time.Time) (int64, error) {
	if t.UnixMilli() < 0 {
		return 0, fmt.Errorf("offset of %s/%d at %v: a time before 1970", topic, partition, t)
	}
	resp, err := c.Admin.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.TimeOffsetOf(partition, t)}}})
	if err != nil {
		return 0, fmt.Errorf("cannot find the offset of %s/%d at %v: %w", topic, partition, t, err)
	}
	parts := resp.Topics[topic]
	if len(parts) == 0 {
		return 0, fmt.Errorf("offset of %s/%d at %v: no answer", topic, partition, t)
	}
	po := parts[0]
	if po.Error != nil {
		return 0, fmt.Errorf("offset of %s/%d at %v: %w", topic, partition, t, po.Error)
	}
	for off := range po.Offsets {
		if off >= 0 {
			return off, nil
		}
	}
	// No record at or after t: the end of the partition.
	return c.EndOffset(ctx, topic, partition)
}

// NewReader returns a reader of one partition starting at offset. The
// caller closes it.
func (c *Client) NewReader(topic string, partition int, offset int64, maxBytes int) (*kafka.Reader, error) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        c.Conn.Brokers,
		Topic:          topic,
		Partition:      partition,
		Dialer:         c.Dialer,
		MinBytes:       1,
		MaxBytes:       maxBytes,
		MaxWait:        200 * time.Millisecond,
		QueueCapacity:  1000,
		ReadBackoffMin: 100 * time.Millisecond,
		ReadBackoffMax: 2 * time.Second,
		MaxAttempts:    5,
	})
	if err := r.SetOffset(offset); err != nil {
		r.Close()
		return nil, fmt.Errorf("cannot seek %s/%d to %d: %w", topic, partition, offset, err)
	}
	return r, nil
}

// MessageAt reads the message at offset of topic/partition.
func (c *Client) MessageAt(ctx context.Context, topic string, partition int, offset int64, maxBytes int) (kafka.Message, error) {
	r, err := c.NewReader(topic, partition, offset, maxBytes)
	if err != nil {
		return kafka.Message{}, err
	}
	defer r.Close()
	m, err := r.FetchMessage(ctx)
	if err != nil {
		return m, fmt.Errorf("cannot read %s/%d at %d: %w", topic, partition, offset, err)
	}
	return m, nil
}

// HeaderValues reads the values of header name in every message of topic
// written at or after since, up to the end of each partition as it stands
// when the scan starts.
func (c *Client) HeaderValues(ctx context.Context, topic, name string, since time.Time, maxBytes int) (map[string]bool, error) {
	n, err := c.Partitions(ctx, topic)
	if err != nil || n == 0 {
		return map[string]bool{}, err
	}
	_, next, err := c.Offsets(ctx, topic, n)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for p := range n {
		from, err := c.OffsetAt(ctx, topic, p, since)
		if err != nil {
			return nil, err
		}
		if from >= next[p] {
			continue
		}
		r, err := c.NewReader(topic, p, from, maxBytes)
		if err != nil {
			return nil, err
		}
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("cannot scan %s/%d: %w", topic, p, err)
			}
			for _, h := range m.Headers {
				if h.Key == name {
					seen[string(h.Value)] = true
				}
			}
			if m.Offset+1 >= next[p] {
				break
			}
		}
		r.Close()
	}
	return seen, nil
}

// NewWriter returns the writer for cdrguard's outputs: every message names
// its topic, writes wait for all in-sync replicas, and keys are hashed
// the way the Java client does (murmur2), unless Balancer says otherwise.
func (c *Client) NewWriter(balancer kafka.Balancer) *kafka.Writer {
	if balancer == nil {
		balancer = kafka.Murmur2Balancer{}
	}
	return &kafka.Writer{
		Addr:            kafka.TCP(c.Conn.Brokers...),
		Transport:       c.Transport,
		Balancer:        balancer,
		RequiredAcks:    kafka.RequireAll,
		MaxAttempts:     10,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: 2 * time.Second,
		BatchSize:       5000,
		BatchBytes:      8 << 20,
		BatchTimeout:    5 * time.Millisecond,
		Compression:     kafka.Lz4,
	}
}
