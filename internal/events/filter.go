package events

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrFilter wraps every error of [ParseFilter]: the filter is the
// client's to fix.
var ErrFilter = errors.New("invalid event filter")

// Filter is a parsed subscription filter: the "filter" query parameter of
// sys/events/subscribe, in Vault's go-bexpr syntax. Vigil understands a
// subset of it, and refuses the rest:
//
//	clause { "and" clause }
//	clause = selector ("==" | "!=") value
//
// where selector is one of Vault's event selectors: event_type,
// operation, source_plugin_mount, data_path, namespace (always "" in
// Vigil, which has the root namespace only); and value is a double-quoted
// string (with \" and \\ escapes) or a bare word without spaces or
// quotes. For example:
//
//	data_path == secret/data/app and operation != "data-delete"
//
// "or", "not", parentheses, "in", "contains", "matches" and "is empty"
// are refused.
type Filter struct {
	clauses []clause
}

type clause struct {
	field string
	neq   bool
	value string
}

// filterFields are the selectors a filter may name.
var filterFields = map[string]func(*Event) string{
	"event_type":          func(e *Event) string { return e.Type },
	"operation":           func(e *Event) string { return e.Metadata[MetaOperation] },
	"source_plugin_mount": func(e *Event) string { return e.Plugin.MountPath },
	"data_path":           func(e *Event) string { return e.Metadata[MetaDataPath] },
	"namespace":           func(*Event) string { return "" },
}

// ParseFilter parses a filter; an empty (or blank) one is nil, which
// matches everything. Errors wrap [ErrFilter].
func ParseFilter(text string) (*Filter, error) {
	toks, err := filterTokens(text)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, nil
	}
	f := &Filter{}
	for i := 0; ; {
		if len(toks)-i < 3 {
			return nil, fmt.Errorf("%w: want selector == value (or !=), got %q", ErrFilter, joinTokens(toks[i:]))
		}
		sel, op, val := toks[i], toks[i+1], toks[i+2]
		if sel.quoted || sel.text == "" {
			return nil, fmt.Errorf("%w: want a selector, got %q", ErrFilter, sel.text)
		}
		if _, ok := filterFields[sel.text]; !ok {
			return nil, fmt.Errorf("%w: unsupported selector %q (Vigil supports event_type, operation, source_plugin_mount, data_path, namespace)", ErrFilter, sel.text)
		}
		if op.quoted || (op.text != "==" && op.text != "!=") {
			return nil, fmt.Errorf("%w: unsupported operator %q after %s (Vigil supports == and !=, joined by and)", ErrFilter, op.text, sel.text)
		}
		if !val.quoted && (val.text == "==" || val.text == "!=" || val.text == "and") {
			return nil, fmt.Errorf("%w: want a value after %s %s", ErrFilter, sel.text, op.text)
		}
		f.clauses = append(f.clauses, clause{field: sel.text, neq: op.text == "!=", value: val.text})
		i += 3
		if i == len(toks) {
			return f, nil
		}
		if toks[i].quoted || toks[i].text != "and" {
			return nil, fmt.Errorf("%w: unsupported %q (Vigil joins clauses with and only)", ErrFilter, toks[i].text)
		}
		i++
	}
}

// Match reports whether ev passes the filter. A nil filter passes
// everything.
func (f *Filter) Match(ev *Event) bool {
	if f == nil {
		return true
	}
	for _, c := range f.clauses {
		if (filterFields[c.field](ev) == c.value) == c.neq {
			return false
		}
	}
	return true
}

type token struct {
	text   string
	quoted bool
}

func joinTokens(ts []token) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.text
	}
	return strings.Join(parts, " ")
}

// filterTokens splits a filter into words, quoted strings and the
// operators == and !=.
func filterTokens(s string) ([]token, error) {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, fmt.Errorf("%w: unterminated string", ErrFilter)
			}
			v, err := strconv.Unquote(s[i : j+1])
			if err != nil {
				return nil, fmt.Errorf("%w: bad string %s", ErrFilter, s[i:j+1])
			}
			out = append(out, token{text: v, quoted: true})
			i = j + 1
		case c == '=' || c == '!':
			if i+1 >= len(s) || s[i+1] != '=' {
				return nil, fmt.Errorf("%w: unsupported operator at %q", ErrFilter, s[i:])
			}
			out = append(out, token{text: s[i : i+2]})
			i += 2
		case c == '(' || c == ')' || c == '\'' || c == '`':
			return nil, fmt.Errorf("%w: %q is not supported", ErrFilter, string(c))
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\n\r\"=!()'`", rune(s[j])) {
				j++
			}
			out = append(out, token{text: s[i:j]})
			i = j
		}
	}
	return out, nil
}
