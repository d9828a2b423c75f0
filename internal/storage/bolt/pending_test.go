package bolt

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// A pendingSet gives its keys in order whatever the order of the puts and
// of the calls that ask for the order, once each however often a key was
// written, and the last op on each.
func TestPendingSetOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	p := newPendingSet()
	want := map[string]storage.Op{}
	for round := range 200 {
		for range rng.IntN(50) {
			k := fmt.Sprintf("d%d/k%04d", rng.IntN(3), rng.IntN(500))
			op := storage.Op{Key: k, Value: []byte(fmt.Sprint(round)), Delete: rng.IntN(4) == 0}
			if op.Delete {
				op.Value = nil
			}
			p.put(op)
			want[k] = op
		}
		prefix := fmt.Sprintf("d%d/", rng.IntN(4))
		var got, wantKeys []string
		p.ascend(prefix, func(op storage.Op) bool {
			if w := want[op.Key]; w.Delete != op.Delete || string(w.Value) != string(op.Value) {
				t.Fatalf("round %d: %q: got %+v, want %+v", round, op.Key, op, w)
			}
			got = append(got, op.Key)
			return true
		})
		for k := range want {
			if strings.HasPrefix(k, prefix) {
				wantKeys = append(wantKeys, k)
			}
		}
		slices.Sort(wantKeys)
		if !slices.Equal(got, wantKeys) {
			t.Fatalf("round %d, prefix %q: got %d keys %v, want %d %v", round, prefix, len(got), got, len(wantKeys), wantKeys)
		}
		if p.len() != len(want) {
			t.Fatalf("len %d, want %d", p.len(), len(want))
		}
	}
	// ascend stops when fn says so.
	n := 0
	p.ascend("", func(storage.Op) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("ascend went on after false: %d calls", n)
	}
	var nilSet *pendingSet
	nilSet.ascend("", func(storage.Op) bool { t.Fatal("nil set has keys"); return false })
	if _, ok := nilSet.get("x"); ok || nilSet.len() != 0 {
		t.Fatal("nil set holds something")
	}
}

// Many small writes start a checkpoint by the memory they hold, long
// before the log segment is full, and List still sees every key.
func TestCheckpointByPendingMemory(t *testing.T) {
	const limit = 64 << 10
	b := mustOpen(t, filepath.Join(t.TempDir(), "v.db"), Options{CheckpointBytes: limit, NoSync: true})
	defer b.Close()
	const n = 2000 // about 42 KiB of log records
	for i := range n {
		if err := b.Put(t.Context(), fmt.Sprintf("k/%05d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if b.Stats().Checkpoints == 0 {
		t.Fatal("no checkpoint")
	}
	b.pmu.RLock()
	mem := b.pending.mem
	b.pmu.RUnlock()
	if mem >= pendingMemFactor*limit+pendingEntryOverhead+16 {
		t.Fatalf("pending writes hold %d bytes, want below %d", mem, pendingMemFactor*limit)
	}
	keys, err := b.List(t.Context(), "k/")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != n {
		t.Fatalf("List: %d keys, want %d", len(keys), n)
	}
}
