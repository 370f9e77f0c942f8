package detectors_test

import (
	"sync"
	"testing"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

var (
	dayOnce sync.Once
	day     *synth.Day
	lines   [][]byte // the day as canonical JSON lines
)

// generatedDay is the default synthetic day (seed 1), generated once.
func generatedDay(tb testing.TB) *synth.Day {
	tb.Helper()
	dayOnce.Do(func() {
		day = synth.Generate(synth.Config{Seed: 1})
		lines = make([][]byte, len(day.Records))
		for i := range day.Records {
			lines[i] = schemas.AppendJSON(nil, &day.Records[i])
		}
	})
	return day
}

// chunk is how many records a benchmark decodes at a time, with the timer
// stopped, before running them through the engine: like a decoder's batch,
// the records and their strings are fresh in cache, as in production,
// rather than streamed from hundreds of megabytes of pre-decoded records.
const chunk = 1024

// decoder hands out the generated day decoded a chunk at a time.
type decoder struct {
	p    schemas.JSONParser
	recs [chunk]schemas.CDR
	buf  []byte
	next int
}

// fill decodes the next chunk of the day and returns it.
func (d *decoder) fill(tb testing.TB) []schemas.CDR {
	n := min(chunk, len(lines)-d.next)
	d.buf = d.buf[:0]
	for i := range n {
		d.buf = append(d.buf, lines[d.next+i]...)
	}
	off := 0
	for i := range n {
		l := len(lines[d.next+i])
		if err := d.p.Parse(&d.recs[i], d.buf[off:off+l]); err != nil {
			tb.Fatalf("record %d: %v", d.next+i, err)
		}
		off += l
	}
	d.next += n
	if d.next == len(lines) {
		d.next = 0
	}
	return d.recs[:n]
}

// runEngine runs b.N records of the day through fresh engines.
func runEngine(b *testing.B, cfg detectors.Config) {
	generatedDay(b)
	set := defaultRules(b)
	var (
		eng  *detectors.Engine
		out  detectors.Output
		dec  decoder
		recs []schemas.CDR
		j    int
	)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if j == len(recs) {
			b.StopTimer()
			if dec.next == 0 {
				var err error
				if eng, err = detectors.NewEngine(cfg, set.Rules(), set.Allowlist); err != nil {
					b.Fatal(err)
				}
			}
			recs, j = dec.fill(b), 0
			b.StartTimer()
		}
		eng.Process(&recs[j], &out)
		j++
		if out.Len() > 0 {
			out.Reset()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func defaultRules(tb testing.TB) *rules.Set {
	tb.Helper()
	set, err := rules.Load("../deploy/rules.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	return set
}

// BenchmarkEngine runs the engine over the generated day, all key kinds;
// one op is one record.
func BenchmarkEngine(b *testing.B) { runEngine(b, detectors.Config{}) }

// BenchmarkEngineCallersOnly tracks only calling numbers (the caller
// engine of a streaming deployment).
func BenchmarkEngineCallersOnly(b *testing.B) {
	runEngine(b, detectors.Config{Kinds: []schemas.SubjectKind{schemas.SubjectCaller}})
}

// BenchmarkEngineSourcesOnly tracks only calling sources (the source
// engine of a streaming deployment).
func BenchmarkEngineSourcesOnly(b *testing.B) {
	runEngine(b, detectors.Config{Kinds: []schemas.SubjectKind{schemas.SubjectTrunk, schemas.SubjectIMEI, schemas.SubjectIMSI, schemas.SubjectSourceIP}})
}

// BenchmarkEngineNoDedup is BenchmarkEngine without deduplication: what
// remembering every record costs.
func BenchmarkEngineNoDedup(b *testing.B) { runEngine(b, detectors.Config{DedupHorizon: -1}) }

// BenchmarkEngineStartOrder is BenchmarkEngine in start order
// (Config.StartOrder, the default before end order).
func BenchmarkEngineStartOrder(b *testing.B) { runEngine(b, detectors.Config{StartOrder: true}) }
