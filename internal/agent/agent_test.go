package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/testcluster"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

// server is a real in-process server with KV v2 at secret/ and AppRole.
func server(t *testing.T) (*testcluster.Server, *api.Client) {
	t.Helper()
	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root, err := api.NewClient(api.Config{Address: s.URL, Token: s.RootToken})
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func write(t *testing.T, c *api.Client, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := c.Logical().Write(t.Context(), path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

// appRole makes a role with the policy and writes its ids to dir.
func appRole(t *testing.T, root *api.Client, dir, policy string) (secretID string) {
	t.Helper()
	ctx := t.Context()
	if err := root.Sys().EnableAuth(ctx, "approle", api.EnableAuthInput{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy(ctx, "app", policy); err != nil {
		t.Fatal(err)
	}
	write(t, root, "auth/approle/role/app", map[string]any{"token_policies": "app", "token_ttl": "1h"})
	rid, err := root.Logical().Read(ctx, "auth/approle/role/app/role-id")
	if err != nil {
		t.Fatal(err)
	}
	secretID = write(t, root, "auth/approle/role/app/secret-id", nil).Data["secret_id"].(string)
	for name, v := range map[string]string{"role-id": rid.Data["role_id"].(string), "secret-id": secretID} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return secretID
}

func parse(t *testing.T, src string) *config.Agent {
	t.Helper()
	cfg, err := config.ParseAgent("agent.hcl", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// started is a Run in the background.
type started struct {
	code int
	err  error
	done chan struct{}
	log  *testlog.Buffer
	sigs chan os.Signal
}

func start(t *testing.T, ctx context.Context, cfg *config.Agent, env map[string]string) *started {
	t.Helper()
	r := &started{done: make(chan struct{}), log: &testlog.Buffer{}, sigs: make(chan os.Signal, 1)}
	go func() {
		defer close(r.done)
		r.code, r.err = Run(ctx, Options{
			Config:  cfg,
			Getenv:  func(k string) string { return env[k] },
			Signals: r.sigs,
			Stdout:  io.Discard,
			Stderr:  io.Discard,
			Logger:  slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		})
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("the agent did not stop")
		}
	})
	return r
}

func (r *started) wait(t *testing.T) (int, error) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the agent did not stop; log:\n%s", r.log)
	}
	return r.code, r.err
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAgentFilesSinkAndProxy: AppRole auto-auth writes the sink, a
// template reaches its file and follows a KV write (change events), the
// proxy serves the API with the agent's token, a SIGTERM stops the agent
// with status 0, and the log holds no secret.
func TestAgentFilesSinkAndProxy(t *testing.T) {
	s, root := server(t)
	dir := t.TempDir()
	secretID := appRole(t, root, dir, `
path "secret/data/app" { capabilities = ["read"] }
path "sys/events/subscribe/*" { capabilities = ["read"] }`)
	write(t, root, "secret/data/app", map[string]any{"data": map[string]any{"password": "pw-one"}})
	proxyAddr := freeAddr(t)
	cfg := parse(t, fmt.Sprintf(`
vigil {
  address = %q
}
auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = "%[2]s/role-id"
      secret_id_file_path = "%[2]s/secret-id"
    }
  }
  sink "file" {
    config = { path = "%[2]s/sink/token", mode = 0600 }
  }
}
api_proxy {
  use_auto_auth_token = true
}
listener "tcp" {
  address     = %[3]q
  tls_disable = true
}
template_config {
  static_secret_render_interval = "1h"
}
template {
  contents    = "{{ with secret \"secret/app\" }}{{ .Data.data.password }}{{ end }}"
  destination = "%[2]s/out/password"
}
`, s.URL, dir, proxyAddr))
	r := start(t, t.Context(), cfg, nil)
	out := filepath.Join(dir, "out", "password")
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	waitFor(t, "the first render", func() bool { return read(out) == "pw-one" })

	tok := strings.TrimSpace(read(filepath.Join(dir, "sink", "token")))
	if fi, err := os.Stat(filepath.Join(dir, "sink", "token")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("sink: %v", err)
	}
	if _, err := root.WithToken(tok).TokenAuth().LookupSelf(t.Context()); err != nil {
		t.Fatalf("the sink's token: %v", err)
	}

	write(t, root, "secret/data/app", map[string]any{"data": map[string]any{"password": "pw-two"}})
	waitFor(t, "the new version in the file", func() bool { return read(out) == "pw-two" })

	resp, err := http.Get("http://" + proxyAddr + "/v1/secret/data/app")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "pw-two") {
		t.Fatalf("through the proxy: %d %s", resp.StatusCode, body)
	}

	r.sigs <- syscall.SIGTERM
	if code, err := r.wait(t); code != 0 || err != nil {
		t.Fatalf("after SIGTERM: %d, %v", code, err)
	}
	if _, err := net.Dial("tcp", proxyAddr); err == nil {
		t.Error("the proxy still listens after the agent stopped")
	}
	for _, v := range []string{"pw-one", "pw-two", tok, secretID} {
		if strings.Contains(r.log.String(), v) {
			t.Errorf("the log holds a secret (%.5s…)", v)
		}
	}
}

// TestAgentExitAfterAuth: exit_after_auth logs in (a token_file method),
// writes the template once, and returns 0.
func TestAgentExitAfterAuth(t *testing.T) {
	s, root := server(t)
	dir := t.TempDir()
	write(t, root, "secret/data/app", map[string]any{"data": map[string]any{"user": "svc"}})
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(s.RootToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf(`
exit_after_auth = true
vault {
  address = "http://127.0.0.1:1"
}
auto_auth {
  method "token_file" {
    config = { token_file_path = "%[1]s/token" }
  }
}
template {
  contents    = "user={{ with secret \"secret/data/app\" }}{{ .Data.data.user }}{{ end }}"
  destination = "%[1]s/user"
}
`, dir))
	// VAULT_ADDR overrides the vault block, as in Vault Agent.
	r := start(t, t.Context(), cfg, map[string]string{"VAULT_ADDR": s.URL})
	if code, err := r.wait(t); code != 0 || err != nil {
		t.Fatalf("exit_after_auth: %d, %v\n%s", code, err, r.log)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "user")); string(b) != "user=svc" {
		t.Fatalf("rendered %q", b)
	}
}

// TestAgentQuit: POST /agent/v1/quit on a listener with enable_quit stops
// the agent cleanly.
func TestAgentQuit(t *testing.T) {
	s, _ := server(t)
	addr := freeAddr(t)
	cfg := parse(t, fmt.Sprintf(`
vault {
  address = %q
}
listener "tcp" {
  address     = %q
  tls_disable = true
  agent_api {
    enable_quit = true
  }
}
`, s.URL, addr))
	r := start(t, t.Context(), cfg, nil)
	var resp *http.Response
	waitFor(t, "the listener", func() bool {
		var err error
		resp, err = http.Post("http://"+addr+"/agent/v1/quit", "application/json", nil)
		return err == nil
	})
	resp.Body.Close()
	if code, err := r.wait(t); code != 0 || err != nil {
		t.Fatalf("after quit: %d, %v", code, err)
	}
}

// TestAgentErrors: the mistakes the agent reports before doing anything.
func TestAgentErrors(t *testing.T) {
	dir := t.TempDir()
	noToken := parse(t, fmt.Sprintf(`
template {
  contents    = "x"
  destination = "%s/x"
}
listener "tcp" {
  address     = "127.0.0.1:0"
  tls_disable = true
}
`, dir))
	if _, err := Run(t.Context(), Options{Config: noToken}); !errors.Is(err, ErrNoToken) {
		t.Errorf("templates without a token: %v", err)
	}

	badTemplate := parse(t, fmt.Sprintf(`
template {
  contents    = "{{ nosuchfunction }}"
  destination = "%s/x"
}
listener "tcp" {
  address     = "127.0.0.1:0"
  tls_disable = true
}
`, dir))
	_, err := Run(t.Context(), Options{Config: badTemplate, Getenv: func(k string) string {
		return map[string]string{"VIGIL_TOKEN": "t"}[k]
	}})
	if err == nil || !strings.Contains(err.Error(), "nosuchfunction") {
		t.Errorf("a bad template: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := parse(t, fmt.Sprintf(`
listener "tcp" {
  address     = %q
  tls_disable = true
}
`, ln.Addr()))
	if _, err := Run(t.Context(), Options{Config: busy}); err == nil {
		t.Error("a listener address in use was accepted")
	}

	if _, _, err := clientConfig(config.Vault{}, func(k string) string {
		return map[string]string{"VAULT_SKIP_VERIFY": "maybe"}[k]
	}); err == nil {
		t.Error("a bad VAULT_SKIP_VERIFY was accepted")
	}
}

// TestAgentLoginRetriedUntilServerUp: the server is unreachable at start;
// the agent retries with backoff, and logs in and renders once it is up.
// A stop while it waits is a clean exit.
func TestAgentLoginRetriedUntilServerUp(t *testing.T) {
	s, root := server(t)
	dir := t.TempDir()
	appRole(t, root, dir, `path "secret/data/app" { capabilities = ["read"] }`)
	write(t, root, "secret/data/app", map[string]any{"data": map[string]any{"k": "v1"}})
	px := testcluster.NewProxy(t, s.URL)
	px.Down()
	cfg := parse(t, fmt.Sprintf(`
vault {
  address = %q
}
auto_auth {
  method "approle" {
    min_backoff = "100ms"
    max_backoff = "200ms"
    config = {
      role_id_file_path   = "%[2]s/role-id"
      secret_id_file_path = "%[2]s/secret-id"
    }
  }
}
template {
  contents    = "{{ with secret \"secret/app\" }}{{ .Data.data.k }}{{ end }}"
  destination = "%[2]s/k"
}
`, px.URL, dir))
	r := start(t, t.Context(), cfg, nil)
	time.Sleep(500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(dir, "k")); err == nil {
		t.Fatal("rendered with the server down")
	}
	px.Up(t)
	waitFor(t, "the render once the server is up", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "k"))
		return string(b) == "v1"
	})
	r.sigs <- syscall.SIGINT
	if code, err := r.wait(t); code != 0 || err != nil {
		t.Fatalf("after SIGINT: %d, %v", code, err)
	}

	// Stopped while still waiting to log in.
	px.Down()
	r = start(t, t.Context(), cfg, nil)
	time.Sleep(200 * time.Millisecond)
	r.sigs <- syscall.SIGTERM
	if code, err := r.wait(t); code != 0 || err != nil {
		t.Fatalf("stopped before the first login: %d, %v", code, err)
	}
}

// TestAgentExitOnErr: a refused login ends the agent when the method sets
// exit_on_err.
func TestAgentExitOnErr(t *testing.T) {
	s, root := server(t)
	dir := t.TempDir()
	appRole(t, root, dir, `path "secret/data/app" { capabilities = ["read"] }`)
	if err := os.WriteFile(filepath.Join(dir, "secret-id"), []byte("wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf(`
vault {
  address = %q
}
auto_auth {
  method "approle" {
    exit_on_err = true
    config = {
      role_id_file_path   = "%[2]s/role-id"
      secret_id_file_path = "%[2]s/secret-id"
    }
  }
  sink "file" {
    config = { path = "%[2]s/token" }
  }
}
`, s.URL, dir))
	r := start(t, t.Context(), cfg, nil)
	code, err := r.wait(t)
	if code != 1 || err == nil || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("exit_on_err: %d, %v", code, err)
	}
}

// TestClientConfigEnvironment: the environment overrides the vault block
// key by key, VIGIL_ before VAULT_, and an unset variable leaves the
// block's value.
func TestClientConfigEnvironment(t *testing.T) {
	block := config.Vault{Address: "https://vigil.internal:8200", CACert: "/etc/ca.pem", TLSServerName: "vigil.internal", TLSSkipVerify: true}
	env := map[string]string{"VAULT_ADDR": "http://127.0.0.1:8200", "VIGIL_CAPATH": "/etc/cas", "VAULT_SKIP_VERIFY": "false", "VIGIL_TOKEN": "tok"}
	c, tok, err := clientConfig(block, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := api.Config{Address: "http://127.0.0.1:8200", CACert: "/etc/ca.pem", CAPath: "/etc/cas", TLSServerName: "vigil.internal", Timeout: api.DefaultTimeout}
	if c != want || tok != "tok" {
		t.Errorf("got %+v and token %q, want %+v", c, tok, want)
	}
	c, _, err = clientConfig(block, func(string) string { return "" })
	if err != nil || c.Address != block.Address || !c.TLSSkipVerify || c.CACert != block.CACert {
		t.Errorf("without environment: %+v, %v", c, err)
	}
	if c, _, _ := clientConfig(config.Vault{}, func(string) string { return "" }); c.Address != api.DefaultAddress {
		t.Errorf("no address anywhere: %q", c.Address)
	}
}

// TestAgentWrappedSecretID: an agent whose secret id file holds a
// wrapping token (secret_id_response_wrapping_path) unwraps it, logs in
// and renders with the token it got.
func TestAgentWrappedSecretID(t *testing.T) {
	s, root := server(t)
	dir := t.TempDir()
	write(t, root, "secret/data/app", map[string]any{"data": map[string]any{"user": "svc"}})
	appRole(t, root, dir, `path "secret/data/app" { capabilities = ["read"] }`)
	wrapped := write(t, root.WithWrapTTL(time.Minute), "auth/approle/role/app/secret-id", nil)
	if wrapped == nil || wrapped.WrapInfo == nil {
		t.Fatalf("wrapped secret id: %+v", wrapped)
	}
	if err := os.WriteFile(filepath.Join(dir, "secret-id"), []byte(wrapped.WrapInfo.Token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf(`
exit_after_auth = true
vault {
  address = %[2]q
}
auto_auth {
  method "approle" {
    config = {
      role_id_file_path                = "%[1]s/role-id"
      secret_id_file_path              = "%[1]s/secret-id"
      secret_id_response_wrapping_path = "auth/approle/role/app/secret-id"
    }
  }
}
template {
  contents    = "user={{ with secret \"secret/data/app\" }}{{ .Data.data.user }}{{ end }}"
  destination = "%[1]s/user"
}
`, dir, s.URL))
	r := start(t, t.Context(), cfg, nil)
	if code, err := r.wait(t); code != 0 || err != nil {
		t.Fatalf("agent: %d, %v\n%s", code, err, r.log)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "user")); string(b) != "user=svc" {
		t.Fatalf("rendered %q\n%s", b, r.log)
	}
	if _, err := root.Logical().Write(t.Context(), "sys/wrapping/lookup", map[string]any{"token": wrapped.WrapInfo.Token}); err == nil {
		t.Fatal("the wrapping token was not spent")
	}
}

// TestAgentWrappedLogin: with wrap_ttl on the method, the agent's login
// itself is response-wrapped. Its one sink holds the wrap_info, created at
// the login path; unwrapping it (once) gives the login response, with a
// working token that the agent neither holds, renews nor revokes. The
// agent pauses until it is stopped, and its log holds no token.
func TestAgentWrappedLogin(t *testing.T) {
	s, root := server(t)
	dir := t.TempDir()
	appRole(t, root, dir, `path "secret/data/app" { capabilities = ["read"] }`)
	cfg := parse(t, fmt.Sprintf(`
vault {
  address = %[2]q
}
auto_auth {
  method "approle" {
    wrap_ttl = "5m"
    config = {
      role_id_file_path   = "%[1]s/role-id"
      secret_id_file_path = "%[1]s/secret-id"
    }
  }
  sink "file" {
    config = { path = "%[1]s/token" }
  }
}
`, dir, s.URL))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := start(t, ctx, cfg, nil)
	sink := filepath.Join(dir, "token")
	waitFor(t, "the sink", func() bool { _, err := os.Stat(sink); return err == nil })
	waitFor(t, "the agent to pause", func() bool { return strings.Contains(r.log.String(), "nothing to renew") })
	raw, err := os.ReadFile(sink)
	if err != nil {
		t.Fatal(err)
	}
	var wi api.SecretWrapInfo
	if err := json.Unmarshal(raw, &wi); err != nil || wi.Token == "" || wi.TTL != 300 || wi.CreationPath != "auth/approle/login" || wi.WrappedAccessor == "" {
		t.Fatalf("sink = %s (%v)", raw, err)
	}
	cancel()
	if code, err := r.wait(t); code != 0 || err != nil {
		t.Fatalf("agent: %d, %v\n%s", code, err, r.log)
	}
	u, err := root.WithToken(wi.Token).Logical().Write(t.Context(), "sys/wrapping/unwrap", nil)
	if err != nil || u == nil || u.Auth == nil || u.Auth.ClientToken == "" || u.Auth.Accessor != wi.WrappedAccessor {
		t.Fatalf("unwrapped sink: %+v %v", u, err)
	}
	// The token outlived the agent: it was never the agent's to revoke.
	self, err := root.WithToken(u.Auth.ClientToken).TokenAuth().LookupSelf(t.Context())
	if err != nil || self.Data["accessor"] != wi.WrappedAccessor {
		t.Fatalf("lookup-self with the unwrapped token: %+v %v", self, err)
	}
	write(t, root, "secret/data/app", map[string]any{"data": map[string]any{"k": "v"}})
	got, err := root.WithToken(u.Auth.ClientToken).Logical().Read(t.Context(), "secret/data/app")
	if err != nil || got == nil || got.Data["data"].(map[string]any)["k"] != "v" {
		t.Fatalf("the unwrapped token's read: %+v %v", got, err)
	}
	for _, v := range []string{wi.Token, u.Auth.ClientToken} {
		if strings.Contains(r.log.String(), v) {
			t.Fatal("the agent's log holds a token")
		}
	}
}

// TestAgentWrappedSink: a sink with wrap_ttl holds the JSON wrap_info of
// a wrapping token, which unwraps (once) to the agent's token; a sink
// without it beside it holds the token itself.
func TestAgentWrappedSink(t *testing.T) {
	s, root := server(t)
	dir := t.TempDir()
	appRole(t, root, dir, `path "secret/data/app" { capabilities = ["read"] }`)
	cfg := parse(t, fmt.Sprintf(`
exit_after_auth = true
vault {
  address = %[2]q
}
auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = "%[1]s/role-id"
      secret_id_file_path = "%[1]s/secret-id"
    }
  }
  sink "file" {
    wrap_ttl = "5m"
    config   = { path = "%[1]s/wrapped" }
  }
  sink "file" {
    config = { path = "%[1]s/plain" }
  }
}
`, dir, s.URL))
	r := start(t, t.Context(), cfg, nil)
	if code, err := r.wait(t); code != 0 || err != nil {
		t.Fatalf("agent: %d, %v\n%s", code, err, r.log)
	}
	plain, err := os.ReadFile(filepath.Join(dir, "plain"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "wrapped"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), string(plain)) {
		t.Fatal("the wrapped sink holds the token in clear")
	}
	var wi api.SecretWrapInfo
	if err := json.Unmarshal(raw, &wi); err != nil || wi.Token == "" || wi.TTL != 300 || wi.CreationPath != "sys/wrapping/wrap" {
		t.Fatalf("wrapped sink = %s (%v)", raw, err)
	}
	u, err := root.WithToken(wi.Token).Logical().Write(t.Context(), "sys/wrapping/unwrap", nil)
	if err != nil || u == nil || u.Data["token"] != string(plain) {
		t.Fatalf("unwrapped sink: %+v %v", u, err)
	}
}
