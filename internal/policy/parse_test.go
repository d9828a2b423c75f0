package policy

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustParse1(t *testing.T, text string) *Policy {
	t.Helper()
	p, err := Parse("test", text)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, text)
	}
	return p
}

func TestParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		text string
		want []PathRule
	}{
		{
			name: "blocks",
			text: `
path "secret/data/app/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
}
path "transit/encrypt/+" { capabilities = ["update"] }`,
			want: []PathRule{
				{Path: "secret/data/app/*", Line: 2, Capabilities: Create | Read | Update | Patch | Delete | List},
				{Path: "transit/encrypt/+", Line: 5, Capabilities: Update},
			},
		},
		{
			name: "one-line blocks on one line",
			text: `path "a" { capabilities = ["read"] } path "b" { capabilities = ["list"] }`,
			want: []PathRule{
				{Path: "a", Line: 1, Capabilities: Read},
				{Path: "b", Line: 1, Capabilities: List},
			},
		},
		{
			name: "leading slash stripped",
			text: `path "/secret/x" { capabilities = ["read"] }`,
			want: []PathRule{{Path: "secret/x", Line: 1, Capabilities: Read}},
		},
		{
			name: "empty block grants nothing",
			text: `path "a" {}`,
			want: []PathRule{{Path: "a", Line: 1}},
		},
		{
			name: "empty text",
			text: ``,
			want: nil,
		},
		{
			name: "every capability",
			text: `path "a" { capabilities = ["create","read","update","patch","delete","list","sudo","subscribe","recover","scan"] }`,
			want: []PathRule{{Path: "a", Line: 1, Capabilities: Granting}},
		},
		{
			name: "deny overrides the rest of its block and drops constraints",
			text: `path "a" {
  capabilities = ["read", "deny", "sudo"]
  allowed_parameters = { "x" = [] }
  required_parameters = ["y"]
  max_wrapping_ttl = 60
}`,
			want: []PathRule{{Path: "a", Line: 1, Capabilities: Deny}},
		},
		{
			name: "legacy deny",
			text: `path "a" { policy = "deny" }`,
			want: []PathRule{{Path: "a", Line: 1, Capabilities: Deny}},
		},
		{
			name: "legacy read",
			text: `path "a" { policy = "read" }`,
			want: []PathRule{{Path: "a", Line: 1, Capabilities: Read | List}},
		},
		{
			name: "legacy write has no patch",
			text: `path "a" { policy = "write" }`,
			want: []PathRule{{Path: "a", Line: 1, Capabilities: Create | Read | Update | Delete | List}},
		},
		{
			name: "legacy sudo",
			text: `path "a" { policy = "sudo" }`,
			want: []PathRule{{Path: "a", Line: 1, Capabilities: Create | Read | Update | Delete | List | Sudo}},
		},
		{
			name: "legacy policy adds to capabilities",
			text: `path "a" {
  policy       = "read"
  capabilities = ["patch"]
}`,
			want: []PathRule{{Path: "a", Line: 1, Capabilities: Read | List | Patch}},
		},
		{
			name: "legacy deny wins over capabilities",
			text: `path "a" {
  policy       = "deny"
  capabilities = ["read"]
}`,
			want: []PathRule{{Path: "a", Line: 1, Capabilities: Deny}},
		},
		{
			name: "parameters",
			text: `path "a" {
  capabilities        = ["update"]
  allowed_parameters  = { "Name" = ["x*", 5, 1.5, true] "*" = [] }
  denied_parameters   = { "POLICIES" = ["root"] }
  required_parameters = ["Name", "name", "ttl"]
}`,
			want: []PathRule{{
				Path: "a", Line: 1, Capabilities: Update,
				AllowedParameters:  map[string][]string{"name": {"x*", "5", "1.5", "true"}, "*": {}},
				DeniedParameters:   map[string][]string{"policies": {"root"}},
				RequiredParameters: []string{"name", "ttl"},
			}},
		},
		{
			name: "parameter block form",
			text: `path "a" {
  capabilities = ["update"]
  denied_parameters { x = [] }
}`,
			want: []PathRule{{
				Path: "a", Line: 1, Capabilities: Update,
				DeniedParameters: map[string][]string{"x": {}},
			}},
		},
		{
			name: "two spellings of a parameter merge",
			text: `path "a" {
  capabilities = ["update"]
  allowed_parameters = { "x" = ["1"] "X" = ["2"] "y" = ["1"] "Y" = [] }
}`,
			want: []PathRule{{
				Path: "a", Line: 1, Capabilities: Update,
				AllowedParameters: map[string][]string{"x": {"1", "2"}, "y": {}},
			}},
		},
		{
			name: "wrapping ttls",
			text: `path "a" {
  capabilities     = ["read"]
  min_wrapping_ttl = 60
  max_wrapping_ttl = "1h"
}
path "b" {
  capabilities     = ["read"]
  min_wrapping_ttl = "300"
  max_wrapping_ttl = "2d"
}
path "c" {
  capabilities     = ["read"]
  max_wrapping_ttl = 90.0
}`,
			want: []PathRule{
				{Path: "a", Line: 1, Capabilities: Read, MinWrappingTTL: time.Minute, MaxWrappingTTL: time.Hour},
				{Path: "b", Line: 6, Capabilities: Read, MinWrappingTTL: 5 * time.Minute, MaxWrappingTTL: 48 * time.Hour},
				{Path: "c", Line: 11, Capabilities: Read, MaxWrappingTTL: 90 * time.Second},
			},
		},
		{
			name: "mfa kept, control group accepted, comment kept, top-level name ignored",
			text: `name = "ignored"
path "a" {
  capabilities = ["read"]
  mfa_methods  = ["totp"]
  comment      = "for the app"
  control_group = {
    factor "ops" {
      identity { group_names = ["ops"] approvals = 1 }
    }
  }
}`,
			want: []PathRule{{Path: "a", Line: 2, Capabilities: Read, MFAMethods: []string{"totp"}, Comment: "for the app"}},
		},
		{
			name: "templated",
			text: `path "secret/data/{{identity.entity.id}}/*" { capabilities = ["read"] }
path "kv/{{ identity.entity.metadata.team }}/x" { capabilities = ["read"] }`,
			want: []PathRule{
				{Path: "secret/data/{{identity.entity.id}}/*", Line: 1, Capabilities: Read, Templated: true},
				{Path: "kv/{{ identity.entity.metadata.team }}/x", Line: 2, Capabilities: Read, Templated: true},
			},
		},
		{
			name: "literal star inside a path",
			text: `path "secret/a*b" { capabilities = ["read"] }`,
			want: []PathRule{{Path: "secret/a*b", Line: 1, Capabilities: Read}},
		},
		{
			name: "repeated path merged in place",
			text: `path "a" { capabilities = ["read"] }
path "b" { capabilities = ["read"] }
path "a" { capabilities = ["list"] }`,
			want: []PathRule{
				{Path: "a", Line: 1, Capabilities: Read | List},
				{Path: "b", Line: 2, Capabilities: Read},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := mustParse1(t, tc.text)
			if !reflect.DeepEqual(p.Rules, tc.want) {
				t.Errorf("rules:\n got %+v\nwant %+v", p.Rules, tc.want)
			}
			if p.Raw != tc.text {
				t.Error("Raw is not the submitted text")
			}
			templated := false
			for _, r := range tc.want {
				templated = templated || r.Templated
			}
			if p.Templated != templated {
				t.Errorf("Templated = %v, want %v", p.Templated, templated)
			}
		})
	}
}

func TestParseName(t *testing.T) {
	t.Parallel()
	p, err := Parse("  My-Policy ", `path "a" { capabilities = ["read"] }`)
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "my-policy" {
		t.Errorf("Name = %q", p.Name)
	}
	cases := []struct {
		name    string
		wantErr error
	}{
		{"", ErrInvalidName},
		{"   ", ErrInvalidName},
		{"a/b", ErrInvalidName},
		{"a\nb", ErrInvalidName},
		{"root", ErrImmutable},
		{" ROOT ", ErrImmutable},
	}
	for _, tc := range cases {
		if _, err := Parse(tc.name, `path "a" {}`); !errors.Is(err, tc.wantErr) {
			t.Errorf("Parse(%q): err = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	if _, err := Parse(DefaultName, DefaultText); err != nil {
		t.Errorf("default: %v", err)
	}
	if _, err := Parse(ResponseWrappingName, ResponseWrappingText); err != nil {
		t.Errorf("response-wrapping: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		text     string
		wantLine int      // 0: do not check
		wantMsg  []string // substrings of the error
	}{
		{"unknown top-level key", "path \"a\" {}\nfoo = 1", 2, []string{`unknown key "foo"`}},
		{"unknown path key", "path \"a\" {\n  capabilities = [\"read\"]\n  pagination_limit = 5\n}", 3, []string{`path "a"`, `unknown key "pagination_limit"`}},
		{"unknown key in JSON", `{"path": {"a": {"capabilities": ["read"], "bogus": 1}}}`, 0, []string{`unknown key "bogus"`}},
		{"bad capability", "path \"a\" {\n capabilities = [\"read\", \"write\"]\n}", 2, []string{`invalid capability "write"`}},
		{"root capability", `path "a" { capabilities = ["root"] }`, 1, []string{`"root" cannot be granted`}},
		{"capabilities not a list", `path "a" { capabilities = "read" }`, 1, []string{"list of strings"}},
		{"capability not a string", `path "a" { capabilities = [1] }`, 1, []string{"list of strings"}},
		{"empty path", `path "" { capabilities = ["read"] }`, 1, []string{"empty"}},
		{"slash path", `path "/" { capabilities = ["read"] }`, 1, []string{"empty"}},
		{"plus star", `path "secret/+*" { capabilities = ["read"] }`, 1, []string{"'+*' is forbidden"}},
		{"plus star mid segment", `path "secret/a+*" { capabilities = ["read"] }`, 1, []string{"'+*' is forbidden"}},
		{"bad legacy policy", `path "a" { policy = "admin" }`, 1, []string{`invalid policy "admin"`}},
		{"legacy policy not a string", `path "a" { policy = ["read"] }`, 1, []string{"must be a string"}},
		{"bad duration string", `path "a" { max_wrapping_ttl = "soon" }`, 1, []string{"max_wrapping_ttl", `invalid duration "soon"`}},
		{"negative duration", `path "a" { min_wrapping_ttl = -5 }`, 1, []string{"negative"}},
		{"negative duration string", `path "a" { min_wrapping_ttl = "-1h" }`, 1, []string{"negative"}},
		{"fractional seconds", `path "a" { min_wrapping_ttl = 1.5 }`, 1, []string{"whole seconds"}},
		{"duration overflow", `path "a" { min_wrapping_ttl = 99999999999999 }`, 1, []string{"out of range"}},
		{"duration not scalar", `path "a" { min_wrapping_ttl = ["1h"] }`, 1, []string{"must be a duration"}},
		{"max below min", `path "a" { min_wrapping_ttl = "2h" max_wrapping_ttl = "1h" }`, 1, []string{"max_wrapping_ttl cannot be less than min_wrapping_ttl"}},
		{"parameters not an object", `path "a" { allowed_parameters = ["x"] }`, 1, []string{"allowed_parameters", "object"}},
		{"parameter values not a list", `path "a" { denied_parameters = { "x" = "y" } }`, 1, []string{`parameter "x"`, "list of values"}},
		{"nested parameter values", `path "a" { allowed_parameters = { "x" = [["a", "b"]] } }`, 1, []string{"strings, numbers or booleans"}},
		{"object parameter values", `path "a" { allowed_parameters = { "x" = [{ y = 1 }] } }`, 1, []string{"strings, numbers or booleans"}},
		{"required not a list", `path "a" { required_parameters = "x" }`, 1, []string{"required_parameters"}},
		{"control group not a block", `path "a" { control_group = "x" }`, 1, []string{"control_group", "block"}},
		{"comment not a string", `path "a" { comment = 1 }`, 1, []string{"comment"}},
		{"duplicate key HCL", "path \"a\" {\n capabilities = [\"read\"]\n capabilities = [\"list\"]\n}", 3, []string{"already set"}},
		{"duplicate key JSON", `{"path": {"a": {"capabilities": ["read"], "capabilities": ["list"]}}}`, 0, []string{`"capabilities" is set twice`}},
		{"syntax error", "path \"a\" {\n  capabilities = [\"read\"\n}", 3, []string{"syntax error"}},
		{"json syntax error", "{\"path\": {\"a\": \n}", 2, []string{"syntax error"}},
		{"json trailing data", `{"path": {}} x`, 0, []string{"syntax error"}},
		{"json boolean in a list", `{"path": {"a": {"allowed_parameters": {"x": [true]}}}}`, 0, []string{"booleans inside lists"}},
		{"json nested list", `{"path": {"a": {"allowed_parameters": {"x": [["a"]]}}}}`, 0, []string{"nested lists"}},
		{"json null in a list", `{"path": {"a": {"capabilities": [null]}}}`, 0, []string{"null"}},
		{"path without label", `path { capabilities = ["read"] }`, 1, []string{`path "capabilities" must be a block`}},
		{"path as string", `path = "a"`, 1, []string{`"path" must be a block`}},
		{"unclosed template", `path "a/{{identity.entity.id" { capabilities = ["read"] }`, 1, []string{"not closed"}},
		{"stray template close", `path "a/}}" { capabilities = ["read"] }`, 1, []string{"without"}},
		{"unknown template", `path "a/{{identity.token.id}}" { capabilities = ["read"] }`, 1, []string{`unsupported template "identity.token.id"`}},
		{"empty template", `path "a/{{ }}" { capabilities = ["read"] }`, 1, []string{"unsupported template"}},
		{"nested template", `path "a/{{ {{identity.entity.id}} }}" { capabilities = ["read"] }`, 1, []string{"nested"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("test", tc.text)
			if err == nil {
				t.Fatalf("Parse succeeded:\n%s", tc.text)
			}
			if !errors.Is(err, ErrParse) {
				t.Errorf("err %v does not wrap ErrParse", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("err %T is not a *ParseError", err)
			}
			if tc.wantLine != 0 && pe.Line != tc.wantLine {
				t.Errorf("line = %d, want %d (%v)", pe.Line, tc.wantLine, err)
			}
			if !strings.HasPrefix(err.Error(), "failed to parse policy: ") {
				t.Errorf("err = %q, want the Vault prefix", err)
			}
			for _, m := range tc.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("err = %q, want it to contain %q", err, m)
				}
			}
		})
	}
}

// TestParseJSONEqualsHCL checks that a policy's JSON form parses to the
// same rules as its HCL form (lines aside: JSON has none).
func TestParseJSONEqualsHCL(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, hcl, json string
	}{
		{
			"simple",
			`path "secret/*" { capabilities = ["read", "list"] }`,
			`{"path": {"secret/*": {"capabilities": ["read", "list"]}}}`,
		},
		{
			"several paths",
			`path "a" { capabilities = ["read"] }
path "b/+/c" { capabilities = ["update", "sudo"] }
path "d" { policy = "write" }`,
			`{"path": {"a": {"capabilities": ["read"]}, "b/+/c": {"capabilities": ["update", "sudo"]}, "d": {"policy": "write"}}}`,
		},
		{
			"list of path objects",
			`path "a" { capabilities = ["read"] }
path "b" { capabilities = ["list"] }`,
			`{"path": [{"a": {"capabilities": ["read"]}}, {"b": {"capabilities": ["list"]}}]}`,
		},
		{
			"everything",
			`path "secret/data/{{identity.entity.id}}/*" {
  capabilities        = ["create", "update"]
  allowed_parameters  = { "ttl" = ["1h", "2h"] "*" = [] "n" = [1, true] }
  denied_parameters   = { "policies" = [] }
  required_parameters = ["ttl"]
  min_wrapping_ttl    = "1m"
  max_wrapping_ttl    = 3600
  mfa_methods         = ["m1"]
  comment             = "c"
}`,
			`{
  "path": {
    "secret/data/{{identity.entity.id}}/*": {
      "capabilities": ["create", "update"],
      "allowed_parameters": {"ttl": ["1h", "2h"], "*": [], "n": [1, "true"]},
      "denied_parameters": {"policies": []},
      "required_parameters": ["ttl"],
      "min_wrapping_ttl": "1m",
      "max_wrapping_ttl": 3600,
      "mfa_methods": ["m1"],
      "comment": "c"
    }
  }
}`,
		},
		{
			// The JSON parser splits a block whose every value is an
			// object into several items; the result must not change.
			"only object values",
			`path "a" {
  allowed_parameters = { "x" = [] }
  denied_parameters  = { "y" = [] }
}`,
			`{"path": {"a": {"allowed_parameters": {"x": []}, "denied_parameters": {"y": []}}}}`,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h, j := mustParse1(t, tc.hcl), mustParse1(t, tc.json)
			for i := range h.Rules {
				h.Rules[i].Line = 0
			}
			for i := range j.Rules {
				j.Rules[i].Line = 0
			}
			if !reflect.DeepEqual(h.Rules, j.Rules) {
				t.Errorf("HCL and JSON differ:\nHCL  %+v\nJSON %+v", h.Rules, j.Rules)
			}
			if h.Templated != j.Templated {
				t.Error("Templated differs")
			}
		})
	}
}

func TestNormalizeName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"Admin": "admin", " ops-team ": "ops-team", "a.b_c": "a.b_c"} {
		got, err := NormalizeName(in)
		if err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
