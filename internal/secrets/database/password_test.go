package database

import (
	"encoding/json"
	"testing"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// longPolicy makes passwords unlike the built-in generator's: 40
// characters, with at least 3 digits and 2 of "-_~".
const longPolicy = `length = 40
rule "charset" { charset = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ" }
rule "charset" {
  charset   = "0123456789"
  min-chars = 3
}
rule "charset" {
  charset   = "-_~"
  min-chars = 2
}
`

// storedAdminPassword is the admin password of config/<name> in storage.
func (e *engine) storedAdminPassword(name string) string {
	e.t.Helper()
	var c configEntry
	found, err := framework.GetJSON(e.t.Context(), e.s, configPrefix+name, &c)
	if err != nil || !found {
		e.t.Fatalf("config/%s: %v (found %v)", name, err, found)
	}
	return c.Password.Reveal()
}

// TestPasswordPolicy: a connection's password_policy must exist when it
// is written, and then makes every password the engine sets: issued
// users', static roles' (at creation and rotation) and the admin's. Each
// logs in for real. When the policy is deleted, what needs a password is
// refused with a 400 naming it, until the connection names no policy and
// the built-in generator takes over again; a creds request refused so
// creates no user and records no intent.
func TestPasswordPolicy(t *testing.T) {
	e := newEngine(t)
	admin, adminPW := e.db.CreateRole(t, "CREATEROLE")
	withPolicy := e.configBody(admin, adminPW, `"password_policy":"long"`)
	msg := e.refused(logical.UpdateOperation, "config/ml", withPolicy, 400, `password_policy "long" of database "ml" does not exist`)
	noPassword(t, msg, adminPW)
	e.refused(logical.ReadOperation, "config/ml", "", 404, "")

	long := e.setPasswordPolicy("long", longPolicy)
	fromLongPolicy := func(what, pw string) {
		t.Helper()
		if err := long.Check(pw); err != nil {
			t.Fatalf("%s is not from the policy: %v", what, err)
		}
	}
	e.must(logical.UpdateOperation, "config/ml", withPolicy)
	if got := e.must(logical.ReadOperation, "config/ml", "").Data["password_policy"]; got != "long" {
		t.Fatalf("password_policy reads %v", got)
	}

	// Issued users.
	e.must(logical.UpdateOperation, "roles/reader", `{"db_name":"ml","creation_statements":["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"]}`)
	user, pw, _ := e.creds("reader")
	fromLongPolicy("an issued user's password", pw)
	if err := e.db.RunAs(t, user, pw, "SELECT 1"); err != nil {
		t.Fatalf("the issued user cannot log in: %v", err)
	}

	// A static role's user, at creation and at rotation.
	staticUser, staticPW := e.staticUser()
	e.db.Exec(t, `GRANT "`+staticUser+`" TO "`+admin+`" WITH ADMIN OPTION`)
	e.staticRole("svc", staticUser, `"rotation_period":"1h"`)
	_, pw1, _ := e.staticCreds("svc")
	fromLongPolicy("a static role's first password", pw1)
	e.works(staticUser, pw1)
	e.fails(staticUser, staticPW)
	e.must(logical.UpdateOperation, "rotate-role/svc", "")
	_, pw2, _ := e.staticCreds("svc")
	fromLongPolicy("a static role's rotated password", pw2)
	e.works(staticUser, pw2)
	e.fails(staticUser, pw1)

	// The admin.
	e.must(logical.UpdateOperation, "rotate-root/ml", "")
	rootPW := e.storedAdminPassword("ml")
	fromLongPolicy("the admin's rotated password", rootPW)
	if err := e.db.RunAs(t, admin, rootPW, "SELECT 1"); err != nil {
		t.Fatalf("the admin cannot log in with its rotated password: %v", err)
	}

	// The policy is deleted: nothing that needs a password works, and
	// the configuration cannot be written naming it.
	e.setPasswordPolicy("long", "")
	const gone = `password_policy "long" of database "ml" does not exist`
	intents := len(e.intents())
	e.refused(logical.ReadOperation, "creds/reader", "", 400, gone)
	if n := len(e.intents()); n != intents {
		t.Errorf("a request refused for its policy left %d intent records", n-intents)
	}
	e.refused(logical.UpdateOperation, "rotate-role/svc", "", 400, gone)
	e.refused(logical.UpdateOperation, "rotate-root/ml", "", 400, gone)
	e.refused(logical.UpdateOperation, "config/ml", `{"allowed_roles":"*"}`, 400, gone)
	e.works(staticUser, pw2)

	// Without a policy the built-in generator makes the passwords again.
	e.must(logical.UpdateOperation, "config/ml", `{"password_policy":""}`)
	resp := e.must(logical.ReadOperation, "config/ml", "")
	raw, _ := json.Marshal(resp.Data)
	noPassword(t, string(raw), rootPW, adminPW)
	if resp.Data["password_policy"] != "" {
		t.Fatalf("password_policy reads %v", resp.Data["password_policy"])
	}
	user, pw, _ = e.creds("reader")
	if len(pw) != passwordLength {
		t.Fatalf("the built-in generator made %d characters", len(pw))
	}
	if err := e.db.RunAs(t, user, pw, "SELECT 1"); err != nil {
		t.Fatalf("the issued user cannot log in: %v", err)
	}
}
