// Package postgres is the PostgreSQL driver of the database secrets engine
// (plugin name "postgresql-database-plugin"): it opens a small pool of
// pgx connections as the configured admin user and creates, renews,
// deletes and re-passwords users by running the operator's statements,
// each operation in one transaction.
//
// # Defaults
//
// With no statements of the operator's, the driver runs its own:
//
//   - renew: ALTER ROLE "<name>" VALID UNTIL '<expiration>';
//   - revoke: end the user's sessions, then REASSIGN OWNED BY the user TO
//     the admin user, DROP OWNED BY the user (which also revokes its
//     privileges in this database) and DROP ROLE IF EXISTS;
//   - password: ALTER ROLE "<username>" WITH PASSWORD '<password>'.
//
// For the alternating rotation strategy it creates a user's twin, a user
// interchangeable with it (see [DB.EnsureTwin]).
//
// Before any revocation the driver makes the user NOLOGIN and terminates
// its sessions, so that neither a new login nor an open session survives
// it. An admin user that is not a superuser is first granted membership in
// the user being revoked, which PostgreSQL requires for REASSIGN OWNED,
// DROP OWNED and ending the user's sessions; such an admin needs
// CREATEROLE. Objects the user owns in other databases are not reassigned
// (PostgreSQL's REASSIGN OWNED is per database) and make DROP ROLE fail,
// which leaves the lease to be retried.
//
// Session termination waits (up to 5 s) for the sessions to end, which
// needs PostgreSQL 14 or later.
//
// Creation, renewal and revocation transactions that PostgreSQL fails for
// reasons of concurrency, not of the statements (a serialization failure,
// a deadlock, or "tuple concurrently updated", which concurrent GRANTs on
// one schema and DROP OWNED raise), are run again a few times after a
// short, growing, jittered wait.
//
// # Credentials
//
// Every error this package returns has had the admin password and the
// password of the user at hand removed from its text (see
// [dbplugin.Redact]); a failed statement is named by its template.
//
// The package imports nothing internal but the engine's dbplugin contract
// and package secret.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/secrets/database/dbplugin"
)

// PluginName is the plugin_name that selects this driver.
const PluginName = "postgresql-database-plugin"

// MaxUsernameLen is PostgreSQL's identifier limit (NAMEDATALEN-1 bytes):
// a longer name would be cut silently, and the cut name could not be
// revoked by its full one.
const MaxUsernameLen = 63

// defaultConnectTimeout bounds a connection attempt whose URL sets none.
const defaultConnectTimeout = 15 * time.Second

// terminateWait is how long ending a user's sessions waits for each to go.
const terminateWait = 5 * time.Second

// DB is an open pool to one PostgreSQL server.
type DB struct {
	pool *pool
	// secrets are the admin credentials, removed from every error.
	secrets []string
}

var (
	_ dbplugin.Database = (*DB)(nil)
	_ dbplugin.Twins    = (*DB)(nil)
)

// Open checks cfg and returns a pool; no connection is made until one is
// needed (see [DB.Verify]).
func Open(cfg dbplugin.Config) (*DB, error) {
	pw := cfg.Password.Reveal()
	pc, err := connConfig(cfg)
	if err != nil {
		return nil, &dbplugin.ConnectError{Msg: dbplugin.Redact(err.Error(), pw, escapeDSN(pw))}
	}
	maxOpen := max(cfg.MaxOpenConnections, 1)
	maxIdle := min(max(cfg.MaxIdleConnections, 0), maxOpen)
	return &DB{
		pool:    newPool(pc, maxOpen, maxIdle, cfg.MaxConnectionLifetime),
		secrets: []string{pw, pc.Password},
	}, nil
}

// connConfig fills the URL's placeholders and parses it. Credentials given
// outside the URL's placeholders override those in it.
func connConfig(cfg dbplugin.Config) (*pgx.ConnConfig, error) {
	raw := cfg.ConnectionURL
	if raw == "" {
		return nil, errors.New("connection_url is empty")
	}
	escape := escapeDSN
	if strings.HasPrefix(raw, "postgres://") || strings.HasPrefix(raw, "postgresql://") {
		escape = dbplugin.EscapeURL
	}
	fill := func(user, pw string) string {
		return strings.NewReplacer(dbplugin.PlaceholderUsername, escape(user), dbplugin.PlaceholderPassword, escape(pw)).Replace(raw)
	}
	// The operator's string is checked with stand-ins for the credentials,
	// so that a parse error (which quotes the string) cannot quote them.
	if _, err := pgx.ParseConfig(fill("username", "password")); err != nil {
		return nil, fmt.Errorf("invalid connection_url: %w", err)
	}
	pw := cfg.Password.Reveal()
	pc, err := pgx.ParseConfig(fill(cfg.Username, pw))
	if err != nil {
		return nil, errors.New("invalid connection_url once the username and password are filled in")
	}
	if cfg.Username != "" && !strings.Contains(raw, dbplugin.PlaceholderUsername) {
		pc.User = cfg.Username
	}
	if pw != "" && !strings.Contains(raw, dbplugin.PlaceholderPassword) {
		pc.Password = pw
	}
	if pc.ConnectTimeout == 0 {
		pc.ConnectTimeout = defaultConnectTimeout
	}
	return pc, nil
}

// escapeDSN escapes a value for a key=value connection string, quoted or
// not.
func escapeDSN(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '\\', '\'', ' ', '\t', '\n', '\r', '\v', '\f':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Close implements [dbplugin.Database].
func (db *DB) Close() { db.pool.close() }

// clean turns an error of the client library into one without
// credentials: a [dbplugin.ConnectError] when no connection could be
// made, otherwise an error with the redacted message that still matches
// context errors with errors.Is.
func (db *DB) clean(err error, more ...string) error {
	if err == nil {
		return nil
	}
	var se *dbplugin.StatementError
	var ce *dbplugin.ConnectError
	if errors.As(err, &se) || errors.As(err, &ce) {
		return err
	}
	var caller *callerError
	if errors.As(err, &caller) {
		return caller.err
	}
	msg := dbplugin.Redact(err.Error(), append(more, db.secrets...)...)
	var pce *pgconn.ConnectError
	if errors.As(err, &pce) || errors.Is(err, errClosed) {
		return &dbplugin.ConnectError{Msg: msg}
	}
	return &cleanError{msg: msg, cause: err}
}

// callerError carries an error of the caller's own (from beforeCommit)
// through the driver unchanged.
type callerError struct{ err error }

func (e *callerError) Error() string { return e.err.Error() }

// cleanError is an error whose message has had credentials removed.
type cleanError struct {
	msg   string
	cause error
}

func (e *cleanError) Error() string { return e.msg }

// Is lets errors.Is see context cancellation and deadlines through it,
// and nothing else of the cause.
func (e *cleanError) Is(target error) bool {
	return (target == context.Canceled || target == context.DeadlineExceeded) && errors.Is(e.cause, target)
}

// Verify implements [dbplugin.Database].
func (db *DB) Verify(ctx context.Context) error {
	c, err := db.pool.acquire(ctx)
	if err != nil {
		return db.clean(err)
	}
	defer db.pool.release(c)
	return db.clean(c.Ping(ctx))
}

// statements is one list of statement templates of one kind.
type statements struct {
	kind  string
	tmpls []string
}

// run executes each template, filled with v, in tx; a failure is a
// StatementError naming the template.
func (db *DB) run(ctx context.Context, tx pgx.Tx, s statements, v dbplugin.Vars) error {
	for i, tmpl := range s.tmpls {
		if strings.TrimSpace(tmpl) == "" {
			continue
		}
		if _, err := tx.Exec(ctx, dbplugin.Render(tmpl, v)); err != nil {
			if ctx.Err() != nil {
				return db.clean(err, v.Password)
			}
			se := &dbplugin.StatementError{
				Kind: s.kind, Index: i + 1, Statement: tmpl,
				Msg: dbplugin.Redact(errorText(err), append([]string{v.Password}, db.secrets...)...),
			}
			if transient(err) {
				return &transientError{se}
			}
			return se
		}
	}
	return nil
}

// transient reports a statement failure that says nothing about the
// statement: a serialization failure, a deadlock, or a catalog row
// changed by a concurrent transaction ("tuple concurrently updated",
// which concurrent GRANTs on one schema and DROP OWNED raise). The
// transaction is worth running again.
func transient(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01":
		return true
	case "XX000":
		return strings.Contains(pe.Message, "tuple concurrently updated")
	}
	return false
}

// transientError marks a statement error [transient] reported.
type transientError struct{ *dbplugin.StatementError }

func (e *transientError) Unwrap() error { return e.StatementError }

// Attempts, first wait and longest wait of [retryTransient]: about two
// seconds in all, enough for a burst of parallel grants and drops on one
// schema to get through.
const (
	transientAttempts = 12
	transientWait     = 5 * time.Millisecond
	transientMaxWait  = 250 * time.Millisecond
)

// retryTransient runs fn, a whole transaction, again while it fails with
// a transient error, waiting a little longer (with jitter) each time.
func retryTransient(ctx context.Context, fn func() error) error {
	wait := transientWait
	for attempt := 1; ; attempt++ {
		err := fn()
		var te *transientError
		if err == nil || !errors.As(err, &te) || attempt == transientAttempts {
			return err
		}
		t := time.NewTimer(wait + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		wait = min(2*wait, transientMaxWait)
	}
}

// errorText is the server's message for a statement error (without the
// client library's decoration), else the error's text.
func errorText(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s (SQLSTATE %s)", pe.Message, pe.Code)
	}
	return err.Error()
}

// inTx runs fn in a transaction on a pooled connection and commits.
func (db *DB) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	c, err := db.pool.acquire(ctx)
	if err != nil {
		return err
	}
	defer db.pool.release(c)
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	return tx.Commit(ctx)
}

// NewUser implements [dbplugin.Database].
func (db *DB) NewUser(ctx context.Context, req dbplugin.NewUserRequest) error {
	v := dbplugin.Vars{Name: req.Username, Password: req.Password.Reveal(), Expiration: req.Expiration}
	err := retryTransient(ctx, func() error {
		return db.inTx(ctx, func(tx pgx.Tx) error {
			return db.run(ctx, tx, statements{"creation", req.Creation}, v)
		})
	})
	if err == nil {
		return nil
	}
	err = db.clean(err, v.Password)
	var ce *dbplugin.ConnectError
	if errors.As(err, &ce) {
		return err // no connection, so nothing was created
	}
	// The transaction was rolled back, but a statement may have
	// committed on its own (COMMIT in the operator's SQL): undo, on a
	// context the caller's cancellation does not cut short.
	undo, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var rerr error
	if len(req.Rollback) > 0 {
		rerr = db.clean(db.inTx(undo, func(tx pgx.Tx) error {
			return db.run(undo, tx, statements{"rollback", req.Rollback}, v)
		}), v.Password)
	}
	if derr := db.DeleteUser(undo, req.Username, nil); derr != nil {
		rerr = errors.Join(rerr, derr)
	}
	if rerr != nil {
		return &dbplugin.UndoError{Err: errors.Join(err, fmt.Errorf("undoing the failed creation: %w", rerr))}
	}
	return err
}

// RenewUser implements [dbplugin.Database].
func (db *DB) RenewUser(ctx context.Context, username string, expiration time.Time, stmts []string) error {
	if len(stmts) == 0 {
		stmts = []string{`ALTER ROLE ` + quoteIdent(username) + ` VALID UNTIL '{{expiration}}'`}
	}
	return db.clean(retryTransient(ctx, func() error {
		return db.inTx(ctx, func(tx pgx.Tx) error {
			return db.run(ctx, tx, statements{"renew", stmts}, dbplugin.Vars{Name: username, Expiration: expiration})
		})
	}))
}

// SetPassword implements [dbplugin.Database].
func (db *DB) SetPassword(ctx context.Context, username string, password secret.String, stmts []string, beforeCommit func(context.Context) error) error {
	if len(stmts) == 0 {
		stmts = []string{`ALTER ROLE ` + quoteIdent(username) + ` WITH PASSWORD '{{password}}'`}
	}
	v := dbplugin.Vars{Name: username, Password: password.Reveal()}
	return db.clean(db.inTx(ctx, func(tx pgx.Tx) error {
		if err := db.run(ctx, tx, statements{"rotation", stmts}, v); err != nil {
			return err
		}
		if beforeCommit == nil {
			return nil
		}
		if err := beforeCommit(ctx); err != nil {
			return &callerError{err}
		}
		return nil
	}), v.Password)
}

// EnsureTwin implements [dbplugin.Twins]. The twin is created a member of
// the user, inheriting its privileges (those granted later too), and its
// sessions start as the user (ALTER ROLE ... SET role): current_user is
// the user in the sessions of both, so that whatever one creates the
// other owns, and every privilege and ownership check gives the same
// answer for both. The user's role attributes (CREATEDB, CONNECTION
// LIMIT...) are not copied, but a session of the twin has them, being the
// user's; per-role settings of the user (ALTER ROLE ... SET) are not
// copied. The admin user needs CREATEROLE and, from PostgreSQL 16, the
// ADMIN option on the user.
func (db *DB) EnsureTwin(ctx context.Context, user, twin string) (created bool, err error) {
	stmts := []string{
		`CREATE ROLE ` + quoteIdent(twin) + ` WITH LOGIN INHERIT IN ROLE ` + quoteIdent(user),
		`ALTER ROLE ` + quoteIdent(twin) + ` SET role = ` + quoteLiteral(user),
	}
	err = db.inTx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, twin).Scan(&exists); err != nil {
			return fmt.Errorf("look up user: %w", err)
		}
		if exists {
			return nil
		}
		for i, stmt := range stmts {
			// The names are executed as they are, not rendered as
			// templates: a name may hold "{{".
			if _, err := tx.Exec(ctx, stmt); err != nil {
				if ctx.Err() != nil {
					return err
				}
				return &dbplugin.StatementError{Kind: "alternate user", Index: i + 1, Statement: stmt,
					Msg: dbplugin.Redact(errorText(err), db.secrets...)}
			}
		}
		created = true
		return nil
	})
	if err != nil {
		return false, db.clean(err)
	}
	return created, nil
}

// DeleteUser implements [dbplugin.Database].
func (db *DB) DeleteUser(ctx context.Context, username string, stmts []string) error {
	return db.clean(db.deleteUser(ctx, username, stmts))
}

func (db *DB) deleteUser(ctx context.Context, username string, stmts []string) error {
	c, err := db.pool.acquire(ctx)
	if err != nil {
		return err
	}
	defer db.pool.release(c)
	var exists, member bool
	err = c.QueryRow(ctx, `SELECT true, pg_has_role(current_user, oid, 'USAGE') FROM pg_roles WHERE rolname = $1`, username).Scan(&exists, &member)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // already gone
	}
	if err != nil {
		return fmt.Errorf("look up user: %w", err)
	}
	q := quoteIdent(username)
	if !member {
		// A non-superuser admin must have the user's privileges to
		// end its sessions and take over what it owns.
		if _, err := c.Exec(ctx, `GRANT `+q+` TO CURRENT_USER`); err != nil {
			return fmt.Errorf("grant the user's role to the admin user: %w", err)
		}
	}
	// No new session from now on, and none left open.
	if _, err := c.Exec(ctx, `ALTER ROLE `+q+` NOLOGIN`); err != nil {
		return fmt.Errorf("disable the user's logins: %w", err)
	}
	if _, err := c.Exec(ctx, `SELECT pg_terminate_backend(pid, $2) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`,
		username, terminateWait.Milliseconds()); err != nil {
		return fmt.Errorf("end the user's sessions: %w", err)
	}
	if len(stmts) == 0 {
		stmts = []string{
			`REASSIGN OWNED BY ` + q + ` TO CURRENT_USER`,
			`DROP OWNED BY ` + q,
			`DROP ROLE IF EXISTS ` + q,
		}
	}
	return retryTransient(ctx, func() error {
		tx, err := c.Begin(ctx)
		if err != nil {
			return err
		}
		if err := db.run(ctx, tx, statements{"revocation", stmts}, dbplugin.Vars{Name: username}); err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			return err
		}
		return tx.Commit(ctx)
	})
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(name string) string { return pgx.Identifier{name}.Sanitize() }

// quoteLiteral quotes a string literal (standard_conforming_strings, the
// default since PostgreSQL 9.1: a backslash is an ordinary character).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
