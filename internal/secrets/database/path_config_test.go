package database

import (
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// TestConfig writes, reads, lists, changes and deletes a connection; the
// password is never returned.
func TestConfig(t *testing.T) {
	e := newEngine(t)
	e.refused(logical.ListOperation, "config/", "", 404, "")
	e.configure("ml", `"allowed_roles":["train-*","eval"],"max_open_connections":3,"max_connection_lifetime":"5m"`)

	resp := e.must(logical.ReadOperation, "config/ml", "")
	raw, _ := json.Marshal(resp.Data)
	noPassword(t, string(raw), e.db.Password)
	details := resp.Data["connection_details"].(map[string]any)
	for k, want := range map[string]any{
		"connection_url": e.db.TemplateURL(), "username": e.db.User,
		"max_open_connections": 3, "max_idle_connections": 3, "max_connection_lifetime": "5m0s",
	} {
		if details[k] != want {
			t.Errorf("connection_details.%s = %v, want %v", k, details[k], want)
		}
	}
	if _, ok := details["password"]; ok {
		t.Error("connection_details has a password")
	}
	if resp.Data["plugin_name"] != "postgresql-database-plugin" || resp.Data["verify_connection"] != true {
		t.Errorf("read: %v", resp.Data)
	}
	if got := fmt.Sprint(resp.Data["allowed_roles"]); got != "[train-* eval]" {
		t.Errorf("allowed_roles = %s", got)
	}

	// An update keeps what it does not give, the password included: the
	// connection is verified with it again.
	e.must(logical.UpdateOperation, "config/ml", `{"allowed_roles":"*"}`)
	resp = e.must(logical.ReadOperation, "config/ml", "")
	if got := fmt.Sprint(resp.Data["allowed_roles"]); got != "[*]" {
		t.Errorf("after update allowed_roles = %s", got)
	}
	if d := resp.Data["connection_details"].(map[string]any); d["max_open_connections"] != 3 {
		t.Errorf("an update lost max_open_connections: %v", d)
	}
	e.must(logical.UpdateOperation, "reset/ml", "")

	keys := e.must(logical.ListOperation, "config/", "").Data["keys"]
	if fmt.Sprint(keys) != "[ml]" {
		t.Errorf("list = %v", keys)
	}
	e.must(logical.DeleteOperation, "config/ml", "")
	e.refused(logical.ReadOperation, "config/ml", "", 404, "")
	e.refused(logical.UpdateOperation, "reset/ml", "", 400, `database "ml" does not exist`)
}

// TestConfigRefused checks the 400s of a bad configuration, none of which
// repeats the password.
func TestConfigRefused(t *testing.T) {
	e := newEngine(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "postgres://{{username}}:{{password}}@127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + "/x?sslmode=disable"
	ln.Close()
	wrongPW := "Wrong-" + e.db.Password
	for _, tc := range []struct {
		name, body, want string
	}{
		{"unreachable", fmt.Sprintf(`{"plugin_name":"postgresql-database-plugin","connection_url":%q,"username":"u","password":%q}`, closed, wrongPW), "error verifying the connection"},
		{"bad credentials", e.configBody(e.db.User, wrongPW, ""), "password authentication failed"},
		{"unknown plugin", `{"plugin_name":"mysql-database-plugin","connection_url":"x"}`, `plugin_name "mysql-database-plugin" is not supported`},
		{"no plugin", `{"connection_url":"x"}`, "plugin_name is required"},
		{"no URL", `{"plugin_name":"postgresql-database-plugin"}`, "connection_url is required"},
		{"unknown password policy", e.configBody(e.db.User, e.db.Password, `"password_policy":"strong"`), `password_policy "strong" of database "bad" does not exist`},
		{"plugin version", e.configBody(e.db.User, e.db.Password, `"plugin_version":"v1.2.3"`), "plugin_version"},
		{"template syntax", e.configBody(e.db.User, e.db.Password, `"username_template":"{{.RoleName"`), "invalid username_template"},
		{"template too long", e.configBody(e.db.User, e.db.Password, `"username_template":"{{random 64}}"`), "limit is 63"},
		{"template quote", e.configBody(e.db.User, e.db.Password, `"username_template":"a\"b"`), "quote"},
		{"negative pool", e.configBody(e.db.User, e.db.Password, `"max_open_connections":-1`), "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := e.refused(logical.UpdateOperation, "config/bad", tc.body, 400, tc.want)
			noPassword(t, msg, wrongPW, e.db.Password)
			e.refused(logical.ReadOperation, "config/bad", "", 404, "")
		})
	}

	// Without verification an unreachable database is stored; using it
	// fails with the driver's message, still without the password.
	e.must(logical.UpdateOperation, "config/later", fmt.Sprintf(
		`{"plugin_name":"postgresql-database-plugin","connection_url":%q,"username":"u","password":%q,"verify_connection":false,"allowed_roles":"r"}`, closed, wrongPW))
	e.must(logical.UpdateOperation, "roles/r", `{"db_name":"later","creation_statements":"CREATE ROLE \"{{name}}\""}`)
	msg := e.refused(logical.ReadOperation, "creds/r", "", 500, "connecting to the database")
	noPassword(t, msg, wrongPW)
}

// TestRotateRoot gives the admin user a new password: the old one stops
// working, the engine goes on working, and the password is never shown.
func TestRotateRoot(t *testing.T) {
	e := newEngine(t)
	admin, adminPW := e.db.CreateRole(t, "CREATEROLE")
	e.must(logical.UpdateOperation, "config/ml", e.configBody(admin, adminPW, ""))
	e.must(logical.UpdateOperation, "roles/reader", `{"db_name":"ml","creation_statements":["CREATE ROLE \"{{name}}\" LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'"]}`)
	before, beforePW, _ := e.creds("reader")

	e.must(logical.UpdateOperation, "rotate-root/ml", "")
	if err := e.db.RunAs(t, admin, adminPW, "SELECT 1"); err == nil {
		t.Fatal("the old admin password still works after rotate-root")
	}
	raw, err := e.s.Get(t.Context(), "config/ml")
	if err != nil {
		t.Fatal(err)
	}
	var stored configEntry
	if err := json.Unmarshal(raw, &stored); err != nil {
		t.Fatal(err)
	}
	newPW := stored.Password.Reveal()
	if newPW == "" || newPW == adminPW {
		t.Fatal("rotate-root stored no new password")
	}
	if err := e.db.RunAs(t, admin, newPW, "SELECT 1"); err != nil {
		t.Fatalf("the stored password does not work: %v", err)
	}
	read := e.must(logical.ReadOperation, "config/ml", "")
	out, _ := json.Marshal(read.Data)
	noPassword(t, string(out), newPW, adminPW)

	// Users issued before and after still work, through new connections.
	if err := e.db.RunAs(t, before, beforePW, "SELECT 1"); err != nil {
		t.Errorf("a user issued before the rotation: %v", err)
	}
	user, pw, _ := e.creds("reader")
	if err := e.db.RunAs(t, user, pw, "SELECT 1"); err != nil {
		t.Errorf("a user issued after the rotation: %v", err)
	}

	e.must(logical.UpdateOperation, "config/nopw", `{"plugin_name":"postgresql-database-plugin","connection_url":"postgres://x@127.0.0.1:1/x","verify_connection":false}`)
	e.refused(logical.UpdateOperation, "rotate-root/nopw", "", 400, "no username and password")
	e.refused(logical.UpdateOperation, "rotate-root/none", "", 400, "does not exist")
}

func TestParseStatements(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want string
	}{
		{"list", []string{"CREATE ROLE a", " ", "GRANT x TO a"}, "[CREATE ROLE a|GRANT x TO a]"},
		{"one string with semicolons", []string{"CREATE ROLE a; GRANT x TO a;"}, "[CREATE ROLE a; GRANT x TO a;]"},
		{"JSON array", []string{`["CREATE ROLE a","GRANT x TO a"]`}, "[CREATE ROLE a|GRANT x TO a]"},
		{"base64", []string{"Q1JFQVRFIFJPTEUgYQ=="}, "[CREATE ROLE a]"},
		{"empty", []string{""}, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := "[" + strings.Join(parseStatements(tc.in), "|") + "]"; got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestMaskURL(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://{{username}}:{{password}}@db:5432/app?sslmode=disable": "postgres://{{username}}:{{password}}@db:5432/app?sslmode=disable",
		"postgresql://admin:s3cr%40t@db/app":                               "postgresql://admin:*****@db/app",
		"postgres://admin:pw@db/app?x=a@b":                                 "postgres://admin:*****@db/app?x=a@b",
		"postgres://admin@db/app?password=hunter2&sslmode=disable":         "postgres://admin@db/app?password=*****&sslmode=disable",
		"host=db user=admin password=hunter2 dbname=app":                   "host=db user=admin password=***** dbname=app",
		"host=db password='hun ter2' dbname=app":                           "host=db password=***** dbname=app",
		"host=db user={{username}} password={{password}}":                  "host=db user={{username}} password={{password}}",
	} {
		if got := maskURL(in); got != want {
			t.Errorf("maskURL(%q) = %q, want %q", in, got, want)
		}
	}
}
