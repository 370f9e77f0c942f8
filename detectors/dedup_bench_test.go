package detectors

import (
	"testing"

	"github.com/cdrguard/cdrguard/pipeline/synth"
)

// BenchmarkDedup runs the default generated day's fingerprints through
// the dedup memory, with the engine's clock (the day's end times in
// arrival order): the cost of remembering every record, alone.
func BenchmarkDedup(b *testing.B) {
	recs := synth.Generate(synth.Config{Seed: 1}).Records
	fps, clocks := make([]uint64, len(recs)), make([]uint32, len(recs))
	var clock uint32
	for i := range recs {
		fps[i] = fingerprint(&recs[i])
		clock = max(clock, endTS(&recs[i]))
		clocks[i] = clock
	}
	b.ReportAllocs()
	b.ResetTimer()
	var d *dedup
	for i := 0; i < b.N; i++ {
		j := i % len(fps)
		if j == 0 {
			d = &dedup{period: 70 * 60}
		}
		d.seen(fps[j], clocks[j], clocks[j])
	}
}
