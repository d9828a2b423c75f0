package api

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestSysLeaseLookupAndRenew(t *testing.T) {
	t.Parallel()
	const id = "database/creds/readonly/2f6aAbC"
	c, seen := fake(t, func(r request) (int, string) {
		if r.Path == "/v1/sys/leases/renew" {
			return 200, `{"request_id":"r","lease_id":"database/creds/readonly/2f6aAbC","renewable":true,"lease_duration":1800,"data":null}`
		}
		return 200, `{"request_id":"r","data":{"id":"database/creds/readonly/2f6aAbC","path":"database/creds/readonly",
			"issue_time":"2026-01-02T03:04:05Z","expire_time":"2026-01-02T04:04:05Z","last_renewal":null,"renewable":true,"ttl":3599}}`
	})
	s, err := c.Sys().LeaseLookup(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if s.Data["id"] != id || s.Data["renewable"] != true || s.Data["ttl"] == nil {
		t.Errorf("lookup data = %v", s.Data)
	}
	s, err = c.Sys().LeaseRenew(t.Context(), id, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if s.LeaseID != id || s.LeaseDuration != 1800 || !s.Renewable {
		t.Errorf("renew = %+v", s)
	}
	if _, err := c.Sys().LeaseRenew(t.Context(), id, 0); err != nil {
		t.Fatal(err)
	}
	want := []request{
		{Method: http.MethodPut, Path: "/v1/sys/leases/lookup", Token: "tok", Marker: "true", ContentType: "application/json",
			Body: map[string]any{"lease_id": id}},
		{Method: http.MethodPut, Path: "/v1/sys/leases/renew", Token: "tok", Marker: "true", ContentType: "application/json",
			Body: map[string]any{"lease_id": id, "increment": float64(1800)}},
		{Method: http.MethodPut, Path: "/v1/sys/leases/renew", Token: "tok", Marker: "true", ContentType: "application/json",
			Body: map[string]any{"lease_id": id, "increment": float64(0)}},
	}
	if !reflect.DeepEqual(*seen, want) {
		t.Errorf("requests:\n%+v\nwant\n%+v", *seen, want)
	}
}

func TestSysLeaseErrors(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(request) (int, string) { return 400, `{"errors":["lease not found"]}` })
	_, err := c.Sys().LeaseLookup(t.Context(), "x/y")
	var re *ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || !re.HasMessage("lease not found") {
		t.Errorf("lookup: %v", err)
	}
	if err := c.Sys().LeaseRevoke(t.Context(), "x/y", true); StatusCode(err) != 400 {
		t.Errorf("revoke: %v", err)
	}
	n := len(*seen)
	if _, err := c.Sys().LeaseLookup(t.Context(), ""); err == nil {
		t.Error("lookup of an empty id succeeded")
	}
	if _, err := c.Sys().LeaseRenew(t.Context(), "", 0); err == nil {
		t.Error("renew of an empty id succeeded")
	}
	if len(*seen) != n {
		t.Errorf("empty ids reached the server: %+v", (*seen)[n:])
	}
}

// leaseRoutes is a server routed like Vigil's (net/http ServeMux patterns
// that capture the rest of the path), recording what each route received:
// the raw request URI, the captured id and the body.
type leaseRoutes struct {
	mu   sync.Mutex
	got  []string
	srv  *httptest.Server
	errs []string
}

func newLeaseRoutes(t *testing.T) *leaseRoutes {
	t.Helper()
	lr := &leaseRoutes{}
	mux := http.NewServeMux()
	for _, route := range []string{"revoke", "revoke-prefix", "revoke-force"} {
		mux.HandleFunc("PUT /v1/sys/leases/"+route+"/{id...}", func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			lr.mu.Lock()
			lr.got = append(lr.got, r.Method+" "+r.RequestURI+" id="+r.PathValue("id")+" body="+string(b))
			lr.mu.Unlock()
			w.WriteHeader(http.StatusNoContent)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		lr.mu.Lock()
		lr.errs = append(lr.errs, r.Method+" "+r.RequestURI)
		lr.mu.Unlock()
		http.Error(w, `{"errors":["no route"]}`, http.StatusNotFound)
	})
	lr.srv = httptest.NewServer(mux)
	t.Cleanup(lr.srv.Close)
	return lr
}

// TestSysLeaseRevokeIDInURL checks that a lease id reaches the server's
// route intact: its '/' kept as separators, what a URL path must escape
// escaped once, and no redirect from the server's path cleaning.
func TestSysLeaseRevokeIDInURL(t *testing.T) {
	t.Parallel()
	lr := newLeaseRoutes(t)
	c, err := NewClient(Config{Address: lr.srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	// Redirects would hide a cleaned path: refuse them.
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	ctx, sys := t.Context(), c.Sys()
	steps := []struct {
		run  func() error
		want string
	}{
		{func() error { return sys.LeaseRevoke(ctx, "database/creds/readonly/2f6aAbC", false) },
			`PUT /v1/sys/leases/revoke/database/creds/readonly/2f6aAbC id=database/creds/readonly/2f6aAbC body={"sync":false}`},
		{func() error { return sys.LeaseRevoke(ctx, "auth/token/create/abc", true) },
			`PUT /v1/sys/leases/revoke/auth/token/create/abc id=auth/token/create/abc body={"sync":true}`},
		{func() error { return sys.LeaseRevoke(ctx, "kv/my app/100%?#x", true) },
			`PUT /v1/sys/leases/revoke/kv/my%20app/100%25%3F%23x id=kv/my app/100%?#x body={"sync":true}`},
		{func() error { return sys.LeaseRevokePrefix(ctx, "aws/creds/deploy", false) },
			`PUT /v1/sys/leases/revoke-prefix/aws/creds/deploy id=aws/creds/deploy body={"sync":false}`},
		{func() error { return sys.LeaseRevokePrefix(ctx, "database/creds/", true) },
			`PUT /v1/sys/leases/revoke-prefix/database/creds/ id=database/creds/ body={"sync":true}`},
		{func() error { return sys.LeaseRevokeForce(ctx, "consul/creds") },
			`PUT /v1/sys/leases/revoke-force/consul/creds id=consul/creds body=`},
	}
	for i, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	var want []string
	for _, s := range steps {
		want = append(want, s.want)
	}
	if !slices.Equal(lr.got, want) {
		t.Errorf("server saw:\n%q\nwant\n%q", lr.got, want)
	}
	if len(lr.errs) > 0 {
		t.Errorf("requests missed the routes: %q", lr.errs)
	}
}

func TestSysLeaseRevokeRefusesIDsThatWouldNotArrive(t *testing.T) {
	t.Parallel()
	lr := newLeaseRoutes(t)
	c, err := NewClient(Config{Address: lr.srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, sys := t.Context(), c.Sys()
	for _, id := range []string{"", "/database/creds/x", "database//x", "a/../sys/seal", "./a", "a/.", "a//"} {
		if err := sys.LeaseRevoke(ctx, id, true); err == nil {
			t.Errorf("LeaseRevoke(%q) succeeded", id)
		}
		if err := sys.LeaseRevokePrefix(ctx, id, true); err == nil {
			t.Errorf("LeaseRevokePrefix(%q) succeeded", id)
		}
		if err := sys.LeaseRevokeForce(ctx, id); err == nil {
			t.Errorf("LeaseRevokeForce(%q) succeeded", id)
		}
	}
	if len(lr.got)+len(lr.errs) != 0 {
		t.Errorf("invalid ids reached the server: %q %q", lr.got, lr.errs)
	}
}

func TestSysLeaseList(t *testing.T) {
	t.Parallel()
	c, seen := fake(t, func(r request) (int, string) {
		switch r.Path {
		case "/v1/sys/leases/lookup/auth/token/create/":
			return 200, `{"request_id":"r","data":{"keys":["5558","abcd"]}}`
		case "/v1/sys/leases/lookup/":
			return 200, `{"request_id":"r","data":{"keys":["auth/","database/"]}}`
		case "/v1/sys/leases/lookup/locked/":
			return 403, `{"errors":["permission denied"]}`
		}
		return 404, `{"errors":[]}`
	})
	ctx, sys := t.Context(), c.Sys()
	keys, err := sys.LeaseList(ctx, "auth/token/create")
	if err != nil || !slices.Equal(keys, []string{"5558", "abcd"}) {
		t.Errorf("list = %q, %v", keys, err)
	}
	keys, err = sys.LeaseList(ctx, "")
	if err != nil || !slices.Equal(keys, []string{"auth/", "database/"}) {
		t.Errorf("top level = %q, %v", keys, err)
	}
	keys, err = sys.LeaseList(ctx, "nothing/")
	if err != nil || keys == nil || len(keys) != 0 {
		t.Errorf("empty = %#v, %v", keys, err)
	}
	if _, err := sys.LeaseList(ctx, "locked"); StatusCode(err) != 403 {
		t.Errorf("forbidden: %v", err)
	}
	var paths []string
	for _, r := range *seen {
		if r.Method != http.MethodGet || r.RawQuery != "list=true" {
			t.Errorf("request = %+v", r)
		}
		paths = append(paths, r.Path)
	}
	want := []string{"/v1/sys/leases/lookup/auth/token/create/", "/v1/sys/leases/lookup/", "/v1/sys/leases/lookup/nothing/", "/v1/sys/leases/lookup/locked/"}
	if !slices.Equal(paths, want) {
		t.Errorf("paths = %q, want %q", paths, want)
	}
	if _, err := sys.LeaseList(ctx, "a/../b"); err == nil {
		t.Error("a prefix with a dot segment was accepted")
	}
}
