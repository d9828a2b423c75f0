package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Sentinel errors. The HTTP layer maps each to a status and a message in
// its one error table; callers branch on them with errors.Is.
var (
	// ErrNotFound: no lease has this id (it never existed or was revoked).
	ErrNotFound = errors.New("lease not found")
	// ErrExpired: the lease's expire time has passed (it is being or will
	// be revoked), or it is irrevocable.
	ErrExpired = errors.New("lease expired")
	// ErrNotRenewable: the lease was issued non-renewable, or no Renewer
	// is configured.
	ErrNotRenewable = errors.New("lease is not renewable")
	// ErrTokenLease: a token's lease cannot be renewed through Renew; the
	// token store renews tokens and calls [Manager.Extend].
	ErrTokenLease = errors.New("lease: token leases are renewed by the token store")
	// ErrExists: a lease with this id is already registered.
	ErrExists = errors.New("lease already exists")
	// ErrInvalid: the request is malformed (bad id, negative TTL...).
	ErrInvalid = errors.New("lease: invalid request")
	// ErrStopped: the manager is not running (not started yet, or stopped).
	ErrStopped = errors.New("lease: manager is not running")
)

// Kind tells a secret's lease from a token's.
type Kind string

// The kinds of lease.
const (
	// KindSecret is the lease of a secret a mount returned (dynamic
	// credentials, leased KV v1). Its mount revokes and renews it.
	KindSecret Kind = "secret"
	// KindToken is the lease of a service token. The token store renews
	// it (through [Manager.Extend]) and revokes it.
	KindToken Kind = "token"
)

// Lease is one lease as stored. Values returned by the manager are copies
// the caller owns.
//
// After a round trip through storage the numbers in Data and InternalData
// are json.Number values; the Revoker and Renewer always receive a lease
// read back from storage, so they see one representation.
type Lease struct {
	// ID is "<request path>/<random>" for a secret, or the id the token
	// store chose for a token ("auth/<mount>/<...>/<token hash>").
	ID string `json:"id"`
	// Path is the request path that created the lease.
	Path string `json:"path"`
	Kind Kind   `json:"kind"`
	// IssueTime is when the lease was registered.
	IssueTime time.Time `json:"issue_time"`
	// ExpireTime is when the lease expires; zero means never.
	ExpireTime time.Time `json:"expire_time,omitzero"`
	// LastRenewal is the time of the last renewal; zero if never renewed.
	LastRenewal time.Time `json:"last_renewal,omitzero"`
	// Renewable reports whether the lease may be renewed.
	Renewable bool `json:"renewable,omitempty"`
	// MaxTTL caps the lease's life: ExpireTime never passes
	// IssueTime+MaxTTL. Zero means no cap.
	MaxTTL time.Duration `json:"max_ttl,omitempty"`
	// TokenKey identifies the token that owns the lease (an opaque string
	// such as the token's hashed id); "" for none. A token's own lease
	// carries that token's key.
	TokenKey string `json:"token_key,omitempty"`
	// InternalData is what the mount needs to revoke or renew (a role
	// name, a username). Never shown to clients.
	InternalData map[string]any `json:"internal_data,omitempty"`
	// Data is the response data the mount needs back at revocation. It
	// may hold secret values: it is only ever written behind the barrier
	// and never logged.
	Data map[string]any `json:"data,omitempty"`
	// Irrevocable is set once revocation failed MaxAttempts times.
	Irrevocable bool `json:"irrevocable,omitempty"`
	// RevokeAttempts counts the scheduler's failed revocations of the
	// lease (a synchronous Revoke that fails is reported to its caller
	// instead).
	RevokeAttempts int `json:"revoke_attempts,omitempty"`
	// RevokeError is the (truncated) text of the last revocation error.
	// The Revoker must return errors free of secret values.
	RevokeError string `json:"revoke_error,omitempty"`
}

// Expired reports whether the lease's expire time is at or before now.
func (l *Lease) Expired(now time.Time) bool {
	return !l.ExpireTime.IsZero() && !l.ExpireTime.After(now)
}

// TTL returns the time left at now: zero for a lease that never expires
// or has expired (Vault's lookup reports both as ttl 0).
func (l *Lease) TTL(now time.Time) time.Duration {
	if l.ExpireTime.IsZero() || !l.ExpireTime.After(now) {
		return 0
	}
	return l.ExpireTime.Sub(now)
}

// capExpire returns t, moved back to IssueTime+MaxTTL if it passes it.
func (l *Lease) capExpire(t time.Time) time.Time {
	if l.MaxTTL > 0 {
		if limit := l.IssueTime.Add(l.MaxTTL); t.IsZero() || t.After(limit) {
			return limit
		}
	}
	return t
}

// String describes the lease without its data, so that printing a lease
// by mistake never prints a secret.
func (l *Lease) String() string {
	if l == nil {
		return "lease <nil>"
	}
	return fmt.Sprintf("lease %s (%s)", l.ID, l.Kind)
}

// GoString is String: %#v must not print Data either.
func (l *Lease) GoString() string { return l.String() }

// LogValue logs the lease's identity and schedule, never its data.
func (l *Lease) LogValue() slog.Value {
	if l == nil {
		return slog.StringValue("<nil>")
	}
	attrs := []slog.Attr{slog.String("id", l.ID), slog.String("kind", string(l.Kind))}
	if !l.ExpireTime.IsZero() {
		attrs = append(attrs, slog.Time("expire_time", l.ExpireTime))
	}
	if l.Irrevocable {
		attrs = append(attrs, slog.Bool("irrevocable", true))
	}
	return slog.GroupValue(attrs...)
}

// Revoker revokes one lease: through its mount for a secret (DROP ROLE...)
// or through the token store for a token. Core implements it.
//
// Revoke must be idempotent: after a crash, or when deleting the record
// failed, the same lease may be revoked again. It must not modify the
// lease, and must not call [Manager.Revoke], [Manager.Renew] or
// [Manager.Extend] for the lease it is revoking (the manager holds that
// lease's claim; the call would wait for itself). Revoking a token lease
// may call [Manager.RevokeByToken] for that token: it skips the lease under
// revocation. Errors must not contain secret values: their text is logged
// and persisted.
type Revoker interface {
	Revoke(ctx context.Context, l *Lease) error
}

// Renewer renews a secret lease through its mount, which decides the new
// TTL (counted from now; the manager caps it at IssueTime+MaxTTL). An
// increment of zero asks for the mount's default. Core implements it.
type Renewer interface {
	Renew(ctx context.Context, l *Lease, increment time.Duration) (ttl time.Duration, err error)
}

// RegisterRequest asks for a new lease.
type RegisterRequest struct {
	Kind Kind
	// Path is the request path that created the lease
	// ("database/creds/ro", "auth/kubernetes/login").
	Path string
	// ID is the full lease id, required for a token lease and left empty
	// for a secret: the manager then uses Path + "/" + a random suffix.
	ID string
	// TTL is the lease's life from now; zero means it never expires
	// (unless MaxTTL is set: the lease then expires at MaxTTL).
	TTL time.Duration
	// MaxTTL caps TTL and every later renewal, counted from now; zero
	// means no cap.
	MaxTTL    time.Duration
	Renewable bool
	// TokenKey identifies the owning token ("" for none); for a token
	// lease it is that token's own key (see [Manager.RevokeByToken]).
	TokenKey string
	// InternalData and Data are kept for the Revoker and Renewer. They
	// must be JSON-serialisable.
	InternalData map[string]any
	Data         map[string]any
	// NewID reports that ID is new by construction: it embeds randomness
	// drawn for this lease (a newly generated token's hash), so no lease
	// can have it yet. The manager then skips reading storage to check.
	NewID bool
}

// maxIDLen bounds lease ids: they become storage keys.
const maxIDLen = 1024

// Validate checks the request.
func (r *RegisterRequest) Validate() error {
	switch r.Kind {
	case KindSecret:
		if r.ID != "" {
			return fmt.Errorf("%w: a secret lease's id is chosen by the manager", ErrInvalid)
		}
		if err := validID(strings.TrimSuffix(r.Path, "/")); err != nil {
			return fmt.Errorf("%w: path: %v", ErrInvalid, err)
		}
	case KindToken:
		if err := validID(r.ID); err != nil {
			return fmt.Errorf("%w: id: %v", ErrInvalid, err)
		}
	default:
		return fmt.Errorf("%w: unknown kind %q", ErrInvalid, r.Kind)
	}
	if r.TTL < 0 || r.MaxTTL < 0 {
		return fmt.Errorf("%w: negative ttl", ErrInvalid)
	}
	if err := validTokenKey(r.TokenKey, true); err != nil {
		return err
	}
	return nil
}

// validID checks that id is usable as a directory-style storage key: no
// empty, "." or ".." segment, no leading or trailing '/'.
func validID(id string) error {
	if id == "" {
		return errors.New("empty")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("longer than %d bytes", maxIDLen)
	}
	for seg := range strings.SplitSeq(id, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("%q has an empty or relative segment", id)
		}
	}
	for _, c := range id {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%q contains a control character", id)
		}
	}
	return nil
}

func validTokenKey(k string, emptyOK bool) error {
	if k == "" && emptyOK {
		return nil
	}
	if k == "" || k == "." || k == ".." || len(k) > maxIDLen {
		return fmt.Errorf("%w: bad token key", ErrInvalid)
	}
	return nil
}
