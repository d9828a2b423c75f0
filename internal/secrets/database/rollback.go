package database

import (
	"context"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Rollback of users whose lease was never stored
//
// A creds request records its intent to create a user (a framework intent
// record: the user name, role, connection and revocation statements, never
// the password) before it creates the user, and the record goes once the
// lease that revokes the user is stored (credsRegistered), or once the
// user is known not to exist (its creation failed and was undone, or the
// lease was revoked). A record that stays marks a user nothing else will
// drop: the server stopped between the creation and the lease, or the
// lease could not be stored and the revocation the pipeline ran at once
// failed too.
//
// The mount's periodic work drops the users of the records older than
// rollbackMinAge, and then deletes the records. A younger record may
// belong to a request in flight: the minimum age must exceed the longest
// request (the HTTP layer's max_request_duration, 90 s by default). On a
// server configured to let requests run longer, a request slower than
// that could hand out a user already dropped (its lease then finds it
// gone: no user is left behind, but the credentials do not work). Dropping is idempotent: a user that was never created, or is
// gone, is not an error. A failed drop backs off (10 s, doubling, at most
// 10 minutes) and the record stays. The periodic work runs at once at
// unseal, so records left by a crash are handled then; it is woken when a
// creation could not be undone or a user could not be dropped, and comes
// back for each younger record it saw when that reaches the minimum age.
// A record it has not seen (none is expected) is found within the
// scheduler's longest interval (10 minutes) past that age.

// intentCredsUser is the kind of the intent a creds request records.
const intentCredsUser = "creds-user"

// rollbackMinAge is how old an intent must be before the user it names is
// dropped, as Vault's WAL rollback waits.
const rollbackMinAge = 5 * time.Minute

// rollback drops the users of the intents old enough and returns when it
// next has work: the retry of a failed drop, or the time a younger intent
// comes of age (zero: none).
func (b *backend) rollback(ctx context.Context, s logical.Storage) time.Time {
	now := b.now()
	intents, err := framework.ListIntents(ctx, s, time.Time{})
	var next time.Time
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{}
		}
		b.logger.Error("intent records unreadable; the users they name are not rolled back", "error", err)
		next = now.Add(retryMin)
	}
	live := make(map[string]bool, len(intents))
	for _, in := range intents {
		live[in.ID] = true
	}
	b.rollbacks.retain(live)
	for _, in := range intents {
		if ctx.Err() != nil {
			return time.Time{}
		}
		due := in.Created.Add(rollbackMinAge)
		if retry := b.rollbacks.at(in.ID); retry.After(due) {
			due = retry
		}
		if due.After(now) {
			next = earliest(next, due)
			continue
		}
		if at := b.rollbackOne(ctx, s, in, now); !at.IsZero() {
			next = earliest(next, at)
		}
	}
	return next
}

// rollbackOne drops the user of one intent and deletes the intent; on a
// failure it returns when to try again.
func (b *backend) rollbackOne(ctx context.Context, s logical.Storage, in framework.Intent, now time.Time) time.Time {
	var u issuedUser
	err := in.Decode(&u)
	if err == nil && in.Kind != intentCredsUser {
		b.logger.Error("intent of an unknown kind left alone", "intent_id", in.ID, "kind", in.Kind)
		return time.Time{}
	}
	if err == nil {
		err = b.dropUser(ctx, s, u)
	}
	if err == nil {
		err = framework.DeleteIntent(ctx, s, in.ID)
	}
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{}
		}
		retry := b.rollbacks.failed(in.ID, now)
		b.logger.Warn("rollback of a user whose lease was never stored failed", "username", u.Username, "role", u.Role,
			"intent_id", in.ID, "retry_at", retry, "error", err)
		return retry
	}
	b.rollbacks.clear(in.ID)
	b.logger.Info("rolled back a user whose lease was never stored", "username", u.Username, "role", u.Role,
		"intent_id", in.ID, "recorded_at", in.Created)
	return time.Time{}
}

// earliest returns the earlier of a and b, the zero time standing for
// never.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
