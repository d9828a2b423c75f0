package database

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/secrets/database/dbplugin"
)

// Rotation of static roles
//
// A static role's password changes in the database and in the mount's
// storage together: the role, new password included, is stored inside the
// database transaction that sets the password, just before it commits
// (setPassword). Either both change or neither does.
//
// When a role is next due is computed from what is stored (the last
// rotation and the role's period or schedule), never kept only in memory,
// so a new backend over the same storage (after a restart, or at unseal)
// knows it: the core calls Periodic at once when the mount starts, which
// rotates the roles whose time passed while the server was sealed or down.
// What is kept in memory is only the backoff of failed rotations.

// Rotation strategies.
const (
	// strategyInPlace gives the user a new password at each rotation
	// (Vault's only strategy): credentials read before a rotation stop
	// working at it.
	strategyInPlace = "in_place"
	// strategyAlternating manages two users, username and its twin
	// username+twinSuffix: each rotation gives a new password to the one
	// not handed out and hands it out, so that credentials read before a
	// rotation keep working until the next one.
	strategyAlternating = "alternating"
	twinSuffix          = "_b"
)

// Limits of a static role's timing, as Vault's.
const (
	minRotationPeriod = 5 * time.Second
	minRotationWindow = time.Hour
)

// Backoff of a failed rotation: 10 s, doubled after each further failure,
// at most 10 minutes.
const (
	retryMin = 10 * time.Second
	retryMax = 10 * time.Minute
)

// cronParser parses rotation_schedule: five fields (minute, hour, day of
// month, month, day of week) with cron's standard syntax, optionally
// prefixed with CRON_TZ=<zone>; times are UTC otherwise. Never written.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)

// parseSchedule parses a rotation_schedule; a bad one is the caller's
// mistake (400).
func parseSchedule(text string, now time.Time) (cron.Schedule, error) {
	sched, err := cronParser.Parse(text)
	if err != nil {
		return nil, logical.BadRequest("invalid rotation_schedule %q: %v (want five fields: minute hour day-of-month month day-of-week)", text, err)
	}
	if sched.Next(now.UTC()).IsZero() {
		return nil, logical.BadRequest("rotation_schedule %q never comes round", text)
	}
	return sched, nil
}

// staticRole is a stored static role: its settings and the state of its
// rotations. The password is stored with it, behind the barrier.
type staticRole struct {
	DBName             string        `json:"db_name"`
	Username           string        `json:"username"`
	RotationPeriod     time.Duration `json:"rotation_period,omitempty"`
	RotationSchedule   string        `json:"rotation_schedule,omitempty"`
	RotationWindow     time.Duration `json:"rotation_window,omitempty"`
	RotationStatements []string      `json:"rotation_statements,omitempty"`
	Strategy           string        `json:"rotation_strategy"`
	SkipImportRotation bool          `json:"skip_import_rotation,omitempty"`
	// CreatedAt is when the role was created: the schedule counts from it
	// until the first rotation.
	CreatedAt time.Time `json:"created_at"`
	// CurrentUser is the user static-creds hands out: Username, or its
	// twin under the alternating strategy; empty while a role is created
	// (until its first rotation).
	CurrentUser string `json:"current_username"`
	// Password is CurrentUser's; empty until the first rotation of a role
	// created with skip_import_rotation.
	Password storedPassword `json:"password,omitzero"`
	// LastRotation is when the engine last set a password (zero before
	// the first rotation).
	LastRotation time.Time `json:"last_vault_rotation,omitzero"`

	// schedule is RotationSchedule parsed (not stored).
	schedule cron.Schedule
}

// storedPassword is a password as the engine stores it behind the
// barrier: unlike a secret.String, it marshals to its value.
type storedPassword struct{ secret.String }

func (p storedPassword) MarshalJSON() ([]byte, error) { return json.Marshal(p.Reveal()) }

func (p *storedPassword) UnmarshalJSON(raw []byte) error {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	p.String = secret.NewString(s)
	return nil
}

func (p storedPassword) IsZero() bool { return p.IsEmpty() }

// twin is the second user of an alternating role.
func (r *staticRole) twin() string { return r.Username + twinSuffix }

// rotationTarget is the user the next rotation sets a password on: the
// user itself in place; when alternating, the one not handed out, or the
// user itself when none is handed out yet (the rotation at creation).
func (r *staticRole) rotationTarget() string {
	if r.Strategy == strategyAlternating && r.CurrentUser == r.Username {
		return r.twin()
	}
	return r.Username
}

// nextRotation is when the role is next due, as seen at now: a period
// after the last rotation; or the schedule's first time after the last
// rotation, unless the rotation window of that time has passed unused (the
// server was down, or rotations failed), in which case the first time
// whose window is still open. Until the first rotation, the role's
// creation stands for the last.
func (r *staticRole) nextRotation(now time.Time) time.Time {
	last := r.LastRotation
	if last.IsZero() {
		last = r.CreatedAt
	}
	if r.RotationPeriod > 0 {
		return last.Add(r.RotationPeriod)
	}
	next := r.schedule.Next(last.UTC())
	if r.RotationWindow > 0 && now.After(next.Add(r.RotationWindow)) {
		// The first time t of the schedule with t+window after now.
		next = r.schedule.Next(now.Add(-r.RotationWindow).UTC())
	}
	return next
}

// ttl is how long the handed-out credentials have until the next
// rotation, in whole seconds, never negative.
func (r *staticRole) ttl(now time.Time) int64 {
	return max(seconds(r.nextRotation(now).Sub(now).Round(time.Second)), 0)
}

// loadStaticRole reads a static role; nil when there is none.
func loadStaticRole(ctx context.Context, s logical.Storage, name string) (*staticRole, error) {
	var r staticRole
	found, err := framework.GetJSON(ctx, s, staticRolePrefix+name, &r)
	if err != nil || !found {
		return nil, err
	}
	if r.RotationPeriod <= 0 && r.RotationSchedule == "" {
		return nil, fmt.Errorf("database: static role %q has neither a rotation period nor a schedule", name)
	}
	if r.RotationSchedule != "" {
		sched, err := cronParser.Parse(r.RotationSchedule)
		if err != nil {
			return nil, fmt.Errorf("database: static role %q: stored rotation_schedule: %w", name, err)
		}
		r.schedule = sched
	}
	return &r, nil
}

// rotate sets a new password on the role's rotation target, in the
// database and in storage at once (see setPassword), and updates r. A
// role that is not stored yet (creation) is stored by its first rotation;
// if it fails, nothing is stored. The caller holds the role's lock.
func (b *backend) rotate(ctx context.Context, s logical.Storage, name string, r *staticRole, create bool) error {
	c, err := roleConfig(ctx, s, name, r.DBName)
	if err != nil {
		return err
	}
	db, err := b.conns.get(c)
	if err != nil {
		return dbError(err)
	}
	next := *r
	next.CurrentUser = r.rotationTarget()
	password, err := b.newPassword(ctx, c)
	if err != nil {
		return err
	}
	next.Password = storedPassword{password}
	next.LastRotation = b.now()
	key := staticRolePrefix + name
	undo := func(ctx context.Context) error {
		if create {
			return s.Delete(ctx, key)
		}
		return framework.PutJSON(ctx, s, key, r)
	}
	err = b.setPassword(ctx, db, next.CurrentUser, next.Password.String, r.RotationStatements,
		func(ctx context.Context) error { return framework.PutJSON(ctx, s, key, &next) }, undo)
	if err != nil {
		return err
	}
	*r = next
	return nil
}

// setPassword sets user's password with statements (the driver's default
// when none) and, inside the database's transaction just before it
// commits, stores what goes with it (store): if storing fails, the
// database keeps the old password. If the commit fails after the store,
// undo puts storage back, the database having most likely kept the old
// password. The error is the client's to see (dbError).
func (b *backend) setPassword(ctx context.Context, db dbplugin.Database, user string, password secret.String, statements []string,
	store, undo func(context.Context) error) error {
	stored := false
	err := db.SetPassword(ctx, user, password, statements, func(ctx context.Context) error {
		if err := store(ctx); err != nil {
			return err
		}
		stored = true
		return nil
	})
	if err != nil && stored {
		if uerr := undo(context.WithoutCancel(ctx)); uerr != nil {
			b.logger.Error("a password change failed after the new password was stored, and the stored state could not be put back",
				"username", user, "error", uerr)
		}
	}
	return dbError(err)
}

// Periodic implements [logical.Periodic]: it rotates the static roles
// that are due, drops the users whose lease was never stored (see
// rollback.go), and returns when it next has work.
func (b *backend) Periodic(ctx context.Context, s logical.Storage) (time.Time, error) {
	names, err := s.List(ctx, staticRolePrefix)
	if err != nil {
		return time.Time{}, fmt.Errorf("database: list static roles: %w", err)
	}
	var next time.Time
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
		}
		next = earliest(next, b.rotateIfDue(ctx, s, name))
	}
	next = earliest(next, b.rollback(ctx, s))
	return next, ctx.Err()
}

// rotateIfDue rotates the named role if it is due (and not backing off
// after a failure) and returns when it next needs attention: its next
// rotation, or the retry of a failed one. A role that cannot be read is
// logged and skipped (zero time), so that it does not hold up the others.
func (b *backend) rotateIfDue(ctx context.Context, s logical.Storage, name string) time.Time {
	defer b.roleLocks.lock(name)()
	r, err := loadStaticRole(ctx, s, name)
	if err != nil || r == nil {
		if err != nil && ctx.Err() == nil {
			b.logger.Error("static role unreadable; not rotated", "role", name, "error", err)
		}
		return time.Time{}
	}
	now := b.now()
	due := r.nextRotation(now)
	if retry := b.retries.at(name); retry.After(due) {
		due = retry
	}
	if due.After(now) {
		return due
	}
	if err := b.rotate(ctx, s, name, r, false); err != nil {
		if ctx.Err() != nil {
			return time.Time{}
		}
		retry := b.retries.failed(name, now)
		b.logger.Warn("static role rotation failed", "role", name, "retry_at", retry, "error", err)
		return retry
	}
	b.retries.clear(name)
	b.logger.Info("static role rotated", "role", name, "username", r.CurrentUser)
	b.sendEvent(rotateEvent(name, "static-creds/"+name))
	return r.nextRotation(now)
}

// rotateEvent is the change event of a rotation of the static role name
// (see the package doc); path is the path of the request that asked for
// it, or static-creds/<name> for a scheduled one.
func rotateEvent(name, path string) logical.Event {
	return logical.Event{Type: "database/rotate", Operation: "rotate", Path: path, DataPath: "static-creds/" + name,
		Metadata: map[string]string{"name": name}}
}

// retries is the backoff of failed background work, by name: the static
// roles whose last scheduled rotation failed, the intents whose rollback
// failed. Kept in memory only: after a restart the work is tried at once.
type retries struct {
	mu sync.Mutex
	m  map[string]retry
}

type retry struct {
	failures int
	at       time.Time
}

// at returns when the role may be tried again (zero: at once).
func (r *retries) at(name string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[name].at
}

// failed records a failure at now and returns the time of the retry.
func (r *retries) failed(name string, now time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]retry{}
	}
	e := r.m[name]
	e.failures++
	e.at = now.Add(min(retryMin<<min(e.failures-1, 16), retryMax))
	r.m[name] = e
	return e.at
}

// clear forgets the failures of name (a role rotated, or was written or
// deleted; an intent was rolled back).
func (r *retries) clear(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, name)
}

// retain forgets the failures of the names not in keep (intents deleted
// by someone else).
func (r *retries) retain(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range r.m {
		if !keep[name] {
			delete(r.m, name)
		}
	}
}

// errNoTwins: the connection's driver cannot manage two users.
var errNoTwins = errors.New("the connection's driver does not support the alternating rotation strategy")
