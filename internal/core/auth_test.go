package core

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

func TestAuthMountTable(t *testing.T) {
	f := initCore(t)
	must := func(resp *logical.Response, err error) *logical.Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	status := func(err error) int {
		var ce *logical.CodedError
		if errors.As(err, &ce) {
			return ce.Status
		}
		return 0
	}

	must(f.do(t, logical.UpdateOperation, "sys/auth/approle", map[string]any{"type": "approle", "description": "CI jobs"}))
	resp := must(f.do(t, logical.ReadOperation, "sys/auth", nil))
	info, ok := resp.Data["approle/"].(map[string]any)
	if !ok || info["type"] != "approle" || info["description"] != "CI jobs" || !strings.HasPrefix(info["accessor"].(string), "auth_approle_") {
		t.Fatalf("sys/auth = %v", resp.Data)
	}
	if cfg := info["config"].(map[string]any); cfg["token_type"] != "default-service" {
		t.Fatalf("config = %v", cfg)
	}
	if _, ok := must(f.do(t, logical.ReadOperation, "sys/mounts", nil)).Data["auth/approle/"]; ok {
		t.Fatal("an auth method is listed among secrets engines")
	}
	if resp := must(f.do(t, logical.ReadOperation, "sys/auth/approle", nil)); resp.Data["type"] != "approle" {
		t.Fatalf("read = %v", resp.Data)
	}

	// Bad input: 400, nothing enabled.
	for _, bad := range []struct {
		path string
		data map[string]any
	}{
		{"sys/auth/approle", map[string]any{"type": "approle"}}, // in use
		{"sys/auth/other", map[string]any{"type": "nosuch"}},    // unknown type
		{"sys/auth/other", map[string]any{}},                    // no type
		{"sys/auth/token", map[string]any{"type": "approle"}},   // reserved
		{"sys/auth/other", map[string]any{"type": "approle", "config": map[string]any{"token_type": "weird"}}},
		{"sys/mounts/auth/x", map[string]any{"type": "kv"}}, // a secrets engine under auth/
	} {
		if _, err := f.do(t, logical.UpdateOperation, bad.path, bad.data); status(err) != 400 {
			t.Errorf("%s %v: err = %v, want a 400", bad.path, bad.data, err)
		}
	}
	if _, ok := must(f.do(t, logical.ReadOperation, "sys/auth", nil)).Data["other/"]; ok {
		t.Fatal("a refused enable left a mount")
	}

	// The method serves its paths under auth/<path>/.
	must(f.do(t, logical.UpdateOperation, "auth/approle/role/ci", map[string]any{"token_policies": "ml-training"}))
	roleID := must(f.do(t, logical.ReadOperation, "auth/approle/role/ci/role-id", nil)).Data["role_id"].(string)
	secretID := must(f.do(t, logical.UpdateOperation, "auth/approle/role/ci/secret-id", nil)).Data["secret_id"].(string)

	// Login is unauthenticated: no token reaches the method, which
	// answers bad credentials itself.
	_, err := f.doAs(t, secret.String{}, logical.UpdateOperation, "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": "wrong"})
	if status(err) != 400 || !strings.Contains(err.Error(), "invalid role or secret ID") {
		t.Fatalf("login with a wrong secret id: %v", err)
	}
	// Good credentials: the pipeline creates the token the method asked
	// for.
	login, err := f.doAs(t, secret.String{}, logical.UpdateOperation, "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if a := login.Auth; a == nil || !strings.HasPrefix(a.ClientToken, "hvs.") || a.Accessor == "" || !a.Orphan || a.TTL <= 0 {
		t.Fatalf("login auth = %+v", login.Auth)
	}
	// Every other path of the method still needs a token.
	if _, err := f.doAs(t, secret.String{}, logical.ReadOperation, "auth/approle/role/ci", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("role read without a token: %v", err)
	}

	// Tuning, through sys/auth and sys/mounts/auth.
	must(f.do(t, logical.UpdateOperation, "sys/auth/approle/tune", map[string]any{"token_type": "batch", "default_lease_ttl": "1h"}))
	tune := must(f.do(t, logical.ReadOperation, "sys/mounts/auth/approle/tune", nil)).Data
	if tune["token_type"] != "batch" || tune["default_lease_ttl"] != int64(3600) {
		t.Fatalf("tune = %v", tune)
	}
	if _, err := f.do(t, logical.UpdateOperation, "sys/auth/approle/tune", map[string]any{"token_type": "weird"}); status(err) != 400 {
		t.Fatalf("bad token_type: %v", err)
	}
	if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/sys/tune", map[string]any{"token_type": "batch"}); status(err) != 400 {
		t.Fatalf("token_type on a secrets mount: %v", err)
	}

	// Enabling, tuning and disabling need sudo; listing does not.
	must(f.do(t, logical.UpdateOperation, "sys/policies/acl/auth-admin", map[string]any{"policy": `path "sys/auth*" { capabilities = ["create", "read", "update", "delete"] }`}))
	admin := f.tokenWith(t, "auth-admin")
	if _, err := f.doAs(t, admin, logical.ReadOperation, "sys/auth", nil); err != nil {
		t.Fatalf("list without sudo: %v", err)
	}
	for _, req := range []struct {
		op   logical.Operation
		path string
	}{
		{logical.UpdateOperation, "sys/auth/other"},
		{logical.UpdateOperation, "sys/auth/approle/tune"},
		{logical.DeleteOperation, "sys/auth/approle"},
	} {
		if _, err := f.doAs(t, admin, req.op, req.path, map[string]any{"type": "approle"}); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("%s %s without sudo: %v", req.op, req.path, err)
		}
	}

	// The table survives a restart.
	c2 := newCore(t, f.phys)
	f.c.SealInternal(context.Background())
	f.c = c2
	f.unseal(t)
	if resp := must(f.do(t, logical.ReadOperation, "auth/approle/role/ci", nil)); resp.Data == nil {
		t.Fatal("role lost across a restart")
	}

	// Disabling removes the method and its data.
	must(f.do(t, logical.DeleteOperation, "sys/auth/approle", nil))
	if _, ok := must(f.do(t, logical.ReadOperation, "sys/auth", nil)).Data["approle/"]; ok {
		t.Fatal("disabled method still listed")
	}
	if _, err := f.do(t, logical.ReadOperation, "auth/approle/role/ci", nil); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("disabled method still routed: %v", err)
	}
	must(f.do(t, logical.UpdateOperation, "sys/auth/approle", map[string]any{"type": "approle"}))
	if _, err := f.do(t, logical.ReadOperation, "auth/approle/role/ci", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("a re-enabled method sees the old data: %v", err)
	}
	if _, err := f.do(t, logical.DeleteOperation, "sys/auth/token", nil); status(err) != 400 {
		t.Fatalf("disable token: %v", err)
	}
	if _, err := f.do(t, logical.DeleteOperation, "sys/mounts/auth/approle", nil); status(err) != 400 {
		t.Fatalf("disable an auth method through sys/mounts: %v", err)
	}
}
