package load

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"time"
)

// MinSlice is the shortest slice RunRounds accepts when it splits the
// measured time: a shorter slice would weigh its ramp-up and its last
// requests draining as much as the steady load it is meant to measure.
const MinSlice = 100 * time.Millisecond

// Rewarmup is the warmup of every slice after a target's first: enough for
// its kept-alive connections and the server's caches to be hot again after
// the other targets ran, short enough not to waste the run.
const Rewarmup = 100 * time.Millisecond

// RoundResults is what RunRounds measured.
type RoundResults struct {
	// Results holds one Result per target, in the order of the targets:
	// the merge of its slices over all rounds.
	Results []Result
	// PerRound[r] holds round r's slice of each target, in the same order.
	PerRound [][]Result
}

// CheckRounds rejects a number of rounds that RunRounds cannot split
// duration into: fewer than one, or, when duration is split, slices
// shorter than MinSlice.
func CheckRounds(duration time.Duration, rounds int) error {
	if rounds < 1 {
		return fmt.Errorf("load: rounds %d < 1", rounds)
	}
	if slice := duration / time.Duration(rounds); rounds > 1 && slice < MinSlice {
		return fmt.Errorf("load: %v in %d rounds makes slices of %v, shorter than %v: use fewer rounds or a longer duration",
			duration, rounds, slice, MinSlice)
	}
	return nil
}

// RunRounds measures targets interleaved, so that slow drifts of the
// machine's load (other tenants of a shared host) weigh on all targets
// alike instead of on whichever ran while the machine was busy: o.Duration
// is split into rounds equal slices, and round r runs every target for one
// slice, in order, before round r+1 starts.
//
// o.Warmup precedes each target's first slice only; later slices get
// min(o.Warmup, Rewarmup). Each target keeps one client over all its
// rounds, so its connections stay open in between (o.Client if set,
// otherwise a NewClient closed after its last slice). It stops at the
// first error and returns it with what it measured so far: the targets
// with at least one slice in Results and the rounds begun in PerRound.
func RunRounds(ctx context.Context, targets []Target, o Options, rounds int) (RoundResults, error) {
	var out RoundResults
	for i, t := range targets {
		if err := check(t, o); err != nil {
			return out, fmt.Errorf("%s: %w", targetName(t.Name, i), err)
		}
	}
	if err := CheckRounds(o.Duration, rounds); err != nil {
		return out, err
	}
	clients := make([]*http.Client, len(targets))
	for i := range clients {
		clients[i] = o.Client
		if o.Client == nil {
			clients[i] = NewClient(o.Concurrency)
			defer clients[i].CloseIdleConnections() // if an error ends the rounds early
		}
	}
	totals := make([]tally, len(targets))
	for i, t := range targets {
		totals[i].name = t.Name
	}
	for r := range rounds {
		out.PerRound = append(out.PerRound, make([]Result, 0, len(targets)))
		for i, t := range targets {
			// Collect the garbage of the previous slice (another
			// target's, on both client and server side) now, so that
			// it is not collected during this slice, which would pay
			// for it.
			runtime.GC()
			s, err := run(ctx, t, sliceOptions(o, rounds, r, clients[i]))
			if r == rounds-1 && o.Client == nil {
				// Its last slice: its connections would only idle
				// beside the next targets.
				clients[i].CloseIdleConnections()
			}
			totals[i].merge(s)
			out.PerRound[r] = append(out.PerRound[r], s.result())
			if err != nil {
				measured := len(targets)
				if r == 0 {
					measured = i + 1
				}
				out.Results = summarize(totals[:measured])
				return out, sliceError(err, t.Name, i, r, rounds)
			}
		}
	}
	out.Results = summarize(totals)
	return out, nil
}

// sliceOptions returns the options of round r (0-based) out of rounds.
// The slices add up to o.Duration exactly: the last one also takes the
// remainder of the division, a few nanoseconds at most.
func sliceOptions(o Options, rounds, r int, c *http.Client) Options {
	s := o
	s.Client = c
	s.Duration = o.Duration / time.Duration(rounds)
	if r == rounds-1 {
		s.Duration = o.Duration - s.Duration*time.Duration(rounds-1)
	}
	if r > 0 {
		s.Warmup = min(o.Warmup, Rewarmup)
	}
	return s
}

// sliceError says which slice err ended: the target (its name, or its
// position) and, if there are several, the round.
func sliceError(err error, name string, i, r, rounds int) error {
	if rounds == 1 {
		return fmt.Errorf("%s: %w", targetName(name, i), err)
	}
	return fmt.Errorf("round %d of %d, %s: %w", r+1, rounds, targetName(name, i), err)
}

// targetName is name, or for a target without one, its position.
func targetName(name string, i int) string {
	if name == "" {
		return fmt.Sprintf("target %d", i+1)
	}
	return name
}

// summarize returns the Result of each tally, in order.
func summarize(ts []tally) []Result {
	out := make([]Result, len(ts))
	for i, t := range ts {
		out[i] = t.result()
	}
	return out
}
