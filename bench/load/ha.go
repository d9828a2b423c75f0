package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// The sys/health statuses of an initialized, unsealed server of an HA
// cluster.
const (
	HealthActive  = http.StatusOK              // it serves its clients
	HealthStandby = http.StatusTooManyRequests // it forwards them to the active
)

// healthTimeout bounds one sys/health or read request while waiting for a
// server: a server that does not answer within it is asked again.
const healthTimeout = 2 * time.Second

// InitRecovery initializes a server with an auto seal, which unseals
// itself (and, in an HA cluster, so do the others, from the shared
// storage), with one recovery key share, and keeps the root token for
// the following calls. The recovery key is forgotten: the benchmark
// never needs it.
func (v *Vigil) InitRecovery(ctx context.Context) error {
	b, err := v.expect(ctx, http.MethodPut, "/v1/sys/init", []byte(`{"recovery_shares":1,"recovery_threshold":1}`))
	if err != nil {
		return err
	}
	var init struct {
		RootToken string `json:"root_token"`
	}
	err = json.Unmarshal(b, &init)
	clear(b) // holds the recovery key and the token
	if err != nil {
		return errors.New("PUT /v1/sys/init: the response is not the expected JSON object")
	}
	if init.RootToken == "" {
		return errors.New("PUT /v1/sys/init: the response has no root token")
	}
	v.token = init.RootToken
	return nil
}

// At returns a Vigil for another server of v's cluster, at base, with
// v's token and client.
func (v *Vigil) At(base string) *Vigil {
	return &Vigil{Base: base, Client: v.Client, token: v.token}
}

// Health returns the status of GET /v1/sys/health: HealthActive,
// HealthStandby, 501 before initialization, 503 while sealed.
func (v *Vigil) Health(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	status, _, err := v.call(ctx, http.MethodGet, "/v1/sys/health", nil)
	return status, err
}

// AwaitHealth waits until sys/health answers want (HealthStandby, say).
func (v *Vigil) AwaitHealth(ctx context.Context, want int, timeout time.Duration) error {
	return poll(ctx, timeout, 20*time.Millisecond, fmt.Sprintf("wait for %s to answer sys/health %d", v.Base, want), func(ctx context.Context) (bool, error) {
		status, err := v.Health(ctx)
		if err != nil {
			return false, err
		}
		if status != want {
			return false, fmt.Errorf("GET /v1/sys/health: status %d", status)
		}
		return true, nil
	})
}

// AwaitRoles waits until one of servers, the servers of an HA cluster,
// answers sys/health as the active server and all the others as
// standbys, and returns the active one's index.
func AwaitRoles(ctx context.Context, servers []*Vigil, timeout time.Duration) (int, error) {
	active := -1
	err := poll(ctx, timeout, 20*time.Millisecond, "wait for one active server and standbys", func(ctx context.Context) (bool, error) {
		active = -1
		for i, v := range servers {
			status, err := v.Health(ctx)
			if err != nil {
				return false, fmt.Errorf("%s: %w", v.Base, err)
			}
			switch status {
			case HealthActive:
				if active >= 0 {
					return false, fmt.Errorf("%s and %s are both active", servers[active].Base, v.Base)
				}
				active = i
			case HealthStandby:
			default:
				return false, fmt.Errorf("%s: GET /v1/sys/health: status %d", v.Base, status)
			}
		}
		if active < 0 {
			return false, errors.New("no server is active")
		}
		return true, nil
	})
	if err != nil {
		return -1, err
	}
	return active, nil
}

// AwaitActive waits until v has taken over as the active server: it asks
// sys/health every interval until it answers HealthActive, then GETs
// readPath (a KV read, like "/v1/kvbench/data/k0") every interval until
// that succeeds, and returns when it did. A failed read does not send it
// back to sys/health: the server said it was active, and the read tells
// when it serves.
func (v *Vigil) AwaitActive(ctx context.Context, readPath string, interval, timeout time.Duration) (time.Time, error) {
	var done time.Time
	active := false
	err := poll(ctx, timeout, interval, "wait for "+v.Base+" to become active and serve "+readPath, func(ctx context.Context) (bool, error) {
		ctx, cancel := context.WithTimeout(ctx, healthTimeout)
		defer cancel()
		if !active {
			status, _, err := v.call(ctx, http.MethodGet, "/v1/sys/health", nil)
			if err != nil {
				return false, err
			}
			if status != HealthActive {
				return false, fmt.Errorf("GET /v1/sys/health: status %d", status)
			}
			active = true
		}
		if _, err := v.expect(ctx, http.MethodGet, readPath, nil); err != nil {
			return false, err
		}
		done = time.Now()
		return true, nil
	})
	return done, err
}

// Failover is what the failover measurement found: how long the HA
// cluster was without an active server that serves a KV read.
type Failover struct {
	// Kills holds, for each kill -9 of the active server, the time from
	// the kill until the other server answered sys/health as the active
	// one and served a KV read, in the order of the kills.
	Kills []time.Duration
	// Frozen is the same for an active server stopped with SIGSTOP,
	// whose database session stays open, so that the standby takes over
	// only when the lock expires: 0 when not measured.
	Frozen time.Duration
}

// Median is the median of f.Kills (the mean of the two middle ones when
// there is an even number of them), 0 when there are none.
func (f Failover) Median() time.Duration {
	n := len(f.Kills)
	if n == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(f.Kills))
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Max is the longest of f.Kills, 0 when there are none.
func (f Failover) Max() time.Duration {
	if len(f.Kills) == 0 {
		return 0
	}
	return slices.Max(f.Kills)
}

// MarshalJSON gives the times in milliseconds, with the median and the
// maximum.
func (f Failover) MarshalJSON() ([]byte, error) {
	kills := make([]float64, len(f.Kills))
	for i, d := range f.Kills {
		kills[i] = ms(d)
	}
	return json.Marshal(struct {
		KillsMS  []float64 `json:"kills_ms"`
		MedianMS float64   `json:"median_ms"`
		MaxMS    float64   `json:"max_ms"`
		FrozenMS float64   `json:"frozen_ms,omitempty"`
	}{kills, ms(f.Median()), ms(f.Max()), ms(f.Frozen)})
}
