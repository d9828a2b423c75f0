package load

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestTallyMerge(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	t0 := time.Now()
	a := tally{name: "x", latencies: ms(3, 1, 2), errors: 1, firstErr: "late", firstAt: t0.Add(2 * time.Second), elapsed: time.Second}
	b := tally{name: "x", latencies: ms(50, 10, 40, 20, 30), errors: 2, firstErr: "early", firstAt: t0.Add(time.Second), elapsed: 3 * time.Second}
	want := Result{
		Name: "x", Requests: 8, Errors: 3, Elapsed: 4 * time.Second, RPS: 2,
		// Nearest rank over the union 1 2 3 10 20 30 40 50, not a mean
		// of the two slices' percentiles.
		P50: 10 * time.Millisecond, P99: 50 * time.Millisecond,
		FirstError: "early",
	}
	for _, order := range [][2]tally{{a, b}, {b, a}} {
		sum := tally{name: "x"}
		for _, s := range order {
			s.latencies = append([]time.Duration(nil), s.latencies...) // result sorts in place
			sum.merge(s)
		}
		if got := sum.result(); got != want {
			t.Errorf("merge of %q then %q = %+v, want %+v", order[0].firstErr, order[1].firstErr, got, want)
		}
	}

	// Merging a slice without errors keeps the first error.
	sum := tally{name: "x"}
	sum.merge(a)
	sum.merge(tally{latencies: ms(7), elapsed: time.Second})
	if got := sum.result(); got.FirstError != "late" || got.Errors != 1 || got.Requests != 4 || got.Name != "x" {
		t.Errorf("merge with a clean slice: %+v", got)
	}
}

func TestSliceOptions(t *testing.T) {
	c := NewClient(4)
	o := Options{Concurrency: 4, Duration: time.Second, Warmup: time.Second}

	// One round is the whole measurement, as before rounds existed.
	if got := sliceOptions(o, 1, 0, c); got.Duration != time.Second || got.Warmup != time.Second || got.Client != c || got.Concurrency != 4 {
		t.Errorf("one round: %+v", got)
	}

	for _, warmup := range []time.Duration{0, 30 * time.Millisecond, time.Second} {
		o.Warmup = warmup
		var total time.Duration
		for r := range 3 { // 1s does not divide by 3
			got := sliceOptions(o, 3, r, c)
			total += got.Duration
			if got.Duration < 333*time.Millisecond || got.Duration > 334*time.Millisecond {
				t.Errorf("round %d: slice %v", r, got.Duration)
			}
			wantWarmup := min(warmup, Rewarmup)
			if r == 0 {
				wantWarmup = warmup
			}
			if got.Warmup != wantWarmup || got.Client != c {
				t.Errorf("warmup %v, round %d: warmup %v, want %v", warmup, r, got.Warmup, wantWarmup)
			}
		}
		if total != time.Second {
			t.Errorf("slices add up to %v, want 1s", total)
		}
	}
}

func TestCheckRounds(t *testing.T) {
	for _, c := range []struct {
		duration time.Duration
		rounds   int
		ok       bool
	}{
		{5 * time.Second, 5, true},
		{5 * time.Second, 1, true},
		{500 * time.Millisecond, 5, true},
		{50 * time.Millisecond, 1, true}, // not split: any duration, as Run
		{5 * time.Second, 0, false},
		{5 * time.Second, -1, false},
		{499 * time.Millisecond, 5, false},
		{time.Second, 11, false},
	} {
		err := CheckRounds(c.duration, c.rounds)
		if (err == nil) != c.ok {
			t.Errorf("CheckRounds(%v, %d) = %v", c.duration, c.rounds, err)
		}
		if err != nil && !strings.Contains(err.Error(), "rounds") {
			t.Errorf("CheckRounds(%v, %d): unclear error %q", c.duration, c.rounds, err)
		}
	}
}

func TestRunRoundsInterleaves(t *testing.T) {
	var mu sync.Mutex
	var order []string // the paths served, each run of equal paths once
	conns := map[string]map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if len(order) == 0 || order[len(order)-1] != r.URL.Path {
			order = append(order, r.URL.Path)
		}
		if conns[r.URL.Path] == nil {
			conns[r.URL.Path] = map[string]bool{}
		}
		conns[r.URL.Path][r.RemoteAddr] = true
		mu.Unlock()
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	target := func(name string) Target {
		return Target{Name: name, URL: func(int, int) string { return srv.URL + "/" + name }}
	}

	const c, rounds = 4, 3
	rr, err := RunRounds(t.Context(), []Target{target("a"), target("b")},
		Options{Concurrency: c, Duration: rounds * MinSlice, Warmup: 20 * time.Millisecond}, rounds)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(order, " "); got != "/a /b /a /b /a /b" {
		t.Errorf("served in the order %s, want /a /b three times", got)
	}
	if len(rr.Results) != 2 || len(rr.PerRound) != rounds {
		t.Fatalf("%d results, %d rounds", len(rr.Results), len(rr.PerRound))
	}
	for i, res := range rr.Results {
		var requests int64
		var elapsed time.Duration
		for r, round := range rr.PerRound {
			// A slice may count no request at all when the machine
			// stalls for longer than it, so no count is asserted.
			if len(round) != 2 || round[i].Name != res.Name {
				t.Fatalf("round %d: %+v", r, round)
			}
			requests += round[i].Requests
			elapsed += round[i].Elapsed
		}
		if res.Requests != requests || res.Elapsed != elapsed || res.Errors != 0 || res.P99 < res.P50 || (res.RPS > 0) != (res.Requests > 0) {
			t.Errorf("%s: %+v, want %d requests in %v", res.Name, res, requests, elapsed)
		}
	}
	// Each target keeps its client, so its connections, over the rounds:
	// a client per slice would dial at least c connections per round.
	for path, seen := range conns {
		t.Logf("%s: %d connections", path, len(seen))
		if len(seen) >= rounds*c {
			t.Errorf("%s: %d connections for %d workers in %d rounds: connections are not kept between rounds", path, len(seen), c, rounds)
		}
	}
}

func TestRunRoundsOneRoundIsRunAll(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	targets := []Target{
		{Name: "a", URL: func(int, int) string { return srv.URL + "/a" }},
		{Name: "b", URL: func(int, int) string { return srv.URL + "/b" }},
	}
	o := Options{Concurrency: 2, Duration: 50 * time.Millisecond} // too short to split, fine for one round
	rr, err := RunRounds(t.Context(), targets, o, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.PerRound) != 1 || len(rr.Results) != 2 {
		t.Fatalf("%+v", rr)
	}
	for i, res := range rr.Results {
		if res != rr.PerRound[0][i] || res.Name != targets[i].Name {
			t.Errorf("target %d: merged %+v, slice %+v", i, res, rr.PerRound[0][i])
		}
	}
	results, err := RunAll(t.Context(), targets, o)
	if err != nil || len(results) != 2 || results[0].Name != "a" || results[1].Name != "b" {
		t.Errorf("RunAll: %+v, %v", results, err)
	}
}

func TestRunRoundsRejectsBadOptions(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { served.Add(1) }))
	defer srv.Close()
	good := Target{Name: "good", URL: func(int, int) string { return srv.URL }}
	o := Options{Concurrency: 2, Duration: time.Second}
	for name, c := range map[string]struct {
		targets []Target
		o       Options
		rounds  int
	}{
		"no rounds":           {[]Target{good}, o, 0},
		"negative rounds":     {[]Target{good}, o, -1},
		"short slices":        {[]Target{good}, Options{Concurrency: 2, Duration: 250 * time.Millisecond}, 3},
		"bad later target":    {[]Target{good, {Name: "no URL"}}, o, 2},
		"too small a client":  {[]Target{good}, Options{Concurrency: 8, Duration: time.Second, Client: http.DefaultClient}, 2},
		"no duration at all":  {[]Target{good}, Options{Concurrency: 2}, 2},
		"no concurrency, one": {[]Target{good}, Options{Duration: time.Second}, 1},
	} {
		rr, err := RunRounds(t.Context(), c.targets, c.o, c.rounds)
		if err == nil || len(rr.Results) != 0 || len(rr.PerRound) != 0 {
			t.Errorf("%s: %+v, %v", name, rr, err)
		}
	}
	if n := served.Load(); n != 0 {
		t.Errorf("%d requests sent despite invalid options", n)
	}
}

func TestRunRoundsStopsOnCancel(t *testing.T) {
	release := make(chan struct{})
	bStarted := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/b" {
			once.Do(func() { close(bStarted) })
			select { // hangs until the client gives up
			case <-r.Context().Done():
			case <-release:
			}
		}
	}))
	defer srv.Close()
	defer close(release) // before srv.Close waits for the handlers
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	targets := []Target{
		{Name: "a", URL: func(int, int) string { return srv.URL + "/a" }},
		{Name: "b", URL: func(int, int) string { return srv.URL + "/b" }},
		{Name: "c", URL: func(int, int) string { return srv.URL + "/c" }},
	}
	type out struct {
		rr  RoundResults
		err error
	}
	done := make(chan out, 1)
	go func() {
		rr, err := RunRounds(ctx, targets, Options{Concurrency: 2, Duration: 3 * MinSlice}, 3)
		done <- out{rr, err}
	}()
	// Cancel once a's first slice is over and b's requests hang.
	select {
	case <-bStarted:
	case <-time.After(time.Minute):
		t.Fatal("b never started")
	}
	cancel()
	select {
	case o := <-done:
		if !errors.Is(o.err, context.Canceled) || !strings.Contains(o.err.Error(), "round 1 of 3, b: ") {
			t.Errorf("err = %v, want round 1 of 3, b: context.Canceled", o.err)
		}
		if len(o.rr.Results) != 2 || o.rr.Results[0].Requests == 0 || o.rr.Results[1].Errors != 0 || len(o.rr.PerRound) != 1 {
			t.Errorf("partial results %+v", o.rr)
		}
	case <-time.After(time.Minute): // a hang guard, not a timing assertion
		t.Fatal("RunRounds did not return after cancellation")
	}
}
