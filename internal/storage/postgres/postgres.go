// Package postgres is the shared storage.Backend: every key in one table of
// a PostgreSQL database, so that several vigil servers can use the same
// data, one of them active. It implements [storage.Transactional],
// [storage.Closer], [storage.Snapshotter] and, with [Options.HAEnabled],
// [storage.HABackend]: a leader lock with fencing (see ha.go).
//
// # Schema
//
// Open creates and upgrades its tables itself, with versioned migrations
// (schema.go): the data table (key bytea primary key, value bytea), the HA
// lock table, and a table recording the schema version. Keys are stored as
// bytea so that the table's order is Go's byte order whatever the
// database's encoding and collation, and any key a Go string can hold fits.
//
// # List
//
// List costs one index probe per child, not one row per descendant: a
// recursive query seeks the first key after the prefix, emits its child
// and seeks again just past that child (past the whole subtree for a
// directory), as the inmem and bolt backends do with their cursors.
//
// # Writes
//
// Put, Delete and Transaction are each one autocommit statement, so they
// are atomic, are never half applied, and never leave a transaction open
// on the server while the client is stalled. Transient failures (a
// dropped connection, a server restarting, a deadlock between two
// transactions) are retried briefly with backoff; every write is
// idempotent, so retrying one whose outcome is unknown is safe.
//
// # Secrets
//
// The backend only ever sees ciphertext, but still never logs keys or
// values, and never puts the connection URL (which holds the password) in
// an error or a log line.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-secrets/vigil/internal/storage"
)

var (
	_ storage.Backend       = (*Backend)(nil)
	_ storage.Transactional = (*Backend)(nil)
	_ storage.Closer        = (*Backend)(nil)
	_ storage.Snapshotter   = (*Backend)(nil)
	_ storage.HABackend     = (*Backend)(nil)
)

// Defaults of [Options].
const (
	DefaultTable       = "vigil_kv_store"
	DefaultHATable     = "vigil_ha_locks"
	DefaultMaxParallel = 128
	// DefaultLockTTL is how long the leader lock lasts without a renewal.
	// A leader killed outright loses it at once (its session ends, see
	// ha.go); this bound is for a leader that stops without its
	// connection closing: a frozen process, a dead machine, a network
	// partition. With the default retry interval a standby takes over
	// within about 2.2 s of the leader's last renewal. The other side of
	// the trade: a leader that cannot reach the database for about 1.3 s
	// (the TTL less a renewal interval) steps down.
	DefaultLockTTL = 2 * time.Second
	// DefaultRetryInterval is how often a standby checks the lock.
	DefaultRetryInterval = 200 * time.Millisecond
)

// maxKeyLen bounds a key's length in bytes: a B-tree index entry must fit
// in a third of a page (about 2.7 kB). Longer keys are refused as invalid
// rather than failing inside the database.
const maxKeyLen = 2048

// idleConnLifetime is how long an unused pooled connection is kept.
const idleConnLifetime = 5 * time.Minute

// ErrKeyTooLong is returned, wrapped together with [storage.ErrInvalidKey],
// for a key longer than 2048 bytes.
var ErrKeyTooLong = errors.New("key too long")

// ErrHADisabled is returned by Campaign and Leader of a backend opened
// without [Options.HAEnabled].
var ErrHADisabled = errors.New("postgres: high availability is not enabled (ha_enabled)")

// Options configures [Open].
type Options struct {
	// ConnectionURL is a PostgreSQL connection string (URL or key=value
	// form). Required. It is never logged nor put in an error.
	ConnectionURL string
	// Table holds the data: a lowercase identifier, optionally
	// schema-qualified ("vigil.kv"). Default "vigil_kv_store". Its schema
	// version is kept in a table named after it with "_schema" appended.
	Table string
	// HAEnabled makes Campaign and Leader available.
	HAEnabled bool
	// HATable holds the leader lock rows. Default "vigil_ha_locks". The
	// row is named after Table, so two clusters with their own data
	// tables may share one HA table.
	HATable string
	// MaxParallel is the most connections the pool opens at once.
	// Default 128. The leader lock uses one more connection, of its own.
	MaxParallel int
	// MaxIdleConnections is the most unused connections kept open; 0
	// keeps any number (each closed after 5 idle minutes).
	MaxIdleConnections int
	// Logger receives lifecycle events and errors. Nil discards them.
	Logger *slog.Logger
	// LockTTL is how long the leader lock lasts without a renewal (it is
	// renewed every third of that). Default 2 s. Tests shorten it.
	LockTTL time.Duration
	// RetryInterval is how often a standby checks whether it can take
	// the lock. Default 200 ms.
	RetryInterval time.Duration
}

// identRE is a plain lowercase SQL identifier, optionally qualified by a
// schema. Quoting with pgx.Identifier keeps it from being read as SQL; the
// pattern keeps it from surprising an operator (no case folding, no
// quotes, no dots inside a name).
var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)

// maxIdentLen is PostgreSQL's identifier limit (longer ones are
// silently truncated, which would make two names one).
const maxIdentLen = 63

// tableIdent parses a table option into a quoted identifier.
func tableIdent(option, name string, suffix string) (pgx.Identifier, error) {
	if !identRE.MatchString(name) {
		return nil, fmt.Errorf("postgres: invalid %s %q: want a lowercase identifier (letters, digits, '_'), optionally schema-qualified", option, name)
	}
	id := pgx.Identifier(strings.Split(name, "."))
	for i, part := range id {
		limit := maxIdentLen
		if i == len(id)-1 {
			limit -= len(suffix)
		}
		if len(part) > limit {
			return nil, fmt.Errorf("postgres: invalid %s %q: a name may be at most %d characters", option, name, limit)
		}
	}
	return id, nil
}

// Backend is a PostgreSQL [storage.Backend]. It is safe for concurrent
// use. Create one with [Open] and release it with [Backend.Close].
type Backend struct {
	pool     *pgxpool.Pool
	connCfg  *pgx.ConnConfig // for the leader lock's own connection
	logger   *slog.Logger
	q        queries
	lockName string // the HA row's name: the data table's
	ha       bool
	ttl      time.Duration
	retryInt time.Duration

	closed atomic.Bool
	// life ends when the backend closes: it stops a running Campaign and
	// the leader lock's renewals.
	life     context.Context
	stopLife context.CancelFunc

	// campaignMu is held while Campaign runs: one at a time.
	campaignMu sync.Mutex
	// lead is the leadership of the last successful Campaign, nil before
	// any: then writes are not fenced. Once set it stays set (lost or
	// not) until the next Campaign succeeds.
	lead atomic.Pointer[leadership]

	// retries counts retried attempts, for tests.
	retries atomic.Int64
	// hooks let this package's tests simulate failures.
	hooks testHooks
}

// testHooks are switched only by this package's tests.
type testHooks struct {
	// pauseRenewals stops the leader lock's renewals, as if the process
	// were frozen.
	pauseRenewals atomic.Bool
	// skipLocalFence sends writes to the database even when this node
	// knows it lost the lock, as a paused process that has not noticed
	// yet would: only the database's check is left.
	skipLocalFence atomic.Bool
}

// Open connects to the database, creates or upgrades the schema and
// returns the backend. ctx bounds the connection and the migration.
func Open(ctx context.Context, opts Options) (*Backend, error) {
	if opts.ConnectionURL == "" {
		return nil, errors.New("postgres: no connection URL")
	}
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if opts.HATable == "" {
		opts.HATable = DefaultHATable
	}
	kv, err := tableIdent("table", opts.Table, schemaSuffix)
	if err != nil {
		return nil, err
	}
	ha, err := tableIdent("ha_table", opts.HATable, "")
	if err != nil {
		return nil, err
	}
	if opts.Table == opts.HATable {
		return nil, errors.New("postgres: table and ha_table must differ")
	}
	switch {
	case opts.MaxParallel < 0:
		return nil, errors.New("postgres: max_parallel must not be negative")
	case opts.MaxParallel == 0:
		opts.MaxParallel = DefaultMaxParallel
	case opts.MaxParallel > 1<<20:
		return nil, errors.New("postgres: max_parallel is too large")
	}
	if opts.MaxIdleConnections < 0 {
		return nil, errors.New("postgres: max_idle_connections must not be negative")
	}
	if opts.LockTTL < 0 || opts.RetryInterval < 0 {
		return nil, errors.New("postgres: lock TTL and retry interval must not be negative")
	}
	if opts.LockTTL == 0 {
		opts.LockTTL = DefaultLockTTL
	}
	if opts.LockTTL < 30*time.Millisecond {
		return nil, errors.New("postgres: lock TTL must be at least 30ms")
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = DefaultRetryInterval
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	cfg, err := pgxpool.ParseConfig(opts.ConnectionURL)
	if err != nil {
		// pgx's parse errors quote the connection string, and its
		// redaction of the password is best effort: say nothing of it.
		return nil, errors.New("postgres: the connection URL is not a valid PostgreSQL connection string (details withheld: they could reveal the password)")
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "vigil"
	}
	cfg.MaxConns = int32(opts.MaxParallel)
	cfg.MaxConnIdleTime = idleConnLifetime
	b := &Backend{
		logger:   logger,
		q:        newQueries(kv, ha),
		lockName: opts.Table,
		ha:       opts.HAEnabled,
		ttl:      opts.LockTTL,
		retryInt: opts.RetryInterval,
	}
	var poolRef atomic.Pointer[pgxpool.Pool]
	if n := opts.MaxIdleConnections; n > 0 {
		cfg.AfterRelease = func(*pgx.Conn) bool {
			// Keep the released connection only while fewer than n sit
			// idle; otherwise the pool closes it.
			pool := poolRef.Load()
			return pool == nil || int(pool.Stat().IdleConns()) < n
		}
	}
	b.connCfg = cfg.ConnConfig.Copy()
	b.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	poolRef.Store(b.pool)
	b.life, b.stopLife = context.WithCancel(context.Background())
	if err := b.migrate(ctx, kv, ha); err != nil {
		b.stopLife()
		b.pool.Close()
		return nil, err
	}
	return b, nil
}

// HAEnabled reports whether the backend was opened with
// [Options.HAEnabled]: whether Campaign and Leader work.
func (b *Backend) HAEnabled() bool { return b.ha }

// Close releases the leader lock if this node holds it, stops a running
// Campaign and closes the connections. Every later call returns
// [storage.ErrClosed]. Closing twice is safe.
func (b *Backend) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.stopLife()
	// Wait for a running Campaign to notice and end. The mutex stays
	// held: a closed backend campaigns no more.
	b.campaignMu.Lock()
	var err error
	if l := b.lead.Load(); l != nil {
		ctx, cancel := context.WithTimeout(context.Background(), b.ttl)
		err = l.release(ctx)
		cancel()
	}
	b.pool.Close()
	return err
}

// Get returns the value stored at key.
func (b *Backend) Get(ctx context.Context, key string) ([]byte, error) {
	if err := b.check(ctx, key); err != nil {
		return nil, err
	}
	var v []byte
	err := b.retry(ctx, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, b.q.get, []byte(key)).Scan(&v)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, storage.ErrNotFound
	}
	if err != nil {
		return nil, b.wrap("get", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// Put stores value at key.
func (b *Backend) Put(ctx context.Context, key string, value []byte) error {
	if err := b.check(ctx, key); err != nil {
		return err
	}
	return b.write(ctx, "put", key, b.q.put, []byte(key), nonNil(value))
}

// Delete removes key. Deleting a missing key is not an error.
func (b *Backend) Delete(ctx context.Context, key string) error {
	if err := b.check(ctx, key); err != nil {
		return err
	}
	return b.write(ctx, "delete", key, b.q.del, []byte(key))
}

// Transaction applies ops atomically, in one statement: a later op on a
// key replaces an earlier one, so only the last op on each key is sent.
// An invalid key fails the whole transaction before anything is written.
func (b *Backend) Transaction(ctx context.Context, ops []storage.Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	last := make(map[string]int, len(ops))
	for i, op := range ops {
		if err := validateKey(op.Key); err != nil {
			return err
		}
		last[op.Key] = i
	}
	if b.closed.Load() {
		return storage.ErrClosed
	}
	// Keys in order, so that concurrent transactions lock rows in the
	// same order as far as one statement allows.
	keys := make([]string, 0, len(last))
	for k := range last {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var dels, puts, vals [][]byte
	for _, k := range keys {
		op := ops[last[k]]
		if op.Delete {
			dels = append(dels, []byte(k))
		} else {
			puts = append(puts, []byte(k))
			vals = append(vals, nonNil(op.Value))
		}
	}
	if dels == nil {
		dels = [][]byte{}
	}
	if puts == nil {
		puts, vals = [][]byte{}, [][]byte{}
	}
	return b.write(ctx, "transaction", "", b.q.tx, dels, puts, vals)
}

// List returns the immediate children of prefix, sorted, directories once
// with a trailing '/', with one index probe per child.
func (b *Backend) List(ctx context.Context, prefix string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if b.closed.Load() {
		return nil, storage.ErrClosed
	}
	var out []string
	err := b.retry(ctx, func(ctx context.Context) error {
		out = out[:0]
		rows, err := b.pool.Query(ctx, b.q.list, []byte(prefix), len(prefix))
		if err != nil {
			return err
		}
		var k []byte
		_, err = pgx.ForEachRow(rows, []any{&k}, func() error {
			child, ok := storage.ChildOf(prefix, string(k))
			if !ok {
				return fmt.Errorf("list returned %q, which is not under the prefix", k)
			}
			out = append(out, child)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, b.wrap("list", prefix, err)
	}
	return out, nil
}

// write runs one write statement (put, del or tx), fenced by the leader
// lock once a Campaign has succeeded. The statement returns whether the
// fence held; when it did not, it changed nothing. A retried attempt may
// follow one whose outcome is unknown (the connection broke before the
// answer): if the retry is refused, the first attempt may still have been
// applied, but then while this node held the lock.
func (b *Backend) write(ctx context.Context, op, key string, stmt [2]string, args ...any) error {
	if b.closed.Load() {
		return storage.ErrClosed
	}
	l, err := b.fence(op, key)
	if err != nil {
		return err
	}
	sql := stmt[0]
	if l != nil {
		sql = stmt[1]
		args = append(args, l.name, l.id, l.epoch)
	}
	var held bool
	err = b.retry(ctx, func(ctx context.Context) error {
		return b.pool.QueryRow(ctx, sql, args...).Scan(&held)
	})
	if err != nil {
		return b.wrap(op, key, err)
	}
	if !held {
		l.lose("the database refused a write: the lock was taken over or expired")
		return b.fenced(op, key)
	}
	return nil
}

// fence returns the leadership that guards writes: nil before any
// Campaign succeeded, else the current one, or an error wrapping
// storage.ErrFenced when this node already knows it lost the lock.
func (b *Backend) fence(op, key string) (*leadership, error) {
	l := b.lead.Load()
	if l == nil {
		return nil, nil
	}
	if !b.hooks.skipLocalFence.Load() && !l.valid() {
		return nil, b.fenced(op, key)
	}
	return l, nil
}

func (b *Backend) fenced(op, key string) error {
	if key == "" {
		return fmt.Errorf("postgres: %s: %w", op, storage.ErrFenced)
	}
	return fmt.Errorf("postgres: %s %q: %w", op, key, storage.ErrFenced)
}

// check validates a single-key call.
func (b *Backend) check(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := validateKey(key); err != nil {
		return err
	}
	if b.closed.Load() {
		return storage.ErrClosed
	}
	return nil
}

// wrap adds the operation and the key to err, and reports a call cut
// short by Close as storage.ErrClosed.
func (b *Backend) wrap(op, key string, err error) error {
	if b.closed.Load() && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		err = storage.ErrClosed
	}
	if key == "" {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return fmt.Errorf("postgres: %s %q: %w", op, key, err)
}

func validateKey(key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return err
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("postgres: %w: %w", storage.ErrInvalidKey, ErrKeyTooLong)
	}
	return nil
}

// nonNil returns v, or an empty slice for nil: pgx sends a nil slice as
// NULL, and an empty value is a value.
func nonNil(v []byte) []byte {
	if v == nil {
		return []byte{}
	}
	return v
}
