package core

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/secrets/cubbyhole"
)

// TestCubbyhole: every service token has its own cubbyhole, which no other
// token (root included) sees; it goes with the token; batch tokens have
// none; the mount is always there and cannot be disabled, moved or
// mounted twice.
func TestCubbyhole(t *testing.T) {
	ctx := context.Background()
	f := initCoreWith(t, Config{Factories: map[string]logical.Factory{"cubbyhole": cubbyhole.Factory}})
	c := f.c

	mounts := f.ok(t, logical.ReadOperation, "sys/mounts", nil).Data
	if m, _ := mounts["cubbyhole/"].(map[string]any); m == nil || m["type"] != "cubbyhole" || m["local"] != true {
		t.Fatalf("cubbyhole/ in sys/mounts = %v", mounts["cubbyhole/"])
	}
	newToken := func(typ string) secret.String {
		t.Helper()
		return secret.NewString(f.ok(t, logical.UpdateOperation, "auth/token/create", map[string]any{"policies": []any{"default"}, "type": typ}).Auth.ClientToken)
	}
	alice, bob := newToken("service"), newToken("service")
	f.okAs(t, alice, logical.UpdateOperation, "cubbyhole/notes/key", map[string]any{"api_key": "alice-sk"})
	f.okAs(t, bob, logical.UpdateOperation, "cubbyhole/notes/key", map[string]any{"api_key": "bob-sk"})
	if got := f.okAs(t, alice, logical.ReadOperation, "cubbyhole/notes/key", nil).Data["api_key"]; got != "alice-sk" {
		t.Fatalf("alice reads %v", got)
	}
	if got := f.okAs(t, bob, logical.ReadOperation, "cubbyhole/notes/key", nil).Data["api_key"]; got != "bob-sk" {
		t.Fatalf("bob reads %v", got)
	}
	if _, err := f.do(t, logical.ReadOperation, "cubbyhole/notes/key", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("root reads another token's cubbyhole: %v", err)
	}
	if keys := f.okAs(t, alice, logical.ListOperation, "cubbyhole/notes/", nil).Data["keys"]; len(keys.([]string)) != 1 {
		t.Fatalf("alice lists %v", keys)
	}
	if _, err := f.doAs(t, alice, logical.UpdateOperation, "cubbyhole/empty", nil); err == nil {
		t.Fatal("a write without data was accepted")
	}

	// Revoked with the token.
	te, err := c.tokens.Lookup(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	view := c.barrier.View(*c.cubbyholePrefix.Load() + te.HashedID + "/")
	if keys, err := view.List(ctx, "notes/"); err != nil || len(keys) != 1 {
		t.Fatalf("alice's cubbyhole in storage: %v %v", keys, err)
	}
	f.ok(t, logical.UpdateOperation, "auth/token/revoke", map[string]any{"token": alice.Reveal()})
	if keys, err := view.List(ctx, ""); err != nil || len(keys) != 0 {
		t.Fatalf("alice's cubbyhole after revocation: %v %v", keys, err)
	}
	if got := f.okAs(t, bob, logical.ReadOperation, "cubbyhole/notes/key", nil).Data["api_key"]; got != "bob-sk" {
		t.Fatalf("bob's cubbyhole after alice's revocation: %v", got)
	}

	// A wrapping token's cubbyhole/response is its wrapped response, as
	// old clients read it: once.
	wres, err := f.wrapped(t, f.token, logical.UpdateOperation, "sys/wrapping/wrap", map[string]any{"api_key": "wrapped-sk"}, time.Minute)
	if err != nil || wres.Wrap == nil {
		t.Fatalf("wrap: %v", err)
	}
	legacy := f.okAs(t, wres.Wrap.Token, logical.ReadOperation, "cubbyhole/response", nil).Data["response"]
	if s, _ := legacy.(string); !strings.Contains(s, `"api_key":"wrapped-sk"`) {
		t.Fatalf("cubbyhole/response = %v", legacy)
	}
	if _, err := f.doAs(t, wres.Wrap.Token, logical.ReadOperation, "cubbyhole/response", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("second read of cubbyhole/response: %v", err)
	}

	// Batch tokens have none.
	if _, err := f.doAs(t, newToken("batch"), logical.UpdateOperation, "cubbyhole/x", map[string]any{"a": "b"}); !errors.Is(err, errBatchCubbyhole) {
		t.Fatalf("batch token: %v", err)
	}
	// Always mounted, once.
	for _, req := range []struct {
		op   logical.Operation
		path string
		data map[string]any
	}{
		{logical.DeleteOperation, "sys/mounts/cubbyhole", nil},
		{logical.UpdateOperation, "sys/remount", map[string]any{"from": "cubbyhole", "to": "cubby2"}},
		{logical.UpdateOperation, "sys/mounts/cubby2", map[string]any{"type": "cubbyhole"}},
	} {
		if _, err := f.do(t, req.op, req.path, req.data); err == nil {
			t.Errorf("%s %s accepted", req.op, req.path)
		}
	}
}
