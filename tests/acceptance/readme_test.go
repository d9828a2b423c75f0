//go:build !e2e

package acceptance

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/cli"
)

// The README's walkthroughs are run as written: the tests below take the
// shell and YAML blocks out of a README section and run every command of
// them, with the vigil CLI in-process, so a command the README shows and
// the server refuses fails the suite. The test stands in for the world
// around Vigil (an OIDC issuer, a Kubernetes API server, the files kubectl
// would write) and maps the README's host names and paths to its own.

// shellCmd is one command of a shell block: a line (continuations
// joined, comment removed) and the here-document it reads, if any, with
// $NAME expanded in it when its delimiter is not quoted (as sh does).
type shellCmd struct {
	line   string
	stdin  string
	expand bool
}

var heredocRE = regexp.MustCompile(`\s*<<-?('?)([A-Za-z_]+)'?\s*$`)

// shellCommands splits a shell block into commands.
func shellCommands(block string) []shellCmd {
	var out []shellCmd
	lines := strings.Split(block, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		line = strings.TrimSpace(stripComment(line))
		if line == "" {
			continue
		}
		c := shellCmd{line: line}
		if m := heredocRE.FindStringSubmatchIndex(line); m != nil {
			end := line[m[4]:m[5]]
			c.expand = m[2] == m[3] // no quote before the delimiter
			c.line = strings.TrimSpace(line[:m[0]])
			var body []string
			for i++; i < len(lines) && lines[i] != end; i++ {
				body = append(body, lines[i])
			}
			c.stdin = strings.Join(body, "\n") + "\n"
		}
		out = append(out, c)
	}
	return out
}

// docShell runs README commands: vigil (or ./vigil) in-process, `echo
// '...' | vigil ...`, NAME=$(vigil ...) and NAME=value (with or without
// export). Programs in skip are left to the test, which provides what
// they would have produced; anything else fails the test.
type docShell struct {
	t     *testing.T
	env   map[string]string
	subst *strings.Replacer
	skip  map[string]bool
	// ran counts the vigil commands run.
	ran int
}

func newDocShell(t *testing.T, env map[string]string, subst map[string]string, skip ...string) *docShell {
	// Longest first, so that a README value containing another is
	// replaced whole.
	froms := slices.SortedFunc(maps.Keys(subst), func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var pairs []string
	for _, from := range froms {
		pairs = append(pairs, from, subst[from])
	}
	sh := &docShell{t: t, env: map[string]string{}, subst: strings.NewReplacer(pairs...), skip: map[string]bool{}}
	for k, v := range env {
		sh.env[k] = v
	}
	for _, s := range skip {
		sh.skip[s] = true
	}
	return sh
}

// mustRun runs every command of a shell block and fails the test at the
// first that fails.
func (sh *docShell) mustRun(block string) {
	sh.t.Helper()
	if err := sh.runLines(shellCommands(block)); err != nil {
		sh.t.Fatal(err)
	}
}

// runLines runs the commands in order and returns the first failure.
func (sh *docShell) runLines(cmds []shellCmd) error {
	for _, c := range cmds {
		if _, err := sh.run(c); err != nil {
			return err
		}
	}
	return nil
}

var assignRE = regexp.MustCompile(`^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)

// run runs one command and returns its stdout.
func (sh *docShell) run(c shellCmd) (string, error) {
	if sh.skip[strings.Fields(c.line)[0]] {
		return "", nil
	}
	if m := assignRE.FindStringSubmatch(c.line); m != nil {
		name, value := m[1], m[2]
		if inner, ok := strings.CutPrefix(value, "$("); ok && strings.HasSuffix(inner, ")") {
			inner = strings.TrimSuffix(inner, ")")
			if sh.skip[strings.Fields(inner)[0]] {
				return "", nil // the test set the variable
			}
			out, err := sh.run(shellCmd{line: inner})
			if err != nil {
				return "", err
			}
			sh.env[name] = strings.TrimRight(out, "\n")
			return "", nil
		}
		words, err := sh.words(value)
		if err != nil || len(words) != 1 {
			return "", fmt.Errorf("%s: want one word after =: %v", c.line, err)
		}
		sh.env[name] = words[0]
		return "", nil
	}
	stdin := c.stdin
	if c.expand {
		var err error
		if stdin, err = sh.expand(stdin); err != nil {
			return "", fmt.Errorf("%s: here-document: %w", c.line, err)
		}
	}
	line := c.line
	if left, right, ok := strings.Cut(line, " | "); ok {
		echo, err := sh.words(left)
		if err != nil || len(echo) == 0 || echo[0] != "echo" {
			return "", fmt.Errorf("%s: only `echo ... | vigil ...` pipes are supported", c.line)
		}
		stdin, line = strings.Join(echo[1:], " ")+"\n", right
	}
	args, err := sh.words(line)
	if err != nil {
		return "", fmt.Errorf("%s: %w", c.line, err)
	}
	if args[0] != "vigil" && args[0] != "./vigil" {
		return "", fmt.Errorf("%s: the test does not know how to run %q", c.line, args[0])
	}
	var out, errOut strings.Builder
	code := cli.Run(context.Background(), args[1:], strings.NewReader(stdin), &out, &errOut, func(k string) string { return sh.env[k] })
	sh.ran++
	if code != 0 {
		return out.String(), fmt.Errorf("README command %q: exit %d\n%s", c.line, code, errOut.String())
	}
	return out.String(), nil
}

var varRE = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)

// expand replaces $NAME and ${NAME} in text, as in an unquoted
// here-document; an unset name is an error.
func (sh *docShell) expand(text string) (string, error) {
	var missing []string
	out := varRE.ReplaceAllStringFunc(text, func(m string) string {
		name := varRE.FindStringSubmatch(m)[1]
		v, ok := sh.env[name]
		if !ok {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("$%s is not set", missing[0])
	}
	return out, nil
}

// words splits a line into words as sh would for what the README uses:
// blanks separate words, '...' is literal, "..." and bare text expand
// $NAME and ${NAME}. Each word then goes through the test's substitutions.
func (sh *docShell) words(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || (r == '"' && quote == 0):
			quote, inWord = r, true
		case r == '"' && quote == '"':
			quote = 0
		case r == '$':
			if i+1 < len(rs) && rs[i+1] == '(' {
				return nil, fmt.Errorf("command substitution is supported only as NAME=$(...)")
			}
			j := i + 1
			braced := j < len(rs) && rs[j] == '{'
			if braced {
				j++
			}
			k := j
			for k < len(rs) && (rs[k] == '_' || rs[k] >= 'a' && rs[k] <= 'z' || rs[k] >= 'A' && rs[k] <= 'Z' || rs[k] >= '0' && rs[k] <= '9') {
				k++
			}
			if k == j {
				return nil, fmt.Errorf("a lone $")
			}
			v, ok := sh.env[string(rs[j:k])]
			if !ok {
				return nil, fmt.Errorf("$%s is not set", string(rs[j:k]))
			}
			cur.WriteString(v)
			inWord = true
			if braced {
				k++
			}
			i = k - 1
		case quote == 0 && (r == ' ' || r == '\t'):
			if inWord {
				words = append(words, sh.subst.Replace(cur.String()))
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, sh.subst.Replace(cur.String()))
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("an empty command")
	}
	return words, nil
}
