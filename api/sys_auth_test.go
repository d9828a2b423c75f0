package api

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
)

// authMountJSON is an auth mount as Vigil's server lists it.
const authMountJSON = `{"type":"approle","description":"apps","accessor":"auth_approle_0a1b2c3d",
	"uuid":"u-1","config":{"default_lease_ttl":3600,"max_lease_ttl":0,"force_no_cache":false,"token_type":"batch"},
	"options":null,"local":true,"seal_wrap":false,"external_entropy_access":false,"plugin_version":"",
	"running_plugin_version":"v0.1.0+builtin.vigil","running_sha256":"","deprecation_status":"supported"}`

func TestSysListAuth(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) {
		return 200, `{"request_id":"r","data":{"approle/":` + authMountJSON + `,
			"token/":{"type":"token","accessor":"auth_token_1","config":{"default_lease_ttl":0,"max_lease_ttl":0,"token_type":"default-service"}}}}`
	})
	ms, err := c.Sys().ListAuth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	r := (*seen)[0]
	if r.Method != http.MethodGet || r.Path != "/v1/sys/auth" || r.RawQuery != "" || r.Token != "tok" || r.Body != nil {
		t.Errorf("request = %+v", r)
	}
	if len(ms) != 2 {
		t.Fatalf("mounts = %+v", ms)
	}
	a := ms["approle/"]
	want := MountOutput{
		UUID: "u-1", Type: "approle", Description: "apps", Accessor: "auth_approle_0a1b2c3d",
		Config:         MountConfigOutput{DefaultLeaseTTL: 3600, TokenType: "batch"},
		Local:          true,
		RunningVersion: "v0.1.0+builtin.vigil", DeprecationStatus: "supported",
	}
	if a == nil || !reflect.DeepEqual(*a, want) {
		t.Errorf("approle/ = %+v\nwant %+v", a, want)
	}
	if tok := ms["token/"]; tok == nil || tok.Config.TokenType != "default-service" || tok.Accessor != "auth_token_1" {
		t.Errorf("token/ = %+v", tok)
	}
}

func TestSysGetAuth(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(r request) (int, string) {
		if r.Path == "/v1/sys/auth/approle" {
			return 200, `{"request_id":"r","data":` + authMountJSON + `}`
		}
		return 400, `{"errors":["no auth method at nothere"]}`
	})
	m, err := c.Sys().GetAuth(t.Context(), "/approle/")
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != "approle" || m.Config.TokenType != "batch" || m.Config.DefaultLeaseTTL != 3600 || !m.Local {
		t.Errorf("mount = %+v", m)
	}
	if r := (*seen)[0]; r.Method != http.MethodGet || r.Path != "/v1/sys/auth/approle" || r.Body != nil {
		t.Errorf("request = %+v", r)
	}
	_, err = c.Sys().GetAuth(t.Context(), "nothere")
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || !re.HasMessage("no auth method at nothere") {
		t.Errorf("missing method: %v", err)
	}
}

func TestSysEnableAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		in   EnableAuthInput
		uri  string
		body map[string]any
	}{
		{
			name: "minimal",
			path: "approle",
			in:   EnableAuthInput{Type: "approle"},
			uri:  "/v1/sys/auth/approle",
			body: map[string]any{"type": "approle", "description": "", "config": map[string]any{}, "local": false, "seal_wrap": false, "options": map[string]any{}},
		},
		{
			name: "every field",
			path: "/apps/prod/",
			in: EnableAuthInput{
				Type: "approle", Description: "prod apps", Local: true, SealWrap: true,
				Config: MountConfigInput{
					DefaultLeaseTTL: "1h0m0s", MaxLeaseTTL: "0s", ListingVisibility: "unauth", TokenType: "batch",
				},
				Options: map[string]string{"k": "v"},
			},
			uri: "/v1/sys/auth/apps/prod",
			body: map[string]any{
				"type": "approle", "description": "prod apps", "local": true, "seal_wrap": true,
				"config": map[string]any{
					"default_lease_ttl": "1h0m0s", "max_lease_ttl": "0s", "listing_visibility": "unauth", "token_type": "batch",
				},
				"options": map[string]any{"k": "v"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, seen := fake(t, func(request) (int, string) { return 204, "" })
			if err := c.Sys().EnableAuth(t.Context(), tt.path, tt.in); err != nil {
				t.Fatal(err)
			}
			r := (*seen)[0]
			if r.Method != http.MethodPost || r.Path != tt.uri || r.ContentType != "application/json" {
				t.Errorf("request = %s %s (%s)", r.Method, r.Path, r.ContentType)
			}
			if !reflect.DeepEqual(r.Body, tt.body) {
				t.Errorf("body = %v\nwant %v", r.Body, tt.body)
			}
		})
	}
}

func TestSysEnableAuthServerError(t *testing.T) {
	t.Parallel()
	c, _ := fake(t, func(request) (int, string) {
		return 400, `{"errors":["path is already in use at auth/approle/"]}`
	})
	err := c.Sys().EnableAuth(t.Context(), "approle", EnableAuthInput{Type: "approle"})
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || re.Path != "sys/auth/approle" || !re.HasMessage("already in use") {
		t.Errorf("err = %#v", err)
	}
}

func TestSysDisableAuth(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) { return 204, "" })
	if err := c.Sys().DisableAuth(t.Context(), "approle/"); err != nil {
		t.Fatal(err)
	}
	if r := (*seen)[0]; r.Method != http.MethodDelete || r.Path != "/v1/sys/auth/approle" || r.Body != nil {
		t.Errorf("request = %+v", r)
	}
}

func TestSysTuneAuth(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) { return 204, "" })
	desc := ""
	in := MountConfigInput{MaxLeaseTTL: "2h0m0s", Description: &desc, TokenType: "default-batch"}
	if err := c.Sys().TuneAuth(t.Context(), "approle", in); err != nil {
		t.Fatal(err)
	}
	r := (*seen)[0]
	if r.Method != http.MethodPost || r.Path != "/v1/sys/mounts/auth/approle/tune" {
		t.Errorf("request = %s %s", r.Method, r.Path)
	}
	// Only the fields set are sent; an empty description is set.
	want := map[string]any{"max_lease_ttl": "2h0m0s", "description": "", "token_type": "default-batch"}
	if !reflect.DeepEqual(r.Body, want) {
		t.Errorf("body = %v\nwant %v", r.Body, want)
	}
}

func TestSysAuthConfig(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) {
		return 200, `{"request_id":"r","data":{"default_lease_ttl":3600,"description":"d","force_no_cache":false,"max_lease_ttl":2764800,"token_type":"batch"}}`
	})
	mc, err := c.Sys().AuthConfig(t.Context(), "approle")
	if err != nil {
		t.Fatal(err)
	}
	want := MountConfigOutput{DefaultLeaseTTL: 3600, MaxLeaseTTL: 2764800, Description: "d", TokenType: "batch"}
	if !reflect.DeepEqual(*mc, want) {
		t.Errorf("config = %+v\nwant %+v", *mc, want)
	}
	if r := (*seen)[0]; r.Method != http.MethodGet || r.Path != "/v1/sys/mounts/auth/approle/tune" || r.Body != nil {
		t.Errorf("request = %+v", r)
	}
}

func TestSysAuthErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	// An empty path would address sys/auth itself: refused before sending.
	c, seen := fake(t, func(request) (int, string) { return 204, "" })
	for name, call := range map[string]func(string) error{
		"GetAuth":     func(p string) error { _, err := c.Sys().GetAuth(ctx, p); return err },
		"EnableAuth":  func(p string) error { return c.Sys().EnableAuth(ctx, p, EnableAuthInput{Type: "approle"}) },
		"DisableAuth": func(p string) error { return c.Sys().DisableAuth(ctx, p) },
		"TuneAuth":    func(p string) error { return c.Sys().TuneAuth(ctx, p, MountConfigInput{}) },
		"AuthConfig":  func(p string) error { _, err := c.Sys().AuthConfig(ctx, p); return err },
	} {
		for _, p := range []string{"", "/", "//"} {
			if err := call(p); !errors.Is(err, errEmptyAuthPath) {
				t.Errorf("%s(%q) = %v, want %v", name, p, err, errEmptyAuthPath)
			}
		}
	}
	if len(*seen) != 0 {
		t.Errorf("requests sent for empty paths: %+v", *seen)
	}

	// Answers without data, and error statuses.
	tests := []struct {
		name    string
		code    int
		body    string
		wantErr error
		status  int
	}{
		{name: "no data", code: 200, body: `{"request_id":"r","data":null}`, wantErr: errNoData},
		{name: "empty body", code: 204, wantErr: errNoData},
		{name: "forbidden", code: 403, body: `{"errors":["permission denied"]}`, status: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := fake(t, func(request) (int, string) { return tt.code, tt.body })
			_, errList := c.Sys().ListAuth(t.Context())
			_, errGet := c.Sys().GetAuth(t.Context(), "approle")
			_, errConfig := c.Sys().AuthConfig(t.Context(), "approle")
			for i, err := range []error{errList, errGet, errConfig} {
				switch {
				case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
					t.Errorf("call %d: err = %v, want %v", i, err, tt.wantErr)
				case tt.status != 0 && StatusCode(err) != tt.status:
					t.Errorf("call %d: err = %v, want status %d", i, err, tt.status)
				}
			}
		})
	}
}
