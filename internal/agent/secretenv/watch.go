package secretenv

import (
	"context"
	"errors"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
)

// Watcher tells when secrets may have changed. Every run has a [Poller],
// the fallback that needs nothing from the server; a subscription to the
// server's change events (sys/events/subscribe) is meant to run beside it
// as another Watcher, so that a change is seen at once and polling can be
// slowed down, while a lost event is still caught by the next poll.
//
// Watch runs until ctx ends. paths are the paths the secrets are read at
// (KV v2 with "data/": "secret/data/ml/openai"), which is what the
// server's events name. Each time one of them may have changed, Watch
// calls hint with its path, or with "" for "any of them". A hint is only a
// reason to look: the runner reads the secrets it names again
// ([Set.Check]) and restarts the child only when a variable really
// changed, so a watcher may hint too often (an event of an unrelated key,
// a write of the same value), but should not hint in a tight loop. hint
// is safe for concurrent use and does not block; Watch must not call it
// after it has returned.
//
// Watch returns ctx's error when ctx ends, or an error when it cannot go on
// (the server refuses the subscription); the runner logs it and keeps the
// other watchers, polling included.
type Watcher interface {
	Watch(ctx context.Context, paths []string, hint func(path string)) error
}

// Poller hints "" every Interval: every secret is read again.
type Poller struct {
	Interval time.Duration
	// Clock times the polls; nil is the wall clock.
	Clock clock.Clock
}

var _ Watcher = Poller{}

// Watch implements [Watcher].
func (p Poller) Watch(ctx context.Context, _ []string, hint func(string)) error {
	if p.Interval <= 0 {
		return errors.New("secretenv: a poll interval must be positive")
	}
	clk := p.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	t := clk.NewTicker(p.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
			hint("")
		}
	}
}
