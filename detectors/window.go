package detectors

import "math/bits"

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
	perB  divisor // by bs: event time to bucket number
	perN  divisor // by len(b): bucket number to slot
}

func newRing(bucketSeconds uint32, n int) ring {
	return ring{bs: bucketSeconds, b: make([]bucket, n), perB: newDivisor(bucketSeconds), perN: newDivisor(uint32(n))}
}

// at returns the bucket for event time ts, advancing the window when ts is
// newer than its head. It returns nil when ts is older than the window.
func (r *ring) at(ts uint32) *bucket {
	idx := r.perB.div(ts) + 1 // +1 so that 0 means unused
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
		i := idx - steps + 1
		j := r.perN.mod(i)
		var b *bucket
		for ; i <= idx; i++ {
			b = &r.b[j]
			if b.idx != 0 {
				r.calls -= b.calls
			}
			*b = bucket{idx: i}
			if j++; j == n {
				j = 0
			}
		}
		r.head = idx
		return b // idx's bucket, cleared last
	} else if idx+n <= r.head {
		return nil
	}
	b := &r.b[r.perN.mod(idx)]
	if b.idx != idx {
		return nil // a slot never reached while advancing (cannot happen once started)
	}
	return b
}

// bucketOf returns the live bucket for event time ts without advancing, or
// nil when ts is outside the window.
func (r *ring) bucketOf(ts uint32) *bucket {
	idx := r.perB.div(ts) + 1
	n := uint32(len(r.b))
	if idx > r.head || idx+n <= r.head {
		return nil
	}
	b := &r.b[r.perN.mod(idx)]
	if b.idx != idx {
		return nil
	}
	return b
}

// divisor divides 32-bit numbers by a constant with multiplications, which
// are several times faster than the division instruction (Lemire, Kaser
// and Kurz, "Faster remainder by direct computation", 2019): with
// m = ceil(2^64/d), x/d is the high word of m*x and x%d the high word of
// (m*x mod 2^64)*d, exactly for every 32-bit x.
type divisor struct {
	m uint64 // ceil(2^64/d); 0 for d = 1
	d uint32
}

func newDivisor(d uint32) divisor {
	if d <= 1 {
		return divisor{d: 1}
	}
	return divisor{m: ^uint64(0)/uint64(d) + 1, d: d}
}

// div returns x/d.
func (v divisor) div(x uint32) uint32 {
	if v.m == 0 {
		return x
	}
	hi, _ := bits.Mul64(v.m, uint64(x))
	return uint32(hi)
}

// mod returns x%d.
func (v divisor) mod(x uint32) uint32 {
	if v.m == 0 {
		return 0
	}
	hi, _ := bits.Mul64(v.m*uint64(x), uint64(v.d))
	return uint32(hi)
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
	idx := r.perB.div(now) + 1
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
