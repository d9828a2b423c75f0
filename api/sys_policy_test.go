package api

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestSysListPolicies(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) {
		return 200, `{"request_id":"r","data":{"keys":["default","ops","root"]}}`
	})
	names, err := c.Sys().ListPolicies(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"default", "ops", "root"}) {
		t.Errorf("names = %q", names)
	}
	r := (*seen)[0]
	if r.Method != http.MethodGet || r.Path != "/v1/sys/policies/acl" || r.RawQuery != "list=true" || r.Token != "tok" || r.Body != nil {
		t.Errorf("request = %+v", r)
	}
}

func TestSysListPoliciesErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		code    int
		body    string
		want    []string
		wantErr error
		status  int
	}{
		{name: "no keys", code: 200, body: `{"request_id":"r","data":{}}`, want: []string{}},
		{name: "no data", code: 200, body: `{"request_id":"r","data":null}`, wantErr: errNoData},
		{name: "empty body", code: 204, wantErr: errNoData},
		{name: "forbidden", code: 403, body: `{"errors":["permission denied"]}`, status: 403},
		{name: "not found", code: 404, body: `{"errors":[]}`, status: 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _ := fake(t, func(request) (int, string) { return tt.code, tt.body })
			names, err := c.Sys().ListPolicies(t.Context())
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.status != 0:
				if StatusCode(err) != tt.status {
					t.Errorf("err = %v, want status %d", err, tt.status)
				}
			default:
				if err != nil || !slices.Equal(names, tt.want) || names == nil {
					t.Errorf("names = %#v, %v; want %#v", names, err, tt.want)
				}
			}
		})
	}
}

func TestSysGetPolicy(t *testing.T) {
	t.Parallel()
	const text = "path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n"
	c, seen := fake(t, func(r request) (int, string) {
		switch r.Path {
		case "/v1/sys/policies/acl/ops":
			return 200, `{"request_id":"r","data":{"name":"ops","policy":"path \"secret/*\" {\n  capabilities = [\"read\"]\n}\n","version":1}}`
		case "/v1/sys/policies/acl/odd":
			return 200, `{"request_id":"r","data":{"name":"odd","rules":"x"}}`
		case "/v1/sys/policies/acl/locked":
			return 403, `{"errors":["permission denied"]}`
		case "/v1/sys/policies/acl/route":
			// Vault's client treats every 404 as "no such policy".
			return 404, `{"errors":["no handler for route"]}`
		}
		return 404, `{"errors":[]}`
	})
	ctx := t.Context()
	got, err := c.Sys().GetPolicy(ctx, "ops")
	if err != nil || got != text {
		t.Errorf("GetPolicy = %q, %v", got, err)
	}
	if r := (*seen)[0]; r.Method != http.MethodGet || r.RawQuery != "" || r.Body != nil {
		t.Errorf("request = %+v", r)
	}
	for _, name := range []string{"missing", "route"} {
		if got, err := c.Sys().GetPolicy(ctx, name); err != nil || got != "" {
			t.Errorf("GetPolicy(%s) = %q, %v; want \"\", nil", name, got, err)
		}
	}
	if _, err := c.Sys().GetPolicy(ctx, "locked"); StatusCode(err) != 403 {
		t.Errorf("403: err = %v", err)
	}
	if _, err := c.Sys().GetPolicy(ctx, "odd"); err == nil || !strings.Contains(err.Error(), "no policy text") {
		t.Errorf("answer without policy: err = %v", err)
	}
}

func TestSysPutAndDeletePolicy(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(r request) (int, string) {
		if r.Path == "/v1/sys/policies/acl/bad" {
			return 400, `{"errors":["failed to parse policy: line 1, column 3: syntax error"]}`
		}
		return 204, ""
	})
	ctx := t.Context()
	const text = `path "secret/*" { capabilities = ["read"] }`
	if err := c.Sys().PutPolicy(ctx, "ops", text); err != nil {
		t.Fatal(err)
	}
	r := (*seen)[0]
	if r.Method != http.MethodPut || r.Path != "/v1/sys/policies/acl/ops" || r.ContentType != "application/json" {
		t.Errorf("put request = %+v", r)
	}
	if len(r.Body) != 1 || r.Body["policy"] != text {
		t.Errorf("put body = %v", r.Body)
	}

	err := c.Sys().PutPolicy(ctx, "bad", "x")
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || !re.HasMessage("failed to parse policy") {
		t.Errorf("bad policy: err = %v", err)
	}

	if err := c.Sys().DeletePolicy(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if r := (*seen)[2]; r.Method != http.MethodDelete || r.Path != "/v1/sys/policies/acl/ops" || r.Body != nil {
		t.Errorf("delete request = %+v", r)
	}
	if err := c.Sys().DeletePolicy(ctx, "bad"); StatusCode(err) != 400 {
		t.Errorf("delete error: %v", err)
	}
}

// TestSysPolicyNamesEscaped checks the bytes on the wire: a name is one
// escaped path segment, never escaped twice, and names that could leave
// the segment are refused before any request.
func TestSysPolicyNamesEscaped(t *testing.T) {
	t.Parallel()
	var uris []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		uris = append(uris, r.Method+" "+r.RequestURI)
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte(`{"data":{"policy":"x"}}`))
			return
		}
		w.WriteHeader(204)
	}))
	t.Cleanup(srv.Close)
	c, err := NewClient(Config{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	sys := c.Sys()
	if _, err := sys.GetPolicy(ctx, "my pol"); err != nil {
		t.Fatal(err)
	}
	if err := sys.PutPolicy(ctx, "100%?#x", "x"); err != nil {
		t.Fatal(err)
	}
	if err := sys.DeletePolicy(ctx, "a b"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"GET /v1/sys/policies/acl/my%20pol",
		"PUT /v1/sys/policies/acl/100%25%3F%23x",
		"DELETE /v1/sys/policies/acl/a%20b",
	}
	if !slices.Equal(uris, want) {
		t.Errorf("requests:\n%q\nwant\n%q", uris, want)
	}

	for _, name := range []string{"", "a/b", "../sys/mounts", ".", ".."} {
		if _, err := sys.GetPolicy(ctx, name); err == nil {
			t.Errorf("GetPolicy(%q) succeeded", name)
		}
		if err := sys.PutPolicy(ctx, name, "x"); err == nil {
			t.Errorf("PutPolicy(%q) succeeded", name)
		}
		if err := sys.DeletePolicy(ctx, name); err == nil {
			t.Errorf("DeletePolicy(%q) succeeded", name)
		}
	}
	if len(uris) != len(want) {
		t.Errorf("invalid names reached the server: %q", uris[len(want):])
	}
}
