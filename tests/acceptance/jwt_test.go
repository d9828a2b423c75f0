//go:build !e2e

package acceptance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestJWTLoginCIJob is a CI job's identity end to end, with the official
// client: an OIDC issuer on loopback, a role bound to one repository's
// main branch, a login with the job's token, a read the role's policy
// allows and one it does not, a forged token refused, and the audit log
// naming the workload.
func TestJWTLoginCIJob(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var iss *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss.URL, "jwks_uri": iss.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	iss = httptest.NewServer(mux)
	defer iss.Close()
	sign := func(signer *ecdsa.PrivateKey, ref string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: signer}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		payload, _ := json.Marshal(map[string]any{
			"iss": iss.URL, "aud": "vigil", "sub": "repo:acme/train:ref:" + ref, "exp": now.Add(5 * time.Minute).Unix(),
			"iat": now.Unix(), "repository": "acme/train", "ref": ref, "run_id": "77", "actor": "octocat",
		})
		obj, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := obj.CompactSerialize()
		return out
	}

	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	ctx := context.Background()
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := root.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	for path, v := range map[string]string{"ci/acme-train/openai": "sk-train", "ci/other/openai": "sk-other"} {
		if _, err := root.KVv2("secret").Put(ctx, path, map[string]any{"api_key": v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.Sys().PutPolicy("train", `path "secret/data/ci/acme-train/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("jwt", &vault.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/jwt/config", map[string]any{"oidc_discovery_url": iss.URL, "bound_issuer": iss.URL}); err != nil {
		t.Fatal(err)
	}
	// The role as the README writes it: the CLI, JSON on stdin.
	vigil := func(stdin string, args ...string) (string, int) {
		var out, errOut strings.Builder
		env := map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}
		code := cli.Run(ctx, args, strings.NewReader(stdin), &out, &errOut, func(k string) string { return env[k] })
		if code != 0 {
			t.Logf("vigil %v: %s", args, errOut.String())
		}
		return out.String(), code
	}
	if _, code := vigil(`{"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["vigil"],
 "bound_claims": {"repository": "acme/train", "ref": "refs/heads/main"},
 "claim_mappings": {"repository": "repository", "ref": "ref", "run_id": "run_id", "actor": "actor"},
 "token_policies": ["train"], "token_ttl": "10m"}`, "write", "auth/jwt/role/train", "-"); code != 0 {
		t.Fatalf("vigil write role: exit %d", code)
	}

	job, _ := root.Clone()
	job.ClearToken()
	jobJWT := sign(key, "refs/heads/main")
	login, err := job.Logical().Write("auth/jwt/login", map[string]any{"role": "train", "jwt": jobJWT})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if login.Auth == nil || login.Auth.Metadata["repository"] != "acme/train" || login.Auth.Metadata["run_id"] != "77" ||
		login.Auth.LeaseDuration != 600 || !strings.HasPrefix(login.Auth.ClientToken, "hvs.") {
		t.Fatalf("login auth: %+v", login.Auth)
	}
	job.SetToken(login.Auth.ClientToken)
	if sec, err := job.KVv2("secret").Get(ctx, "ci/acme-train/openai"); err != nil || sec.Data["api_key"] != "sk-train" {
		t.Fatalf("allowed read: %v", err)
	}
	var re *vault.ResponseError
	if _, err := job.KVv2("secret").Get(ctx, "ci/other/openai"); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("other repository's secret: %v, want 403", err)
	}
	anon, _ := root.Clone()
	anon.ClearToken()
	forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, tok := range map[string]string{"another branch": sign(key, "refs/heads/dev"), "forged signature": sign(forger, "refs/heads/main")} {
		if _, err := anon.Logical().Write("auth/jwt/login", map[string]any{"role": "train", "jwt": tok}); !errors.As(err, &re) || re.StatusCode != 400 {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}
	// The CLI's login and -field=token, as a CI job runs them.
	jwtFile := filepath.Join(t.TempDir(), "jwt")
	if err := os.WriteFile(jwtFile, []byte(sign(key, "refs/heads/main")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := vigil("", "write", "-field=token", "auth/jwt/login", "role=train", "jwt=@"+jwtFile); code != 0 || !strings.HasPrefix(out, "hvs.") {
		t.Fatalf("vigil write -field=token auth/jwt/login: exit %d, %d bytes", code, len(out))
	}
	if out, code := vigil("", "login", "-method=jwt", "-no-store", "role=train", "jwt=@"+jwtFile); code != 0 || !strings.Contains(out, "acme/train") {
		t.Fatalf("vigil login -method=jwt: exit %d\n%s", code, out)
	}

	// Renewal goes back to the role: fine while it stands, 400 once it is
	// gone (the agent then logs in again).
	if _, err := job.Auth().Token().RenewSelf(300); err != nil {
		t.Fatalf("renew-self: %v", err)
	}
	if _, err := root.Logical().Delete("auth/jwt/role/train"); err != nil {
		t.Fatal(err)
	}
	if _, err := job.Auth().Token().RenewSelf(300); !errors.As(err, &re) || re.StatusCode != 400 {
		t.Fatalf("renew-self after the role went: %v, want 400", err)
	}

	// The audit entries of the job's requests name the workload.
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e struct {
			Type    string
			Auth    struct{ Metadata map[string]string }
			Request struct{ Path string }
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Request.Path == "secret/data/ci/acme-train/openai" &&
			e.Auth.Metadata["repository"] == "acme/train" && e.Auth.Metadata["actor"] == "octocat" {
			found = true
		}
	}
	if !found {
		t.Error("no audit entry of the job's read names its repository and actor")
	}
	if strings.Contains(string(raw), jobJWT) || strings.Contains(string(raw), strings.Split(jobJWT, ".")[2]) {
		t.Error("a JWT in the audit log")
	}
}
