package approle

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestSecretIDIssueAndLookup(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createRole("app", `{"secret_id_bound_cidrs":"10.0.0.0/8","token_bound_cidrs":"172.16.0.0/12"}`)

	resp := h.ok(logical.UpdateOperation, "role/app/secret-id",
		`{"metadata":"{\"env\":\"prod\",\"team\":\"payments\"}","cidr_list":"10.1.0.0/16, 10.2.3.4","token_bound_cidrs":["172.16.5.0/24"],"num_uses":3,"ttl":"90s"}`)
	d := resp.Data
	sid, accessor := d["secret_id"].(string), d["secret_id_accessor"].(string)
	if !uuidRe.MatchString(sid) || !uuidRe.MatchString(accessor) || sid == accessor {
		t.Fatalf("secret_id %q, accessor %q: want two random UUIDs", sid, accessor)
	}
	if d["secret_id_ttl"] != int64(90) || d["secret_id_num_uses"] != 3 || len(d) != 4 {
		t.Fatalf("issue data = %v", d)
	}

	h.clk.Advance(10 * time.Second)
	want := map[string]any{
		"cidr_list":          []string{"10.1.0.0/16", "10.2.3.4"},
		"creation_time":      "2024-05-01T10:00:00Z",
		"expiration_time":    "2024-05-01T10:01:30Z",
		"last_updated_time":  "2024-05-01T10:00:00Z",
		"metadata":           map[string]any{"env": "prod", "team": "payments"},
		"secret_id_accessor": accessor,
		"secret_id_num_uses": 3,
		"secret_id_ttl":      int64(90),
		"token_bound_cidrs":  []string{"172.16.5.0/24"},
	}
	got := h.ok(logical.UpdateOperation, "role/app/secret-id/lookup", `{"secret_id":"`+sid+`"}`).Data
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lookup:\n got %#v\nwant %#v", got, want)
	}
	got = h.ok(logical.UpdateOperation, "role/app/secret-id-accessor/lookup", `{"secret_id_accessor":"`+accessor+`"}`).Data
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("accessor lookup:\n got %#v\nwant %#v", got, want)
	}

	// A login counts a use and moves last_updated_time.
	if _, err := h.login(h.roleID("app"), sid, from("10.2.3.4")); err != nil {
		t.Fatal(err)
	}
	got = h.ok(logical.UpdateOperation, "role/app/secret-id/lookup", `{"secret_id":"`+sid+`"}`).Data
	if got["secret_id_num_uses"] != 2 || got["last_updated_time"] != "2024-05-01T10:00:10Z" {
		t.Fatalf("after login: %v", got)
	}
}

func TestSecretIDDefaults(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		role     string
		body     string
		wantTTL  int64
		wantUses int
	}{
		{name: "unlimited role", role: `{}`, body: ``, wantTTL: 0, wantUses: 0},
		{name: "role defaults", role: `{"secret_id_ttl":"1h","secret_id_num_uses":5}`, body: ``, wantTTL: 3600, wantUses: 5},
		{name: "zero means role default", role: `{"secret_id_ttl":"1h","secret_id_num_uses":5}`, body: `{"ttl":0,"num_uses":0}`, wantTTL: 3600, wantUses: 5},
		{name: "shorter than role", role: `{"secret_id_ttl":"1h","secret_id_num_uses":5}`, body: `{"ttl":"30m","num_uses":2}`, wantTTL: 1800, wantUses: 2},
		{name: "equal to role", role: `{"secret_id_ttl":"1h","secret_id_num_uses":5}`, body: `{"ttl":3600,"num_uses":5}`, wantTTL: 3600, wantUses: 5},
		{name: "own limits on an unlimited role", role: `{}`, body: `{"ttl":"2m","num_uses":1}`, wantTTL: 120, wantUses: 1},
		{name: "capped by the mount", role: `{}`, body: `{"ttl":"1000h"}`, wantTTL: int64(mountMaxTTL / time.Second), wantUses: 0},
		{name: "role ttl capped by the mount", role: `{"secret_id_ttl":"1000h"}`, body: ``, wantTTL: int64(mountMaxTTL / time.Second), wantUses: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.createRole("app", tc.role)
			d := h.ok(logical.UpdateOperation, "role/app/secret-id", tc.body).Data
			if d["secret_id_ttl"] != tc.wantTTL || d["secret_id_num_uses"] != tc.wantUses {
				t.Fatalf("issued ttl %v uses %v, want %d %d", d["secret_id_ttl"], d["secret_id_num_uses"], tc.wantTTL, tc.wantUses)
			}
			look := h.ok(logical.UpdateOperation, "role/app/secret-id/lookup", `{"secret_id":"`+d["secret_id"].(string)+`"}`).Data
			wantExp := "0001-01-01T00:00:00Z"
			if tc.wantTTL > 0 {
				wantExp = t0.Add(time.Duration(tc.wantTTL) * time.Second).Format(time.RFC3339Nano)
			}
			if look["expiration_time"] != wantExp || look["secret_id_ttl"] != tc.wantTTL {
				t.Fatalf("lookup = %v, want expiration %s", look, wantExp)
			}
		})
	}
}

func TestSecretIDMetadataForms(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		body string
		want map[string]any
	}{
		{"json string", `{"metadata":"{\"a\":\"1\"}"}`, map[string]any{"a": "1"}},
		{"object", `{"metadata":{"a":"1","b":"2"}}`, map[string]any{"a": "1", "b": "2"}},
		{"pairs", `{"metadata":"a=1, b=x=y"}`, map[string]any{"a": "1", "b": "x=y"}},
		{"empty string", `{"metadata":""}`, map[string]any{}},
		{"null", `{"metadata":null}`, map[string]any{}},
		{"none", `{}`, map[string]any{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.createRole("app", `{}`)
			sid, _ := h.newSecretID("app", tc.body)
			got := h.ok(logical.UpdateOperation, "role/app/secret-id/lookup", `{"secret_id":"`+sid+`"}`).Data["metadata"]
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("metadata = %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestSecretIDIssueErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		role   string // body of role/app; "" for no role
		path   string
		body   string
		status int
		msg    string
	}{
		{name: "no role", path: "role/app/secret-id", body: `{}`, status: 404, msg: `role "app" does not exist`},
		{name: "no role custom", path: "role/app/custom-secret-id", body: `{"secret_id":"s"}`, status: 404, msg: `role "app" does not exist`},
		{name: "not bound", role: `{"bind_secret_id":false,"secret_id_bound_cidrs":"10.0.0.0/8"}`, path: "role/app/secret-id", body: `{}`, status: 400, msg: "bind_secret_id is not set on the role"},
		{name: "bad cidr", role: `{}`, path: "role/app/secret-id", body: `{"cidr_list":"10.0.0.0/99"}`, status: 400, msg: `invalid CIDR block "10.0.0.0/99" in cidr_list`},
		{name: "bad token cidr", role: `{}`, path: "role/app/secret-id", body: `{"token_bound_cidrs":"nope"}`, status: 400, msg: `invalid CIDR block "nope" in token_bound_cidrs`},
		{name: "cidr not subset", role: `{"secret_id_bound_cidrs":"10.0.0.0/16"}`, path: "role/app/secret-id", body: `{"cidr_list":"10.0.0.0/8"}`, status: 400, msg: "cidr_list must be a subset of the role's secret_id_bound_cidrs"},
		{name: "token cidr not subset", role: `{"token_bound_cidrs":"10.0.0.0/16"}`, path: "role/app/secret-id", body: `{"token_bound_cidrs":"192.168.0.0/24"}`, status: 400, msg: "token_bound_cidrs must be a subset of the role's token_bound_cidrs"},
		{name: "negative uses", role: `{}`, path: "role/app/secret-id", body: `{"num_uses":-1}`, status: 400, msg: "num_uses must not be negative"},
		{name: "more uses than role", role: `{"secret_id_num_uses":2}`, path: "role/app/secret-id", body: `{"num_uses":3}`, status: 400, msg: "num_uses must not be greater than the role's secret_id_num_uses (2)"},
		{name: "longer than role", role: `{"secret_id_ttl":"1m"}`, path: "role/app/secret-id", body: `{"ttl":"2m"}`, status: 400, msg: "ttl must not be longer than the role's secret_id_ttl (1m0s)"},
		{name: "negative ttl", role: `{}`, path: "role/app/secret-id", body: `{"ttl":-3}`, status: 400, msg: `invalid value for "ttl"`},
		{name: "bad metadata json", role: `{}`, path: "role/app/secret-id", body: `{"metadata":"{\"a\":1}"}`, status: 400, msg: "invalid metadata: it must be a JSON object of strings"},
		{name: "bad metadata object", role: `{}`, path: "role/app/secret-id", body: `{"metadata":{"a":1}}`, status: 400, msg: `invalid metadata: the value of "a" is not a string`},
		{name: "empty metadata value", role: `{}`, path: "role/app/secret-id", body: `{"metadata":{"a":""}}`, status: 400, msg: `invalid metadata: the value of "a" is empty`},
		{name: "metadata pairs without =", role: `{}`, path: "role/app/secret-id", body: `{"metadata":"abc"}`, status: 400, msg: "invalid metadata"},
		{name: "metadata list", role: `{}`, path: "role/app/secret-id", body: `{"metadata":["a"]}`, status: 400, msg: "invalid metadata"},
		{name: "custom missing", role: `{}`, path: "role/app/custom-secret-id", body: `{}`, status: 400, msg: "missing secret_id"},
		{name: "custom too long", role: `{}`, path: "role/app/custom-secret-id", body: `{"secret_id":"` + strings.Repeat("x", maxInputLen+1) + `"}`, status: 400, msg: "secret_id must be at most 4096 bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tc.role != "" {
				h.createRole("app", tc.role)
			}
			h.wantStatus(logical.UpdateOperation, tc.path, tc.body, tc.status, tc.msg)
			if keys := h.keysUnder(secretIDPrefix); len(keys) != 0 {
				t.Fatalf("refused issue stored %v", keys)
			}
		})
	}
}

func TestSecretIDUnknownParameters(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.createRole("app", `{}`)
	resp := h.ok(logical.UpdateOperation, "role/app/secret-id", `{"metadata":"{}","zeta":1,"alpha":"x"}`)
	want := []string{"Endpoint ignored these unrecognized parameters: [alpha zeta]"}
	if !reflect.DeepEqual(resp.Warnings, want) {
		t.Fatalf("warnings = %q", resp.Warnings)
	}
	resp = h.ok(logical.UpdateOperation, "role/app/custom-secret-id", `{"secret_id":"abc","num_uses":1}`)
	if resp.Warnings != nil {
		t.Fatalf("custom warnings = %q", resp.Warnings)
	}
}

func TestSecretIDList(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.wantStatus(logical.ListOperation, "role/app/secret-id/", "", 404, `role "app" does not exist`)
	h.createRole("app", `{}`)
	h.createRole("other", `{}`)
	h.newSecretID("other", "")
	h.wantStatus(logical.ListOperation, "role/app/secret-id/", "", 404, "")
	var want []string
	for i := 0; i < 3; i++ {
		_, acc := h.newSecretID("app", "")
		want = append(want, acc)
	}
	got := h.ok(logical.ListOperation, "role/app/secret-id/", "").Data["keys"].([]string)
	if len(got) != 3 {
		t.Fatalf("keys = %v", got)
	}
	for _, acc := range want {
		found := false
		for _, g := range got {
			found = found || g == acc
		}
		if !found {
			t.Fatalf("accessor %s missing from %v", acc, got)
		}
	}
	for i := 1; i < len(got); i++ {
		if got[i-1] > got[i] {
			t.Fatalf("keys not sorted: %v", got)
		}
	}
}

func TestCustomSecretID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{}`)
	other := h.createRole("other", `{}`)
	d := h.ok(logical.UpdateOperation, "role/app/custom-secret-id", `{"secret_id":"  my-own-secret ","num_uses":2,"metadata":{"k":"v"}}`).Data
	if d["secret_id"] != "my-own-secret" || d["secret_id_num_uses"] != 2 || !uuidRe.MatchString(d["secret_id_accessor"].(string)) {
		t.Fatalf("custom issue = %v", d)
	}
	a := h.mustLogin(id, "my-own-secret")
	if a.Metadata["k"] != "v" {
		t.Fatalf("metadata = %v", a.Metadata)
	}
	h.wantStatus(logical.UpdateOperation, "role/app/custom-secret-id", `{"secret_id":"my-own-secret"}`, 400, "this secret_id is already registered for the role")
	// The same value is a separate secret ID for another role.
	h.ok(logical.UpdateOperation, "role/other/custom-secret-id", `{"secret_id":"my-own-secret"}`)
	h.mustLogin(other, "my-own-secret")
	h.mustLogin(id, "my-own-secret")
	resp, err := h.login(id, "my-own-secret", from("127.0.0.1"))
	wantInvalid(t, resp, err)
}

func TestSecretIDLookupAndDestroy(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{}`)
	sid, _ := h.newSecretID("app", "")
	sid2, _ := h.newSecretID("app", "")

	// Vault answers an unknown secret ID with an empty 204, not a 404.
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id/lookup", `{"secret_id":"unknown"}`, 204, "")
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id/lookup", `{}`, 400, "missing secret_id")
	h.wantStatus(logical.UpdateOperation, "role/nope/secret-id/lookup", `{"secret_id":"x"}`, 404, `role "nope" does not exist`)
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id/destroy", `{}`, 400, "missing secret_id")

	h.wantStatus(logical.UpdateOperation, "role/app/secret-id/destroy", `{"secret_id":"`+sid+`"}`, 204, "")
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id/lookup", `{"secret_id":"`+sid+`"}`, 204, "")
	resp, err := h.login(id, sid, from("127.0.0.1"))
	wantInvalid(t, resp, err)
	// Destroying twice is not an error.
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id/destroy", `{"secret_id":"`+sid+`"}`, 204, "")

	// DELETE takes the secret ID from the query.
	if _, err := h.request(logical.DeleteOperation, "role/app/secret-id/destroy", map[string]any{"secret_id": sid2}, nil); err != nil {
		t.Fatal(err)
	}
	resp, err = h.login(id, sid2, from("127.0.0.1"))
	wantInvalid(t, resp, err)
	if keys := h.keysUnder(accessorPrefix); len(keys) != 0 {
		t.Fatalf("accessors left: %v", keys)
	}
	if keys := h.keysUnder(secretIDPrefix); len(keys) != 0 {
		t.Fatalf("secret IDs left: %v", keys)
	}
}

func TestAccessorLookupAndDestroy(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{}`)
	h.createRole("other", `{}`)
	sid, acc := h.newSecretID("app", "")
	_, otherAcc := h.newSecretID("other", "")

	h.wantStatus(logical.UpdateOperation, "role/app/secret-id-accessor/lookup", `{}`, 400, "missing secret_id_accessor")
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id-accessor/lookup", `{"secret_id_accessor":"nope"}`, 404,
		`failed to find accessor entry for secret_id_accessor: "nope"`)
	// Another role's accessor is not found through this role.
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id-accessor/lookup", `{"secret_id_accessor":"`+otherAcc+`"}`, 404, "failed to find accessor entry")
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id-accessor/destroy", `{"secret_id_accessor":"`+otherAcc+`"}`, 404, "failed to find accessor entry")
	h.wantStatus(logical.UpdateOperation, "role/nope/secret-id-accessor/lookup", `{"secret_id_accessor":"`+acc+`"}`, 404, `role "nope" does not exist`)

	d := h.ok(logical.UpdateOperation, "role/app/secret-id-accessor/lookup", `{"secret_id_accessor":"`+acc+`"}`).Data
	if d["secret_id_accessor"] != acc {
		t.Fatalf("lookup = %v", d)
	}
	if _, ok := d["secret_id"]; ok {
		t.Fatal("an accessor lookup reveals the secret ID")
	}
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id-accessor/destroy", `{"secret_id_accessor":"`+acc+`"}`, 204, "")
	resp, err := h.login(id, sid, from("127.0.0.1"))
	wantInvalid(t, resp, err)
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id-accessor/lookup", `{"secret_id_accessor":"`+acc+`"}`, 404, "failed to find accessor entry")
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id-accessor/destroy", `{"secret_id_accessor":"`+acc+`"}`, 404, "failed to find accessor entry")

	// DELETE with the accessor in the query.
	if _, err := h.request(logical.DeleteOperation, "role/other/secret-id-accessor/destroy", map[string]any{"secret_id_accessor": otherAcc}, nil); err != nil {
		t.Fatal(err)
	}
	if keys := h.keysUnder(accessorPrefix); len(keys) != 0 {
		t.Fatalf("accessors left: %v", keys)
	}
}
