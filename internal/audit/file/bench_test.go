package file

import (
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/audit"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// BenchmarkBroker measures what an audited KV v2 read costs the audit
// path: its request entry then its response entry, formatted, chained and
// written to a file, one request at a time ("serial") or with 32 in
// flight on the machine's cores ("parallel").
func BenchmarkBroker(b *testing.B) {
	b.Run("serial", func(b *testing.B) { benchBroker(b, 1) })
	b.Run("parallel", func(b *testing.B) { benchBroker(b, 32) })
}

func benchBroker(b *testing.B, inFlight int) {
	ctx := context.Background()
	var counted *countingSink
	d, err := audit.OpenDevice(ctx, audit.DeviceConfig{
		Path: "file/", Type: "file", Options: map[string]string{"file_path": filepath.Join(b.TempDir(), "audit.log")},
		Salt: []byte("6a1f5c8e-3b0d-4c55-9d7e-2f1a0b9c8d7e"), ChainKey: make([]byte, 32),
	}, func(ctx context.Context, conf audit.SinkConfig) (audit.Sink, error) {
		s, err := New(ctx, conf)
		if err != nil {
			return nil, err
		}
		counted = &countingSink{Sink: s.(*Sink)}
		return counted, nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	br := audit.NewBroker()
	if err := br.Add(d); err != nil {
		b.Fatal(err)
	}
	value := json.RawMessage(`{"value":"` + strings.Repeat("x", 256) + `"}`)
	meta := map[string]any{"created_time": "2026-11-23T09:00:00.123456789Z", "custom_metadata": nil,
		"deletion_time": "", "destroyed": false, "version": 1}
	allowed := true
	b.ReportAllocs()
	b.SetParallelism(max(1, inFlight/runtime.GOMAXPROCS(0)))
	serve := func() {
		in := &audit.Input{
			Time: time.Now(),
			Auth: &audit.Auth{Accessor: "5mOXEmJXVqc3ZMBvKpBsxjEC", DisplayName: "root", Policies: []string{"root"},
				TokenType: "service", IssueTime: time.Now(), Allowed: &allowed},
			Request: &audit.Request{ID: "0b0e0f2c-1111-4222-8333-944455556666", Operation: "read", Path: "secret/data/k",
				MountPoint: "secret/", MountType: "kv", MountAccessor: "kv_1a2b3c4d", MountClass: "secret",
				ClientToken: secret.NewString("hvs.CAESIJ0123456789abcdefghijklmnopqrstuvwxyzABCD"), ClientTokenAccessor: "5mOXEmJXVqc3ZMBvKpBsxjEC",
				RemoteAddr: "127.0.0.1", RemotePort: 53122},
		}
		if err := br.LogRequest(ctx, in); err != nil {
			b.Error(err)
			return
		}
		in.Time = time.Now()
		in.Response = &audit.Response{Data: map[string]any{"data": value, "metadata": meta}}
		if err := br.LogResponse(ctx, in); err != nil {
			b.Error(err)
		}
	}
	if inFlight == 1 {
		for b.Loop() {
			serve()
		}
	} else {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				serve()
			}
		})
	}
	b.ReportMetric(float64(counted.writes.Load())/float64(b.N), "writes/op")
}

// countingSink counts the writes of a file sink.
type countingSink struct {
	*Sink
	writes atomic.Int64
}

func (c *countingSink) Write(p []byte) error {
	c.writes.Add(1)
	return c.Sink.Write(p)
}
