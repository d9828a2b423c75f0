package lease

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"
)

// TestTableHoldsNoPointers keeps the table invisible to the garbage
// collector: a pointer in a slot, or in the index's keys or values, would
// make every collection cycle scan every lease.
func TestTableHoldsNoPointers(t *testing.T) {
	var tb table
	for _, typ := range []reflect.Type{
		reflect.TypeFor[slot](),
		reflect.TypeOf(tb.index).Key(),
		reflect.TypeOf(tb.index).Elem(),
		reflect.TypeOf(tb.heap).Elem(),
		reflect.TypeOf(tb.free).Elem(),
		reflect.TypeOf(tb.arena).Elem(),
	} {
		if hasPointers(typ) {
			t.Errorf("%v holds pointers", typ)
		}
	}
}

func hasPointers(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.String, reflect.Slice, reflect.Map, reflect.Chan,
		reflect.Func, reflect.Interface, reflect.UnsafePointer:
		return true
	case reflect.Array:
		return hasPointers(t.Elem())
	case reflect.Struct:
		for f := range t.Fields() {
			if hasPointers(f.Type) {
				return true
			}
		}
	}
	return false
}

// TestTableAgainstModel runs random operations on a table and on a plain
// map, and checks after each that they agree: the ids known, their due
// times, the order things come out of the heap. Tiny hash masks make most
// ids collide, so that the index's chains are long and get cut in every
// place.
func TestTableAgainstModel(t *testing.T) {
	for _, mask := range []uint64{^uint64(0), 7, 0} {
		t.Run(fmt.Sprintf("mask %#x", mask), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, mask))
			tb := newTable()
			tb.mask, tb.minShrink = mask, 64
			shrinks := 0
			type lease struct {
				due       int64
				scheduled bool
			}
			model := map[string]*lease{}
			check := func(step int) {
				t.Helper()
				if tb.known != len(model) {
					t.Fatalf("step %d: %d known, want %d", step, tb.known, len(model))
				}
				scheduled := 0
				for id, l := range model {
					i := tb.lookup(id)
					if i < 0 {
						t.Fatalf("step %d: %q not found", step, id)
					}
					if got := tb.id(i); got != id {
						t.Fatalf("step %d: slot of %q holds %q", step, id, got)
					}
					if (tb.slots[i].hidx >= 0) != l.scheduled {
						t.Fatalf("step %d: %q scheduled = %v, want %v", step, id, !l.scheduled, l.scheduled)
					}
					if l.scheduled {
						scheduled++
						if tb.slots[i].due != l.due {
							t.Fatalf("step %d: %q due %d, want %d", step, id, tb.slots[i].due, l.due)
						}
					}
				}
				if tb.scheduled() != scheduled {
					t.Fatalf("step %d: %d scheduled, want %d", step, tb.scheduled(), scheduled)
				}
				for k := 1; k < len(tb.heap); k++ {
					if tb.less(k, (k-1)/2) {
						t.Fatalf("step %d: heap out of order at %d", step, k)
					}
				}
				if got, want := slices.Sorted(tb.ids()), slices.Sorted(mapKeys(model)); !slices.Equal(got, want) {
					t.Fatalf("step %d: ids = %d of them, want %d", step, len(got), len(want))
				}
			}
			var ids []string
			held := map[string]ticket{} // tickets taken, by id
			checkTickets := func(step int) {
				t.Helper()
				for id, tk := range held {
					i := tb.holder(tk)
					switch {
					case model[id] == nil && i >= 0:
						t.Fatalf("step %d: the ticket of forgotten %q has a holder", step, id)
					case model[id] != nil && (i < 0 || tb.id(i) != id):
						t.Fatalf("step %d: the ticket of %q lost its lease", step, id)
					}
				}
			}
			for step := range 20000 {
				if step%2500 == 2499 {
					// A burst drains: most leases go at once, and the
					// table shrinks.
					r.Shuffle(len(ids), func(a, b int) { ids[a], ids[b] = ids[b], ids[a] })
					keep := len(ids) / 10
					before := len(tb.slots)
					for _, id := range ids[keep:] {
						tb.remove(tb.lookup(id))
						delete(model, id)
					}
					if len(tb.slots) < before/2 {
						shrinks++
					}
					ids = ids[:keep]
					check(step)
					checkTickets(step)
					continue
				}
				switch op := r.IntN(10); {
				case op < 4 || len(ids) == 0: // a new lease, scheduled or not
					id := fmt.Sprintf("auth/token/create/%d-%s", step, string(make([]byte, r.IntN(40))))
					if tb.lookup(id) >= 0 {
						t.Fatalf("step %d: %q found before it was added", step, id)
					}
					i := tb.add(id)
					l := &lease{}
					if r.IntN(4) > 0 {
						l.due, l.scheduled = r.Int64N(1000), true
						tb.schedule(i, l.due)
					}
					model[id] = l
					ids = append(ids, id)
				case op < 6: // reschedule
					id := ids[r.IntN(len(ids))]
					l := model[id]
					l.due, l.scheduled = r.Int64N(1000), true
					tb.schedule(tb.lookup(id), l.due)
				case op < 7: // unschedule
					id := ids[r.IntN(len(ids))]
					model[id].scheduled = false
					tb.unschedule(tb.lookup(id))
				case op < 8: // take the first
					if tb.scheduled() == 0 {
						continue
					}
					var min int64 = 1 << 62
					for _, l := range model {
						if l.scheduled && l.due < min {
							min = l.due
						}
					}
					tk := tb.take()
					if tk.due != min || model[tk.id] == nil || model[tk.id].due != min {
						t.Fatalf("step %d: took %q due %d, want one due %d", step, tk.id, tk.due, min)
					}
					if tb.holder(tk) != tk.slot || !tb.slots[tk.slot].active {
						t.Fatalf("step %d: taken slot not held and active", step)
					}
					tb.slots[tk.slot].active = false
					model[tk.id].scheduled = false
					held[tk.id] = tk
				default: // forget
					k := r.IntN(len(ids))
					id := ids[k]
					ids[k] = ids[len(ids)-1]
					ids = ids[:len(ids)-1]
					tb.remove(tb.lookup(id))
					delete(model, id)
					if tb.lookup(id) >= 0 {
						t.Fatalf("step %d: %q found after it was removed", step, id)
					}
				}
				if step%97 == 0 {
					check(step)
					checkTickets(step)
				}
			}
			check(-1)
			checkTickets(-1)
			if shrinks == 0 {
				t.Fatal("the table never shrank")
			}
			// Drain it: the table starts again small.
			for _, id := range ids {
				tb.remove(tb.lookup(id))
			}
			if tb.known != 0 || len(tb.slots) != 0 || len(tb.arena) != 0 || len(tb.index) != 0 {
				t.Errorf("drained table keeps %d known, %d slots, %d arena bytes, %d index entries",
					tb.known, len(tb.slots), len(tb.arena), len(tb.index))
			}
		})
	}
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestTableTicketOfForgottenLease: a lease forgotten while a worker held
// it, and a new lease that took its slot, do not pass for the worker's.
func TestTableTicketOfForgottenLease(t *testing.T) {
	tb := newTable()
	i := tb.add("a")
	tb.schedule(i, 1)
	tk := tb.take()
	tb.remove(tb.lookup("a")) // revoked elsewhere; the table is empty now
	if tb.holder(tk) >= 0 {
		t.Fatal("the ticket of a forgotten lease still has a holder")
	}
	j := tb.add("a") // the same id again, in the same slot
	if j != tk.slot {
		t.Fatalf("new lease in slot %d, want the freed slot %d for this test", j, tk.slot)
	}
	if tb.holder(tk) >= 0 {
		t.Fatal("a new lease in the freed slot passes for the ticket's")
	}
}

// TestTableCompacts: ids forgotten leave garbage in the arena, which is
// dropped once it is most of it, and the ids left are intact.
func TestTableCompacts(t *testing.T) {
	tb := newTable()
	const n = 10000
	for k := range n {
		tb.add(fmt.Sprintf("database/creds/readonly/%08d", k))
	}
	full := len(tb.arena)
	for k := 0; k < n; k += 4 {
		for j := k; j < k+3; j++ {
			tb.remove(tb.lookup(fmt.Sprintf("database/creds/readonly/%08d", j)))
		}
	}
	if len(tb.arena) > full/2 || tb.garbage > len(tb.arena)/2 {
		t.Errorf("arena of %d bytes with %d of garbage after removing 3/4 of %d bytes of ids", len(tb.arena), tb.garbage, full)
	}
	for k := 3; k < n; k += 4 {
		id := fmt.Sprintf("database/creds/readonly/%08d", k)
		if i := tb.lookup(id); i < 0 || tb.id(i) != id {
			t.Fatalf("%q lost in the compaction", id)
		}
	}
}

// TestTableShrinks: once most leases of a burst are forgotten, the table
// gives its slots and index back; the leases left keep their ids, due
// times and heap order, and the tickets workers hold still find theirs.
func TestTableShrinks(t *testing.T) {
	tb := newTable()
	const n = 20000
	id := func(k int) string { return fmt.Sprintf("auth/approle/login/%08d", k) }
	for k := range n {
		tb.schedule(tb.add(id(k)), int64((k*7919)%n))
	}
	var held []ticket
	for range 100 {
		tk := tb.take() // workers hold these: due 0..99
		held = append(held, tk)
	}
	peak := cap(tb.slots)
	for k := range n {
		if k%50 != 0 { // keeps 400, two of them held
			tb.remove(tb.lookup(id(k)))
		}
	}
	if tb.known != n/50 || cap(tb.slots) > peak/8 || len(tb.index) > tb.known {
		t.Fatalf("after forgetting 49 leases in 50: %d known in %d slots (cap %d, was %d), %d index entries",
			tb.known, len(tb.slots), cap(tb.slots), peak, len(tb.index))
	}
	for _, tk := range held {
		i := tb.holder(tk)
		k, _ := strconv.Atoi(tk.id[len("auth/approle/login/"):])
		switch {
		case k%50 != 0 && i >= 0:
			t.Fatalf("the ticket of forgotten %s has a holder", tk.id)
		case k%50 == 0 && (i < 0 || tb.id(i) != tk.id || !tb.slots[i].active):
			t.Fatalf("the ticket of %s lost its lease (slot %d)", tk.id, i)
		}
	}
	var last int64 = -1
	for tb.scheduled() > 0 {
		tk := tb.take()
		k, _ := strconv.Atoi(tk.id[len("auth/approle/login/"):])
		if k%50 != 0 || tk.due != int64((k*7919)%n) || tk.due < last {
			t.Fatalf("took %s due %d after %d", tk.id, tk.due, last)
		}
		last = tk.due
	}
}

// TestUnixNanoSaturates: a lease due after 2262 is scheduled last, not
// in the past.
func TestUnixNanoSaturates(t *testing.T) {
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := unixNano(far); got < unixNano(time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("unixNano(%v) = %d, before 2200", far, got)
	}
}

// BenchmarkLeaseTable reports what the scheduler keeps in memory for a
// million leases with ids like the token store's, and how long a full
// garbage collection takes with them held.
func BenchmarkLeaseTable(b *testing.B) {
	const n = 1_000_000
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		tb := newTable()
		due := time.Now().UnixNano()
		for k := range n {
			i := tb.add(fmt.Sprintf("auth/approle/login/h%060x", k))
			tb.schedule(i, due+int64(k%3600)*int64(time.Second))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		start := time.Now()
		runtime.GC()
		gc := time.Since(start)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "B/lease")
		b.ReportMetric(float64(gc.Microseconds()), "µs/GC")
		runtime.KeepAlive(tb)
	}
}
