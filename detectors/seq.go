package detectors

// seqSlots is the size of a key's table of recently called numbers used to
// find runs of consecutive numbers.
const seqSlots = 64

type seqEntry struct {
	key uint64 // packed numeric callee; 0 = empty
	run uint32 // at a run's ends: the run's length
	ts  uint32 // last call
}

// seqTable finds runs of consecutive callee numbers (war dialling) in any
// arrival order: it keeps run lengths at both ends of each run, the way
// the classic longest-consecutive-sequence algorithm merges intervals. It
// is a direct-mapped cache of recent numbers indexed by the number's value,
// so a block of consecutive numbers never collides with itself; older
// numbers are overwritten, which can only split a run — a bounded,
// conservative error.
type seqTable struct {
	e [seqSlots]seqEntry
}

// slot maps a number to its slot by its value, so that up to seqSlots
// consecutive numbers never collide.
func (t *seqTable) slot(k uint64) *seqEntry { return &t.e[k&keyValMask%seqSlots] }

// get returns the entry of k if present and last seen at or after stale.
func (t *seqTable) get(k uint64, stale uint32) *seqEntry {
	e := t.slot(k)
	if e.key != k || e.ts < stale {
		return nil
	}
	return e
}

// add records a call to numeric callee k at ts and returns the length of
// the run of consecutive numbers k now belongs to, or 0 when k was called
// before (a repeat adds no number to any run).
func (t *seqTable) add(k uint64, ts, stale uint32) int {
	if e := t.get(k, stale); e != nil {
		if ts > e.ts {
			e.ts = ts
		}
		return 0 // a repeat: no new number, no new run
	}
	var left, right uint32
	if lk, ok := seqNeighbour(k, -1); ok {
		if e := t.get(lk, stale); e != nil {
			left = e.run
		}
	}
	if rk, ok := seqNeighbour(k, +1); ok {
		if e := t.get(rk, stale); e != nil {
			right = e.run
		}
	}
	total := left + right + 1
	*t.slot(k) = seqEntry{key: k, run: total, ts: ts}
	if left > 0 {
		if lk, ok := seqNeighbour(k, -int(left)); ok {
			if e := t.get(lk, stale); e != nil {
				e.run = total
			}
		}
	}
	if right > 0 {
		if rk, ok := seqNeighbour(k, int(right)); ok {
			if e := t.get(rk, stale); e != nil {
				e.run = total
			}
		}
	}
	return int(total)
}
