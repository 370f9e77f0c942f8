package hooks

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// BatchRecorder is a Recorder that inserts rows in batches from its own
// goroutine (Run), so a slow or absent ClickHouse never delays a
// delivery. Rows that find its buffer full are counted and dropped from
// the table (the requests themselves are unaffected); a failed insert is
// retried for as long as new rows still fit.
type BatchRecorder struct {
	ch      chan Delivery
	insert  func(context.Context, []Delivery) error
	log     *zap.Logger
	dropped atomic.Int64
}

// NewBatchRecorder returns a recorder buffering up to size rows; insert
// writes one batch. log may be nil.
func NewBatchRecorder(insert func(context.Context, []Delivery) error, size int, log *zap.Logger) *BatchRecorder {
	if log == nil {
		log = zap.NewNop()
	}
	return &BatchRecorder{ch: make(chan Delivery, size), insert: insert, log: log}
}

// Record implements Recorder.
func (r *BatchRecorder) Record(d Delivery) {
	select {
	case r.ch <- d:
	default:
		if r.dropped.Add(1)%1000 == 1 {
			r.log.Error("hook_deliveries buffer full: rows dropped", zap.Int64("dropped", r.dropped.Load()))
		}
	}
}

// Dropped returns the number of rows dropped so far.
func (r *BatchRecorder) Dropped() int64 { return r.dropped.Load() }

// Run inserts batches (every 200 ms, or 1000 rows) until ctx ends, then
// inserts what is buffered, for at most 5 s.
func (r *BatchRecorder) Run(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var batch []Delivery
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		if err := r.insert(ctx, batch); err != nil {
			r.log.Warn("cannot write hook_deliveries, will retry", zap.Int("rows", len(batch)), zap.Error(err))
			if len(batch) > 100_000 {
				r.dropped.Add(int64(len(batch)))
				batch = batch[:0]
			}
			return
		}
		batch = batch[:0]
	}
	for {
		select {
		case d := <-r.ch:
			batch = append(batch, d)
			if len(batch) >= 1000 {
				flush(ctx)
			}
		case <-t.C:
			flush(ctx)
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			for {
				select {
				case d := <-r.ch:
					batch = append(batch, d)
				default:
					flush(fctx)
					return
				}
			}
		}
	}
}
