package clickhouse

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cdrguard/cdrguard/detectors"
)

// BenchmarkSinkCallerMinutes measures caller_minute rows per second into
// the real server: 8 partition workers each write chunks of 10,000 rows
// concurrently, as a busy consumer would. One op is one row.
//
//	CDRGUARD_INTEGRATION=1 go test -run '^$' -bench SinkCallerMinutes -benchtime 4000000x ./pipeline/clickhouse/
func BenchmarkSinkCallerMinutes(b *testing.B) {
	c, _ := testClient(b, true, func(o *Options) {
		o.MaxRows = 200_000
		o.FlushInterval = 50 * time.Millisecond
		o.FlushWorkers = 2
	})
	s := c.NewSink()
	defer func() { _ = s.Close(ctxTimeout(b, time.Minute)) }()
	const writers, chunk = 8, 10_000
	rows := make([][]detectors.CallerMinute, writers)
	for w := range rows {
		minute := time.Date(2026, 11, 26, 10, w, 0, 0, time.UTC)
		for i := range chunk {
			rows[w] = append(rows[w], detectors.CallerMinute{
				Caller: fmt.Sprintf("+1555%02d%06d", w, i), Minute: minute,
				Calls: uint32(i%50 + 1), Answered: uint32(i % 7), ShortCalls: uint32(i % 40), Rejected: uint32(i % 9),
				TalkS: uint32(i % 600), DistinctCallees: uint32(i%50 + 1),
			})
		}
	}
	ctx := ctxTimeout(b, 10*time.Minute)
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for {
				start := next.Add(chunk) - chunk
				if start >= int64(b.N) {
					return
				}
				n := min(chunk, int64(b.N)-start)
				if err := s.Write(ctx, int32(w), &Rows{CallerMinutes: rows[w][:n]}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	st := s.Stats()
	b.ReportMetric(float64(st.RowsWritten[TableCallerMinute])/max(float64(st.Inserts[TableCallerMinute]), 1), "rows/insert")
}
