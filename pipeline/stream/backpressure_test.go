package stream_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/pipeline/kafkaio/kafkatest"
	"github.com/cdrguard/cdrguard/pipeline/stream"
)

// flakySink is a row store that is down until told otherwise; it keeps
// the rows of successful writes.
type flakySink struct {
	down     atomic.Bool
	failures atomic.Int64
	mu       sync.Mutex
	days     map[string]uint32 // caller and day -> calls, of the highest version
	versions map[string]uint64
	inFlight atomic.Int64
}

func (s *flakySink) Write(ctx context.Context, _ int32, r *stream.Rows) error {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	if s.down.Load() {
		s.failures.Add(1)
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
		}
		return errors.New("connection refused")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range r.CallerDays {
		k := d.Caller + d.Start.String()
		if d.Version >= s.versions[k] {
			s.versions[k], s.days[k] = d.Version, d.Calls
		}
	}
	return nil
}

// TestSlowOutputPausesAndResumes takes the row store down while records
// flow: the job retries, stops committing past the unwritten rows, stops
// fetching (bounded memory), and when the store is back it catches up
// with nothing lost.
func TestSlowOutputPausesAndResumes(t *testing.T) {
	kc := kafkatest.Client(t)
	recs := day(14, 0.1)
	topic, group, alerts := kafkatest.Name(t, "cdrs"), kafkatest.Name(t, "group"), kafkatest.Name(t, "alerts")
	kafkatest.ProduceCDRs(t, kc, topic, 2, recs)

	sink := &flakySink{days: map[string]uint32{}, versions: map[string]uint64{}}
	sink.down.Store(true)
	cfg := testConfig(t, kc, topic, group, alerts)
	cfg.Sink = sink
	cfg.MaxInFlight = 2
	cfg.MaxBatch = 500
	j := start(t, cfg)

	// While the store is down: writes are retried, the committed offset
	// stops, and the job stops taking records well before the end.
	deadline := time.Now().Add(time.Minute)
	for sink.failures.Load() < 10 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if sink.failures.Load() < 10 {
		t.Fatal("the job never wrote to the row store")
	}
	time.Sleep(3 * time.Second)
	before := kafkatest.Committed(kc, group, topic)
	time.Sleep(3 * time.Second)
	after := kafkatest.Committed(kc, group, topic)
	if after != before {
		t.Fatalf("committed offsets moved from %d to %d while the row store was down", before, after)
	}
	if after >= int64(len(recs)) {
		t.Fatalf("everything (%d records) was committed while the row store was down", after)
	}
	t.Logf("store down: %d failed writes, committed %d of %d records", sink.failures.Load(), after, len(recs))

	sink.down.Store(false)
	kafkatest.WaitCaughtUp(t, kc, group, 5*time.Minute, topic, topic+".sources")
	j.stop(t)

	// Nothing lost: the day rows (the generated day is one UTC day) hold
	// every call of every caller above the floor of 20 calls.
	calls := map[string]uint32{}
	for _, c := range recs {
		calls[c.Caller]++
	}
	var want uint32
	for _, n := range calls {
		if n >= 20 {
			want += n
		}
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	var got uint32
	for _, v := range sink.days {
		got += v
	}
	if want == 0 || got != want {
		t.Fatalf("day rows hold %d calls of callers above the floor, want %d", got, want)
	}
	if n := sink.inFlight.Load(); n != 0 {
		t.Fatalf("%d writes still in flight after the job stopped", n)
	}
}
