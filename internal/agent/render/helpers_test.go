package render

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/testcluster"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

// TestMain stops the PostgreSQL server the database tests share.
func TestMain(m *testing.M) { pgtest.Main(m) }

// waitFor polls cond until it holds, failing after a generous bound.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// waitFile waits until the file at path holds want.
func waitFile(t *testing.T, path, want string) {
	t.Helper()
	waitFor(t, path+" to hold "+want, func() bool { return readFile(path) == want })
}

// fixture is a real server with KV v2 at secret/, a directory for
// rendered files, and where the runner's messages and its child's output
// go.
type fixture struct {
	srv  *testcluster.Server
	root *api.Client
	dir  string
	logs *testlog.Buffer
	out  *testlog.Buffer
	sigs chan os.Signal
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	srv := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root, err := api.NewClient(api.Config{Address: srv.URL, Token: srv.RootToken})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{srv: srv, root: root, dir: t.TempDir(), logs: &testlog.Buffer{}, out: &testlog.Buffer{}, sigs: make(chan os.Signal, 4)}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the runner's messages:\n%s\nthe child's output:\n%s", f.logs, f.out)
		}
	})
	return f
}

// put writes a KV v2 secret at secret/<name>.
func (f *fixture) put(t *testing.T, name string, data map[string]any) {
	t.Helper()
	if _, err := f.root.Logical().Write(context.Background(), "secret/data/"+name, map[string]any{"data": data}); err != nil {
		t.Fatalf("write secret/%s: %v", name, err)
	}
}

func (f *fixture) path(name string) string { return filepath.Join(f.dir, name) }

// options are the runner's options against addr (the server's, or a
// proxy's), with the root token, an hour between static rereads and
// short backoffs.
func (f *fixture) options(t *testing.T, addr string) Options {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: addr, Token: f.srv.RootToken, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return Options{
		Client:  c,
		Config:  config.TemplateConfig{StaticSecretRenderInterval: time.Hour, MaxConnectionsPerHost: 4},
		Backoff: lifetime.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond},
		BaseEnv: []string{"PATH=" + os.Getenv("PATH")},
		Stdout:  f.out, Stderr: f.out,
		Signals: f.sigs,
		Logger:  slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

// noValues fails the test if the runner's messages hold one of values.
func (f *fixture) noValues(t *testing.T, values ...string) {
	t.Helper()
	logs := f.logs.String()
	for _, v := range values {
		if strings.Contains(logs, v) {
			t.Errorf("the runner's messages hold the value %q:\n%s", v, logs)
		}
	}
}

type result struct {
	code int
	err  error
}

// start runs r until ctx ends and returns where its result arrives.
func start(ctx context.Context, r *Runner) <-chan result {
	ch := make(chan result, 1)
	go func() {
		code, err := r.Run(ctx)
		ch <- result{code, err}
	}()
	return ch
}

func wait(t *testing.T, f *fixture, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(60 * time.Second):
		t.Fatalf("Run did not return\nchild: %s\nlogs: %s", f.out, f.logs)
		return result{}
	}
}

// stop ends a run started with start on a context of its own.
func stop(t *testing.T, f *fixture, cancel context.CancelFunc, ch <-chan result) result {
	t.Helper()
	cancel()
	return wait(t, f, ch)
}

func rendered(t *testing.T, f *fixture, r *Runner) {
	t.Helper()
	select {
	case <-r.Rendered():
	case <-time.After(30 * time.Second):
		t.Fatalf("not rendered\nlogs: %s", f.logs)
	}
}

// fileTemplate is a template block as the configuration parser makes it.
func fileTemplate(dest, contents string) config.Template {
	return config.Template{
		TemplateOptions: config.TemplateOptions{Contents: contents, ErrorFatal: true, LeftDelimiter: "{{", RightDelimiter: "}}"},
		Destination:     dest, CreateDestDirs: true, Line: 10,
	}
}

func envTemplate(name, contents string) config.EnvTemplate {
	return config.EnvTemplate{
		TemplateOptions: config.TemplateOptions{Contents: contents, ErrorFatal: true, ErrorOnMissingKey: true, LeftDelimiter: "{{", RightDelimiter: "}}"},
		Name:            name, Line: 20,
	}
}

func newRunner(t *testing.T, o Options) *Runner {
	t.Helper()
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// newPipe returns a reader for a child's stdin and a function that writes
// to it.
func newPipe(t *testing.T) (*os.File, func(string)) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, func(s string) {
		if _, err := w.WriteString(s); err != nil {
			t.Error(err)
		}
	}
}
