//go:build !e2e

package acceptance

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestDatabaseCredsExpire is a job's database credentials with Vigil's
// CLI, on a server whose clock the test moves: read, renewed (VALID UNTIL
// follows), and, once the lease has run out, revoked by the server on
// its own through the request pipeline: the user is gone and cannot log
// in.
func TestDatabaseCredsExpire(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s := testcluster.New(t, testcluster.Options{InMemory: true, Clock: clk})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	db, _, _ := setupDatabase(t, root)

	vigil := func(args ...string) string {
		t.Helper()
		var out, errOut strings.Builder
		env := map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}
		if code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errOut, func(k string) string { return env[k] }); code != 0 {
			t.Fatalf("vigil %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
		}
		return out.String()
	}
	var creds struct {
		LeaseID       string `json:"lease_id"`
		LeaseDuration int    `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
		Data          struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(vigil("read", "-format=json", "database/creds/reader")), &creds); err != nil {
		t.Fatal(err)
	}
	user, pw := creds.Data.Username, creds.Data.Password
	if user == "" || pw == "" || creds.LeaseDuration != 3600 || !creds.Renewable {
		t.Fatalf("vigil read database/creds/reader: %+v", creds)
	}
	db.DropRoleAtEnd(t, user)
	if err := db.RunAs(t, user, pw, "SELECT * FROM features"); err != nil {
		t.Fatalf("the issued user cannot read: %v", err)
	}

	clk.Advance(10 * time.Minute)
	vigil("lease", "renew", "-increment=2h", creds.LeaseID)
	if got, want := db.ValidUntil(t, user), clk.Now().Add(2*time.Hour).Truncate(time.Second); !got.Equal(want) {
		t.Errorf("after renewal VALID UNTIL = %v, want %v", got, want)
	}

	// Past the lease's end (and the lease manager's spread window) the
	// server revokes it in the background.
	clk.Advance(2*time.Hour + 5*time.Second)
	waitFor(t, 10*time.Second, func() error {
		if db.RoleExists(t, user) {
			return errors.New("the user of an expired lease still exists")
		}
		return nil
	})
	if err := db.RunAs(t, user, pw, "SELECT 1"); err == nil {
		t.Error("the user of an expired lease can still log in")
	}
	_, err := root.Sys().Lookup(creds.LeaseID)
	wantStatus(t, "looking up the expired lease", err, 400)
}
