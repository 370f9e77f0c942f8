package detectors

import (
	"math/rand/v2"
	"testing"

	"github.com/cdrguard/cdrguard/schemas"
)

func TestPackKey(t *testing.T) {
	f := func(s string, numeric bool) {
		t.Helper()
		k, num := packKey(s)
		if num != numeric {
			t.Fatalf("packKey(%q) numeric = %v, want %v", s, num, numeric)
		}
		if !numeric {
			if k&keyOpaque == 0 {
				t.Fatalf("packKey(%q) = %x: opaque bit not set", s, k)
			}
			return
		}
		back, ok := unpackKey(nil, k)
		if !ok || string(back) != s {
			t.Fatalf("unpackKey(packKey(%q)) = %q, %v", s, back, ok)
		}
	}
	f("+15550100001", true)
	f("15550100001", true)
	f("+0012", true)
	f("0", true)
	f("+12345678901234567", true)   // 17 digits
	f("+123456789012345678", false) // 18 digits: hashed
	f("5f4dcc3b5aa765d61d8327deb882cf99", false)
	f("tr-acme-01", false)
	f("", false)
	f("+", false)
	if a, _ := packKey("+0012"); a == func() uint64 { k, _ := packKey("+12"); return k }() {
		t.Fatal("+0012 and +12 pack to the same key")
	}
	if a, _ := packKey("+15550100001"); a == func() uint64 { k, _ := packKey("15550100001"); return k }() {
		t.Fatal("a number with and without + pack to the same key")
	}
}

func TestSeqNeighbour(t *testing.T) {
	k, _ := packKey("+15550100009")
	up, ok := seqNeighbour(k, 1)
	if s, _ := unpackKey(nil, up); !ok || string(s) != "+15550100010" {
		t.Fatalf("neighbour above = %q, %v", s, ok)
	}
	down, ok := seqNeighbour(k, -9)
	if s, _ := unpackKey(nil, down); !ok || string(s) != "+15550100000" {
		t.Fatalf("neighbour 9 below = %q, %v", s, ok)
	}
	zero, _ := packKey("+0")
	if _, ok := seqNeighbour(zero, -1); ok {
		t.Fatal("a neighbour below zero")
	}
	opaque, _ := packKey("abc")
	if _, ok := seqNeighbour(opaque, 1); ok {
		t.Fatal("a neighbour of an opaque key")
	}
}

func TestRingSlides(t *testing.T) {
	r := newRing(60, 5) // a 5-minute window of 1-minute buckets
	base := uint32(1_000_000 * 60)
	add := func(ts uint32) {
		if b := r.at(ts); b != nil {
			b.calls++
			r.calls++
		}
	}
	for m := range uint32(5) {
		add(base + m*60)
	}
	if r.calls != 5 {
		t.Fatalf("calls = %d, want 5", r.calls)
	}
	add(base + 5*60) // the first minute falls out
	if r.calls != 5 {
		t.Fatalf("after sliding one bucket: calls = %d, want 5", r.calls)
	}
	add(base + 60) // late but still inside the window
	if r.calls != 6 {
		t.Fatalf("late record inside the window: calls = %d, want 6", r.calls)
	}
	if b := r.at(base); b != nil {
		t.Fatal("a record older than the window got a bucket")
	}
	add(base + 100*60) // a jump clears everything
	if r.calls != 1 {
		t.Fatalf("after a jump: calls = %d, want 1", r.calls)
	}
	if got := r.callsAt(base + 110*60); got != 0 {
		t.Fatalf("callsAt after the window passed = %d, want 0", got)
	}
}

func TestPeerRecKeepsNewestInOrder(t *testing.T) {
	var p peerRec
	times := []uint32{50, 10, 30, 90, 20, 70, 60, 40, 80, 100}
	for i, ts := range times {
		p.insert(ts, i%2 == 0) // refused on even positions
	}
	want := []uint32{100, 90, 80, 70, 60, 50, 40, 30}
	for i, w := range want {
		if p.t[i] != w {
			t.Fatalf("t = %v, want newest first %v", p.t, want)
		}
	}
	// Refused: 50 (pos 0), 30 (2), 20 (4), 60 (6), 80 (8).
	calls, refused := p.count(30, 100)
	if calls != 8 || refused != 4 {
		t.Fatalf("count = %d calls, %d refused; want 8, 4", calls, refused)
	}
	calls, refused = p.count(55, 85)
	if calls != 3 || refused != 2 {
		t.Fatalf("count(55, 85) = %d, %d; want 3 (60, 70, 80), 2 (60, 80)", calls, refused)
	}
}

func TestSeqRunsInAnyOrder(t *testing.T) {
	base, _ := packKey("+15550100000")
	for _, seed := range []uint64{1, 2, 3} {
		var tab seqTable
		order := rand.New(rand.NewPCG(seed, 0)).Perm(40)
		best := 0
		for _, i := range order {
			k, _ := seqNeighbour(base, i)
			best = max(best, tab.add(k, 1000, 0))
		}
		if best != 40 {
			t.Fatalf("seed %d: longest run = %d, want 40", seed, best)
		}
	}
	// Two separate blocks do not merge.
	var tab seqTable
	best := 0
	for i := range 10 {
		k1, _ := seqNeighbour(base, i)
		k2, _ := seqNeighbour(base, 100+i)
		best = max(best, tab.add(k1, 1000, 0), tab.add(k2, 1000, 0))
	}
	if best != 10 {
		t.Fatalf("two blocks of 10: longest run = %d, want 10", best)
	}
	// A repeat is not a new number.
	k, _ := seqNeighbour(base, 5)
	if got := tab.add(k, 1001, 0); got != 0 {
		t.Fatalf("repeat call: run = %d, want 0 (no new number)", got)
	}
}

func TestPeerSetSwitchesToSketch(t *testing.T) {
	var s peerSet
	s.repeat = true
	for i := range uint64(1000) {
		s.touch(1000, i+1, false, 0)
	}
	occupied := 0
	s.toSketch(8192, func(uint32) { occupied++ })
	got := s.estimate(uint32(occupied))
	if got < 960 || got > 1040 {
		t.Fatalf("estimate of 1000 distinct peers = %d (occupied %d)", got, occupied)
	}
	if prev, _, _ := s.touch(2000, 1, true, 0); prev != 1000 {
		t.Fatalf("sketch keeps last-seen: prev = %d, want 1000", prev)
	}
}

func TestDivisorIsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	xs := []uint32{0, 1, 2, 3, 59, 60, 61, 1<<31 - 1, 1 << 31, 1<<32 - 2, 1<<32 - 1}
	for range 10000 {
		xs = append(xs, rng.Uint32())
	}
	ds := []uint32{1, 2, 3, 5, 7, 10, 12, 24, 30, 60, 300, 450, 1440, 3600, 86400, 604800, 1<<31 + 1, 1<<32 - 1}
	for range 100 {
		ds = append(ds, 1+rng.Uint32N(1<<20))
	}
	for _, d := range ds {
		v := newDivisor(d)
		for _, x := range xs {
			if q, r := v.div(x), v.mod(x); q != x/d || r != x%d {
				t.Fatalf("%d / %d = %d rem %d, want %d rem %d", x, d, q, r, x/d, x%d)
			}
		}
	}
}

func TestReorderPendingIsTheOldestTagHeld(t *testing.T) {
	r := newReorder()
	base := schemas.MinStartMS + 10*86400*1000
	put := func(sec int64, tag int64) {
		c := schemas.CDR{Caller: "+1", Callee: "+2", StartMS: base + sec*1000}
		if !r.put(&c, toTS(c.StartMS), tag, false) {
			t.Fatalf("put second %d refused", sec)
		}
	}
	// Arrival order (tags rise) differs from start order.
	put(30, 1)
	put(10, 2)
	put(20, 3)
	put(10, 4)
	if tag, ok := r.minTag(); !ok || tag != 1 {
		t.Fatalf("minTag = %d, %v; want 1", tag, ok)
	}
	r.release(toTS(base+21*1000), func(uint32, []held, []uint32) {}) // seconds 10 and 20
	if tag, _ := r.minTag(); tag != 1 {
		t.Fatalf("after releasing 10 and 20: minTag = %d, want 1", tag)
	}
	put(40, 5)
	r.release(toTS(base+31*1000), func(uint32, []held, []uint32) {}) // second 30
	if tag, _ := r.minTag(); tag != 5 {
		t.Fatalf("after releasing 30: minTag = %d, want 5", tag)
	}
	r.release(toTS(base+41*1000), func(uint32, []held, []uint32) {})
	if _, ok := r.minTag(); ok {
		t.Fatal("minTag with nothing held")
	}
}
