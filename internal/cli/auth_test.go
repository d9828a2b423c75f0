package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// authFake serves the sys/auth endpoints as Vigil's server answers them
// (checked against `vigil server -dev`): enabling a used path, an unknown
// type or a bad token type is a 400, tuning a missing method is a 400,
// disabling a missing one succeeds.
type authFake struct {
	t   *testing.T
	srv *httptest.Server

	mu     sync.Mutex
	mounts map[string]map[string]any // "approle/" -> mount object
	reqs   []authRequest
}

type authRequest struct {
	Method string
	URI    string         // as sent: escaped path and query
	Body   map[string]any // nil when there was no body
}

func newAuthFake(t *testing.T) *authFake {
	t.Helper()
	a := &authFake{t: t, mounts: map[string]map[string]any{
		"token/": authMount("token", "auth_token_5f4764ed", "token based credentials", "default-service", 0, false, nil),
	}}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

// authMount is a mount object as sys/auth lists it.
func authMount(typ, accessor, desc, tokenType string, defTTL int, local bool, opts map[string]any) map[string]any {
	var o any // null without options, as the server renders it
	if len(opts) > 0 {
		o = opts
	}
	return map[string]any{
		"type": typ, "accessor": accessor, "description": desc, "uuid": "uuid-" + typ,
		"config":  map[string]any{"default_lease_ttl": defTTL, "max_lease_ttl": 0, "force_no_cache": false, "token_type": tokenType},
		"options": o, "local": local, "seal_wrap": false, "external_entropy_access": false,
		"plugin_version": "", "running_plugin_version": "v0.1.0+builtin.vigil", "running_sha256": "",
		"deprecation_status": "supported",
	}
}

// badTokenType is the server's message for an invalid token_type, or "".
func badTokenType(v any) string {
	s, _ := v.(string)
	switch s {
	case "", "service", "batch", "default-service", "default-batch":
		return ""
	}
	return fmt.Sprintf("invalid token_type %q: want service, batch, default-service or default-batch", s)
}

func (a *authFake) serve(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rq := authRequest{Method: r.Method, URI: r.RequestURI}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &rq.Body); err != nil {
			a.t.Errorf("%s %s: body is not a JSON object: %s", r.Method, r.RequestURI, b)
		}
	}
	a.reqs = append(a.reqs, rq)
	if r.Header.Get("X-Vault-Request") != "true" {
		a.t.Errorf("%s %s without X-Vault-Request", r.Method, r.RequestURI)
	}
	if r.Header.Get("X-Vault-Token") != rootToken {
		errs(w, 403, "permission denied")
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if name, ok := strings.CutPrefix(path, "sys/mounts/auth/"); ok && strings.HasSuffix(name, "/tune") {
		a.serveTune(w, r.Method, strings.TrimSuffix(name, "/tune"), rq.Body)
		return
	}
	if path == "sys/auth" && r.Method == http.MethodGet {
		write(w, 200, envelope(a.mounts))
		return
	}
	rest, ok := strings.CutPrefix(path, "sys/auth/")
	if !ok || rest == "" {
		errs(w, 404, "no handler for route \""+path+"\". route entry not found.")
		return
	}
	if name, ok := strings.CutSuffix(rest, "/tune"); ok {
		a.serveTune(w, r.Method, name, rq.Body)
		return
	}
	switch r.Method {
	case http.MethodGet:
		m, ok := a.mounts[rest+"/"]
		if !ok {
			errs(w, 400, "no auth method at "+rest)
			return
		}
		write(w, 200, envelope(m))
	case http.MethodPost, http.MethodPut:
		typ, _ := rq.Body["type"].(string)
		cfg, _ := rq.Body["config"].(map[string]any)
		switch {
		case a.mounts[rest+"/"] != nil:
			errs(w, 400, "path is already in use at auth/"+rest+"/")
		case typ != "approle":
			errs(w, 400, "plugin not found in the catalog: "+typ)
		case badTokenType(cfg["token_type"]) != "":
			errs(w, 400, badTokenType(cfg["token_type"]))
		default:
			tt, _ := cfg["token_type"].(string)
			desc, _ := rq.Body["description"].(string)
			local, _ := rq.Body["local"].(bool)
			opts, _ := rq.Body["options"].(map[string]any)
			a.mounts[rest+"/"] = authMount(typ, "auth_"+typ+"_0a1b2c3d", desc, tt, 0, local, opts)
			write(w, 204, nil)
		}
	case http.MethodDelete:
		delete(a.mounts, rest+"/")
		write(w, 204, nil)
	default:
		errs(w, 405, "unsupported operation")
	}
}

func (a *authFake) serveTune(w http.ResponseWriter, method, name string, body map[string]any) {
	m, ok := a.mounts[name+"/"]
	if !ok {
		errs(w, 400, "no mount at auth/"+name+"/")
		return
	}
	switch method {
	case http.MethodGet:
		write(w, 200, envelope(map[string]any{"description": m["description"], "default_lease_ttl": 2764800, "max_lease_ttl": 2764800, "force_no_cache": false, "token_type": m["config"].(map[string]any)["token_type"]}))
	case http.MethodPost, http.MethodPut:
		if msg := badTokenType(body["token_type"]); msg != "" {
			errs(w, 400, msg)
			return
		}
		if d, ok := body["description"]; ok {
			m["description"] = d
		}
		if tt, ok := body["token_type"]; ok {
			m["config"].(map[string]any)["token_type"] = tt
		}
		write(w, 204, nil)
	default:
		errs(w, 405, "unsupported operation")
	}
}

func (a *authFake) requests() []authRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]authRequest(nil), a.reqs...)
}

func (a *authFake) last(t *testing.T) authRequest {
	t.Helper()
	reqs := a.requests()
	if len(reqs) == 0 {
		t.Fatal("no request was sent")
	}
	return reqs[len(reqs)-1]
}

// run runs the CLI against the fake with the root token, unless env
// overrides it.
func (a *authFake) run(t *testing.T, env map[string]string, want int, args ...string) result {
	t.Helper()
	vars := map[string]string{"VIGIL_ADDR": a.srv.URL}
	for k, v := range env {
		vars[k] = v
	}
	r := run(t, nil, runOpts{env: vars}, args...)
	if r.code != want {
		t.Fatalf("vigil %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// checkRequest fails unless req is method uri with exactly body (nil for
// none).
func checkRequest(t *testing.T, req authRequest, method, uri string, body map[string]any) {
	t.Helper()
	if req.Method != method || req.URI != uri {
		t.Errorf("request = %s %s, want %s %s", req.Method, req.URI, method, uri)
	}
	if !reflect.DeepEqual(req.Body, body) {
		got, _ := json.Marshal(req.Body)
		want, _ := json.Marshal(body)
		t.Errorf("body = %s\nwant   %s", got, want)
	}
}

func TestAuthEnable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		uri    string
		body   map[string]any
		stdout string
	}{
		{
			name: "defaults",
			args: []string{"approle"},
			uri:  "/v1/sys/auth/approle",
			body: map[string]any{
				"type": "approle", "description": "", "local": false, "seal_wrap": false, "options": map[string]any{},
				"config": map[string]any{"default_lease_ttl": "0s", "max_lease_ttl": "0s"},
			},
			stdout: "Success! Enabled approle auth method at: approle/\n",
		},
		{
			name: "every flag",
			args: []string{
				"-path=/apps/prod/", "-description=prod apps", "-default-lease-ttl=1h", "-max-lease-ttl=7200",
				"-listing-visibility=unauth", "-token-type=batch", "-local", "-seal-wrap",
				"-options=a=1", "-options=b=x=y", "approle",
			},
			uri: "/v1/sys/auth/apps/prod",
			body: map[string]any{
				"type": "approle", "description": "prod apps", "local": true, "seal_wrap": true,
				"options": map[string]any{"a": "1", "b": "x=y"},
				"config": map[string]any{
					"default_lease_ttl": "1h0m0s", "max_lease_ttl": "2h0m0s",
					"listing_visibility": "unauth", "token_type": "batch",
				},
			},
			stdout: "Success! Enabled approle auth method at: apps/prod/\n",
		},
		{
			name: "double-dash flags and system TTL",
			args: []string{"--path", "ar", "--default-lease-ttl=system", "--token-type", "default-batch", "approle"},
			uri:  "/v1/sys/auth/ar",
			body: map[string]any{
				"type": "approle", "description": "", "local": false, "seal_wrap": false, "options": map[string]any{},
				"config": map[string]any{"default_lease_ttl": "system", "max_lease_ttl": "0s", "token_type": "default-batch"},
			},
			stdout: "Success! Enabled approle auth method at: ar/\n",
		},
		{
			name: "json prints nothing",
			args: []string{"-format=json", "approle"},
			uri:  "/v1/sys/auth/approle",
			body: map[string]any{
				"type": "approle", "description": "", "local": false, "seal_wrap": false, "options": map[string]any{},
				"config": map[string]any{"default_lease_ttl": "0s", "max_lease_ttl": "0s"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAuthFake(t)
			r := a.run(t, nil, 0, append([]string{"auth", "enable"}, tt.args...)...)
			if r.stdout != tt.stdout || r.stderr != "" {
				t.Errorf("stdout %q stderr %q, want stdout %q", r.stdout, r.stderr, tt.stdout)
			}
			if n := len(a.requests()); n != 1 {
				t.Errorf("%d requests, want 1: %+v", n, a.requests())
			}
			checkRequest(t, a.last(t), http.MethodPost, tt.uri, tt.body)
		})
	}
}

func TestAuthErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		code      int
		stderrHas []string
		// sent is whether the command reached the server.
		sent bool
	}{
		// Usage errors: exit 2 with a pointer to the usage, nothing sent.
		{name: "enable no type", args: []string{"enable"}, code: 2,
			stderrHas: []string{"Error: Not enough arguments (expected 1, got 0)", `Run "vigil auth enable -h" for usage.`}},
		{name: "enable two types", args: []string{"enable", "approle", "jwt"}, code: 2,
			stderrHas: []string{"Too many arguments (expected 1, got 2)"}},
		{name: "enable blank type", args: []string{"enable", " "}, code: 2,
			stderrHas: []string{"Error enabling the auth method: the auth method type is empty", `Run "vigil auth enable -h" for usage.`}},
		{name: "enable bad default TTL", args: []string{"enable", "-default-lease-ttl=forever", "approle"}, code: 2,
			stderrHas: []string{`Error parsing flags: invalid -default-lease-ttl "forever": want a duration such as 1h or 3600`, `Run "vigil auth enable -h" for usage.`}},
		{name: "enable negative max TTL", args: []string{"enable", "-max-lease-ttl=-1h", "approle"}, code: 2,
			stderrHas: []string{`Error parsing flags: invalid -max-lease-ttl "-1h"`}},
		{name: "enable bad option", args: []string{"enable", "-options=novalue", "approle"}, code: 2,
			stderrHas: []string{`invalid value "novalue" for flag -options: "novalue" is not key=value`}},
		{name: "enable unknown flag", args: []string{"enable", "-plugin-name=x", "approle"}, code: 2,
			stderrHas: []string{"flag provided but not defined: -plugin-name"}},
		{name: "disable no path", args: []string{"disable"}, code: 2,
			stderrHas: []string{"Not enough arguments (expected 1, got 0)", `Run "vigil auth disable -h" for usage.`}},
		{name: "disable root path", args: []string{"disable", "/"}, code: 2,
			stderrHas: []string{"Error disabling the auth method: the auth method path is empty"}},
		{name: "list extra arg", args: []string{"list", "approle"}, code: 2,
			stderrHas: []string{"Too many arguments (expected 0, got 1)", `Run "vigil auth list -h" for usage.`}},
		{name: "tune no path", args: []string{"tune", "-max-lease-ttl=1h"}, code: 2,
			stderrHas: []string{"Not enough arguments (expected 1, got 0)"}},
		{name: "tune blank path", args: []string{"tune", "-max-lease-ttl=1h", " / "}, code: 2,
			stderrHas: []string{"Error tuning the auth method: the auth method path is empty"}},
		{name: "tune bad TTL", args: []string{"tune", "-default-lease-ttl=1x", "approle"}, code: 2,
			stderrHas: []string{`Error parsing flags: invalid -default-lease-ttl "1x"`, `Run "vigil auth tune -h" for usage.`}},
		{name: "tune empty TTL", args: []string{"tune", "-max-lease-ttl=", "approle"}, code: 2,
			stderrHas: []string{`Error parsing flags: invalid -max-lease-ttl ""`}},
		{name: "unknown subcommand", args: []string{"enabel"}, code: 2,
			stderrHas: []string{`Did you mean "vigil auth enable"?`}},

		// Server errors: "Error <action>: <server message>", exit 1.
		{name: "enable path in use", args: []string{"enable", "-path=token", "approle"}, code: 1, sent: true,
			stderrHas: []string{"Error enabling approle auth: Error making API request.", "URL: POST ", "/v1/sys/auth/token", "Code: 400", "* path is already in use at auth/token/"}},
		{name: "enable unknown type", args: []string{"enable", "nope"}, code: 1, sent: true,
			stderrHas: []string{"Error enabling nope auth:", "* plugin not found in the catalog: nope"}},
		{name: "enable bad token type", args: []string{"enable", "-token-type=bogus", "approle"}, code: 1, sent: true,
			stderrHas: []string{"Error enabling approle auth:", `* invalid token_type "bogus"`}},
		{name: "enable forbidden", args: []string{"enable", "approle"}, env: map[string]string{"VIGIL_TOKEN": "nope"}, code: 1, sent: true,
			stderrHas: []string{"Error enabling approle auth:", "Code: 403", "* permission denied", "Check your token"}},
		{name: "disable forbidden", args: []string{"disable", "token/"}, env: map[string]string{"VIGIL_TOKEN": "nope"}, code: 1, sent: true,
			stderrHas: []string{"Error disabling auth method at token/:", "* permission denied"}},
		{name: "list forbidden", args: []string{"list"}, env: map[string]string{"VIGIL_TOKEN": "nope"}, code: 1, sent: true,
			stderrHas: []string{"Error listing enabled authentications:", "Code: 403", "* permission denied"}},
		{name: "tune missing method", args: []string{"tune", "-description=x", "nothere/"}, code: 1, sent: true,
			stderrHas: []string{"Error tuning auth method nothere/:", "Code: 400", "* no mount at auth/nothere/"}},
		{name: "tune bad token type", args: []string{"tune", "-token-type=bogus", "token"}, code: 1, sent: true,
			stderrHas: []string{"Error tuning auth method token/:", `* invalid token_type "bogus"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAuthFake(t)
			env := map[string]string{"VIGIL_ADDR": a.srv.URL}
			for k, v := range tt.env {
				env[k] = v
			}
			r := run(t, nil, runOpts{env: env}, append([]string{"auth"}, tt.args...)...)
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
			if n := len(a.requests()); (n > 0) != tt.sent {
				t.Errorf("%d requests sent, want them only for server errors: %+v", n, a.requests())
			}
		})
	}
}

func TestAuthDisable(t *testing.T) {
	t.Parallel()
	a := newAuthFake(t)
	a.run(t, nil, 0, "auth", "enable", "-path=apps", "approle")
	r := a.run(t, nil, 0, "auth", "disable", "apps/")
	if r.stdout != "Success! Disabled the auth method (if it existed) at: apps/\n" || r.stderr != "" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	checkRequest(t, a.last(t), http.MethodDelete, "/v1/sys/auth/apps", nil)
	// A path where nothing is enabled: the server succeeds, and so do we.
	r = a.run(t, nil, 0, "auth", "disable", " /apps ")
	if r.stdout != "Success! Disabled the auth method (if it existed) at: apps/\n" {
		t.Errorf("second disable: %q", r.stdout)
	}
	checkRequest(t, a.last(t), http.MethodDelete, "/v1/sys/auth/apps", nil)
	if r := a.run(t, nil, 0, "auth", "disable", "-format=yaml", "apps"); r.stdout != "" {
		t.Errorf("-format=yaml printed %q", r.stdout)
	}
}

func TestAuthList(t *testing.T) {
	t.Parallel()
	a := newAuthFake(t)
	a.mounts["approle/"] = authMount("approle", "auth_approle_0a1b2c3d", "", "batch", 3600, true, map[string]any{"k": "v"})

	r := a.run(t, nil, 0, "auth", "list")
	const table = "" +
		"Path        Type       Accessor                 Description\n" +
		"----        ----       --------                 -----------\n" +
		"approle/    approle    auth_approle_0a1b2c3d    n/a\n" +
		"token/      token      auth_token_5f4764ed      token based credentials\n"
	if r.stdout != table || r.stderr != "" {
		t.Errorf("list:\n%s\nwant:\n%s\nstderr: %s", r.stdout, table, r.stderr)
	}
	checkRequest(t, a.last(t), http.MethodGet, "/v1/sys/auth", nil)

	r = a.run(t, nil, 0, "auth", "list", "-detailed")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("detailed:\n%s", r.stdout)
	}
	wantHeader := []string{"Path", "Plugin", "Accessor", "Default TTL", "Max TTL", "Token Type", "Replication", "Seal Wrap",
		"External Entropy Access", "Options", "Description", "UUID", "Version", "Running Version", "Running SHA256", "Deprecation Status"}
	if got := splitColumns(lines[0]); !reflect.DeepEqual(got, wantHeader) {
		t.Errorf("detailed header = %q\nwant %q", got, wantHeader)
	}
	wantRows := [][]string{
		{"approle/", "approle", "auth_approle_0a1b2c3d", "1h", "system", "batch", "local", "false", "false", "map[k:v]", "n/a", "uuid-approle", "n/a", "v0.1.0+builtin.vigil", "n/a", "supported"},
		{"token/", "token", "auth_token_5f4764ed", "system", "system", "default-service", "replicated", "false", "false", "n/a", "token based credentials", "uuid-token", "n/a", "v0.1.0+builtin.vigil", "n/a", "supported"},
	}
	for i, want := range wantRows {
		if got := splitColumns(lines[i+2]); !reflect.DeepEqual(got, want) {
			t.Errorf("detailed row %d = %q\nwant %q", i, got, want)
		}
	}

	r = a.run(t, nil, 0, "auth", "list", "-format=json")
	var byPath map[string]struct {
		Type     string            `json:"type"`
		Accessor string            `json:"accessor"`
		Local    bool              `json:"local"`
		Options  map[string]string `json:"options"`
		Config   map[string]any    `json:"config"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &byPath); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	ar, tok := byPath["approle/"], byPath["token/"]
	if len(byPath) != 2 || ar.Type != "approle" || !ar.Local || ar.Options["k"] != "v" || ar.Config["token_type"] != "batch" ||
		ar.Config["default_lease_ttl"] != float64(3600) || tok.Config["token_type"] != "default-service" {
		t.Errorf("json list = %+v", byPath)
	}
	r = a.run(t, nil, 0, "auth", "list", "-format=yaml")
	var y map[string]map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &y); err != nil || y["approle/"]["accessor"] != "auth_approle_0a1b2c3d" {
		t.Errorf("yaml list %v:\n%s", err, r.stdout)
	}
	// VIGIL_FORMAT applies too.
	if r := a.run(t, map[string]string{"VIGIL_FORMAT": "json"}, 0, "auth", "list", "-detailed"); !strings.HasPrefix(r.stdout, "{") {
		t.Errorf("VIGIL_FORMAT=json:\n%s", r.stdout)
	}
}

// splitColumns splits a table line on its runs of 4 or more spaces.
func splitColumns(line string) []string {
	var out []string
	for _, f := range strings.Split(line, "    ") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func TestAuthTune(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		uri  string
		body map[string]any
	}{
		{
			name: "TTL, description and token type",
			args: []string{"-default-lease-ttl=72h", "-description=", "-token-type=batch", "token/"},
			uri:  "/v1/sys/mounts/auth/token/tune",
			body: map[string]any{"default_lease_ttl": "72h0m0s", "description": "", "token_type": "batch"},
		},
		{
			name: "system TTL, visibility and options",
			args: []string{"-max-lease-ttl=system", "-listing-visibility=hidden", "-options=k=v", "/token"},
			uri:  "/v1/sys/mounts/auth/token/tune",
			body: map[string]any{"max_lease_ttl": "system", "listing_visibility": "hidden", "options": map[string]any{"k": "v"}},
		},
		{
			name: "seconds",
			args: []string{"--max-lease-ttl", "90", "token"},
			uri:  "/v1/sys/mounts/auth/token/tune",
			body: map[string]any{"max_lease_ttl": "1m30s"},
		},
		{
			name: "no flags",
			args: []string{"token"},
			uri:  "/v1/sys/mounts/auth/token/tune",
			body: map[string]any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAuthFake(t)
			r := a.run(t, nil, 0, append([]string{"auth", "tune"}, tt.args...)...)
			if r.stdout != "Success! Tuned the auth method at: token/\n" || r.stderr != "" {
				t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
			}
			checkRequest(t, a.last(t), http.MethodPost, tt.uri, tt.body)
		})
	}
}

func TestAuthHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		has  []string
	}{
		{[]string{"help"}, []string{"auth", "Enable, list, tune and disable auth methods"}},
		{[]string{"auth", "-h"}, []string{"Usage: vigil auth <command>", "disable", "enable", "list", "tune"}},
		{[]string{"auth", "enable", "-h"}, []string{"Usage: vigil auth enable [flags] TYPE", "-token-type", "-default-lease-ttl", "-listing-visibility", "-seal-wrap", "-options", "the method's tokens"}},
		{[]string{"auth", "disable", "--help"}, []string{"Usage: vigil auth disable [flags] PATH", "$ vigil auth disable"}},
		{[]string{"auth", "list", "-h"}, []string{"Usage: vigil auth list [flags]", "-detailed", "-format"}},
		{[]string{"help", "auth", "tune"}, []string{"Usage: vigil auth tune [flags] PATH", "-token-type", `"system" resets it`, "Method option"}},
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
	if r := run(t, nil, runOpts{}, "auth"); r.code != 2 || !strings.Contains(r.stderr, "Commands:") {
		t.Errorf("bare group: exit %d\n%s", r.code, r.stderr)
	}
}
