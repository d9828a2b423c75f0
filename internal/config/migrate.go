package config

import (
	"fmt"
	"os"

	"github.com/hashicorp/hcl/hcl/ast"
)

// Migrate is the configuration of `vigil operator migrate`: the store to
// copy from and the store to copy to, each a storage block of the same
// form as the server's (storage "bolt" { ... }), as in Vault:
//
//	storage_source "bolt" {
//	  path = "/var/lib/vigil/vigil.db"
//	}
//	storage_destination "postgresql" {
//	  connection_url = "postgres://vigil@db.internal/vigil"
//	}
type Migrate struct {
	Source      Storage
	Destination Storage
}

// LoadMigrate reads and parses the migration configuration at path.
func LoadMigrate(path string) (*Migrate, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseMigrate(path, src)
}

// ParseMigrate parses a migration configuration; name is used in errors.
// Unknown keys, a missing or repeated block and a store that cannot be
// migrated (inmem, which holds nothing once its process ends) are errors
// that name the line.
func ParseMigrate(name string, src []byte) (*Migrate, error) {
	return parseWith(name, src, (*parser).migrate)
}

// migrate reads a migration configuration's two blocks.
func (p *parser) migrate(list *ast.ObjectList) (*Migrate, error) {
	var sources, dests []block
	for _, item := range list.Items {
		if len(item.Keys) == 0 {
			continue
		}
		key := keyName(item.Keys[0])
		switch key {
		case "storage_source", "storage_destination":
			bs, err := p.blocks(item)
			if err != nil {
				return nil, err
			}
			if key == "storage_source" {
				sources = append(sources, bs...)
			} else {
				dests = append(dests, bs...)
			}
		default:
			return nil, p.errorf(item.Pos(), "unknown key %q: a migration configuration has storage_source and storage_destination blocks", key)
		}
	}
	cfg := &Migrate{}
	for _, side := range []struct {
		key    string
		blocks []block
		out    *Storage
	}{
		{"storage_source", sources, &cfg.Source},
		{"storage_destination", dests, &cfg.Destination},
	} {
		switch len(side.blocks) {
		case 0:
			return nil, &ParseError{File: p.file, Msg: fmt.Sprintf(`no %s block: add %s "bolt" { path = "..." }`, side.key, side.key)}
		case 1:
		default:
			return nil, p.errorf(side.blocks[1].pos, "only one %s block is allowed", side.key)
		}
		b := side.blocks[0]
		if b.label == "inmem" {
			return nil, p.errorf(b.pos, "%s \"inmem\" cannot be migrated: an in-memory store holds nothing outside its server", side.key)
		}
		st, err := p.storage(b)
		if err != nil {
			return nil, err
		}
		*side.out = st
	}
	return cfg, nil
}
