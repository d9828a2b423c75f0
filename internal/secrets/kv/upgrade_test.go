package kv

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

// plainStorage is a logical.Storage without transactions whose writes can
// be made to fail, to test the order of non-transactional writes.
type plainStorage struct {
	inner *logicaltest.Storage
	mu    sync.Mutex
	// fail returns the error for a Put (del false) or Delete of key.
	fail func(key string, del bool) error
}

var errInjected = errors.New("injected storage failure")

func newPlainStorage() *plainStorage { return &plainStorage{inner: logicaltest.New()} }

func (p *plainStorage) setFail(f func(key string, del bool) error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fail = f
}

func (p *plainStorage) check(key string, del bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail == nil {
		return nil
	}
	return p.fail(key, del)
}

func (p *plainStorage) Get(ctx context.Context, key string) ([]byte, error) {
	return p.inner.Get(ctx, key)
}

func (p *plainStorage) Put(ctx context.Context, key string, value []byte) error {
	if err := p.check(key, false); err != nil {
		return err
	}
	return p.inner.Put(ctx, key, value)
}

func (p *plainStorage) Delete(ctx context.Context, key string) error {
	if err := p.check(key, true); err != nil {
		return err
	}
	return p.inner.Delete(ctx, key)
}

func (p *plainStorage) List(ctx context.Context, prefix string) ([]string, error) {
	return p.inner.List(ctx, prefix)
}

var _ logical.Storage = (*plainStorage)(nil)

// v1Secrets are written through a v1 mount before each upgrade test.
var v1Secrets = map[string]string{
	"a":           `{"user":"u","n":12345678901234567890}`,
	"dir/b":       `{"ttl":"1h","x":{"y":[1,2]}}`,
	"dir/sub/c":   `{"c":"3"}`,
	".kv2":        `{"not":"reserved"}`,
	"dir/sub/d/e": `{"e":"5"}`,
}

func writeV1(t *testing.T, s logical.Storage) {
	t.Helper()
	h := newHarnessOn(t, "1", s)
	for k, v := range v1Secrets {
		h.ok(logical.UpdateOperation, k, body(t, v))
	}
}

func checkUpgraded(t *testing.T, h *harness) {
	t.Helper()
	for k, v := range v1Secrets {
		resp := h.ok(logical.ReadOperation, "data/"+k, nil)
		if want := body(t, v); !reflect.DeepEqual(resp.Data["data"], want) {
			t.Errorf("data/%s = %#v, want %#v", k, resp.Data["data"], want)
		}
		md := h.metadata(k)
		if md["current_version"] != int64(1) || len(md["versions"].(map[string]any)) != 1 {
			t.Errorf("metadata/%s: %s", k, asJSON(t, md))
		}
	}
	wantData("keys", []string{".kv2", "a", "dir/"})(t, h.ok(logical.ListOperation, "metadata/", nil))
	// Nothing is left outside the v2 prefix.
	left, err := h.s.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(left, []string{v2Prefix}) {
		t.Errorf("storage root after upgrade: %q", left)
	}
	if _, err := h.s.Get(t.Context(), upgradedKey); err != nil {
		t.Errorf("upgrade marker: %v", err)
	}
}

func TestUpgrade(t *testing.T) {
	t.Parallel()
	s := logicaltest.New()
	writeV1(t, s)
	h := newHarnessOn(t, "2", s)
	checkUpgraded(t, h)

	// Idempotent: a second initialization changes nothing.
	before := snapshot(t, s)
	if err := h.b.(logical.Initializer).Initialize(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	if after := snapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Error("second Initialize changed storage")
	}
	// Even without the marker, upgraded keys are not upgraded again.
	if err := s.Delete(t.Context(), upgradedKey); err != nil {
		t.Fatal(err)
	}
	if err := h.b.(logical.Initializer).Initialize(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	checkUpgraded(t, h)
}

func TestUpgradeEmptyMount(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "2")
	keys := h.s.(*logicaltest.Storage).Keys()
	if !reflect.DeepEqual(keys, []string{upgradedKey}) {
		t.Errorf("storage of a new v2 mount: %q", keys)
	}
}

func TestUpgradeResumesAfterCrash(t *testing.T) {
	t.Parallel()
	// Each case fails one write of the upgrade; a rerun must finish it
	// with every key at version 1.
	cases := []struct {
		name string
		fail func(key string, del bool) error
	}{
		{"before version data", func(key string, del bool) error {
			if key == versionKey("dir/b", 1) {
				return errInjected
			}
			return nil
		}},
		{"before metadata", func(key string, del bool) error {
			if key == metadataKey("dir/b") {
				return errInjected
			}
			return nil
		}},
		{"before removing the v1 record", func(key string, del bool) error {
			if del && key == "dir/b" {
				return errInjected
			}
			return nil
		}},
		{"before the marker", func(key string, del bool) error {
			if key == upgradedKey {
				return errInjected
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := newPlainStorage()
			writeV1(t, s)
			s.setFail(c.fail)
			b, err := Factory(t.Context(), &logical.BackendConfig{Options: map[string]string{"version": "2"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := b.(logical.Initializer).Initialize(t.Context(), s); !errors.Is(err, errInjected) {
				t.Fatalf("Initialize with a failing write: %v", err)
			}
			s.setFail(nil)
			checkUpgraded(t, newHarnessOn(t, "2", s))
		})
	}
}

func TestUpgradeErrors(t *testing.T) {
	t.Parallel()
	s := logicaltest.New()
	if err := s.Put(t.Context(), "bad", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	b, err := Factory(t.Context(), &logical.BackendConfig{Options: map[string]string{"version": "2"}})
	if err != nil {
		t.Fatal(err)
	}
	err = b.(logical.Initializer).Initialize(t.Context(), s)
	if err == nil || !strings.Contains(err.Error(), `"bad" does not hold a JSON object`) {
		t.Errorf("corrupt v1 record: %v", err)
	}
	if _, err := s.Get(t.Context(), "bad"); err != nil {
		t.Error("the corrupt record was removed")
	}

	s = logicaltest.New()
	writeV1(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b.(logical.Initializer).Initialize(ctx, s); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled upgrade: %v", err)
	}
}

// snapshot returns every stored key and value.
func snapshot(t *testing.T, s *logicaltest.Storage) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, k := range s.Keys() {
		v, err := s.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(v)
	}
	return out
}

func TestNonTransactionalWrites(t *testing.T) {
	t.Parallel()
	s := newPlainStorage()
	h := newHarnessOn(t, "2", s)
	h.ok(logical.UpdateOperation, "metadata/k", body(t, `{"max_versions":1}`))
	h.put("k", `{"v":"1"}`)

	// A failed version write leaves the key as it was.
	s.setFail(func(key string, del bool) error {
		if strings.HasPrefix(key, versionsPrefix) && !del {
			return errInjected
		}
		return nil
	})
	if st, _, _ := h.status(logical.UpdateOperation, "data/k", body(t, `{"data":{"v":"2"}}`)); st != 500 {
		t.Fatalf("write with failing storage: %d, want 500", st)
	}
	wantData("data.v", "1")(t, h.ok(logical.ReadOperation, "data/k", nil))

	// A failed removal of pruned data does not fail the write.
	s.setFail(func(key string, del bool) error {
		if del {
			return errInjected
		}
		return nil
	})
	resp := h.ok(logical.UpdateOperation, "data/k", body(t, `{"data":{"v":"2"}}`))
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "pruned versions could not be removed") {
		t.Errorf("warnings = %q", resp.Warnings)
	}
	wantData("data.v", "2")(t, h.ok(logical.ReadOperation, "data/k", nil))
	names, _ := s.List(t.Context(), versionsDir("k"))
	if !slices.Equal(names, []string{"1", "2"}) {
		t.Fatalf("version records = %q, want the orphan 1 and 2", names)
	}
	// The metadata delete commits, its removals fail: the request fails,
	// and a retry, which finds no metadata, still cleans up every record,
	// the orphan included.
	s.setFail(func(key string, del bool) error {
		if del && strings.HasPrefix(key, versionsPrefix) {
			return errInjected
		}
		return nil
	})
	if st, _, _ := h.status(logical.DeleteOperation, "metadata/k", nil); st != 500 {
		t.Fatalf("metadata delete with failing storage: %d, want 500", st)
	}
	if st, _, _ := h.status(logical.ReadOperation, "metadata/k", nil); st != 404 {
		t.Fatalf("metadata after a half-done delete: %d, want 404", st)
	}
	s.setFail(nil)
	h.ok(logical.DeleteOperation, "metadata/k", nil)
	if keys := s.inner.Keys(); !reflect.DeepEqual(keys, []string{upgradedKey}) {
		t.Errorf("storage after metadata delete: %q", keys)
	}
}
