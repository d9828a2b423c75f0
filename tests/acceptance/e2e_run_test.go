//go:build e2e

package acceptance

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRunBinary is issue 8's done-when with the vigil binary: a dev
// server, `vigil run -env OPENAI_API_KEY=secret/ml/openai#api_key --
// CMD` with nothing but a token, and the signals the vigil process gets
// (from the OS, not a test hook) forwarded to the command, whose exit
// status vigil returns.
func TestRunBinary(t *testing.T) {
	addr := freeAddr(t)
	url := "http://" + addr
	p := startServer(t, "-dev", "-dev-listen-address", addr, "-dev-root-token-id", "dev-root")
	waitHealthy(t, url, p)
	env := []string{"VIGIL_ADDR=" + url, "HOME=" + t.TempDir(), "VIGIL_TOKEN=dev-root", "VAULT_TOKEN="}
	if _, stderr, code := runCLI(t, env, "", "kv", "put", "secret/ml/openai", "api_key=sk-e2e-42"); code != 0 {
		t.Fatalf("kv put: exit %d: %s", code, stderr)
	}

	out, stderr, code := runCLI(t, env, "", "run", "-env", "OPENAI_API_KEY=secret/ml/openai#api_key", "--", "sh", "-c", `[ "$OPENAI_API_KEY" = sk-e2e-42 ] && exit 7; exit 1`)
	if code != 7 || strings.Contains(out+stderr, "sk-e2e-42") {
		t.Fatalf("vigil run: exit %d, want the command's 7\nstdout: %s\nstderr: %s", code, out, stderr)
	}

	log := filepath.Join(t.TempDir(), "log")
	script := `trap 'echo usr1 >> "$1"' USR1; trap 'echo hup >> "$1"' HUP; trap 'echo term >> "$1"; exit 42' TERM; echo "ready" >> "$1"; while :; do sleep 0.05; done`
	cmd := exec.Command(vigilBin, "run", "-env", "OPENAI_API_KEY=secret/ml/openai#api_key", "--", "sh", "-c", script, "sh", log)
	cmd.Env = append(os.Environ(), env...)
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitLog := func(want string) {
		t.Helper()
		waitFor(t, 30*time.Second, func() error {
			b, _ := os.ReadFile(log)
			if string(b) != want {
				return fmt.Errorf("the command's log is %q, want %q", b, want)
			}
			return nil
		})
	}
	waitLog("ready\n")
	// One at a time: the OS does not keep the order of different signals.
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitLog("ready\nusr1\n")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog("ready\nusr1\nhup\n")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("vigil run did not exit after SIGTERM:\n%s", output.String())
	}
	if got := cmd.ProcessState.ExitCode(); got != 42 {
		t.Errorf("vigil run exited %d, want the command's 42\n%s", got, output.String())
	}
	waitLog("ready\nusr1\nhup\nterm\n")
}
