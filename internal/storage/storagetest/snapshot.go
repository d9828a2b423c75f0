package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// RunSnapshotter runs the conformance suite of [storage.Snapshotter]:
// snapshots see every acknowledged write, in key order, and each is a
// state that existed even while writes go on; a restore replaces
// everything at once (for readers, for snapshots and for the backend's
// caches), and one that fails (an error from next, an invalid key, a
// cancelled context) leaves the old content.
//
// open must return a fresh, empty backend each time; it is called once
// per subtest. The backend, or one behind its wrappers
// ([storage.SnapshotterOf]), must be a Snapshotter; the suite fails
// otherwise. Backends that implement [storage.Closer] are closed when the
// subtest ends.
//
// The suite also pins down what the interface leaves implicit: the value
// Snapshot hands to fn belongs to fn (it may keep or change it), and a
// Restore that fails returns an error wrapping next's error, or
// [storage.ErrInvalidKey] for an invalid key.
func RunSnapshotter(t *testing.T, open func(t *testing.T) storage.Backend) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, b storage.Backend, s storage.Snapshotter)
	}{
		{"SnapshotEmpty", testSnapshotEmpty},
		{"SnapshotAll", testSnapshotAll},
		{"SnapshotValueBelongsToFn", testSnapshotValueOwned},
		{"SnapshotStopsAtError", testSnapshotStops},
		{"SnapshotCancelled", testSnapshotCancelled},
		{"SnapshotConsistentUnderWrites", testSnapshotConsistent},
		{"RestoreReplaces", testRestoreReplaces},
		{"RestoreEmpty", testRestoreEmpty},
		{"RestoreNextError", testRestoreNextError},
		{"RestoreInvalidKey", testRestoreInvalidKey},
		{"RestoreCancelled", testRestoreCancelled},
		{"RestoreLarge", testRestoreLarge},
		{"RestoreAfterReads", testRestoreAfterReads},
		{"RestoreThenWrite", testRestoreThenWrite},
		{"RestoreAtomicForReaders", testRestoreAtomic},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := openClosed(t, open)
			s, ok := storage.SnapshotterOf(b)
			if !ok {
				t.Fatal("the backend is not a storage.Snapshotter")
			}
			tc.fn(t, b, s)
		})
	}
}

// snapEntry is one entry seen by a snapshot.
type snapEntry struct {
	key   string
	value []byte
}

// takeSnapshot returns every entry of a snapshot, checking the key order.
func takeSnapshot(t *testing.T, s storage.Snapshotter) []snapEntry {
	t.Helper()
	out, err := trySnapshot(t.Context(), s)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return out
}

// trySnapshot is takeSnapshot for other goroutines: it returns what a
// test would report.
func trySnapshot(ctx context.Context, s storage.Snapshotter) ([]snapEntry, error) {
	return slowSnapshot(ctx, s, false)
}

// slowSnapshot takes a snapshot; with yield, fn lets other goroutines run
// at every entry, so that writes land while the snapshot is under way.
func slowSnapshot(ctx context.Context, s storage.Snapshotter, yield bool) ([]snapEntry, error) {
	var out []snapEntry
	err := s.Snapshot(ctx, func(key string, value []byte) error {
		if n := len(out); n > 0 && out[n-1].key >= key {
			return fmt.Errorf("snapshot keys out of order: %q after %q", key, out[n-1].key)
		}
		out = append(out, snapEntry{key, value})
		if yield {
			runtime.Gosched()
		}
		return nil
	})
	return out, err
}

// entries turns key, value pairs into restore input, in order.
func entries(kv ...string) []storage.Entry {
	var out []storage.Entry
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, storage.Entry{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return out
}

// feed returns a next function that yields es, then io.EOF.
func feed(es []storage.Entry) func() (storage.Entry, error) {
	i := 0
	return func() (storage.Entry, error) {
		if i == len(es) {
			return storage.Entry{}, io.EOF
		}
		i++
		return es[i-1], nil
	}
}

// wantSnapshot checks that the backend holds exactly want: through a
// snapshot, through Get and through List of the root.
func wantSnapshot(t *testing.T, b storage.Backend, s storage.Snapshotter, want []storage.Entry) {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, func(x, y storage.Entry) int { return strings.Compare(x.Key, y.Key) })
	got := takeSnapshot(t, s)
	if len(got) != len(want) {
		t.Fatalf("snapshot has %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].key != want[i].Key || !bytes.Equal(got[i].value, want[i].Value) {
			t.Fatalf("snapshot entry %d = %q (%d bytes), want %q (%d bytes)", i, got[i].key, len(got[i].value), want[i].Key, len(want[i].Value))
		}
		wantValue(t, b, want[i].Key, want[i].Value)
	}
	var top []string
	for _, e := range want {
		child, _ := storage.ChildOf("", e.Key)
		if len(top) == 0 || top[len(top)-1] != child {
			top = append(top, child)
		}
	}
	wantList(t, b, "", slices.Compact(top))
}

func testSnapshotEmpty(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	if got := takeSnapshot(t, s); len(got) != 0 {
		t.Fatalf("snapshot of an empty backend has %d entries", len(got))
	}
	// Deleted keys are not in it either.
	mustPut(t, b, "gone", []byte("x"))
	mustDelete(t, b, "gone")
	if got := takeSnapshot(t, s); len(got) != 0 {
		t.Fatalf("snapshot after delete has %q", got[0].key)
	}
}

func testSnapshotAll(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(255 - i)
	}
	var want []storage.Entry
	for _, k := range listKeys {
		mustPut(t, b, k, []byte("v:"+k))
		want = append(want, storage.Entry{Key: k, Value: []byte("v:" + k)})
	}
	mustPut(t, b, "bin", bin)
	mustPut(t, b, "empty", nil)
	mustPut(t, b, "foo", []byte("overwritten"))
	mustPut(t, b, "deleted/x", []byte("x"))
	mustDelete(t, b, "deleted/x")
	for i := range want {
		if want[i].Key == "foo" {
			want[i].Value = []byte("overwritten")
		}
	}
	want = append(want, storage.Entry{Key: "bin", Value: bin}, storage.Entry{Key: "empty", Value: []byte{}})
	wantSnapshot(t, b, s, want)
}

func testSnapshotValueOwned(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	mustPut(t, b, "a", []byte("alpha"))
	mustPut(t, b, "b", []byte("bravo"))
	var kept [][]byte
	err := s.Snapshot(t.Context(), func(key string, value []byte) error {
		kept = append(kept, value)
		copy(value, "XXXX")
		return nil
	})
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if len(kept) != 2 || string(kept[0]) != "XXXXa" || string(kept[1]) != "XXXXo" {
		t.Fatalf("values kept by fn changed after it returned: %q", kept)
	}
	wantValue(t, b, "a", []byte("alpha"))
	wantValue(t, b, "b", []byte("bravo"))
}

func testSnapshotStops(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	for i := range 10 {
		mustPut(t, b, fmt.Sprintf("k%d", i), []byte("v"))
	}
	errStop := errors.New("stop here")
	calls := 0
	err := s.Snapshot(t.Context(), func(string, []byte) error {
		calls++
		if calls == 3 {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatalf("Snapshot = %v, want fn's error", err)
	}
	if calls != 3 {
		t.Fatalf("fn called %d times after returning an error at the 3rd", calls)
	}
}

func testSnapshotCancelled(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	mustPut(t, b, "k", []byte("v"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := s.Snapshot(ctx, func(string, []byte) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Snapshot with a cancelled context = %v, want context.Canceled", err)
	}
}

// testSnapshotConsistent takes snapshots while one writer goes through
// rounds of four writes (a, b, a log entry, the deletion of an old one),
// each acknowledged before the next begins, and (for a transactional
// backend) another moves one key between two names in transactions.
// Every snapshot must be one of the states the writes went through, and
// hold every write acknowledged before it began.
func testSnapshotConsistent(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const keep = 5 // log entries kept
	var acked atomic.Int64
	var wg sync.WaitGroup
	fail := func(format string, args ...any) {
		t.Errorf(format, args...)
		cancel()
	}
	logKey := func(i int64) string { return fmt.Sprintf("cons/log/%06d", i) }
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := int64(1); ctx.Err() == nil; i++ {
			v := []byte(strconv.FormatInt(i, 10))
			for _, k := range []string{"cons/a", "cons/b", logKey(i)} {
				if err := b.Put(ctx, k, v); err != nil {
					if ctx.Err() == nil {
						fail("Put(%q): %v", k, err)
					}
					return
				}
			}
			if i > keep {
				if err := b.Delete(ctx, logKey(i-keep)); err != nil {
					if ctx.Err() == nil {
						fail("Delete: %v", err)
					}
					return
				}
			}
			acked.Store(i)
		}
	}()
	tb, transactional := b.(storage.Transactional)
	if transactional {
		mustPut(t, b, "move/left", []byte("m"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			from, to := "move/left", "move/right"
			for ctx.Err() == nil {
				err := tb.Transaction(ctx, []storage.Op{{Key: from, Delete: true}, {Key: to, Value: []byte("m")}})
				if err != nil {
					if ctx.Err() == nil {
						fail("Transaction: %v", err)
					}
					return
				}
				from, to = to, from
			}
		}()
	}
	for n := 0; n < 50 && ctx.Err() == nil; n++ {
		before := acked.Load()
		snap, err := slowSnapshot(ctx, s, true)
		if err != nil {
			if ctx.Err() == nil {
				t.Errorf("Snapshot: %v", err)
			}
			break
		}
		if msg := checkConsistent(snap, before, keep, transactional); msg != "" {
			t.Errorf("snapshot %d is no state the writes went through: %s", n, msg)
			break
		}
	}
	cancel()
	wg.Wait()
}

// checkConsistent explains how snap breaks the invariants of
// testSnapshotConsistent, or returns "".
func checkConsistent(snap []snapEntry, before int64, keep int64, transactional bool) string {
	num := func(v []byte) int64 {
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return -1
		}
		return n
	}
	var a, b int64
	var logs []int64
	moves := 0
	for _, e := range snap {
		switch {
		case e.key == "cons/a":
			a = num(e.value)
		case e.key == "cons/b":
			b = num(e.value)
		case strings.HasPrefix(e.key, "cons/log/"):
			i := num([]byte(strings.TrimPrefix(e.key, "cons/log/")))
			if num(e.value) != i {
				return fmt.Sprintf("log entry %s holds %q", e.key, e.value)
			}
			logs = append(logs, i)
		case e.key == "move/left" || e.key == "move/right":
			moves++
		default:
			return fmt.Sprintf("unexpected key %q", e.key)
		}
	}
	if transactional && moves != 1 {
		return fmt.Sprintf("the key moved by transactions is there %d times", moves)
	}
	if a < before {
		return fmt.Sprintf("a = %d, but round %d was acknowledged before the snapshot began", a, before)
	}
	span := func(from, to int64) []int64 {
		var out []int64
		for i := max(from, 1); i <= to; i++ {
			out = append(out, i)
		}
		return out
	}
	// The states of round a: a written; b written; log a written; log
	// a-keep deleted.
	var states [][]int64
	switch {
	case a == b+1:
		states = [][]int64{span(a-keep, a-1)}
	case a == b && a > 0:
		states = [][]int64{span(a-keep, a-1), span(a-keep, a), span(a-keep+1, a)}
		if a == before {
			states = states[2:] // round a was finished
		}
	case a == 0 && b == 0:
		states = [][]int64{nil}
	default:
		return fmt.Sprintf("a = %d and b = %d", a, b)
	}
	for _, st := range states {
		if slices.Equal(st, logs) {
			return ""
		}
	}
	return fmt.Sprintf("a = %d, b = %d, log entries %v", a, b, logs)
}

func testRestoreReplaces(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	for _, k := range []string{"old/a", "old/b/c", "shared", "zzz"} {
		mustPut(t, b, k, []byte("old "+k))
	}
	want := entries("new/a", "1", "new/b/c", "2", "shared", "new shared", "empty", "")
	if err := s.Restore(t.Context(), feed(want)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	for _, k := range []string{"old/a", "old/b/c", "zzz"} {
		wantMissing(t, b, k)
	}
	wantList(t, b, "old/", nil)
	wantList(t, b, "new/", []string{"a", "b/"})
	wantSnapshot(t, b, s, want)
}

func testRestoreEmpty(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	mustPut(t, b, "a", []byte("1"))
	mustPut(t, b, "d/b", []byte("2"))
	if err := s.Restore(t.Context(), feed(nil)); err != nil {
		t.Fatalf("Restore of nothing: %v", err)
	}
	wantMissing(t, b, "a")
	wantMissing(t, b, "d/b")
	wantSnapshot(t, b, s, nil)
	mustPut(t, b, "after", []byte("x"))
	wantSnapshot(t, b, s, entries("after", "x"))
}

// oldContent writes the content the failed restores must leave: enough
// keys that a backend writing in batches has committed some of the new
// ones before it fails.
func oldContent(t *testing.T, b storage.Backend) []storage.Entry {
	var old []storage.Entry
	for i := range 50 {
		e := storage.Entry{Key: fmt.Sprintf("keep/%03d", i), Value: []byte(fmt.Sprintf("old %d", i))}
		mustPut(t, b, e.Key, e.Value)
		old = append(old, e)
	}
	return old
}

// many returns n new entries under prefix.
func many(prefix string, n int) []storage.Entry {
	out := make([]storage.Entry, n)
	for i := range out {
		out[i] = storage.Entry{Key: fmt.Sprintf("%s%06d", prefix, i), Value: []byte(fmt.Sprintf("new value %d", i))}
	}
	return out
}

func testRestoreNextError(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	old := oldContent(t, b)
	errBoom := errors.New("the snapshot is truncated")
	for _, after := range []int{0, 1, 10000} {
		src := feed(many("new/", after))
		next := func() (storage.Entry, error) {
			e, err := src()
			if errors.Is(err, io.EOF) {
				return storage.Entry{}, errBoom
			}
			return e, err
		}
		if err := s.Restore(t.Context(), next); !errors.Is(err, errBoom) {
			t.Fatalf("Restore failing after %d entries = %v, want next's error", after, err)
		}
		wantSnapshot(t, b, s, old)
		wantMissing(t, b, "new/000000")
	}
	// The backend still works, and restores.
	mustPut(t, b, "keep/after", []byte("x"))
	if err := s.Restore(t.Context(), feed(entries("fresh", "1"))); err != nil {
		t.Fatalf("Restore after failed ones: %v", err)
	}
	wantSnapshot(t, b, s, entries("fresh", "1"))
}

func testRestoreInvalidKey(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	old := oldContent(t, b)
	for _, bad := range []string{"", "/abs"} {
		in := append(many("new/", 5000), storage.Entry{Key: bad, Value: []byte("x")})
		if err := s.Restore(t.Context(), feed(in)); !errors.Is(err, storage.ErrInvalidKey) {
			t.Fatalf("Restore with key %q = %v, want ErrInvalidKey", bad, err)
		}
		wantSnapshot(t, b, s, old)
	}
}

func testRestoreCancelled(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	old := oldContent(t, b)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	src := feed(many("new/", 10000))
	n := 0
	next := func() (storage.Entry, error) {
		if n++; n == 10 {
			cancel()
		}
		return src()
	}
	if err := s.Restore(ctx, next); err == nil {
		t.Fatal("Restore whose context was cancelled succeeded")
	}
	wantSnapshot(t, b, s, old)
}

func testRestoreLarge(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	oldContent(t, b)
	big := func(seed byte) []byte {
		v := make([]byte, 1<<20)
		for i := range v {
			v[i] = byte(i*7+i>>11) ^ seed
		}
		return v
	}
	want := many("small/", 20000)
	for i := range 12 {
		want = append(want, storage.Entry{Key: fmt.Sprintf("large/%02d", i), Value: big(byte(i))})
	}
	slices.SortFunc(want, func(x, y storage.Entry) int { return strings.Compare(x.Key, y.Key) })
	if err := s.Restore(t.Context(), feed(want)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	wantMissing(t, b, "keep/000")
	got := takeSnapshot(t, s)
	if len(got) != len(want) {
		t.Fatalf("snapshot after restore has %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].key != want[i].Key || !bytes.Equal(got[i].value, want[i].Value) {
			t.Fatalf("entry %d: %q (%d bytes), want %q (%d bytes)", i, got[i].key, len(got[i].value), want[i].Key, len(want[i].Value))
		}
	}
	wantValue(t, b, "large/07", big(7))
	wantValue(t, b, "small/019999", []byte("new value 19999"))
}

// testRestoreAfterReads reads every key (and misses some) before a
// restore, so that a backend with a read cache has them cached: after
// the restore every read gives the new answer.
func testRestoreAfterReads(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	ctx := t.Context()
	for i := range 20 {
		mustPut(t, b, fmt.Sprintf("k/%02d", i), []byte("old"))
	}
	for i := range 30 {
		_, _ = b.Get(ctx, fmt.Sprintf("k/%02d", i)) // 20 hits, 10 misses
		_, _ = b.Get(ctx, fmt.Sprintf("k/%02d", i))
	}
	var want []storage.Entry
	for i := 10; i < 30; i++ {
		want = append(want, storage.Entry{Key: fmt.Sprintf("k/%02d", i), Value: []byte("new")})
	}
	if err := s.Restore(ctx, feed(want)); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	for i := range 10 {
		wantMissing(t, b, fmt.Sprintf("k/%02d", i))
	}
	wantSnapshot(t, b, s, want)
}

func testRestoreThenWrite(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	mustPut(t, b, "old", []byte("x"))
	if err := s.Restore(t.Context(), feed(entries("a", "1", "b", "2", "c/d", "3"))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	mustPut(t, b, "a", []byte("changed"))
	mustDelete(t, b, "b")
	mustPut(t, b, "e", []byte("5"))
	want := entries("a", "changed", "c/d", "3", "e", "5")
	if tb, ok := b.(storage.Transactional); ok {
		err := tb.Transaction(t.Context(), []storage.Op{{Key: "c/d", Delete: true}, {Key: "f", Value: []byte("6")}})
		if err != nil {
			t.Fatalf("Transaction: %v", err)
		}
		want = entries("a", "changed", "e", "5", "f", "6")
	}
	wantSnapshot(t, b, s, want)
	// A second restore replaces the first.
	if err := s.Restore(t.Context(), feed(entries("z", "26"))); err != nil {
		t.Fatalf("second Restore: %v", err)
	}
	wantSnapshot(t, b, s, entries("z", "26"))
}

// testRestoreAtomic restores new values over old ones while other
// goroutines read: every snapshot is all old or all new, every Get one of
// the two values, and after Restore returns every read is new.
func testRestoreAtomic(t *testing.T, b storage.Backend, s storage.Snapshotter) {
	const n = 3000
	key := func(i int) string { return fmt.Sprintf("gen/%05d", i) }
	tb, transactional := b.(storage.Transactional)
	for i := 0; i < n; i += 500 {
		var ops []storage.Op
		for j := i; j < min(i+500, n); j++ {
			ops = append(ops, storage.Op{Key: key(j), Value: []byte("old")})
		}
		if !transactional {
			for _, op := range ops {
				mustPut(t, b, op.Key, op.Value)
			}
			continue
		}
		// In transactions where the backend has them: quicker.
		if err := tb.Transaction(t.Context(), ops); err != nil {
			t.Fatalf("Transaction: %v", err)
		}
	}
	var want []storage.Entry
	for i := range n {
		want = append(want, storage.Entry{Key: key(i), Value: []byte("new")})
	}
	want = append(want, storage.Entry{Key: "gen/zz-new-only", Value: []byte("new")})

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				if g == 0 {
					snap, err := trySnapshot(ctx, s)
					if err != nil {
						if ctx.Err() == nil {
							t.Errorf("Snapshot during Restore: %v", err)
						}
						return
					}
					if msg := oneGeneration(snap, n); msg != "" {
						t.Errorf("snapshot during Restore: %s", msg)
						return
					}
					continue
				}
				v, err := b.Get(ctx, key(i%n))
				if ctx.Err() != nil {
					return
				}
				if err != nil || (string(v) != "old" && string(v) != "new") {
					t.Errorf("Get during Restore = %q, %v", v, err)
					return
				}
			}
		}()
	}
	err := s.Restore(t.Context(), feed(want))
	cancel()
	wg.Wait()
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	for i := range n {
		wantValue(t, b, key(i), []byte("new"))
	}
	wantSnapshot(t, b, s, want)
}

// oneGeneration explains how a snapshot of testRestoreAtomic mixes the
// old content and the new, or returns "".
func oneGeneration(snap []snapEntry, n int) string {
	olds, news := 0, 0
	for _, e := range snap {
		switch string(e.value) {
		case "old":
			olds++
		case "new":
			news++
		}
	}
	if (olds == n && news == 0) || (olds == 0 && news == n+1) {
		return ""
	}
	return fmt.Sprintf("%d old and %d new values of %d entries", olds, news, len(snap))
}
