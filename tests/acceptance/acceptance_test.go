// Package acceptance is Vigil's compatibility contract made executable: one
// suite, written once against the official Vault Go client
// (github.com/hashicorp/vault/api) and plain HTTP, run against an in-process
// server (the default) and against the built `vigil` binary (build tag e2e).
package acceptance

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
)

// target is a running, initialized and unsealed server.
type target struct {
	URL       string
	RootToken string
	Keys      []string
	// Restart stops the server and starts it again on the same storage
	// (sealed). Nil when the harness cannot restart.
	Restart func(t *testing.T)
	// Kill and Start (binary harness only) kill the process with SIGKILL
	// and start it again.
	Kill, Start func(t *testing.T)
	// DataDir holds the storage file.
	DataDir string
	// HTTPClient, when set, sends every request of the suite.
	HTTPClient *http.Client
	// After, when set, runs once a test of the suite has passed, while
	// its server still runs.
	After func(t *testing.T)
}

func (tg *target) client() *http.Client {
	if tg.HTTPClient != nil {
		return tg.HTTPClient
	}
	return http.DefaultClient
}

func vaultClient(t *testing.T, tg *target) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = tg.URL
	cfg.MaxRetries = 0
	if tg.HTTPClient != nil {
		cfg.HttpClient = tg.HTTPClient
	}
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(tg.RootToken)
	return c
}

// vaultClientAt is Vault's Go client for the server at url, with token.
func vaultClientAt(t *testing.T, url, token string) *vault.Client {
	t.Helper()
	return vaultClient(t, &target{URL: url, RootToken: token})
}

// rawDo sends a request and returns the status and decoded body.
func rawDo(t *testing.T, tg *target, method, path, contentType, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, tg.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tg.RootToken != "" {
		req.Header.Set("X-Vault-Token", tg.RootToken)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := tg.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, m
}

// runSuite runs every acceptance test against newTarget.
func runSuite(t *testing.T, newTarget func(t *testing.T) *target) {
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *target)
	}{
		{"KVv2", testKVv2},
		{"KVv1", testKVv1},
		{"Sys", testSys},
		{"HTTPErrors", testHTTPErrors},
		{"RotateAndRestart", testRotateRestart},
		{"Policies", testPolicies},
		{"AuthMounts", testAuthMounts},
		{"TokensAndAppRole", testTokensAndAppRole},
		{"ResponseWrapping", testResponseWrapping},
		{"Cubbyhole", testCubbyhole},
		{"Database", testDatabase},
		{"DatabaseStatic", testDatabaseStatic},
		{"PasswordPolicies", testPasswordPolicies},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg := newTarget(t)
			tc.run(t, tg)
			if tg.After != nil && !t.Failed() {
				tg.After(t)
			}
		})
	}
}

// testTokensAndAppRole is the least-privilege flow through the official
// client: a policy, an AppRole bound to it, a login, reads allowed where
// the policy says and refused elsewhere, the token API (lookup, create a
// child, renew, revoke with its children), and revoke-prefix on the auth
// mount.
func testTokensAndAppRole(t *testing.T, tg *target) {
	ctx := context.Background()
	root := vaultClient(t, tg)
	if err := root.Sys().Mount("secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2("secret").Put(ctx, "ml/openai", map[string]any{"api_key": "sk-test"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("ml-training", `path "secret/data/ml/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/approle/role/trainer", map[string]any{"token_policies": "ml-training", "token_ttl": "1h", "token_num_uses": 0}); err != nil {
		t.Fatal(err)
	}
	rid, err := root.Logical().Read("auth/approle/role/trainer/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := root.Logical().Write("auth/approle/role/trainer/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}

	app, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	app.ClearToken()
	login, err := app.Logical().Write("auth/approle/login", map[string]any{"role_id": rid.Data["role_id"], "secret_id": sid.Data["secret_id"]})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if login.Auth == nil || login.Auth.ClientToken == "" || !login.Auth.Orphan || login.Auth.LeaseDuration != 3600 ||
		!slices.Contains(login.Auth.Policies, "ml-training") || login.Auth.Metadata["role_name"] != "trainer" {
		t.Fatalf("login auth = %+v", login.Auth)
	}
	app.SetToken(login.Auth.ClientToken)

	if s, err := app.KVv2("secret").Get(ctx, "ml/openai"); err != nil || s.Data["api_key"] != "sk-test" {
		t.Fatalf("allowed read: %v", err)
	}
	var re *vault.ResponseError
	if _, err := app.KVv2("secret").Put(ctx, "ml/openai", map[string]any{"api_key": "x"}); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("write: %v, want 403", err)
	}
	if _, err := app.Sys().ListMounts(); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("sys/mounts: %v, want 403", err)
	}

	// lookup-self with the fields clients assert.
	self, err := app.Auth().Token().LookupSelf()
	if err != nil {
		t.Fatalf("lookup-self: %v", err)
	}
	if ttl, err := self.TokenTTL(); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Fatalf("ttl = %v, %v", ttl, err)
	}
	if self.Data["type"] != "service" || self.Data["renewable"] != true || self.Data["expire_time"] == nil {
		t.Fatalf("lookup-self data = %v", self.Data)
	}
	if _, err := app.Auth().Token().RenewSelf(600); err != nil {
		t.Fatalf("renew-self: %v", err)
	}

	// A token with a grant on auth/token/create makes a child with a
	// subset of its policies; revoking the parent revokes the child.
	if err := root.Sys().PutPolicy("creator", `path "auth/token/create" { capabilities = ["create", "update"] }`); err != nil {
		t.Fatal(err)
	}
	parent, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"ml-training", "creator"}, TTL: "30m"})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	pc, err := root.Clone()
	if err != nil {
		t.Fatal(err)
	}
	pc.SetToken(parent.Auth.ClientToken)
	if _, err := pc.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"ml-training", "admin"}}); !errors.As(err, &re) || re.StatusCode >= 500 {
		t.Fatalf("child with a policy the parent lacks: %v, want refused", err)
	}
	child, err := pc.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"ml-training"}})
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	if child.Auth.Orphan {
		t.Fatal("a child token is an orphan")
	}
	if err := root.Auth().Token().RevokeTree(parent.Auth.ClientToken); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := root.Auth().Token().Lookup(child.Auth.ClientToken); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("lookup of a revoked parent's child: %v, want 403", err)
	}

	// A use limit: a login token with token_num_uses 2 serves two
	// requests, then nothing.
	if _, err := root.Logical().Write("auth/approle/role/twice", map[string]any{"token_policies": "ml-training", "token_num_uses": 2}); err != nil {
		t.Fatal(err)
	}
	rid2, _ := root.Logical().Read("auth/approle/role/twice/role-id")
	sid2, _ := root.Logical().Write("auth/approle/role/twice/secret-id", nil)
	anon, _ := root.Clone()
	anon.ClearToken()
	l2, err := anon.Logical().Write("auth/approle/login", map[string]any{"role_id": rid2.Data["role_id"], "secret_id": sid2.Data["secret_id"]})
	if err != nil || l2.Auth == nil {
		t.Fatalf("login with uses: %+v, %v", l2, err)
	}
	limited, _ := root.Clone()
	limited.SetToken(l2.Auth.ClientToken)
	for i := range 2 {
		if _, err := limited.KVv2("secret").Get(ctx, "ml/openai"); err != nil {
			t.Fatalf("use %d: %v", i+1, err)
		}
	}
	if _, err := limited.KVv2("secret").Get(ctx, "ml/openai"); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("third use: %v, want 403", err)
	}

	// Expiry on the real clock: a one-second token stops working (the
	// expiration manager spreads revocations over a couple of seconds).
	short, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"ml-training"}, TTL: "1s"})
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := root.Clone()
	sc.SetToken(short.Auth.ClientToken)
	waitFor(t, 15*time.Second, func() error {
		if _, err := sc.KVv2("secret").Get(ctx, "ml/openai"); errors.As(err, &re) && re.StatusCode == 403 {
			return nil
		}
		return errors.New("the expired token still works")
	})
	if _, err := root.Auth().Token().Lookup(short.Auth.ClientToken); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("lookup of an expired token: %v, want 403", err)
	}

	// The incident button: every token the AppRole mount issued.
	if err := root.Sys().RevokePrefix("auth/approle"); err != nil {
		t.Fatalf("revoke-prefix: %v", err)
	}
	if _, err := app.KVv2("secret").Get(ctx, "ml/openai"); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("read after revoke-prefix: %v, want 403", err)
	}
}

// testAuthMounts enables, lists, tunes and disables an auth method with
// the official client, and drives AppRole's role and secret-id API.
func testAuthMounts(t *testing.T, tg *target) {
	c := vaultClient(t, tg)
	sys := c.Sys()
	if err := sys.EnableAuthWithOptions("ci", &vault.EnableAuthOptions{Type: "approle", Description: "CI jobs"}); err != nil {
		t.Fatalf("enable: %v", err)
	}
	auths, err := sys.ListAuth()
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	m, ok := auths["ci/"]
	if !ok || m.Type != "approle" || m.Description != "CI jobs" || !strings.HasPrefix(m.Accessor, "auth_approle_") || m.Config.TokenType != "default-service" {
		t.Fatalf("list = %+v", auths)
	}
	if err := sys.TuneMount("auth/ci", vault.MountConfigInput{DefaultLeaseTTL: "30m"}); err != nil {
		t.Fatalf("tune: %v", err)
	}
	if cfg, err := sys.MountConfig("auth/ci"); err != nil || cfg.DefaultLeaseTTL != 1800 {
		t.Fatalf("tune read = %+v, %v", cfg, err)
	}
	if _, err := c.Logical().Write("auth/ci/role/trainer", map[string]any{"token_policies": []string{"ml-training"}, "secret_id_ttl": "10m"}); err != nil {
		t.Fatalf("role write: %v", err)
	}
	rid, err := c.Logical().Read("auth/ci/role/trainer/role-id")
	if err != nil || rid == nil || rid.Data["role_id"] == "" {
		t.Fatalf("role-id = %v, %v", rid, err)
	}
	sid, err := c.Logical().Write("auth/ci/role/trainer/secret-id", nil)
	if err != nil || sid == nil || sid.Data["secret_id"] == "" || sid.Data["secret_id_accessor"] == "" {
		t.Fatalf("secret-id = %v, %v", sid, err)
	}
	// A wrong secret id is a 400 with the deliberately vague message.
	anon, err := c.Clone()
	if err != nil {
		t.Fatal(err)
	}
	anon.ClearToken()
	_, err = anon.Logical().Write("auth/ci/login", map[string]any{"role_id": rid.Data["role_id"], "secret_id": "nope"})
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || !strings.Contains(strings.Join(re.Errors, " "), "invalid role or secret ID") {
		t.Fatalf("bad login: %v", err)
	}
	if err := sys.DisableAuth("ci"); err != nil {
		t.Fatalf("disable: %v", err)
	}
	if auths, err := sys.ListAuth(); err != nil || auths["ci/"] != nil {
		t.Fatalf("after disable: %v, %v", auths, err)
	}
}

// testPolicies drives the policy API through the official client: write,
// read, list, delete, capabilities, and the errors clients see.
func testPolicies(t *testing.T, tg *target) {
	c := vaultClient(t, tg)
	sys := c.Sys()
	const text = `path "secret/data/ml/*" { capabilities = ["read"] }`
	if err := sys.PutPolicy("ml-training", text); err != nil {
		t.Fatalf("put: %v", err)
	}
	got, err := sys.GetPolicy("ml-training")
	if err != nil || got != text {
		t.Fatalf("get = %q, %v", got, err)
	}
	names, err := sys.ListPolicies()
	if err != nil || !slices.Equal(names, []string{"default", "ml-training", "root"}) {
		t.Fatalf("list = %v, %v", names, err)
	}
	// A policy that does not exist reads as empty, no error (the
	// client's contract for a 404).
	if got, err := sys.GetPolicy("nosuch"); err != nil || got != "" {
		t.Fatalf("get missing = %q, %v", got, err)
	}
	caps, err := sys.CapabilitiesSelf("secret/data/ml/x")
	if err != nil || !slices.Equal(caps, []string{"root"}) {
		t.Fatalf("capabilities-self = %v, %v", caps, err)
	}
	// Parse errors are 400 with the reason; default cannot be deleted.
	err = sys.PutPolicy("broken", `path "x" { capabilities = ["fly"] }`)
	var re *vault.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || !strings.Contains(strings.Join(re.Errors, " "), "failed to parse policy") {
		t.Fatalf("broken policy: %v", err)
	}
	if err := sys.DeletePolicy("default"); !errors.As(err, &re) || re.StatusCode != 400 {
		t.Fatalf("delete default: %v", err)
	}
	if err := sys.DeletePolicy("ml-training"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	// The legacy API answers "rules" and lists at the top level too.
	if code, body := rawDo(t, tg, "GET", "/v1/sys/policy/default", "", ""); code != 200 || body["rules"] == nil {
		t.Fatalf("legacy read: %d %v", code, body)
	}
	if code, body := rawDo(t, tg, "GET", "/v1/sys/policy", "", ""); code != 200 || body["policies"] == nil || body["keys"] == nil {
		t.Fatalf("legacy list: %d %v", code, body)
	}
}

func testKVv2(t *testing.T, tg *target) {
	ctx := context.Background()
	c := vaultClient(t, tg)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("mount: %v", err)
	}
	kv := c.KVv2("secret")
	s, err := kv.Put(ctx, "ml/openai", map[string]any{"api_key": "sk-test-1"})
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if s.VersionMetadata.Version != 1 {
		t.Fatalf("first version = %d", s.VersionMetadata.Version)
	}
	got, err := kv.Get(ctx, "ml/openai")
	if err != nil || got.Data["api_key"] != "sk-test-1" {
		t.Fatalf("get: %v %v", got, err)
	}
	if _, err := kv.Put(ctx, "ml/openai", map[string]any{"api_key": "sk-test-2", "org": "research"}, vault.WithCheckAndSet(1)); err != nil {
		t.Fatalf("cas put: %v", err)
	}
	if _, err := kv.Put(ctx, "ml/openai", map[string]any{"x": "y"}, vault.WithCheckAndSet(1)); err == nil {
		t.Fatal("stale cas accepted")
	}
	v1, err := kv.GetVersion(ctx, "ml/openai", 1)
	if err != nil || v1.Data["api_key"] != "sk-test-1" {
		t.Fatalf("get version 1: %v %v", v1, err)
	}
	if _, err := kv.Patch(ctx, "ml/openai", map[string]any{"org": nil, "team": "vision"}); err != nil {
		t.Fatalf("patch: %v", err)
	}
	cur, err := kv.Get(ctx, "ml/openai")
	if err != nil {
		t.Fatal(err)
	}
	if cur.VersionMetadata.Version != 3 || cur.Data["team"] != "vision" || cur.Data["org"] != nil || cur.Data["api_key"] != "sk-test-2" {
		t.Fatalf("after patch: %+v %v", cur.Data, cur.VersionMetadata.Version)
	}
	if err := kv.Delete(ctx, "ml/openai"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := kv.Get(ctx, "ml/never-written"); !errors.Is(err, vault.ErrSecretNotFound) {
		t.Fatalf("get of a missing secret: %v", err)
	}
	// As with Vault, a deleted version reads as metadata without data.
	if s, err := kv.Get(ctx, "ml/openai"); err != nil || s.Data != nil || s.VersionMetadata.DeletionTime.IsZero() {
		t.Fatalf("get after delete: %+v, %v", s, err)
	}
	if err := kv.Undelete(ctx, "ml/openai", []int{3}); err != nil {
		t.Fatalf("undelete: %v", err)
	}
	if _, err := kv.Get(ctx, "ml/openai"); err != nil {
		t.Fatalf("get after undelete: %v", err)
	}
	if err := kv.Destroy(ctx, "ml/openai", []int{1}); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if s, err := kv.GetVersion(ctx, "ml/openai", 1); err != nil || s.Data != nil || !s.VersionMetadata.Destroyed {
		t.Fatalf("get destroyed: %+v, %v", s, err)
	}
	if err := kv.PutMetadata(ctx, "ml/new-key", vault.KVMetadataPutInput{MaxVersions: 4, CustomMetadata: map[string]any{"owner": "ml-platform"}}); err != nil {
		t.Fatalf("put metadata on a new key: %v", err)
	}
	md, err := kv.GetMetadata(ctx, "ml/openai")
	if err != nil {
		t.Fatalf("get metadata: %v", err)
	}
	if md.CurrentVersion != 3 || len(md.Versions) != 3 || !md.Versions["1"].Destroyed {
		t.Fatalf("metadata: %+v", md)
	}
	list, err := c.Logical().List("secret/metadata/ml")
	if err != nil || list == nil {
		t.Fatalf("list: %v", err)
	}
	keys, _ := list.Data["keys"].([]any)
	if len(keys) != 2 {
		t.Fatalf("list keys = %v", keys)
	}
	if err := kv.DeleteMetadata(ctx, "ml/openai"); err != nil {
		t.Fatalf("delete metadata: %v", err)
	}
	if _, err := kv.GetMetadata(ctx, "ml/openai"); err == nil {
		t.Fatal("metadata survived DeleteMetadata")
	}
}

func testKVv1(t *testing.T, tg *target) {
	c := vaultClient(t, tg)
	if err := c.Sys().Mount("kv1", &vault.MountInput{Type: "kv"}); err != nil {
		t.Fatalf("mount: %v", err)
	}
	if _, err := c.Logical().Write("kv1/db/postgres", map[string]any{"password": "hunter2", "ttl": "1h"}); err != nil {
		t.Fatalf("write: %v", err)
	}
	s, err := c.Logical().Read("kv1/db/postgres")
	if err != nil || s == nil || s.Data["password"] != "hunter2" {
		t.Fatalf("read: %v %v", s, err)
	}
	if s.LeaseDuration != 3600 || s.LeaseID != "" {
		t.Fatalf("lease_duration = %d, lease_id = %q", s.LeaseDuration, s.LeaseID)
	}
	missing, err := c.Logical().Read("kv1/nothing")
	if err != nil || missing != nil {
		t.Fatalf("missing read = %v, %v; want nil, nil", missing, err)
	}
	// v1 → v2 upgrade keeps the data.
	if err := c.Sys().TuneMount("kv1", vault.MountConfigInput{Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatalf("upgrade: %v", err)
	}
	got, err := c.KVv2("kv1").Get(context.Background(), "db/postgres")
	if err != nil || got.Data["password"] != "hunter2" {
		t.Fatalf("read after upgrade: %v %v", got, err)
	}
}

func testSys(t *testing.T, tg *target) {
	c := vaultClient(t, tg)
	h, err := c.Sys().Health()
	if err != nil || !h.Initialized || h.Sealed {
		t.Fatalf("health: %+v %v", h, err)
	}
	mounts, err := c.Sys().ListMounts()
	if err != nil {
		t.Fatal(err)
	}
	if mounts["sys/"] == nil || mounts["sys/"].Type != "system" {
		t.Fatalf("sys/ mount missing: %v", mounts)
	}
	if err := c.Sys().Mount("team-a", &vault.MountInput{Type: "kv-v2", Description: "team a"}); err != nil {
		t.Fatal(err)
	}
	mounts, _ = c.Sys().ListMounts()
	if m := mounts["team-a/"]; m == nil || m.Options["version"] != "2" || !strings.HasPrefix(m.Accessor, "kv_") {
		t.Fatalf("team-a: %+v", m)
	}
	if err := c.Sys().TuneMount("team-a", vault.MountConfigInput{DefaultLeaseTTL: "1h", MaxLeaseTTL: "2h"}); err != nil {
		t.Fatalf("tune: %v", err)
	}
	tc, err := c.Sys().MountConfig("team-a")
	if err != nil || tc.DefaultLeaseTTL != 3600 || tc.MaxLeaseTTL != 7200 {
		t.Fatalf("tune read: %+v %v", tc, err)
	}
	if _, err := c.KVv2("team-a").Put(context.Background(), "x", map[string]any{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().Remount("team-a", "team-b"); err != nil {
		t.Fatalf("remount: %v", err)
	}
	if got, err := c.KVv2("team-b").Get(context.Background(), "x"); err != nil || got.Data["k"] != "v" {
		t.Fatalf("data after move: %v", err)
	}
	// KV preflight.
	st, body := rawDo(t, tg, "GET", "/v1/sys/internal/ui/mounts/team-b/data/x", "", "")
	data, _ := body["data"].(map[string]any)
	if st != 200 || data["path"] != "team-b/" || data["type"] != "kv" {
		t.Fatalf("preflight: %d %v", st, body)
	}
	if st, _ := rawDo(t, tg, "GET", "/v1/sys/mounts-all/team-b/x", "", ""); st != 200 {
		t.Fatalf("mounts-all alias: %d", st)
	}
	if st, body := rawDo(t, tg, "GET", "/v1/sys/internal/ui/mounts/nope/x", "", ""); st != 403 || !strings.Contains(body["errors"].([]any)[0].(string), "preflight capability check") {
		t.Fatalf("preflight on missing mount: %d %v", st, body)
	}
	if err := c.Sys().Unmount("team-b"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("team-b").Get(context.Background(), "x"); err == nil {
		t.Fatal("read from a disabled mount succeeded")
	}
	ks, err := c.Sys().KeyStatus()
	if err != nil || ks.Term != 1 {
		t.Fatalf("key status: %+v %v", ks, err)
	}
	leader, err := c.Sys().Leader()
	if err != nil || leader.HAEnabled {
		t.Fatalf("leader: %+v %v", leader, err)
	}
}

func testHTTPErrors(t *testing.T, tg *target) {
	rawDo(t, tg, "POST", "/v1/sys/mounts/secret", "", `{"type":"kv","options":{"version":"2"}}`)
	tests := []struct {
		name, method, path, ct, body string
		status                       int
		errSub                       string
	}{
		{"malformed json", "PUT", "/v1/secret/data/a", "", `{"data":`, 400, "failed to parse JSON"},
		{"not an object", "PUT", "/v1/secret/data/a", "", `[1,2]`, 400, "JSON object"},
		{"wrong field type", "POST", "/v1/secret/config", "", `{"max_versions":"many"}`, 400, "max_versions"},
		{"unknown mount", "GET", "/v1/nomount/x", "", ``, 404, "no handler for route"},
		{"plain not found", "GET", "/v1/secret/data/never", "", ``, 404, ""},
		{"patch content type", "PATCH", "/v1/secret/data/a", "application/json", `{"data":{}}`, 415, "merge-patch"},
		{"bad method", "TRACE", "/v1/secret/data/a", "", ``, 405, ""},
		{"parent reference", "GET", "/v1/secret/../sys/mounts", "", ``, 400, ""},
		{"cas mismatch", "PUT", "/v1/secret/data/c", "", `{"data":{"a":"b"},"options":{"cas":5}}`, 400, "check-and-set parameter did not match"},
		{"no data", "PUT", "/v1/secret/data/c", "", `{"options":{}}`, 400, "no data provided"},
		{"null body is no data", "PUT", "/v1/secret/data/c", "", `null`, 400, "no data provided"},
		{"outside v1", "GET", "/", "", ``, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body := rawDo(t, tg, tt.method, tt.path, tt.ct, tt.body)
			if st != tt.status {
				t.Fatalf("status = %d, want %d (%v)", st, tt.status, body)
			}
			errs, ok := body["errors"].([]any)
			if !ok {
				t.Fatalf("no errors list: %v", body)
			}
			if tt.errSub == "" {
				return
			}
			if len(errs) == 0 || !strings.Contains(errs[0].(string), tt.errSub) {
				t.Fatalf("errors = %v, want %q", errs, tt.errSub)
			}
		})
	}
	t.Run("permission denied", func(t *testing.T) {
		bad := *tg
		bad.RootToken = "hvs.not-a-token"
		if st, _ := rawDo(t, &bad, "GET", "/v1/secret/data/a", "", ""); st != 403 {
			t.Fatalf("status = %d, want 403", st)
		}
		bad.RootToken = ""
		if st, _ := rawDo(t, &bad, "GET", "/v1/sys/mounts", "", ""); st != 403 {
			t.Fatalf("no token: status = %d, want 403", st)
		}
	})
	t.Run("bearer token", func(t *testing.T) {
		req, _ := http.NewRequest("GET", tg.URL+"/v1/sys/mounts", nil)
		req.Header.Set("Authorization", "Bearer "+tg.RootToken)
		resp, err := tg.client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("bearer: %d", resp.StatusCode)
		}
	})
	t.Run("body too large", func(t *testing.T) {
		big := `{"data":{"v":"` + strings.Repeat("x", 33<<20) + `"}}`
		if st, _ := rawDo(t, tg, "PUT", "/v1/secret/data/big", "", big); st != 413 {
			t.Fatalf("status = %d, want 413", st)
		}
	})
	t.Run("list", func(t *testing.T) {
		rawDo(t, tg, "PUT", "/v1/secret/data/dir/a", "", `{"data":{"a":"1"}}`)
		for _, m := range []struct{ method, path string }{{"LIST", "/v1/secret/metadata/dir"}, {"GET", "/v1/secret/metadata/dir/?list=true"}} {
			st, body := rawDo(t, tg, m.method, m.path, "", "")
			if st != 200 {
				t.Fatalf("%s %s: %d", m.method, m.path, st)
			}
			if keys := body["data"].(map[string]any)["keys"].([]any); len(keys) != 1 || keys[0] != "a" {
				t.Fatalf("keys = %v", keys)
			}
		}
		if st, _ := rawDo(t, tg, "LIST", "/v1/secret/metadata/empty", "", ""); st != 404 {
			t.Fatalf("empty list: %d", st)
		}
	})
	t.Run("deleted version 404 with data", func(t *testing.T) {
		rawDo(t, tg, "PUT", "/v1/secret/data/gone", "", `{"data":{"a":"1"}}`)
		rawDo(t, tg, "DELETE", "/v1/secret/data/gone", "", "")
		st, body := rawDo(t, tg, "GET", "/v1/secret/data/gone", "", "")
		data, _ := body["data"].(map[string]any)
		md, _ := data["metadata"].(map[string]any)
		if st != 404 || data["data"] != nil || md["deletion_time"] == "" {
			t.Fatalf("deleted read: %d %v", st, body)
		}
	})
}

// testRotateRestart rotates the barrier key, restarts the server and checks
// that it comes back sealed and serves all data once unsealed.
func testRotateRestart(t *testing.T, tg *target) {
	ctx := context.Background()
	c := vaultClient(t, tg)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	kv := c.KVv2("secret")
	if _, err := kv.Put(ctx, "before", map[string]any{"v": "1"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().Rotate(); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	ks, err := c.Sys().KeyStatus()
	if err != nil || ks.Term != 2 {
		t.Fatalf("term after rotate: %+v %v", ks, err)
	}
	if _, err := kv.Put(ctx, "after", map[string]any{"v": "2"}); err != nil {
		t.Fatal(err)
	}
	if tg.Restart == nil {
		return
	}
	tg.Restart(t)
	c = vaultClient(t, tg)
	kv = c.KVv2("secret")
	st, err := c.Sys().SealStatus()
	if err != nil || !st.Sealed || !st.Initialized {
		t.Fatalf("after restart: %+v %v", st, err)
	}
	if _, err := kv.Get(ctx, "before"); err == nil {
		t.Fatal("sealed server served a secret")
	}
	for _, k := range tg.Keys {
		if st, err = c.Sys().Unseal(k); err != nil {
			t.Fatalf("unseal: %v", err)
		}
	}
	if st.Sealed {
		t.Fatal("still sealed")
	}
	for k, want := range map[string]string{"before": "1", "after": "2"} {
		got, err := kv.Get(ctx, k)
		if err != nil || got.Data["v"] != want {
			t.Fatalf("%s after restart: %v %v", k, got, err)
		}
	}
}

// waitFor polls f until it returns nil or the deadline passes.
func waitFor(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// appRoleIDs writes the AppRole role (on the mount at auth/approle) with
// params and returns its role id and a new secret id.
func appRoleIDs(t testing.TB, c *vault.Client, role string, params map[string]any) (roleID, secretID string) {
	t.Helper()
	if _, err := c.Logical().Write("auth/approle/role/"+role, params); err != nil {
		t.Fatal(err)
	}
	rid, err := c.Logical().Read("auth/approle/role/" + role + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := c.Logical().Write("auth/approle/role/"+role+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	return rid.Data["role_id"].(string), sid.Data["secret_id"].(string)
}
