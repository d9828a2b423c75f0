// Package secretenv builds a process's environment from secrets, for
// `vigil run` (and the agent's process supervision): which variables come
// from which secret ([Spec]), reading them through the api client (KV v1
// and v2, dynamic credentials with their leases, static credentials), and
// telling when they changed ([Set.Check], [Watcher]).
//
// # Paths
//
// A path is written as the user knows the secret: "secret/ml/openai" on a
// KV v2 mount is read at "secret/data/ml/openai" (the mount is found with
// sys/internal/ui/mounts, as the Vault CLI's kv commands do), and the raw
// API path "secret/data/ml/openai" works too. Other paths are read as
// they are: KV v1, "database/creds/<role>" (a new user under a lease),
// "database/static-creds/<role>" (a rotated password).
//
// # Changes
//
// A secret changed when the variables it gives changed: a new KV version
// with a different value, a rotated static password, new dynamic
// credentials. The comparison is of SHA-256 fingerprints computed in
// memory; a new KV version with the same values is not a change. Dynamic
// credentials are never re-read to look for a change (that would create a
// user each time): their leases are renewed, and only when a lease can no
// longer be kept are new credentials read ([Set.Reissue]).
//
// # Secrecy
//
// Values live in memory only, as [secret.String]; [Set.Vars] reveals them
// for the child's environment and nothing else does. Errors and log
// messages name paths, keys and variables, never values, and nothing is
// written to disk.
package secretenv

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Spec asks for variables from one secret: one key under a name (-env
// NAME=PATH#KEY), or every key, each under its own name ([VarName], -path
// PATH).
type Spec struct {
	// Name is the variable; empty for every key of the secret.
	Name string
	// Path is the secret, as the user wrote it.
	Path string
	// Key is the key in the secret's data; empty when Name is.
	Key string
	// Origin says where the spec was given, for errors: "-env",
	// "-path", "vars.env:3".
	Origin string
}

// String describes the spec for errors, without any value.
func (s Spec) String() string {
	if s.Name == "" {
		return s.Origin + " " + s.Path
	}
	return s.Origin + " " + s.Name + "=" + s.Path + "#" + s.Key
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ParseEnv parses NAME=PATH#KEY. The key is what follows the last "#".
func ParseEnv(s, origin string) (Spec, error) {
	name, ref, ok := strings.Cut(s, "=")
	if !ok {
		return Spec{}, fmt.Errorf("%s %q: want NAME=PATH#KEY", origin, s)
	}
	name = strings.TrimSpace(name)
	if !nameRE.MatchString(name) {
		return Spec{}, fmt.Errorf("%s %q: %q is not a variable name (letters, digits and _, not starting with a digit)", origin, s, name)
	}
	i := strings.LastIndex(ref, "#")
	if i < 0 {
		return Spec{}, fmt.Errorf("%s %q: want NAME=PATH#KEY (no #KEY after the path)", origin, s)
	}
	path, key := cleanPath(ref[:i]), strings.TrimSpace(ref[i+1:])
	if path == "" || key == "" {
		return Spec{}, fmt.Errorf("%s %q: want NAME=PATH#KEY", origin, s)
	}
	return Spec{Name: name, Path: path, Key: key, Origin: origin}, nil
}

// ParsePath parses a -path argument: every key of the secret.
func ParsePath(s, origin string) (Spec, error) {
	p := cleanPath(s)
	if p == "" || strings.Contains(p, "#") {
		return Spec{}, fmt.Errorf("%s %q: want the path of a secret (every key becomes a variable)", origin, s)
	}
	return Spec{Path: p, Origin: origin}, nil
}

// ParseFile parses lines of NAME=PATH#KEY; blank lines and lines starting
// with # are skipped. name is the file's name, for errors.
func ParseFile(r io.Reader, name string) ([]Spec, error) {
	var out []Spec
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		s, err := ParseEnv(line, fmt.Sprintf("%s:%d", name, n))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return out, nil
}

func cleanPath(p string) string { return strings.Trim(strings.TrimSpace(p), "/") }

// VarName is the variable a key of a -path secret becomes: upper-cased,
// every character other than a letter, a digit or _ replaced by _, and a
// leading digit prefixed with _ ("api-key" → API_KEY, "2fa" → _2FA).
func VarName(key string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(key) {
		if r == '_' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		s = "_" + s
	}
	return s
}
