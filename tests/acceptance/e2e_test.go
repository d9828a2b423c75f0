//go:build e2e

package acceptance

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// vigilBin is the binary built once by TestMain.
var vigilBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vigil-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vigilBin = filepath.Join(dir, "vigil")
	build := exec.Command("go", "build", "-o", vigilBin, "../../cmd/vigil")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build vigil:", err)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
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

// proc is a running `vigil server`.
type proc struct {
	cmd    *exec.Cmd
	output *bytes.Buffer
	done   chan error
}

func startServer(t *testing.T, args ...string) *proc {
	t.Helper()
	return startServerEnv(t, nil, args...)
}

// startServerEnv starts `vigil server` with env added to the environment.
func startServerEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{output: &bytes.Buffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(vigilBin, append([]string{"server"}, args...)...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t, syscall.SIGKILL) })
	return p
}

func (p *proc) stop(t *testing.T, sig syscall.Signal) {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("server did not stop after %v; output:\n%s", sig, p.output)
		_ = p.cmd.Process.Kill()
	}
}

func waitHealthy(t *testing.T, url string, p *proc) {
	t.Helper()
	waitFor(t, 20*time.Second, func() error {
		select {
		case err := <-p.done:
			t.Fatalf("server exited: %v\n%s", err, p.output)
		default:
		}
		resp, err := http.Get(url + "/v1/sys/health?uninitcode=200&sealedcode=200")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

func writeConfig(t *testing.T, dir, addr string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
storage "bolt" {
  path = %q
}
listener "tcp" {
  address = %q
}
log_level = "warn"
`, filepath.Join(dir, "vigil.db"), addr)
	path := filepath.Join(dir, "config.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newBinaryTarget starts the built binary from a config file, initializes
// it with 5 shares / threshold 3 and unseals it with 3.
func newBinaryTarget(t *testing.T) *target {
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := writeConfig(t, dir, addr)
	url := "http://" + addr
	p := startServer(t, "-config", cfg)
	waitHealthy(t, url, p)
	cl, err := vault.NewClient(&vault.Config{Address: url, MaxRetries: 0})
	if err != nil {
		t.Fatal(err)
	}
	init, err := cl.Sys().Init(&vault.InitRequest{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	for _, k := range init.Keys[:3] {
		if _, err := cl.Sys().Unseal(k); err != nil {
			t.Fatal(err)
		}
	}
	tg := &target{URL: url, RootToken: init.RootToken, Keys: init.Keys[2:5], DataDir: dir}
	tg.Kill = func(t *testing.T) { p.stop(t, syscall.SIGKILL) }
	tg.Start = func(t *testing.T) {
		p = startServer(t, "-config", cfg)
		waitHealthy(t, url, p)
	}
	tg.Restart = func(t *testing.T) {
		p.stop(t, syscall.SIGTERM)
		tg.Start(t)
	}
	return tg
}

func TestBinary(t *testing.T) {
	runSuite(t, newBinaryTarget)
}

// runCLI runs the vigil binary as a client.
func runCLI(t *testing.T, env []string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(vigilBin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestDevServerAndCLI is the README's first five minutes: a dev server,
// then put and get with the CLI.
func TestDevServerAndCLI(t *testing.T) {
	addr := freeAddr(t)
	url := "http://" + addr
	p := startServer(t, "-dev", "-dev-listen-address", addr, "-dev-root-token-id", "dev-root")
	waitHealthy(t, url, p)
	home := t.TempDir()
	env := []string{"VIGIL_ADDR=" + url, "HOME=" + home, "VIGIL_TOKEN=", "VAULT_TOKEN="}
	withToken := append(env, "VIGIL_TOKEN=dev-root")

	if _, stderr, code := runCLI(t, withToken, "", "kv", "put", "secret/ml/openai", "api_key=sk-abc123"); code != 0 {
		t.Fatalf("kv put: exit %d: %s", code, stderr)
	}
	out, stderr, code := runCLI(t, withToken, "", "kv", "get", "-field=api_key", "secret/ml/openai")
	if code != 0 || strings.TrimSpace(out) != "sk-abc123" {
		t.Fatalf("kv get -field: exit %d, out %q, err %s", code, out, stderr)
	}
	// The same through the official Go client.
	cl, _ := vault.NewClient(&vault.Config{Address: url, MaxRetries: 0})
	cl.SetToken("dev-root")
	s, err := cl.KVv2("secret").Get(context.Background(), "ml/openai")
	if err != nil || s.Data["api_key"] != "sk-abc123" {
		t.Fatalf("go client get: %v %v", s, err)
	}
	// login stores the token (0600) for later commands.
	if _, stderr, code := runCLI(t, env, "", "login", "dev-root"); code != 0 {
		t.Fatalf("login: exit %d: %s", code, stderr)
	}
	fi, err := os.Stat(filepath.Join(home, ".vigil-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	if out, _, code := runCLI(t, env, "", "kv", "get", "-format=json", "secret/ml/openai"); code != 0 || !strings.Contains(out, `"api_key": "sk-abc123"`) {
		t.Fatalf("kv get with stored token: exit %d: %s", code, out)
	}
	// Errors: a usage mistake exits 2, a server error exits 1 and the
	// secret never appears in error output.
	if _, _, code := runCLI(t, withToken, "", "kv"); code != 2 {
		t.Fatalf("usage error exit = %d, want 2", code)
	}
	if _, stderr, code := runCLI(t, append(env, "VIGIL_TOKEN=wrong"), "", "kv", "get", "secret/ml/openai"); code != 1 || strings.Contains(stderr, "sk-abc123") {
		t.Fatalf("bad token: exit %d: %s", code, stderr)
	}
	if out, _, code := runCLI(t, withToken, "", "status"); code != 0 || !strings.Contains(out, "Sealed") {
		t.Fatalf("status: exit %d: %s", code, out)
	}
	p.stop(t, syscall.SIGINT)
	if p.cmd.ProcessState == nil || !p.cmd.ProcessState.Success() {
		t.Fatalf("dev server did not exit cleanly on SIGINT:\n%s", p.output)
	}
}

// TestLeastPrivilegeWithTheCLI is issue 3's flow with the vigil binary
// alone: a policy, an AppRole bound to it, a login, reads allowed only
// where the policy says, token commands, and the incident button.
func TestLeastPrivilegeWithTheCLI(t *testing.T) {
	addr := freeAddr(t)
	url := "http://" + addr
	p := startServer(t, "-dev", "-dev-listen-address", addr, "-dev-root-token-id", "dev-root")
	waitHealthy(t, url, p)
	home := t.TempDir()
	env := []string{"VIGIL_ADDR=" + url, "HOME=" + home, "VIGIL_TOKEN=", "VAULT_TOKEN="}
	root := append(env, "VIGIL_TOKEN=dev-root")
	run := func(env []string, stdin string, args ...string) string {
		t.Helper()
		out, stderr, code := runCLI(t, env, stdin, args...)
		if code != 0 {
			t.Fatalf("vigil %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
		return strings.TrimSpace(out)
	}
	run(root, "", "kv", "put", "secret/ml/openai", "api_key=sk-cli-canary")
	run(root, "", "kv", "put", "secret/finance/db", "password=pw")
	run(root, `path "secret/data/ml/*" { capabilities = ["read"] }`, "policy", "write", "ml-training", "-")
	run(root, "", "auth", "enable", "approle")
	run(root, "", "write", "auth/approle/role/trainer", "token_policies=ml-training", "token_ttl=1h")
	roleID := run(root, "", "read", "-field=role_id", "auth/approle/role/trainer/role-id")
	secretID := run(root, "", "write", "-f", "-field=secret_id", "auth/approle/role/trainer/secret-id")

	// The job logs in; its token is stored for the next commands.
	run(env, "", "login", "-method=approle", "role_id="+roleID, "secret_id="+secretID)
	if got := run(env, "", "kv", "get", "-field=api_key", "secret/ml/openai"); got != "sk-cli-canary" {
		t.Fatalf("allowed read = %q", got)
	}
	for _, args := range [][]string{
		{"kv", "put", "secret/ml/openai", "api_key=x"},
		{"kv", "get", "secret/finance/db"},
		{"policy", "list"},
	} {
		_, stderr, code := runCLI(t, env, "", args...)
		if code == 0 || !strings.Contains(stderr, "permission denied") {
			t.Fatalf("vigil %s: exit %d: %s", strings.Join(args, " "), code, stderr)
		}
	}
	if caps := run(env, "", "token", "capabilities", "secret/data/ml/x"); caps != "read" {
		t.Fatalf("token capabilities = %q", caps)
	}
	if out := run(env, "", "token", "lookup"); !strings.Contains(out, "auth/approle/login") || strings.Contains(out, "hvs.") {
		t.Fatalf("token lookup:\n%s", out)
	}

	// The incident button cuts every token the AppRole mount issued.
	run(root, "", "lease", "revoke", "-prefix", "-sync", "auth/approle")
	if _, stderr, code := runCLI(t, env, "", "kv", "get", "secret/ml/openai"); code == 0 || !strings.Contains(stderr, "permission denied") {
		t.Fatalf("read after revoke-prefix: exit %d: %s", code, stderr)
	}
	p.stop(t, syscall.SIGINT)
}

// TestNoPlaintextAtRest writes secrets through a config-file server and
// checks that no file of the store holds any of them, nor the root token
// or an unseal key share.
func TestNoPlaintextAtRest(t *testing.T) {
	tg := newBinaryTarget(t)
	c := vaultClient(t, tg)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	values := []string{"sk-plaintext-canary-7f3a9c", "pg-password-canary-41bd0e"}
	for i, v := range values {
		if _, err := c.KVv2("secret").Put(context.Background(), fmt.Sprintf("canary/%d", i), map[string]any{"value": v}); err != nil {
			t.Fatal(err)
		}
	}
	tg.Restart(t) // stop cleanly so the files are complete
	// The data file and both write-ahead log segments (which keep the
	// records of their last round after a checkpoint).
	for _, name := range []string{"vigil.db", "vigil.db-wal.0", "vigil.db-wal.1"} {
		raw, err := os.ReadFile(filepath.Join(tg.DataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range append(values, tg.RootToken) {
			if bytes.Contains(raw, []byte(v)) {
				t.Errorf("%s contains a plaintext secret (%d bytes long)", name, len(v))
			}
		}
		for _, k := range tg.Keys {
			if bytes.Contains(raw, []byte(k)) {
				t.Errorf("%s contains an unseal key share", name)
			}
		}
	}
}

// TestKillNineLosesNothing streams acknowledged writes, kills the server
// with SIGKILL mid-stream, restarts it and checks every acknowledged write.
func TestKillNineLosesNothing(t *testing.T) {
	tg := newBinaryTarget(t)
	c := vaultClient(t, tg)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	acked := make(chan int, 100000)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const workers = 8
	done := make(chan struct{}, workers)
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := w; ctx.Err() == nil; i += workers {
				_, err := c.KVv2("secret").Put(ctx, fmt.Sprintf("k/%d", i), map[string]any{"n": fmt.Sprint(i)})
				if err != nil {
					return
				}
				acked <- i
			}
		}()
	}
	waitFor(t, 20*time.Second, func() error {
		if len(acked) < 300 {
			return fmt.Errorf("only %d writes acknowledged", len(acked))
		}
		return nil
	})
	tg.Kill(t)
	cancel()
	for w := 0; w < workers; w++ {
		<-done
	}
	close(acked)
	tg.Start(t)
	c = vaultClient(t, tg)
	for _, k := range tg.Keys {
		if _, err := c.Sys().Unseal(k); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for i := range acked {
		n++
		s, err := c.KVv2("secret").Get(context.Background(), fmt.Sprintf("k/%d", i))
		if err != nil || s.Data["n"] != fmt.Sprint(i) {
			t.Fatalf("acknowledged write k/%d lost after kill -9: %v", i, err)
		}
	}
	t.Logf("%d acknowledged writes survived kill -9", n)
}

// TestAuditWithTheCLI is issue 4's "done when" with the vigil binary
// alone: a file audit device, a secret written and read, an AppRole login;
// no secret, token or password in clear in the log, sys/audit-hash of the
// value found in it, `vigil audit verify` accepting it and rejecting any
// edited or deleted line, rotation by SIGHUP continuing the chain, and
// reads failing while the only device cannot write.
func TestAuditWithTheCLI(t *testing.T) {
	addr := freeAddr(t)
	url := "http://" + addr
	p := startServer(t, "-dev", "-dev-listen-address", addr, "-dev-root-token-id", "dev-root")
	waitHealthy(t, url, p)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "audit.log")
	env := []string{"VIGIL_ADDR=" + url, "HOME=" + t.TempDir(), "VIGIL_TOKEN=dev-root", "VAULT_TOKEN="}
	run := func(wantCode int, stdin string, args ...string) (string, string) {
		t.Helper()
		out, stderr, code := runCLI(t, env, stdin, args...)
		if code != wantCode {
			t.Fatalf("vigil %s: exit %d, want %d: %s%s", strings.Join(args, " "), code, wantCode, out, stderr)
		}
		return strings.TrimSpace(out), stderr
	}
	run(0, "", "audit", "enable", "file", "file_path="+logPath)
	if out, _ := run(0, "", "audit", "list", "-detailed"); !strings.Contains(out, "file/") || !strings.Contains(out, "file_path="+logPath) {
		t.Fatalf("audit list:\n%s", out)
	}
	const canary = "sk-audit-canary-0123456789"
	run(0, "", "kv", "put", "secret/ml/openai", "api_key="+canary)
	if got, _ := run(0, "", "kv", "get", "-field=api_key", "secret/ml/openai"); got != canary {
		t.Fatalf("read %q", got)
	}
	run(0, "", "auth", "enable", "approle")
	run(0, "", "write", "auth/approle/role/trainer", "token_ttl=1h")
	roleID, _ := run(0, "", "read", "-field=role_id", "auth/approle/role/trainer/role-id")
	secretID, _ := run(0, "", "write", "-f", "-field=secret_id", "auth/approle/role/trainer/secret-id")
	loginEnv := []string{"VIGIL_ADDR=" + url, "HOME=" + t.TempDir(), "VIGIL_TOKEN=", "VAULT_TOKEN="}
	token, stderr, code := runCLI(t, loginEnv, "", "write", "-field=token", "auth/approle/login", "role_id="+roleID, "secret_id="+secretID)
	if code != 0 {
		t.Fatalf("login: %s", stderr)
	}
	token = strings.TrimSpace(token)

	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"secret": canary, "root token": "dev-root", "secret id": secretID, "issued token": token} {
		if bytes.Contains(raw, []byte(v)) {
			t.Errorf("the %s is in clear in the audit log", name)
		}
	}
	hash, _ := run(0, "", "write", "-field=hash", "sys/audit-hash/file", "input="+canary)
	if !bytes.Contains(raw, []byte(hash)) {
		t.Fatal("the audit-hash of the secret is not in the log")
	}
	if out, _ := run(0, canary, "audit", "search", "-value=-", "-path=secret/data/*", "-format=table", logPath); !strings.Contains(out, "secret/data/ml/openai") || !strings.Contains(out, "create") {
		t.Fatalf("search -value found:\n%s", out)
	}

	// Rotation: move the file away, SIGHUP, and the new file continues
	// the chain.
	rotated := logPath + ".1"
	if err := os.Rename(logPath, rotated); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() error {
		if _, err := os.Stat(logPath); err != nil {
			return err
		}
		return nil
	})
	run(0, "", "kv", "get", "secret/ml/openai")
	if out, _ := run(0, "", "audit", "verify", rotated, logPath); !strings.HasPrefix(out, "OK:") {
		t.Fatalf("verify:\n%s", out)
	}
	keyFile := filepath.Join(dir, "audit-key.json")
	run(0, "", "audit", "export-key", "-output="+keyFile)

	// Any single edit, and any deleted line, is caught.
	old, _ := os.ReadFile(rotated)
	lines := strings.SplitAfter(string(old), "\n")
	tamper := func(name, content string) {
		t.Helper()
		bad := filepath.Join(dir, name)
		if err := os.WriteFile(bad, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		out, _ := run(2, "", "audit", "verify", "-key-file="+keyFile, bad, logPath)
		if !strings.Contains(out, "TAMPERED") {
			t.Fatalf("%s: %s", name, out)
		}
	}
	tamper("edited", strings.Replace(string(old), `"operation":"read"`, `"operation":"list"`, 1))
	tamper("deleted", strings.Join(append(append([]string{}, lines[:3]...), lines[4:]...), ""))
	tamper("swapped", strings.Join(append(append(append([]string{}, lines[:3]...), lines[4], lines[3]), lines[5:]...), ""))

	// The only device cannot write: reads fail and return nothing.
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Log("no /dev/full: skipping the failing device")
		return
	}
	run(0, "", "audit", "enable", "-path=full", "file", "file_path=/dev/full")
	// Disabling the working device succeeds, but its answer can no
	// longer be recorded: the client gets an error.
	runCLI(t, env, "", "audit", "disable", "file")
	out, stderr, code := runCLI(t, env, "", "kv", "get", "-field=api_key", "secret/ml/openai")
	if code == 0 || strings.Contains(out, canary) || !strings.Contains(stderr, "internal error") {
		t.Fatalf("read with a failing device: exit %d: %s %s", code, out, stderr)
	}
	p.stop(t, syscall.SIGINT)
}
