package cli

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestRunEntryPoint(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	var out, errOut bytes.Buffer
	env := map[string]string{"VIGIL_ADDR": f.srv.URL, "VIGIL_TOKEN": rootToken, "HOME": t.TempDir()}
	code := Run(t.Context(), []string{"kv", "put", "secret/x", "a=b"}, strings.NewReader(""), &out, &errOut, func(k string) string { return env[k] })
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func TestHelpAndUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		code       int
		stdoutHas  string
		stderrHas  string
		stdoutNone bool
	}{
		{"no args", nil, 2, "", "Commands:", true},
		{"-h", []string{"-h"}, 0, "kv", "", false},
		{"help", []string{"help"}, 0, "operator", "", false},
		{"help kv get", []string{"help", "kv", "get"}, 0, "Usage: vigil kv get [flags] KEY", "", false},
		{"leaf -h", []string{"kv", "put", "-h"}, 0, "-cas", "", false},
		{"leaf --help", []string{"secrets", "enable", "--help"}, 0, "-default-lease-ttl", "", false},
		{"group", []string{"kv"}, 2, "", "metadata", true},
		{"group -h", []string{"operator", "-h"}, 0, "unseal", "", false},
		{"unknown", []string{"stauts"}, 2, "", `Did you mean "vigil status"?`, true},
		{"unknown sub", []string{"kv", "gte"}, 2, "", `Did you mean "vigil kv get"?`, true},
		{"unknown flag", []string{"kv", "get", "-bogus", "secret/x"}, 2, "", "flag provided but not defined: -bogus", true},
		{"missing arg", []string{"kv", "get"}, 2, "", "Not enough arguments (expected 1, got 0)", true},
		{"extra arg", []string{"kv", "get", "a", "b"}, 2, "", "Too many arguments (expected 1, got 2)", true},
		{"bad format", []string{"status", "-format=xml"}, 2, "", "invalid output format", true},
		{"flag before sub", []string{"kv", "-mount=x", "get"}, 2, "", "needs a subcommand", true},
		{"write no data", []string{"write", "sys/x"}, 2, "", "Must supply data", true},
		{"version", []string{"-v"}, 0, "Vigil ", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(t, nil, runOpts{}, tt.args...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstdout:%s\nstderr:%s", r.code, tt.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stdout, tt.stdoutHas) || !strings.Contains(r.stderr, tt.stderrHas) {
				t.Errorf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
			}
			if tt.stdoutNone && r.stdout != "" {
				t.Errorf("unexpected stdout %q", r.stdout)
			}
		})
	}
}

func TestConnectionRefusedHint(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	r := run(t, nil, runOpts{env: map[string]string{"VIGIL_ADDR": addr}}, "kv", "get", "secret/x")
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "connection refused") || !strings.Contains(r.stderr, "Is the server running? Set VIGIL_ADDR (now "+addr+")") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	r = run(t, nil, runOpts{}, "status", "-address="+addr)
	if r.code != 1 || !strings.Contains(r.stderr, "(now "+addr+")") {
		t.Errorf("-address: %d\n%s", r.code, r.stderr)
	}
}

func TestTokenFromFileAndEnvPrecedence(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".vigil-token"), []byte(rootToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, f, runOpts{home: home, env: map[string]string{"VIGIL_TOKEN": ""}}, "kv", "put", "secret/x", "a=b")
	if r.code != 0 {
		t.Fatalf("token file: %d %s", r.code, r.stderr)
	}
	if tok := f.last(t, "secret/data/x").Token; tok != rootToken {
		t.Errorf("token sent = %q", tok)
	}
	r = run(t, f, runOpts{home: home, env: map[string]string{"VIGIL_TOKEN": "", "VAULT_TOKEN": "from-vault-env"}}, "kv", "get", "secret/x")
	if r.code != 1 {
		t.Errorf("VAULT_TOKEN should win over the file: %d", r.code)
	}
	if tok := f.last(t, "sys/internal/ui/mounts/secret/x").Token; tok != "from-vault-env" {
		t.Errorf("token sent = %q", tok)
	}
}

func TestStatus(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	r := mustRun(t, f, 0, "status")
	for _, want := range []string{"Key             Value\n---             -----\n", "Seal Type       shamir\n", "Initialized     true\n", "Sealed          false\n", "Total Shares    3\n", "Threshold       2\n", "Version         0.1.0-test\n", "Storage Type    inmem\n", "HA Enabled      false\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("status lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "Unseal Progress") {
		t.Errorf("unseal progress shown while unsealed")
	}
	if reqs := f.seen(); reqs[0].Path != "sys/seal-status" || reqs[1].Path != "sys/leader" {
		t.Errorf("calls = %v", reqs)
	}

	mustRun(t, f, 0, "operator", "seal")
	r = mustRun(t, f, 2, "status")
	if !strings.Contains(r.stdout, "Sealed             true") || !strings.Contains(r.stdout, "Unseal Progress    0/2") {
		t.Errorf("sealed status:\n%s", r.stdout)
	}
	r = mustRun(t, f, 2, "status", "-format=json")
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st["sealed"] != true || st["ha_enabled"] != false || st["t"] != float64(2) {
		t.Errorf("json status %v: %s", err, r.stdout)
	}
	if r := mustRun(t, f, 2, "status", "-field=sealed"); r.stdout != "true" {
		t.Errorf("-field=sealed %q", r.stdout)
	}

	r = mustRun(t, f, 1, "kv", "get", "secret/x")
	if !strings.Contains(r.stderr, "Vault is sealed") || !strings.Contains(r.stderr, "The server is sealed: vigil operator unseal") {
		t.Errorf("sealed hint:\n%s", r.stderr)
	}
}

func TestOperatorInit(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.set(func() { f.inited = false })
	if r := mustRun(t, f, 2, "operator", "init", "-status"); !strings.Contains(r.stdout, "not initialized") {
		t.Errorf("-status: %q", r.stdout)
	}
	r := mustRun(t, f, 0, "operator", "init", "-key-shares=3", "-key-threshold=2")
	keyRe := regexp.MustCompile(`(?m)^Unseal Key (\d): (\S+)$`)
	keys := keyRe.FindAllStringSubmatch(r.stdout, -1)
	if len(keys) != 3 || keys[2][1] != "3" || keys[0][2] != "a2V50=" {
		t.Errorf("keys = %v\n%s", keys, r.stdout)
	}
	if m := regexp.MustCompile(`(?m)^Initial Root Token: (\S+)$`).FindStringSubmatch(r.stdout); m == nil || m[1] != rootToken {
		t.Errorf("root token line missing:\n%s", r.stdout)
	}
	if strings.Contains(r.stderr, rootToken) || strings.Contains(r.stderr, "a2V5") {
		t.Errorf("secrets on stderr: %s", r.stderr)
	}
	b := f.last(t, "sys/init").Body
	if b["secret_shares"] != json.Number("3") || b["secret_threshold"] != json.Number("2") || b["recovery_shares"] != json.Number("0") {
		t.Errorf("init body = %v", b)
	}
	if reqs := f.seen(); reqs[1].Path != "sys/seal-status" {
		t.Errorf("init did not check the seal status first: %v", reqs)
	}

	f.set(func() { f.inited = false })
	r = mustRun(t, f, 0, "operator", "init", "-format=json", "-key-shares=2", "-key-threshold=2")
	var out struct {
		UnsealKeysB64 []string `json:"unseal_keys_b64"`
		KeysB64       []string `json:"keys_base64"`
		Keys          []string `json:"keys"`
		RootToken     string   `json:"root_token"`
		Threshold     int      `json:"unseal_threshold"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("json: %v\n%s", err, r.stdout)
	}
	if len(out.UnsealKeysB64) != 2 || len(out.KeysB64) != 2 || len(out.Keys) != 2 || out.RootToken != rootToken || out.Threshold != 2 {
		t.Errorf("json init = %+v", out)
	}

	mustRun(t, f, 1, "operator", "init") // already initialized: the server's 400
	mustRun(t, f, 2, "operator", "init", "-key-shares=3", "-key-threshold=4")
	mustRun(t, f, 0, "operator", "init", "-status")
}

func TestOperatorUnseal(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	f.set(func() { f.sealed = true })
	r := run(t, f, runOpts{stdin: "a2V5MA==\n"}, "operator", "unseal")
	if r.code != 0 || !strings.Contains(r.stdout, "Unseal Progress    1/2") {
		t.Fatalf("unseal from stdin: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if k := f.last(t, "sys/unseal").Body["key"]; k != "a2V5MA==" {
		t.Errorf("key sent = %v", k)
	}
	if strings.Contains(r.stdout+r.stderr, "a2V5MA==") {
		t.Error("the unseal key was echoed")
	}
	r = run(t, f, runOpts{stdin: "abcd\r\n"}, "operator", "unseal", "-")
	if r.code != 0 || !strings.Contains(r.stdout, "Sealed          false") {
		t.Fatalf("unseal -: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if k := f.last(t, "sys/unseal").Body["key"]; k != "abcd" {
		t.Errorf("key sent = %q", k)
	}
	if reqs := f.seen(); reqs[len(reqs)-1].Path != "sys/leader" {
		t.Errorf("unseal did not read sys/leader last")
	}

	f.set(func() { f.sealed = true })
	mustRun(t, f, 0, "operator", "unseal", "abcd")
	mustRun(t, f, 0, "operator", "unseal", "-reset")
	if b := f.last(t, "sys/unseal").Body; b["reset"] != true {
		t.Errorf("reset body = %v", b)
	}
	if r := run(t, f, runOpts{stdin: "\n"}, "operator", "unseal"); r.code != 2 {
		t.Errorf("empty key: %d", r.code)
	}
	if r := run(t, f, runOpts{}, "operator", "unseal", "not a key!"); r.code != 2 || strings.Contains(r.stderr, "not a key!") {
		t.Errorf("invalid key: %d %q", r.code, r.stderr)
	}
	if r := run(t, f, runOpts{}, "operator", "unseal", "bad"); r.code != 1 || !strings.Contains(r.stderr, "valid hex or base64") {
		t.Errorf("server-rejected key: %d %q", r.code, r.stderr)
	}
}

func TestOperatorRotateAndKeyStatus(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	r := mustRun(t, f, 0, "operator", "rotate")
	if !strings.Contains(r.stdout, "Success! Rotated key") || !strings.Contains(r.stdout, "Key Term            2") || !strings.Contains(r.stdout, "Encryption Count    12") {
		t.Errorf("rotate:\n%s", r.stdout)
	}
	if reqs := f.seen(); reqs[0].Path != "sys/rotate" || reqs[0].Method != http.MethodPut || reqs[1].Path != "sys/key-status" {
		t.Errorf("calls = %v", reqs)
	}
	if r := mustRun(t, f, 0, "operator", "key-status", "-field=term"); r.stdout != "2" {
		t.Errorf("key-status -field = %q", r.stdout)
	}
	r = mustRun(t, f, 0, "operator", "key-status", "-format=json")
	if !strings.Contains(r.stdout, `"term": 2`) {
		t.Errorf("json key status %s", r.stdout)
	}
	r = run(t, f, runOpts{env: map[string]string{"VIGIL_TOKEN": "nope"}}, "operator", "seal")
	if r.code != 1 || !strings.Contains(r.stderr, "Check your token") {
		t.Errorf("seal without root: %d %s", r.code, r.stderr)
	}
}

func TestLogin(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	home := t.TempDir()
	noEnv := map[string]string{"VIGIL_TOKEN": ""}
	r := run(t, f, runOpts{home: home, env: noEnv}, "login", rootToken)
	if r.code != 0 {
		t.Fatalf("login: %d %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "Success! You are now authenticated") || !strings.Contains(r.stdout, "token_accessor       acc-1") {
		t.Errorf("login output:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout+r.stderr, rootToken) {
		t.Errorf("token printed:\n%s%s", r.stdout, r.stderr)
	}
	if tok := f.last(t, "auth/token/lookup-self").Token; tok != rootToken {
		t.Errorf("lookup-self sent token %q", tok)
	}
	p := filepath.Join(home, ".vigil-token")
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(p); string(b) != rootToken {
		t.Errorf("token file = %q", b)
	}
	if ents, _ := os.ReadDir(home); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}

	// A later command uses the stored token.
	if r := run(t, f, runOpts{home: home, env: noEnv}, "kv", "put", "secret/x", "a=b"); r.code != 0 {
		t.Errorf("using the stored token: %d %s", r.code, r.stderr)
	}

	// An existing file with a wide mode is replaced by a 0600 one.
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, f, runOpts{home: home, env: noEnv, stdin: rootToken + "\n"}, "login", "-")
	if r.code != 0 {
		t.Fatalf("login -: %d %s", r.code, r.stderr)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode after re-login %v", fi.Mode().Perm())
	}
	if r := run(t, f, runOpts{home: home, env: noEnv, stdin: rootToken + "\n"}, "login"); r.code != 0 {
		t.Errorf("login from stdin without args: %d %s", r.code, r.stderr)
	}

	// A rejected token is not stored.
	home2 := t.TempDir()
	r = run(t, f, runOpts{home: home2, env: noEnv}, "login", "wrong-token")
	if r.code != 2 || !strings.Contains(r.stderr, "rejected the token") || strings.Contains(r.stderr, "wrong-token") {
		t.Errorf("bad token: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(home2, ".vigil-token")); !os.IsNotExist(err) {
		t.Errorf("rejected token stored: %v", err)
	}

	// A server without lookup-self: stored with a warning, token row shown.
	f.set(func() { f.noLookup = true })
	r = run(t, f, runOpts{home: home2, env: noEnv}, "login", rootToken)
	if r.code != 0 || !strings.Contains(r.stderr, "could not be looked up") {
		t.Errorf("no lookup: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(home2, ".vigil-token")); err != nil {
		t.Error(err)
	}

	// VIGIL_TOKEN set: warn that it wins over the file.
	r = run(t, f, runOpts{home: home2}, "login", rootToken)
	if r.code != 0 || !strings.Contains(r.stderr, "takes precedence") {
		t.Errorf("env warning: %d %q", r.code, r.stderr)
	}
	if r := run(t, f, runOpts{env: noEnv}, "login", "-no-store", "-format=json", rootToken); r.code != 0 || !strings.Contains(r.stdout, `"token": "`+rootToken+`"`) {
		t.Errorf("-no-store json: %d %s %s", r.code, r.stdout, r.stderr)
	}
}

func TestSecretsEnableListTuneDisable(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	r := mustRun(t, f, 0, "secrets", "enable", "-path=apps", "-version=2", "-description=app secrets", "-default-lease-ttl=1h", "-max-lease-ttl=7200", "-options=foo=bar", "kv")
	if strings.TrimSpace(r.stdout) != "Success! Enabled the kv secrets engine at: apps/" {
		t.Errorf("enable output %q", r.stdout)
	}
	b := f.last(t, "sys/mounts/apps").Body
	cfg := b["config"].(map[string]any)
	opts := b["options"].(map[string]any)
	if b["type"] != "kv" || b["description"] != "app secrets" || cfg["default_lease_ttl"] != "1h0m0s" || cfg["max_lease_ttl"] != "2h0m0s" || opts["version"] != "2" || opts["foo"] != "bar" {
		t.Errorf("enable body = %v", b)
	}
	mustRun(t, f, 0, "secrets", "enable", "kv-v2")
	if b := f.last(t, "sys/mounts/kv").Body; b["type"] != "kv-v2" || b["config"].(map[string]any)["default_lease_ttl"] != "0s" {
		t.Errorf("kv-v2 enable body = %v", b)
	}
	mustRun(t, f, 1, "secrets", "enable", "-path=apps", "kv") // path in use
	mustRun(t, f, 2, "secrets", "enable", "-default-lease-ttl=forever", "kv")

	// The new mount is KV v2: kv put rewrites to apps/data/.
	mustRun(t, f, 0, "kv", "put", "apps/x", "a=b")
	f.last(t, "apps/data/x")

	r = mustRun(t, f, 0, "secrets", "list")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if !regexp.MustCompile(`^Path\s+Type\s+Accessor\s+Description$`).MatchString(lines[0]) || !strings.HasPrefix(lines[1], "----") {
		t.Errorf("list header:\n%s", r.stdout)
	}
	if !regexp.MustCompile(`(?m)^apps/\s+kv\s+kv_new\s+app secrets$`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^kv1/\s+kv\s+kv_1a\s+n/a$`).MatchString(r.stdout) {
		t.Errorf("list rows:\n%s", r.stdout)
	}
	r = mustRun(t, f, 0, "secrets", "list", "-detailed")
	if !strings.Contains(r.stdout, "Default TTL") || !strings.Contains(r.stdout, "map[version:2]") {
		t.Errorf("detailed:\n%s", r.stdout)
	}
	r = mustRun(t, f, 0, "secrets", "list", "-format=json")
	var mounts map[string]map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &mounts); err != nil || mounts["secret/"]["type"] != "kv" {
		t.Errorf("json list %v: %s", err, r.stdout)
	}

	mustRun(t, f, 0, "secrets", "tune", "-description=new", "-options=version=2", "-max-lease-ttl=1h", "kv1")
	tb := f.last(t, "sys/mounts/kv1/tune").Body
	if tb["description"] != "new" || tb["max_lease_ttl"] != "1h0m0s" || tb["options"].(map[string]any)["version"] != "2" {
		t.Errorf("tune body = %v", tb)
	}
	if _, ok := tb["default_lease_ttl"]; ok {
		t.Errorf("unset TTL sent: %v", tb)
	}
	mustRun(t, f, 0, "kv", "put", "kv1/y", "a=b") // now v2
	f.last(t, "kv1/data/y")

	r = mustRun(t, f, 0, "secrets", "disable", "apps/")
	if d := f.last(t, "sys/mounts/apps"); d.Method != http.MethodDelete || !strings.Contains(r.stdout, "apps/") {
		t.Errorf("disable = %+v %q", d, r.stdout)
	}
}

func TestSecretsMovePolls(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	r := mustRun(t, f, 0, "secrets", "move", "kv1", "kv-moved")
	if !strings.Contains(r.stdout, "with migration ID mig-1") || !strings.Contains(r.stdout, "Success! Finished moving secrets engine kv1/ to kv-moved/") {
		t.Errorf("move output:\n%s", r.stdout)
	}
	if b := f.last(t, "sys/remount").Body; b["from"] != "kv1" || b["to"] != "kv-moved" {
		t.Errorf("remount body = %v", b)
	}
	polls := 0
	for _, rq := range f.seen() {
		if rq.Path == "sys/remount/status/mig-1" {
			polls++
		}
	}
	if polls != 3 {
		t.Errorf("polled %d times, want 3 (until success)", polls)
	}
	mustRun(t, f, 1, "secrets", "move", "nope", "other")
	mustRun(t, f, 2, "secrets", "move", "only-one")
}

func TestGenericCommands(t *testing.T) {
	t.Parallel()
	f := newFakeServer(t)
	r := mustRun(t, f, 0, "write", "kv1/app", "user=u", "n=5")
	if strings.TrimSpace(r.stdout) != "Success! Data written to: kv1/app" {
		t.Errorf("write output %q", r.stdout)
	}
	if reqs := f.seen(); len(reqs) != 1 || reqs[0].Path != "kv1/app" {
		t.Errorf("write made a preflight or other calls: %v", reqs)
	}
	r = mustRun(t, f, 0, "read", "kv1/app")
	if !strings.Contains(r.stdout, "n                   5\n") {
		t.Errorf("read:\n%s", r.stdout)
	}
	if r := mustRun(t, f, 0, "read", "-field=user", "kv1/app"); r.stdout != "u" {
		t.Errorf("read -field %q", r.stdout)
	}
	r = mustRun(t, f, 0, "read", "-format=json", "kv1/app")
	var s map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || s["lease_duration"] != float64(2764800) {
		t.Errorf("read json %v %s", err, r.stdout)
	}
	mustRun(t, f, 2, "read", "secret/data/none", "version=3")
	if q := f.last(t, "secret/data/none").Query; q != "version=3" {
		t.Errorf("read query = %q", q)
	}
	r = mustRun(t, f, 0, "list", "kv1")
	if r.stdout != "Keys\n----\napp\n" {
		t.Errorf("list %q", r.stdout)
	}
	r = mustRun(t, f, 0, "delete", "kv1/app")
	if !strings.Contains(r.stdout, "Success! Data deleted (if it existed) at: kv1/app") {
		t.Errorf("delete %q", r.stdout)
	}
	mustRun(t, f, 2, "read", "kv1/app")
	mustRun(t, f, 2, "list", "kv1/nothing")

	// write sends the literal path and body: a string "data" on a KV v2
	// path is the server's problem (here a 400).
	r = run(t, f, runOpts{stdin: "x"}, "write", "secret/data/p", "data=-")
	if r.code != 1 || !strings.Contains(r.stderr, "no data provided") {
		t.Errorf("write string data: %d %q", r.code, r.stderr)
	}
}
