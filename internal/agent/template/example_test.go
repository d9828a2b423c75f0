package template_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-secrets/vigil/internal/agent/template"
)

// staticSource is a Source with one KV v2 secret.
type staticSource struct{}

func (staticSource) Read(_ context.Context, path string) (*template.Secret, error) {
	if path != "secret/data/app" {
		return nil, template.ErrNotFound
	}
	return &template.Secret{Data: map[string]any{
		"data":     map[string]any{"password": "correct-horse"},
		"metadata": map[string]any{"version": "7"},
	}}, nil
}

func (staticSource) Write(context.Context, string, map[string]string) (*template.Secret, error) {
	return nil, template.ErrNotFound
}

func (staticSource) List(context.Context, string) ([]string, error) { return nil, nil }

// The agent's loop for one template block: parse once, render against a
// Cache shared by all templates, write the file, and plan the next read.
func Example() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	dest := filepath.Join(dir, "db.env")

	tmpl, err := template.Parse(
		`{{ with secret "secret/data/app" }}DB_PASSWORD={{ .Data.data.password }}{{ end }}`,
		template.Options{Name: dest, ErrorOnMissingKey: true},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	cache := template.NewCache(staticSource{})
	res, err := tmpl.Render(context.Background(), cache)
	if err != nil {
		fmt.Println(err)
		return
	}
	changed, err := template.WriteFile(dest, res.Output, template.WriteOptions{Perms: 0o600, CreateDestDirs: true})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range res.Dependencies {
		action, after := d.Plan(5 * time.Minute)
		fmt.Println(d, action, after)
	}
	fmt.Println("written:", changed)
	// Output:
	// read secret/data/app reread 5m0s
	// written: true
}
