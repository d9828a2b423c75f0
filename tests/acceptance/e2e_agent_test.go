//go:build e2e

package acceptance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/testlog"
)

// agentServer is a `vigil server` on bolt that a test stops and starts
// again (the outage an agent must ride out), unsealed with one key.
type agentServer struct {
	t        *testing.T
	cfg, url string
	p        *proc
	key      string
	root     *vault.Client
}

func newAgentServer(t *testing.T) *agentServer {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	s := &agentServer{t: t, cfg: writeConfig(t, dir, addr), url: "http://" + addr}
	s.start()
	c := vaultClientAt(t, s.url, "")
	init, err := c.Sys().Init(&vault.InitRequest{SecretShares: 1, SecretThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	s.key = init.Keys[0]
	s.unseal()
	c.SetToken(init.RootToken)
	s.root = c
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *agentServer) start() {
	s.t.Helper()
	s.p = startServer(s.t, "-config", s.cfg)
	waitHealthy(s.t, s.url, s.p)
	if s.key != "" {
		s.unseal()
	}
}

func (s *agentServer) unseal() {
	s.t.Helper()
	if _, err := vaultClientAt(s.t, s.url, "").Sys().Unseal(s.key); err != nil {
		s.t.Fatal(err)
	}
}

func (s *agentServer) stop() { s.p.stop(s.t, syscall.SIGTERM) }

// put writes a KV v2 secret at secret/<path>.
func (s *agentServer) put(path string, data map[string]any) {
	s.t.Helper()
	if _, err := s.root.KVv2("secret").Put(context.Background(), path, data); err != nil {
		s.t.Fatalf("kv put secret/%s: %v", path, err)
	}
}

// approle creates a role bound to policy and writes its role id and a
// secret id to dir/role-id and dir/secret-id.
func (s *agentServer) approle(dir, role, policy, rules string, tokenTTL, maxTTL string) string {
	s.t.Helper()
	if err := s.root.Sys().PutPolicy(policy, rules); err != nil {
		s.t.Fatal(err)
	}
	roleID, secretID := appRoleIDs(s.t, s.root, role, map[string]any{
		"token_policies": policy, "token_ttl": tokenTTL, "token_max_ttl": maxTTL,
	})
	for name, v := range map[string]string{"role-id": roleID, "secret-id": secretID} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v+"\n"), 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
	return secretID
}

// agentProc is a running `vigil agent`.
type agentProc struct {
	cmd  *exec.Cmd
	out  testlog.Buffer
	done chan struct{}
	err  error
}

// startAgent runs `vigil agent -config cfg` with a clean client
// environment (the config's vault block is what counts) plus env.
func startAgent(t *testing.T, cfg string, env ...string) *agentProc {
	t.Helper()
	a := &agentProc{done: make(chan struct{})}
	a.cmd = exec.Command(vigilBin, "agent", "-config", cfg)
	a.cmd.Env = append(os.Environ(), "VIGIL_ADDR=", "VAULT_ADDR=", "VIGIL_TOKEN=", "VAULT_TOKEN=", "HOME="+t.TempDir())
	a.cmd.Env = append(a.cmd.Env, env...)
	a.cmd.Stdout, a.cmd.Stderr = &a.out, &a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.err = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Kill()
		<-a.done
		if t.Failed() {
			t.Logf("agent output:\n%s", a.out.String())
		}
	})
	return a
}

func (a *agentProc) running() bool {
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// stop sends sig and returns the agent's exit code.
func (a *agentProc) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	_ = a.cmd.Process.Signal(sig)
	select {
	case <-a.done:
	case <-time.After(40 * time.Second):
		t.Fatalf("vigil agent did not exit after %v:\n%s", sig, a.out.String())
	}
	return a.cmd.ProcessState.ExitCode()
}

// waitRendered waits until path holds want and returns how long it took.
func waitRendered(t *testing.T, a *agentProc, path, want string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	waitFor(t, within, func() error {
		if !a.running() {
			t.Fatalf("vigil agent exited: %v\n%s", a.err, a.out.String())
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if string(b) != want {
			return fmt.Errorf("%s holds %q, want %q", filepath.Base(path), b, want)
		}
		return nil
	})
	return time.Since(start)
}

// TestAgentBinary is issue 8's done-when for `vigil agent`, with the
// built binary and a Vault Agent configuration as Vault's documentation
// writes it: AppRole auto-auth with a file sink, a template rendered to a
// file with a command, the API proxy with the cache. A KV write reaches
// the file within a second or so (change events: the static render
// interval is ten minutes); the token's TTL is shorter than the test, so
// the agent logs in again several times; the server is stopped and the
// file and the agent stay, then resume; the log holds no secret.
func TestAgentBinary(t *testing.T) {
	s := newAgentServer(t)
	dir := t.TempDir()
	secretID := s.approle(dir, "trainer", "trainer", `
path "secret/data/ml/*" { capabilities = ["read"] }
path "sys/events/subscribe/*" { capabilities = ["read"] }
`, "4s", "8s")
	s.put("ml/openai", map[string]any{"api_key": "sk-agent-1"})
	proxyAddr := freeAddr(t)
	out := filepath.Join(dir, "out", "openai.env")
	renders := filepath.Join(dir, "renders")
	cfg := filepath.Join(dir, "agent.hcl")
	writeTestFile(t, cfg, fmt.Sprintf(`
pid_file = "%[1]s/agent.pid"

vault {
  address = "%[2]s"
  retry {
    num_retries = 5
  }
}

auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path   = "%[1]s/role-id"
      secret_id_file_path = "%[1]s/secret-id"
    }
  }

  sink "file" {
    config = {
      path = "%[1]s/token"
      mode = 0600
    }
  }
}

cache {}

api_proxy {
  use_auto_auth_token = true
}

listener "tcp" {
  address     = "%[3]s"
  tls_disable = true
}

template_config {
  static_secret_render_interval = "10m"
}

template {
  contents             = "{{ with secret \"secret/data/ml/openai\" }}OPENAI_API_KEY={{ .Data.data.api_key }}{{ end }}\n"
  destination          = "%[1]s/out/openai.env"
  perms                = "0600"
  error_on_missing_key = true
  exec {
    command = ["sh", "-c", "echo rendered >> %[1]s/renders"]
  }
}
`, dir, s.url, proxyAddr))

	a := startAgent(t, cfg)
	waitRendered(t, a, out, "OPENAI_API_KEY=sk-agent-1\n", 30*time.Second)
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("rendered file: %v, mode %v", err, fi.Mode())
	}
	if _, err := os.Stat(filepath.Join(dir, "secret-id")); !os.IsNotExist(err) {
		t.Errorf("the secret id file is still there (remove_secret_id_file_after_reading defaults to true): %v", err)
	}
	tok0 := sinkToken(t, filepath.Join(dir, "token"))
	seen := []string{tok0}
	if _, err := vaultClientAt(t, s.url, tok0).Auth().Token().LookupSelf(); err != nil {
		t.Fatalf("the sink's token does not work: %v", err)
	}

	// Changes arrive by change events: well within a second or two, with
	// a render interval of ten minutes.
	var worst time.Duration
	for i := 2; i <= 4; i++ {
		v := fmt.Sprintf("sk-agent-%d", i)
		s.put("ml/openai", map[string]any{"api_key": v})
		d := waitRendered(t, a, out, "OPENAI_API_KEY="+v+"\n", 20*time.Second)
		worst = max(worst, d)
	}
	t.Logf("KV write to rendered file: at most %v over 3 writes", worst)
	if worst > 5*time.Second {
		t.Errorf("a change took %v to reach the file: events should bring it within a second or so", worst)
	}
	waitFor(t, 10*time.Second, func() error {
		b, _ := os.ReadFile(renders)
		if n := strings.Count(string(b), "rendered"); n != 4 {
			return fmt.Errorf("the template's command ran %d times, want 4 (once per change)", n)
		}
		return nil
	})

	// The proxy puts the agent's token on a request that has none.
	body := proxyGet(t, "http://"+proxyAddr+"/v1/secret/data/ml/openai", http.StatusOK)
	if !strings.Contains(body, "sk-agent-4") {
		t.Fatalf("through the proxy: %s", body)
	}

	// The token lives 4s (at most 8s): the agent renews it and logs in
	// again (with the secret id it kept in memory), and the sink follows.
	waitFor(t, 30*time.Second, func() error {
		tok := sinkToken(t, filepath.Join(dir, "token"))
		if tok != seen[len(seen)-1] {
			seen = append(seen, tok)
		}
		if len(seen) < 3 {
			return fmt.Errorf("%d tokens so far", len(seen))
		}
		return nil
	})
	s.put("ml/openai", map[string]any{"api_key": "sk-agent-5"})
	waitRendered(t, a, out, "OPENAI_API_KEY=sk-agent-5\n", 20*time.Second)

	// The server stops: the file keeps its content and the agent runs on.
	s.stop()
	time.Sleep(3 * time.Second)
	if b, _ := os.ReadFile(out); string(b) != "OPENAI_API_KEY=sk-agent-5\n" || !a.running() {
		t.Fatalf("during the outage the file holds %q, agent running: %v", b, a.running())
	}
	proxyGet(t, "http://"+proxyAddr+"/v1/secret/data/ml/openai", http.StatusBadGateway)

	// It comes back (its tokens expired meanwhile): the agent logs in
	// again, subscribes again and catches the change made since.
	s.start()
	s.put("ml/openai", map[string]any{"api_key": "sk-agent-6"})
	waitRendered(t, a, out, "OPENAI_API_KEY=sk-agent-6\n", 60*time.Second)

	if code := a.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("vigil agent exited %d after SIGTERM, want 0", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "agent.pid")); !os.IsNotExist(err) {
		t.Errorf("the pid file is left behind: %v", err)
	}
	log := a.out.String()
	for _, secret := range append([]string{"sk-agent-", secretID}, seen...) {
		if strings.Contains(log, secret) {
			t.Errorf("the agent's log holds a secret (%.6s…)", secret)
		}
	}
}

// sinkToken reads the token a file sink holds.
func sinkToken(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("sink: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("sink mode %v, want 0600", fi.Mode().Perm())
	}
	return strings.TrimSpace(string(b))
}

// proxyGet sends a GET without a token and checks its status.
func proxyGet(t *testing.T, url string, want int) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d: %s", url, resp.StatusCode, want, b)
	}
	return string(b)
}

// TestAgentExecAndPolling: process supervisor mode (env_template + exec)
// with a token_file method and a policy that may not subscribe to
// events, so changes arrive by the static render interval (2s): the
// child gets the secret in its environment, is restarted with the new
// value after a change, and the agent ends with the child's status when
// it passes on SIGTERM.
func TestAgentExecAndPolling(t *testing.T) {
	s := newAgentServer(t)
	dir := t.TempDir()
	if err := s.root.Sys().PutPolicy("runner", `path "secret/data/ml/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := s.root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"runner"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(dir, "token"), tok.Auth.ClientToken)
	s.put("ml/openai", map[string]any{"api_key": "sk-exec-1"})
	starts := filepath.Join(dir, "starts")
	cfg := filepath.Join(dir, "agent.hcl")
	writeTestFile(t, cfg, fmt.Sprintf(`
vault {
  address = "%[2]s"
}
auto_auth {
  method "token_file" {
    config = {
      token_file_path = "%[1]s/token"
    }
  }
}
template_config {
  static_secret_render_interval = "2s"
}
env_template "OPENAI_API_KEY" {
  contents             = "{{ with secret \"secret/data/ml/openai\" }}{{ .Data.data.api_key }}{{ end }}"
  error_on_missing_key = true
}
exec {
  command                   = ["sh", "-c", "echo \"start $(printf %%s \"$OPENAI_API_KEY\" | sha256sum | cut -c1-8)\" >> %[1]s/starts; trap 'echo term >> %[1]s/starts; exit 3' TERM; while :; do sleep 0.05; done"]
  restart_on_secret_changes = "always"
  restart_stop_signal       = "SIGTERM"
}
`, dir, s.url))
	a := startAgent(t, cfg)
	h := func(v string) string {
		sum := sha256.Sum256([]byte(v))
		return hex.EncodeToString(sum[:])[:8]
	}
	waitRendered(t, a, starts, "start "+h("sk-exec-1")+"\n", 30*time.Second)

	s.put("ml/openai", map[string]any{"api_key": "sk-exec-2"})
	waitRendered(t, a, starts, "start "+h("sk-exec-1")+"\nterm\nstart "+h("sk-exec-2")+"\n", 30*time.Second)

	if code := a.stop(t, syscall.SIGTERM); code != 3 {
		t.Errorf("vigil agent exited %d, want the child's 3\n%s", code, a.out.String())
	}
	b, _ := os.ReadFile(starts)
	if !strings.HasSuffix(string(b), "term\n") {
		t.Errorf("the child did not get SIGTERM: %q", b)
	}
	log := a.out.String()
	if strings.Contains(log, "sk-exec-") || strings.Contains(log, tok.Auth.ClientToken) {
		t.Error("the agent's log holds a secret")
	}
	if !strings.Contains(log, "sys/events/subscribe") {
		t.Errorf("the agent did not say that its token may not subscribe to events:\n%s", log)
	}
}

// TestAgentInitContainer: exit_after_auth (-exit-after-auth) logs in,
// writes the sink and the templates once, and exits 0: the init container
// of a batch job.
func TestAgentInitContainer(t *testing.T) {
	s := newAgentServer(t)
	dir := t.TempDir()
	s.approle(dir, "job", "job", `path "secret/data/ml/*" { capabilities = ["read"] }`, "1h", "2h")
	s.put("ml/db", map[string]any{"url": "postgres://train@db/features"})
	cfg := filepath.Join(dir, "agent.hcl")
	writeTestFile(t, cfg, fmt.Sprintf(`
vault {
  address = "%[2]s"
}
auto_auth {
  method "approle" {
    config = {
      role_id_file_path                   = "%[1]s/role-id"
      secret_id_file_path                 = "%[1]s/secret-id"
      remove_secret_id_file_after_reading = false
    }
  }
  sink "file" {
    config = {
      path = "%[1]s/token"
    }
  }
}
template {
  contents    = "{{ with secret \"secret/ml/db\" }}{{ .Data.data.url }}{{ end }}"
  destination = "%[1]s/secrets/db-url"
}
`, dir, s.url))
	cmd := exec.Command(vigilBin, "agent", "-config", cfg, "-exit-after-auth")
	cmd.Env = append(os.Environ(), "VIGIL_ADDR=", "VAULT_ADDR=", "VIGIL_TOKEN=", "VAULT_TOKEN=")
	outb, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("vigil agent -exit-after-auth: %v\n%s", err, outb)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "secrets", "db-url")); err != nil || string(b) != "postgres://train@db/features" {
		t.Fatalf("rendered: %q, %v", b, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "token")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("sink: %v (want mode 0640, Vault Agent's default)", err)
	}
	if strings.Contains(string(outb), "postgres://") {
		t.Error("the agent's log holds the secret")
	}
}

// TestAgentStaticRoleRotation: a template over a database static role's
// credentials is rendered again when the role rotates (the database/rotate
// change event), with a real PostgreSQL.
func TestAgentStaticRoleRotation(t *testing.T) {
	s := newAgentServer(t)
	db, user, _, _ := setupStatic(t, s.root)
	if _, err := s.root.Logical().Write("database/static-roles/svc-train", map[string]any{
		"db_name": "ml", "username": user, "rotation_period": "24h",
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s.approle(dir, "svc", "svc", `
path "database/static-creds/svc-train" { capabilities = ["read"] }
path "sys/events/subscribe/*" { capabilities = ["read"] }
`, "1h", "2h")
	cfg := filepath.Join(dir, "agent.hcl")
	writeTestFile(t, cfg, fmt.Sprintf(`
vault {
  address = "%[2]s"
}
auto_auth {
  method "approle" {
    config = {
      role_id_file_path   = "%[1]s/role-id"
      secret_id_file_path = "%[1]s/secret-id"
    }
  }
}
template_config {
  static_secret_render_interval = "10m"
}
template {
  contents    = "{{ with secret \"database/static-creds/svc-train\" }}{{ .Data.username }}:{{ .Data.password }}{{ end }}"
  destination = "%[1]s/db-creds"
  perms       = "0600"
}
`, dir, s.url))
	a := startAgent(t, cfg)
	out := filepath.Join(dir, "db-creds")
	read := func() (string, string) {
		b, _ := os.ReadFile(out)
		u, p, _ := strings.Cut(string(b), ":")
		return u, p
	}
	waitFor(t, 30*time.Second, func() error {
		if u, _ := read(); u != user {
			return fmt.Errorf("not rendered yet")
		}
		return nil
	})
	_, before := read()
	logsIn(t, db, user, before)
	rotateRole(t, s.root, "svc-train")
	waitFor(t, 10*time.Second, func() error {
		if _, p := read(); p == before || p == "" {
			return fmt.Errorf("the rotated password has not reached the file")
		}
		return nil
	})
	_, after := read()
	logsIn(t, db, user, after)
	if strings.Contains(a.out.String(), after) || strings.Contains(a.out.String(), before) {
		t.Error("the agent's log holds a password")
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
