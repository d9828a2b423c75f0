package acceptance

import (
	"context"
	"slices"
	"testing"

	vault "github.com/hashicorp/vault/api"
	"github.com/hashicorp/vault/api/auth/approle"
)

// testResponseWrapping is the trusted-orchestrator flow through the
// official client: an orchestrator fetches an AppRole secret ID wrapped,
// the job looks the wrapping token up (as Vault Agent does before it
// unwraps), logs in with the approle auth helper's WithWrappingToken, and
// the spent token cannot be unwrapped again; a KV read wrapped by the
// client's lookup function and unwrapped with Logical().Unwrap; a
// wrapped token creation names the token it holds.
func testResponseWrapping(t *testing.T, tg *target) {
	ctx := context.Background()
	root := vaultClient(t, tg)
	if err := root.Sys().Mount("secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2("secret").Put(ctx, "ml/hf", map[string]any{"token": "hf_wrapped_value"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("hf-read", `path "secret/data/ml/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/approle/role/finetune", map[string]any{"token_policies": "hf-read", "token_ttl": "1h"}); err != nil {
		t.Fatal(err)
	}
	rid, err := root.Logical().Read("auth/approle/role/finetune/role-id")
	if err != nil {
		t.Fatal(err)
	}

	orchestrator, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	orchestrator.SetToken(tg.RootToken)
	orchestrator.SetWrappingLookupFunc(func(op, path string) string {
		if path == "auth/approle/role/finetune/secret-id" || path == "secret/data/ml/hf" || path == "auth/token/create" {
			return "2m"
		}
		return vault.DefaultWrappingLookupFunc(op, path)
	})
	wrapped, err := orchestrator.Logical().Write("auth/approle/role/finetune/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	wi := wrapped.WrapInfo
	if wi == nil || wi.Token == "" || wi.TTL != 120 || wi.CreationPath != "auth/approle/role/finetune/secret-id" || wi.CreationTime.IsZero() || wrapped.Data != nil {
		t.Fatalf("wrapped secret ID: %+v (wrap_info %+v)", wrapped, wi)
	}

	// The job: looks the token up without a token of its own, then logs
	// in with it.
	job, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	job.ClearToken()
	look, err := job.Logical().Write("sys/wrapping/lookup", map[string]any{"token": wi.Token})
	if err != nil || look.Data["creation_path"] != "auth/approle/role/finetune/secret-id" {
		t.Fatalf("lookup: %v %v", look, err)
	}
	auth, err := approle.NewAppRoleAuth(rid.Data["role_id"].(string), &approle.SecretID{FromString: wi.Token}, approle.WithWrappingToken())
	if err != nil {
		t.Fatal(err)
	}
	login, err := job.Auth().Login(ctx, auth)
	if err != nil {
		t.Fatalf("login with a wrapped secret ID: %v", err)
	}
	if login.Auth == nil || !slices.Contains(login.Auth.Policies, "hf-read") {
		t.Fatalf("login = %+v", login.Auth)
	}
	kv, err := job.KVv2("secret").Get(ctx, "ml/hf")
	if err != nil || kv.Data["token"] != "hf_wrapped_value" {
		t.Fatalf("read after the wrapped login: %v %v", kv, err)
	}
	// Spent: a second unwrap (an attacker who copied the token) fails.
	if _, err := orchestrator.Logical().Unwrap(wi.Token); err == nil {
		t.Fatal("a spent wrapping token unwrapped again")
	}

	// A wrapped KV read, unwrapped by another token.
	sec, err := orchestrator.Logical().Read("secret/data/ml/hf")
	if err != nil || sec.WrapInfo == nil || sec.Data != nil {
		t.Fatalf("wrapped read: %+v %v", sec, err)
	}
	plain, err := root.Logical().Unwrap(sec.WrapInfo.Token)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := plain.Data["data"].(map[string]any); data["token"] != "hf_wrapped_value" {
		t.Fatalf("unwrapped read = %v", plain.Data)
	}

	// A wrapped token creation names the token it holds.
	tok, err := orchestrator.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"hf-read"}, TTL: "1h"})
	if err != nil || tok.WrapInfo == nil || tok.WrapInfo.WrappedAccessor == "" || tok.Auth != nil {
		t.Fatalf("wrapped token creation: %+v %v", tok, err)
	}
	got, err := root.Logical().Unwrap(tok.WrapInfo.Token)
	if err != nil || got.Auth == nil || got.Auth.Accessor != tok.WrapInfo.WrappedAccessor || got.Auth.ClientToken == "" {
		t.Fatalf("unwrapped token creation: %+v %v", got, err)
	}
}

// testCubbyhole: the cubbyhole through the official client: listed among
// the mounts, private to the token that wrote it (root sees nothing),
// listed and deleted by its owner.
func testCubbyhole(t *testing.T, tg *target) {
	root := vaultClient(t, tg)
	mounts, err := root.Sys().ListMounts()
	if err != nil || mounts["cubbyhole/"] == nil || mounts["cubbyhole/"].Type != "cubbyhole" {
		t.Fatalf("cubbyhole/ in the mounts: %v %v", mounts["cubbyhole/"], err)
	}
	tok, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"default"}})
	if err != nil {
		t.Fatal(err)
	}
	owner, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	owner.SetToken(tok.Auth.ClientToken)
	if _, err := owner.Logical().Write("cubbyhole/handoff", map[string]any{"value": "cubby-secret"}); err != nil {
		t.Fatal(err)
	}
	if s, err := owner.Logical().Read("cubbyhole/handoff"); err != nil || s == nil || s.Data["value"] != "cubby-secret" {
		t.Fatalf("owner's read: %v %v", s, err)
	}
	if s, err := root.Logical().Read("cubbyhole/handoff"); err != nil || s != nil {
		t.Fatalf("root read another token's cubbyhole: %v %v", s, err)
	}
	if s, err := owner.Logical().List("cubbyhole/"); err != nil || s == nil || len(s.Data["keys"].([]any)) != 1 {
		t.Fatalf("owner's list: %v %v", s, err)
	}
	if _, err := owner.Logical().Delete("cubbyhole/handoff"); err != nil {
		t.Fatal(err)
	}
	if s, err := owner.Logical().Read("cubbyhole/handoff"); err != nil || s != nil {
		t.Fatalf("read after delete: %v %v", s, err)
	}
}
