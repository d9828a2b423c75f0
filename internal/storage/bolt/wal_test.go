package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
		b, err := Open(filepath.Join(t.TempDir(), "v.db"), Options{CheckpointBytes: 1})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	})
	storagetest.RunDurable(t, func(t *testing.T, dir string) storage.Backend {
		b, err := Open(filepath.Join(dir, "v.db"), Options{CheckpointBytes: 1})
		if err != nil {
			t.Fatal(err)
		}
		return b
	})
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
	req := &writeReq{checkpoint: true, done: make(chan error, 1)}
	if err := b.enqueue(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if err := <-req.done; err != nil {
		t.Fatal(err)
	}
}

// List merges checkpointed keys with pending puts and deletes: a directory
// whose keys are all deleted (pending) disappears.
func TestListMergesPendingWrites(t *testing.T) {
	ctx := context.Background()
	b, err := Open(filepath.Join(t.TempDir(), "v.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
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
	for _, pair := range [][2]string{{src, dst}, {walPath(src), walPath(dst)}} {
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
	b, err := Open(src, Options{CheckpointBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	mustPut(t, b, "before", "0")
	b.checkpointNow(t)
	for i := range 50 {
		mustPut(t, b, fmt.Sprintf("k/%02d", i), fmt.Sprint(i))
	}
	b.Delete(ctx, "before")
	// The writer is idle and every write was acknowledged, so reading
	// the end of the log here is ordered after the writer set it.
	end := b.walSize
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
			f, err := os.OpenFile(walPath(dst), os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt(tail, end); err != nil {
				t.Fatal(err)
			}
			f.Close()
			r, err := Open(dst, Options{})
			if err != nil {
				t.Fatal(err)
			}
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
			if r.walSize != 0 {
				t.Fatalf("log not started over: at %d", r.walSize)
			}
			mustPut(t, r, "after", "1")
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			r2, err := Open(dst, Options{})
			if err != nil {
				t.Fatal(err)
			}
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
		r, err := Open(path, Options{CheckpointBytes: 1 << 30})
		if err != nil {
			t.Fatal(err)
		}
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
	b, err := Open(path, Options{CheckpointBytes: limit, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	value := strings.Repeat("v", 500)
	for range 2000 {
		mustPut(t, b, "same", value)
	}
	if b.Stats().Checkpoints == 0 {
		t.Fatal("no checkpoint")
	}
	fi, err := os.Stat(walPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > limit+walChunk {
		t.Fatalf("log file is %d bytes, want at most %d", fi.Size(), limit+walChunk)
	}
}

func TestReadLogRecords(t *testing.T) {
	rec := func(seq uint64, key string) []byte {
		return appendRecord(nil, seq, []*writeReq{{ops: []storage.Op{{Key: key, Value: []byte(key)}, {Key: "d", Delete: true}}}})
	}
	log := slices.Concat(rec(5, "a"), rec(6, "b"), rec(2, "stale"))
	ops, last, torn, err := readLog(bytes.NewReader(log), 4)
	if err != nil || last != 6 || torn {
		t.Fatalf("last %d torn %v err %v", last, torn, err)
	}
	var keys []string
	for _, op := range ops {
		keys = append(keys, op.Key)
	}
	if !slices.Equal(keys, []string{"a", "d", "b", "d"}) || !ops[1].Delete || string(ops[0].Value) != "a" {
		t.Fatalf("ops %+v", ops)
	}
	if ops, last, _, _ := readLog(bytes.NewReader(log), 5); len(ops) != 2 || last != 6 {
		t.Fatalf("applied=5: %d ops, last %d", len(ops), last)
	}
	if ops, _, torn, _ := readLog(bytes.NewReader(rec(7, "x")), 4); len(ops) != 0 || !torn {
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
		ops, last, torn, err := readLog(bytes.NewReader(tc.log), 4)
		if err != nil || last != 5 || len(ops) != 2 || torn != tc.torn {
			t.Errorf("%s: %d ops, last %d, torn %v, err %v", name, len(ops), last, torn, err)
		}
	}
	if _, _, _, err := readLog(errReader{}, 0); err == nil {
		t.Fatal("read error ignored")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }

func FuzzReadLog(f *testing.F) {
	f.Add(appendRecord(nil, 1, []*writeReq{{ops: []storage.Op{{Key: "a", Value: []byte("b")}}}}), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, applied uint64) {
		_, _, _, _ = readLog(bytes.NewReader(data), applied) // must not panic
	})
}
