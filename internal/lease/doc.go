// Package lease is the expiration manager of an unsealed server. It owns
// every lease: the promise that a dynamic credential or a service token
// will be revoked when its time is up, or earlier on request.
//
// # Model
//
// A [Lease] is a record kept behind the barrier in the [logical.Storage]
// view the manager is given. Storage is the source of truth: every
// operation reads the record it acts on, so a lease the background restore
// has not loaded yet can still be looked up, renewed or revoked.
//
// In memory the [Manager] keeps only what it needs to act on time: one
// small entry per expiring lease in a min-heap ordered by the instant the
// manager must next act on it. These entries hold no pointers (the ids
// live in one byte arena), so that the garbage collector never scans
// them: with a million leases held, a full collection is about ninety
// times shorter than with a pointer-linked entry per lease
// (BenchmarkLeaseTable). When a burst of leases drains, the entries are
// packed again at the size of what is left. A single clock timer is armed for the
// earliest instant; when it fires, a dispatcher goroutine pops due entries
// through a token bucket ([Config.RevokeRate], [Config.RevokeBurst]) into a
// bounded queue served by [Config.RevokeWorkers] goroutines. Each expiring
// lease is also delayed by a per-lease jitter within [Config.SpreadWindow],
// so that leases issued together (a CI fleet, a restore after a long seal)
// reach their mount as a trickle instead of a wall. There is no timer per
// lease and no goroutine per lease.
//
// A worker re-reads the record before acting: a lease renewed since it was
// queued is put back in the heap, a lease revoked meanwhile is dropped.
// Every operation that changes or revokes a lease holds a per-lease claim
// for its whole duration, so renew, revoke and expiry of one lease are
// serialised and a lease is revoked through the [Revoker] once.
//
// A failed revocation is retried with exponential backoff and jitter. After
// [Config.MaxAttempts] failures the lease is marked irrevocable: the flag,
// attempt count and (truncated) last error are persisted, it is listed by
// [Manager.Irrevocable] and survives restarts, and it is no longer retried
// on its own. An operator revokes it with force, or re-queues it with
// [Manager.RevokeAsync].
//
// The manager never calls into core. Revocation and renewal go through the
// small [Revoker] and [Renewer] interfaces that core satisfies at wiring
// time.
//
// # Storage layout
//
// Under the view the manager is given:
//
//	id/<lease id>                                  JSON record (see below)
//	token/<escaped token key>/<escaped lease id>   empty; secret leases owned by a token
//	irrevocable/<escaped lease id>                 empty; irrevocable leases
//
// Lease ids contain '/' (database/creds/ro/AbC…), so the record keys form
// directories and LIST sys/leases/lookup/<prefix>/ is a storage List of
// id/<prefix>/. Index entries escape their names with [url.PathEscape] so
// that a name is a single path segment. A record is
// {"v":1, "id":..., "path":..., "kind":..., "issue_time":..., ...}: the
// fields of [Lease] with a format version.
//
// A token's own lease ([KindToken]) has no token index entry, one key
// less per login: the token store knows its id (the token's creation path
// and key) and names it to [Manager.RevokeByToken], and
// [Manager.TokenKeys] finds such leases under a prefix by their records.
// Entries that earlier versions wrote for them are still honoured; one
// left when its lease goes is a dangling entry like any other.
//
// Writes keep the indexes a superset of the truth: an index entry is
// written before its record and deleted after it. A dangling entry is
// harmless (readers skip it) and [Manager.Tidy] removes it; a missing one
// would hide a lease, so it is never left behind on purpose (Tidy restores
// one that a crash lost). When the view implements
// [logical.TransactionalStorage] the writes of one change are applied in
// one transaction. [Manager.Prepare] hands the writes of a new lease to
// its caller instead, to be applied in the caller's own transaction with
// the records the lease belongs with (a token's, in core), before
// [Pending.Commit] schedules it.
//
// # Lifecycle
//
// [Manager.Start] returns at once; the restore of persisted leases runs in
// the background in batches of [Config.RestoreBatch] and leases found
// already expired are revoked through the same spread-out path.
// [Manager.Stop] cancels everything and waits for every goroutine the
// manager started, including those serving calls in flight.
//
// The package must not import core, mounts or the barrier: it sees storage
// only as a logical.Storage.
package lease
