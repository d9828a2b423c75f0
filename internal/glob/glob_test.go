package glob

import (
	"regexp"
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, pattern, s string
		want             bool
	}{
		{"exact", "main", "main", true},
		{"exact is not a prefix", "main", "main2", false},
		{"no star, no other wildcard", "[a]", "a", false},
		{"question mark is literal", "a?", "ab", false},
		{"trailing star", "refs/heads/*", "refs/heads/main", true},
		{"star crosses slashes", "refs/heads/*", "refs/heads/feature/x", true},
		{"trailing star, other prefix", "refs/heads/*", "refs/tags/v1", false},
		{"trailing star, empty rest", "team-*", "team-", true},
		{"trailing star, short", "team-*", "tea", false},
		{"leading star", "*-prod", "ml-prod", true},
		{"leading star, longer suffix", "*-admin", "ops-admins", false},
		{"middle stars", "a*b*c", "axxbyyc", true},
		{"middle stars, missing end", "a*b*c", "axxbyy", false},
		{"middle stars, wrong order", "a*b*c", "a1c2b", false},
		{"prefix and suffix may not overlap", "a*a", "a", false},
		{"prefix and suffix adjacent", "a*a", "aa", true},
		{"lone star, empty", "*", "", true},
		{"lone star, anything", "*", "batch-runner", true},
		{"double star", "**", "x", true},
		{"empty pattern", "", "", true},
		{"empty pattern, text", "", "x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Match(tc.pattern, tc.s); got != tc.want {
				t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
			}
		})
	}
}

func TestMatchAny(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		patterns []string
		s        string
		want     bool
	}{
		{"none", nil, "x", false},
		{"second matches", []string{"llm-*", "embedder"}, "embedder", true},
		{"glob matches", []string{"llm-*", "embedder"}, "llm-gateway", true},
		{"no match", []string{"llm-*", "embedder"}, "gateway-llm", false},
		{"star", []string{"*"}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := MatchAny(tc.patterns, tc.s); got != tc.want {
				t.Errorf("MatchAny(%q, %q) = %v, want %v", tc.patterns, tc.s, got, tc.want)
			}
		})
	}
}

// FuzzMatch checks Match against a regular expression built from the
// pattern: '*' is ".*", everything else is quoted.
func FuzzMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"refs/heads/*", "refs/heads/a/b"}, {"a*b*c", "abcabc"}, {"a*a", "a"}, {"*", ""}, {"**a**", "bab"}, {"x*y", "x\ny"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, s string) {
		parts := strings.Split(pattern, "*")
		for i, p := range parts {
			parts[i] = regexp.QuoteMeta(p)
		}
		re, err := regexp.Compile(`(?s)\A` + strings.Join(parts, ".*") + `\z`)
		if err != nil {
			t.Skip() // invalid UTF-8 and the like: the reference cannot say
		}
		if got, want := Match(pattern, s), re.MatchString(s); got != want {
			t.Fatalf("Match(%q, %q) = %v, the reference says %v", pattern, s, got, want)
		}
	})
}

func TestMatchCases(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "anything/at/all", true},
		{"eval", "eval", true},
		{"eval", "evals", false},
		{"train-*", "train-gpu", true},
		{"train-*", "train-", true},
		{"train-*", "trai", false},
		{"*-ro", "ml-ro", true},
		{"*-ro", "ml-rw", false},
		{"*-admin", "ops-admins", false},
		{"refs/heads/*", "refs/heads/feature/x", true},
		{"refs/heads/*", "refs/tags/v1", false},
		{"a*b*c", "a-x-b-y-c", true},
		{"a*b*c", "a-c-b", false},
		{"a*b*c", "axxbyy", false},
		{"a*a", "a", false},
		{"ab*ba", "aba", false},
		{"**", "x", true},
		{"[x]", "x", false},
	} {
		if got := Match(tc.pattern, tc.s); got != tc.want {
			t.Errorf("Match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
