package core

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

func staticSeal(t *testing.T, cur seal.Key, prev *seal.Key) *seal.Static {
	t.Helper()
	s, err := seal.NewStatic(cur, prev)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newKey(id string) seal.Key { return seal.Key{ID: id, Material: secret.RandomBytes(seal.KeySize)} }

func wantStatus(t *testing.T, err error, status int, text string) {
	t.Helper()
	var ce *logical.CodedError
	if !errors.As(err, &ce) || ce.Status != status || !strings.Contains(ce.Msg, text) {
		t.Fatalf("error %v, want %d %q", err, status, text)
	}
}

func hexKeys(ks [][]byte) []string {
	var out []string
	for _, k := range ks {
		out = append(out, hex.EncodeToString(k))
	}
	return out
}

// autoFixture is an initialized core with a static seal and a secret in
// KV at secret/app.
type autoFixture struct {
	phys     storage.Backend
	key      seal.Key
	c        *Core
	root     secret.String
	recovery []string
}

func initAuto(t *testing.T) *autoFixture {
	t.Helper()
	ctx := context.Background()
	f := &autoFixture{phys: inmem.New(), key: newKey("2026-01")}
	f.c = newSealCore(t, f.phys, staticSeal(t, f.key, nil))
	res, err := f.c.Init(ctx, InitRequest{RecoveryShares: 5, RecoveryThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	f.root, f.recovery = res.RootToken, hexKeys(res.RecoveryKeys)
	if len(res.Keys) != 0 || len(res.RecoveryKeys) != 5 || !strings.HasPrefix(f.root.Reveal(), "hvs.") {
		t.Fatalf("init: %d keys, %d recovery keys", len(res.Keys), len(res.RecoveryKeys))
	}
	if f.c.Sealed() {
		t.Fatal("an auto-sealed server is sealed after init")
	}
	if err := f.c.EnableMount(ctx, "secret/", MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	f.write(t, f.c, "secret/app", "v1")
	return f
}

func (f *autoFixture) write(t *testing.T, c *Core, path, v string) {
	t.Helper()
	_, err := c.HandleRequest(context.Background(), &Request{ID: secret.UUID(), Operation: logical.UpdateOperation, Path: path, Data: map[string]any{"v": v}, Token: f.root})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *autoFixture) read(t *testing.T, c *Core, path string) string {
	t.Helper()
	res, err := c.HandleRequest(context.Background(), &Request{ID: secret.UUID(), Operation: logical.ReadOperation, Path: path, Token: f.root})
	if err != nil {
		t.Fatal(err)
	}
	return res.Response.Data["v"].(string)
}

// restart seals the fixture's core and returns a new one over the same
// storage with seal w.
func (f *autoFixture) restart(t *testing.T, w seal.Wrapper) *Core {
	t.Helper()
	if err := f.c.SealInternal(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.c = newSealCore(t, f.phys, w)
	return f.c
}

func TestInitWithRecoveryKeys(t *testing.T) {
	ctx := context.Background()
	w := staticSeal(t, newKey("k1"), nil)
	c := newSealCore(t, inmem.New(), w)
	st, err := c.SealStatus(ctx)
	if err != nil || st.Type != "static" || !st.RecoverySeal || st.RecoverySealType != "shamir" || st.Initialized || st.Shares != 0 {
		t.Fatalf("status before init: %+v %v", st, err)
	}
	for _, tc := range []struct {
		name string
		req  InitRequest
		text string
	}{
		{"secret shares", InitRequest{SecretShares: 5, SecretThreshold: 3, RecoveryShares: 5, RecoveryThreshold: 3}, "parameters secret_shares,secret_threshold not applicable to seal type static"},
		{"pgp keys", InitRequest{PGPKeys: []string{"k"}, RecoveryShares: 1, RecoveryThreshold: 1}, "parameters pgp_keys not applicable"},
		{"no recovery shares", InitRequest{}, "recovery configuration must specify a positive number of shares"},
		{"threshold above shares", InitRequest{RecoveryShares: 3, RecoveryThreshold: 4}, "invalid recovery configuration: recovery threshold cannot be larger than recovery shares"},
		{"recovery pgp", InitRequest{RecoveryShares: 1, RecoveryThreshold: 1, RecoveryPGPKeys: []string{"k"}}, "PGP-encrypted key shares are not supported"},
	} {
		_, err := c.Init(ctx, tc.req)
		wantStatus(t, err, 400, tc.text)
	}
	if ok, _ := c.Initialized(ctx); ok {
		t.Fatal("a refused init initialized the server")
	}
	res, err := c.Init(ctx, InitRequest{RecoveryShares: 3, RecoveryThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	st, err = c.SealStatus(ctx)
	if err != nil || st.Sealed || !st.Initialized || st.Type != "static" || !st.RecoverySeal || st.Shares != 3 || st.Threshold != 2 || st.ClusterID == "" {
		t.Fatalf("status after init: %+v %v", st, err)
	}
	if _, err := c.HandleRequest(ctx, &Request{Operation: logical.ReadOperation, Path: "sys/mounts", Token: res.RootToken}); err != nil {
		t.Fatalf("root token after init: %v", err)
	}
	if _, err := c.Init(ctx, InitRequest{RecoveryShares: 1, RecoveryThreshold: 1}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second init: %v", err)
	}
}

func TestShamirRefusesRecoveryParameters(t *testing.T) {
	c := newSealCore(t, inmem.New(), nil)
	_, err := c.Init(context.Background(), InitRequest{SecretShares: 3, SecretThreshold: 2, RecoveryShares: 5, RecoveryThreshold: 3})
	wantStatus(t, err, 400, "parameters recovery_shares,recovery_threshold not applicable to seal type shamir")
	_, err = c.Init(context.Background(), InitRequest{SecretShares: 1, SecretThreshold: 1, RootTokenPGPKey: "k"})
	wantStatus(t, err, 400, "PGP-encrypted key shares are not supported")
	st, _ := c.SealStatus(context.Background())
	if st.Type != "shamir" || st.RecoverySeal || st.RecoverySealType != "" {
		t.Fatalf("shamir status: %+v", st)
	}
}

func TestAutoUnsealOnRestart(t *testing.T) {
	ctx := context.Background()
	f := initAuto(t)
	c := f.restart(t, staticSeal(t, f.key, nil))
	if !c.Sealed() {
		t.Fatal("a new core starts unsealed")
	}
	if err := c.AutoUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Sealed() || f.read(t, c, "secret/app") != "v1" {
		t.Fatal("auto unseal did not open the data")
	}
	st, _ := c.SealStatus(ctx)
	if st.Type != "static" || !st.RecoverySeal || st.Threshold != 3 || st.Shares != 5 {
		t.Fatalf("status: %+v", st)
	}
	// Already unsealed: nothing to do.
	if err := c.AutoUnseal(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestAutoUnsealRefuses(t *testing.T) {
	ctx := context.Background()
	f := initAuto(t)
	// Another key with the same id does not open the root key.
	c := f.restart(t, staticSeal(t, seal.Key{ID: f.key.ID, Material: secret.RandomBytes(seal.KeySize)}, nil))
	if err := c.AutoUnseal(ctx); !errors.Is(err, seal.ErrUnwrap) || !c.Sealed() {
		t.Fatalf("wrong key: %v (sealed %v)", err, c.Sealed())
	}
	// A key id the seal does not hold.
	c = f.restart(t, staticSeal(t, newKey("2026-02"), nil))
	if err := c.AutoUnseal(ctx); !errors.Is(err, seal.ErrUnknownKey) || !c.Sealed() {
		t.Fatalf("unknown key id: %v", err)
	}
	// Without its seal block, the server cannot be unsealed and says why.
	c = f.restart(t, nil)
	_, err := c.Unseal(ctx, f.recovery[0])
	wantStatus(t, err, 400, `sealed by seal "static"`)
	// An auto seal over a Shamir server is a configuration error.
	shamir := newSealCore(t, inmem.New(), nil)
	if _, err := shamir.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	shamir.SealInternal(ctx)
	over := newSealCore(t, shamir.cfg.Storage, staticSeal(t, newKey("k"), nil))
	if err := over.AutoUnseal(ctx); !errors.Is(err, ErrSealMismatch) {
		t.Fatalf("auto seal over a shamir server: %v", err)
	}
	if err := newSealCore(t, inmem.New(), staticSeal(t, newKey("k"), nil)).AutoUnseal(ctx); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("uninitialized: %v", err)
	}
}

func TestAutoUnsealRewrapsUnderTheCurrentKey(t *testing.T) {
	ctx := context.Background()
	f := initAuto(t)
	next := newKey("2026-02")
	c := f.restart(t, staticSeal(t, next, &f.key))
	if err := c.AutoUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := c.loadSealRecord(ctx)
	if err != nil || rec.KeyID != "2026-02" {
		t.Fatalf("record after rotation: %+v %v", rec, err)
	}
	// The old key is no longer needed.
	c = f.restart(t, staticSeal(t, next, nil))
	if err := c.AutoUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	if f.read(t, c, "secret/app") != "v1" {
		t.Fatal("data lost in the rotation")
	}
}

// After sys/seal an auto-sealed server stays sealed; a threshold of
// recovery key shares unseals it, as in Vault.
func TestSealThenUnsealWithRecoveryKeys(t *testing.T) {
	ctx := context.Background()
	f := initAuto(t)
	if err := f.c.Seal(ctx, f.root, nil); err != nil {
		t.Fatal(err)
	}
	// Shares of another server's recovery key recombine to a key that
	// does not check: progress resets and the server stays sealed.
	other := initAuto(t)
	for _, k := range other.recovery[:2] {
		if _, err := f.c.Unseal(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	_, err := f.c.Unseal(ctx, other.recovery[2])
	wantStatus(t, err, 400, "do not reconstruct")
	if st, _ := f.c.SealStatus(ctx); !st.Sealed || st.Progress != 0 {
		t.Fatalf("after wrong shares: %+v", st)
	}
	for i, k := range f.recovery[1:4] {
		st, err := f.c.Unseal(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if st.Sealed != (i < 2) || (i < 2 && (st.Progress != i+1 || st.Nonce == "")) {
			t.Fatalf("share %d: %+v", i, st)
		}
	}
	if f.read(t, f.c, "secret/app") != "v1" {
		t.Fatal("data after unseal")
	}
}
