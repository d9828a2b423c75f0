//go:build e2e

package acceptance

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/seal/pkcs11/softhsmtest"
)

// autoSealServer is a `vigil server` on bolt with an auto seal block.
type autoSealServer struct {
	dir, cfg, url string
	env           []string // for the server process
	p             *proc
	// logs is the output of the processes stopped so far.
	logs strings.Builder
}

func newAutoSealServer(t *testing.T, sealHCL string, env []string) *autoSealServer {
	t.Helper()
	dir := t.TempDir()
	addr := freeAddr(t)
	s := &autoSealServer{dir: dir, cfg: filepath.Join(dir, "vigil.hcl"), url: "http://" + addr, env: env}
	s.writeSeal(t, sealHCL)
	return s
}

// writeSeal writes the configuration with seal block sealHCL.
func (s *autoSealServer) writeSeal(t *testing.T, sealHCL string) {
	t.Helper()
	cfg := fmt.Sprintf("storage \"bolt\" {\n  path = %q\n}\nlistener \"tcp\" {\n  address = %q\n}\nlog_level = \"info\"\n%s",
		filepath.Join(s.dir, "vigil.db"), strings.TrimPrefix(s.url, "http://"), sealHCL)
	if err := os.WriteFile(s.cfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (s *autoSealServer) start(t *testing.T) {
	t.Helper()
	s.p = startServerEnv(t, s.env, "-config", s.cfg)
	waitHealthy(t, s.url, s.p)
}

// stop stops the server with SIGTERM and keeps its output.
func (s *autoSealServer) stop(t *testing.T) {
	t.Helper()
	s.p.stop(t, syscall.SIGTERM)
	s.logs.Write(s.p.output.Bytes())
	if !s.p.cmd.ProcessState.Success() {
		t.Fatalf("server did not stop cleanly:\n%s", s.p.output)
	}
}

// restart stops the server and starts it again; it must come back
// unsealed by itself.
func (s *autoSealServer) restart(t *testing.T) {
	t.Helper()
	s.stop(t)
	s.start(t)
	c := vaultClientAt(t, s.url, "")
	if h, err := c.Sys().Health(); err != nil || h.Sealed || !h.Initialized {
		t.Fatalf("after restart: %+v %v\n%s", h, err, s.p.output)
	}
}

// initAndWrite initializes the server with recovery keys through the
// Vault Go client and writes a secret.
func (s *autoSealServer) initAndWrite(t *testing.T) (root string) {
	t.Helper()
	c := vaultClientAt(t, s.url, "")
	init, err := c.Sys().Init(&vault.InitRequest{RecoveryShares: 5, RecoveryThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(init.Keys) != 0 || len(init.RecoveryKeys) != 5 {
		t.Fatalf("init: %d keys, %d recovery keys", len(init.Keys), len(init.RecoveryKeys))
	}
	s.write(t, init.RootToken)
	return init.RootToken
}

func (s *autoSealServer) write(t *testing.T, root string) {
	t.Helper()
	c := vaultClientAt(t, s.url, root)
	if err := c.Sys().Mount("secret", &vault.MountInput{Type: "kv-v2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("secret").Put(context.Background(), "ml/openai", map[string]any{"api_key": "sk-restart-canary"}); err != nil {
		t.Fatal(err)
	}
}

func (s *autoSealServer) checkRead(t *testing.T, root string) {
	t.Helper()
	sec, err := vaultClientAt(t, s.url, root).KVv2("secret").Get(context.Background(), "ml/openai")
	if err != nil || sec.Data["api_key"] != "sk-restart-canary" {
		t.Fatalf("read: %v %v", sec, err)
	}
}

// TestREADMEAutoUnsealStaticKey runs the README's auto-unseal commands as
// written against the built binary (a static key file made by openssl, the
// server on bolt, init, status), then restarts the server with SIGTERM and
// finds it unsealed with its data; then rotates the key. No key appears in
// the server's output or in the storage files.
func TestREADMEAutoUnsealStaticKey(t *testing.T) {
	sec := readmeSection(t, "#### Auto-unseal")
	hcl := block(t, sec, "hcl", 0, `the seal "static" block`)
	sh := block(t, sec, "sh", 0, "the commands")
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "unseal-2026-11.key")
	subst := strings.NewReplacer("/etc/vigil/unseal-2026-11.key", keyFile)
	s := newAutoSealServer(t, subst.Replace(hcl), nil)
	env := []string{"VIGIL_ADDR=" + s.url, "HOME=" + t.TempDir(), "VIGIL_TOKEN=", "VAULT_TOKEN="}

	var initOut, statusOut string
	for _, line := range strings.Split(sh, "\n") {
		args := strings.Fields(subst.Replace(stripComment(line)))
		switch {
		case len(args) == 0:
		case args[0] == "openssl":
			if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
		case args[0] == "./vigil" && args[1] == "server":
			if strings.Join(args[2:], " ") != "-config vigil.hcl" {
				t.Fatalf("the test does not know %q", line)
			}
			s.start(t)
		case args[0] == "./vigil":
			out, stderr, code := runCLI(t, env, "", args[1:]...)
			if code != 0 {
				t.Fatalf("%s: exit %d: %s", line, code, stderr)
			}
			switch args[1] {
			case "operator":
				initOut = out
			case "status":
				statusOut = out
			}
		default:
			t.Fatalf("the test does not know how to run %q", line)
		}
	}
	root := regexp.MustCompile(`(?m)^Initial Root Token: (\S+)$`).FindStringSubmatch(initOut)
	if root == nil || len(regexp.MustCompile(`(?m)^Recovery Key \d: `).FindAllString(initOut, -1)) != 5 {
		t.Fatalf("init output:\n%s", initOut)
	}
	for _, want := range []string{"static", "shamir", "Sealed                   false"} {
		if !strings.Contains(statusOut, want) {
			t.Fatalf("status lacks %q:\n%s", want, statusOut)
		}
	}
	s.write(t, root[1])
	s.restart(t)
	s.checkRead(t, root[1])

	// Rotation: a new current key, the old one previous; the start
	// rewraps, and the old key is no longer needed.
	newKey := filepath.Join(dir, "unseal-2026-12.key")
	if out, err := exec.Command("openssl", "rand", "-hex", "-out", newKey, "32").CombinedOutput(); err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	s.writeSeal(t, fmt.Sprintf("seal \"static\" {\n  current_key_id = \"2026-12\"\n  current_key = \"file://%s\"\n  previous_key_id = \"2026-11\"\n  previous_key = \"file://%s\"\n}\n", newKey, keyFile))
	s.restart(t)
	s.writeSeal(t, fmt.Sprintf("seal \"static\" {\n  current_key_id = \"2026-12\"\n  current_key = \"file://%s\"\n}\n", newKey))
	s.restart(t)
	s.checkRead(t, root[1])
	s.stop(t)
	if !strings.Contains(s.logs.String(), "root key rewrapped under the current seal key") {
		t.Fatalf("no rewrap in the log:\n%s", s.logs.String())
	}

	for _, kf := range []string{keyFile, newKey} {
		raw, err := os.ReadFile(kf)
		if err != nil {
			t.Fatal(err)
		}
		key := raw
		if len(raw) != 32 {
			if key, err = hex.DecodeString(strings.TrimSpace(string(raw))); err != nil {
				t.Fatal(err)
			}
		}
		for _, form := range [][]byte{key, []byte(hex.EncodeToString(key)), []byte(base64.StdEncoding.EncodeToString(key))} {
			if strings.Contains(s.logs.String()+initOut+statusOut, string(form)) {
				t.Fatalf("the server or CLI output shows the seal key %s", filepath.Base(kf))
			}
			for _, name := range []string{"vigil.db", "vigil.db-wal.0", "vigil.db-wal.1"} {
				if data, _ := os.ReadFile(filepath.Join(s.dir, name)); bytes.Contains(data, form) {
					t.Fatalf("%s holds the seal key %s", name, filepath.Base(kf))
				}
			}
		}
	}
}

// TestAutoUnsealSoftHSM: the README's pkcs11 block with a SoftHSM2 token,
// the PIN in VIGIL_HSM_PIN: the key is generated in the token at the first
// start, and the server restarts unsealed with its data.
func TestAutoUnsealSoftHSM(t *testing.T) {
	hcl := block(t, readmeSection(t, "#### Auto-unseal"), "hcl", 1, `the seal "pkcs11" block`)
	tk := softhsmtest.New(t, "vigil")
	if !strings.Contains(hcl, `token_label  = "vigil"`) {
		t.Fatalf("the README's token label is not the test token's:\n%s", hcl)
	}
	hcl = strings.ReplaceAll(hcl, "/usr/lib/softhsm/libsofthsm2.so", tk.Lib)
	s := newAutoSealServer(t, hcl, []string{tk.Env(), "VIGIL_HSM_PIN=" + tk.PIN})
	s.start(t)
	st, err := vaultClientAt(t, s.url, "").Sys().SealStatus()
	if err != nil || st.Type != "pkcs11" || !st.RecoverySeal || st.Initialized {
		t.Fatalf("seal status: %+v %v", st, err)
	}
	root := s.initAndWrite(t)
	s.restart(t)
	s.checkRead(t, root)
	// A wrong PIN: the server cannot open the seal and says so.
	s.stop(t)
	bad := startServerEnv(t, []string{tk.Env(), "VIGIL_HSM_PIN=0000-wrong"}, "-config", s.cfg)
	if err := <-bad.done; err == nil || !strings.Contains(bad.output.String(), "CKR_PIN_INCORRECT") || strings.Contains(bad.output.String(), "0000-wrong") {
		t.Fatalf("wrong PIN: %v\n%s", err, bad.output)
	}
}
