package detectors

import (
	"cmp"
	"slices"
	"strings"
	"unsafe"

	"github.com/cdrguard/cdrguard/schemas"
)

// The engine holds every record until the watermark passes its start time
// and then runs the held records in start-time order. Arrival order within
// the allowed lateness therefore never changes a result: the engine sees
// the same sequence however collectors batched and shuffled the records,
// and two instances, a replay and a restart all raise the same alerts. The
// price is that an alert leaves the engine about one lateness after the
// record that raised it (its detected_at is still that record's start).

// held is a record waiting for the watermark: the fields the detectors
// read, with strings copied into its second's arena.
type held struct {
	c     schemas.CDR
	tag   int64
	quiet bool
}

// second holds the records that started in one second of event time.
type second struct {
	sec   uint32 // the second (event time); valid while recs is not empty
	recs  []held
	arena []byte
	// minTag is the smallest tag held here.
	minTag int64
}

// reorder is a calendar queue of seconds covering [watermark, latest
// start]: a ring indexed by second.
type reorder struct {
	slots    []second
	released uint32 // seconds before this one have been released
	n        int    // records held
}

func newReorder(lateness uint32) *reorder {
	return &reorder{slots: make([]second, lateness+2)}
}

// put holds c (copying what the engine needs). It returns false when c's
// second is not in the queue's range (the caller runs c at once).
func (r *reorder) put(c *schemas.CDR, tag int64, quiet bool) bool {
	sec := toTS(c.StartMS)
	s := &r.slots[sec%uint32(len(r.slots))]
	if len(s.recs) > 0 && s.sec != sec || sec < r.released {
		return false
	}
	if len(s.recs) == 0 {
		s.sec = sec
		s.arena = s.arena[:0]
		s.minTag = tag
	}
	s.minTag = min(s.minTag, tag)
	h := held{tag: tag, quiet: quiet, c: schemas.CDR{
		StartMS: c.StartMS, AnswerMS: c.AnswerMS, EndMS: c.EndMS, Disposition: c.Disposition,
		CauseCode: c.CauseCode, Attestation: c.Attestation,
	}}
	h.c.SetDuration(c.DurationS)
	h.c.Caller = s.keep(c.Caller)
	h.c.Callee = s.keep(c.Callee)
	h.c.Trunk = s.keep(c.Trunk)
	h.c.IMEI = s.keep(c.IMEI)
	h.c.IMSI = s.keep(c.IMSI)
	h.c.SourceIP = s.keep(c.SourceIP)
	s.recs = append(s.recs, h)
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
		s.arena = make([]byte, 0, max(2*cap(s.arena), 4096, len(v)))
	}
	off := len(s.arena)
	s.arena = append(s.arena, v...)
	return unsafe.String(&s.arena[off], len(v))
}

// release runs, in start-time order, every held record that started
// before the second upto.
func (r *reorder) release(upto uint32, run func(h *held)) {
	if upto <= r.released {
		return
	}
	from := r.released
	if upto-from > uint32(len(r.slots)) {
		// A jump: visit the held seconds in order instead of every second.
		var secs []uint32
		for i := range r.slots {
			if s := &r.slots[i]; len(s.recs) > 0 && s.sec < upto {
				secs = append(secs, s.sec)
			}
		}
		slices.Sort(secs)
		for _, sec := range secs {
			r.releaseSecond(&r.slots[sec%uint32(len(r.slots))], run)
		}
	} else {
		for sec := from; sec < upto; sec++ {
			if s := &r.slots[sec%uint32(len(r.slots))]; len(s.recs) > 0 && s.sec == sec {
				r.releaseSecond(s, run)
			}
		}
	}
	r.released = upto
}

func (r *reorder) releaseSecond(s *second, run func(h *held)) {
	slices.SortFunc(s.recs, compareHeld)
	for i := range s.recs {
		run(&s.recs[i])
	}
	r.n -= len(s.recs)
	clear(s.recs) // drop the string headers
	s.recs = s.recs[:0]
}

// compareHeld orders records by start time, then by their content, so that
// even records starting in the same millisecond run in one fixed order.
func compareHeld(a, b held) int {
	x, y := &a.c, &b.c
	return cmp.Or(
		cmp.Compare(x.StartMS, y.StartMS),
		strings.Compare(x.Caller, y.Caller),
		strings.Compare(x.Callee, y.Callee),
		cmp.Compare(x.EndMS, y.EndMS),
		cmp.Compare(x.DurationS, y.DurationS),
		cmp.Compare(x.Disposition, y.Disposition),
		strings.Compare(x.Trunk, y.Trunk),
		strings.Compare(x.IMEI, y.IMEI),
		strings.Compare(x.IMSI, y.IMSI),
		strings.Compare(x.SourceIP, y.SourceIP),
	)
}

// minTag returns the smallest tag of the records held, if any.
func (r *reorder) minTag() (int64, bool) {
	if r.n == 0 {
		return 0, false
	}
	first := true
	var m int64
	for i := range r.slots {
		if s := &r.slots[i]; len(s.recs) > 0 && (first || s.minTag < m) {
			m, first = s.minTag, false
		}
	}
	return m, true
}
