package token

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

const (
	update = logical.UpdateOperation
	read   = logical.ReadOperation
	list   = logical.ListOperation
)

func TestCreateResponse(t *testing.T) {
	h := newHarness(t)
	resp := h.ok(h.as(h.root), update, "create",
		`{"policies":["dev","web"],"ttl":"2h","meta":{"team":"ml"},"display_name":"ci job","num_uses":0,"type":"","entity_alias":""}`)
	if resp.Data != nil {
		t.Fatalf("create data = %v, want none", resp.Data)
	}
	if !slices.Equal(resp.Warnings, []string{`Policy "web" does not exist`}) {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
	// The HTTP layer renders the auth object (httpapi's TestAuthObject
	// checks its shape); here, what it is rendered from.
	a := resp.Auth
	if a.ClientToken == "" || a.Accessor == "" || a.TokenType != "service" || a.Orphan || !a.Renewable {
		t.Errorf("auth = %+v", a)
	}
	if a.TTL != 2*time.Hour || a.NumUses != 0 {
		t.Errorf("auth ttl %v, num_uses %d", a.TTL, a.NumUses)
	}
	if wantPolicies := []string{"default", "dev", "web"}; !slices.Equal(a.Policies, wantPolicies) {
		t.Errorf("auth policies = %v", a.Policies)
	}
	if a.Metadata["team"] != "ml" {
		t.Errorf("auth metadata = %v", a.Metadata)
	}
	if !strings.HasPrefix(a.ClientToken, ServicePrefix) || len(a.ClientToken) != len(ServicePrefix)+orderLen+24 || len(a.Accessor) != orderLen+24 {
		t.Errorf("token shapes: %d, %d", len(a.ClientToken), len(a.Accessor))
	}
	e := h.entry(a.ClientToken)
	if e.DisplayName != "token-ci-job" || e.Parent != h.entry(h.root.Reveal()).HashedID || e.Path != "auth/token/create" {
		t.Fatalf("entry = %+v", e)
	}
}

func TestLookupShapes(t *testing.T) {
	h := newHarness(t)
	root := h.as(h.root)

	// Root: never expires.
	d := rendered(t, h.ok(root, read, "lookup-self", "").Data)
	for _, key := range []string{"id", "accessor", "policies", "path", "meta", "display_name", "num_uses", "orphan",
		"creation_time", "creation_ttl", "ttl", "expire_time", "explicit_max_ttl", "entity_id", "type", "renewable", "issue_time"} {
		if _, ok := d[key]; !ok {
			t.Errorf("root lookup-self lacks %q", key)
		}
	}
	for _, key := range []string{"period", "role", "bound_cidrs", "last_renewal", "last_renewal_time", "identity_policies"} {
		if _, ok := d[key]; ok {
			t.Errorf("root lookup-self has %q", key)
		}
	}
	if d["id"] != h.root.Reveal() || d["expire_time"] != nil || d["renewable"] != false || d["type"] != "service" ||
		d["meta"] != nil || d["orphan"] != true || num(t, d, "ttl") != 0 || num(t, d, "creation_time") != t0.Unix() {
		t.Fatalf("root lookup-self = %v", d)
	}
	if _, err := time.Parse(time.RFC3339Nano, d["issue_time"].(string)); err != nil {
		t.Fatalf("issue_time: %v", err)
	}

	// A periodic child with bound CIDRs from a role.
	h.ok(root, update, "roles/agents", `{"token_period":"1h","token_bound_cidrs":"10.0.0.0/8,192.168.1.7","allowed_policies":"dev"}`)
	a := h.create(root, "create/agents", `{"meta":{"k":"v"}}`)
	h.clk.Advance(10 * time.Minute)
	d = rendered(t, h.ok(root, update, "lookup", js(`{"token":%q}`, a.ClientToken)).Data)
	if num(t, d, "ttl") != 3000 || num(t, d, "period") != 3600 || num(t, d, "creation_ttl") != 3600 || d["role"] != "agents" ||
		d["renewable"] != true || d["orphan"] != false || d["path"] != "auth/token/create/agents" {
		t.Fatalf("periodic lookup = %v", d)
	}
	if exp, err := time.Parse(time.RFC3339Nano, d["expire_time"].(string)); err != nil || !exp.Equal(t0.Add(time.Hour)) {
		t.Fatalf("expire_time = %v (%v)", d["expire_time"], err)
	}
	if c := d["bound_cidrs"].([]any); !slices.Equal(c, []any{"10.0.0.0/8", "192.168.1.7"}) {
		t.Fatalf("bound_cidrs = %v", c)
	}
	// GET lookup with the token in the query, and lookup without a token
	// (the caller's).
	d = rendered(t, h.ok(root, read, "lookup", js(`{"token":%q}`, a.ClientToken)).Data)
	if d["id"] != a.ClientToken {
		t.Fatal("GET lookup")
	}
	if d = rendered(t, h.ok(root, update, "lookup", `{}`).Data); d["id"] != h.root.Reveal() {
		t.Fatal("lookup without a token is not the caller's")
	}
	// By accessor: no id.
	d = rendered(t, h.ok(root, update, "lookup-accessor", js(`{"accessor":%q}`, a.Accessor)).Data)
	if d["id"] != "" || d["accessor"] != a.Accessor {
		t.Fatalf("lookup-accessor = %v", d)
	}
	// After a renewal.
	h.ok(h.as(tok(a.ClientToken)), update, "renew-self", "")
	d = rendered(t, h.ok(root, update, "lookup", js(`{"token":%q}`, a.ClientToken)).Data)
	if num(t, d, "last_renewal_time") != t0.Add(10*time.Minute).Unix() || d["last_renewal"] == nil {
		t.Fatalf("after renewal: %v", d)
	}

	// Errors.
	h.fails(root, update, "lookup", `{"token":"hvs.nope"}`, 403, "bad token")
	h.fails(root, update, "lookup-accessor", `{"accessor":"nope"}`, 400, "invalid accessor")
	h.fails(root, update, "lookup-accessor", `{}`, 400, "missing accessor")
	h.fails(h.ctx, read, "lookup-self", "", 403, "permission denied")
}

// TestTTLNumberForClients checks the Go client's view: ttl and friends are
// JSON numbers (json.Number with UseNumber).
func TestTTLNumberForClients(t *testing.T) {
	h := newHarness(t)
	a := h.create(h.as(h.root), "create", `{"policies":"dev","ttl":3600}`)
	d := rendered(t, h.ok(h.as(tok(a.ClientToken)), read, "lookup-self", "").Data)
	for _, key := range []string{"ttl", "creation_ttl", "creation_time", "explicit_max_ttl", "num_uses"} {
		if _, ok := d[key].(json.Number); !ok {
			t.Errorf("%s = %#v, want a JSON number", key, d[key])
		}
	}
	if _, ok := d["renewable"].(bool); !ok {
		t.Errorf("renewable = %#v, want a bool", d["renewable"])
	}
	if _, ok := d["expire_time"].(string); !ok {
		t.Errorf("expire_time = %#v, want a string", d["expire_time"])
	}
}

func TestCreateRules(t *testing.T) {
	h := newHarness(t)
	root := h.as(h.root)
	user := h.create(root, "create", `{"policies":"dev"}`)            // default, dev
	creator := h.create(root, "create", `{"policies":"creator,dev"}`) // sudo on create
	limited := h.create(root, "create", `{"policies":"dev","num_uses":5}`)
	u, c := h.as(tok(user.ClientToken)), h.as(tok(creator.ClientToken))

	for _, tc := range []struct {
		name   string
		as     string // user, creator, root, limited
		path   string
		body   string
		status int
		msg    string
		check  func(t *testing.T, a *logical.Auth)
	}{
		{name: "subset", as: "user", path: "create", body: `{"policies":"dev"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if !slices.Equal(a.Policies, []string{"default", "dev"}) || a.Orphan {
					t.Errorf("auth = %+v", a)
				}
			}},
		{name: "inherit", as: "user", path: "create", body: `{}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if !slices.Equal(a.Policies, []string{"default", "dev"}) || a.TTL != mountDefault {
					t.Errorf("auth = %+v", a)
				}
			}},
		{name: "no default", as: "user", path: "create", body: `{"policies":"dev","no_default_policy":true}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if !slices.Equal(a.Policies, []string{"dev"}) {
					t.Errorf("policies = %v", a.Policies)
				}
			}},
		{name: "not a subset", as: "user", path: "create", body: `{"policies":"ops"}`, status: 400, msg: "child policies must be subset of parent"},
		{name: "sudo escapes subset", as: "creator", path: "create", body: `{"policies":"ops"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if !slices.Equal(a.Policies, []string{"default", "ops"}) {
					t.Errorf("policies = %v", a.Policies)
				}
			}},
		{name: "root needs root", as: "creator", path: "create", body: `{"policies":"root"}`, status: 400, msg: "root tokens may not be created without parent token being root"},
		{name: "root by root", as: "root", path: "create", body: `{"policies":"root"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if !slices.Equal(a.Policies, []string{"root"}) || a.TTL != 0 || a.Renewable {
					t.Errorf("root child = %+v", a)
				}
			}},
		{name: "no_parent needs sudo", as: "user", path: "create", body: `{"no_parent":true}`, status: 400, msg: "root or sudo privileges required to create orphan token"},
		{name: "no_parent with sudo", as: "creator", path: "create", body: `{"no_parent":true,"policies":"dev"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if !a.Orphan {
					t.Error("not an orphan")
				}
			}},
		{name: "create-orphan needs only update", as: "user", path: "create-orphan", body: `{"policies":"dev"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if !a.Orphan {
					t.Error("not an orphan")
				}
			}},
		{name: "id needs sudo", as: "user", path: "create", body: `{"id":"custom-1"}`, status: 400, msg: "root or sudo privileges required to specify token id"},
		{name: "period needs sudo", as: "user", path: "create", body: `{"period":"1h"}`, status: 400, msg: "root or sudo privileges required to create periodic token"},
		{name: "period with sudo", as: "creator", path: "create", body: `{"period":"2h","policies":"dev"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if a.TTL != 2*time.Hour || a.Period != 2*time.Hour {
					t.Errorf("periodic = %+v", a)
				}
			}},
		{name: "limited caller", as: "limited", path: "create", body: `{}`, status: 400, msg: "restricted use token cannot generate child tokens"},
		{name: "negative uses", as: "user", path: "create", body: `{"num_uses":-1}`, status: 400, msg: "number of uses cannot be negative"},
		{name: "bad type", as: "user", path: "create", body: `{"type":"weird"}`, status: 400, msg: "invalid 'token_type' value"},
		{name: "batch with period", as: "creator", path: "create", body: `{"type":"batch","period":"1h"}`, status: 400, msg: `batch tokens cannot have "period" set`},
		{name: "batch with uses", as: "user", path: "create", body: `{"type":"batch","num_uses":2}`, status: 400, msg: `batch tokens cannot have "num_uses" set`},
		{name: "batch with explicit max", as: "user", path: "create", body: `{"type":"batch","explicit_max_ttl":"1h"}`, status: 400, msg: `batch tokens cannot have "explicit_max_ttl" set`},
		{name: "batch root", as: "root", path: "create", body: `{"type":"batch"}`, status: 400, msg: "batch tokens cannot be root tokens"},
		{name: "response-wrapping", as: "creator", path: "create", body: `{"policies":"response-wrapping"}`, status: 400, msg: `cannot assign policy "response-wrapping"`},
		{name: "entity alias without role", as: "user", path: "create", body: `{"entity_alias":"x"}`, status: 400, msg: "only allowed in combination with token role"},
		{name: "ttl capped", as: "user", path: "create", body: `{"ttl":"100h"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if a.TTL != mountMax {
					t.Errorf("ttl = %s", a.TTL)
				}
			}},
		{name: "explicit max caps", as: "user", path: "create", body: `{"ttl":"5h","explicit_max_ttl":"2h"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if a.TTL != 2*time.Hour || a.ExplicitMaxTTL != 2*time.Hour {
					t.Errorf("auth = %+v", a)
				}
			}},
		{name: "lease alias", as: "user", path: "create", body: `{"lease":"30m"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if a.TTL != 30*time.Minute {
					t.Errorf("ttl = %s", a.TTL)
				}
			}},
		{name: "not renewable", as: "user", path: "create", body: `{"renewable":false}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if a.Renewable {
					t.Error("renewable")
				}
			}},
		{name: "num uses", as: "user", path: "create", body: `{"num_uses":"3"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if a.NumUses != 3 {
					t.Errorf("num_uses = %d", a.NumUses)
				}
			}},
		{name: "go client empties", as: "user", path: "create",
			body:   `{"policies":["dev"],"meta":null,"no_parent":false,"no_default_policy":false,"ttl":"","explicit_max_ttl":"","period":"","display_name":"","num_uses":0,"renewable":true,"type":"","entity_alias":""}`,
			status: 200},
		{name: "custom id", as: "root", path: "create", body: `{"id":"my-token-1","policies":"dev"}`, status: 200,
			check: func(t *testing.T, a *logical.Auth) {
				if a.ClientToken != "my-token-1" {
					t.Errorf("token = %q", a.ClientToken)
				}
			}},
		{name: "custom id duplicate", as: "root", path: "create", body: `{"id":"my-token-1","policies":"dev"}`, status: 400, msg: "already exists"},
		{name: "custom id with dot", as: "root", path: "create", body: `{"id":"a.b"}`, status: 400, msg: "may not contain '.'"},
		{name: "custom id prefix", as: "creator", path: "create", body: `{"id":"hvs.abc"}`, status: 400, msg: "prefix"},
		{name: "custom id sudo", as: "creator", path: "create", body: `{"id":"by-sudo","policies":"dev"}`, status: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := map[string]context.Context{"user": u, "creator": c, "root": root, "limited": h.as(tok(limited.ClientToken))}[tc.as]
			resp, err := h.request(ctx, update, tc.path, tc.body)
			status, msg := httpStatus(resp, err)
			if status != tc.status || !strings.Contains(msg, tc.msg) {
				t.Fatalf("got %d %q, want %d %q", status, msg, tc.status, tc.msg)
			}
			if tc.status == 200 {
				if resp.Auth == nil {
					t.Fatal("no auth")
				}
				for _, w := range resp.Warnings {
					if strings.Contains(w, "unrecognized parameters") {
						t.Errorf("warning %q", w)
					}
				}
				h.entry(resp.Auth.ClientToken)
				if tc.check != nil {
					tc.check(t, resp.Auth)
				}
			}
		})
	}

	// A capped TTL warns.
	resp := h.ok(u, update, "create", `{"ttl":"100h"}`)
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], `TTL of "100h0m0s" exceeded the effective max_ttl of "24h0m0s"`) {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
	// An expiring root token cannot create a never-expiring one.
	expRoot := h.create(root, "create", `{"policies":"root","ttl":"1h"}`)
	h.fails(h.as(tok(expRoot.ClientToken)), update, "create", `{}`, 400, "expiring root tokens cannot create non-expiring root tokens")
}

func TestRenewEndpoints(t *testing.T) {
	h := newHarness(t)
	root := h.as(h.root)
	a := h.create(root, "create", `{"policies":"dev","ttl":"1h","explicit_max_ttl":"3h"}`)
	ctx := h.as(tok(a.ClientToken))

	h.clk.Advance(30 * time.Minute)
	resp := h.ok(ctx, update, "renew-self", `{"increment":"2h"}`)
	if resp.Auth.TTL != 2*time.Hour || resp.Auth.ClientToken != a.ClientToken || !resp.Auth.Renewable || len(resp.Warnings) != 0 {
		t.Fatalf("renew-self = %+v %q", resp.Auth, resp.Warnings)
	}
	// Without increment: the creation TTL again, from now.
	h.clk.Advance(time.Hour)
	resp = h.ok(root, update, "renew", js(`{"token":%q}`, a.ClientToken))
	if resp.Auth.TTL != time.Hour {
		t.Fatalf("renew = %+v", resp.Auth)
	}
	// Capped at the explicit maximum, shrinking.
	h.clk.Advance(50 * time.Minute)
	resp = h.ok(root, update, "renew-accessor", js(`{"accessor":%q,"increment":3600}`, a.Accessor))
	if resp.Auth.TTL != 40*time.Minute || resp.Auth.ClientToken != "" || len(resp.Warnings) != 1 {
		t.Fatalf("renew-accessor = %+v %q", resp.Auth, resp.Warnings)
	}
	if len(h.hooks.renewed) != 3 {
		t.Fatalf("TokenRenewed called %d times", len(h.hooks.renewed))
	}

	h.fails(root, update, "renew-self", "", 400, "lease is not renewable") // root
	nr := h.create(root, "create", `{"policies":"dev","renewable":false}`)
	h.fails(root, update, "renew", js(`{"token":%q}`, nr.ClientToken), 400, "lease is not renewable")
	h.fails(root, update, "renew", `{}`, 400, "missing token ID")
	h.fails(root, update, "renew", `{"token":"hvs.nope"}`, 400, "token not found")
	h.fails(root, update, "renew-accessor", `{"accessor":"nope"}`, 400, "invalid accessor")
	h.fails(root, update, "renew-self", `{"increment":-5}`, 400, "increment")

	// Periodic: each renewal back to the period, past the mount maximum.
	p := h.create(root, "create", `{"policies":"dev","period":"6h"}`)
	for range 6 {
		h.clk.Advance(5 * time.Hour)
		resp = h.ok(root, update, "renew", js(`{"token":%q,"increment":"100h"}`, p.ClientToken))
		if resp.Auth.TTL != 6*time.Hour || resp.Auth.Period != 6*time.Hour {
			t.Fatalf("periodic renew = %+v", resp.Auth)
		}
	}
}

func TestRevokeEndpoints(t *testing.T) {
	h := newHarness(t)
	root := h.as(h.root)
	creator := h.create(root, "create", `{"policies":"creator,dev"}`)
	user := h.create(root, "create", `{"policies":"dev"}`)

	a := h.create(root, "create", `{"policies":"dev"}`)
	b := h.create(h.as(tok(a.ClientToken)), "create", `{}`)
	c := h.create(h.as(tok(b.ClientToken)), "create", `{}`)
	if resp := h.ok(root, update, "revoke", js(`{"token":%q}`, a.ClientToken)); resp.Data != nil || resp.Auth != nil {
		t.Fatalf("revoke answered %+v", resp)
	}
	h.gone(a.ClientToken)
	h.gone(b.ClientToken)
	h.gone(c.ClientToken)
	h.ok(root, update, "revoke", js(`{"token":%q}`, a.ClientToken)) // again: not an error
	h.fails(root, update, "revoke", `{}`, 400, "missing token ID")

	// revoke-self
	s := h.create(root, "create", `{"policies":"dev"}`)
	h.ok(h.as(tok(s.ClientToken)), update, "revoke-self", "")
	h.gone(s.ClientToken)

	// revoke-accessor
	r := h.create(root, "create", `{"policies":"dev"}`)
	h.ok(root, update, "revoke-accessor", js(`{"accessor":%q}`, r.Accessor))
	h.gone(r.ClientToken)
	resp := h.ok(root, update, "revoke-accessor", js(`{"accessor":%q}`, r.Accessor))
	if !slices.Equal(resp.Warnings, []string{"No token found with this accessor"}) {
		t.Fatalf("revoke-accessor of an unknown accessor: %q", resp.Warnings)
	}
	h.fails(root, update, "revoke-accessor", `{}`, 400, "missing accessor")

	// revoke-orphan: sudo only; children survive as orphans.
	o := h.create(root, "create", `{"policies":"dev"}`)
	oc := h.create(h.as(tok(o.ClientToken)), "create", `{}`)
	h.fails(h.as(tok(user.ClientToken)), update, "revoke-orphan", js(`{"token":%q}`, o.ClientToken), 400, "root or sudo privileges required to revoke and orphan")
	h.ok(h.as(tok(creator.ClientToken)), update, "revoke-orphan", js(`{"token":%q}`, o.ClientToken))
	h.gone(o.ClientToken)
	d := rendered(t, h.ok(root, update, "lookup", js(`{"token":%q}`, oc.ClientToken)).Data)
	if d["orphan"] != true {
		t.Fatalf("child after revoke-orphan: %v", d)
	}
	h.fails(root, update, "revoke-orphan", `{"token":"hvs.nope"}`, 400, "token to revoke not found")
	h.fails(root, update, "revoke-orphan", `{}`, 400, "missing token ID")
}

func TestSpecialPaths(t *testing.T) {
	h := newHarness(t)
	sp := h.b.(logical.SpecialPather).SpecialPaths()
	for _, p := range []string{"revoke-orphan", "accessors/", "accessors"} {
		if !logical.MatchSpecial(sp.Root, p) {
			t.Errorf("%s is not a root path", p)
		}
	}
	for _, p := range []string{"create", "create-orphan", "lookup-self", "revoke", "roles/x"} {
		if logical.MatchSpecial(sp.Root, p) {
			t.Errorf("%s is a root path", p)
		}
	}
	if len(sp.Unauthenticated) != 0 {
		t.Errorf("unauthenticated paths %v", sp.Unauthenticated)
	}
}

func TestAccessorsEndpoint(t *testing.T) {
	h := newHarness(t)
	root := h.as(h.root)
	a := h.create(root, "create", `{"policies":"dev"}`)
	h.create(root, "create", `{"policies":"dev","type":"batch"}`)
	keys := h.ok(root, list, "accessors/", "").Data["keys"].([]string)
	if len(keys) != 2 || !slices.Contains(keys, a.Accessor) || !slices.Contains(keys, h.entry(h.root.Reveal()).Accessor) {
		t.Fatalf("accessors = %v", keys)
	}
	// With every token gone, the list is a 404.
	if err := h.st.Revoke(h.ctx, h.root); err != nil {
		t.Fatal(err)
	}
	if err := h.st.Revoke(h.ctx, tok(a.ClientToken)); err != nil {
		t.Fatal(err)
	}
	if _, err := h.b.HandleRequest(root, &logical.Request{Operation: list, Path: "accessors/", Storage: h.s}); err != logical.ErrNotFound {
		t.Fatalf("empty accessors list: %v", err)
	}
}

func TestTidyEndpoint(t *testing.T) {
	h := newHarness(t)
	root := h.as(h.root)
	h.create(root, "create", `{"policies":"dev","ttl":"1m"}`)
	h.clk.Advance(2 * time.Minute)
	resp := h.ok(root, update, "tidy", "")
	if resp.Data["revoked_tokens"] != 1 || len(resp.Warnings) != 1 {
		t.Fatalf("tidy = %+v", resp)
	}
	// A tidy already running.
	h.st.tidyMu.Lock()
	resp = h.ok(root, update, "tidy", "")
	h.st.tidyMu.Unlock()
	if !slices.Equal(resp.Warnings, []string{"Tidy operation already in progress."}) {
		t.Fatalf("concurrent tidy = %q", resp.Warnings)
	}
}

func TestRoles(t *testing.T) {
	h := newHarness(t)
	root := h.as(h.root)
	user := h.as(tok(h.create(root, "create", `{"policies":"dev"}`).ClientToken))

	h.fails(root, list, "roles/", "", 404, "")
	h.ok(root, update, "roles/deploy", `{"allowed_policies":"ops,dev","orphan":true,"path_suffix":"v2","token_ttl":"2h","token_max_ttl":"4h","token_num_uses":0}`)
	h.ok(root, update, "roles/glob", `{"allowed_policies_glob":"team-*","disallowed_policies_glob":"*-admin","disallowed_policies":"secret"}`)
	h.ok(root, update, "roles/periodic", `{"token_period":"3h","allowed_policies":"dev","renewable":true}`)
	h.ok(root, update, "roles/batch", `{"token_type":"batch","orphan":true,"renewable":false,"allowed_policies":"dev"}`)
	h.ok(root, update, "roles/nodefault", `{"allowed_policies":"dev","token_no_default_policy":true}`)
	keys := h.ok(root, list, "roles", "").Data["keys"].([]string)
	if !slices.Equal(keys, []string{"batch", "deploy", "glob", "nodefault", "periodic"}) {
		t.Fatalf("roles = %v", keys)
	}

	// A role grants policies the caller lacks.
	a := h.create(user, "create/deploy", `{"policies":"ops"}`)
	e := h.entry(a.ClientToken)
	if !slices.Equal(e.Policies, []string{"default", "ops"}) || !e.IsOrphan() || e.Role != "deploy" ||
		e.Path != "auth/token/create/deploy/v2" || e.TTL != 2*time.Hour || e.MaxTTL != 4*time.Hour {
		t.Fatalf("role token = %+v", e)
	}
	a = h.create(user, "create/deploy", `{}`) // the role's allowed list
	if !slices.Equal(a.Policies, []string{"default", "dev", "ops"}) {
		t.Fatalf("default role policies = %v", a.Policies)
	}
	h.fails(user, update, "create/deploy", `{"policies":"admin"}`, 400, "must be subset of the role's allowed policies")
	// Globs.
	h.create(user, "create/glob", `{"policies":"team-a"}`)
	h.fails(user, update, "create/glob", `{"policies":"team-admin"}`, 400, `token policy "team-admin" is disallowed by this role`)
	h.fails(user, update, "create/glob", `{"policies":"ops"}`, 400, "must be subset")
	// Periodic through the role, without sudo.
	p := h.create(user, "create/periodic", `{}`)
	if p.Period != 3*time.Hour || p.TTL != 3*time.Hour {
		t.Fatalf("periodic role token = %+v", p)
	}
	// Batch through the role.
	b := h.create(user, "create/batch", `{}`)
	if b.TokenType != TypeBatch || !b.Orphan || !strings.HasPrefix(b.ClientToken, BatchPrefix) {
		t.Fatalf("batch role token = %+v", b)
	}
	if nd := h.create(user, "create/nodefault", `{}`); !slices.Equal(nd.Policies, []string{"dev"}) {
		t.Fatalf("no-default role = %v", nd.Policies)
	}
	h.fails(user, update, "create/missing", `{}`, 400, "unknown role missing")
	h.fails(user, update, "create/deploy", `{"entity_alias":"bob"}`, 400, "invalid 'entity_alias' value")

	// Read.
	d := rendered(t, h.ok(root, read, "roles/deploy", "").Data)
	if d["name"] != "deploy" || d["orphan"] != true || d["path_suffix"] != "v2" || d["token_type"] != "default-service" ||
		num(t, d, "token_ttl") != 7200 || d["renewable"] != true || !slices.Equal(d["allowed_policies"].([]any), []any{"dev", "ops"}) {
		t.Fatalf("role read = %v", d)
	}
	if _, ok := d["token_bound_cidrs"]; ok {
		t.Error("token_bound_cidrs shown unset")
	}
	// Legacy aliases are echoed.
	resp := h.ok(root, update, "roles/legacy", `{"period":"1h","bound_cidrs":"10.0.0.1","token_explicit_max_ttl":"2h","explicit_max_ttl":"5h"}`)
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "Both 'token_explicit_max_ttl' and deprecated") {
		t.Fatalf("legacy warnings %q", resp.Warnings)
	}
	d = rendered(t, h.ok(root, read, "roles/legacy", "").Data)
	if num(t, d, "period") != 3600 || num(t, d, "token_period") != 3600 || num(t, d, "explicit_max_ttl") != 0 ||
		num(t, d, "token_explicit_max_ttl") != 7200 || !slices.Equal(d["bound_cidrs"].([]any), []any{"10.0.0.1"}) {
		t.Fatalf("legacy role read = %v", d)
	}
	// Invalid roles.
	for _, tc := range []struct{ body, msg string }{
		{`{"token_type":"batch"}`, "non-orphan"},
		{`{"token_type":"batch","orphan":true}`, "renewable"},
		{`{"token_type":"batch","orphan":true,"renewable":false,"token_period":"1h"}`, "periodic"},
		{`{"token_type":"batch","orphan":true,"renewable":false,"token_explicit_max_ttl":"1h"}`, "explicit max TTL"},
		{`{"token_type":"nope"}`, "invalid 'token_type' value"},
		{`{"path_suffix":"../x"}`, "path suffix"},
		{`{"token_ttl":"2h","token_max_ttl":"1h"}`, "token_ttl must not be greater"},
		{`{"token_bound_cidrs":"nope"}`, "invalid CIDR"},
		{`{"token_num_uses":-1}`, "negative"},
	} {
		h.fails(root, update, "roles/bad", tc.body, 400, tc.msg)
	}
	h.fails(root, update, "roles/bad name", `{}`, 400, "role_name")
	h.fails(root, read, "roles/bad", "", 404, "")

	// An update changes only what it names.
	h.ok(root, update, "roles/deploy", `{"orphan":false}`)
	d = rendered(t, h.ok(root, read, "roles/deploy", "").Data)
	if d["orphan"] != false || d["path_suffix"] != "v2" {
		t.Fatalf("after update: %v", d)
	}

	// Renewal of a role token follows the role; a deleted role refuses it.
	pe := h.as(tok(p.ClientToken))
	h.ok(root, update, "roles/periodic", `{"token_period":"1h"}`)
	if r := h.ok(pe, update, "renew-self", ""); r.Auth.TTL != time.Hour {
		t.Fatalf("renewal after the role changed: %+v", r.Auth)
	}
	h.ok(root, logical.DeleteOperation, "roles/periodic", "")
	h.fails(pe, update, "renew-self", "", 400, `original token role "periodic" could not be found`)
	h.fails(root, read, "roles/periodic", "", 404, "")
}

// A token created for an hour reports an hour, also when the clock is
// between two seconds (a batch token keeps its creation time to the
// second).
func TestCreateReportsTheWholeTTL(t *testing.T) {
	h := newHarness(t)
	h.clk.Advance(700 * time.Millisecond)
	root := h.as(h.root)
	for _, js := range []string{`{"policies":"dev","ttl":"1h"}`, `{"policies":"dev","ttl":"1h","type":"batch"}`} {
		if a := h.create(root, "create", js); a.TTL != time.Hour {
			t.Errorf("%s: ttl %v, want 1h", js, a.TTL)
		}
	}
}
