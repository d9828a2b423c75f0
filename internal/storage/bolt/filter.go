package bolt

import (
	"hash/maphash"
	"math/bits"
	"sync/atomic"
)

// keyFilter is a Bloom filter of the keys the store may hold, so that a
// Get of a key that was never written answers without a bbolt read
// transaction: every write of a new secret first looks for its key, and a
// miss in bbolt costs a transaction's locks and a walk down the B+tree.
//
// It is blocked: a key's filterProbes bits all lie in one 64-bit word, so
// a lookup is one hash and one load. With filterBitsPerKey bits per key at
// its capacity, about one lookup in 180 of an absent key still reaches
// bbolt (0.5–0.6 % measured; a standard filter of as many bits would
// give 0.24 %, at the cost of four loads), and fewer right after a
// rebuild, at half its capacity. A key is never removed (a deleted key only costs such a lookup);
// the writer builds a new filter from the store's keys once as many keys
// were added as the filter was made for.
//
// Keys are added before the writes that hold them become visible, and
// bits are never cleared, so a filter never answers "absent" for a key a
// Get could otherwise find.
type keyFilter struct {
	words []atomic.Uint64
	seed  maphash.Seed
	// capacity is the number of keys the filter was made for; added
	// counts the adds that set a bit, about the distinct keys added (a
	// key written again, or one whose bits happen to be set already, is
	// not counted), so that rewriting the same keys never fills it.
	capacity int
	added    atomic.Int64
}

const (
	filterBitsPerKey = 16
	filterProbes     = 4
	// minFilterKeys is the smallest capacity: 64 Ki keys, 128 KiB.
	minFilterKeys = 64 << 10
)

// newKeyFilter returns an empty filter for about capacity keys that
// hashes them with seed.
func newKeyFilter(capacity int, seed maphash.Seed) *keyFilter {
	capacity = max(capacity, minFilterKeys)
	n := capacity * filterBitsPerKey / 64
	n = 1 << bits.Len(uint(n-1)) // a power of two, for the index mask
	return &keyFilter{words: make([]atomic.Uint64, n), seed: seed, capacity: capacity}
}

// probe returns the word of the key with hash h and the key's bits in it.
func (f *keyFilter) probe(h uint64) (*atomic.Uint64, uint64) {
	w := &f.words[(h>>32)&uint64(len(f.words)-1)]
	var m uint64
	for i := range filterProbes {
		m |= 1 << ((h >> (6 * i)) & 63)
	}
	return w, m
}

// add records key. It may run concurrently with lookups and other adds.
func (f *keyFilter) add(key string) { f.addHash(maphash.String(f.seed, key)) }

// addHash records the key whose hash with the filter's seed is h.
func (f *keyFilter) addHash(h uint64) {
	w, m := f.probe(h)
	if w.Load()&m != m {
		w.Or(m)
		f.added.Add(1)
	}
}

// mayContain reports whether key may have been added; false is certain.
func (f *keyFilter) mayContain(key string) bool {
	w, m := f.probe(maphash.String(f.seed, key))
	return w.Load()&m == m
}

// full reports that about as many keys were added as the filter was made
// for: from there on it answers "may contain" ever more often.
func (f *keyFilter) full() bool {
	return f.added.Load() > int64(f.capacity)
}
