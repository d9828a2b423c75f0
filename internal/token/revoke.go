package token

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// Revoke revokes a service token and all its descendants (see RevokeTree).
// Revoking an unknown, revoked or expired token is not an error; a batch
// token cannot be revoked on its own (ErrBatch).
func (st *Store) Revoke(ctx context.Context, tok secret.String) error {
	if st.closed.Load() {
		return ErrClosed
	}
	v := tok.Reveal()
	if v == "" {
		return nil
	}
	if IsBatchToken(tok) {
		return ErrBatch
	}
	return st.revokeTree(ctx, st.hashToken(v))
}

// RevokeTree revokes the token with the given hashed id and all its
// descendants, depth first: each token after its children. For each token
// the Revoker hook revokes its leases first; if that fails, the token (and
// with it every ancestor still standing) is kept and the error returned,
// so that a retry finds everything that is left. Revoking an unknown token
// is not an error.
func (st *Store) RevokeTree(ctx context.Context, hashedID string) error {
	d, ok := parseDigest(hashedID)
	if !ok {
		return fmt.Errorf("token: malformed hashed id")
	}
	return st.revokeTree(ctx, d)
}

// node is a token on the revocation stack, with the parent whose child
// index led to it.
type node struct {
	d      digest
	parent string
}

func (st *Store) revokeTree(ctx context.Context, root digest) error {
	if st.closed.Load() {
		return ErrClosed
	}
	stack := []node{{d: root}}
	onStack := map[digest]bool{root: true}
	for len(stack) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := stack[len(stack)-1]
		kids, err := st.revokeOne(ctx, n)
		if err != nil {
			return err
		}
		if len(kids) == 0 {
			stack = stack[:len(stack)-1]
			delete(onStack, n.d)
			continue
		}
		for _, k := range kids {
			if onStack[k] {
				return fmt.Errorf("token: the token tree has a cycle at %s", k)
			}
			onStack[k] = true
			stack = append(stack, node{d: k, parent: n.d.String()})
		}
	}
	return nil
}

// revokeOne revokes one token if it has no children left, under its lock
// (so that no child can be added meanwhile). Otherwise it returns the
// children, which must go first. A child index entry that does not match
// the token it names (the token is gone, or is no longer that parent's
// child after an interrupted revoke-orphan) is dropped, and the token left
// alone.
func (st *Store) revokeOne(ctx context.Context, n node) ([]digest, error) {
	mu := st.lock(n.d)
	mu.Lock()
	defer mu.Unlock()
	e, err := st.loadHeld(ctx, n.d)
	if err != nil && !errors.Is(err, ErrInvalid) {
		return nil, err
	}
	if err != nil || (n.parent != "" && e.Parent != n.parent) {
		// A token that is gone keeps its children: they were orphaned
		// by a revoke-orphan that did not finish, and Tidy completes it.
		if n.parent == "" {
			return nil, nil
		}
		var w writeOps
		w.del(childKey(n.parent, n.d.String()))
		return nil, w.apply(ctx, st.s)
	}
	kids, err := st.children(ctx, n.d.String())
	if err != nil || len(kids) > 0 {
		return kids, err
	}
	if st.leases != nil {
		if err := st.leases.RevokeLeases(ctx, e); err != nil {
			return nil, fmt.Errorf("token: revoke the leases of a token: %w", err)
		}
	}
	return nil, st.remove(ctx, n.d, e, "")
}

// children lists the hashed ids of a token's children.
func (st *Store) children(ctx context.Context, parent string) ([]digest, error) {
	names, err := st.s.List(ctx, parentPrefix+parent+"/")
	if err != nil {
		return nil, fmt.Errorf("token: list children: %w", err)
	}
	var out []digest
	for _, name := range names {
		if d, ok := parseDigest(name); ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// RevokeOrphan revokes the token with the given hashed id alone: its
// leases through the Revoker hook, then the token; its children become
// orphans. Revoking an unknown token is not an error.
func (st *Store) RevokeOrphan(ctx context.Context, hashedID string) error {
	if st.closed.Load() {
		return ErrClosed
	}
	d, ok := parseDigest(hashedID)
	if !ok {
		return fmt.Errorf("token: malformed hashed id")
	}
	mu := st.lock(d)
	mu.Lock()
	e, err := st.loadHeld(ctx, d)
	switch {
	case errors.Is(err, ErrInvalid):
		mu.Unlock()
	case err != nil:
		mu.Unlock()
		return err
	default:
		if st.leases != nil {
			if err := st.leases.RevokeLeases(ctx, e); err != nil {
				mu.Unlock()
				return fmt.Errorf("token: revoke the leases of a token: %w", err)
			}
		}
		err := st.remove(ctx, d, e, "")
		mu.Unlock()
		if err != nil {
			return err
		}
	}
	// The token is gone, so no child can be added any more: orphan the
	// children it had. A crash here leaves children naming a parent that
	// does not exist; Tidy orphans them.
	kids, err := st.children(ctx, hashedID)
	if err != nil {
		return err
	}
	for _, k := range kids {
		if err := st.orphan(ctx, k, hashedID); err != nil {
			return err
		}
	}
	return nil
}

// orphan makes the token k, a child of parent, an orphan and drops the
// child index entry.
func (st *Store) orphan(ctx context.Context, k digest, parent string) error {
	mu := st.lock(k)
	mu.Lock()
	defer mu.Unlock()
	e, err := st.loadHeld(ctx, k)
	switch {
	case errors.Is(err, ErrInvalid):
	case err != nil:
		return err
	case e.Parent == parent:
		next := e.clone()
		next.Parent = ""
		if err := st.putEntry(ctx, k, next); err != nil {
			return err
		}
	}
	var w writeOps
	w.del(childKey(parent, k.String()))
	return w.apply(ctx, st.s)
}

// RevokeByPathPrefix revokes, each with its subtree, every service token
// without a lease of its own whose creation path lies under prefix, taken
// as whole path segments ("auth/approle" covers "auth/approle/login" but
// not "auth/approle2/login"), and those with one that earlier versions
// indexed by path. With its lease-record counterpart in core (a leased
// token's lease record is its path index), it is how
// sys/leases/revoke-prefix on an auth mount cuts every token the mount
// issued. It goes on after a failure and returns all the errors.
func (st *Store) RevokeByPathPrefix(ctx context.Context, prefix string) error {
	if st.closed.Load() {
		return ErrClosed
	}
	dir := pathIndexDir(prefix)
	var errs []error
	err := st.walk(ctx, dir, func(parentDir, name string) error {
		d, ok := parseDigest(name)
		if !ok {
			return nil
		}
		if err := st.revokeTree(ctx, d); err != nil {
			errs = append(errs, err)
		}
		// An index entry whose token was already gone is dropped too.
		var w writeOps
		w.del(parentDir + name)
		if _, err := st.load(ctx, d); errors.Is(err, ErrInvalid) {
			if err := w.apply(ctx, st.s); err != nil {
				errs = append(errs, err)
			}
		}
		return ctx.Err()
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// walk calls f for every leaf under dir (which ends in '/'), depth first.
func (st *Store) walk(ctx context.Context, dir string, f func(dir, name string) error) error {
	names, err := st.s.List(ctx, dir)
	if err != nil {
		return fmt.Errorf("token: list %s: %w", strings.TrimSuffix(dir, "/"), err)
	}
	for _, name := range names {
		if strings.HasSuffix(name, "/") {
			if err := st.walk(ctx, dir+name, f); err != nil {
				return err
			}
			continue
		}
		if err := f(dir, name); err != nil {
			return err
		}
	}
	return nil
}

// ListAccessors returns the accessors of every service token that is still
// usable, for LIST auth/token/accessors.
func (st *Store) ListAccessors(ctx context.Context) ([]string, error) {
	if st.closed.Load() {
		return nil, ErrClosed
	}
	names, err := st.s.List(ctx, accessorPrefix)
	if err != nil {
		return nil, fmt.Errorf("token: list accessors: %w", err)
	}
	out := make([]string, 0, len(names))
	for _, name := range names {
		ad, ok := parseDigest(name)
		if !ok {
			continue
		}
		raw, err := st.s.Get(ctx, accessorPrefix+name)
		if err != nil {
			continue // removed meanwhile
		}
		d, ok := parseDigest(strings.TrimSpace(string(raw)))
		if !ok {
			continue
		}
		e, err := st.lookupDigest(ctx, d)
		if err != nil {
			if errors.Is(err, ErrInvalid) {
				continue
			}
			return nil, err
		}
		if e.Accessor != "" && st.hashAccessor(e.Accessor) == ad {
			out = append(out, e.Accessor)
		}
	}
	return out, nil
}

// TidyStats counts what a Tidy did.
type TidyStats struct {
	// Revoked counts the expired or used-up tokens revoked, each with its
	// subtree.
	Revoked int
	// Orphaned counts tokens whose parent no longer existed, made orphans.
	Orphaned int
	// IndexEntries counts index entries removed because they named a
	// token that no longer exists (or no longer matches).
	IndexEntries int
}

// Tidy cleans the store: it revokes (through the hooks, with their
// subtrees) tokens that have expired or used their last use, orphans
// tokens whose parent is gone, and removes index entries that name tokens
// that no longer exist. Only one Tidy runs at a time (ErrTidyRunning). It
// goes on after a failure and returns all the errors with the counts.
func (st *Store) Tidy(ctx context.Context) (TidyStats, error) {
	var stats TidyStats
	if st.closed.Load() {
		return stats, ErrClosed
	}
	if !st.tidyMu.TryLock() {
		return stats, ErrTidyRunning
	}
	defer st.tidyMu.Unlock()
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	// Tokens: expired, used up, or children of a missing parent.
	ids, err := st.s.List(ctx, idPrefix)
	keep(err)
	now := st.now()
	for _, name := range ids {
		if ctx.Err() != nil {
			break
		}
		d, ok := parseDigest(name)
		if !ok {
			continue
		}
		e, err := st.load(ctx, d)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				keep(err)
			}
			continue
		}
		if !e.usable(now) {
			if err := st.revokeTree(ctx, d); err != nil {
				keep(err)
			} else {
				stats.Revoked++
			}
			continue
		}
		if e.Parent != "" {
			pd, ok := parseDigest(e.Parent)
			if _, perr := st.load(ctx, pd); !ok || errors.Is(perr, ErrInvalid) {
				if err := st.orphan(ctx, d, e.Parent); err != nil {
					keep(err)
				} else {
					stats.Orphaned++
				}
			}
		}
	}

	// dangling removes the index entry key if check, run under the lock of
	// the token d it names, says it no longer holds.
	dangling := func(key string, d digest, check func(e *Entry) bool) {
		mu := st.lock(d)
		mu.Lock()
		defer mu.Unlock()
		e, err := st.loadHeld(ctx, d)
		if err != nil && !errors.Is(err, ErrInvalid) {
			keep(err)
			return
		}
		if err == nil && check(e) {
			return
		}
		var w writeOps
		w.del(key)
		if err := w.apply(ctx, st.s); err != nil {
			keep(err)
			return
		}
		stats.IndexEntries++
	}

	// Accessor index.
	accs, err := st.s.List(ctx, accessorPrefix)
	keep(err)
	for _, name := range accs {
		if ctx.Err() != nil {
			break
		}
		ad, ok := parseDigest(name)
		if !ok {
			continue
		}
		raw, err := st.s.Get(ctx, accessorPrefix+name)
		if err != nil {
			continue
		}
		d, ok := parseDigest(strings.TrimSpace(string(raw)))
		if !ok {
			d = digest{} // malformed: the zero digest names no token
		}
		dangling(accessorPrefix+name, d, func(e *Entry) bool { return e.Accessor != "" && st.hashAccessor(e.Accessor) == ad })
	}

	// Children index.
	parents, err := st.s.List(ctx, parentPrefix)
	keep(err)
	for _, p := range parents {
		if ctx.Err() != nil {
			break
		}
		parent := strings.TrimSuffix(p, "/")
		kids, err := st.s.List(ctx, parentPrefix+p)
		if err != nil {
			keep(err)
			continue
		}
		for _, k := range kids {
			d, ok := parseDigest(k)
			if !ok {
				continue
			}
			dangling(childKey(parent, k), d, func(e *Entry) bool { return e.Parent == parent })
		}
	}

	// Creation path index.
	keep(st.walk(ctx, pathPrefix, func(dir, name string) error {
		if d, ok := parseDigest(name); ok {
			dangling(dir+name, d, func(e *Entry) bool { return pathIndexDir(e.Path) == dir })
		}
		return ctx.Err()
	}))
	if err := ctx.Err(); err != nil {
		keep(err)
	}
	if len(errs) > 0 {
		st.log.Warn("token tidy finished with errors", "errors", len(errs), "revoked", stats.Revoked, "orphaned", stats.Orphaned, "index_entries", stats.IndexEntries)
	}
	return stats, errors.Join(errs...)
}
