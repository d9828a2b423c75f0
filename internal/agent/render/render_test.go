package render

import (
	"context"
	"errors"
	"os"
	"os/user"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/agent/secretenv"
	"github.com/vigil-secrets/vigil/internal/agent/watch"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

const kvTemplate = `{{ with secret "%s" }}key={{ .Data.data.key }} v{{ .Data.metadata.version }}{{ end }}`

func kv(path string) string { return strings.Replace(kvTemplate, "%s", path, 1) }

// TestRender renders a KV v2 secret named both ways into files with their
// modes, creating directories, and closes Rendered.
func TestRender(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "first-value"})
	o := f.options(t, f.srv.URL)
	api := fileTemplate(f.path("api/app.conf"), kv("secret/data/app"))
	api.Perms = 0o600
	cli := fileTemplate(f.path("cli/app.conf"), kv("secret/app"))
	// Owned by the test's own user, by number, and group, by name.
	cli.User = strconv.Itoa(os.Getuid())
	if g, err := user.LookupGroupId(strconv.Itoa(os.Getgid())); err == nil {
		cli.Group = g.Name
	}
	o.Templates = []config.Template{api, cli}
	r := newRunner(t, o)
	ctx, cancel := context.WithCancel(t.Context())
	ch := start(ctx, r)
	rendered(t, f, r)
	for _, p := range []string{f.path("api/app.conf"), f.path("cli/app.conf")} {
		if got := readFile(p); got != "key=first-value v1" {
			t.Errorf("%s holds %q", p, got)
		}
	}
	if st, err := os.Stat(f.path("api/app.conf")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("perms: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(f.path("cli/app.conf")); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("default perms: %v %v", st.Mode(), err)
	}
	if res := stop(t, f, cancel, ch); res.code != 0 || res.err != nil {
		t.Errorf("Run = %d, %v", res.code, res.err)
	}
	f.noValues(t, "first-value")
}

// TestEvents: with change events and an hour between static rereads, a
// KV write reaches a template that names the secret the CLI's way
// (secret/app, while the event says secret/data/app) within moments; a
// new version with the same value rewrites nothing, so the template's
// command runs only on a real change.
func TestEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "v1-value"})
	f.put(t, "other", map[string]any{"key": "o1"})
	o := f.options(t, f.srv.URL)
	o.Watchers = []secretenv.Watcher{watch.Events{Client: o.Client, Backoff: o.Backoff}}
	tmpl := fileTemplate(f.path("app.conf"), `{{ with secret "secret/app" }}{{ .Data.data.key }}{{ end }}`)
	tmpl.Exec = &config.TemplateExec{Command: []string{"echo ran >> " + f.path("ran")}, Timeout: 10 * time.Second}
	o.Templates = []config.Template{tmpl, fileTemplate(f.path("other.conf"), kv("secret/other"))}
	r := newRunner(t, o)
	ctx, cancel := context.WithCancel(t.Context())
	ch := start(ctx, r)
	rendered(t, f, r)
	waitFile(t, f.path("ran"), "ran\n")
	// Wait for the subscription: it opens with a hint "" of its own.
	waitFor(t, "the subscription", func() bool { return f.logs.Count(`msg="change hint" path=""`) > 0 })

	hints := f.logs.Count(`msg="change hint" path=secret/data/app`)
	f.put(t, "app", map[string]any{"key": "v1-value", "unused": "x"}) // a new version, the same rendering
	waitFor(t, "the hint of the unchanged write", func() bool { return f.logs.Count(`msg="change hint" path=secret/data/app`) > hints })

	begin := time.Now()
	f.put(t, "app", map[string]any{"key": "v2-value"})
	waitFile(t, f.path("app.conf"), "v2-value")
	t.Logf("the change was rendered %s after the write (static rereads: every hour)", time.Since(begin))
	// Renders are taken in order, and each write is logged once made:
	// when v2's is logged, the unchanged write's render has long been
	// taken, and it wrote nothing.
	written := func() int { return f.logs.Count(`msg="template written" template=` + f.path("app.conf")) }
	waitFor(t, "v2 written", func() bool { return written() >= 2 })
	if n := written(); n != 2 {
		t.Errorf("app.conf written %d times, want 2 (the first rendering and v2)\n%s", n, f.logs)
	}
	waitFile(t, f.path("ran"), "ran\nran\n")
	if got := readFile(f.path("other.conf")); got != "key=o1 v1" {
		t.Errorf("other.conf: %q", got)
	}
	stop(t, f, cancel, ch)
	f.noValues(t, "v1-value", "v2-value")
}

// TestStaticInterval: without hints, secrets without a lease are read
// again every static_secret_render_interval (a fake clock moves it); a
// dependency a template no longer uses is dropped; wait holds a change
// until it has been quiet for min.
func TestStaticInterval(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "a1"})
	f.put(t, "flag", map[string]any{"use": "a"})
	f.put(t, "a", map[string]any{"v": "from-a"})
	f.put(t, "b", map[string]any{"v": "from-b"})
	clk := clock.NewFake(time.Now())
	o := f.options(t, f.srv.URL)
	o.Clock = clk
	o.Config.StaticSecretRenderInterval = time.Minute
	waited := fileTemplate(f.path("waited.conf"), kv("secret/app"))
	waited.Wait = &config.Wait{Min: 10 * time.Second, Max: 40 * time.Second}
	o.Templates = []config.Template{
		fileTemplate(f.path("app.conf"), kv("secret/app")),
		waited,
		fileTemplate(f.path("flag.conf"), `{{ with secret "secret/flag" }}{{ if eq .Data.data.use "a" }}{{ with secret "secret/a" }}{{ .Data.data.v }}{{ end }}{{ else }}{{ with secret "secret/b" }}{{ .Data.data.v }}{{ end }}{{ end }}{{ end }}`),
	}
	r := newRunner(t, o)
	ctx, cancel := context.WithCancel(t.Context())
	ch := start(ctx, r)
	rendered(t, f, r)
	waitFile(t, f.path("waited.conf"), "key=a1 v1") // the first rendering is not held
	waitFile(t, f.path("flag.conf"), "from-a")

	f.put(t, "app", map[string]any{"key": "a2"})
	f.put(t, "flag", map[string]any{"use": "b"})
	clk.Advance(59 * time.Second)
	if got := readFile(f.path("app.conf")); got != "key=a1 v1" {
		t.Fatalf("read again before the interval: %q", got)
	}
	clk.Advance(time.Second)
	waitFile(t, f.path("app.conf"), "key=a2 v2")
	waitFile(t, f.path("flag.conf"), "from-b")
	waitFor(t, "secret/a dropped", func() bool { return f.logs.Count(`msg="a secret is no longer used" path=secret/a`) == 1 })
	// The change is held by wait until it has been quiet for 10s.
	waitFor(t, "the held change", func() bool { return f.logs.Count("waiting for quiescence") == 1 })
	if got := readFile(f.path("waited.conf")); got != "key=a1 v1" {
		t.Fatalf("written before min: %q", got)
	}
	clk.Advance(10 * time.Second)
	waitFile(t, f.path("waited.conf"), "key=a2 v2")
	stop(t, f, cancel, ch)
	f.noValues(t, "from-a", "from-b")
}

// TestOutageFile: while the server cannot be reached, files keep their
// content and the runner retries; once it is back, a change made
// meanwhile is rendered.
func TestOutageFile(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "before"})
	proxy := testcluster.NewProxy(t, f.srv.URL)
	o := f.options(t, proxy.URL)
	o.Config.StaticSecretRenderInterval = 20 * time.Millisecond
	o.Templates = []config.Template{fileTemplate(f.path("app.conf"), kv("secret/app"))}
	r := newRunner(t, o)
	ctx, cancel := context.WithCancel(t.Context())
	ch := start(ctx, r)
	rendered(t, f, r)

	proxy.Down()
	waitFor(t, "failed renders", func() bool { return f.logs.Count("rendering failed") >= 3 })
	f.put(t, "app", map[string]any{"key": "during"})
	if got := readFile(f.path("app.conf")); got != "key=before v1" {
		t.Fatalf("the file changed during the outage: %q", got)
	}
	select {
	case res := <-ch:
		t.Fatalf("Run returned during the outage: %v", res)
	default:
	}
	proxy.Up(t)
	waitFile(t, f.path("app.conf"), "key=during v2")
	if res := stop(t, f, cancel, ch); res.code != 0 || res.err != nil {
		t.Errorf("Run = %v", res)
	}
	f.noValues(t, "before", "during")
}

// TestExitOnRetryFailure: with exit_on_retry_failure, an outage that
// outlasts the retries ends Run.
func TestExitOnRetryFailure(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "v"})
	proxy := testcluster.NewProxy(t, f.srv.URL)
	o := f.options(t, proxy.URL)
	o.Config.StaticSecretRenderInterval = 20 * time.Millisecond
	o.Config.ExitOnRetryFailure = true
	o.Retries = 3
	o.Templates = []config.Template{fileTemplate(f.path("app.conf"), kv("secret/app"))}
	r := newRunner(t, o)
	ch := start(t.Context(), r)
	rendered(t, f, r)
	proxy.Down()
	res := wait(t, f, ch)
	if res.code != 1 || !errors.Is(res.err, lifetime.ErrRetriesExhausted) {
		t.Fatalf("Run = %d, %v; want 1 and ErrRetriesExhausted", res.code, res.err)
	}
	if !strings.Contains(res.err.Error(), "after 3 attempts") {
		t.Errorf("error: %v", res.err)
	}
}

// TestOnce renders every template once, runs the commands of those that
// changed, and returns; a secret that does not come ends it after the
// retries, exit_on_retry_failure or not.
func TestOnce(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "once"})
	o := f.options(t, f.srv.URL)
	o.Once = true
	tmpl := fileTemplate(f.path("app.conf"), kv("secret/app"))
	tmpl.Exec = &config.TemplateExec{Command: []string{"sh", "-c", "sleep 0.2; echo ran > " + f.path("ran")}}
	o.Templates = []config.Template{tmpl, fileTemplate(f.path("cli.conf"), kv("secret/data/app"))}
	r := newRunner(t, o)
	if res := wait(t, f, start(t.Context(), r)); res.code != 0 || res.err != nil {
		t.Fatalf("Run = %v", res)
	}
	if readFile(f.path("app.conf")) != "key=once v1" || readFile(f.path("cli.conf")) != "key=once v1" || readFile(f.path("ran")) != "ran\n" {
		t.Errorf("after Once: %q %q %q", readFile(f.path("app.conf")), readFile(f.path("cli.conf")), readFile(f.path("ran")))
	}

	o = f.options(t, f.srv.URL)
	o.Once, o.Retries = true, 2
	o.Templates = []config.Template{fileTemplate(f.path("missing.conf"), kv("secret/missing"))}
	r = newRunner(t, o)
	res := wait(t, f, start(t.Context(), r))
	if res.code != 1 || !errors.Is(res.err, lifetime.ErrRetriesExhausted) {
		t.Fatalf("Run = %d, %v", res.code, res.err)
	}
	if _, err := os.Stat(f.path("missing.conf")); err == nil {
		t.Error("a file was written for a missing secret")
	}
}

// TestTemplateErrors: an error that reading again cannot mend ends Run
// when the template has error_fatal, with a message naming the template
// and never a value; without error_fatal it is logged and retried, and
// the other templates render.
func TestTemplateErrors(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.put(t, "app", map[string]any{"key": "secret-value"})
	bad := fileTemplate(f.path("bad.conf"), "line one\n{{ with secret \"secret/app\" }}{{ .Data.data.nokey }}{{ end }}")
	bad.ErrorOnMissingKey = true
	bad.Line = 33

	o := f.options(t, f.srv.URL)
	o.Templates = []config.Template{bad}
	res := wait(t, f, start(t.Context(), newRunner(t, o)))
	if res.code != 1 || res.err == nil {
		t.Fatalf("Run = %d, %v", res.code, res.err)
	}
	msg := res.err.Error()
	if !strings.Contains(msg, f.path("bad.conf")) || !strings.Contains(msg, "line 33") || !strings.Contains(msg, "nokey") || strings.Contains(msg, "secret-value") {
		t.Errorf("error: %v", msg)
	}

	bad.ErrorFatal = false
	o = f.options(t, f.srv.URL)
	o.Templates = []config.Template{bad, fileTemplate(f.path("good.conf"), kv("secret/app"))}
	ctx, cancel := context.WithCancel(t.Context())
	ch := start(ctx, newRunner(t, o))
	waitFile(t, f.path("good.conf"), "key=secret-value v1")
	waitFor(t, "retries of the template error", func() bool { return f.logs.Count("template error; retrying") >= 3 })
	if res := stop(t, f, cancel, ch); res.code != 0 || res.err != nil {
		t.Errorf("Run = %v", res)
	}
	f.noValues(t, "secret-value")
}

// TestNew: errors name the template's line in the configuration and the
// line in the template.
func TestNew(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	o := f.options(t, f.srv.URL)
	bad := fileTemplate(f.path("x"), "fine\n{{ nope }}")
	bad.Line = 7
	o.Templates = []config.Template{bad}
	_, err := New(o)
	if err == nil || !strings.Contains(err.Error(), "line 7 of the configuration") || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("parse error: %v", err)
	}
	missing := fileTemplate(f.path("x"), "")
	missing.Contents, missing.Source = "", f.path("no-such-source")
	o.Templates = []config.Template{missing}
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "no-such-source") {
		t.Errorf("missing source: %v", err)
	}
	src := f.path("source.tmpl")
	if err := os.WriteFile(src, []byte(`{{ with secret "secret/app" }}{{ .Data.data.key }}{{ end }}`), 0o600); err != nil {
		t.Fatal(err)
	}
	missing.Source = src
	o.Templates = []config.Template{missing}
	if _, err := New(o); err != nil {
		t.Errorf("source: %v", err)
	}
	unknown := fileTemplate(f.path("x"), "x")
	unknown.User = "no-such-user-here"
	o.Templates = []config.Template{unknown}
	if _, err := New(o); err == nil || !strings.Contains(err.Error(), "no-such-user-here") {
		t.Errorf("unknown user: %v", err)
	}
	o.Templates = nil
	o.EnvTemplates = []config.EnvTemplate{envTemplate("K", "x")}
	if _, err := New(o); err == nil {
		t.Error("env_template without exec")
	}
	o.Exec = &config.Exec{Command: []string{"true"}, RestartOnSecretChanges: "always", RestartStopSignal: "SIGTERM"}
	o.Once = true
	if _, err := New(o); err == nil {
		t.Error("exec with Once")
	}
	o.Once = false
	o.Exec.RestartStopSignal = "SIGNOPE"
	if _, err := New(o); err == nil {
		t.Error("unknown stop signal")
	}
}
