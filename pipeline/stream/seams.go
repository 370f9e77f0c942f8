package stream

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/produce"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
)

// The job talks to Kafka through the small interfaces below, defined
// where they are used, so that the delivery protocol (what is committed
// when, what a generation that ends does, how a partition restarts) is
// tested without a broker. kafka-go is the implementation in production.

// fetcher reads one partition in offset order. It is used by one worker
// goroutine and its fetch goroutine; Lag may be called concurrently with
// FetchMessage.
type fetcher interface {
	// FetchMessage blocks until the next message arrives or ctx ends.
	// An error other than ctx's is the broker's: the worker ends its
	// partition and the generation restarts it.
	FetchMessage(ctx context.Context) (kafka.Message, error)
	// Lag is the number of messages between the next one to fetch and
	// the partition's end, as last seen (non-blocking).
	Lag() int64
	// Close releases the reader.
	Close() error
}

// Producer makes output messages durable: WriteMessages returns nil only
// when every message is acknowledged by all in-sync replicas. On a
// partial failure it returns kafka.WriteErrors, one entry per message
// (nil for the ones written). It blocks until done or ctx ends, and is
// safe for concurrent use. *kafka.Writer is one.
type Producer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// committer commits offsets through one consumer-group generation; the
// coordinator refuses a generation that is no longer current. It blocks
// for one round trip and is safe for concurrent use. *kafka.Generation is
// one.
type committer interface {
	CommitOffsets(offsets map[string]map[int]int64) error
}

// broker answers the admin questions the job asks when it starts and
// when a generation starts partitions. Every method blocks for a few
// round trips at most and is safe for concurrent use. *kafkaio.Client,
// through kafkaBroker, is the implementation.
type broker interface {
	// Partitions returns the number of partitions of topic; 0 if the
	// topic does not exist.
	Partitions(ctx context.Context, topic string) (int, error)
	// EnsureTopics creates the topics that do not exist.
	EnsureTopics(ctx context.Context, specs ...kafkaio.TopicSpec) error
	// Offsets returns the first and next offsets of each partition.
	Offsets(ctx context.Context, topic string, partitions int) (first, next []int64, err error)
	// EndOffset returns the next offset of one partition.
	EndOffset(ctx context.Context, topic string, partition int) (int64, error)
	// OffsetAt returns the first offset stamped at or after t.
	OffsetAt(ctx context.Context, topic string, partition int, t time.Time) (int64, error)
	// MessageAt reads the message at offset.
	MessageAt(ctx context.Context, topic string, partition int, offset int64, maxBytes int) (kafka.Message, error)
	// HeaderValues returns the values of header name in the messages of
	// topic stamped at or after since.
	HeaderValues(ctx context.Context, topic, name string, since time.Time, maxBytes int) (map[string]bool, error)
	// Reader returns a fetcher of one partition from offset.
	Reader(topic string, partition int, offset int64, maxBytes int) (fetcher, error)
}

// kafkaBroker is the broker on a kafkaio.Client.
type kafkaBroker struct{ *kafkaio.Client }

func (b kafkaBroker) Reader(topic string, partition int, offset int64, maxBytes int) (fetcher, error) {
	r, err := b.NewReader(topic, partition, offset, maxBytes)
	if err != nil {
		return nil, err
	}
	return kafkaReader{r}, nil
}

// kafkaReader is a fetcher on a kafka-go partition reader.
type kafkaReader struct{ *kafka.Reader }

func (r kafkaReader) Lag() int64 { return r.Stats().Lag }

// errLeaseExpired is what the fenced transport answers for a produce
// request sent while the member's lease has run out.
var errLeaseExpired = errors.New("membership lease expired: produce request not sent until the coordinator confirms this member")

// fencedTransport refuses to send produce requests while the member's
// membership lease has run out. The workers check the lease before each
// write, but a write that was already under way — messages waiting in
// kafka-go's batch, a process frozen between the check and the send —
// would otherwise go out when the process resumes, after another member
// may have taken the partitions. Checking at the last moment before the
// bytes leave narrows that window to the send itself.
type fencedTransport struct {
	next kafka.RoundTripper
	j    *job
}

// RoundTrip implements kafka.RoundTripper.
func (f fencedTransport) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	if _, produce := req.(*produce.Request); produce && !f.j.leaseHolds() {
		return nil, errLeaseExpired
	}
	return f.next.RoundTrip(ctx, addr, req)
}
