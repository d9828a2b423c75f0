package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// The schema is versioned. Each migration is a list of statements that
// takes the schema from the version before it to its own; they are
// applied in order, each in the same transaction as the record of its
// version, by the first server that opens the database after an upgrade.
// Never edit a released migration: add the next one.
//
// Every migration runs under one transaction-scoped advisory lock, so
// that replicas starting together apply each migration once and the
// others find it done. A database whose schema is newer than this binary
// knows is refused, since an old binary could misread it.

// ErrSchemaTooNew is returned by [Open] when the database's schema was
// written by a newer vigil than this one.
var ErrSchemaTooNew = errors.New("postgres: the database schema is newer than this vigil release knows")

// schemaSuffix is appended to the data table's name to name the table of
// schema versions.
const schemaSuffix = "_schema"

// migrationLock is the key of the advisory lock migrations run under
// ("vigil_mg" in ASCII). It is the same for every table, so that two
// clusters sharing an HA table do not create it at the same moment.
const migrationLock int64 = 0x7669_6769_6c5f_6d67

// migration is one step of the schema. Its statements use {kv} and {ha}
// for the quoted table names.
type migration struct {
	version int
	stmts   []string
}

// migrations is the whole history of the schema, in order.
var migrations = []migration{
	{1, []string{
		// Not IF NOT EXISTS: a table of this name that no migration
		// recorded is not ours, and must not be written into.
		`CREATE TABLE {kv} (
			key   bytea PRIMARY KEY,
			value bytea NOT NULL
		)`,
		// Values are ciphertext: compressing them would only cost CPU.
		`ALTER TABLE {kv} ALTER COLUMN value SET STORAGE EXTERNAL`,
		// The HA table may be shared by clusters with their own data
		// tables (its rows are named after them).
		`CREATE TABLE IF NOT EXISTS {ha} (
			name       text PRIMARY KEY,
			holder     text NOT NULL,
			addr       text NOT NULL,
			epoch      bigint NOT NULL,
			expires_at timestamptz NOT NULL,
			holder_pid integer NOT NULL
		)`,
	}},
}

// schemaVersion is the version this binary writes.
func schemaVersion() int { return migrations[len(migrations)-1].version }

// migrate brings the schema up to date, retrying if the connection fails
// on the way (the migration's transaction is then rolled back whole).
func (b *Backend) migrate(ctx context.Context, kv, ha pgx.Identifier) error {
	ver := append(pgx.Identifier{}, kv...)
	ver[len(ver)-1] += schemaSuffix
	var applied []int
	err := b.retry(ctx, func(ctx context.Context) error {
		var err error
		applied, err = b.migrateOnce(ctx, kv.Sanitize(), ha.Sanitize(), ver.Sanitize(), ver)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: schema of %s: %w", kv.Sanitize(), err)
	}
	for _, v := range applied {
		b.logger.Info("postgres: applied schema migration", "table", b.lockName, "version", v)
	}
	return nil
}

func (b *Backend) migrateOnce(ctx context.Context, kv, ha, ver string, verID pgx.Identifier) (applied []int, err error) {
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return nil, err
	}
	// Under the lock, and read committed: every statement sees what an
	// earlier holder committed. Nothing is created when the schema is
	// current, so a role without the right to create tables can run a
	// schema an administrator set up.
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, ver).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE TABLE `+ver+` (
			version    integer PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
		)`); err != nil {
			return nil, err
		}
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+ver).Scan(&current); err != nil {
		return nil, err
	}
	if current > schemaVersion() {
		return nil, fmt.Errorf("%w: it is at version %d (recorded in %s), this release knows versions up to %d: upgrade vigil",
			ErrSchemaTooNew, current, verID.Sanitize(), schemaVersion())
	}
	for _, m := range migrations {
		if m.version <= current {
			continue
		}
		for _, s := range m.stmts {
			stmt := replaceTables(s, kv, ha)
			if _, err := tx.Exec(ctx, stmt); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "42P07" { // duplicate_table
					return nil, fmt.Errorf("migration %d: a table exists that no vigil migration recorded creating (%s): choose another table name, or drop it if it is a leftover: %w", m.version, pgErr.Message, err)
				}
				return nil, fmt.Errorf("migration %d: %w", m.version, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+ver+` (version) VALUES ($1)`, m.version); err != nil {
			return nil, err
		}
		applied = append(applied, m.version)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return applied, nil
}

func replaceTables(s, kv, ha string) string {
	return strings.NewReplacer("{kv}", kv, "{ha}", ha).Replace(s)
}
