package database

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// readerRole creates a read-only user valid until its lease ends.
const readerRole = `{"db_name":"ml","default_ttl":"1h","max_ttl":"3h","creation_statements":[
	"CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'",
	"GRANT SELECT ON ALL TABLES IN SCHEMA public TO \"{{name}}\""]}`

// TestRoles writes, reads, lists and deletes a role, and refuses bad ones.
func TestRoles(t *testing.T) {
	e := newEngine(t)
	e.refused(logical.ListOperation, "roles/", "", 404, "")
	e.must(logical.UpdateOperation, "roles/reader", readerRole)
	got := e.must(logical.ReadOperation, "roles/reader", "").Data
	for k, want := range map[string]string{
		"db_name": "ml", "default_ttl": "3600", "max_ttl": "10800", "credential_type": "password",
		"renew_statements": "[]", "revocation_statements": "[]", "rollback_statements": "[]",
	} {
		if fmt.Sprint(got[k]) != want {
			t.Errorf("%s = %v, want %s", k, got[k], want)
		}
	}
	if c := got["creation_statements"].([]string); len(c) != 2 || !strings.HasPrefix(c[1], "GRANT SELECT") {
		t.Errorf("creation_statements = %q", c)
	}
	// An update keeps what it does not give.
	e.must(logical.UpdateOperation, "roles/reader", `{"revocation_statements":"DROP ROLE \"{{name}}\""}`)
	got = e.must(logical.ReadOperation, "roles/reader", "").Data
	if len(got["creation_statements"].([]string)) != 2 || fmt.Sprint(got["revocation_statements"]) != `[DROP ROLE "{{name}}"]` {
		t.Errorf("after update: %v", got)
	}
	if keys := e.must(logical.ListOperation, "roles/", "").Data["keys"]; fmt.Sprint(keys) != "[reader]" {
		t.Errorf("list = %v", keys)
	}
	e.must(logical.DeleteOperation, "roles/reader", "")
	e.refused(logical.ReadOperation, "roles/reader", "", 404, "")

	for _, tc := range []struct{ name, body, want string }{
		{"no db_name", `{"creation_statements":"CREATE ROLE \"{{name}}\""}`, "db_name is required"},
		{"no creation statements", `{"db_name":"ml"}`, "creation_statements are required"},
		{"ttl above max", `{"db_name":"ml","creation_statements":"x","default_ttl":"2h","max_ttl":"1h"}`, "default_ttl cannot be greater than max_ttl"},
		{"credential type", `{"db_name":"ml","creation_statements":"x","credential_type":"rsa_private_key"}`, "credential_type"},
	} {
		t.Run(tc.name, func(t *testing.T) { e.refused(logical.UpdateOperation, "roles/bad", tc.body, 400, tc.want) })
	}
}

// TestCreds issues a user, logs in as it, renews its lease and revokes it
// while it has a session open.
func TestCreds(t *testing.T) {
	e := newEngine(t)
	e.db.Exec(t, "CREATE TABLE features (id int)", "INSERT INTO features VALUES (1)")
	e.configure("ml", "")
	e.must(logical.UpdateOperation, "roles/reader", readerRole)

	user, pw, s := e.creds("reader")
	if !regexp.MustCompile(`^v-token-reader-[A-Za-z0-9]{20}-\d+$`).MatchString(user) {
		t.Errorf("user name %q is not of the default template's shape", user)
	}
	if len(pw) != passwordLength {
		t.Errorf("password of %d characters, want %d", len(pw), passwordLength)
	}
	if s.TTL != time.Hour || s.MaxTTL != 3*time.Hour || !s.Renewable {
		t.Errorf("secret TTL %s max %s renewable %v, want 1h, 3h, true", s.TTL, s.MaxTTL, s.Renewable)
	}
	for k, v := range s.InternalData {
		noPassword(t, fmt.Sprint(k, v), pw)
	}
	if err := e.db.RunAs(t, user, pw, "SELECT * FROM features"); err != nil {
		t.Fatalf("the issued user cannot read what its role grants: %v", err)
	}
	if err := e.db.RunAs(t, user, pw, "INSERT INTO features VALUES (2)"); err == nil {
		t.Fatal("the issued user can write, which its role does not grant")
	}
	if got, want := e.db.ValidUntil(t, user), e.start.Add(time.Hour); !got.Equal(want.Truncate(time.Second)) {
		t.Errorf("VALID UNTIL = %v, want %v", got, want)
	}

	// Renewal half an hour later moves VALID UNTIL with the lease...
	e.clk.Advance(30 * time.Minute)
	resp, err := e.lease(logical.RenewOperation, s, 2*time.Hour)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if resp.Secret == nil || resp.Secret.TTL != 2*time.Hour {
		t.Fatalf("renew answered %+v, want a 2h TTL", resp.Secret)
	}
	if got, want := e.db.ValidUntil(t, user), e.clk.Now().Add(2*time.Hour).Truncate(time.Second); !got.Equal(want) {
		t.Errorf("after renewal VALID UNTIL = %v, want %v", got, want)
	}
	// ...but not past max_ttl from issue.
	e.clk.Advance(2 * time.Hour)
	resp, err = e.lease(logical.RenewOperation, s, 2*time.Hour)
	if err != nil {
		t.Fatalf("renew: %v", err)
	}
	if resp.Secret.TTL != 30*time.Minute {
		t.Errorf("renewal near max_ttl granted %s, want the 30m left", resp.Secret.TTL)
	}
	if got, want := e.db.ValidUntil(t, user), e.start.Add(3*time.Hour).Truncate(time.Second); !got.Equal(want) {
		t.Errorf("VALID UNTIL = %v, want the lease's max %v", got, want)
	}

	session, err := e.db.ConnectAs(t.Context(), user, pw)
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(context.Background())
	if _, err := e.lease(logical.RevokeOperation, s, 0); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	if _, err := session.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Error("a session of the revoked user still runs queries")
	}
	if err := e.db.RunAs(t, user, pw, "SELECT 1"); err == nil {
		t.Error("the revoked user can still log in")
	}
	if e.db.RoleExists(t, user) {
		t.Error("the revoked user still exists")
	}
	if _, err := e.lease(logical.RevokeOperation, s, 0); err != nil {
		t.Errorf("a second revocation: %v, want none", err)
	}

	// With the role gone, revocation uses the statements kept with the
	// lease; renewal is refused.
	_, _, s2 := e.creds("reader")
	e.must(logical.DeleteOperation, "roles/reader", "")
	if _, err := e.lease(logical.RenewOperation, s2, 0); err == nil {
		t.Error("a lease of a deleted role was renewed")
	}
	if _, err := e.lease(logical.RevokeOperation, s2, 0); err != nil {
		t.Errorf("revoking a lease of a deleted role: %v", err)
	}
	if e.db.RoleExists(t, s2.InternalData[internalUsername].(string)) {
		t.Error("the user of a deleted role survived revocation")
	}
}

// TestCredsRefused checks the 400s of creds/<role>; a failed creation
// leaves no user and no password in the message.
func TestCredsRefused(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", `"allowed_roles":["train-*"],"username_template":"bad-{{.RoleName}}-{{random 8 | lowercase}}"`)
	e.must(logical.UpdateOperation, "roles/reader", readerRole)
	e.refused(logical.ReadOperation, "creds/reader", "", 400, `"reader" is not an allowed role`)
	e.refused(logical.ReadOperation, "creds/nobody", "", 400, "unknown role: nobody")
	e.must(logical.UpdateOperation, "roles/orphan", `{"db_name":"gone","creation_statements":"CREATE ROLE \"{{name}}\""}`)
	e.refused(logical.ReadOperation, "creds/orphan", "", 400, `database "gone" does not exist`)

	e.must(logical.UpdateOperation, "roles/train-bad", `{"db_name":"ml","creation_statements":[
		"CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}'",
		"GRANT SELEKT ON ALL TABLES IN SCHEMA public TO \"{{name}}\""]}`)
	msg := e.refused(logical.ReadOperation, "creds/train-bad", "", 400, `creation statement 2 ("GRANT SELEKT`)
	if !strings.Contains(msg, "SQLSTATE 42601") {
		t.Errorf("the message lacks the database's reason: %s", msg)
	}
	e.must(logical.UpdateOperation, "roles/train-leak", `{"db_name":"ml","creation_statements":[
		"CREATE ROLE \"{{name}}\" LOGIN", "SELECT '{{password}}'::int"]}`)
	msg = e.refused(logical.ReadOperation, "creds/train-leak", "", 400, "[redacted]")
	noPassword(t, msg, e.db.Password)
	if n := e.db.QueryString(t, `SELECT count(*)::text FROM pg_roles WHERE rolname LIKE 'bad-train-%'`); n != "0" {
		t.Errorf("%s users were left behind by failed creations", n)
	}
}

// TestUsernameTemplate issues a user named by a custom template.
func TestUsernameTemplate(t *testing.T) {
	e := newEngine(t)
	e.configure("ml", `"username_template":"{{ printf \"ml_%s_%s\" (.RoleName | replace \"-\" \"_\" | uppercase) (random 6 | lowercase) }}"`)
	e.must(logical.UpdateOperation, "roles/feature-store", readerRole)
	user, pw, _ := e.creds("feature-store")
	if !regexp.MustCompile(`^ml_FEATURE_STORE_[a-z0-9]{6}$`).MatchString(user) {
		t.Errorf("user name %q does not follow the template", user)
	}
	if err := e.db.RunAs(t, user, pw, "SELECT 1"); err != nil {
		t.Errorf("the user cannot log in: %v", err)
	}
}

func TestUsernameFunctions(t *testing.T) {
	long := strings.Repeat("é", 10) // 20 bytes
	for _, tc := range []struct {
		tmpl, display, want string
	}{
		{`{{.DisplayName | truncate 5}}`, long, "éé"},
		{`{{.DisplayName}}`, `a"b'c\d e`, "a-b-c-d-e"},
		{`{{replace "a" "b" .DisplayName | uppercase}}`, "banana", "BBNBNB"},
	} {
		u, err := parseUsernameTemplate(tc.tmpl, time.Now)
		if err != nil {
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
		got, err := u.generate(usernameData{DisplayName: tc.display, RoleName: "r"})
		if err != nil || got != tc.want {
			t.Errorf("%s on %q = %q, %v; want %q", tc.tmpl, tc.display, got, err, tc.want)
		}
	}
	short, _ := truncateSHA256(12, "abcdefghijklmnop")
	if len(short) != 12 || !strings.HasPrefix(short, "abcd") || short[4:] == "efghijkl" {
		t.Errorf("truncate_sha256 = %q", short)
	}
	u, _ := parseUsernameTemplate("", time.Now)
	got, err := u.generate(usernameData{DisplayName: strings.Repeat("d", 40), RoleName: strings.Repeat("r", 40)})
	if err != nil || len(got) > 63 || !strings.HasPrefix(got, "v-dddddddd-rrrrrrrr-") {
		t.Errorf("default template = %q (%d bytes), %v", got, len(got), err)
	}
}
