// Package pgtest starts throwaway PostgreSQL servers for tests: initdb
// into a fresh temporary directory, a random free port on 127.0.0.1 with
// password (scram-sha-256) authentication, the Unix socket in the same
// directory, and a superuser with a random password. A server is stopped
// and its directory removed when its test (or, for the shared server, the
// test binary) ends.
//
// Setting VIGIL_TEST_PG_URL (postgres://user:password@host:port/db, a
// superuser) points the helpers at an existing server instead: nothing is
// started, and each test still gets a database of its own.
//
// PostgreSQL refuses to run as root. When the tests run as root (as CI
// does) initdb and postgres run as the unprivileged "postgres" system user
// that Debian's package creates, in a directory handed over to it.
//
// Two ways in:
//
//   - [New] gives the test a database of its own on one server shared by
//     the whole test binary; the package must call [Main] (or [Run]) from
//     its TestMain, which stops the shared server at the end.
//   - [Start] starts a server for one test alone.
//
// The package is imported only from _test.go files (the dependency test
// checks this) and imports nothing internal.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable that points the helpers at an
// existing server.
const EnvURL = "VIGIL_TEST_PG_URL"

// Timeouts of a server's life.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 15 * time.Second
)

// superuser is the name of a started server's superuser.
const superuser = "pgtest"

// dirPrefix begins the name of a started server's directory.
const dirPrefix = "vigil-pgtest-"

// staleAfter is how old the directory of a server that is not running
// must be before [sweep] removes it: a younger one may be starting.
const staleAfter = 10 * time.Minute

// Server is a running PostgreSQL server.
type Server struct {
	// Host and Port are the TCP address clients connect to.
	Host string
	Port int
	// User and Password are a superuser's credentials.
	User     string
	Password string
	// SocketDir holds the server's Unix socket; "" for an external server.
	SocketDir string

	// dir is the started server's directory (data, socket, log).
	dir  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the postmaster has exited
}

// URL returns a connection URL for database as user with password.
func (s *Server) URL(database, user, password string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(user, password),
		Host:     net.JoinHostPort(s.Host, strconv.Itoa(s.Port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Connect opens a connection to database as user with password. A test
// uses it to check what an issued credential can do.
func (s *Server) Connect(ctx context.Context, database, user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.URL(database, user, password))
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = 10 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// exec runs statements as the superuser in database.
func (s *Server) exec(ctx context.Context, database string, stmts ...string) error {
	conn, err := s.Connect(ctx, database, s.User, s.Password)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// Start starts a server for t alone (or returns the external server of
// VIGIL_TEST_PG_URL) and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	if raw := os.Getenv(EnvURL); raw != "" {
		s, err := external(raw)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s, err := start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return s
}

// external describes the server of VIGIL_TEST_PG_URL.
func external(raw string) (*Server, error) {
	cfg, err := pgx.ParseConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %s: %w", EnvURL, err)
	}
	return &Server{Host: cfg.Host, Port: int(cfg.Port), User: cfg.User, Password: cfg.Password}, nil
}

// binDir finds the directory of initdb and postgres: the newest
// /usr/lib/postgresql/<version>/bin (Debian), else PATH.
func binDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("pgtest: PostgreSQL server binaries (initdb, postgres) not found under /usr/lib/postgresql/*/bin or on PATH: " +
		"install the postgresql package (scripts/test does) or set " + EnvURL + " to a superuser URL of an existing server")
}

// version is the major version in a /usr/lib/postgresql/<v>/bin path.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// runAs is who runs initdb and postgres: nil for the current user, or the
// postgres system user when the tests run as root.
func runAs() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root, and PostgreSQL refuses to: no \"postgres\" system user to run it as (%w)", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: postgres user: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// start runs initdb and starts postgres in a new directory.
func start(ctx context.Context) (s *Server, err error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	cred, err := runAs()
	if err != nil {
		return nil, err
	}
	sweep()
	// Not t.TempDir: as root, its parent is private to root and the
	// postgres user could not reach it. os.MkdirTemp makes a directory
	// in the world-searchable temporary directory.
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, fmt.Errorf("pgtest: hand %s to the postgres user: %w", dir, err)
		}
	}
	s = &Server{Host: "127.0.0.1", User: superuser, Password: rand.Text(), SocketDir: dir, dir: dir}
	if err := s.initdb(ctx, bin, cred); err != nil {
		return nil, err
	}
	// The port is free when chosen but may be taken before postgres binds
	// it: try a few.
	for attempt := 0; ; attempt++ {
		s.Port, err = freePort()
		if err != nil {
			return nil, err
		}
		err = s.run(ctx, bin, cred)
		if err == nil {
			return s, nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "could not bind") {
			return nil, err
		}
	}
}

// sweep removes the directories of servers whose test binary died
// without stopping them (the kernel stopped the server, see sysProcAttr,
// but nothing removed its files).
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < staleAfter || running(d) {
			continue
		}
		_ = os.RemoveAll(d)
	}
}

// running reports whether the postmaster of the server in dir is alive.
func running(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 {
		return false
	}
	// Signal 0 checks only that the process exists; EPERM means it does
	// but belongs to another user.
	err = syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// initdb creates the cluster with the superuser and its password.
func (s *Server) initdb(ctx context.Context, bin string, cred *syscall.Credential) error {
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer os.Remove(pwfile)
	if cred != nil {
		if err := os.Chown(pwfile, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"--pgdata", filepath.Join(s.dir, "data"),
		"--username", s.User,
		"--pwfile", pwfile,
		"--auth", "scram-sha-256",
		"--encoding", "UTF8",
		"--locale", "C",
		"--no-sync",
	)
	cmd.Dir = s.dir
	cmd.Env = env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	return nil
}

// env is the environment of initdb and postgres: no PG* variables of the
// caller, the C locale.
func env() []string {
	return []string{"PATH=/usr/bin:/bin", "LC_ALL=C", "LANG=C"}
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// run starts postgres and waits until it accepts connections.
func (s *Server) run(ctx context.Context, bin string, cred *syscall.Credential) error {
	logPath := filepath.Join(s.dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", filepath.Join(s.dir, "data"),
		"-h", s.Host,
		"-p", strconv.Itoa(s.Port),
		"-k", s.dir,
		// A throwaway server: durability buys nothing.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=32MB",
		"-c", "logging_collector=off",
	)
	cmd.Dir = s.dir
	cmd.Env = env()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(cred)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pgtest: start postgres: %w", err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		s.kill()
		return fmt.Errorf("%w\npostgres log:\n%s", err, tail(logPath))
	}
	return nil
}

// waitReady polls until the server accepts the superuser's login.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		conn, err := s.Connect(attempt, "postgres", s.User, s.Password)
		cancelAttempt()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		last = err
		select {
		case <-s.done:
			return fmt.Errorf("pgtest: postgres exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("pgtest: postgres not ready after %s: %w", readyTimeout, last)
		case <-tick.C:
		}
	}
}

// tail returns the end of the log at path.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// kill stops the postmaster at once and waits for it.
func (s *Server) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// stop shuts the server down (fast shutdown: sessions are ended) and
// removes its directory. An external server is left alone.
func (s *Server) stop() error {
	if s.dir == "" {
		return nil
	}
	errs := []error{s.shutdown()}
	if err := os.RemoveAll(s.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// shutdown stops the postmaster (fast shutdown: sessions are ended) and
// waits for it; a server already stopped is left as it is.
func (s *Server) shutdown() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
		return nil
	case <-time.After(stopTimeout):
		s.kill()
		return fmt.Errorf("postgres did not stop within %s; killed", stopTimeout)
	}
}

// Stop stops a server of the test's own ([Start]) as an outage would,
// keeping its data: open sessions are ended and connections are refused
// until [Server.Restart]. Never stop the shared server: other tests use
// it. On an external server (VIGIL_TEST_PG_URL), which cannot be
// stopped, it skips the test.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.dir == "" {
		t.Skip("pgtest: the test stops PostgreSQL, which an external server (" + EnvURL + ") cannot be")
	}
	if err := s.shutdown(); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// Restart starts a server stopped by [Server.Stop] again, on the same
// port, with its data, and waits until it accepts connections.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		t.Fatal(err)
	}
	cred, err := runAs()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.run(t.Context(), bin, cred); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
}

// The server shared by the tests of one binary.
var shared struct {
	sync.Mutex
	inMain bool
	srv    *Server
	err    error
}

// Main runs the tests of a package that uses [New] and exits: call it from
// TestMain. It stops the shared server, if one was started.
func Main(m *testing.M) { os.Exit(Run(m)) }

// Run is [Main] for a TestMain with more to do: it runs the tests, stops
// the shared server and returns the exit code.
func Run(m *testing.M) int {
	shared.Lock()
	shared.inMain = true
	shared.Unlock()
	code := m.Run()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv != nil {
		if err := shared.srv.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "pgtest:", err)
			if code == 0 {
				code = 1
			}
		}
		shared.srv = nil
	}
	return code
}

// Shared returns the server shared by the test binary, starting it on
// first use (or the external server of VIGIL_TEST_PG_URL).
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.Lock()
	defer shared.Unlock()
	if shared.srv == nil && shared.err == nil {
		if !shared.inMain {
			t.Fatal("pgtest: the shared server needs pgtest.Main (or Run) in the package's TestMain, which stops it")
		}
		if raw := os.Getenv(EnvURL); raw != "" {
			shared.srv, shared.err = external(raw)
		} else {
			// Not t.Context(): the server outlives this test.
			shared.srv, shared.err = start(context.Background())
		}
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.srv
}

// DB is a database of its own for one test.
type DB struct {
	*Server
	// Name is the database's name.
	Name string
}

// New creates a database of its own for t on the shared server (see
// [Shared]) and drops it when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	s := Shared(t)
	return s.NewDB(t)
}

// NewDB creates a database of its own for t on s and drops it (ending its
// sessions) when t ends.
func (s *Server) NewDB(t testing.TB) *DB {
	t.Helper()
	d := &DB{Server: s, Name: "t_" + strings.ToLower(rand.Text())[:16]}
	if err := s.exec(t.Context(), "postgres", "CREATE DATABASE "+quote(d.Name)); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		if err := s.exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+quote(d.Name)+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return d
}

// AdminURL is the superuser's connection URL for the database.
func (d *DB) AdminURL() string { return d.URL(d.Name, d.User, d.Password) }

// TemplateURL is the database's URL with the {{username}} and
// {{password}} placeholders of the database secrets engine.
func (d *DB) TemplateURL() string {
	return "postgres://{{username}}:{{password}}@" + net.JoinHostPort(d.Host, strconv.Itoa(d.Port)) + "/" + d.Name + "?sslmode=disable"
}

// Exec runs statements as the superuser in the database and fails t on
// an error.
func (d *DB) Exec(t testing.TB, stmts ...string) {
	t.Helper()
	if err := d.exec(t.Context(), d.Name, stmts...); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// ConnectAs opens a connection to the database as user with password.
func (d *DB) ConnectAs(ctx context.Context, user, password string) (*pgx.Conn, error) {
	return d.Connect(ctx, d.Name, user, password)
}

// CreateRole creates a login role with a random name and password and the
// given extra attributes ("SUPERUSER", "CREATEROLE"...), and drops it
// (with what it owns in this database) when t ends. Roles belong to the
// whole server, so tests that need one to change (rotate its password,
// say) make their own.
func (d *DB) CreateRole(t testing.TB, attrs string) (name, password string) {
	t.Helper()
	name, password = "r_"+strings.ToLower(rand.Text())[:12], rand.Text()
	d.Exec(t, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s' %s", quote(name), password, attrs))
	d.DropRoleAtEnd(t, name)
	return name, password
}

// DropRoleAtEnd drops the role called name, if it still exists, with what
// it owns in this database, when t ends: a test that issues users makes
// sure none outlives it on a server the next test run shares.
func (d *DB) DropRoleAtEnd(t testing.TB, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		q := quote(name)
		err := d.exec(ctx, d.Name, `DO $$ BEGIN
			IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = `+literal(name)+`) THEN
				PERFORM pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = `+literal(name)+`;
				REASSIGN OWNED BY `+q+` TO CURRENT_USER;
				DROP OWNED BY `+q+`;
				DROP ROLE `+q+`;
			END IF;
		END $$`)
		if err != nil {
			t.Errorf("pgtest: drop role %s: %v", name, err)
		}
	})
}

// RunAs logs in to the database as user with password and runs query: a
// test checks with it what an issued credential can and cannot do. The
// error says why not (the login or the query failed).
func (d *DB) RunAs(t testing.TB, user, password, query string) error {
	t.Helper()
	conn, err := d.ConnectAs(t.Context(), user, password)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(t.Context(), query)
	return err
}

// queryRow runs a one-row query as the superuser and scans it into dst.
func (d *DB) queryRow(t testing.TB, dst []any, query string, args ...any) {
	t.Helper()
	conn, err := d.ConnectAs(t.Context(), d.User, d.Password)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(t.Context(), query, args...).Scan(dst...); err != nil {
		t.Fatalf("pgtest: %s: %v", query, err)
	}
}

// RoleExists reports whether a role (user) called name exists.
func (d *DB) RoleExists(t testing.TB, name string) bool {
	t.Helper()
	var exists bool
	d.queryRow(t, []any{&exists}, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", name)
	return exists
}

// ValidUntil returns the VALID UNTIL of an existing role (the zero time
// for none).
func (d *DB) ValidUntil(t testing.TB, name string) time.Time {
	t.Helper()
	var until *time.Time
	d.queryRow(t, []any{&until}, "SELECT rolvaliduntil FROM pg_roles WHERE rolname = $1", name)
	if until == nil {
		return time.Time{}
	}
	return *until
}

// QueryString runs a one-row, one-column query as the superuser.
func (d *DB) QueryString(t testing.TB, query string, args ...any) string {
	t.Helper()
	var s string
	d.queryRow(t, []any{&s}, query, args...)
	return s
}

// literal quotes a string literal.
func literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// quote quotes an identifier.
func quote(name string) string { return pgx.Identifier{name}.Sanitize() }
