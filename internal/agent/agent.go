// Package agent is `vigil agent`: a process that runs beside a workload,
// proves who the workload is (auto-auth), and delivers its secrets where
// the workload already looks for them, without code changes. It reads
// Vault Agent's configuration file as is (see [config.Agent]):
//
//   - auto_auth logs in with AppRole files, a JWT or Kubernetes
//     service-account token file, or a token file, keeps the token renewed,
//     logs in again when renewal stops helping, and writes the token to
//     its file sinks (or, with wrap_ttl on the method, writes the wrapped
//     login to its one sink and holds no token);
//   - template blocks render consul-template templates to files, and
//     env_template blocks with exec render into the environment of a
//     supervised child process (package render): both are rendered again
//     within a second of a change event, or when a lease or the static
//     render interval says so;
//   - listener blocks with api_proxy and cache serve the Vault API
//     locally (package proxy), putting the agent's token on requests and
//     sharing leased answers among the node's processes.
//
// When the server cannot be reached, rendered files keep their content,
// the child keeps running and every part retries with backoff, resuming by
// itself; template_config's exit_on_retry_failure and the method's
// exit_on_err are for workloads that prefer to fail.
//
// Secrets go only where the configuration sends them (template
// destinations, sinks, the child's environment): never into a log line,
// an error or a cache on disk.
package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/agent/auth"
	"github.com/vigil-secrets/vigil/internal/agent/child"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/agent/proxy"
	"github.com/vigil-secrets/vigil/internal/agent/render"
	"github.com/vigil-secrets/vigil/internal/agent/secretenv"
	"github.com/vigil-secrets/vigil/internal/agent/watch"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Options is what [Run] runs.
type Options struct {
	// Config is the agent's configuration, validated.
	Config *config.Agent
	// Getenv reads the environment (VIGIL_ADDR and the other client
	// variables override the vault block; VIGIL_TOKEN is the token when
	// there is no auto_auth block). Nil reads none.
	Getenv func(string) string
	// BaseEnv is the environment the exec child's variables are added to.
	BaseEnv []string
	// Stdin, Stdout and Stderr are the exec child's streams.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Signals are the signals the agent receives (the caller subscribes to
	// child.Forwarded()): with an exec child running they are forwarded to
	// it, and the agent ends when it does; otherwise INT, TERM and QUIT
	// stop the agent.
	Signals <-chan os.Signal
	// Clock times renewals and renders; nil is the wall clock.
	Clock clock.Clock
	// Logger receives the agent's messages (never a secret); nil discards
	// them.
	Logger *slog.Logger
}

// Errors the agent ends with.
var (
	// ErrNoToken: templates need a token, and there is neither an
	// auto_auth block nor VIGIL_TOKEN.
	ErrNoToken = errors.New("agent: templates need a token: add an auto_auth block, or set VIGIL_TOKEN")
	// errStopped is the cause of a stop asked for by a signal or by
	// POST /agent/v1/quit: a clean exit.
	errStopped = errors.New("agent: stopped")
)

// Run runs the agent until ctx ends, a signal or /agent/v1/quit stops it,
// the exec child exits (its status is returned), or a part fails for good
// (code 1 and the error). With exit_after_auth it logs in, writes the
// sinks and renders every template once, then returns.
func Run(ctx context.Context, o Options) (int, error) {
	a, err := newAgent(o)
	if err != nil {
		return 1, err
	}
	return a.run(ctx)
}

// agent is one Run.
type agent struct {
	o    Options
	cfg  *config.Agent
	log  *slog.Logger
	cl   clients
	mgr  *auth.Manager // nil without a token
	rnd  *render.Runner
	px   *proxy.Proxy
	snk  *sinks
	exec bool // process supervisor mode: the child's status is the agent's

	// fwd carries the signals for the exec child to the runner.
	fwd chan os.Signal

	mu         sync.Mutex
	rndStarted bool                    // rnd.Run was called: new tokens go to it
	stop       context.CancelCauseFunc // ends the run (POST /agent/v1/quit)
}

func newAgent(o Options) (*agent, error) {
	if o.Getenv == nil {
		o.Getenv = func(string) string { return "" }
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := o.Config
	a := &agent{o: o, cfg: cfg, log: log, exec: cfg.Exec != nil, fwd: make(chan os.Signal, 8)}
	cl, envToken, err := newClients(cfg, o.Getenv)
	if err != nil {
		return nil, err
	}
	a.cl = cl

	var m auth.Method
	var wrapTTL time.Duration
	exitOnErr := false
	backoff := lifetime.Backoff{Min: config.DefaultMinBackoff, Max: config.DefaultMaxBackoff}
	switch {
	case cfg.AutoAuth != nil:
		if m, err = method(cfg.AutoAuth.Method); err != nil {
			return nil, err
		}
		exitOnErr, wrapTTL = cfg.AutoAuth.Method.ExitOnError, cfg.AutoAuth.Method.WrapTTL
		backoff = lifetime.Backoff{Min: cfg.AutoAuth.Method.MinBackoff, Max: cfg.AutoAuth.Method.MaxBackoff}
		a.snk = &sinks{list: cfg.AutoAuth.Sinks, client: a.cl.auth}
	case envToken != "":
		m = auth.NewToken(auth.ValueCredential(secret.NewString(envToken)))
	}
	if m != nil {
		a.mgr = auth.NewManager(auth.ManagerOptions{
			Method:        m,
			Client:        a.cl.auth,
			Logger:        log.With("component", "auto-auth"),
			Retry:         lifetime.RetryOptions{Clock: o.Clock, Backoff: backoff, RetryRefusals: true},
			FailFastLogin: exitOnErr,
			OnToken:       a.tokenChanged,
			WrapTTL:       wrapTTL,
		})
	}

	// Templates and listeners are checked before the first login, so that
	// a mistake in them is reported at once. Retries of renders and event
	// subscriptions wait at most a minute: a workload waits for them.
	retryBackoff := lifetime.Backoff{Min: config.DefaultMinBackoff, Max: time.Minute}
	if len(cfg.Templates) > 0 || len(cfg.EnvTemplates) > 0 {
		if a.mgr == nil {
			return nil, ErrNoToken
		}
		var watchers []secretenv.Watcher
		if !cfg.ExitAfterAuth {
			// Change events: a new KV version or a rotation re-renders
			// within moments; static_secret_render_interval is the
			// fallback.
			watchers = append(watchers, watch.Events{
				Client:  a.cl.templating,
				Backoff: retryBackoff,
				Clock:   o.Clock,
				Logger:  log.With("component", "events"),
			})
		}
		a.rnd, err = render.New(render.Options{
			Templates:    cfg.Templates,
			EnvTemplates: cfg.EnvTemplates,
			Exec:         cfg.Exec,
			Config:       cfg.TemplateConfig,
			Client:       a.cl.templating,
			Watchers:     watchers,
			Retries:      cfg.Vault.NumRetries,
			Backoff:      retryBackoff,
			BaseEnv:      o.BaseEnv,
			Stdin:        o.Stdin,
			Stdout:       o.Stdout,
			Stderr:       o.Stderr,
			Signals:      a.fwd,
			Once:         cfg.ExitAfterAuth,
			Clock:        o.Clock,
			Logger:       log.With("component", "templates"),
		})
		if err != nil {
			return nil, err
		}
	}
	if len(cfg.Listeners) > 0 && !cfg.ExitAfterAuth {
		po := proxy.Options{
			Listeners:  cfg.Listeners,
			Cache:      cfg.Cache != nil,
			Address:    a.cl.proxying.Address(),
			HTTPClient: a.cl.proxying.HTTPClient(),
			Clock:      o.Clock,
			Logger:     log.With("component", "proxy"),
		}
		if p := cfg.APIProxy; p != nil {
			po.UseAutoAuthToken, po.ForceAutoAuthToken = p.UseAutoAuthToken, p.ForceAutoAuthToken
		}
		if cfg.AutoAuth != nil {
			po.Token = func() secret.String {
				t, _ := a.mgr.Token()
				return t.Value
			}
		}
		po.Quit = a.quit
		if a.px, err = proxy.New(po); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// tokenChanged is the manager's OnToken: the new token goes to the
// template client and the sinks (the proxy asks the manager), and the
// templates are rendered again with it.
func (a *agent) tokenChanged(t auth.Token) {
	a.cl.templating.SetToken(t.Value.Reveal())
	a.mu.Lock()
	started := a.rndStarted
	a.mu.Unlock()
	if a.snk != nil {
		for _, err := range a.snk.write(t) {
			a.log.Error("could not write the token to a sink; it is written again at the next login", "error", err)
		}
		if len(a.snk.list) > 0 {
			a.log.Info("token written to the sinks", "accessor", t.Accessor, "sinks", len(a.snk.list))
		}
	}
	// The runner starts with the token the client holds; only a later
	// one makes it forget its answers (and issue dynamic secrets again).
	if a.rnd != nil && started {
		a.rnd.TokenChanged()
	}
}

// quit is POST /agent/v1/quit: a clean stop.
func (a *agent) quit() {
	a.mu.Lock()
	stop := a.stop
	a.mu.Unlock()
	if stop != nil {
		a.log.Info("stopping: asked through /agent/v1/quit")
		stop(errStopped)
	}
}

// result is how one part of the agent ended.
type result struct {
	part string
	code int
	err  error
}

func (a *agent) run(parent context.Context) (int, error) {
	ctx, cancel := context.WithCancelCause(parent)
	var wg sync.WaitGroup
	defer func() {
		// Every part ends with the context: end it, then wait for them.
		cancel(errStopped)
		wg.Wait()
	}()
	a.mu.Lock()
	a.stop = cancel
	a.mu.Unlock()
	if a.cfg.PidFile != "" {
		if err := os.WriteFile(a.cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			return 1, fmt.Errorf("agent: writing the pid file: %w", err)
		}
		defer os.Remove(a.cfg.PidFile)
	}

	results := make(chan result, 4)
	if a.px != nil {
		wg.Go(func() {
			err := a.px.Serve(ctx)
			results <- result{part: "proxy", code: 1, err: err}
		})
		for _, addr := range a.px.Addrs() {
			a.log.Info("serving the Vault API", "listener", addr.Network()+" "+addr.String())
		}
	}
	wg.Go(func() { a.routeSignals(ctx, cancel) })

	if a.mgr != nil {
		if err := a.mgr.Login(ctx); err != nil {
			if ctx.Err() != nil {
				return 0, nil
			}
			return 1, fmt.Errorf("agent: logging in: %w", err)
		}
	}
	a.mu.Lock()
	a.rndStarted = true
	a.mu.Unlock()
	if a.cfg.ExitAfterAuth {
		if a.rnd != nil {
			if code, err := a.rnd.Run(ctx); err != nil || code != 0 {
				return max(code, 1), err
			}
		}
		a.log.Info("exit_after_auth: done")
		return 0, nil
	}
	if a.mgr != nil {
		wg.Go(func() {
			err := a.mgr.Run(ctx)
			results <- result{part: "auto-auth", code: 1, err: err}
		})
	}
	if a.rnd != nil {
		wg.Go(func() {
			code, err := a.rnd.Run(ctx)
			results <- result{part: "templates", code: code, err: err}
		})
	}

	var r result
	select {
	case r = <-results:
	case <-ctx.Done():
	}
	stopping := ctx.Err() != nil
	cancel(errStopped)
	switch {
	case r.part == "templates" && a.exec && (r.err == nil || stopping && errors.Is(r.err, context.Canceled)):
		// The child exited: the agent ends with its status.
		return r.code, nil
	case r.part == "" || stopping && (r.err == nil || errors.Is(r.err, context.Canceled)):
		// Stopped by a signal, /agent/v1/quit or the caller. An exec
		// child is stopped by its runner, whose status is the agent's.
		for a.exec && r.part != "templates" {
			r = <-results
		}
		if a.exec {
			return r.code, nil
		}
		return 0, nil
	case r.err == nil:
		return 1, fmt.Errorf("agent: the %s part stopped", r.part)
	}
	return max(r.code, 1), fmt.Errorf("agent: %s: %w", r.part, r.err)
}

// routeSignals sends the signals the agent gets to the exec child once it
// runs; otherwise a terminating signal stops the agent.
func (a *agent) routeSignals(ctx context.Context, cancel context.CancelCauseFunc) {
	var started <-chan struct{}
	if a.exec && a.rnd != nil {
		started = a.rnd.Rendered()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case sig, ok := <-a.o.Signals:
			if !ok {
				return
			}
			if started != nil {
				select {
				case <-started:
					select {
					case a.fwd <- sig:
					default:
						a.log.Warn("signal dropped: the child has not taken the previous ones", "signal", child.SignalName(sig))
					}
					continue
				default:
				}
			}
			if child.Terminating(sig) {
				a.log.Info("stopping", "signal", child.SignalName(sig))
				cancel(errStopped)
				return
			}
			a.log.Info("signal ignored", "signal", child.SignalName(sig))
		}
	}
}
