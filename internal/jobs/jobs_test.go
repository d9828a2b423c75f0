package jobs

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
)

var epoch = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// recorder is a job that reports each run's start time on runs and
// returns what next says (relative to the run's time).
type recorder struct {
	clk  *clock.Fake
	runs chan time.Time
	// next is the wait the run asks for (0: the zero time; negative: a
	// time already past).
	next atomic.Int64
	err  atomic.Pointer[error]
}

func newRecorder(clk *clock.Fake, next time.Duration) *recorder {
	r := &recorder{clk: clk, runs: make(chan time.Time, 64)}
	r.next.Store(int64(next))
	return r
}

func (r *recorder) fn(context.Context) (time.Time, error) {
	// What the run answers is settled before it reports itself: a test
	// that changes next or err after taking a run changes the runs after.
	now, d, e := r.clk.Now(), time.Duration(r.next.Load()), r.err.Load()
	r.runs <- now
	if e != nil {
		return time.Time{}, *e
	}
	if d != 0 {
		return now.Add(d), nil
	}
	return time.Time{}, nil
}

// wantRun waits for a run and checks when it ran.
func (r *recorder) wantRun(t *testing.T, at time.Time) {
	t.Helper()
	select {
	case got := <-r.runs:
		if !got.Equal(at) {
			t.Fatalf("run at %v, want %v", got, at)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no run (want one at %v)", at)
	}
}

// noRun checks that no run has started.
func (r *recorder) noRun(t *testing.T) {
	t.Helper()
	select {
	case got := <-r.runs:
		t.Fatalf("unexpected run at %v", got)
	default:
	}
}

// waitTimer waits until the scheduler has set n timers on the fake clock:
// a run has ended and scheduled the next.
func waitTimer(t *testing.T, clk *clock.Fake, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for clk.Pending() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d timers pending, want %d", clk.Pending(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func newScheduler(t *testing.T, clk *clock.Fake) *Scheduler {
	t.Helper()
	s := New(Config{Clock: clk, MaxInterval: time.Hour, RetryMin: 10 * time.Second})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(context.Background()); err != nil {
			t.Error(err)
		}
	})
	return s
}

// TestRunsWhenAsked: a job runs when added, then at the time it asks for,
// never later than MaxInterval, and sooner when woken.
func TestRunsWhenAsked(t *testing.T) {
	clk := clock.NewFake(epoch)
	s := newScheduler(t, clk)
	r := newRecorder(clk, 20*time.Minute)
	if err := s.Add("rotate", r.fn); err != nil {
		t.Fatal(err)
	}
	r.wantRun(t, epoch)
	waitTimer(t, clk, 1)
	clk.Advance(20*time.Minute - time.Second)
	r.noRun(t)
	clk.Advance(time.Second)
	r.wantRun(t, epoch.Add(20*time.Minute))

	// Nothing known: MaxInterval. Too far: MaxInterval too.
	for _, next := range []time.Duration{0, 48 * time.Hour} {
		r.next.Store(int64(next))
		waitTimer(t, clk, 1)
		s.Wake("rotate")
		at := clk.Now()
		r.wantRun(t, at)
		waitTimer(t, clk, 1)
		clk.Advance(time.Hour - time.Second)
		r.noRun(t)
		clk.Advance(time.Second)
		r.wantRun(t, at.Add(time.Hour))
	}

	// A time already past runs again at once, without a timer: the run
	// after the first comes without the clock moving. (The job is told to
	// ask for a later time only after that second run: told sooner, the
	// first run could read it and set a timer.)
	r.next.Store(int64(-time.Minute))
	waitTimer(t, clk, 1)
	s.Wake("rotate")
	r.wantRun(t, clk.Now())
	r.wantRun(t, clk.Now())
	r.next.Store(int64(time.Minute))
	// Runs go on at once until one reads the later time and sets a timer;
	// take theirs meanwhile, so that none blocks on a full channel.
	deadline := time.Now().Add(10 * time.Second)
	for clk.Pending() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d timers pending, want 1", clk.Pending())
		}
		select {
		case <-r.runs:
		case <-time.After(time.Millisecond):
		}
	}
	for len(r.runs) > 0 {
		if got := <-r.runs; !got.Equal(clk.Now()) {
			t.Fatalf("run at %v, want %v", got, clk.Now())
		}
	}

	if err := s.Add("rotate", r.fn); !errors.Is(err, ErrExists) {
		t.Errorf("adding a job twice: %v, want ErrExists", err)
	}
	s.Wake("unknown") // ignored
}

// TestSingleFlight: wakes during a run make one more run after it, never
// a second at once.
func TestSingleFlight(t *testing.T) {
	clk := clock.NewFake(epoch)
	s := newScheduler(t, clk)
	var inFlight, most, runs atomic.Int32
	started, release := make(chan struct{}, 8), make(chan struct{})
	fn := func(context.Context) (time.Time, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		if n > most.Load() {
			most.Store(n)
		}
		runs.Add(1)
		started <- struct{}{}
		<-release
		return clk.Now().Add(time.Hour), nil
	}
	if err := s.Add("job", fn); err != nil {
		t.Fatal(err)
	}
	<-started
	for range 5 {
		s.Wake("job")
	}
	clk.Advance(2 * time.Hour) // no timer yet: nothing fires
	release <- struct{}{}
	<-started // the one run the wakes asked for
	release <- struct{}{}
	waitTimer(t, clk, 1)
	if got := runs.Load(); got != 2 {
		t.Errorf("%d runs, want 2", got)
	}
	if most.Load() != 1 {
		t.Errorf("%d runs at once", most.Load())
	}
	close(release)
}

// TestFailuresBackOff: a failed run (or a panic) is retried after
// RetryMin, doubled each time, up to MaxInterval; success resets it.
func TestFailuresBackOff(t *testing.T) {
	clk := clock.NewFake(epoch)
	s := newScheduler(t, clk)
	r := newRecorder(clk, 24*time.Hour)
	boom := errors.New("database unreachable")
	r.err.Store(&boom)
	if err := s.Add("job", r.fn); err != nil {
		t.Fatal(err)
	}
	r.wantRun(t, epoch)
	at := epoch
	for _, wait := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		waitTimer(t, clk, 1)
		clk.Advance(wait - time.Second)
		r.noRun(t)
		clk.Advance(time.Second)
		at = at.Add(wait)
		r.wantRun(t, at)
	}
	r.err.Store(nil)
	waitTimer(t, clk, 1)
	clk.Advance(80 * time.Second)
	r.wantRun(t, at.Add(80*time.Second))

	// A panic is a failure too, and the scheduler lives on.
	var panicked atomic.Bool
	if err := s.Add("panics", func(context.Context) (time.Time, error) {
		if panicked.CompareAndSwap(false, true) {
			panic("bug")
		}
		r.runs <- clk.Now()
		return time.Time{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	waitTimer(t, clk, 2)
	clk.Advance(10 * time.Second)
	r.wantRun(t, clk.Now())
}

// TestRemoveAndStop: Remove cancels a run in flight and returns once it
// has ended; a removed job never runs again; Stop does the same for all,
// and a stopped scheduler runs nothing.
func TestRemoveAndStop(t *testing.T) {
	clk := clock.NewFake(epoch)
	s := New(Config{Clock: clk})
	if err := s.Add("early", nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("Add before Start: %v", err)
	}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	var ended atomic.Bool
	started := make(chan struct{}, 4)
	blocking := func(ctx context.Context) (time.Time, error) {
		started <- struct{}{}
		<-ctx.Done()
		ended.Store(true)
		return time.Time{}, ctx.Err()
	}
	if err := s.Add("blocking", blocking); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := s.Remove(t.Context(), "blocking"); err != nil {
		t.Fatal(err)
	}
	if !ended.Load() {
		t.Fatal("Remove returned before the run ended")
	}
	r := newRecorder(clk, time.Minute)
	if err := s.Add("blocking", r.fn); err != nil { // the name is free again
		t.Fatal(err)
	}
	r.wantRun(t, epoch)
	waitTimer(t, clk, 1)
	if err := s.Remove(t.Context(), "blocking"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	r.noRun(t)

	ended.Store(false)
	if err := s.Add("other", blocking); err != nil {
		t.Fatal(err)
	}
	<-started
	if err := s.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !ended.Load() {
		t.Fatal("Stop returned before the run ended")
	}
	if err := s.Add("late", r.fn); !errors.Is(err, ErrNotRunning) {
		t.Errorf("Add after Stop: %v", err)
	}
	s.Wake("other")
	clk.Advance(time.Hour)
	r.noRun(t)
	if clk.Pending() != 0 {
		t.Errorf("%d timers left after Stop", clk.Pending())
	}
	if err := s.Stop(t.Context()); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// jumpyClock moves its fake clock by jump when its first timer is set,
// before setting it: as a test's Advance coming between the scheduler's
// reading the time and its setting the timer.
type jumpyClock struct {
	*clock.Fake
	jump time.Duration
	once sync.Once
}

func (c *jumpyClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.once.Do(func() { c.Fake.Advance(c.jump) })
	return c.Fake.AfterFunc(d, f)
}

// TestClockMovesWhileArming: a clock that moves while the next run's timer
// is set does not make the run late.
func TestClockMovesWhileArming(t *testing.T) {
	fake := clock.NewFake(epoch)
	s := New(Config{Clock: &jumpyClock{Fake: fake, jump: 5 * time.Minute}})
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop(context.Background()) })
	r := newRecorder(fake, 10*time.Minute)
	if err := s.Add("job", r.fn); err != nil {
		t.Fatal(err)
	}
	r.wantRun(t, epoch)
	waitTimer(t, fake, 1)
	if got := fake.Now(); !got.Equal(epoch.Add(5 * time.Minute)) {
		t.Fatalf("the clock did not jump: %v", got)
	}
	fake.Advance(5*time.Minute - time.Second)
	r.noRun(t)
	fake.Advance(time.Second)
	r.wantRun(t, epoch.Add(10*time.Minute))
}
