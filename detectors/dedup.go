package detectors

import (
	"hash/maphash"

	"github.com/cdrguard/cdrguard/schemas"
)

// Mediation systems deliver some CDRs twice: a record re-sent minutes
// later, or a whole batch re-sent after a collector restart, tens of
// minutes later. The engine remembers a fingerprint of every record it
// took for at least Config.DedupHorizon of its clock and drops a record
// whose fingerprint it remembers before the record reaches any window or
// aggregate (Stats.Duplicates counts them).
//
// The fingerprint is a 64-bit hash of the caller and the call_id, or, for
// a record without one, of the caller, callee, start time and calling
// sources. Keying call IDs by caller keeps two switches that reuse call
// IDs apart; a re-sent copy has the same caller. Two different calls share
// a fingerprint with probability about n/2⁶⁴ per record for n remembered,
// which the engine accepts.
//
// Fingerprints live in two generations of Config.DedupHorizon of the
// engine's clock each, aligned to the epoch: the current one and the
// previous one, so a record is remembered for between one and two
// horizons. At 8 bytes a slot in tables at most three quarters full, that
// is 11 to 21 bytes per record remembered: a partition taking a million
// records an hour holds about 20–40 MB with the default horizon (70 min).
// Generations are aligned to event time, not to when an engine started,
// so an engine rebuilt from records a longest window back remembers what
// the engine it replaces remembered.

// fpSeed hashes fingerprints; a process-wide random seed is enough, since
// fingerprints never leave the process.
var fpSeed = maphash.MakeSeed()

// fingerprint returns the fingerprint of c (never 0).
func fingerprint(c *schemas.CDR) uint64 {
	var h uint64
	if c.CallID != "" {
		h = mix64(maphash.String(fpSeed, c.CallID) ^ mix64(maphash.String(fpSeed, c.Caller)))
	} else {
		h = mix64(maphash.String(fpSeed, c.Caller) ^ uint64(c.StartMS))
		for _, s := range [...]string{c.Callee, c.Trunk, c.IMEI, c.IMSI, c.SourceIP} {
			h = mix64(h ^ maphash.String(fpSeed, s))
		}
	}
	if h == 0 {
		h = 1
	}
	return h
}

// dedup is the engine's memory of recent fingerprints.
type dedup struct {
	period uint32 // generation length, seconds of the engine's clock
	gen    uint32 // generation of cur: clock/period + 1; 0 before the first record
	cur    fpSet
	prev   fpSet
}

// seen reports whether fp was taken before within the horizon, and
// remembers it. clock is the engine's clock (event seconds); until it
// starts (0, before a quorum of records), the first record's own time ts
// places the generation.
func (d *dedup) seen(fp uint64, clock, ts uint32) bool {
	if d.gen == 0 {
		d.gen = ts/d.period + 1
	}
	if g := clock/d.period + 1; g > d.gen {
		if g == d.gen+1 {
			d.prev, d.cur = d.cur, d.prev
			d.cur.reset(d.prev.n)
		} else {
			d.prev.reset(0)
			d.cur.reset(0)
		}
		d.gen = g
	}
	return d.prev.has(fp) || !d.cur.add(fp)
}

// size returns how many fingerprints are remembered and the bytes their
// tables hold.
func (d *dedup) size() (n int, bytes int) {
	return d.cur.n + d.prev.n, 8 * (len(d.cur.slots) + len(d.prev.slots))
}

// fpSet is a set of non-zero fingerprints: open addressing with linear
// probing, no deletion (a generation is dropped whole).
type fpSet struct {
	slots []uint64 // len 0 or a power of two; 0 is empty
	n     int
	shift uint8
}

func (s *fpSet) home(fp uint64) uintptr { return uintptr(fp >> s.shift) }

// has reports whether fp is in s.
func (s *fpSet) has(fp uint64) bool {
	if s.n == 0 {
		return false
	}
	mask := uintptr(len(s.slots) - 1)
	for i := s.home(fp); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case fp:
			return true
		case 0:
			return false
		}
	}
}

// add puts fp in s; it reports false when fp was there already.
func (s *fpSet) add(fp uint64) bool {
	if 4*(s.n+1) > 3*len(s.slots) {
		s.grow(max(2*len(s.slots), hashMinSlots))
	}
	mask := uintptr(len(s.slots) - 1)
	for i := s.home(fp); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case fp:
			return false
		case 0:
			s.slots[i] = fp
			s.n++
			return true
		}
	}
}

// grow moves the fingerprints into an array of n slots (a power of two).
func (s *fpSet) grow(n int) {
	old := s.slots
	s.alloc(n)
	mask := uintptr(n - 1)
	for _, fp := range old {
		if fp == 0 {
			continue
		}
		i := s.home(fp)
		for s.slots[i] != 0 {
			i = (i + 1) & mask
		}
		s.slots[i] = fp
	}
}

func (s *fpSet) alloc(n int) {
	s.slots = make([]uint64, n)
	s.shift = 64
	for m := n; m > 1; m >>= 1 {
		s.shift--
	}
}

// reset empties s for a generation expected to hold about like
// fingerprints: it keeps its array unless that is more than four times
// larger than like needs, so a partition whose rate fell gives memory
// back.
func (s *fpSet) reset(like int) {
	s.n = 0
	need := hashMinSlots
	for 3*need < 4*like {
		need *= 2
	}
	if len(s.slots) > 4*need {
		s.alloc(need)
		return
	}
	clear(s.slots)
}
