package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const migrateBolt = `storage_source "bolt" {
  path = "/var/lib/vigil/vigil.db"
}

storage_destination "bolt" {
  path = "/var/lib/vigil/copy.db"
}
`

func TestParseMigrate(t *testing.T) {
	cfg, err := ParseMigrate("migrate.hcl", []byte(migrateBolt))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Type != "bolt" || cfg.Source.Bolt.Path != "/var/lib/vigil/vigil.db" || cfg.Source.Line != 1 ||
		cfg.Destination.Type != "bolt" || cfg.Destination.Bolt.Path != "/var/lib/vigil/copy.db" || cfg.Destination.Line != 5 {
		t.Fatalf("%+v %+v", cfg.Source, cfg.Destination)
	}
	// The JSON form.
	cfg, err = ParseMigrate("migrate.json", []byte(`{"storage_source": {"bolt": {"path": "a.db"}}, "storage_destination": {"bolt": {"path": "b.db"}}}`))
	if err != nil || cfg.Source.Bolt.Path != "a.db" || cfg.Destination.Bolt.Path != "b.db" {
		t.Fatalf("JSON: %+v %v", cfg, err)
	}
	// From a file.
	path := filepath.Join(t.TempDir(), "migrate.hcl")
	if err := os.WriteFile(path, []byte(migrateBolt), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMigrate(path); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadMigrate(path + ".missing"); err == nil {
		t.Fatal("a missing file loaded")
	}
}

func TestParseMigrateErrors(t *testing.T) {
	src := `storage_source "bolt" { path = "a.db" }` + "\n"
	dst := `storage_destination "bolt" { path = "b.db" }` + "\n"
	tests := []struct {
		name, src string
		line      int
		msg       string
	}{
		{"no source", dst, 0, "no storage_source block"},
		{"no destination", src, 0, "no storage_destination block"},
		{"two sources", src + dst + src, 3, "only one storage_source block"},
		{"unknown key", src + dst + "cluster_addr = \"x\"\n", 3, `unknown key "cluster_addr"`},
		{"server config", src + dst + "storage \"bolt\" { path = \"c.db\" }\n", 3, `unknown key "storage"`},
		{"inmem", src + "storage_destination \"inmem\" {}\n", 2, `storage_destination "inmem" cannot be migrated`},
		{"unknown block key", src + "storage_destination \"bolt\" {\n  path = \"b.db\"\n  size = 3\n}\n", 4, `unknown key "size"`},
		{"no path", src + "storage_destination \"bolt\" {}\n", 2, "needs a path"},
		{"unknown type", src + "storage_destination \"consul\" {}\n", 2, `unsupported storage type "consul"`},
		{"syntax", src + "storage_destination \"bolt\" {\n", 0, "syntax error"},
		{"unlabelled", src + "storage_destination { path = \"b.db\" }\n", 2, "must be a labelled block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMigrate("m.hcl", []byte(tt.src))
			var pe *ParseError
			if !errors.As(err, &pe) || !strings.Contains(pe.Msg, tt.msg) || (tt.line != 0 && pe.Line != tt.line) {
				t.Fatalf("error %v, want line %d %q", err, tt.line, tt.msg)
			}
		})
	}
}

func FuzzParseMigrate(f *testing.F) {
	f.Add([]byte(migrateBolt))
	f.Add([]byte(`{"storage_source": {"bolt": {"path": "a"}}}`))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := ParseMigrate("fuzz.hcl", src) // must not panic
		if err == nil && (cfg.Source.Type == "" || cfg.Destination.Type == "") {
			t.Fatalf("accepted without both stores: %+v", cfg)
		}
	})
}
