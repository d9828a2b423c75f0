// Package render is the agent's template runner: it renders Vault Agent's
// template blocks into files, or its env_template blocks into the
// environment of a child process it supervises (process supervisor mode),
// and keeps them current for as long as it runs.
//
// # What it does
//
// Every template is rendered against one [template.Cache] over the
// agent's client ([source.Source]), so that all templates see one answer
// per secret: a username and a password rendered by two templates come
// from one lease. A file is written atomically with its template's perms,
// backup, create_dest_dirs, user and group ([template.WriteFile]); when it
// changed, the template's command runs (a failure is logged). A
// template's wait { min max } holds a change until no other has come for
// min, and no longer than max.
//
// Each secret a rendering used is then kept on a schedule of its own
// ([template.Dependency.Plan]): a renewable lease is renewed
// (sys/leases/renew) at two thirds of its life, and read anew when the
// server refuses or grants less than asked; anything else is read again
// at its time (the static-creds ttl, 85% of a lease that cannot be
// renewed, static_secret_render_interval for the rest), and the templates
// that used it are rendered again. A secret used by several templates is
// renewed or read once for all. Change events ([secretenv.Watcher]) make
// the same happen at once: a hinted path re-renders the templates that
// read it (however they spell it: see package kvpath), and the hint ""
// reads again every secret without a lease (never issuing new
// credentials).
// [Runner.TokenChanged] forgets every answer and renders everything
// again.
//
// # Failures
//
// When the server cannot be reached, files keep their content and the
// child keeps running; the failing templates are retried with backoff
// (at the longest backoff for as long as it takes) and resume by
// themselves. Missing secrets (404) and refusals (403) are retried too:
// the secret or the policy may come later. With exit_on_retry_failure,
// Retries consecutive failures of a template (or of a lease renewal) end
// Run with an error wrapping [lifetime.ErrRetriesExhausted]. A template
// error that reading again will not mend (a function failing,
// error_on_missing_key) ends Run when the template has error_fatal (the
// default), and is logged and retried otherwise.
//
// # Secrets
//
// Values go to their destinations and nowhere else: no value is logged,
// put in an error or kept on disk (the cache is in memory), and a
// variable's value reaches only the child's environment. Messages name
// templates, paths and lease ids.
package render

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/agent/secretenv"
	"github.com/vigil-secrets/vigil/internal/agent/source"
	"github.com/vigil-secrets/vigil/internal/agent/template"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/config"
)

// DefaultGrace is how long an exec child may take to stop (after
// restart_stop_signal, before SIGKILL), as in Vault Agent.
const DefaultGrace = 30 * time.Second

// Options configure a [Runner].
type Options struct {
	// Templates are the file templates.
	Templates []config.Template
	// EnvTemplates and Exec are process supervisor mode: the variables
	// and the child they are for. Exec is nil for file templates.
	EnvTemplates []config.EnvTemplate
	Exec         *config.Exec
	// Config is template_config: static_secret_render_interval (default
	// 5m), exit_on_retry_failure, max_connections_per_host (how many
	// templates render at once; default 10).
	Config config.TemplateConfig
	// Client reads secrets and renews leases. Its token is the auto-auth
	// token: the agent calls Client.SetToken and then
	// [Runner.TokenChanged] at each new login.
	Client *api.Client
	// Watchers hint that secrets may have changed (a change-events
	// subscription). They are given nil paths: the runner matches the
	// hinted data paths with its templates' secrets itself. Polling is
	// the runner's own job.
	Watchers []secretenv.Watcher
	// Retries is vault { retry { num_retries } }, resolved (0: no retry):
	// with exit_on_retry_failure, how many consecutive failures of a
	// template or a renewal end Run (at least one).
	Retries int
	// Backoff spaces the retries.
	Backoff lifetime.Backoff
	// BaseEnv is the exec child's base environment (the agent's own), and
	// the environment of templates' commands; nil for the agent's.
	BaseEnv []string
	// Stdin, Stdout and Stderr are the exec child's streams, unless exec
	// sets child_process_stdout or child_process_stderr; templates'
	// commands write to Stdout and Stderr too.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Signals are forwarded to the exec child (and not read without
	// one). A terminating one (INT, TERM, QUIT) also means the child is
	// not restarted: its exit ends Run.
	Signals <-chan os.Signal
	// Once renders every template once, writes it, and returns
	// (exit_after_auth). Failures then end Run after Retries attempts
	// whether or not exit_on_retry_failure is set: a one-shot job must
	// not wait for ever.
	Once bool
	// Grace is how long an exec child may take to stop before SIGKILL;
	// 0 is DefaultGrace.
	Grace time.Duration
	// Clock times everything; nil is the wall clock.
	Clock clock.Clock
	// Logger receives messages (never a value); nil discards them.
	Logger *slog.Logger
}

// Runner renders templates and keeps them current; see the package doc.
type Runner struct {
	o     Options
	log   *slog.Logger
	clk   clock.Clock
	src   *source.Source
	cache *template.Cache
	units []*unit
	exec  *execConfig

	interval time.Duration // static_secret_render_interval
	parallel int           // renders at once

	started  atomic.Bool
	token    chan struct{} // TokenChanged, coalesced
	rendered chan struct{}

	hintMu sync.Mutex
	hints  map[string]bool
	hinted chan struct{} // a hint is waiting, coalesced
}

// New checks the options and parses every template (reading source
// files). Errors name the template's line in the configuration and the
// line in the template.
func New(o Options) (*Runner, error) {
	if o.Client == nil {
		return nil, errors.New("render: no client")
	}
	switch {
	case o.Exec == nil && len(o.EnvTemplates) > 0:
		return nil, errors.New("render: env_template needs an exec block")
	case o.Exec != nil && len(o.EnvTemplates) == 0:
		return nil, errors.New("render: exec needs at least one env_template")
	case o.Exec != nil && len(o.Templates) > 0:
		return nil, errors.New("render: template cannot be used with env_template and exec")
	case o.Exec != nil && o.Once:
		return nil, errors.New("render: exit_after_auth cannot be used with exec: the child would never start")
	case o.Exec == nil && len(o.Templates) == 0:
		return nil, errors.New("render: no template")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	r := &Runner{
		o: o, log: o.Logger, clk: o.Clock,
		interval: o.Config.StaticSecretRenderInterval,
		parallel: o.Config.MaxConnectionsPerHost,
		token:    make(chan struct{}, 1),
		rendered: make(chan struct{}),
		hints:    map[string]bool{},
		hinted:   make(chan struct{}, 1),
	}
	if r.interval <= 0 {
		r.interval = config.DefaultStaticSecretRenderInterval
	}
	if r.parallel <= 0 {
		r.parallel = config.DefaultMaxConnectionsPerHost
	}
	for _, t := range o.Templates {
		u, err := fileUnit(t)
		if err != nil {
			return nil, err
		}
		r.units = append(r.units, u)
	}
	for _, e := range o.EnvTemplates {
		u, err := envUnit(e)
		if err != nil {
			return nil, err
		}
		r.units = append(r.units, u)
	}
	if o.Exec != nil {
		ec, err := newExecConfig(o.Exec)
		if err != nil {
			return nil, err
		}
		r.exec = ec
	}
	r.src = source.New(o.Client)
	r.cache = template.NewCache(r.src)
	return r, nil
}

// TokenChanged says the client has a new token: every cached answer is
// forgotten (dynamic credentials end with the token that got them) and
// every template rendered again. It does not block.
func (r *Runner) TokenChanged() {
	select {
	case r.token <- struct{}{}:
	default:
	}
}

// Rendered is closed once every template has rendered and been written
// (and, in process supervisor mode, the child started).
func (r *Runner) Rendered() <-chan struct{} { return r.rendered }

// hint records a watcher's hint for the loop; safe for concurrent use,
// never blocks, and coalesces bursts.
func (r *Runner) hint(path string) {
	r.hintMu.Lock()
	r.hints[path] = true
	r.hintMu.Unlock()
	select {
	case r.hinted <- struct{}{}:
	default:
	}
}

// takeHints returns the hints recorded since the last call.
func (r *Runner) takeHints() []string {
	r.hintMu.Lock()
	defer r.hintMu.Unlock()
	out := make([]string, 0, len(r.hints))
	for p := range r.hints {
		out = append(out, p)
	}
	clear(r.hints)
	return out
}

// Run renders the templates and keeps them current until ctx ends, a
// fatal error, or (with Once) the first full render; in process
// supervisor mode, until the child exits.
//
// With file templates it returns (0, nil) when ctx ends or, with Once,
// once every template is written and its command has run. In process
// supervisor mode it returns the child's exit status when the child
// exits on its own; when ctx ends it stops the child (restart_stop_signal,
// then SIGKILL after the grace period) and returns the child's status.
// A terminating signal received before the child started ends Run with
// 128+N. A fatal error (retries exhausted with exit_on_retry_failure, a
// template error with error_fatal, a child that cannot be started)
// returns 1 (126 or 127 for a child that cannot be started) and the
// error, after stopping the child.
//
// Run may be called once.
func (r *Runner) Run(ctx context.Context) (code int, err error) {
	if !r.started.CompareAndSwap(false, true) {
		return 1, errors.New("render: Run called twice")
	}
	ctx, cancel := context.WithCancel(ctx)
	l := newLoop(ctx, r)
	defer func() {
		cancel()
		l.wg.Wait()
		l.close()
	}()
	if r.exec != nil {
		if err := l.openOutputs(); err != nil {
			return 1, err
		}
	}
	for _, w := range r.o.Watchers {
		l.goroutine(func() {
			if err := w.Watch(ctx, nil, r.hint); err != nil && ctx.Err() == nil {
				r.log.Warn("a change watcher stopped; polling goes on", "error", err)
			}
		})
	}
	return l.run(ctx)
}
