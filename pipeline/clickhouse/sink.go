package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

// Rows is what one partition worker hands the Sink in one Write: the
// alerts and aggregate rows its engine produced (and, with StoreCDRs, the
// raw CDRs). Any field may be empty.
type Rows struct {
	Alerts         []schemas.Alert
	CallerMinutes  []detectors.CallerMinute
	CallerHours    []detectors.CallerPeriod
	CallerDays     []detectors.CallerPeriod
	NetworkMinutes []detectors.NetworkMinute
	// CDRs are written only when Options.StoreCDRs is on.
	CDRs []schemas.CDR
}

// Len is the number of rows in r, all tables together.
func (r *Rows) Len() int {
	return len(r.Alerts) + len(r.CallerMinutes) + len(r.CallerHours) + len(r.CallerDays) +
		len(r.NetworkMinutes) + len(r.CDRs)
}

// Reset empties r, keeping its slices' capacity for reuse.
func (r *Rows) Reset() {
	*r = Rows{Alerts: r.Alerts[:0], CallerMinutes: r.CallerMinutes[:0], CallerHours: r.CallerHours[:0],
		CallerDays: r.CallerDays[:0], NetworkMinutes: r.NetworkMinutes[:0], CDRs: r.CDRs[:0]}
}

// Sink writes Rows to ClickHouse durably, batching concurrent writers.
//
// Write is safe for concurrent use by many partition workers. Writes are
// gathered into one INSERT per table, with explicit column lists, once
// MaxRows rows are pending or FlushInterval after the first pending write,
// and up to FlushWorkers batches are inserted at once. Write returns only
// when the server has accepted all of its rows (or with an error), so the
// caller may commit its input offsets then.
//
// Transient failures (connection refused or reset, timeouts, server
// overloaded, too many parts, Keeper trouble) are retried with exponential
// backoff for as long as it takes: while ClickHouse is down, writers wait
// (the Sink holds a bounded number of rows; new writers block until it
// has room), and when it is back every pending row is written. Every
// table replaces duplicate rows, so a retried INSERT that had in fact
// succeeded does not duplicate anything. A schema mismatch (missing table
// or column, wrong type) fails the writes at once with an error wrapping
// ErrSchema; any other unexpected error fails them too.
type Sink struct {
	c    *Client
	opts Options
	log  *zap.Logger

	reqs    chan *request
	batches chan *batch
	closing chan struct{}
	done    chan struct{}
	closeMu sync.Once

	runCtx    context.Context
	cancelRun context.CancelFunc

	stats *sinkStats
}

// request is one Write waiting for its rows to be inserted.
type request struct {
	partition int32
	rows      Rows // the Sink's own copy
	n         int
	done      chan error // buffered: the flusher never blocks on it
}

// batch is the writes gathered for one flush.
type batch struct {
	reqs []*request
	n    int
}

// NewSink starts a Sink on c (its collector and FlushWorkers insert
// goroutines). Close it to flush and stop them.
func (c *Client) NewSink() *Sink {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sink{
		c:         c,
		opts:      c.opts,
		log:       c.log.With(zap.String("component", "clickhouse_sink"), zap.String("database", c.opts.Database)),
		reqs:      make(chan *request),
		batches:   make(chan *batch),
		closing:   make(chan struct{}),
		done:      make(chan struct{}),
		runCtx:    ctx,
		cancelRun: cancel,
		stats:     newSinkStats(),
	}
	var wg sync.WaitGroup
	wg.Go(s.collect)
	for range s.opts.FlushWorkers {
		wg.Go(s.work)
	}
	go func() {
		wg.Wait()
		close(s.done)
	}()
	return s
}

// Write hands r to the Sink and blocks until ClickHouse has accepted all
// of its rows, ctx ends, or a write fails for good. partition is the
// input partition the rows came from; it becomes network_minute's
// source_partition. Write copies r before it returns or waits, so the
// caller may reuse r's slices afterwards even when Write gives up early;
// rows of a write that gave up are still written.
//
// Errors: ctx's error if it ended first; one wrapping ErrSchema if the
// tables do not match (run `cdrguard migrate`); ErrClosed after Close; or
// the server's error for anything else that is not transient.
func (s *Sink) Write(ctx context.Context, partition int32, r *Rows) error {
	n := r.Len()
	if !s.opts.StoreCDRs {
		n -= len(r.CDRs)
	}
	if n == 0 {
		return nil
	}
	select {
	case <-s.closing:
		return ErrClosed
	default:
	}
	start := time.Now()
	req := &request{partition: partition, rows: copyRows(r, s.opts.StoreCDRs), n: n, done: make(chan error, 1)}
	select {
	case s.reqs <- req:
	case <-s.closing:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("clickhouse write of %d rows gave up waiting for the sink: %w", n, ctx.Err())
	}
	select {
	case err := <-req.done:
		s.stats.observeWrite(time.Since(start), err)
		return err
	case <-ctx.Done():
		return fmt.Errorf("clickhouse write of %d rows gave up waiting for the insert: %w", n, ctx.Err())
	}
}

// Close stops accepting writes, inserts every pending row and stops the
// Sink's goroutines. Call it after the last Write has returned. If ctx
// ends first (ClickHouse is down), Close abandons the pending rows, fails
// their writers, and returns ctx's error. It does not close the Client.
func (s *Sink) Close(ctx context.Context) error {
	s.closeMu.Do(func() { close(s.closing) })
	select {
	case <-s.done:
		s.cancelRun()
		return nil
	case <-ctx.Done():
		pending := s.stats.pending.Load()
		s.cancelRun()
		<-s.done
		return fmt.Errorf("clickhouse sink closed with %d rows not written: %w", pending, ctx.Err())
	}
}

// collect gathers pending writes into batches and hands them to the
// insert workers. While every worker is busy it stops taking writes, so
// writers wait and the Sink's memory stays bounded.
func (s *Sink) collect() {
	defer close(s.batches)
	for {
		b := &batch{}
		select {
		case r := <-s.reqs:
			s.accept(b, r)
		case <-s.closing:
			s.drain(b)
			if b.n > 0 {
				s.batches <- b
			}
			return
		}
		timer := time.NewTimer(s.opts.FlushInterval)
	fill:
		for b.n < s.opts.MaxRows {
			select {
			case r := <-s.reqs:
				s.accept(b, r)
			case <-timer.C:
				break fill
			case <-s.closing:
				s.drain(b)
				break fill
			}
		}
		timer.Stop()
		s.batches <- b
	}
}

// drain takes the writes already waiting to be accepted.
func (s *Sink) drain(b *batch) {
	for {
		select {
		case r := <-s.reqs:
			s.accept(b, r)
		default:
			return
		}
	}
}

// accept adds a write to the batch being gathered.
func (s *Sink) accept(b *batch, r *request) {
	b.reqs = append(b.reqs, r)
	b.n += r.n
	s.stats.pending.Add(int64(r.n))
}

// work inserts batches and tells their writers the outcome.
func (s *Sink) work() {
	for b := range s.batches {
		err := s.flush(b)
		s.stats.pending.Add(-int64(b.n))
		for _, r := range b.reqs {
			r.done <- err
		}
	}
}

// flush inserts one batch: one INSERT per table that has rows, each
// retried on its own until it succeeds, fails for good, or the Sink is
// closed for good.
func (s *Sink) flush(b *batch) error {
	for i := range tables {
		t := &tables[i]
		if t.name == TableCDRs && !s.opts.StoreCDRs {
			continue
		}
		n := 0
		for _, r := range b.reqs {
			n += t.count(r)
		}
		if n == 0 {
			continue
		}
		cols := t.build(s, b.reqs, n)
		if err := s.insertRetrying(t, cols, n); err != nil {
			return err
		}
	}
	return nil
}

// insertRetrying inserts the columns into t, retrying transient failures
// with exponential backoff until the Sink is closed for good.
func (s *Sink) insertRetrying(t *table, cols []any, n int) error {
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval = s.opts.RetryInitial
	eb.MaxInterval = s.opts.RetryMax
	eb.Multiplier = 2
	eb.RandomizationFactor = 0.2
	attempt := 0
	failing := false
	_, err := backoff.Retry(s.runCtx, func() (struct{}, error) {
		attempt++
		start := time.Now()
		err := s.insert(s.runCtx, t, cols)
		if err == nil {
			s.stats.observeInsert(t.name, n, time.Since(start))
			if failing {
				s.log.Info("clickhouse insert succeeded after retries",
					zap.String("table", t.name), zap.Int("rows", n), zap.Int("attempts", attempt))
			}
			return struct{}{}, nil
		}
		if s.runCtx.Err() != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		switch classify(err) {
		case kindTransient:
			failing = true
			s.stats.retries.Add(1)
			return struct{}{}, err
		case kindSchema:
			s.stats.failures.Add(1)
			return struct{}{}, backoff.Permanent(&schemaError{table: s.opts.Database + "." + t.name, err: err})
		default:
			s.stats.failures.Add(1)
			return struct{}{}, backoff.Permanent(fmt.Errorf("cannot write %d rows to clickhouse table %s.%s: %w",
				n, s.opts.Database, t.name, err))
		}
	},
		backoff.WithBackOff(eb),
		backoff.WithMaxElapsedTime(0), // until it works or the Sink is closed for good
		backoff.WithNotify(func(err error, next time.Duration) {
			s.log.Warn("clickhouse insert failed, will retry",
				zap.String("table", t.name), zap.Int("rows", n), zap.Int("attempt", attempt),
				zap.Duration("retry_in", next), zap.Error(err))
		}))
	if err != nil && s.runCtx.Err() != nil && !errors.Is(err, ErrSchema) {
		return fmt.Errorf("clickhouse sink closed before %d rows were written to %s: %w", n, t.name, err)
	}
	return err
}

// insert runs one INSERT of the columns into t.
func (s *Sink) insert(ctx context.Context, t *table, cols []any) (err error) {
	b, err := s.c.conn.PrepareBatch(ctx, "INSERT INTO "+s.opts.Database+"."+t.name+" ("+t.columns+")")
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.Close(); err == nil && cerr != nil && !b.IsSent() {
			err = cerr
		}
	}()
	for i, col := range cols {
		if err := b.Column(i).Append(col); err != nil {
			return err
		}
	}
	return b.Send()
}
