package stream

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"
)

// Watermarks. An input partition's engine releases records in end-time
// order (start-time order with detect's StartOrder) once its watermark
// passes them; the partition tells every source partition its
// watermarks on start and on end times (after the packs of the records
// they cover), and a source engine advances to the least watermark — on
// its order key — of the input partitions that are not idle, so the
// order in which input partitions' records interleave never changes a
// source result. An input partition that has received nothing for
// IdleRelease and is caught up releases everything it holds and reports
// itself idle, so that it does not hold the source engines back.

type upstreamMark struct {
	wm   int64
	idle bool
}

// upstream is what a source partition knows of the input partitions'
// watermarks. Not goroutine-safe: one worker's.
type upstream struct {
	partitions int
	marks      map[int]upstreamMark
}

func newUpstream(partitions int) *upstream {
	return &upstream{partitions: partitions, marks: map[int]upstreamMark{}}
}

// at records that input partition src reported watermark wm (Unix ms)
// and whether it is idle, and returns the watermark the source engine
// may advance to: the least watermark of the input partitions that are
// not idle (the greatest if all are idle). A partition's watermark never
// goes back. ok is false until every input partition has reported.
func (u *upstream) at(src int, wm int64, idle bool) (least int64, ok bool) {
	m := u.marks[src]
	m.wm, m.idle = max(m.wm, wm), idle
	u.marks[src] = m
	if len(u.marks) < u.partitions {
		return 0, false
	}
	least, most := int64(-1), int64(0)
	for _, m := range u.marks {
		most = max(most, m.wm)
		if !m.idle && (least < 0 || m.wm < least) {
			least = m.wm
		}
	}
	if least < 0 {
		least = most // every input partition is idle
	}
	return least, true
}

// upstreamMarkOf reads the watermark a source engine advances to from an
// input partition's message: the end watermark unless the engines run in
// start order; from a sender that has no end watermark (an older
// version), its start watermark, which is also an end watermark.
func (w *worker) upstreamMarkOf(m *kafka.Message) (int64, bool) {
	if !w.j.cfg.Detect.StartOrder {
		if wm, ok := headerInt(m, hdrEndWatermark); ok {
			return wm, true
		}
	}
	return headerInt(m, hdrWatermark)
}

// upstreamAt advances the source engine with an input partition's report.
func (w *worker) upstreamAt(src int, wm int64, idle bool) {
	if least, ok := w.st.upstream.at(src, wm, idle); ok {
		w.st.engine.Advance(least, &w.out)
	}
}

// idleCheck releases everything an input engine holds once its partition
// has been quiet for the idle-release time.
func (w *worker) idleCheck(ctx context.Context, now time.Time) {
	if w.j.cfg.IdleRelease <= 0 || w.st.idle || now.Sub(w.st.lastRecord) < w.j.cfg.IdleRelease {
		return
	}
	// Idle means caught up: a slow consumer with records waiting in the
	// partition is not idle, and releasing early would make its records
	// late for the source partitions.
	end, err := w.j.broker.EndOffset(ctx, w.st.topic, w.st.partition)
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
// every record that started (ended) before start (end) has been
// re-keyed, except late ones.
func (w *worker) watermark() marks {
	e := w.st.engine
	wm := marks{start: e.Released(), end: e.EndReleased()}
	if w.st.idle {
		wm.start = max(wm.start, e.Latest()+1)
		wm.end = max(wm.end, e.LatestEnd()+1)
	}
	return wm
}

// watermarkSender tells the source partitions when this input
// partition's watermarks or idleness changed, at most once a second, and
// once at start so that source workers of a new generation learn them.
type watermarkSender struct {
	last time.Time
	wm   marks
	idle bool
	sent bool
}

func (s *watermarkSender) tick(w *worker, now time.Time) {
	if w.packs == nil || now.Sub(s.last) < time.Second {
		return
	}
	wm := w.watermark()
	if s.sent && wm == s.wm && w.st.idle == s.idle {
		return
	}
	w.cur.msgs = w.packs.flush(w.cur.msgs, wm)
	w.cur.msgs = watermarkMessages(w.cur.msgs, w.j.cfg.SourcesTopic, w.j.sourcesPartitions, w.st.partition, wm, w.st.idle, now)
	w.m.watermark.Set(float64(wm.end) / 1000)
	s.last, s.wm, s.idle, s.sent = now, wm, w.st.idle, true
}
