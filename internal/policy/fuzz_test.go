package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

var fuzzOps = []Operation{ReadOperation, ListOperation, CreateOperation, UpdateOperation, DeleteOperation, PatchOperation, ScanOperation}

// naiveMatch is an independent, simple reading of the matching rules:
// exact, trailing-'*' prefix, and "+" segments (with an optional trailing
// '*'). The fuzzer checks the compiled ACL against it.
func naiveMatch(pattern, path string) bool {
	stem, prefix := strings.CutSuffix(pattern, "*")
	psegs := strings.Split(stem, "/")
	if !slices.Contains(psegs, "+") {
		if prefix {
			return strings.HasPrefix(path, stem)
		}
		return path == pattern
	}
	segs := strings.Split(path, "/")
	if len(segs) < len(psegs) || !prefix && len(segs) != len(psegs) {
		return false
	}
	for i, ps := range psegs {
		switch {
		case ps == "+":
		case prefix && i == len(psegs)-1:
			if !strings.HasPrefix(segs[i], ps) {
				return false
			}
		case segs[i] != ps:
			return false
		}
	}
	return true
}

func isExactPattern(pattern string) bool {
	if strings.HasSuffix(pattern, "*") {
		return false
	}
	return !slices.Contains(strings.Split(pattern, "/"), "+")
}

// fuzzPaths derives request paths from the policy's patterns and the
// fuzzer's path, so that evaluation hits rules often.
func fuzzPaths(p *Policy, reqPath string) []string {
	paths := []string{reqPath, reqPath + "/", "/" + reqPath}
	seg, _, _ := strings.Cut(reqPath, "/")
	for i, r := range p.Rules {
		if i == 12 {
			break
		}
		stem := strings.TrimSuffix(r.Path, "*")
		filled := strings.ReplaceAll(stem, "+", seg)
		paths = append(paths,
			r.Path,
			stem,
			stem+"/",
			stem+reqPath,
			strings.TrimSuffix(stem, "/"),
			filled,
			filled+reqPath,
			filled+"/",
		)
	}
	return paths
}

// FuzzParse parses arbitrary policy text. A text that parses must compile,
// and evaluating the ACL must never grant what no rule of the policy
// grants: an allowed request names the rule that decided, that rule is in
// the policy, matches the path (by an independent matcher), is not a deny
// rule and holds the capability needed (and sudo when asked). An exact
// deny rule for a path always denies it, and an exact rule granting the
// capability without constraints always allows it.
func FuzzParse(f *testing.F) {
	seeds := []struct {
		text, path string
		op         uint8
	}{
		{DefaultText, "cubbyhole/x", 0},
		{ResponseWrappingText, "cubbyhole/response", 2},
		{`path "secret/*" { capabilities = ["read"] }
path "secret/admins" { capabilities = ["deny"] }`, "secret/admins", 0},
		{`path "secret/+/foo/*" { capabilities = ["read", "list"] }
path "secret/a/*" { capabilities = ["deny"] }
path "secret/+" { capabilities = ["list"] }`, "secret/a/foo/b", 1},
		{`path "a/+/+/b" { capabilities = ["update", "sudo"] }
path "a/+/x/+" { capabilities = ["create"] }
path "a/x*" { policy = "write" }`, "a/x/x/b", 3},
		{`path "/s/*" {
  capabilities = ["create", "update"]
  allowed_parameters = { "k" = ["v*", 1] "*" = [] }
  denied_parameters = { "z" = [] }
  required_parameters = ["k"]
  min_wrapping_ttl = "1m"
  max_wrapping_ttl = 3600
}`, "s/q", 3},
		{`{"path": {"kv/*": {"capabilities": ["read", "list"]}, "kv/+/x": {"policy": "deny"}}}`, "kv/a/x", 0},
		{`path "kv/{{identity.entity.id}}/*" { capabilities = ["read"] }`, "kv/e/x", 0},
		{`path "+" { capabilities = ["list"] } path "*" { capabilities = ["scan"] }`, "", 6},
		{`path "x//+/" { capabilities = ["list"] }`, "x//a/", 1},
		{`path "secret/zip-*" { capabilities = ["read"] } path "secret/zip-zap" { capabilities = ["deny"] }`, "secret/zip-zap/zong", 0},
		{"path \"a\" {\n capabilities = [\"read\"]\n}\npath \"a\" { capabilities = [\"deny\"] }", "a", 0},
		{`path "a+*" {}`, "a", 0},
		{`path "a" { capabilities = ["root"] }`, "a", 0},
		{`name = "x"`, "", 0},
	}
	for _, s := range seeds {
		f.Add(s.text, s.path, s.op)
	}
	f.Fuzz(func(t *testing.T, text, reqPath string, opSel uint8) {
		p, err := Parse("fuzz", text)
		if err != nil {
			if !errors.Is(err, ErrParse) {
				t.Fatalf("Parse error %v does not wrap ErrParse", err)
			}
			return
		}
		if p.Raw != text {
			t.Fatal("Raw differs from the text")
		}
		a, err := Compile(p)
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		rules := map[string]*PathRule{}
		for i := range p.Rules {
			r := &p.Rules[i]
			if rules[r.Path] != nil {
				t.Fatalf("path %q appears twice after parsing", r.Path)
			}
			rules[r.Path] = r
		}
		ops := fuzzOps
		if opSel&0x80 != 0 {
			ops = []Operation{fuzzOps[int(opSel&0x7f)%len(fuzzOps)]}
		}
		for _, path := range fuzzPaths(p, reqPath) {
			trimmed := strings.TrimLeft(path, "/")
			for _, op := range ops {
				for _, sudo := range []bool{false, true} {
					checkDecision(t, a, rules, op, path, trimmed, sudo)
				}
			}
			checkCapabilities(t, a, rules, path, trimmed)
		}
	})
}

func checkDecision(t *testing.T, a *ACL, rules map[string]*PathRule, op Operation, path, trimmed string, sudo bool) {
	t.Helper()
	need := op.Capability()
	list := op == ListOperation || op == ScanOperation
	res := a.Allowed(Request{Operation: op, Path: path, Sudo: sudo})
	matches := func(pattern string) bool {
		if naiveMatch(pattern, trimmed) {
			return true
		}
		if t, ok := strings.CutSuffix(trimmed, "/"); ok && list {
			return naiveMatch(pattern, t)
		}
		return false
	}
	if res.Rule != "" {
		r := rules[res.Rule]
		switch {
		case r == nil:
			t.Fatalf("%s %q decided by %q, which is not in the policy", op, path, res.Rule)
		case r.Templated:
			t.Fatalf("%s %q decided by unresolved templated rule %q", op, path, res.Rule)
		case !matches(r.Path):
			t.Fatalf("%s %q decided by %q, which does not match it", op, path, res.Rule)
		case res.Capabilities != r.Capabilities:
			t.Fatalf("%s %q: result capabilities %v, rule has %v", op, path, res.Capabilities, r.Capabilities)
		}
	}
	if res.Allowed {
		r := rules[res.Rule]
		if r == nil {
			t.Fatalf("%s %q allowed without a rule", op, path)
		}
		if r.Capabilities&Deny != 0 || r.Capabilities&need == 0 || sudo && r.Capabilities&Sudo == 0 {
			t.Fatalf("%s %q (sudo=%v) allowed by %q granting only %v", op, path, sudo, r.Path, r.Capabilities)
		}
	}
	// An exact rule for the path itself always decides.
	if r := rules[trimmed]; r != nil && !r.Templated && isExactPattern(r.Path) {
		if res.Rule != r.Path {
			t.Fatalf("%s %q decided by %q, not by its exact rule", op, path, res.Rule)
		}
		if r.Capabilities&Deny != 0 && res.Allowed {
			t.Fatalf("%s %q allowed despite its exact deny rule", op, path)
		}
		unconstrained := len(r.RequiredParameters) == 0 && r.MinWrappingTTL == 0 && r.MaxWrappingTTL == 0
		grants := r.Capabilities&Deny == 0 && r.Capabilities&need != 0 && (!sudo || r.Capabilities&Sudo != 0)
		if grants && unconstrained && !res.Allowed {
			t.Fatalf("%s %q denied (%s) although its exact rule grants it", op, path, res.Reason)
		}
	}
	if !res.Allowed && res.Reason == "" {
		t.Fatalf("%s %q denied without a reason", op, path)
	}
}

func checkCapabilities(t *testing.T, a *ACL, rules map[string]*PathRule, path, trimmed string) {
	t.Helper()
	got := a.Capabilities(path)
	if slices.Equal(got, []string{"deny"}) {
		return
	}
	for _, r := range rules {
		if r.Templated {
			continue
		}
		m := naiveMatch(r.Path, trimmed)
		if t, ok := strings.CutSuffix(trimmed, "/"); ok && !m {
			m = naiveMatch(r.Path, t)
		}
		if m && slices.Equal(r.Capabilities.Strings(), got) {
			return
		}
	}
	t.Fatalf("Capabilities(%q) = %v, which no matching rule grants", path, got)
}

// refRule is a reference implementation of rule selection, written
// straight from the spec without the tree: it finds the exact rule, else
// sorts all candidates by the five tie-breakers.
func refRule(rules []PathRule, path string, list bool) string {
	exact := func(p string) string {
		for _, r := range rules {
			if isExactPattern(r.Path) && r.Path == p {
				return r.Path
			}
		}
		return ""
	}
	type cand struct {
		pattern, stem       string
		firstWild, plusSegs int
		prefix              bool
	}
	describe := func(pattern string) cand {
		c := cand{pattern: pattern}
		c.stem, c.prefix = strings.CutSuffix(pattern, "*")
		c.firstWild = len(c.stem)
		off := 0
		for _, s := range strings.Split(c.stem, "/") {
			if s == "+" {
				if c.plusSegs == 0 {
					c.firstWild = off
				}
				c.plusSegs++
			}
			off += len(s) + 1
		}
		return c
	}
	nonExact := func(p string) string {
		var cands []cand
		var longest *cand
		for _, r := range rules {
			if isExactPattern(r.Path) {
				continue
			}
			c := describe(r.Path)
			if c.plusSegs == 0 {
				if strings.HasPrefix(p, c.stem) && (longest == nil || len(c.stem) > len(longest.stem)) {
					longest = &c
				}
				continue
			}
			if naiveMatch(r.Path, p) {
				cands = append(cands, c)
			}
		}
		if longest != nil {
			cands = append(cands, *longest)
		}
		if len(cands) == 0 {
			return ""
		}
		// Highest priority first.
		slices.SortFunc(cands, func(x, y cand) int {
			if x.firstWild != y.firstWild {
				return y.firstWild - x.firstWild
			}
			if x.prefix != y.prefix {
				if x.prefix {
					return 1
				}
				return -1
			}
			if x.plusSegs != y.plusSegs {
				return x.plusSegs - y.plusSegs
			}
			if len(x.stem) != len(y.stem) {
				return len(y.stem) - len(x.stem)
			}
			return strings.Compare(y.stem, x.stem)
		})
		return cands[0].pattern
	}
	if e := exact(path); e != "" {
		return e
	}
	if t, ok := strings.CutSuffix(path, "/"); ok && list {
		if e := exact(t); e != "" {
			return e
		}
		if r := nonExact(t); r != "" {
			return r
		}
	}
	return nonExact(path)
}

// FuzzACL builds policies from a small alphabet ("a", "b", "/", "+",
// "*"), so that rules overlap and compete, and checks every decision
// against [refRule] and the capabilities of the rule it picks.
func FuzzACL(f *testing.F) {
	f.Add([]byte{3, 3, 2, 2, 4, 1, 2, 0, 0, 8, 1, 2, 0, 2, 3, 0, 2, 1, 0}, false)
	f.Add([]byte{4, 4, 0, 2, 3, 4, 3, 2, 0, 2, 3, 2, 2, 0, 2, 3, 2, 4, 5, 2, 0, 2, 1, 2, 0, 2, 1}, true)
	f.Add([]byte{2, 1, 4, 1, 3, 0, 2, 3, 8, 0, 2, 0}, true)
	f.Fuzz(func(t *testing.T, data []byte, list bool) {
		const alphabet = "ab/+*"
		next := func() (byte, bool) {
			if len(data) == 0 {
				return 0, false
			}
			b := data[0]
			data = data[1:]
			return b, true
		}
		n, _ := next()
		var text strings.Builder
		for range int(n%8) + 1 {
			l, ok := next()
			if !ok {
				break
			}
			var pat []byte
			for range int(l % 7) {
				b, _ := next()
				pat = append(pat, alphabet[int(b)%len(alphabet)])
			}
			c, _ := next()
			var caps []string
			for i, name := range []string{"read", "list", "update", "deny", "create", "sudo", "scan", "delete"} {
				if c&(1<<i) != 0 {
					caps = append(caps, `"`+name+`"`)
				}
			}
			fmt.Fprintf(&text, "path %q { capabilities = [%s] }\n", string(pat), strings.Join(caps, ", "))
		}
		var path []byte
		for _, b := range data {
			path = append(path, alphabet[int(b)%len(alphabet)])
		}
		p, err := Parse("fuzz", text.String())
		if err != nil {
			if !strings.Contains(text.String(), "+*") && !strings.Contains(text.String(), `path "" `) && !strings.Contains(text.String(), `path "/" `) {
				t.Fatalf("Parse: %v\n%s", err, text.String())
			}
			return
		}
		a, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		byPath := map[string]Capability{}
		for _, r := range p.Rules {
			byPath[r.Path] = r.Capabilities
		}
		for _, rp := range []string{string(path), string(path) + "/"} {
			for _, op := range fuzzOps {
				isList := op == ListOperation || op == ScanOperation
				if isList != list {
					continue
				}
				res := a.Allowed(Request{Operation: op, Path: rp})
				want := refRule(p.Rules, strings.TrimLeft(rp, "/"), isList)
				if res.Rule != want {
					t.Fatalf("%s %q: decided by %q, reference says %q\n%s", op, rp, res.Rule, want, text.String())
				}
				caps := byPath[want]
				wantAllowed := want != "" && caps&Deny == 0 && caps&op.Capability() != 0
				if res.Allowed != wantAllowed {
					t.Fatalf("%s %q: Allowed = %v, want %v (rule %q %v)\n%s", op, rp, res.Allowed, wantAllowed, want, caps, text.String())
				}
			}
		}
	})
}
