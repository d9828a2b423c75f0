// Package jobs runs the background work of an unsealed server. A job is a
// function that does what is due and says when it next has work; the
// [Scheduler] calls it then, or sooner when asked ([Scheduler.Wake]). The
// core starts one Scheduler at unseal as a subsystem (DESIGN.md §5), adds
// a job for each mount with periodic work (the database engine's rotation
// schedules) and stops it at seal.
//
// What the scheduler guarantees:
//
//   - Single flight: the runs of one job never overlap. A wake during a
//     run makes one more run once it ends.
//   - A job runs at once when it is added, so that work missed while the
//     server was sealed or down is done at unseal.
//   - Each run gets a context that is cancelled when the job is removed,
//     when the scheduler stops, or after [Config.RunTimeout].
//   - A run that fails (or panics) is retried after [Config.RetryMin],
//     doubling up to [Config.MaxInterval]; no job waits longer than
//     MaxInterval between runs, whatever it asks for.
//   - [Scheduler.Stop] and [Scheduler.Remove] return once the runs they
//     end are over: no run outlives them.
//   - Time is the injected [clock.Clock]'s: tests drive schedules with
//     [clock.Fake].
//
// The package knows nothing of mounts or storage: it imports only clock
// (layer 3 uses layers 0-1).
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
)

// Func is one run of a job. It returns when the job next has work; the
// zero time means it knows of none (it runs again after
// [Config.MaxInterval] all the same). A time already past means at once:
// a job that keeps returning one runs back to back.
type Func func(ctx context.Context) (next time.Time, err error)

// Config is what a Scheduler needs; zero fields take their defaults.
type Config struct {
	// Clock tells the time and makes the timers (the wall clock when nil).
	Clock clock.Clock
	// Logger receives the failures of runs (discarded when nil).
	Logger *slog.Logger
	// MaxInterval is the longest a job waits between runs (10 minutes).
	MaxInterval time.Duration
	// RunTimeout bounds one run (5 minutes).
	RunTimeout time.Duration
	// RetryMin is the wait after a failed run, doubled after each further
	// failure up to MaxInterval (5 seconds).
	RetryMin time.Duration
}

// Defaults of [Config].
const (
	DefaultMaxInterval = 10 * time.Minute
	DefaultRunTimeout  = 5 * time.Minute
	DefaultRetryMin    = 5 * time.Second
)

// Errors of [Scheduler.Add].
var (
	// ErrNotRunning: the scheduler is not started, or stopped.
	ErrNotRunning = errors.New("jobs: scheduler not running")
	// ErrExists: a job of that name is already scheduled.
	ErrExists = errors.New("jobs: job already exists")
)

type state int

const (
	stateNew state = iota
	stateRunning
	stateStopped
)

// Scheduler runs jobs. Create it with [New]; it is safe for concurrent
// use.
type Scheduler struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	state  state
	life   context.Context // the lifecycle context Start creates
	cancel context.CancelFunc
	jobs   map[string]*job
	wg     sync.WaitGroup // runs in flight
}

// job is one scheduled job; its fields are guarded by Scheduler.mu.
type job struct {
	name   string
	fn     Func
	ctx    context.Context // cancelled when the job is removed
	cancel context.CancelFunc
	// timer fires the next run; nil while a run is in flight.
	timer clock.Timer
	// gen numbers the timers: a timer that fires after it was replaced
	// (its callback was already on its way) sees a newer gen and does
	// nothing.
	gen      uint64
	running  bool
	again    bool          // a wake came during the run
	removed  bool          // Remove or Stop: no further run
	idle     chan struct{} // closed when the run in flight ends
	failures int           // failed runs in a row
}

// New returns a scheduler that is not started yet.
func New(cfg Config) *Scheduler {
	if cfg.Clock == nil {
		cfg.Clock = clock.Real{}
	}
	if cfg.MaxInterval <= 0 {
		cfg.MaxInterval = DefaultMaxInterval
	}
	if cfg.RunTimeout <= 0 {
		cfg.RunTimeout = DefaultRunTimeout
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = DefaultRetryMin
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg, log: log, jobs: map[string]*job{}}
}

// Start starts the scheduler; the runs' contexts derive from ctx. A
// scheduler starts once.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateNew {
		return errors.New("jobs: scheduler already started")
	}
	s.life, s.cancel = context.WithCancel(ctx)
	s.state = stateRunning
	return nil
}

// Stop cancels every run in flight, drops every job and waits for the runs
// to end, or for ctx. Stopping twice, or a scheduler never started, is not
// an error.
func (s *Scheduler) Stop(ctx context.Context) error {
	s.mu.Lock()
	if s.state != stateRunning {
		s.state = stateStopped
		s.mu.Unlock()
		return nil
	}
	s.state = stateStopped
	s.cancel()
	for name, j := range s.jobs {
		s.dropLocked(j)
		delete(s.jobs, name)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jobs: stop: %w", ctx.Err())
	}
}

// Add schedules fn under name and runs it at once.
func (s *Scheduler) Add(name string, fn Func) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning {
		return ErrNotRunning
	}
	if s.jobs[name] != nil {
		return fmt.Errorf("%w: %q", ErrExists, name)
	}
	j := &job{name: name, fn: fn}
	j.ctx, j.cancel = context.WithCancel(s.life)
	s.jobs[name] = j
	s.startLocked(j)
	return nil
}

// Remove unschedules the named job, cancels its run in flight and waits
// for that run to end, or for ctx. An unknown name is not an error.
func (s *Scheduler) Remove(ctx context.Context, name string) error {
	s.mu.Lock()
	j := s.jobs[name]
	if j == nil {
		s.mu.Unlock()
		return nil
	}
	delete(s.jobs, name)
	idle := s.dropLocked(j)
	s.mu.Unlock()
	if idle == nil {
		return nil
	}
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("jobs: remove %q: %w", name, ctx.Err())
	}
}

// dropLocked stops j for good and returns the channel its run in flight
// closes, nil when none is.
func (s *Scheduler) dropLocked(j *job) <-chan struct{} {
	j.removed = true
	j.gen++
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	j.cancel()
	if j.running {
		return j.idle
	}
	return nil
}

// Wake asks for a run of the named job soon: at once when it is idle,
// right after the run in flight otherwise. An unknown name, or a
// scheduler not running, is ignored: there is nothing to wake.
func (s *Scheduler) Wake(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j := s.jobs[name]; j != nil && s.state == stateRunning {
		s.startLocked(j)
	}
}

// startLocked starts a run of j, or asks for one more when one is in
// flight.
func (s *Scheduler) startLocked(j *job) {
	if j.running {
		j.again = true
		return
	}
	j.gen++ // a timer still on its way is stale
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	j.running = true
	j.idle = make(chan struct{})
	s.wg.Add(1)
	go s.run(j)
}

// fire is a timer's callback: it runs j unless the timer is stale.
func (s *Scheduler) fire(j *job, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state != stateRunning || j.removed || j.gen != gen {
		return
	}
	j.timer = nil
	s.startLocked(j)
}

// run calls j until no further run is asked for; after the last, the
// timer of the next one is set.
func (s *Scheduler) run(j *job) {
	defer s.wg.Done()
	for {
		next, err := s.call(j)
		if !s.after(j, next, err) {
			return
		}
	}
}

// after records the end of a run of j and reports whether j runs again at
// once (a wake came during the run). Otherwise it sets the timer of the
// next run, at next or after a failure's backoff, within MaxInterval.
func (s *Scheduler) after(j *job, next time.Time, err error) (again bool) {
	s.mu.Lock()
	now := s.cfg.Clock.Now()
	delay := s.cfg.MaxInterval
	if err != nil {
		j.failures++
		delay = min(s.cfg.RetryMin<<min(j.failures-1, 20), s.cfg.MaxInterval)
	} else {
		j.failures = 0
		if !next.IsZero() {
			delay = min(next.Sub(now), s.cfg.MaxInterval)
		}
	}
	failures, stopped := j.failures, j.removed || s.state != stateRunning
	switch {
	case stopped:
		j.running = false
		close(j.idle)
	case j.again || !s.armLocked(j, now.Add(delay)):
		// Woken during the run, or work already due: run again at once
		// (a timer due now would wait for a fake clock's next move).
		j.again = false
		again = true
	default:
		j.running = false
		close(j.idle)
	}
	s.mu.Unlock()
	// A run whose context was cut by Remove or Stop did not fail.
	if err != nil && !stopped {
		s.log.Warn("job run failed", "job", j.name, "failures", failures, "retry_in", delay, "error", err)
	}
	return again
}

// armLocked sets j's timer for at and reports true, or false when at has
// come already. The clock may move between reading it and setting the
// timer (a test moving a fake clock), which would make the timer late by
// as much: it is set again until the clock holds still across the setting
// (a real clock's moving by less than still, even on a busy machine, is
// holding still).
func (s *Scheduler) armLocked(j *job, at time.Time) bool {
	const still = 50 * time.Millisecond
	for {
		now := s.cfg.Clock.Now()
		if !at.After(now) {
			return false
		}
		j.gen++
		gen := j.gen
		j.timer = s.cfg.Clock.AfterFunc(at.Sub(now), func() { s.fire(j, gen) })
		if s.cfg.Clock.Now().Sub(now) < still {
			return true
		}
		j.timer.Stop()
		j.timer = nil
	}
}

// call runs j once under its timeout; a panic is a failed run.
func (s *Scheduler) call(j *job) (next time.Time, err error) {
	ctx, cancel := context.WithTimeout(j.ctx, s.cfg.RunTimeout)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			next, err = time.Time{}, fmt.Errorf("jobs: %s panicked: %v", j.name, r)
		}
	}()
	return j.fn(ctx)
}
