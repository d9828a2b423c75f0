package bolt

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
)

func TestKeyFilter(t *testing.T) {
	f := newKeyFilter(0, maphash.MakeSeed())
	n := f.capacity
	for i := range n {
		f.add("logical/mount/.kv2/metadata/k" + strconv.Itoa(i))
	}
	for i := range n {
		if k := "logical/mount/.kv2/metadata/k" + strconv.Itoa(i); !f.mayContain(k) {
			t.Fatalf("%s was added but the filter says it is absent", k)
		}
	}
	if f.full() {
		t.Fatalf("full() = true after %d adds to a filter for %d keys", n, n)
	}
	// Writing the same keys again does not fill it.
	for i := range n {
		f.add("logical/mount/.kv2/metadata/k" + strconv.Itoa(i))
	}
	if f.full() {
		t.Fatalf("full() = true after the same %d keys were added twice", n)
	}
	// At capacity, an absent key is taken for present in about 0.55 % of
	// lookups (a standard filter of as many bits: 0.24 %; keeping a key's
	// bits in one word costs the difference).
	fp := 0
	for i := range n {
		if f.mayContain("logical/mount/.kv2/metadata/absent" + strconv.Itoa(i)) {
			fp++
		}
	}
	rate := float64(fp) / float64(n)
	t.Logf("false positive rate at capacity: %.4f", rate)
	if rate > 0.01 {
		t.Errorf("false positive rate at capacity = %.4f, want below 0.01", rate)
	}
	// New keys fill it: a few more than capacity at most (those whose
	// bits happened to be set already are not counted).
	extra := 0
	for ; !f.full() && extra < n/50; extra++ {
		f.add("more/" + strconv.Itoa(extra))
	}
	if !f.full() {
		t.Errorf("full() = false after %d distinct keys in a filter for %d", n+extra, n)
	}
}

// TestFilterAnswersAbsentKeys checks that a Get of a key that was never
// written is answered by the filter: bbolt is not read, so no miss is
// cached for it.
func TestFilterAnswersAbsentKeys(t *testing.T) {
	b := mustOpen(t, filepath.Join(t.TempDir(), "f.db"), Options{NoSync: true})
	ctx := t.Context()
	if err := b.Put(ctx, "present", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "absent"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(absent) = %v, want ErrNotFound", err)
	}
	if _, found, known, _ := b.cache.get("absent"); known || found {
		t.Fatalf("the miss of a key the filter rules out went to bbolt (cached: known %v, found %v)", known, found)
	}
	if v, err := b.Get(ctx, "present"); err != nil || string(v) != "v" {
		t.Fatalf("Get(present) = %q, %v", v, err)
	}
}

// TestFilterGrows writes more keys than the first filter was made for, so
// that the writer builds a larger one, and checks that no key is lost on
// the way, nor after deletes, a reopen and a restore.
func TestFilterGrows(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 160k keys")
	}
	path := filepath.Join(t.TempDir(), "g.db")
	// No read cache: every Get below goes through the filter.
	b, err := Open(path, Options{NoSync: true, CheckpointBytes: 4 << 20, CacheBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first := b.filter.Load()
	n := first.capacity*5/2 + 1000
	key := func(i int) string { return fmt.Sprintf("k/%06d", i) }
	const chunk = 4096
	for lo := 0; lo < n; lo += chunk {
		var ops []storage.Op
		for i := lo; i < min(lo+chunk, n); i++ {
			ops = append(ops, storage.Op{Key: key(i), Value: []byte{byte(i)}})
		}
		if err := b.Transaction(ctx, ops); err != nil {
			t.Fatal(err)
		}
		// Every key written so far stays readable while the filter
		// is replaced.
		for i := 0; i < min(lo+chunk, n); i += 211 {
			if v, err := b.Get(ctx, key(i)); err != nil || v[0] != byte(i) {
				t.Fatalf("after %d keys: Get(%s) = %v, %v", lo+chunk, key(i), v, err)
			}
		}
	}
	if got := b.filter.Load(); got == first || got.capacity <= first.capacity {
		t.Fatalf("filter not rebuilt larger: capacity %d, first %d", got.capacity, first.capacity)
	}
	check := func(stage string, b *Backend, deleted func(int) bool) {
		t.Helper()
		for i := 0; i < n; i += 7 {
			v, err := b.Get(ctx, key(i))
			switch {
			case deleted(i) && !errors.Is(err, storage.ErrNotFound):
				t.Fatalf("%s: Get(%s) of a deleted key = %v, %v", stage, key(i), v, err)
			case !deleted(i) && (err != nil || v[0] != byte(i)):
				t.Fatalf("%s: Get(%s) = %v, %v", stage, key(i), v, err)
			}
		}
	}
	none := func(int) bool { return false }
	check("after the writes", b, none)
	oddDeleted := func(i int) bool { return i%2 == 1 && i < 1000 }
	for i := 1; i < 1000; i += 2 {
		if err := b.Delete(ctx, key(i)); err != nil {
			t.Fatal(err)
		}
	}
	check("after deletes", b, oddDeleted)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b, err = Open(path, Options{NoSync: true, CacheBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	check("after a reopen", b, oddDeleted)
	// A restore of keys the store never held: each is found once
	// Restore returns.
	i := 0
	err = b.Restore(ctx, func() (storage.Entry, error) {
		if i == 3000 {
			return storage.Entry{}, io.EOF
		}
		i++
		return storage.Entry{Key: "restored/" + strconv.Itoa(i), Value: []byte("r")}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3000; i++ {
		if v, err := b.Get(ctx, "restored/"+strconv.Itoa(i)); err != nil || string(v) != "r" {
			t.Fatalf("after a restore: Get(restored/%d) = %q, %v", i, v, err)
		}
	}
	if _, err := b.Get(ctx, key(0)); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("after a restore: Get(%s) of replaced content = %v, want ErrNotFound", key(0), err)
	}
}
