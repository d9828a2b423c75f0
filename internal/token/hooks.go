package token

import (
	"context"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/policy"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Revoker revokes what a token owns outside the store: its leases, and its
// own lease record. The store calls it for each token it revokes, before
// deleting the token; if it fails, the token is kept and the error
// returned, so that nothing is lost and the revocation can be retried.
//
// Core implements it (with the expiration manager's RevokeByToken). It
// must be idempotent, and it must not call the Store's revoking, renewing,
// creating or use-counting methods for the same token (the store holds the
// token's lock); it may look tokens up.
type Revoker interface {
	RevokeLeases(ctx context.Context, e *Entry) error
}

// LeaseHooks ties service tokens to the expiration manager. Core
// implements it; a store opened without hooks works without leases.
//
// TokenCreated is called once a service token is stored (never for batch
// tokens); if it fails the token is removed and creation fails. A token
// with a zero ExpireTime never expires, and needs no lease of its own,
// though it may own leases. The lease's id is [Entry.LeaseID] and the key
// it is owned under is [Entry.HashedID].
//
// TokenRenewed is called after a renewal is stored, with the new
// ExpireTime; if it fails the renewal is undone and fails.
//
// The same rules as for [Revoker] apply to all three methods.
type LeaseHooks interface {
	Revoker
	TokenCreated(ctx context.Context, e *Entry) error
	TokenRenewed(ctx context.Context, e *Entry) error
}

// LeaseCommitter is an optional extension of [LeaseHooks]: hooks that
// implement it store a new service token together with its lease, in one
// atomic write, instead of the store writing the token and then calling
// TokenCreated. Core implements it when the token store and the
// expiration manager share a transactional storage.
//
// CommitToken is called, with the token's lock held, in place of
// TokenCreated for a service token that expires (a non-zero ExpireTime)
// and that the store has just generated at random (not a custom id): no
// lease can have its lease id yet, and no one else can hold that lease.
// It must write ops, the token's records (keys relative to the store's
// storage), and the token's lease (id [Entry.LeaseID], owned under
// [Entry.HashedID]) in one transaction, then make the lease known to the
// expiration manager. If it fails, neither the token nor its lease may
// have been stored (as far as the storage's transactions go) and the
// creation fails. The rules of [Revoker] apply.
type LeaseCommitter interface {
	CommitToken(ctx context.Context, e *Entry, ops []logical.StorageOp) error
}

// AuthRenewer asks the auth mount whose login created a token (e.MountPath)
// whether the token may be renewed, as Vault sends a renew operation to the
// mount with the login's Auth (a = e.LoginAuth()). It returns the Auth to
// renew with (its TTL, MaxTTL and Period, as the method now decides them)
// and the mount's current TTL defaults; an error refuses the renewal and
// is returned to the client as it is (a role deleted since the login is a
// 400). Core implements it by routing a [logical.RenewOperation] to the
// mount. The rules of [Revoker] apply.
type AuthRenewer interface {
	RenewAuth(ctx context.Context, e *Entry, a *logical.Auth) (*logical.Auth, TTLDefaults, error)
}

// Caller is the token behind a request to the auth/token backend, as core
// authenticated it: its entry (after [Store.UseToken]), the token itself
// (lookup-self shows it as "id"; renew-self returns it), and the ACL of its
// policies (sudo decides what it may create).
type Caller struct {
	Entry *Entry
	Token secret.String
	ACL   *policy.ACL
}

type callerKey struct{}

// WithCaller returns ctx carrying the caller of a request. Core sets it
// before handing a request to the auth/token backend; the backend answers
// 403 to requests that need a caller and have none.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller ctx carries, or nil.
func CallerFrom(ctx context.Context) *Caller {
	c, _ := ctx.Value(callerKey{}).(*Caller)
	return c
}
