package core

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/audit"
	auditfile "github.com/vigil-secrets/vigil/internal/audit/file"
	"github.com/vigil-secrets/vigil/internal/auth/approle"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/secrets/kv"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

type fixture struct {
	c     *Core
	phys  storage.Backend
	keys  []string
	token secret.String
}

func newCore(t *testing.T, phys storage.Backend) *Core {
	t.Helper()
	return newSealCore(t, phys, nil)
}

// newSealCore returns a sealed core over phys with w as its auto seal
// (nil: the Shamir seal).
func newSealCore(t *testing.T, phys storage.Backend, w seal.Wrapper) *Core {
	t.Helper()
	c, err := New(Config{Storage: phys, StorageType: "inmem", Seal: w, Factories: map[string]logical.Factory{"kv": kv.Factory},
		AuthFactories:  map[string]logical.Factory{"approle": approle.Factory},
		AuditFactories: map[string]audit.Factory{"file": auditfile.New}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.SealInternal(context.Background()) })
	return c
}

// initCoreWith returns a core of cfg (in memory unless cfg says
// otherwise), initialized with one share and unsealed.
func initCoreWith(t *testing.T, cfg Config) *fixture {
	t.Helper()
	ctx := context.Background()
	if cfg.Storage == nil {
		cfg.Storage, cfg.StorageType = inmem.New(), "inmem"
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.SealInternal(ctx) })
	res, err := c.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{c: c, phys: cfg.Storage, token: res.RootToken, keys: []string{hex.EncodeToString(res.Keys[0])}}
	f.unsealWith(t, f.keys)
	return f
}

// initCore returns an initialized, unsealed core with 3 shares, threshold 2.
func initCore(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	phys := inmem.New()
	c := newCore(t, phys)
	res, err := c.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{c: c, phys: phys, token: res.RootToken}
	for _, k := range res.Keys {
		f.keys = append(f.keys, hex.EncodeToString(k))
	}
	f.unseal(t)
	return f
}

func (f *fixture) unseal(t *testing.T) {
	t.Helper()
	for _, k := range f.keys[:2] {
		if _, err := f.c.Unseal(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	if f.c.Sealed() {
		t.Fatal("still sealed after threshold shares")
	}
}

func (f *fixture) do(t *testing.T, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	res, err := f.c.HandleRequest(context.Background(), &Request{ID: secret.UUID(), Operation: op, Path: path, Data: data, Token: f.token})
	if err != nil {
		return nil, err
	}
	return res.Response, nil
}

func TestInitUnsealSealLifecycle(t *testing.T) {
	ctx := context.Background()
	c := newCore(t, inmem.New())
	if ok, err := c.Initialized(ctx); err != nil || ok {
		t.Fatalf("Initialized = %v, %v", ok, err)
	}
	if _, err := c.Unseal(ctx, hex.EncodeToString(make([]byte, 33))); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("unseal before init: %v", err)
	}
	if _, err := c.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 5}); err == nil {
		t.Fatal("threshold > shares accepted")
	}
	res, err := c.Init(ctx, InitRequest{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Keys) != 5 || !strings.HasPrefix(res.RootToken.Reveal(), "hvs.") {
		t.Fatalf("init result: %d keys", len(res.Keys))
	}
	if _, err := c.Init(ctx, InitRequest{SecretShares: 1, SecretThreshold: 1}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second init: %v", err)
	}
	if !c.Sealed() {
		t.Fatal("init left the core unsealed")
	}
	if _, err := c.HandleRequest(ctx, &Request{Operation: logical.ReadOperation, Path: "sys/mounts", Token: res.RootToken}); !errors.Is(err, ErrSealed) {
		t.Fatalf("sealed request: %v", err)
	}
	st, err := c.Unseal(ctx, hex.EncodeToString(res.Keys[0]))
	if err != nil || st.Progress != 1 || st.Nonce == "" || !st.Sealed {
		t.Fatalf("first share: %+v, %v", st, err)
	}
	// A malformed key is a 400 and changes nothing.
	for _, bad := range []string{"not-a-key!", hex.EncodeToString([]byte("short"))} {
		_, err := c.Unseal(ctx, bad)
		var ce *logical.CodedError
		if !errors.As(err, &ce) || ce.Status != 400 {
			t.Fatalf("bad key %q: %v", bad, err)
		}
	}
	if st, _ := c.SealStatus(ctx); st.Progress != 1 {
		t.Fatalf("progress after bad keys = %d", st.Progress)
	}
	// Reset, then unseal with three other shares.
	if st, err := c.ResetUnseal(ctx); err != nil || st.Progress != 0 {
		t.Fatalf("reset: %+v, %v", st, err)
	}
	for _, k := range res.Keys[2:] {
		if _, err := c.Unseal(ctx, hex.EncodeToString(k)); err != nil {
			t.Fatal(err)
		}
	}
	st, _ = c.SealStatus(ctx)
	if st.Sealed || st.ClusterName == "" || st.ClusterID == "" || st.Shares != 5 || st.Threshold != 3 {
		t.Fatalf("after unseal: %+v", st)
	}
	if err := c.Seal(ctx, secret.NewString("hvs.wrong"), nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("seal with a bad token: %v", err)
	}
	if err := c.Seal(ctx, res.RootToken, nil); err != nil {
		t.Fatal(err)
	}
	if !c.Sealed() {
		t.Fatal("not sealed")
	}
}

func TestWrongSharesResetProgress(t *testing.T) {
	ctx := context.Background()
	c := newCore(t, inmem.New())
	res, _ := c.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	other := newCore(t, inmem.New())
	res2, _ := other.Init(ctx, InitRequest{SecretShares: 3, SecretThreshold: 2})
	c.Unseal(ctx, hex.EncodeToString(res.Keys[0]))
	_, err := c.Unseal(ctx, hex.EncodeToString(res2.Keys[1]))
	var ce *logical.CodedError
	if !errors.As(err, &ce) || ce.Status != 400 {
		t.Fatalf("foreign share: %v", err)
	}
	if st, _ := c.SealStatus(ctx); !st.Sealed || st.Progress != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestDenyWithoutRootToken(t *testing.T) {
	f := initCore(t)
	for _, tok := range []string{"", "hvs.AAAAAAAAAAAAAAAAAAAAAAAA", "root"} {
		_, err := f.c.HandleRequest(context.Background(), &Request{Operation: logical.ReadOperation, Path: "sys/mounts", Token: secret.NewString(tok)})
		if !errors.Is(err, logical.ErrPermissionDenied) {
			t.Fatalf("token %q: %v", tok, err)
		}
	}
}

func TestMountsPersistAcrossSeal(t *testing.T) {
	ctx := context.Background()
	f := initCore(t)
	if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/ml", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}, "description": "ML keys"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/ml", map[string]any{"type": "kv"}); err == nil {
		t.Fatal("mounting twice succeeded")
	}
	if _, err := f.do(t, logical.UpdateOperation, "ml/data/openai", map[string]any{"data": map[string]any{"api_key": "sk-test"}}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Seal(ctx, f.token, nil); err != nil {
		t.Fatal(err)
	}
	// A fresh core over the same storage, as after a restart.
	f.c = newCore(t, f.phys)
	f.unseal(t)
	resp, err := f.do(t, logical.ReadOperation, "ml/data/openai", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := dataOf(t, resp)["api_key"]; got != "sk-test" {
		t.Fatalf("api_key = %v", got)
	}
	resp, err = f.do(t, logical.ReadOperation, "sys/mounts", nil)
	if err != nil {
		t.Fatal(err)
	}
	ml, ok := resp.Data["ml/"].(map[string]any)
	if !ok || ml["type"] != "kv" || ml["description"] != "ML keys" {
		t.Fatalf("sys/mounts ml/ = %#v", resp.Data["ml/"])
	}
}

// TestMountPathNotUTF8: a secrets engine, an auth method or a move to a
// path that is not UTF-8 is refused with a 400, and nothing is mounted.
func TestMountPathNotUTF8(t *testing.T) {
	f := initCore(t)
	f.do(t, logical.UpdateOperation, "sys/mounts/a", map[string]any{"type": "kv-v2"})
	for _, tc := range []struct {
		path string
		data map[string]any
	}{
		{"sys/mounts/m\xff", map[string]any{"type": "kv"}},
		{"sys/auth/r\xff", map[string]any{"type": "approle"}},
		{"sys/remount", map[string]any{"from": "a", "to": "b\xff"}},
	} {
		_, err := f.do(t, logical.UpdateOperation, tc.path, tc.data)
		var ce *logical.CodedError
		if !errors.Is(err, logical.ErrInvalidRequest) && !(errors.As(err, &ce) && ce.Status == 400) {
			t.Errorf("%q %v: err = %v, want a 400", tc.path, tc.data, err)
		}
	}
	for _, p := range []string{"m\xff/", "auth/r\xff/", "b\xff/"} {
		if _, ok := f.c.Mount(p); ok {
			t.Errorf("%q mounted", p)
		}
	}
	if _, ok := f.c.Mount("a/"); !ok {
		t.Error("the mount a refused a move has moved")
	}
}

func TestMoveTuneDisable(t *testing.T) {
	f := initCore(t)
	f.do(t, logical.UpdateOperation, "sys/mounts/a", map[string]any{"type": "kv-v2"})
	f.do(t, logical.UpdateOperation, "a/data/x", map[string]any{"data": map[string]any{"k": "v"}})
	resp, err := f.do(t, logical.UpdateOperation, "sys/remount", map[string]any{"from": "a", "to": "b"})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := resp.Data["migration_id"].(string)
	if id == "" {
		t.Fatalf("remount response %#v", resp.Data)
	}
	if resp, err := f.do(t, logical.ReadOperation, "sys/remount/status/"+id, nil); err != nil || resp.Data["migration_info"] == nil {
		t.Fatalf("remount status: %#v, %v", resp, err)
	}
	if _, err := f.do(t, logical.ReadOperation, "a/data/x", nil); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("old path: %v", err)
	}
	if resp, err := f.do(t, logical.ReadOperation, "b/data/x", nil); err != nil || dataOf(t, resp)["k"] != "v" {
		t.Fatalf("moved data: %v", err)
	}
	if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/b/tune", map[string]any{"default_lease_ttl": "1h", "max_lease_ttl": "2h"}); err != nil {
		t.Fatal(err)
	}
	resp, err = f.do(t, logical.ReadOperation, "sys/mounts/b/tune", nil)
	if err != nil || fmt.Sprint(resp.Data["default_lease_ttl"]) != "3600" || fmt.Sprint(resp.Data["max_lease_ttl"]) != "7200" {
		t.Fatalf("tune read: %#v, %v", resp, err)
	}
	if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/b/tune", map[string]any{"default_lease_ttl": "3h", "max_lease_ttl": "2h"}); err == nil {
		t.Fatal("default > max accepted")
	}
	if _, err := f.do(t, logical.DeleteOperation, "sys/mounts/b", nil); err != nil {
		t.Fatal(err)
	}
	// Re-enabling the path starts empty: disable deleted the data.
	f.do(t, logical.UpdateOperation, "sys/mounts/b", map[string]any{"type": "kv-v2"})
	if resp, err := f.do(t, logical.ReadOperation, "b/data/x", nil); err == nil && resp.Data != nil {
		t.Fatalf("data survived disable: %#v", resp.Data)
	}
	if _, err := f.do(t, logical.DeleteOperation, "sys/mounts/sys", nil); err == nil {
		t.Fatal("unmounted sys/")
	}
}

func TestRotateKeepsDataReadable(t *testing.T) {
	f := initCore(t)
	f.do(t, logical.UpdateOperation, "sys/mounts/kv", map[string]any{"type": "kv", "options": map[string]any{"version": "1"}})
	f.do(t, logical.UpdateOperation, "kv/before", map[string]any{"v": "1"})
	resp, err := f.do(t, logical.UpdateOperation, "sys/rotate", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err = f.do(t, logical.ReadOperation, "sys/key-status", nil)
	if err != nil || fmt.Sprint(resp.Data["term"]) != "2" {
		t.Fatalf("key-status: %#v, %v", resp, err)
	}
	f.do(t, logical.UpdateOperation, "kv/after", map[string]any{"v": "2"})
	for k, want := range map[string]string{"kv/before": "1", "kv/after": "2"} {
		resp, err := f.do(t, logical.ReadOperation, k, nil)
		if err != nil || resp.Data["v"] != want {
			t.Fatalf("%s: %#v, %v", k, resp, err)
		}
	}
}

// A tampered storage entry is a 500 naming the path, never a panic and
// never plaintext.
func TestTamperedEntryNamesPath(t *testing.T) {
	ctx := context.Background()
	f := initCore(t)
	f.do(t, logical.UpdateOperation, "sys/mounts/kv", map[string]any{"type": "kv", "options": map[string]any{"version": "1"}})
	f.do(t, logical.UpdateOperation, "kv/target", map[string]any{"v": "plaintext-value"})
	var phys string
	for _, dir := range mustList(t, f.phys, "logical/") {
		for _, k := range mustList(t, f.phys, "logical/"+dir) {
			if k == "target" {
				phys = "logical/" + dir + k
			}
		}
	}
	if phys == "" {
		t.Fatal("entry not found in physical storage")
	}
	raw, _ := f.phys.Get(ctx, phys)
	raw[len(raw)-1] ^= 0xff
	f.phys.Put(ctx, phys, raw)
	_, err := f.do(t, logical.ReadOperation, "kv/target", nil)
	var ce *logical.CodedError
	if !errors.As(err, &ce) || ce.Status != 500 {
		t.Fatalf("tampered read: %v", err)
	}
	if !strings.Contains(ce.Msg, phys) || strings.Contains(ce.Msg, "plaintext-value") {
		t.Fatalf("message %q", ce.Msg)
	}
}

func mustList(t *testing.T, b storage.Backend, prefix string) []string {
	t.Helper()
	keys, err := b.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestUIMounts(t *testing.T) {
	f := initCore(t)
	f.do(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}})
	resp, err := f.do(t, logical.ReadOperation, "sys/internal/ui/mounts/secret/data/foo", nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Data["path"] != "secret/" || resp.Data["type"] != "kv" {
		t.Fatalf("ui mount: %#v", resp.Data)
	}
	if opts, _ := resp.Data["options"].(map[string]string); opts["version"] != "2" {
		if opts2, _ := resp.Data["options"].(map[string]any); opts2["version"] != "2" {
			t.Fatalf("options %#v", resp.Data["options"])
		}
	}
	alias, err := f.do(t, logical.ReadOperation, "sys/mounts-all/secret/data/foo", nil)
	if err != nil || alias.Data["path"] != "secret/" {
		t.Fatalf("mounts-all alias: %#v, %v", alias, err)
	}
	// Without a token the preflight is refused.
	_, err = f.c.HandleRequest(context.Background(), &Request{Operation: logical.ReadOperation, Path: "sys/internal/ui/mounts/secret/foo"})
	if err == nil {
		t.Fatal("preflight without a token succeeded")
	}
}

// dataOf decodes a KV v2 read's data as a client would (the engine hands
// the stored JSON through as it is).
func dataOf(t *testing.T, resp *logical.Response) map[string]any {
	t.Helper()
	raw, err := json.Marshal(resp.Data["data"])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
