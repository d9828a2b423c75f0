package framework

import (
	"reflect"
	"regexp"
	"testing"
)

// tailPatterns are the shapes compileTail must recognize, and patterns
// it must leave to the regexp engine.
var (
	tailPatterns = []string{
		`data/(?P<path>.*[^/])`, `metadata/(?P<path>.*)`, `(?P<path>.*)`, `creds/(?P<name>.+)`,
		`a\.b/(?P<x>.*?)`, `roles/(?P<name>.+?)`, `x/(?P<p>.*[^/])`,
	}
	regexpPatterns = []string{
		`config`, `data/(?P<path>.*)/x`, `(?i)data/(?P<path>.*)`, `(?s)data/(?P<path>.*)`,
		`role/(?P<name>\w(([\w-.]+)?\w)?)`, `^data/(?P<path>.*)`, `data/(?P<path>.*)$`,
		`data/(.*)`, `(?:data|metadata)/(?P<path>.*)`, `data/(?P<path>[^/]+)`,
	}
	tailPaths = []string{
		"", "data", "data/", "data/k", "data/k/", "data/a/b/c", "data//", "data/\n", "data/a\nb",
		"data/a\n", "data/\n/", "data/é", "data/\xff", "data/\xff/", "metadata/", "metadata/x/",
		"creds/", "creds/n", "a.b/", "a.b/x", "aXb/x", "roles/r", "x/y", "x//", "/", "//",
	}
)

// TestTailMatch checks that the fast matcher answers what the regexp
// answers, submatch indexes included, and recognizes exactly the shapes it
// supports.
func TestTailMatch(t *testing.T) {
	for _, p := range regexpPatterns {
		if _, ok := compileTail(p); ok {
			t.Errorf("compileTail(%q) recognized a pattern it cannot match", p)
		}
	}
	for _, p := range tailPatterns {
		tm, ok := compileTail(p)
		if !ok {
			t.Errorf("compileTail(%q) = not recognized", p)
			continue
		}
		re := regexp.MustCompile(`^(?:` + p + `)$`)
		for _, path := range tailPaths {
			if got, want := tm.match(path, nil), re.FindStringSubmatchIndex(path); !reflect.DeepEqual(got, want) {
				t.Errorf("pattern %q, path %q: tail %v, regexp %v", p, path, got, want)
			}
		}
	}
}

func FuzzTailMatch(f *testing.F) {
	for _, path := range tailPaths {
		f.Add(path)
	}
	type pair struct {
		tm tailMatch
		re *regexp.Regexp
	}
	var pairs []pair
	for _, p := range tailPatterns {
		tm, _ := compileTail(p)
		pairs = append(pairs, pair{tm, regexp.MustCompile(`^(?:` + p + `)$`)})
	}
	f.Fuzz(func(t *testing.T, path string) {
		for _, p := range pairs {
			if got, want := p.tm.match(path, nil), p.re.FindStringSubmatchIndex(path); !reflect.DeepEqual(got, want) {
				t.Fatalf("pattern %q, path %q: tail %v, regexp %v", p.re, path, got, want)
			}
		}
	})
}
