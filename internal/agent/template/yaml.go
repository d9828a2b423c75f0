package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// toYAML writes a value as block-style YAML, indented by two spaces with
// map keys sorted, as consul-template's toYAML does. Strings are written
// plain when nothing else could read them differently, and double-quoted
// otherwise, so the output is valid YAML even where its quoting differs
// from go-yaml's.
func toYAML(v any) (string, error) {
	norm, err := normalize(v)
	if err != nil {
		return "", fmt.Errorf("toYAML: %w", err)
	}
	var b bytes.Buffer
	switch n := norm.(type) {
	case map[string]any:
		if len(n) == 0 {
			return "{}", nil
		}
		yamlMap(&b, n, 0)
	case []any:
		if len(n) == 0 {
			return "[]", nil
		}
		yamlList(&b, n, 0)
	default:
		b.WriteString(yamlScalar(n))
	}
	return strings.TrimSpace(b.String()), nil
}

// normalize turns v into maps, lists and scalars: JSON's shapes, with
// numbers kept as written.
func normalize(v any) (any, error) {
	switch v := v.(type) {
	case nil, string, bool, json.Number, int, int64, float64:
		return v, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			n, err := normalize(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]string:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = e
		}
		return out, nil
	case []string:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = e
		}
		return out, nil
	}
	// Anything else (structs, other maps and slices) through JSON.
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("cannot encode a %s", reflect.TypeOf(v))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("cannot encode a %s", reflect.TypeOf(v))
	}
	return normalize(out)
}

func yamlMap(b *bytes.Buffer, m map[string]any, depth int) {
	pad := strings.Repeat("  ", depth)
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(pad + yamlScalar(k) + ":")
		switch e := m[k].(type) {
		case map[string]any:
			if len(e) == 0 {
				b.WriteString(" {}\n")
				continue
			}
			b.WriteString("\n")
			yamlMap(b, e, depth+1)
		case []any:
			if len(e) == 0 {
				b.WriteString(" []\n")
				continue
			}
			// go-yaml puts a map's list at the map's indentation.
			b.WriteString("\n")
			yamlList(b, e, depth)
		default:
			b.WriteString(" " + yamlScalar(e) + "\n")
		}
	}
}

func yamlList(b *bytes.Buffer, l []any, depth int) {
	pad := strings.Repeat("  ", depth)
	for _, e := range l {
		switch e := e.(type) {
		case map[string]any:
			if len(e) == 0 {
				b.WriteString(pad + "- {}\n")
				continue
			}
			// The first key on the dash's line, the others under it.
			var sub bytes.Buffer
			yamlMap(&sub, e, depth+1)
			s := sub.String()
			b.WriteString(pad + "- " + strings.TrimPrefix(s, pad+"  "))
		case []any:
			if len(e) == 0 {
				b.WriteString(pad + "- []\n")
				continue
			}
			var sub bytes.Buffer
			yamlList(&sub, e, depth+1)
			b.WriteString(pad + "- " + strings.TrimPrefix(sub.String(), pad+"  "))
		default:
			b.WriteString(pad + "- " + yamlScalar(e) + "\n")
		}
	}
}

// plainYAML are strings safe to write unquoted: they start with a letter
// or underscore and hold no spaces, colons, quotes or indicators.
var plainYAML = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_./-]*$`)

// yamlWords are plain strings YAML 1.1 reads as booleans or null.
var yamlWords = map[string]bool{
	"y": true, "n": true, "yes": true, "no": true, "on": true, "off": true,
	"true": true, "false": true, "null": true,
}

func yamlScalar(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return v.String()
	case int:
		return strconv.Itoa(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case string:
		if plainYAML.MatchString(v) && !yamlWords[strings.ToLower(v)] {
			return v
		}
		// A Go quoted string is a valid YAML double-quoted scalar.
		return strconv.Quote(v)
	}
	return strconv.Quote(fmt.Sprint(v))
}
