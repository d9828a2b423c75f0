package approle

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestLoginSuccess(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{"token_policies":"dev,ops","token_ttl":"1h","token_max_ttl":"4h","token_explicit_max_ttl":"8h",
		"token_num_uses":5,"token_bound_cidrs":"10.0.0.0/8","token_type":"service","token_no_default_policy":true}`)
	sid, acc := h.newSecretID("app", `{"metadata":"{\"env\":\"prod\",\"role_name\":\"spoofed\"}"}`)

	resp, err := h.login(id, sid, from("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Data != nil || resp.Secret != nil {
		t.Fatalf("login response carries more than an auth: %+v", resp)
	}
	md := map[string]string{"env": "prod", "role_name": "app"}
	want := &logical.Auth{
		Policies:        []string{"dev", "ops"},
		NoDefaultPolicy: true,
		Metadata:        md,
		Role:            "app",
		DisplayName:     "app",
		TTL:             time.Hour,
		MaxTTL:          4 * time.Hour,
		ExplicitMaxTTL:  8 * time.Hour,
		NumUses:         5,
		Renewable:       true,
		TokenType:       "service",
		BoundCIDRs:      []string{"10.0.0.0/8"},
		Alias:           &logical.Alias{Name: id, Metadata: md},
		InternalData:    map[string]any{"role_name": "app", "role_id": id, "secret_id_accessor": acc},
	}
	if !reflect.DeepEqual(resp.Auth, want) {
		t.Fatalf("auth:\n got %+v\nwant %+v", resp.Auth, want)
	}
	for k, v := range resp.Auth.InternalData {
		if v == sid {
			t.Fatalf("InternalData[%q] holds the secret ID", k)
		}
	}
	// Unlimited secret IDs keep working.
	h.mustLogin(id, sid)
	h.mustLogin(id, " "+sid+"\n")
}

func TestLoginPeriodicAndTokenCIDROverride(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{"token_period":"30m","token_bound_cidrs":"10.0.0.0/8"}`)
	sid, _ := h.newSecretID("app", `{"token_bound_cidrs":"10.1.0.0/16,10.2.2.2"}`)
	a := h.mustLogin(id, sid)
	if a.Period != 30*time.Minute || !a.Renewable || !reflect.DeepEqual(a.BoundCIDRs, []string{"10.1.0.0/16", "10.2.2.2"}) {
		t.Fatalf("auth = %+v", a)
	}
	sid2, _ := h.newSecretID("app", ``)
	if a := h.mustLogin(id, sid2); !reflect.DeepEqual(a.BoundCIDRs, []string{"10.0.0.0/8"}) {
		t.Fatalf("bound cidrs without override = %v", a.BoundCIDRs)
	}
	h.createRole("batch", `{"token_type":"batch"}`)
	sid3, _ := h.newSecretID("batch", ``)
	if a := h.mustLogin(h.roleID("batch"), sid3); a.Renewable || a.TokenType != "batch" || a.Policies != nil {
		t.Fatalf("batch auth = %+v", a)
	}
}

func TestLoginMissingFields(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{}`)
	for _, tc := range []struct {
		name string
		body string
		msg  string
	}{
		{"empty body", ``, "missing role_id"},
		{"blank role_id", `{"role_id":"  ","secret_id":"x"}`, "missing role_id"},
		{"missing secret_id", `{"role_id":"` + id + `"}`, "missing secret_id"},
		{"blank secret_id", `{"role_id":"` + id + `","secret_id":" "}`, "missing secret_id"},
		// An unknown role_id is refused before secret_id is looked at.
		{"unknown role without secret", `{"role_id":"nope"}`, msgInvalidCredentials},
	} {
		status, msg, _ := h.status(logical.UpdateOperation, "login", tc.body)
		if status != 400 || msg != tc.msg {
			t.Errorf("%s: got %d %q, want 400 %q", tc.name, status, msg, tc.msg)
		}
	}
}

// TestLoginFailuresAreVague checks that every way a login can fail once
// its input is understood gets the very same answer.
func TestLoginFailuresAreVague(t *testing.T) {
	t.Parallel()
	type fixture struct {
		h                 *harness
		id, sid, otherSID string
	}
	setup := func(t *testing.T, role string) fixture {
		h := newHarness(t)
		f := fixture{h: h, id: h.createRole("app", role)}
		f.sid, _ = h.newSecretID("app", ``)
		h.createRole("other", `{}`)
		f.otherSID, _ = h.newSecretID("other", ``)
		return f
	}
	cases := []struct {
		name  string
		role  string
		login func(t *testing.T, f fixture) (*logical.Response, error)
	}{
		{name: "unknown role_id", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			return f.h.login("00000000-0000-4000-8000-000000000000", f.sid, from("127.0.0.1"))
		}},
		{name: "role_id too long", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			return f.h.login(strings.Repeat("r", maxInputLen+1), f.sid, from("127.0.0.1"))
		}},
		{name: "wrong secret_id", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			return f.h.login(f.id, f.sid+"x", from("127.0.0.1"))
		}},
		{name: "secret_id too long", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			return f.h.login(f.id, strings.Repeat("s", maxInputLen+1), from("127.0.0.1"))
		}},
		{name: "secret_id of another role", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			return f.h.login(f.id, f.otherSID, from("127.0.0.1"))
		}},
		{name: "accessor instead of secret_id", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			_, acc := f.h.newSecretID("app", ``)
			return f.h.login(f.id, acc, from("127.0.0.1"))
		}},
		{name: "role_id as secret_id", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			return f.h.login(f.sid, f.id, from("127.0.0.1"))
		}},
		{name: "expired", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			sid, _ := f.h.newSecretID("app", `{"ttl":"1m"}`)
			f.h.clk.Advance(time.Minute)
			return f.h.login(f.id, sid, from("127.0.0.1"))
		}},
		{name: "exhausted", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			sid, _ := f.h.newSecretID("app", `{"num_uses":1}`)
			f.h.mustLogin(f.id, sid)
			return f.h.login(f.id, sid, from("127.0.0.1"))
		}},
		{name: "destroyed", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			f.h.ok(logical.UpdateOperation, "role/app/secret-id/destroy", `{"secret_id":"`+f.sid+`"}`)
			return f.h.login(f.id, f.sid, from("127.0.0.1"))
		}},
		{name: "outside role cidrs", role: `{"secret_id_bound_cidrs":"10.0.0.0/8"}`, login: func(t *testing.T, f fixture) (*logical.Response, error) {
			return f.h.login(f.id, f.sid, from("192.168.1.1"))
		}},
		{name: "role cidrs without connection", role: `{"secret_id_bound_cidrs":"10.0.0.0/8"}`, login: func(t *testing.T, f fixture) (*logical.Response, error) {
			return f.h.login(f.id, f.sid, nil)
		}},
		{name: "outside secret_id cidr_list", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			sid, _ := f.h.newSecretID("app", `{"cidr_list":"10.0.0.0/8"}`)
			return f.h.login(f.id, sid, from("11.0.0.1"))
		}},
		{name: "cidr_list without connection", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			sid, _ := f.h.newSecretID("app", `{"cidr_list":"10.0.0.0/8"}`)
			return f.h.login(f.id, sid, nil)
		}},
		{name: "cidr_list with empty address", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			sid, _ := f.h.newSecretID("app", `{"cidr_list":"10.0.0.0/8","num_uses":2}`)
			return f.h.login(f.id, sid, from(""))
		}},
		{name: "old role_id", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			f.h.ok(logical.UpdateOperation, "role/app/role-id", `{"role_id":"new-id"}`)
			return f.h.login(f.id, f.sid, from("127.0.0.1"))
		}},
		{name: "deleted role", login: func(t *testing.T, f fixture) (*logical.Response, error) {
			f.h.ok(logical.DeleteOperation, "role/app", "")
			return f.h.login(f.id, f.sid, from("127.0.0.1"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t, tc.role)
			resp, err := tc.login(t, f)
			wantInvalid(t, resp, err)
		})
	}
}

func TestLoginCIDRBinding(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		role     string
		secretID string
		conn     *logical.Connection
		ok       bool
	}{
		{name: "no restriction, no connection", role: `{}`, conn: nil, ok: true},
		{name: "role cidr inside", role: `{"secret_id_bound_cidrs":"10.0.0.0/8,192.168.1.5"}`, conn: from("10.20.30.40"), ok: true},
		{name: "role single address", role: `{"secret_id_bound_cidrs":"10.0.0.0/8,192.168.1.5"}`, conn: from("192.168.1.5"), ok: true},
		{name: "role cidr outside", role: `{"secret_id_bound_cidrs":"10.0.0.0/8,192.168.1.5"}`, conn: from("192.168.1.6"), ok: false},
		{name: "role cidr mapped v4", role: `{"secret_id_bound_cidrs":"10.0.0.0/8"}`, conn: from("::ffff:10.1.1.1"), ok: true},
		{name: "role cidr v6", role: `{"secret_id_bound_cidrs":"2001:db8::/32"}`, conn: from("2001:db8::7"), ok: true},
		{name: "role cidr unparsable address", role: `{"secret_id_bound_cidrs":"10.0.0.0/8"}`, conn: from("10.1.1.1:5000"), ok: false},
		{name: "secret id cidr inside", role: `{}`, secretID: `{"cidr_list":"10.1.0.0/16"}`, conn: from("10.1.2.3"), ok: true},
		{name: "secret id cidr outside", role: `{}`, secretID: `{"cidr_list":"10.1.0.0/16"}`, conn: from("10.2.2.3"), ok: false},
		{name: "both inside", role: `{"secret_id_bound_cidrs":"10.0.0.0/8"}`, secretID: `{"cidr_list":"10.1.0.0/16"}`, conn: from("10.1.2.3"), ok: true},
		{name: "role inside secret id outside", role: `{"secret_id_bound_cidrs":"10.0.0.0/8"}`, secretID: `{"cidr_list":"10.1.0.0/16"}`, conn: from("10.9.2.3"), ok: false},
		{name: "limited secret id outside", role: `{}`, secretID: `{"cidr_list":"10.1.0.0/16","num_uses":3}`, conn: from("10.2.2.3"), ok: false},
		{name: "limited secret id inside", role: `{}`, secretID: `{"cidr_list":"10.1.0.0/16","num_uses":3}`, conn: from("10.1.2.3"), ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			id := h.createRole("app", tc.role)
			sid, _ := h.newSecretID("app", tc.secretID)
			resp, err := h.login(id, sid, tc.conn)
			if !tc.ok {
				wantInvalid(t, resp, err)
				// A refused address does not burn a use.
				d := h.ok(logical.UpdateOperation, "role/app/secret-id/lookup", `{"secret_id":"`+sid+`"}`).Data
				if tc.secretID != "" && strings.Contains(tc.secretID, "num_uses") && d["secret_id_num_uses"] != 3 {
					t.Fatalf("uses after refused login = %v", d["secret_id_num_uses"])
				}
				return
			}
			if err != nil || resp.Auth == nil {
				t.Fatalf("login: %v", err)
			}
		})
	}
}

func TestLoginWithoutSecretID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{"bind_secret_id":false,"secret_id_bound_cidrs":"10.0.0.0/8","token_policies":"p"}`)
	resp, err := h.login(id, "", from("10.1.1.1"))
	if err != nil {
		t.Fatal(err)
	}
	a := resp.Auth
	if !reflect.DeepEqual(a.Metadata, map[string]string{"role_name": "app"}) || a.InternalData["secret_id_accessor"] != "" ||
		!reflect.DeepEqual(a.Policies, []string{"p"}) {
		t.Fatalf("auth = %+v", a)
	}
	// A secret_id sent anyway is ignored.
	if _, err := h.login(id, "whatever", from("10.1.1.1")); err != nil {
		t.Fatal(err)
	}
	resp, err = h.login(id, "", from("11.1.1.1"))
	wantInvalid(t, resp, err)
	resp, err = h.login(id, "", nil)
	wantInvalid(t, resp, err)

	// Only token_bound_cidrs as constraint: any source may log in, the
	// token is bound.
	id2 := h.createRole("tok", `{"bind_secret_id":false,"token_bound_cidrs":"10.0.0.0/8"}`)
	resp, err = h.login(id2, "", nil)
	if err != nil || !reflect.DeepEqual(resp.Auth.BoundCIDRs, []string{"10.0.0.0/8"}) {
		t.Fatalf("login = %+v, %v", resp, err)
	}
}

func TestLoginNumUses(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{"secret_id_num_uses":3}`)
	sid, acc := h.newSecretID("app", ``)
	for want := 2; want >= 0; want-- {
		h.mustLogin(id, sid)
		if want == 0 {
			break
		}
		d := h.ok(logical.UpdateOperation, "role/app/secret-id/lookup", `{"secret_id":"`+sid+`"}`).Data
		if d["secret_id_num_uses"] != want {
			t.Fatalf("uses left = %v, want %d", d["secret_id_num_uses"], want)
		}
	}
	resp, err := h.login(id, sid, from("127.0.0.1"))
	wantInvalid(t, resp, err)
	// The last use deleted the secret ID and its accessor.
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id/lookup", `{"secret_id":"`+sid+`"}`, 204, "")
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id-accessor/lookup", `{"secret_id_accessor":"`+acc+`"}`, 404, "")
	if keys := append(h.keysUnder(secretIDPrefix), h.keysUnder(accessorPrefix)...); len(keys) != 0 {
		t.Fatalf("left in storage: %v", keys)
	}
}

func TestLoginExpiry(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{"secret_id_ttl":"2m"}`)
	sid, _ := h.newSecretID("app", ``)
	short, _ := h.newSecretID("app", `{"ttl":"1m","num_uses":5}`)

	h.clk.Advance(time.Minute - time.Nanosecond)
	h.mustLogin(id, sid)
	h.mustLogin(id, short)
	h.clk.Advance(time.Nanosecond)
	resp, err := h.login(id, short, from("127.0.0.1"))
	wantInvalid(t, resp, err)
	h.mustLogin(id, sid)
	h.clk.Advance(time.Minute)
	resp, err = h.login(id, sid, from("127.0.0.1"))
	wantInvalid(t, resp, err)
	// Expired secret IDs met by a login are deleted.
	if keys := append(h.keysUnder(secretIDPrefix), h.keysUnder(accessorPrefix)...); len(keys) != 0 {
		t.Fatalf("left in storage: %v", keys)
	}
}

// TestLoginConcurrentUses races logins on one secret ID: exactly as many
// succeed as it has uses.
func TestLoginConcurrentUses(t *testing.T) {
	t.Parallel()
	for _, uses := range []int{1, 3} {
		h := newHarness(t)
		id := h.createRole("app", ``)
		sid, _ := h.newSecretID("app", `{"num_uses":`+strconv.Itoa(uses)+`}`)
		const racers = 32
		var (
			wg       sync.WaitGroup
			start    = make(chan struct{})
			okCount  atomic.Int32
			badCount atomic.Int32
		)
		for i := 0; i < racers; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, err := h.b.HandleRequest(t.Context(), &logical.Request{
					Operation: logical.UpdateOperation, Path: "login", Storage: h.s, Connection: from("127.0.0.1"),
					Data: map[string]any{"role_id": id, "secret_id": sid},
				})
				status, msg, _ := httpStatus(resp, err)
				switch {
				case err == nil && resp.Auth != nil:
					okCount.Add(1)
				case status == 400 && msg == msgInvalidCredentials:
					badCount.Add(1)
				default:
					t.Errorf("unexpected answer %d %q", status, msg)
				}
			}()
		}
		close(start)
		wg.Wait()
		if okCount.Load() != int32(uses) || badCount.Load() != racers-int32(uses) {
			t.Fatalf("%d-use secret ID: %d logins succeeded, %d failed", uses, okCount.Load(), badCount.Load())
		}
	}
}

// TestSecretIDNeverStored dumps every stored value after secret IDs were
// issued, looked up and used, and checks that no secret ID appears in any
// form.
func TestSecretIDNeverStored(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{"secret_id_num_uses":0}`)
	sid, _ := h.newSecretID("app", `{"metadata":{"k":"v"}}`)
	limited, _ := h.newSecretID("app", `{"num_uses":5}`)
	h.ok(logical.UpdateOperation, "role/app/custom-secret-id", `{"secret_id":"Custom-Secret-Value-123"}`)
	h.mustLogin(id, sid)
	h.mustLogin(id, limited)
	h.mustLogin(id, "Custom-Secret-Value-123")
	h.ok(logical.UpdateOperation, "role/app/secret-id/lookup", `{"secret_id":"`+sid+`"}`)
	h.ok(logical.UpdateOperation, "tidy/secret-id", ``)

	secrets := []string{sid, limited, "Custom-Secret-Value-123"}
	var forms [][]byte
	for _, s := range secrets {
		forms = append(forms, []byte(s), []byte(strings.ToLower(s)), []byte(hex.EncodeToString([]byte(s))),
			[]byte(base64.StdEncoding.EncodeToString([]byte(s))), []byte(strings.ReplaceAll(s, "-", "")))
	}
	keys := h.s.Keys()
	if len(keys) < 5 {
		t.Fatalf("suspiciously few keys: %v", keys)
	}
	for _, k := range keys {
		v, err := h.s.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range forms {
			if bytes.Contains(v, f) || strings.Contains(k, string(f)) {
				t.Fatalf("a secret ID appears in storage at %q", k)
			}
		}
	}
}

func TestRenew(t *testing.T) {
	t.Parallel()
	type fixture struct {
		h    *harness
		auth *logical.Auth
	}
	setup := func(t *testing.T) fixture {
		h := newHarness(t)
		id := h.createRole("app", `{"token_policies":"a,b","token_ttl":"1h","token_max_ttl":"2h"}`)
		sid, _ := h.newSecretID("app", ``)
		return fixture{h: h, auth: h.mustLogin(id, sid)}
	}
	renew := func(f fixture, a *logical.Auth) (*logical.Response, error) {
		return f.h.b.HandleRequest(f.h.t.Context(), &logical.Request{Operation: logical.RenewOperation, Path: "login", Storage: f.h.s, Auth: a})
	}
	cases := []struct {
		name   string
		change func(f fixture) *logical.Auth // changes state, returns the auth to renew
		msg    string                        // "" for success
		ttl    time.Duration
	}{
		{name: "unchanged", change: func(f fixture) *logical.Auth { return f.auth }, ttl: time.Hour},
		{name: "new ttl applies", change: func(f fixture) *logical.Auth {
			f.h.ok(logical.UpdateOperation, "role/app", `{"token_ttl":"30m","token_period":"10m"}`)
			return f.auth
		}, ttl: 30 * time.Minute},
		{name: "default added by the pipeline", change: func(f fixture) *logical.Auth {
			a := *f.auth
			a.Policies = []string{"a", "b", "default"}
			return &a
		}, ttl: time.Hour},
		{name: "role deleted", change: func(f fixture) *logical.Auth {
			f.h.ok(logical.DeleteOperation, "role/app", "")
			return f.auth
		}, msg: `role "app" no longer exists`},
		{name: "role_id changed", change: func(f fixture) *logical.Auth {
			f.h.ok(logical.UpdateOperation, "role/app/role-id", `{"role_id":"another"}`)
			return f.auth
		}, msg: `the role_id of role "app" has changed`},
		{name: "role recreated", change: func(f fixture) *logical.Auth {
			f.h.ok(logical.DeleteOperation, "role/app", "")
			f.h.ok(logical.UpdateOperation, "role/app", `{"token_policies":"a,b"}`)
			return f.auth
		}, msg: `the role_id of role "app" has changed`},
		{name: "policies changed", change: func(f fixture) *logical.Auth {
			f.h.ok(logical.UpdateOperation, "role/app/policies", `{"token_policies":"a,b,c"}`)
			return f.auth
		}, msg: `the policies of role "app" have changed`},
		{name: "policies removed", change: func(f fixture) *logical.Auth {
			f.h.ok(logical.DeleteOperation, "role/app/policies", "")
			return f.auth
		}, msg: "have changed"},
		{name: "no internal data", change: func(f fixture) *logical.Auth {
			return &logical.Auth{Policies: []string{"a", "b"}}
		}, msg: "not created by an AppRole login"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			a := tc.change(f)
			resp, err := renew(f, a)
			if tc.msg != "" {
				status, msg, _ := httpStatus(resp, err)
				if status != 400 || !strings.Contains(msg, tc.msg) {
					t.Fatalf("renew: %d %q, want 400 containing %q", status, msg, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Auth.TTL != tc.ttl || resp.Auth.MaxTTL != 2*time.Hour || !reflect.DeepEqual(resp.Auth.InternalData, f.auth.InternalData) {
				t.Fatalf("renewed auth = %+v", resp.Auth)
			}
			if a.TTL != time.Hour {
				t.Fatal("renewal modified the stored auth")
			}
		})
	}
}
