package envexec

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/auth"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/agent/secretenv"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/testcluster"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitOutput(t *testing.T, out *testlog.Buffer, want string) {
	t.Helper()
	waitFor(t, "output "+want, func() bool { return strings.Contains(out.String(), want) })
}

// fixture is a server with a KV v2 secret and a Config to run a script
// against it.
type fixture struct {
	srv    *testcluster.Server
	root   *api.Client
	out    *testlog.Buffer // the child's stdout and stderr
	logs   *testlog.Buffer // vigil's messages
	sigs   chan os.Signal
	result chan runResult
}

type runResult struct {
	code int
	err  error
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root, err := api.NewClient(api.Config{Address: srv.URL, Token: srv.RootToken})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, root: root, out: &testlog.Buffer{}, logs: &testlog.Buffer{}, sigs: make(chan os.Signal, 4), result: make(chan runResult, 1)}
	f.put(t, "app", map[string]any{"key": "v1", "other": "o1"})
	return f
}

func (f *fixture) put(t *testing.T, path string, data map[string]any) {
	t.Helper()
	if _, err := f.root.Logical().Write(t.Context(), "secret/data/"+path, map[string]any{"data": data}); err != nil {
		t.Fatal(err)
	}
}

// config runs script with K set from secret/app#key, through addr
// (the server's, or a proxy's).
func (f *fixture) config(t *testing.T, addr, script string) Config {
	t.Helper()
	cl, err := api.NewClient(api.Config{Address: addr, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	backoff := lifetime.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mgr := auth.NewManager(auth.ManagerOptions{
		Method: auth.NewToken(auth.ValueCredential(secret.NewString(f.srv.RootToken))),
		Client: cl, Logger: log, Retry: lifetime.RetryOptions{Backoff: backoff},
		OnToken: func(tok auth.Token) { cl.SetToken(tok.Value.Reveal()) },
	})
	spec, err := secretenv.ParseEnv("K=secret/app#key", "-env")
	if err != nil {
		t.Fatal(err)
	}
	set, err := secretenv.New([]secretenv.Spec{spec}, secretenv.Options{Client: cl, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		Command: []string{"sh", "-c", script},
		BaseEnv: []string{"PATH=" + os.Getenv("PATH")},
		Stdout:  f.out, Stderr: f.out,
		Auth: mgr, Secrets: set,
		Signals: f.sigs,
		Backoff: backoff,
		Grace:   20 * time.Second,
		Logger:  log,
	}
}

func (f *fixture) start(t *testing.T, cfg Config) {
	t.Helper()
	go func() {
		code, err := Run(t.Context(), cfg)
		f.result <- runResult{code, err}
	}()
}

func (f *fixture) wait(t *testing.T) runResult {
	t.Helper()
	select {
	case r := <-f.result:
		return r
	case <-time.After(60 * time.Second):
		t.Fatalf("Run did not return\nchild: %s\nlogs: %s", f.out, f.logs)
		return runResult{}
	}
}

// A child that reports its variable, USR1 and TERM (exiting 42 on TERM).
const trapScript = `trap 'echo got-usr1' USR1; trap 'echo "got-term K=$K"; exit 42' TERM; echo "start K=$K"; while :; do sleep 0.05; done`

func TestSignalsAndExitCode(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.start(t, f.config(t, f.srv.URL, trapScript))
	waitOutput(t, f.out, "start K=v1")
	f.sigs <- syscall.SIGUSR1
	waitOutput(t, f.out, "got-usr1")
	f.sigs <- syscall.SIGTERM
	r := f.wait(t)
	if r.code != 42 || r.err != nil {
		t.Errorf("Run = %d, %v; want the child's 42", r.code, r.err)
	}
	if strings.Contains(f.logs.String(), "v1") {
		t.Errorf("vigil's messages hold a value:\n%s", f.logs)
	}

	// Killed by a signal: 128+N, as a shell reports it.
	f = newFixture(t)
	f.start(t, f.config(t, f.srv.URL, `kill -KILL $$`))
	if r := f.wait(t); r.code != 137 || r.err != nil {
		t.Errorf("a child killed by SIGKILL: %d, %v", r.code, r.err)
	}
}

// TestWatchRestarts: with Watch, a new value restarts the child (TERM,
// then a new start with it); a new version with the same value does not;
// a child that ignores the stop signal is killed after the grace period.
func TestWatchRestarts(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	cfg := f.config(t, f.srv.URL, trapScript)
	cfg.Watch = true
	cfg.Watchers = []secretenv.Watcher{secretenv.Poller{Interval: 20 * time.Millisecond}}
	f.start(t, cfg)
	waitOutput(t, f.out, "start K=v1")
	polls := func() int { return strings.Count(f.logs.String(), `msg="secrets read again"`) }
	before := polls()
	f.put(t, "app", map[string]any{"key": "v1", "other": "o2"}) // a new version, K unchanged
	waitFor(t, "polls after the unrelated change", func() bool { return polls() >= before+3 })
	if strings.Count(f.out.String(), "start K=") != 1 {
		t.Fatalf("a new version with the same value restarted the child:\n%s", f.out)
	}
	f.put(t, "app", map[string]any{"key": "v2", "other": "o2"})
	waitOutput(t, f.out, "start K=v2")
	if out := f.out.String(); !strings.Contains(out, "got-term K=v1") || strings.Count(out, "start K=") != 2 {
		t.Errorf("child output:\n%s", out)
	}
	f.sigs <- syscall.SIGTERM
	if r := f.wait(t); r.code != 42 {
		t.Errorf("Run = %d, %v", r.code, r.err)
	}

	f = newFixture(t)
	cfg = f.config(t, f.srv.URL, `trap '' TERM; echo "start K=$K"; while :; do sleep 0.05; done`)
	cfg.Watch = true
	cfg.Watchers = []secretenv.Watcher{secretenv.Poller{Interval: 20 * time.Millisecond}}
	cfg.Grace = 100 * time.Millisecond
	f.start(t, cfg)
	waitOutput(t, f.out, "start K=v1")
	f.put(t, "app", map[string]any{"key": "v2"})
	waitOutput(t, f.out, "start K=v2")
	if !strings.Contains(f.logs.String(), "killing it") {
		t.Errorf("no kill after the grace period:\n%s", f.logs)
	}
	f.sigs <- syscall.SIGKILL // forwarded: ends the child
	if r := f.wait(t); r.code != 137 {
		t.Errorf("Run = %d, %v", r.code, r.err)
	}
}

// TestOutage: while the server cannot be reached the child keeps running
// with its values and vigil retries; once it is back, a change made
// meanwhile restarts the child.
func TestOutage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	proxy := testcluster.NewProxy(t, f.srv.URL)
	cfg := f.config(t, proxy.URL, trapScript)
	cfg.Watch = true
	cfg.Watchers = []secretenv.Watcher{secretenv.Poller{Interval: 20 * time.Millisecond}}
	f.start(t, cfg)
	waitOutput(t, f.out, "start K=v1")

	proxy.Down()
	waitFor(t, "failed reads during the outage", func() bool {
		return strings.Count(f.logs.String(), "reading the secrets failed") >= 3
	})
	f.put(t, "app", map[string]any{"key": "v2"}) // written while vigil run cannot see the server
	select {
	case r := <-f.result:
		t.Fatalf("Run returned during the outage: %d, %v", r.code, r.err)
	default:
	}
	if strings.Count(f.out.String(), "start K=") != 1 || strings.Contains(f.out.String(), "got-term") {
		t.Fatalf("the child did not keep running through the outage:\n%s", f.out)
	}

	proxy.Up(t)
	waitOutput(t, f.out, "start K=v2")
	f.sigs <- syscall.SIGTERM
	if r := f.wait(t); r.code != 42 || r.err != nil {
		t.Errorf("Run = %d, %v", r.code, r.err)
	}
}

// TestExitOnRetryFailure: with a retry limit, an outage that outlasts it
// stops the child and fails the run.
func TestExitOnRetryFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	proxy := testcluster.NewProxy(t, f.srv.URL)
	cfg := f.config(t, proxy.URL, trapScript)
	cfg.Watch = true
	cfg.Watchers = []secretenv.Watcher{secretenv.Poller{Interval: 20 * time.Millisecond}}
	cfg.Retries = 3
	f.start(t, cfg)
	waitOutput(t, f.out, "start K=v1")
	proxy.Down()
	r := f.wait(t)
	if r.code != 1 || !errors.Is(r.err, lifetime.ErrRetriesExhausted) {
		t.Errorf("Run = %d, %v; want 1 and ErrRetriesExhausted", r.code, r.err)
	}
	if !strings.Contains(f.out.String(), "got-term") {
		t.Errorf("the child was not stopped gracefully:\n%s", f.out)
	}
}

// TestInterruptedBeforeStart: a terminating signal while vigil waits for
// the server ends the run with 128+N, and no child is started.
func TestInterruptedBeforeStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	proxy := testcluster.NewProxy(t, f.srv.URL)
	proxy.Down()
	f.start(t, f.config(t, proxy.URL, trapScript))
	waitFor(t, "a failed login", func() bool { return strings.Contains(f.logs.String(), "login failed; retrying") })
	f.sigs <- syscall.SIGINT
	r := f.wait(t)
	if r.code != 130 || r.err == nil || !strings.Contains(r.err.Error(), "SIGINT") {
		t.Errorf("Run = %d, %v; want 130", r.code, r.err)
	}
	if f.out.String() != "" {
		t.Errorf("a child ran: %s", f.out)
	}
}

// TestContextEnds: cancelling Run's context stops the child gracefully.
func TestContextEnds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	cfg := f.config(t, f.srv.URL, trapScript)
	go func() {
		code, err := Run(ctx, cfg)
		f.result <- runResult{code, err}
	}()
	waitOutput(t, f.out, "start K=v1")
	cancel()
	r := f.wait(t)
	if !errors.Is(r.err, context.Canceled) || !strings.Contains(f.out.String(), "got-term") {
		t.Errorf("Run = %d, %v\n%s", r.code, r.err, f.out)
	}
}
