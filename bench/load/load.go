// Package load is the HTTP load generator behind `go run ./bench`: a fixed
// number of workers send requests to one Target (or run its operation) for
// a fixed time, and Run reports the throughput, the latency percentiles
// and the errors.
//
// It also holds everything else the benchmark needs that does not depend on
// the Vigil server package (the bare net/http baseline handler, the HTTP
// calls that initialize, unseal and prepare a Vigil server, the signing of
// the JWT login scenarios' JWTs, the PostgreSQL side of the database
// scenarios and their baseline, the HA cluster's health checks and the
// waits of the failover measurement, and the report), so that all of it
// can be tested on its own.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// Target is what the workers request. URL and Body are called once per
// request with the worker's number (0 ≤ worker < Concurrency) and the
// worker's own request counter i (0, 1, 2, … including warmup requests), so
// they may build distinct keys without coordination. Body may be nil (no
// body). Header is sent with every request and must not be modified while
// Run runs.
//
// A target whose measured unit is not one HTTP request sets Op instead:
// an operation made of several requests (read a credential, then revoke
// it), or of none (a baseline that talks to a database directly).
type Target struct {
	Name   string
	Method string
	URL    func(worker, i int) string
	Body   func(worker, i int) []byte
	Header http.Header
	// Op, when not nil, is what a worker does for each counted unit,
	// instead of sending Method, URL, Body and Header (which are then
	// unused). c is the target's client (see Options.Client). An error
	// counts the operation as failed and its text becomes the Result's
	// FirstError as it is, so it must hold no credential, header or body.
	Op func(ctx context.Context, c *http.Client, worker, i int) error
	// Remote says that the servers the target loads run in other
	// processes: the processor time of this one would not be theirs, so
	// it is not measured.
	Remote bool
}

// Options says how hard and how long to load a Target.
type Options struct {
	// Concurrency is the number of workers, each with at most one request
	// in flight.
	Concurrency int
	// Duration is the measured time.
	Duration time.Duration
	// Warmup runs before Duration; its requests are sent but not counted.
	Warmup time.Duration
	// Client sends the requests. Its Transport must keep at least
	// Concurrency idle connections per host (see NewClient); nil means a
	// NewClient(Concurrency).
	Client *http.Client
}

// Result is one measured run.
type Result struct {
	Name string
	// Requests is the number of requests (for a Target with an Op,
	// operations) that started in the measured window and completed,
	// errors included.
	Requests int64
	// Errors counts transport errors and responses with status ≥ 400,
	// or the operations that failed.
	Errors int64
	// Elapsed runs from the end of the warmup until the last counted
	// request completed; for RunRounds, it is the sum of that time over
	// the target's slices.
	Elapsed time.Duration
	// RPS is Requests / Elapsed.
	RPS float64
	// P50 and P99 are latency percentiles of the counted requests.
	P50, P99 time.Duration
	// CPU is the processor time the whole process (load generator and
	// the servers it runs) used during Elapsed, 0 where it is not
	// measured (a Remote target, or a platform that does not tell).
	CPU time.Duration
	// FirstError describes the first counted error: method, URL path and
	// status or transport error. It never holds request headers, request
	// bodies or query strings.
	FirstError string
}

// NewClient returns a client whose transport keeps concurrency idle
// connections per host, so a benchmark measures requests rather than TCP
// handshakes. It does not follow redirects.
func NewClient(concurrency int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 0 // no overall limit
	t.MaxIdleConnsPerHost = max(concurrency, 1)
	t.MaxConnsPerHost = 0
	t.DisableCompression = true
	return &http.Client{
		Transport: t,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// checkClient rejects a client whose transport would close connections
// between requests at this concurrency.
func checkClient(c *http.Client, concurrency int) error {
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		return nil // not ours to inspect
	}
	idle := t.MaxIdleConnsPerHost
	if idle == 0 {
		idle = http.DefaultMaxIdleConnsPerHost
	}
	if idle < concurrency {
		return fmt.Errorf("load: client transport keeps %d idle connections per host, fewer than concurrency %d (use NewClient)", idle, concurrency)
	}
	if t.MaxIdleConns != 0 && t.MaxIdleConns < concurrency {
		return fmt.Errorf("load: client transport keeps %d idle connections, fewer than concurrency %d (use NewClient)", t.MaxIdleConns, concurrency)
	}
	return nil
}

// tally is a measured run in raw form, every counted latency kept, so that
// runs of the same target merge exactly: percentiles of a merge are those
// of the union of the samples, not an average of percentiles.
type tally struct {
	name      string
	latencies []time.Duration // in no particular order
	errors    int64
	firstErr  string
	firstAt   time.Time // when firstErr's request completed
	elapsed   time.Duration
	cpu       time.Duration
}

// merge adds b's samples, errors and elapsed time to t and keeps the
// earlier of the two first errors. t's name stays.
func (t *tally) merge(b tally) {
	t.latencies = append(t.latencies, b.latencies...)
	t.errors += b.errors
	if b.firstErr != "" && (t.firstErr == "" || b.firstAt.Before(t.firstAt)) {
		t.firstErr, t.firstAt = b.firstErr, b.firstAt
	}
	t.elapsed += b.elapsed
	t.cpu += b.cpu
}

// result summarizes t. It sorts t.latencies in place.
func (t tally) result() Result {
	slices.Sort(t.latencies)
	res := Result{
		Name:       t.name,
		Requests:   int64(len(t.latencies)),
		Errors:     t.errors,
		Elapsed:    t.elapsed,
		P50:        Percentile(t.latencies, 50),
		P99:        Percentile(t.latencies, 99),
		CPU:        t.cpu,
		FirstError: t.firstErr,
	}
	if t.elapsed > 0 {
		res.RPS = float64(res.Requests) / t.elapsed.Seconds()
	}
	return res
}

// worker is one worker's tally; only that worker writes it until run has
// waited for all of them.
type worker struct {
	tally
	lastEnd time.Time
}

// CPUPerRequest is CPU / Requests, 0 if either is 0.
func (r Result) CPUPerRequest() time.Duration {
	if r.CPU <= 0 || r.Requests == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Requests)
}

// Busy is the share of cpus processors the process kept busy during
// Elapsed (CPU / (Elapsed × cpus)), 0 if CPU was not measured.
func (r Result) Busy(cpus int) float64 {
	if r.CPU <= 0 || r.Elapsed <= 0 || cpus < 1 {
		return 0
	}
	return r.CPU.Seconds() / (r.Elapsed.Seconds() * float64(cpus))
}

// Run loads t with o.Concurrency workers for o.Warmup plus o.Duration and
// reports the measured part. If ctx ends first, Run stops the workers
// (aborting requests in flight), and returns what it measured so far with
// ctx's error.
func Run(ctx context.Context, t Target, o Options) (Result, error) {
	s, err := run(ctx, t, o)
	return s.result(), err
}

// check rejects options and targets Run cannot use.
func check(t Target, o Options) error {
	switch {
	case o.Concurrency < 1:
		return fmt.Errorf("load: concurrency %d < 1", o.Concurrency)
	case o.Duration <= 0:
		return fmt.Errorf("load: duration %v ≤ 0", o.Duration)
	case o.Warmup < 0:
		return fmt.Errorf("load: warmup %v < 0", o.Warmup)
	case t.URL == nil && t.Op == nil:
		return errors.New("load: target has no URL and no Op")
	case o.Client != nil:
		return checkClient(o.Client, o.Concurrency)
	}
	return nil
}

// run is Run without the summary: it returns the raw samples, so that
// RunRounds can merge the slices of one target.
func run(ctx context.Context, t Target, o Options) (tally, error) {
	if err := check(t, o); err != nil {
		return tally{name: t.Name}, err
	}
	method := t.Method
	if method == "" {
		method = http.MethodGet
	}
	client := o.Client
	if client == nil {
		client = NewClient(o.Concurrency)
		defer client.CloseIdleConnections()
	}

	start := time.Now()
	measureFrom := start.Add(o.Warmup)
	stopAt := measureFrom.Add(o.Duration)
	// Guess each worker's share so that appending rarely reallocates
	// during the measurement: 50k requests/s overall is a generous
	// loopback rate on a small machine.
	perWorker := int(50000*o.Duration.Seconds())/o.Concurrency + 64
	perWorker = min(perWorker, 1<<20)

	// The process's processor time at the start of the measured window,
	// taken by a goroutine of its own so that no worker is delayed.
	cpuFrom := make(chan time.Duration, 1)
	if !t.Remote {
		go func() {
			time.Sleep(time.Until(measureFrom))
			if c, ok := processCPU(); ok {
				cpuFrom <- c
			}
			close(cpuFrom)
		}()
	}

	workers := make([]worker, o.Concurrency)
	var wg sync.WaitGroup
	for w := range workers {
		wk := &workers[w]
		wk.latencies = make([]time.Duration, 0, perWorker)
		hdr := t.Header.Clone() // one read-only copy per worker
		wg.Go(func() {
			for i := 0; ; i++ {
				if ctx.Err() != nil {
					return
				}
				begin := time.Now()
				if !begin.Before(stopAt) {
					return
				}
				var msg string
				if t.Op != nil {
					if err := t.Op(ctx, client, w, i); err != nil {
						msg = err.Error()
					}
				} else {
					msg = do(ctx, client, method, t, hdr, w, i)
				}
				end := time.Now()
				if ctx.Err() != nil {
					return // aborted, not an error of the target
				}
				if begin.Before(measureFrom) {
					continue // warmup
				}
				wk.latencies = append(wk.latencies, end.Sub(begin))
				wk.lastEnd = end
				if msg != "" {
					wk.errors++
					if wk.firstErr == "" {
						wk.firstErr, wk.firstAt = msg, end
					}
				}
			}
		})
	}
	wg.Wait()

	n := 0
	for i := range workers {
		n += len(workers[i].latencies)
	}
	sum := tally{name: t.Name, latencies: make([]time.Duration, 0, n)}
	lastEnd := measureFrom
	for i := range workers {
		sum.merge(workers[i].tally) // the workers' elapsed is 0
		if workers[i].lastEnd.After(lastEnd) {
			lastEnd = workers[i].lastEnd
		}
	}
	sum.elapsed = lastEnd.Sub(measureFrom)
	if !t.Remote && ctx.Err() == nil {
		if from, ok := <-cpuFrom; ok {
			if to, ok := processCPU(); ok {
				sum.cpu = to - from
			}
		}
	}
	return sum, ctx.Err()
}

// do sends one request and drains and closes the response. It returns ""
// on success, or a description of the failure that names the method, the
// URL's path and the status or transport error, never headers, bodies or
// the query string, which may carry tokens.
func do(ctx context.Context, c *http.Client, method string, t Target, hdr http.Header, w, i int) string {
	rawURL := t.URL(w, i)
	var body io.Reader
	if t.Body != nil {
		if b := t.Body(w, i); b != nil {
			body = bytes.NewReader(b)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, body)
	if err != nil {
		return method + " " + safePath(rawURL) + ": invalid request"
	}
	if len(hdr) > 0 {
		req.Header = hdr
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the full URL
		}
		return method + " " + safePath(rawURL) + ": " + err.Error()
	}
	defer resp.Body.Close()
	if resp.StatusCode < 400 {
		io.Copy(io.Discard, resp.Body)
		return ""
	}
	// Keep the start of the error response for diagnosis (Vault-style
	// errors say what went wrong); it is the server's answer, not ours.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	io.Copy(io.Discard, resp.Body)
	msg := fmt.Sprintf("%s %s: status %d", method, safePath(rawURL), resp.StatusCode)
	if s := printable(snippet); s != "" {
		msg += ": " + s
	}
	return msg
}

// safePath is rawURL's path alone.
func safePath(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.EscapedPath()
}

// printable trims b and replaces control and non-ASCII bytes by '?'.
func printable(b []byte) string {
	b = bytes.TrimSpace(b)
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	return string(out)
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of sorted, an
// ascending slice, by the nearest-rank method: the smallest value such that
// at least p% of the values are ≤ it. It returns 0 for an empty slice; p is
// clamped to [0, 100] and rounded to a hundredth of a percent, and p = 0
// gives the minimum.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if !(p > 0) { // also NaN
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	// rank = ceil(p/100 · n), computed in integers of hundredths of a
	// percent to avoid 0.29·100 = 28.999… style rounding surprises.
	basis := int64(p*100 + 0.5) // p in hundredths of a percent
	rank := (basis*int64(n) + 9999) / 10000
	rank = max(rank, 1)
	rank = min(rank, int64(n))
	return sorted[rank-1]
}
