// Package storagetest is the conformance suite that every storage.Backend
// must pass. It is test scaffolding: import it only from _test.go files, so
// that it is never compiled into a server binary.
//
// [Run] checks the behaviour of a single open backend: lookups, copies,
// listing, invalid keys, concurrency, cancelled contexts and, when the
// backend implements them, [storage.Transactional] and [storage.Closer].
// [RunDurable] checks that writes, deletes and restores survive closing and
// reopening a file-backed store. [RunSnapshotter] checks
// [storage.Snapshotter].
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// suiteCase is one subtest of [Run].
type suiteCase struct {
	name string
	fn   func(t *testing.T, b storage.Backend)
}

// Run runs the conformance suite. open must return a fresh, empty backend
// each time it is called; it is called once per subtest with that
// subtest's t. If the backend implements [storage.Closer], Run closes it
// when the subtest ends, so open need not.
func Run(t *testing.T, open func(t *testing.T) storage.Backend) {
	t.Helper()
	cases := []suiteCase{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"PutCopiesValue", testPutCopiesValue},
		{"GetReturnsCopy", testGetReturnsCopy},
		{"Overwrite", testOverwrite},
		{"Delete", testDelete},
		{"DeleteMissing", testDeleteMissing},
		{"InvalidKeys", testInvalidKeys},
		{"List", testList},
		{"ListMissingPrefix", testListMissingPrefix},
		{"ListEmptyBackend", testListEmptyBackend},
		{"ListAfterDelete", testListAfterDelete},
		{"EmptyValue", testEmptyValue},
		{"BinaryValue", testBinaryValue},
		{"LargeValue", testLargeValue},
		{"ManyKeys", testManyKeys},
		{"Concurrent", testConcurrent},
		{"CancelledContext", testCancelledContext},
		{"Transaction", testTransaction},
		{"TransactionInOrder", testTransactionInOrder},
		{"TransactionInvalidKey", testTransactionInvalidKey},
		{"TransactionCopiesValues", testTransactionCopiesValues},
		{"TransactionAtomicList", testTransactionAtomicList},
		{"Close", testClose},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := openClosed(t, open)
			tc.fn(t, b)
		})
	}
}

// RunDurable checks that a backend's state survives Close and reopen. open
// is called with the same directory for every reopen of a subtest and must
// return a backend that implements [storage.Closer].
func RunDurable(t *testing.T, open func(t *testing.T, dir string) storage.Backend) {
	t.Helper()
	t.Run("ReopenKeepsWrites", func(t *testing.T) {
		dir := t.TempDir()
		ctx := t.Context()
		b := open(t, dir)
		want := map[string][]byte{}
		for i := range 50 {
			k := fmt.Sprintf("durable/k%02d", i)
			v := []byte(fmt.Sprintf("value %d", i))
			mustPut(t, b, k, v)
			want[k] = v
		}
		mustPut(t, b, "durable/sub/leaf", []byte("leaf"))
		want["durable/sub/leaf"] = []byte("leaf")
		mustPut(t, b, "durable/empty", nil)
		want["durable/empty"] = []byte{}
		mustClose(t, b)

		b = open(t, dir)
		defer mustClose(t, b)
		for k, v := range want {
			got, err := b.Get(ctx, k)
			if err != nil {
				t.Fatalf("after reopen, Get(%q): %v", k, err)
			}
			if !bytes.Equal(got, v) {
				t.Fatalf("after reopen, Get(%q) = %q, want %q", k, got, v)
			}
		}
		got := mustList(t, b, "durable/")
		if len(got) != 52 || got[0] != "empty" || got[51] != "sub/" {
			t.Fatalf("after reopen, List(durable/) = %q, want 52 entries from %q to %q", got, "empty", "sub/")
		}
	})

	t.Run("ReopenForgetsDeletes", func(t *testing.T) {
		dir := t.TempDir()
		b := open(t, dir)
		mustPut(t, b, "gone/a", []byte("a"))
		mustPut(t, b, "gone/b", []byte("b"))
		mustPut(t, b, "kept", []byte("k"))
		mustClose(t, b)

		b = open(t, dir)
		mustDelete(t, b, "gone/a")
		mustDelete(t, b, "gone/b")
		mustClose(t, b)

		b = open(t, dir)
		defer mustClose(t, b)
		wantMissing(t, b, "gone/a")
		wantMissing(t, b, "gone/b")
		wantValue(t, b, "kept", []byte("k"))
		wantList(t, b, "", []string{"kept"})
	})

	t.Run("ReopenKeepsTransaction", func(t *testing.T) {
		dir := t.TempDir()
		b := open(t, dir)
		tb, ok := b.(storage.Transactional)
		if !ok {
			mustClose(t, b)
			t.Skip("backend does not implement storage.Transactional")
		}
		mustPut(t, b, "tx/old", []byte("old"))
		err := tb.Transaction(t.Context(), []storage.Op{
			{Key: "tx/a", Value: []byte("1")},
			{Key: "tx/b", Value: []byte("2")},
			{Key: "tx/old", Delete: true},
		})
		if err != nil {
			t.Fatalf("Transaction: %v", err)
		}
		mustClose(t, b)

		b = open(t, dir)
		defer mustClose(t, b)
		wantValue(t, b, "tx/a", []byte("1"))
		wantValue(t, b, "tx/b", []byte("2"))
		wantMissing(t, b, "tx/old")
	})

	t.Run("ReopenKeepsRestore", func(t *testing.T) {
		dir := t.TempDir()
		b := open(t, dir)
		s, ok := storage.SnapshotterOf(b)
		if !ok {
			mustClose(t, b)
			t.Skip("backend does not implement storage.Snapshotter")
		}
		mustPut(t, b, "old/a", []byte("a"))
		mustPut(t, b, "old/b", []byte("b"))
		if err := s.Restore(t.Context(), feed(entries("new/a", "1", "new/b", "2"))); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		mustPut(t, b, "after", []byte("3"))
		mustClose(t, b)

		b = open(t, dir)
		defer mustClose(t, b)
		s, _ = storage.SnapshotterOf(b)
		wantSnapshot(t, b, s, entries("new/a", "1", "new/b", "2", "after", "3"))
	})
}

func testGetMissing(t *testing.T, b storage.Backend) {
	wantMissing(t, b, "missing")
	wantMissing(t, b, "missing/deeper/still")
	mustPut(t, b, "dir/leaf", []byte("x"))
	// A directory is not a key.
	wantMissing(t, b, "dir")
	wantMissing(t, b, "dir/")
}

func testPutGet(t *testing.T, b storage.Backend) {
	mustPut(t, b, "k", []byte("v"))
	mustPut(t, b, "a/b/c", []byte("deep"))
	wantValue(t, b, "k", []byte("v"))
	wantValue(t, b, "a/b/c", []byte("deep"))
}

func testPutCopiesValue(t *testing.T, b storage.Backend) {
	v := []byte("original")
	mustPut(t, b, "k", v)
	copy(v, "MUTATED!")
	wantValue(t, b, "k", []byte("original"))
}

func testGetReturnsCopy(t *testing.T, b storage.Backend) {
	mustPut(t, b, "k", []byte("original"))
	got := mustGet(t, b, "k")
	copy(got, "MUTATED!")
	wantValue(t, b, "k", []byte("original"))
}

func testOverwrite(t *testing.T, b storage.Backend) {
	mustPut(t, b, "k", []byte("first"))
	mustPut(t, b, "k", []byte("second, and longer"))
	wantValue(t, b, "k", []byte("second, and longer"))
	mustPut(t, b, "k", []byte("3"))
	wantValue(t, b, "k", []byte("3"))
	wantList(t, b, "", []string{"k"})
}

func testDelete(t *testing.T, b storage.Backend) {
	mustPut(t, b, "k", []byte("v"))
	mustPut(t, b, "other", []byte("o"))
	mustDelete(t, b, "k")
	wantMissing(t, b, "k")
	wantValue(t, b, "other", []byte("o"))
	// The key can be written again after a delete.
	mustPut(t, b, "k", []byte("again"))
	wantValue(t, b, "k", []byte("again"))
}

func testDeleteMissing(t *testing.T, b storage.Backend) {
	mustDelete(t, b, "never/existed")
	mustPut(t, b, "k", []byte("v"))
	mustDelete(t, b, "k")
	mustDelete(t, b, "k")
	wantMissing(t, b, "k")
}

func testInvalidKeys(t *testing.T, b storage.Backend) {
	ctx := t.Context()
	for _, key := range []string{"", "/x", "/"} {
		if _, err := b.Get(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Get(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if err := b.Put(ctx, key, []byte("v")); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Put(%q) error = %v, want ErrInvalidKey", key, err)
		}
		if err := b.Delete(ctx, key); !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Delete(%q) error = %v, want ErrInvalidKey", key, err)
		}
	}
	// Nothing was stored by the rejected puts.
	wantList(t, b, "", nil)
}

// listKeys exercises the edge cases of List: leaves that sort between a
// name and its directory ("bar!" between "bar" and "bar/"), directories that
// share a string prefix ("bar/" and "barbaz/"), a key that is itself a
// directory name ("edge/", "only/"), and deep subtrees.
var listKeys = []string{
	"fo",
	"foo",
	"foo-x",
	"foo/bar",
	"foo/bar!",
	"foo/bar/deep/er",
	"foo/barbaz/x",
	"foo/baz",
	"foo0",
	"edge/",
	"edge/child",
	"only/",
	"z/y/x/w",
}

func testList(t *testing.T, b storage.Backend) {
	for _, k := range listKeys {
		mustPut(t, b, k, []byte(k))
	}
	cases := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"edge/", "fo", "foo", "foo-x", "foo/", "foo0", "only/", "z/"}},
		{"foo/", []string{"bar", "bar!", "bar/", "barbaz/", "baz"}},
		{"foo/bar/", []string{"deep/"}},
		{"foo/bar/deep/", []string{"er"}},
		{"foo/barbaz/", []string{"x"}},
		{"edge/", []string{"child"}},
		{"only/", nil},
		{"z/", []string{"y/"}},
		{"z/y/", []string{"x/"}},
		{"z/y/x/", []string{"w"}},
	}
	for _, c := range cases {
		wantList(t, b, c.prefix, c.want)
	}
	// Every listed key is still readable: List did not disturb anything.
	for _, k := range listKeys {
		wantValue(t, b, k, []byte(k))
	}
}

func testListMissingPrefix(t *testing.T, b storage.Backend) {
	for _, k := range listKeys {
		mustPut(t, b, k, []byte(k))
	}
	for _, p := range []string{"nope/", "foo/ba/", "foo/bar/deep/er/", "fo/", "a/", "zz/"} {
		wantList(t, b, p, nil)
	}
}

func testListEmptyBackend(t *testing.T, b storage.Backend) {
	wantList(t, b, "", nil)
	wantList(t, b, "any/", nil)
}

func testListAfterDelete(t *testing.T, b storage.Backend) {
	mustPut(t, b, "d/x/1", []byte("1"))
	mustPut(t, b, "d/x/2", []byte("2"))
	mustPut(t, b, "d/y", []byte("y"))
	wantList(t, b, "d/", []string{"x/", "y"})
	mustDelete(t, b, "d/x/1")
	wantList(t, b, "d/", []string{"x/", "y"})
	mustDelete(t, b, "d/x/2")
	wantList(t, b, "d/", []string{"y"})
	mustDelete(t, b, "d/y")
	wantList(t, b, "d/", nil)
	wantList(t, b, "", nil)
}

func testEmptyValue(t *testing.T, b storage.Backend) {
	mustPut(t, b, "empty", []byte{})
	mustPut(t, b, "nil", nil)
	for _, k := range []string{"empty", "nil"} {
		got := mustGet(t, b, k)
		if len(got) != 0 {
			t.Errorf("Get(%q) = %q, want empty", k, got)
		}
	}
	wantList(t, b, "", []string{"empty", "nil"})
	// Overwriting an empty value and back.
	mustPut(t, b, "empty", []byte("x"))
	wantValue(t, b, "empty", []byte("x"))
	mustPut(t, b, "empty", nil)
	wantValue(t, b, "empty", []byte{})
}

func testBinaryValue(t *testing.T, b storage.Backend) {
	v := make([]byte, 512)
	for i := range v {
		v[i] = byte(i)
	}
	// Both ascending and descending, so a 0x00 byte appears at both ends.
	rev := slices.Clone(v)
	slices.Reverse(rev)
	mustPut(t, b, "bin/asc", v)
	mustPut(t, b, "bin/desc", rev)
	wantValue(t, b, "bin/asc", v)
	wantValue(t, b, "bin/desc", rev)
}

func testLargeValue(t *testing.T, b storage.Backend) {
	v := make([]byte, 1<<20)
	for i := range v {
		v[i] = byte(i*7 + i>>11)
	}
	mustPut(t, b, "large", v)
	wantValue(t, b, "large", v)
	// Replacing it with something small must not leave a tail behind.
	mustPut(t, b, "large", []byte("small"))
	wantValue(t, b, "large", []byte("small"))
}

func testManyKeys(t *testing.T, b storage.Backend) {
	const leaves, dirs, perDir = 1500, 20, 25
	var want []string
	for i := range leaves {
		k := fmt.Sprintf("k%04d", i)
		mustPut(t, b, "many/"+k, []byte(k))
		want = append(want, k)
	}
	for d := range dirs {
		for i := range perDir {
			mustPut(t, b, fmt.Sprintf("many/d%02d/x%03d", d, i), []byte("x"))
		}
		want = append(want, fmt.Sprintf("d%02d/", d))
	}
	slices.Sort(want)
	got := mustList(t, b, "many/")
	if !slices.IsSorted(got) {
		t.Errorf("List(many/) is not sorted")
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(many/) returned %d entries, want %d (first diff: %s)", len(got), len(want), firstDiff(got, want))
	}
	inner := mustList(t, b, "many/d07/")
	if len(inner) != perDir || inner[0] != "x000" || inner[perDir-1] != fmt.Sprintf("x%03d", perDir-1) {
		t.Fatalf("List(many/d07/) = %d entries %q..., want %d", len(inner), inner, perDir)
	}
	wantList(t, b, "", []string{"many/"})
	for _, i := range []int{0, 1, 777, leaves - 1} {
		k := fmt.Sprintf("k%04d", i)
		wantValue(t, b, "many/"+k, []byte(k))
	}
}

func testConcurrent(t *testing.T, b storage.Backend) {
	const workers, iters, keysPer = 16, 100, 8
	ctx := t.Context()
	var wg sync.WaitGroup
	finals := make([]map[string][]byte, workers) // nil value: deleted
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			final := map[string][]byte{}
			finals[g] = final
			for i := range iters {
				k := fmt.Sprintf("conc/g%02d/k%d", g, i%keysPer)
				v := []byte(fmt.Sprintf("g%02d-i%03d", g, i))
				if err := b.Put(ctx, k, v); err != nil {
					t.Errorf("Put(%q): %v", k, err)
					return
				}
				final[k] = v
				got, err := b.Get(ctx, k)
				if err != nil || !bytes.Equal(got, v) {
					t.Errorf("Get(%q) = %q, %v; want %q", k, got, err, v)
					return
				}
				shared := []byte(fmt.Sprintf("g%02d", g))
				if err := b.Put(ctx, "conc/shared", shared); err != nil {
					t.Errorf("Put(conc/shared): %v", err)
					return
				}
				if got, err := b.Get(ctx, "conc/shared"); err != nil || !validShared(got) {
					t.Errorf("Get(conc/shared) = %q, %v", got, err)
					return
				}
				if i%3 == 2 {
					if err := b.Delete(ctx, k); err != nil {
						t.Errorf("Delete(%q): %v", k, err)
						return
					}
					final[k] = nil
				}
				if i%10 == 0 {
					if _, err := b.List(ctx, "conc/"); err != nil {
						t.Errorf("List(conc/): %v", err)
						return
					}
				}
			}
			// Leave one key behind so the directory exists at the end.
			if err := b.Put(ctx, fmt.Sprintf("conc/g%02d/last", g), []byte("last")); err != nil {
				t.Errorf("Put(last): %v", err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for _, final := range finals {
		for k, v := range final {
			if v == nil {
				wantMissing(t, b, k)
			} else {
				wantValue(t, b, k, v)
			}
		}
	}
	var wantTop []string
	for g := range workers {
		wantTop = append(wantTop, fmt.Sprintf("g%02d/", g))
	}
	wantTop = append(wantTop, "shared")
	wantList(t, b, "conc/", wantTop)
	if got := mustGet(t, b, "conc/shared"); !validShared(got) {
		t.Errorf("final conc/shared = %q", got)
	}
}

// validShared reports whether v is a value some worker of testConcurrent
// wrote to the shared key: "g00" to "g15".
func validShared(v []byte) bool {
	if len(v) != 3 || v[0] != 'g' || v[1] < '0' || v[1] > '9' || v[2] < '0' || v[2] > '9' {
		return false
	}
	return int(v[1]-'0')*10+int(v[2]-'0') < 16
}

// testCancelledContext only checks that a cancelled context neither panics
// nor corrupts: each call may fail or succeed, and afterwards every key holds
// either its old or its new value.
func testCancelledContext(t *testing.T, b storage.Backend) {
	mustPut(t, b, "cancel/a", []byte("v1"))
	mustPut(t, b, "cancel/c", []byte("c"))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_ = b.Put(ctx, "cancel/a", []byte("v2"))
	_ = b.Put(ctx, "cancel/b", []byte("b"))
	_ = b.Delete(ctx, "cancel/c")
	_, _ = b.Get(ctx, "cancel/a")
	_, _ = b.List(ctx, "cancel/")
	if tb, ok := b.(storage.Transactional); ok {
		_ = tb.Transaction(ctx, []storage.Op{
			{Key: "cancel/t1", Value: []byte("t1")},
			{Key: "cancel/t2", Value: []byte("t2")},
		})
	}

	oneOf(t, b, "cancel/a", []byte("v1"), []byte("v2"))
	oneOf(t, b, "cancel/b", nil, []byte("b"))
	oneOf(t, b, "cancel/c", []byte("c"), nil)
	if _, ok := b.(storage.Transactional); ok {
		_, err1 := b.Get(t.Context(), "cancel/t1")
		_, err2 := b.Get(t.Context(), "cancel/t2")
		if (err1 == nil) != (err2 == nil) {
			t.Errorf("cancelled transaction was half applied: t1 err %v, t2 err %v", err1, err2)
		}
	}
	// The backend still works with a live context.
	mustPut(t, b, "cancel/after", []byte("ok"))
	wantValue(t, b, "cancel/after", []byte("ok"))
}

// oneOf checks that key holds one of the values; a nil value means absent.
func oneOf(t *testing.T, b storage.Backend, key string, vals ...[]byte) {
	t.Helper()
	got, err := b.Get(t.Context(), key)
	for _, v := range vals {
		if v == nil && errors.Is(err, storage.ErrNotFound) {
			return
		}
		if v != nil && err == nil && bytes.Equal(got, v) {
			return
		}
	}
	t.Errorf("Get(%q) = %q, %v; want one of %q", key, got, err, vals)
}

func transactional(t *testing.T, b storage.Backend) storage.Transactional {
	t.Helper()
	tb, ok := b.(storage.Transactional)
	if !ok {
		t.Skip("backend does not implement storage.Transactional")
	}
	return tb
}

func testTransaction(t *testing.T, b storage.Backend) {
	tb := transactional(t, b)
	mustPut(t, b, "tx/old", []byte("old"))
	mustPut(t, b, "tx/keep", []byte("keep"))
	err := tb.Transaction(t.Context(), []storage.Op{
		{Key: "tx/a", Value: []byte("1")},
		{Key: "tx/old", Delete: true},
		{Key: "tx/dir/b", Value: []byte("2")},
		{Key: "tx/missing", Delete: true},
		{Key: "tx/empty", Value: nil},
	})
	if err != nil {
		t.Fatalf("Transaction: %v", err)
	}
	wantValue(t, b, "tx/a", []byte("1"))
	wantValue(t, b, "tx/dir/b", []byte("2"))
	wantValue(t, b, "tx/keep", []byte("keep"))
	wantValue(t, b, "tx/empty", []byte{})
	wantMissing(t, b, "tx/old")
	wantMissing(t, b, "tx/missing")
	wantList(t, b, "tx/", []string{"a", "dir/", "empty", "keep"})
}

func testTransactionInOrder(t *testing.T, b storage.Backend) {
	tb := transactional(t, b)
	mustPut(t, b, "ord/b", []byte("b0"))
	err := tb.Transaction(t.Context(), []storage.Op{
		{Key: "ord/a", Value: []byte("a1")},
		{Key: "ord/a", Value: []byte("a2")},
		{Key: "ord/b", Delete: true},
		{Key: "ord/b", Value: []byte("b1")},
		{Key: "ord/c", Value: []byte("c1")},
		{Key: "ord/c", Delete: true},
	})
	if err != nil {
		t.Fatalf("Transaction: %v", err)
	}
	wantValue(t, b, "ord/a", []byte("a2"))
	wantValue(t, b, "ord/b", []byte("b1"))
	wantMissing(t, b, "ord/c")
}

func testTransactionInvalidKey(t *testing.T, b storage.Backend) {
	tb := transactional(t, b)
	mustPut(t, b, "inv/x", []byte("x"))
	for _, bad := range []string{"", "/bad"} {
		err := tb.Transaction(t.Context(), []storage.Op{
			{Key: "inv/y", Value: []byte("y")},
			{Key: "inv/x", Delete: true},
			{Key: bad, Value: []byte("bad")},
			{Key: "inv/z", Value: []byte("z")},
		})
		if !errors.Is(err, storage.ErrInvalidKey) {
			t.Errorf("Transaction with key %q: error = %v, want ErrInvalidKey", bad, err)
		}
		wantMissing(t, b, "inv/y")
		wantMissing(t, b, "inv/z")
		wantValue(t, b, "inv/x", []byte("x"))
	}
	wantList(t, b, "", []string{"inv/"})
}

func testTransactionCopiesValues(t *testing.T, b storage.Backend) {
	tb := transactional(t, b)
	v := []byte("original")
	if err := tb.Transaction(t.Context(), []storage.Op{{Key: "k", Value: v}}); err != nil {
		t.Fatalf("Transaction: %v", err)
	}
	copy(v, "MUTATED!")
	wantValue(t, b, "k", []byte("original"))
}

// testTransactionAtomicList moves one key back and forth between two names
// with transactions while readers list the directory: since a List is one
// read, it must always see exactly one of the two names.
func testTransactionAtomicList(t *testing.T, b storage.Backend) {
	tb := transactional(t, b)
	ctx := t.Context()
	mustPut(t, b, "atom/left", []byte("v"))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				got, err := b.List(ctx, "atom/")
				if err != nil {
					t.Errorf("List(atom/): %v", err)
					return
				}
				if len(got) != 1 {
					t.Errorf("List(atom/) = %q, want exactly one entry", got)
					return
				}
			}
		}()
	}
	from, to := "atom/left", "atom/right"
	for range 200 {
		err := tb.Transaction(ctx, []storage.Op{
			{Key: from, Delete: true},
			{Key: to, Value: []byte("v")},
		})
		if err != nil {
			t.Errorf("Transaction: %v", err)
			break
		}
		from, to = to, from
	}
	close(stop)
	wg.Wait()
	wantList(t, b, "atom/", []string{strings.TrimPrefix(from, "atom/")})
}

func testClose(t *testing.T, b storage.Backend) {
	c, ok := b.(storage.Closer)
	if !ok {
		t.Skip("backend does not implement storage.Closer")
	}
	ctx := t.Context()
	mustPut(t, b, "k", []byte("v"))
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := b.Get(ctx, "k"); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Get after Close: error = %v, want ErrClosed", err)
	}
	if err := b.Put(ctx, "k", []byte("v")); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Put after Close: error = %v, want ErrClosed", err)
	}
	if err := b.Delete(ctx, "k"); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("Delete after Close: error = %v, want ErrClosed", err)
	}
	if _, err := b.List(ctx, ""); !errors.Is(err, storage.ErrClosed) {
		t.Errorf("List after Close: error = %v, want ErrClosed", err)
	}
	if tb, ok := b.(storage.Transactional); ok {
		err := tb.Transaction(ctx, []storage.Op{{Key: "k", Value: []byte("v")}})
		if !errors.Is(err, storage.ErrClosed) {
			t.Errorf("Transaction after Close: error = %v, want ErrClosed", err)
		}
	}
	if err := c.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
}

func mustPut(t *testing.T, b storage.Backend, key string, value []byte) {
	t.Helper()
	if err := b.Put(t.Context(), key, value); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func mustGet(t *testing.T, b storage.Backend, key string) []byte {
	t.Helper()
	v, err := b.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func mustDelete(t *testing.T, b storage.Backend, key string) {
	t.Helper()
	if err := b.Delete(t.Context(), key); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
}

func mustList(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	got, err := b.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

func mustClose(t *testing.T, b storage.Backend) {
	t.Helper()
	c, ok := b.(storage.Closer)
	if !ok {
		t.Fatal("RunDurable needs a backend that implements storage.Closer")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func wantValue(t *testing.T, b storage.Backend, key string, want []byte) {
	t.Helper()
	got := mustGet(t, b, key)
	if !bytes.Equal(got, want) {
		if len(got) > 64 || len(want) > 64 {
			t.Fatalf("Get(%q) returned %d bytes, want %d bytes (or same length, different content)", key, len(got), len(want))
		}
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func wantMissing(t *testing.T, b storage.Backend, key string) {
	t.Helper()
	got, err := b.Get(t.Context(), key)
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// wantList compares List(prefix) with want; nil and empty are equal.
func wantList(t *testing.T, b storage.Backend, prefix string, want []string) {
	t.Helper()
	got := mustList(t, b, prefix)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
	}
}

func firstDiff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("index %d: got %q, want %q", i, got[i], want[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(got), len(want))
}

// openClosed opens a backend for one subtest and closes it at its end.
func openClosed(t *testing.T, open func(t *testing.T) storage.Backend) storage.Backend {
	t.Helper()
	b := open(t)
	if b == nil {
		t.Fatal("open returned a nil backend")
	}
	if c, ok := b.(storage.Closer); ok {
		t.Cleanup(func() {
			if err := c.Close(); err != nil && !errors.Is(err, storage.ErrClosed) {
				t.Errorf("Close: %v", err)
			}
		})
	}
	return b
}
