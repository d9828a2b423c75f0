//go:build !e2e

package acceptance

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	vault "github.com/hashicorp/vault/api"
	"gopkg.in/yaml.v3"

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

// oidcIssuer is an OIDC issuer on loopback: a discovery document naming
// its key set, one ES256 key, and sign for the tokens it issues.
type oidcIssuer struct {
	URL string
	key *ecdsa.PrivateKey
	t   *testing.T
}

func newOIDCIssuer(t *testing.T) *oidcIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	iss := &oidcIssuer{key: key, t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss.URL, "jwks_uri": iss.URL + "/oauth/discovery/keys"})
	})
	mux.HandleFunc("/oauth/discovery/keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	iss.URL = srv.URL
	return iss
}

// sign issues a token with claims, adding iss and the time claims (five
// minutes of validity).
func (iss *oidcIssuer) sign(claims map[string]any) string {
	iss.t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: iss.key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		iss.t.Fatal(err)
	}
	now := time.Now()
	c := map[string]any{"iss": iss.URL, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	maps.Copy(c, claims)
	payload, _ := json.Marshal(c)
	obj, err := s.Sign(payload)
	if err != nil {
		iss.t.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

// gitlabJob is the job of a .gitlab-ci.yml the README shows.
type gitlabJob struct {
	IDTokens  map[string]struct{ Aud string } `yaml:"id_tokens"`
	Variables map[string]string               `yaml:"variables"`
	Script    []string                        `yaml:"script"`
}

// TestREADMECIJobs runs section 7 of the README as written: the server
// side of GitHub Actions and of GitLab CI with the CLI, the GitHub job's
// commands, and the GitLab job of the .gitlab-ci.yml shown (its id_tokens
// audience in the token, its variables, its script), against loopback
// issuers signing tokens shaped like GitHub's and GitLab's. A GitLab job
// of another project, or of an unprotected branch, does not get the key.
func TestREADMECIJobs(t *testing.T) {
	section := readmeSection(t, "### 7.")
	github, gitlab := newOIDCIssuer(t), newOIDCIssuer(t)

	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	ctx := context.Background()
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := root.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	for path, v := range map[string]string{"ci/acme-train/openai": "sk-train", "ci/acme-eval/openai": "sk-eval", "ci/other/openai": "sk-other"} {
		if _, err := root.KVv2("secret").Put(ctx, path, map[string]any{"api_key": v}); err != nil {
			t.Fatal(err)
		}
	}
	subst := map[string]string{
		"https://token.actions.githubusercontent.com": github.URL,
		"https://gitlab.com":                          gitlab.URL,
		"https://vigil.example.com:8200":              s.URL,
	}

	admin := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}, subst)
	admin.mustRun(block(t, section, "sh", 0, "the GitHub server side"))
	admin.mustRun(block(t, section, "sh", 2, "the GitLab server side"))

	// The GitHub job: curl fetches the token from the runner; here the
	// test hands it over.
	ghJob := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "HOME": t.TempDir(), "JWT": github.sign(map[string]any{
		"aud": "vigil", "sub": "repo:acme/train:ref:refs/heads/main", "repository": "acme/train", "ref": "refs/heads/main",
		"workflow": "train-nightly", "environment": "prod", "run_id": "77", "actor": "octocat",
	})}, subst, "curl")
	ghJob.mustRun(block(t, section, "sh", 1, "the GitHub job"))
	if ghJob.env["OPENAI_API_KEY"] != "sk-train" {
		t.Errorf("the GitHub job's OPENAI_API_KEY = %q", ghJob.env["OPENAI_API_KEY"])
	}

	// The GitLab job, from the README's .gitlab-ci.yml.
	var ci map[string]gitlabJob
	if err := yaml.Unmarshal([]byte(block(t, section, "yaml", 0, "the .gitlab-ci.yml")), &ci); err != nil {
		t.Fatalf("the README's .gitlab-ci.yml: %v", err)
	}
	if len(ci) != 1 {
		t.Fatalf("the README's .gitlab-ci.yml has %d jobs, want 1", len(ci))
	}
	var job gitlabJob
	for _, j := range ci {
		job = j
	}
	gitlabToken := func(aud, project, ref string, protected bool) string {
		return gitlab.sign(map[string]any{
			"aud": aud, "sub": "project_path:" + project + ":ref_type:branch:ref:" + ref,
			"namespace_path": strings.Split(project, "/")[0], "project_path": project, "project_id": "31337",
			"ref": ref, "ref_type": "branch", "ref_path": "refs/heads/" + ref, "ref_protected": strconv.FormatBool(protected),
			"pipeline_id": "4242", "pipeline_source": "push", "job_id": "90210", "user_login": "ada", "user_id": "7",
		})
	}
	runJob := func(project, ref string, protected bool) (*docShell, error) {
		env := map[string]string{"HOME": t.TempDir()}
		sh := newDocShell(t, env, subst, "python")
		for k, v := range job.Variables {
			sh.env[k] = sh.subst.Replace(v)
		}
		if len(job.IDTokens) == 0 {
			t.Fatal("the README's GitLab job asks for no id_tokens")
		}
		for name, tok := range job.IDTokens {
			sh.env[name] = gitlabToken(tok.Aud, project, ref, protected)
		}
		var cmds []shellCmd
		for _, l := range job.Script {
			cmds = append(cmds, shellCmd{line: l})
		}
		return sh, sh.runLines(cmds)
	}
	sh, err := runJob("acme/llm-eval", "main", true)
	if err != nil {
		t.Fatalf("the GitLab job: %v", err)
	}
	if sh.env["OPENAI_API_KEY"] != "sk-eval" || sh.ran != 2 {
		t.Errorf("the GitLab job's OPENAI_API_KEY = %q after %d vigil commands", sh.env["OPENAI_API_KEY"], sh.ran)
	}
	for name, c := range map[string]struct {
		project, ref string
		protected    bool
	}{
		"another project":       {"acme/sandbox", "main", true},
		"an unprotected branch": {"acme/llm-eval", "dev", false},
	} {
		sh, err := runJob(c.project, c.ref, c.protected)
		if err == nil || !strings.Contains(err.Error(), "vigil login -method=jwt") || sh.env["OPENAI_API_KEY"] != "" {
			t.Errorf("a GitLab job of %s: %v, OPENAI_API_KEY %q; want the login refused", name, err, sh.env["OPENAI_API_KEY"])
		}
	}

	// The audit entry of the GitLab job's read names the project, the
	// pipeline and the user.
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	found, foundGitHub := false, false
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e struct {
			Auth    struct{ Metadata map[string]string }
			Request struct{ Path string }
		}
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		m := e.Auth.Metadata
		switch e.Request.Path {
		case "secret/data/ci/acme-eval/openai":
			found = found || m["project_path"] == "acme/llm-eval" && m["pipeline_id"] == "4242" && m["user_login"] == "ada"
		case "secret/data/ci/acme-train/openai":
			foundGitHub = foundGitHub || m["repository"] == "acme/train" && m["ref"] == "refs/heads/main" &&
				m["workflow"] == "train-nightly" && m["environment"] == "prod" && m["run_id"] == "77" && m["actor"] == "octocat"
		}
	}
	if !found {
		t.Error("no audit entry of the GitLab job's read names its project, pipeline and user")
	}
	if !foundGitHub {
		t.Error("no audit entry of the GitHub job's read names its repository, ref, workflow, environment, run and actor")
	}
}
