package load

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const secretToken = "hvs.SECRET-TOKEN-do-not-print"

func TestRunCountsEveryRequest(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()

	for _, warmup := range []time.Duration{0, 50 * time.Millisecond} {
		served.Store(0)
		res, err := Run(t.Context(), Target{Name: "get", URL: func(int, int) string { return srv.URL }},
			Options{Concurrency: 4, Duration: 150 * time.Millisecond, Warmup: warmup})
		if err != nil {
			t.Fatal(err)
		}
		n := served.Load()
		if res.Requests == 0 || res.Errors != 0 || res.FirstError != "" {
			t.Fatalf("warmup %v: %+v", warmup, res)
		}
		if warmup == 0 && n != res.Requests {
			t.Errorf("no warmup: server saw %d requests, Run reported %d", n, res.Requests)
		}
		if n < res.Requests {
			t.Errorf("warmup %v: server saw %d requests, fewer than the %d Run reported", warmup, n, res.Requests)
		}
		if res.Name != "get" || res.Elapsed <= 0 || res.RPS <= 0 || res.P50 <= 0 || res.P99 < res.P50 {
			t.Errorf("warmup %v: implausible result %+v", warmup, res)
		}
	}
}

// TestRunMeasuresCPU loads a handler that keeps a processor busy for
// about a millisecond a request: the process's processor time per
// request is at least that, unless the target is Remote, whose processor
// time is not measured.
func TestRunMeasuresCPU(t *testing.T) {
	if _, ok := processCPU(); !ok {
		t.Skip("this platform does not tell a process's processor time")
	}
	const spin = time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for start := time.Now(); time.Since(start) < spin; {
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	target := Target{Name: "spin", URL: func(int, int) string { return srv.URL }}
	o := Options{Concurrency: 2, Duration: 200 * time.Millisecond, Warmup: 20 * time.Millisecond}
	res, err := Run(t.Context(), target, o)
	if err != nil {
		t.Fatal(err)
	}
	// Spinning against the wall clock: a request preempted mid-spin
	// uses less processor time than spin, so allow half of it.
	if got := res.CPUPerRequest(); got < spin/2 || res.Busy(runtime.NumCPU()) <= 0 {
		t.Errorf("CPU per request = %v, busy %.2f, for requests that spin for %v (%+v)", got, res.Busy(runtime.NumCPU()), spin, res)
	}
	target.Remote = true
	if res, err := Run(t.Context(), target, o); err != nil || res.CPU != 0 || res.CPUPerRequest() != 0 || res.Busy(2) != 0 {
		t.Errorf("Remote target: CPU %v, per request %v, busy %v, error %v; want none measured", res.CPU, res.CPUPerRequest(), res.Busy(2), err)
	}
}

func TestRunReusesConnections(t *testing.T) {
	var mu sync.Mutex
	conns := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		w.Write([]byte(strings.Repeat("x", 64<<10))) // must be drained to reuse
	}))
	defer srv.Close()
	const c = 8
	res, err := Run(t.Context(), Target{URL: func(int, int) string { return srv.URL }},
		Options{Concurrency: c, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests <= 4*c {
		t.Skipf("too few requests (%d) to tell", res.Requests)
	}
	// net/http returns a connection to the pool asynchronously, so a
	// worker may now and then dial before its old connection is back;
	// without reuse there would be one connection per request. (A bound
	// in requests, not workers, fails a slow run that made few requests
	// over perfectly reused connections: c of them are the least there
	// can be.)
	if len(conns) > 2*c {
		t.Errorf("%d connections for %d workers and %d requests: connections are not reused", len(conns), c, res.Requests)
	}
}

func TestRunSendsTargetPerWorker(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	var badHeader, badBody atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.Header.Get("X-Vault-Token") != secretToken || r.Header.Get("Content-Type") != "application/json" {
			badHeader.Add(1)
		}
		if string(b) != `{"k":"`+r.URL.Path[1:]+`"}` {
			badBody.Add(1)
		}
		mu.Lock()
		seen[r.URL.Path]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	key := func(w, i int) string { return strconv.Itoa(w) + "-" + strconv.Itoa(i) }
	res, err := Run(t.Context(), Target{
		Method: http.MethodPost,
		URL:    func(w, i int) string { return srv.URL + "/" + key(w, i) },
		Body:   func(w, i int) []byte { return []byte(`{"k":"` + key(w, i) + `"}`) },
		Header: http.Header{"X-Vault-Token": {secretToken}, "Content-Type": {"application/json"}},
	}, Options{Concurrency: 3, Duration: 100 * time.Millisecond, Warmup: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || badHeader.Load() != 0 || badBody.Load() != 0 {
		t.Fatalf("errors %d, bad headers %d, bad bodies %d", res.Errors, badHeader.Load(), badBody.Load())
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("%s requested %d times", p, n)
		}
	}
	if int64(len(seen)) < res.Requests {
		t.Errorf("%d distinct keys for %d requests", len(seen), res.Requests)
	}
}

func TestRunCountsErrorsWithoutSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"errors":["internal error"]}`))
	}))
	defer srv.Close()
	target := Target{
		Method: http.MethodPut,
		URL:    func(int, int) string { return srv.URL + "/v1/kv/data/x?token=" + secretToken },
		Body:   func(int, int) []byte { return []byte(`{"password":"` + secretToken + `"}`) },
		Header: http.Header{"X-Vault-Token": {secretToken}},
	}
	res, err := Run(t.Context(), target, Options{Concurrency: 2, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != res.Requests {
		t.Fatalf("requests %d, errors %d: every request should be an error", res.Requests, res.Errors)
	}
	want := `PUT /v1/kv/data/x: status 500: {"errors":["internal error"]}`
	if res.FirstError != want {
		t.Errorf("FirstError = %q, want %q", res.FirstError, want)
	}

	// A transport error: nothing listens any more.
	srv.Close()
	res, err = Run(t.Context(), target, Options{Concurrency: 2, Duration: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != res.Requests || !strings.HasPrefix(res.FirstError, "PUT /v1/kv/data/x: ") {
		t.Fatalf("closed server: %+v", res)
	}
	if strings.Contains(res.FirstError, secretToken) || strings.Contains(res.FirstError, "token=") {
		t.Errorf("FirstError leaks the request: %q", res.FirstError)
	}
}

// A target with an Op runs it instead of a request: each call counted
// once, with the target's client and the worker's own counter, and its
// errors counted with their text.
func TestRunOp(t *testing.T) {
	client := NewClient(4)
	var mu sync.Mutex
	seen := map[[2]int]int{}
	var calls, badClient atomic.Int64
	boom := errors.New("create user: connection refused")
	res, err := Run(t.Context(), Target{
		Name: "op",
		URL:  func(int, int) string { panic("URL called for a target with an Op") },
		Op: func(ctx context.Context, c *http.Client, w, i int) error {
			calls.Add(1)
			if c != client {
				badClient.Add(1)
			}
			mu.Lock()
			seen[[2]int{w, i}]++
			mu.Unlock()
			if i%3 == 2 {
				return boom
			}
			return nil
		},
	}, Options{Concurrency: 4, Duration: 100 * time.Millisecond, Warmup: 20 * time.Millisecond, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Requests > calls.Load() || res.Errors == 0 || res.Errors >= res.Requests || res.FirstError != boom.Error() {
		t.Errorf("result %+v for %d calls", res, calls.Load())
	}
	if badClient.Load() != 0 {
		t.Errorf("%d calls without the target's client", badClient.Load())
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("worker %d, operation %d: called %d times", k[0], k[1], n)
		}
	}

	// An Op and no URL is a target; neither is not.
	op := func(context.Context, *http.Client, int, int) error { return nil }
	if _, err := Run(t.Context(), Target{Op: op}, Options{Concurrency: 1, Duration: 10 * time.Millisecond}); err != nil {
		t.Errorf("target with an Op only: %v", err)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // every request hangs until the client gives up
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release) // before srv.Close waits for the handlers
	ctx, cancel := context.WithCancel(t.Context())
	type out struct {
		res Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := Run(ctx, Target{URL: func(int, int) string { return srv.URL }},
			Options{Concurrency: 4, Duration: time.Hour})
		done <- out{res, err}
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case o := <-done:
		if !errors.Is(o.err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", o.err)
		}
		if o.res.Errors != 0 {
			t.Errorf("aborted requests counted as errors: %+v", o.res)
		}
	case <-time.After(time.Minute): // a hang guard, not a timing assertion
		t.Fatal("Run did not return after cancellation")
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	url := func(int, int) string { return "http://127.0.0.1:1" }
	small := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for name, c := range map[string]struct {
		t Target
		o Options
	}{
		"no concurrency":       {Target{URL: url}, Options{Duration: time.Second}},
		"no duration":          {Target{URL: url}, Options{Concurrency: 1}},
		"negative warmup":      {Target{URL: url}, Options{Concurrency: 1, Duration: time.Second, Warmup: -1}},
		"no URL":               {Target{}, Options{Concurrency: 1, Duration: time.Second}},
		"default client":       {Target{URL: url}, Options{Concurrency: 8, Duration: time.Second, Client: http.DefaultClient}},
		"too few idle conns":   {Target{URL: url}, Options{Concurrency: 8, Duration: time.Second, Client: small}},
		"too few idle overall": {Target{URL: url}, Options{Concurrency: 8, Duration: time.Second, Client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, MaxIdleConns: 2}}}},
	} {
		if _, err := Run(t.Context(), c.t, c.o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if err := checkClient(NewClient(64), 64); err != nil {
		t.Errorf("NewClient(64) rejected: %v", err)
	}
}

func TestPercentile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1 // 1 … 100
	}
	thousand := make([]int, 1000)
	for i := range thousand {
		thousand[i] = i + 1 // 1 … 1000
	}
	for _, c := range []struct {
		vals []int
		p    float64
		want int
	}{
		{nil, 50, 0},
		{[]int{7}, 0, 7},
		{[]int{7}, 50, 7},
		{[]int{7}, 100, 7},
		{[]int{1, 2}, 50, 1},
		{[]int{1, 2}, 51, 2},
		{[]int{1, 2, 3, 4}, 50, 2},
		{[]int{1, 2, 3, 4}, 75, 3},
		{[]int{1, 2, 3, 4}, 76, 4},
		{[]int{15, 20, 35, 40, 50}, 5, 15},
		{[]int{15, 20, 35, 40, 50}, 30, 20},
		{[]int{15, 20, 35, 40, 50}, 40, 20},
		{[]int{15, 20, 35, 40, 50}, 50, 35},
		{[]int{15, 20, 35, 40, 50}, 100, 50},
		{hundred, 0, 1},
		{hundred, 1, 1},
		{hundred, 29, 29}, // 0.29·100 is 28.999… in floating point
		{hundred, 50, 50},
		{hundred, 99, 99},
		{hundred, 99.5, 100},
		{hundred, 100, 100},
		{hundred, 150, 100},
		{hundred, -5, 1},
		{thousand, 50, 500},
		{thousand, 99, 990},
		{thousand, 99.9, 999},
		{thousand, 99.99, 1000},
	} {
		got := Percentile(ms(c.vals...), c.p)
		if want := time.Duration(c.want) * time.Millisecond; got != want {
			t.Errorf("Percentile(%d values, %v) = %v, want %v", len(c.vals), c.p, got, want)
		}
	}
}
