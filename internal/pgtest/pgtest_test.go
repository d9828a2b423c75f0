package pgtest

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// TestShared checks the shared server: databases of their own, password
// authentication on TCP, roles that come and go.
func TestShared(t *testing.T) {
	a, b := New(t), New(t)
	if a.Name == b.Name {
		t.Fatalf("two tests share database %q", a.Name)
	}
	if a.Server != b.Server {
		t.Fatal("New started a second server")
	}
	ctx := t.Context()
	a.Exec(t, "CREATE TABLE only_in_a (x int)")
	conn, err := b.ConnectAs(ctx, b.User, b.Password)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT * FROM only_in_a"); err == nil {
		t.Fatal("a table of database a is visible in database b")
	}

	name, password := a.CreateRole(t, "")
	if !a.RoleExists(t, name) {
		t.Fatalf("role %q was not created", name)
	}
	c, err := a.ConnectAs(ctx, name, password)
	if err != nil {
		t.Fatalf("the new role cannot log in: %v", err)
	}
	c.Close(context.Background())
	if _, err := a.ConnectAs(ctx, name, password+"x"); err == nil {
		t.Fatal("a wrong password was accepted")
	}
}

// TestStart starts a server of its own, checks who runs it and where its
// socket is, and that stopping it removes everything.
func TestStart(t *testing.T) {
	if os.Getenv(EnvURL) != "" {
		t.Skip("an external server is in use")
	}
	s, err := start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = s.stop()
		}
	})
	if _, err := os.Stat(filepath.Join(s.SocketDir, ".s.PGSQL."+strconv.Itoa(s.Port))); err != nil {
		t.Errorf("no Unix socket in the server's directory: %v", err)
	}
	fi, err := os.Stat(filepath.Join(s.dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	owner := fi.Sys().(*syscall.Stat_t).Uid
	want := uint32(os.Geteuid())
	if want == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.ParseUint(u.Uid, 10, 32)
		want = uint32(n)
	}
	if owner != want {
		t.Errorf("data directory owned by uid %d, want %d", owner, want)
	}
	conn, err := s.Connect(t.Context(), "postgres", s.User, s.Password)
	if err != nil {
		t.Fatal(err)
	}
	var super bool
	if err := conn.QueryRow(t.Context(), "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		t.Errorf("the server's user is not a superuser (%v)", err)
	}
	conn.Close(context.Background())
	if _, err := s.Connect(t.Context(), "postgres", s.User, "wrong"); err == nil {
		t.Error("a wrong superuser password was accepted")
	}

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	stopped = true
	if _, err := os.Stat(s.dir); !os.IsNotExist(err) {
		t.Errorf("the server's directory is still there: %v", err)
	}
	if _, err := s.Connect(t.Context(), "postgres", s.User, s.Password); err == nil {
		t.Error("the server still accepts connections after stop")
	}
}

// TestStopRestart stops a server of its own, as an outage would: its
// sessions end and logins are refused; restarted on the same port, it has
// its data and its users back.
func TestStopRestart(t *testing.T) {
	s := Start(t)
	db := s.NewDB(t)
	name, password := db.CreateRole(t, "")
	db.Exec(t, "CREATE TABLE kept (x int)")
	session, err := db.ConnectAs(t.Context(), name, password)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(context.Background())

	s.Stop(t)
	if _, err := session.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Error("a session outlived the server")
	}
	if err := db.RunAs(t, name, password, "SELECT 1"); err == nil {
		t.Error("a stopped server accepted a login")
	}
	s.Stop(t) // already stopped: nothing to do

	s.Restart(t)
	if err := db.RunAs(t, name, password, "SELECT 1"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	if got := db.QueryString(t, "SELECT coalesce(to_regclass('kept')::text, 'gone')"); got != "kept" {
		t.Errorf("after restart the table is %s", got)
	}
}

// TestSweep checks that the directory of a dead server is removed once it
// is old, and that of a live one (or a young one) is not.
func TestSweep(t *testing.T) {
	old := time.Now().Add(-2 * staleAfter)
	mk := func(pid string, mtime time.Time) string {
		d, err := os.MkdirTemp("", dirPrefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		if pid != "" {
			if err := os.MkdirAll(filepath.Join(d, "data"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, "data", "postmaster.pid"), []byte(pid+"\n/data\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(d, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		return d
	}
	dead := mk("", old)
	alive := mk(strconv.Itoa(os.Getpid()), old)
	young := mk("", time.Now())
	sweep()
	for d, want := range map[string]bool{dead: false, alive: true, young: true} {
		if _, err := os.Stat(d); (err == nil) != want {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(d), err == nil, want)
		}
	}
}
