package source

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/template"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

func client(t *testing.T, url, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func write(t *testing.T, c *api.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := c.Logical().Write(context.Background(), path, data); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func render(t *testing.T, src template.Source, text string) (*template.Result, error) {
	t.Helper()
	tmpl, err := template.Parse(text, template.Options{Name: "t", ErrorOnMissingKey: true})
	if err != nil {
		t.Fatal(err)
	}
	return tmpl.Render(t.Context(), src)
}

// Templates written for Vault Agent render against a real server.
func TestAgainstServer(t *testing.T) {
	srv := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root := client(t, srv.URL, srv.RootToken)
	ctx := context.Background()
	if err := root.Sys().Mount(ctx, "kv", api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	write(t, root, "secret/data/ml/db", map[string]any{"data": map[string]any{"password": "first-pw"}})
	write(t, root, "secret/data/ml/db", map[string]any{"data": map[string]any{"password": "second-pw", "port": 5432}})
	write(t, root, "secret/data/ml/gone", map[string]any{"data": map[string]any{"x": "y"}})
	if _, err := root.Logical().Delete(ctx, "secret/data/ml/gone"); err != nil {
		t.Fatal(err)
	}
	write(t, root, "kv/app", map[string]any{"api_key": "kv1-key"})

	src := New(root)
	for _, tc := range []struct{ name, text, want string }{
		{"kv2 by API path", `{{ with secret "secret/data/ml/db" }}{{ .Data.data.password }} v{{ .Data.metadata.version }} {{ .Data.data.port }}{{ end }}`, "second-pw v2 5432"},
		{"kv2 by CLI path", `{{ with secret "secret/ml/db" }}{{ .Data.data.password }}{{ end }}`, "second-pw"},
		{"kv2 version", `{{ with secret "secret/ml/db?version=1" }}{{ .Data.data.password }}{{ end }}`, "first-pw"},
		{"kv2 list", `{{ range secrets "secret/ml/" }}{{ . }},{{ end }}|{{ range secrets "secret/metadata/ml" }}{{ . }},{{ end }}`, "db,gone,|db,gone,"},
		{"kv1", `{{ with secret "kv/app" }}{{ .Data.api_key }}{{ end }}`, "kv1-key"},
		{"empty list", `{{ range secrets "kv/none/" }}{{ . }}{{ else }}none{{ end }}`, "none"},
		{"token create", `{{ with secret "auth/token/create" "policies=default" "ttl=1h" "no_default_policy=false" }}{{ if .Auth.ClientToken }}token{{ end }} {{ .Auth.LeaseDuration }}{{ end }}`, "token 3600"},
		{"kv2 json", `{{ with secret "secret/ml/db" }}{{ .Data.data | toJSON }}{{ end }}`, `{"password":"second-pw","port":5432}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := render(t, src, tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Output) != tc.want {
				t.Fatalf("rendered %q, want %q", res.Output, tc.want)
			}
		})
	}

	// A missing secret, and a deleted KV v2 version, are not found.
	for _, p := range []string{"secret/ml/nope", "secret/ml/gone", "kv/nope"} {
		_, err := render(t, src, `{{ with secret "`+p+`" }}x{{ end }}`)
		if !errors.Is(err, template.ErrNotFound) {
			t.Errorf("%s: %v", p, err)
		}
	}

	// A token the policy refuses: the API's error, with its status.
	if err := root.Sys().PutPolicy(ctx, "only-kv", `path "kv/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	tok, err := root.Logical().Write(ctx, "auth/token/create", map[string]any{"policies": []string{"only-kv"}})
	if err != nil {
		t.Fatal(err)
	}
	limited := New(client(t, srv.URL, tok.Auth.ClientToken))
	if res, err := render(t, limited, `{{ with secret "kv/app" }}{{ .Data.api_key }}{{ end }}`); err != nil || string(res.Output) != "kv1-key" {
		t.Fatalf("%v %q", err, res)
	}
	_, err = render(t, limited, `{{ with secret "secret/ml/db" }}{{ .Data.data.password }}{{ end }}`)
	if api.StatusCode(err) != http.StatusForbidden || strings.Contains(err.Error(), "second-pw") {
		t.Fatalf("%v", err)
	}
}
