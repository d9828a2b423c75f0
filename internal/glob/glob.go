// Package glob matches names against Vault's simple globs: '*' stands for
// any run of characters ('/' included, so "refs/heads/*" matches
// "refs/heads/feature/x") and every other character for itself. There is
// no other wildcard, no escape and no character class.
//
// Auth methods use it for bound claims and service-account names and
// namespaces, the token store for the policy globs of token roles. It is a
// leaf: it imports the standard library only and owns no state.
package glob

import "strings"

// Match reports whether s matches pattern. A pattern without '*' matches
// only itself; "*" matches everything, the empty string included.
func Match(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	// The middle parts match leftmost-first: taking the earliest place
	// of each leaves the most room for the parts after it.
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// MatchAny reports whether s matches one of patterns.
func MatchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if Match(p, s) {
			return true
		}
	}
	return false
}
