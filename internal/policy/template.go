package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Templater resolves one identity template for the token being checked.
// expr is the text between the braces, trimmed of spaces, for example
// "identity.entity.id" or "identity.entity.metadata.team". It returns the
// value and true, or false when the token has no such value (no entity,
// missing metadata key); the rule holding the template is then skipped.
type Templater func(expr string) (value string, ok bool)

// templateRoots are the template expressions Vault allows in ACL paths
// (by prefix). What each resolves to is the [Templater]'s business.
var templateRoots = []string{
	"identity.entity.id",
	"identity.entity.name",
	"identity.entity.metadata.",
	"identity.entity.aliases.",
	"identity.groups.ids.",
	"identity.groups.names.",
}

// checkTemplates reports whether path holds "{{...}}" templates and fails
// on malformed ones: an unclosed or empty template, nested braces, or an
// expression outside [templateRoots].
func checkTemplates(path string) (bool, error) {
	found := false
	rest := path
	for {
		open := strings.Index(rest, "{{")
		closeAt := strings.Index(rest, "}}")
		if open < 0 {
			if closeAt >= 0 {
				return false, errors.New("template has '}}' without '{{'")
			}
			return found, nil
		}
		if closeAt < 0 || closeAt < open {
			return false, errors.New("template '{{' is not closed")
		}
		expr := rest[open+2 : closeAt]
		if strings.ContainsAny(expr, "{}") {
			return false, errors.New("templates cannot be nested")
		}
		expr = strings.TrimSpace(expr)
		if !knownTemplate(expr) {
			return false, fmt.Errorf("unsupported template %q", expr)
		}
		found = true
		rest = rest[closeAt+2:]
	}
}

func knownTemplate(expr string) bool {
	for _, root := range templateRoots {
		if strings.HasSuffix(root, ".") {
			if len(expr) > len(root) && strings.HasPrefix(expr, root) {
				return true
			}
		} else if expr == root {
			return true
		}
	}
	return false
}

// resolveTemplates substitutes every template in path. It fails (false)
// when t is nil, when t cannot resolve a template, or when a value would
// change the rule's shape: a value must be non-empty and hold no '*' or
// braces, and must not create a "+" segment or a "+*". Otherwise a user able to
// choose their entity name or metadata could widen their own rule.
func resolveTemplates(path string, t Templater) (string, bool) {
	if t == nil {
		return "", false
	}
	var b strings.Builder
	rest := path
	for {
		open := strings.Index(rest, "{{")
		if open < 0 {
			b.WriteString(rest)
			break
		}
		closeAt := strings.Index(rest[open:], "}}")
		if closeAt < 0 {
			return "", false
		}
		closeAt += open
		v, ok := t(strings.TrimSpace(rest[open+2 : closeAt]))
		if !ok || v == "" || strings.ContainsAny(v, "*{}") {
			return "", false
		}
		b.WriteString(rest[:open])
		b.WriteString(v)
		rest = rest[closeAt+2:]
	}
	out := b.String()
	if strings.Contains(out, "+*") || countPlusSegments(out) != countPlusSegments(path) {
		return "", false
	}
	return out, true
}

// countPlusSegments counts the segments of p that are exactly "+",
// ignoring a trailing '*'.
func countPlusSegments(p string) int {
	p = strings.TrimSuffix(p, "*")
	n := 0
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "+" {
			n++
		}
	}
	return n
}
