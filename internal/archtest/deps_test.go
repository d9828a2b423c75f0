// Package archtest enforces DESIGN.md §4: which internal packages each
// package may import, that test helpers never reach production code, and
// that every package says what it is for.
package archtest

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/vigil-secrets/vigil"

// Layer groups, by package path relative to the module.
var (
	layer0 = []string{"api", "internal/logical", "internal/clock", "internal/secret", "internal/shamir", "internal/auditlog", "internal/jsonenc", "internal/glob"}
	layer1 = []string{"internal/storage", "internal/policy", "internal/passwordpolicy", "internal/framework", "internal/config", "internal/logging"}
	// testHelpers are imported only from _test.go files.
	testHelpers = []string{"internal/storage/storagetest", "internal/logical/logicaltest", "internal/testcluster", "internal/pgtest", "internal/jwks/jwkstest", "internal/seal/pkcs11/softhsmtest", "internal/testlog"}
)

func join(groups ...[]string) []string { return slices.Concat(groups...) }

// rule says which internal packages a package may import directly, and why.
type rule struct {
	allow  []string // allowed imports; an entry ending in "/..." allows a subtree
	reason string
}

// rules maps a package (or subtree with "/...") to its rule. A package
// matching no rule fails the test: add it here deliberately.
var rules = map[string]rule{
	"api":               {nil, "the public client stays free of internal code so it could become its own module"},
	"internal/logical":  {nil, "the mount contract is a leaf"},
	"internal/clock":    {nil, "leaf"},
	"internal/testlog":  {nil, "a test helper: a buffer tests read while goroutines write it"},
	"internal/secret":   {nil, "leaf"},
	"internal/shamir":   {nil, "pure math"},
	"internal/jsonenc":  {nil, "leaf"},
	"internal/auditlog": {nil, "the audit log's written form, shared by the server and the CLI that verifies it"},
	"internal/glob":     {nil, "leaf: Vault's '*' globs, for bound claims, service-account names and policy globs"},
	"internal/jwks":     {nil, "leaf: key sets and JWS signature verification, shared by the auth methods"},

	"internal/storage":        {nil, "physical storage knows nothing above it"},
	"internal/policy":         {nil, "policy stays pure: parse, compile, check"},
	"internal/passwordpolicy": {nil, "password policies stay pure: parse, generate"},
	"internal/framework":      {[]string{"internal/logical"}, "a toolkit for mounts over the mount contract"},
	"internal/config":         {nil, "config files decode to typed structs with no runtime imports"},
	"internal/logging":        {nil, "leaf"},

	"internal/storage/inmem":    {[]string{"internal/storage"}, "backends see only the storage contract"},
	"internal/storage/bolt":     {[]string{"internal/storage"}, "backends see only the storage contract"},
	"internal/storage/postgres": {[]string{"internal/storage"}, "backends see only the storage contract"},
	"internal/storage/snapshot": {[]string{"internal/storage"}, "the snapshot file format carries storage entries (ciphertext) and knows nothing above storage"},
	"internal/barrier":          {[]string{"internal/storage", "internal/logical", "internal/secret", "internal/clock"}, "the barrier wraps storage"},
	"internal/seal":             {[]string{"internal/shamir", "internal/secret"}, "the seal produces the root key; core hands it to the barrier"},
	"internal/seal/pkcs11":      {[]string{"internal/seal", "internal/secret"}, "an auto seal's wrapper: it implements seal.Wrapper and knows nothing above the seal"},

	"internal/token":     {join(layer0, layer1), "layer 3 uses layers 0-1"},
	"internal/identity":  {join(layer0, layer1), "layer 3 uses layers 0-1; policies reach it through a templater function"},
	"internal/lease":     {join(layer0, layer1), "layer 3 uses layers 0-1; revocation goes through an interface"},
	"internal/audit":     {join(layer0, layer1), "layer 3 uses layers 0-1"},
	"internal/jobs":      {join(layer0, layer1), "layer 3 uses layers 0-1"},
	"internal/events":    {join(layer0, layer1), "layer 3: the event bus matches event types and delivers; who may see an event is the core's decision"},
	"internal/mount":     {join(layer0, layer1, []string{"internal/barrier"}), "the mount table hands out barrier views"},
	"internal/audit/...": {join([]string{"internal/audit"}, layer0), "audit devices see only the audit package"},

	"internal/secrets/...":               {[]string{"internal/logical", "internal/framework", "internal/secret", "internal/clock", "internal/glob", "internal/jsonenc", "internal/secrets/..."}, "engines see storage only through logical.Storage"},
	"internal/secrets/database/dbplugin": {[]string{"internal/secret"}, "the contract between the database engine and its drivers"},
	"internal/secrets/database/postgres": {[]string{"internal/secret", "internal/secrets/database/dbplugin"}, "a database driver sees only its contract"},
	"internal/auth/...":                  {[]string{"internal/logical", "internal/framework", "internal/secret", "internal/clock", "internal/glob", "internal/jwks", "internal/auth/..."}, "auth methods see storage only through logical.Storage; they share key sets (jwks) and globs"},

	"internal/core": {join(layer0, layer1, []string{"internal/storage/...", "internal/barrier", "internal/seal", "internal/token", "internal/identity", "internal/lease", "internal/audit", "internal/jobs", "internal/mount", "internal/events"}), "core composes layers 0-3 and receives engines as factories"},

	"internal/httpapi": {[]string{"internal/core", "internal/logical", "api", "internal/ui", "internal/secret", "internal/jsonenc"}, "the HTTP layer talks to core through its own interface"},
	"internal/ui":      {[]string{"api"}, "the UI uses only the public API"},
	"internal/metrics": {[]string{"internal/core", "internal/logical", "internal/storage"}, "metrics observe core and storage from outside; core and httpapi see them through their own interfaces"},

	"internal/server":          {[]string{"..."}, "the one wiring point"},
	"internal/cli":             {[]string{"api", "internal/secret", "internal/logging", "internal/auditlog", "internal/cli/...", "internal/agent/auth", "internal/agent/child", "internal/agent/envexec", "internal/agent/lifetime", "internal/agent/secretenv", "internal/agent/watch"}, "the CLI reaches the server only over HTTP (and reads audit logs with auditlog); `vigil run` is a CLI command built on the agent's auto-auth, env injection, change events and process supervision, which use only the api client"},
	"internal/cli/...":         {[]string{"api", "internal/secret", "internal/logging", "internal/auditlog", "internal/cli/..."}, "the CLI reaches the server only over HTTP (and reads audit logs with auditlog)"},
	"internal/agent":           {[]string{"api", "internal/config", "internal/secret", "internal/logging", "internal/clock", "internal/agent/..."}, "the agent reaches the server only over HTTP; its renewal timers take a clock (a leaf) so tests can move time"},
	"internal/agent/...":       {[]string{"api", "internal/config", "internal/secret", "internal/logging", "internal/clock", "internal/agent/..."}, "the agent reaches the server only over HTTP; its renewal timers take a clock (a leaf) so tests can move time"},
	"internal/agent/child":     {nil, "process supervision knows nothing of secrets or the server"},
	"internal/agent/lifetime":  {[]string{"api", "internal/clock"}, "renewal and retry timing over the api client's errors; it knows nothing of what it renews"},
	"internal/agent/auth":      {[]string{"api", "internal/secret", "internal/clock", "internal/agent/lifetime"}, "auto-auth reaches the server only through the api client; its credential polling takes a clock (a leaf) so tests can move time"},
	"internal/agent/proxy":     {[]string{"api", "internal/config", "internal/secret", "internal/clock", "internal/agent/lifetime"}, "the API proxy and lease cache reach the server only over HTTP (forwarding, and renewals through the api client)"},
	"internal/agent/secretenv": {[]string{"api", "internal/secret", "internal/clock", "internal/agent/lifetime", "internal/agent/kvpath"}, "env injection reads secrets only through the api client"},
	"internal/agent/watch":     {[]string{"api", "internal/clock", "internal/agent/lifetime", "internal/agent/secretenv"}, "change events reach the server only through the api client; they know nothing of what the hints are for"},
	"internal/agent/kvpath":    {[]string{"api"}, "where a KV path is read is asked of the server through the api client"},
	"internal/agent/render":    {[]string{"api", "internal/config", "internal/secret", "internal/clock", "internal/agent/template", "internal/agent/source", "internal/agent/kvpath", "internal/agent/lifetime", "internal/agent/secretenv", "internal/agent/child"}, "the template runner reads secrets through the template source over the api client, and supervises its child through child"},
	"internal/archtest":        {[]string{"..."}, "this test"},
	"cmd/vigil":                {[]string{"..."}, "the binary"},
	"bench":                    {[]string{"..."}, "benchmarks"},
	"bench/...":                {[]string{"..."}, "benchmarks"},
	"tests/...":                {[]string{"..."}, "tests"},
	"internal/testcluster":     {[]string{"..."}, "test helper"},
	"internal/pgtest":          {nil, "test helper"},

	"internal/storage/storagetest": {[]string{"internal/storage"}, "test helper"},
	"internal/logical/logicaltest": {[]string{"internal/logical"}, "test helper"},
	"internal/jwks/jwkstest":       {nil, "test helper"},

	"internal/seal/pkcs11/softhsmtest": {nil, "test helper"},

	"internal/agent/template": {nil, "templates read secrets through a Source interface of their own, so the template language is pure and tested apart from the client"},
}

// forbiddenStd are standard packages a package must not import directly.
var forbiddenStd = map[string][]string{
	"internal/core": {"net/http"},
}

type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Imports    []string
	Deps       []string
	GoFiles    []string
	Standard   bool
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(&out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func rel(importPath string) (string, bool) {
	if importPath == module {
		return ".", true
	}
	return strings.CutPrefix(importPath, module+"/")
}

// match reports whether p matches pattern (exact, "x/..." subtree, or "...").
func match(pattern, p string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return pattern == p
}

func ruleFor(p string) (rule, bool) {
	if r, ok := rules[p]; ok {
		return r, true
	}
	// The most specific subtree rule wins.
	best, found := "", false
	for pat := range rules {
		if strings.HasSuffix(pat, "/...") && match(pat, p) && len(pat) > len(best) {
			best, found = pat, true
		}
	}
	return rules[best], found
}

func TestDependencyRules(t *testing.T) {
	pkgs := listPackages(t)
	if len(pkgs) < 5 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	for _, p := range pkgs {
		name, ok := rel(p.ImportPath)
		if !ok || len(p.GoFiles) == 0 {
			continue
		}
		r, ok := ruleFor(name)
		if !ok {
			t.Errorf("%s: no dependency rule; add it to internal/archtest/deps_test.go", name)
			continue
		}
		for _, imp := range p.Imports {
			dep, internal := rel(imp)
			if !internal {
				for _, bad := range forbiddenStd[name] {
					if imp == bad {
						t.Errorf("%s imports %s, which it must not (%s)", name, imp, r.reason)
					}
				}
				continue
			}
			allowed := slices.ContainsFunc(r.allow, func(a string) bool { return match(a, dep) })
			if !allowed {
				t.Errorf("%s imports %s: not allowed (%s)", name, dep, r.reason)
			}
		}
	}
}

// TestEnginesStayApart checks that a secrets engine or auth method imports
// no other one: only its own subpackages (secrets/database may import
// secrets/database/postgres, not secrets/kv).
func TestEnginesStayApart(t *testing.T) {
	root := func(p string) (string, bool) {
		for _, dir := range []string{"internal/secrets/", "internal/auth/"} {
			if rest, ok := strings.CutPrefix(p, dir); ok {
				name, _, _ := strings.Cut(rest, "/")
				return dir + name, true
			}
		}
		return "", false
	}
	for _, p := range listPackages(t) {
		name, ok := rel(p.ImportPath)
		if !ok {
			continue
		}
		own, ok := root(name)
		if !ok {
			continue
		}
		for _, imp := range p.Imports {
			dep, internal := rel(imp)
			if other, ok := root(dep); internal && ok && other != own {
				t.Errorf("%s imports %s: engines and auth methods never import one another", name, dep)
			}
		}
	}
}

// TestHelpersStayInTests checks that no production package can reach a
// test helper through any chain of imports.
func TestHelpersStayInTests(t *testing.T) {
	for _, p := range listPackages(t) {
		name, ok := rel(p.ImportPath)
		if !ok || slices.Contains(testHelpers, name) || strings.HasPrefix(name, "tests/") || name == "internal/archtest" {
			continue
		}
		for _, d := range p.Deps {
			dep, internal := rel(d)
			if internal && slices.Contains(testHelpers, dep) {
				t.Errorf("%s (production code) depends on test helper %s", name, dep)
			}
		}
	}
}

// leafThirdParty lists the only modules outside the standard library that
// some leaf packages may import, and why.
var leafThirdParty = map[string]struct {
	allow  []string
	reason string
}{
	"internal/glob": {nil, "pure string matching"},
	"internal/jwks": {[]string{"github.com/go-jose/go-jose/v4"}, "JWS and JWK handling is go-jose's; the rest is the standard library"},

	"internal/agent/template": {nil, "the template language is the standard library's text/template with functions of our own"},
}

// TestLeafThirdParty keeps the leaves of leafThirdParty to their modules.
func TestLeafThirdParty(t *testing.T) {
	for _, p := range listPackages(t) {
		name, ok := rel(p.ImportPath)
		leaf, listed := leafThirdParty[name]
		if !ok || !listed {
			continue
		}
		for _, imp := range p.Imports {
			if _, internal := rel(imp); internal || !strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				continue // internal imports are TestDependencyRules'; this is the standard library
			}
			if !slices.ContainsFunc(leaf.allow, func(m string) bool { return imp == m || strings.HasPrefix(imp, m+"/") }) {
				t.Errorf("%s imports %s: only %v outside the standard library (%s)", name, imp, leaf.allow, leaf.reason)
			}
		}
	}
}

// TestAPIIsStdlibOnly keeps the public client free of third-party modules.
func TestAPIIsStdlibOnly(t *testing.T) {
	for _, p := range listPackages(t) {
		if p.ImportPath != module+"/api" {
			continue
		}
		for _, imp := range p.Imports {
			if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
				t.Errorf("api imports %s; it must use the standard library only", imp)
			}
		}
	}
}

// TestPackageDocs fails for a package without a package doc comment.
func TestPackageDocs(t *testing.T) {
	for _, p := range listPackages(t) {
		name, ok := rel(p.ImportPath)
		if !ok || len(p.GoFiles) == 0 {
			continue
		}
		if strings.TrimSpace(p.Doc) == "" {
			t.Errorf("%s has no package doc comment", name)
		}
	}
}
