package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vigil-secrets/vigil/internal/audit"
	auditfile "github.com/vigil-secrets/vigil/internal/audit/file"
	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/metrics"
	"github.com/vigil-secrets/vigil/internal/secrets/kv"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/bolt"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

// BenchmarkKVv2Read measures the server side of a KV v2 read without the
// network: handler, core, mount, barrier, storage, JSON.
func BenchmarkKVv2Read(b *testing.B) {
	b.Run("inmem", func(b *testing.B) { benchRead(b, inmem.New(), false) })
	b.Run("bolt", func(b *testing.B) {
		be, err := bolt.Open(filepath.Join(b.TempDir(), "v.db"), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { be.Close() })
		benchRead(b, be, false)
	})
	b.Run("bolt audited", func(b *testing.B) {
		be, err := bolt.Open(filepath.Join(b.TempDir(), "v.db"), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { be.Close() })
		benchRead(b, be, true)
	})
}

// benchRead reads one KV v2 secret with 32 requests in flight on two
// cores, as bench/ does; audited adds a file audit device writing to a
// temporary file.
func benchRead(b *testing.B, st storage.Backend, audited bool) {
	h, tok := benchServer(b, st, audited)
	put := httptest.NewRequest("PUT", "/v1/secret/data/k", strings.NewReader(`{"data":{"value":"`+strings.Repeat("x", 256)+`"}}`))
	put.Header.Set("X-Vault-Token", tok)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, put)
	if rec.Code != 200 {
		b.Fatalf("put: %d %s", rec.Code, rec.Body)
	}
	req := httptest.NewRequest("GET", "/v1/secret/data/k", nil)
	req.Header.Set("X-Vault-Token", tok)
	b.ReportAllocs()
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w := discardWriter{h: http.Header{}}
			h.ServeHTTP(&w, req)
			if w.code != 200 {
				b.Errorf("read: %d", w.code)
				return
			}
		}
	})
}

// BenchmarkKVv2Write measures the server side of KV v2 writes of new keys
// without the network, as bench/'s "kv2 write" makes them. "bolt nosync"
// skips the log's fsync: its time per write is processor time (handler,
// barrier, log, checkpoints and GC), not waiting on the disk.
func BenchmarkKVv2Write(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		name := "bolt"
		if noSync {
			name = "bolt nosync"
		}
		b.Run(name, func(b *testing.B) {
			be, err := bolt.Open(filepath.Join(b.TempDir(), "v.db"), bolt.Options{NoSync: noSync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { be.Close() })
			benchWrite(b, be)
		})
	}
}

func benchWrite(b *testing.B, st storage.Backend) {
	h, tok := benchServer(b, st, false)
	body := `{"data":{"value":"` + strings.Repeat("x", 256) + `"}}`
	var worker atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		prefix := "/v1/secret/data/k" + strconv.FormatInt(worker.Add(1), 10) + "-"
		for i := 0; pb.Next(); i++ {
			req := httptest.NewRequest("POST", prefix+strconv.Itoa(i), strings.NewReader(body))
			req.Header.Set("X-Vault-Token", tok)
			w := discardWriter{h: http.Header{}}
			h.ServeHTTP(&w, req)
			if w.code != 200 {
				b.Errorf("write: %d", w.code)
				return
			}
		}
	})
}

// benchServer returns a handler of an unsealed core with KV v2 at
// secret/ (and, if audited, a file audit device writing to a temporary
// file), and its root token. Like the server's, its storage, core and
// handler are measured by metrics. The core is sealed when b ends.
func benchServer(b *testing.B, st storage.Backend, audited bool) (http.Handler, string) {
	ctx := context.Background()
	met := metrics.New(metrics.Options{})
	c, _ := core.New(core.Config{Storage: met.Storage("bench", st), Factories: map[string]logical.Factory{"kv": kv.Factory},
		AuditFactories: map[string]audit.Factory{"file": auditfile.New}, Metrics: met})
	b.Cleanup(func() { c.SealInternal(ctx) })
	res, err := c.Init(ctx, core.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range res.Keys {
		if _, err := c.Unseal(ctx, string(appendHex(nil, k))); err != nil {
			b.Fatal(err)
		}
	}
	c.EnableMount(ctx, "secret", core.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	if audited {
		if err := c.EnableAudit(ctx, "file", "file", "", map[string]string{"file_path": filepath.Join(b.TempDir(), "audit.log")}, false); err != nil {
			b.Fatal(err)
		}
	}
	return New(Options{Core: c, Metrics: met}), res.RootToken.Reveal()
}

type discardWriter struct {
	h    http.Header
	code int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(code int)        { d.code = code }

func appendHex(dst, src []byte) []byte {
	const digits = "0123456789abcdef"
	for _, c := range src {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}
