package secretenv

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

func TestParse(t *testing.T) {
	t.Parallel()
	s, err := ParseEnv("OPENAI_API_KEY=secret/ml/openai#api_key", "-env")
	if err != nil || s != (Spec{Name: "OPENAI_API_KEY", Path: "secret/ml/openai", Key: "api_key", Origin: "-env"}) {
		t.Errorf("ParseEnv = %+v, %v", s, err)
	}
	// The key is after the last #; slashes around the path go.
	if s, err := ParseEnv("X=/kv/a#b#c", "-env"); err != nil || s.Path != "kv/a#b" || s.Key != "c" {
		t.Errorf("ParseEnv = %+v, %v", s, err)
	}
	for _, bad := range []string{"secret/x#k", "X=secret/x", "1X=secret/x#k", "X-Y=secret/x#k", "X=#k", "X=secret/x#", "=secret/x#k"} {
		if _, err := ParseEnv(bad, "-env"); err == nil {
			t.Errorf("ParseEnv(%q) accepted", bad)
		}
	}
	if s, err := ParsePath("/secret/ml/", "-path"); err != nil || s.Path != "secret/ml" || s.Name != "" {
		t.Errorf("ParsePath = %+v, %v", s, err)
	}
	if _, err := ParsePath("secret/x#k", "-path"); err == nil {
		t.Error("ParsePath accepted a #KEY")
	}
	specs, err := ParseFile(strings.NewReader("# the model's keys\n\nOPENAI_API_KEY=secret/ml/openai#api_key\n  HF_TOKEN = secret/ml/hf#token \n"), "vars.env")
	if err != nil || len(specs) != 2 || specs[1].Name != "HF_TOKEN" || specs[1].Path != "secret/ml/hf" || specs[1].Origin != "vars.env:4" {
		t.Errorf("ParseFile = %+v, %v", specs, err)
	}
	if _, err := ParseFile(strings.NewReader("A=x#y\nnonsense\n"), "vars.env"); err == nil || !strings.Contains(err.Error(), "vars.env:2") {
		t.Errorf("ParseFile of a bad line: %v", err)
	}
	for key, want := range map[string]string{"api_key": "API_KEY", "api-key": "API_KEY", "db.host": "DB_HOST", "2fa": "_2FA", "Ünï": "_N_", "": "_"} {
		if got := VarName(key); got != want {
			t.Errorf("VarName(%q) = %q, want %q", key, got, want)
		}
	}
}

// server starts a server with KV v2 at secret/ and KV v1 at kv1/.
func server(t *testing.T) *api.Client {
	t.Helper()
	srv := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root, err := api.NewClient(api.Config{Address: srv.URL, Token: srv.RootToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().Mount(t.Context(), "kv1", api.MountInput{Type: "kv", Options: map[string]string{"version": "1"}}); err != nil {
		t.Fatal(err)
	}
	return root
}

func write(t *testing.T, c *api.Client, path string, data map[string]any) {
	t.Helper()
	if _, err := c.Logical().Write(t.Context(), path, data); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

func specs(t *testing.T, env []string, paths ...string) []Spec {
	t.Helper()
	var out []Spec
	for _, e := range env {
		s, err := ParseEnv(e, "-env")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	for _, p := range paths {
		s, err := ParsePath(p, "-path")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func load(t *testing.T, c *api.Client, sp []Spec) (*Set, error) {
	t.Helper()
	s, err := New(sp, Options{Client: c})
	if err != nil {
		return nil, err
	}
	return s, s.Load(t.Context(), lifetime.RetryOptions{Retries: 1})
}

func TestLoad(t *testing.T) {
	t.Parallel()
	c := server(t)
	write(t, c, "secret/data/ml/openai", map[string]any{"data": map[string]any{"api_key": "sk-live", "org-id": "acme", "n": 3, "on": true, "cfg": map[string]any{"a": 1}}})
	write(t, c, "kv1/app", map[string]any{"password": "pw-1"})

	s, err := load(t, c, specs(t, []string{"OPENAI_API_KEY=secret/ml/openai#api_key", "RAW=secret/data/ml/openai#org-id", "PW=kv1/app#password"}, "secret/ml/openai"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`API_KEY=sk-live`, `CFG={"a":1}`, `N=3`, `ON=true`, `OPENAI_API_KEY=sk-live`, `ORG_ID=acme`, `PW=pw-1`, `RAW=acme`}
	if got := s.Vars(); !slices.Equal(got, want) {
		t.Errorf("Vars = %v\nwant %v", got, want)
	}
	if got := s.ReadPaths(); !slices.Equal(got, []string{"secret/data/ml/openai", "secret/data/ml/openai", "kv1/app"}) {
		t.Errorf("ReadPaths = %v", got)
	}
	if len(s.Leases()) != 0 {
		t.Errorf("leases: %v", s.Leases())
	}
}

func TestLoadErrorsNameNoValue(t *testing.T) {
	t.Parallel()
	c := server(t)
	write(t, c, "secret/data/a", map[string]any{"data": map[string]any{"api_key": "sk-a", "API-KEY": "sk-b"}})
	write(t, c, "secret/data/b", map[string]any{"data": map[string]any{"api_key": "sk-c"}})
	write(t, c, "secret/data/gone", map[string]any{"data": map[string]any{"k": "sk-d"}})
	if _, err := c.Logical().Delete(t.Context(), "secret/data/gone"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		sp   []Spec
		want string
	}{
		{"missing key", specs(t, []string{"X=secret/b#nope"}), `secret/data/b: no key "nope" (it has "api_key")`},
		{"missing secret", specs(t, []string{"X=secret/none#k"}), "secret/data/none: no secret there"},
		{"deleted", specs(t, []string{"X=secret/gone#k"}), "version 1 is deleted or destroyed"},
		{"two keys, one name", specs(t, nil, "secret/a"), "variable API_KEY is set twice"},
		{"two secrets, one name", specs(t, nil, "secret/b", "secret/a"), "variable API_KEY is set twice"},
		{"-env and -path", specs(t, []string{"API_KEY=secret/b#api_key"}, "secret/b"), "variable API_KEY is set twice: by -env API_KEY=secret/b#api_key and by -path secret/b (key \"api_key\")"},
		{"metadata", specs(t, []string{"X=secret/metadata/b#k"}), "is KV v2 metadata"},
		{"mount", specs(t, nil, "secret"), "is a KV mount"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(t, c, tt.sp)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load = %v, want %q", err, tt.want)
			}
			if !errors.Is(err, lifetime.ErrPermanent) {
				t.Errorf("%v is retried", err)
			}
			if strings.Contains(err.Error(), "sk-") {
				t.Errorf("the error holds a value: %v", err)
			}
		})
	}
	if _, err := New(specs(t, []string{"X=secret/a#api_key", "X=secret/b#api_key"}), Options{Client: c}); err == nil || !strings.Contains(err.Error(), "variable X is set twice") {
		t.Errorf("New with a name twice: %v", err)
	}
}

// TestCheck: only a change of the variables counts: a new KV version
// with the same values does not, nor does the volatile ttl of static
// credentials; a failed read keeps the old values.
func TestCheck(t *testing.T) {
	t.Parallel()
	c := server(t)
	ctx := t.Context()
	write(t, c, "secret/data/app", map[string]any{"data": map[string]any{"key": "v1", "other": "o1"}})
	// Shaped like database/static-creds: ttl changes at every read.
	write(t, c, "kv1/static", map[string]any{"username": "svc", "password": "p1", "last_vault_rotation": "2025-01-01T00:00:00Z", "rotation_period": 86400, "ttl": 100})
	s, err := load(t, c, specs(t, []string{"K=secret/app#key"}, "kv1/static"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(hint string) []string {
		t.Helper()
		changed, err := s.Check(ctx, hint)
		if err != nil {
			t.Fatal(err)
		}
		return changed
	}
	if ch := check(""); ch != nil {
		t.Errorf("nothing changed, Check = %v", ch)
	}
	write(t, c, "secret/data/app", map[string]any{"data": map[string]any{"key": "v1", "other": "o2"}})
	write(t, c, "kv1/static", map[string]any{"username": "svc", "password": "p1", "last_vault_rotation": "2025-01-01T00:00:00Z", "rotation_period": 86400, "ttl": 90})
	if ch := check(""); ch != nil {
		t.Errorf("a new version with the same K, and a new ttl: Check = %v", ch)
	}
	write(t, c, "secret/data/app", map[string]any{"data": map[string]any{"key": "v2"}})
	if ch := check("kv1/static"); ch != nil {
		t.Errorf("a hint for another path: Check = %v", ch)
	}
	if ch := check("secret/data/app"); !slices.Equal(ch, []string{"secret/app"}) {
		t.Errorf("after a new K: Check = %v", ch)
	}
	write(t, c, "kv1/static", map[string]any{"username": "svc", "password": "p2", "last_vault_rotation": "2025-01-02T00:00:00Z", "rotation_period": 86400, "ttl": 86400})
	if ch := check(""); !slices.Equal(ch, []string{"kv1/static"}) {
		t.Errorf("after a rotation: Check = %v", ch)
	}
	if got := s.Vars(); !slices.Contains(got, "K=v2") || !slices.Contains(got, "PASSWORD=p2") || !slices.Contains(got, "TTL=86400") {
		t.Errorf("Vars = %v", got)
	}
	if _, err := c.Logical().Delete(ctx, "secret/data/app"); err != nil {
		t.Fatal(err)
	}
	if ch, err := s.Check(ctx, ""); err == nil || ch != nil || strings.Contains(err.Error(), "v2") {
		t.Errorf("a deleted secret: Check = %v, %v", ch, err)
	}
	if !slices.Contains(s.Vars(), "K=v2") {
		t.Error("a failed read dropped the values")
	}
}
