package framework

import (
	"regexp/syntax"
	"strings"
)

// tailMatch is the shape most hot patterns have, a literal followed by one
// named group that takes the rest of the path ("data/(?P<path>.*[^/])"),
// matched without the regexp engine: the path begins with prefix and the
// rest satisfies the group's expression. It answers exactly what the
// compiled pattern would, submatch indexes included (TestTailMatch
// compares the two).
type tailMatch struct {
	prefix string
	// minLen is the fewest bytes the group takes (0 for .*, 1 for .+ and
	// .*[^/]).
	minLen int
	// notSlashLast: the group's last byte is not '/' (.*[^/]), and that
	// byte alone may be a newline.
	notSlashLast bool
}

// compileTail recognizes pattern (unanchored, as a Path holds it) as
// literal + (?P<name>X) with X one of .*, .+ and .*[^/], and returns its
// matcher; ok is false for every other pattern, which keeps the regexp.
func compileTail(pattern string) (tailMatch, bool) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return tailMatch{}, false
	}
	re = re.Simplify()
	var subs []*syntax.Regexp
	switch re.Op {
	case syntax.OpConcat:
		subs = re.Sub
	case syntax.OpCapture:
		subs = []*syntax.Regexp{re}
	default:
		return tailMatch{}, false
	}
	var t tailMatch
	var prefix strings.Builder
	for _, s := range subs[:len(subs)-1] {
		if s.Op != syntax.OpLiteral || s.Flags&syntax.FoldCase != 0 {
			return tailMatch{}, false
		}
		prefix.WriteString(string(s.Rune))
	}
	t.prefix = prefix.String()
	c := subs[len(subs)-1]
	if c.Op != syntax.OpCapture || c.Name == "" || len(c.Sub) != 1 {
		return tailMatch{}, false
	}
	body := c.Sub[0]
	switch {
	case isAnyNotNL(body, syntax.OpStar):
	case isAnyNotNL(body, syntax.OpPlus):
		t.minLen = 1
	case body.Op == syntax.OpConcat && len(body.Sub) == 2 && isAnyNotNL(body.Sub[0], syntax.OpStar) && isNotSlash(body.Sub[1]):
		t.minLen, t.notSlashLast = 1, true
	default:
		return tailMatch{}, false
	}
	return t, true
}

// isAnyNotNL reports whether re is op applied to "any byte but newline"
// (greedy or not: a whole-path match takes the same bytes either way).
func isAnyNotNL(re *syntax.Regexp, op syntax.Op) bool {
	return re.Op == op && len(re.Sub) == 1 && re.Sub[0].Op == syntax.OpAnyCharNotNL
}

// isNotSlash reports whether re is the class [^/].
func isNotSlash(re *syntax.Regexp) bool {
	if re.Op != syntax.OpCharClass {
		return false
	}
	r := re.Rune
	return len(r) == 4 && r[0] == 0 && r[1] == '/'-1 && r[2] == '/'+1 && r[3] == 0x10FFFF
}

// match appends to dst the submatch indexes of path (the whole match and
// the group) and returns them, or returns nil.
func (t tailMatch) match(path string, dst []int) []int {
	if !strings.HasPrefix(path, t.prefix) {
		return nil
	}
	rest := path[len(t.prefix):]
	if len(rest) < t.minLen {
		return nil
	}
	body := rest
	if t.notSlashLast {
		// [^/] takes the last rune; '/' and '\n' are single bytes,
		// and no byte of a multi-byte rune is either.
		if rest[len(rest)-1] == '/' {
			return nil
		}
		body = rest[:len(rest)-1]
	}
	if strings.IndexByte(body, '\n') >= 0 {
		return nil
	}
	return append(dst, 0, len(path), len(t.prefix), len(path))
}
