package load

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-secrets/vigil/internal/secrets/database/dbplugin"
)

// PG is the PostgreSQL server of the database scenarios (DBCreds and
// PGCreateDrop), reached as an admin user that may create and drop roles
// (a superuser, or a user with CREATEROLE that may create a schema).
//
// Everything a run creates on the server is named after its prefix (see
// NewPGPrefix): a schema of that name holding one table, a NOLOGIN group
// role of that name allowed to read it, and the users, whose names begin
// with the prefix and a '-' and who are granted the group role. Cleanup
// drops them all, so that a run leaves the server as it found it.
//
// # Why a group role
//
// The users are not granted USAGE on the schema and SELECT on the table
// themselves, as Vault's documented example role does: PostgreSQL
// updates an object's privileges in place in its catalog row, and two
// sessions that grant (or, with DROP OWNED, revoke) privileges on the
// same object at the same time fail one of them with "tuple concurrently
// updated" (SQLSTATE XX000). With 32 workers on 4 connections most
// operations failed that way, Vigil's and the baseline's alike. Granting
// a role adds a row of its own instead, so issued users can be created
// and dropped concurrently; it is how such roles are usually set up for
// dynamic users.
//
// Neither the admin password nor the users' passwords appear in an error
// or in String.
type PG struct {
	cfg *pgx.ConnConfig // the admin user's
	// connectionURL is the URL with {{username}} and {{password}} in its
	// user information, for Vigil's connection configuration.
	connectionURL string
	// u is the admin URL as given: a credential, for DatabaseURL.
	u       *url.URL
	prefix  string
	version string
}

// ErrLoginRefused is LogIn's error when the server refuses the user's
// login (SQLSTATE class 28: no such user, a wrong password, or NOLOGIN).
var ErrLoginRefused = errors.New("login refused")

// pgTable is the table of the run's schema that the users may read.
const pgTable = "features"

// pgPrefixPattern is what a prefix must look like: an unquoted SQL
// identifier, short enough for the user names built on it to stay under
// PostgreSQL's 63 bytes.
var pgPrefixPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,15}$`)

// NewPGPrefix returns a fresh prefix for the names of what one run
// creates: "vbench_" and 8 random letters and digits.
func NewPGPrefix() string {
	return "vbench_" + strings.ToLower(rand.Text()[:8])
}

// ParsePGURL checks the admin URL of a PostgreSQL server:
// postgres://user:password@host:port/database?options (or postgresql://),
// with the user and password in the URL, which Vigil's connection
// configuration needs. It connects to nothing.
func ParsePGURL(raw string) (*PG, error) {
	// url.Parse's and pgx's errors may quote the URL, password and all:
	// none is passed on as it is.
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("want a URL of the form postgres://user:password@host:port/database")
	}
	password, ok := u.User.Password()
	if u.User == nil || u.User.Username() == "" || !ok || password == "" {
		return nil, errors.New("the URL must name the admin user and its password: postgres://user:password@host:port/database")
	}
	q := u.Query()
	if q.Has("user") || q.Has("password") {
		return nil, errors.New("give the user and password in the URL's user information, not as query parameters")
	}
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return nil, errors.New(dbplugin.Redact(err.Error(), password))
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	cu := u.Scheme + "://" + dbplugin.PlaceholderUsername + ":" + dbplugin.PlaceholderPassword + "@" + u.Host + u.EscapedPath()
	if u.RawQuery != "" {
		cu += "?" + u.RawQuery
	}
	return &PG{cfg: cfg, connectionURL: cu, u: u}, nil
}

// String describes p without its password.
func (p *PG) String() string {
	return fmt.Sprintf("postgresql at %s:%d, database %q, as %q", p.cfg.Host, p.cfg.Port, p.cfg.Database, p.cfg.User)
}

// ConnectionURL is the server's URL with {{username}} and {{password}}
// standing for the admin user's credentials, as Vigil's database
// connections take it.
func (p *PG) ConnectionURL() string { return p.connectionURL }

// Username and Password are the admin user's credentials.
func (p *PG) Username() string { return p.cfg.User }
func (p *PG) Password() string { return p.cfg.Password }

// Version is the server's version, known after Prepare or
// CreateDatabase.
func (p *PG) Version() string { return p.version }

// Prefix is the run's prefix, set by Prepare.
func (p *PG) Prefix() string { return p.prefix }

// clean removes the passwords from err's text.
func (p *PG) clean(err error, passwords ...string) error {
	if err == nil {
		return nil
	}
	return errors.New(dbplugin.Redact(err.Error(), append(passwords, p.cfg.Password)...))
}

// connect opens a connection as the admin user.
func (p *PG) connect(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, p.cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %v: %w", p, p.clean(err))
	}
	return c, nil
}

// Prepare connects as the admin user, reads the server's version and
// creates the run's schema, named prefix, with a small table, and the
// group role of the same name that may read it, which CreationStatements
// grant. It fails if the schema exists already: the prefix is another
// run's.
func (p *PG) Prepare(ctx context.Context, prefix string) error {
	if !pgPrefixPattern.MatchString(prefix) {
		return fmt.Errorf("invalid prefix %q: want up to 16 lowercase letters, digits and '_', beginning with a letter", prefix)
	}
	c, err := p.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if err := c.QueryRow(ctx, "SHOW server_version").Scan(&p.version); err != nil {
		return fmt.Errorf("%v: SHOW server_version: %w", p, p.clean(err))
	}
	p.prefix = prefix
	s := p.schema()
	if _, err := c.Exec(ctx, "CREATE SCHEMA "+s); err != nil {
		p.prefix = "" // perhaps another run's: not for Cleanup to drop
		return fmt.Errorf("%v: create schema %s: %w", p, prefix, p.clean(err))
	}
	for _, q := range []string{
		"CREATE TABLE " + s + "." + pgTable + " (id bigint PRIMARY KEY, name text NOT NULL, value double precision)",
		"INSERT INTO " + s + "." + pgTable + " SELECT i, 'feature ' || i, i / 10.0 FROM generate_series(1, 100) AS i",
		"CREATE ROLE " + s + " NOLOGIN",
		"GRANT USAGE ON SCHEMA " + s + " TO " + s,
		"GRANT SELECT ON ALL TABLES IN SCHEMA " + s + " TO " + s,
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return fmt.Errorf("%v: %s: %w", p, q, p.clean(err))
		}
	}
	return nil
}

// schema is the run's schema, and its group role, quoted.
func (p *PG) schema() string { return pgx.Identifier{p.prefix}.Sanitize() }

// CreationStatements are the statements that create a user, with
// {{name}}, {{password}} and {{expiration}} to fill in (see
// dbplugin.Render): a login role with a password valid until the lease
// ends, granted the run's group role, which may read the run's table, as
// a role handing out read access to a feature store would be (see PG on
// why through a group role).
func (p *PG) CreationStatements() []string {
	return []string{
		`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`,
		`GRANT ` + p.schema() + ` TO "{{name}}"`,
	}
}

// UsernameTemplate is a username_template for Vigil's database connection
// shaped like Vault's default (the role's name, 20 random characters and
// the time), with the run's prefix in front so that Cleanup finds the
// users.
func (p *PG) UsernameTemplate() string {
	return `{{ printf "` + p.prefix + `-v-%s-%s-%s" (.RoleName | truncate 8) (random 20) (unix_time) | truncate 63 }}`
}

// LogIn connects as user with password and reads the run's table, as an
// issued user would. It returns an error wrapping ErrLoginRefused if the
// server refuses the login, another if anything else fails (the table
// cannot be read, say).
func (p *PG) LogIn(ctx context.Context, user, password string) error {
	cfg := p.cfg.Copy()
	cfg.User, cfg.Password = user, password
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && strings.HasPrefix(pe.Code, "28") {
			return fmt.Errorf("log in as %q: %w: %s (SQLSTATE %s)", user, ErrLoginRefused, pe.Message, pe.Code)
		}
		return fmt.Errorf("log in as %q: %w", user, p.clean(err, password))
	}
	defer c.Close(context.WithoutCancel(ctx))
	var n int64
	q := "SELECT count(*) FROM " + p.schema() + "." + pgTable
	if err := c.QueryRow(ctx, q).Scan(&n); err != nil {
		return fmt.Errorf("as %q: %s: %w", user, q, p.clean(err, password))
	}
	return nil
}

// RoleExists reports whether a role (user) called name exists.
func (p *PG) RoleExists(ctx context.Context, name string) (bool, error) {
	c, err := p.connect(ctx)
	if err != nil {
		return false, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	var exists bool
	err = c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name).Scan(&exists)
	return exists, p.clean(err)
}

// Cleanup drops what the run created: every user whose name begins with
// the prefix and a '-' that is still there (it should be none: each
// scenario drops its users), then the schema and the group role. It
// returns the number of users it had to drop. It does nothing before
// Prepare.
func (p *PG) Cleanup(ctx context.Context) (dropped int, err error) {
	if p.prefix == "" {
		return 0, nil
	}
	c, err := p.connect(ctx)
	if err != nil {
		return 0, err
	}
	defer c.Close(context.WithoutCancel(ctx))
	rows, err := c.Query(ctx, "SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)", p.prefix+"-")
	if err != nil {
		return 0, fmt.Errorf("%v: list the run's users: %w", p, p.clean(err))
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("%v: list the run's users: %w", p, p.clean(err))
	}
	var errs []error
	for _, name := range names {
		if err := dropUser(ctx, c, name); err != nil {
			errs = append(errs, fmt.Errorf("drop user %q: %w", name, p.clean(err)))
			continue
		}
		dropped++
	}
	if _, err := c.Exec(ctx, "DROP SCHEMA IF EXISTS "+p.schema()+" CASCADE"); err != nil {
		errs = append(errs, fmt.Errorf("drop schema %s: %w", p.prefix, p.clean(err)))
	}
	if err := dropUser(ctx, c, p.prefix); err != nil {
		errs = append(errs, fmt.Errorf("drop group role %s: %w", p.prefix, p.clean(err)))
	}
	return dropped, errors.Join(errs...)
}

// terminateWait is how long ending a user's sessions waits for each to
// go, as in Vigil's driver.
const terminateWait = 5 * time.Second

// dropUser removes a user the way Vigil's PostgreSQL driver does by
// default when it revokes one (see package
// internal/secrets/database/postgres): look the user up, take its role
// if the admin does not have it, make it NOLOGIN, end its sessions, then
// in one transaction REASSIGN OWNED BY it to the admin, DROP OWNED BY it
// and DROP ROLE. A user that does not exist is not an error.
func dropUser(ctx context.Context, c *pgx.Conn, name string) error {
	var exists, member bool
	err := c.QueryRow(ctx, `SELECT true, pg_has_role(current_user, oid, 'USAGE') FROM pg_roles WHERE rolname = $1`, name).Scan(&exists, &member)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	q := pgx.Identifier{name}.Sanitize()
	if !member {
		if _, err := c.Exec(ctx, `GRANT `+q+` TO CURRENT_USER`); err != nil {
			return err
		}
	}
	if _, err := c.Exec(ctx, `ALTER ROLE `+q+` NOLOGIN`); err != nil {
		return err
	}
	if _, err := c.Exec(ctx, `SELECT pg_terminate_backend(pid, $2) FROM pg_stat_activity WHERE usename = $1 AND pid <> pg_backend_pid()`,
		name, terminateWait.Milliseconds()); err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		for _, s := range []string{`REASSIGN OWNED BY ` + q + ` TO CURRENT_USER`, `DROP OWNED BY ` + q, `DROP ROLE IF EXISTS ` + q} {
			if _, err := tx.Exec(ctx, s); err != nil {
				return err
			}
		}
		return nil
	})
}

// PGBaseline is PGCreateDrop: users created and dropped straight over
// pgx, on a pool of connections as the admin user, with the statements
// Vigil's role runs (CreationStatements, in one transaction) and the
// steps its driver's default revocation takes (see dropUser). Against
// DBCreds, it is the least the same work can cost.
type PGBaseline struct {
	pg    *PG
	ttl   time.Duration
	conns chan *pgx.Conn // the idle connections
	n     int
}

// NewBaseline opens conns connections as the admin user for a baseline
// whose users are valid for ttl (their VALID UNTIL); Close closes them.
// Prepare must have run.
func (p *PG) NewBaseline(ctx context.Context, conns int, ttl time.Duration) (*PGBaseline, error) {
	if p.prefix == "" {
		return nil, errors.New("load: NewBaseline before Prepare")
	}
	n := max(conns, 1)
	b := &PGBaseline{pg: p, ttl: ttl, conns: make(chan *pgx.Conn, n), n: n}
	for range n {
		c, err := p.connect(ctx)
		if err != nil {
			for range len(b.conns) {
				(<-b.conns).Close(context.WithoutCancel(ctx))
			}
			return nil, err
		}
		b.conns <- c
	}
	return b, nil
}

// Close closes the baseline's connections, waiting for those in use. The
// baseline must not be used afterwards.
func (b *PGBaseline) Close() {
	for range b.n {
		(<-b.conns).Close(context.Background())
	}
}

// with runs fn on a connection of the pool. A connection that fn left
// broken (a context cancelled in the middle of a statement closes it) is
// replaced.
func (b *PGBaseline) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	var c *pgx.Conn
	select {
	case c = <-b.conns:
	case <-ctx.Done():
		return ctx.Err()
	}
	if c.IsClosed() {
		nc, err := b.pg.connect(ctx)
		if err != nil {
			b.conns <- c // still closed: the next caller tries again
			return err
		}
		c = nc
	}
	defer func() { b.conns <- c }()
	return fn(c)
}

// Create creates a user as DBCreds does: a name of the same shape (the
// prefix, "-pg-", 20 random characters and the time), a random password,
// CreationStatements in one transaction.
func (b *PGBaseline) Create(ctx context.Context) (user, password string, err error) {
	user = b.pg.prefix + "-pg-" + strings.ToLower(rand.Text()[:20]) + "-" + strconv.FormatInt(time.Now().Unix(), 10)
	password = rand.Text()
	v := dbplugin.Vars{Name: user, Password: password, Expiration: time.Now().Add(b.ttl)}
	err = b.with(ctx, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			for _, s := range b.pg.CreationStatements() {
				if _, err := tx.Exec(ctx, dbplugin.Render(s, v)); err != nil {
					return fmt.Errorf("%s: %w", s, err) // the template: no password
				}
			}
			return nil
		})
	})
	if err != nil {
		return "", "", fmt.Errorf("create user: %w", b.pg.clean(err, password))
	}
	return user, password, nil
}

// Drop drops a user as Vigil's default revocation does (see dropUser).
func (b *PGBaseline) Drop(ctx context.Context, user string) error {
	err := b.with(ctx, func(c *pgx.Conn) error { return dropUser(ctx, c, user) })
	if err != nil {
		return fmt.Errorf("drop user: %w", b.pg.clean(err))
	}
	return nil
}

// CreateDrop is one PGCreateDrop operation: Create, then Drop.
func (b *PGBaseline) CreateDrop(ctx context.Context) error {
	user, _, err := b.Create(ctx)
	if err != nil {
		return err
	}
	return b.Drop(ctx, user)
}

// pgDatabasePattern is what the name of a database CreateDatabase makes
// must look like: an unquoted SQL identifier.
var pgDatabasePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// CreateDatabase connects as the admin user, reads the server's version
// and creates an empty database called name, for the HA cluster's Vigil
// servers to keep their data in (see DatabaseURL); the admin user must
// be a superuser or have CREATEDB. It fails if the database exists: it
// is another run's. DropDatabase removes it.
func (p *PG) CreateDatabase(ctx context.Context, name string) error {
	if !pgDatabasePattern.MatchString(name) {
		return fmt.Errorf("invalid database name %q: want up to 63 lowercase letters, digits and '_', beginning with a letter", name)
	}
	c, err := p.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if err := c.QueryRow(ctx, "SHOW server_version").Scan(&p.version); err != nil {
		return fmt.Errorf("%v: SHOW server_version: %w", p, p.clean(err))
	}
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("%v: create database %s: %w", p, name, p.clean(err))
	}
	return nil
}

// DropDatabase drops the database called name, if it exists, ending the
// sessions still connected to it (WITH (FORCE): PostgreSQL 13 or later).
func (p *PG) DropDatabase(ctx context.Context, name string) error {
	c, err := p.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close(context.WithoutCancel(ctx))
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("%v: drop database %s: %w", p, name, p.clean(err))
	}
	return nil
}

// DatabaseURL is the admin URL with the database called name in its path
// instead of the admin's: a credential (it holds the admin password), to
// hand to a server and never to print.
func (p *PG) DatabaseURL(name string) string {
	u := *p.u
	u.Path, u.RawPath = "/"+name, ""
	return u.String()
}
