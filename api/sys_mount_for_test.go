package api

import (
	"errors"
	"net/http"
	"testing"
)

func TestSysMountFor(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(r request) (int, string) {
		switch r.Path {
		case "/v1/sys/internal/ui/mounts/secret/ml/openai":
			return 200, `{"request_id":"r","data":{"path":"secret/","type":"kv","options":{"version":"2"}}}`
		case "/v1/sys/internal/ui/mounts/kv1/x":
			return 200, `{"request_id":"r","data":{"path":"kv1","type":"kv","options":{"version":1}}}`
		case "/v1/sys/internal/ui/mounts/database/creds/r":
			return 200, `{"request_id":"r","data":{"path":"database/","type":"database","options":null}}`
		case "/v1/sys/internal/ui/mounts/old/x":
			return 404, ``
		}
		return 403, `{"errors":["permission denied"]}`
	})
	ctx := t.Context()
	m, err := c.Sys().MountFor(ctx, "/secret/ml/openai")
	if err != nil {
		t.Fatal(err)
	}
	if r := (*seen)[0]; r.Method != http.MethodGet || r.Token != "tok" {
		t.Errorf("request = %+v", r)
	}
	if m.Path != "secret/" || !m.KVv2() || m.Relative("secret/ml/openai") != "ml/openai" || m.Relative("secret") != "" || m.Relative("other/x") != "other/x" {
		t.Errorf("secret/: %+v", m)
	}
	m, err = c.Sys().MountFor(ctx, "kv1/x")
	if err != nil || m.Path != "kv1/" || m.KVv2() || m.Options["version"] != "1" {
		t.Errorf("kv1/: %+v %v", m, err)
	}
	m, err = c.Sys().MountFor(ctx, "database/creds/r")
	if err != nil || m.Type != "database" || m.KVv2() || m.Relative("database/creds/r") != "creds/r" {
		t.Errorf("database/: %+v %v", m, err)
	}
	m, err = c.Sys().MountFor(ctx, "old/x")
	if err != nil || m != nil || m.KVv2() || m.Relative("old/x") != "old/x" {
		t.Errorf("an old server: %+v %v", m, err)
	}
	if _, err := c.Sys().MountFor(ctx, "nope/x"); StatusCode(err) != http.StatusForbidden {
		t.Errorf("forbidden: %v", err)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ mount, want string }{
		{"approle", "auth/approle/login"},
		{"/approle/", "auth/approle/login"},
		{"auth/approle", "auth/approle/login"},
		{"auth/k8s/edge/", "auth/k8s/edge/login"},
	} {
		if got := LoginPath(tt.mount); got != tt.want {
			t.Errorf("LoginPath(%q) = %q, want %q", tt.mount, got, tt.want)
		}
	}
	c, seen := fake(t, func(r request) (int, string) {
		switch r.Path {
		case "/v1/auth/approle/login":
			return 200, `{"request_id":"r","auth":{"client_token":"s.new","lease_duration":60,"renewable":true}}`
		case "/v1/auth/empty/login":
			return 200, `{"request_id":"r","data":{}}`
		}
		return 400, `{"errors":["invalid role"]}`
	})
	s, err := c.Login(t.Context(), LoginPath("approle"), map[string]any{"role_id": "r"})
	if err != nil || s.Auth.ClientToken != "s.new" || s.Auth.LeaseDuration != 60 {
		t.Fatalf("login: %+v %v", s, err)
	}
	if r := (*seen)[0]; r.Method != http.MethodPut || r.Token != "" || r.Body["role_id"] != "r" {
		t.Errorf("request = %+v", r)
	}
	if c.Token() != "tok" {
		t.Errorf("the client's token changed to %q", c.Token())
	}
	if _, err := c.Login(t.Context(), "auth/empty/login", nil); !errors.Is(err, ErrNoAuth) {
		t.Errorf("no auth: %v", err)
	}
	if _, err := c.Login(t.Context(), "auth/bad/login", nil); StatusCode(err) != 400 {
		t.Errorf("refused: %v", err)
	}
}
