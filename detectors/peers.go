package detectors

import "math"

// peerTimes is how many recent calls to one callee a key remembers exactly;
// repeat counts (max_callee_calls) saturate at it.
const peerTimes = 8

// peerRec is what a busy key remembers of one callee: its recent call
// times, newest first, and which of those calls the callee refused
// (rejected, busy, or hung up within the short-call time).
type peerRec struct {
	t       [peerTimes]uint32
	refused uint8 // bit i: call t[i] was refused
	n       uint8
}

// insert records a call at ts, keeping the times sorted newest first and
// dropping the oldest when full.
func (p *peerRec) insert(ts uint32, refused bool) {
	i := int(p.n)
	if i == peerTimes {
		if ts <= p.t[peerTimes-1] {
			return // older than everything remembered
		}
		i = peerTimes - 1
	} else {
		p.n++
	}
	for ; i > 0 && p.t[i-1] < ts; i-- {
		p.t[i] = p.t[i-1]
		p.setRefused(i, p.refused&(1<<(i-1)) != 0)
	}
	p.t[i] = ts
	p.setRefused(i, refused)
}

func (p *peerRec) setRefused(i int, v bool) {
	if v {
		p.refused |= 1 << i
	} else {
		p.refused &^= 1 << i
	}
}

// count returns the calls (and refused calls) in [from, to].
func (p *peerRec) count(from, to uint32) (calls, refused int) {
	for i := range int(p.n) {
		if t := p.t[i]; t >= from && t <= to {
			calls++
			if p.refused&(1<<i) != 0 {
				refused++
			}
		}
	}
	return calls, refused
}

// sketchSlot is one slot of a peer estimate: the latest call to any peer
// hashing to it, and calls (refused calls) to it since it was last idle
// for longer than the longest window.
type sketchSlot struct {
	last    uint32
	calls   uint16
	refused uint16
}

// peerSet counts a key's distinct peers (callees, or caller IDs on a
// source): exactly up to a bound, then with a fixed-size linear-counting
// sketch whose slots keep last-seen times, so the count still slides.
//
// With repeat set (callees) it also remembers recent calls per peer, for
// repeat-dialling metrics; without (caller IDs) only the last-seen time.
type peerSet struct {
	repeat bool
	// Exact mode: each peer's last-seen time (!repeat) or its record
	// (repeat).
	last hashTable[uint32]
	recs hashTable[peerRec]
	// Sketch mode.
	slots []sketchSlot
	mask  uint64
}

// sketched reports whether the set has switched to its estimate.
func (s *peerSet) sketched() bool { return s.slots != nil }

// touch records a call to peer at ts. It returns the peer's previous
// last-seen time (0 if the peer is new or was last seen before stale) and
// where its repeat counts live: rec in exact mode with repeat, slot in
// sketch mode (both nil otherwise). The pointers are valid until the next
// call on s.
func (s *peerSet) touch(ts uint32, peer uint64, refused bool, stale uint32) (prev uint32, rec *peerRec, slot *sketchSlot) {
	if s.slots != nil {
		sl := &s.slots[mix64(peer)&s.mask]
		prev = sl.last
		if prev < stale {
			prev = 0
			sl.calls, sl.refused = 0, 0
		}
		sl.last = max(sl.last, ts)
		if sl.calls < math.MaxUint16 {
			sl.calls++
			if refused {
				sl.refused++
			}
		}
		return prev, nil, sl
	}
	if !s.repeat {
		v, found := s.last.upsert(peer)
		if found && *v >= stale {
			prev = *v
		}
		if !found || ts > *v {
			*v = ts
		}
		return prev, nil, nil
	}
	r, _ := s.recs.upsert(peer) // a new peer's record is empty
	if r.n > 0 {
		prev = r.t[0]
		if prev < stale {
			prev = 0
			*r = peerRec{}
		}
	}
	r.insert(ts, refused)
	return prev, r, nil
}

// size returns the number of tracked peers (exact mode) or slots.
func (s *peerSet) size() int {
	switch {
	case s.slots != nil:
		return len(s.slots)
	case s.repeat:
		return s.recs.len()
	}
	return s.last.len()
}

// purge forgets peers last seen before stale. It returns how many remain.
func (s *peerSet) purge(stale uint32) int {
	switch {
	case s.slots != nil:
	case s.repeat:
		s.recs.filter(func(_ uint64, r *peerRec) bool { return r.t[0] >= stale })
	default:
		s.last.filter(func(_ uint64, last *uint32) bool { return *last >= stale })
	}
	return s.size()
}

// each calls f with every tracked peer and its last-seen time (exact
// mode), in no particular order.
func (s *peerSet) each(f func(peer uint64, last uint32)) {
	if s.repeat {
		s.recs.each(func(k uint64, r *peerRec) { f(k, r.t[0]) })
		return
	}
	s.last.each(func(k uint64, last *uint32) { f(k, *last) })
}

// toSketch switches to the estimate, carrying every peer's last-seen time
// into its slot. It calls each(last) for every occupied slot so the caller
// can rebuild its per-bucket counts.
func (s *peerSet) toSketch(slots int, each func(last uint32)) {
	s.slots = make([]sketchSlot, slots)
	s.mask = uint64(slots - 1)
	add := func(k uint64, last uint32, calls, refused int) {
		sl := &s.slots[mix64(k)&s.mask]
		sl.last = max(sl.last, last)
		sl.calls += uint16(calls)
		sl.refused += uint16(refused)
	}
	if s.repeat {
		s.recs.each(func(k uint64, r *peerRec) {
			calls, refused := r.count(0, math.MaxUint32)
			add(k, r.t[0], calls, refused)
		})
	} else {
		s.last.each(func(k uint64, last *uint32) { add(k, *last, 1, 0) })
	}
	s.last, s.recs = hashTable[uint32]{}, hashTable[peerRec]{}
	for i := range s.slots {
		if s.slots[i].last != 0 {
			each(s.slots[i].last)
		}
	}
}

// estimate turns a count of occupied entries into a distinct count: exact
// in exact mode, linear counting in sketch mode.
func (s *peerSet) estimate(occupied uint32) int64 {
	if s.slots == nil {
		return int64(occupied)
	}
	m := float64(len(s.slots))
	o := float64(occupied)
	if o >= m {
		o = m - 0.5
	}
	return int64(math.Round(-m * math.Log(1-o/m)))
}
