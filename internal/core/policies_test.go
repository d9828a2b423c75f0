package core

import (
	"context"
	"encoding/base64"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/token"
)

const mlTraining = `
path "secret/data/ml/*" {
  capabilities = ["read"]
}
path "secret/metadata/ml/*" { capabilities = ["list"] }
`

// tokenWith creates a service token with policies, as the token store's
// create endpoint will.
func (f *fixture) tokenWith(t *testing.T, policies ...string) secret.String {
	t.Helper()
	tok, err := f.c.tokens.Create(context.Background(), &token.Entry{Policies: policies, Path: "auth/token/create", DisplayName: "token-test"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) doAs(t *testing.T, tok secret.String, op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	t.Helper()
	res, err := f.c.HandleRequest(context.Background(), &Request{ID: secret.UUID(), Operation: op, Path: path, Data: data, Token: tok})
	if err != nil {
		return nil, err
	}
	return res.Response, nil
}

func TestPolicyCRUD(t *testing.T) {
	f := initCore(t)
	must := func(resp *logical.Response, err error) *logical.Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	badRequest := func(err error) {
		t.Helper()
		var ce *logical.CodedError
		if !errors.As(err, &ce) || ce.Status != 400 {
			t.Fatalf("want a 400, got %v", err)
		}
	}

	// A fresh server has default (stored) and root (implicit, last).
	resp := must(f.do(t, logical.ListOperation, "sys/policies/acl", nil))
	if got := resp.Data["keys"]; !reflect.DeepEqual(got, []string{"default", "root"}) {
		t.Fatalf("keys = %v", got)
	}
	resp = must(f.do(t, logical.ReadOperation, "sys/policies/acl/default", nil))
	if resp.Data["policy"] == "" || resp.Data["name"] != "default" {
		t.Fatalf("default = %v", resp.Data)
	}

	// Names are lowercased; the text comes back exactly as written.
	must(f.do(t, logical.UpdateOperation, "sys/policies/acl/ML-Training", map[string]any{"policy": mlTraining}))
	resp = must(f.do(t, logical.ReadOperation, "sys/policies/acl/ml-training", nil))
	if resp.Data["policy"] != mlTraining || resp.Data["version"] != 1 {
		t.Fatalf("read back = %v", resp.Data)
	}
	// Base64 text is accepted; the legacy API answers "rules".
	must(f.do(t, logical.UpdateOperation, "sys/policy/ops", map[string]any{"rules": base64.StdEncoding.EncodeToString([]byte(`path "sys/*" { capabilities = ["read"] }`))}))
	resp = must(f.do(t, logical.ReadOperation, "sys/policy/ops", nil))
	if resp.Data["rules"] != `path "sys/*" { capabilities = ["read"] }` {
		t.Fatalf("legacy read = %v", resp.Data)
	}
	resp = must(f.do(t, logical.ReadOperation, "sys/policy", nil))
	want := []string{"default", "ml-training", "ops", "root"}
	if !reflect.DeepEqual(resp.Data["keys"], want) || !reflect.DeepEqual(resp.Data["policies"], want) {
		t.Fatalf("legacy list = %v", resp.Data)
	}

	// Bad input: 400, nothing stored.
	_, err := f.do(t, logical.UpdateOperation, "sys/policies/acl/broken", map[string]any{"policy": `path "x" { capabilities = ["fly"] }`})
	badRequest(err)
	_, err = f.do(t, logical.UpdateOperation, "sys/policies/acl/empty", map[string]any{})
	badRequest(err)
	if _, err := f.do(t, logical.ReadOperation, "sys/policies/acl/broken", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("a policy that failed to parse was stored: %v", err)
	}
	_, err = f.do(t, logical.UpdateOperation, "sys/policies/acl/root", map[string]any{"policy": mlTraining})
	badRequest(err)
	for _, name := range []string{"root", "default"} {
		_, err = f.do(t, logical.DeleteOperation, "sys/policies/acl/"+name, nil)
		badRequest(err)
	}
	if _, err := f.do(t, logical.ReadOperation, "sys/policies/acl/root", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("root read: %v", err)
	}

	must(f.do(t, logical.DeleteOperation, "sys/policies/acl/ops", nil))
	if _, err := f.do(t, logical.ReadOperation, "sys/policy/ops", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("deleted policy read: %v", err)
	}
}

func TestACLLeastPrivilege(t *testing.T) {
	f := initCore(t)
	if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]any{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"secret/data/ml/openai", "secret/data/other/db"} {
		if _, err := f.do(t, logical.UpdateOperation, p, map[string]any{"data": map[string]any{"api_key": "sk-test"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.do(t, logical.UpdateOperation, "sys/policies/acl/ml-training", map[string]any{"policy": mlTraining}); err != nil {
		t.Fatal(err)
	}
	ml := f.tokenWith(t, "default", "ml-training")

	resp, err := f.doAs(t, ml, logical.ReadOperation, "secret/data/ml/openai", nil)
	if err != nil {
		t.Fatalf("allowed read: %v", err)
	}
	if resp.Data["data"] == nil {
		t.Fatalf("read data = %v", resp.Data)
	}
	if _, err := f.doAs(t, ml, logical.ListOperation, "secret/metadata/ml/", nil); err != nil {
		t.Fatalf("allowed list: %v", err)
	}
	denied := []struct {
		op   logical.Operation
		path string
	}{
		{logical.UpdateOperation, "secret/data/ml/openai"},   // update of an existing key
		{logical.UpdateOperation, "secret/data/ml/new"},      // create
		{logical.DeleteOperation, "secret/data/ml/openai"},   //
		{logical.ReadOperation, "secret/data/other/db"},      // outside the prefix
		{logical.ReadOperation, "secret/metadata/ml/openai"}, // list only
		{logical.ReadOperation, "sys/mounts"},                //
		{logical.UpdateOperation, "sys/policies/acl/ml-training"},
		{logical.ReadOperation, "nowhere/at/all"}, // unrouted: 403, not 404
	}
	for _, d := range denied {
		if _, err := f.doAs(t, ml, d.op, d.path, map[string]any{"data": map[string]any{"x": "y"}}); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("%s %s: err = %v, want permission denied", d.op, d.path, err)
		}
	}
	// Root still reaches an unrouted path's 404.
	if _, err := f.do(t, logical.ReadOperation, "nowhere/at/all", nil); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("root on an unrouted path: %v", err)
	}
	// Sealing needs sudo on sys/seal: a token with update alone cannot.
	if _, err := f.do(t, logical.UpdateOperation, "sys/policies/acl/sealer", map[string]any{"policy": `path "sys/seal" { capabilities = ["update"] }`}); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Seal(context.Background(), f.tokenWith(t, "sealer"), nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("seal without sudo: %v", err)
	}

	// A policy change takes effect at once: the cached ACL is dropped.
	if _, err := f.do(t, logical.UpdateOperation, "sys/policies/acl/ml-training", map[string]any{"policy": `path "secret/data/ml/*" { capabilities = ["read", "update", "create"] }`}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.doAs(t, ml, logical.UpdateOperation, "secret/data/ml/new", map[string]any{"data": map[string]any{"k": "v"}}); err != nil {
		t.Fatalf("create after the grant: %v", err)
	}
	if _, err := f.do(t, logical.DeleteOperation, "sys/policies/acl/ml-training", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.doAs(t, ml, logical.ReadOperation, "secret/data/ml/openai", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("read after the policy was deleted: %v", err)
	}
	// A token with no policy at all gets nothing; nor does no token.
	none := f.tokenWith(t)
	if _, err := f.doAs(t, none, logical.ReadOperation, "secret/data/ml/openai", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("policy-less token: %v", err)
	}
	if _, err := f.doAs(t, secret.String{}, logical.ReadOperation, "secret/data/ml/openai", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("no token: %v", err)
	}
}

func TestPoliciesSurviveRestart(t *testing.T) {
	f := initCore(t)
	if _, err := f.do(t, logical.UpdateOperation, "sys/policies/acl/ml-training", map[string]any{"policy": mlTraining}); err != nil {
		t.Fatal(err)
	}
	c2 := newCore(t, f.phys)
	f.c.SealInternal(context.Background())
	f.c = c2
	f.unseal(t)
	resp, err := f.do(t, logical.ReadOperation, "sys/policies/acl/ml-training", nil)
	if err != nil || resp.Data["policy"] != mlTraining {
		t.Fatalf("after restart: %v, %v", resp, err)
	}
}

func TestCapabilities(t *testing.T) {
	f := initCore(t)
	if _, err := f.do(t, logical.UpdateOperation, "sys/policies/acl/ml-training", map[string]any{"policy": mlTraining}); err != nil {
		t.Fatal(err)
	}
	ml := f.tokenWith(t, "default", "ml-training")
	te, err := f.c.tokens.Lookup(context.Background(), ml)
	if err != nil {
		t.Fatal(err)
	}
	paths := []any{"secret/data/ml/x", "secret/data/other", "sys/capabilities-self"}
	want := map[string]any{
		"secret/data/ml/x":      []string{"read"},
		"secret/data/other":     []string{"deny"},
		"sys/capabilities-self": []string{"update"},
		"capabilities":          []string{"read"},
	}
	// The default policy lets a token ask about itself.
	resp, err := f.doAs(t, ml, logical.UpdateOperation, "sys/capabilities-self", map[string]any{"paths": paths})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(resp.Data, want) {
		t.Fatalf("capabilities-self = %v", resp.Data)
	}
	// The legacy single "path", and the token the Go client also sends.
	resp, err = f.doAs(t, ml, logical.UpdateOperation, "sys/capabilities-self", map[string]any{"path": "secret/data/ml/x", "token": ml.Reveal()})
	if err != nil || !reflect.DeepEqual(resp.Data["capabilities"], []string{"read"}) {
		t.Fatalf("legacy capabilities-self = %v, %v", resp, err)
	}
	// About another token, or its accessor: root may ask, ml may not.
	for _, req := range []struct {
		path string
		data map[string]any
	}{
		{"sys/capabilities", map[string]any{"token": ml.Reveal(), "paths": paths}},
		{"sys/capabilities-accessor", map[string]any{"accessor": te.Accessor, "paths": paths}},
	} {
		resp, err := f.do(t, logical.UpdateOperation, req.path, req.data)
		if err != nil || !reflect.DeepEqual(resp.Data, want) {
			t.Fatalf("%s = %v, %v", req.path, resp, err)
		}
		if _, err := f.doAs(t, ml, logical.UpdateOperation, req.path, req.data); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Fatalf("%s by a non-root token: %v", req.path, err)
		}
	}
	resp, err = f.do(t, logical.UpdateOperation, "sys/capabilities-self", map[string]any{"paths": []any{"anything"}})
	if err != nil || !reflect.DeepEqual(resp.Data["anything"], []string{"root"}) {
		t.Fatalf("root capabilities-self = %v, %v", resp, err)
	}
	// Bad input: 400, never the token echoed.
	for _, req := range []struct {
		path string
		data map[string]any
	}{
		{"sys/capabilities", map[string]any{"token": "hvs.nosuchtoken", "paths": paths}},
		{"sys/capabilities-accessor", map[string]any{"accessor": "nosuch", "paths": paths}},
		{"sys/capabilities-self", map[string]any{}},
	} {
		_, err := f.do(t, logical.UpdateOperation, req.path, req.data)
		var ce *logical.CodedError
		if !errors.As(err, &ce) || ce.Status != 400 || strings.Contains(err.Error(), "hvs.") {
			t.Fatalf("%s with bad input: %v", req.path, err)
		}
	}
}

// TestUIMountsFollowsPolicies: the KV CLI's preflight answers a token
// whose policy reaches only deep paths of a mount, and hides the mounts it
// cannot reach (403, never 404).
func TestUIMountsFollowsPolicies(t *testing.T) {
	f := initCore(t)
	for _, m := range []string{"secret", "other"} {
		if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/"+m, map[string]any{"type": "kv", "options": map[string]any{"version": "2"}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.do(t, logical.UpdateOperation, "sys/policies/acl/ml-training", map[string]any{"policy": mlTraining}); err != nil {
		t.Fatal(err)
	}
	ml := f.tokenWith(t, "ml-training")
	resp, err := f.doAs(t, ml, logical.ReadOperation, "sys/internal/ui/mounts/secret/ml/openai", nil)
	if err != nil {
		t.Fatalf("preflight: %v", err)
	}
	if resp.Data["path"] != "secret/" || resp.Data["type"] != "kv" {
		t.Fatalf("preflight = %v", resp.Data)
	}
	for _, p := range []string{"sys/internal/ui/mounts/other/x", "sys/internal/ui/mounts/nosuch/x", "sys/mounts-all/other/x"} {
		_, err := f.doAs(t, ml, logical.ReadOperation, p, nil)
		var ce *logical.CodedError
		if !errors.As(err, &ce) || ce.Status != 403 {
			t.Fatalf("%s: %v, want a 403", p, err)
		}
	}
	if _, err := f.doAs(t, secret.String{}, logical.ReadOperation, "sys/internal/ui/mounts/secret/x", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("preflight without a token: %v", err)
	}
	// The listing shows what the token reaches.
	resp, err = f.doAs(t, ml, logical.ReadOperation, "sys/internal/ui/mounts", nil)
	if err != nil {
		t.Fatal(err)
	}
	listed := resp.Data["secret"].(map[string]any)
	if _, ok := listed["secret/"]; !ok {
		t.Fatalf("listing lacks secret/: %v", listed)
	}
	if _, ok := listed["other/"]; ok {
		t.Fatalf("listing shows a mount the token cannot reach: %v", listed)
	}
}

// A token bound to CIDRs works only from them: for requests, the KV
// preflight and sealing alike.
func TestBoundCIDRs(t *testing.T) {
	f := initCore(t)
	ctx := context.Background()
	tok, err := f.c.tokens.Create(ctx, &token.Entry{Policies: []string{"root"}, Path: "auth/token/create",
		BoundCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	from := func(addr string) *logical.Connection { return &logical.Connection{RemoteAddr: addr} }
	do := func(path string, conn *logical.Connection) error {
		_, err := f.c.HandleRequest(ctx, &Request{ID: secret.UUID(), Operation: logical.ReadOperation, Path: path, Token: tok, Connection: conn})
		return err
	}
	if err := do("sys/mounts", from("10.1.2.3")); err != nil {
		t.Fatalf("inside the CIDR: %v", err)
	}
	for _, conn := range []*logical.Connection{from("192.0.2.1"), nil} {
		if err := do("sys/mounts", conn); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("from %v: %v, want permission denied", conn, err)
		}
		if err := do("sys/internal/ui/mounts/sys/x", conn); !errors.Is(err, logical.ErrPermissionDenied) {
			t.Errorf("preflight from %v: %v, want permission denied", conn, err)
		}
	}
	if err := f.c.Seal(ctx, tok, from("192.0.2.1")); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("seal from outside: %v", err)
	}
	if err := f.c.Seal(ctx, tok, from("10.9.9.9")); err != nil {
		t.Fatalf("seal from inside: %v", err)
	}
}
