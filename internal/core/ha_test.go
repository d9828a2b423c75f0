package core

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

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

// newHACore returns a sealed HA core named id over its own node of phys.
func newHACore(t *testing.T, phys *inmem.Backend, w seal.Wrapper, id string) *Core {
	t.Helper()
	node := phys.Node()
	c, err := New(Config{Storage: node, StorageType: "inmem", Seal: w, Factories: map[string]logical.Factory{"kv": kv.Factory},
		AuthFactories:  map[string]logical.Factory{"approle": approle.Factory},
		AuditFactories: map[string]audit.Factory{"file": auditfile.New},
		HA:             node, NodeID: id, APIAddr: "https://" + id + ":8200", StepDownWait: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(t.Output(), nil)).With("node", id)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.SealInternal(context.Background()) })
	return c
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func active(c *Core) func() bool { return func() bool { return !c.Sealed() && !c.Standby() } }

// initHA returns the fixture of an HA core "a" with a static seal over a
// node of phys: initialized, active, with KV v1 at secret/.
func initHA(t *testing.T) (phys *inmem.Backend, key seal.Key, f *autoFixture) {
	t.Helper()
	ctx := context.Background()
	phys, key = inmem.New(), newKey("k1")
	a := newHACore(t, phys, staticSeal(t, key, nil), "a")
	res, err := a.Init(ctx, InitRequest{RecoveryShares: 1, RecoveryThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	f = &autoFixture{phys: phys, key: key, c: a, root: res.RootToken}
	waitFor(t, "a is active", active(a))
	if err := a.EnableMount(ctx, "secret/", MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	return phys, key, f
}

func TestHAOneActiveStandbysForwardAndTakeOver(t *testing.T) {
	ctx := context.Background()
	phys, key, f := initHA(t)
	a := f.c
	f.write(t, a, "secret/before", "1")

	b := newHACore(t, phys, staticSeal(t, key, nil), "b")
	if err := b.AutoUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Sealed() || !b.Standby() {
		t.Fatalf("b: sealed=%v standby=%v, want an unsealed standby", b.Sealed(), b.Standby())
	}
	if _, err := b.HandleRequest(ctx, &Request{ID: secret.UUID(), Operation: logical.ReadOperation, Path: "secret/before", Token: f.root}); !errors.Is(err, ErrStandby) {
		t.Fatalf("request on a standby: %v, want ErrStandby", err)
	}
	if err := b.Seal(ctx, f.root, nil); !errors.Is(err, ErrCannotSealStandby) {
		t.Fatalf("seal of a standby: %v", err)
	}
	if addr, err := b.ActiveAddress(ctx); err != nil || addr != "https://a:8200" {
		t.Fatalf("b.ActiveAddress = %q, %v", addr, err)
	}
	if st, err := b.Leader(ctx); err != nil || !st.HAEnabled || st.IsSelf || st.LeaderAddress != "https://a:8200" {
		t.Fatalf("b.Leader = %+v, %v", st, err)
	}
	if st, err := a.Leader(ctx); err != nil || !st.IsSelf || st.ActiveTime.IsZero() {
		t.Fatalf("a.Leader = %+v, %v", st, err)
	}
	if st, _ := b.SealStatus(ctx); st.Sealed || !st.Standby || st.ClusterID == "" {
		t.Fatalf("b seal status %+v", st)
	}

	// A term added by the active is known to the next active.
	if _, err := a.HandleRequest(ctx, &Request{ID: secret.UUID(), Operation: logical.UpdateOperation, Path: "sys/rotate", Token: f.root}); err != nil {
		t.Fatal(err)
	}
	f.write(t, a, "secret/after", "2")

	// A lease a registers runs out on b's expiration manager.
	res2, err := a.HandleRequest(ctx, &Request{ID: secret.UUID(), Operation: logical.UpdateOperation, Path: "auth/token/create", Data: map[string]any{"ttl": "1s"}, Token: f.root})
	if err != nil {
		t.Fatal(err)
	}
	short := secret.NewString(res2.Response.Auth.ClientToken)
	if n := tokenLeases(t, a, f.root); n != 1 {
		t.Fatalf("%d token leases, want 1", n)
	}

	// a dies: its lock goes; b takes over, a's writes are fenced.
	phys.KillLeader()
	waitFor(t, "b is active", active(b))
	if got := f.read(t, b, "secret/before") + f.read(t, b, "secret/after"); got != "12" {
		t.Fatalf("b reads %q", got)
	}
	f.write(t, b, "secret/b", "3")
	waitFor(t, "b revoked the expired token's lease", func() bool { return tokenLeases(t, b, f.root) == 0 })
	if _, err := b.HandleRequest(ctx, &Request{ID: secret.UUID(), Operation: logical.ReadOperation, Path: "auth/token/lookup-self", Token: short}); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("expired token: %v", err)
	}
	waitFor(t, "a stands by", a.Standby)
	if _, err := a.HandleRequest(ctx, &Request{ID: secret.UUID(), Operation: logical.UpdateOperation, Path: "secret/x", Data: map[string]any{"v": "x"}, Token: f.root}); !errors.Is(err, ErrStandby) {
		t.Fatalf("write on the former active: %v", err)
	}

	// b steps down: a, which campaigned again, takes over.
	if err := b.StepDown(ctx, secret.NewString("not-a-token"), nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("step-down with a bad token: %v", err)
	}
	if err := b.StepDown(ctx, f.root, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a is active again", active(a))
	waitFor(t, "b stands by", b.Standby)
	if got := f.read(t, a, "secret/b"); got != "3" {
		t.Fatalf("a reads %q", got)
	}

	// Sealing the active releases the lock at once.
	if err := a.SealInternal(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "b is active after a sealed", active(b))
	if _, ok, _ := phys.Node().Leader(ctx); !ok {
		t.Fatal("no leader after takeover")
	}
}

func TestHAForwardMAC(t *testing.T) {
	ctx := context.Background()
	phys := inmem.New()
	key := newKey("k1")
	a := newHACore(t, phys, staticSeal(t, key, nil), "a")
	if _, err := a.Init(ctx, InitRequest{RecoveryShares: 1, RecoveryThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	b := newHACore(t, phys, staticSeal(t, key, nil), "b")
	if err := b.AutoUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	msg := []byte("v1 203.0.113.7:4711")
	mac, ok := b.ForwardMAC(msg)
	if !ok || !a.CheckForwardMAC(msg, mac) {
		t.Fatal("a does not accept b's MAC")
	}
	if a.CheckForwardMAC([]byte("v1 203.0.113.8:4711"), mac) {
		t.Fatal("a MAC accepted for another message")
	}
	other := initCore(t) // another cluster: another root key
	if _, ok := other.c.ForwardMAC(msg); ok {
		t.Fatal("a server without HA signs forwarded requests")
	}
	if err := b.SealInternal(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.ForwardMAC(msg); ok || b.CheckForwardMAC(msg, mac) {
		t.Fatal("a sealed server signs or checks forwarded requests")
	}
}

func TestHALeaderWithoutHA(t *testing.T) {
	f := initCore(t)
	st, err := f.c.Leader(context.Background())
	if err != nil || st.HAEnabled {
		t.Fatalf("Leader = %+v, %v", st, err)
	}
	if err := f.c.StepDown(context.Background(), f.token, nil); err != nil {
		t.Fatalf("step-down without HA: %v", err)
	}
	var _ storage.HABackend = inmem.New().Node()
}

// tokenLeases counts the leases of tokens made with auth/token/create.
func tokenLeases(t *testing.T, c *Core, root secret.String) int {
	t.Helper()
	res, err := c.HandleRequest(context.Background(), &Request{ID: secret.UUID(), Operation: logical.ListOperation, Path: "sys/leases/lookup/auth/token/create/", Token: root})
	if errors.Is(err, logical.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := res.Response.Data["keys"].([]string)
	return len(keys)
}
