package lease

import (
	"hash/maphash"
	"iter"
)

// table is what the scheduler keeps in memory of the leases it knows:
// for each, its id, when to act on it and two flags. Everything else
// lives in storage and is re-read when the lease is acted on.
//
// It holds no pointers, so that the garbage collector never scans it: a
// server holding a million leases (a token each for many short-lived
// workloads) keeps them here without making every collection cycle,
// and so every allocation of every request, pay for them. The ids live
// in one byte arena; the entries in one slice of slots, reused when
// freed; the index maps an id's hash to the first of the slots with that
// hash, the others chained through the slots; the heap of slot numbers
// orders the scheduled ones by due time. Once most slots are free (a
// burst of leases has drained), the slots, index and arena are rebuilt
// at the size of what is left.
//
// A table is not safe for concurrent use; the manager's mu guards it.
type table struct {
	seed maphash.Seed
	// mask is applied to every hash: all ones, except in tests, which
	// make ids collide with it.
	mask uint64
	// minShrink is the number of slots under which free ones are not
	// worth giving back: defaultMinShrink, except in tests.
	minShrink int
	slots     []slot
	free      []int32          // unused slots
	index     map[uint64]int32 // hash of an id → its first slot
	heap      []int32          // scheduled slots, a min-heap by due
	arena     []byte           // the ids of the slots in use, and garbage
	// garbage counts the arena's bytes that no slot uses any more; the
	// arena is compacted when they are most of it.
	garbage int
	known   int    // slots in use
	adds    uint64 // ids added so far: the next slot's generation
}

// slot is one known lease, or a free slot (used is false).
type slot struct {
	due  int64 // when to act, in Unix nanoseconds; meaningful in the heap
	off  int   // the id is arena[off:off+size]
	size int32
	hidx int32 // index in the heap, -1 when not in it
	next int32 // next slot with the same hash, -1 for none
	// gen is unique to each id added, so that a worker holding a
	// ticket can tell its lease from a new one that reused the slot.
	gen         uint64
	used        bool
	active      bool // popped and handed to a worker
	irrevocable bool
}

// ticket is a due lease handed to a revocation worker: its id and what
// the table knew of it, and the slot it came from.
type ticket struct {
	id          string
	due         int64
	irrevocable bool
	slot        int32
	gen         uint64
}

// minCompact is the arena size under which garbage is not worth
// compacting away; defaultMinShrink is table.minShrink.
const (
	minCompact       = 64 << 10
	defaultMinShrink = 4096
)

func newTable() table {
	return table{seed: maphash.MakeSeed(), mask: ^uint64(0), minShrink: defaultMinShrink, index: map[uint64]int32{}}
}

func (t *table) hashOf(id string) uint64 { return maphash.String(t.seed, id) & t.mask }

// hashAt is hashOf the id of slot i, without copying it.
func (t *table) hashAt(i int32) uint64 { return maphash.Bytes(t.seed, t.idBytes(i)) & t.mask }

func (t *table) idBytes(i int32) []byte {
	s := &t.slots[i]
	return t.arena[s.off : s.off+int(s.size)]
}

// lookup returns the slot of id, or -1.
func (t *table) lookup(id string) int32 {
	i, ok := t.index[t.hashOf(id)]
	if !ok {
		return -1
	}
	for ; i >= 0; i = t.slots[i].next {
		if t.idIs(i, id) {
			return i
		}
	}
	return -1
}

func (t *table) idIs(i int32, id string) bool { return string(t.idBytes(i)) == id }

// id returns the id of slot i (a new string).
func (t *table) id(i int32) string { return string(t.idBytes(i)) }

// add adds id, which must not be known, in a new slot outside the heap,
// and returns the slot.
func (t *table) add(id string) int32 {
	var i int32
	if n := len(t.free); n > 0 {
		i, t.free = t.free[n-1], t.free[:n-1]
	} else {
		t.slots = append(t.slots, slot{})
		i = int32(len(t.slots) - 1)
	}
	h := t.hashOf(id)
	next, ok := t.index[h]
	if !ok {
		next = -1
	}
	t.index[h] = i
	s := &t.slots[i]
	*s = slot{off: len(t.arena), size: int32(len(id)), hidx: -1, next: next, gen: t.adds, used: true}
	t.arena = append(t.arena, id...)
	t.known++
	t.adds++
	return i
}

// remove forgets slot i: out of the heap, out of the index, freed.
func (t *table) remove(i int32) {
	t.unschedule(i)
	s := &t.slots[i]
	h := t.hashAt(i)
	if head := t.index[h]; head == i {
		if s.next < 0 {
			delete(t.index, h)
		} else {
			t.index[h] = s.next
		}
	} else {
		p := head
		for t.slots[p].next != i {
			p = t.slots[p].next
		}
		t.slots[p].next = s.next
	}
	t.garbage += int(s.size)
	*s = slot{hidx: -1, next: -1}
	t.free = append(t.free, i)
	t.known--
	if t.known == 0 {
		// Nothing left: start again small. (Generations go on: a
		// worker may still hold a ticket.)
		t.slots, t.free, t.arena, t.heap, t.garbage = nil, nil, nil, nil, 0
		t.index = map[uint64]int32{}
		return
	}
	switch {
	case len(t.slots) >= t.minShrink && t.known < len(t.slots)/4:
		t.shrink()
	case len(t.arena) >= minCompact && t.garbage > len(t.arena)/2:
		t.compact()
	}
}

// shrink moves the slots in use into a slice of their own size, with a
// new index and arena, once most slots are free: a burst of leases that
// has drained leaves no large slice or map behind (a Go map never
// shrinks). Slot numbers change; generations do not, so a worker's
// ticket finds its lease by id (see holder). The heap keeps its order.
func (t *table) shrink() {
	slots := make([]slot, 0, t.known)
	arena := make([]byte, 0, len(t.arena)-t.garbage)
	index := make(map[uint64]int32, t.known)
	moved := make([]int32, len(t.slots)) // old slot → new
	for i := range t.slots {
		s := t.slots[i]
		if !s.used {
			continue
		}
		n := int32(len(slots))
		moved[i] = n
		id := t.arena[s.off : s.off+int(s.size)]
		s.off = len(arena)
		arena = append(arena, id...)
		h := maphash.Bytes(t.seed, id) & t.mask
		s.next = -1
		if head, ok := index[h]; ok {
			s.next = head
		}
		index[h] = n
		slots = append(slots, s)
	}
	heap := make([]int32, len(t.heap))
	for k, i := range t.heap {
		heap[k] = moved[i]
	}
	t.slots, t.free, t.index, t.heap, t.arena, t.garbage = slots, nil, index, heap, arena, 0
}

// compact moves the ids of the slots in use into a new arena, dropping
// the garbage.
func (t *table) compact() {
	arena := make([]byte, 0, len(t.arena)-t.garbage)
	for i := range t.slots {
		s := &t.slots[i]
		if !s.used {
			continue
		}
		off := len(arena)
		arena = append(arena, t.arena[s.off:s.off+int(s.size)]...)
		s.off = off
	}
	t.arena, t.garbage = arena, 0
}

// schedule places slot i in the heap at due, or moves it there.
func (t *table) schedule(i int32, due int64) {
	s := &t.slots[i]
	s.due = due
	if s.hidx >= 0 {
		t.fix(int(s.hidx))
		return
	}
	s.hidx = int32(len(t.heap))
	t.heap = append(t.heap, i)
	t.up(len(t.heap) - 1)
}

// unschedule takes slot i out of the heap, if it is in it.
func (t *table) unschedule(i int32) {
	k := int(t.slots[i].hidx)
	if k < 0 {
		return
	}
	last := len(t.heap) - 1
	if k != last {
		t.swap(k, last)
	}
	t.heap = t.heap[:last]
	t.slots[i].hidx = -1
	if k != last {
		t.fix(k)
	}
}

// first returns the slot due first, or -1 if nothing is scheduled.
func (t *table) first() int32 {
	if len(t.heap) == 0 {
		return -1
	}
	return t.heap[0]
}

// scheduled counts the slots in the heap.
func (t *table) scheduled() int { return len(t.heap) }

// ids yields the ids of the known leases.
func (t *table) ids() iter.Seq[string] {
	return func(yield func(string) bool) {
		for i := range t.slots {
			if t.slots[i].used && !yield(t.id(int32(i))) {
				return
			}
		}
	}
}

func (t *table) less(a, b int) bool {
	return t.slots[t.heap[a]].due < t.slots[t.heap[b]].due
}

func (t *table) swap(a, b int) {
	t.heap[a], t.heap[b] = t.heap[b], t.heap[a]
	t.slots[t.heap[a]].hidx = int32(a)
	t.slots[t.heap[b]].hidx = int32(b)
}

// fix restores the heap order around index k, whose due time changed.
func (t *table) fix(k int) {
	if !t.down(k) {
		t.up(k)
	}
}

func (t *table) up(k int) {
	for k > 0 {
		p := (k - 1) / 2
		if !t.less(k, p) {
			return
		}
		t.swap(k, p)
		k = p
	}
}

// down moves index k down the heap and reports whether it moved.
func (t *table) down(k int) bool {
	start := k
	n := len(t.heap)
	for {
		c := 2*k + 1
		if c >= n {
			break
		}
		if r := c + 1; r < n && t.less(r, c) {
			c = r
		}
		if !t.less(c, k) {
			break
		}
		t.swap(k, c)
		k = c
	}
	return k > start
}

// take pops the slot due first, marks it active (handed to a worker) and
// returns its ticket. Something must be scheduled.
func (t *table) take() ticket {
	i := t.heap[0]
	t.unschedule(i)
	s := &t.slots[i]
	s.active = true
	return ticket{id: t.id(i), due: s.due, irrevocable: s.irrevocable, slot: i, gen: s.gen}
}

// holder returns the slot that holds tk's lease, if it was not forgotten
// since it was taken, or -1: the slot it was taken from, or, when the
// table has shrunk since, the one its id is in now.
func (t *table) holder(tk ticket) int32 {
	i := tk.slot
	if int(i) < len(t.slots) && t.slots[i].used && t.slots[i].gen == tk.gen {
		return i
	}
	if i = t.lookup(tk.id); i >= 0 && t.slots[i].gen == tk.gen {
		return i
	}
	return -1
}
