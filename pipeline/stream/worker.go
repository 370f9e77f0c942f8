package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

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

// partitionState is what a member keeps of a partition; it survives a
// rebalance that leaves the partition with this member, but only when
// the generation that ended left every output durable.
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
	upstream *upstream
	lastSeq  map[int]int64
	// Input partitions: when the worker last took a record (wall clock)
	// and whether it has released everything for idleness.
	lastRecord time.Time
	idle       bool
	// lateSeen is the engine's late-record count last published.
	lateSeen uint64
}

// worker runs one partition for one generation.
type worker struct {
	j      *job
	st     *partitionState
	com    committer
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
	track  durability
	// closedCommit is the commit candidate of the last closed batch (the
	// worker's); durable the committable offset (under commitMu).
	closedCommit, durable int64
	// rebuilding is set while the worker replays quietly.
	rebuilding bool
	// clean is set when the worker ends with every output of the records
	// it took durable: only then may a later generation keep its state.
	clean bool
	// commitMu guards what the write loop and the commits share: durable,
	// lastCommit, pendingAcks, lease and st.committed while the worker runs.
	commitMu    sync.Mutex
	lastCommit  time.Time
	pendingAcks []time.Time // close times of durable, not yet committed batches
	// lastState is when the engine's state was last published.
	lastState time.Time
	// lease is when writes must first confirm this member's membership
	// (see confirmMembership); the write loop's.
	lease time.Time
}

func newWorker(j *job, st *partitionState, com committer, start int64) *worker {
	w := &worker{
		j: j, st: st, com: com, start: start,
		log:  j.cfg.Log.With(zap.String("topic", st.topic), zap.Int("partition", st.partition)),
		m:    j.cfg.Metrics.partition(st.topic, st.partition),
		outq: make(chan *batch, j.cfg.MaxInFlight),
	}
	w.parser.Plan = j.cfg.Plan
	w.now = j.cfg.Now()
	if st.lastRecord.IsZero() {
		st.lastRecord = w.now
	}
	if st.role == inputRole && j.sourcesPartitions > 0 {
		w.packs = newPacker(j.cfg.SourcesTopic, st.partition, j.sourcesPartitions)
	}
	w.cur = w.track.open()
	w.closedCommit, w.durable = -1, -1
	w.lease = w.now.Add(w.leaseLength()) // the generation was just joined
	j.renewLease(w.lease)
	return w
}

// run takes records until ctx ends and returns the error that ended the
// fetch loop, nil when ctx did. Outputs are written only while genCtx
// holds: once the generation has ended this member may no longer own the
// partition, so nothing more is written or committed, and the records
// whose outputs were not durable are taken again (by whoever owns the
// partition next) from the committed offset. When jobCtx ends (the job
// stops) while the generation still holds, the worker flushes its
// outputs and commits within the shutdown timeout.
func (w *worker) run(ctx, jobCtx, genCtx context.Context) error {
	outCtx, outCancel := context.WithCancel(genCtx)
	defer outCancel()
	written := make(chan struct{})
	go func() {
		defer close(written)
		w.writeLoop(outCtx)
	}()

	err := w.consume(ctx)
	if ctx.Err() != nil {
		err = nil
	}
	if err == nil && jobCtx.Err() != nil && genCtx.Err() == nil {
		drainCtx, cancel := context.WithTimeout(outCtx, w.j.cfg.ShutdownTimeout)
		defer cancel()
		if w.closeBatch(drainCtx) {
			close(w.outq)
			select {
			case <-written:
			case <-drainCtx.Done():
			}
		}
	}
	outCancel()
	<-written
	w.commit(true)
	w.clean = w.track.allDurable() && w.cur.empty() && (w.packs == nil || w.packs.empty())
	if !w.clean {
		w.log.Info("partition stopped with outputs not durable: it restarts from its committed offset",
			zap.Int64("committed", w.st.committed), zap.Int64("next", w.st.next),
			zap.Bool("generation_ended", genCtx.Err() != nil))
	}
	return err
}

// consume is the fetch loop.
func (w *worker) consume(ctx context.Context) error {
	from := w.st.next
	if from < w.start {
		w.log.Info("rebuilding windows", zap.Int64("from", from), zap.Int64("to", w.start))
		w.j.cfg.Metrics.rebuilds(w.st.topic)
		w.rebuilding = true
		w.j.status.rebuilding.Add(1)
		defer func() {
			if w.rebuilding {
				w.j.status.rebuilding.Add(-1)
			}
		}()
	}
	r, err := w.j.broker.Reader(w.st.topic, w.st.partition, from, w.j.maxFetchBytes())
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
	var wms watermarkSender
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
		case <-tick.C:
			w.now = w.j.cfg.Now()
			w.m.lag.Set(float64(r.Lag()))
			w.m.held.Set(float64(w.st.engine.Held()))
			if w.now.Sub(w.lastState) >= time.Second {
				w.publishState()
			}
			if w.st.role == inputRole {
				w.idleCheck(ctx, w.now)
				if w.st.next >= w.start {
					wms.tick(w, w.now)
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

// publishState publishes the engine's key counts and late records.
func (w *worker) publishState() {
	late := w.st.engine.Stats().Late
	kinds := sourceKinds
	if w.st.role == inputRole {
		kinds = callerKinds
	}
	w.j.cfg.Metrics.engineState(w.st.topic, w.st.partition, w.st.engine, kinds, late, w.st.lateSeen)
	w.st.lateSeen, w.lastState = late, w.now
}

// quiet reports whether the record at offset is replayed to rebuild state.
func (w *worker) quiet(offset int64) bool { return offset < w.start }

// handle takes one message.
func (w *worker) handle(m *kafka.Message) {
	quiet := w.quiet(m.Offset)
	w.st.next = m.Offset + 1
	if w.rebuilding && w.st.next >= w.start {
		w.rebuilding = false // the rebuild's last record
		w.j.status.rebuilding.Add(-1)
	}
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
	// A copy of a record taken within the dedup horizon is dropped here,
	// before it is re-keyed: source engines never see it. A rebuild
	// replays the same records through the engine, so it remembers the
	// same fingerprints, quietly.
	if !w.st.engine.ProcessTagged(c, m.Offset, &w.out) {
		if !quiet {
			w.m.duplicateCDR.Inc()
		}
		return
	}
	if !quiet {
		w.m.processed.Inc()
		if w.packs != nil {
			w.packs.add(c, m.Offset)
		}
	}
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
		wm, ok2 := w.upstreamMarkOf(m)
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
	last, seen := w.st.lastSeq[o.partition]
	if seen && o.seq <= last {
		w.m.duplicate.Inc()
		return // sent again by a replay of its input partition
	}
	w.st.lastSeq[o.partition] = o.seq
	n := 0
	err := unpack(m.Value, o.seq, func(c *schemas.CDR, seq int64) {
		if seen && seq <= last {
			// Taken before: the input partition replayed from its committed
			// offset and packed this record again, at other boundaries.
			w.m.duplicate.Inc()
			return
		}
		w.st.engine.ProcessTagged(c, m.Offset, &w.out)
		n++
	})
	if err != nil && !quiet {
		w.deadLetter(m, fmt.Errorf("after %d records: %w", n, err))
	}
	if !quiet {
		w.m.processed.Add(float64(n))
	}
	if wm, ok := w.upstreamMarkOf(m); ok {
		w.upstreamAt(o.partition, wm, false)
	}
}
