package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// setupDatabase mounts the database engine at database/ with a
// connection to a database of the test's own and the role "reader",
// whose users have the TTL and max TTL given.
func setupDatabase(t *testing.T, root *api.Client, ttl, maxTTL string) *database {
	t.Helper()
	ctx := t.Context()
	db := &database{DB: pgtest.New(t)}
	t.Cleanup(db.dropUsers(t))
	admin, adminPW := db.CreateRole(t, "CREATEROLE")
	if err := root.Sys().Mount(ctx, "database", api.MountInput{Type: "database"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write(ctx, "database/config/ml", map[string]any{
		"plugin_name":    "postgresql-database-plugin",
		"connection_url": db.TemplateURL(),
		"username":       admin,
		"password":       adminPW,
		"allowed_roles":  "reader",
	}); err != nil {
		t.Fatalf("database/config/ml: %v", err)
	}
	if _, err := root.Logical().Write(ctx, "database/roles/reader", map[string]any{
		"db_name":             "ml",
		"creation_statements": []string{`CREATE ROLE "{{name}}" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'`},
		"default_ttl":         ttl,
		"max_ttl":             maxTTL,
	}); err != nil {
		t.Fatalf("database/roles/reader: %v", err)
	}
	return db
}

// database is a test's own database, with the users issued in it.
type database struct {
	*pgtest.DB
	mu    sync.Mutex
	users []string
}

// dropUsers returns a cleanup that drops the users the engine issued and
// did not drop itself (their leases outlive the test server). The server
// may be dropping some of them at the same moment, after a revocation: a
// failure is only logged.
func (db *database) dropUsers(t *testing.T) func() {
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := db.Connect(ctx, db.Name, db.User, db.Password)
		if err != nil {
			t.Logf("drop issued users: %v", err)
			return
		}
		defer conn.Close(ctx)
		db.mu.Lock()
		defer db.mu.Unlock()
		for _, u := range slices.Compact(slices.Sorted(slices.Values(db.users))) {
			if _, err := conn.Exec(ctx, `DROP ROLE IF EXISTS "`+u+`"`); err != nil {
				t.Logf("drop issued user %s: %v", u, err)
			}
		}
	}
}

// lease is a database credential read through the proxy.
type lease struct {
	id, user, password string
	duration           int64
	cache              string // X-Cache
}

// creds reads database/creds/reader through the proxy with header.
func (h *harness) creds(t *testing.T, db *database, header http.Header) lease {
	t.Helper()
	r := h.do(t, http.MethodGet, "/v1/database/creds/reader", header, "")
	if r.status != http.StatusOK {
		t.Fatalf("database/creds/reader: %d %s", r.status, r.body)
	}
	var env struct {
		LeaseID       string `json:"lease_id"`
		LeaseDuration int64  `json:"lease_duration"`
		Data          struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || env.LeaseID == "" || env.Data.Password == "" {
		t.Fatalf("database/creds/reader answered %s (%v)", r.body, err)
	}
	h.forbid(env.Data.Password)
	db.mu.Lock()
	db.users = append(db.users, env.Data.Username)
	db.mu.Unlock()
	return lease{env.LeaseID, env.Data.Username, env.Data.Password, env.LeaseDuration, r.header.Get("X-Cache")}
}

// token is a token created or logged in through the proxy.
type token struct {
	token, accessor string
	duration        int64
	cache           string
}

// createToken sends auth/token/create (or another login path) through
// the proxy.
func (h *harness) login(t *testing.T, path string, header http.Header, body string) token {
	t.Helper()
	r := h.do(t, http.MethodPost, path, header, body)
	if r.status != http.StatusOK {
		t.Fatalf("%s: %d %s", path, r.status, r.body)
	}
	var env struct {
		Auth struct {
			ClientToken   string `json:"client_token"`
			Accessor      string `json:"accessor"`
			LeaseDuration int64  `json:"lease_duration"`
		} `json:"auth"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || env.Auth.ClientToken == "" {
		t.Fatalf("%s answered %s (%v)", path, r.body, err)
	}
	h.forbid(env.Auth.ClientToken)
	return token{env.Auth.ClientToken, env.Auth.Accessor, env.Auth.LeaseDuration, r.header.Get("X-Cache")}
}

// cachedLease and cachedToken look inside the proxy's cache.
func (h *harness) cachedLease(id string) bool {
	c := h.p.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leases[id] != nil
}

func (h *harness) cachedToken(tok string) bool {
	c := h.p.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.tokens[idOf(secret.NewString(tok))]
	return n != nil && n.entry != nil
}

func (h *harness) entries() int {
	c := h.p.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// leaseCount is how many leases the server holds for the reader role.
func leaseCount(t *testing.T, root *api.Client) int {
	t.Helper()
	ids, err := root.Sys().LeaseList(t.Context(), "database/creds/reader/")
	if err != nil && api.StatusCode(err) != http.StatusNotFound {
		t.Fatal(err)
	}
	return len(ids)
}

// TestCacheSharesLeases checks that identical requests with the same
// managed token get the same lease, that another managed token gets its
// own, and that a token the agent does not manage is never served from
// the cache.
func TestCacheSharesLeases(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	db := setupDatabase(t, root, "1h", "24h")
	h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, Cache: true})
	h.auto.set(srv.RootToken)

	first := h.creds(t, db, nil)
	if first.cache != "MISS" || first.duration != 3600 {
		t.Fatalf("first read: X-Cache %q, lease_duration %d", first.cache, first.duration)
	}
	second := h.creds(t, db, nil)
	if second.cache != "HIT" || second.id != first.id || second.password != first.password {
		t.Fatalf("identical read: X-Cache %q, lease %s (first %s)", second.cache, second.id, first.id)
	}
	if second.duration > 3600 || second.duration < 3590 {
		t.Fatalf("cached lease_duration %d, want the time left", second.duration)
	}
	if err := db.RunAs(t, second.user, second.password, "SELECT 1"); err != nil {
		t.Fatalf("the shared credential does not work: %v", err)
	}

	// A token created through the proxy is managed: its leases are
	// cached, apart from the auto-auth token's.
	child := h.login(t, "/v1/auth/token/create", nil, `{"policies":["root"],"ttl":"1h"}`)
	if again := h.login(t, "/v1/auth/token/create", nil, `{"policies":["root"],"ttl":"1h"}`); again.token != child.token || again.cache != "HIT" {
		t.Fatalf("identical token creation: X-Cache %q, same token %v", again.cache, again.token == child.token)
	}
	own := h.creds(t, db, hdr("X-Vault-Token", child.token))
	if own.id == first.id || own.cache != "MISS" {
		t.Fatalf("another token got lease %s (X-Cache %s), the auto-auth token's is %s", own.id, own.cache, first.id)
	}
	if again := h.creds(t, db, hdr("Authorization", "Bearer "+child.token)); again.id != own.id || again.cache != "HIT" {
		t.Fatalf("the same token as a bearer got %s (X-Cache %s), want %s", again.id, again.cache, own.id)
	}

	// A token made elsewhere is not the agent's to renew: its leases are
	// forwarded every time.
	other, err := root.TokenAuth().Create(t.Context(), api.TokenCreateRequest{Policies: []string{"root"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	h.forbid(other.Auth.ClientToken)
	a := h.creds(t, db, hdr("X-Vault-Token", other.Auth.ClientToken))
	b := h.creds(t, db, hdr("X-Vault-Token", other.Auth.ClientToken))
	if a.id == b.id || b.cache != "MISS" {
		t.Fatalf("an unmanaged token's leases were shared: %s, %s (X-Cache %s)", a.id, b.id, b.cache)
	}
	if n := leaseCount(t, root); n != 4 {
		t.Fatalf("the server holds %d leases, want 4 (auto-auth 1, child 1, unmanaged 2)", n)
	}
	// A KV read has no lease: never cached.
	if _, err := root.Logical().Write(t.Context(), "secret/data/app", map[string]any{"data": map[string]any{"k": "kv-value-3"}}); err != nil {
		t.Fatal(err)
	}
	h.forbid("kv-value-3")
	for range 2 {
		if r := h.do(t, http.MethodGet, "/v1/secret/data/app", nil, ""); r.status != http.StatusOK || r.header.Get("X-Cache") != "MISS" {
			t.Fatalf("KV read through the cache: %d, X-Cache %q", r.status, r.header.Get("X-Cache"))
		}
	}
}

// TestCacheBurst sends many identical requests at once: the server is
// asked for one lease.
func TestCacheBurst(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	db := setupDatabase(t, root, "1h", "24h")
	h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, Cache: true})
	h.auto.set(srv.RootToken)

	const n = 12
	got := make([]lease, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			got[i] = h.creds(t, db, nil)
		})
	}
	close(start)
	wg.Wait()
	for _, l := range got {
		if l.id != got[0].id {
			t.Fatalf("a burst got several leases: %s and %s", got[0].id, l.id)
		}
	}
	if c := leaseCount(t, root); c != 1 {
		t.Fatalf("the server issued %d leases for the burst, want 1", c)
	}
}

// TestCacheLogin logs in through the proxy (AppRole, no auto-auth): the
// token is cached and shared by identical logins, the leases made with it
// are cached, and revoke-self through the proxy evicts them all.
func TestCacheLogin(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	db := setupDatabase(t, root, "1h", "24h")
	ctx := t.Context()
	if err := root.Sys().PutPolicy(ctx, "db", `path "database/creds/reader" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuth(ctx, "approle", api.EnableAuthInput{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write(ctx, "auth/approle/role/app", map[string]any{"token_policies": "db", "token_ttl": "1h", "token_max_ttl": "4h"}); err != nil {
		t.Fatal(err)
	}
	rid, err := root.Logical().Read(ctx, "auth/approle/role/app/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := root.Logical().Write(ctx, "auth/approle/role/app/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	secretID := sid.Data["secret_id"].(string)
	h := startProxy(t, srv, root, Options{Cache: true})
	h.forbid(secretID)
	body := fmt.Sprintf(`{"role_id":%q,"secret_id":%q}`, rid.Data["role_id"], secretID)

	first := h.login(t, "/v1/auth/approle/login", nil, body)
	second := h.login(t, "/v1/auth/approle/login", nil, body)
	if first.cache != "MISS" || second.cache != "HIT" || second.token != first.token {
		t.Fatalf("identical logins: X-Cache %s then %s, same token %v", first.cache, second.cache, second.token == first.token)
	}
	if second.duration > 3600 || second.duration < 3590 {
		t.Fatalf("cached auth.lease_duration %d", second.duration)
	}
	tok := hdr("X-Vault-Token", first.token)
	l1 := h.creds(t, db, tok)
	if l2 := h.creds(t, db, tok); l2.id != l1.id || l2.cache != "HIT" {
		t.Fatalf("the login token's leases are not shared: %s, %s (%s)", l1.id, l2.id, l2.cache)
	}

	if err := h.client(t, first.token).TokenAuth().RevokeSelf(ctx); err != nil {
		t.Fatalf("revoke-self: %v", err)
	}
	if h.cachedToken(first.token) || h.cachedLease(l1.id) || h.entries() != 0 {
		t.Fatalf("revoke-self left %d entries in the cache", h.entries())
	}
	if again := h.login(t, "/v1/auth/approle/login", nil, body); again.cache != "MISS" || again.token == first.token {
		t.Fatalf("login after revoke-self: X-Cache %s, the revoked token %v", again.cache, again.token == first.token)
	}
}

// TestCacheRevocations evicts cached leases when a client revokes them
// through the proxy, in each of the request's forms.
func TestCacheRevocations(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	db := setupDatabase(t, root, "1h", "24h")
	h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, Cache: true})
	h.auto.set(srv.RootToken)
	ctx := t.Context()

	revokes := []struct {
		name   string
		revoke func(id string)
	}{
		{"api client, lease id in the path", func(id string) {
			if err := h.client(t, "").Sys().LeaseRevoke(ctx, id, true); err != nil {
				t.Fatal(err)
			}
		}},
		{"lease id in the body", func(id string) {
			if r := h.do(t, http.MethodPut, "/v1/sys/leases/revoke", nil, fmt.Sprintf(`{"lease_id":%q}`, id)); r.status != http.StatusNoContent {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
		}},
		{"legacy path", func(id string) {
			if r := h.do(t, http.MethodPut, "/v1/sys/revoke/"+id, nil, ""); r.status != http.StatusNoContent {
				t.Fatalf("revoke: %d %s", r.status, r.body)
			}
		}},
		{"revoke-prefix", func(string) {
			if err := h.client(t, "").Sys().LeaseRevokePrefix(ctx, "database/creds/reader", true); err != nil {
				t.Fatal(err)
			}
		}},
		{"revoke-force", func(string) {
			if err := h.client(t, "").Sys().LeaseRevokeForce(ctx, "database/creds/"); err != nil {
				t.Fatal(err)
			}
		}},
	}
	prev := h.creds(t, db, nil)
	for _, rv := range revokes {
		rv.revoke(prev.id)
		if h.cachedLease(prev.id) {
			t.Fatalf("%s: the revoked lease is still cached", rv.name)
		}
		next := h.creds(t, db, nil)
		if next.id == prev.id || next.cache != "MISS" {
			t.Fatalf("%s: the next read got lease %s (X-Cache %s) after revoking %s", rv.name, next.id, next.cache, prev.id)
		}
		if _, err := root.Sys().LeaseLookup(ctx, prev.id); err == nil {
			t.Fatalf("%s: the lease is still on the server", rv.name)
		}
		prev = next
	}
	// A failed revocation evicts nothing.
	if r := h.do(t, http.MethodPut, "/v1/sys/leases/revoke", hdr("X-Vault-Token", "hvs.bogus"), fmt.Sprintf(`{"lease_id":%q}`, prev.id)); r.status != http.StatusForbidden {
		t.Fatalf("revoke with a bad token: %d", r.status)
	}
	if !h.cachedLease(prev.id) {
		t.Fatal("a refused revocation evicted the lease")
	}
}

// TestCacheTokenTree revokes tokens created through the proxy: revoke
// and revoke-accessor take the token's children and leases along,
// revoke-orphan leaves its children cached.
func TestCacheTokenTree(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	db := setupDatabase(t, root, "1h", "24h")
	h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, Cache: true})
	h.auto.set(srv.RootToken)
	ctx := t.Context()

	tree := func(name string) (parent, child token, l lease) {
		parent = h.login(t, "/v1/auth/token/create", nil, fmt.Sprintf(`{"policies":["root"],"ttl":"1h","display_name":%q}`, name))
		child = h.login(t, "/v1/auth/token/create", hdr("X-Vault-Token", parent.token), `{"policies":["root"],"ttl":"1h"}`)
		l = h.creds(t, db, hdr("X-Vault-Token", child.token))
		if !h.cachedToken(parent.token) || !h.cachedToken(child.token) || !h.cachedLease(l.id) {
			t.Fatalf("%s: the tree is not cached", name)
		}
		return parent, child, l
	}

	parent, child, l := tree("revoke")
	if err := h.client(t, "").TokenAuth().Revoke(ctx, parent.token); err != nil {
		t.Fatal(err)
	}
	if h.cachedToken(parent.token) || h.cachedToken(child.token) || h.cachedLease(l.id) {
		t.Fatal("auth/token/revoke left part of the tree cached")
	}

	parent, child, l = tree("accessor")
	if err := h.client(t, "").TokenAuth().RevokeAccessor(ctx, parent.accessor); err != nil {
		t.Fatal(err)
	}
	if h.cachedToken(parent.token) || h.cachedToken(child.token) || h.cachedLease(l.id) {
		t.Fatal("auth/token/revoke-accessor left part of the tree cached")
	}

	parent, child, l = tree("orphan")
	if err := h.client(t, "").TokenAuth().RevokeOrphan(ctx, parent.token); err != nil {
		t.Fatal(err)
	}
	if h.cachedToken(parent.token) {
		t.Fatal("revoke-orphan left the token cached")
	}
	if !h.cachedToken(child.token) || !h.cachedLease(l.id) {
		t.Fatal("revoke-orphan evicted the token's children, which live on")
	}
	if again := h.creds(t, db, hdr("X-Vault-Token", child.token)); again.id != l.id || again.cache != "HIT" {
		t.Fatalf("the orphaned child's lease: %s (%s), want %s", again.id, again.cache, l.id)
	}
}

// TestCacheClear evicts through /agent/v1/cache-clear, by each type.
func TestCacheClear(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	db := setupDatabase(t, root, "1h", "24h")
	h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, Cache: true})
	h.auto.set(srv.RootToken)
	ctx := t.Context()
	clearCache := func(kind, value string) {
		t.Helper()
		if r := h.do(t, http.MethodPost, pathCacheClear, nil, fmt.Sprintf(`{"type":%q,"value":%q}`, kind, value)); r.status != http.StatusOK {
			t.Fatalf("cache-clear %s: %d %s", kind, r.status, r.body)
		}
	}

	l := h.creds(t, db, nil)
	clearCache("lease", l.id)
	if h.cachedLease(l.id) {
		t.Fatal("cache-clear lease: still cached")
	}
	if _, err := root.Sys().LeaseLookup(ctx, l.id); err != nil {
		t.Fatalf("cache-clear revoked the lease on the server: %v", err)
	}
	if next := h.creds(t, db, nil); next.id == l.id {
		t.Fatal("cache-clear lease: the next read got the same lease")
	}

	l = h.creds(t, db, nil)
	clearCache("request_path", "/v1/database/creds")
	if h.cachedLease(l.id) {
		t.Fatal("cache-clear request_path: still cached")
	}

	l = h.creds(t, db, nil)
	clearCache("token", srv.RootToken) // the auto-auth token: its leases go
	if h.cachedLease(l.id) {
		t.Fatal("cache-clear token: its lease is still cached")
	}

	child := h.login(t, "/v1/auth/token/create", nil, `{"policies":["root"],"ttl":"1h"}`)
	l = h.creds(t, db, hdr("X-Vault-Token", child.token))
	clearCache("token_accessor", child.accessor)
	if h.cachedToken(child.token) || h.cachedLease(l.id) {
		t.Fatal("cache-clear token_accessor: still cached")
	}

	h.creds(t, db, nil)
	h.login(t, "/v1/auth/token/create", nil, `{"policies":["root"],"ttl":"1h"}`)
	clearCache("all", "")
	if n := h.entries(); n != 0 {
		t.Fatalf("cache-clear all left %d entries", n)
	}

	wantErrors(t, h.do(t, http.MethodPost, pathCacheClear, nil, `{"type":"everything"}`), http.StatusBadRequest, "invalid type")
	wantErrors(t, h.do(t, http.MethodPost, pathCacheClear, nil, `{"type":"lease"}`), http.StatusBadRequest, "no value")
	wantErrors(t, h.do(t, http.MethodPost, pathCacheClear, nil, ``), http.StatusBadRequest, "empty JSON")
	wantErrors(t, h.do(t, http.MethodGet, pathCacheClear, nil, ``), http.StatusMethodNotAllowed, "POST")
}

// TestCacheRenewal renews cached leases and tokens in the background at
// about two thirds of their TTL, with the token that obtained them, and
// serves the time left.
func TestCacheRenewal(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	db := setupDatabase(t, root, "1h", "24h")
	clk := clock.NewFake(time.Now())
	h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, Cache: true, Clock: clk})
	h.auto.set(srv.RootToken)

	l := h.creds(t, db, nil)
	child := h.login(t, "/v1/auth/token/create", nil, `{"policies":["root"],"ttl":"1h"}`)
	eventually(t, "the renewal timers", func() bool { return clk.Pending() == 2 })

	clk.Advance(30 * time.Minute)
	if hit := h.creds(t, db, nil); hit.id != l.id || hit.duration > 1800 || hit.duration < 1790 {
		t.Fatalf("after 30 minutes the cache serves lease %s with %ds left", hit.id, hit.duration)
	}
	if hit := h.login(t, "/v1/auth/token/create", nil, `{"policies":["root"],"ttl":"1h"}`); hit.token != child.token || hit.duration > 1800 {
		t.Fatalf("after 30 minutes the cache serves the token with %ds left", hit.duration)
	}
	for _, s := range leaseState(t, root, l.id, child.accessor) {
		if s != nil {
			t.Fatalf("renewed before two thirds of the TTL: %v", s)
		}
	}

	clk.Advance(15 * time.Minute)
	eventually(t, "the lease and the token to be renewed", func() bool {
		s := leaseState(t, root, l.id, child.accessor)
		return s[0] != nil && s[1] != nil
	})
	// Unrenewed, 900s would be left; renewed, about an hour from the
	// renewal (which happened when its timer fired, a little before 45m).
	eventually(t, "the renewed TTL in the cache", func() bool {
		return h.creds(t, db, nil).duration > 3000
	})
	if hit := h.creds(t, db, nil); hit.id != l.id {
		t.Fatalf("renewal replaced the lease: %s", hit.id)
	}
	if !h.cachedToken(child.token) {
		t.Fatal("the renewed token was evicted")
	}

	// Revoked behind the proxy's back: the next renewals are refused and
	// the entries go.
	ctx := t.Context()
	if err := root.Sys().LeaseRevoke(ctx, l.id, true); err != nil {
		t.Fatal(err)
	}
	if err := root.TokenAuth().RevokeAccessor(ctx, child.accessor); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the next renewal timers", func() bool { return clk.Pending() == 2 })
	if !h.cachedLease(l.id) || !h.cachedToken(child.token) {
		t.Fatal("evicted before a renewal was refused")
	}
	clk.Advance(45 * time.Minute)
	eventually(t, "eviction after the refused renewals", func() bool {
		return !h.cachedLease(l.id) && !h.cachedToken(child.token)
	})
	if next := h.creds(t, db, nil); next.id == l.id {
		t.Fatal("the revoked lease is still served")
	}
}

// leaseState returns the last renewal of the lease and of the token
// behind accessor (nil when never renewed).
func leaseState(t *testing.T, root *api.Client, leaseID, accessor string) [2]any {
	t.Helper()
	l, err := root.Sys().LeaseLookup(t.Context(), leaseID)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := root.TokenAuth().LookupAccessor(t.Context(), accessor)
	if err != nil {
		t.Fatal(err)
	}
	return [2]any{l.Data["last_renewal"], tok.Data["last_renewal_time"]}
}

// TestCacheMaxTTL evicts a lease whose renewals no longer extend it (its
// max TTL is near), before the server expires it; the next identical
// request gets a new lease. Server and proxy run on fake clocks moved in
// step.
func TestCacheMaxTTL(t *testing.T) {
	t.Parallel()
	start := time.Now()
	sclk, pclk := clock.NewFake(start), clock.NewFake(start)
	srv, root := newServer(t, testcluster.Options{Clock: sclk})
	db := setupDatabase(t, root, "1h", "2h")
	h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, Cache: true, Clock: pclk})
	h.auto.set(srv.RootToken)

	l := h.creds(t, db, nil)
	renewed := false
	for h.cachedLease(l.id) {
		if pclk.Now().Sub(start) >= 2*time.Hour {
			t.Fatal("the lease is still cached at its max TTL")
		}
		eventually(t, "the renewal timer", func() bool { return pclk.Pending() == 1 || !h.cachedLease(l.id) })
		if pclk.Pending() == 0 {
			break // evicted after the last renewal
		}
		sclk.Advance(5 * time.Minute)
		pclk.Advance(5 * time.Minute)
		if s, err := root.Sys().LeaseLookup(t.Context(), l.id); err == nil && s.Data["last_renewal"] != nil {
			renewed = true
		}
	}
	if !renewed {
		t.Fatal("evicted without ever being renewed")
	}
	if s, err := root.Sys().LeaseLookup(t.Context(), l.id); err != nil {
		t.Fatalf("evicted only once the server had expired the lease: %v", err)
	} else if ttl, _ := s.Data["ttl"].(json.Number).Int64(); ttl <= 0 || ttl > int64((30*time.Minute).Seconds()) {
		t.Fatalf("evicted with %ds left, want within the last stretch before the max TTL", ttl)
	}
	if next := h.creds(t, db, nil); next.id == l.id || next.cache != "MISS" {
		t.Fatalf("after eviction the read got %s (%s)", next.id, next.cache)
	}
}

// TestCacheBound keeps at most MaxCacheEntries entries, evicting the
// least recently used.
func TestCacheBound(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, Cache: true, MaxCacheEntries: 2})
	h.auto.set(srv.RootToken)
	body := func(name string) string {
		return fmt.Sprintf(`{"policies":["root"],"ttl":"1h","display_name":%q}`, name)
	}
	a := h.login(t, "/v1/auth/token/create", nil, body("a"))
	b := h.login(t, "/v1/auth/token/create", nil, body("b"))
	if hit := h.login(t, "/v1/auth/token/create", nil, body("a")); hit.cache != "HIT" { // a is now the most recent
		t.Fatal("a is not cached")
	}
	h.login(t, "/v1/auth/token/create", nil, body("c"))
	if n := h.entries(); n != 2 {
		t.Fatalf("%d entries, want at most 2", n)
	}
	if h.cachedToken(b.token) || !h.cachedToken(a.token) {
		t.Fatal("the least recently used entry was not the one evicted")
	}
}

// TestCacheKey checks what makes two requests the same.
func TestCacheKey(t *testing.T) {
	t.Parallel()
	tok, other := secret.NewString("t1"), secret.NewString("t2")
	key := func(method, target, body string, tok secret.String, kv ...string) cacheKey {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Set(kv[i], kv[i+1])
		}
		return keyOf(r, []byte(body), tok)
	}
	base := key("GET", "/v1/database/creds/r?a=1&b=2", "", tok)
	same := []cacheKey{
		key("GET", "/v1/database/creds/r?b=2&a=1", "", tok),
		key("GET", "/v1/database/creds/r?a=1&b=2", "", tok, "User-Agent", "other", "X-Vault-Request", "true", "X-Vault-Token", "ignored"),
	}
	for i, k := range same {
		if k != base {
			t.Errorf("same request %d has another key", i)
		}
	}
	differ := map[string]cacheKey{
		"method":     key("POST", "/v1/database/creds/r?a=1&b=2", "", tok),
		"path":       key("GET", "/v1/database/creds/s?a=1&b=2", "", tok),
		"query":      key("GET", "/v1/database/creds/r?a=1", "", tok),
		"body":       key("GET", "/v1/database/creds/r?a=1&b=2", "{}", tok),
		"token":      key("GET", "/v1/database/creds/r?a=1&b=2", "", other),
		"no token":   key("GET", "/v1/database/creds/r?a=1&b=2", "", secret.String{}),
		"wrap TTL":   key("GET", "/v1/database/creds/r?a=1&b=2", "", tok, "X-Vault-Wrap-TTL", "60"),
		"escaped /":  key("GET", "/v1/database/creds%2Fr?a=1&b=2", "", tok),
		"body split": key("GET", "/v1/database/creds/r?a=1&b=2", "t1", secret.String{}),
	}
	for name, k := range differ {
		if k == base {
			t.Errorf("%s: same key", name)
		}
	}
}

// TestCacheNeverUnwraps: an unwrapped token creation carries a renewable
// token the cache would keep, but a wrapping token is good once: the
// second unwrap through the proxy reaches the server and is refused.
func TestCacheNeverUnwraps(t *testing.T) {
	t.Parallel()
	srv, root := newServer(t, testcluster.Options{})
	h := startProxy(t, srv, root, Options{UseAutoAuthToken: true, Cache: true})
	h.auto.set(srv.RootToken)

	r := doHTTP(t, http.DefaultClient, http.MethodPost, srv.URL+"/v1/auth/token/create",
		hdr("X-Vault-Token", srv.RootToken, "X-Vault-Wrap-TTL", "5m"), `{"policies":["default"],"ttl":"1h"}`)
	var wrapped struct {
		WrapInfo struct {
			Token string `json:"token"`
		} `json:"wrap_info"`
	}
	if err := json.Unmarshal(r.body, &wrapped); err != nil || r.status != http.StatusOK || wrapped.WrapInfo.Token == "" {
		t.Fatalf("wrapped token creation: %d %s", r.status, r.body)
	}
	body := `{"token":"` + wrapped.WrapInfo.Token + `"}`
	first := h.do(t, http.MethodPost, "/v1/sys/wrapping/unwrap", nil, body)
	if first.status != http.StatusOK || !strings.Contains(string(first.body), `"client_token"`) {
		t.Fatalf("unwrap: %d %s", first.status, first.body)
	}
	second := h.do(t, http.MethodPost, "/v1/sys/wrapping/unwrap", nil, body)
	if second.status != http.StatusBadRequest || second.header.Get("X-Cache") == "HIT" {
		t.Fatalf("second unwrap: %d, X-Cache %q: %s", second.status, second.header.Get("X-Cache"), second.body)
	}
	if n := h.entries(); n != 0 {
		t.Fatalf("%d cache entries", n)
	}
}
