package stream_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/stream"
)

// faultyProducer writes through the real broker unless it is told to
// fail, as a broker that refuses writes would.
type faultyProducer struct {
	real     stream.Producer
	down     atomic.Bool
	failures atomic.Int64
}

func (p *faultyProducer) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if p.down.Load() {
		p.failures.Add(1)
		return errors.New("kafka: broker not available (injected)")
	}
	return p.real.WriteMessages(ctx, msgs...)
}

// processed sums cdrguard_records_total{outcome="processed"}.
func processed(t testing.TB, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "cdrguard_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == "processed" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

// waitFailures waits until the producer has refused n more writes than
// it had, so that time has passed in which the job kept trying.
func waitFailures(t testing.TB, p *faultyProducer, n int64) {
	t.Helper()
	want := p.failures.Load() + n
	deadline := time.Now().Add(time.Minute)
	for p.failures.Load() < want {
		if time.Now().After(deadline) {
			t.Fatalf("the job did not retry its writes: %d failures, want %d", p.failures.Load(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSlowOutputPausesAndResumes makes every output write fail while
// records flow: the job retries, commits nothing past the unwritten
// outputs, stops taking records (bounded memory), and once writes work
// again it catches up with every alert a replay raises, none twice.
func TestSlowOutputPausesAndResumes(t *testing.T) {
	kc := kafkatest.Client(t)
	recs := day(14, 0.1)
	topic, group, alerts := kafkatest.Name(t, "cdrs"), kafkatest.Name(t, "group"), kafkatest.Name(t, "alerts")
	kafkatest.ProduceCDRs(t, kc, topic, 2, recs)

	w := stream.NewWriter(kc)
	defer w.Close()
	reg := prometheus.NewRegistry()
	prod := &faultyProducer{real: w}
	prod.down.Store(true)
	cfg := testConfig(t, kc, topic, group, alerts)
	cfg.Producer = prod
	cfg.Metrics = stream.NewMetrics(reg)
	cfg.MaxInFlight = 2
	cfg.MaxBatch = 500
	j := start(t, cfg)

	// While writes fail: retried, the committed offset stays, and the
	// job stops taking records well before the end.
	waitFailures(t, prod, 10)
	before, took := kafkatest.Committed(t, kc, group, topic), processed(t, reg)
	waitFailures(t, prod, 10) // ~2 s more of retries
	after, tookAfter := kafkatest.Committed(t, kc, group, topic), processed(t, reg)
	if after != before || after != 0 {
		t.Fatalf("committed offsets moved from %d to %d while no output was durable", before, after)
	}
	if tookAfter != took {
		t.Fatalf("the job went on taking records while its outputs failed: %v, then %v", took, tookAfter)
	}
	if took >= float64(len(recs)) {
		t.Fatalf("the job took every record (%v of %d) while its outputs failed", took, len(recs))
	}
	t.Logf("outputs down: %d failed writes, %v of %d records taken, none committed", prod.failures.Load(), took, len(recs))

	prod.down.Store(false)
	kafkatest.WaitCaughtUp(t, kc, group, 5*time.Minute, topic, topic+".sources")
	j.stop(t)
	got := kafkatest.Alerts(t, kafkatest.ReadAll(t, kc, alerts))
	kafkatest.SameAlerts(t, "after an output outage vs replay", replayAlerts(t, recs), got)
}
