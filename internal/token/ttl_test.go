package token

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCalculateTTL(t *testing.T) {
	h := time.Hour
	start := t0
	for _, tc := range []struct {
		name     string
		in       ttlInput
		want     time.Duration
		warnings []string // substrings, in order
		err      error
	}{
		{name: "mount default", in: ttlInput{Now: start}, want: 768 * h},
		{name: "mount default tuned", in: ttlInput{Now: start, Defaults: TTLDefaults{DefaultTTL: h, MaxTTL: 2 * h}}, want: h},
		{name: "requested", in: ttlInput{Now: start, Increment: 2 * h}, want: 2 * h},
		{name: "requested beats backend", in: ttlInput{Now: start, Increment: 2 * h, BackendTTL: 3 * h}, want: 2 * h},
		{name: "backend ttl", in: ttlInput{Now: start, BackendTTL: 3 * h}, want: 3 * h},
		{name: "capped by mount max", in: ttlInput{Now: start, Increment: 10 * h, Defaults: TTLDefaults{MaxTTL: 5 * h}}, want: 5 * h,
			warnings: []string{`TTL of "10h0m0s" exceeded the effective max_ttl of "5h0m0s"; TTL value is capped accordingly`}},
		{name: "capped by backend max", in: ttlInput{Now: start, Increment: 10 * h, BackendMaxTTL: 4 * h}, want: 4 * h, warnings: []string{"exceeded"}},
		{name: "backend max above mount max", in: ttlInput{Now: start, Increment: 10 * h, BackendMaxTTL: 40 * h, Defaults: TTLDefaults{MaxTTL: 6 * h}}, want: 6 * h, warnings: []string{"exceeded"}},
		{name: "capped by explicit max", in: ttlInput{Now: start, Increment: 10 * h, BackendMaxTTL: 4 * h, ExplicitMaxTTL: 3 * h}, want: 3 * h, warnings: []string{`of "3h0m0s"`}},
		{name: "default capped by explicit", in: ttlInput{Now: start, ExplicitMaxTTL: 2 * h}, want: 2 * h, warnings: []string{"exceeded"}},
		{name: "renewal from now", in: ttlInput{Start: start, Now: start.Add(h), Increment: 2 * h}, want: 2 * h},
		{name: "renewal capped at issue plus max", in: ttlInput{Start: start, Now: start.Add(5 * h), Increment: 2 * h, Defaults: TTLDefaults{MaxTTL: 6 * h}}, want: h,
			warnings: []string{`TTL of "2h0m0s" exceeded the effective max_ttl of "1h0m0s"`}},
		{name: "renewal past max", in: ttlInput{Start: start, Now: start.Add(6 * h), Increment: 2 * h, Defaults: TTLDefaults{MaxTTL: 6 * h}}, err: ErrPastMaxTTL},
		{name: "renewal uses backend ttl", in: ttlInput{Start: start, Now: start.Add(h), BackendTTL: 30 * time.Minute}, want: 30 * time.Minute},
		{name: "periodic", in: ttlInput{Now: start, Period: 2 * h, Increment: 5 * h}, want: 2 * h},
		{name: "periodic ignores mount max over time", in: ttlInput{Start: start, Now: start.Add(1000 * h), Period: 2 * h, Defaults: TTLDefaults{MaxTTL: 24 * h}}, want: 2 * h},
		{name: "period capped at max", in: ttlInput{Now: start, Period: 48 * h, Defaults: TTLDefaults{MaxTTL: 24 * h}}, want: 24 * h,
			warnings: []string{`period of "48h0m0s" exceeded the effective max_ttl of "24h0m0s"; period value is capped accordingly`}},
		{name: "periodic with explicit max", in: ttlInput{Start: start, Now: start.Add(9 * h), Period: 2 * h, ExplicitMaxTTL: 10 * h}, want: h, warnings: []string{"TTL of"}},
		{name: "periodic past explicit max", in: ttlInput{Start: start, Now: start.Add(10 * h), Period: 2 * h, ExplicitMaxTTL: 10 * h}, err: ErrPastMaxTTL},
		{name: "sub-second now truncated", in: ttlInput{Start: start, Now: start.Add(5*h + 300*time.Millisecond), Increment: 2 * h, Defaults: TTLDefaults{MaxTTL: 6 * h}}, want: h, warnings: []string{"exceeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, warnings, err := calculateTTL(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if got != tc.want {
				t.Errorf("ttl = %s, want %s", got, tc.want)
			}
			if len(warnings) != len(tc.warnings) {
				t.Fatalf("warnings = %q, want %d", warnings, len(tc.warnings))
			}
			for i, w := range tc.warnings {
				if !strings.Contains(warnings[i], w) {
					t.Errorf("warning %q does not contain %q", warnings[i], w)
				}
			}
		})
	}
}

func TestResolveType(t *testing.T) {
	for _, tc := range []struct {
		configured, asked, want string
		err                     bool
	}{
		{"", "", TypeService, false},
		{"default", "", TypeService, false},
		{"default-service", "batch", TypeBatch, false},
		{"default-batch", "", TypeBatch, false},
		{"default-batch", "service", TypeService, false},
		{"service", "batch", TypeService, false},
		{"batch", "service", TypeBatch, false},
		{"", "default", TypeService, false},
		{"weird", "", "", true},
		{"", "weird", "", true},
	} {
		got, err := ResolveType(tc.configured, tc.asked)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("ResolveType(%q, %q) = %q, %v; want %q (error %v)", tc.configured, tc.asked, got, err, tc.want, tc.err)
		}
	}
}

func TestSanitizePolicies(t *testing.T) {
	for _, tc := range []struct {
		in         []string
		addDefault bool
		want       []string
	}{
		{nil, false, []string{}},
		{nil, true, []string{"default"}},
		{[]string{" Dev", "ops", "dev"}, true, []string{"default", "dev", "ops"}},
		{[]string{"dev", "root"}, true, []string{"root"}},
		{[]string{"default", "dev"}, true, []string{"default", "dev"}},
	} {
		if got := sanitizePolicies(tc.in, tc.addDefault); !slices.Equal(got, tc.want) {
			t.Errorf("sanitizePolicies(%q, %v) = %q, want %q", tc.in, tc.addDefault, got, tc.want)
		}
	}
}

func TestValidPathSuffix(t *testing.T) {
	for s, want := range map[string]bool{
		"v1": true, "v1.2": true, "a/b": true, "x": true,
		"": false, "/a": false, "a/": false, "..": false, "a..b": false, ".a": false, "a b": false, "a/../b": false,
	} {
		if got := validPathSuffix(s); got != want {
			t.Errorf("validPathSuffix(%q) = %v, want %v", s, got, want)
		}
	}
}
