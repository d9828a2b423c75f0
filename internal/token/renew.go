package token

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// Renew renews the token of e from now: its new TTL is increment, or its
// creation TTL when increment is 0 (the period for a periodic token),
// capped at its issue time plus its maximum TTL (the least of defaults'
// MaxTTL, the token's MaxTTL and its explicit maximum; only the explicit
// maximum for a periodic token). It returns the renewed entry and the
// warnings of the caps.
//
// A token created against a token role takes the role's current period and
// explicit maximum (a deleted role refuses the renewal). A token a login
// created asks its auth mount through the AuthRenewer, whose answer (and
// whose mount defaults) replace the stored settings. The TokenRenewed hook
// is then called; if it fails the renewal is undone.
//
// Errors: ErrBatch for a batch token; ErrInvalid for a token that is no
// longer usable; ErrNotRenewable for a token created non-renewable or
// never expiring; ErrPastMaxTTL once its maximum is reached; a 400
// [logical.CodedError] when its role is gone; the AuthRenewer's error.
func (st *Store) Renew(ctx context.Context, e *Entry, increment time.Duration, defaults TTLDefaults) (*Entry, []string, error) {
	if e == nil {
		return nil, nil, ErrInvalid
	}
	if e.IsBatch() {
		return nil, nil, ErrBatch
	}
	if increment < 0 {
		return nil, nil, logical.BadRequest("increment must not be negative")
	}
	d, ok := parseDigest(e.HashedID)
	if !ok {
		return nil, nil, ErrInvalid
	}
	mu := st.lock(d)
	mu.Lock()
	defer mu.Unlock()
	cur, err := st.lookupHeld(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	if !cur.Renewable || cur.ExpireTime.IsZero() {
		return nil, nil, ErrNotRenewable
	}
	in := ttlInput{
		Now:            st.now(),
		Start:          cur.CreationTime,
		Increment:      increment,
		BackendTTL:     cur.TTL,
		Period:         cur.Period,
		BackendMaxTTL:  cur.MaxTTL,
		ExplicitMaxTTL: cur.ExplicitMaxTTL,
		Defaults:       defaults,
	}
	if cur.Role != "" {
		r, err := st.loadRole(ctx, cur.Role)
		if err != nil {
			return nil, nil, err
		}
		if r == nil {
			return nil, nil, logical.BadRequest("original token role %q could not be found, not renewing", cur.Role)
		}
		if r.TokenPeriod > 0 {
			in.Period = r.TokenPeriod
		}
		in.ExplicitMaxTTL = minNonZero(cur.ExplicitMaxTTL, r.TokenExplicitMaxTTL)
		in.BackendMaxTTL = minNonZero(cur.MaxTTL, r.TokenMaxTTL)
	}
	if cur.MountPath != "" && st.renewer != nil {
		a, defs, err := st.renewer.RenewAuth(ctx, cur, cur.LoginAuth())
		if err != nil {
			return nil, nil, err
		}
		if a == nil {
			return nil, nil, errors.New("token: the auth mount returned no auth for the renewal")
		}
		in.BackendTTL = a.TTL
		in.BackendMaxTTL = a.MaxTTL
		in.Period = a.Period
		in.Defaults = defs
	}
	ttl, warnings, err := calculateTTL(in)
	if err != nil {
		return nil, nil, err
	}
	next := cur.clone()
	next.ExpireTime = in.Now.Add(ttl)
	next.LastRenewal = in.Now
	next.Period = in.Period
	if err := st.putEntry(ctx, d, next); err != nil {
		return nil, nil, err
	}
	if st.leases != nil {
		if err := st.leases.TokenRenewed(ctx, next); err != nil {
			if uerr := st.putEntry(ctx, d, cur); uerr != nil {
				st.log.Error("undo a token renewal whose lease failed", "error", uerr)
			}
			return nil, nil, fmt.Errorf("token: extend lease: %w", err)
		}
	}
	return next, warnings, nil
}

func minNonZero(a, b time.Duration) time.Duration {
	switch {
	case a <= 0:
		return b
	case b <= 0:
		return a
	}
	return min(a, b)
}
