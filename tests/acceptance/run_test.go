//go:build !e2e

package acceptance

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/jwks/jwkstest"
	"github.com/vigil-secrets/vigil/internal/testcluster"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

// `vigil run` in-process (cli.Run) against real servers, with real child
// processes (sh scripts). The children write what they see to files in
// the test's directory, so that vigil's own stdout and stderr can be
// checked to hold no secret value.

// vigilRun is one `vigil run` started in the background.
type vigilRun struct {
	stdout, stderr *testlog.Buffer
	done           chan int
}

func startVigilRun(ctx context.Context, env map[string]string, args ...string) *vigilRun {
	r := &vigilRun{stdout: &testlog.Buffer{}, stderr: &testlog.Buffer{}, done: make(chan int, 1)}
	go func() {
		r.done <- cli.Run(ctx, append([]string{"run"}, args...), strings.NewReader(""), r.stdout, r.stderr, func(k string) string { return env[k] })
	}()
	return r
}

func (r *vigilRun) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-r.done:
		return code
	case <-time.After(90 * time.Second):
		t.Fatalf("vigil run did not end\nstdout: %s\nstderr: %s", r.stdout, r.stderr)
		return 0
	}
}

// noValues fails if vigil's output holds any of values.
func (r *vigilRun) noValues(t *testing.T, values ...string) {
	t.Helper()
	for _, v := range values {
		if strings.Contains(r.stdout.String(), v) || strings.Contains(r.stderr.String(), v) {
			t.Errorf("vigil run's output holds the value %q\nstdout: %s\nstderr: %s", v, r.stdout, r.stderr)
		}
	}
}

// readFile returns a file's content, "" when it does not exist yet.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// waitFile waits until the file at path contains want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	waitFor(t, 60*time.Second, func() error {
		if got := readFile(t, path); !strings.Contains(got, want) {
			return fmt.Errorf("%s holds %q, want %q", filepath.Base(path), got, want)
		}
		return nil
	})
}

// runServer is a server with KV v2 at secret/ and the variables a vigil
// command needs to reach it with the root token.
func runServer(t *testing.T) (*testcluster.Server, *vault.Client, map[string]string) {
	t.Helper()
	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	return s, vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken}), map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}
}

func runPut(t *testing.T, c *vault.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := c.KVv2("secret").Put(context.Background(), path, data); err != nil {
		t.Fatalf("put %s: %v", path, err)
	}
}

// TestRunInjects: -env, -path and -env-file set the child's variables
// (and only the child's), the child's exit status is vigil run's, and
// nothing vigil prints, at debug level, holds a value; errors name paths
// and keys, never values.
func TestRunInjects(t *testing.T) {
	t.Parallel()
	_, root, env := runServer(t)
	runPut(t, root, "ml/openai", map[string]any{"api_key": "sk-live-1", "org-id": "acme-org-7"})
	runPut(t, root, "ml/hf", map[string]any{"token": "hf-tok-9"})
	dir := t.TempDir()
	envFile := filepath.Join(dir, "vars.env")
	writeFile(t, envFile, "# the Hugging Face token\nHF_TOKEN=secret/ml/hf#token\n")
	out := filepath.Join(dir, "seen")
	script := `printf '%s\n' "OPENAI_API_KEY=$OPENAI_API_KEY" "API_KEY=$API_KEY" "ORG_ID=$ORG_ID" "HF_TOKEN=$HF_TOKEN" "RAW=$RAW" > "$1"; exit 3`

	r := startVigilRun(t.Context(), env, "-log-level=debug",
		"-env", "OPENAI_API_KEY=secret/ml/openai#api_key", "-env", "RAW=secret/data/ml/openai#org-id",
		"-path", "secret/ml/openai", "-env-file", envFile, "--", "sh", "-c", script, "sh", out)
	if code := r.wait(t); code != 3 {
		t.Fatalf("exit %d, want the child's 3\nstderr: %s", code, r.stderr)
	}
	want := "OPENAI_API_KEY=sk-live-1\nAPI_KEY=sk-live-1\nORG_ID=acme-org-7\nHF_TOKEN=hf-tok-9\nRAW=acme-org-7\n"
	if got := readFile(t, out); got != want {
		t.Errorf("the child saw:\n%s\nwant:\n%s", got, want)
	}
	r.noValues(t, "sk-live-1", "acme-org-7", "hf-tok-9", env["VIGIL_TOKEN"])
	if os.Getenv("OPENAI_API_KEY") != "" {
		t.Error("vigil run set a variable in its own environment")
	}

	// Errors name the path and the key.
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-env", "X=secret/ml/openai#nope", "--", "true"}, 1, `secret/data/ml/openai: no key "nope" (it has "api_key", "org-id")`},
		{[]string{"-env", "API_KEY=secret/ml/hf#token", "-path", "secret/ml/openai", "--", "true"}, 1, "variable API_KEY is set twice"},
		{[]string{"-env", "X=secret/ml/none#k", "--", "true"}, 1, "secret/data/ml/none: no secret there"},
		{[]string{"-env", "X=secret/ml/hf#token", "--", "vigil-no-such-command"}, 127, "executable file not found"},
		{[]string{"-env", "X=secret/ml/hf", "--", "true"}, 2, "want NAME=PATH#KEY"},
		{[]string{"--", "true"}, 2, "nothing to set"},
		{[]string{"-env", "X=secret/ml/hf#token"}, 2, "no command to run"},
	} {
		r := startVigilRun(t.Context(), env, tt.args...)
		if code := r.wait(t); code != tt.code || !strings.Contains(r.stderr.String(), tt.want) {
			t.Errorf("vigil run %v: exit %d, want %d with %q\nstderr: %s", tt.args, code, tt.code, tt.want, r.stderr)
		}
		r.noValues(t, "sk-live-1", "acme-org-7", "hf-tok-9")
	}
	noToken := map[string]string{"VIGIL_ADDR": env["VIGIL_ADDR"], "HOME": t.TempDir()}
	r = startVigilRun(t.Context(), noToken, "-env", "X=secret/ml/hf#token", "--", "true")
	if code := r.wait(t); code != 2 || !strings.Contains(r.stderr.String(), "no token") {
		t.Errorf("without a token: exit %d\n%s", code, r.stderr)
	}
}

// tokenCount is the number of tokens the server holds.
func tokenCount(t *testing.T, root *vault.Client) int {
	t.Helper()
	s, err := root.Logical().List("auth/token/accessors")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := s.Data["keys"].([]any)
	return len(keys)
}

// TestRunAppRole: auto-auth from AppRole files (no token in the
// environment); the token it got is revoked when vigil run exits.
func TestRunAppRole(t *testing.T) {
	t.Parallel()
	s, root, _ := runServer(t)
	runPut(t, root, "ml/db", map[string]any{"password": "db-pw-5"})
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("ml-db", `path "secret/data/ml/db" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	roleID, secretID := appRoleIDs(t, root, "trainer", map[string]any{"token_policies": "ml-db", "token_ttl": "10m"})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "role-id"), roleID)
	writeFile(t, filepath.Join(dir, "secret-id"), secretID+"\n")
	before := tokenCount(t, root)

	out := filepath.Join(dir, "seen")
	env := map[string]string{"VIGIL_ADDR": s.URL, "HOME": t.TempDir()}
	r := startVigilRun(t.Context(), env, "-method=approle", "role_id=@"+filepath.Join(dir, "role-id"), "secret_id=@"+filepath.Join(dir, "secret-id"),
		"-env", "DB_PASSWORD=secret/ml/db#password", "--", "sh", "-c", `echo "$DB_PASSWORD" > "$1"`, "sh", out)
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, r.stderr)
	}
	if got := readFile(t, out); got != "db-pw-5\n" {
		t.Errorf("the child saw %q", got)
	}
	r.noValues(t, "db-pw-5", secretID)
	if _, err := os.Stat(filepath.Join(dir, "secret-id")); err != nil {
		t.Errorf("vigil run removed the secret id file: %v", err)
	}
	if after := tokenCount(t, root); after != before {
		t.Errorf("%d tokens before, %d after: the login's token outlived vigil run", before, after)
	}

	// A refused login fails at once, naming the method.
	writeFile(t, filepath.Join(dir, "secret-id"), "wrong")
	r = startVigilRun(t.Context(), env, "-method=approle", "role_id=@"+filepath.Join(dir, "role-id"), "secret_id=@"+filepath.Join(dir, "secret-id"),
		"-env", "DB_PASSWORD=secret/ml/db#password", "--", "true")
	if code := r.wait(t); code != 1 || !strings.Contains(r.stderr.String(), "approle at auth/approle") {
		t.Errorf("a wrong secret id: exit %d\n%s", code, r.stderr)
	}
}

// TestRunJWT: auto-auth with a JWT from a file (a CI job's or a pod's
// projected token), signed by a test issuer.
func TestRunJWT(t *testing.T) {
	t.Parallel()
	s, root, _ := runServer(t)
	runPut(t, root, "ci/acme-train/openai", map[string]any{"api_key": "sk-ci-3"})
	key := jwkstest.Key(t, jose.ES256)
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("jwt", &vault.EnableAuthOptions{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	for path, data := range map[string]map[string]any{
		"auth/jwt/config":     {"jwt_validation_pubkeys": []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}},
		"auth/jwt/role/train": {"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"vigil"}, "bound_claims": map[string]any{"repository": "acme/train"}, "token_policies": []string{"train"}, "token_ttl": "10m"},
	} {
		if _, err := root.Logical().Write(path, data); err != nil {
			t.Fatalf("write %s: %v", path, err)
		}
	}
	if err := root.Sys().PutPolicy("train", `path "secret/data/ci/acme-train/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{"sub": "repo:acme/train", "aud": "vigil", "repository": "acme/train", "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()})
	dir := t.TempDir()
	jwtFile := filepath.Join(dir, "id-token")
	writeFile(t, jwtFile, jwkstest.Sign(t, jose.ES256, key, "", claims))

	out := filepath.Join(dir, "seen")
	env := map[string]string{"VIGIL_ADDR": s.URL, "HOME": t.TempDir()}
	r := startVigilRun(t.Context(), env, "-method=jwt", "role=train", "jwt=@"+jwtFile,
		"-env", "OPENAI_API_KEY=secret/ci/acme-train/openai#api_key", "--", "sh", "-c", `echo "$OPENAI_API_KEY" > "$1"`, "sh", out)
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, r.stderr)
	}
	if got := readFile(t, out); got != "sk-ci-3\n" {
		t.Errorf("the child saw %q", got)
	}
	r.noValues(t, "sk-ci-3", readFile(t, jwtFile))
}

// TestRunWatchAndOutage: with -watch, a new KV version restarts the
// child gracefully; during an outage the child keeps running with its
// values while vigil retries; a change made meanwhile restarts the child
// once the server is back.
func TestRunWatchAndOutage(t *testing.T) {
	t.Parallel()
	s, root, env := runServer(t)
	proxy := testcluster.NewProxy(t, s.URL)
	env["VIGIL_ADDR"] = proxy.URL
	runPut(t, root, "app", map[string]any{"key": "alpha-1"})
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	// Each child logs its start and its SIGTERM; the one that sees alpha-3
	// exits by itself.
	script := `echo "start $K" >> "$1"; [ "$K" = alpha-3 ] && exit 0; trap 'echo "term $K" >> "$1"; exit 0' TERM; while :; do sleep 0.05; done`
	r := startVigilRun(t.Context(), env, "-watch", "-poll=50ms", "-grace=20s", "-min-backoff=10ms", "-max-backoff=100ms",
		"-env", "K=secret/app#key", "--", "sh", "-c", script, "sh", log)
	waitFile(t, log, "start alpha-1\n")
	runPut(t, root, "app", map[string]any{"key": "alpha-2"})
	waitFile(t, log, "start alpha-1\nterm alpha-1\nstart alpha-2\n")

	proxy.Down()
	waitFor(t, 60*time.Second, func() error {
		if n := strings.Count(r.stderr.String(), "reading the secrets failed"); n < 3 {
			return fmt.Errorf("%d failed reads so far", n)
		}
		return nil
	})
	runPut(t, root, "app", map[string]any{"key": "alpha-3"})
	if got := readFile(t, log); got != "start alpha-1\nterm alpha-1\nstart alpha-2\n" {
		t.Fatalf("during the outage the child log is %q", got)
	}
	select {
	case code := <-r.done:
		t.Fatalf("vigil run exited during the outage: %d\n%s", code, r.stderr)
	default:
	}
	proxy.Up(t)
	if code := r.wait(t); code != 0 {
		t.Fatalf("exit %d\nstderr: %s", code, r.stderr)
	}
	if got := readFile(t, log); got != "start alpha-1\nterm alpha-1\nstart alpha-2\nterm alpha-2\nstart alpha-3\n" {
		t.Errorf("the child log is %q", got)
	}
	r.noValues(t, "alpha-1", "alpha-2", "alpha-3")

	// -exit-on-retry-failure: the same outage ends the run.
	runPut(t, root, "app", map[string]any{"key": "omega-1"})
	r = startVigilRun(t.Context(), env, "-watch", "-poll=50ms", "-min-backoff=10ms", "-max-backoff=50ms", "-exit-on-retry-failure", "-retries=3",
		"-env", "K=secret/app#key", "--", "sh", "-c", script, "sh", log)
	waitFile(t, log, "start omega-1\n")
	proxy.Down()
	if code := r.wait(t); code != 1 || !strings.Contains(r.stderr.String(), "retries exhausted") {
		t.Errorf("exit %d, want 1 after the retries\nstderr: %s", code, r.stderr)
	}
	waitFile(t, log, "term omega-1\n")
}

// TestRunForwardsSignals sends real signals to the test process, which
// vigil run (in-process) receives and forwards to its child. It is not
// parallel, so that no other vigil run of this package is running.
func TestRunForwardsSignals(t *testing.T) {
	// The test itself catches the signals too, so that none can end the
	// test process if it arrives while vigil run is not listening.
	mine := make(chan os.Signal, 8)
	signal.Notify(mine, syscall.SIGUSR1, syscall.SIGTERM)
	defer signal.Stop(mine)

	_, root, env := runServer(t)
	runPut(t, root, "app", map[string]any{"key": "v1"})
	log := filepath.Join(t.TempDir(), "log")
	script := `trap 'echo usr1 >> "$1"' USR1; trap 'echo term >> "$1"; exit 42' TERM; echo ready >> "$1"; while :; do sleep 0.05; done`
	r := startVigilRun(t.Context(), env, "-env", "K=secret/app#key", "--", "sh", "-c", script, "sh", log)
	waitFile(t, log, "ready\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFile(t, log, "ready\nusr1\n")
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := r.wait(t); code != 42 {
		t.Errorf("exit %d, want the child's 42\nstderr: %s", code, r.stderr)
	}
	if got := readFile(t, log); got != "ready\nusr1\nterm\n" {
		t.Errorf("the child log is %q", got)
	}
}
