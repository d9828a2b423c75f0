// Package token is the token store: it creates, looks up, renews and
// revokes client tokens, keeps their parent/child tree, and serves the
// auth/token/ mount (spec §4) through the backend [NewBackend] returns.
//
// It knows nothing of HTTP, mounts, leases or the barrier: it is handed a
// [logical.Storage] view (behind the barrier, so everything it writes is
// encrypted), and it reaches the expiration manager and auth mounts only
// through the small interfaces declared here, which core implements. It
// imports only packages of layers 0 and 1 and never holds a pointer to
// core.
//
// # Tokens
//
// A service token is "hvs." and 24 random base62 characters (or a custom
// id given by a root or sudo caller); a token that expires has its order
// between the two: its creation second in six base62 characters, digits
// in ASCII order. It is persisted only as an HMAC-SHA256 of its value
// under a random salt kept in the view, after the order if it has one:
// neither the storage backend nor a dump of the view reveals a usable
// token, and lookups compare hashes, never token text. Its accessor, a
// second random name that can look up, renew and revoke it without
// revealing it (24 base62 characters, after the token's order if it has
// one), is indexed by its HMAC and kept in the entry only sealed
// (AES-256-GCM), so a dump shows no accessor either.
//
// The order is there for storage: keys are mostly random hashes, and a
// storage that keeps them in a B+tree (bolt) rewrites about one leaf page
// per new key when it applies a batch of them. A token's entry, accessor
// index and lease record all begin with its order, so the tokens of a busy
// login endpoint are stored, and later expire, in the order they were
// made: appended to the tree, a few keys to a page. Tokens that never
// expire (root tokens: generate-root encodes one with an OTP of Vault's
// fixed length, 28) and earlier versions' tokens have no order; how a
// value is hashed depends only on its shape, so both kinds look up.
//
// A batch token is "hvb." and the base64url of a compact entry sealed with
// AES-256-GCM under a key of the store (see below). It is never written:
// looking it up decrypts it. It has no accessor, cannot be renewed or
// revoked on its own, cannot create tokens, expires with its TTL, and with
// a parent is valid only while the parent is.
//
// A token is usable until its ExpireTime (zero for never: root tokens) and
// while it has uses left. [Store.UseToken] counts uses atomically: a token
// created with num_uses N serves exactly N requests; the last one marks it
// used up (lookups fail) and the caller revokes it after the request.
// Tokens without a use limit cost nothing there.
//
// TTLs follow Vault (spec §4.4): the TTL asked for, else the role's or the
// login's, else the mount default, capped at the least of the mount
// maximum, the role or login maximum and the explicit maximum, counted from
// the issue time, with a warning when capped. A periodic token's TTL is its
// period at every renewal and only an explicit maximum bounds it. Renewal
// counts from now. The math is in calculateTTL, a pure function.
//
// # Tree
//
// A token created by another (auth/token/create without no_parent) is its
// child. [Store.RevokeTree] revokes a token and its descendants depth
// first, children before parents, through the children index, never a
// scan. [Store.RevokeOrphan] revokes one token and makes its children
// orphans. [Store.RevokeByPathPrefix] revokes every token created under a
// path (all the tokens an auth mount issued). Revoking an unknown token is
// not an error.
//
// # Storage layout
//
// Under the view the store is given (H is the hex HMAC-SHA256 of a value
// under the salt, after the value's order if it has one):
//
//	salt                              32 random bytes: the HMAC key
//	key                               32 random bytes, made on first use; HKDF-SHA256
//	                                  derives the batch token key and the accessor key
//	id/H(token)                       the entry, JSON: {"v":1, "policies":…, "sealed_accessor":…}
//	accessor/H(accessor)              H(token)
//	parent/H(parent)/H(child)         empty: the children index
//	path/<creation path>/H(token)     empty: the creation path index, of tokens without a lease
//	role/<name>                       a token role, JSON
//
// A token that expires has a lease, whose id is its creation path and
// H(token) ([Entry.LeaseID]): that lease record is its creation path
// index, and the store writes no path/ entry for it (one key less per
// login). Earlier versions wrote one; it is still honoured, and dangles
// once its token is gone (see below).
//
// Entries written before format 1 (no "v") hold the accessor in clear and
// expire at creation_time+ttl (never with ttl 0); they are read as such and
// rewritten in format 1 on their next change.
//
// Index entries are written before the entry and deleted with (or after)
// it, in one transaction when the view supports it. An index entry naming
// a token that does not exist is harmless: readers skip it and
// [Store.Tidy] removes it. Tidy also revokes expired and used-up tokens
// with their subtrees and orphans tokens whose parent is gone.
//
// # Concurrency
//
// Lookups take no lock: decoded entries are cached in memory (entries in
// the cache are never modified, a change stores a new one) and a cache
// miss reads storage under the token's shared lock. A token enters the
// cache when it is first looked up or changed, not when it is created:
// most of a busy login endpoint's tokens may never be presented, and a
// cache full of them would only give the garbage collector work. Every change of a
// token holds its lock (256 stripes keyed by hashed id); creating a child
// also holds its parent's shared lock and revoking a token re-lists its
// children under its own lock, so no child can slip in while its parent
// is being revoked. Storage has no compare-and-swap: with several servers
// on one storage only the active one may serve writes.
//
// # Hooks core provides
//
//   - [LeaseHooks]: TokenCreated registers a service token's lease
//     (id [Entry.LeaseID], owner [Entry.HashedID]); TokenRenewed extends
//     it; RevokeLeases (the [Revoker]) revokes every lease a token owns
//     before the token goes. A failing RevokeLeases keeps the token.
//     Hooks that are also a [LeaseCommitter] store a new token generated
//     at random together with its lease, in one transaction
//     (CommitToken, in place of TokenCreated): one storage commit per
//     token, and never a token without its lease or the reverse.
//   - [AuthRenewer]: sends a renewal of a login's token back to its auth
//     mount (a [logical.RenewOperation] with [Entry.LoginAuth]).
//   - [Caller] in the context of every request to the backend
//     ([WithCaller]): the caller's entry, token and ACL.
//
// A store opened without hooks ([Open]) works without leases.
package token
