package kafkaio

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/cdrguard/cdrguard/schemas"
)

// produceChunk is how many messages Produce hands the writer at a time.
const produceChunk = 2000

// ProduceOptions tune Produce and ProduceCDRs.
type ProduceOptions struct {
	// Partitions, when above 0, creates the topic with that many
	// partitions (and the broker's replication factor) if it is missing.
	Partitions int
	// Rate is the number of messages per second; 0 is as fast as
	// possible.
	Rate float64
	// Progress, when set, is called after each acknowledged batch with
	// the number of messages it held (a progress bar's Add).
	Progress func(n int)
}

// Produce writes msgs into topic, in order, in batches through the writer
// NewWriter returns (keys hashed with murmur2, acknowledged by all in-sync
// replicas). A message's Topic is set to topic; a zero Time means the
// time of writing. It blocks until every message is acknowledged, ctx is
// done, or a write fails; messages of the batches before a failure are
// written.
func (c *Client) Produce(ctx context.Context, topic string, opts ProduceOptions, msgs []kafka.Message) error {
	return c.produce(ctx, topic, opts, len(msgs), func(dst []kafka.Message, from, to int) []kafka.Message {
		return append(dst, msgs[from:to]...)
	})
}

// ProduceCDRs writes recs into topic as canonical JSON keyed by caller,
// in order, as Produce does. Messages carry the time they are written: a
// generated or replayed day usually lies in the past, and stamped with
// its own times it would fall to the topic's retention. The JSON is
// encoded a batch at a time, so a large day is never held twice.
func (c *Client) ProduceCDRs(ctx context.Context, topic string, opts ProduceOptions, recs []schemas.CDR) error {
	return c.produce(ctx, topic, opts, len(recs), func(dst []kafka.Message, from, to int) []kafka.Message {
		for i := from; i < to; i++ {
			r := &recs[i]
			dst = append(dst, kafka.Message{Key: []byte(r.Caller), Value: schemas.AppendJSON(nil, r)})
		}
		return dst
	})
}

// produce writes n messages, fill appending those from..to-1 to dst.
func (c *Client) produce(ctx context.Context, topic string, opts ProduceOptions, n int, fill func(dst []kafka.Message, from, to int) []kafka.Message) error {
	if opts.Partitions > 0 {
		if err := c.EnsureTopics(ctx, TopicSpec{Name: topic, Partitions: opts.Partitions, ReplicationFactor: -1}); err != nil {
			return err
		}
	}
	w := c.NewWriter(nil)
	start := time.Now()
	msgs := make([]kafka.Message, 0, min(n, produceChunk))
	for i := 0; i < n; i += produceChunk {
		msgs = fill(msgs[:0], i, min(i+produceChunk, n))
		for k := range msgs {
			msgs[k].Topic = topic
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			w.Close()
			return fmt.Errorf("cannot produce to %s (%d of %d messages written): %w", topic, i, n, err)
		}
		if opts.Progress != nil {
			opts.Progress(len(msgs))
		}
		if opts.Rate > 0 {
			due := start.Add(time.Duration(float64(i+len(msgs)) / opts.Rate * float64(time.Second)))
			select {
			case <-time.After(time.Until(due)):
			case <-ctx.Done():
				w.Close()
				return fmt.Errorf("produce to %s interrupted after %d of %d messages: %w", topic, i+len(msgs), n, ctx.Err())
			}
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("cannot close the writer to %s: %w", topic, err)
	}
	return nil
}
