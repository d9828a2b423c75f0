package policy

import (
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
)

// compiledRule returns the compiled rule with the given pattern, found in
// the exact map or the tree.
func compiledRule(t *testing.T, a *ACL, pattern string) *rule {
	t.Helper()
	if r := a.exact[pattern]; r != nil {
		return r
	}
	var found *rule
	var walk func(n *node)
	walk = func(n *node) {
		if n.prefix != nil && n.prefix.pattern == pattern {
			found = n.prefix
		}
		for _, w := range n.wild {
			if w.pattern == pattern {
				found = w
			}
		}
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(a.tree)
	if found == nil {
		t.Fatalf("no compiled rule %q", pattern)
	}
	return found
}

func globStrings(gs []glob) []string {
	out := []string{}
	for _, g := range gs {
		switch g.op {
		case globPrefix:
			out = append(out, g.s+"*")
		case globSuffix:
			out = append(out, "*"+g.s)
		case globContains:
			if g.s == "" {
				out = append(out, "*")
			} else {
				out = append(out, "*"+g.s+"*")
			}
		default:
			out = append(out, g.s)
		}
	}
	slices.Sort(out)
	return out
}

func paramStrings(m map[string][]glob) map[string][]string {
	if m == nil {
		return nil
	}
	out := map[string][]string{}
	for k, v := range m {
		out[k] = globStrings(v)
	}
	return out
}

// TestCompileMerge covers §5.3: the same pattern in several policies.
func TestCompileMerge(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name         string
		policies     []string
		pattern      string
		wantCaps     Capability
		wantAllowed  map[string][]string
		wantDenied   map[string][]string
		wantRequired []string
		wantMin      time.Duration
		wantMax      time.Duration
	}{
		{
			name: "capabilities unite",
			policies: []string{
				`path "s/*" { capabilities = ["read"] }`,
				`path "s/*" { capabilities = ["list", "update"] }`,
			},
			pattern: "s/*", wantCaps: Read | List | Update,
		},
		{
			name: "deny wins, first",
			policies: []string{
				`path "s" { capabilities = ["deny"] }`,
				`path "s" {
  capabilities = ["read"]
  allowed_parameters = { "a" = [] }
}`,
			},
			pattern: "s", wantCaps: Deny,
		},
		{
			name: "deny wins, last, constraints dropped",
			policies: []string{
				`path "s/+" {
  capabilities = ["read", "sudo"]
  allowed_parameters = { "a" = [] }
  denied_parameters = { "b" = [] }
  required_parameters = ["c"]
  min_wrapping_ttl = 5
}`,
				`path "s/+" { capabilities = ["deny"] }`,
				`path "s/+" { capabilities = ["update"] }`,
			},
			pattern: "s/+", wantCaps: Deny,
		},
		{
			name: "value lists concatenate",
			policies: []string{
				`path "s" {
  capabilities = ["update"]
  allowed_parameters = { "role" = ["dev"] "ttl" = ["1h"] }
  denied_parameters = { "p" = ["root"] }
}`,
				`path "s" {
  capabilities = ["create"]
  allowed_parameters = { "role" = ["ops*"] "x" = ["1"] }
  denied_parameters = { "p" = ["admin"] }
}`,
			},
			pattern: "s", wantCaps: Update | Create,
			wantAllowed: map[string][]string{"role": {"dev", "ops*"}, "ttl": {"1h"}, "x": {"1"}},
			wantDenied:  map[string][]string{"p": {"admin", "root"}},
		},
		{
			name: "empty list wins either way",
			policies: []string{
				`path "s" {
  capabilities = ["update"]
  allowed_parameters = { "a" = [] "b" = ["1"] }
  denied_parameters = { "c" = ["1"] }
}`,
				`path "s" {
  allowed_parameters = { "a" = ["2"] "b" = [] }
  denied_parameters = { "c" = [] }
}`,
			},
			pattern: "s", wantCaps: Update,
			wantAllowed: map[string][]string{"a": {}, "b": {}},
			wantDenied:  map[string][]string{"c": {}},
		},
		{
			name: "a policy without constraints does not lift another's",
			policies: []string{
				`path "s" { capabilities = ["update"] }`,
				`path "s" {
  capabilities = ["read"]
  allowed_parameters = { "a" = ["1"] }
}`,
			},
			pattern: "s", wantCaps: Update | Read,
			wantAllowed: map[string][]string{"a": {"1"}},
		},
		{
			name: "required unite",
			policies: []string{
				`path "s" {
  capabilities = ["update"]
  required_parameters = ["a", "b"]
}`,
				`path "s" { required_parameters = ["b", "c"] }`,
			},
			pattern: "s", wantCaps: Update, wantRequired: []string{"a", "b", "c"},
		},
		{
			name: "smaller non-zero ttl wins",
			policies: []string{
				`path "s" {
  capabilities = ["read"]
  min_wrapping_ttl = "10m"
}`,
				`path "s" {
  min_wrapping_ttl = "5m"
  max_wrapping_ttl = "2h"
}`,
				`path "s" { max_wrapping_ttl = "1h" }`,
				`path "s" { capabilities = ["list"] }`,
			},
			pattern: "s", wantCaps: Read | List, wantMin: 5 * time.Minute, wantMax: time.Hour,
		},
		{
			name: "templated and literal with the same result merge",
			policies: []string{
				`path "kv/e1/*" { capabilities = ["read"] }`,
				`path "kv/{{identity.entity.id}}/*" { capabilities = ["list"] }`,
			},
			pattern: "kv/e1/*", wantCaps: Read | List,
		},
	}
	tmpl := func(expr string) (string, bool) { return "e1", expr == "identity.entity.id" }
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ps []*Policy
			for i, text := range tc.policies {
				p, err := Parse("p"+string(rune('a'+i)), text)
				if err != nil {
					t.Fatal(err)
				}
				ps = append(ps, p)
			}
			before := clonePolicies(ps)
			a, err := CompileWith(CompileOptions{Templater: tmpl}, ps...)
			if err != nil {
				t.Fatal(err)
			}
			r := compiledRule(t, a, tc.pattern)
			if r.caps != tc.wantCaps {
				t.Errorf("caps = %v, want %v", r.caps, tc.wantCaps)
			}
			if got := paramStrings(r.allowed); !reflect.DeepEqual(got, sorted(tc.wantAllowed)) {
				t.Errorf("allowed = %v, want %v", got, tc.wantAllowed)
			}
			if got := paramStrings(r.denied); !reflect.DeepEqual(got, sorted(tc.wantDenied)) {
				t.Errorf("denied = %v, want %v", got, tc.wantDenied)
			}
			if !slices.Equal(r.required, tc.wantRequired) {
				t.Errorf("required = %v, want %v", r.required, tc.wantRequired)
			}
			if r.minWrap != tc.wantMin || r.maxWrap != tc.wantMax {
				t.Errorf("wrap = %v..%v, want %v..%v", r.minWrap, r.maxWrap, tc.wantMin, tc.wantMax)
			}
			if !reflect.DeepEqual(ps, before) {
				t.Error("Compile modified its input policies")
			}
		})
	}
}

func sorted(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := map[string][]string{}
	for k, v := range m {
		v = slices.Clone(v)
		slices.Sort(v)
		if v == nil {
			v = []string{}
		}
		out[k] = v
	}
	return out
}

func clonePolicies(ps []*Policy) []*Policy {
	var out []*Policy
	for _, p := range ps {
		c := *p
		c.Rules = nil
		for _, r := range p.Rules {
			rc := r
			rc.AllowedParameters = cloneParams(r.AllowedParameters)
			rc.DeniedParameters = cloneParams(r.DeniedParameters)
			rc.RequiredParameters = slices.Clone(r.RequiredParameters)
			rc.MFAMethods = slices.Clone(r.MFAMethods)
			c.Rules = append(c.Rules, rc)
		}
		out = append(out, &c)
	}
	return out
}

func cloneParams(m map[string][]string) map[string][]string {
	if m == nil {
		return nil
	}
	out := map[string][]string{}
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// TestCompileMergeEffects checks merged rules through Allowed.
func TestCompileMergeEffects(t *testing.T) {
	t.Parallel()
	a := compileTexts(t,
		`path "s" {
  capabilities = ["update"]
  allowed_parameters = { "role" = ["dev"] }
}`,
		`path "s" { allowed_parameters = { "role" = ["ops"] } }`)
	for role, want := range map[string]bool{"dev": true, "ops": true, "admin": false} {
		if got := a.Allowed(Request{Operation: UpdateOperation, Path: "s", Data: map[string]any{"role": role}}).Allowed; got != want {
			t.Errorf("role %s: Allowed = %v, want %v", role, got, want)
		}
	}
	d := compileTexts(t, `path "s/*" { capabilities = ["read"] }`, `path "s/*" { capabilities = ["deny"] }`, `path "s/*" { capabilities = ["list"] }`)
	if d.Allowed(Request{Operation: ReadOperation, Path: "s/x"}).Allowed {
		t.Error("deny in one policy did not win")
	}
}

func TestCompileRoot(t *testing.T) {
	t.Parallel()
	other := mustParse1(t, `path "a" { capabilities = ["read"] }`)
	if _, err := Compile(RootPolicy(), other); !errors.Is(err, ErrRootCombined) {
		t.Errorf("root + other: err = %v", err)
	}
	if _, err := Compile(other, RootPolicy()); !errors.Is(err, ErrRootCombined) {
		t.Errorf("other + root: err = %v", err)
	}
	a, err := Compile()
	if err != nil || a.IsRoot() || a.Allowed(Request{Operation: ReadOperation, Path: "a"}).Allowed {
		t.Errorf("empty ACL: %v, %v", a, err)
	}
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	p := mustParse1(t, `
path "kv/{{identity.entity.id}}/*" { capabilities = ["read"] }
path "kv/team/{{identity.entity.metadata.team}}" { capabilities = ["update"] }
path "kv/static" { capabilities = ["read"] }`)
	if !p.Templated {
		t.Fatal("policy not marked templated")
	}

	noT, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	if noT.Skipped() != 2 {
		t.Errorf("Skipped = %d, want 2", noT.Skipped())
	}
	if noT.Allowed(Request{Operation: ReadOperation, Path: "kv/{{identity.entity.id}}/x"}).Allowed {
		t.Error("an unresolved template matched literally")
	}
	if !noT.Allowed(Request{Operation: ReadOperation, Path: "kv/static"}).Allowed {
		t.Error("plain rule lost")
	}

	values := map[string]string{"identity.entity.id": "e-123", "identity.entity.metadata.team": "ml"}
	lookup := func(m map[string]string) Templater {
		return func(expr string) (string, bool) { v, ok := m[expr]; return v, ok }
	}
	withT, err := CompileWith(CompileOptions{Templater: lookup(values)}, p)
	if err != nil {
		t.Fatal(err)
	}
	if withT.Skipped() != 0 {
		t.Errorf("Skipped = %d", withT.Skipped())
	}
	for path, op := range map[string]Operation{"kv/e-123/x": ReadOperation, "kv/team/ml": UpdateOperation} {
		if !withT.Allowed(Request{Operation: op, Path: path}).Allowed {
			t.Errorf("%s %s denied", op, path)
		}
	}
	if withT.Allowed(Request{Operation: ReadOperation, Path: "kv/e-999/x"}).Allowed {
		t.Error("another entity's path allowed")
	}

	// Values that would change a rule's shape are refused: the rule is
	// skipped, as if unresolvable.
	for _, bad := range []string{"", "*", "a*", "+", "x/+", "{{identity.entity.id}}", "a}}"} {
		a, err := CompileWith(CompileOptions{Templater: lookup(map[string]string{"identity.entity.id": bad, "identity.entity.metadata.team": bad})}, p)
		if err != nil {
			t.Fatal(err)
		}
		if a.Skipped() != 2 {
			t.Errorf("value %q: Skipped = %d, want 2", bad, a.Skipped())
		}
	}
	// A '+' inside a value is literal, and a '/' is allowed
	// (Kubernetes alias names look like "ns/sa").
	for _, ok := range []string{"a+b", "ns/sa"} {
		a, err := CompileWith(CompileOptions{Templater: lookup(map[string]string{"identity.entity.id": ok, "identity.entity.metadata.team": ok})}, p)
		if err != nil {
			t.Fatal(err)
		}
		if a.Skipped() != 0 || !a.Allowed(Request{Operation: ReadOperation, Path: "kv/" + ok + "/x"}).Allowed {
			t.Errorf("value %q not usable", ok)
		}
	}
	// "+*" created by a value is refused.
	q := mustParse1(t, `path "kv/{{identity.entity.name}}*" { capabilities = ["read"] }`)
	a, err := CompileWith(CompileOptions{Templater: lookup(map[string]string{"identity.entity.name": "x+"})}, q)
	if err != nil {
		t.Fatal(err)
	}
	if a.Skipped() != 1 {
		t.Errorf("'+*' via template: Skipped = %d", a.Skipped())
	}
}
