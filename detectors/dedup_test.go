package detectors_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

// runAll runs recs through an engine with the default rules and
// aggregates and returns everything it emitted.
func runAll(t *testing.T, cfg detectors.Config, recs []schemas.CDR) (detectors.Output, detectors.Stats) {
	t.Helper()
	set := defaultRules(t)
	cfg.Aggregates = true
	e := newEngine(t, cfg, set.Allowlist, set.Rules()...)
	var out detectors.Output
	for i := range recs {
		e.Process(&recs[i], &out)
	}
	e.Flush(&out)
	return out, e.Stats()
}

// TestDuplicatesCountOnce: a day with records delivered twice (minutes
// later) and whole batches re-sent tens of minutes later, some without a
// call_id, raises exactly the alerts and aggregate rows of the day
// without them, and the engine counts every copy.
func TestDuplicatesCountOnce(t *testing.T) {
	cfg := synth.Config{Seed: 7, Scale: 0.1}
	clean := synth.Generate(cfg)
	cfg.Duplicates, cfg.ResentBatches = 0.03, 4
	dup := synth.Generate(cfg)
	if dup.Duplicates < len(clean.Records)/50 {
		t.Fatalf("only %d duplicates in %d records", dup.Duplicates, len(dup.Records))
	}
	// Without call IDs, copies are recognised by caller, callee, start
	// and sources.
	for _, d := range []*synth.Day{clean, dup} {
		for i := range d.Records {
			if c := &d.Records[i]; c.CallID[len(c.CallID)-1] == '7' {
				c.CallID = ""
			}
		}
	}
	want, wantStats := runAll(t, detectors.Config{}, clean.Records)
	got, gotStats := runAll(t, detectors.Config{}, dup.Records)
	if gotStats.Duplicates != uint64(dup.Duplicates) || wantStats.Duplicates != 0 {
		t.Errorf("counted %d duplicates (clean day: %d), want %d", gotStats.Duplicates, wantStats.Duplicates, dup.Duplicates)
	}
	if len(want.Alerts) < 50 || len(want.CallerDays) == 0 || len(want.CallerMinutes) == 0 {
		t.Fatalf("the clean day raised only %d alerts, %d day rows", len(want.Alerts), len(want.CallerDays))
	}
	if !reflect.DeepEqual(got.Alerts, want.Alerts) {
		t.Errorf("duplicates changed the alerts: %d, want %d", len(got.Alerts), len(want.Alerts))
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"caller minutes", got.CallerMinutes, want.CallerMinutes},
		{"caller hours", got.CallerHours, want.CallerHours},
		{"caller days", got.CallerDays, want.CallerDays},
		{"network minutes", got.NetworkMinutes, want.NetworkMinutes},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("duplicates changed the %s", c.name)
		}
	}

	// Off: every copy counts.
	_, offStats := runAll(t, detectors.Config{DedupHorizon: -1}, dup.Records)
	if offStats.Duplicates != 0 {
		t.Errorf("deduplication off still dropped %d records", offStats.Duplicates)
	}
}

// TestDedupForgetsAfterTheHorizon: a copy is dropped within the horizon
// and counted again once two horizons of the engine's clock have passed.
func TestDedupForgetsAfterTheHorizon(t *testing.T) {
	e := newEngine(t, detectors.Config{DedupHorizon: 10 * time.Minute, Lateness: time.Minute, WatermarkQuorum: 1}, nil)
	var out detectors.Output
	orig := rec(t, "+15550100001", "+15550200001", 0, schemas.NoAnswer, 0)
	orig.CallID = "abc"
	e.Process(&orig, &out)
	clock := func(at time.Duration) {
		c := rec(t, "+15550100009", "+15550200009", at, schemas.NoAnswer, 0)
		e.Process(&c, &out)
	}
	clock(5 * time.Minute)
	e.Process(&orig, &out)
	if d := e.Stats().Duplicates; d != 1 {
		t.Fatalf("a copy 5 minutes later: %d duplicates, want 1", d)
	}
	if n, b := e.Remembered(); n != 3-1 || b == 0 {
		t.Errorf("remembers %d records in %d bytes, want 2", n, b)
	}
	clock(25 * time.Minute)
	e.Process(&orig, &out)
	if d := e.Stats().Duplicates; d != 1 {
		t.Errorf("a copy 25 minutes later with a 10-minute horizon counted as a duplicate")
	}
}

// TestProcessDoesNotAllocate: the engine's own path for a record —
// deduplication, the reorder buffer, compact and detailed state — costs
// no allocation. Rules are left out: expr boxes a metric above 255 when
// a condition reads it (one small allocation per evaluation of a busy
// key), which BenchmarkEngine shows with the default rules.
func TestProcessDoesNotAllocate(t *testing.T) {
	d := smallGeneratedDay()
	set := defaultRules(t)
	e := newEngine(t, detectors.Config{}, set.Allowlist)
	var out detectors.Output
	recs := d.Records
	half := len(recs) / 2
	for i := range recs[:half] {
		e.Process(&recs[i], &out)
		out.Reset()
	}
	i := half
	allocs := testing.AllocsPerRun(5000, func() {
		e.Process(&recs[i], &out)
		out.Reset()
		i++
	})
	if allocs > 0 {
		t.Errorf("%.2f allocations per record", allocs)
	}
}
