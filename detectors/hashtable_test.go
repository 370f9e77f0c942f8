package detectors

import (
	"math/rand/v2"
	"testing"
)

// TestHashTableMatchesMap runs random upserts, updates and filters on a
// hashTable and a Go map side by side.
func TestHashTableMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tab hashTable[uint32]
	ref := map[uint64]uint32{}
	for round := range 200 {
		// Few distinct keys, so upserts hit existing ones and filters
		// leave long probe sequences behind.
		for range 1 + rng.IntN(500) {
			k := 1 + rng.Uint64N(3000)
			if round%2 == 1 {
				k |= 1 << 63
			}
			v, found := tab.upsert(k)
			want, ok := ref[k]
			if found != ok || *v != want {
				t.Fatalf("round %d: upsert(%d) = %d, %v; want %d, %v", round, k, *v, found, want, ok)
			}
			*v += uint32(k)
			ref[k] += uint32(k)
		}
		cut := uint32(rng.Uint64N(1 << 12))
		keep := func(k uint64, v uint32) bool { return (uint32(k)^v)%4096 >= cut }
		visits := map[uint64]int{}
		tab.filter(func(k uint64, v *uint32) bool {
			visits[k]++
			return keep(k, *v)
		})
		for k, v := range ref {
			if visits[k] == 0 {
				t.Fatalf("round %d: filter skipped key %d", round, k)
			}
			if !keep(k, v) {
				delete(ref, k)
			}
		}
		if tab.len() != len(ref) {
			t.Fatalf("round %d: %d keys, want %d", round, tab.len(), len(ref))
		}
		n := 0
		tab.each(func(k uint64, v *uint32) {
			n++
			if want, ok := ref[k]; !ok || *v != want {
				t.Fatalf("round %d: key %d = %d, want %d (present %v)", round, k, *v, want, ok)
			}
		})
		if n != len(ref) {
			t.Fatalf("round %d: each visited %d keys, want %d", round, n, len(ref))
		}
	}
}

// TestHashTableAllocs checks that updating keys a table holds allocates
// nothing.
func TestHashTableAllocs(t *testing.T) {
	var tab hashTable[light]
	for k := range uint64(1000) {
		tab.upsert(k + 1)
	}
	k := uint64(0)
	if n := testing.AllocsPerRun(1000, func() {
		l, _ := tab.upsert(k%1000 + 1)
		l.ts++
		k++
	}); n != 0 {
		t.Fatalf("%v allocations per update, want 0", n)
	}
}
