package lease

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// idSuffixLen is the length of the random part of a secret lease id
// (base62, about 143 bits).
const idSuffixLen = 24

// Register records a new lease and schedules its expiry. For a secret the
// manager picks the id (Path + "/" + random); for a token the caller gives
// it, and registering an id twice fails with [ErrExists].
func (m *Manager) Register(ctx context.Context, req RegisterRequest) (*Lease, error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	p, err := m.prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := m.write(ctx, p.ops); err != nil {
		p.release()
		return nil, fmt.Errorf("lease: write %q: %w", p.l.ID, err)
	}
	return p.commit(), nil
}

// Pending is a new lease that [Manager.Prepare] built and claimed, and
// that is not stored yet: its caller writes [Pending.Ops] in a transaction
// of its own, together with the records the lease belongs with (a token's),
// then calls [Pending.Commit] once the write succeeded or [Pending.Abort]
// if it did not. Until then no other operation can act on the lease's id,
// and [Manager.Stop] waits. Exactly one of Commit or Abort must be called.
type Pending struct {
	m       *Manager
	l       *Lease
	ops     []logical.StorageOp
	now     time.Time
	release func()
	done    func() // ends the call begun by Prepare
}

// Prepare builds the lease req asks for, as [Manager.Register] does, and
// returns the storage writes that record it, without writing them. Unless
// req.NewID is set, a token lease whose id is taken fails with
// [ErrExists].
//
// Stop waits for a prepared lease until it is committed or aborted; unlike
// the other calls, Prepare is not cancelled by Stop (a lease with a new id
// has nothing to wait for), only by ctx.
func (m *Manager) Prepare(ctx context.Context, req RegisterRequest) (*Pending, error) {
	done, err := m.enter()
	if err != nil {
		return nil, err
	}
	p, err := m.prepare(ctx, req)
	if err != nil {
		done()
		return nil, err
	}
	p.done = done
	return p, nil
}

// Ops returns the writes that store the lease, keys relative to the
// manager's storage, in the order that keeps its indexes a superset of
// the truth when they are not applied in one transaction.
func (p *Pending) Ops() []logical.StorageOp { return p.ops }

// Lease returns the lease being registered. The caller must not modify it.
func (p *Pending) Lease() *Lease { return p.l }

// Commit schedules the lease, whose writes the caller has stored, and
// ends the registration. It returns the lease, which the caller owns.
func (p *Pending) Commit() *Lease {
	l := p.commit()
	if p.done != nil {
		p.done()
	}
	return l
}

// Abort ends a registration whose writes were not stored: the manager
// forgets the lease.
func (p *Pending) Abort() {
	p.release()
	if p.done != nil {
		p.done()
	}
}

func (p *Pending) commit() *Lease {
	m := p.m
	m.mu.Lock()
	m.trackLocked(placementOf(p.l, m.dueFor(p.l.ID, p.l.ExpireTime, p.now)))
	m.mu.Unlock()
	p.release()
	return p.l
}

// prepare builds and claims the lease of req, for a caller that has begun
// a call; it checks that a token lease's id is free unless req.NewID.
func (m *Manager) prepare(ctx context.Context, req RegisterRequest) (*Pending, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	now := m.now()
	l := &Lease{
		ID:           req.ID,
		Path:         strings.TrimSuffix(req.Path, "/"),
		Kind:         req.Kind,
		IssueTime:    now,
		Renewable:    req.Renewable,
		MaxTTL:       req.MaxTTL,
		TokenKey:     req.TokenKey,
		InternalData: req.InternalData,
		Data:         req.Data,
	}
	if l.Kind == KindSecret {
		l.ID = l.Path + "/" + secret.RandomBase62(idSuffixLen)
	}
	if req.TTL > 0 {
		l.ExpireTime = now.Add(req.TTL)
	}
	l.ExpireTime = l.capExpire(l.ExpireTime)
	ops, err := createOps(l)
	if err != nil {
		return nil, err
	}

	release, _, err := m.acquire(ctx, l.ID, claimChange)
	if err != nil {
		return nil, err
	}
	// A secret's id is new by construction (a random suffix of 143 bits);
	// so is a token's when its caller says so.
	if l.Kind == KindToken && !req.NewID {
		switch _, err := m.st.Get(ctx, recordKey(l.ID)); {
		case err == nil:
			release()
			return nil, fmt.Errorf("%w: %q", ErrExists, l.ID)
		case !errors.Is(err, logical.ErrNotFound):
			release()
			return nil, fmt.Errorf("lease: read %q: %w", l.ID, err)
		}
	}
	return &Pending{m: m, l: l, ops: ops, now: now, release: release}, nil
}

// Lookup returns the lease with id, from storage.
func (m *Manager) Lookup(ctx context.Context, id string) (*Lease, error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	return m.load(ctx, id)
}

// List returns the immediate children of prefix among lease ids, as a
// storage List does: leaf suffixes, and sub-prefixes with a trailing '/'.
// prefix "" lists the top level; a prefix without a trailing '/' gets one
// (LIST sys/leases/lookup/<prefix>/).
func (m *Manager) List(ctx context.Context, prefix string) ([]string, error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if prefix != "" {
		if err := validID(strings.TrimSuffix(prefix, "/")); err != nil {
			return nil, fmt.Errorf("%w: prefix: %v", ErrInvalid, err)
		}
		if !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
	}
	keys, err := m.st.List(ctx, recordPrefix+prefix)
	if err != nil {
		return nil, fmt.Errorf("lease: list %q: %w", prefix, err)
	}
	return keys, nil
}

// Renew renews a secret lease through the Renewer, which decides the new
// TTL from increment (zero: the mount's default); the new expire time is
// capped at IssueTime+MaxTTL. It fails with [ErrNotFound], [ErrExpired],
// [ErrNotRenewable] or [ErrTokenLease].
func (m *Manager) Renew(ctx context.Context, id string, increment time.Duration) (*Lease, error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if increment < 0 {
		return nil, fmt.Errorf("%w: negative increment", ErrInvalid)
	}
	release, _, err := m.acquire(ctx, id, claimChange)
	if err != nil {
		return nil, err
	}
	defer release()
	l, err := m.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if l.Kind == KindToken {
		return nil, fmt.Errorf("%w: %q", ErrTokenLease, id)
	}
	now := m.now()
	if l.Irrevocable || l.Expired(now) {
		return nil, fmt.Errorf("%w: %q", ErrExpired, id)
	}
	if !l.Renewable || m.renewer == nil {
		return nil, fmt.Errorf("%w: %q", ErrNotRenewable, id)
	}
	ttl, err := m.renewer.Renew(ctx, l, increment)
	if err != nil {
		return nil, fmt.Errorf("lease: renew %q: %w", id, err)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("%w: %q: the mount granted no time", ErrNotRenewable, id)
	}
	// The Renewer took time: measure from when it answered.
	now = m.now()
	return m.setExpire(ctx, l, now.Add(ttl), now)
}

// Extend sets the expire time of a lease, capped at IssueTime+MaxTTL, and
// records a renewal. The token store calls it when it renews a token,
// having computed the new TTL itself. It fails with [ErrNotFound] or
// [ErrExpired].
func (m *Manager) Extend(ctx context.Context, id string, expire time.Time) (*Lease, error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	if expire.IsZero() {
		return nil, fmt.Errorf("%w: zero expire time", ErrInvalid)
	}
	release, _, err := m.acquire(ctx, id, claimChange)
	if err != nil {
		return nil, err
	}
	defer release()
	l, err := m.load(ctx, id)
	if err != nil {
		return nil, err
	}
	now := m.now()
	if l.Irrevocable || l.Expired(now) {
		return nil, fmt.Errorf("%w: %q", ErrExpired, id)
	}
	return m.setExpire(ctx, l, expire.UTC(), now)
}

// setExpire persists a renewal of the claimed lease l and reschedules it.
func (m *Manager) setExpire(ctx context.Context, l *Lease, expire, now time.Time) (*Lease, error) {
	l.ExpireTime = l.capExpire(expire)
	l.LastRenewal = now
	if err := m.save(ctx, l, false); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.trackLocked(placementOf(l, m.dueFor(l.ID, l.ExpireTime, now)))
	m.mu.Unlock()
	return l, nil
}

// Revoke revokes a lease now, through the Revoker, then deletes it
// (sys/leases/revoke with sync=true). With force, a Revoker error is
// logged and the lease deleted anyway (revoke-force). It fails with
// [ErrNotFound] for a lease that does not exist (or was revoked meanwhile).
func (m *Manager) Revoke(ctx context.Context, id string, force bool) error {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	return m.revoke(ctx, id, force)
}

// revoke claims the lease id, revokes it and deletes it.
func (m *Manager) revoke(ctx context.Context, id string, force bool) error {
	release, _, err := m.acquire(ctx, id, claimRevoke)
	if err != nil {
		return err
	}
	defer release()
	l, err := m.load(ctx, id)
	if err != nil {
		return err
	}
	if err := m.revoker.Revoke(ctx, l); err != nil {
		if !force || ctx.Err() != nil {
			return fmt.Errorf("lease: revoke %q: %w", id, err)
		}
		m.log.Warn("forced revocation ignored a revoke error", "lease_id", id, "error", truncate(err.Error()))
	}
	return m.erase(ctx, l)
}

// RevokeAsync queues a lease for revocation and returns (sync=false): its
// expire time becomes now, persisted, and the workers revoke it with
// retries, at the scheduled rate. An irrevocable lease is queued afresh
// with its attempts reset. It fails with [ErrNotFound].
func (m *Manager) RevokeAsync(ctx context.Context, id string) error {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	release, _, err := m.acquire(ctx, id, claimChange)
	if err != nil {
		return err
	}
	defer release()
	l, err := m.load(ctx, id)
	if err != nil {
		return err
	}
	return m.expireNow(ctx, l)
}

// expireNow makes the claimed lease l expire now and queues it, without
// jitter: someone asked for this revocation.
func (m *Manager) expireNow(ctx context.Context, l *Lease) error {
	now := m.now()
	was := l.Irrevocable
	changed := false
	if !l.Expired(now) {
		l.ExpireTime = now
		changed = true
	}
	if l.Irrevocable {
		l.Irrevocable, l.RevokeAttempts, l.RevokeError = false, 0, ""
		changed = true
	}
	if changed {
		if err := m.save(ctx, l, was); err != nil {
			return err
		}
	}
	m.mu.Lock()
	m.trackLocked(placementOf(l, now))
	m.mu.Unlock()
	return nil
}

// beginPrefix is begin for an operation on the leases under prefix: it
// also checks the prefix and returns it cleaned (see cleanPrefix).
func (m *Manager) beginPrefix(ctx context.Context, prefix string) (context.Context, string, func(), error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return nil, "", nil, err
	}
	p, err := cleanPrefix(prefix)
	if err != nil {
		done()
		return nil, "", nil, err
	}
	return ctx, p, done, nil
}

// cleanPrefix checks a revoke prefix and returns it without trailing '/'.
func cleanPrefix(prefix string) (string, error) {
	p := strings.TrimSuffix(prefix, "/")
	if err := validID(p); err != nil {
		return "", fmt.Errorf("%w: prefix: %v", ErrInvalid, err)
	}
	return p, nil
}

// maxJoined bounds the errors a bulk operation reports one by one.
const maxJoined = 10

// errList collects the errors of a bulk operation, keeping the first few.
type errList struct {
	mu    sync.Mutex
	errs  []error
	total int
}

func (l *errList) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if len(l.errs) < maxJoined {
		l.errs = append(l.errs, err)
	}
}

func (l *errList) err(op string) error {
	if l.total == 0 {
		return nil
	}
	return fmt.Errorf("lease: %s: %d failed: %w", op, l.total, errors.Join(l.errs...))
}

// RevokePrefix revokes, now, the lease whose id is prefix and every lease
// under prefix + "/" (revoke-prefix; with force, revoke-force). It uses up
// to RevokeWorkers goroutines and is not rate-limited. Without force it
// goes on past a failure and reports every failure at the end; the leases
// that failed stay. The prefix must not be empty.
func (m *Manager) RevokePrefix(ctx context.Context, prefix string, force bool) error {
	ctx, p, done, err := m.beginPrefix(ctx, prefix)
	if err != nil {
		return err
	}
	defer done()
	ids := make(chan string)
	var errs errList
	var wg sync.WaitGroup
	for range m.cfg.RevokeWorkers {
		wg.Go(func() {
			for id := range ids {
				if err := m.revoke(ctx, id, force); err != nil && !errors.Is(err, ErrNotFound) {
					errs.add(err)
				}
			}
		})
	}
	send := func(id string) error {
		select {
		case ids <- id:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	werr := m.eachUnder(ctx, p, send)
	close(ids)
	wg.Wait()
	if werr != nil {
		errs.add(werr)
	}
	return errs.err(fmt.Sprintf("revoke prefix %q", p))
}

// RevokePrefixAsync queues for revocation, as [Manager.RevokeAsync] does,
// the lease whose id is prefix and every lease under prefix + "/", and
// returns (revoke-prefix with sync=false).
func (m *Manager) RevokePrefixAsync(ctx context.Context, prefix string) error {
	ctx, p, done, err := m.beginPrefix(ctx, prefix)
	if err != nil {
		return err
	}
	defer done()
	var errs errList
	queue := func(id string) error {
		release, _, err := m.acquire(ctx, id, claimChange)
		if err != nil {
			return err
		}
		defer release()
		l, err := m.load(ctx, id)
		if err == nil {
			err = m.expireNow(ctx, l)
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			errs.add(err)
		}
		return nil
	}
	if err := m.eachUnder(ctx, p, queue); err != nil {
		errs.add(err)
	}
	return errs.err(fmt.Sprintf("queue prefix %q", p))
}

// RevokeByToken is what the token store calls while it revokes a token.
// Every secret lease the token owns is made to expire now (persisted) and
// queued, so that the workers revoke it with retries as they do any
// expired lease. The token's own lease, ownID ("" for a token without
// one), is deleted without calling the Revoker, since the caller is
// revoking that token, and skipped if the manager is revoking it (the
// Revoker called us). It reads the token's index and the own lease, never
// every lease.
func (m *Manager) RevokeByToken(ctx context.Context, tokenKey, ownID string) error {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := validTokenKey(tokenKey, false); err != nil {
		return err
	}
	if ownID != "" {
		if err := validID(ownID); err != nil {
			return fmt.Errorf("%w: own lease: %v", ErrInvalid, err)
		}
	}
	dir := tokenDir(tokenKey)
	names, err := m.st.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("lease: list token index: %w", err)
	}
	var errs errList
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := m.revokeIndexed(ctx, tokenKey, dir+name); err != nil {
			errs.add(err)
		}
	}
	if ownID != "" {
		// Written without an index entry (or, by earlier versions, with
		// one that the loop above has handled: then it is gone).
		if err := m.revokeOwned(ctx, tokenKey, ownID, ""); err != nil {
			errs.add(err)
		}
	}
	return errs.err("revoke by token")
}

// revokeIndexed handles one token index entry for RevokeByToken.
func (m *Manager) revokeIndexed(ctx context.Context, tokenKey, indexKey string) error {
	id, err := url.PathUnescape(indexKey[strings.LastIndexByte(indexKey, '/')+1:])
	if err != nil || validID(id) != nil {
		return m.dropIndex(ctx, indexKey)
	}
	return m.revokeOwned(ctx, tokenKey, id, indexKey)
}

// revokeOwned revokes lease id of the token tokenKey, found through the
// index entry indexKey, or, with indexKey "", the token's own lease.
func (m *Manager) revokeOwned(ctx context.Context, tokenKey, id, indexKey string) error {
	// A lease's kind never changes, so it may be read before the claim.
	// The token's own lease is skipped when it is being revoked: that
	// revocation is what called us, and waiting for it would wait for
	// ourselves. A secret lease is waited for: a revocation in flight may
	// fail and leave it unexpired.
	mode := claimChange
	if l, err := m.load(ctx, id); err == nil && l.Kind == KindToken {
		mode = claimUnlessRevoking
	}
	release, skipped, err := m.acquire(ctx, id, mode)
	if err != nil {
		return err
	}
	if skipped {
		return nil
	}
	defer release()
	l, err := m.load(ctx, id)
	stale := errors.Is(err, ErrNotFound) || (err == nil && l.TokenKey != tokenKey)
	switch {
	case stale && indexKey == "":
		return nil
	case stale:
		return m.dropIndex(ctx, indexKey)
	case err != nil:
		return err
	case l.Kind == KindToken && indexKey != "":
		// An entry an earlier version wrote for the token's own lease.
		if err := m.erase(ctx, l); err != nil {
			return err
		}
		return m.dropIndex(ctx, indexKey)
	case l.Kind == KindToken:
		return m.erase(ctx, l)
	case indexKey == "":
		return nil // the token's key on a secret lease's id: not its own
	default:
		return m.expireNow(ctx, l)
	}
}

// TokenKeys calls fn with the key of the token of every token lease whose
// id lies under prefix, taken as whole path segments (as
// [Manager.RevokePrefix]): the tokens an auth mount issued, for
// sys/leases/revoke-prefix to revoke at once even when their leases are
// only queued. It reads every lease record under the prefix.
func (m *Manager) TokenKeys(ctx context.Context, prefix string, fn func(tokenKey string) error) error {
	ctx, p, done, err := m.beginPrefix(ctx, prefix)
	if err != nil {
		return err
	}
	defer done()
	// A lease that cannot be read, or a token fn fails on, does not stop
	// the others: the errors are returned together.
	var errs errList
	visit := func(id string) error {
		l, err := m.load(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			// Revoked meanwhile.
		case err != nil:
			errs.add(err)
		case l.Kind == KindToken:
			if err := fn(l.TokenKey); err != nil {
				errs.add(err)
			}
		}
		return ctx.Err()
	}
	if err := m.eachUnder(ctx, p, visit); err != nil {
		errs.add(err)
	}
	return errs.err(fmt.Sprintf("token leases under %q", p))
}

// eachUnder calls fn with the id p (a lease may have it) and then every
// lease id under p + "/", stopping at the first error fn or storage
// returns.
func (m *Manager) eachUnder(ctx context.Context, p string, fn func(id string) error) error {
	if err := fn(p); err != nil {
		return err
	}
	return m.walk(ctx, recordPrefix+p+"/", func(key string) error {
		return fn(strings.TrimPrefix(key, recordPrefix))
	})
}

func (m *Manager) dropIndex(ctx context.Context, key string) error {
	if err := m.st.Delete(ctx, key); err != nil {
		return fmt.Errorf("lease: delete index entry %q: %w", key, err)
	}
	return nil
}

// Irrevocable returns the irrevocable leases, sorted by escaped id, read
// through their index.
func (m *Manager) Irrevocable(ctx context.Context) ([]*Lease, error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	names, err := m.st.List(ctx, irrevocablePrefix)
	if err != nil {
		return nil, fmt.Errorf("lease: list irrevocable: %w", err)
	}
	out := make([]*Lease, 0, len(names))
	for _, name := range names {
		id, err := url.PathUnescape(name)
		if err != nil {
			continue // Tidy removes it
		}
		l, err := m.load(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // dangling: Tidy removes it
		}
		if err != nil {
			return nil, err
		}
		if l.Irrevocable {
			out = append(out, l)
		}
	}
	return out, nil
}

// IrrevocableCount returns the number of entries in the irrevocable
// index (sys/leases/count). It may count an entry Tidy would remove.
func (m *Manager) IrrevocableCount(ctx context.Context) (int, error) {
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer done()
	names, err := m.st.List(ctx, irrevocablePrefix)
	if err != nil {
		return 0, fmt.Errorf("lease: list irrevocable: %w", err)
	}
	return len(names), nil
}

// TidyResult reports what [Manager.Tidy] did.
type TidyResult struct {
	// Leases counts the records scanned; Unreadable those that could not
	// be decoded (left in place and logged).
	Leases     int
	Unreadable int
	// IndexRemoved counts index entries that pointed at a missing lease
	// or at a lease they do not describe; IndexRestored counts index
	// entries a lease lacked and got back.
	IndexRemoved  int
	IndexRestored int
	// Rescheduled counts expiring leases the scheduler did not know of.
	Rescheduled int
}

// Tidy repairs what a crash between two writes can leave (sys/leases/tidy):
// index entries without their lease are removed, leases missing from an
// index are added back, and, once the restore is done, expiring leases
// the scheduler does not know of are scheduled. It reads every record.
func (m *Manager) Tidy(ctx context.Context) (TidyResult, error) {
	var res TidyResult
	ctx, done, err := m.begin(ctx)
	if err != nil {
		return res, err
	}
	defer done()
	var errs errList
	err = m.walk(ctx, recordPrefix, func(key string) error {
		res.Leases++
		if err := m.tidyRecord(ctx, strings.TrimPrefix(key, recordPrefix), &res); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			errs.add(err)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	// Index entries: the token index, then the irrevocable one.
	index := func(key, id string, parsed bool, belongs func(*Lease) bool) error {
		removed, err := m.tidyIndex(ctx, key, id, parsed, belongs)
		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case err != nil && isStorageErr(err):
			errs.add(err)
		case removed:
			res.IndexRemoved++
		}
		return nil
	}
	err = m.walk(ctx, tokenPrefix, func(key string) error {
		rest := strings.TrimPrefix(key, tokenPrefix)
		i := strings.IndexByte(rest, '/')
		tk, err1 := url.PathUnescape(rest[:max(i, 0)])
		id, err2 := url.PathUnescape(rest[i+1:])
		parsed := i > 0 && err1 == nil && err2 == nil
		return index(key, id, parsed, func(l *Lease) bool { return l.TokenKey == tk })
	})
	if err != nil {
		return res, err
	}
	err = m.walk(ctx, irrevocablePrefix, func(key string) error {
		id, err := url.PathUnescape(strings.TrimPrefix(key, irrevocablePrefix))
		return index(key, id, err == nil, func(l *Lease) bool { return l.Irrevocable })
	})
	if err != nil {
		return res, err
	}
	if res.IndexRemoved+res.IndexRestored+res.Rescheduled+res.Unreadable > 0 {
		m.log.Info("lease tidy repaired entries", "removed", res.IndexRemoved, "restored", res.IndexRestored,
			"rescheduled", res.Rescheduled, "unreadable", res.Unreadable)
	}
	return res, errs.err("tidy")
}

// tidyRecord checks one lease's index entries and schedule.
func (m *Manager) tidyRecord(ctx context.Context, id string, res *TidyResult) error {
	release, _, err := m.acquire(ctx, id, claimChange)
	if err != nil {
		return err
	}
	defer release()
	l, err := m.load(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil // revoked meanwhile
	case err != nil && ctx.Err() == nil && !isStorageErr(err):
		res.Unreadable++
		m.log.Error("unreadable lease record", "lease_id", id, "error", err)
		return nil
	case err != nil:
		return err
	}
	var keys []string
	if l.indexed() {
		keys = append(keys, tokenIndexKey(l.TokenKey, l.ID))
	}
	if l.Irrevocable {
		keys = append(keys, irrevocableKey(l.ID))
	}
	for _, k := range keys {
		_, err := m.st.Get(ctx, k)
		if err == nil {
			continue
		}
		if !errors.Is(err, logical.ErrNotFound) {
			return fmt.Errorf("lease: read %q: %w", k, err)
		}
		if err := m.st.Put(ctx, k, []byte{}); err != nil {
			return fmt.Errorf("lease: write %q: %w", k, err)
		}
		res.IndexRestored++
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.restoring && m.table.lookup(id) < 0 && (l.Irrevocable || !l.ExpireTime.IsZero()) {
		res.Rescheduled++
		m.trackLocked(placementOf(l, m.dueFor(id, l.ExpireTime, m.now())))
	}
	return nil
}

// tidyIndex removes the index entry key unless it names (parsed) a lease
// id that exists and that belongs says it describes. An unreadable lease
// keeps its entries.
func (m *Manager) tidyIndex(ctx context.Context, key, id string, parsed bool, belongs func(*Lease) bool) (removed bool, err error) {
	if parsed && validID(id) == nil {
		release, _, err := m.acquire(ctx, id, claimChange)
		if err != nil {
			return false, err
		}
		defer release()
		l, err := m.load(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return false, err
		case belongs(l):
			return false, nil
		}
	}
	if err := m.dropIndex(ctx, key); err != nil {
		return false, err
	}
	return true, nil
}

// isStorageErr tells a storage failure from a record that would not decode.
func isStorageErr(err error) bool {
	return !errors.Is(err, errDecode)
}
