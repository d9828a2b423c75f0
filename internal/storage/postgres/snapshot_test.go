package postgres

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/storage"
)

// fill puts n keys under prefix, in transactions of 500.
func fill(t *testing.T, b *Backend, prefix string, n int) map[string]string {
	t.Helper()
	m := map[string]string{}
	var ops []storage.Op
	for i := range n {
		k, v := fmt.Sprintf("%s%05d", prefix, i), fmt.Sprintf("value %d", i)
		m[k] = v
		ops = append(ops, storage.Op{Key: k, Value: []byte(v)})
		if len(ops) == 500 || i == n-1 {
			if err := b.Transaction(t.Context(), ops); err != nil {
				t.Fatal(err)
			}
			ops = ops[:0]
		}
	}
	return m
}

func snapshot(t *testing.T, b *Backend) ([]string, map[string]string) {
	t.Helper()
	var keys []string
	m := map[string]string{}
	err := b.Snapshot(t.Context(), func(k string, v []byte) error {
		keys = append(keys, k)
		m[k] = string(v)
		return nil
	})
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	return keys, m
}

// TestSnapshotRoundTrip copies a store of several batches into another
// with Snapshot and Restore.
func TestSnapshotRoundTrip(t *testing.T) {
	src := open(t, pgtest.New(t).AdminURL(), Options{})
	want := fill(t, src, "data/", 2*snapshotBatch+17)
	mustPut(t, src, "empty", nil)
	want["empty"] = ""
	mustPut(t, src, "bin/\xff\x00", []byte{0, 1, 2})
	want["bin/\xff\x00"] = "\x00\x01\x02"

	keys, got := snapshot(t, src)
	if !slices.IsSorted(keys) || len(keys) != len(want) {
		t.Fatalf("Snapshot gave %d keys (sorted: %v), want %d", len(keys), slices.IsSorted(keys), len(want))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatal("Snapshot differs from the content")
	}

	dst := open(t, pgtest.New(t).AdminURL(), Options{})
	mustPut(t, dst, "old/stale", []byte("gone after restore"))
	mustPut(t, dst, "data/00000", []byte("overwritten"))
	i := 0
	err := dst.Restore(t.Context(), func() (storage.Entry, error) {
		if i == len(keys) {
			return storage.Entry{}, io.EOF
		}
		k := keys[i]
		i++
		return storage.Entry{Key: k, Value: []byte(got[k])}, nil
	})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if after := contents(t, dst); fmt.Sprint(after) != fmt.Sprint(want) {
		t.Fatalf("after Restore the content differs (%d keys, want %d)", len(after), len(want))
	}
	if v, err := dst.Get(t.Context(), "empty"); err != nil || len(v) != 0 {
		t.Fatalf("Get(empty) = %q, %v", v, err)
	}
	// A second restore on the same pooled connections works too, and an
	// empty one empties the store.
	if err := dst.Restore(t.Context(), entries(map[string]string{"one": "1"})); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(t.Context(), entries(nil)); err != nil {
		t.Fatal(err)
	}
	if after := contents(t, dst); len(after) != 0 {
		t.Fatalf("after an empty Restore: %v", after)
	}
}

// TestSnapshotConsistent moves value between the first and the last key
// of a store bigger than one batch, in transactions, while snapshots run:
// every snapshot sees the two add up.
func TestSnapshotConsistent(t *testing.T) {
	b := open(t, pgtest.New(t).AdminURL(), Options{})
	ctx := t.Context()
	fill(t, b, "m/", 3*snapshotBatch)
	const total = 1000
	put := func(a, z int) []storage.Op {
		return []storage.Op{
			{Key: "a", Value: []byte(strconv.Itoa(a))},
			{Key: "z", Value: []byte(strconv.Itoa(z))},
		}
	}
	if err := b.Transaction(ctx, put(total, 0)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i = (i + 7) % total {
			select {
			case <-stop:
				return
			default:
			}
			if err := b.Transaction(ctx, put(i, total-i)); err != nil {
				t.Error(err)
				return
			}
		}
	})
	for range 10 {
		_, m := snapshot(t, b)
		a, _ := strconv.Atoi(m["a"])
		z, _ := strconv.Atoi(m["z"])
		if a+z != total || len(m) != 3*snapshotBatch+2 {
			t.Errorf("a snapshot saw a=%d z=%d (%d keys): not one moment", a, z, len(m))
		}
	}
	close(stop)
	wg.Wait()
}

func TestSnapshotStopsAtError(t *testing.T) {
	b := open(t, pgtest.New(t).AdminURL(), Options{})
	fill(t, b, "k/", 50)
	stop := errors.New("enough")
	n := 0
	err := b.Snapshot(t.Context(), func(string, []byte) error {
		n++
		if n == 10 {
			return stop
		}
		return nil
	})
	if err != stop || n != 10 {
		t.Fatalf("Snapshot = %v after %d entries, want %v after 10", err, n, stop)
	}
}

// TestRestoreFailureKeepsContent: a failing source, an invalid key or a
// repeated key leaves the old content as it was.
func TestRestoreFailureKeepsContent(t *testing.T) {
	b := open(t, pgtest.New(t).AdminURL(), Options{})
	before := fill(t, b, "old/", 100)
	boom := errors.New("source broke")
	cases := []struct {
		name    string
		entries []storage.Entry
		end     error
		want    error
	}{
		{"source error", []storage.Entry{{Key: "new/a", Value: []byte("a")}, {Key: "new/b"}}, boom, boom},
		{"invalid key", []storage.Entry{{Key: "new/a"}, {Key: "/bad"}}, io.EOF, storage.ErrInvalidKey},
		{"repeated key", []storage.Entry{{Key: "new/a"}, {Key: "new/a"}}, io.EOF, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			i := 0
			err := b.Restore(t.Context(), func() (storage.Entry, error) {
				if i == len(c.entries) {
					return storage.Entry{}, c.end
				}
				i++
				return c.entries[i-1], nil
			})
			if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
				t.Fatalf("Restore = %v, want %v", err, c.want)
			}
			if after := contents(t, b); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatal("a failed Restore changed the content")
			}
		})
	}
	// The backend still works, and restores.
	if err := b.Restore(t.Context(), entries(map[string]string{"fresh": "1"})); err != nil {
		t.Fatal(err)
	}
	if after := contents(t, b); fmt.Sprint(after) != "map[fresh:1]" {
		t.Fatalf("content %v", after)
	}
}
