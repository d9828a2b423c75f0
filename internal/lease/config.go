package lease

import (
	"errors"
	"log/slog"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Defaults of the tunables in [Config].
const (
	DefaultRevokeWorkers  = 8
	DefaultRevokeRate     = 100 // revocations per second
	DefaultRevokeBurst    = 10
	DefaultSpreadWindow   = 2 * time.Second
	DefaultRetryInitial   = 10 * time.Second
	DefaultRetryMax       = 5 * time.Minute
	DefaultMaxAttempts    = 6
	DefaultRestoreBatch   = 1000
	DefaultRestoreWorkers = 8
)

// Config is what [New] needs. Zero tunables take their defaults.
type Config struct {
	// Storage is the barrier view the leases live in (required).
	Storage logical.Storage
	// Revoker revokes leases (required).
	Revoker Revoker
	// Renewer renews secret leases; nil makes every secret lease
	// non-renewable.
	Renewer Renewer
	// Clock tells the time; nil means the wall clock.
	Clock clock.Clock
	// Logger receives the manager's log; nil discards it. The caller sets
	// the component attribute.
	Logger *slog.Logger

	// RevokeWorkers is the number of goroutines revoking scheduled leases:
	// the most scheduled revocations in flight at once. A RevokePrefix
	// call also revokes with at most this many goroutines of its own.
	RevokeWorkers int
	// QueueSize bounds the queue between the scheduler and the workers
	// (default 4×RevokeWorkers). When it is full, due leases wait in the
	// heap.
	QueueSize int
	// RevokeRate caps scheduled revocations (expiry, RevokeAsync,
	// RevokeByToken, retries) per second, with bursts of RevokeBurst.
	// Negative means unlimited. Synchronous revocations a caller waits for
	// (Revoke, RevokePrefix) are not rate-limited.
	RevokeRate  float64
	RevokeBurst int
	// SpreadWindow delays each expiry by a per-lease jitter in
	// [0, SpreadWindow), so leases that expire at the same instant (or are
	// found expired at restore) are revoked spread out. A lease may thus
	// outlive its expire time by up to SpreadWindow plus the rate limit's
	// delay. Negative disables the jitter.
	SpreadWindow time.Duration
	// RetryInitial and RetryMax bound the exponential backoff between
	// failed revocations; MaxAttempts failures make a lease irrevocable.
	RetryInitial time.Duration
	RetryMax     time.Duration
	MaxAttempts  int
	// RestoreBatch is how many records the restore reads before handing
	// them to the scheduler at once; RestoreWorkers read them in parallel.
	RestoreBatch   int
	RestoreWorkers int
}

// withDefaults returns c with zero tunables replaced by defaults.
func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.RevokeWorkers == 0 {
		c.RevokeWorkers = DefaultRevokeWorkers
	}
	if c.QueueSize == 0 {
		c.QueueSize = 4 * c.RevokeWorkers
	}
	if c.RevokeRate == 0 {
		c.RevokeRate = DefaultRevokeRate
	}
	if c.RevokeBurst == 0 {
		c.RevokeBurst = DefaultRevokeBurst
	}
	if c.SpreadWindow == 0 {
		c.SpreadWindow = DefaultSpreadWindow
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = DefaultRetryInitial
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RestoreBatch == 0 {
		c.RestoreBatch = DefaultRestoreBatch
	}
	if c.RestoreWorkers == 0 {
		c.RestoreWorkers = DefaultRestoreWorkers
	}
	return c
}

// Validate checks a config after defaults were applied.
func (c *Config) Validate() error {
	var errs []error
	if c.Storage == nil {
		errs = append(errs, errors.New("lease: config: storage is required"))
	}
	if c.Revoker == nil {
		errs = append(errs, errors.New("lease: config: revoker is required"))
	}
	if c.RevokeWorkers < 0 || c.QueueSize < 0 || c.RevokeBurst < 0 || c.MaxAttempts < 0 ||
		c.RestoreBatch < 0 || c.RestoreWorkers < 0 {
		errs = append(errs, errors.New("lease: config: counts must not be negative"))
	}
	if c.RetryInitial < 0 || c.RetryMax < 0 {
		errs = append(errs, errors.New("lease: config: retry backoff must not be negative"))
	}
	if c.RetryMax > 0 && c.RetryInitial > c.RetryMax {
		errs = append(errs, errors.New("lease: config: retry initial exceeds retry max"))
	}
	return errors.Join(errs...)
}
