package policy

import (
	"errors"
	"slices"
	"testing"
)

// TestDefaultPolicy checks the default policy against spec §5.6.
func TestDefaultPolicy(t *testing.T) {
	t.Parallel()
	p := Default()
	if p.Name != DefaultName || p.Raw != DefaultText || !p.Templated {
		t.Fatalf("Default() = %q templated=%v", p.Name, p.Templated)
	}
	entity := func(expr string) (string, bool) {
		switch expr {
		case "identity.entity.id":
			return "ent-1", true
		case "identity.entity.name":
			return "alice", true
		}
		return "", false
	}
	a, err := CompileWith(CompileOptions{Templater: entity}, p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"auth/token/lookup-self":                {"read"},
		"auth/token/renew-self":                 {"update"},
		"auth/token/revoke-self":                {"update"},
		"sys/capabilities-self":                 {"update"},
		"identity/entity/id/ent-1":              {"read"},
		"identity/entity/name/alice":            {"read"},
		"sys/internal/ui/resultant-acl":         {"read"},
		"sys/leases/renew":                      {"update"},
		"sys/renew":                             {"update"},
		"sys/leases/lookup":                     {"update"},
		"cubbyhole/anything":                    {"create", "delete", "list", "read", "update"},
		"cubbyhole/":                            {"create", "delete", "list", "read", "update"},
		"sys/wrapping/wrap":                     {"update"},
		"sys/wrapping/lookup":                   {"update"},
		"sys/wrapping/unwrap":                   {"update"},
		"sys/tools/hash":                        {"update"},
		"sys/tools/hash/sha2-256":               {"update"},
		"identity/oidc/provider/p1/authorize":   {"read", "update"},
		"identity/entity/id/ent-2":              {"deny"},
		"identity/entity/name/bob":              {"deny"},
		"identity/oidc/provider/p1/x/authorize": {"deny"},
		"auth/token/create":                     {"deny"},
		"secret/data/x":                         {"deny"},
		"sys/policies/acl/default":              {"deny"},
		"sys/wrapping/rewrap":                   {"deny"},
	}
	for path, caps := range want {
		if got := a.Capabilities(path); !slices.Equal(got, caps) {
			t.Errorf("Capabilities(%q) = %v, want %v", path, got, caps)
		}
	}
	// Without identity, the entity rules are skipped, nothing else.
	b, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if b.Skipped() != 2 {
		t.Errorf("Skipped = %d, want 2", b.Skipped())
	}
	if !b.Allowed(Request{Operation: ReadOperation, Path: "auth/token/lookup-self"}).Allowed {
		t.Error("lookup-self denied without identity")
	}
}

func TestResponseWrappingPolicy(t *testing.T) {
	t.Parallel()
	a, err := Compile(ResponseWrapping())
	if err != nil {
		t.Fatal(err)
	}
	for path, caps := range map[string][]string{
		"cubbyhole/response":  {"create", "read"},
		"sys/wrapping/unwrap": {"update"},
		"cubbyhole/other":     {"deny"},
		"sys/wrapping/wrap":   {"deny"},
	} {
		if got := a.Capabilities(path); !slices.Equal(got, caps) {
			t.Errorf("Capabilities(%q) = %v, want %v", path, got, caps)
		}
	}
}

func TestCheckWriteDelete(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		write, dele bool // allowed
	}{
		{RootName, false, false},
		{ResponseWrappingName, false, false},
		{DefaultName, true, false},
		{"app", true, true},
	}
	for _, tc := range cases {
		if err := CheckWrite(tc.name); (err == nil) != tc.write || err != nil && !errors.Is(err, ErrImmutable) {
			t.Errorf("CheckWrite(%q) = %v", tc.name, err)
		}
		if err := CheckDelete(tc.name); (err == nil) != tc.dele || err != nil && !errors.Is(err, ErrImmutable) {
			t.Errorf("CheckDelete(%q) = %v", tc.name, err)
		}
	}
}
