package barrier

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

func newUnsealed(t *testing.T) (*Barrier, storage.Backend, []byte) {
	t.Helper()
	ctx := context.Background()
	phys := inmem.New()
	b := New(phys, clock.Real{})
	root := secret.RandomBytes(32)
	if err := b.Initialize(ctx, root); err != nil {
		t.Fatal(err)
	}
	if !b.Sealed() {
		t.Fatal("Initialize unsealed the barrier")
	}
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	return b, phys, root
}

func TestRoundTripAndCiphertextOnly(t *testing.T) {
	ctx := context.Background()
	b, phys, _ := newUnsealed(t)
	value := []byte("sk-live-plaintext-marker")
	if err := b.Put(ctx, "logical/a/foo", value); err != nil {
		t.Fatal(err)
	}
	got, err := b.Get(ctx, "logical/a/foo")
	if err != nil || !bytes.Equal(got, value) {
		t.Fatalf("Get = %q, %v", got, err)
	}
	raw, err := phys.Get(ctx, "logical/a/foo")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, value) {
		t.Fatal("backend holds plaintext")
	}
	if raw[0] != formatVersion || termOfMust(t, raw) != 1 {
		t.Fatalf("header = %x", raw[:headerSize])
	}
	if _, err := b.Get(ctx, "logical/a/missing"); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	keys, err := b.List(ctx, "logical/")
	if err != nil || len(keys) != 1 || keys[0] != "a/" {
		t.Fatalf("List = %v, %v", keys, err)
	}
	if err := b.Delete(ctx, "logical/a/foo"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "logical/a/foo"); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func termOfMust(t *testing.T, ct []byte) uint32 {
	t.Helper()
	term, err := termOf("x", ct)
	if err != nil {
		t.Fatal(err)
	}
	return term
}

// A ciphertext copied to another path, or altered in any byte, fails with
// ErrDecrypt and an error that names the path but not the value.
func TestPathBindingAndTamper(t *testing.T) {
	ctx := context.Background()
	b, phys, _ := newUnsealed(t)
	if err := b.Put(ctx, "a/secret", []byte("value-1")); err != nil {
		t.Fatal(err)
	}
	raw, _ := phys.Get(ctx, "a/secret")
	if err := phys.Put(ctx, "b/secret", raw); err != nil {
		t.Fatal(err)
	}
	_, err := b.Get(ctx, "b/secret")
	if !errors.Is(err, ErrDecrypt) {
		t.Fatalf("moved ciphertext: %v", err)
	}
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		phys.Put(ctx, "a/secret", bad)
		_, err := b.Get(ctx, "a/secret")
		if !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flip byte %d: %v", i, err)
		}
		if !bytes.Contains([]byte(err.Error()), []byte("a/secret")) || bytes.Contains([]byte(err.Error()), []byte("value-1")) {
			t.Fatalf("error text %q", err)
		}
	}
	phys.Put(ctx, "a/secret", raw[:10])
	if _, err := b.Get(ctx, "a/secret"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestSealUnseal(t *testing.T) {
	ctx := context.Background()
	b, phys, root := newUnsealed(t)
	b.Put(ctx, "k", []byte("v"))
	b.Seal()
	if _, err := b.Get(ctx, "k"); !errors.Is(err, ErrSealed) {
		t.Fatalf("sealed Get: %v", err)
	}
	if err := b.Put(ctx, "k", []byte("v")); !errors.Is(err, ErrSealed) {
		t.Fatalf("sealed Put: %v", err)
	}
	if _, err := b.List(ctx, ""); !errors.Is(err, ErrSealed) {
		t.Fatalf("sealed List: %v", err)
	}
	if err := b.Unseal(ctx, secret.RandomBytes(32)); !errors.Is(err, ErrBadRootKey) {
		t.Fatalf("wrong root key: %v", err)
	}
	// A second barrier over the same storage opens with the root key.
	b2 := New(phys, nil)
	if err := b2.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	if got, err := b2.Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("reopened Get = %q, %v", got, err)
	}
	if err := b2.Initialize(ctx, root); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("re-init: %v", err)
	}
	if err := New(inmem.New(), nil).Unseal(ctx, root); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("uninitialized unseal: %v", err)
	}
}

func TestReservedPaths(t *testing.T) {
	ctx := context.Background()
	b, _, _ := newUnsealed(t)
	for _, p := range []string{KeyringPath, "core/seal"} {
		if err := b.Put(ctx, p, []byte("x")); !errors.Is(err, ErrReservedPath) {
			t.Errorf("Put %s: %v", p, err)
		}
		if _, err := b.Get(ctx, p); !errors.Is(err, ErrReservedPath) {
			t.Errorf("Get %s: %v", p, err)
		}
	}
	if err := b.Put(ctx, "", []byte("x")); !errors.Is(err, storage.ErrInvalidKey) {
		t.Errorf("empty key: %v", err)
	}
}

func TestRotate(t *testing.T) {
	ctx := context.Background()
	b, phys, root := newUnsealed(t)
	b.Put(ctx, "old", []byte("before"))
	ks, _ := b.KeyStatus()
	if ks.Term != 1 || ks.Encryptions != 1 || ks.InstallTime.IsZero() {
		t.Fatalf("status %+v", ks)
	}
	term, err := b.Rotate(ctx)
	if err != nil || term != 2 {
		t.Fatalf("Rotate = %d, %v", term, err)
	}
	b.Put(ctx, "new", []byte("after"))
	rawNew, _ := phys.Get(ctx, "new")
	rawOld, _ := phys.Get(ctx, "old")
	if termOfMust(t, rawNew) != 2 || termOfMust(t, rawOld) != 1 {
		t.Fatal("terms not as expected")
	}
	// Survives a re-open: both terms are in the stored keyring.
	b.Seal()
	if err := b.Unseal(ctx, root); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"old": "before", "new": "after"} {
		if got, err := b.Get(ctx, k); err != nil || string(got) != want {
			t.Fatalf("%s = %q, %v", k, got, err)
		}
	}
	if ks, _ := b.KeyStatus(); ks.Term != 2 {
		t.Fatalf("term after reopen = %d", ks.Term)
	}
}

func TestViewIsolationAndTransaction(t *testing.T) {
	ctx := context.Background()
	b, phys, _ := newUnsealed(t)
	v1, v2 := b.View("logical/one/"), b.View("logical/two/")
	if err := v1.Put(ctx, "k", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := v2.Get(ctx, "k"); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("view leak: %v", err)
	}
	err := v2.Transaction(ctx, []logical.StorageOp{{Key: "a", Value: []byte("A")}, {Key: "b", Value: []byte("B")}, {Key: "a", Delete: true}})
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := v2.List(ctx, "")
	if len(keys) != 1 || keys[0] != "b" {
		t.Fatalf("List = %v", keys)
	}
	if _, err := phys.Get(ctx, "logical/two/b"); err != nil {
		t.Fatalf("physical key: %v", err)
	}
	// A ciphertext from one view is not readable in another.
	raw, _ := phys.Get(ctx, "logical/one/k")
	phys.Put(ctx, "logical/two/k", raw)
	if _, err := v2.Get(ctx, "k"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("cross-view copy: %v", err)
	}
}

func TestConcurrentRotateAndAccess(t *testing.T) {
	ctx := context.Background()
	b, _, _ := newUnsealed(t)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := string(rune('a'+w)) + "/" + string(rune('a'+i%26))
				if err := b.Put(ctx, key, []byte(key)); err != nil {
					t.Error(err)
					return
				}
				if got, err := b.Get(ctx, key); err != nil || string(got) != key {
					t.Errorf("Get %s = %q, %v", key, got, err)
					return
				}
			}
		})
	}
	for range 5 {
		if _, err := b.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	bar := New(inmem.New(), nil)
	root := secret.RandomBytes(32)
	bar.Initialize(ctx, root)
	bar.Unseal(ctx, root)
	bar.Put(ctx, "k", bytes.Repeat([]byte("x"), 512))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bar.Get(ctx, "k"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReloadLearnsAnotherNodesTerms(t *testing.T) {
	ctx := context.Background()
	phys := inmem.New()
	key := secret.RandomBytes(32)
	a, b := New(phys, clock.Real{}), New(phys, clock.Real{})
	if err := a.Initialize(ctx, key); err != nil {
		t.Fatal(err)
	}
	for _, x := range []*Barrier{a, b} {
		if err := x.Unseal(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Put(ctx, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Get(ctx, "k"); err == nil {
		t.Fatal("b read a term it never loaded")
	}
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := b.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("after reload: %q, %v", v, err)
	}
	ka, _ := a.DeriveKey("x")
	kb, _ := b.DeriveKey("x")
	ky, _ := b.DeriveKey("y")
	if string(ka) != string(kb) || string(ka) == string(ky) || len(ka) != 32 {
		t.Fatal("derived keys differ across nodes or agree across purposes")
	}
	b.Seal()
	if err := b.Reload(ctx); !errors.Is(err, ErrSealed) {
		t.Fatalf("reload while sealed: %v", err)
	}
	if _, err := b.DeriveKey("x"); !errors.Is(err, ErrSealed) {
		t.Fatalf("derive while sealed: %v", err)
	}
}
