package policy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// compileTexts parses each text as its own policy and compiles them.
func compileTexts(t testing.TB, texts ...string) *ACL {
	t.Helper()
	var ps []*Policy
	for i, text := range texts {
		p, err := Parse(fmt.Sprintf("p%d", i), text)
		if err != nil {
			t.Fatalf("Parse: %v\n%s", err, text)
		}
		ps = append(ps, p)
	}
	a, err := Compile(ps...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type evalCase struct {
	name     string
	policies []string
	op       Operation
	path     string
	want     bool
	wantRule string // pattern of the deciding rule; "" for none
}

func runEvalCases(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := compileTexts(t, tc.policies...)
			res := a.Allowed(Request{Operation: tc.op, Path: tc.path})
			if res.Allowed != tc.want {
				t.Errorf("%s %q: Allowed = %v, want %v (rule %q, reason %q)", tc.op, tc.path, res.Allowed, tc.want, res.Rule, res.Reason)
			}
			if res.Rule != tc.wantRule {
				t.Errorf("%s %q: decided by %q, want %q", tc.op, tc.path, res.Rule, tc.wantRule)
			}
			if !res.Allowed && res.Reason == "" {
				t.Error("a denial has no reason")
			}
			if res.Allowed && res.Reason != "" {
				t.Errorf("an allowed request has reason %q", res.Reason)
			}
		})
	}
}

// TestPrecedence covers §5.4: exact rules, the single longest prefix,
// segment wildcards, and each of the five tie-breakers between non-exact
// candidates.
func TestPrecedence(t *testing.T) {
	t.Parallel()
	const (
		rRead = `capabilities = ["read"]`
		rList = `capabilities = ["list"]`
		rDeny = `capabilities = ["deny"]`
	)
	p := func(path, body string) string { return fmt.Sprintf("path %q { %s }", path, body) }
	runEvalCases(t, []evalCase{
		// Rule kinds.
		{"exact matches itself", []string{p("secret/foo", rRead)}, ReadOperation, "secret/foo", true, "secret/foo"},
		{"exact does not match below", []string{p("secret/foo", rRead)}, ReadOperation, "secret/foo/bar", false, ""},
		{"exact does not match a prefix of it", []string{p("secret/foo", rRead)}, ReadOperation, "secret/fo", false, ""},
		{"prefix matches itself", []string{p("secret/bar/*", rRead)}, ReadOperation, "secret/bar/", true, "secret/bar/*"},
		{"prefix matches deep", []string{p("secret/bar/*", rRead)}, ReadOperation, "secret/bar/a/b/c", true, "secret/bar/*"},
		{"prefix does not match without its slash", []string{p("secret/bar/*", rRead)}, ReadOperation, "secret/bar", false, ""},
		{"prefix mid-segment", []string{p("secret/zip-*", rRead)}, ReadOperation, "secret/zip-zap/zong", true, "secret/zip-*"},
		{"star alone matches everything", []string{p("*", rRead)}, ReadOperation, "anything/at/all", true, "*"},
		{"inner star is literal", []string{p("secret/a*b", rRead)}, ReadOperation, "secret/axxb", false, ""},
		{"inner star matches itself", []string{p("secret/a*b", rRead)}, ReadOperation, "secret/a*b", true, "secret/a*b"},
		{"plus matches one segment", []string{p("secret/+/teamb", rRead)}, ReadOperation, "secret/x/teamb", true, "secret/+/teamb"},
		{"plus does not match two segments", []string{p("secret/+/teamb", rRead)}, ReadOperation, "secret/x/y/teamb", false, ""},
		{"plus does not match zero segments", []string{p("secret/+/teamb", rRead)}, ReadOperation, "secret/teamb", false, ""},
		{"plus rule needs the same length", []string{p("secret/+/teamb", rRead)}, ReadOperation, "secret/x/teamb/more", false, ""},
		{"plus at the start", []string{p("+/config", rRead)}, ReadOperation, "kv/config", true, "+/config"},
		{"plus at the end", []string{p("transit/encrypt/+", rRead)}, ReadOperation, "transit/encrypt/k1", true, "transit/encrypt/+"},
		{"plus then star", []string{p("secret/+/foo/*", rRead)}, ReadOperation, "secret/a/foo/b/c", true, "secret/+/foo/*"},
		{"plus then star needs the prefix segment", []string{p("secret/+/foo/*", rRead)}, ReadOperation, "secret/a/foo", false, ""},
		{"plus then partial star", []string{p("secret/+/fo*", rRead)}, ReadOperation, "secret/a/food/x", true, "secret/+/fo*"},
		{"plus then partial star mismatch", []string{p("secret/+/fo*", rRead)}, ReadOperation, "secret/a/bar", false, ""},
		{"plus segment inside a word is literal", []string{p("secret/a+b/+", rRead)}, ReadOperation, "secret/a+b/x", true, "secret/a+b/+"},
		{"several plus", []string{p("+/+/+", rRead)}, ReadOperation, "a/b/c", true, "+/+/+"},
		{"no rule", []string{p("secret/foo", rRead)}, ReadOperation, "other", false, ""},
		{"no policies at all", nil, ReadOperation, "secret/foo", false, ""},
		{"leading slash ignored", []string{p("secret/foo", rRead)}, ReadOperation, "//secret/foo", true, "secret/foo"},

		// Exact beats everything.
		{"exact beats prefix", []string{p("secret/*", rDeny), p("secret/foo", rRead)}, ReadOperation, "secret/foo", true, "secret/foo"},
		{"exact beats segment", []string{p("secret/+", rDeny), p("secret/foo", rRead)}, ReadOperation, "secret/foo", true, "secret/foo"},
		{"exact deny beats prefix allow", []string{p("secret/*", rRead), p("secret/admins", rDeny)}, ReadOperation, "secret/admins", false, "secret/admins"},
		// §5.4 consequences: the deny is exact only, and KV v2 paths differ.
		{"deny on exact does not cover below", []string{p("secret/*", rRead), p("secret/admins", rDeny)}, ReadOperation, "secret/admins/x", true, "secret/*"},
		{"deny on kv v1 path misses kv v2 path", []string{p("secret/*", rRead), p("secret/admins", rDeny)}, ReadOperation, "secret/data/admins", true, "secret/*"},
		{"same, in one policy", []string{p("secret/*", rRead) + "\n" + p("secret/admins", rDeny)}, ReadOperation, "secret/admins", false, "secret/admins"},

		// Only the single longest prefix is considered.
		{"longest prefix wins", []string{p("secret/*", rRead), p("secret/foo/*", rList)}, ListOperation, "secret/foo/bar/", true, "secret/foo/*"},
		{"shorter prefix is not unioned in", []string{p("secret/*", rRead), p("secret/foo/*", rList)}, ReadOperation, "secret/foo/bar", false, "secret/foo/*"},
		{"longer prefix deny wins", []string{p("secret/*", rRead), p("secret/foo*", rDeny)}, ReadOperation, "secret/food", false, "secret/foo*"},
		{"shorter prefix applies outside the longer", []string{p("secret/*", rRead), p("secret/foo*", rDeny)}, ReadOperation, "secret/fo", true, "secret/*"},

		// Tie-breaker 1: the later first wildcard wins.
		{"tb1 prefix with later star beats plus", []string{p("secret/+/bar", rDeny), p("secret/foo/*", rRead)}, ReadOperation, "secret/foo/bar", true, "secret/foo/*"},
		{"tb1 later plus beats earlier plus", []string{p("secret/+/+/baz", rDeny), p("secret/a/+/baz", rRead)}, ReadOperation, "secret/a/b/baz", true, "secret/a/+/baz"},
		{"tb1 later plus beats earlier star", []string{p("secret/*", rDeny), p("secret/a/+", rRead)}, ReadOperation, "secret/a/b", true, "secret/a/+"},
		{"tb1 partial star beats plus", []string{p("foo/+", rDeny), p("foo/a*", rRead)}, ReadOperation, "foo/abc", true, "foo/a*"},
		// Tie-breaker 2: not ending in '*' beats ending in '*'.
		{"tb2 plus beats star at same place", []string{p("secret/*", rDeny), p("secret/+", rRead)}, ReadOperation, "secret/x", true, "secret/+"},
		{"tb2 plus rule beats plus-star rule", []string{p("secret/+/ba*", rDeny), p("secret/+/bar", rRead)}, ReadOperation, "secret/x/bar", true, "secret/+/bar"},
		// Tie-breaker 3: fewer "+" segments win.
		{"tb3 fewer plus", []string{p("secret/+/+/b", rDeny), p("secret/+/a/b", rRead)}, ReadOperation, "secret/x/a/b", true, "secret/+/a/b"},
		{"tb3 fewer plus with stars", []string{p("secret/+/+/*", rDeny), p("secret/+/a/*", rRead)}, ReadOperation, "secret/x/a/q", true, "secret/+/a/*"},
		// Tie-breaker 4: the longer pattern wins.
		{"tb4 longer", []string{p("secret/+/bar/b*", rDeny), p("secret/+/bar/ba*", rRead)}, ReadOperation, "secret/x/bar/baz", true, "secret/+/bar/ba*"},
		// Tie-breaker 5: the lexicographically greater pattern wins.
		{"tb5 lexicographic", []string{p("secret/+/+/y", rDeny), p("secret/+/x/+", rRead)}, ReadOperation, "secret/a/x/y", true, "secret/+/x/+"},
		{"tb5 lexicographic reversed order", []string{p("secret/+/x/+", rRead), p("secret/+/+/y", rDeny)}, ReadOperation, "secret/a/x/y", true, "secret/+/x/+"},

		// List and scan, and the trailing slash.
		{"list exact without slash", []string{p("secret/foo", rList)}, ListOperation, "secret/foo/", true, "secret/foo"},
		{"scan exact without slash", []string{p("secret/foo", `capabilities = ["scan"]`)}, ScanOperation, "secret/foo/", true, "secret/foo"},
		{"read does not drop the slash", []string{p("secret/foo", rRead)}, ReadOperation, "secret/foo/", false, ""},
		{"list exact with slash wins over without", []string{p("secret/foo", rDeny), p("secret/foo/", rList)}, ListOperation, "secret/foo/", true, "secret/foo/"},
		{"list prefix under the path", []string{p("secret/foo/*", rList)}, ListOperation, "secret/foo/", true, "secret/foo/*"},
		{"list plus rule on the path without slash", []string{p("secret/+", rList)}, ListOperation, "secret/x/", true, "secret/+"},
		// Vault tries the path without its slash first, so secret/+ decides
		// LIST secret/x/ although secret/* matches the full path too.
		{"list tries without slash first", []string{p("secret/*", rRead), p("secret/+", rList)}, ListOperation, "secret/x/", true, "secret/+"},
		{"list without slash first, prefix", []string{p("secret/foo*", rList), p("secret/foo/*", rDeny)}, ListOperation, "secret/foo/", true, "secret/foo*"},
		{"list falls back to the full path", []string{p("secret/a/*", rList)}, ListOperation, "secret/a/", true, "secret/a/*"},
		{"list of the root", []string{p("*", rList)}, ListOperation, "", true, "*"},
		{"list with no rule", []string{p("other/*", rList)}, ListOperation, "secret/", false, ""},
	})
}

// TestEveryCapability checks each operation against a rule granting
// exactly one capability: only the matching capability allows it.
func TestEveryCapability(t *testing.T) {
	t.Parallel()
	ops := []Operation{ReadOperation, ListOperation, CreateOperation, UpdateOperation, DeleteOperation, PatchOperation, ScanOperation}
	for _, cn := range capNames {
		a := compileTexts(t, fmt.Sprintf(`path "p" { capabilities = [%q] }`, cn.name))
		for _, op := range ops {
			got := a.Allowed(Request{Operation: op, Path: "p"}).Allowed
			want := cn.c == op.Capability()
			if got != want {
				t.Errorf("capability %s, operation %s: Allowed = %v, want %v", cn.name, op, got, want)
			}
		}
		if got := a.Capabilities("p"); !slices.Equal(got, []string{cn.name}) {
			t.Errorf("Capabilities with %s = %v", cn.name, got)
		}
	}
	all := compileTexts(t, `path "p" { capabilities = ["create","read","update","patch","delete","list","sudo","scan","deny"] }`)
	for _, op := range ops {
		res := all.Allowed(Request{Operation: op, Path: "p"})
		if res.Allowed || res.Capabilities != Deny {
			t.Errorf("deny rule allowed %s (%+v)", op, res)
		}
	}
	grant := compileTexts(t, `path "p" { capabilities = ["create","read","update","patch","delete","list","scan"] }`)
	for _, op := range ops {
		if !grant.Allowed(Request{Operation: op, Path: "p"}).Allowed {
			t.Errorf("full rule denied %s", op)
		}
	}
	for _, op := range []Operation{"", "help", "renew", "READ"} {
		res := grant.Allowed(Request{Operation: op, Path: "p"})
		if res.Allowed || res.Reason == "" {
			t.Errorf("unknown operation %q: %+v", op, res)
		}
	}
}

func TestSudo(t *testing.T) {
	t.Parallel()
	a := compileTexts(t,
		`path "sys/audit/*" { capabilities = ["update", "sudo"] }`,
		`path "sys/mounts/*" { capabilities = ["update"] }`,
		`path "sys/raw/*" { capabilities = ["sudo"] }`)
	cases := []struct {
		op   Operation
		path string
		sudo bool
		want bool
	}{
		{UpdateOperation, "sys/audit/file", true, true},
		{UpdateOperation, "sys/audit/file", false, true},
		{UpdateOperation, "sys/mounts/x", true, false},
		{UpdateOperation, "sys/mounts/x", false, true},
		{ReadOperation, "sys/raw/x", true, false}, // sudo alone grants no operation
		{ReadOperation, "sys/audit/file", true, false},
	}
	for _, tc := range cases {
		res := a.Allowed(Request{Operation: tc.op, Path: tc.path, Sudo: tc.sudo})
		if res.Allowed != tc.want {
			t.Errorf("%s %s sudo=%v: Allowed = %v, want %v (%s)", tc.op, tc.path, tc.sudo, res.Allowed, tc.want, res.Reason)
		}
	}
}

func TestWrappingTTL(t *testing.T) {
	t.Parallel()
	a := compileTexts(t, `
path "min" { capabilities = ["read"] min_wrapping_ttl = "1m" }
path "max" { capabilities = ["read"] max_wrapping_ttl = "1h" }
path "both" {
  capabilities = ["read"]
  min_wrapping_ttl = 60
  max_wrapping_ttl = 3600
}
path "none" { capabilities = ["read"] }
path "conflict" { capabilities = ["read"] min_wrapping_ttl = "2h" }`,
		`path "conflict" { capabilities = ["read"] max_wrapping_ttl = "1h" }`)
	cases := []struct {
		path string
		ttl  time.Duration
		want bool
	}{
		{"min", 0, false},
		{"min", 59 * time.Second, false},
		{"min", time.Minute, true},
		{"min", 24 * time.Hour, true},
		{"max", 0, false},
		{"max", time.Second, true},
		{"max", time.Hour, true},
		{"max", time.Hour + time.Second, false},
		{"both", 0, false},
		{"both", 30 * time.Second, false},
		{"both", 30 * time.Minute, true},
		{"both", 2 * time.Hour, false},
		{"none", 0, true},
		{"none", time.Hour, true},
		{"conflict", 90 * time.Minute, false},
	}
	for _, tc := range cases {
		res := a.Allowed(Request{Operation: ReadOperation, Path: tc.path, WrapTTL: tc.ttl})
		if res.Allowed != tc.want {
			t.Errorf("%s ttl=%v: Allowed = %v, want %v (%s)", tc.path, tc.ttl, res.Allowed, tc.want, res.Reason)
		}
	}
}

// TestParameters covers §5.5's parameter rules.
func TestParameters(t *testing.T) {
	t.Parallel()
	const secretValue = "s3cr3t-value"
	type tc struct {
		name string
		rule string // body of path "p"
		op   Operation
		data map[string]any
		want bool
	}
	caps := `capabilities = ["create", "read", "update", "patch", "delete", "list"]` + "\n"
	num := func(s string) json.Number { return json.Number(s) }
	cases := []tc{
		// required_parameters
		{"required present", `required_parameters = ["ttl"]`, UpdateOperation, map[string]any{"ttl": "1h"}, true},
		{"required missing", `required_parameters = ["ttl"]`, UpdateOperation, map[string]any{"x": 1}, false},
		{"required missing with no data", `required_parameters = ["ttl"]`, UpdateOperation, nil, false},
		{"required name case", `required_parameters = ["TTL"]`, UpdateOperation, map[string]any{"Ttl": 1}, true},
		{"required on read", `required_parameters = ["v"]`, ReadOperation, nil, false},
		{"required ignored for delete", `required_parameters = ["v"]`, DeleteOperation, nil, true},
		{"required ignored for list", `required_parameters = ["v"]`, ListOperation, nil, true},

		// No data passes.
		{"no data passes denied star", `denied_parameters = { "*" = [] }`, UpdateOperation, nil, true},
		{"empty data passes allowed list", `allowed_parameters = { "a" = ["1"] }`, UpdateOperation, map[string]any{}, true},

		// denied_parameters
		{"denied star denies any", `denied_parameters = { "*" = [] }`, UpdateOperation, map[string]any{"x": 1}, false},
		{"denied key any value", `denied_parameters = { "policies" = [] }`, UpdateOperation, map[string]any{"policies": "anything"}, false},
		{"denied key other key passes", `denied_parameters = { "policies" = [] }`, UpdateOperation, map[string]any{"ttl": "1h"}, true},
		{"denied value matches", `denied_parameters = { "policies" = ["root"] }`, UpdateOperation, map[string]any{"policies": "root"}, false},
		{"denied value other passes", `denied_parameters = { "policies" = ["root"] }`, UpdateOperation, map[string]any{"policies": "dev"}, true},
		{"denied prefix glob", `denied_parameters = { "name" = ["adm*"] }`, UpdateOperation, map[string]any{"name": "admin"}, false},
		{"denied prefix glob miss", `denied_parameters = { "name" = ["adm*"] }`, UpdateOperation, map[string]any{"name": "xadmin"}, true},
		{"denied suffix glob", `denied_parameters = { "name" = ["*-prod"] }`, UpdateOperation, map[string]any{"name": "db-prod"}, false},
		{"denied suffix glob miss", `denied_parameters = { "name" = ["*-prod"] }`, UpdateOperation, map[string]any{"name": "db-prod2"}, true},
		{"denied contains glob", `denied_parameters = { "name" = ["*root*"] }`, UpdateOperation, map[string]any{"name": "a-root-b"}, false},
		{"denied lone star any value", `denied_parameters = { "name" = ["*"] }`, UpdateOperation, map[string]any{"name": "x"}, false},
		{"denied list element", `denied_parameters = { "policies" = ["root"] }`, UpdateOperation, map[string]any{"policies": []any{"dev", "root"}}, false},
		{"denied string list element", `denied_parameters = { "policies" = ["root"] }`, UpdateOperation, map[string]any{"policies": []string{"dev", "root"}}, false},
		{"denied comma element", `denied_parameters = { "policies" = ["root"] }`, UpdateOperation, map[string]any{"policies": "dev, root"}, false},
		{"denied list clean", `denied_parameters = { "policies" = ["root"] }`, UpdateOperation, map[string]any{"policies": []any{"dev", "ops"}}, true},
		{"denied name case in policy", `denied_parameters = { "Policies" = [] }`, UpdateOperation, map[string]any{"policies": "x"}, false},
		{"denied name case in request", `denied_parameters = { "policies" = [] }`, UpdateOperation, map[string]any{"POLICIES": "x"}, false},
		{"denied value case sensitive", `denied_parameters = { "p" = ["Root"] }`, UpdateOperation, map[string]any{"p": "root"}, true},
		{"denied number", `denied_parameters = { "n" = [5] }`, UpdateOperation, map[string]any{"n": num("5")}, false},
		{"denied number float", `denied_parameters = { "n" = [5] }`, UpdateOperation, map[string]any{"n": 5.0}, false},
		{"denied bool", `denied_parameters = { "b" = [true] }`, UpdateOperation, map[string]any{"b": true}, false},
		{"denied object value not matched", `denied_parameters = { "o" = ["x"] }`, UpdateOperation, map[string]any{"o": map[string]any{"x": 1}}, true},
		{"denied checked on read", `denied_parameters = { "*" = [] }`, ReadOperation, map[string]any{"x": 1}, false},
		{"denied checked on patch", `denied_parameters = { "*" = [] }`, PatchOperation, map[string]any{"x": 1}, false},
		{"denied checked on create", `denied_parameters = { "*" = [] }`, CreateOperation, map[string]any{"x": 1}, false},
		{"denied ignored for delete", `denied_parameters = { "*" = [] }`, DeleteOperation, map[string]any{"x": 1}, true},
		{"denied ignored for list", `denied_parameters = { "*" = [] }`, ListOperation, map[string]any{"x": 1}, true},

		// allowed_parameters
		{"allowed star any", `allowed_parameters = { "*" = [] }`, UpdateOperation, map[string]any{"anything": 1}, true},
		{"allowed key listed", `allowed_parameters = { "ttl" = [] }`, UpdateOperation, map[string]any{"ttl": "1h"}, true},
		{"allowed key not listed", `allowed_parameters = { "ttl" = [] }`, UpdateOperation, map[string]any{"ttl": "1h", "x": 1}, false},
		{"allowed star lets other keys through", `allowed_parameters = { "*" = [] "ttl" = ["1h"] }`, UpdateOperation, map[string]any{"x": 1, "ttl": "1h"}, true},
		{"allowed star still checks listed values", `allowed_parameters = { "*" = [] "ttl" = ["1h"] }`, UpdateOperation, map[string]any{"x": 1, "ttl": "2h"}, false},
		{"allowed value", `allowed_parameters = { "role" = ["dev", "ops"] }`, UpdateOperation, map[string]any{"role": "ops"}, true},
		{"allowed value miss", `allowed_parameters = { "role" = ["dev", "ops"] }`, UpdateOperation, map[string]any{"role": "admin"}, false},
		{"allowed prefix glob", `allowed_parameters = { "name" = ["app-*"] }`, UpdateOperation, map[string]any{"name": "app-1"}, true},
		{"allowed prefix glob miss", `allowed_parameters = { "name" = ["app-*"] }`, UpdateOperation, map[string]any{"name": "web-1"}, false},
		{"allowed suffix glob", `allowed_parameters = { "name" = ["*.example.com"] }`, UpdateOperation, map[string]any{"name": "a.example.com"}, true},
		{"allowed suffix glob miss", `allowed_parameters = { "name" = ["*.example.com"] }`, UpdateOperation, map[string]any{"name": "a.example.org"}, false},
		{"allowed contains glob", `allowed_parameters = { "name" = ["*ml*"] }`, UpdateOperation, map[string]any{"name": "team-ml-x"}, true},
		{"allowed lone star", `allowed_parameters = { "name" = ["*"] }`, UpdateOperation, map[string]any{"name": "x"}, true},
		{"allowed list all elements", `allowed_parameters = { "policies" = ["dev", "ops"] }`, UpdateOperation, map[string]any{"policies": []any{"dev", "ops"}}, true},
		{"allowed list one bad element", `allowed_parameters = { "policies" = ["dev", "ops"] }`, UpdateOperation, map[string]any{"policies": []any{"dev", "root"}}, false},
		{"allowed comma string", `allowed_parameters = { "policies" = ["dev", "ops"] }`, UpdateOperation, map[string]any{"policies": "dev,ops"}, true},
		{"allowed comma string bad element", `allowed_parameters = { "policies" = ["dev", "ops"] }`, UpdateOperation, map[string]any{"policies": "dev,root"}, false},
		{"allowed empty string not listed", `allowed_parameters = { "policies" = ["dev"] }`, UpdateOperation, map[string]any{"policies": ""}, false},
		{"allowed empty list value not listed", `allowed_parameters = { "policies" = ["dev"] }`, UpdateOperation, map[string]any{"policies": []any{}}, false},
		{"allowed null value", `allowed_parameters = { "policies" = ["dev"] }`, UpdateOperation, map[string]any{"policies": nil}, false},
		{"allowed name case in policy", `allowed_parameters = { "TTL" = [] }`, UpdateOperation, map[string]any{"ttl": 1}, true},
		{"allowed name case in request", `allowed_parameters = { "ttl" = [] }`, UpdateOperation, map[string]any{"TTL": 1}, true},
		{"allowed number forms", `allowed_parameters = { "n" = [10] }`, UpdateOperation, map[string]any{"n": num("10.0")}, true},
		{"allowed number int", `allowed_parameters = { "n" = [10] }`, UpdateOperation, map[string]any{"n": 10}, true},
		{"allowed number miss", `allowed_parameters = { "n" = [10] }`, UpdateOperation, map[string]any{"n": 11}, false},
		{"allowed bool", `allowed_parameters = { "b" = [false] }`, UpdateOperation, map[string]any{"b": false}, true},
		{"allowed object value", `allowed_parameters = { "o" = ["x"] }`, UpdateOperation, map[string]any{"o": map[string]any{}}, false},
		{"allowed ignored for delete", `allowed_parameters = { "a" = [] }`, DeleteOperation, map[string]any{"b": 1}, true},

		// Both.
		{"denied checked before allowed", `allowed_parameters = { "*" = [] }` + "\n" + `denied_parameters = { "x" = [] }`, UpdateOperation, map[string]any{"x": 1}, false},
		{"denied and allowed both pass", `allowed_parameters = { "x" = [] }` + "\n" + `denied_parameters = { "y" = [] }`, UpdateOperation, map[string]any{"x": 1}, true},

		// A value that may be a secret never reaches the reason.
		{"secret value denied", `denied_parameters = { "password" = ["*"] }`, UpdateOperation, map[string]any{"password": secretValue}, false},
		{"secret value not allowed", `allowed_parameters = { "password" = ["x"] }`, UpdateOperation, map[string]any{"password": secretValue}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			a := compileTexts(t, `path "p" {`+"\n"+caps+c.rule+"\n}")
			res := a.Allowed(Request{Operation: c.op, Path: "p", Data: c.data})
			if res.Allowed != c.want {
				t.Errorf("Allowed = %v, want %v (%s)", res.Allowed, c.want, res.Reason)
			}
			if strings.Contains(res.Reason, secretValue) {
				t.Errorf("reason %q shows a parameter value", res.Reason)
			}
		})
	}
}

func TestRootACL(t *testing.T) {
	t.Parallel()
	a := Root()
	for _, op := range []Operation{ReadOperation, ListOperation, CreateOperation, UpdateOperation, DeleteOperation, PatchOperation, ScanOperation} {
		res := a.Allowed(Request{Operation: op, Path: "sys/raw/anything", Sudo: true, Data: map[string]any{"x": 1}})
		if !res.Allowed || !res.Root || res.Capabilities != Granting {
			t.Errorf("root %s: %+v", op, res)
		}
	}
	if got := a.Capabilities("any/path"); !slices.Equal(got, []string{"root"}) {
		t.Errorf("Capabilities = %v", got)
	}
	if !a.IsRoot() {
		t.Error("IsRoot false")
	}
	c, err := Compile(nil, RootPolicy(), nil)
	if err != nil || !c.IsRoot() {
		t.Errorf("Compile(root) = %v, %v", c, err)
	}
}

func TestCapabilitiesEndpoint(t *testing.T) {
	t.Parallel()
	a := compileTexts(t,
		`path "secret/*" { capabilities = ["read", "list"] }
path "secret/admins" { capabilities = ["deny"] }
path "secret/foo" { capabilities = ["update", "create", "sudo"] }`,
		`path "secret/foo" { capabilities = ["read"] }`)
	cases := []struct {
		path string
		want []string
	}{
		{"secret/x", []string{"list", "read"}},
		{"secret/admins", []string{"deny"}},
		{"secret/foo", []string{"create", "read", "sudo", "update"}},
		{"secret/foo/", []string{"create", "read", "sudo", "update"}}, // as for list
		{"/secret/foo", []string{"create", "read", "sudo", "update"}},
		{"other", []string{"deny"}},
	}
	for _, tc := range cases {
		if got := a.Capabilities(tc.path); !slices.Equal(got, tc.want) {
			t.Errorf("Capabilities(%q) = %v, want %v", tc.path, got, tc.want)
		}
	}
}

func TestNilACLDenies(t *testing.T) {
	t.Parallel()
	for _, a := range []*ACL{nil, {}} {
		res := a.Allowed(Request{Operation: ReadOperation, Path: "x"})
		if res.Allowed || res.Reason == "" {
			t.Errorf("%v: %+v", a, res)
		}
		if got := a.Capabilities("x"); !slices.Equal(got, []string{"deny"}) {
			t.Errorf("Capabilities = %v", got)
		}
		if a.IsRoot() {
			t.Error("IsRoot")
		}
	}
}
