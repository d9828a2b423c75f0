package core

import (
	"context"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/passwordpolicy"
)

// dbPolicy makes 24-character passwords with at least two digits and one
// of "-_".
const dbPolicy = `length = 24
rule "charset" {
  charset = "abcdefghijklmnopqrstuvwxyz"
}
rule "charset" {
  charset = "0123456789"
  min-chars = 2
}
rule "charset" {
  charset = "-_"
  min-chars = 1
}
`

// checkDBPassword fails the test unless pw could come from dbPolicy.
func checkDBPassword(t *testing.T, pw string) {
	t.Helper()
	p, err := passwordpolicy.Parse(dbPolicy)
	if err == nil {
		err = p.Check(pw)
	}
	if err != nil {
		t.Fatalf("a password from dbPolicy: %v", err)
	}
}

func wantBadRequest(t *testing.T, err error, contains string) {
	t.Helper()
	var ce *logical.CodedError
	if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Msg, contains) {
		t.Fatalf("got %v, want a 400 containing %q", err, contains)
	}
}

// doOK is do for a request that must succeed.
func (f *fixture) doOK(t *testing.T, op logical.Operation, path string, data map[string]any) *logical.Response {
	t.Helper()
	resp, err := f.do(t, op, path, data)
	if err != nil {
		t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

func TestPasswordPolicyCRUD(t *testing.T) {
	f := initCore(t)

	// None yet: the list is a 404, as every empty list.
	if _, err := f.do(t, logical.ListOperation, "sys/policies/password", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("empty list: %v", err)
	}

	// HCL, base64 HCL and JSON; reads answer the text as written
	// (decoded).
	f.doOK(t, logical.UpdateOperation, "sys/policies/password/db", map[string]any{"policy": dbPolicy})
	f.doOK(t, logical.UpdateOperation, "sys/policies/password/b64", map[string]any{"policy": base64.StdEncoding.EncodeToString([]byte(dbPolicy))})
	const jsonPolicy = `{"length": 8, "rule": [{"charset": {"charset": "xyz", "min-chars": 8}}]}`
	f.doOK(t, logical.UpdateOperation, "sys/policies/password/Only-XYZ", map[string]any{"policy": jsonPolicy})
	for name, want := range map[string]string{"db": dbPolicy, "b64": dbPolicy, "Only-XYZ": jsonPolicy} {
		resp := f.doOK(t, logical.ReadOperation, "sys/policies/password/"+name, nil)
		if !reflect.DeepEqual(resp.Data, map[string]any{"policy": want}) {
			t.Errorf("read %s = %v", name, resp.Data)
		}
	}
	resp := f.doOK(t, logical.ListOperation, "sys/policies/password/", nil)
	if want := []string{"Only-XYZ", "b64", "db"}; !reflect.DeepEqual(resp.Data["keys"], want) {
		t.Fatalf("list = %v, want %v", resp.Data["keys"], want)
	}

	// Generate answers a new password each time, meeting the policy.
	seen := map[string]bool{}
	for range 50 {
		resp := f.doOK(t, logical.ReadOperation, "sys/policies/password/db/generate", nil)
		pw, _ := resp.Data["password"].(string)
		checkDBPassword(t, pw)
		seen[pw] = true
	}
	if len(seen) != 50 {
		t.Errorf("%d distinct passwords out of 50", len(seen))
	}
	resp = f.doOK(t, logical.ReadOperation, "sys/policies/password/Only-XYZ/generate", nil)
	if pw, _ := resp.Data["password"].(string); len(pw) != 8 || strings.Trim(pw, "xyz") != "" {
		t.Errorf("Only-XYZ generated %q", pw)
	}

	// Bad input: a 400 naming the problem; nothing is stored.
	for _, tc := range []struct{ name, policy, want string }{
		{"short", "length = 3\nrule \"charset\" { charset = \"ab\" }", "length must be from 4 to 100, not 3"},
		{"crowded", "length = 4\nrule \"charset\" { charset = \"ab\" min-chars = 3 }\nrule \"charset\" { charset = \"12\" min-chars = 2 }",
			"the rules require at least 5 characters"},
		{"empty-charset", "length = 20\nrule \"charset\" { charset = \"\" }", "rule 1: charset is empty"},
		{"unknown-key", "length = 20\nrule \"charset\" { charset = \"ab\" }\nexclude = \"a\"", `unknown key "exclude"`},
		{"no-rules", "length = 20", `at least one rule "charset" is required`},
		{"empty", "", "missing policy"},
	} {
		_, err := f.do(t, logical.UpdateOperation, "sys/policies/password/"+tc.name, map[string]any{"policy": tc.policy})
		wantBadRequest(t, err, tc.want)
		if tc.policy != "" && !strings.HasPrefix(err.Error(), "invalid password policy: ") {
			t.Errorf("%s: %v", tc.name, err)
		}
		if _, err := f.do(t, logical.ReadOperation, "sys/policies/password/"+tc.name, nil); !errors.Is(err, logical.ErrNotFound) {
			t.Errorf("%s was stored: %v", tc.name, err)
		}
	}
	_, err := f.do(t, logical.UpdateOperation, "sys/policies/password/no spaces", map[string]any{"policy": dbPolicy})
	wantBadRequest(t, err, "name")

	// Unknown names are 404s; a replaced policy takes effect at once.
	for _, p := range []string{"sys/policies/password/nope", "sys/policies/password/nope/generate"} {
		if _, err := f.do(t, logical.ReadOperation, p, nil); !errors.Is(err, logical.ErrNotFound) {
			t.Errorf("read %s: %v", p, err)
		}
	}
	f.doOK(t, logical.UpdateOperation, "sys/policies/password/b64", map[string]any{"policy": jsonPolicy})
	resp = f.doOK(t, logical.ReadOperation, "sys/policies/password/b64/generate", nil)
	if pw, _ := resp.Data["password"].(string); len(pw) != 8 {
		t.Errorf("after the replacement b64 generated %q", pw)
	}

	f.doOK(t, logical.DeleteOperation, "sys/policies/password/b64", nil)
	f.doOK(t, logical.DeleteOperation, "sys/policies/password/b64", nil) // already gone: still 204
	if _, err := f.do(t, logical.ReadOperation, "sys/policies/password/b64/generate", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Errorf("generate from a deleted policy: %v", err)
	}
	resp = f.doOK(t, logical.ListOperation, "sys/policies/password", nil)
	if want := []string{"Only-XYZ", "db"}; !reflect.DeepEqual(resp.Data["keys"], want) {
		t.Fatalf("list after delete = %v", resp.Data["keys"])
	}
}

// TestPasswordPolicyACL: the paths are ordinary sys paths. A token
// without a grant is refused every operation; a grant of read on
// .../generate lets a token generate without reading the policy, and
// needs no sudo.
func TestPasswordPolicyACL(t *testing.T) {
	f := initCore(t)
	f.doOK(t, logical.UpdateOperation, "sys/policies/password/db", map[string]any{"policy": dbPolicy})
	f.doOK(t, logical.UpdateOperation, "sys/policies/acl/gen", map[string]any{
		"policy": `path "sys/policies/password/db/generate" { capabilities = ["read"] }`})
	plain, gen := f.tokenWith(t, "default"), f.tokenWith(t, "gen")
	for _, tc := range []struct {
		op   logical.Operation
		path string
		data map[string]any
	}{
		{logical.UpdateOperation, "sys/policies/password/db", map[string]any{"policy": dbPolicy}},
		{logical.ReadOperation, "sys/policies/password/db", nil},
		{logical.ListOperation, "sys/policies/password/", nil},
		{logical.DeleteOperation, "sys/policies/password/db", nil},
		{logical.ReadOperation, "sys/policies/password/db/generate", nil},
	} {
		if _, err := f.doAs(t, plain, tc.op, tc.path, tc.data); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("default policy: %s %s: %v", tc.op, tc.path, err)
		}
		if tc.path == "sys/policies/password/db/generate" {
			continue
		}
		if _, err := f.doAs(t, gen, tc.op, tc.path, tc.data); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("generate only: %s %s: %v", tc.op, tc.path, err)
		}
	}
	resp, err := f.doAs(t, gen, logical.ReadOperation, "sys/policies/password/db/generate", nil)
	if err != nil {
		t.Fatal(err)
	}
	checkDBPassword(t, resp.Data["password"].(string))
}

func TestPasswordPoliciesPersistAcrossSeal(t *testing.T) {
	ctx := context.Background()
	f := initCore(t)
	f.doOK(t, logical.UpdateOperation, "sys/policies/password/db", map[string]any{"policy": dbPolicy})
	if err := f.c.Seal(ctx, f.token, nil); err != nil {
		t.Fatal(err)
	}
	// While sealed nothing is read, through the sys paths or the
	// SystemView.
	sv := &systemView{c: f.c}
	if _, err := sv.GeneratePasswordFromPolicy(ctx, "db"); err == nil || errors.Is(err, logical.ErrPasswordPolicyNotFound) {
		t.Fatalf("sealed: %v", err)
	}
	// A fresh core over the same storage, as after a restart.
	f.c = newCore(t, f.phys)
	f.unseal(t)
	if resp := f.doOK(t, logical.ReadOperation, "sys/policies/password/db", nil); resp.Data["policy"] != dbPolicy {
		t.Fatalf("read after restart: %v", resp.Data)
	}
	checkDBPassword(t, f.doOK(t, logical.ReadOperation, "sys/policies/password/db/generate", nil).Data["password"].(string))
}

// TestSystemViewGeneratePassword: a mount asks for a password from a
// policy through the SystemView it was built with.
func TestSystemViewGeneratePassword(t *testing.T) {
	ctx := context.Background()
	f := initCore(t)
	f.doOK(t, logical.UpdateOperation, "sys/mounts/probe", map[string]any{"type": "kv"})
	var sys logical.SystemView
	for _, rt := range f.c.router.Routes() {
		if rt.Entry.Path == "probe/" {
			sys = rt.System
		}
	}
	if sys == nil {
		t.Fatal("no route for the probe mount")
	}
	for _, name := range []string{"db", "", "a/b", "../password_policy/db"} {
		if _, err := sys.GeneratePasswordFromPolicy(ctx, name); !errors.Is(err, logical.ErrPasswordPolicyNotFound) {
			t.Errorf("%q before it exists: %v", name, err)
		}
	}
	f.doOK(t, logical.UpdateOperation, "sys/policies/password/db", map[string]any{"policy": dbPolicy})
	pw, err := sys.GeneratePasswordFromPolicy(ctx, "db")
	if err != nil {
		t.Fatal(err)
	}
	checkDBPassword(t, pw)
	f.doOK(t, logical.DeleteOperation, "sys/policies/password/db", nil)
	_, err = sys.GeneratePasswordFromPolicy(ctx, "db")
	if !errors.Is(err, logical.ErrPasswordPolicyNotFound) || !strings.Contains(err.Error(), `"db"`) {
		t.Fatalf("after delete: %v", err)
	}
}
