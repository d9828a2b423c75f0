package framework

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// decoded is what the HTTP layer hands over for a JSON body: numbers as
// json.Number.
func decoded(t *testing.T, body string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return m
}

// roleParams is a typed view of the test path's fields, decoded at the top
// of the handler as real mounts do.
type roleParams struct {
	Name     string
	TTL      time.Duration
	Max      int
	Enabled  bool
	Policies []string
	Versions []int
	Meta     map[string]string
	Opts     map[string]any
	HasTTL   bool
}

func mustHandler(_ context.Context, _ *logical.Request, d *FieldData) (*logical.Response, error) {
	_ = d.String("must")
	return nil, nil
}

func testBackend(t *testing.T, seen *roleParams, existing map[string]bool) *Backend {
	t.Helper()
	read := func(_ context.Context, _ *logical.Request, d *FieldData) (*logical.Response, error) {
		*seen = roleParams{
			Name:     d.String("name"),
			TTL:      d.Duration("ttl"),
			Max:      d.Int("max"),
			Enabled:  d.Bool("enabled"),
			Policies: d.StringSlice("policies"),
			Versions: d.IntSlice("versions"),
			Meta:     d.StringMap("meta"),
			Opts:     d.Map("options"),
			HasTTL:   d.Has("ttl"),
		}
		return &logical.Response{Data: map[string]any{"name": seen.Name}}, nil
	}
	write := func(_ context.Context, req *logical.Request, d *FieldData) (*logical.Response, error) {
		*seen = roleParams{Name: d.String("name"), TTL: d.Duration("ttl")}
		if req.Operation == logical.CreateOperation {
			return &logical.Response{Data: map[string]any{"created": true}}, nil
		}
		return nil, nil
	}
	b, err := NewBackend("Test backend help.", []*Path{
		{
			Pattern: "roles/" + `(?P<name>\w[\w-]*)`,
			Fields: map[string]*FieldSchema{
				"name":     {Type: TypeNameString, Description: "Role name."},
				"ttl":      {Type: TypeDurationSecond, Default: "1h", Description: "TTL."},
				"max":      {Type: TypeInt, Default: 10},
				"enabled":  {Type: TypeBool, Default: true},
				"policies": {Type: TypeCommaStringSlice},
				"versions": {Type: TypeCommaIntSlice},
				"meta":     {Type: TypeKVPairs},
				"options":  {Type: TypeMap},
				"password": {Type: TypeString, Sensitive: true},
			},
			Operations: map[logical.Operation]OperationHandler{
				logical.ReadOperation:   {Handler: read, Summary: "Read a role."},
				logical.UpdateOperation: {Handler: write, Summary: "Write a role."},
			},
			ExistenceCheck: func(_ context.Context, _ *logical.Request, d *FieldData) (bool, error) {
				if d.String("name") == "broken" {
					return false, errors.New("storage is down")
				}
				return existing[d.String("name")], nil
			},
			HelpSynopsis:    "Manage roles.",
			HelpDescription: "Roles have names.",
		},
		{
			Pattern: "required",
			Fields: map[string]*FieldSchema{
				"must": {Type: TypeString, Required: true},
			},
			Operations: map[logical.Operation]OperationHandler{
				logical.UpdateOperation: {Handler: mustHandler},
				logical.ReadOperation:   {Handler: mustHandler},
			},
		},
		{
			Pattern:             "raw/(?P<path>.*)",
			TakesArbitraryInput: true,
			Operations: map[logical.Operation]OperationHandler{
				logical.UpdateOperation: {Handler: func(_ context.Context, _ *logical.Request, d *FieldData) (*logical.Response, error) {
					return &logical.Response{Data: map[string]any{"path": d.String("path")}}, nil
				}},
			},
		},
		{
			Pattern: "^config$",
			Operations: map[logical.Operation]OperationHandler{
				logical.ReadOperation: {Handler: func(context.Context, *logical.Request, *FieldData) (*logical.Response, error) {
					return &logical.Response{Data: map[string]any{"config": true}}, nil
				}},
			},
		},
		{
			Pattern: ".*",
			Operations: map[logical.Operation]OperationHandler{
				logical.DeleteOperation: {Handler: func(context.Context, *logical.Request, *FieldData) (*logical.Response, error) {
					return &logical.Response{Data: map[string]any{"catchall": true}}, nil
				}},
			},
		},
	})
	if err != nil {
		t.Fatalf("NewBackend: %v", err)
	}
	return b
}

func TestHandleRequestFields(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		data    map[string]any
		want    roleParams
		warning string
		errMsg  string
	}{
		{
			name: "defaults",
			want: roleParams{Name: "web", TTL: time.Hour, Max: 10, Enabled: true},
		},
		{
			name: "json body",
			data: decoded(t, `{"ttl":"30m","max":3,"enabled":false,"policies":"a, b","versions":["1","3"],"meta":{"k":"v"},"options":{"cas":0}}`),
			want: roleParams{Name: "web", TTL: 30 * time.Minute, Max: 3, Enabled: false, Policies: []string{"a", "b"},
				Versions: []int{1, 3}, Meta: map[string]string{"k": "v"}, Opts: map[string]any{"cas": json.Number("0")}, HasTTL: true},
		},
		{
			name: "query strings",
			data: map[string]any{"ttl": "60", "max": "7", "enabled": "f", "versions": []string{"2", "4"}},
			want: roleParams{Name: "web", TTL: time.Minute, Max: 7, Enabled: false, Versions: []int{2, 4}, HasTTL: true},
		},
		{
			name:    "unknown parameters warn, sorted",
			data:    map[string]any{"zeta": "1", "alpha": "2", "max": "1"},
			want:    roleParams{Name: "web", TTL: time.Hour, Max: 1, Enabled: true},
			warning: "Endpoint ignored these unrecognized parameters: [alpha zeta]",
		},
		{
			name:   "bad int",
			data:   decoded(t, `{"max":"abc"}`),
			errMsg: `invalid value for "max": expected an integer, got "abc"`,
		},
		{
			name:   "bad duration",
			data:   decoded(t, `{"ttl":"1d"}`),
			errMsg: `invalid value for "ttl": expected a duration in seconds or a Go duration string ("1h"), got "1d"`,
		},
		{
			name:   "bad map",
			data:   decoded(t, `{"options":[1]}`),
			errMsg: `invalid value for "options": expected an object, got a list`,
		},
		{
			name:   "sensitive value not echoed",
			data:   decoded(t, `{"password":{"x":"hunter2"}}`),
			errMsg: `invalid value for "password": expected a string`,
		},
		{
			name: "path capture wins over data",
			data: map[string]any{"name": "other"},
			want: roleParams{Name: "web", TTL: time.Hour, Max: 10, Enabled: true},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var seen roleParams
			b := testBackend(t, &seen, nil)
			resp, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.ReadOperation, Path: "roles/web", Data: c.data})
			if c.errMsg != "" {
				var ce *logical.CodedError
				if !errors.As(err, &ce) || ce.Status != 400 || ce.Msg != c.errMsg {
					t.Fatalf("err = %#v, want 400 %q", err, c.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("HandleRequest: %v", err)
			}
			if !reflect.DeepEqual(seen, c.want) {
				t.Errorf("handler saw %+v\nwant %+v", seen, c.want)
			}
			var wantWarnings []string
			if c.warning != "" {
				wantWarnings = []string{c.warning}
			}
			if !reflect.DeepEqual(resp.Warnings, wantWarnings) {
				t.Errorf("warnings = %q, want %q", resp.Warnings, wantWarnings)
			}
		})
	}
}

func TestRouting(t *testing.T) {
	t.Parallel()
	var seen roleParams
	b := testBackend(t, &seen, nil)
	cases := []struct {
		name    string
		op      logical.Operation
		path    string
		data    map[string]any
		wantErr error
		status  int
		want    map[string]any
	}{
		{name: "matched read", op: logical.ReadOperation, path: "roles/web", want: map[string]any{"name": "web"}},
		{name: "update returns empty response", op: logical.UpdateOperation, path: "roles/web", want: nil},
		{name: "create falls back to update", op: logical.CreateOperation, path: "roles/web", want: map[string]any{"created": true}},
		{name: "anchored: no prefix match", op: logical.ReadOperation, path: "xroles/web", wantErr: logical.ErrUnsupportedOperation},
		{name: "anchored: no suffix match", op: logical.ReadOperation, path: "config/extra", wantErr: logical.ErrUnsupportedOperation},
		{name: "caret pattern", op: logical.ReadOperation, path: "config", want: map[string]any{"config": true}},
		{name: "operation not served", op: logical.PatchOperation, path: "roles/web", wantErr: logical.ErrUnsupportedOperation},
		{name: "bad capture is a 400", op: logical.ReadOperation, path: "roles/web-", status: 400},
		{name: "first match wins", op: logical.DeleteOperation, path: "roles/web", wantErr: logical.ErrUnsupportedOperation},
		{name: "catch-all", op: logical.DeleteOperation, path: "anything/else", want: map[string]any{"catchall": true}},
		{name: "arbitrary input", op: logical.UpdateOperation, path: "raw/a/b", data: map[string]any{"whatever": "x"}, want: map[string]any{"path": "a/b"}},
		{name: "required missing", op: logical.UpdateOperation, path: "required", status: 400},
		{name: "required null", op: logical.UpdateOperation, path: "required", data: map[string]any{"must": nil}, status: 400},
		{name: "required present", op: logical.UpdateOperation, path: "required", data: map[string]any{"must": "x"}},
		{name: "required only on writes", op: logical.ReadOperation, path: "required"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := b.HandleRequest(t.Context(), &logical.Request{Operation: c.op, Path: c.path, Data: c.data})
			switch {
			case c.wantErr != nil:
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err = %v, want %v", err, c.wantErr)
				}
				return
			case c.status != 0:
				var ce *logical.CodedError
				if !errors.As(err, &ce) || ce.Status != c.status {
					t.Fatalf("err = %v, want status %d", err, c.status)
				}
				return
			case err != nil:
				t.Fatalf("HandleRequest: %v", err)
			}
			if resp == nil {
				t.Fatal("nil response without error")
			}
			if len(resp.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", resp.Warnings)
			}
			if !reflect.DeepEqual(resp.Data, c.want) {
				t.Errorf("data = %#v, want %#v", resp.Data, c.want)
			}
		})
	}
}

func TestUnsupportedPath(t *testing.T) {
	t.Parallel()
	b, err := NewBackend("", []*Path{{
		Pattern:    "only",
		Operations: map[logical.Operation]OperationHandler{logical.ReadOperation: {Handler: func(context.Context, *logical.Request, *FieldData) (*logical.Response, error) { return nil, nil }}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "other", "only/", "xonly"} {
		if _, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.ReadOperation, Path: p}); !errors.Is(err, logical.ErrUnsupportedPath) {
			t.Errorf("path %q: err = %v, want ErrUnsupportedPath", p, err)
		}
	}
	if _, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.DeleteOperation, Path: "only"}); !errors.Is(err, logical.ErrUnsupportedOperation) {
		t.Errorf("err = %v, want ErrUnsupportedOperation", err)
	}
}

func TestHandlerErrorPassesThrough(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	b, err := NewBackend("", []*Path{{
		Pattern: "x",
		Operations: map[logical.Operation]OperationHandler{logical.ReadOperation: {Handler: func(context.Context, *logical.Request, *FieldData) (*logical.Response, error) {
			return &logical.Response{Data: map[string]any{"ignored": true}}, boom
		}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.ReadOperation, Path: "x", Data: map[string]any{"unknown": 1}})
	if !errors.Is(err, boom) || resp != nil {
		t.Fatalf("got %v, %v; want nil, boom", resp, err)
	}
}

func TestExistenceCheck(t *testing.T) {
	t.Parallel()
	var seen roleParams
	b := testBackend(t, &seen, map[string]bool{"present": true})
	cases := []struct {
		name           string
		path           string
		data           map[string]any
		checked, exist bool
		wantErr        bool
		status         int
	}{
		{name: "exists", path: "roles/present", checked: true, exist: true},
		{name: "missing", path: "roles/absent", checked: true, exist: false},
		{name: "no check on path", path: "config", checked: false},
		{name: "no matching path", path: "nope/x/y", checked: false},
		{name: "check error", path: "roles/broken", wantErr: true},
		{name: "bad field fails early", path: "roles/present", data: map[string]any{"max": "x"}, status: 400},
		{name: "unknown fields ignored", path: "roles/present", data: map[string]any{"zzz": 1}, checked: true, exist: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			checked, exists, err := b.ExistenceCheck(t.Context(), &logical.Request{Operation: logical.UpdateOperation, Path: c.path, Data: c.data})
			if c.status != 0 {
				var ce *logical.CodedError
				if !errors.As(err, &ce) || ce.Status != c.status {
					t.Fatalf("err = %v, want status %d", err, c.status)
				}
				return
			}
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, c.wantErr)
			}
			if checked != c.checked || exists != c.exist {
				t.Errorf("checked, exists = %v, %v; want %v, %v", checked, exists, c.checked, c.exist)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var seen roleParams
	b := testBackend(t, &seen, nil)
	resp, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.HelpOperation, Path: "roles/web"})
	if err != nil {
		t.Fatal(err)
	}
	help, _ := resp.Data["help"].(string)
	for _, want := range []string{"Manage roles.", "Roles have names.", "ttl (duration (seconds))", "Role name.", "read: Read a role."} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	resp, err = b.HandleRequest(t.Context(), &logical.Request{Operation: logical.HelpOperation, Path: "no/such/thing"})
	if err != nil {
		t.Fatal(err)
	}
	// The catch-all path has no help of its own; an unmatched path would
	// fall back to the backend help.
	if _, ok := resp.Data["help"].(string); !ok {
		t.Errorf("help data = %#v", resp.Data)
	}
	empty, err := NewBackend("Backend help.", []*Path{{Pattern: "a", Operations: map[logical.Operation]OperationHandler{logical.ReadOperation: {Handler: func(context.Context, *logical.Request, *FieldData) (*logical.Response, error) { return nil, nil }}}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err = empty.HandleRequest(t.Context(), &logical.Request{Operation: logical.HelpOperation, Path: ""})
	if err != nil || resp.Data["help"] != "Backend help.\n" {
		t.Errorf("backend help = %#v, %v", resp, err)
	}
}

func TestNewBackendRejects(t *testing.T) {
	t.Parallel()
	h := map[logical.Operation]OperationHandler{logical.ReadOperation: {Handler: func(context.Context, *logical.Request, *FieldData) (*logical.Response, error) { return nil, nil }}}
	cases := map[string]*Path{
		"bad regexp":          {Pattern: "(", Operations: h},
		"bad type":            {Pattern: "a", Fields: map[string]*FieldSchema{"x": {}}, Operations: h},
		"nil schema":          {Pattern: "a", Fields: map[string]*FieldSchema{"x": nil}, Operations: h},
		"bad default":         {Pattern: "a", Fields: map[string]*FieldSchema{"x": {Type: TypeInt, Default: "abc"}}, Operations: h},
		"required w/ default": {Pattern: "a", Fields: map[string]*FieldSchema{"x": {Type: TypeInt, Default: 1, Required: true}}, Operations: h},
		"no operations":       {Pattern: "a"},
		"nil handler":         {Pattern: "a", Operations: map[logical.Operation]OperationHandler{logical.ReadOperation: {}}},
	}
	for name, p := range cases {
		if _, err := NewBackend("", []*Path{p}); err == nil {
			t.Errorf("%s: NewBackend accepted it", name)
		}
	}
}

func TestGetterMisusePanics(t *testing.T) {
	t.Parallel()
	var recovered any
	b, err := NewBackend("", []*Path{{
		Pattern: "x",
		Fields:  map[string]*FieldSchema{"n": {Type: TypeInt}},
		Operations: map[logical.Operation]OperationHandler{logical.ReadOperation: {Handler: func(_ context.Context, _ *logical.Request, d *FieldData) (*logical.Response, error) {
			defer func() { recovered = recover() }()
			_ = d.String("n")
			return nil, nil
		}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.ReadOperation, Path: "x"}); err != nil {
		t.Fatal(err)
	}
	if recovered == nil {
		t.Fatal("String on an int field did not panic")
	}
}

func TestGettersCopy(t *testing.T) {
	t.Parallel()
	var first, second []string
	b, err := NewBackend("", []*Path{{
		Pattern: "x",
		Fields:  map[string]*FieldSchema{"p": {Type: TypeCommaStringSlice, Default: "a,b"}},
		Operations: map[logical.Operation]OperationHandler{logical.ReadOperation: {Handler: func(_ context.Context, _ *logical.Request, d *FieldData) (*logical.Response, error) {
			first = d.StringSlice("p")
			first[0] = "mutated"
			second = d.StringSlice("p")
			return nil, nil
		}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.ReadOperation, Path: "x"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(second, []string{"a", "b"}) {
		t.Errorf("default was modified through a getter: %q", second)
	}
}

func TestRawAndHas(t *testing.T) {
	t.Parallel()
	var has, hasMissing bool
	var raw any
	b, err := NewBackend("", []*Path{{
		Pattern: "x",
		Fields:  map[string]*FieldSchema{"data": {Type: TypeMap}, "other": {Type: TypeString}},
		Operations: map[logical.Operation]OperationHandler{logical.UpdateOperation: {Handler: func(_ context.Context, _ *logical.Request, d *FieldData) (*logical.Response, error) {
			has, hasMissing, raw = d.Has("data"), d.Has("other"), d.Raw("data")
			return nil, nil
		}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	data := decoded(t, `{"data":{"a":1}}`)
	if _, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.UpdateOperation, Path: "x", Data: data}); err != nil {
		t.Fatal(err)
	}
	if !has || hasMissing || !reflect.DeepEqual(raw, map[string]any{"a": json.Number("1")}) {
		t.Errorf("Has(data)=%v Has(other)=%v Raw(data)=%#v", has, hasMissing, raw)
	}
}

func TestSpecialPathsAndAuthRenew(t *testing.T) {
	ok := func(context.Context, *logical.Request, *FieldData) (*logical.Response, error) { return nil, nil }
	paths := []*Path{{Pattern: "login", Operations: map[logical.Operation]OperationHandler{logical.UpdateOperation: {Handler: ok}}}}
	special := logical.PathsSpecial{Unauthenticated: []string{"login"}, Root: []string{"admin/*"}}

	var got *logical.Auth
	b, err := NewBackend("test", paths, WithSpecialPaths(special), WithAuthRenew(func(_ context.Context, req *logical.Request) (*logical.Auth, error) {
		got = req.Auth
		if req.Auth.InternalData["role"] == "gone" {
			return nil, logical.ErrPermissionDenied
		}
		return &logical.Auth{TTL: time.Hour, Policies: req.Auth.Policies}, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	var sp logical.SpecialPather = b
	if !reflect.DeepEqual(sp.SpecialPaths(), special) {
		t.Fatalf("SpecialPaths = %+v", sp.SpecialPaths())
	}

	in := &logical.Auth{Policies: []string{"p"}, InternalData: map[string]any{"role": "r"}}
	resp, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.RenewOperation, Path: "login", Auth: in})
	if err != nil {
		t.Fatal(err)
	}
	if got != in || resp.Auth == nil || resp.Auth.TTL != time.Hour || !reflect.DeepEqual(resp.Auth.Policies, []string{"p"}) {
		t.Fatalf("renew: got auth %+v, response %+v", got, resp)
	}
	_, err = b.HandleRequest(t.Context(), &logical.Request{Operation: logical.RenewOperation, Auth: &logical.Auth{InternalData: map[string]any{"role": "gone"}}})
	if !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("refused renewal: err = %v", err)
	}
	// A renewal without an Auth, or on a backend without a handler, is
	// not an operation the backend serves.
	if _, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.RenewOperation}); !errors.Is(err, logical.ErrUnsupportedOperation) {
		t.Fatalf("renew without auth: err = %v", err)
	}
	plain, err := NewBackend("test", paths)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.HandleRequest(t.Context(), &logical.Request{Operation: logical.RenewOperation, Auth: in}); !errors.Is(err, logical.ErrUnsupportedOperation) {
		t.Fatalf("renew without handler: err = %v", err)
	}
	if !reflect.DeepEqual(plain.SpecialPaths(), logical.PathsSpecial{}) {
		t.Fatalf("default SpecialPaths = %+v", plain.SpecialPaths())
	}
}

func TestSecretLeases(t *testing.T) {
	var revoked []any
	creds := &SecretType{
		Type: "creds",
		Renew: func(_ context.Context, req *logical.Request) (*logical.Response, error) {
			return &logical.Response{Secret: &logical.Secret{TTL: 2 * time.Hour, Renewable: true, InternalData: req.Secret.InternalData}}, nil
		},
		Revoke: func(_ context.Context, req *logical.Request) (*logical.Response, error) {
			revoked = append(revoked, req.Secret.InternalData["user"])
			return nil, nil
		},
	}
	fixed := &SecretType{Type: "fixed", Revoke: creds.Revoke}
	issue := func(_ context.Context, _ *logical.Request, _ *FieldData) (*logical.Response, error) {
		return SecretResponse("creds", map[string]any{"username": "u1"}, map[string]any{"user": "u1"}, logical.Secret{TTL: time.Hour, Renewable: true}), nil
	}
	b, err := NewBackend("test", []*Path{{Pattern: "creds", Operations: map[logical.Operation]OperationHandler{logical.ReadOperation: {Handler: issue}}}}, WithSecrets(creds, fixed))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.ReadOperation, Path: "creds"})
	if err != nil {
		t.Fatal(err)
	}
	s := resp.Secret
	if s == nil || s.TTL != time.Hour || s.InternalData[SecretTypeKey] != "creds" || s.InternalData["user"] != "u1" {
		t.Fatalf("issued secret = %+v", s)
	}
	resp, err = b.HandleRequest(t.Context(), &logical.Request{Operation: logical.RenewOperation, Secret: s})
	if err != nil || resp.Secret.TTL != 2*time.Hour {
		t.Fatalf("renew = %+v, %v", resp, err)
	}
	if _, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.RevokeOperation, Secret: s}); err != nil || len(revoked) != 1 || revoked[0] != "u1" {
		t.Fatalf("revoke: %v, revoked %v", err, revoked)
	}
	// A kind without a renew handler is not renewable (400); an unknown
	// kind is an error, never a silent success.
	f := &logical.Secret{InternalData: map[string]any{SecretTypeKey: "fixed"}}
	var ce *logical.CodedError
	if _, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.RenewOperation, Secret: f}); !errors.As(err, &ce) || ce.Status != 400 {
		t.Fatalf("renew of a fixed lease: %v", err)
	}
	u := &logical.Secret{InternalData: map[string]any{SecretTypeKey: "nosuch"}}
	if _, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.RevokeOperation, Secret: u}); err == nil {
		t.Fatal("revoke of an unknown kind succeeded")
	}
	if _, err := b.HandleRequest(t.Context(), &logical.Request{Operation: logical.RevokeOperation}); !errors.Is(err, logical.ErrUnsupportedOperation) {
		t.Fatalf("revoke without a secret: %v", err)
	}
}
