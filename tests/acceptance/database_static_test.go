package acceptance

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/pgtest"
)

// setupStatic mounts the database engine with the connection "ml" (see
// setupDatabase), lets static roles named svc-* use it, and creates a
// user for a static role that can read the features table.
func setupStatic(t *testing.T, root *vault.Client) (db *pgtest.DB, user, password, adminPW string) {
	t.Helper()
	db, _, adminPW = setupDatabase(t, root)
	if _, err := root.Logical().Write("database/config/ml", map[string]any{"allowed_roles": "reader,train-*,svc-*"}); err != nil {
		t.Fatal(err)
	}
	user, password = staticUser(t, db)
	return db, user, password, adminPW
}

// staticUser creates a user a static role can manage, able to read the
// features table.
func staticUser(t *testing.T, db *pgtest.DB) (user, password string) {
	t.Helper()
	user, password = db.CreateRole(t, "")
	db.Exec(t, `GRANT SELECT ON features TO "`+user+`"`)
	return user, password
}

// staticCreds reads database/static-creds/<role> as `vault read` does.
func staticCreds(t *testing.T, c *vault.Client, role string) (user, password string, data map[string]any) {
	t.Helper()
	s, err := c.Logical().Read("database/static-creds/" + role)
	if err != nil || s == nil {
		t.Fatalf("read database/static-creds/%s: %v", role, err)
	}
	if s.LeaseID != "" || s.Renewable {
		t.Errorf("static credentials come with a lease: %+v", s)
	}
	user, _ = s.Data["username"].(string)
	password, _ = s.Data["password"].(string)
	if user == "" || password == "" {
		t.Fatalf("read database/static-creds/%s: %v", role, s.Data)
	}
	return user, password, s.Data
}

// logsIn fails the test unless user logs in with password and reads.
func logsIn(t *testing.T, db *pgtest.DB, user, password string) {
	t.Helper()
	if err := db.RunAs(t, user, password, "SELECT * FROM features"); err != nil {
		t.Fatalf("%s cannot log in and read: %v", user, err)
	}
}

// locked fails the test if user logs in with password.
func locked(t *testing.T, db *pgtest.DB, user, password string) {
	t.Helper()
	if err := db.RunAs(t, user, password, "SELECT 1"); err == nil {
		t.Fatalf("%s still logs in with a password that was rotated away", user)
	}
}

// rotateRole rotates a static role as `vault write -f` does.
func rotateRole(t *testing.T, c *vault.Client, role string) {
	t.Helper()
	if _, err := c.Logical().Write("database/rotate-role/"+role, nil); err != nil {
		t.Fatalf("write -f database/rotate-role/%s: %v", role, err)
	}
}

// testDatabaseStatic is the static roles of the database engine through
// the official client: creation rotates the user's password, static-creds
// reads it (numbers where Vault's clients expect numbers), rotate-role
// rotates it, the role and its password survive a restart; the
// alternating strategy keeps the credentials read before a rotation
// working until the next; bad input is a 400 without a password.
func testDatabaseStatic(t *testing.T, tg *target) {
	root := vaultClient(t, tg)
	db, user, pw0, adminPW := setupStatic(t, root)

	if _, err := root.Logical().Write("database/static-roles/svc-app", map[string]any{
		"db_name": "ml", "username": user, "rotation_period": "24h",
	}); err != nil {
		t.Fatalf("write database/static-roles/svc-app: %v", err)
	}
	locked(t, db, user, pw0)
	got, pw1, data := staticCreds(t, root, "svc-app")
	if got != user {
		t.Fatalf("static-creds username %q, want %q", got, user)
	}
	logsIn(t, db, user, pw1)
	period, perr := data["rotation_period"].(json.Number).Int64()
	ttl, terr := data["ttl"].(json.Number).Int64()
	if perr != nil || terr != nil || period != 86400 || ttl <= 86400-60 || ttl > 86400 {
		t.Errorf("rotation_period %v and ttl %v must be numbers, 86400 and about as much", data["rotation_period"], data["ttl"])
	}
	if last, err := time.Parse(time.RFC3339, data["last_vault_rotation"].(string)); err != nil || time.Since(last) > time.Minute {
		t.Errorf("last_vault_rotation %v: %v", data["last_vault_rotation"], err)
	}
	role, err := root.Logical().Read("database/static-roles/svc-app")
	if err != nil || role.Data["username"] != user {
		t.Fatalf("read database/static-roles/svc-app: %v %v", role, err)
	}
	if strings.Contains(fmt.Sprint(role.Data), pw1) {
		t.Error("the static role read shows the password")
	}
	list, err := root.Logical().List("database/static-roles")
	if err != nil || list == nil || len(list.Data["keys"].([]any)) != 1 {
		t.Errorf("list database/static-roles: %v %v", list, err)
	}

	rotateRole(t, root, "svc-app")
	_, pw2, _ := staticCreds(t, root, "svc-app")
	locked(t, db, user, pw1)
	logsIn(t, db, user, pw2)

	// Alternating: the credentials read before a rotation work until the
	// next one.
	altUser, _ := staticUser(t, db)
	db.DropRoleAtEnd(t, altUser+"_b")
	if _, err := root.Logical().Write("database/static-roles/svc-alt", map[string]any{
		"db_name": "ml", "username": altUser, "rotation_period": 3600, "rotation_strategy": "alternating",
	}); err != nil {
		t.Fatalf("write an alternating static role: %v", err)
	}
	a1, apw1, data := staticCreds(t, root, "svc-alt")
	if a1 != altUser || data["rotation_strategy"] != "alternating" {
		t.Fatalf("alternating static-creds: %v", data)
	}
	rotateRole(t, root, "svc-alt")
	a2, apw2, _ := staticCreds(t, root, "svc-alt")
	if a2 != altUser+"_b" {
		t.Fatalf("after a rotation the credentials are %s's, want the twin's", a2)
	}
	logsIn(t, db, a1, apw1)
	logsIn(t, db, a2, apw2)
	rotateRole(t, root, "svc-alt")
	a3, apw3, _ := staticCreds(t, root, "svc-alt")
	if a3 != altUser {
		t.Fatalf("after two rotations the credentials are %s's", a3)
	}
	locked(t, db, a1, apw1)
	logsIn(t, db, a2, apw2)
	logsIn(t, db, a3, apw3)

	// Bad input: 400s that say why, without a password.
	other, otherPW := staticUser(t, db)
	for name, body := range map[string]map[string]any{
		"rotation_period must be 5 seconds or more":      {"db_name": "ml", "username": other, "rotation_period": "4s"},
		"exclude each other":                             {"db_name": "ml", "username": other, "rotation_period": 60, "rotation_schedule": "0 * * * *"},
		`invalid rotation_schedule "* * *"`:              {"db_name": "ml", "username": other, "rotation_schedule": "* * *"},
		`database "nope" does not exist`:                 {"db_name": "nope", "username": other, "rotation_period": 60},
		"one of rotation_period or rotation_schedule is": {"db_name": "ml", "username": other},
	} {
		_, err := root.Logical().Write("database/static-roles/svc-bad", body)
		re := wantStatus(t, name, err, 400)
		if msg := strings.Join(re.Errors, " "); !strings.Contains(msg, name) || strings.Contains(msg, otherPW) || strings.Contains(msg, adminPW) {
			t.Errorf("%s: %v", name, re.Errors)
		}
	}
	_, err = root.Logical().Write("database/static-roles/other", map[string]any{"db_name": "ml", "username": other, "rotation_period": 60})
	if re := wantStatus(t, "a static role not in allowed_roles", err, 400); !strings.Contains(re.Error(), `"other" is not an allowed role`) {
		t.Errorf("not allowed: %v", re)
	}
	logsIn(t, db, other, otherPW)

	// A restart keeps the roles and their passwords.
	if tg.Restart == nil {
		return
	}
	tg.Restart(t)
	c := vaultClient(t, tg)
	for _, k := range tg.Keys {
		if _, err := c.Sys().Unseal(k); err != nil {
			t.Fatalf("unseal: %v", err)
		}
	}
	if _, pw, _ := staticCreds(t, c, "svc-app"); pw != pw2 {
		t.Error("the password changed across a restart long before its rotation")
	}
	logsIn(t, db, user, pw2)
	rotateRole(t, c, "svc-app")
	_, pw3, _ := staticCreds(t, c, "svc-app")
	locked(t, db, user, pw2)
	logsIn(t, db, user, pw3)
}
