// Package envexec runs a command with secrets in its environment and
// keeps it supplied: the loop behind `vigil run` (Vault has no `vault
// run`; envconsul and Vault Agent's process supervisor mode are its
// counterparts).
//
// [Run] logs in ([auth.Manager]), reads the secrets ([secretenv.Set]),
// starts the command with them added to its own environment, forwards the
// signals it receives, and returns the command's exit status. Meanwhile it
// renews the token and the leases of dynamic credentials and, with Watch,
// restarts the command gracefully (a signal, a grace period, SIGKILL, a
// new start) when a secret it uses changes: a new KV version with a new
// value, rotated static credentials, dynamic credentials replaced because
// their lease could not be kept.
//
// When the server cannot be reached the command keeps running with the
// values it has, and every loop retries with backoff and resumes by
// itself. With a retry limit ([Config.Retries]), exhausting it stops the
// command and makes Run fail, for jobs that prefer to fail.
//
// No value is ever written to disk, logged or printed: the child's
// environment is the only place they go.
package envexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-secrets/vigil/internal/agent/auth"
	"github.com/vigil-secrets/vigil/internal/agent/child"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/agent/secretenv"
	"github.com/vigil-secrets/vigil/internal/clock"
)

// Defaults.
const (
	DefaultGrace = 10 * time.Second
	// cleanupTimeout bounds the revocations at the end.
	cleanupTimeout = 10 * time.Second
)

// ErrRetriesExhausted is returned (wrapped) when a retry limit was set
// and reached.
var ErrRetriesExhausted = lifetime.ErrRetriesExhausted

// Config is what [Run] runs and how.
type Config struct {
	// Command is the program and its arguments.
	Command []string
	// BaseEnv is the environment the variables are added to (vigil's
	// own); a variable of the same name is replaced.
	BaseEnv []string
	// Stdin, Stdout and Stderr are the command's streams.
	Stdin          io.Reader
	Stdout, Stderr io.Writer

	// Auth gets and keeps the token; not yet logged in.
	Auth *auth.Manager
	// Secrets are the secrets to inject; not yet loaded. Their client's
	// token must follow Auth's (OnToken).
	Secrets *secretenv.Set

	// Watch restarts the command when a secret it uses changes.
	Watch bool
	// Watchers tell when to look for changes (with Watch); a
	// secretenv.Poller at least.
	Watchers []secretenv.Watcher
	// StopSignal asks the command to stop before a restart; default
	// SIGTERM.
	StopSignal os.Signal
	// Grace is how long a stopping command may take before SIGKILL;
	// default 10s.
	Grace time.Duration

	// Signals are forwarded to the command (the caller subscribes to
	// child.Forwarded()). A terminating one (INT, TERM, QUIT) received
	// before the command starts ends Run, with 128+N.
	Signals <-chan os.Signal

	// Backoff spaces retries; Retries, when not 0, is how many
	// consecutive failures of any one loop (login, token or lease
	// renewal, reading the secrets) end Run with ErrRetriesExhausted
	// after stopping the command (-exit-on-retry-failure). 0 retries
	// forever.
	Backoff lifetime.Backoff
	Retries int
	// Clock times everything; nil is the wall clock.
	Clock clock.Clock
	// Logger receives vigil's messages (never a value); nil discards
	// them.
	Logger *slog.Logger
}

// Run runs the command as described in the package doc and returns its
// exit status. err is not nil when vigil itself failed: before the
// command started (code 1, or 126/127 when it could not be started, or
// 128+N after a terminating signal), or because a retry limit was reached
// (code 1, after stopping the command).
func Run(ctx context.Context, cfg Config) (int, error) {
	if len(cfg.Command) == 0 {
		return 1, errors.New("envexec: no command")
	}
	if cfg.StopSignal == nil {
		cfg.StopSignal = syscall.SIGTERM
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &runner{cfg: cfg, log: log}
	return r.run(ctx)
}

// runner is one Run. Its loop runs in one goroutine; the others (token
// manager, lease keepers, watchers) report to it over channels.
type runner struct {
	cfg Config
	log *slog.Logger

	hints     chan string
	leaseLost chan leaseEvent
	authDone  chan error

	child      *child.Child
	restarting bool // the child is stopping to be started again
	stopping   bool // the child is stopping for good
	fatal      error
	grace      <-chan struct{}
	stopGrace  func() bool

	authLost bool // the token can no longer be kept: nothing is refreshed

	checkFailures int
	retryCheck    <-chan struct{}
	reissue       map[string]int // leased paths waiting for new credentials → failures
	retryReissue  <-chan struct{}

	keepers map[string]context.CancelFunc
	wg      sync.WaitGroup
}

type leaseEvent struct {
	lease secretenv.Lease
	err   error
}

func (r *runner) retryOptions(what string) lifetime.RetryOptions {
	return lifetime.RetryOptions{
		Clock: r.cfg.Clock, Backoff: r.cfg.Backoff, Retries: r.cfg.Retries,
		OnError: func(err error, attempt int, wait time.Duration) {
			r.log.Warn(what+" failed; retrying", "attempt", attempt, "wait", wait, "error", err)
		},
	}
}

func (r *runner) run(ctx context.Context) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		r.wg.Wait()
		r.cleanup(context.WithoutCancel(ctx))
	}()

	code, err := r.start(ctx)
	if err != nil {
		return code, err
	}
	return r.loop(ctx)
}

// start logs in, loads the secrets and starts the command. A terminating
// signal meanwhile ends it.
func (r *runner) start(ctx context.Context) (int, error) {
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var got os.Signal
	var mu sync.Mutex
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		for {
			select {
			case <-sctx.Done():
				return
			case sig := <-r.cfg.Signals:
				if child.Terminating(sig) {
					mu.Lock()
					got = sig
					mu.Unlock()
					stop()
					return
				}
			}
		}
	}()
	interrupted := func(err error) (int, error) {
		stop()
		<-watching
		mu.Lock()
		defer mu.Unlock()
		if got != nil {
			return 128 + signalNumber(got), fmt.Errorf("interrupted by %s before the command started", child.SignalName(got))
		}
		return 1, err
	}
	if err := r.cfg.Auth.Login(sctx); err != nil {
		return interrupted(fmt.Errorf("logging in: %w", err))
	}
	if err := r.cfg.Secrets.Load(sctx, r.retryOptions("reading the secrets")); err != nil {
		return interrupted(fmt.Errorf("reading the secrets: %w", err))
	}
	stop()
	<-watching
	mu.Lock()
	sig := got
	mu.Unlock()
	if sig != nil {
		return 128 + signalNumber(sig), fmt.Errorf("interrupted by %s before the command started", child.SignalName(sig))
	}
	c, err := r.startChild()
	if err != nil {
		var se *child.StartError
		if errors.As(err, &se) {
			return se.Code, err
		}
		return 1, err
	}
	r.child = c
	r.log.Debug("command started", "pid", c.Pid(), "variables", r.cfg.Secrets.Names())
	return 0, nil
}

func (r *runner) startChild() (*child.Child, error) {
	return child.Start(child.Config{
		Command: r.cfg.Command,
		Env:     child.Environ(r.cfg.BaseEnv, r.cfg.Secrets.Vars()),
		Stdin:   r.cfg.Stdin, Stdout: r.cfg.Stdout, Stderr: r.cfg.Stderr,
	})
}

// after returns a channel closed after d on the runner's clock.
func (r *runner) after(d time.Duration) (<-chan struct{}, func() bool) {
	ch := make(chan struct{})
	t := r.cfg.Clock.AfterFunc(d, func() { close(ch) })
	return ch, t.Stop
}

func (r *runner) loop(ctx context.Context) (int, error) {
	r.hints = make(chan string, 64)
	r.leaseLost = make(chan leaseEvent)
	r.authDone = make(chan error, 1)
	r.reissue = map[string]int{}
	r.keepers = map[string]context.CancelFunc{}

	r.goroutine(func() { r.authDone <- r.cfg.Auth.Run(ctx) })
	for _, l := range r.cfg.Secrets.Leases() {
		r.keepLease(ctx, l)
	}
	if r.cfg.Watch {
		paths := r.cfg.Secrets.ReadPaths()
		hint := func(p string) {
			select {
			case r.hints <- p:
			default: // a check is queued already; the next poll catches up
			}
		}
		for _, w := range r.cfg.Watchers {
			r.goroutine(func() {
				if err := w.Watch(ctx, paths, hint); err != nil && ctx.Err() == nil {
					r.log.Warn("a watcher stopped; the others go on", "error", err)
				}
			})
		}
	}
	_, tokenChanged := r.cfg.Auth.Token()
	authDone := r.authDone
	done := ctx.Done()

	for {
		select {
		case <-done:
			done = nil
			r.stopFor(ctx.Err())

		case <-r.child.Done():
			if r.restarting && !r.stopping {
				if code, failed, err := r.restarted(); failed {
					return code, err
				}
				continue
			}
			if r.fatal != nil {
				return 1, r.fatal
			}
			return r.child.ExitCode(), nil

		case sig := <-r.cfg.Signals:
			if err := r.child.Signal(sig); err != nil {
				r.log.Warn("could not forward a signal", "signal", child.SignalName(sig), "error", err)
			}
			if child.Terminating(sig) {
				r.stopping = true
			}

		case <-r.grace:
			r.grace = nil
			r.log.Warn("the command did not stop within the grace period; killing it", "grace", r.cfg.Grace)
			_ = r.child.Kill()

		case err := <-authDone:
			authDone = nil
			r.authEnded(err)

		case <-tokenChanged:
			_, tokenChanged = r.cfg.Auth.Token()
			r.tokenReplaced(ctx)

		case p := <-r.hints:
			r.check(ctx, p)

		case <-r.retryCheck:
			r.retryCheck = nil
			r.check(ctx, "")

		case ev := <-r.leaseLost:
			r.leaseEnded(ctx, ev)

		case <-r.retryReissue:
			r.retryReissue = nil
			r.reissueWaiting(ctx)
		}
	}
}

func (r *runner) goroutine(f func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		f()
	}()
}

// restart stops the child to start it again with the current variables.
func (r *runner) restart(reason string) {
	if r.stopping || r.restarting {
		return // a restart reads the variables when it starts the child
	}
	r.log.Info("restarting the command", "reason", reason, "signal", child.SignalName(r.cfg.StopSignal), "grace", r.cfg.Grace)
	r.restarting = true
	r.signalStop()
}

// signalStop sends the stop signal and arms the grace timer.
func (r *runner) signalStop() {
	if err := r.child.Signal(r.cfg.StopSignal); err != nil {
		r.log.Warn("could not signal the command", "error", err)
	}
	if r.grace == nil {
		r.grace, r.stopGrace = r.after(r.cfg.Grace)
	}
}

// stopFor stops the child for good because of err: the stop signal, and
// SIGKILL after the grace period.
func (r *runner) stopFor(err error) {
	if r.fatal == nil {
		r.fatal = err
	}
	if r.stopping && r.grace != nil {
		return
	}
	r.stopping = true
	r.signalStop()
}

// restarted starts the new child once the old one has stopped; failed
// means it could not, and Run ends with code and err.
func (r *runner) restarted() (code int, failed bool, err error) {
	r.restarting = false
	if r.stopGrace != nil {
		r.stopGrace()
	}
	r.grace = nil
	c, err := r.startChild()
	if err != nil {
		var se *child.StartError
		code = 1
		if errors.As(err, &se) {
			code = se.Code
		}
		return code, true, fmt.Errorf("restarting the command: %w", err)
	}
	r.child = c
	r.log.Info("command restarted", "pid", c.Pid())
	// The old credentials are no longer in use.
	rctx, cancel := context.WithTimeout(context.Background(), cleanupTimeout)
	r.cfg.Secrets.RevokeRetired(rctx)
	cancel()
	return 0, false, nil
}

// authEnded handles the token manager's end.
func (r *runner) authEnded(err error) {
	switch {
	case err == nil || errors.Is(err, context.Canceled):
	case errors.Is(err, lifetime.ErrRetriesExhausted):
		r.log.Error("giving up: the token could not be kept", "error", err)
		r.stopFor(err)
	case r.cfg.Retries > 0:
		r.log.Error("giving up: the token can no longer be kept", "error", err)
		r.stopFor(err)
	default:
		r.log.Warn("the token can no longer be kept: the command keeps its values, which are no longer refreshed", "error", err)
		r.authLost = true
	}
}

// tokenReplaced handles a new token: dynamic credentials belong to the
// token that asked for them and end with it, so they are read again
// under the new one (with Watch).
func (r *runner) tokenReplaced(ctx context.Context) {
	leases := r.cfg.Secrets.Leases()
	if len(leases) == 0 {
		return
	}
	if !r.cfg.Watch {
		r.log.Warn("logged in again: the dynamic credentials end with the old token; -watch would restart the command with new ones")
		return
	}
	for _, l := range leases {
		r.reissue[l.Path] = 0
	}
	r.reissueWaiting(ctx)
}

// check reads the secrets again and restarts the child on a change.
func (r *runner) check(ctx context.Context, hint string) {
	if !r.cfg.Watch || r.stopping || r.authLost {
		return
	}
	changed, err := r.cfg.Secrets.Check(ctx, hint)
	r.log.Debug("secrets read again", "hint", hint, "changed", len(changed), "failed", err != nil)
	if len(changed) > 0 {
		r.restart(fmt.Sprintf("changed: %v", changed))
	}
	if err == nil {
		r.checkFailures = 0
		return
	}
	if ctx.Err() != nil {
		return
	}
	r.checkFailures++
	if r.cfg.Retries > 0 && r.checkFailures >= r.cfg.Retries {
		err = fmt.Errorf("%w after %d attempts: reading the secrets: %w", lifetime.ErrRetriesExhausted, r.checkFailures, err)
		r.log.Error("giving up", "error", err)
		r.stopFor(err)
		return
	}
	wait := r.cfg.Backoff.Delay(r.checkFailures)
	r.log.Warn("reading the secrets failed; the command keeps its values", "attempt", r.checkFailures, "retry_in", wait, "error", err)
	if r.retryCheck == nil {
		r.retryCheck, _ = r.after(wait)
	}
}

// keepLease renews a lease in the background until it can no longer be
// kept, then reports it.
func (r *runner) keepLease(ctx context.Context, l secretenv.Lease) {
	if cancel, ok := r.keepers[l.Path]; ok {
		cancel()
	}
	kctx, cancel := context.WithCancel(ctx)
	r.keepers[l.Path] = cancel
	ko := lifetime.KeepOptions{RetryOptions: r.retryOptions("renewing the lease of " + l.Path)}
	r.goroutine(func() {
		err := lifetime.Keep(kctx, l.TTL, l.Renewable, func(ctx context.Context) (time.Duration, bool, error) {
			return r.cfg.Secrets.RenewLease(ctx, l.Path)
		}, ko)
		if kctx.Err() != nil {
			return
		}
		select {
		case r.leaseLost <- leaseEvent{l, err}:
		case <-kctx.Done():
		}
	})
}

// leaseEnded handles a lease that can no longer be kept.
func (r *runner) leaseEnded(ctx context.Context, ev leaseEvent) {
	l := ev.lease
	if r.authLost {
		return
	}
	if errors.Is(ev.err, lifetime.ErrRetriesExhausted) {
		r.log.Error("giving up: a lease could not be renewed", "path", l.Path, "lease_id", l.ID, "error", ev.err)
		r.stopFor(ev.err)
		return
	}
	if !r.cfg.Watch {
		r.log.Warn("a lease can no longer be renewed: the command keeps its credentials until they end; -watch would restart it with new ones", "path", l.Path, "lease_id", l.ID, "reason", ev.err)
		return
	}
	r.log.Info("a lease can no longer be renewed; reading new credentials", "path", l.Path, "lease_id", l.ID, "reason", ev.err)
	r.reissue[l.Path] = 0
	r.reissueWaiting(ctx)
}

// reissueWaiting reads new credentials for the leased secrets waiting for
// them, and restarts the child when it got some.
func (r *runner) reissueWaiting(ctx context.Context) {
	if r.stopping || r.authLost {
		return
	}
	var done []string
	var wait time.Duration
	for path, failures := range r.reissue {
		err := r.cfg.Secrets.Reissue(ctx, path)
		if err == nil {
			delete(r.reissue, path)
			done = append(done, path)
			for _, l := range r.cfg.Secrets.Leases() {
				if l.Path == path {
					r.keepLease(ctx, l)
				}
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		r.reissue[path] = failures
		if r.cfg.Retries > 0 && failures >= r.cfg.Retries {
			err = fmt.Errorf("%w after %d attempts: new credentials for %s: %w", lifetime.ErrRetriesExhausted, failures, path, err)
			r.log.Error("giving up", "error", err)
			r.stopFor(err)
			return
		}
		d := r.cfg.Backoff.Delay(failures)
		r.log.Warn("reading new credentials failed; retrying", "path", path, "attempt", failures, "retry_in", d, "error", err)
		if wait == 0 || d < wait {
			wait = d
		}
	}
	if len(done) > 0 {
		r.restart(fmt.Sprintf("new credentials: %v", done))
	}
	if len(r.reissue) > 0 && r.retryReissue == nil {
		r.retryReissue, _ = r.after(wait)
	}
}

// cleanup revokes the leases and the token this run obtained. Revoking
// a token revokes its leases too, so a lease the token's policy did not
// let it revoke (sys/leases/revoke is not in the default policy) still
// ends when the token was one of its logins.
func (r *runner) cleanup(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
	defer cancel()
	failed := r.cfg.Secrets.Close(ctx)
	tok, _ := r.cfg.Auth.Token()
	tokenRevoked := false
	if tok.Issued {
		if err := r.cfg.Auth.Revoke(ctx); err != nil {
			r.log.Warn("could not revoke the token; it will expire on its own", "accessor", tok.Accessor, "error", err)
		} else {
			tokenRevoked = true
		}
	}
	for l, err := range failed {
		if tokenRevoked {
			r.log.Debug("lease revoked with the token", "path", l.Path, "lease_id", l.ID)
			continue
		}
		r.log.Warn("could not revoke a lease; it ends at the end of its TTL", "path", l.Path, "lease_id", l.ID, "error", err)
	}
}
