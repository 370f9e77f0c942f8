package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/pipeline/rows"
	"github.com/cdrguard/cdrguard/schemas"
)

// Delivery and commits.
//
// A worker gathers what its records produce (alerts, dead letters,
// re-keyed packs, watermarks, aggregate rows) into an open batch. Closing
// the batch stamps it with its commit candidate — the offset below which
// every record's outputs are in this batch or an earlier one — and hands
// it to the write loop, which makes batches durable one after the other
// (packs and watermarks must reach each source partition in order) and
// commits, at most every CommitInterval, the candidate of the last batch
// of the durable prefix. The candidate never passes a record the engine
// still holds (its outputs are yet to come), nor the first record of a
// rebuild's live part.

// batch is a set of outputs made durable together.
type batch struct {
	seq     uint64
	msgs    []kafka.Message
	rows    rows.Batch      // aggregate rows, encoded into msgs when the batch closes
	alerts  []schemas.Alert // for metrics once durable
	commit  int64           // offset committable once durable; -1 none
	closed  time.Time
	records int
}

func (b *batch) empty() bool { return len(b.msgs) == 0 && b.rows.Len() == 0 }

// durability tracks which closed batches are durable. Batches are opened
// in sequence; acks may come in any order, and the committable offset is
// the candidate of the last batch of the acknowledged prefix, so an ack
// never makes an earlier, undurable batch's records committable. Not
// goroutine-safe: owned by the write loop once batches are closed (open is
// the worker's, and happens before the batch is handed over).
type durability struct {
	nextSeq   uint64 // sequence of the next batch opened
	durableTo uint64 // every batch below this sequence is durable
	acked     map[uint64]int64
	// committable is the commit candidate of the last batch below
	// durableTo that had one; -1 none.
	committable int64
	started     bool
}

// open starts a new batch.
func (d *durability) open() *batch {
	if !d.started {
		d.started, d.committable = true, -1
	}
	b := &batch{seq: d.nextSeq, commit: -1}
	d.nextSeq++
	return b
}

// ack marks batch seq (with its commit candidate) durable and returns
// the committable offset.
func (d *durability) ack(seq uint64, commit int64) int64 {
	if d.acked == nil {
		d.acked = map[uint64]int64{}
	}
	if seq >= d.durableTo {
		d.acked[seq] = commit
	}
	for {
		c, ok := d.acked[d.durableTo]
		if !ok {
			break
		}
		delete(d.acked, d.durableTo)
		d.durableTo++
		if c >= 0 {
			d.committable = max(d.committable, c)
		}
	}
	return d.committable
}

// allDurable reports whether every batch closed so far (all but the open
// one) is durable.
func (d *durability) allDurable() bool { return d.durableTo+1 >= d.nextSeq }

// commitCandidate is the offset that may be committed once the open
// batch and those before it are durable: the next offset to take, but no
// further than the first record the engine holds, and never below the
// start of the live part (records below it are a rebuild's, already
// committed).
func (w *worker) commitCandidate() int64 {
	cand := w.st.next
	if tag, ok := w.st.engine.Pending(); ok && tag < cand {
		cand = tag
	}
	return max(cand, w.start)
}

// closeBatch hands the open batch to the writer (blocking while the
// writer is MaxInFlight batches behind: backpressure). It reports false
// when ctx ended first.
func (w *worker) closeBatch(ctx context.Context) bool {
	b := w.cur
	if w.packs != nil {
		b.msgs = w.packs.flush(b.msgs, w.watermark())
	}
	cand := w.commitCandidate()
	if b.empty() && cand <= w.closedCommit {
		return true // nothing new
	}
	if b.rows.Aggregates() > 0 {
		b.msgs = w.rowMessages(b.msgs, &b.rows)
		b.rows.Reset()
	}
	b.commit = cand
	b.closed = w.j.cfg.Now()
	select {
	case w.outq <- b:
	case <-ctx.Done():
		return false
	}
	w.closedCommit = cand
	w.cur = w.track.open()
	return true
}

// writeLoop makes batches durable in order, until outq is closed and
// drained or ctx ends. It never starts a write once ctx has ended: ctx
// ends with the generation. Commits run beside it, every CommitInterval,
// so what is durable is committed even while a later batch's write is
// retried.
func (w *worker) writeLoop(ctx context.Context) {
	commits, stopCommits := context.WithCancel(ctx)
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		tick := time.NewTicker(w.j.cfg.CommitInterval)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				w.commit(false)
			case <-commits.Done():
				return
			}
		}
	}()
	defer func() {
		stopCommits()
		<-committed
	}()
	for {
		select {
		case b, ok := <-w.outq:
			if !ok {
				return
			}
			if ctx.Err() != nil || w.writeMessages(ctx, b) != nil {
				return // not durable: nothing from this batch on is committed
			}
			w.commitMu.Lock()
			w.durable = w.track.ack(b.seq, b.commit)
			w.pendingAcks = append(w.pendingAcks, b.closed)
			due := w.j.cfg.Now().Sub(w.lastCommit) >= w.j.cfg.CommitInterval
			w.commitMu.Unlock()
			for i := range b.alerts {
				w.j.cfg.Metrics.alert(&b.alerts[i])
			}
			if due {
				w.commit(false)
			}
		case <-ctx.Done():
			return
		}
	}
}

// writeMessages writes a batch's Kafka messages, retrying with backoff
// until they are acknowledged or ctx ends. Messages that were
// acknowledged are not sent again.
func (w *worker) writeMessages(ctx context.Context, b *batch) error {
	if len(b.msgs) == 0 {
		return nil
	}
	return w.retry(ctx, "kafka", func() error {
		if ctx.Err() != nil {
			return backoff.Permanent(ctx.Err())
		}
		if err := w.confirmMembership(); err != nil {
			return err
		}
		start := w.j.cfg.Now()
		err := w.j.producer.WriteMessages(ctx, b.msgs...)
		if err != nil && ctx.Err() == nil {
			w.j.status.failingSince.CompareAndSwap(0, w.j.cfg.Now().UnixNano())
		} else if err == nil {
			w.j.status.failingSince.Store(0)
		}
		var we kafka.WriteErrors
		if errors.As(err, &we) && len(we) == len(b.msgs) {
			failed := b.msgs[:0:0]
			for i, e := range we {
				if e != nil {
					failed = append(failed, b.msgs[i])
				}
			}
			b.msgs = failed
		}
		if err == nil {
			w.j.cfg.Metrics.writeLatency("kafka", w.j.cfg.Now().Sub(start))
		}
		return err
	})
}

func (w *worker) retry(ctx context.Context, output string, op func() error) error {
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval, eb.MaxInterval = 200*time.Millisecond, 5*time.Second
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, op()
	}, backoff.WithBackOff(eb), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, d time.Duration) {
		w.j.cfg.Metrics.retried(output)
		w.log.Warn("output write failed; retrying", zap.String("output", output), zap.Duration("in", d), zap.Error(err))
	}))
	return err
}

// Membership lease. The coordinator cannot hand this member's partitions
// to another before the member has missed its heartbeats for a session
// timeout, or, in a rebalance, before the rebalance timeout; an offset
// commit it accepts proves the member is in the current generation and
// resets the session's expiry. So for half the shorter of the two after
// an accepted commit, writes are safe. Past that — a member that was
// paused (a stalled VM, a long GC, SIGSTOP) or could not commit — the
// worker first commits its committed offset again, and writes only if the
// coordinator accepts it: a member that lost its partitions while it was
// away writes nothing, even before kafka-go has noticed that its
// generation ended.

// leaseLength is how long an accepted commit lets the worker write.
func (w *worker) leaseLength() time.Duration {
	return min(w.j.cfg.SessionTimeout, w.j.cfg.RebalanceTimeout) / 2
}

// confirmMembership returns nil if the lease holds or the coordinator
// accepts a commit of the committed offset now.
func (w *worker) confirmMembership() error {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	now := w.j.cfg.Now()
	if now.Before(w.lease) {
		return nil
	}
	off := w.st.committed
	if err := w.com.CommitOffsets(map[string]map[int]int64{w.st.topic: {w.st.partition: off}}); err != nil {
		w.m.fenced.Inc()
		return fmt.Errorf("membership not confirmed (the coordinator refused a commit of %d): %w", off, err)
	}
	w.lease = now.Add(w.leaseLength())
	w.j.renewLease(w.lease)
	return nil
}

// commit commits the durable offset through this generation (a stale
// generation's commit is refused by the coordinator).
func (w *worker) commit(final bool) {
	w.commitMu.Lock()
	defer w.commitMu.Unlock()
	off := w.durable
	if off < 0 || off <= w.st.committed {
		return
	}
	sent := w.j.cfg.Now()
	err := w.com.CommitOffsets(map[string]map[int]int64{w.st.topic: {w.st.partition: off}})
	if err != nil {
		lvl := zap.WarnLevel
		if final {
			lvl = zap.InfoLevel // usual when a rebalance ends the generation
		}
		w.log.Log(lvl, "cannot commit offset", zap.Int64("offset", off), zap.Error(err))
		return
	}
	w.lease = sent.Add(w.leaseLength())
	w.j.renewLease(w.lease)
	now := w.j.cfg.Now()
	w.st.committed = off
	w.lastCommit = now
	w.m.committed.Set(float64(off))
	for _, t := range w.pendingAcks {
		w.j.cfg.Metrics.commitLatency(now.Sub(t))
	}
	w.pendingAcks = w.pendingAcks[:0]
}
