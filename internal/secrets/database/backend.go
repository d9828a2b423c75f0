// Package database is the database secrets engine (mount type "database",
// spec §9): it keeps connection configurations for databases, each with an
// admin user, and roles that say how to create a user; a read of
// creds/<role> creates a database user with a random password under a
// lease, whose renewal moves the user's expiry and whose end (revocation or
// expiry) removes the user.
//
// Static roles (static-roles/<name>) manage existing users instead: the
// engine rotates the user's password by period or cron schedule (see
// rotation.go), and static-creds/<name> reads the current one. Under the
// "alternating" rotation strategy, Vigil's own, a role manages the user
// and a twin acting as it, <username>_b, and each rotation sets a new
// password on the one not handed out and hands it out: credentials read
// before a rotation keep working until the next. Rotations due run as the
// mount's periodic work ([backend.Periodic], called by the core's job
// scheduler), so they stop while the server is sealed and the ones missed
// run at unseal.
//
// The SQL is run by a driver behind the [dbplugin.Database] contract;
// PostgreSQL (internal/secrets/database/postgres) is the one driver so far,
// chosen by plugin_name.
//
// Every password the engine sets (an issued user's, a static role's, the
// admin's on rotate-root) comes from the connection's password_policy, a
// policy of the server's (sys/policies/password/<name>) asked for through
// the mount's [logical.SystemView]; a connection without one uses the
// built-in generator (20 characters of letters, digits and '-', at least
// one of each kind, like Vault's default policy). The policy must exist
// when the connection is written; if it is deleted later, the requests
// that need a password fail with a 400 naming it.
//
// # Storage layout
//
//	config/<name>       a connection (configEntry, JSON, admin password included)
//	role/<name>         a dynamic role (roleEntry, JSON)
//	static-role/<name>  a static role and its rotations' state (staticRole,
//	                    JSON, current password included)
//	wal/<id>            the intent to create a user, kept until its lease
//	                    is stored (framework intent record; no password)
//
// # No orphans
//
// A creds request records its intent before it creates a user, and the
// record goes once the request's lease is stored (the pipeline confirms
// it: [logical.LeaseConfirmer]). If the lease cannot be stored the
// pipeline revokes the user at once; if that fails too, or the server
// stops in between, the record stays, and the mount's periodic work drops
// the user once the record is five minutes old (see rollback.go).
// Revocation is the lease manager's: a user that cannot be dropped
// (PostgreSQL down) keeps its lease, listed and retried with backoff.
//
// # Connections
//
// The backend keeps one open [dbplugin.Database] per configuration it has
// used (see connManager), opened on first use from the stored
// configuration and reopened whenever the stored configuration differs
// from the one it was opened with, so a change written through another
// server, or before a restart, takes effect. Writing, resetting, rotating
// or deleting a configuration replaces or closes its connection; sealing
// or unmounting closes them all ([backend.Cleanup]).
//
// # Secrets
//
// The admin password is kept only in the mount's (encrypted) storage. No
// read returns it, no error or log line carries it: the driver removes it
// from every message (package dbplugin), and the engine never puts a
// password or a connection string with one into an error of its own.
// After rotate-root no one knows it but the engine. An issued password
// leaves the engine only in the response that issues it; the lease keeps
// the user name, role and database, not the password. A static role's
// password is likewise stored only with the role and leaves the engine
// only in a static-creds read.
//
// # Events
//
// Each rotation of a static role's password, by rotate-role/<name> or by
// its period or schedule, is a change event (logical.Event) of type
// database/rotate, Vault's name for it:
//
//	path       rotate-role/<name> (a rotation asked for), or
//	           static-creds/<name> (a scheduled one)
//	data_path  static-creds/<name>, where the new password is read
//	name       <name>
//
// so that a watcher of static-creds/<name> (vigil agent, vigil run
// -watch) reads the new password at once, rather than at its next poll.
// Issuing dynamic credentials, and creating, changing or deleting roles
// and connections, are not events. An event carries the role's name,
// never a user name or a password.
//
// The package must not import storage, the barrier, core, lease or
// another engine (DESIGN.md §4): it sees storage only as the
// [logical.Storage] on each request and asks for leases only by returning
// them.
package database

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secrets/database/dbplugin"
	"github.com/vigil-secrets/vigil/internal/secrets/database/postgres"
)

// Storage prefixes (see the package doc).
const (
	configPrefix     = "config/"
	rolePrefix       = "role/"
	staticRolePrefix = "static-role/"
)

// opener opens a driver's connection pool.
type opener func(dbplugin.Config) (dbplugin.Database, error)

// plugins maps plugin_name to its driver. It is never written.
var plugins = map[string]opener{
	postgres.PluginName: func(c dbplugin.Config) (dbplugin.Database, error) { return postgres.Open(c) },
}

// Factory builds a database secrets engine for one mount.
func Factory(_ context.Context, conf *logical.BackendConfig) (logical.Backend, error) {
	if conf == nil {
		return nil, errors.New("database: nil backend config")
	}
	return newBackend(conf)
}

// backend is the database secrets engine of one mount.
type backend struct {
	*framework.Backend
	now    func() time.Time
	logger *slog.Logger
	system logical.SystemView
	conns  *connManager
	// roleMu serializes role changes (read, merge, write).
	roleMu sync.Mutex
	// roleLocks serializes what changes a static role: writes, deletes
	// and rotations.
	roleLocks keyedLocks
	// retries is the backoff of failed scheduled rotations, rollbacks
	// that of failed rollbacks of users (by intent id).
	retries   retries
	rollbacks retries
	// wake asks the core for a Periodic run soon.
	wake func()
	// sendEvent publishes what the periodic work changed (see
	// rotateEvent).
	sendEvent func(logical.Event)
}

var (
	_ logical.Backend  = (*backend)(nil)
	_ logical.Cleaner  = (*backend)(nil)
	_ logical.Periodic = (*backend)(nil)
)

func newBackend(conf *logical.BackendConfig) (*backend, error) {
	b := &backend{now: conf.Now, logger: conf.Logger, system: conf.System, conns: newConnManager(), wake: conf.Wake}
	if b.now == nil {
		b.now = time.Now
	}
	if b.wake == nil {
		b.wake = func() {}
	}
	b.sendEvent = conf.SendEvent
	if b.sendEvent == nil {
		b.sendEvent = func(logical.Event) {}
	}
	if b.logger == nil {
		b.logger = slog.New(slog.DiscardHandler)
	}
	paths := []*framework.Path{
		b.pathConfigList(),
		b.pathConfig(),
		b.pathReset(),
		b.pathRotateRoot(),
		b.pathRoleList(),
		b.pathRole(),
		b.pathCreds(),
		b.pathStaticRoleList(),
		b.pathStaticRole(),
		b.pathStaticCreds(),
		b.pathRotateRole(),
	}
	fb, err := framework.NewBackend(backendHelp, paths, framework.WithSecrets(b.credsSecret()))
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	b.Backend = fb
	return b, nil
}

// Cleanup implements [logical.Cleaner]: it closes every connection.
func (b *backend) Cleanup(context.Context) { b.conns.closeAll() }

const backendHelp = `
The database secrets engine creates database users on demand, each with a
random password under a lease; the user is removed when the lease is
revoked or expires.

Configure a connection at config/<name>, a role at roles/<name>, and read
credentials from creds/<role>.

Static roles (static-roles/<name>) manage existing users whose passwords the
engine rotates by period or schedule; read the current password from
static-creds/<name>, and rotate it at once with rotate-role/<name>.
`

// keyedLocks hands out one mutex per name. Its zero value is ready.
type keyedLocks struct {
	mu sync.Mutex
	m  map[string]*sync.Mutex
}

// lock takes the lock of name and returns its unlock.
func (k *keyedLocks) lock(name string) (unlock func()) {
	k.mu.Lock()
	l := k.m[name]
	if l == nil {
		if k.m == nil {
			k.m = map[string]*sync.Mutex{}
		}
		l = &sync.Mutex{}
		k.m[name] = l
	}
	k.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// connManager holds the open connection of each configuration, and a lock
// per configuration that serializes its changes (write, reset, rotate,
// delete).
type connManager struct {
	mu    sync.Mutex
	conns map[string]*openConn
	locks keyedLocks
}

// openConn is an open connection and the fingerprint of the configuration
// it was opened with.
type openConn struct {
	db          dbplugin.Database
	fingerprint [32]byte
}

func newConnManager() *connManager {
	return &connManager{conns: map[string]*openConn{}}
}

// lock takes the change lock of the named configuration and returns its
// unlock.
func (m *connManager) lock(name string) func() { return m.locks.lock(name) }

// get returns the open connection for cfg, opening it (without connecting)
// if there is none or it was opened with other settings.
func (m *connManager) get(cfg *configEntry) (dbplugin.Database, error) {
	fp := cfg.fingerprint()
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.conns[cfg.Name]; c != nil && c.fingerprint == fp {
		return c.db, nil
	}
	db, err := cfg.open()
	if err != nil {
		return nil, err
	}
	m.setLocked(cfg.Name, &openConn{db: db, fingerprint: fp})
	return db, nil
}

// set makes db the open connection of cfg, closing the one it replaces.
func (m *connManager) set(cfg *configEntry, db dbplugin.Database) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setLocked(cfg.Name, &openConn{db: db, fingerprint: cfg.fingerprint()})
}

func (m *connManager) setLocked(name string, c *openConn) {
	if old := m.conns[name]; old != nil {
		old.db.Close()
	}
	if c == nil {
		delete(m.conns, name)
		return
	}
	m.conns[name] = c
}

// close closes the named configuration's connection, if open.
func (m *connManager) close(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setLocked(name, nil)
}

func (m *connManager) closeAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name := range m.conns {
		m.setLocked(name, nil)
	}
}

// fingerprint identifies the settings a connection is opened with.
func (c *configEntry) fingerprint() [32]byte {
	raw, _ := json.Marshal([]any{c.PluginName, c.ConnectionURL, c.Username, c.Password.Reveal(),
		c.MaxOpenConnections, c.MaxIdleConnections, int64(c.MaxConnectionLifetime)})
	return sha256.Sum256(raw)
}

// open opens the configuration's connection with its driver.
func (c *configEntry) open() (dbplugin.Database, error) {
	open := plugins[c.PluginName]
	if open == nil {
		return nil, unknownPlugin(c.PluginName)
	}
	return open(c.dbConfig())
}

func unknownPlugin(name string) error {
	known := make([]string, 0, len(plugins))
	for n := range plugins {
		known = append(known, n)
	}
	return logical.BadRequest("plugin_name %q is not supported (supported: %s)", name, strings.Join(known, ", "))
}

// dbError turns a driver error into what the client sees: a refused
// statement is the operator's mistake (400); a failure to reach the
// database is a 500 with the driver's message; anything else is internal.
// Driver errors carry no credentials (package dbplugin).
func dbError(err error) error {
	var se *dbplugin.StatementError
	var ce *dbplugin.ConnectError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &se):
		return &logical.CodedError{Status: 400, Msg: se.Error(), Err: err}
	case errors.As(err, &ce):
		return &logical.CodedError{Status: 500, Msg: ce.Error(), Err: err}
	}
	return err
}

// seconds renders a duration as whole seconds, as Vault's reads do.
func seconds(d time.Duration) int64 { return int64(d / time.Second) }
