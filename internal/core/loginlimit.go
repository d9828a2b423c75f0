package core

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Login rate limit defaults: per client address, enough for a fleet of
// jobs behind one NAT address to start together, too few to guess
// credentials.
const (
	defaultLoginRate  = 50  // attempts per second, sustained
	defaultLoginBurst = 100 // attempts at once
	// loginLimiterCap bounds the addresses remembered; past it, those
	// idle for loginLimiterIdle are forgotten.
	loginLimiterCap  = 10000
	loginLimiterIdle = time.Minute
)

// loginLimiter limits login attempts (requests to the unauthenticated
// paths of auth mounts) per client address with a token bucket each.
type loginLimiter struct {
	rate  rate.Limit
	burst int

	mu    sync.Mutex
	addrs map[string]*addrBucket
}

type addrBucket struct {
	lim  *rate.Limiter
	last time.Time
}

func newLoginLimiter(perSecond float64, burst int) *loginLimiter {
	if perSecond <= 0 {
		perSecond = defaultLoginRate
	}
	if burst <= 0 {
		burst = defaultLoginBurst
	}
	return &loginLimiter{rate: rate.Limit(perSecond), burst: burst, addrs: map[string]*addrBucket{}}
}

// allow takes one attempt for addr at now; when none is left it returns
// false and how long until the next.
func (l *loginLimiter) allow(addr string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.addrs[addr]
	if b == nil {
		if len(l.addrs) >= loginLimiterCap {
			l.pruneLocked(now)
		}
		b = &addrBucket{lim: rate.NewLimiter(l.rate, l.burst)}
		l.addrs[addr] = b
	}
	b.last = now
	r := b.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// pruneLocked forgets addresses idle for loginLimiterIdle: their buckets
// are full again anyway.
func (l *loginLimiter) pruneLocked(now time.Time) {
	for a, b := range l.addrs {
		if now.Sub(b.last) > loginLimiterIdle {
			delete(l.addrs, a)
		}
	}
}
