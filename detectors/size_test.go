package detectors_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

// StateBytes follows what the engine holds: it grows with the callers
// tracked, and for low-volume callers comes to a few dozen bytes each,
// the order the heap measurement of TestLowVolumeCallerMemory gives.
func TestStateBytes(t *testing.T) {
	set := defaultRules(t)
	e, err := detectors.NewEngine(detectors.Config{}, set.Rules(), set.Allowlist)
	if err != nil {
		t.Fatal(err)
	}
	var out detectors.Output
	empty := e.StateBytes()
	start := time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC).UnixMilli()
	const n = 200_000
	var c schemas.CDR
	for i := range n {
		c = schemas.CDR{Caller: "+1" + strconv.Itoa(2000000000+i*7), Callee: "+15550100000",
			StartMS: start + int64(i)*200, Disposition: schemas.Answered}
		c.SetDuration(60)
		e.Process(&c, &out)
		out.Reset()
	}
	e.Flush(&out)
	got := e.StateBytes()
	per := float64(got-empty) / n
	t.Logf("StateBytes: %d bytes empty, %d with %d low-volume callers (%.1f bytes each)", empty, got, n, per)
	if per < 8 || per > 256 {
		t.Fatalf("%.1f bytes per low-volume caller; want the order of the measured ~57", per)
	}
}
