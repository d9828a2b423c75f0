package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/pgtest"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/postgres"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestOpenStoragePostgres: where the connection URL comes from, and that
// it never shows in an error.
func TestOpenStoragePostgres(t *testing.T) {
	db := pgtest.New(t)
	logger := slog.New(slog.DiscardHandler)
	const pw = "N0tInErrors"
	unreachable := "postgres://vigil:" + pw + "@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	st := func(url string, ha bool) config.Storage {
		return config.Storage{Type: "postgresql", Line: 3, Postgres: &config.PostgresStorage{ConnectionURL: url, HAEnabled: ha, MaxParallel: 4}}
	}
	for _, tc := range []struct {
		name string
		st   config.Storage
		env  map[string]string
		ha   bool
	}{
		{"from the file", st(db.AdminURL(), false), nil, false},
		{"the environment overrides the file", st(unreachable, true), map[string]string{PGConnectionURLEnv: db.AdminURL()}, true},
		{"Vault's variable as a fallback", st("", false), map[string]string{"VAULT_PG_CONNECTION_URL": db.AdminURL()}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := openStorage(t.Context(), tc.st, logger, env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			defer b.(storage.Closer).Close()
			pb, ok := b.(*postgres.Backend)
			if !ok || pb.HAEnabled() != tc.ha {
				t.Fatalf("backend %T, HA %v; want HA %v", b, ok && pb.HAEnabled(), tc.ha)
			}
			if _, ok := b.(storage.HABackend); !ok {
				t.Fatal("not a storage.HABackend")
			}
			if err := b.Put(t.Context(), "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
		})
	}

	_, err := openStorage(t.Context(), st("", false), logger, env(nil))
	if err == nil || !strings.Contains(err.Error(), PGConnectionURLEnv) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("no URL at all: %v", err)
	}
	_, err = openStorage(t.Context(), st(unreachable, false), logger, env(nil))
	if err == nil || strings.Contains(err.Error(), pw) {
		t.Fatalf("unreachable database: %v", err)
	}
}

// TestConfigServerPostgres runs a config-file server on PostgreSQL, the
// URL in the environment: init, unseal, write a secret, restart, read it.
func TestConfigServerPostgres(t *testing.T) {
	db := pgtest.New(t)
	t.Setenv(PGConnectionURLEnv, db.AdminURL())
	dir := t.TempDir()
	port := freePort(t)
	cfgPath := filepath.Join(dir, "vigil.hcl")
	cfg := fmt.Sprintf(`storage "postgresql" {
  ha_enabled   = "true"
  max_parallel = "8"
}
listener "tcp" {
  address     = "127.0.0.1:%d"
  tls_disable = true
}
log_level = "warn"
`, port)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d/v1/", port)
	c := &http.Client{Timeout: 10 * time.Second}
	call := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("X-Vault-Token", token)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	waitUp := func(r *running) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := c.Get(base + "sys/health")
			if err == nil {
				resp.Body.Close()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the server never answered: %v; stderr: %s", err, r.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// With ha_enabled, an unsealed server is a standby until it holds the
	// leader lock: wait for the active's 200.
	waitActive := func() {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			if code, _ := call("GET", "sys/health", "", ""); code == 200 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the server never became active")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	r := start(t, "-config", cfgPath)
	waitUp(r)
	code, out := call("PUT", "sys/init", "", `{"secret_shares":1,"secret_threshold":1}`)
	if code != 200 {
		t.Fatalf("init: %d %v", code, out)
	}
	key := out["keys_base64"].([]any)[0].(string)
	root := out["root_token"].(string)
	if code, out := call("PUT", "sys/unseal", "", `{"key":"`+key+`"}`); code != 200 {
		t.Fatalf("unseal: %d %v", code, out)
	}
	waitActive()
	if code, out := call("POST", "sys/mounts/kv", root, `{"type":"kv"}`); code/100 != 2 {
		t.Fatalf("mount: %d %v", code, out)
	}
	if code, out := call("PUT", "kv/app", root, `{"password":"hunter2"}`); code/100 != 2 {
		t.Fatalf("write: %d %v", code, out)
	}
	r.cancel()
	select {
	case code := <-r.done:
		r.done <- code // for start's cleanup
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop")
	}

	r = start(t, "-config", cfgPath)
	waitUp(r)
	if code, out := call("PUT", "sys/unseal", "", `{"key":"`+key+`"}`); code != 200 {
		t.Fatalf("unseal after restart: %d %v", code, out)
	}
	waitActive()
	code, out = call("GET", "kv/app", root, "")
	if code != 200 || out["data"].(map[string]any)["password"] != "hunter2" {
		t.Fatalf("read after restart: %d %v", code, out)
	}
	if n := db.QueryString(t, "SELECT count(*)::text FROM vigil_kv_store"); n == "0" {
		t.Fatal("nothing was stored in PostgreSQL")
	}
}
