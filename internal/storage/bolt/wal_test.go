package bolt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

// The conformance suite with a checkpoint after every batch, so reads and
// lists go to bbolt instead of the pending writes.
func TestConformanceCheckpointEveryBatch(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Backend {
		b := mustOpen(t, filepath.Join(t.TempDir(), "v.db"), Options{CheckpointBytes: 1})
		t.Cleanup(func() { b.Close() })
		return b
	})
	storagetest.RunDurable(t, func(t *testing.T, dir string) storage.Backend {
		return mustOpen(t, filepath.Join(dir, "v.db"), Options{CheckpointBytes: 1})
	})
	storagetest.RunSnapshotter(t, func(t *testing.T) storage.Backend {
		b := mustOpen(t, filepath.Join(t.TempDir(), "v.db"), Options{CheckpointBytes: 1})
		t.Cleanup(func() { b.Close() })
		return b
	})
}

// mustOpen opens the store at path; the caller closes it.
func mustOpen(t *testing.T, path string, opts Options) *Backend {
	t.Helper()
	b, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPut(t *testing.T, b *Backend, kv ...string) {
	t.Helper()
	for i := 0; i < len(kv); i += 2 {
		if err := b.Put(context.Background(), kv[i], []byte(kv[i+1])); err != nil {
			t.Fatal(err)
		}
	}
}

func mustList(t *testing.T, b *Backend, prefix string, want ...string) {
	t.Helper()
	got, err := b.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(%q) = %v, want %v", prefix, got, want)
	}
}

func (b *Backend) checkpointNow(t *testing.T) {
	t.Helper()
	if err := b.checkpointSync(); err != nil {
		t.Fatal(err)
	}
}

// List merges checkpointed keys with pending puts and deletes: a directory
// whose keys are all deleted (pending) disappears.
func TestListMergesPendingWrites(t *testing.T) {
	ctx := context.Background()
	b := mustOpen(t, filepath.Join(t.TempDir(), "v.db"), Options{})
	defer b.Close()
	mustPut(t, b, "a/x", "1", "a/y", "2", "b/z", "3", "c", "4", "e/1/2", "5")
	b.checkpointNow(t)
	if st := b.Stats(); st.Checkpoints == 0 {
		t.Fatal("no checkpoint")
	}
	mustList(t, b, "", "a/", "b/", "c", "e/")
	b.Delete(ctx, "a/x")
	b.Delete(ctx, "c")
	mustList(t, b, "", "a/", "b/", "e/")
	mustList(t, b, "a/", "y")
	b.Delete(ctx, "a/y")
	b.Delete(ctx, "e/1/2")
	mustPut(t, b, "d/e", "6", "b/w", "7")
	mustList(t, b, "", "b/", "d/")
	mustList(t, b, "b/", "w", "z")
	if _, err := b.Get(ctx, "a/x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted pending key: %v", err)
	}
	// Re-created after a pending delete.
	mustPut(t, b, "c", "8")
	mustList(t, b, "", "b/", "c", "d/")
	b.checkpointNow(t)
	mustList(t, b, "", "b/", "c", "d/")
	if v, err := b.Get(ctx, "c"); err != nil || string(v) != "8" {
		t.Fatalf("Get(c) = %q, %v", v, err)
	}
}

// copyStore copies the data file and the log of an open store, as a crash
// would leave them (the writer is idle: every write was acknowledged).
func copyStore(t *testing.T, src, dstDir string) string {
	t.Helper()
	dst := filepath.Join(dstDir, "v.db")
	for _, pair := range [][2]string{{src, dst}, {segmentPath(src, 0), segmentPath(dst, 0)}, {segmentPath(src, 1), segmentPath(dst, 1)}} {
		raw, err := os.ReadFile(pair[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pair[1], raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func TestReplayAndTornTail(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "v.db")
	b := mustOpen(t, src, Options{CheckpointBytes: 1 << 30})
	defer b.Close()
	mustPut(t, b, "before", "0")
	b.checkpointNow(t)
	for i := range 50 {
		mustPut(t, b, fmt.Sprintf("k/%02d", i), fmt.Sprint(i))
	}
	b.Delete(ctx, "before")
	// The writer is idle and every write was acknowledged, so reading
	// the end of the log here is ordered after the writer set it.
	end, cur := b.segs[b.cur].size, b.cur
	if end == 0 {
		t.Fatal("nothing in the log")
	}

	for name, tail := range map[string][]byte{
		"clean":          nil,
		"torn header":    {9, 0, 0},
		"torn record":    appendRecord(nil, 999, []*writeReq{{ops: []storage.Op{{Key: "ghost", Value: []byte("x")}}}})[:12],
		"bad checksum":   corrupt(appendRecord(nil, 52, []*writeReq{{ops: []storage.Op{{Key: "ghost", Value: []byte("x")}}}})),
		"out of order":   appendRecord(nil, 3, []*writeReq{{ops: []storage.Op{{Key: "ghost", Value: []byte("x")}}}}),
		"gap in numbers": appendRecord(nil, 60, []*writeReq{{ops: []storage.Op{{Key: "ghost", Value: []byte("x")}}}}),
	} {
		t.Run(name, func(t *testing.T) {
			dst := copyStore(t, src, t.TempDir())
			// The tail goes where the next record would have gone.
			f, err := os.OpenFile(segmentPath(dst, cur), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(tail, end); err != nil {
				t.Fatal(err)
			}
			f.Close()
			r := mustOpen(t, dst, Options{})
			defer r.Close()
			for i := range 50 {
				v, err := r.Get(ctx, fmt.Sprintf("k/%02d", i))
				if err != nil || string(v) != fmt.Sprint(i) {
					t.Fatalf("k/%02d after replay: %q, %v", i, v, err)
				}
			}
			for _, k := range []string{"before", "ghost"} {
				if _, err := r.Get(ctx, k); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("%s after replay: %v", k, err)
				}
			}
			// Replay checkpointed the writes and started the log
			// over; writes go on with the next sequence number, and
			// a second replay finds them and nothing stale.
			if r.segs[r.cur].size != 0 {
				t.Fatalf("log not started over: at %d", r.segs[r.cur].size)
			}
			mustPut(t, r, "after", "1")
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r2 := mustOpen(t, dst, Options{})
			defer r2.Close()
			if v, err := r2.Get(ctx, "after"); err != nil || string(v) != "1" {
				t.Fatalf("after = %q, %v", v, err)
			}
			if _, err := r2.Get(ctx, "ghost"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("ghost after second replay: %v", err)
			}
		})
	}
}

func corrupt(rec []byte) []byte {
	rec[len(rec)-1] ^= 0xff
	return rec
}

// After a checkpoint the log still holds the records it applied, and new
// records overwrite them from the start of the file: replay skips what
// bbolt holds and stops at the older round's leftovers instead of applying
// them over newer data.
func TestReplaySkipsCheckpointedRecords(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	reopen := func(b *Backend) *Backend {
		t.Helper()
		if b != nil {
			// Close checkpoints; copy the files first, as a crash
			// would leave them.
			dst := copyStore(t, path, t.TempDir())
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			path = dst
		}
		r := mustOpen(t, path, Options{CheckpointBytes: 1 << 30})
		return r
	}
	b := reopen(nil)
	mustPut(t, b, "k", "old", "pad", strings.Repeat("p", 4000))
	mustPut(t, b, "k", "new")
	b.checkpointNow(t)
	b = reopen(b)
	if v, err := b.Get(ctx, "k"); err != nil || string(v) != "new" {
		t.Fatalf("k = %q, %v; a checkpointed record was replayed", v, err)
	}
	// One short record at the start of the log, followed by what is
	// left of the old round.
	mustPut(t, b, "k", "newest")
	b = reopen(b)
	defer b.Close()
	if v, err := b.Get(ctx, "k"); err != nil || string(v) != "newest" {
		t.Fatalf("k = %q, %v; an old record was replayed over newer data", v, err)
	}
}

// Rewriting the same keys does not grow the log without bound: the log
// size, not the amount of distinct data, triggers checkpoints.
func TestLogSizeBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	const limit = 64 << 10
	b := mustOpen(t, path, Options{CheckpointBytes: limit, NoSync: true})
	defer b.Close()
	value := strings.Repeat("v", 500)
	for range 2000 {
		mustPut(t, b, "same", value)
	}
	if b.Stats().Checkpoints == 0 {
		t.Fatal("no checkpoint")
	}
	for i := range 2 {
		fi, err := os.Stat(segmentPath(path, i))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > limit+walChunk {
			t.Fatalf("log segment %d is %d bytes, want at most %d", i, fi.Size(), limit+walChunk)
		}
	}
}

func TestReadLogRecords(t *testing.T) {
	rec := func(seq uint64, key string) []byte {
		return appendRecord(nil, seq, []*writeReq{{ops: []storage.Op{{Key: key, Value: []byte(key)}, {Key: "d", Delete: true}}}})
	}
	log := slices.Concat(rec(5, "a"), rec(6, "b"), rec(2, "stale"))
	ops, last, torn := readLog(log, 4)
	if last != 6 || torn {
		t.Fatalf("last %d torn %v", last, torn)
	}
	var keys []string
	for _, op := range ops {
		keys = append(keys, op.Key)
	}
	if !slices.Equal(keys, []string{"a", "d", "b", "d"}) || !ops[1].Delete || string(ops[0].Value) != "a" {
		t.Fatalf("ops %+v", ops)
	}
	if ops, last, _ := readLog(log, 5); len(ops) != 2 || last != 6 {
		t.Fatalf("applied=5: %d ops, last %d", len(ops), last)
	}
	if ops, _, torn := readLog(rec(7, "x"), 4); len(ops) != 0 || !torn {
		t.Fatal("a gap was replayed or not reported")
	}
	// The zero fill ends the log quietly; a damaged record or a cut
	// header is reported.
	for name, tc := range map[string]struct {
		log  []byte
		torn bool
	}{
		"zero fill":   {slices.Concat(rec(5, "a"), make([]byte, 100)), false},
		"short zeros": {slices.Concat(rec(5, "a"), make([]byte, 3)), false},
		"cut header":  {slices.Concat(rec(5, "a"), []byte{7, 0, 1}), true},
		"cut record":  {slices.Concat(rec(5, "a"), rec(6, "b")[:15]), true},
		"bad sum":     {slices.Concat(rec(5, "a"), corrupt(rec(6, "b"))), true},
	} {
		ops, last, torn := readLog(tc.log, 4)
		if last != 5 || len(ops) != 2 || torn != tc.torn {
			t.Errorf("%s: %d ops, last %d, torn %v", name, len(ops), last, torn)
		}
	}
}

// The records after the last checkpoint may begin in either segment and go
// on in the other; each segment may hold an older round's leftovers.
func TestReplayLogAcrossSegments(t *testing.T) {
	rec := func(seq uint64) []byte {
		return appendRecord(nil, seq, []*writeReq{{ops: []storage.Op{{Key: fmt.Sprint(seq), Value: []byte("v")}}}})
	}
	recs := func(from, to uint64) []byte {
		var out []byte
		for s := from; s <= to; s++ {
			out = append(out, rec(s)...)
		}
		return out
	}
	for name, tc := range map[string]struct {
		segs    [2][]byte
		applied uint64
		want    []string
		last    uint64
	}{
		"empty":                {[2][]byte{nil, nil}, 0, nil, 0},
		"one segment":          {[2][]byte{recs(1, 3), nil}, 0, []string{"1", "2", "3"}, 3},
		"frozen then current":  {[2][]byte{recs(11, 12), recs(6, 10)}, 5, []string{"6", "7", "8", "9", "10", "11", "12"}, 12},
		"frozen applied":       {[2][]byte{recs(11, 12), recs(6, 10)}, 10, []string{"11", "12"}, 12},
		"all applied":          {[2][]byte{recs(11, 12), recs(6, 10)}, 12, nil, 12},
		"over older leftovers": {[2][]byte{slices.Concat(recs(21, 22), recs(3, 5)), recs(11, 20)}, 10, []string{"11", "12", "13", "14", "15", "16", "17", "18", "19", "20", "21", "22"}, 22},
		"gap between segments": {[2][]byte{recs(13, 14), recs(6, 10)}, 5, []string{"6", "7", "8", "9", "10"}, 10},
	} {
		ops, last, _ := replayLog(tc.segs, tc.applied)
		var got []string
		for _, op := range ops {
			got = append(got, op.Key)
		}
		if !slices.Equal(got, tc.want) || last != tc.last {
			t.Errorf("%s: replayed %v (last %d), want %v (last %d)", name, got, last, tc.want, tc.last)
		}
	}
}

func FuzzReadLog(f *testing.F) {
	f.Add(appendRecord(nil, 1, []*writeReq{{ops: []storage.Op{{Key: "a", Value: []byte("b")}}}}), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, applied uint64) {
		_, _, _ = readLog(data, applied) // must not panic
		half := len(data) / 2
		_, _, _ = replayLog([2][]byte{data[:half], data[half:]}, applied)
	})
}

// A crash while a checkpoint runs leaves its writes in one segment and the
// later ones in the other; replay applies both, in order.
func TestReplayWithCheckpointInProgress(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "v.db")
	b := mustOpen(t, src, Options{CheckpointBytes: 200})
	defer b.Close()
	// Holding bbolt's write lock keeps the background checkpoint from
	// finishing; writes go on meanwhile.
	tx, err := b.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, b, "gone", "x", "big", strings.Repeat("b", 300)) // fills segment 0: a checkpoint starts
	mustPut(t, b, "later", "1")
	if err := b.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	mustList(t, b, "", "big", "later")
	if v, err := b.Get(ctx, "big"); err != nil || len(v) != 300 {
		t.Fatalf("big while checkpointing: %d bytes, %v", len(v), err)
	}
	b.pmu.RLock()
	running := b.frozen != nil
	b.pmu.RUnlock()
	if !running {
		t.Fatal("no checkpoint is running")
	}
	dst := copyStore(t, src, t.TempDir())
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}

	r := mustOpen(t, dst, Options{})
	defer r.Close()
	if v, err := r.Get(ctx, "big"); err != nil || len(v) != 300 {
		t.Fatalf("big after replay: %d bytes, %v", len(v), err)
	}
	if v, err := r.Get(ctx, "later"); err != nil || string(v) != "1" {
		t.Fatalf("later after replay: %q, %v", v, err)
	}
	if _, err := r.Get(ctx, "gone"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("gone after replay: %v", err)
	}
	mustList(t, r, "", "big", "later")
}
