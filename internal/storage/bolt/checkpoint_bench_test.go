package bolt

import (
	"crypto/rand"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/vigil-secrets/vigil/internal/storage"
)

// BenchmarkCheckpoint measures one checkpoint's work per key: the apply of
// 20000 new random keys (values of 120 and 300 bytes, as a KV v2 write's
// two) into a store that holds 100000 such keys already. cpu-µs/key is
// the process's CPU time per key applied.
func BenchmarkCheckpoint(b *testing.B) {
	const prefilled, perCheckpoint = 100000, 20000
	be, err := Open(filepath.Join(b.TempDir(), "v.db"), Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	value := make([]byte, 300)
	_, _ = rand.Read(value)
	set := func() *pendingSet {
		p := newPendingSet()
		var raw [32]byte
		for i := range perCheckpoint {
			_, _ = rand.Read(raw[:])
			h := hex.EncodeToString(raw[:])
			if i%2 == 0 {
				p.put(storage.Op{Key: "logical/4f6e2a1c-0d3b-4c1e-9f2a-6b7d8e9fa0b1/.kv2/metadata/" + h, Value: value[:120]})
			} else {
				p.put(storage.Op{Key: "logical/4f6e2a1c-0d3b-4c1e-9f2a-6b7d8e9fa0b1/.kv2/versions/" + h + "/1", Value: value})
			}
		}
		return p
	}
	for range prefilled / perCheckpoint {
		if err := be.apply(set(), 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	var cpu int64
	for range b.N {
		b.StopTimer()
		p := set()
		b.StartTimer()
		cpu0 := CPUTime()
		if err := be.apply(p, 0); err != nil {
			b.Fatal(err)
		}
		cpu += CPUTime() - cpu0
	}
	b.ReportMetric(float64(cpu)/1e3/float64(b.N*perCheckpoint), "cpu-µs/key")
}
