package render

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/agent/secretenv"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// A child that reports its variable, USR1 and TERM (exiting 42 on TERM).
const trapScript = `trap 'echo got-usr1' USR1; trap 'echo "got-term K=$K"; exit 42' TERM; echo "start K=$K"; while :; do sleep 0.05; done`

// execOptions are process supervisor mode with K from secret/app's key,
// polled often.
func execOptions(t *testing.T, f *fixture, addr, script string) Options {
	t.Helper()
	o := f.options(t, addr)
	o.EnvTemplates = []config.EnvTemplate{envTemplate("K", `{{ with secret "secret/app" }}{{ .Data.data.key }}{{ end }}`)}
	o.Exec = &config.Exec{Command: []string{"sh", "-c", script}, RestartOnSecretChanges: "always", RestartStopSignal: "SIGTERM"}
	o.Watchers = []secretenv.Watcher{secretenv.Poller{Interval: 20 * time.Millisecond}}
	o.Grace = 20 * time.Second
	return o
}

func waitOutput(t *testing.T, f *fixture, want string) {
	t.Helper()
	waitFor(t, "child output "+want, func() bool { return strings.Contains(f.out.String(), want) })
}

// TestExec: the child starts once the variables are rendered, receives
// the signals forwarded to it, is restarted (TERM, then a new start) when
// a variable changes but not for a new version with the same value, and
// Run returns its status when it exits on its own.
func TestExec(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "k1-value", "other": "o1"})
	r := newRunner(t, execOptions(t, f, f.srv.URL, trapScript))
	ch := start(t.Context(), r)
	rendered(t, f, r)
	waitOutput(t, f, "start K=k1-value")
	f.sigs <- syscall.SIGUSR1
	waitOutput(t, f, "got-usr1")

	rereads := f.logs.Count(`msg="change hint" path=""`)
	f.put(t, "app", map[string]any{"key": "k1-value", "other": "o2"})
	waitFor(t, "rereads", func() bool { return f.logs.Count(`msg="change hint" path=""`) > rereads+3 })
	f.put(t, "app", map[string]any{"key": "k2-value"})
	waitOutput(t, f, "start K=k2-value")
	if out := f.out.String(); !strings.Contains(out, "got-term K=k1-value") || strings.Count(out, "start K=") != 2 {
		t.Errorf("child output:\n%s", out)
	}

	f.sigs <- syscall.SIGTERM // forwarded: the child exits 42, and so does Run
	if res := wait(t, f, ch); res.code != 42 || res.err != nil {
		t.Errorf("Run = %d, %v; want the child's 42", res.code, res.err)
	}
	f.noValues(t, "k1-value", "k2-value")
}

// TestExecNever: restart_on_secret_changes = "never" keeps the child
// running with its values; child_process_stdout takes its output; a child
// that exits on its own ends Run with its status.
func TestExecNever(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "n1"})
	o := execOptions(t, f, f.srv.URL, `echo "start K=$K"; read line; exit 3`)
	o.Exec.RestartOnSecretChanges = "never"
	o.Exec.ChildProcessStdout = f.path("child.out")
	stdin, feed := newPipe(t)
	o.Stdin = stdin
	r := newRunner(t, o)
	ch := start(t.Context(), r)
	waitFile(t, f.path("child.out"), "start K=n1\n")
	f.put(t, "app", map[string]any{"key": "n2"})
	waitFor(t, "the change", func() bool { return f.logs.Count("the child keeps its values") > 0 })
	feed("go\n") // the child reads its stdin, and exits 3
	if res := wait(t, f, ch); res.code != 3 || res.err != nil {
		t.Errorf("Run = %d, %v", res.code, res.err)
	}
	if got := readFile(f.path("child.out")); got != "start K=n1\n" || f.out.String() != "" {
		t.Errorf("restarted, or wrote elsewhere: %q, %q", got, f.out)
	}
}

// TestExecContextEnds: when the agent stops, the child is stopped with
// restart_stop_signal and Run returns its status; one that ignores the
// signal is killed after the grace period.
func TestExecContextEnds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "c1"})
	o := execOptions(t, f, f.srv.URL, trapScript)
	r := newRunner(t, o)
	ctx, cancel := context.WithCancel(t.Context())
	ch := start(ctx, r)
	waitOutput(t, f, "start K=c1")
	if res := stop(t, f, cancel, ch); res.code != 42 || res.err != nil || !strings.Contains(f.out.String(), "got-term") {
		t.Errorf("Run = %d, %v\n%s", res.code, res.err, f.out)
	}

	for _, tc := range []struct {
		name, script, signal string
		want                 int
	}{
		{"restart_stop_signal", `trap 'exit 5' USR1; echo "start K=$K"; while :; do sleep 0.05; done`, "SIGUSR1", 5},
		{"killed after the grace period", `trap '' TERM; echo "start K=$K"; while :; do sleep 0.05; done`, "SIGTERM", 128 + int(syscall.SIGKILL)},
	} {
		f := newFixture(t)
		f.put(t, "app", map[string]any{"key": "c2"})
		o := execOptions(t, f, f.srv.URL, tc.script)
		o.Grace = 100 * time.Millisecond
		o.Exec.RestartStopSignal = tc.signal
		ctx, cancel := context.WithCancel(t.Context())
		ch := start(ctx, newRunner(t, o))
		waitOutput(t, f, "start K=c2")
		if res := stop(t, f, cancel, ch); res.code != tc.want || res.err != nil {
			t.Errorf("%s: Run = %d, %v; want %d", tc.name, res.code, res.err, tc.want)
		}
	}
}

// TestExecOutage: while the server cannot be reached the child keeps
// running with its values; once it is back, a change made meanwhile
// restarts it.
func TestExecOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "up1"})
	proxy := testcluster.NewProxy(t, f.srv.URL)
	r := newRunner(t, execOptions(t, f, proxy.URL, trapScript))
	ch := start(t.Context(), r)
	waitOutput(t, f, "start K=up1")

	proxy.Down()
	waitFor(t, "failed renders", func() bool { return f.logs.Count("rendering failed") >= 3 })
	f.put(t, "app", map[string]any{"key": "up2"})
	if out := f.out.String(); strings.Count(out, "start K=") != 1 || strings.Contains(out, "got-term") {
		t.Fatalf("the child did not keep running:\n%s", out)
	}
	proxy.Up(t)
	waitOutput(t, f, "start K=up2")
	f.sigs <- syscall.SIGTERM
	if res := wait(t, f, ch); res.code != 42 || res.err != nil {
		t.Errorf("Run = %d, %v", res.code, res.err)
	}
}

// TestExecExitOnRetryFailure: with exit_on_retry_failure, an outage that
// outlasts the retries stops the child gracefully and fails Run.
func TestExecExitOnRetryFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "e1"})
	proxy := testcluster.NewProxy(t, f.srv.URL)
	o := execOptions(t, f, proxy.URL, trapScript)
	o.Config.ExitOnRetryFailure, o.Retries = true, 3
	r := newRunner(t, o)
	ch := start(t.Context(), r)
	waitOutput(t, f, "start K=e1")
	proxy.Down()
	res := wait(t, f, ch)
	if res.code != 1 || !errors.Is(res.err, lifetime.ErrRetriesExhausted) {
		t.Errorf("Run = %d, %v; want 1 and ErrRetriesExhausted", res.code, res.err)
	}
	if !strings.Contains(f.out.String(), "got-term K=e1") {
		t.Errorf("the child was not stopped gracefully:\n%s", f.out)
	}
}

// TestExecBeforeStart: a terminating signal while the variables cannot
// be rendered ends Run with 128+N, and no child runs; a child that cannot
// be started ends Run with 127.
func TestExecBeforeStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := newRunner(t, execOptions(t, f, f.srv.URL, trapScript)) // secret/app does not exist yet
	ch := start(t.Context(), r)
	waitFor(t, "a failed render", func() bool { return f.logs.Count("rendering failed") > 0 })
	f.sigs <- syscall.SIGINT
	res := wait(t, f, ch)
	if res.code != 130 || res.err == nil || !strings.Contains(res.err.Error(), "SIGINT") {
		t.Errorf("Run = %d, %v; want 130", res.code, res.err)
	}
	if f.out.String() != "" {
		t.Errorf("a child ran: %s", f.out)
	}

	f.put(t, "app", map[string]any{"key": "x"})
	o := execOptions(t, f, f.srv.URL, "")
	o.Exec.Command = []string{"/no/such/program"}
	res = wait(t, f, start(t.Context(), newRunner(t, o)))
	if res.code != 127 || res.err == nil {
		t.Errorf("Run = %d, %v; want 127", res.code, res.err)
	}
}
