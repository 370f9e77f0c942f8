package detectors_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/synth"
	"github.com/cdrguard/cdrguard/schemas"
)

var (
	smallDayOnce sync.Once
	smallDay     *synth.Day
)

// smallGeneratedDay is a tenth of a generated day, generated once.
func smallGeneratedDay() *synth.Day {
	smallDayOnce.Do(func() { smallDay = synth.Generate(synth.Config{Seed: 7, Scale: 0.1}) })
	return smallDay
}

// watermarkRun is what an engine did with a stream.
type watermarkRun struct {
	alerts []schemas.Alert
	stats  detectors.Stats
	// before and after are the engine's watermark just before the first
	// outlier and just after the last one.
	before, after int64
}

// runStream runs recs through an engine with the default rules, and
// notes the watermark around the records at outliers (indexes into recs).
func runStream(t *testing.T, cfg detectors.Config, recs []schemas.CDR, outliers []int) watermarkRun {
	t.Helper()
	set := defaultRules(t)
	e := newEngine(t, cfg, set.Allowlist, set.Rules()...)
	var out detectors.Output
	var r watermarkRun
	for i := range recs {
		if len(outliers) > 0 && i == outliers[0] {
			r.before = e.Watermark()
		}
		e.Process(&recs[i], &out)
		if len(outliers) > 0 && i == outliers[len(outliers)-1] {
			r.after = e.Watermark()
		}
	}
	e.Flush(&out)
	r.alerts, r.stats = out.Alerts, e.Stats()
	return r
}

// withOutliers returns recs with n records of new callers inserted in the
// middle of the arrival order, starting hours ahead of the records
// around them, and their indexes.
func withOutliers(recs []schemas.CDR, n int, ahead time.Duration) ([]schemas.CDR, []int) {
	mid := len(recs) / 2
	start := recs[mid].StartMS + ahead.Milliseconds()
	out := slices.Clone(recs[:mid])
	var at []int
	for i := range n {
		c := schemas.CDR{Caller: fmt.Sprintf("+1555099%04d", i), Callee: "+15550200000",
			StartMS: start + int64(i)*1000, Disposition: schemas.NoAnswer}
		if err := c.Finalize(); err != nil {
			panic(err)
		}
		at = append(at, len(out))
		out = append(out, c)
	}
	return append(out, recs[mid:]...), at
}

// shuffleWithinLateness returns recs in the order of their start time
// plus a random delay of up to lateness, as collectors deliver them: no
// record is late, so every order it gives yields the same results.
func shuffleWithinLateness(recs []schemas.CDR, lateness time.Duration, seed uint64) []schemas.CDR {
	rng := rand.New(rand.NewPCG(seed, 99))
	type item struct {
		at int64
		c  schemas.CDR
	}
	items := make([]item, len(recs))
	for i, c := range recs {
		items[i] = item{at: c.StartMS + rng.Int64N(lateness.Milliseconds()), c: c}
	}
	slices.SortStableFunc(items, func(a, b item) int { return int(a.at - b.at) })
	out := make([]schemas.CDR, len(items))
	for i := range items {
		out[i] = items[i].c
	}
	return out
}

// othersAlerts drops the alerts about the outliers' callers.
func othersAlerts(alerts []schemas.Alert) []schemas.Alert {
	return slices.DeleteFunc(slices.Clone(alerts), func(a schemas.Alert) bool {
		return len(a.Subject) == 12 && a.Subject[:8] == "+1555099"
	})
}

func TestOutliersDoNotMoveTheWatermark(t *testing.T) {
	day := smallGeneratedDay()
	const lateness = 10 * time.Minute
	// The runs without outliers, by quorum and whether shuffled (in
	// another order than the case's).
	type refKey struct {
		quorum   int
		shuffled bool
	}
	refs := map[refKey]watermarkRun{}
	reference := func(t *testing.T, cfg detectors.Config, shuffled bool) watermarkRun {
		k := refKey{cfg.WatermarkQuorum, shuffled}
		if r, ok := refs[k]; ok {
			return r
		}
		recs := day.Records
		if shuffled {
			recs = shuffleWithinLateness(recs, lateness, 100)
		}
		r := runStream(t, cfg, recs, nil)
		if len(r.alerts) < 20 {
			t.Fatalf("only %d alerts in the generated day", len(r.alerts))
		}
		if shuffled && r.stats.Late != 0 {
			t.Fatalf("%d late records shuffled within the lateness", r.stats.Late)
		}
		refs[k] = r
		return r
	}
	for _, tc := range []struct {
		name     string
		quorum   int // 0: the default (4)
		outliers int
		shuffle  uint64 // seed; 0: arrival order
		// moves: the outliers move the watermark to their start minus
		// the lateness, and the other callers' alerts change.
		moves bool
	}{
		{name: "one outlier is held", outliers: 1},
		{name: "three outliers are held", outliers: 3},
		{name: "one outlier, shuffled within the lateness", outliers: 1, shuffle: 1},
		{name: "three outliers, shuffled within the lateness", outliers: 3, shuffle: 2},
		{name: "quorum of outliers moves it", outliers: 4, moves: true},
		{name: "quorum 8 holds seven", quorum: 8, outliers: 7},
		{name: "quorum 8 moved by eight", quorum: 8, outliers: 8, moves: true},
		{name: "quorum 1 is moved by one", quorum: 1, outliers: 1, moves: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The start watermark (end order follows ends with the same
			// quorum; its release is covered elsewhere).
			cfg := detectors.Config{WatermarkQuorum: tc.quorum, StartOrder: true}
			recs, ref := day.Records, reference(t, cfg, tc.shuffle != 0)
			same := ref // the same order without the outliers
			if tc.shuffle != 0 {
				recs = shuffleWithinLateness(recs, lateness, tc.shuffle)
				same = runStream(t, cfg, recs, nil)
			}
			recs, at := withOutliers(recs, tc.outliers, 3*time.Hour)
			want := ref.alerts
			got := runStream(t, cfg, recs, at)
			if tc.moves {
				// The quorum-th latest start is the first outlier's.
				if wm := recs[at[0]].StartMS - lateness.Milliseconds(); got.after/1000 != wm/1000 {
					t.Fatalf("watermark %v after the outliers, want %v", time.UnixMilli(got.after), time.UnixMilli(wm))
				}
				if got.stats.Late <= ref.stats.Late {
					t.Fatalf("%d late records with the watermark moved hours ahead, %d without", got.stats.Late, ref.stats.Late)
				}
				if reflect.DeepEqual(othersAlerts(got.alerts), want) {
					t.Fatal("alerts unchanged with the watermark moved hours ahead: the test shows nothing")
				}
				return
			}
			if got.after != got.before {
				t.Fatalf("watermark moved from %v to %v by %d outliers", time.UnixMilli(got.before), time.UnixMilli(got.after), tc.outliers)
			}
			if got.stats.Late != ref.stats.Late {
				t.Fatalf("%d late records, %d without the outliers", got.stats.Late, ref.stats.Late)
			}
			if n := got.stats.Outliers - same.stats.Outliers; n != uint64(tc.outliers) {
				t.Fatalf("%d outliers counted, want %d", n, tc.outliers)
			}
			others := othersAlerts(got.alerts)
			if len(others) != len(want) {
				t.Fatalf("%d alerts about other callers, %d without the outliers", len(others), len(want))
			}
			for i := range want {
				if !reflect.DeepEqual(others[i], want[i]) {
					t.Fatalf("alert %d differs:\n got %+v\nwant %+v", i, others[i], want[i])
				}
			}
		})
	}
}

// TestExternalWatermarkIgnoresQuorum: with an external watermark only
// Advance releases, outliers or not.
func TestExternalWatermarkIgnoresQuorum(t *testing.T) {
	day := smallGeneratedDay()
	recs, at := withOutliers(day.Records, 4, 3*time.Hour)
	for _, quorum := range []int{1, 4} {
		cfg := detectors.Config{ExternalWatermark: true, WatermarkQuorum: quorum}
		set := defaultRules(t)
		e := newEngine(t, cfg, set.Allowlist, set.Rules()...)
		var out detectors.Output
		wm := recs[at[0]-1].StartMS - (10 * time.Minute).Milliseconds()
		for i := range recs {
			e.Process(&recs[i], &out)
			if i == at[len(at)-1] {
				if e.Released() != 0 {
					t.Fatalf("quorum %d: released to %v before any Advance", quorum, time.UnixMilli(e.Released()))
				}
				e.Advance(wm, &out)
				if e.Released()/1000 != wm/1000 {
					t.Fatalf("quorum %d: released to %v, advanced to %v", quorum, time.UnixMilli(e.Released()), time.UnixMilli(wm))
				}
			}
		}
		if e.Released()/1000 != wm/1000 {
			t.Fatalf("quorum %d: released to %v after the stream, advanced to %v", quorum, time.UnixMilli(e.Released()), time.UnixMilli(wm))
		}
	}
}

// TestSourceEngineOnEndWatermark splits the engine the way a streaming
// deployment does — a caller engine and a source engine whose external
// watermark is the caller engine's EndReleased — and checks that the two
// raise exactly what one engine raises (end order, the default), alert
// for alert, emitted_at included.
func TestSourceEngineOnEndWatermark(t *testing.T) {
	recs := smallGeneratedDay().Records
	set := defaultRules(t)
	one := runStream(t, detectors.Config{}, recs, nil).alerts
	callers := newEngine(t, detectors.Config{Kinds: []schemas.SubjectKind{schemas.SubjectCaller}}, set.Allowlist, set.Rules()...)
	sources := newEngine(t, detectors.Config{Kinds: []schemas.SubjectKind{schemas.SubjectTrunk, schemas.SubjectIMEI,
		schemas.SubjectIMSI, schemas.SubjectSourceIP}, ExternalWatermark: true, DedupHorizon: -1}, set.Allowlist, set.Rules()...)
	var out detectors.Output
	for i := range recs {
		callers.Process(&recs[i], &out)
		sources.Process(&recs[i], &out)
		sources.Advance(callers.EndReleased(), &out)
	}
	callers.Flush(&out)
	sources.Flush(&out)
	key := func(a schemas.Alert) string { return a.AlertID + a.EmittedAt.String() }
	want, got := map[string]schemas.Alert{}, map[string]schemas.Alert{}
	for _, a := range one {
		want[key(a)] = a
	}
	sourceAlerts := 0
	for _, a := range out.Alerts {
		got[key(a)] = a
		if a.SubjectKind.IsSource() {
			sourceAlerts++
		}
	}
	if sourceAlerts == 0 || len(got) != len(out.Alerts) || len(want) != len(one) {
		t.Fatalf("%d source alerts, %d alerts (%d distinct), one engine %d (%d distinct)", sourceAlerts, len(out.Alerts), len(got), len(one), len(want))
	}
	for k, a := range want {
		if !reflect.DeepEqual(got[k], a) {
			t.Errorf("one engine's alert %s %s %s:\n  split %+v\n  one   %+v", a.Rule, a.Subject, a.EmittedAt, got[k], a)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d alerts split, %d from one engine", len(got), len(want))
	}
}
