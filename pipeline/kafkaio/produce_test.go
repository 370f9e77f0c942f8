package kafkaio_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio"
	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/schemas"
)

// TestProduceCDRs writes more records than one batch holds: every record
// lands once, keyed by caller, each caller's records in one partition and
// in order, stamped with the time of writing.
func TestProduceCDRs(t *testing.T) {
	kc := kafkatest.Client(t)
	topic := kafkatest.Name(t, "cdrs")
	recs := make([]schemas.CDR, 4500)
	for i := range recs {
		recs[i] = schemas.CDR{CallID: fmt.Sprint("c", i), Caller: fmt.Sprint("+1555010000", i%7),
			Callee: "+15550200000", StartMS: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC).UnixMilli() + int64(i)}
	}
	before := time.Now().Add(-time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kc.ProduceCDRs(ctx, topic, kafkaio.ProduceOptions{Partitions: 3}, recs); err != nil {
		t.Fatal(err)
	}
	msgs := kafkatest.ReadAll(t, kc, topic)
	if len(msgs) != len(recs) {
		t.Fatalf("read %d messages, produced %d", len(msgs), len(recs))
	}
	partition := map[string]int{}
	next := map[string]int{} // per caller: index into recs of its next record
	for _, m := range msgs {
		var c schemas.CDR
		dec, err := schemas.NewDecoder("jsonl", bytes.NewReader(m.Value), schemas.DecodeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("message %s/%d: %v", topic, m.Offset, err)
		}
		if string(m.Key) != c.Caller {
			t.Fatalf("message keyed %q holds a record of %s", m.Key, c.Caller)
		}
		if p, ok := partition[c.Caller]; ok && p != m.Partition {
			t.Fatalf("caller %s in partitions %d and %d", c.Caller, p, m.Partition)
		}
		partition[c.Caller] = m.Partition
		i := next[c.Caller]
		for i < len(recs) && recs[i].Caller != c.Caller {
			i++
		}
		if i == len(recs) || recs[i].CallID != c.CallID {
			t.Fatalf("record %s of %s out of order", c.CallID, c.Caller)
		}
		next[c.Caller] = i + 1
		if m.Time.Before(before) {
			t.Fatalf("message stamped %v, before it was written", m.Time)
		}
	}
}

func TestProduceStopsWithContext(t *testing.T) {
	kc := kafkatest.Client(t)
	topic := kafkatest.Name(t, "cdrs")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := kc.ProduceCDRs(ctx, topic, kafkaio.ProduceOptions{}, make([]schemas.CDR, 10))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("produce with a cancelled context = %v, want context.Canceled", err)
	}
}
