package mount

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

func TestRouterMatch(t *testing.T) {
	r := NewRouter()
	r.Replace(map[string]*Route{
		"secret/":    {Entry: &Entry{Path: "secret/"}},
		"ml/team-a/": {Entry: &Entry{Path: "ml/team-a/"}},
		"ml/":        {Entry: &Entry{Path: "ml/"}},
		"sys/":       {Entry: &Entry{Path: "sys/"}},
	})
	tests := []struct {
		path, mount, rest string
		ok                bool
	}{
		{"secret/data/foo", "secret/", "data/foo", true},
		{"secret/", "secret/", "", true},
		{"secret", "secret/", "", true},
		{"ml/team-a/x/y", "ml/team-a/", "x/y", true},
		{"ml/team-b/x", "ml/", "team-b/x", true},
		{"ml/team-a", "ml/team-a/", "", true},
		{"secrets/foo", "", "", false},
		{"", "", "", false},
		{"sys/mounts", "sys/", "mounts", true},
	}
	for _, tt := range tests {
		rt, rest, ok := r.Match(tt.path)
		if ok != tt.ok {
			t.Errorf("Match(%q) ok = %v, want %v", tt.path, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if rt.Entry.Path != tt.mount || rest != tt.rest {
			t.Errorf("Match(%q) = %q, %q; want %q, %q", tt.path, rt.Entry.Path, rest, tt.mount, tt.rest)
		}
	}
}

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"secret", "secret/", false},
		{"/secret/", "secret/", false},
		{"a/b", "a/b/", false},
		{"", "", true},
		{"/", "", true},
		{"a/../b", "", true},
		{"a//b", "", true},
	}
	for _, tt := range tests {
		got, err := NormalizePath(tt.in)
		if tt.bad {
			if !errors.Is(err, logical.ErrInvalidRequest) {
				t.Errorf("NormalizePath(%q) err = %v, want ErrInvalidRequest", tt.in, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestNormalizeNewPath: a new mount's path must be UTF-8; an existing
// one's need not be, so that it can still be disabled.
func TestNormalizeNewPath(t *testing.T) {
	if got, err := NormalizeNewPath("/ml/keys"); err != nil || got != "ml/keys/" {
		t.Errorf("NormalizeNewPath = %q, %v; want ml/keys/", got, err)
	}
	if _, err := NormalizeNewPath("ml\xff"); !errors.Is(err, logical.ErrInvalidRequest) {
		t.Errorf("a path that is not UTF-8: err = %v, want ErrInvalidRequest", err)
	}
	if _, err := NormalizeNewPath("a/../b"); !errors.Is(err, logical.ErrInvalidRequest) {
		t.Errorf("a path with ..: err = %v, want ErrInvalidRequest", err)
	}
	if got, err := NormalizePath("ml\xff"); err != nil || got != "ml\xff/" {
		t.Errorf("NormalizePath of an existing mount's path = %q, %v", got, err)
	}
}

func TestTableConflictsAndPersistence(t *testing.T) {
	ctx := context.Background()
	tbl := &Table{}
	e := NewEntry("secret/", "kv", time.Unix(1, 0))
	e.Options = map[string]string{"version": "2"}
	tbl.Entries = append(tbl.Entries, e)
	for _, p := range []string{"secret/", "secret/sub/", "sec/"} {
		want := p != "sec/"
		if got := tbl.Conflicts(p); got != want {
			t.Errorf("Conflicts(%q) = %v, want %v", p, got, want)
		}
	}
	if !tbl.Conflicts("secret/") {
		t.Fatal("exact path must conflict")
	}
	s := logicaltest.New()
	if _, err := Load(ctx, s, "core/mounts"); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("Load missing: %v", err)
	}
	if err := tbl.Save(ctx, s, "core/mounts"); err != nil {
		t.Fatal(err)
	}
	got, err := Load(ctx, s, "core/mounts")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != 1 || got.Entries[0].UUID != e.UUID || got.Entries[0].Options["version"] != "2" {
		t.Fatalf("round trip: %+v", got.Entries[0])
	}
	c := got.Clone()
	c.Entries[0].Options["version"] = "1"
	if got.Entries[0].Options["version"] != "2" {
		t.Fatal("Clone shares options map")
	}
}
