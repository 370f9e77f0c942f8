//go:build !race

package detectors_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

// bytesPerCaller runs n distinct callers making one call each (spread over
// twelve hours, so none idles out) through an engine and returns the heap
// it holds per caller.
func bytesPerCaller(tb testing.TB, n int) float64 {
	tb.Helper()
	set := defaultRules(tb)
	e, err := detectors.NewEngine(detectors.Config{}, set.Rules(), set.Allowlist)
	if err != nil {
		tb.Fatal(err)
	}
	var out detectors.Output
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	step := (12 * time.Hour).Milliseconds() / int64(n)
	start := time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC).UnixMilli()
	var c schemas.CDR
	buf := make([]byte, 0, 16)
	for i := range n {
		buf = append(buf[:0], "+1"...)
		buf = strconv.AppendInt(buf, 2000000000+int64(i)*7, 10)
		c = schemas.CDR{Caller: string(buf), Callee: "+15550100000", StartMS: start + int64(i)*step, Disposition: schemas.Answered}
		c.SetDuration(60)
		e.Process(&c, &out)
		out.Reset()
	}
	e.Flush(&out)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if keys, _ := e.Keys(schemas.SubjectCaller); keys != n {
		tb.Fatalf("tracking %d callers, want %d", keys, n)
	}
	runtime.KeepAlive(e)
	return float64(after.HeapInuse-before.HeapInuse) / float64(n)
}

// TestLowVolumeCallerMemory holds the engine to at most 128 bytes per
// tracked low-volume caller, measured with five million of them.
// The race detector changes what the heap holds, so the file is built
// without it; make test runs this test in a separate step without -race.
func TestLowVolumeCallerMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("five million callers")
	}
	got := bytesPerCaller(t, 5_000_000)
	t.Logf("%.1f bytes per low-volume caller (5M callers)", got)
	if got > 128 {
		t.Fatalf("%.1f bytes per low-volume caller, want at most 128", got)
	}
}

// BenchmarkLowVolumeCallerMemory reports bytes per tracked low-volume
// caller (metric bytes/caller) for five million callers.
func BenchmarkLowVolumeCallerMemory(b *testing.B) {
	for range b.N {
		b.ReportMetric(bytesPerCaller(b, 5_000_000), "bytes/caller")
	}
}
