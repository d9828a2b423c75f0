package child

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/testlog"
)

// waitOutput waits until the child's output contains want.
func waitOutput(t *testing.T, out *testlog.Buffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q never contained %q", out.String(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func wait(t *testing.T, c *Child) int {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not exit")
	}
	return c.ExitCode()
}

func TestExitCodes(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		script string
		want   int
	}{
		{"exit 0", 0},
		{"exit 3", 3},
		{"kill -KILL $$", 128 + 9},
		{"kill -TERM $$", 128 + 15},
	} {
		c, err := Start(Config{Command: []string{"sh", "-c", tt.script}, Env: []string{"PATH=" + os.Getenv("PATH")}})
		if err != nil {
			t.Fatal(err)
		}
		if got := wait(t, c); got != tt.want {
			t.Errorf("%s: exit %d, want %d", tt.script, got, tt.want)
		}
	}
	_, err := Start(Config{Command: []string{"vigil-no-such-command"}})
	var se *StartError
	if !errors.As(err, &se) || se.Code != ExitNotFound {
		t.Errorf("a missing command: %v", err)
	}
	notExec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(Config{Command: []string{notExec}}); !errors.As(err, &se) || se.Code != ExitCannotExecute {
		t.Errorf("a file that is not executable: %v", err)
	}
}

func TestEnvironmentAndSignals(t *testing.T) {
	t.Parallel()
	out := &testlog.Buffer{}
	env := Environ([]string{"PATH=" + os.Getenv("PATH"), "KEEP=1", "OVER=old"}, []string{"OVER=new", "ADDED=x=y"})
	if !slices.Equal(env[1:], []string{"KEEP=1", "OVER=new", "ADDED=x=y"}) {
		t.Fatalf("Environ = %v", env)
	}
	script := `trap 'echo got-usr1' USR1; trap 'echo got-term; exit 42' TERM; echo "$KEEP $OVER $ADDED"; echo ready; while :; do sleep 0.05; done`
	c, err := Start(Config{Command: []string{"sh", "-c", script}, Env: env, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, "ready")
	if !strings.Contains(out.String(), "1 new x=y\n") {
		t.Errorf("the child's environment: %q", out.String())
	}
	if err := c.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, "got-usr1")
	c.Stop(t.Context(), syscall.SIGTERM, time.Minute)
	if got := c.ExitCode(); got != 42 || !strings.Contains(out.String(), "got-term") {
		t.Errorf("stopped: exit %d, output %q", got, out.String())
	}
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("signalling an exited child: %v", err)
	}
}

func TestStopKillsAfterGrace(t *testing.T) {
	t.Parallel()
	out := &testlog.Buffer{}
	c, err := Start(Config{Command: []string{"sh", "-c", `trap '' TERM; echo ready; while :; do sleep 0.05; done`}, Env: []string{"PATH=" + os.Getenv("PATH")}, Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	waitOutput(t, out, "ready")
	c.Stop(t.Context(), syscall.SIGTERM, 200*time.Millisecond)
	if got := c.ExitCode(); got != 128+9 {
		t.Errorf("a child that ignores SIGTERM: exit %d, want 137", got)
	}
}

func TestParseSignal(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]os.Signal{"SIGTERM": syscall.SIGTERM, "term": syscall.SIGTERM, "HUP": syscall.SIGHUP, "sigusr2": syscall.SIGUSR2} {
		if got, ok := ParseSignal(in); !ok || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v", in, got, ok)
		}
	}
	if _, ok := ParseSignal("SIGBOGUS"); ok {
		t.Error("SIGBOGUS parsed")
	}
}
