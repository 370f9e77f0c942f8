package detectors

// bucket holds one slice of a key's sliding window.
type bucket struct {
	idx      uint32 // bucket number (ts / bucket seconds); 0 = never used
	calls    uint32
	answered uint32
	short    uint32
	rejected uint32
	talk     uint32
	// newCallees / newCallers count the peers whose latest call falls in
	// this bucket, so a window's distinct count is the sum over its
	// buckets and a peer called again moves to its newer bucket.
	newCallees uint32
	newCallers uint32
	// Sources: calls (and short calls) from caller IDs used fewer than
	// peerTimes times in the window.
	lightCalls uint32
	lightShort uint32
	// Maxima observed at the calls of this bucket.
	maxCallee    uint16
	maxCalleeRej uint16
	maxSeq       uint16
}

// ring is one sliding window made of a ring of buckets. The window ends at
// the newest bucket (head) and spans len(b) buckets.
type ring struct {
	bs    uint32 // bucket length in seconds
	head  uint32 // newest bucket number
	calls uint32 // running sum of calls over the window, for volume gates
	b     []bucket
}

func newRing(bucketSeconds uint32, n int) ring {
	return ring{bs: bucketSeconds, b: make([]bucket, n)}
}

// at returns the bucket for event time ts, advancing the window when ts is
// newer than its head. It returns nil when ts is older than the window.
func (r *ring) at(ts uint32) *bucket {
	idx := ts/r.bs + 1 // +1 so that 0 means unused
	n := uint32(len(r.b))
	if idx > r.head {
		// Advance, clearing the buckets that fall out of the window.
		steps := idx - r.head
		if r.head == 0 || steps > n {
			steps = n
		}
		if steps > idx {
			steps = idx
		}
		for i := idx - steps + 1; i <= idx; i++ {
			b := &r.b[i%n]
			if b.idx != 0 {
				r.calls -= b.calls
			}
			*b = bucket{idx: i}
		}
		r.head = idx
	} else if idx+n <= r.head {
		return nil
	}
	b := &r.b[idx%n]
	if b.idx != idx {
		return nil // a slot never reached while advancing (cannot happen once started)
	}
	return b
}

// bucketOf returns the live bucket for event time ts without advancing, or
// nil when ts is outside the window.
func (r *ring) bucketOf(ts uint32) *bucket {
	idx := ts/r.bs + 1
	n := uint32(len(r.b))
	if idx > r.head || idx+n <= r.head {
		return nil
	}
	b := &r.b[idx%n]
	if b.idx != idx {
		return nil
	}
	return b
}

// start returns the event time (seconds) where the window begins.
func (r *ring) start() uint32 {
	n := uint32(len(r.b))
	if r.head < n {
		return 0
	}
	return (r.head - n) * r.bs
}

// end returns the event time (seconds) where the window ends.
func (r *ring) end() uint32 { return r.head * r.bs }

// callsAt returns the calls in the window as it would stand at event time
// now (which may be past the head: an idle key's window slides too).
func (r *ring) callsAt(now uint32) uint32 {
	idx := now/r.bs + 1
	n := uint32(len(r.b))
	var c uint32
	for i := range r.b {
		b := &r.b[i]
		if b.idx != 0 && b.idx <= idx && b.idx+n > idx {
			c += b.calls
		}
	}
	return c
}
