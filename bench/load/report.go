package load

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The scenarios of `go run ./bench`, by Result.Name.
const (
	BareGET = "bare GET"
	KV2Read = "kv2 read"
	// KV2ReadAudited reads from a second server that has a file audit
	// device enabled.
	KV2ReadAudited = "kv2 read audited"
	BarePOST       = "bare POST"
	KV2Write       = "kv2 write"
	TokenCreate    = "token create"
	BatchCreate    = "batch create"
	AppRoleLogin   = "approle login"
	// JWTLoginES256 and JWTLoginRS256 log in with JWTs signed with ES256
	// (ECDSA P-256) and RS256 (RSA 2048).
	JWTLoginES256 = "jwt login ES256"
	JWTLoginRS256 = "jwt login RS256"
	// PGCreateDrop creates and drops a PostgreSQL user straight over pgx,
	// as DBCreds has Vigil do (see PGBaseline); DBCreds reads a credential
	// from Vigil's database secrets engine and revokes it. Both need a
	// PostgreSQL server, and each of their operations is two steps.
	PGCreateDrop = "pg create/drop"
	DBCreds      = "db creds"
	// KV2ReadActive and KV2WriteActive read and write through the active
	// server of a two-server HA cluster on PostgreSQL, KV2ReadStandby and
	// KV2WriteStandby through its standby, which forwards every request
	// to the active server. They need a PostgreSQL server.
	KV2ReadActive   = "kv2 read active"
	KV2ReadStandby  = "kv2 read standby"
	KV2WriteActive  = "kv2 write active"
	KV2WriteStandby = "kv2 write standby"
)

// Scenarios are the scenarios of Suite.Targets, in their order.
var Scenarios = []string{BareGET, KV2Read, KV2ReadAudited, BarePOST, KV2Write, TokenCreate, BatchCreate, AppRoleLogin, JWTLoginES256, JWTLoginRS256, PGCreateDrop, DBCreds,
	KV2ReadActive, KV2ReadStandby, KV2WriteActive, KV2WriteStandby}

// DatabaseScenarios are the Scenarios of the database secrets engine,
// which need a PostgreSQL server.
var DatabaseScenarios = []string{PGCreateDrop, DBCreds}

// HAScenarios are the Scenarios of the HA cluster, which need a
// PostgreSQL server too.
var HAScenarios = []string{KV2ReadActive, KV2ReadStandby, KV2WriteActive, KV2WriteStandby}

// RatioSpec names a throughput ratio Num / Den and its goal (0: for
// information only).
type RatioSpec struct {
	Num, Den string
	Goal     float64
}

// Ratios are the ratios the benchmark reports, in the order it prints
// them. The token and login scenarios, whose requests carry a body, are
// compared with the bare POST.
var Ratios = []RatioSpec{
	{KV2Read, BareGET, 0.85},
	{KV2ReadAudited, KV2Read, 0.80},
	{KV2Write, BareGET, 0.50},
	{KV2Write, BarePOST, 0},    // information: the cost of the write path beyond HTTP
	{TokenCreate, BarePOST, 0}, // information: a persisted, leased service token
	{BatchCreate, BarePOST, 0}, // information: an encrypted token, nothing stored
	{AppRoleLogin, BarePOST, 0.25},
	{JWTLoginES256, BarePOST, 0}, // information: a login with a signature to verify
	{JWTLoginRS256, BarePOST, 0},
	{DBCreds, PGCreateDrop, 0}, // information: Vigil's cost above the SQL it runs
	// Information: what forwarding through a standby costs.
	{KV2ReadStandby, KV2ReadActive, 0},
	{KV2WriteStandby, KV2WriteActive, 0},
}

// Ratio is a measured RatioSpec.
type Ratio struct {
	Num   string  `json:"num"`
	Den   string  `json:"den"`
	Value float64 `json:"value"`
	Goal  float64 `json:"goal,omitempty"`
	// Met reports Value ≥ Goal; it is false when there is no goal.
	Met bool `json:"met"`
	// PerRound is the ratio in each round of an interleaved run (see
	// RoundRatios), for information only: its spread shows how noisy the
	// machine was. Value and Met are over all rounds.
	PerRound []float64 `json:"per_round,omitempty"`
}

// ComputeRatios measures specs over results (by name), skipping a ratio
// whose scenario is missing or measured no throughput.
func ComputeRatios(results []Result, specs []RatioSpec) []Ratio {
	rps := rpsByName(results)
	var out []Ratio
	for _, s := range specs {
		num, ok1 := rps[s.Num]
		den, ok2 := rps[s.Den]
		if !ok1 || !ok2 || den <= 0 {
			continue
		}
		r := Ratio{Num: s.Num, Den: s.Den, Value: num / den, Goal: s.Goal}
		r.Met = s.Goal > 0 && r.Value >= s.Goal
		out = append(out, r)
	}
	return out
}

// RoundRatios returns a copy of ratios with each one's PerRound set to its
// value in every round of perRound (perRound[r] holding round r's results,
// as RunRounds returns them), leaving out the rounds where it cannot be
// computed.
func RoundRatios(ratios []Ratio, perRound [][]Result) []Ratio {
	out := make([]Ratio, len(ratios))
	copy(out, ratios)
	for i := range out {
		out[i].PerRound = nil // not the caller's backing array
	}
	for _, round := range perRound {
		rps := rpsByName(round)
		for i := range out {
			num, ok1 := rps[out[i].Num]
			den, ok2 := rps[out[i].Den]
			if ok1 && ok2 && den > 0 {
				out[i].PerRound = append(out[i].PerRound, num/den)
			}
		}
	}
	return out
}

// rpsByName maps each result's name to its throughput.
func rpsByName(results []Result) map[string]float64 {
	rps := make(map[string]float64, len(results))
	for _, r := range results {
		rps[r.Name] = r.RPS
	}
	return rps
}

// Report is one benchmark run: the environment, the settings and the
// results. It holds nothing secret.
type Report struct {
	GoVersion   string        `json:"go_version"`
	GOOS        string        `json:"goos"`
	GOARCH      string        `json:"goarch"`
	GOMAXPROCS  int           `json:"gomaxprocs"`
	NumCPU      int           `json:"num_cpu"`
	Concurrency int           `json:"concurrency"`
	Storage     string        `json:"storage"`
	Duration    time.Duration `json:"-"`
	// Rounds is the number of slices Duration was split into, each
	// scenario running one slice per round (see RunRounds).
	Rounds    int           `json:"rounds"`
	Warmup    time.Duration `json:"-"`
	Keys      int           `json:"keys"`
	ValueSize int           `json:"value_size"`
	// BareBodyBytes and KVReadBodyBytes are the sizes of the bare GET
	// answer and of a real KV v2 read answer, which should be close;
	// KVReadBodyBytes is 0 when the kv2 read scenario does not run.
	BareBodyBytes   int `json:"bare_body_bytes"`
	KVReadBodyBytes int `json:"kv_read_body_bytes"`
	// PostgreSQL is the version of the database scenarios' server, and
	// PGConns the connections each side has to it (Vigil's connection's
	// max_open_connections, the baseline's pool); both are empty when
	// neither scenario runs.
	PostgreSQL string `json:"postgresql,omitempty"`
	PGConns    int    `json:"pg_conns,omitempty"`
	// HAPostgreSQL is the version of the PostgreSQL server the HA
	// cluster's servers share, HAServers their number; both are empty
	// when neither an HA scenario nor the failover measurement runs.
	HAPostgreSQL string `json:"ha_postgresql,omitempty"`
	HAServers    int    `json:"ha_servers,omitempty"`
	// Failover is the failover measurement, nil when it does not run.
	Failover *Failover `json:"failover,omitempty"`
	Results  []Result  `json:"-"`
	Ratios   []Ratio   `json:"ratios"`
}

// jsonResult is Result for JSON, with durations in milliseconds.
type jsonResult struct {
	Name       string  `json:"name"`
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	ElapsedSec float64 `json:"elapsed_s"`
	RPS        float64 `json:"rps"`
	P50ms      float64 `json:"p50_ms"`
	P99ms      float64 `json:"p99_ms"`
	// CPUus is the process's processor time per request in µs, and
	// Busy the share of the machine's processors it kept busy; both
	// absent where not measured.
	CPUus      float64 `json:"cpu_per_request_us,omitempty"`
	Busy       float64 `json:"busy,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// WriteJSON writes r as one indented JSON object.
func (r Report) WriteJSON(w io.Writer) error {
	type alias Report
	results := make([]jsonResult, len(r.Results))
	for i, x := range r.Results {
		results[i] = jsonResult{
			Name: x.Name, Requests: x.Requests, Errors: x.Errors,
			ElapsedSec: x.Elapsed.Seconds(), RPS: x.RPS,
			P50ms: ms(x.P50), P99ms: ms(x.P99), FirstError: x.FirstError,
			CPUus: float64(x.CPUPerRequest()) / float64(time.Microsecond), Busy: x.Busy(r.NumCPU),
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		alias
		DurationSec float64      `json:"duration_s"`
		WarmupSec   float64      `json:"warmup_s"`
		Results     []jsonResult `json:"results"`
	}{alias(r), r.Duration.Seconds(), r.Warmup.Seconds(), results})
}

// WriteText writes r as a table followed by the ratios and any errors.
func (r Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "%s %s/%s, GOMAXPROCS=%d (NumCPU=%d), concurrency=%d, storage=%s, keys=%d, value size=%d B, %v per scenario in %s after %v warmup\n\n",
		r.GoVersion, r.GOOS, r.GOARCH, r.GOMAXPROCS, r.NumCPU, r.Concurrency, r.Storage, r.Keys, r.ValueSize, r.Duration, plural(r.Rounds, "round"), r.Warmup)
	if r.KVReadBodyBytes > 0 { // only when kv2 read is measured
		fmt.Fprintf(ew, "response bodies: bare GET %d B, kv2 read %d B\n\n", r.BareBodyBytes, r.KVReadBodyBytes)
	}
	if r.PostgreSQL != "" { // only when a database scenario is measured
		fmt.Fprintf(ew, "postgresql %s, %s for Vigil's database engine and as many for the baseline\n\n", r.PostgreSQL, plural(r.PGConns, "connection"))
	}
	if r.HAPostgreSQL != "" { // only when the HA cluster runs
		fmt.Fprintf(ew, "ha: %d vigil server processes (1 active, %d standby) on postgresql %s, in a database of their own\n\n", r.HAServers, r.HAServers-1, r.HAPostgreSQL)
	}
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\treq/s\tp50\tp99\trequests\terrors\tcpu/req\tbusy\t")
	for _, x := range r.Results {
		cpu, busy := "-", "-"
		if c := x.CPUPerRequest(); c > 0 {
			cpu, busy = fmtDur(c), fmt.Sprintf("%.0f%%", 100*x.Busy(r.NumCPU))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%d\t%d\t%s\t%s\t\n", x.Name, x.RPS, fmtDur(x.P50), fmtDur(x.P99), x.Requests, x.Errors, cpu, busy)
	}
	tw.Flush()
	fmt.Fprintln(ew)
	for _, q := range r.Ratios {
		if q.Goal > 0 {
			verdict := "met"
			if !q.Met {
				verdict = "NOT met"
			}
			fmt.Fprintf(ew, "%s / %s = %.2f (goal ≥ %.2f: %s)\n", q.Num, q.Den, q.Value, q.Goal, verdict)
		} else {
			fmt.Fprintf(ew, "%s / %s = %.2f (for information)\n", q.Num, q.Den, q.Value)
		}
	}
	if spread := roundSpread(r.Ratios); spread != "" {
		fmt.Fprintf(ew, "\nper round, min–max of %d: %s\n", r.Rounds, spread)
	}
	if f := r.Failover; f != nil {
		writeFailover(ew, *f)
	}
	for _, x := range r.Results {
		if x.FirstError != "" {
			fmt.Fprintf(ew, "\n%s: %d errors; first: %s\n", x.Name, x.Errors, x.FirstError)
		}
	}
	return ew.err
}

// roundSpread describes the range of each ratio over the rounds, as
// "kv2 read / bare GET 0.70–0.85, …", or returns "" if no ratio has more
// than one round. Its wording differs from the ratio lines' ("… = 0.xx")
// so that a search for those finds only them.
func roundSpread(ratios []Ratio) string {
	var parts []string
	for _, q := range ratios {
		if len(q.PerRound) < 2 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s / %s %.2f–%.2f", q.Num, q.Den, slices.Min(q.PerRound), slices.Max(q.PerRound)))
	}
	return strings.Join(parts, ", ")
}

// writeFailover writes the failover lines: each time after a kill, their
// median and maximum, and the time after a freeze. Like the ratio lines,
// "failover median = " and "failover frozen = " begin one line each, for
// a script to grep.
func writeFailover(w io.Writer, f Failover) {
	if len(f.Kills) == 0 && f.Frozen == 0 {
		return
	}
	fmt.Fprintln(w)
	if len(f.Kills) > 0 {
		times := make([]string, len(f.Kills))
		for i, d := range f.Kills {
			times[i] = fmtMS(d)
		}
		fmt.Fprintf(w, "failover after kill -9 of the active server, %s: %s\n", plural(len(f.Kills), "time"), strings.Join(times, " "))
		fmt.Fprintf(w, "failover median = %s, max = %s\n", fmtMS(f.Median()), fmtMS(f.Max()))
	}
	if f.Frozen > 0 {
		fmt.Fprintf(w, "failover frozen = %s (SIGSTOP of the active server, for information)\n", fmtMS(f.Frozen))
	}
}

// fmtMS prints d in whole milliseconds.
func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.0fms", ms(d))
}

// plural is "1 round", "5 rounds".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// fmtDur prints d in a unit fitting latencies: µs below 1 ms, else ms.
func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.2fms", ms(d))
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
