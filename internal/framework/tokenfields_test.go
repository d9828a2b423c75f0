package framework

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// tokenBody decodes a JSON body as the HTTP layer does: numbers as
// json.Number.
func tokenBody(t *testing.T, s string) map[string]any {
	t.Helper()
	if s == "" {
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return m
}

// parseTokenRequest runs body through a path declaring fields (all the
// token fields when nil) and a handler that applies it to start.
func parseTokenRequest(t *testing.T, fields map[string]*FieldSchema, start TokenParams, body string) (TokenParams, []string, error) {
	t.Helper()
	if fields == nil {
		fields = TokenFields()
	}
	got := start
	var warnings []string
	h := func(_ context.Context, _ *logical.Request, d *FieldData) (*logical.Response, error) {
		w, err := got.Parse(d)
		warnings = w
		return nil, err
	}
	b, err := NewBackend("test", []*Path{{
		Pattern:    "role",
		Fields:     fields,
		Operations: map[logical.Operation]OperationHandler{logical.UpdateOperation: {Handler: h}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.HandleRequest(t.Context(), &logical.Request{Operation: logical.UpdateOperation, Path: "role", Data: tokenBody(t, body)})
	return got, warnings, err
}

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestTokenParamsParse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		start    TokenParams
		body     string
		want     TokenParams
		warnings []string
		wantErr  string // substring of the 400 message; "" for success
	}{
		{name: "empty", body: `{}`, want: TokenParams{}},
		{
			name: "all fields",
			body: `{"token_ttl":"1h","token_max_ttl":7200,"token_explicit_max_ttl":"3h","token_period":"0s",
				"token_policies":" Dev, ops ,dev,,Admin","token_bound_cidrs":["10.0.0.1/8","192.168.1.7"," 10.0.0.0/8"],
				"token_no_default_policy":true,"token_num_uses":"3","token_type":"service"}`,
			want: TokenParams{
				Policies: []string{"admin", "dev", "ops"}, TTL: time.Hour, MaxTTL: 2 * time.Hour, ExplicitMaxTTL: 3 * time.Hour,
				NumUses: 3, NoDefaultPolicy: true, BoundCIDRs: prefixes(t, "10.0.0.0/8", "192.168.1.7/32"), Type: TokenTypeService,
			},
		},
		{
			name:  "only supplied fields change",
			start: TokenParams{TTL: time.Minute, Policies: []string{"a"}, NumUses: 2},
			body:  `{"token_num_uses":5}`,
			want:  TokenParams{TTL: time.Minute, Policies: []string{"a"}, NumUses: 5},
		},
		{name: "legacy policies", body: `{"policies":"B,a"}`, want: TokenParams{Policies: []string{"a", "b"}, LegacyPolicies: true}},
		{
			name: "new name wins over alias", body: `{"policies":"old","token_policies":"new"}`,
			want: TokenParams{Policies: []string{"new"}, LegacyPolicies: true},
		},
		{
			name: "new name clears the legacy flag", start: TokenParams{Policies: []string{"old"}, LegacyPolicies: true},
			body: `{"token_policies":"new"}`, want: TokenParams{Policies: []string{"new"}},
		},
		{name: "legacy period", body: `{"period":"30m"}`, want: TokenParams{Period: 30 * time.Minute, LegacyPeriod: true}},
		{name: "token_period wins", body: `{"period":60,"token_period":120}`, want: TokenParams{Period: 2 * time.Minute, LegacyPeriod: true}},
		{name: "empty policies clear", start: TokenParams{Policies: []string{"a"}}, body: `{"token_policies":""}`, want: TokenParams{Policies: []string{}}},
		{name: "ipv6 and mapped", body: `{"token_bound_cidrs":"2001:db8::1/32,::ffff:10.1.2.3"}`, want: TokenParams{BoundCIDRs: prefixes(t, "2001:db8::/32", "10.1.2.3/32")}},
		{name: "type default", start: TokenParams{Type: TokenTypeBatch}, body: `{"token_type":"default"}`, want: TokenParams{}},
		{name: "type batch", body: `{"token_type":"BATCH"}`, want: TokenParams{Type: TokenTypeBatch}},
		{
			name: "default-service", body: `{"token_type":"default-service"}`, want: TokenParams{Type: TokenTypeService},
			warnings: []string{`token_type "default-service" has no useful meaning; using "service"`},
		},
		{
			name: "default-batch", body: `{"token_type":"default-batch"}`, want: TokenParams{Type: TokenTypeBatch},
			warnings: []string{`token_type "default-batch" has no useful meaning; using "batch"`},
		},
		{name: "ttl equal to max", body: `{"token_ttl":60,"token_max_ttl":60}`, want: TokenParams{TTL: time.Minute, MaxTTL: time.Minute}},
		{name: "ttl with unlimited max", body: `{"token_ttl":600}`, want: TokenParams{TTL: 10 * time.Minute}},

		{name: "negative num uses", body: `{"token_num_uses":-1}`, wantErr: "token_num_uses must not be negative"},
		{name: "ttl above max", body: `{"token_ttl":"2h","token_max_ttl":"1h"}`, wantErr: "token_ttl must not be greater than token_max_ttl"},
		{name: "ttl above stored max", start: TokenParams{MaxTTL: time.Minute}, body: `{"token_ttl":"2m"}`, wantErr: "token_ttl must not be greater than token_max_ttl"},
		{name: "bad type", body: `{"token_type":"weird"}`, wantErr: `invalid token_type "weird"`},
		{name: "batch periodic", body: `{"token_type":"batch","token_period":60}`, wantErr: `token_type "batch" cannot be used with token_period`},
		{name: "batch limited", body: `{"token_type":"batch","token_num_uses":1}`, wantErr: `token_type "batch" cannot be used with token_num_uses`},
		{name: "root policy", body: `{"token_policies":"dev,ROOT"}`, wantErr: `must not contain "root"`},
		{name: "bad cidr", body: `{"token_bound_cidrs":"10.0.0.0/8,10.0.0.300/24"}`, wantErr: `invalid CIDR block "10.0.0.300/24" in token_bound_cidrs`},
		{name: "bad address", body: `{"token_bound_cidrs":["nope"]}`, wantErr: `invalid CIDR block "nope" in token_bound_cidrs`},
		{name: "zone", body: `{"token_bound_cidrs":["fe80::1%eth0"]}`, wantErr: `in token_bound_cidrs: zones are not allowed`},
		{name: "negative duration", body: `{"token_ttl":-5}`, wantErr: `invalid value for "token_ttl"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, warnings, err := parseTokenRequest(t, nil, tc.start, tc.body)
			if tc.wantErr != "" {
				var ce *logical.CodedError
				if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Msg, tc.wantErr) {
					t.Fatalf("err = %v, want a 400 containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("params = %+v\nwant     %+v", got, tc.want)
			}
			if !reflect.DeepEqual(warnings, tc.warnings) {
				t.Errorf("warnings = %q, want %q", warnings, tc.warnings)
			}
		})
	}
}

// TestTokenParamsParseSubset checks that Parse reads only what the path
// declares: a role property sub-path with a single token field.
func TestTokenParamsParseSubset(t *testing.T) {
	t.Parallel()
	fields := map[string]*FieldSchema{"token_ttl": TokenFields()["token_ttl"]}
	got, _, err := parseTokenRequest(t, fields, TokenParams{MaxTTL: time.Hour, NumUses: 1}, `{"token_ttl":"30m"}`)
	if err != nil {
		t.Fatal(err)
	}
	if want := (TokenParams{TTL: 30 * time.Minute, MaxTTL: time.Hour, NumUses: 1}); !reflect.DeepEqual(got, want) {
		t.Fatalf("params = %+v, want %+v", got, want)
	}
	if _, _, err := parseTokenRequest(t, fields, TokenParams{MaxTTL: time.Hour}, `{"token_ttl":"2h"}`); err == nil {
		t.Fatal("ttl above the stored max was accepted")
	}
}

func TestTokenParamsPopulate(t *testing.T) {
	t.Parallel()
	p := TokenParams{
		Policies: []string{"a", "b"}, TTL: time.Hour, MaxTTL: 2 * time.Hour, ExplicitMaxTTL: 3 * time.Hour,
		Period: time.Minute, NumUses: 4, NoDefaultPolicy: true, BoundCIDRs: prefixes(t, "10.0.0.0/8", "10.1.2.3/32", "2001:db8::1/128"),
		Type: TokenTypeService,
	}
	var a logical.Auth
	p.Populate(&a)
	want := logical.Auth{
		Policies: []string{"a", "b"}, NoDefaultPolicy: true, TTL: time.Hour, MaxTTL: 2 * time.Hour, ExplicitMaxTTL: 3 * time.Hour,
		Period: time.Minute, NumUses: 4, Renewable: true, TokenType: "service", BoundCIDRs: []string{"10.0.0.0/8", "10.1.2.3", "2001:db8::1"},
	}
	if !reflect.DeepEqual(a, want) {
		t.Fatalf("auth = %+v\nwant   %+v", a, want)
	}
	// The auth owns its slices.
	a.Policies[0] = "x"
	if p.Policies[0] != "a" {
		t.Fatal("Populate shares the policies slice")
	}

	var batch logical.Auth
	TokenParams{Type: TokenTypeBatch}.Populate(&batch)
	if batch.Renewable || batch.TokenType != "batch" {
		t.Fatalf("batch auth = %+v", batch)
	}
}

func TestTokenParamsResponseData(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		p    TokenParams
		want map[string]any
	}{
		{
			name: "zero",
			want: map[string]any{
				"token_bound_cidrs": []string{}, "token_explicit_max_ttl": int64(0), "token_max_ttl": int64(0),
				"token_no_default_policy": false, "token_num_uses": 0, "token_period": int64(0),
				"token_policies": []string{}, "token_ttl": int64(0), "token_type": "default",
			},
		},
		{
			name: "set with aliases",
			p: TokenParams{
				Policies: []string{"dev"}, TTL: 90 * time.Second, MaxTTL: time.Hour, ExplicitMaxTTL: 2 * time.Hour,
				Period: 1500 * time.Millisecond, NumUses: 7, NoDefaultPolicy: true, BoundCIDRs: prefixes(t, "10.0.0.0/8"),
				Type: TokenTypeBatch, LegacyPolicies: true, LegacyPeriod: true,
			},
			want: map[string]any{
				"token_bound_cidrs": []string{"10.0.0.0/8"}, "token_explicit_max_ttl": int64(7200), "token_max_ttl": int64(3600),
				"token_no_default_policy": true, "token_num_uses": 7, "token_period": int64(1),
				"token_policies": []string{"dev"}, "token_ttl": int64(90), "token_type": "batch",
				"policies": []string{"dev"}, "period": int64(1),
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := map[string]any{}
			tc.p.ResponseData(got)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("data = %#v\nwant   %#v", got, tc.want)
			}
		})
	}
}

func TestTokenParamsJSONRoundTrip(t *testing.T) {
	t.Parallel()
	p := TokenParams{Policies: []string{"a"}, TTL: time.Hour, BoundCIDRs: prefixes(t, "10.0.0.0/8", "2001:db8::/32"), Type: TokenTypeService, LegacyPeriod: true}
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back TokenParams
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, p) {
		t.Fatalf("round trip: %+v, want %+v (%s)", back, p, raw)
	}
}

func TestCIDRHelpers(t *testing.T) {
	t.Parallel()
	blocks := prefixes(t, "10.0.0.0/8", "192.168.1.7/32", "2001:db8::/32")
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.2.3.4", true},
		{"192.168.1.7", true},
		{"192.168.1.8", false},
		{"::ffff:10.9.9.9", true},
		{"2001:db8::5", true},
		{"fe80::1%eth0", false},
		{"", false},
		{"not-an-ip", false},
		{"10.2.3.4:8080", false},
	} {
		if got := CIDRsContain(blocks, tc.addr); got != tc.want {
			t.Errorf("CIDRsContain(%q) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if CIDRsContain(nil, "10.0.0.1") {
		t.Error("no blocks should contain nothing")
	}

	for _, tc := range []struct {
		child []netip.Prefix
		want  bool
	}{
		{nil, true},
		{prefixes(t, "10.1.0.0/16", "192.168.1.7/32"), true},
		{prefixes(t, "10.0.0.0/8"), true},
		{prefixes(t, "10.0.0.0/7"), false},
		{prefixes(t, "192.168.1.0/24"), false},
		{prefixes(t, "2001:db8:1::/48"), true},
	} {
		if got := CIDRsSubset(tc.child, blocks); got != tc.want {
			t.Errorf("CIDRsSubset(%v) = %v, want %v", tc.child, got, tc.want)
		}
	}

	got, err := ParseCIDRs("cidr_list", []string{"10.0.0.1/8", "", " 10.0.0.0/8 ", "::ffff:10.0.0.0/104"})
	if err != nil || !reflect.DeepEqual(got, prefixes(t, "10.0.0.0/8")) {
		t.Fatalf("ParseCIDRs = %v, %v", got, err)
	}
	if _, err := ParseCIDRs("cidr_list", []string{"::ffff:10.0.0.0/90"}); err == nil || !strings.Contains(err.Error(), "cidr_list") {
		t.Fatalf("short mapped block: err = %v", err)
	}
	if got, err := ParseCIDRs("x", []string{" "}); got != nil || err != nil {
		t.Fatalf("blank list = %v, %v", got, err)
	}
	if got := FormatCIDRs(nil); got == nil || len(got) != 0 {
		t.Fatalf("FormatCIDRs(nil) = %#v", got)
	}
}

func TestPolicyHelpers(t *testing.T) {
	t.Parallel()
	in := []string{" B", "a", "", "b", "A "}
	if got := SanitizePolicies(in); !reflect.DeepEqual(got, []string{"a", "b"}) {
		t.Fatalf("SanitizePolicies = %q", got)
	}
	if in[0] != " B" {
		t.Fatal("SanitizePolicies modified its input")
	}
	for _, tc := range []struct {
		a, b []string
		want bool
	}{
		{[]string{"a", "b"}, []string{"B", "a", "default"}, true},
		{nil, []string{"default"}, true},
		{[]string{"a"}, []string{"a", "b"}, false},
		{[]string{"a"}, nil, false},
	} {
		if got := EquivalentPolicies(tc.a, tc.b); got != tc.want {
			t.Errorf("EquivalentPolicies(%q, %q) = %v", tc.a, tc.b, got)
		}
	}
}

func TestTokenFieldsFresh(t *testing.T) {
	t.Parallel()
	a, b := TokenFields(), TokenFields()
	a["extra"] = &FieldSchema{Type: TypeString}
	delete(a, "token_ttl")
	if _, ok := b["extra"]; ok {
		t.Fatal("TokenFields shares its map")
	}
	if _, ok := b["token_ttl"]; !ok {
		t.Fatal("TokenFields shares its map")
	}
	for _, name := range []string{"token_ttl", "token_max_ttl", "token_policies", "policies", "token_bound_cidrs",
		"token_explicit_max_ttl", "token_no_default_policy", "token_num_uses", "token_period", "period", "token_type"} {
		if _, ok := b[name]; !ok {
			t.Errorf("TokenFields lacks %q", name)
		}
	}
}

func TestRenewFromRole(t *testing.T) {
	req := &logical.Request{Auth: &logical.Auth{Policies: []string{"default", "train"}, TTL: time.Minute, Metadata: map[string]string{"role": "ci"}}}
	role := &TokenParams{Policies: []string{"TRAIN"}, TTL: time.Hour, MaxTTL: 2 * time.Hour, Period: 0}
	a, err := RenewFromRole(req, "ci", role)
	if err != nil || a.TTL != time.Hour || a.MaxTTL != 2*time.Hour || a.Metadata["role"] != "ci" {
		t.Fatalf("renewal: %+v %v", a, err)
	}
	if req.Auth.TTL != time.Minute {
		t.Error("the request's auth was changed")
	}
	for name, r := range map[string]*TokenParams{
		"role gone":        nil,
		"policies changed": {Policies: []string{"train", "admin"}, TTL: time.Hour},
	} {
		var ce *logical.CodedError
		if _, err := RenewFromRole(req, "ci", r); !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(err.Error(), `"ci"`) {
			t.Errorf("%s: %v, want a 400 naming the role", name, err)
		}
	}
}
