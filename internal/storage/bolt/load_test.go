package bolt_test

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/bolt"
)

// BenchmarkWriteLoad models the server's write load on the store: 32
// concurrent writers, each op a Transaction of two new random keys of
// about 300 bytes (a KV v2 write, or a token's entries), preceded by two
// Gets of the keys, which are absent (the existence check and the
// handler's read), into a store that holds loadPrefill keys already. Its
// time includes Close, so the last checkpoint is paid for. With
// -benchtime of some 100000x it crosses several checkpoints. Wall time is
// noise on a shared machine: cpu-µs/op, the process's user and system
// time per op, is the figure to compare.
func BenchmarkWriteLoad(b *testing.B) {
	be := openTemp(b, bolt.Options{})
	ctx := b.Context()
	value := make([]byte, 300)
	_, _ = rand.Read(value)
	prefill(b, be, value)
	var failed atomic.Bool
	b.SetParallelism(32 / max(1, runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	st0 := be.Stats()
	cpu0 := bolt.CPUTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var raw [32]byte
		for pb.Next() {
			_, _ = rand.Read(raw[:])
			h := hex.EncodeToString(raw[:])
			k1 := "logical/4f6e2a1c-0d3b-4c1e-9f2a-6b7d8e9fa0b1/.kv2/metadata/" + h
			k2 := "logical/4f6e2a1c-0d3b-4c1e-9f2a-6b7d8e9fa0b1/.kv2/versions/" + h + "/1"
			for range 2 {
				if _, err := be.Get(ctx, k1); !errors.Is(err, storage.ErrNotFound) {
					failed.Store(true)
					return
				}
			}
			if err := be.Transaction(ctx, []storage.Op{{Key: k1, Value: value[:120]}, {Key: k2, Value: value}}); err != nil {
				failed.Store(true)
				return
			}
		}
	})
	if err := be.Close(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if failed.Load() {
		b.Fatal("a Get or Transaction failed")
	}
	b.ReportMetric(float64(bolt.CPUTime()-cpu0)/1e3/float64(b.N), "cpu-µs/op")
	st := be.Stats()
	st.Checkpoints -= st0.Checkpoints
	if st.Commits > 0 {
		b.ReportMetric(float64(st.Writes)/float64(st.Commits), "writes/commit")
	}
	b.ReportMetric(float64(st.Checkpoints), "checkpoints")
}

// loadPrefill is the number of keys in the store before BenchmarkWriteLoad
// starts: the tree a checkpoint writes into is not a small one.
const loadPrefill = 100000

// prefill writes loadPrefill random keys in large transactions and
// checkpoints them.
func prefill(b *testing.B, be *bolt.Backend, value []byte) {
	b.Helper()
	var raw [32]byte
	ops := make([]storage.Op, 0, 1000)
	for i := 0; i < loadPrefill; i += cap(ops) {
		ops = ops[:0]
		for range cap(ops) {
			_, _ = rand.Read(raw[:])
			ops = append(ops, storage.Op{Key: "logical/4f6e2a1c-0d3b-4c1e-9f2a-6b7d8e9fa0b1/.kv2/versions/" + hex.EncodeToString(raw[:]) + "/1", Value: value})
		}
		if err := be.Transaction(b.Context(), ops); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := be.Backup(io.Discard); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkListWhileWriting lists a directory of 10 keys while 15000
// random keys wait in the pending writes and each List follows a write: the
// pending writes under the prefix are found by their key order, not by a
// scan of them all.
func BenchmarkListWhileWriting(b *testing.B) {
	be := openTemp(b, bolt.Options{NoSync: true})
	ctx := b.Context()
	var raw [32]byte
	ops := make([]storage.Op, 0, 15000)
	for range cap(ops) {
		_, _ = rand.Read(raw[:])
		ops = append(ops, storage.Op{Key: "logical/x/" + hex.EncodeToString(raw[:]), Value: []byte("v")})
	}
	for i := range 10 {
		ops = append(ops, storage.Op{Key: "dir/k" + string(rune('0'+i)), Value: []byte("v")})
	}
	if err := be.Transaction(ctx, ops); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := be.Put(ctx, "logical/y/"+strconv.Itoa(i%1000), []byte("v")); err != nil {
			b.Fatal(err)
		}
		keys, err := be.List(ctx, "dir/")
		if err != nil || len(keys) != 10 {
			b.Fatalf("List: %v, %v", keys, err)
		}
	}
}
