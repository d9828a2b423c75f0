package acceptance

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/passwordpolicy"
)

// pinPolicy makes 12-digit passwords; alnumPolicy 32 characters of
// letters and digits with at least 4 digits, and a '.' or '~'.
const (
	pinPolicy   = `{"length": 12, "rule": [{"charset": {"charset": "0123456789"}}]}`
	alnumPolicy = `length = 32
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
}
rule "charset" {
  charset   = "0123456789"
  min-chars = 4
}
rule "charset" {
  charset   = ".~"
  min-chars = 1
}
`
)

// policyProblem reports what keeps pw from being a password of the policy
// text, "" if nothing.
func policyProblem(policy, pw string) string {
	p, err := passwordpolicy.Parse(policy)
	if err == nil {
		err = p.Check(pw)
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// testPasswordPolicies is sys/policies/password through the official
// client (write, read, list, generate, delete, refusals, the ACL), and
// the database engine making its users' passwords with one, users that
// log in.
func testPasswordPolicies(t *testing.T, tg *target) {
	root := vaultClient(t, tg)
	for name, text := range map[string]string{"pin": pinPolicy, "alnum": alnumPolicy} {
		if _, err := root.Logical().Write("sys/policies/password/"+name, map[string]any{"policy": text}); err != nil {
			t.Fatalf("write %s: %v", name, err)
		}
		s, err := root.Logical().Read("sys/policies/password/" + name)
		if err != nil || s == nil || s.Data["policy"] != text {
			t.Fatalf("read %s: %v %+v", name, err, s)
		}
	}
	list, err := root.Logical().List("sys/policies/password")
	if err != nil || list == nil || fmt.Sprint(list.Data["keys"]) != "[alnum pin]" {
		t.Fatalf("list: %v %+v", err, list)
	}
	s, err := root.Logical().Read("sys/policies/password/pin/generate")
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := s.Data["password"].(string); len(pw) != 12 || strings.Trim(pw, "0123456789") != "" {
		t.Errorf("pin generated %q", pw)
	}
	for range 20 {
		s, err := root.Logical().Read("sys/policies/password/alnum/generate")
		if err != nil {
			t.Fatal(err)
		}
		if problem := policyProblem(alnumPolicy, s.Data["password"].(string)); problem != "" {
			t.Fatalf("alnum generated %q: %s", s.Data["password"], problem)
		}
	}

	// Refusals: 400s that name the problem; unknown names read as
	// nothing (404), as in Vault.
	for policy, want := range map[string]string{
		"length = 20": `at least one rule "charset" is required`,
		"length = 200\nrule \"charset\" { charset = \"ab\" }":                  "length must be from 4 to 100, not 200",
		"length = 4\nrule \"charset\" { charset = \"ab\" min-chars = 5 }":      "the rules require at least 5 characters",
		"length = 20\nrule \"charset\" { charset = \"\" }":                     "charset is empty",
		"length = 20\nrule \"charset\" { charset = \"ab\" }\nlowercase = true": `unknown key "lowercase"`,
	} {
		_, err := root.Logical().Write("sys/policies/password/bad", map[string]any{"policy": policy})
		re := wantStatus(t, "write "+policy, err, 400)
		if !slices.ContainsFunc(re.Errors, func(e string) bool { return strings.Contains(e, want) }) {
			t.Errorf("write %q: errors %q, want one containing %q", policy, re.Errors, want)
		}
	}
	for _, p := range []string{"sys/policies/password/bad", "sys/policies/password/bad/generate"} {
		if s, err := root.Logical().Read(p); err != nil || s != nil {
			t.Errorf("read %s: %v %+v", p, err, s)
		}
	}

	// The paths need a grant, as any sys path; no sudo is needed.
	if err := root.Sys().PutPolicy("pin-only", `path "sys/policies/password/pin/generate" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := root.Auth().Token().Create(&vault.TokenCreateRequest{Policies: []string{"pin-only"}})
	if err != nil {
		t.Fatal(err)
	}
	app, _ := root.Clone()
	app.SetToken(tok.Auth.ClientToken)
	if _, err := app.Logical().Read("sys/policies/password/pin/generate"); err != nil {
		t.Errorf("generate with a grant: %v", err)
	}
	_, err = app.Logical().Read("sys/policies/password/alnum/generate")
	wantStatus(t, "generate without a grant", err, 403)
	_, err = app.Logical().Write("sys/policies/password/pin", map[string]any{"policy": alnumPolicy})
	wantStatus(t, "write without a grant", err, 403)

	// The database engine: an unknown policy is refused, a known one
	// makes the users' passwords.
	db, admin, adminPW := setupDatabase(t, root)
	_, err = root.Logical().Write("database/config/ml", map[string]any{"password_policy": "nope"})
	re := wantStatus(t, "a connection naming an unknown policy", err, 400)
	if !strings.Contains(strings.Join(re.Errors, " "), `password_policy "nope" of database "ml" does not exist`) {
		t.Errorf("errors %q", re.Errors)
	}
	if _, err := root.Logical().Write("database/config/ml", map[string]any{"password_policy": "alnum"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := root.Logical().Read("database/config/ml")
	if err != nil || cfg.Data["password_policy"] != "alnum" {
		t.Fatalf("config read: %v %+v", err, cfg)
	}
	user, pw, _ := issue(t, root, db, "reader")
	if problem := policyProblem(alnumPolicy, pw); problem != "" {
		t.Fatalf("an issued password %q: %s", pw, problem)
	}
	if err := db.RunAs(t, user, pw, "SELECT * FROM features"); err != nil {
		t.Fatalf("the issued user cannot read: %v", err)
	}
	if err := db.RunAs(t, admin, adminPW, "SELECT 1"); err != nil {
		t.Fatalf("the admin: %v", err)
	}

	// Deleting the policy stops the issues until the connection names
	// another.
	if _, err := root.Logical().Delete("sys/policies/password/alnum"); err != nil {
		t.Fatal(err)
	}
	_, err = root.Logical().Read("database/creds/reader")
	wantStatus(t, "creds from a deleted policy", err, 400)
	if _, err := root.Logical().Write("database/config/ml", map[string]any{"password_policy": "pin"}); err != nil {
		t.Fatal(err)
	}
	if _, pw, _ := issue(t, root, db, "reader"); len(pw) != 12 || strings.Trim(pw, "0123456789") != "" {
		t.Errorf("a password from pin: %q", pw)
	}
	if err := root.Sys().RevokePrefix("database/creds/reader"); err != nil {
		t.Fatal(err)
	}
	if db.RoleExists(t, user) {
		t.Error("the issued user outlived its lease")
	}
}
