package render

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/agent/child"
	"github.com/vigil-secrets/vigil/internal/agent/kvpath"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/agent/template"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// loop is one Run. Everything in it is touched by the Run goroutine
// only; the worker, the commands, the watchers and the timers report to
// it over channels.
type loop struct {
	*Runner
	// ctx is Run's: the lifecycle of the goroutines the loop starts
	// (the worker, template commands).
	ctx context.Context

	sched  map[string]*depState // by dependency key
	dirty  map[*unit]bool       // to render in the next work
	renewQ map[string]bool      // dependency keys to renew in the next work

	inflight    bool
	workDone    chan *work
	forgetAfter bool // the token changed while work was in flight

	wake    chan struct{}
	timer   clock.Timer
	timerAt time.Time

	cmdDone chan cmdResult

	proc      *supervisor
	files     []*os.File // child output files, closed at the end
	fatal     error
	fatalRet  int  // Run's status for fatal (1, or 126/127)
	ended     bool // ctx ended
	announced bool // Rendered() is closed

	wg sync.WaitGroup
}

func newLoop(ctx context.Context, r *Runner) *loop {
	l := &loop{
		Runner:   r,
		ctx:      ctx,
		sched:    map[string]*depState{},
		dirty:    map[*unit]bool{},
		renewQ:   map[string]bool{},
		workDone: make(chan *work, 1),
		wake:     make(chan struct{}, 1),
		cmdDone:  make(chan cmdResult, len(r.units)),
	}
	if r.exec != nil {
		l.proc = &supervisor{cfg: r.exec, grace: r.o.Grace, after: l.after, stdin: r.o.Stdin, stdout: r.o.Stdout, stderr: r.o.Stderr}
	}
	return l
}

func (l *loop) goroutine(f func()) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		f()
	}()
}

// after returns a channel closed after d on the runner's clock, and a
// function that stops it.
func (l *loop) after(d time.Duration) (<-chan struct{}, func() bool) {
	ch := make(chan struct{})
	t := l.clk.AfterFunc(d, func() { close(ch) })
	return ch, t.Stop
}

// openOutputs opens child_process_stdout and _stderr.
func (l *loop) openOutputs() error {
	for _, o := range []struct {
		path string
		w    *io.Writer
	}{{l.exec.stdoutFile, &l.proc.stdout}, {l.exec.stderr, &l.proc.stderr}} {
		if o.path == "" {
			continue
		}
		f, err := openOutput(o.path)
		if err != nil {
			return err
		}
		l.files = append(l.files, f)
		*o.w = f
	}
	return nil
}

// close releases what the loop holds once its goroutines are gone.
func (l *loop) close() {
	if l.timer != nil {
		l.timer.Stop()
	}
	for _, f := range l.files {
		f.Close()
	}
}

func (l *loop) run(ctx context.Context) (int, error) {
	for _, u := range l.units {
		l.dirty[u] = true
	}
	done := ctx.Done()
	for {
		now := l.clk.Now()
		l.due(now)
		if end, code, err := l.finished(); end {
			return code, err
		}
		l.startWork(ctx)
		l.arm(now)

		var signals <-chan os.Signal
		if l.proc != nil {
			signals = l.o.Signals
		}
		var graceUp <-chan struct{}
		if l.proc != nil {
			graceUp = l.proc.graceUp
		}
		var childDone <-chan struct{}
		if l.proc != nil {
			childDone = l.proc.done()
		}

		select {
		case <-done:
			done = nil
			l.ended = true
			l.stopChild("the agent is stopping")

		case <-l.wake:

		case w := <-l.workDone:
			l.inflight = false
			l.finish(ctx, w)

		case <-l.hinted:
			l.hintsArrived(l.takeHints())

		case <-l.token:
			l.tokenChanged()

		case res := <-l.cmdDone:
			l.commandEnded(ctx, res)

		case <-childDone:
			if end, code, err := l.childExited(); end {
				return code, err
			}

		case sig := <-signals:
			if end, code, err := l.signal(sig); end {
				return code, err
			}

		case <-graceUp:
			l.proc.graceUp = nil
			l.log.Warn("the child did not stop within the grace period; killing it", "grace", l.proc.grace)
			_ = l.proc.c.Kill()
		}
	}
}

// finished says whether Run is over, and with what.
func (l *loop) finished() (end bool, code int, err error) {
	childRuns := l.proc != nil && l.proc.running()
	switch {
	case l.fatal != nil && !childRuns:
		return true, l.fatalRet, l.fatal
	case l.ended && !childRuns:
		return true, 0, nil
	case l.o.Once && l.allDone() && !l.commandsRunning():
		return true, 0, nil
	}
	return false, 0, nil
}

func (l *loop) allDone() bool {
	for _, u := range l.units {
		if !u.done || u.pending != nil {
			return false
		}
	}
	return true
}

func (l *loop) commandsRunning() bool {
	for _, u := range l.units {
		if u.cmdRunning || u.cmdAgain {
			return true
		}
	}
	return false
}

// fail ends Run with err (and status code) once the child has stopped.
func (l *loop) fail(code int, err error) {
	if l.fatal != nil {
		return
	}
	l.fatal, l.fatalRet = err, code
	l.log.Error("giving up", "error", err)
	l.stopChild("a fatal error")
}

// due starts what the schedule says is due by now.
func (l *loop) due(now time.Time) {
	if l.fatal != nil || l.ended {
		return
	}
	for key, st := range l.sched {
		if st.due.IsZero() || st.due.After(now) {
			continue
		}
		st.due = time.Time{}
		switch st.action {
		case template.Renew:
			st.renewing = true
			l.renewQ[key] = true
		default:
			l.log.Debug("reading a secret again", "path", st.dep.Path, "kind", st.dep.Kind, "templates", len(st.users))
			l.reread(st)
		}
	}
	for _, u := range l.units {
		if !u.retryAt.IsZero() && !u.retryAt.After(now) {
			u.retryAt = time.Time{}
			l.dirty[u] = true
		}
		if u.pending != nil && (!u.quietAt.After(now) || !u.latest.After(now)) {
			l.writePending(u)
		}
	}
}

// reread forgets a dependency's answer and renders its users again.
func (l *loop) reread(st *depState) {
	l.cache.Forget(st.dep)
	st.stale, st.due = true, time.Time{}
	for u := range st.users {
		l.dirty[u] = true
	}
}

// startWork hands what is waiting to the worker, unless work is in
// flight (what comes meanwhile waits for the next, which coalesces
// bursts of hints).
func (l *loop) startWork(ctx context.Context) {
	if l.inflight || l.fatal != nil || l.ended || (len(l.dirty) == 0 && len(l.renewQ) == 0) {
		return
	}
	w := &work{}
	for key := range l.renewQ {
		if st := l.sched[key]; st != nil {
			w.renewals = append(w.renewals, &renewal{key: key, dep: st.dep})
		}
	}
	for u := range l.dirty {
		w.renders = append(w.renders, &rendering{u: u, tmpl: u.tmpl})
	}
	clear(l.renewQ)
	clear(l.dirty)
	l.inflight = true
	l.goroutine(func() {
		l.do(ctx, w)
		l.workDone <- w
	})
}

// arm sets the one timer to the earliest time something is due.
func (l *loop) arm(now time.Time) {
	var next time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, st := range l.sched {
		earliest(st.due)
	}
	for _, u := range l.units {
		earliest(u.retryAt)
		if u.pending != nil {
			earliest(u.quietAt)
			earliest(u.latest)
		}
	}
	if next.Equal(l.timerAt) && l.timer != nil {
		return
	}
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	l.timerAt = next
	if next.IsZero() {
		return
	}
	l.timer = l.clk.AfterFunc(max(next.Sub(now), 0), func() {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	})
}

// finish takes the worker's results.
func (l *loop) finish(ctx context.Context, w *work) {
	if ctx.Err() != nil {
		return
	}
	now := l.clk.Now()
	for _, rn := range w.renewals {
		l.renewed(now, rn)
	}
	for _, rd := range w.renders {
		l.renderedOne(now, rd)
	}
	if l.forgetAfter {
		// Answers got with the old token may have been cached after the
		// token changed: forget them too.
		l.forgetAfter = false
		l.forgetAll()
	}
	l.superviseChild()
	if !l.announced && l.allDone() && (l.proc == nil || l.proc.running()) {
		l.announced = true
		close(l.rendered)
		l.log.Info("every template rendered", "templates", len(l.units))
	}
}

// renewed takes a renewal's outcome.
func (l *loop) renewed(now time.Time, rn *renewal) {
	st := l.sched[rn.key]
	if st == nil || st.stale || st.dep.LeaseID != rn.dep.LeaseID {
		return // dropped, forgotten or replaced meanwhile
	}
	st.renewing = false
	asked := rn.dep.LeaseDuration
	switch {
	case rn.err == nil && rn.granted >= asked:
		st.failures = 0
		st.dep.LeaseDuration, st.dep.Renewable = rn.granted, rn.renewable
		st.plan(now, l.interval)
		l.log.Debug("lease renewed", "path", st.dep.Path, "lease_id", st.dep.LeaseID, "ttl", rn.granted)
	case rn.err == nil:
		l.log.Info("a lease is near its maximum TTL; reading new credentials", "path", st.dep.Path, "lease_id", st.dep.LeaseID, "granted", rn.granted, "asked", asked)
		l.reread(st)
	case lifetime.Temporary(rn.err):
		st.failures++
		if l.exitOnFailure() && st.failures >= l.retryLimit() {
			l.fail(1, fmt.Errorf("render: %w after %d attempts: renewing the lease of %s: %w", lifetime.ErrRetriesExhausted, st.failures, st.dep.Path, rn.err))
			return
		}
		wait := l.o.Backoff.Delay(st.failures)
		st.due, st.action = now.Add(wait), template.Renew
		l.log.Warn("renewing a lease failed; retrying", "path", st.dep.Path, "lease_id", st.dep.LeaseID, "attempt", st.failures, "retry_in", wait, "error", rn.err)
	default:
		l.log.Info("a lease could not be renewed; reading new credentials", "path", st.dep.Path, "lease_id", st.dep.LeaseID, "reason", rn.err)
		l.reread(st)
	}
}

// exitOnFailure says whether retries are limited.
func (l *loop) exitOnFailure() bool { return l.o.Config.ExitOnRetryFailure || l.o.Once }

// retryLimit is how many consecutive failures end Run when retries are
// limited.
func (l *loop) retryLimit() int { return max(l.o.Retries, 1) }

// renderedOne takes a template's rendering.
func (l *loop) renderedOne(now time.Time, rd *rendering) {
	u := rd.u
	if rd.err != nil {
		l.renderFailed(now, u, rd.err)
		return
	}
	l.track(now, u, rd.res.Dependencies)
	out := rd.res.Output
	if u.env {
		if bytes.IndexByte(out, 0) >= 0 {
			l.renderFailed(now, u, &template.RenderError{Name: u.name, Msg: "the rendering holds a NUL byte, which an environment variable cannot hold"})
			return
		}
		sum := sha256.Sum256(out)
		if u.done && sum == u.written {
			l.log.Debug("template rendered", "variable", u.name, "changed", false)
			l.succeeded(u)
			return
		}
		u.value, u.written, u.done = secret.NewString(string(out)), sum, true
		l.log.Info("variable rendered", "variable", u.name)
		l.succeeded(u)
		return
	}
	sum := sha256.Sum256(out)
	if u.done && u.wait != nil && sum != u.written {
		// A change, held until no other has come for wait.Min, and no
		// longer than wait.Max after the first.
		if u.pending == nil || sum != u.pendingSum {
			if u.pending == nil {
				u.latest = now.Add(u.wait.Max)
			}
			u.pending, u.pendingSum = out, sum
			u.quietAt = now.Add(u.wait.Min)
			l.log.Debug("template changed; waiting for quiescence", "template", u.name, "min", u.wait.Min, "max", u.wait.Max)
		}
		l.succeeded(u)
		return
	}
	// Back to what is written, if a change was held: drop it.
	u.pending = nil
	if l.writeFile(now, u, out, sum) {
		l.succeeded(u)
	}
}

// succeeded resets a template's failures.
func (l *loop) succeeded(u *unit) {
	if u.failures > 0 {
		l.log.Info("template rendered again after failures", "template", u.name, "failures", u.failures)
	}
	u.failures, u.retryAt = 0, time.Time{}
}

// writePending writes a change wait held.
func (l *loop) writePending(u *unit) {
	out, sum := u.pending, u.pendingSum
	u.pending = nil
	u.quietAt, u.latest = time.Time{}, time.Time{}
	l.writeFile(l.clk.Now(), u, out, sum)
}

// writeFile writes a rendering to its destination and runs the template's
// command when the file changed. It reports whether the write succeeded.
func (l *loop) writeFile(now time.Time, u *unit, out []byte, sum [sha256.Size]byte) bool {
	changed, err := template.WriteFile(u.dest, out, u.write)
	if err != nil {
		l.renderFailed(now, u, err)
		return false
	}
	first := !u.done
	u.written, u.done = sum, true
	if !changed {
		l.log.Debug("template rendered", "template", u.name, "changed", false)
		return true
	}
	l.log.Info("template written", "template", u.name, "first", first)
	if u.command != nil {
		l.runCommand(u)
	}
	return true
}

// renderFailed handles a failed render or write: retried with backoff,
// fatal when retries are limited and exhausted, or for a template error
// with error_fatal.
func (l *loop) renderFailed(now time.Time, u *unit, err error) {
	if l.ended || errors.Is(err, context.Canceled) {
		return
	}
	var re *template.RenderError
	templateError := errors.As(err, &re) && !serverFailure(err)
	u.failures++
	if templateError && u.fatal {
		l.fail(1, fmt.Errorf("render: %s: %w", u.describe(), err))
		return
	}
	if l.exitOnFailure() && u.failures >= l.retryLimit() {
		l.fail(1, fmt.Errorf("render: %w after %d attempts: %s: %w", lifetime.ErrRetriesExhausted, u.failures, u.describe(), err))
		return
	}
	wait := l.o.Backoff.Delay(u.failures)
	u.retryAt = now.Add(wait)
	if templateError {
		l.log.Error("template error; retrying", "template", u.name, "line", u.line, "attempt", u.failures, "retry_in", wait, "error", err)
		return
	}
	l.log.Warn("rendering failed; the destination keeps its content; retrying", "template", u.name, "attempt", u.failures, "retry_in", wait, "error", err)
}

// track puts a template's dependencies on the schedule, and drops those
// no template uses any more.
func (l *loop) track(now time.Time, u *unit, deps []template.Dependency) {
	next := make(map[string]template.Dependency, len(deps))
	for _, d := range deps {
		next[d.Key()] = d
	}
	for key := range u.deps {
		if _, ok := next[key]; ok {
			continue
		}
		if st := l.sched[key]; st != nil {
			delete(st.users, u)
			if len(st.users) == 0 {
				delete(l.sched, key)
				delete(l.renewQ, key)
				l.log.Debug("a secret is no longer used", "path", st.dep.Path)
			}
		}
	}
	u.deps = next
	for key, d := range next {
		st := l.sched[key]
		if st == nil {
			st = &depState{users: map[*unit]bool{}, stale: true, name: secretPath(d)}
			l.sched[key] = st
		}
		if st.mount == nil && d.Kind != template.KindFile {
			// Known once the source has asked (it may not have: the
			// server could not say, and the path was read as written).
			if m, ok := l.src.Mounts().Known(secretPath(d)); ok && m != nil {
				st.mount, st.name = m, kvpath.Name(m, secretPath(d))
			}
		}
		st.users[u] = true
		if st.stale || (d.LeaseID != st.dep.LeaseID && !st.renewing) {
			st.dep = d
			st.failures = 0
			st.plan(now, l.interval)
		}
	}
}

// hintsArrived reads again the secrets the watchers hinted at.
func (l *loop) hintsArrived(hints []string) {
	if l.fatal != nil || l.ended {
		return
	}
	for _, h := range hints {
		n := 0
		for _, st := range l.sched {
			// Forgotten already (stale) is no reason to skip: a render
			// under way may have read the secret before this change.
			if h == "" && st.rereadable() || h != "" && st.matches(h) {
				l.reread(st)
				n++
			}
		}
		l.log.Debug("change hint", "path", h, "secrets", n)
	}
}

// tokenChanged forgets every answer and renders everything again.
func (l *loop) tokenChanged() {
	if l.inflight {
		l.forgetAfter = true
	}
	l.forgetAll()
	l.log.Info("new token: rendering every template again")
}

func (l *loop) forgetAll() {
	l.cache.ForgetAll()
	for _, st := range l.sched {
		st.stale, st.due, st.renewing = true, time.Time{}, false
	}
	clear(l.renewQ)
	for _, u := range l.units {
		l.dirty[u] = true
	}
}

// superviseChild starts the child once every variable is set, and
// restarts it when one changed (restart_on_secret_changes = "always").
func (l *loop) superviseChild() {
	p := l.proc
	if p == nil || l.fatal != nil || l.ended || !l.allDone() || p.stopping {
		return
	}
	vars := sortedVars(l.units)
	sum := envSum(vars)
	switch {
	case !p.running() && !p.restarting:
		if err := p.start(child.Environ(l.baseEnv(), vars), sum); err != nil {
			l.fail(startCode(err), fmt.Errorf("render: %w", err))
			return
		}
		l.log.Info("child started", "pid", p.c.Pid(), "variables", len(vars))
	case p.restarting || sum == p.sum:
	case !p.cfg.restart:
		l.log.Info("a variable changed; the child keeps its values (restart_on_secret_changes = never)")
	default:
		l.log.Info("a variable changed; restarting the child", "signal", child.SignalName(p.cfg.stopSignal), "grace", p.grace)
		p.restarting = true
		if err := p.signalStop(); err != nil {
			l.log.Warn("could not signal the child", "error", err)
		}
	}
}

func (l *loop) baseEnv() []string {
	if l.o.BaseEnv != nil {
		return l.o.BaseEnv
	}
	return os.Environ()
}

// stopChild stops the child for good.
func (l *loop) stopChild(reason string) {
	p := l.proc
	if p == nil || !p.running() || p.stopping {
		return
	}
	p.stopping = true
	if p.restarting {
		return // signalled already, and the grace period runs
	}
	l.log.Info("stopping the child", "reason", reason, "signal", child.SignalName(p.cfg.stopSignal), "grace", p.grace)
	if err := p.signalStop(); err != nil {
		l.log.Warn("could not signal the child", "error", err)
	}
}

// childExited handles the child's end: a restart, or the end of Run.
func (l *loop) childExited() (end bool, code int, err error) {
	p := l.proc
	restart := p.restarting && !p.stopping
	code = p.reaped()
	if !restart {
		if l.fatal != nil {
			return true, l.fatalRet, l.fatal
		}
		if !p.stopping {
			l.log.Info("the child exited", "status", code)
		}
		return true, code, nil
	}
	l.log.Info("the child stopped for a restart", "status", code)
	p.restarting = false
	vars := sortedVars(l.units)
	if err := p.start(child.Environ(l.baseEnv(), vars), envSum(vars)); err != nil {
		err = fmt.Errorf("render: restarting the child: %w", err)
		l.log.Error("giving up", "error", err)
		return true, startCode(err), err
	}
	l.log.Info("child restarted", "pid", p.c.Pid())
	return false, 0, nil
}

// signal forwards a signal to the child; a terminating one before the
// child started ends Run.
func (l *loop) signal(sig os.Signal) (end bool, code int, err error) {
	p := l.proc
	if !p.running() {
		if child.Terminating(sig) {
			return true, 128 + signalNumber(sig), fmt.Errorf("render: interrupted by %s before the child started", child.SignalName(sig))
		}
		l.log.Debug("a signal before the child started; dropped", "signal", child.SignalName(sig))
		return false, 0, nil
	}
	if err := p.c.Signal(sig); err != nil {
		l.log.Warn("could not forward a signal", "signal", child.SignalName(sig), "error", err)
	}
	if child.Terminating(sig) {
		p.stopping = true
	}
	return false, 0, nil
}
