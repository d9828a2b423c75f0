package cli

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// leaseID is a lease id as Vigil's server forms them: the creating path
// plus a random suffix.
const leaseID = "database/creds/readonly/2f6aB7cD9eF0gH1iJ2kL3mN4"

// Answers of Vigil's server (sys/leases/lookup, sys/leases/renew).
const (
	leaseLookupAnswer = `{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":{
		"expire_time":"2026-11-23T12:15:41.836882035Z","id":"` + leaseID + `","issue_time":"2026-11-23T11:15:41.836938429Z",
		"last_renewal":null,"path":"database/creds/readonly","renewable":true,"ttl":3595},
		"wrap_info":null,"warnings":null,"auth":null,"mount_type":"system"}`
	leaseRenewAnswer = `{"request_id":"r","lease_id":"` + leaseID + `","renewable":true,"lease_duration":3600,"data":null,
		"wrap_info":null,"warnings":null,"auth":null,"mount_type":"system"}`
)

func TestLeaseLookup(t *testing.T) {
	t.Parallel()
	f := newScriptFake(t, map[string]scriptAnswer{"PUT /v1/sys/leases/lookup": {200, leaseLookupAnswer}})
	r := f.run(t, "", 0, "lease", "lookup", leaseID)
	checkScriptRequest(t, f.only(t), http.MethodPut, "/v1/sys/leases/lookup", map[string]any{"lease_id": leaseID})
	const table = `Key             Value
---             -----
expire_time     2026-11-23T12:15:41.836882035Z
id              ` + leaseID + `
issue_time      2026-11-23T11:15:41.836938429Z
last_renewal    <nil>
path            database/creds/readonly
renewable       true
ttl             3595
`
	if r.stdout != table || r.stderr != "" {
		t.Errorf("stdout:\n%s\nwant\n%s\nstderr: %q", r.stdout, table, r.stderr)
	}

	r = f.run(t, "", 0, "lease", "lookup", "-format=json", "/"+leaseID)
	var env struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil || env.Data["ttl"] != float64(3595) || env.Data["id"] != leaseID {
		t.Errorf("json = %v, %v\n%s", env.Data, err, r.stdout)
	}
	if got := f.requests()[1].Body["lease_id"]; got != leaseID {
		t.Errorf("a leading slash was sent: %v", got)
	}
	if r := f.run(t, "", 0, "lease", "lookup", "-field=expire_time", leaseID); r.stdout != "2026-11-23T12:15:41.836882035Z" {
		t.Errorf("-field printed %q", r.stdout)
	}
}

func TestLeaseRenew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		body map[string]any
	}{
		{name: "default increment", args: []string{leaseID}, body: map[string]any{"lease_id": leaseID, "increment": float64(0)}},
		{name: "increment", args: []string{"-increment=1h", leaseID}, body: map[string]any{"lease_id": leaseID, "increment": float64(3600)}},
		{name: "increment in seconds", args: []string{"-increment", "90", leaseID}, body: map[string]any{"lease_id": leaseID, "increment": float64(90)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{"PUT /v1/sys/leases/renew": {200, leaseRenewAnswer}})
			r := f.run(t, "", 0, append([]string{"lease", "renew"}, tt.args...)...)
			checkScriptRequest(t, f.only(t), http.MethodPut, "/v1/sys/leases/renew", tt.body)
			const table = `Key                Value
---                -----
lease_id           ` + leaseID + `
lease_duration     1h
lease_renewable    true
`
			if r.stdout != table {
				t.Errorf("stdout:\n%s\nwant\n%s", r.stdout, table)
			}
		})
	}
	f := newScriptFake(t, map[string]scriptAnswer{"PUT /v1/sys/leases/renew": {200, leaseRenewAnswer}})
	if r := f.run(t, "", 0, "lease", "renew", "-field=lease_duration", leaseID); r.stdout != "1h" {
		t.Errorf("-field=lease_duration printed %q", r.stdout)
	}
	r := f.run(t, "", 0, "lease", "renew", "-format=json", leaseID)
	var env struct {
		LeaseID       string `json:"lease_id"`
		LeaseDuration int    `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &env); err != nil || env.LeaseID != leaseID || env.LeaseDuration != 3600 || !env.Renewable {
		t.Errorf("json = %+v, %v", env, err)
	}
}

func TestLeaseLookupAndRenewErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		code    int
		stderr  string
		noCalls bool
	}{
		{name: "lookup without id", args: []string{"lookup"}, code: 2, stderr: "Error: Missing ID!", noCalls: true},
		{name: "lookup of /", args: []string{"lookup", "/"}, code: 2, stderr: "Error: Missing ID!", noCalls: true},
		{name: "lookup of two", args: []string{"lookup", "a", "b"}, code: 2, stderr: "Too many arguments (expected 1, got 2)", noCalls: true},
		{name: "renew without id", args: []string{"renew"}, code: 2, stderr: "Error: Missing ID!", noCalls: true},
		{name: "bad increment", args: []string{"renew", "-increment=-5m", leaseID}, code: 2, stderr: `invalid -increment "-5m"`, noCalls: true},
		{name: "lookup of an unknown lease", args: []string{"lookup", "x/y"}, code: 1,
			stderr: "Error looking up lease id x/y: Error making API request.\n\nURL: PUT "},
		{name: "renew of a token lease", args: []string{"renew", "auth/token/create/abc"}, code: 1,
			stderr: "Error renewing auth/token/create/abc: Error making API request."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"PUT /v1/sys/leases/lookup": {400, `{"errors":["lease not found"]}`},
				"PUT /v1/sys/leases/renew":  {400, `{"errors":["tokens cannot be renewed through this endpoint"]}`},
			})
			r := f.run(t, "", tt.code, append([]string{"lease"}, tt.args...)...)
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

func TestLeaseRevoke(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		args   []string
		uri    string
		body   map[string]any
		stdout string
		stderr string
	}{
		{
			name: "queued", args: []string{leaseID},
			uri: "/v1/sys/leases/revoke/" + leaseID, body: map[string]any{"sync": false},
			stdout: "All revocation operations queued successfully!\n",
		},
		{
			name: "sync", args: []string{"-sync", leaseID},
			uri: "/v1/sys/leases/revoke/" + leaseID, body: map[string]any{"sync": true},
			stdout: "Success! Revoked lease: " + leaseID + "\n",
		},
		{
			name: "escaped once", args: []string{"kv/my app/100%"},
			uri: "/v1/sys/leases/revoke/kv/my%20app/100%25", body: map[string]any{"sync": false},
			stdout: "All revocation operations queued successfully!\n",
		},
		{
			name: "prefix queued", args: []string{"-prefix", "aws/creds/deploy"},
			uri: "/v1/sys/leases/revoke-prefix/aws/creds/deploy", body: map[string]any{"sync": false},
			stdout: "All revocation operations queued successfully!\n",
		},
		{
			name: "prefix sync", args: []string{"-prefix", "-sync", "aws/creds/"},
			uri: "/v1/sys/leases/revoke-prefix/aws/creds/", body: map[string]any{"sync": true},
			stdout: "Success! Revoked any leases with prefix: aws/creds/\n",
		},
		{
			name: "force", args: []string{"-force", "-prefix", "consul/creds"},
			uri:    "/v1/sys/leases/revoke-force/consul/creds",
			stdout: "Success! Force revoked any leases with prefix: consul/creds\n",
			stderr: "Warning! Force-removing leases can cause Vigil to become out of sync with\nsecret engines!\n",
		},
		{
			name: "force short flag, sync ignored", args: []string{"-f", "-prefix", "-sync", "consul/creds"},
			uri:    "/v1/sys/leases/revoke-force/consul/creds",
			stdout: "Success! Force revoked any leases with prefix: consul/creds\n",
			stderr: "Warning! Force-removing leases can cause Vigil to become out of sync with\nsecret engines!\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"PUT /v1/sys/leases/revoke/" + leaseID:              {204, ""},
				"PUT /v1/sys/leases/revoke/kv/my app/100%":          {204, ""},
				"PUT /v1/sys/leases/revoke-prefix/aws/creds/deploy": {204, ""},
				"PUT /v1/sys/leases/revoke-prefix/aws/creds/":       {204, ""},
				"PUT /v1/sys/leases/revoke-force/consul/creds":      {204, ""},
			})
			r := f.run(t, "", 0, append([]string{"lease", "revoke"}, tt.args...)...)
			checkScriptRequest(t, f.only(t), http.MethodPut, tt.uri, tt.body)
			if r.stdout != tt.stdout || r.stderr != tt.stderr {
				t.Errorf("stdout %q, stderr %q\nwant %q, %q", r.stdout, r.stderr, tt.stdout, tt.stderr)
			}
		})
	}

	// A queued revocation answers 202 on Vault; other formats print no
	// line.
	f := newScriptFake(t, map[string]scriptAnswer{"PUT /v1/sys/leases/revoke/" + leaseID: {202, ""}})
	if r := f.run(t, "", 0, "lease", "revoke", leaseID); r.stdout != "All revocation operations queued successfully!\n" {
		t.Errorf("202: %q", r.stdout)
	}
	if r := f.run(t, "", 0, "lease", "revoke", "-format=json", leaseID); r.stdout != "" {
		t.Errorf("json: %q", r.stdout)
	}
}

func TestLeaseRevokeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		code    int
		stderr  string
		noCalls bool
	}{
		{name: "nothing", code: 2, stderr: "Not enough arguments (expected 1, got 0)", noCalls: true},
		{name: "two", args: []string{"a", "b"}, code: 2, stderr: "Too many arguments (expected 1, got 2)", noCalls: true},
		{name: "force without prefix", args: []string{"-force", "consul/creds"}, code: 2,
			stderr: "Specifying -force requires also specifying -prefix", noCalls: true},
		{name: "dot segment", args: []string{"database/../sys/seal"}, code: 1,
			stderr: `Error revoking lease database/../sys/seal: api: invalid lease id "database/../sys/seal"`, noCalls: true},
		{name: "unknown lease", args: []string{"-sync", "x/y"}, code: 1,
			stderr: "Error revoking lease x/y: Error making API request.\n\nURL: PUT "},
		{name: "prefix forbidden", args: []string{"-prefix", "x/y"}, code: 1,
			stderr: "Error revoking leases with prefix x/y: Error making API request."},
		{name: "force forbidden", args: []string{"-force", "-prefix", "x/y"}, code: 1,
			stderr: "Error force revoking leases with prefix x/y: Error making API request."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newScriptFake(t, map[string]scriptAnswer{
				"PUT /v1/sys/leases/revoke/x/y":        {400, `{"errors":["lease not found"]}`},
				"PUT /v1/sys/leases/revoke-prefix/x/y": {403, `{"errors":["permission denied"]}`},
				"PUT /v1/sys/leases/revoke-force/x/y":  {403, `{"errors":["permission denied"]}`},
			})
			r := f.run(t, "", tt.code, append([]string{"lease", "revoke"}, tt.args...)...)
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
