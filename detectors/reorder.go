package detectors

import (
	"cmp"
	"slices"
	"strings"
	"unsafe"

	"github.com/cdrguard/cdrguard/schemas"
)

// The engine holds every record until the watermark passes its order key
// and then runs the held records in key order (by start within one second
// of key). The key is the record's end time, or its start time with
// Config.StartOrder. Arrival order within the allowed lateness of the
// key therefore never changes a result: the engine sees the same sequence
// however collectors batched and shuffled the records, and two instances,
// a replay and a restart all raise the same alerts. With end order an
// alert leaves the engine about the end lateness after the end of the
// record that raised it; with start order about one lateness after its
// start.

// record is a CDR as the detectors read it.
type record struct {
	startMS     int64
	durationS   int32
	disposition schemas.Disposition
	caller      string
	callee      string
	trunk       string
	imei        string
	imsi        string
	sourceIP    string
}

// held is a record waiting for the watermark, with its strings copied into
// its second's arena, and what orders it among the records of its
// second.
type held struct {
	r     record
	endMS int64
	tag   int64
	quiet bool
}

// second holds the records whose order key is one second of event time.
type second struct {
	sec uint32
	// minStart is the earliest start held here (seconds).
	minStart uint32
	recs     []held
	order    []uint32 // indexes into recs, in start-time order once sorted
	arena    []byte
	// minTag is the smallest tag held here.
	minTag int64
}

// reorder is a calendar queue: the held records by second of start time,
// and a min-heap of the seconds that hold any. With the engine's own
// watermark the seconds held span the lateness (and, apart, the seconds
// of outliers far ahead, see Config.WatermarkQuorum); with an external one
// (a source engine behind several input partitions) they span however far
// the fastest input is ahead of the slowest.
type reorder struct {
	secs     map[uint32]*second
	heap     []uint32 // min-heap of the keys of secs
	free     []*second
	released uint32 // seconds before this one have been released
	n        int    // records held
	// arrivals lists held seconds in the order their first record
	// arrived. Tags (offsets) rise with arrival, so the first entry still
	// held has the smallest tag; released entries are dropped lazily.
	arrivals  []uint32
	lastTag   int64
	unordered bool // a tag went down: fall back to scanning
}

func newReorder() *reorder {
	return &reorder{secs: make(map[uint32]*second)}
}

// put holds c under the order key sec (copying what the engine needs). It
// returns false when sec is before the released point (the caller runs
// it at once: late).
func (r *reorder) put(c *schemas.CDR, sec uint32, tag int64, quiet bool) bool {
	if sec < r.released {
		return false
	}
	s := r.secs[sec]
	if s == nil {
		if n := len(r.free); n > 0 {
			s = r.free[n-1]
			r.free = r.free[:n-1]
		} else {
			s = &second{}
		}
		s.sec, s.arena, s.minTag, s.minStart = sec, s.arena[:0], tag, ^uint32(0)
		r.arrivals = append(r.arrivals, sec)
		r.secs[sec] = s
		r.push(sec)
	}
	s.minTag = min(s.minTag, tag)
	s.minStart = min(s.minStart, toTS(c.StartMS))
	if tag < r.lastTag {
		r.unordered = true
	}
	r.lastTag = tag
	s.recs = append(s.recs, held{
		r: record{startMS: c.StartMS, durationS: c.DurationS, disposition: c.Disposition,
			caller: s.keep(c.Caller), callee: s.keep(c.Callee), trunk: s.keep(c.Trunk),
			imei: s.keep(c.IMEI), imsi: s.keep(c.IMSI), sourceIP: s.keep(c.SourceIP)},
		endMS: c.EndMS, tag: tag, quiet: quiet,
	})
	r.n++
	return true
}

// keep copies v into the arena. The returned string points into the
// arena's current array; growing the arena moves later strings to a new
// array but leaves earlier ones valid, since they keep the old one alive.
func (s *second) keep(v string) string {
	if v == "" {
		return ""
	}
	if cap(s.arena)-len(s.arena) < len(v) {
		s.arena = make([]byte, 0, max(2*cap(s.arena), 1024, len(v)))
	}
	off := len(s.arena)
	s.arena = append(s.arena, v...)
	return unsafe.String(&s.arena[off], len(v))
}

// release runs, in key order, every held record whose key is before the
// second upto: run gets the records of one second of key at a time, and
// the order in which to run them.
func (r *reorder) release(upto uint32, run func(sec uint32, recs []held, order []uint32)) {
	if upto <= r.released {
		return
	}
	for len(r.heap) > 0 && r.heap[0] < upto {
		sec := r.pop()
		s := r.secs[sec]
		delete(r.secs, sec)
		s.sort()
		run(sec, s.recs, s.order)
		r.n -= len(s.recs)
		clear(s.recs) // drop the string headers
		s.recs = s.recs[:0]
		if cap(s.arena) <= 64<<10 {
			r.free = append(r.free, s)
		}
	}
	r.released = upto
	if len(r.arrivals) > 2*len(r.secs)+1024 {
		// Drop released seconds so the list stays proportional to
		// what is held (Pending may not be called at all).
		kept := r.arrivals[:0]
		for _, sec := range r.arrivals {
			if _, ok := r.secs[sec]; ok {
				kept = append(kept, sec)
			}
		}
		r.arrivals = kept
	}
}

// minStart returns the earliest start of the records held (seconds), or
// the largest time when none is held. It visits every held second.
func (r *reorder) minStart() uint32 {
	m := ^uint32(0)
	for _, s := range r.secs {
		m = min(m, s.minStart)
	}
	return m
}

// sort puts the indexes of s's records in start-time order. It sorts
// indexes rather than the records themselves, with the same algorithm, so
// the order is the one sorting the records would give.
func (s *second) sort() {
	s.order = s.order[:0]
	for i := range s.recs {
		s.order = append(s.order, uint32(i))
	}
	recs := s.recs
	slices.SortFunc(s.order, func(a, b uint32) int { return compareHeld(&recs[a], &recs[b]) })
}

func (r *reorder) push(sec uint32) {
	r.heap = append(r.heap, sec)
	i := len(r.heap) - 1
	for i > 0 {
		parent := (i - 1) / 2
		if r.heap[parent] <= r.heap[i] {
			break
		}
		r.heap[parent], r.heap[i] = r.heap[i], r.heap[parent]
		i = parent
	}
}

func (r *reorder) pop() uint32 {
	h := r.heap
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h = h[:last]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < len(h) && h[l] < h[m] {
			m = l
		}
		if l+1 < len(h) && h[l+1] < h[m] {
			m = l + 1
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	r.heap = h
	return top
}

// compareHeld orders records by start time, then by their content, so that
// even records starting in the same millisecond run in one fixed order.
func compareHeld(a, b *held) int {
	if a.r.startMS != b.r.startMS {
		return cmp.Compare(a.r.startMS, b.r.startMS)
	}
	x, y := &a.r, &b.r
	return cmp.Or(
		strings.Compare(x.caller, y.caller),
		strings.Compare(x.callee, y.callee),
		cmp.Compare(a.endMS, b.endMS),
		cmp.Compare(x.durationS, y.durationS),
		cmp.Compare(x.disposition, y.disposition),
		strings.Compare(x.trunk, y.trunk),
		strings.Compare(x.imei, y.imei),
		strings.Compare(x.imsi, y.imsi),
		strings.Compare(x.sourceIP, y.sourceIP),
	)
}

// minTag returns the smallest tag of the records held, if any. With tags
// that never go down (offsets) it is amortised O(1).
func (r *reorder) minTag() (int64, bool) {
	if r.n == 0 {
		r.arrivals = r.arrivals[:0]
		return 0, false
	}
	if !r.unordered {
		for len(r.arrivals) > 0 {
			if s, ok := r.secs[r.arrivals[0]]; ok {
				return s.minTag, true
			}
			r.arrivals = r.arrivals[1:]
		}
	}
	first := true
	var m int64
	for _, s := range r.secs {
		if first || s.minTag < m {
			m, first = s.minTag, false
		}
	}
	return m, true
}
