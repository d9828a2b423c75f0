package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// scriptFake answers each "METHOD /v1/path" from a table the test fills,
// with the shapes Vigil's server gives (checked against `vigil server
// -dev`), and records every request as it was sent. Other requests get
// Vigil's 404 for an unknown route. The token and lease tests use it.
type scriptFake struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	answers map[string]scriptAnswer
	reqs    []scriptRequest
}

type scriptAnswer struct {
	code int
	body string
}

type scriptRequest struct {
	Method string
	URI    string // as sent: escaped path and query
	Token  string
	Body   map[string]any // nil when there was no body
}

func newScriptFake(t *testing.T, answers map[string]scriptAnswer) *scriptFake {
	t.Helper()
	f := &scriptFake{t: t, answers: answers}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *scriptFake) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rq := scriptRequest{Method: r.Method, URI: r.RequestURI, Token: r.Header.Get("X-Vault-Token")}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &rq.Body); err != nil {
			f.t.Errorf("%s %s: body is not a JSON object: %s", r.Method, r.RequestURI, b)
		}
	}
	f.reqs = append(f.reqs, rq)
	if r.Header.Get("X-Vault-Request") != "true" {
		f.t.Errorf("%s %s without X-Vault-Request", r.Method, r.RequestURI)
	}
	w.Header().Set("Content-Type", "application/json")
	a, ok := f.answers[r.Method+" "+r.URL.Path]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `{"errors":["no handler for route \"`+strings.TrimPrefix(r.URL.Path, "/v1/")+`\". route entry not found."]}`)
		return
	}
	w.WriteHeader(a.code)
	_, _ = io.WriteString(w, a.body)
}

func (f *scriptFake) requests() []scriptRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]scriptRequest(nil), f.reqs...)
}

// run runs the CLI against the fake with the root token and stdin, and
// fails unless it exits with want.
func (f *scriptFake) run(t *testing.T, stdin string, want int, args ...string) result {
	t.Helper()
	r := run(t, nil, runOpts{stdin: stdin, env: map[string]string{"VIGIL_ADDR": f.srv.URL}}, args...)
	if r.code != want {
		t.Fatalf("vigil %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// only returns the one request the command sent, or fails.
func (f *scriptFake) only(t *testing.T) scriptRequest {
	t.Helper()
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("requests = %+v, want exactly one", reqs)
	}
	return reqs[0]
}

func checkScriptRequest(t *testing.T, got scriptRequest, method, uri string, body map[string]any) {
	t.Helper()
	if got.Method != method || got.URI != uri {
		t.Errorf("request = %s %s, want %s %s", got.Method, got.URI, method, uri)
	}
	if got.Token != rootToken {
		t.Errorf("request sent token %q, want the root token", got.Token)
	}
	if !reflect.DeepEqual(got.Body, body) {
		t.Errorf("body = %#v\nwant %#v", got.Body, body)
	}
}

// Answers of Vigil's dev server, with made-up tokens.
const (
	childToken = "hvs.CHILDtokenVALUE0123456"
	childAcc   = "Jq1hR4x9ZbTn0cVdWe2fGh3k"

	createAnswer = `{"request_id":"r1","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,
		"warnings":null,"auth":{"accessor":"` + childAcc + `","client_token":"` + childToken + `","entity_id":"",
		"lease_duration":3600,"metadata":{"team":"a"},"mfa_requirement":null,"num_uses":0,"orphan":false,
		"policies":["default","web"],"renewable":true,"token_policies":["default","web"],"token_type":"service"},"mount_type":"token"}`

	lookupAnswer = `{"request_id":"r2","lease_id":"","renewable":false,"lease_duration":0,"data":{"accessor":"` + childAcc + `",
		"creation_time":1795432537,"creation_ttl":3600,"display_name":"token-ci","entity_id":"",
		"expire_time":"2026-11-23T12:15:37.601928011Z","explicit_max_ttl":0,"id":"` + childToken + `",
		"issue_time":"2026-11-23T11:15:37.601928011Z","meta":{"team":"a"},"num_uses":0,"orphan":false,"path":"auth/token/create",
		"policies":["default","web"],"renewable":true,"ttl":3542,"type":"service"},"wrap_info":null,"warnings":null,"auth":null,"mount_type":"token"}`

	renewAnswer = `{"request_id":"r3","lease_id":"","renewable":false,"lease_duration":0,"data":null,"wrap_info":null,"warnings":null,
		"auth":{"accessor":"` + childAcc + `","client_token":"` + childToken + `","entity_id":"","lease_duration":1800,
		"metadata":null,"mfa_requirement":null,"num_uses":0,"orphan":false,"policies":["default"],"renewable":true,
		"token_policies":["default"],"token_type":"service"},"mount_type":"token"}`

	badTokenAnswer = `{"errors":["bad token"]}`
)

func TestTokenCreate(t *testing.T) {
	t.Parallel()
	const table = `Key                  Value
---                  -----
token                ` + childToken + `
token_accessor       ` + childAcc + `
token_duration       1h
token_renewable      true
token_policies       [default web]
identity_policies    []
policies             [default web]
token_meta_team      a
`
	tests := []struct {
		name  string
		args  []string
		stdin string
		uri   string
		body  map[string]any
	}{
		{
			name: "defaults",
			uri:  "/v1/auth/token/create",
			body: map[string]any{"renewable": true},
		},
		{
			name: "every flag",
			args: []string{
				"-policy=web", "-policy", "db, ops", "-metadata=team=a", "-metadata=env=prod", "-ttl=1h",
				"-explicit-max-ttl=5400", "-period=30m", "-renewable=false", "-orphan", "-no-default-policy",
				"-use-limit=3", "-display-name=ci", "-type=service", "-entity-alias=bot",
			},
			uri: "/v1/auth/token/create",
			body: map[string]any{
				"policies": []any{"web", "db", "ops"}, "meta": map[string]any{"team": "a", "env": "prod"},
				"ttl": "1h0m0s", "explicit_max_ttl": "1h30m0s", "period": "30m0s", "renewable": false,
				"no_parent": true, "no_default_policy": true, "num_uses": float64(3), "display_name": "ci",
				"type": "service", "entity_alias": "bot",
			},
		},
		{
			name: "zero durations are not sent",
			args: []string{"-ttl=0", "-period=0s"},
			uri:  "/v1/auth/token/create",
			body: map[string]any{"renewable": true},
		},
		{
			name: "role",
			args: []string{"-role=deploy", "-policy=web"},
			uri:  "/v1/auth/token/create/deploy",
			body: map[string]any{"renewable": true, "policies": []any{"web"}},
		},
		{
			name: "batch tokens are sent as not renewable",
			args: []string{"-type=batch", "-ttl=10m"},
			uri:  "/v1/auth/token/create",
			body: map[string]any{"renewable": false, "type": "batch", "ttl": "10m0s"},
		},
		{
			name:  "custom id from stdin",
			args:  []string{"-id=-"},
			stdin: "my-custom-token\n",
			uri:   "/v1/auth/token/create",
			body:  map[string]any{"renewable": true, "id": "my-custom-token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"POST /v1/auth/token/create":        {200, createAnswer},
				"POST /v1/auth/token/create/deploy": {200, createAnswer},
			})
			r := f.run(t, tt.stdin, 0, append([]string{"token", "create"}, tt.args...)...)
			checkScriptRequest(t, f.only(t), http.MethodPost, tt.uri, tt.body)
			if r.stdout != table {
				t.Errorf("stdout:\n%s\nwant\n%s", r.stdout, table)
			}
			if r.stderr != "" {
				t.Errorf("stderr = %q", r.stderr)
			}
		})
	}
}

func TestTokenCreateFormats(t *testing.T) {
	t.Parallel()
	warned := strings.Replace(createAnswer, `"warnings":null`, `"warnings":["Policy \"web\" does not exist"]`, 1)
	f := newScriptFake(t, map[string]scriptAnswer{"POST /v1/auth/token/create": {200, warned}})

	r := f.run(t, "", 0, "token", "create", "-field=token")
	if r.stdout != childToken {
		t.Errorf("-field=token printed %q", r.stdout)
	}
	r = f.run(t, "", 0, "token", "create", "-field=token_duration")
	if r.stdout != "3600" {
		t.Errorf("-field=token_duration printed %q", r.stdout)
	}

	r = f.run(t, "", 0, "token", "create", "-format=json")
	var env struct {
		Auth struct {
			ClientToken string   `json:"client_token"`
			Accessor    string   `json:"accessor"`
			Policies    []string `json:"policies"`
		} `json:"auth"`
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if env.Auth.ClientToken != childToken || env.Auth.Accessor != childAcc || len(env.Auth.Policies) != 2 || len(env.Warnings) != 1 {
		t.Errorf("json = %+v", env)
	}

	r = f.run(t, "", 0, "token", "create", "-format=yaml")
	var y map[string]any
	if err := yaml.Unmarshal([]byte(r.stdout), &y); err != nil {
		t.Fatalf("yaml: %v\n%s", err, r.stdout)
	}
	if a, _ := y["auth"].(map[string]any); a["client_token"] != childToken || a["lease_duration"] != 3600 {
		t.Errorf("yaml auth = %v", y["auth"])
	}

	// Table: the warning goes to stderr, the table to stdout.
	r = f.run(t, "", 0, "token", "create", "-policy=web")
	if !strings.Contains(r.stderr, `* Policy "web" does not exist`) || strings.Contains(r.stdout, "does not exist") {
		t.Errorf("warning: stdout %q, stderr %q", r.stdout, r.stderr)
	}
}

func TestTokenCreateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		answer  scriptAnswer
		code    int
		stderr  string
		noCalls bool
	}{
		{name: "argument", args: []string{"extra"}, code: 2, stderr: "Too many arguments (expected 0, got 1)", noCalls: true},
		{name: "bad ttl", args: []string{"-ttl=soon"}, code: 2, stderr: `invalid -ttl "soon"`, noCalls: true},
		{name: "negative period", args: []string{"-period=-1h"}, code: 2, stderr: `invalid -period "-1h"`, noCalls: true},
		{name: "bad metadata", args: []string{"-metadata=novalue"}, code: 2, stderr: `"novalue" is not key=value`, noCalls: true},
		{name: "role with a slash", args: []string{"-role=a/b"}, code: 1, stderr: `invalid token role name "a/b"`, noCalls: true},
		{name: "empty id from stdin", args: []string{"-id=-"}, code: 2, stderr: "the token id is empty", noCalls: true},
		{
			name: "server refuses", answer: scriptAnswer{400, `{"errors":["child policies must be subset of parent"]}`},
			code: 1, stderr: "Error creating token: Error making API request.",
		},
		{
			name: "no auth in the answer", answer: scriptAnswer{204, ""},
			code: 1, stderr: "Error creating token: the server returned no token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{"POST /v1/auth/token/create": tt.answer})
			r := f.run(t, "", tt.code, append([]string{"token", "create"}, tt.args...)...)
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q", r.stdout)
			}
			if n := len(f.requests()); tt.noCalls && n != 0 {
				t.Errorf("%d requests were sent", n)
			}
		})
	}
}

func TestTokenLookup(t *testing.T) {
	t.Parallel()
	const table = `Key                 Value
---                 -----
accessor            ` + childAcc + `
creation_time       1795432537
creation_ttl        3600
display_name        token-ci
entity_id           n/a
expire_time         2026-11-23T12:15:37.601928011Z
explicit_max_ttl    0
issue_time          2026-11-23T11:15:37.601928011Z
meta                map[team:a]
num_uses            0
orphan              false
path                auth/token/create
policies            [default web]
renewable           true
ttl                 3542
type                service
`
	tests := []struct {
		name   string
		args   []string
		stdin  string
		method string
		uri    string
		body   map[string]any
	}{
		{name: "self", method: http.MethodGet, uri: "/v1/auth/token/lookup-self"},
		{name: "token", args: []string{childToken}, method: http.MethodPost, uri: "/v1/auth/token/lookup",
			body: map[string]any{"token": childToken}},
		{name: "token from stdin", args: []string{"-"}, stdin: childToken + "\n", method: http.MethodPost,
			uri: "/v1/auth/token/lookup", body: map[string]any{"token": childToken}},
		{name: "accessor", args: []string{"-accessor", childAcc}, method: http.MethodPost,
			uri: "/v1/auth/token/lookup-accessor", body: map[string]any{"accessor": childAcc}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"GET /v1/auth/token/lookup-self":      {200, lookupAnswer},
				"POST /v1/auth/token/lookup":          {200, lookupAnswer},
				"POST /v1/auth/token/lookup-accessor": {200, strings.Replace(lookupAnswer, `"id":"`+childToken+`"`, `"id":""`, 1)},
			})
			r := f.run(t, tt.stdin, 0, append([]string{"token", "lookup"}, tt.args...)...)
			checkScriptRequest(t, f.only(t), tt.method, tt.uri, tt.body)
			if r.stdout != table {
				t.Errorf("stdout:\n%s\nwant\n%s", r.stdout, table)
			}
			if strings.Contains(r.stdout+r.stderr, childToken) {
				t.Error("the table shows the token")
			}
		})
	}
}

func TestTokenLookupFormats(t *testing.T) {
	t.Parallel()
	f := newScriptFake(t, map[string]scriptAnswer{"GET /v1/auth/token/lookup-self": {200, lookupAnswer}})
	// JSON is the server's whole answer, as in Vault, token included.
	r := f.run(t, "", 0, "token", "lookup", "-format=json")
	var env struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if env.Data["id"] != childToken || env.Data["ttl"] != float64(3542) || env.Data["type"] != "service" {
		t.Errorf("json data = %v", env.Data)
	}
	if r := f.run(t, "", 0, "token", "lookup", "-field=ttl"); r.stdout != "3542" {
		t.Errorf("-field=ttl printed %q", r.stdout)
	}
	if r := f.run(t, "", 0, "token", "lookup", "-field=policies"); r.stdout != `["default","web"]` {
		t.Errorf("-field=policies printed %q", r.stdout)
	}
	// Asked for by name, the token is printed.
	if r := f.run(t, "", 0, "token", "lookup", "-field=id"); r.stdout != childToken {
		t.Errorf("-field=id printed %q", r.stdout)
	}
	r = f.run(t, "", 1, "token", "lookup", "-field=nope")
	if r.stderr != "Field \"nope\" not present in secret\n" {
		t.Errorf("missing field: %q", r.stderr)
	}
}

func TestTokenLookupErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		stdin   string
		code    int
		stderr  []string
		noCalls bool
	}{
		{name: "accessor without argument", args: []string{"-accessor"}, code: 2,
			stderr: []string{"Not enough arguments with -accessor (expected 1, got 0)"}, noCalls: true},
		{name: "accessor with two", args: []string{"-accessor", "a", "b"}, code: 2,
			stderr: []string{"Too many arguments with -accessor (expected 1, got 2)"}, noCalls: true},
		{name: "two tokens", args: []string{"a", "b"}, code: 2,
			stderr: []string{"Too many arguments (expected 0-1, got 2)"}, noCalls: true},
		{name: "empty stdin", args: []string{"-"}, code: 2,
			stderr: []string{"Error looking up token: the token is empty"}, noCalls: true},
		{name: "unknown token", args: []string{"hvs.UNKNOWNsecretTOKEN"}, code: 1,
			stderr: []string{"Error looking up token: Error making API request.", "* bad token",
				"The token does not exist, has expired or was revoked."}},
		{name: "unknown token from stdin", args: []string{"-"}, stdin: "hvs.UNKNOWNsecretTOKEN", code: 1,
			stderr: []string{"* bad token"}},
		{name: "unknown accessor", args: []string{"-accessor", "nope"}, code: 1,
			stderr: []string{"Error looking up token: Error making API request.", "Code: 400", "* invalid accessor"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"POST /v1/auth/token/lookup":          {403, badTokenAnswer},
				"POST /v1/auth/token/lookup-accessor": {400, `{"errors":["invalid accessor"]}`},
			})
			r := f.run(t, tt.stdin, tt.code, append([]string{"token", "lookup"}, tt.args...)...)
			for _, s := range tt.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr = %q, want it to contain %q", r.stderr, s)
				}
			}
			if strings.Contains(r.stdout+r.stderr, "UNKNOWNsecret") {
				t.Errorf("the output shows the token:\n%s%s", r.stdout, r.stderr)
			}
			if n := len(f.requests()); tt.noCalls && n != 0 {
				t.Errorf("%d requests were sent", n)
			}
		})
	}
}

func TestTokenRenew(t *testing.T) {
	t.Parallel()
	const table = `Key                  Value
---                  -----
token_accessor       ` + childAcc + `
token_duration       30m
token_renewable      true
token_policies       [default]
identity_policies    []
policies             [default]
`
	tests := []struct {
		name   string
		args   []string
		stdin  string
		method string
		uri    string
		body   map[string]any
	}{
		{name: "self", method: http.MethodPut, uri: "/v1/auth/token/renew-self",
			body: map[string]any{"increment": float64(0)}},
		{name: "self with increment", args: []string{"-increment=2h"}, method: http.MethodPut, uri: "/v1/auth/token/renew-self",
			body: map[string]any{"increment": float64(7200)}},
		{name: "token", args: []string{"-increment=30m", childToken}, method: http.MethodPut, uri: "/v1/auth/token/renew",
			body: map[string]any{"token": childToken, "increment": float64(1800)}},
		{name: "token from stdin", args: []string{"-i", "90", "-"}, stdin: childToken, method: http.MethodPut,
			uri: "/v1/auth/token/renew", body: map[string]any{"token": childToken, "increment": float64(90)}},
		{name: "accessor", args: []string{"-accessor", childAcc}, method: http.MethodPost, uri: "/v1/auth/token/renew-accessor",
			body: map[string]any{"accessor": childAcc, "increment": float64(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"PUT /v1/auth/token/renew-self":      {200, renewAnswer},
				"PUT /v1/auth/token/renew":           {200, renewAnswer},
				"POST /v1/auth/token/renew-accessor": {200, strings.Replace(renewAnswer, childToken, "", 1)},
			})
			r := f.run(t, tt.stdin, 0, append([]string{"token", "renew"}, tt.args...)...)
			checkScriptRequest(t, f.only(t), tt.method, tt.uri, tt.body)
			if r.stdout != table {
				t.Errorf("stdout:\n%s\nwant\n%s", r.stdout, table)
			}
		})
	}

	f := newScriptFake(t, map[string]scriptAnswer{"PUT /v1/auth/token/renew-self": {200, renewAnswer}})
	if r := f.run(t, "", 0, "token", "renew", "-field=token"); r.stdout != childToken {
		t.Errorf("-field=token printed %q", r.stdout)
	}
	if r := f.run(t, "", 0, "token", "renew", "-field=token_duration"); r.stdout != "1800" {
		t.Errorf("-field=token_duration printed %q", r.stdout)
	}
	r := f.run(t, "", 0, "token", "renew", "-format=json")
	var env struct {
		Auth struct {
			ClientToken   string `json:"client_token"`
			LeaseDuration int    `json:"lease_duration"`
		} `json:"auth"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil || env.Auth.LeaseDuration != 1800 || env.Auth.ClientToken != childToken {
		t.Errorf("json = %+v, %v", env, err)
	}
}

func TestTokenRenewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		code    int
		stderr  string
		noCalls bool
	}{
		{name: "bad increment", args: []string{"-increment=later"}, code: 2, stderr: `invalid -increment "later"`, noCalls: true},
		{name: "accessor without argument", args: []string{"-accessor"}, code: 2,
			stderr: "Not enough arguments with -accessor (expected 1, got 0)", noCalls: true},
		{name: "two tokens", args: []string{"a", "b"}, code: 2, stderr: "Too many arguments (expected 1, got 2)", noCalls: true},
		{name: "not renewable", code: 1, stderr: "Error renewing token: Error making API request."},
		{name: "unknown token", args: []string{"hvs.UNKNOWNsecretTOKEN"}, code: 1, stderr: "* token not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"PUT /v1/auth/token/renew-self": {400, `{"errors":["lease is not renewable"]}`},
				"PUT /v1/auth/token/renew":      {400, `{"errors":["token not found"]}`},
			})
			r := f.run(t, "", tt.code, append([]string{"token", "renew"}, tt.args...)...)
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.stderr)
			}
			if strings.Contains(r.stdout+r.stderr, "UNKNOWNsecret") {
				t.Errorf("the output shows the token:\n%s%s", r.stdout, r.stderr)
			}
			if n := len(f.requests()); tt.noCalls && n != 0 {
				t.Errorf("%d requests were sent", n)
			}
		})
	}
}

func TestTokenRevoke(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		stdin  string
		method string
		uri    string
		body   map[string]any
	}{
		{name: "tree", args: []string{childToken}, method: http.MethodPut, uri: "/v1/auth/token/revoke",
			body: map[string]any{"token": childToken}},
		{name: "tree from stdin", args: []string{"-"}, stdin: childToken + "\n", method: http.MethodPut,
			uri: "/v1/auth/token/revoke", body: map[string]any{"token": childToken}},
		{name: "self", args: []string{"-self"}, method: http.MethodPut, uri: "/v1/auth/token/revoke-self"},
		{name: "accessor", args: []string{"-accessor", childAcc}, method: http.MethodPost,
			uri: "/v1/auth/token/revoke-accessor", body: map[string]any{"accessor": childAcc}},
		{name: "orphan", args: []string{"-mode=orphan", childToken}, method: http.MethodPut,
			uri: "/v1/auth/token/revoke-orphan", body: map[string]any{"token": childToken}},
		{name: "path", args: []string{"-mode=path", "auth/approle/login"}, method: http.MethodPut,
			uri: "/v1/sys/leases/revoke-prefix/auth/approle/login", body: map[string]any{"sync": true}},
		{name: "path with slashes", args: []string{"-mode", "path", "/auth/approle/"}, method: http.MethodPut,
			uri: "/v1/sys/leases/revoke-prefix/auth/approle/", body: map[string]any{"sync": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"PUT /v1/auth/token/revoke":                           {204, ""},
				"PUT /v1/auth/token/revoke-self":                      {204, ""},
				"POST /v1/auth/token/revoke-accessor":                 {204, ""},
				"PUT /v1/auth/token/revoke-orphan":                    {204, ""},
				"PUT /v1/sys/leases/revoke-prefix/auth/approle/login": {204, ""},
				"PUT /v1/sys/leases/revoke-prefix/auth/approle/":      {204, ""},
			})
			r := f.run(t, tt.stdin, 0, append([]string{"token", "revoke"}, tt.args...)...)
			checkScriptRequest(t, f.only(t), tt.method, tt.uri, tt.body)
			if r.stdout != "Success! Revoked token (if it existed)\n" || r.stderr != "" {
				t.Errorf("stdout %q, stderr %q", r.stdout, r.stderr)
			}
		})
	}

	// An unknown accessor is a warning with a 200, still a success; other
	// formats print no success line.
	f := newScriptFake(t, map[string]scriptAnswer{
		"POST /v1/auth/token/revoke-accessor": {200, `{"request_id":"r","data":null,"warnings":["No token found with this accessor"],"auth":null}`},
	})
	if r := f.run(t, "", 0, "token", "revoke", "-accessor", "nope"); r.stdout != "Success! Revoked token (if it existed)\n" {
		t.Errorf("unknown accessor: %q", r.stdout)
	}
	if r := f.run(t, "", 0, "token", "revoke", "-format=json", "-accessor", "nope"); r.stdout != "" {
		t.Errorf("json: %q", r.stdout)
	}
}

func TestTokenRevokeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		code    int
		stderr  string
		noCalls bool
	}{
		{name: "nothing", code: 2, stderr: "Not enough arguments (expected 1 or -self, got 0)", noCalls: true},
		{name: "two", args: []string{"a", "b"}, code: 2, stderr: "Too many arguments (expected 1 or -self, got 2)", noCalls: true},
		{name: "self with argument", args: []string{"-self", "a"}, code: 2, stderr: "Too many arguments with -self (expected 0, got 1)", noCalls: true},
		{name: "self and accessor", args: []string{"-self", "-accessor"}, code: 2, stderr: "Cannot use -self with -accessor!", noCalls: true},
		{name: "self and mode", args: []string{"-self", "-mode=orphan"}, code: 2, stderr: "Cannot use -self with -mode!", noCalls: true},
		{name: "accessor and orphan", args: []string{"-accessor", "-mode=orphan", "a"}, code: 2, stderr: "Cannot use -accessor with -mode=orphan!", noCalls: true},
		{name: "accessor and path", args: []string{"-accessor", "-mode=path", "a"}, code: 2, stderr: "Cannot use -accessor with -mode=path!", noCalls: true},
		{name: "bad mode", args: []string{"-mode=all", "a"}, code: 2, stderr: "Invalid mode: all", noCalls: true},
		{name: "bad path", args: []string{"-mode=path", "auth/../sys"}, code: 1, stderr: `invalid lease prefix "auth/../sys"`, noCalls: true},
		{name: "orphan without sudo", args: []string{"-mode=orphan", "hvs.UNKNOWNsecretTOKEN"}, code: 1,
			stderr: "Error revoking token: Error making API request."},
		{name: "server error", args: []string{"hvs.UNKNOWNsecretTOKEN"}, code: 1, stderr: "* permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"PUT /v1/auth/token/revoke-orphan": {400, `{"errors":["root or sudo privileges required to revoke and orphan"]}`},
				"PUT /v1/auth/token/revoke":        {403, `{"errors":["permission denied"]}`},
			})
			r := f.run(t, "", tt.code, append([]string{"token", "revoke"}, tt.args...)...)
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q", r.stdout)
			}
			if strings.Contains(r.stderr, "UNKNOWNsecret") {
				t.Errorf("the error shows the token: %s", r.stderr)
			}
			if n := len(f.requests()); tt.noCalls && n != 0 {
				t.Errorf("%d requests were sent", n)
			}
		})
	}
}

// capsAnswer is Vigil's sys/capabilities* answer for the given path to
// capabilities pairs: data, and the same keys injected at the top level.
func capsAnswer(pairs ...string) string {
	data := map[string]any{}
	for i := 0; i+1 < len(pairs); i += 2 {
		data[pairs[i]] = strings.Split(pairs[i+1], ",")
		if i == 0 {
			data["capabilities"] = data[pairs[i]]
		}
	}
	env := map[string]any{"request_id": "r", "lease_id": "", "renewable": false, "lease_duration": 0, "data": data,
		"warnings": nil, "auth": nil, "mount_type": "system"}
	for k, v := range data {
		env[k] = v
	}
	b, _ := json.Marshal(env)
	return string(b)
}

func TestTokenCapabilities(t *testing.T) {
	t.Parallel()
	one := capsAnswer("secret/data/app", "read,list")
	two := capsAnswer("secret/data/app", "read,list", "sys/mounts", "deny")
	tests := []struct {
		name   string
		args   []string
		stdin  string
		answer string
		uri    string
		body   map[string]any
		stdout string
	}{
		{
			name: "own token, one path", args: []string{"secret/data/app"}, answer: one,
			uri: "/v1/sys/capabilities-self", body: map[string]any{"paths": []any{"secret/data/app"}},
			stdout: "list, read\n",
		},
		{
			name: "leading slash trimmed", args: []string{"/secret/data/app"}, answer: one,
			uri: "/v1/sys/capabilities-self", body: map[string]any{"paths": []any{"secret/data/app"}},
			stdout: "list, read\n",
		},
		{
			name: "one path json", args: []string{"-format=json", "secret/data/app"}, answer: one,
			uri: "/v1/sys/capabilities-self", body: map[string]any{"paths": []any{"secret/data/app"}},
			stdout: "[\n  \"list\",\n  \"read\"\n]\n",
		},
		{
			name: "another token", args: []string{childToken, "secret/data/app"}, answer: one,
			uri: "/v1/sys/capabilities", body: map[string]any{"token": childToken, "paths": []any{"secret/data/app"}},
			stdout: "list, read\n",
		},
		{
			name: "token from stdin, several paths", args: []string{"-", "secret/data/app", "sys/mounts", "secret/data/app"},
			stdin: childToken + "\n", answer: two,
			uri: "/v1/sys/capabilities", body: map[string]any{"token": childToken, "paths": []any{"secret/data/app", "sys/mounts"}},
			stdout: "Path               Capabilities\n----               ------------\nsecret/data/app    list, read\nsys/mounts         deny\n",
		},
		{
			name: "own token, several paths", args: []string{"-self", "secret/data/app", "sys/mounts"}, answer: two,
			uri: "/v1/sys/capabilities-self", body: map[string]any{"paths": []any{"secret/data/app", "sys/mounts"}},
			stdout: "Path               Capabilities\n----               ------------\nsecret/data/app    list, read\nsys/mounts         deny\n",
		},
		{
			name: "several paths json", args: []string{"-self", "-format=json", "secret/data/app", "sys/mounts"}, answer: two,
			uri: "/v1/sys/capabilities-self", body: map[string]any{"paths": []any{"secret/data/app", "sys/mounts"}},
			stdout: "{\n  \"secret/data/app\": [\n    \"list\",\n    \"read\"\n  ],\n  \"sys/mounts\": [\n    \"deny\"\n  ]\n}\n",
		},
		{
			name: "field", args: []string{"-self", "-field=sys/mounts", "secret/data/app", "sys/mounts"}, answer: two,
			uri: "/v1/sys/capabilities-self", body: map[string]any{"paths": []any{"secret/data/app", "sys/mounts"}},
			stdout: "deny",
		},
		{
			name: "accessor", args: []string{"-accessor", childAcc, "secret/data/app"}, answer: one,
			uri: "/v1/sys/capabilities-accessor", body: map[string]any{"accessor": childAcc, "paths": []any{"secret/data/app"}},
			stdout: "list, read\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"POST /v1/sys/capabilities-self":     {200, tt.answer},
				"POST /v1/sys/capabilities":          {200, tt.answer},
				"POST /v1/sys/capabilities-accessor": {200, tt.answer},
			})
			r := f.run(t, tt.stdin, 0, append([]string{"token", "capabilities"}, tt.args...)...)
			checkScriptRequest(t, f.only(t), http.MethodPost, tt.uri, tt.body)
			if r.stdout != tt.stdout {
				t.Errorf("stdout:\n%q\nwant\n%q", r.stdout, tt.stdout)
			}
		})
	}
}

func TestTokenCapabilitiesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		code    int
		stderr  string
		noCalls bool
	}{
		{name: "nothing", code: 2, stderr: "Not enough arguments (expected 1 or more, got 0)", noCalls: true},
		{name: "accessor alone", args: []string{"-accessor", "acc"}, code: 2,
			stderr: "Not enough arguments with -accessor (expected 2 or more, got 1)", noCalls: true},
		{name: "self and accessor", args: []string{"-self", "-accessor", "a", "b"}, code: 2,
			stderr: "Cannot use -self with -accessor!", noCalls: true},
		{name: "empty path", args: []string{"-self", "a", " "}, code: 2, stderr: "a path is empty", noCalls: true},
		{name: "invalid token", args: []string{"hvs.UNKNOWNsecretTOKEN", "secret/x"}, code: 1,
			stderr: "Error listing capabilities: Error making API request."},
		{name: "forbidden", args: []string{"secret/x"}, code: 1, stderr: "* permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"POST /v1/sys/capabilities":      {400, `{"errors":["invalid token"]}`},
				"POST /v1/sys/capabilities-self": {403, `{"errors":["permission denied"]}`},
			})
			r := f.run(t, "", tt.code, append([]string{"token", "capabilities"}, tt.args...)...)
			if !strings.Contains(r.stderr, tt.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.stderr)
			}
			if strings.Contains(r.stderr, "UNKNOWNsecret") {
				t.Errorf("the error shows the token: %s", r.stderr)
			}
			if n := len(f.requests()); tt.noCalls && n != 0 {
				t.Errorf("%d requests were sent", n)
			}
		})
	}
}

func TestTokenAndLeaseHelp(t *testing.T) {
	t.Parallel()
	r := run(t, nil, runOpts{}, "-h")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{"\n    token ", "\n    lease "} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("vigil -h does not list %q:\n%s", strings.TrimSpace(want), r.stdout)
		}
	}
	for group, subs := range map[string][]string{
		"token": {"capabilities", "create", "lookup", "renew", "revoke"},
		"lease": {"lookup", "renew", "revoke"},
	} {
		r := run(t, nil, runOpts{}, group, "-h")
		if r.code != 0 {
			t.Fatalf("%s -h: exit %d", group, r.code)
		}
		for _, s := range subs {
			if !strings.Contains(r.stdout, "\n    "+s+" ") {
				t.Errorf("vigil %s -h does not list %s:\n%s", group, s, r.stdout)
			}
			h := run(t, nil, runOpts{}, group, s, "-h")
			if h.code != 0 || !strings.HasPrefix(h.stdout, "Usage: vigil "+group+" "+s+" ") {
				t.Errorf("vigil %s %s -h: exit %d\n%s", group, s, h.code, h.stdout)
			}
		}
	}
}
