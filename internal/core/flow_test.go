package core

import (
	"errors"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/auth/approle"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/secrets/kv"
)

// TestLeastPrivilegeFlow is the flow issue 3 is done by: a policy that
// reads only secret/data/ml/*, an AppRole bound to it, a login, reads
// there allowed and everything else refused, the token dead after its TTL,
// and revoke-prefix on the auth mount cutting every token it issued.
func TestLeastPrivilegeFlow(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	f := initCoreWith(t, Config{Clock: clk,
		Factories:     map[string]logical.Factory{"kv": kv.Factory},
		AuthFactories: map[string]logical.Factory{"approle": approle.Factory}})
	c := f.c
	must := func(resp *logical.Response, err error) *logical.Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	must(f.do(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}}))
	must(f.do(t, logical.UpdateOperation, "secret/data/ml/openai", map[string]any{"data": map[string]any{"api_key": "sk-test"}}))
	must(f.do(t, logical.UpdateOperation, "secret/data/finance/db", map[string]any{"data": map[string]any{"password": "p"}}))
	must(f.do(t, logical.UpdateOperation, "sys/policies/acl/ml-training", map[string]any{"policy": mlTraining}))
	must(f.do(t, logical.UpdateOperation, "sys/auth/approle", map[string]any{"type": "approle"}))
	must(f.do(t, logical.UpdateOperation, "auth/approle/role/trainer", map[string]any{"token_policies": "ml-training", "token_ttl": "1h", "token_max_ttl": "2h"}))
	roleID := must(f.do(t, logical.ReadOperation, "auth/approle/role/trainer/role-id", nil)).Data["role_id"]

	login := func() secret.String {
		t.Helper()
		sid := must(f.do(t, logical.UpdateOperation, "auth/approle/role/trainer/secret-id", nil)).Data["secret_id"]
		resp := must(f.doAs(t, secret.String{}, logical.UpdateOperation, "auth/approle/login", map[string]any{"role_id": roleID, "secret_id": sid}))
		if resp.Auth == nil || resp.Auth.TTL != time.Hour {
			t.Fatalf("login auth = %+v", resp.Auth)
		}
		return secret.NewString(resp.Auth.ClientToken)
	}
	tok := login()

	resp := must(f.doAs(t, tok, logical.ReadOperation, "secret/data/ml/openai", nil))
	if resp.Data["data"] == nil {
		t.Fatalf("read = %v", resp.Data)
	}
	for _, d := range []struct {
		op   logical.Operation
		path string
	}{
		{logical.UpdateOperation, "secret/data/ml/openai"},
		{logical.ReadOperation, "secret/data/finance/db"},
		{logical.ReadOperation, "sys/mounts"},
		{logical.UpdateOperation, "sys/policies/acl/ml-training"},
		{logical.ReadOperation, "auth/approle/role/trainer"},
	} {
		if _, err := f.doAs(t, tok, d.op, d.path, map[string]any{"data": map[string]any{"x": "y"}}); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("%s %s: %v, want permission denied", d.op, d.path, err)
		}
	}
	// The default policy lets the token look itself up.
	self := must(f.doAs(t, tok, logical.ReadOperation, "auth/token/lookup-self", nil)).Data
	if self["path"] != "auth/approle/login" || self["ttl"] == nil {
		t.Fatalf("lookup-self = %v", self)
	}

	// After its TTL the token stops working: its lease expires and the
	// expiration manager revokes it.
	<-c.leases.Restored()
	clk.Advance(time.Hour + 5*time.Second)
	waitDenied := func(tok secret.String) {
		t.Helper()
		for range 400 {
			if _, err := f.doAs(t, tok, logical.ReadOperation, "secret/data/ml/openai", nil); errors.Is(err, logical.ErrPermissionDenied) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatal("the token still works")
	}
	waitDenied(tok)

	// revoke-prefix on the auth mount cuts every token it issued.
	a, b := login(), login()
	must(f.do(t, logical.UpdateOperation, "sys/leases/revoke-prefix/auth/approle", nil))
	for _, tk := range []secret.String{a, b} {
		if _, err := f.doAs(t, tk, logical.ReadOperation, "secret/data/ml/openai", nil); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Fatalf("a token of the mount survived revoke-prefix: %v", err)
		}
	}
}
