package acceptance

import (
	"os"
	"strings"
	"testing"
)

// Helpers shared by the README tests of both builds (in-process and e2e).

// readmeSection returns the README section whose heading starts with
// heading, up to the next heading of any level.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	start := -1
	for i, l := range lines {
		if start < 0 && strings.HasPrefix(l, heading) {
			start = i
			continue
		}
		if start >= 0 && strings.HasPrefix(l, "#") && !inFence(lines[start:i]) {
			return strings.Join(lines[start:i], "\n")
		}
	}
	if start < 0 {
		t.Fatalf("README.md has no section %q", heading)
	}
	return strings.Join(lines[start:], "\n")
}

// inFence reports whether the lines open a code fence they do not close.
func inFence(lines []string) bool {
	open := false
	for _, l := range lines {
		if strings.HasPrefix(l, "```") {
			open = !open
		}
	}
	return open
}

// codeBlocks returns the bodies of the section's fenced blocks of lang.
func codeBlocks(section, lang string) []string {
	var out []string
	var cur []string
	in, keep := false, false
	for _, l := range strings.Split(section, "\n") {
		switch {
		case !in && strings.HasPrefix(l, "```"):
			in, keep, cur = true, strings.TrimPrefix(l, "```") == lang, nil
		case in && strings.HasPrefix(l, "```"):
			if keep {
				out = append(out, strings.Join(cur, "\n")+"\n")
			}
			in = false
		case in:
			cur = append(cur, l)
		}
	}
	return out
}

// block returns the i-th block of lang in section, or fails naming what
// the test expected to find there.
func block(t *testing.T, section, lang string, i int, what string) string {
	t.Helper()
	bs := codeBlocks(section, lang)
	if i >= len(bs) {
		t.Fatalf("the README section has %d %s blocks; want %s as number %d", len(bs), lang, what, i+1)
	}
	return bs[i]
}

// stripComment removes a # comment that starts a word outside quotes.
func stripComment(line string) string {
	var quote rune
	prev := ' '
	for i, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '\'' || r == '"':
			quote = r
		case r == '#' && (prev == ' ' || prev == '\t'):
			return line[:i]
		}
		prev = r
	}
	return line
}
