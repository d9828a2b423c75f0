//go:build !e2e

package acceptance

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/lease"
	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// issuedUsers returns the names of the users issued in db (those its
// roles grant SELECT on features to), sorted and comma-separated: a failed
// request does not say which user it made, and user names are the whole
// server's.
func issuedUsers(t *testing.T, db *pgtest.DB) string {
	t.Helper()
	return db.QueryString(t, `SELECT coalesce(string_agg(r.rolname, ',' ORDER BY r.rolname), '')
		FROM pg_class c CROSS JOIN aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee
		WHERE c.relname = 'features' AND r.rolname LIKE 'v-root-%'`)
}

// intentRecords counts the intent records (wal/) of every mount, in the
// server's physical storage.
func intentRecords(t *testing.T, phys storage.Backend) int {
	t.Helper()
	ctx := context.Background()
	mounts, err := phys.List(ctx, "logical/")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range mounts {
		keys, err := phys.List(ctx, "logical/"+m+"wal/")
		if err != nil {
			t.Fatal(err)
		}
		n += len(keys)
	}
	return n
}

// TestDatabaseLeaseStoreFails: when the lease of new credentials cannot
// be stored, the request fails and no user is left: the server revokes
// the user at once. When that revocation fails too, the user's intent
// record remains, and the database mount's periodic work drops the user
// once the record is five minutes old, not before (the server's clock is
// a fake the test moves).
func TestDatabaseLeaseStoreFails(t *testing.T) {
	clk := clock.NewFake(time.Now())
	var phys *storagetest.Faulty
	s := testcluster.New(t, testcluster.Options{InMemory: true, Clock: clk, WrapStorage: func(b storage.Backend) storage.Backend {
		phys = storagetest.NewFaulty(b.(storage.Transactional))
		return phys
	}})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	db, _, adminPW := setupDatabase(t, root)
	const role = "train-orphans"
	writeRole := func(revocation ...string) {
		t.Helper()
		r := map[string]any{"revocation_statements": revocation}
		for k, v := range dbReaderRole {
			r[k] = v
		}
		if _, err := root.Logical().Write("database/roles/"+role, r); err != nil {
			t.Fatal(err)
		}
	}
	writeRole()
	leaseWrites := func(key string) bool { return strings.HasPrefix(key, "sys/expire/id/database/creds/") }

	// A request that succeeds leaves no intent: the lease confirmed it.
	user, pw, live := issue(t, root, db, role)
	if err := db.RunAs(t, user, pw, "SELECT * FROM features"); err != nil {
		t.Fatal(err)
	}
	if n := intentRecords(t, phys); n != 0 {
		t.Fatalf("%d intent records after a request that succeeded", n)
	}

	phys.FailWrites(leaseWrites)
	_, err := root.Logical().Read("database/creds/" + role)
	phys.FailWrites(nil)
	wantStatus(t, "creds with the lease store failing", err, 500)
	if got := issuedUsers(t, db); got != user {
		t.Fatalf("users after a request whose lease was not stored: %s, want only %s", got, user)
	}
	if n := intentRecords(t, phys); n != 0 {
		t.Fatalf("%d intent records after the user was revoked", n)
	}

	// The revocation the server runs at once fails too.
	writeRole("SELECT 1/0")
	issued := clk.Now()
	phys.FailWrites(leaseWrites)
	_, err = root.Logical().Read("database/creds/" + role)
	phys.FailWrites(nil)
	wantStatus(t, "creds with the lease store and the revocation failing", err, 500)
	if strings.Contains(err.Error(), adminPW) {
		t.Fatal("the error shows the admin password")
	}
	var left string
	for _, u := range strings.Split(issuedUsers(t, db), ",") {
		if u != user {
			left += u
		}
	}
	if left == "" || strings.Contains(left, ",") {
		t.Fatalf("users %q, want %s and the one the failed request made", issuedUsers(t, db), user)
	}
	db.DropRoleAtEnd(t, left)
	if n := intentRecords(t, phys); n != 1 {
		t.Fatalf("%d intent records, want the failed request's", n)
	}
	writeRole(`DROP OWNED BY "{{name}}"`, `DROP ROLE "{{name}}"`)
	clk.Set(issued.Add(5*time.Minute - time.Second))
	if !db.RoleExists(t, left) {
		t.Fatal("the user was dropped before its intent was five minutes old")
	}
	clk.Set(issued.Add(5 * time.Minute))
	waitFor(t, 10*time.Second, func() error {
		if db.RoleExists(t, left) || intentRecords(t, phys) != 0 {
			return fmt.Errorf("user %s or its intent is still there", left)
		}
		return nil
	})
	if err := db.RunAs(t, user, pw, "SELECT * FROM features"); err != nil {
		t.Fatalf("the user of a stored lease was dropped: %v", err)
	}
	if err := root.Sys().Revoke(live.LeaseID); err != nil || issuedUsers(t, db) != "" {
		t.Fatalf("revoke: %v; users left: %q", err, issuedUsers(t, db))
	}
}

// TestDatabaseRevocationPostgresDown stops PostgreSQL under a server whose
// clock the test moves. A lease that expires meanwhile stays listed
// (sys/leases/lookup, LIST sys/leases/lookup/database/creds/reader/) while
// its revocation is retried with backoff, and goes with its user once
// PostgreSQL is back. A lease whose revocation fails lease.DefaultMaxAttempts
// times is irrevocable: still listed (and in sys/leases, with its error),
// no longer retried on its own, and revoked by an operator's
// sys/leases/revoke once PostgreSQL is back.
func TestDatabaseRevocationPostgresDown(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s := testcluster.New(t, testcluster.Options{InMemory: true, Clock: clk})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	srv := pgtest.Start(t)
	db := srv.NewDB(t)
	_, adminPW := setupDatabaseOn(t, root, db)

	failures := func() uint64 { return s.Core.Stats().LeaseRevokeFailures }
	waitFailures := func(n uint64) {
		t.Helper()
		waitFor(t, 10*time.Second, func() error {
			if got := failures(); got != n {
				return fmt.Errorf("%d failed revocations, want %d", got, n)
			}
			return nil
		})
	}
	listed := func(id string) {
		t.Helper()
		l, err := root.Logical().List("sys/leases/lookup/database/creds/reader/")
		if err != nil || l == nil || !strings.Contains(fmt.Sprint(l.Data["keys"]), id[strings.LastIndexByte(id, '/')+1:]) {
			t.Fatalf("lease %s not listed: %v, %v", id, l, err)
		}
		if _, err := root.Sys().Lookup(id); err != nil {
			t.Fatalf("lookup of lease %s: %v", id, err)
		}
	}
	gone := func(id, user string) {
		t.Helper()
		waitFor(t, 10*time.Second, func() error {
			if db.RoleExists(t, user) {
				return fmt.Errorf("user %s still exists", user)
			}
			if _, err := root.Sys().Lookup(id); err == nil {
				return fmt.Errorf("lease %s still listed", id)
			}
			return nil
		})
	}

	// Expired while PostgreSQL is down: retried, gone once it is back.
	user, pw, a := issue(t, root, db, "reader")
	srv.Stop(t)
	clk.Advance(time.Hour + 5*time.Second)
	waitFailures(1)
	listed(a.LeaseID)
	clk.Advance(lease.DefaultRetryMax)
	waitFailures(2)
	listed(a.LeaseID)
	srv.Restart(t)
	clk.Advance(lease.DefaultRetryMax)
	gone(a.LeaseID, user)
	if err := db.RunAs(t, user, pw, "SELECT 1"); err == nil {
		t.Fatal("the user of the revoked lease logs in")
	}
	base := failures()

	// A revocation asked for while PostgreSQL is down fails and keeps the
	// lease; expired, it fails until it is irrevocable.
	user, _, b := issue(t, root, db, "reader")
	srv.Stop(t)
	err := root.Sys().Revoke(b.LeaseID)
	re := wantStatus(t, "revoke with PostgreSQL down", err, 500)
	if strings.Contains(re.Error(), adminPW) {
		t.Fatal("the revocation error shows the admin password")
	}
	listed(b.LeaseID)
	clk.Advance(time.Hour + 5*time.Second)
	for i := uint64(1); i <= lease.DefaultMaxAttempts; i++ {
		waitFailures(base + i)
		listed(b.LeaseID)
		if i < lease.DefaultMaxAttempts {
			clk.Advance(lease.DefaultRetryMax)
		}
	}
	irrevocable, err := root.Logical().ReadWithData("sys/leases", map[string][]string{"type": {"irrevocable"}})
	if err != nil || irrevocable == nil || !strings.Contains(fmt.Sprint(irrevocable.Data["leases"]), b.LeaseID) {
		t.Fatalf("sys/leases does not list the irrevocable lease: %v, %v", irrevocable, err)
	}
	if strings.Contains(fmt.Sprint(irrevocable.Data), adminPW) {
		t.Fatal("sys/leases shows the admin password")
	}
	srv.Restart(t)
	if !db.RoleExists(t, user) {
		t.Fatal("the user of the irrevocable lease is gone")
	}
	if err := root.Sys().Revoke(b.LeaseID); err != nil {
		t.Fatalf("revoke of the irrevocable lease once PostgreSQL is back: %v", err)
	}
	gone(b.LeaseID, user)
	irrevocable, err = root.Logical().ReadWithData("sys/leases", map[string][]string{"type": {"irrevocable"}})
	if err != nil || fmt.Sprint(irrevocable.Data["lease_count"]) != "0" {
		t.Fatalf("sys/leases after the revocation: %v, %v", irrevocable, err)
	}
}
