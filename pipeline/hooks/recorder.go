package hooks

import (
	"context"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Batcher inserts rows of type T (a Delivery, a Decision) in batches
// from its own goroutine (Run), so a slow or absent ClickHouse never
// delays a delivery or a release. Rows that find its buffer full are
// counted and dropped from the table (the requests themselves, and the
// allowlist records of releases, are unaffected); a failed insert is
// retried for as long as new rows still fit.
type Batcher[T any] struct {
	ch      chan T
	insert  func(context.Context, []T) error
	log     *zap.Logger
	dropped atomic.Int64
}

// BatchRecorder is the Recorder of hook_deliveries rows.
type BatchRecorder = Batcher[Delivery]

// NewBatchRecorder returns a recorder buffering up to size rows; insert
// writes one batch. log may be nil.
func NewBatchRecorder[T any](insert func(context.Context, []T) error, size int, log *zap.Logger) *Batcher[T] {
	if log == nil {
		log = zap.NewNop()
	}
	return &Batcher[T]{ch: make(chan T, size), insert: insert, log: log}
}

// Record queues d and returns at once (Recorder, DecisionRecorder).
func (r *Batcher[T]) Record(d T) {
	select {
	case r.ch <- d:
	default:
		if r.dropped.Add(1)%1000 == 1 {
			r.log.Error("clickhouse buffer full: rows dropped", zap.Int64("dropped", r.dropped.Load()))
		}
	}
}

// Dropped returns the number of rows dropped so far.
func (r *Batcher[T]) Dropped() int64 { return r.dropped.Load() }

// Run inserts batches (every 200 ms, or 1000 rows) until ctx ends, then
// inserts what is buffered, for at most 5 s.
func (r *Batcher[T]) Run(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	var batch []T
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		if err := r.insert(ctx, batch); err != nil {
			r.log.Warn("cannot write to clickhouse, will retry", zap.Int("rows", len(batch)), zap.Error(err))
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
