package detectors

import "math/rand/v2"

// hashSeed randomises the slot of every key in every hashTable of the
// process, so that no one can pick caller IDs that pile up in one probe
// sequence. Where a key sits never changes a result: nothing depends on
// the order in which a table's keys are visited.
var hashSeed = rand.Uint64()

// hashTable maps packed keys (never 0: see packKey) to values stored
// inline, with open addressing and linear probing. One probe sequence
// finds a key or the slot to insert it, and returns a pointer to its value,
// so updating a key costs one lookup and no write-back. Deletion shifts
// the rest of the probe sequence back, so there are no tombstones. The
// zero value is an empty table.
//
// It replaces Go maps on the engine's hot path: a Go map lookup and
// assignment per key and record were the engine's largest cost.
type hashTable[V any] struct {
	slots []hashEntry[V] // len is 0 or a power of two; empty slots are all zero
	n     int            // keys held
	shift uint8          // 64 - log2(len(slots))
}

type hashEntry[V any] struct {
	key uint64 // 0: empty
	val V
}

// hashMinSlots is the size of a table's first array.
const hashMinSlots = 8

// home returns the first slot of key's probe sequence.
func (t *hashTable[V]) home(key uint64) uintptr {
	return uintptr(mix64(key^hashSeed) >> t.shift)
}

// touch reads the first slot of key's probe sequence and returns its key,
// so that a lookup of key soon after finds the slot in cache. Reading the
// slots of several keys before looking any of them up lets their cache
// misses overlap (Go has no prefetch instruction; the caller keeps the
// result somewhere so the read is not optimised away).
func (t *hashTable[V]) touch(key uint64) uint64 {
	if len(t.slots) == 0 {
		return 0
	}
	return t.slots[t.home(key)].key
}

// len returns the number of keys held.
func (t *hashTable[V]) len() int { return t.n }

// upsert returns the value of key, inserting a zero value if key is not
// there (found is false then). The pointer is valid until the next upsert
// or delete on t.
func (t *hashTable[V]) upsert(key uint64) (v *V, found bool) {
	if len(t.slots) == 0 {
		t.resize(hashMinSlots)
	}
	mask := uintptr(len(t.slots) - 1)
	for i := t.home(key); ; i = (i + 1) & mask {
		e := &t.slots[i]
		if e.key == key {
			return &e.val, true
		}
		if e.key == 0 {
			// At most three quarters full, so probe sequences stay short.
			if 4*(t.n+1) > 3*len(t.slots) {
				t.resize(2 * len(t.slots))
				return t.upsert(key)
			}
			e.key = key
			t.n++
			return &e.val, false
		}
	}
}

// resize moves the keys into a new array of n slots (a power of two).
func (t *hashTable[V]) resize(n int) {
	old := t.slots
	t.slots = make([]hashEntry[V], n)
	t.shift = 64
	for s := n; s > 1; s >>= 1 {
		t.shift--
	}
	mask := uintptr(n - 1)
	for j := range old {
		e := &old[j]
		if e.key == 0 {
			continue
		}
		i := t.home(e.key)
		for t.slots[i].key != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = *e
	}
}

// deleteAt empties slot i, moving back the keys after it in its probe
// sequence that would no longer be found.
func (t *hashTable[V]) deleteAt(i uintptr) {
	mask := uintptr(len(t.slots) - 1)
	j := i
	for {
		j = (j + 1) & mask
		k := t.slots[j].key
		if k == 0 {
			break
		}
		// The key in j may move to the hole in i unless its home lies
		// cyclically in (i, j].
		if h := t.home(k); (j-h)&mask >= (j-i)&mask {
			t.slots[i] = t.slots[j]
			i = j
		}
	}
	t.slots[i] = hashEntry[V]{}
	t.n--
}

// filter calls keep for every key, deleting the keys for which it returns
// false. keep may modify the value. A key the deletions move back past
// the start of the array may be passed to keep a second time; callers
// make keep give the same answer again.
func (t *hashTable[V]) filter(keep func(key uint64, v *V) bool) {
	for i := uintptr(0); i < uintptr(len(t.slots)); {
		e := &t.slots[i]
		if e.key != 0 && !keep(e.key, &e.val) {
			t.deleteAt(i)
			continue // another key may have moved into i
		}
		i++
	}
}

// each calls f for every key and its value.
func (t *hashTable[V]) each(f func(key uint64, v *V)) {
	for i := range t.slots {
		if e := &t.slots[i]; e.key != 0 {
			f(e.key, &e.val)
		}
	}
}
