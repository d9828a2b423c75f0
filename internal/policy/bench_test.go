package policy

import (
	"fmt"
	"strings"
	"testing"
)

// benchPolicies returns about a hundred rules in six policies: the
// default policy and, per team, KV v2 data and metadata prefixes, a
// transit key, database credentials and a few segment-wildcard rules.
func benchPolicies(tb testing.TB) []*Policy {
	tb.Helper()
	teams := []string{"ml", "web", "data", "infra", "payments", "search", "mobile", "ops", "sec", "bi", "ads", "core"}
	var ps []*Policy
	for i := 0; i < len(teams); i += 3 {
		var b strings.Builder
		for _, team := range teams[i : i+3] {
			fmt.Fprintf(&b, `
path "secret/data/%[1]s/*" { capabilities = ["create", "read", "update", "patch", "delete"] }
path "secret/metadata/%[1]s/*" { capabilities = ["read", "list", "delete"] }
path "secret/data/%[1]s/prod/root" { capabilities = ["deny"] }
path "transit/encrypt/%[1]s" { capabilities = ["update"] }
path "transit/decrypt/%[1]s" { capabilities = ["update"] }
path "database/creds/%[1]s-ro" { capabilities = ["read"] }
path "secret/data/shared/+/%[1]s" { capabilities = ["read"] }
path "auth/approle/role/%[1]s/*" {
  capabilities = ["read", "update"]
  denied_parameters = { "token_policies" = [] }
}`, team)
		}
		p, err := Parse(fmt.Sprintf("teams-%d", i/3), b.String())
		if err != nil {
			tb.Fatal(err)
		}
		ps = append(ps, p)
	}
	ops, err := Parse("ops", `
path "sys/mounts/*" { capabilities = ["read", "list"] }
path "sys/policies/acl/*" { capabilities = ["read", "list"] }
path "+/config/*" { capabilities = ["read"] }
path "secret/+/+/archive/*" { capabilities = ["list"] }
path "secret/data/*" { capabilities = ["list"] }`)
	if err != nil {
		tb.Fatal(err)
	}
	return append(ps, Default(), ops)
}

func BenchmarkAllowed(b *testing.B) {
	ps := benchPolicies(b)
	n := 0
	for _, p := range ps {
		n += len(p.Rules)
	}
	a, err := Compile(ps...)
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		req  Request
		want bool
	}{
		{"read kv prefix", Request{Operation: ReadOperation, Path: "secret/data/ml/x"}, true},
		{"update exact", Request{Operation: UpdateOperation, Path: "transit/encrypt/payments"}, true},
		{"read segment rule", Request{Operation: ReadOperation, Path: "secret/data/shared/x/ml"}, true},
		{"list trailing slash", Request{Operation: ListOperation, Path: "secret/metadata/ml/"}, true},
		{"denied no rule", Request{Operation: ReadOperation, Path: "pki/issue/web"}, false},
		{"update with params", Request{Operation: UpdateOperation, Path: "auth/approle/role/ml/secret-id", Data: map[string]any{"metadata": "x", "ttl": "1h"}}, true},
	}
	b.Logf("%d rules in %d policies", n, len(ps))
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			if got := a.Allowed(tc.req).Allowed; got != tc.want {
				b.Fatalf("Allowed = %v, want %v", got, tc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				a.Allowed(tc.req)
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	ps := benchPolicies(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile(ps...); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(DefaultName, DefaultText); err != nil {
			b.Fatal(err)
		}
	}
}
