package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/segmentio/kafka-go"
	"go.uber.org/zap"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/schemas"
)

// role says which topic a partition belongs to.
type role int

const (
	inputRole   role = iota // the CDR topic: caller engine, re-keying
	sourcesRole             // the internal topic: source engine
)

// partitionState is what a worker keeps of a partition; it survives a
// rebalance that leaves the partition with this member.
type partitionState struct {
	role      role
	topic     string
	partition int
	engine    *detectors.Engine
	// next is the next offset to take; committed the last offset
	// committed by this member.
	next, committed int64
	// Source partitions: each input partition's watermark and idleness,
	// and the highest origin of the re-keyed records taken from it.
	upstream map[int]upstreamMark
	lastSeq  map[int]int64
	// Input partitions: when the worker last took a record (wall clock)
	// and whether it has released everything for idleness.
	lastRecord time.Time
	idle       bool
}

type upstreamMark struct {
	wm   int64
	idle bool
}

// batch is a set of outputs made durable together.
type batch struct {
	msgs    []kafka.Message
	rows    Rows
	alerts  []schemas.Alert // for metrics once durable
	commit  int64           // offset committable once durable; -1 none
	closed  time.Time
	records int
	// rowsDone receives the outcome of writing rows (nil when none).
	rowsDone chan error
}

// worker runs one partition for one generation.
type worker struct {
	j      *job
	st     *partitionState
	gen    *kafka.Generation
	log    *zap.Logger
	m      *partitionMetrics
	start  int64 // first offset whose outputs are not known to be durable (rebuild below it)
	parser schemas.JSONParser
	cdr    schemas.CDR
	out    detectors.Output
	cur    *batch
	packs  *packer // input partitions: re-keyed sources on their way out
	now    time.Time
	outq   chan *batch
	done   chan struct{}
	// durable is the commit offset of the last durable batch.
	durable     atomic.Int64
	lastCommit  time.Time
	pendingAcks []time.Time // close times of durable, not yet committed batches
}

func newWorker(j *job, st *partitionState, gen *kafka.Generation, start int64) *worker {
	w := &worker{
		j: j, st: st, gen: gen, start: start,
		log:  j.cfg.Log.With(zap.String("topic", st.topic), zap.Int("partition", st.partition)),
		m:    j.cfg.Metrics.partition(st.topic, st.partition),
		outq: make(chan *batch, j.cfg.MaxInFlight),
		done: make(chan struct{}),
	}
	w.parser.Plan = j.cfg.Plan
	w.now = j.cfg.Now()
	if st.role == inputRole && j.sourcesPartitions > 0 {
		w.packs = newPacker(j.cfg.SourcesTopic, st.partition, j.sourcesPartitions)
	}
	w.durable.Store(-1)
	w.cur = &batch{commit: -1}
	return w
}

// run takes records until ctx ends, then makes the outputs durable and
// commits (within the shutdown timeout).
func (w *worker) run(ctx context.Context) {
	outCtx, outCancel := context.WithCancel(context.Background())
	defer outCancel()
	go w.writeLoop(outCtx)

	err := w.consume(ctx)
	if err != nil && ctx.Err() == nil {
		w.log.Error("partition worker stopped", zap.Error(err))
	}

	// Drain: close the open batch, let the writer finish, commit.
	drainCtx, cancel := context.WithTimeout(context.Background(), w.j.cfg.ShutdownTimeout)
	defer cancel()
	w.closeBatch(drainCtx)
	close(w.outq)
	select {
	case <-w.done:
	case <-drainCtx.Done():
		w.log.Warn("outputs not durable within the shutdown timeout; their records will be replayed")
		outCancel()
		<-w.done
	}
	w.commit(true)
}

// consume is the fetch loop.
func (w *worker) consume(ctx context.Context) error {
	from := w.st.next
	if from < w.start {
		w.log.Info("rebuilding windows", zap.Int64("from", from), zap.Int64("to", w.start))
		w.j.cfg.Metrics.rebuilds(w.st.topic)
	}
	r, err := w.j.cfg.Kafka.NewReader(w.st.topic, w.st.partition, from, max(2*w.j.cfg.MaxRecordBytes, 4<<20))
	if err != nil {
		return err
	}
	defer r.Close()
	msgs := make(chan kafka.Message, 1024)
	fetchErr := make(chan error, 1)
	go func() {
		defer close(msgs)
		for {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				if ctx.Err() == nil {
					fetchErr <- fmt.Errorf("cannot fetch from %s/%d: %w", w.st.topic, w.st.partition, err)
				}
				return
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(w.j.cfg.FlushInterval)
	defer tick.Stop()
	lastWatermark := time.Time{}
	sentWM, sentIdle := int64(-1), false
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				select {
				case err := <-fetchErr:
					return err
				default:
					return ctx.Err()
				}
			}
			w.handle(&m)
			if w.cur.records >= w.j.cfg.MaxBatch {
				if !w.closeBatch(ctx) {
					return ctx.Err()
				}
			}
		case now := <-tick.C:
			w.now = w.j.cfg.Now()
			w.m.lag.Set(float64(r.Stats().Lag))
			w.m.held.Set(float64(w.st.engine.Held()))
			if w.st.role == inputRole {
				w.idleCheck(ctx, now)
				// Tell the source partitions when the watermark moved (at
				// most once a second), and once at start so that source
				// workers of a new generation learn it.
				if w.st.next >= w.start && now.Sub(lastWatermark) >= time.Second {
					if wm := w.watermark(); wm != sentWM || w.st.idle != sentIdle {
						w.sendWatermark(now, wm)
						sentWM, sentIdle, lastWatermark = wm, w.st.idle, now
					}
				}
			}
			if !w.closeBatch(ctx) {
				return ctx.Err()
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// quiet reports whether the record at offset is replayed to rebuild state.
func (w *worker) quiet(offset int64) bool { return offset < w.start }

// handle takes one message.
func (w *worker) handle(m *kafka.Message) {
	quiet := w.quiet(m.Offset)
	w.st.next = m.Offset + 1
	w.st.engine.SetQuiet(quiet)
	if quiet {
		w.m.rebuild.Inc()
	}
	switch w.st.role {
	case inputRole:
		w.handleInput(m, quiet)
	case sourcesRole:
		w.handleSource(m, quiet)
	}
	w.collect(quiet)
	w.cur.records++
}

func (w *worker) handleInput(m *kafka.Message, quiet bool) {
	w.st.lastRecord = w.now
	w.st.idle = false
	c := &w.cdr
	if err := w.decode(m, c); err != nil {
		if !quiet {
			w.deadLetter(m, err)
		}
		return
	}
	if !quiet {
		w.m.processed.Inc()
		if w.packs != nil {
			w.packs.add(c, m.Offset)
		}
		if w.j.cfg.StoreCDRs {
			w.cur.rows.CDRs = append(w.cur.rows.CDRs, c.Clone())
		}
	}
	w.st.engine.ProcessTagged(c, m.Offset, &w.out)
}

// decode parses and checks a record.
func (w *worker) decode(m *kafka.Message, c *schemas.CDR) error {
	if len(m.Value) > w.j.cfg.MaxRecordBytes {
		return fmt.Errorf("record of %d bytes is larger than the %d-byte limit", len(m.Value), w.j.cfg.MaxRecordBytes)
	}
	if err := w.parser.Parse(c, m.Value); err != nil {
		return err
	}
	if limit := w.now.Add(w.j.cfg.MaxFuture); c.StartMS > limit.UnixMilli() {
		return &schemas.FieldError{Field: "start_time", Problem: fmt.Sprintf("%s is more than %v ahead of the wall clock",
			c.Start().Format(time.RFC3339), w.j.cfg.MaxFuture)}
	}
	return nil
}

func (w *worker) handleSource(m *kafka.Message, quiet bool) {
	switch {
	case bytes.Equal(m.Key, watermarkKey):
		src, ok1 := headerInt(m, hdrSource)
		wm, ok2 := headerInt(m, hdrWatermark)
		if ok1 && ok2 {
			w.upstreamAt(int(src), wm, string(header(m, hdrIdle)) == "1")
		}
		return
	case !bytes.Equal(m.Key, packKey):
		if !quiet {
			w.deadLetter(m, errors.New("not a message cdrguard writes to its internal topic"))
		}
		return
	}
	o, ok := parseOrigin(m)
	if !ok {
		if !quiet {
			w.deadLetter(m, errors.New("pack of re-keyed records without a valid origin header"))
		}
		return
	}
	if last, seen := w.st.lastSeq[o.partition]; seen && o.seq <= last {
		w.m.duplicate.Inc()
		return // sent again by a replay of its input partition
	}
	w.st.lastSeq[o.partition] = o.seq
	n := 0
	err := unpack(m.Value, func(c *schemas.CDR) {
		w.st.engine.ProcessTagged(c, m.Offset, &w.out)
		n++
	})
	if err != nil && !quiet {
		w.deadLetter(m, fmt.Errorf("after %d records: %w", n, err))
	}
	if !quiet {
		w.m.processed.Add(float64(n))
	}
	if wm, ok := headerInt(m, hdrWatermark); ok {
		w.upstreamAt(o.partition, wm, false)
	}
}

// upstreamAt records an input partition's watermark and advances the
// source engine to the least watermark of the input partitions that are
// not idle (all of them must have reported).
func (w *worker) upstreamAt(src int, wm int64, idle bool) {
	u := w.st.upstream[src]
	u.wm, u.idle = max(u.wm, wm), idle
	w.st.upstream[src] = u
	if len(w.st.upstream) < w.j.inputPartitions {
		return
	}
	least, most := int64(-1), int64(0)
	for _, u := range w.st.upstream {
		most = max(most, u.wm)
		if !u.idle && (least < 0 || u.wm < least) {
			least = u.wm
		}
	}
	if least < 0 {
		least = most // every input partition is idle
	}
	w.st.engine.Advance(least, &w.out)
}

// idleCheck releases everything an input engine holds once its partition
// has been quiet for the idle-release time.
func (w *worker) idleCheck(ctx context.Context, now time.Time) {
	if w.j.cfg.IdleRelease < 0 || w.st.idle || now.Sub(w.st.lastRecord) < w.j.cfg.IdleRelease {
		return
	}
	// Idle means caught up: a slow consumer with records waiting in the
	// partition is not idle, and releasing early would make its records
	// late for the source partitions.
	end, err := w.j.cfg.Kafka.EndOffset(ctx, w.st.topic, w.st.partition)
	if err != nil || end > w.st.next {
		w.st.lastRecord = now // look again after another idle period
		return
	}
	w.st.engine.SetQuiet(false)
	w.st.engine.ReleaseAll(&w.out)
	w.collect(false)
	w.st.idle = true
	w.log.Debug("partition idle: released held records")
}

// watermark is what this input partition tells the source partitions:
// every record that started before it has been re-keyed, except late ones.
func (w *worker) watermark() int64 {
	wm := w.st.engine.Released()
	if w.st.idle {
		wm = max(wm, w.st.engine.Latest()+1)
	}
	return wm
}

// sendWatermark tells every source partition this input partition's
// watermark, after the packs of the records it covers.
func (w *worker) sendWatermark(now time.Time, wm int64) {
	if w.packs == nil {
		return
	}
	w.cur.msgs = w.packs.flush(w.cur.msgs, wm)
	w.cur.msgs = watermarkMessages(w.cur.msgs, w.j.cfg.SourcesTopic, w.j.sourcesPartitions, w.st.partition, wm, w.st.idle, now)
	w.m.watermark.Set(float64(wm) / 1000)
}

// collect moves what the engine emitted into the open batch.
func (w *worker) collect(quiet bool) {
	o := &w.out
	if o.Len() == 0 {
		return
	}
	if !quiet {
		b := w.cur
		for i := range o.Alerts {
			a := &o.Alerts[i]
			if w.j.cfg.Sink != nil {
				b.rows.Alerts = append(b.rows.Alerts, *a) // idempotent: deduplicated by alert_id
			}
			if w.j.published[a.AlertID] {
				continue // in the alerts topic already: published before a restart
			}
			val, err := a.AppendJSON(nil)
			if err != nil {
				w.log.Error("cannot encode alert", zap.Error(err))
				continue
			}
			b.msgs = append(b.msgs, kafka.Message{
				Topic: w.j.cfg.AlertsTopic, Key: []byte(a.Subject), Value: val,
				Headers: []kafka.Header{
					{Key: hdrAlertID, Value: []byte(a.AlertID)},
					{Key: "rule", Value: []byte(a.Rule)},
					{Key: "severity", Value: []byte(a.Severity.String())},
					{Key: "subject_kind", Value: []byte(a.SubjectKind.String())},
				},
			})
			b.alerts = append(b.alerts, *a)
		}
		if w.j.cfg.Sink != nil {
			b.rows.CallerMinutes = append(b.rows.CallerMinutes, o.CallerMinutes...)
			b.rows.CallerHours = append(b.rows.CallerHours, o.CallerHours...)
			b.rows.CallerDays = append(b.rows.CallerDays, o.CallerDays...)
			b.rows.NetworkMinutes = append(b.rows.NetworkMinutes, o.NetworkMinutes...)
		}
	}
	o.Reset()
}

// deadLetter sets a record aside with the reason in its headers.
func (w *worker) deadLetter(m *kafka.Message, cause error) {
	w.m.deadLetter.Inc()
	headers := append([]kafka.Header(nil), m.Headers...)
	headers = append(headers,
		kafka.Header{Key: "cdrguard-error", Value: []byte(cause.Error())},
		kafka.Header{Key: "cdrguard-topic", Value: []byte(m.Topic)},
		kafka.Header{Key: "cdrguard-partition", Value: strconv.AppendInt(nil, int64(m.Partition), 10)},
		kafka.Header{Key: "cdrguard-offset", Value: strconv.AppendInt(nil, m.Offset, 10)},
		kafka.Header{Key: "cdrguard-timestamp", Value: []byte(m.Time.UTC().Format(time.RFC3339Nano))},
	)
	w.cur.msgs = append(w.cur.msgs, kafka.Message{Topic: w.j.cfg.DLQTopic, Key: m.Key, Value: m.Value, Headers: headers})
	w.log.Debug("record set aside", zap.Int64("offset", m.Offset), zap.Error(cause))
}

// closeBatch hands the open batch to the writer (blocking while the
// writer is MaxInFlight batches behind: backpressure). It reports false
// when ctx ended first.
func (w *worker) closeBatch(ctx context.Context) bool {
	b := w.cur
	if w.packs != nil {
		b.msgs = w.packs.flush(b.msgs, w.watermark())
	}
	cand := w.st.next
	if tag, ok := w.st.engine.Pending(); ok && tag < cand {
		cand = tag
	}
	cand = max(cand, w.start)
	if len(b.msgs) == 0 && b.rows.len() == 0 && cand <= w.durable.Load() {
		return true // nothing new
	}
	b.commit = cand
	b.closed = w.j.cfg.Now()
	select {
	case w.outq <- b:
	case <-ctx.Done():
		return false
	}
	w.cur = &batch{commit: -1}
	return true
}

// writeLoop makes batches durable in order and commits. Kafka messages
// are written one batch after the other (packs and watermarks must reach
// each source partition in order), while row writes, which are
// idempotent and may wait for the row store to gather a larger insert,
// overlap: up to MaxInFlight batches may have their rows on the way. A
// batch counts as durable once its messages and rows both are, in batch
// order.
func (w *worker) writeLoop(ctx context.Context) {
	defer close(w.done)
	acks := make(chan *batch, w.j.cfg.MaxInFlight)
	ackDone := make(chan struct{})
	go w.ackLoop(ctx, acks, ackDone)
	defer func() {
		close(acks)
		<-ackDone
	}()
	for b := range w.outq {
		b.rowsDone = make(chan error, 1)
		if w.j.cfg.Sink != nil && b.rows.len() > 0 {
			go func() { b.rowsDone <- w.writeRows(ctx, b) }()
		} else {
			b.rowsDone <- nil
		}
		if err := w.writeMessages(ctx, b); err != nil {
			return // ctx ended: the batch is not durable, nothing past it is committed
		}
		select {
		case acks <- b:
		case <-ctx.Done():
			return
		}
	}
}

// ackLoop marks batches durable in order once their rows are written, and
// commits at most every CommitInterval.
func (w *worker) ackLoop(ctx context.Context, acks <-chan *batch, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(w.j.cfg.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case b, ok := <-acks:
			if !ok {
				return
			}
			if err := <-b.rowsDone; err != nil {
				// ctx ended before the rows were written: nothing from this
				// batch on is durable. Drain the rest without acking.
				for b := range acks {
					<-b.rowsDone
				}
				return
			}
			for i := range b.alerts {
				w.j.cfg.Metrics.alert(&b.alerts[i])
			}
			w.durable.Store(b.commit)
			w.pendingAcks = append(w.pendingAcks, b.closed)
			if time.Since(w.lastCommit) >= w.j.cfg.CommitInterval {
				w.commit(false)
			}
		case <-tick.C:
			w.commit(false)
		case <-ctx.Done():
			for b := range acks {
				<-b.rowsDone
			}
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
		start := time.Now()
		err := w.j.writer.WriteMessages(ctx, b.msgs...)
		var we kafka.WriteErrors
		if errors.As(err, &we) {
			failed := b.msgs[:0:0]
			for i, e := range we {
				if e != nil {
					failed = append(failed, b.msgs[i])
				}
			}
			b.msgs = failed
		}
		if err == nil {
			w.j.cfg.Metrics.writeLatency("kafka", time.Since(start))
		}
		return err
	})
}

// writeRows writes a batch's rows, retrying with backoff until the row
// store has them or ctx ends.
func (w *worker) writeRows(ctx context.Context, b *batch) error {
	return w.retry(ctx, "rows", func() error {
		start := time.Now()
		err := w.j.cfg.Sink.Write(ctx, int32(w.st.partition), &b.rows)
		if err == nil {
			w.j.cfg.Metrics.writeLatency("rows", time.Since(start))
		}
		return err
	})
}

func (w *worker) retry(ctx context.Context, output string, op func() error) error {
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval, eb.MaxInterval = 200*time.Millisecond, 10*time.Second
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		return struct{}{}, op()
	}, backoff.WithBackOff(eb), backoff.WithMaxElapsedTime(0), backoff.WithNotify(func(err error, d time.Duration) {
		w.j.cfg.Metrics.retried(output)
		w.log.Warn("output write failed; retrying", zap.String("output", output), zap.Duration("in", d), zap.Error(err))
	}))
	return err
}

// commit commits the durable offset through this generation (a stale
// generation's commit is refused by the coordinator).
func (w *worker) commit(final bool) {
	off := w.durable.Load()
	if off < 0 || off <= w.st.committed {
		return
	}
	err := w.gen.CommitOffsets(map[string]map[int]int64{w.st.topic: {w.st.partition: off}})
	if err != nil {
		lvl := zap.WarnLevel
		if final {
			lvl = zap.InfoLevel // usual when a rebalance ends the generation
		}
		w.log.Log(lvl, "cannot commit offset", zap.Int64("offset", off), zap.Error(err))
		return
	}
	w.st.committed = off
	w.lastCommit = time.Now()
	w.m.committed.Set(float64(off))
	for _, t := range w.pendingAcks {
		w.j.cfg.Metrics.commitLatency(w.j.cfg.Now().Sub(t))
	}
	w.pendingAcks = w.pendingAcks[:0]
}
