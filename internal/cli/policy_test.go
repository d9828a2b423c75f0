package cli

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// policyFake serves the sys/policies/acl endpoints as Vigil's server
// answers them (checked against `vigil server -dev`): a missing policy is
// a 404 with an empty errors list, bad text and the built-in policies are
// 400s.
type policyFake struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	policies map[string]string
	reqs     []policyRequest
}

type policyRequest struct {
	Method string
	URI    string // as sent: escaped path and query
	Body   map[string]any
}

func newPolicyFake(t *testing.T) *policyFake {
	t.Helper()
	p := &policyFake{t: t, policies: map[string]string{"default": `path "auth/token/lookup-self" { capabilities = ["read"] }`}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *policyFake) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	rq := policyRequest{Method: r.Method, URI: r.RequestURI}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &rq.Body); err != nil {
			p.t.Errorf("%s %s: body is not a JSON object: %s", r.Method, r.RequestURI, b)
		}
	}
	p.reqs = append(p.reqs, rq)
	if r.Header.Get("X-Vault-Request") != "true" {
		p.t.Errorf("%s %s without X-Vault-Request", r.Method, r.RequestURI)
	}
	if r.Header.Get("X-Vault-Token") != rootToken {
		errs(w, 403, "permission denied")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if path == "sys/policies/acl" && r.Method == http.MethodGet && r.URL.Query().Get("list") == "true" {
		keys := append(keysOf(p.policies), "root")
		sort.Strings(keys)
		write(w, 200, envelope(map[string]any{"keys": keys}))
		return
	}
	name, ok := strings.CutPrefix(path, "sys/policies/acl/")
	if !ok || name == "" {
		errs(w, 404, "no handler for route \""+path+"\". route entry not found.")
		return
	}
	name = strings.ToLower(name)
	switch r.Method {
	case http.MethodGet:
		text, ok := p.policies[name]
		if !ok {
			errs(w, 404)
			return
		}
		write(w, 200, envelope(map[string]any{"name": name, "policy": text, "version": 1}))
	case http.MethodPut:
		text, _ := rq.Body["policy"].(string)
		switch {
		case text == "":
			errs(w, 400, "missing policy")
		case name == "root":
			errs(w, 400, `policy is immutable: cannot update "root" policy`)
		case strings.Contains(text, "bogus"):
			errs(w, 400, `failed to parse policy: line 1, column 12: path "x": capabilities: invalid capability "bogus"`)
		default:
			p.policies[name] = text
			write(w, 204, nil)
		}
	case http.MethodDelete:
		if name == "default" || name == "root" {
			errs(w, 400, `policy is immutable: cannot delete "`+name+`" policy`)
			return
		}
		delete(p.policies, name)
		write(w, 204, nil)
	default:
		errs(w, 405, "unsupported operation")
	}
}

func (p *policyFake) requests() []policyRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]policyRequest(nil), p.reqs...)
}

func (p *policyFake) last(t *testing.T) policyRequest {
	t.Helper()
	reqs := p.requests()
	if len(reqs) == 0 {
		t.Fatal("no request was sent")
	}
	return reqs[len(reqs)-1]
}

// run runs the CLI against the fake with the root token.
func (p *policyFake) run(t *testing.T, stdin string, want int, args ...string) result {
	t.Helper()
	r := run(t, nil, runOpts{stdin: stdin, env: map[string]string{"VIGIL_ADDR": p.srv.URL}}, args...)
	if r.code != want {
		t.Fatalf("vigil %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const appPolicy = "path \"secret/data/app/*\" {\n  capabilities = [\"read\", \"list\"]\n}\n"

func TestPolicyWriteReadListDelete(t *testing.T) {
	t.Parallel()
	p := newPolicyFake(t)
	file := writeFile(t, "app.hcl", appPolicy)

	// write from a file: the name is trimmed and lowercased, as Vault does.
	r := p.run(t, "", 0, "policy", "write", " App-RO ", file)
	if r.stdout != "Success! Uploaded policy: app-ro\n" || r.stderr != "" {
		t.Errorf("write: stdout %q stderr %q", r.stdout, r.stderr)
	}
	w := p.last(t)
	if w.Method != http.MethodPut || w.URI != "/v1/sys/policies/acl/app-ro" || len(w.Body) != 1 || w.Body["policy"] != appPolicy {
		t.Errorf("write request = %+v", w)
	}

	// write from stdin, with a name that needs escaping.
	const ops = `path "sys/mounts" { capabilities = ["read"] }`
	r = p.run(t, ops, 0, "policy", "write", "ops team", "-")
	if r.stdout != "Success! Uploaded policy: ops team\n" {
		t.Errorf("write -: %q", r.stdout)
	}
	if w := p.last(t); w.URI != "/v1/sys/policies/acl/ops%20team" || w.Body["policy"] != ops {
		t.Errorf("write - request = %+v", w)
	}
	// Other formats print nothing on success, as for every command here.
	if r := p.run(t, ops, 0, "policy", "write", "-format=json", "ops2", "-"); r.stdout != "" {
		t.Errorf("write -format=json printed %q", r.stdout)
	}

	// list: one name per line, no header (Vault's `policy list`).
	r = p.run(t, "", 0, "policy", "list")
	if r.stdout != "app-ro\ndefault\nops team\nops2\nroot\n" {
		t.Errorf("list:\n%s", r.stdout)
	}
	if l := p.last(t); l.Method != http.MethodGet || l.URI != "/v1/sys/policies/acl?list=true" {
		t.Errorf("list request = %+v", l)
	}
	r = p.run(t, "", 0, "policy", "list", "-format=json")
	var names []string
	if err := json.Unmarshal([]byte(r.stdout), &names); err != nil || strings.Join(names, ",") != "app-ro,default,ops team,ops2,root" {
		t.Errorf("list json %v:\n%s", err, r.stdout)
	}
	r = p.run(t, "", 0, "policy", "list", "-format=yaml")
	if r.stdout != "- app-ro\n- default\n- ops team\n- ops2\n- root\n" {
		t.Errorf("list yaml:\n%s", r.stdout)
	}

	// read: the text as stored, trimmed, with one newline.
	r = p.run(t, "", 0, "policy", "read", "APP-RO")
	if r.stdout != appPolicy || r.stderr != "" {
		t.Errorf("read: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if g := p.last(t); g.Method != http.MethodGet || g.URI != "/v1/sys/policies/acl/app-ro" {
		t.Errorf("read request = %+v", g)
	}
	r = p.run(t, "", 0, "policy", "read", "ops team")
	if r.stdout != ops+"\n" {
		t.Errorf("read ops: %q", r.stdout)
	}
	// -format=json is {"policy": TEXT} and nothing else (Vault's CLI).
	r = p.run(t, "", 0, "policy", "read", "-format=json", "app-ro")
	var obj map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &obj); err != nil || len(obj) != 1 || obj["policy"] != appPolicy {
		t.Errorf("read json %v:\n%s", err, r.stdout)
	}
	r = p.run(t, "", 0, "policy", "read", "-format=yaml", "app-ro")
	var y map[string]string
	if err := yaml.Unmarshal([]byte(r.stdout), &y); err != nil || len(y) != 1 || y["policy"] != appPolicy {
		t.Errorf("read yaml %v:\n%s", err, r.stdout)
	}
	if r := p.run(t, "", 0, "policy", "read", "-field=policy", "app-ro"); r.stdout != appPolicy {
		t.Errorf("read -field=policy %q", r.stdout)
	}

	// delete, then the policy is gone.
	r = p.run(t, "", 0, "policy", "delete", "App-RO")
	if r.stdout != "Success! Deleted policy: app-ro\n" {
		t.Errorf("delete: %q", r.stdout)
	}
	if d := p.last(t); d.Method != http.MethodDelete || d.URI != "/v1/sys/policies/acl/app-ro" || d.Body != nil {
		t.Errorf("delete request = %+v", d)
	}
	r = p.run(t, "", 2, "policy", "read", "app-ro")
	if r.stdout != "" || r.stderr != "No policy named: app-ro\n" {
		t.Errorf("read missing: stdout %q stderr %q", r.stdout, r.stderr)
	}
	// Deleting a missing policy succeeds, as on the server.
	p.run(t, "", 0, "policy", "delete", "app-ro")
}

func TestPolicyErrors(t *testing.T) {
	t.Parallel()
	good := writeFile(t, "good.hcl", appPolicy)
	empty := writeFile(t, "empty.hcl", " \n\n")
	missing := filepath.Join(t.TempDir(), "missing.hcl")
	dir := t.TempDir()

	tests := []struct {
		name      string
		args      []string
		stdin     string
		env       map[string]string
		code      int
		stderrHas []string
		// sent is whether the command reached the server.
		sent bool
	}{
		// Usage errors: exit 2 and a pointer to the usage text.
		{name: "list extra arg", args: []string{"list", "x"}, code: 2, stderrHas: []string{"Too many arguments (expected 0, got 1)", `Run "vigil policy list -h" for usage.`}},
		{name: "read no name", args: []string{"read"}, code: 2, stderrHas: []string{"Not enough arguments (expected 1, got 0)", `Run "vigil policy read -h"`}},
		{name: "read blank name", args: []string{"read", "  "}, code: 2, stderrHas: []string{"the policy name is empty", `Run "vigil policy read -h"`}},
		{name: "write one arg", args: []string{"write", "app"}, code: 2, stderrHas: []string{"Not enough arguments (expected 2, got 1)"}},
		{name: "write three args", args: []string{"write", "app", good, "x"}, code: 2, stderrHas: []string{"Too many arguments (expected 2, got 3)"}},
		{name: "write blank name", args: []string{"write", "", good}, code: 2, stderrHas: []string{"the policy name is empty"}},
		{name: "delete no name", args: []string{"delete"}, code: 2, stderrHas: []string{"Not enough arguments (expected 1, got 0)"}},
		{name: "delete blank name", args: []string{"delete", " "}, code: 2, stderrHas: []string{"the policy name is empty"}},
		{name: "fmt no file", args: []string{"fmt"}, code: 2, stderrHas: []string{"Not enough arguments (expected 1, got 0)"}},
		{name: "fmt two files", args: []string{"fmt", good, good}, code: 2, stderrHas: []string{"Too many arguments (expected 1, got 2)"}},
		{name: "unknown flag", args: []string{"read", "-raw", "app"}, code: 2, stderrHas: []string{"flag provided but not defined: -raw"}},
		{name: "unknown subcommand", args: []string{"lsit"}, code: 2, stderrHas: []string{`Did you mean "vigil policy list"?`}},

		// Local file errors: exit 1, naming the file.
		{name: "write missing file", args: []string{"write", "app", missing}, code: 1, stderrHas: []string{"Error reading policy file " + missing + ": no such file or directory"}},
		{name: "write directory", args: []string{"write", "app", dir}, code: 1, stderrHas: []string{"Error reading policy file " + dir + ": is a directory"}},
		{name: "write empty file", args: []string{"write", "app", empty}, code: 1, stderrHas: []string{"Error reading policy file " + empty + ": it is empty"}},
		{name: "write empty stdin", args: []string{"write", "app", "-"}, code: 1, stderrHas: []string{"Error reading the policy from stdin: it is empty"}},

		// Server errors: "Error <action>: <server message>", exit 1.
		{name: "write rejected", args: []string{"write", "bad", "-"}, stdin: `path "x" { capabilities = ["bogus"] }`, code: 1, sent: true,
			stderrHas: []string{"Error uploading policy: Error making API request.", "Code: 400", `* failed to parse policy: line 1, column 12: path "x": capabilities: invalid capability "bogus"`}},
		{name: "write root", args: []string{"write", "root", good}, code: 1, sent: true, stderrHas: []string{"Error uploading policy:", `cannot update "root" policy`}},
		{name: "delete default", args: []string{"delete", "Default"}, code: 1, sent: true, stderrHas: []string{"Error deleting default:", `* policy is immutable: cannot delete "default" policy`}},
		{name: "list forbidden", args: []string{"list"}, env: map[string]string{"VIGIL_TOKEN": "nope"}, code: 1, sent: true,
			stderrHas: []string{"Error listing policies:", "Code: 403", "* permission denied", "Check your token"}},
		{name: "read forbidden", args: []string{"read", "default"}, env: map[string]string{"VIGIL_TOKEN": "nope"}, code: 1, sent: true,
			stderrHas: []string{"Error reading policy named default:", "* permission denied"}},
		{name: "delete forbidden", args: []string{"delete", "x"}, env: map[string]string{"VAULT_TOKEN": "nope", "VIGIL_TOKEN": ""}, code: 1, sent: true,
			stderrHas: []string{"Error deleting x:", "* permission denied"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newPolicyFake(t)
			env := map[string]string{"VIGIL_ADDR": p.srv.URL}
			for k, v := range tt.env {
				env[k] = v
			}
			r := run(t, nil, runOpts{stdin: tt.stdin, env: env}, append([]string{"policy"}, tt.args...)...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", r.code, tt.code, r.stderr)
			}
			for _, want := range tt.stderrHas {
				if !strings.Contains(r.stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
				}
			}
			if r.stdout != "" {
				t.Errorf("unexpected stdout %q", r.stdout)
			}
			if n := len(p.requests()); (n > 0) != tt.sent {
				t.Errorf("%d requests sent, want them only for server errors: %+v", n, p.requests())
			}
		})
	}
}

func TestPolicyConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	r := run(t, nil, runOpts{env: map[string]string{"VIGIL_ADDR": addr}}, "policy", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "Error listing policies:") || !strings.Contains(r.stderr, "Is the server running?") {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
}

// messyPolicy exercises what the HCL printer normalizes: indentation
// (spaces and tabs), spacing around "=" and braces, blank lines, a block
// on one line, alignment inside a map, and comments of each kind.
const messyPolicy = `# Read access for the app.
path "secret/data/app/*" {
capabilities=["read","list"]
    }



/* Block the admin key. */
path   "secret/data/app/admin"{capabilities = ["deny"]}
path "transit/encrypt/app" {
	capabilities = [ "update" ]
	allowed_parameters = {
	"plaintext" = []
	  "context"=["a", "b"]
	}
	min_wrapping_ttl="1s"  # inline
	max_wrapping_ttl = "90s"
}
`

const canonicalPolicy = `# Read access for the app.
path "secret/data/app/*" {
  capabilities = ["read", "list"]
}

/* Block the admin key. */
path "secret/data/app/admin" {
  capabilities = ["deny"]
}

path "transit/encrypt/app" {
  capabilities = ["update"]

  allowed_parameters = {
    "plaintext" = []
    "context"   = ["a", "b"]
  }

  min_wrapping_ttl = "1s"  # inline
  max_wrapping_ttl = "90s"
}
`

func TestPolicyFmt(t *testing.T) {
	t.Parallel()
	// No VIGIL_ADDR: fmt must not need a server.
	file := writeFile(t, "messy.hcl", messyPolicy)
	r := run(t, nil, runOpts{}, "policy", "fmt", file)
	if r.code != 0 || r.stdout != "Success! Formatted policy: "+file+"\n" || r.stderr != "" {
		t.Fatalf("fmt: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != canonicalPolicy {
		t.Errorf("formatted:\n%s\nwant:\n%s", got, canonicalPolicy)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after fmt: %v %v", fi.Mode().Perm(), err)
	}

	// Formatting is idempotent: a second run succeeds and changes nothing.
	r = run(t, nil, runOpts{}, "policy", "fmt", file)
	if r.code != 0 {
		t.Fatalf("second fmt: %d %s", r.code, r.stderr)
	}
	if again, _ := os.ReadFile(file); string(again) != canonicalPolicy {
		t.Errorf("second fmt changed the file:\n%s", again)
	}

	// CRLF line endings come out as LF.
	crlf := writeFile(t, "crlf.hcl", strings.ReplaceAll(appPolicy, "\n", "\r\n"))
	if r := run(t, nil, runOpts{}, "policy", "fmt", crlf); r.code != 0 {
		t.Fatalf("crlf: %d %s", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(crlf); string(b) != appPolicy {
		t.Errorf("crlf formatted to %q", b)
	}
}

func TestPolicyFmtErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "missing.hcl")
	tests := []struct {
		name      string
		content   string // "" for no file
		stderrHas string
	}{
		{"unclosed list", "path \"a\" {\n  capabilities = [\"read\"\n}\n", "syntax error at line 3, column 1: error parsing list, expected comma or list end, got: RBRACE"},
		{"unterminated string", "path \"a\" {\n  capabilities = [\"read]\n}\n", "syntax error at line 2, column 25: literal not terminated"},
		{"missing brace", "path \"a\"\n  capabilities = [\"read\"]\n", "syntax error at line 2, column 16: nested object expected: LBRACE got: ASSIGN"},
		{"duplicate key", "path \"a\" {\n  capabilities = [\"read\"]\n  capabilities = [\"list\"]\n}\n", `syntax error: The argument "capabilities" at 3:3 was already set`},
		{"json", `{"path": {"a": {"capabilities": ["read"]}}}`, "this is a JSON policy; only HCL policies can be formatted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := writeFile(t, "p.hcl", tt.content)
			r := run(t, nil, runOpts{}, "policy", "fmt", file)
			if r.code != 1 || r.stdout != "" {
				t.Errorf("exit %d stdout %q", r.code, r.stdout)
			}
			want := "Error formatting policy " + file + ": " + tt.stderrHas
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr:\n%s\nwant it to contain:\n%s", r.stderr, want)
			}
			if b, _ := os.ReadFile(file); string(b) != tt.content {
				t.Errorf("the file was changed on error:\n%s", b)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		r := run(t, nil, runOpts{}, "policy", "fmt", missing)
		if r.code != 1 || !strings.Contains(r.stderr, "Error reading policy file "+missing+": no such file or directory") {
			t.Errorf("exit %d\n%s", r.code, r.stderr)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Errorf("fmt created the file: %v", err)
		}
	})
}

func TestPolicyHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		has  []string
	}{
		{[]string{"policy", "-h"}, []string{"Usage: vigil policy <command>", "delete", "fmt", "list", "read", "write"}},
		{[]string{"help"}, []string{"policy", "Write, read, list, delete and format ACL policies"}},
		{[]string{"policy", "list", "-h"}, []string{"Usage: vigil policy list [flags]", "$ vigil policy list", "-format"}},
		{[]string{"policy", "read", "-h"}, []string{"Usage: vigil policy read [flags] NAME", "$ vigil policy read"}},
		{[]string{"policy", "write", "--help"}, []string{"Usage: vigil policy write [flags] NAME PATH", "$ vigil policy write", `"-"`}},
		{[]string{"policy", "delete", "-h"}, []string{"Usage: vigil policy delete [flags] NAME", "$ vigil policy delete"}},
		{[]string{"help", "policy", "fmt"}, []string{"Usage: vigil policy fmt [flags] FILE", "$ vigil policy fmt"}},
	}
	for _, tt := range tests {
		r := run(t, nil, runOpts{}, tt.args...)
		if r.code != 0 {
			t.Errorf("%v: exit %d\n%s", tt.args, r.code, r.stderr)
		}
		for _, h := range tt.has {
			if !strings.Contains(r.stdout, h) {
				t.Errorf("%v: output lacks %q:\n%s", tt.args, h, r.stdout)
			}
		}
	}
	if r := run(t, nil, runOpts{}, "policy"); r.code != 2 || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("bare group: exit %d\n%s", r.code, r.stderr)
	}
}
