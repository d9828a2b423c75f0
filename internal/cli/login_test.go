package cli

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// loginServer answers auth/<mount>/login for the mounts it knows, as a
// workload auth method does: no token needed, an auth block back, a 403
// for a role it does not know.
type loginServer struct {
	srv *httptest.Server

	mu   sync.Mutex
	seen []seenRequest
}

const loginToken = "hvs.workload-token"

func newLoginServer(t *testing.T, mounts ...string) *loginServer {
	t.Helper()
	ls := &loginServer{}
	ls.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := strings.TrimPrefix(r.URL.Path, "/v1/")
		sr := seenRequest{Method: r.Method, Path: path, Token: r.Header.Get("X-Vault-Token")}
		_ = json.NewDecoder(r.Body).Decode(&sr.Body)
		ls.mu.Lock()
		ls.seen = append(ls.seen, sr)
		ls.mu.Unlock()
		known := false
		for _, m := range mounts {
			known = known || path == "auth/"+m+"/login"
		}
		switch {
		case !known || (r.Method != http.MethodPut && r.Method != http.MethodPost):
			errs(w, 404, "no handler for route \""+path+"\"")
		case sr.Body["role"] != "llm-gateway":
			errs(w, 403, "namespace not authorized")
		default:
			write(w, 200, map[string]any{"auth": map[string]any{
				"client_token": loginToken, "accessor": "acc-w", "policies": []string{"default", "llm-gateway"},
				"token_policies": []string{"default", "llm-gateway"}, "lease_duration": 900, "renewable": true,
				"metadata": map[string]string{"role": "llm-gateway", "service_account_namespace": "ml-serving", "pod_name": "llm-gateway-0"},
			}})
		}
	}))
	t.Cleanup(ls.srv.Close)
	return ls
}

func (ls *loginServer) last() seenRequest {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(ls.seen) == 0 {
		return seenRequest{}
	}
	return ls.seen[len(ls.seen)-1]
}

// TestLoginMethodPath: `login -method=M` posts the KEY=VALUE arguments
// (with @file values read) to auth/M/login, or to auth/<path>/login with
// -path, without a token; the token is stored unless -no-store, and
// -field=token prints it either way.
func TestLoginMethodPath(t *testing.T) {
	t.Parallel()
	ls := newLoginServer(t, "kubernetes", "k8s-edge", "gitlab")
	jwtFile := filepath.Join(t.TempDir(), "vigil")
	// The kubelet's file has no newline; one written by hand may.
	if err := os.WriteFile(jwtFile, []byte("eyJhbGciOi.pod.token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noToken := map[string]string{"VIGIL_ADDR": ls.srv.URL, "VIGIL_TOKEN": ""}

	home := t.TempDir()
	r := run(t, nil, runOpts{home: home, env: noToken}, "login", "-method=kubernetes", "role=llm-gateway", "jwt=@"+jwtFile)
	if r.code != 0 {
		t.Fatalf("login -method=kubernetes: %d %s", r.code, r.stderr)
	}
	got := ls.last()
	if got.Path != "auth/kubernetes/login" || got.Token != "" || got.Body["role"] != "llm-gateway" || got.Body["jwt"] != "eyJhbGciOi.pod.token\n" {
		t.Errorf("request = %+v", got)
	}
	if !strings.Contains(r.stdout, "token_meta_pod_name") || !strings.Contains(r.stdout, "llm-gateway-0") || strings.Contains(r.stdout, loginToken) {
		t.Errorf("output:\n%s", r.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(home, ".vigil-token")); err != nil || string(b) != loginToken {
		t.Errorf("stored token %q, %v", b, err)
	}

	for _, path := range []string{"k8s-edge", "/k8s-edge/"} {
		home := t.TempDir()
		r := run(t, nil, runOpts{home: home, env: noToken}, "login", "-method=kubernetes", "-path="+path, "role=llm-gateway", "jwt=@"+jwtFile)
		if r.code != 0 || ls.last().Path != "auth/k8s-edge/login" {
			t.Errorf("-path=%s: exit %d, sent to %s\n%s", path, r.code, ls.last().Path, r.stderr)
		}
	}

	// -field=token with -no-store: only the token on stdout, nothing stored.
	home = t.TempDir()
	r = run(t, nil, runOpts{home: home, env: noToken}, "login", "-method=jwt", "-path=gitlab", "-no-store", "-field=token", "role=llm-gateway", "jwt=x.y.z")
	if r.code != 0 || r.stdout != loginToken || ls.last().Path != "auth/gitlab/login" {
		t.Errorf("-no-store -field=token: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(home, ".vigil-token")); !os.IsNotExist(err) {
		t.Errorf("-no-store stored the token: %v", err)
	}
	// -field=token alone prints the token and stores it, as Vault's does.
	r = run(t, nil, runOpts{home: home, env: noToken}, "login", "-method=kubernetes", "-field=token", "role=llm-gateway", "jwt=@"+jwtFile)
	if r.code != 0 || r.stdout != loginToken {
		t.Errorf("-field=token: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(home, ".vigil-token")); string(b) != loginToken {
		t.Errorf("-field=token did not store the token: %q", b)
	}
	if r := run(t, nil, runOpts{home: home, env: noToken}, "login", "-method=kubernetes", "-field=token_policies", "role=llm-gateway", "jwt=x"); r.code != 0 || !strings.Contains(r.stdout, "llm-gateway") {
		t.Errorf("-field=token_policies: %d %q", r.code, r.stdout)
	}

	// A refused login: the server's message and a hint about the login,
	// not about a token; exit 1, nothing stored.
	home = t.TempDir()
	r = run(t, nil, runOpts{home: home, env: noToken}, "login", "-method=kubernetes", "role=trainer", "jwt=@"+jwtFile)
	if r.code != 1 || !strings.Contains(r.stderr, "namespace not authorized") || !strings.Contains(r.stderr, "auth/kubernetes/ refused the login") ||
		strings.Contains(r.stderr, "Check your token") || strings.Contains(r.stderr, "pod.token") {
		t.Errorf("refused login: %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(home, ".vigil-token")); !os.IsNotExist(err) {
		t.Errorf("a refused login stored something: %v", err)
	}
	// A mount that is not there: the path in the message.
	r = run(t, nil, runOpts{home: home, env: noToken}, "login", "-method=kubernetes", "-path=nope", "role=llm-gateway", "jwt=x")
	if r.code != 1 || !strings.Contains(r.stderr, "auth/nope/login") {
		t.Errorf("unknown mount: %d %q", r.code, r.stderr)
	}
	// An unreadable @file: a clear error, no request.
	before := len(ls.seen)
	r = run(t, nil, runOpts{home: home, env: noToken}, "login", "-method=kubernetes", "role=llm-gateway", "jwt=@"+filepath.Join(home, "missing"))
	if r.code == 0 || !strings.Contains(r.stderr, "missing") || len(ls.seen) != before {
		t.Errorf("missing jwt file: %d %q", r.code, r.stderr)
	}
}
