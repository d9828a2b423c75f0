package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// parseData turns command arguments into request data, as the Vault CLI
// does:
//
//   - key=value sets a string;
//   - key=@file reads the whole file as the value ("\@" escapes a literal @);
//   - key=- reads the whole of stdin as the value;
//   - "-" alone reads a JSON object from stdin and merges it;
//   - "@file.json" alone reads a JSON object from the file and merges it.
//
// A key given twice becomes a list of values. Stdin can be read only once.
// An argument without "=" is a usage error naming it.
func parseData(stdin io.Reader, args []string) (map[string]any, error) {
	out := map[string]any{}
	stdinUsed := false
	readStdin := func() ([]byte, error) {
		if stdinUsed {
			return nil, usageErr("stdin can be read only once, but \"-\" was given twice")
		}
		stdinUsed = true
		if stdin == nil {
			return nil, nil
		}
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return b, nil
	}
	for _, arg := range args {
		switch {
		case arg == "-":
			b, err := readStdin()
			if err != nil {
				return nil, err
			}
			if err := mergeJSON(out, b, "stdin"); err != nil {
				return nil, err
			}
			continue
		case strings.HasPrefix(arg, "@") && !strings.Contains(arg, "="):
			b, err := os.ReadFile(arg[1:])
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", arg[1:], err)
			}
			if err := mergeJSON(out, b, arg[1:]); err != nil {
				return nil, err
			}
			continue
		}
		key, value, ok := strings.Cut(arg, "=")
		if !ok {
			return nil, usageErr("invalid key/value pair %q: the format is key=value", arg)
		}
		if key == "" {
			return nil, usageErr("invalid key/value pair: empty key before \"=\"")
		}
		switch {
		case value == "-":
			b, err := readStdin()
			if err != nil {
				return nil, err
			}
			value = string(b)
		case strings.HasPrefix(value, `\@`):
			value = value[1:]
		case strings.HasPrefix(value, "@"):
			b, err := os.ReadFile(value[1:])
			if err != nil {
				return nil, fmt.Errorf("read the value of %q from %s: %w", key, value[1:], err)
			}
			value = string(b)
		}
		addValue(out, key, value)
	}
	return out, nil
}

// addValue sets key, turning repeated keys into a list.
func addValue(m map[string]any, key string, v any) {
	old, ok := m[key]
	if !ok {
		m[key] = v
		return
	}
	if list, ok := old.([]any); ok {
		m[key] = append(list, v)
		return
	}
	m[key] = []any{old, v}
}

// mergeJSON decodes a JSON object and copies its keys into m.
func mergeJSON(m map[string]any, b []byte, source string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return usageErr("%s must hold a JSON object: %v", source, err)
	}
	if obj == nil {
		return usageErr("%s must hold a JSON object, not null", source)
	}
	for k, v := range obj {
		m[k] = v
	}
	return nil
}

// mapFlag is a repeatable -flag=key=value.
type mapFlag map[string]string

func (m mapFlag) String() string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ",")
}

func (m mapFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	m[k] = v
	return nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}
