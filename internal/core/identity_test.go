package core

import (
	"errors"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// ok and okAs are do and doAs for requests that must succeed.
func (f *fixture) ok(t *testing.T, op logical.Operation, path string, data map[string]any) *logical.Response {
	t.Helper()
	return f.okAs(t, f.token, op, path, data)
}

func (f *fixture) okAs(t *testing.T, tok secret.String, op logical.Operation, path string, data map[string]any) *logical.Response {
	t.Helper()
	resp, err := f.doAs(t, tok, op, path, data)
	if err != nil {
		t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

func statusOf(err error) int {
	var ce *logical.CodedError
	if errors.As(err, &ce) {
		return ce.Status
	}
	if errors.Is(err, logical.ErrPermissionDenied) {
		return 403
	}
	if errors.Is(err, logical.ErrNotFound) {
		return 404
	}
	return 0
}

// approleLogin logs in with a new secret id of role, carrying metadata
// (a JSON object), and returns the token and its entity id.
func (f *fixture) approleLogin(t *testing.T, role, metadata string) (secret.String, string) {
	t.Helper()
	roleID := f.ok(t, logical.ReadOperation, "auth/approle/role/"+role+"/role-id", nil).Data["role_id"].(string)
	secretID := f.ok(t, logical.UpdateOperation, "auth/approle/role/"+role+"/secret-id", map[string]any{"metadata": metadata}).Data["secret_id"].(string)
	resp, err := f.doAs(t, secret.String{}, logical.UpdateOperation, "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		t.Fatalf("login as %s: %v", role, err)
	}
	if resp.Auth.EntityID == "" {
		t.Fatalf("login as %s: no entity id", role)
	}
	return secret.NewString(resp.Auth.ClientToken), resp.Auth.EntityID
}

func TestIdentityTemplatedPolicy(t *testing.T) {
	f := initCore(t)
	f.ok(t, logical.UpdateOperation, "sys/auth/approle", map[string]any{"type": "approle"})
	f.ok(t, logical.UpdateOperation, "sys/mounts/kv", map[string]any{"type": "kv"})
	accessor := f.ok(t, logical.ReadOperation, "sys/auth", nil).Data["approle/"].(map[string]any)["accessor"].(string)
	alias := "identity.entity.aliases." + accessor + ".metadata."
	f.ok(t, logical.UpdateOperation, "sys/policies/acl/per-role", map[string]any{"policy": `
path "kv/{{` + alias + `role_name}}/*"     { capabilities = ["read"] }
path "kv/team-{{ ` + alias + `team }}/*"   { capabilities = ["read"] }
path "kv/by-entity/{{identity.entity.id}}" { capabilities = ["read"] }
`})
	for _, p := range []string{"kv/alpha/key", "kv/beta/key", "kv/team-search/key", "kv/team-ads/key"} {
		f.ok(t, logical.UpdateOperation, p, map[string]any{"v": p})
	}
	for _, role := range []string{"alpha", "beta"} {
		f.ok(t, logical.UpdateOperation, "auth/approle/role/"+role, map[string]any{"token_policies": "per-role"})
	}

	alpha, alphaEntity := f.approleLogin(t, "alpha", `{"team":"search"}`)
	beta, betaEntity := f.approleLogin(t, "beta", `{"team":"ads"}`)
	if alphaEntity == betaEntity {
		t.Fatal("two roles share an entity")
	}
	f.ok(t, logical.UpdateOperation, "kv/by-entity/"+alphaEntity, map[string]any{"v": "alpha's"})

	self := f.okAs(t, alpha, logical.ReadOperation, "auth/token/lookup-self", nil).Data
	if self["entity_id"] != alphaEntity {
		t.Errorf("lookup-self entity_id = %v, want %s", self["entity_id"], alphaEntity)
	}

	can := func(tok secret.String, path string) bool {
		t.Helper()
		_, err := f.doAs(t, tok, logical.ReadOperation, path, nil)
		if err != nil && statusOf(err) != 403 {
			t.Fatalf("read %s: %v", path, err)
		}
		return err == nil
	}
	for _, c := range []struct {
		tok  secret.String
		path string
		want bool
	}{
		{alpha, "kv/alpha/key", true}, {alpha, "kv/beta/key", false},
		{alpha, "kv/team-search/key", true}, {alpha, "kv/team-ads/key", false},
		{alpha, "kv/by-entity/" + alphaEntity, true},
		{beta, "kv/beta/key", true}, {beta, "kv/alpha/key", false},
		{beta, "kv/team-ads/key", true}, {beta, "kv/team-search/key", false},
		{beta, "kv/by-entity/" + alphaEntity, false},
	} {
		if got := can(c.tok, c.path); got != c.want {
			t.Errorf("read %s by %s: allowed %v, want %v", c.path, map[bool]string{true: "alpha", false: "beta"}[c.tok == alpha], got, c.want)
		}
	}

	// The default policy lets a token read its own entity, not another's.
	if _, err := f.doAs(t, alpha, logical.ReadOperation, "identity/entity/id/"+alphaEntity, nil); err != nil {
		t.Errorf("read own entity: %v", err)
	}
	if _, err := f.doAs(t, alpha, logical.ReadOperation, "identity/entity/id/"+betaEntity, nil); statusOf(err) != 403 {
		t.Errorf("read another's entity: %v, want 403", err)
	}

	// A new login of alpha records new alias metadata on the same entity;
	// alpha's earlier token follows it (templates resolve per request).
	_, again := f.approleLogin(t, "alpha", `{"team":"ads"}`)
	if again != alphaEntity {
		t.Fatalf("alpha's second login: entity %s, want %s", again, alphaEntity)
	}
	if can(alpha, "kv/team-search/key") || !can(alpha, "kv/team-ads/key") {
		t.Error("the earlier token's ACL did not follow the entity's new metadata")
	}

	// Entities outlive a seal.
	if err := f.c.SealInternal(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.unseal(t)
	if _, id := f.approleLogin(t, "beta", `{"team":"ads"}`); id != betaEntity {
		t.Errorf("after unseal: entity %s, want %s", id, betaEntity)
	}
	if !can(beta, "kv/beta/key") {
		t.Error("after unseal: beta's token lost its templated grant")
	}
}

func TestIdentityMount(t *testing.T) {
	f := initCore(t)
	m, ok := f.ok(t, logical.ReadOperation, "sys/mounts", nil).Data["identity/"].(map[string]any)
	if !ok || m["type"] != "identity" || !strings.HasPrefix(m["accessor"].(string), "identity_") {
		t.Fatalf("sys/mounts identity/ = %v", m)
	}
	for _, req := range []struct {
		op   logical.Operation
		path string
		data map[string]any
	}{
		{logical.DeleteOperation, "sys/mounts/identity", nil},
		{logical.UpdateOperation, "sys/mounts/other-identity", map[string]any{"type": "identity"}},
		{logical.UpdateOperation, "sys/remount", map[string]any{"from": "identity", "to": "ident"}},
	} {
		if _, err := f.do(t, req.op, req.path, req.data); statusOf(err) != 400 {
			t.Errorf("%s %s: %v, want 400", req.op, req.path, err)
		}
	}
	// An empty store lists nothing.
	if _, err := f.do(t, logical.ListOperation, "identity/entity/id/", nil); statusOf(err) != 404 {
		t.Errorf("LIST identity/entity/id on a new server: %v, want 404", err)
	}
}
