package approle

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
)

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestRoleCRUD(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	h.wantStatus(logical.ListOperation, "role/", "", 404, "")
	h.wantStatus(logical.ReadOperation, "role/app", "", 404, "")

	h.ok(logical.UpdateOperation, "role/other", `{}`)
	got := h.ok(logical.ReadOperation, "role/other", "").Data
	want := map[string]any{
		"bind_secret_id":          true,
		"local_secret_ids":        false,
		"secret_id_bound_cidrs":   []string{},
		"secret_id_num_uses":      0,
		"secret_id_ttl":           int64(0),
		"token_bound_cidrs":       []string{},
		"token_explicit_max_ttl":  int64(0),
		"token_max_ttl":           int64(0),
		"token_no_default_policy": false,
		"token_num_uses":          0,
		"token_period":            int64(0),
		"token_policies":          []string{},
		"token_ttl":               int64(0),
		"token_type":              "default",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read defaults:\n got %#v\nwant %#v", got, want)
	}

	h.ok(logical.UpdateOperation, "role/app", `{"secret_id_ttl":"10m","secret_id_num_uses":5,"secret_id_bound_cidrs":"10.0.0.0/8, 192.168.0.1",
		"token_ttl":"1h","token_max_ttl":"4h","token_policies":["Dev","ops"],"token_num_uses":3,"token_type":"service",
		"token_bound_cidrs":["10.1.0.0/16"],"token_explicit_max_ttl":"8h","token_no_default_policy":true,"local_secret_ids":true}`)
	// An update changes only what it names.
	h.ok(logical.UpdateOperation, "role/app", `{"token_ttl":"2h"}`)
	got = h.ok(logical.ReadOperation, "role/app", "").Data
	want = map[string]any{
		"bind_secret_id":          true,
		"local_secret_ids":        true,
		"secret_id_bound_cidrs":   []string{"10.0.0.0/8", "192.168.0.1"},
		"secret_id_num_uses":      5,
		"secret_id_ttl":           int64(600),
		"token_bound_cidrs":       []string{"10.1.0.0/16"},
		"token_explicit_max_ttl":  int64(8 * 3600),
		"token_max_ttl":           int64(4 * 3600),
		"token_no_default_policy": true,
		"token_num_uses":          3,
		"token_period":            int64(0),
		"token_policies":          []string{"dev", "ops"},
		"token_ttl":               int64(2 * 3600),
		"token_type":              "service",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("read after update:\n got %#v\nwant %#v", got, want)
	}

	h.ok(logical.UpdateOperation, "role/other", `{}`)
	if keys := h.ok(logical.ListOperation, "role/", "").Data["keys"]; !reflect.DeepEqual(keys, []string{"app", "other"}) {
		t.Fatalf("list = %v", keys)
	}

	if status, _, _ := h.status(logical.DeleteOperation, "role/app", ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	h.wantStatus(logical.ReadOperation, "role/app", "", 404, "")
	// Deleting again is not an error.
	if status, _, _ := h.status(logical.DeleteOperation, "role/app", ""); status != 204 {
		t.Fatalf("second delete: %d", status)
	}
	if keys := h.ok(logical.ListOperation, "role/", "").Data["keys"]; !reflect.DeepEqual(keys, []string{"other"}) {
		t.Fatalf("list after delete = %v", keys)
	}
}

func TestRoleNameCaseInsensitive(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "role/MyApp", `{"token_ttl":60}`)
	if got := h.ok(logical.ReadOperation, "role/myapp", "").Data["token_ttl"]; got != int64(60) {
		t.Fatalf("token_ttl = %v", got)
	}
	h.ok(logical.UpdateOperation, "role/MYAPP", `{"token_ttl":120}`)
	if keys := h.ok(logical.ListOperation, "role/", "").Data["keys"]; !reflect.DeepEqual(keys, []string{"myapp"}) {
		t.Fatalf("list = %v", keys)
	}
	sid, _ := h.newSecretID("MyApp", "")
	a := h.mustLogin(h.roleID("myApp"), sid)
	if a.Metadata["role_name"] != "myapp" || a.DisplayName != "myapp" {
		t.Fatalf("auth names = %q, %q", a.Metadata["role_name"], a.DisplayName)
	}
}

func TestRoleWriteErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", maxInputLen)
	cases := []struct {
		name   string
		setup  string // body of a first write of role/app, "" for none
		path   string
		body   string
		status int
		msg    string
	}{
		{name: "bad name", path: "role/a b", body: `{}`, status: 400, msg: `invalid value for "role_name"`},
		{name: "name ends with dot", path: "role/app.", body: `{}`, status: 400, msg: `invalid value for "role_name"`},
		{name: "name too long", path: "role/" + long, body: `{}`, status: 400, msg: "role_name must be shorter than 4096 bytes"},
		{name: "no constraint", path: "role/app", body: `{"bind_secret_id":false}`, status: 400, msg: "at least one constraint must be enabled"},
		{name: "constraint removed", setup: `{}`, path: "role/app", body: `{"bind_secret_id":false}`, status: 400, msg: "at least one constraint"},
		{name: "negative secret id uses", path: "role/app", body: `{"secret_id_num_uses":-1}`, status: 400, msg: "secret_id_num_uses must not be negative"},
		{name: "bad secret id cidr", path: "role/app", body: `{"secret_id_bound_cidrs":"10.0.0.0/33"}`, status: 400, msg: `invalid CIDR block "10.0.0.0/33" in secret_id_bound_cidrs`},
		{name: "bad legacy cidr", path: "role/app", body: `{"bound_cidr_list":"x"}`, status: 400, msg: `invalid CIDR block "x" in bound_cidr_list`},
		{name: "bad token cidr", path: "role/app", body: `{"token_bound_cidrs":"1.2.3"}`, status: 400, msg: `in token_bound_cidrs`},
		{name: "ttl above max", path: "role/app", body: `{"token_ttl":"2h","token_max_ttl":"1h"}`, status: 400, msg: "token_ttl must not be greater than token_max_ttl"},
		{name: "negative token uses", path: "role/app", body: `{"token_num_uses":-2}`, status: 400, msg: "token_num_uses must not be negative"},
		{name: "bad token type", path: "role/app", body: `{"token_type":"jwt"}`, status: 400, msg: `invalid token_type "jwt"`},
		{name: "root policy", path: "role/app", body: `{"token_policies":"root"}`, status: 400, msg: `must not contain "root"`},
		{name: "period above mount max", path: "role/app", body: `{"token_period":"800h"}`, status: 400, msg: "token_period of 800h0m0s is greater than the mount's maximum lease TTL"},
		{name: "local ids on update", setup: `{}`, path: "role/app", body: `{"local_secret_ids":true}`, status: 400, msg: "local_secret_ids can only be set when the role is created"},
		{name: "empty role id", path: "role/app", body: `{"role_id":"  "}`, status: 400, msg: "missing role_id"},
		{name: "bad ttl type", path: "role/app", body: `{"secret_id_ttl":"soon"}`, status: 400, msg: `invalid value for "secret_id_ttl"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if tc.setup != "" {
				h.ok(logical.UpdateOperation, "role/app", tc.setup)
			}
			h.wantStatus(logical.UpdateOperation, tc.path, tc.body, tc.status, tc.msg)
			if tc.setup == "" {
				// A refused create leaves nothing behind.
				if keys := h.keysUnder("role"); len(keys) != 0 {
					t.Fatalf("stored after a refused create: %v", keys)
				}
			}
		})
	}
}

func TestRoleConstraintAlternatives(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "role/cidr", `{"bind_secret_id":false,"secret_id_bound_cidrs":"10.0.0.0/8"}`)
	h.ok(logical.UpdateOperation, "role/token", `{"bind_secret_id":false,"token_bound_cidrs":"10.0.0.0/8"}`)
	// Removing the last constraint through a property path is refused too.
	h.wantStatus(logical.DeleteOperation, "role/cidr/secret-id-bound-cidrs", "", 400, "at least one constraint")
}

func TestRoleWarnings(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	resp := h.ok(logical.UpdateOperation, "role/app", `{"token_type":"default-service","token_max_ttl":"1000h","bound_cidr_list":"10.0.0.0/8","bogus":1}`)
	want := []string{
		`token_type "default-service" has no useful meaning; using "service"`,
		`The "bound_cidr_list" parameter is deprecated; use "secret_id_bound_cidrs".`,
		"token_max_ttl is greater than the mount's maximum lease TTL; the tokens' maximum TTL will be capped to it",
		"Endpoint ignored these unrecognized parameters: [bogus]",
	}
	if !reflect.DeepEqual(resp.Warnings, want) {
		t.Fatalf("warnings:\n got %q\nwant %q", resp.Warnings, want)
	}
	d := h.ok(logical.ReadOperation, "role/app", "").Data
	if d["token_type"] != "service" || !reflect.DeepEqual(d["secret_id_bound_cidrs"], []string{"10.0.0.0/8"}) {
		t.Fatalf("read = %v", d)
	}
}

func TestRoleLegacyAliases(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "role/app", `{"policies":"a,B","period":"1h"}`)
	d := h.ok(logical.ReadOperation, "role/app", "").Data
	if !reflect.DeepEqual(d["policies"], []string{"a", "b"}) || !reflect.DeepEqual(d["token_policies"], []string{"a", "b"}) ||
		d["period"] != int64(3600) || d["token_period"] != int64(3600) {
		t.Fatalf("legacy read = %v", d)
	}
	// Writing the new names drops the aliases from reads.
	h.ok(logical.UpdateOperation, "role/app", `{"token_policies":"c","token_period":"2h"}`)
	d = h.ok(logical.ReadOperation, "role/app", "").Data
	if _, ok := d["policies"]; ok {
		t.Fatalf("policies still echoed: %v", d)
	}
	if _, ok := d["period"]; ok {
		t.Fatalf("period still echoed: %v", d)
	}
	if !reflect.DeepEqual(d["token_policies"], []string{"c"}) || d["token_period"] != int64(7200) {
		t.Fatalf("read = %v", d)
	}
}

func TestRoleProperties(t *testing.T) {
	t.Parallel()
	cases := []struct {
		segment string
		write   string         // body of the POST
		want    map[string]any // GET after the POST
		reset   map[string]any // GET after DELETE
		missing string         // message of a POST without the field
	}{
		{"policies", `{"token_policies":"B,a"}`, map[string]any{"token_policies": []string{"a", "b"}},
			map[string]any{"token_policies": []string{}}, "missing token_policies"},
		{"policies", `{"policies":"x"}`, map[string]any{"token_policies": []string{"x"}, "policies": []string{"x"}},
			map[string]any{"token_policies": []string{}}, "missing token_policies"},
		{"token-ttl", `{"token_ttl":"5m"}`, map[string]any{"token_ttl": int64(300)}, map[string]any{"token_ttl": int64(0)}, "missing token_ttl"},
		{"token-max-ttl", `{"token_max_ttl":"1h"}`, map[string]any{"token_max_ttl": int64(3600)}, map[string]any{"token_max_ttl": int64(0)}, "missing token_max_ttl"},
		{"token-num-uses", `{"token_num_uses":4}`, map[string]any{"token_num_uses": 4}, map[string]any{"token_num_uses": 0}, "missing token_num_uses"},
		{"token-bound-cidrs", `{"token_bound_cidrs":"10.0.0.0/8,10.1.1.1"}`, map[string]any{"token_bound_cidrs": []string{"10.0.0.0/8", "10.1.1.1"}},
			map[string]any{"token_bound_cidrs": []string{}}, "missing token_bound_cidrs"},
		{"period", `{"token_period":"30m"}`, map[string]any{"token_period": int64(1800)}, map[string]any{"token_period": int64(0)}, "missing token_period"},
		{"period", `{"period":"30m"}`, map[string]any{"token_period": int64(1800), "period": int64(1800)}, map[string]any{"token_period": int64(0)}, "missing token_period"},
		{"secret-id-ttl", `{"secret_id_ttl":"1h"}`, map[string]any{"secret_id_ttl": int64(3600)}, map[string]any{"secret_id_ttl": int64(0)}, "missing secret_id_ttl"},
		{"secret-id-num-uses", `{"secret_id_num_uses":9}`, map[string]any{"secret_id_num_uses": 9}, map[string]any{"secret_id_num_uses": 0}, "missing secret_id_num_uses"},
		{"bind-secret-id", `{"bind_secret_id":false}`, map[string]any{"bind_secret_id": false}, map[string]any{"bind_secret_id": true}, "missing bind_secret_id"},
		{"secret-id-bound-cidrs", `{"secret_id_bound_cidrs":["10.0.0.0/8"]}`, map[string]any{"secret_id_bound_cidrs": []string{"10.0.0.0/8"}},
			map[string]any{"secret_id_bound_cidrs": []string{}}, "missing secret_id_bound_cidrs"},
		{"bound-cidr-list", `{"bound_cidr_list":"10.0.0.0/8"}`, map[string]any{"bound_cidr_list": []string{"10.0.0.0/8"}},
			map[string]any{"bound_cidr_list": []string{}}, "missing bound_cidr_list"},
	}
	for _, tc := range cases {
		t.Run(tc.segment+tc.write, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			path := "role/app/" + tc.segment
			// Missing role.
			h.wantStatus(logical.ReadOperation, path, "", 404, "")
			h.wantStatus(logical.UpdateOperation, path, tc.write, 404, `role "app" does not exist`)
			h.wantStatus(logical.DeleteOperation, path, "", 204, "")

			// bind_secret_id=false needs another constraint.
			h.ok(logical.UpdateOperation, "role/app", `{"token_bound_cidrs":"10.0.0.0/8"}`)
			h.wantStatus(logical.UpdateOperation, path, `{}`, 400, tc.missing)
			h.ok(logical.UpdateOperation, path, tc.write)
			if got := h.ok(logical.ReadOperation, path, "").Data; !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("after write: %#v, want %#v", got, tc.want)
			}
			h.ok(logical.DeleteOperation, path, "")
			if got := h.ok(logical.ReadOperation, path, "").Data; !reflect.DeepEqual(got, tc.reset) {
				t.Fatalf("after reset: %#v, want %#v", got, tc.reset)
			}
		})
	}
}

func TestRolePropertyValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "role/app", `{"token_max_ttl":"1h"}`)
	h.wantStatus(logical.UpdateOperation, "role/app/token-ttl", `{"token_ttl":"2h"}`, 400, "token_ttl must not be greater than token_max_ttl")
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id-num-uses", `{"secret_id_num_uses":-1}`, 400, "must not be negative")
	h.wantStatus(logical.UpdateOperation, "role/app/token-bound-cidrs", `{"token_bound_cidrs":"300.0.0.0/8"}`, 400, "token_bound_cidrs")
	h.wantStatus(logical.UpdateOperation, "role/app/secret-id-bound-cidrs", `{"secret_id_bound_cidrs":""}`, 400, "missing secret_id_bound_cidrs")
	h.wantStatus(logical.UpdateOperation, "role/app/period", `{"token_period":"1000h"}`, 400, "greater than the mount's maximum lease TTL")
	h.wantStatus(logical.UpdateOperation, "role/app/local-secret-ids", `{}`, 405, "unsupported operation")
	if got := h.ok(logical.ReadOperation, "role/app/local-secret-ids", "").Data; !reflect.DeepEqual(got, map[string]any{"local_secret_ids": false}) {
		t.Fatalf("local-secret-ids = %v", got)
	}
	resp := h.ok(logical.ReadOperation, "role/app/bound-cidr-list", "")
	if len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], "deprecated") {
		t.Fatalf("bound-cidr-list warnings = %q", resp.Warnings)
	}
	// The refused writes changed nothing.
	if got := h.ok(logical.ReadOperation, "role/app", "").Data["token_ttl"]; got != int64(0) {
		t.Fatalf("token_ttl = %v", got)
	}
}

func TestRoleID(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.wantStatus(logical.ReadOperation, "role/app/role-id", "", 404, "")
	h.wantStatus(logical.UpdateOperation, "role/app/role-id", `{"role_id":"x"}`, 404, `role "app" does not exist`)

	id := h.createRole("app", `{}`)
	if !uuidRe.MatchString(id) {
		t.Fatalf("role_id %q is not a random UUID", id)
	}
	// Updates keep the role_id.
	h.ok(logical.UpdateOperation, "role/app", `{"token_ttl":60}`)
	if got := h.roleID("app"); got != id {
		t.Fatalf("role_id changed on update: %q -> %q", id, got)
	}
	sid, _ := h.newSecretID("app", "")
	h.mustLogin(id, sid)

	// A custom role_id replaces the old one for logins.
	h.ok(logical.UpdateOperation, "role/app/role-id", `{"role_id":"my-custom-id"}`)
	if got := h.roleID("app"); got != "my-custom-id" {
		t.Fatalf("role_id = %q", got)
	}
	resp, err := h.login(id, sid, from("127.0.0.1"))
	wantInvalid(t, resp, err)
	if a := h.mustLogin("my-custom-id", sid); a.Alias.Name != "my-custom-id" {
		t.Fatalf("alias = %+v", a.Alias)
	}
	// Exactly one index record: the old one is gone.
	if keys := h.keysUnder(roleIDPrefix); len(keys) != 1 {
		t.Fatalf("role_id index = %v", keys)
	}

	// role_ids are unique across roles, at creation and afterwards.
	h.wantStatus(logical.UpdateOperation, "role/other", `{"role_id":"my-custom-id"}`, 400, "role_id is already in use by another role")
	h.wantStatus(logical.ReadOperation, "role/other", "", 404, "")
	h.createRole("other", `{"role_id":"other-id"}`)
	h.wantStatus(logical.UpdateOperation, "role/other/role-id", `{"role_id":"my-custom-id"}`, 400, "already in use")
	h.wantStatus(logical.UpdateOperation, "role/other", `{"role_id":"my-custom-id"}`, 400, "already in use")
	h.wantStatus(logical.UpdateOperation, "role/other/role-id", `{}`, 400, "missing role_id")
	if got := h.roleID("other"); got != "other-id" {
		t.Fatalf("refused change altered role_id: %q", got)
	}
	// Setting a role's own role_id again is fine.
	h.ok(logical.UpdateOperation, "role/app/role-id", `{"role_id":"my-custom-id"}`)

	// Once a role is deleted its role_id is free again.
	h.ok(logical.DeleteOperation, "role/app", "")
	h.ok(logical.UpdateOperation, "role/other/role-id", `{"role_id":"my-custom-id"}`)
	if keys := h.keysUnder(roleIDPrefix); len(keys) != 1 {
		t.Fatalf("role_id index = %v", keys)
	}
}

func TestRoleDeleteRemovesSecretIDs(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	id := h.createRole("app", `{}`)
	h.createRole("keep", `{}`)
	var sids []string
	for i := 0; i < 3; i++ {
		sid, _ := h.newSecretID("app", "")
		sids = append(sids, sid)
	}
	keepSID, _ := h.newSecretID("keep", "")
	h.ok(logical.DeleteOperation, "role/app", "")

	if keys := h.keysUnder(secretIDDir("app")); len(keys) != 0 {
		t.Fatalf("secret IDs left: %v", keys)
	}
	if keys := h.keysUnder(accessorPrefix); len(keys) != 1 {
		t.Fatalf("accessors left: %v (want only keep's)", keys)
	}
	if keys := h.keysUnder(roleIDPrefix); len(keys) != 1 {
		t.Fatalf("role_id index left: %v", keys)
	}
	resp, err := h.login(id, sids[0], from("127.0.0.1"))
	wantInvalid(t, resp, err)

	// A new role with the same name inherits nothing.
	newID := h.createRole("app", `{}`)
	h.wantStatus(logical.ListOperation, "role/app/secret-id/", "", 404, "")
	for _, sid := range sids {
		resp, err := h.login(newID, sid, from("127.0.0.1"))
		wantInvalid(t, resp, err)
	}
	h.mustLogin(h.roleID("keep"), keepSID)
}
