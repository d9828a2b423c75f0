package kv

import (
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
