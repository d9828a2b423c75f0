package kv

import (
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// benchSecret is a typical small secret.
const benchSecret = `{"username":"app","password":"c2VjcmV0LXBhc3N3b3Jk","host":"db.internal","port":5432,"ssl":true}`

// BenchmarkReadV2 reads the current version of one key from many
// goroutines, as Agent and ESO polling do.
func BenchmarkReadV2(b *testing.B) {
	h := newHarness(b, "2")
	for i := 0; i < 5; i++ {
		h.put("app/db", benchSecret)
	}
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := h.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "data/app/db", Storage: h.s})
			if err != nil || resp.Data["data"] == nil {
				b.Errorf("read: %v", err)
				return
			}
		}
	})
}

// BenchmarkWriteV2 writes new versions of one key (with pruning once past
// ten versions), including the existence check the pipeline runs first.
func BenchmarkWriteV2(b *testing.B) {
	h := newHarness(b, "2")
	data := body(b, `{"data":`+benchSecret+`,"options":{}}`)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := &logical.Request{Operation: logical.UpdateOperation, Path: "data/app/db", Data: data, Storage: h.s}
		if _, _, err := h.b.ExistenceCheck(ctx, req); err != nil {
			b.Fatal(err)
		}
		if _, err := h.b.HandleRequest(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteV2Parallel writes to distinct keys from many goroutines.
func BenchmarkWriteV2Parallel(b *testing.B) {
	h := newHarness(b, "2")
	data := body(b, `{"data":`+benchSecret+`}`)
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	var n atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		key := "data/k" + strconv.FormatInt(n.Add(1), 10) + "/"
		for pb.Next() {
			i++
			req := &logical.Request{Operation: logical.UpdateOperation, Path: key + strconv.Itoa(i%100), Data: data, Storage: h.s}
			if _, err := h.b.HandleRequest(ctx, req); err != nil {
				b.Errorf("write: %v", err)
				return
			}
		}
	})
}

// BenchmarkReadV1 reads one v1 secret.
func BenchmarkReadV1(b *testing.B) {
	h := newHarness(b, "1")
	h.ok(logical.UpdateOperation, "app/db", body(b, benchSecret))
	ctx := b.Context()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := h.b.HandleRequest(ctx, &logical.Request{Operation: logical.ReadOperation, Path: "app/db", Storage: h.s}); err != nil {
				b.Errorf("read: %v", err)
				return
			}
		}
	})
}
