package api

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// createdAuth is an auth/token/create answer as Vigil's server gives it
// (identity_policies is omitted when empty).
const createdAuth = `{"request_id":"r","lease_id":"","renewable":false,"lease_duration":0,"data":null,
	"warnings":["Policy \"web\" does not exist"],
	"auth":{"client_token":"hvs.child","accessor":"acc-1","policies":["default","web"],"token_policies":["default","web"],
	"metadata":{"team":"a"},"lease_duration":3600,"renewable":true,"entity_id":"","token_type":"service","orphan":false,
	"num_uses":0,"mfa_requirement":null},"mount_type":"token"}`

func TestTokenCreate(t *testing.T) {
	t.Parallel()
	yes, no := true, false
	tests := []struct {
		name   string
		create func(context.Context, *TokenAuth, TokenCreateRequest) (*Secret, error)
		req    TokenCreateRequest
		path   string
		body   map[string]any
	}{
		{
			name: "defaults send an empty object",
			create: func(ctx context.Context, ta *TokenAuth, r TokenCreateRequest) (*Secret, error) {
				return ta.Create(ctx, r)
			},
			path: "/v1/auth/token/create",
			body: map[string]any{},
		},
		{
			name: "every field",
			create: func(ctx context.Context, ta *TokenAuth, r TokenCreateRequest) (*Secret, error) {
				return ta.Create(ctx, r)
			},
			req: TokenCreateRequest{
				ID: "custom-id", Policies: []string{"web", "db"}, Metadata: map[string]string{"team": "a"},
				NoParent: true, NoDefaultPolicy: true, Renewable: &no, TTL: "1h0m0s", ExplicitMaxTTL: "2h0m0s",
				Period: "30m0s", DisplayName: "ci", NumUses: 3, Type: "service", EntityAlias: "alias",
			},
			path: "/v1/auth/token/create",
			body: map[string]any{
				"id": "custom-id", "policies": []any{"web", "db"}, "meta": map[string]any{"team": "a"},
				"no_parent": true, "no_default_policy": true, "renewable": false, "ttl": "1h0m0s",
				"explicit_max_ttl": "2h0m0s", "period": "30m0s", "display_name": "ci", "num_uses": float64(3),
				"type": "service", "entity_alias": "alias",
			},
		},
		{
			name: "orphan",
			create: func(ctx context.Context, ta *TokenAuth, r TokenCreateRequest) (*Secret, error) {
				return ta.CreateOrphan(ctx, r)
			},
			req:  TokenCreateRequest{Renewable: &yes},
			path: "/v1/auth/token/create-orphan",
			body: map[string]any{"renewable": true},
		},
		{
			name: "role",
			create: func(ctx context.Context, ta *TokenAuth, r TokenCreateRequest) (*Secret, error) {
				return ta.CreateWithRole(ctx, "deploy", r)
			},
			req:  TokenCreateRequest{Policies: []string{"web"}},
			path: "/v1/auth/token/create/deploy",
			body: map[string]any{"policies": []any{"web"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, seen := fake(t, func(request) (int, string) { return 200, createdAuth })
			s, err := tt.create(t.Context(), c.TokenAuth(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			r := (*seen)[0]
			if r.Method != http.MethodPost || r.Path != tt.path || r.RawQuery != "" || r.Token != "tok" || r.ContentType != "application/json" {
				t.Errorf("request = %+v", r)
			}
			if !reflect.DeepEqual(r.Body, tt.body) {
				t.Errorf("body = %#v\nwant %#v", r.Body, tt.body)
			}
			want := &SecretAuth{
				ClientToken: "hvs.child", Accessor: "acc-1", Policies: []string{"default", "web"},
				TokenPolicies: []string{"default", "web"}, Metadata: map[string]string{"team": "a"},
				LeaseDuration: 3600, Renewable: true, TokenType: "service",
			}
			if s == nil || !reflect.DeepEqual(s.Auth, want) {
				t.Fatalf("auth = %+v\nwant %+v", s, want)
			}
			if len(s.Warnings) != 1 || s.Warnings[0] != `Policy "web" does not exist` {
				t.Errorf("warnings = %q", s.Warnings)
			}
		})
	}
}

func TestTokenCreateWithRoleNames(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) { return 200, createdAuth })
	for _, role := range []string{"", "a/b", ".", "..", "../create-orphan"} {
		if _, err := c.TokenAuth().CreateWithRole(t.Context(), role, TokenCreateRequest{}); err == nil {
			t.Errorf("CreateWithRole(%q) succeeded", role)
		}
	}
	if len(*seen) != 0 {
		t.Errorf("invalid role names reached the server: %+v", *seen)
	}
}

func TestTokenLookupRenewRevokeRequests(t *testing.T) {
	t.Parallel()
	type call struct {
		name   string
		do     func(context.Context, *TokenAuth) (*Secret, error)
		method string
		path   string
		body   map[string]any
	}
	calls := []call{
		{"lookup", func(ctx context.Context, ta *TokenAuth) (*Secret, error) { return ta.Lookup(ctx, "hvs.other") },
			http.MethodPost, "/v1/auth/token/lookup", map[string]any{"token": "hvs.other"}},
		{"lookup-self", func(ctx context.Context, ta *TokenAuth) (*Secret, error) { return ta.LookupSelf(ctx) },
			http.MethodGet, "/v1/auth/token/lookup-self", nil},
		{"lookup-accessor", func(ctx context.Context, ta *TokenAuth) (*Secret, error) { return ta.LookupAccessor(ctx, "acc-1") },
			http.MethodPost, "/v1/auth/token/lookup-accessor", map[string]any{"accessor": "acc-1"}},
		{"renew", func(ctx context.Context, ta *TokenAuth) (*Secret, error) {
			return ta.Renew(ctx, "hvs.other", 90*time.Minute)
		},
			http.MethodPut, "/v1/auth/token/renew", map[string]any{"token": "hvs.other", "increment": float64(5400)}},
		{"renew-self", func(ctx context.Context, ta *TokenAuth) (*Secret, error) { return ta.RenewSelf(ctx, 0) },
			http.MethodPut, "/v1/auth/token/renew-self", map[string]any{"increment": float64(0)}},
		{"renew-self fractions are cut", func(ctx context.Context, ta *TokenAuth) (*Secret, error) {
			return ta.RenewSelf(ctx, 1500*time.Millisecond)
		},
			http.MethodPut, "/v1/auth/token/renew-self", map[string]any{"increment": float64(1)}},
		{"renew-accessor", func(ctx context.Context, ta *TokenAuth) (*Secret, error) {
			return ta.RenewAccessor(ctx, "acc-1", time.Hour)
		},
			http.MethodPost, "/v1/auth/token/renew-accessor", map[string]any{"accessor": "acc-1", "increment": float64(3600)}},
		{"revoke", func(ctx context.Context, ta *TokenAuth) (*Secret, error) { return nil, ta.Revoke(ctx, "hvs.other") },
			http.MethodPut, "/v1/auth/token/revoke", map[string]any{"token": "hvs.other"}},
		{"revoke-orphan", func(ctx context.Context, ta *TokenAuth) (*Secret, error) {
			return nil, ta.RevokeOrphan(ctx, "hvs.other")
		},
			http.MethodPut, "/v1/auth/token/revoke-orphan", map[string]any{"token": "hvs.other"}},
		{"revoke-accessor", func(ctx context.Context, ta *TokenAuth) (*Secret, error) { return nil, ta.RevokeAccessor(ctx, "acc-1") },
			http.MethodPost, "/v1/auth/token/revoke-accessor", map[string]any{"accessor": "acc-1"}},
		{"revoke-self", func(ctx context.Context, ta *TokenAuth) (*Secret, error) { return nil, ta.RevokeSelf(ctx) },
			http.MethodPut, "/v1/auth/token/revoke-self", nil},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, seen := fake(t, func(r request) (int, string) {
				if strings.Contains(r.Path, "revoke") {
					return 204, ""
				}
				return 200, `{"request_id":"r","data":{"id":"x","ttl":60}}`
			})
			if _, err := tt.do(t.Context(), c.TokenAuth()); err != nil {
				t.Fatal(err)
			}
			if len(*seen) != 1 {
				t.Fatalf("requests = %+v", *seen)
			}
			r := (*seen)[0]
			if r.Method != tt.method || r.Path != tt.path || r.RawQuery != "" || r.Token != "tok" {
				t.Errorf("request = %s %s?%s (token %q), want %s %s", r.Method, r.Path, r.RawQuery, r.Token, tt.method, tt.path)
			}
			if !reflect.DeepEqual(r.Body, tt.body) {
				t.Errorf("body = %#v, want %#v", r.Body, tt.body)
			}
		})
	}
}

func TestTokenLookupDecodesData(t *testing.T) {
	t.Parallel()
	c, _ := fake(t, func(request) (int, string) {
		return 200, `{"request_id":"r","data":{"id":"hvs.x","ttl":3542,"expire_time":null,"renewable":true,"policies":["default"]}}`
	})
	s, err := c.TokenAuth().Lookup(t.Context(), "hvs.x")
	if err != nil {
		t.Fatal(err)
	}
	if ttl, err := s.Data["ttl"].(interface{ Int64() (int64, error) }).Int64(); err != nil || ttl != 3542 {
		t.Errorf("ttl = %v (%T)", s.Data["ttl"], s.Data["ttl"])
	}
	if _, ok := s.Data["expire_time"]; !ok || s.Data["expire_time"] != nil {
		t.Errorf("expire_time = %v, %v", s.Data["expire_time"], ok)
	}
}

func TestTokenEmptyArgumentsRefused(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) { return 204, "" })
	ta, ctx := c.TokenAuth(), t.Context()
	checks := map[string]error{}
	_, checks["Lookup"] = ta.Lookup(ctx, "")
	_, checks["LookupAccessor"] = ta.LookupAccessor(ctx, "")
	_, checks["Renew"] = ta.Renew(ctx, "", 0)
	_, checks["RenewAccessor"] = ta.RenewAccessor(ctx, "", 0)
	checks["Revoke"] = ta.Revoke(ctx, "")
	checks["RevokeOrphan"] = ta.RevokeOrphan(ctx, "")
	checks["RevokeAccessor"] = ta.RevokeAccessor(ctx, "")
	_, checks["Capabilities"] = ta.Capabilities(ctx, "", []string{"a"})
	_, checks["CapabilitiesAccessor"] = ta.CapabilitiesAccessor(ctx, "", []string{"a"})
	_, checks["CapabilitiesSelf"] = ta.CapabilitiesSelf(ctx, nil)
	_, checks["CapabilitiesSelf empty path"] = ta.CapabilitiesSelf(ctx, []string{"a", ""})
	for name, err := range checks {
		if err == nil {
			t.Errorf("%s with an empty argument succeeded", name)
		}
	}
	if len(*seen) != 0 {
		t.Errorf("requests were sent: %+v", *seen)
	}
}

func TestTokenErrorsDoNotEchoTheToken(t *testing.T) {
	t.Parallel()
	const secretTok = "hvs.SECRETVALUE"
	c, _ := fake(t, func(r request) (int, string) {
		if r.Path == "/v1/sys/capabilities" {
			return 400, `{"errors":["invalid token"]}`
		}
		return 403, `{"errors":["bad token"]}`
	})
	ta, ctx := c.TokenAuth(), t.Context()
	_, e1 := ta.Lookup(ctx, secretTok)
	_, e2 := ta.Renew(ctx, secretTok, 0)
	e3 := ta.Revoke(ctx, secretTok)
	e4 := ta.RevokeOrphan(ctx, secretTok)
	_, e5 := ta.Capabilities(ctx, secretTok, []string{"a"})
	for i, err := range []error{e1, e2, e3, e4, e5} {
		if err == nil {
			t.Fatalf("call %d succeeded", i+1)
		}
		if strings.Contains(err.Error(), "SECRETVALUE") {
			t.Errorf("call %d: error shows the token: %v", i+1, err)
		}
	}
	var re *ResponseError
	if !errors.As(e1, &re) || re.StatusCode != 403 || !re.HasMessage("bad token") {
		t.Errorf("lookup error = %v", e1)
	}
}

func TestTokenCapabilities(t *testing.T) {
	t.Parallel()
	// Vigil's answer: data and, injected, the same keys at the top level.
	const answer = `{"request_id":"r","auth":null,"capabilities":["read"],"secret/data/a":["read"],"sys/mounts":["deny"],
		"data":{"capabilities":["read"],"secret/data/a":["read"],"sys/mounts":["deny"]}}`
	c, seen := fake(t, func(request) (int, string) { return 200, answer })
	ta, ctx := c.TokenAuth(), t.Context()
	paths := []string{"secret/data/a", "sys/mounts"}
	want := map[string][]string{"secret/data/a": {"read"}, "sys/mounts": {"deny"}}

	got, err := ta.CapabilitiesSelf(ctx, paths)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("CapabilitiesSelf = %v, %v", got, err)
	}
	got, err = ta.Capabilities(ctx, "hvs.other", paths)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Capabilities = %v, %v", got, err)
	}
	got, err = ta.CapabilitiesAccessor(ctx, "acc-1", paths)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("CapabilitiesAccessor = %v, %v", got, err)
	}
	wantReqs := []struct {
		path string
		body map[string]any
	}{
		{"/v1/sys/capabilities-self", map[string]any{"paths": []any{"secret/data/a", "sys/mounts"}}},
		{"/v1/sys/capabilities", map[string]any{"token": "hvs.other", "paths": []any{"secret/data/a", "sys/mounts"}}},
		{"/v1/sys/capabilities-accessor", map[string]any{"accessor": "acc-1", "paths": []any{"secret/data/a", "sys/mounts"}}},
	}
	for i, w := range wantReqs {
		r := (*seen)[i]
		if r.Method != http.MethodPost || r.Path != w.path || !reflect.DeepEqual(r.Body, w.body) {
			t.Errorf("request %d = %s %s %v, want POST %s %v", i, r.Method, r.Path, r.Body, w.path, w.body)
		}
	}
}

func TestTokenCapabilitiesAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		code    int
		paths   []string
		want    map[string][]string
		wantErr bool
	}{
		{name: "legacy single answer", body: `{"data":{"capabilities":["read","update"]}}`, code: 200,
			paths: []string{"a"}, want: map[string][]string{"a": {"read", "update"}}},
		{name: "missing path", body: `{"data":{"capabilities":["read"],"a":["read"]}}`, code: 200,
			paths: []string{"a", "b"}, wantErr: true},
		{name: "no data", body: ``, code: 204, paths: []string{"a"}, wantErr: true},
		{name: "not a list", body: `{"data":{"a":"read"}}`, code: 200, paths: []string{"a"}, wantErr: true},
		{name: "server error", body: `{"errors":["permission denied"]}`, code: 403, paths: []string{"a"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := fake(t, func(request) (int, string) { return tt.code, tt.body })
			got, err := c.TokenAuth().CapabilitiesSelf(t.Context(), tt.paths)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
