package framework

import "strings"

// GlobMatch reports whether s matches pattern, in which '*' stands for any
// run of characters ('/' included) and every other character for itself:
// the globs of allowed_roles, bound claims and allowed names.
func GlobMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	first, last := parts[0], parts[len(parts)-1]
	if len(s) < len(first)+len(last) || !strings.HasPrefix(s, first) || !strings.HasSuffix(s, last) {
		return false
	}
	s = s[len(first) : len(s)-len(last)]
	// Taking each middle part at its leftmost place leaves the most room
	// for the rest.
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}
