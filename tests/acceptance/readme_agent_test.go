//go:build !e2e

package acceptance

import (
	"context"
	"encoding/pem"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/agent"
	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

// TestREADMEAgent runs section 14 of the README: its agent.hcl as
// written (the paths moved into a temporary directory, the server's
// address from VIGIL_ADDR, `systemctl reload` a script) with the
// server side of section 10 for the database credentials, then the
// section's `vigil kv get` through the agent's listener with no token,
// then its process supervisor blocks.
func TestREADMEAgent(t *testing.T) {
	section := readmeSection(t, "### 14. Secrets in files and a local API")
	_, s, _, _ := readmeDatabaseSetup(t, readmeSection(t, "### 10. A training job with its own database user"))
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	ctx := t.Context()
	if err := root.Sys().MountWithContext(ctx, "secret", &vault.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2("secret").Put(ctx, "ml/openai", map[string]any{"api_key": "sk-readme-1"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("approle", &vault.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().PutPolicy("gateway", `path "secret/data/ml/*" { capabilities = ["read"] }
path "database/creds/train-reader" { capabilities = ["read"] }
path "sys/events/subscribe/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	roleID, secretID := appRoleIDs(t, root, "gateway", map[string]any{"token_policies": "gateway", "token_ttl": "10m"})

	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}
	// Any CA will do: the server here speaks plain HTTP on loopback.
	tlsSrv := httptest.NewTLSServer(nil)
	tlsSrv.Close()
	ca := file("ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw})))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	proxyAddr := ln.Addr().String()
	ln.Close()
	reloaded := filepath.Join(dir, "reloaded")
	subst := strings.NewReplacer(
		"/etc/vigil/ca.pem", ca,
		"/etc/vigil/role-id", file("role-id", roleID),
		"/etc/vigil/secret-id", file("secret-id", secretID),
		"/run/vigil/token", filepath.Join(dir, "sink", "token"),
		"/run/secrets/", filepath.Join(dir, "secrets")+"/",
		"systemctl reload llm-gateway", "sh -c 'echo reload >> "+reloaded+"'",
		"127.0.0.1:8100", proxyAddr,
	)
	hcl := block(t, section, "hcl", 0, "agent.hcl")
	if got := strings.TrimSpace(block(t, section, "sh", 0, "the agent's command")); got != "vigil agent -config agent.hcl" {
		t.Fatalf("the section runs %q", got)
	}
	cfg, err := config.ParseAgent("agent.hcl", []byte(subst.Replace(hcl)))
	if err != nil {
		t.Fatal(err)
	}
	var log testlog.Buffer
	type result struct {
		code int
		err  error
	}
	runAgent := func(ctx context.Context, cfg *config.Agent, extra agent.Options) chan result {
		done := make(chan result, 1)
		go func() {
			extra.Config = cfg
			extra.Getenv = func(k string) string { return map[string]string{"VIGIL_ADDR": s.URL}[k] }
			extra.Logger = slog.New(slog.NewTextHandler(&log, nil))
			code, err := agent.Run(ctx, extra)
			done <- result{code, err}
		}()
		return done
	}
	actx, stop := context.WithCancel(ctx)
	done := runAgent(actx, cfg, agent.Options{})
	defer func() {
		if t.Failed() {
			t.Logf("the agent's log:\n%s", log.String())
		}
	}()

	openai := filepath.Join(dir, "secrets", "openai.env")
	waitFile(t, openai, "OPENAI_API_KEY=sk-readme-1\n")
	waitFile(t, filepath.Join(dir, "secrets", "database-url"), "@db/features")
	dbURL := readFile(t, filepath.Join(dir, "secrets", "database-url"))
	if !strings.HasPrefix(dbURL, "postgres://v-approle-") {
		t.Errorf("database-url: the user is not one the engine made")
	}
	waitFile(t, reloaded, "reload\n")
	if tok := strings.TrimSpace(readFile(t, filepath.Join(dir, "sink", "token"))); tok == "" {
		t.Fatal("the sink holds no token")
	}

	// A new version reaches the file within moments (change events).
	if _, err := root.KVv2("secret").Put(ctx, "ml/openai", map[string]any{"api_key": "sk-readme-2"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitFile(t, openai, "OPENAI_API_KEY=sk-readme-2\n")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the new version took %v", d)
	}
	waitFile(t, reloaded, "reload\nreload\n")
	if got := readFile(t, filepath.Join(dir, "secrets", "database-url")); got != dbURL {
		t.Error("a KV change issued new database credentials")
	}

	// The section's kv get through the agent, with no token at all.
	var getLine string
	joined := strings.Join(strings.Fields(strings.ReplaceAll(section, "\n", " ")), " ")
	if i := strings.Index(joined, "`VIGIL_ADDR=http://127.0.0.1:8100 vigil kv get "); i >= 0 {
		getLine = joined[i+1:]
		getLine = getLine[:strings.Index(getLine, "`")]
	}
	if getLine == "" {
		t.Fatal("the section has no VIGIL_ADDR=http://127.0.0.1:8100 vigil kv get command")
	}
	addr, cmd, _ := strings.Cut(getLine, " ")
	local := newDocShell(t, map[string]string{"HOME": t.TempDir(), "VIGIL_ADDR": strings.ReplaceAll(strings.TrimPrefix(addr, "VIGIL_ADDR="), "127.0.0.1:8100", proxyAddr)}, nil)
	out, err := local.run(shellCmd{line: cmd})
	if err != nil || !strings.Contains(out, "sk-readme-2") {
		t.Fatalf("%s: %v\n%s", getLine, err, out)
	}
	stop()
	if r := <-done; r.code != 0 || r.err != nil {
		t.Fatalf("the agent ended with %d, %v", r.code, r.err)
	}

	// Process supervisor mode: the section's env_template and exec blocks
	// with the same vault and auto_auth blocks.
	head := subst.Replace(hcl[:strings.Index(hcl, "\ntemplate {")])
	seen := filepath.Join(dir, "seen")
	exec := strings.ReplaceAll(block(t, section, "hcl", 1, "env_template and exec"), `["python", "serve.py"]`,
		`["sh", "-c", "echo \"$OPENAI_API_KEY\" > `+seen+`; exec sleep 600"]`)
	cfg, err = config.ParseAgent("exec.hcl", []byte(head+"\n"+exec))
	if err != nil {
		t.Fatal(err)
	}
	// The first agent removed the secret id file once read, as Vault
	// Agent does: put it back for the second.
	file("secret-id", secretID)
	actx, stop = context.WithCancel(ctx)
	done = runAgent(actx, cfg, agent.Options{Stdout: os.Stderr, Stderr: os.Stderr})
	waitFile(t, seen, "sk-readme-2\n")
	stop()
	// Stopped, the agent stops its child (SIGTERM) and ends with its
	// status.
	if r := <-done; r.code != 128+15 || r.err != nil {
		t.Fatalf("the supervisor ended with %d, %v; want the child's 143", r.code, r.err)
	}
	for _, v := range []string{"sk-readme-", secretID} {
		if strings.Contains(log.String(), v) {
			t.Errorf("the agent's log holds a secret (%.6s…)", v)
		}
	}
}
