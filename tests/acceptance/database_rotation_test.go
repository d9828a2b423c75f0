//go:build !e2e

package acceptance

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/cli"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// vigilCLI runs Vigil's CLI against url with token and returns its
// output.
func vigilCLI(t *testing.T, url, token string, args ...string) string {
	t.Helper()
	var out, errOut strings.Builder
	env := map[string]string{"VIGIL_ADDR": url, "VIGIL_TOKEN": token, "HOME": t.TempDir()}
	if code := cli.Run(context.Background(), args, strings.NewReader(""), &out, &errOut, func(k string) string { return env[k] }); code != 0 {
		t.Fatalf("vigil %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String()
}

// cliStaticCreds reads static credentials with `vigil read -format=json`.
func cliStaticCreds(t *testing.T, url, token, role string) (user, password, last string) {
	t.Helper()
	var creds struct {
		Data struct {
			Username          string `json:"username"`
			Password          string `json:"password"`
			LastVaultRotation string `json:"last_vault_rotation"`
			TTL               int64  `json:"ttl"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(vigilCLI(t, url, token, "read", "-format=json", "database/static-creds/"+role)), &creds); err != nil {
		t.Fatal(err)
	}
	return creds.Data.Username, creds.Data.Password, creds.Data.LastVaultRotation
}

// waitRotated waits until the static role's password is no longer old,
// checks that the new one works and the old one does not, and returns the
// new one.
func waitRotated(t *testing.T, c *vault.Client, db *pgtest.DB, role, old string) (user, password string) {
	t.Helper()
	waitFor(t, 10*time.Second, func() error {
		user, password, _ = staticCreds(t, c, role)
		if password == old {
			return fmt.Errorf("static role %s not rotated", role)
		}
		return nil
	})
	locked(t, db, user, old)
	logsIn(t, db, user, password)
	return user, password
}

// TestDatabaseStaticSchedules drives static roles' schedules with a fake
// clock through the whole server (the core's jobs run the engine's
// periodic work): by period and by cron schedule, rotations come when due
// and not before; an alternating role's previous credentials work until
// the next scheduled rotation. Vigil's CLI reads and rotates as `vault
// read` and `vault write -f` do.
func TestDatabaseStaticSchedules(t *testing.T) {
	// Ten past an hour, so that the hourly schedule's time is 50 minutes
	// away.
	clk := clock.NewFake(time.Now().UTC().Truncate(time.Hour).Add(time.Hour + 10*time.Minute))
	s := testcluster.New(t, testcluster.Options{InMemory: true, Clock: clk})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	db, periodUser, _, _ := setupStatic(t, root)
	cronUser, _ := staticUser(t, db)
	altUser, _ := staticUser(t, db)
	db.DropRoleAtEnd(t, altUser+"_b")
	for role, body := range map[string]map[string]any{
		"svc-period": {"db_name": "ml", "username": periodUser, "rotation_period": "1h"},
		"svc-cron":   {"db_name": "ml", "username": cronUser, "rotation_schedule": "0 * * * *"},
		"svc-alt":    {"db_name": "ml", "username": altUser, "rotation_period": "2h", "rotation_strategy": "alternating"},
	} {
		if _, err := root.Logical().Write("database/static-roles/"+role, body); err != nil {
			t.Fatalf("write static role %s: %v", role, err)
		}
	}
	user, periodPW, last := cliStaticCreds(t, s.URL, s.RootToken, "svc-period")
	if user != periodUser || last != clk.Now().Format(time.RFC3339Nano) {
		t.Fatalf("vigil read database/static-creds/svc-period: %s, last rotation %s", user, last)
	}
	logsIn(t, db, user, periodPW)
	_, cronPW, data := staticCreds(t, root, "svc-cron")
	if data["ttl"].(json.Number).String() != "3000" {
		t.Errorf("the hourly role's ttl at ten past is %v, want 3000", data["ttl"])
	}
	a1, altPW1, _ := staticCreds(t, root, "svc-alt")

	// vigil write -f database/rotate-role/...
	vigilCLI(t, s.URL, s.RootToken, "write", "-f", "database/rotate-role/svc-period")
	_, rotatedPW, _ := cliStaticCreds(t, s.URL, s.RootToken, "svc-period")
	locked(t, db, periodUser, periodPW)
	logsIn(t, db, periodUser, rotatedPW)
	periodPW = rotatedPW

	// At the top of the hour the cron role rotates, the others do not.
	clk.Advance(50*time.Minute - time.Second)
	if _, pw, _ := staticCreds(t, root, "svc-cron"); pw != cronPW {
		t.Fatal("the hourly role rotated before its time")
	}
	clk.Advance(time.Second)
	_, cronPW = waitRotated(t, root, db, "svc-cron", cronPW)
	if _, pw, _ := staticCreds(t, root, "svc-period"); pw != periodPW {
		t.Fatal("the period role rotated before its time")
	}

	// An hour after its last rotation the period role rotates.
	clk.Advance(10 * time.Minute)
	periodUser2, _ := waitRotated(t, root, db, "svc-period", periodPW)
	if periodUser2 != periodUser {
		t.Errorf("an in-place role hands out %s", periodUser2)
	}

	// Two hours after its creation the alternating role hands out its
	// twin, and the credentials read before still work, until the
	// rotation after.
	clk.Advance(time.Hour)
	a2, altPW2 := waitRotated(t, root, db, "svc-alt", altPW1)
	if a2 != altUser+"_b" {
		t.Fatalf("the alternating role hands out %s after a rotation, want the twin", a2)
	}
	logsIn(t, db, a1, altPW1)
	clk.Advance(2 * time.Hour)
	a3, _ := waitRotated(t, root, db, "svc-alt", altPW2)
	if a3 != altUser {
		t.Fatalf("the alternating role hands out %s after two rotations", a3)
	}
	locked(t, db, a1, altPW1)
	logsIn(t, db, a2, altPW2)
	_, _ = waitRotated(t, root, db, "svc-cron", cronPW)
}

// TestDatabaseStaticRotationsMissed: rotations due while the server is
// sealed, or down, run when it is unsealed again, on the same storage
// (bolt), by the backend the new core builds.
func TestDatabaseStaticRotationsMissed(t *testing.T) {
	clk := clock.NewFake(time.Now())
	dir := t.TempDir()
	s := testcluster.New(t, testcluster.Options{Dir: dir, Clock: clk})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	db, user, _, _ := setupStatic(t, root)
	if _, err := root.Logical().Write("database/static-roles/svc-app", map[string]any{
		"db_name": "ml", "username": user, "rotation_period": "1h",
	}); err != nil {
		t.Fatal(err)
	}
	_, pw1, _ := staticCreds(t, root, "svc-app")

	// Sealed across the rotation's time.
	if err := s.Core.SealInternal(t.Context()); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	logsIn(t, db, user, pw1)
	s.Unseal(t)
	_, pw2 := waitRotated(t, root, db, "svc-app", pw1)
	_, _, data := staticCreds(t, root, "svc-app")
	if data["last_vault_rotation"] != clk.Now().UTC().Format(time.RFC3339Nano) || data["ttl"].(json.Number).String() != "3600" {
		t.Errorf("after the rotation at unseal: %v", data)
	}

	// Down across the next one: a new server on the same storage.
	s.Close()
	clk.Advance(90 * time.Minute)
	logsIn(t, db, user, pw2)
	s2 := testcluster.New(t, testcluster.Options{Dir: dir, Reopen: true, Clock: clk})
	s2.Keys = s.Keys
	s2.Unseal(t)
	root2 := vaultClient(t, &target{URL: s2.URL, RootToken: s.RootToken})
	_, pw3 := waitRotated(t, root2, db, "svc-app", pw2)

	// And the schedule goes on from there.
	clk.Advance(time.Hour)
	waitRotated(t, root2, db, "svc-app", pw3)
}
