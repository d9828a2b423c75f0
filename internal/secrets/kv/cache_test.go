package kv

import (
	"strconv"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

// TestMetadataCacheNotStale has two backends share storage, as two servers
// do: each sees the other's writes at once.
func TestMetadataCacheNotStale(t *testing.T) {
	t.Parallel()
	s := logicaltest.New()
	a, b := newHarnessOn(t, "2", s), newHarnessOn(t, "2", s)
	a.put("k", `{"v":"1"}`)
	wantData("data.v", "1")(t, b.ok(logical.ReadOperation, "data/k", nil))
	a.put("k", `{"v":"2"}`)
	wantData("data.v", "2")(t, b.ok(logical.ReadOperation, "data/k", nil))
	a.ok(logical.DeleteOperation, "data/k", nil)
	if st, _, _ := b.status(logical.ReadOperation, "data/k", nil); st != 404 {
		t.Errorf("read after the other server deleted: %d", st)
	}
	a.ok(logical.DeleteOperation, "metadata/k", nil)
	if st, _, _ := b.status(logical.ReadOperation, "metadata/k", nil); st != 404 {
		t.Errorf("metadata after the other server deleted it: %d", st)
	}
}

func TestMetadataCacheBounded(t *testing.T) {
	t.Parallel()
	var c metadataCache
	raw := []byte(`{"key":"k","current_version":1,"versions":[{"version":1,"created_time":1}]}`)
	for i := 0; i < 3*maxCachedMetadata; i++ {
		m, err := c.decode(strconv.Itoa(i), raw)
		if err != nil || m.CurrentVersion != 1 {
			t.Fatalf("decode: %v %+v", err, m)
		}
	}
	if n := c.size.Load(); n > maxCachedMetadata || n <= 0 {
		t.Errorf("cache holds %d entries, bound %d", n, maxCachedMetadata)
	}
	// A hit returns the same decoded value; changed bytes are decoded
	// afresh.
	m1, _ := c.decode("x", raw)
	m2, _ := c.decode("x", append([]byte(nil), raw...))
	if m1 != m2 {
		t.Error("same bytes decoded twice")
	}
	m3, _ := c.decode("x", []byte(`{"key":"k","current_version":2}`))
	if m3.CurrentVersion != 2 {
		t.Errorf("changed bytes gave a stale entry: %+v", m3)
	}
	if _, err := c.decode("bad", []byte("{")); err == nil {
		t.Error("corrupt metadata decoded")
	}
}
