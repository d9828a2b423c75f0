//go:build !e2e

package acceptance

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/auditlog"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestInProcessAudited runs the whole suite again with a file audit device
// on every server. A recording transport keeps every secret value that
// crosses the wire (request data, KV values, tokens, accessors, role and
// secret IDs, unseal keys); after each test the log must hold none of them
// in clear, must hold the HMAC of each one a served request carried, and
// its hash chain must verify against the server's checkpoint.
func TestInProcessAudited(t *testing.T) {
	runSuite(t, func(t *testing.T) *target {
		dir := t.TempDir()
		s := testcluster.New(t, testcluster.Options{Dir: dir, Shares: 5, Threshold: 3})
		rec := &recorder{base: http.DefaultTransport, secrets: map[string]*seen{}}
		tg := &target{URL: s.URL, RootToken: s.RootToken, Keys: s.Keys[:3], HTTPClient: &http.Client{Transport: rec}}
		logPath := filepath.Join(t.TempDir(), "audit.log")
		plain := &target{URL: s.URL, RootToken: s.RootToken}
		if st, body := rawDo(t, plain, "PUT", "/v1/sys/audit/file", "", fmt.Sprintf(`{"type":"file","options":{"file_path":%q}}`, logPath)); st != 204 {
			t.Fatalf("enable the audit device: %d %v", st, body)
		}
		// Every request's token header is recorded too, HMAC'd, and its
		// User-Agent in clear.
		for _, h := range []string{`X-Vault-Token {"hmac":true}`, `User-Agent {}`} {
			name, body, _ := strings.Cut(h, " ")
			if st, out := rawDo(t, plain, "PUT", "/v1/sys/config/auditing/request-headers/"+name, "", body); st != 204 {
				t.Fatalf("audit header %s: %d %v", name, st, out)
			}
		}
		// The unseal keys and the root token are secrets too.
		for _, k := range s.Keys {
			rec.add(k, "unseal key", false)
		}
		rec.add(s.RootToken, "root token", false)
		tg.Restart = func(t *testing.T) {
			s.Close()
			s2 := testcluster.New(t, testcluster.Options{Dir: dir, Sealed: true, Reopen: true})
			tg.URL, plain.URL = s2.URL, s2.URL
		}
		tg.After = func(t *testing.T) {
			checkAuditLog(t, plain, rec, logPath)
			checkAuditedHeaders(t, logPath)
		}
		return tg
	})
}

// seen is where a secret value was seen first.
type seen struct {
	where string
	// logged: a request the server served (2xx) carried it, so its HMAC
	// must be in the log.
	logged bool
}

// recorder is an http.RoundTripper that keeps the secret values of every
// exchange.
type recorder struct {
	base    http.RoundTripper
	mu      sync.Mutex
	secrets map[string]*seen
}

// Values shorter than this are not tracked: they could equal a readable
// word of the log by chance ("kv", "1").
const minSecretLen = 3

// notAudited are the paths served outside the request pipeline, without
// an audit entry (spec §1.1).
var notAudited = []string{"sys/health", "sys/seal-status", "sys/init", "sys/unseal", "sys/leader"}

// clearKeys name request fields whose values are shown in clear elsewhere
// by design: paths (request.path), policy names (auth.policies), token
// metadata (auth.metadata), display names, mount and token types, lease
// ids (response.secret.lease_id, as Vault logs them) and database plugin
// names (named in the error that refuses an unknown one).
var clearKeys = []string{"path", "paths", "policies", "token_policies", "meta", "metadata", "display_name", "type", "token_type", "lease_id", "plugin_name"}

// secretResponseKeys name the response fields of auth/ paths that are
// credentials.
var secretResponseKeys = []string{"client_token", "accessor", "id", "secret_id", "secret_id_accessor", "role_id"}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		var err error
		if reqBody, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := r.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	path := strings.TrimPrefix(req.URL.Path, "/v1/")
	where := req.Method + " " + path
	served := resp.StatusCode/100 == 2 && !slices.Contains(notAudited, path)
	if t := req.Header.Get("X-Vault-Token"); t != "" {
		r.add(t, where+" token header", false)
	}
	var in map[string]any
	if json.Unmarshal(reqBody, &in) == nil {
		walk(in, nil, func(keys []string, v string) {
			for _, k := range keys {
				if slices.Contains(clearKeys, k) {
					return
				}
			}
			r.add(v, where+" request "+strings.Join(keys, "."), served)
		})
	}
	var out struct {
		Auth      map[string]any `json:"auth"`
		Data      map[string]any `json:"data"`
		MountType string         `json:"mount_type"`
	}
	if json.Unmarshal(respBody, &out) == nil {
		for _, k := range []string{"client_token", "accessor"} {
			if v, ok := out.Auth[k].(string); ok {
				r.add(v, where+" response auth."+k, served)
			}
		}
		walk(out.Data, nil, func(keys []string, v string) {
			switch {
			case out.MountType == "kv" && !isTime(v):
				// KV values, and the custom metadata beside them.
			case strings.HasPrefix(path, "auth/") && slices.Contains(secretResponseKeys, keys[len(keys)-1]):
			default:
				return
			}
			r.add(v, where+" response data."+strings.Join(keys, "."), served)
		})
	}
	return resp, nil
}

func (r *recorder) add(v, where string, logged bool) {
	if len(v) < minSecretLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.secrets[v]
	if s == nil {
		s = &seen{where: where}
		r.secrets[v] = s
	}
	s.logged = s.logged || logged
}

func (r *recorder) snapshot() map[string]seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]seen, len(r.secrets))
	for v, s := range r.secrets {
		out[v] = *s
	}
	return out
}

// walk calls fn with every string in v and the keys leading to it (list
// items by their parent's key).
func walk(v any, keys []string, fn func(keys []string, s string)) {
	switch t := v.(type) {
	case string:
		if len(keys) > 0 {
			fn(keys, t)
		}
	case map[string]any:
		for k, x := range t {
			walk(x, append(slices.Clip(keys), k), fn)
		}
	case []any:
		for _, x := range t {
			walk(x, keys, fn)
		}
	}
}

func isTime(s string) bool {
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// checkAuditLog reads the device's chain key and checkpoint, then the log,
// and checks it as TestInProcessAudited says.
func checkAuditLog(t *testing.T, plain *target, rec *recorder, logPath string) {
	t.Helper()
	secrets := rec.snapshot()
	st, body := rawDo(t, plain, "GET", "/v1/sys/audit-chain/file", "", "")
	if st != 200 {
		t.Fatalf("sys/audit-chain: %d %v", st, body)
	}
	data := body["data"].(map[string]any)
	key, err := base64.StdEncoding.DecodeString(data["key"].(string))
	if err != nil {
		t.Fatal(err)
	}
	seq, _ := data["seq"].(float64)
	cp := auditlog.Checkpoint{Seq: uint64(seq), Chain: data["chain"].(string)}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	if len(lines) < 4 {
		t.Fatalf("the log has %d entries", len(lines))
	}

	// 1. Nothing secret in clear, in any string of any entry, and no long
	// secret inside a longer string.
	leaks := 0
	for i, line := range lines {
		var entry map[string]any
		if err := json.Unmarshal(line, &entry); err != nil {
			t.Fatalf("entry %d is not JSON: %v", i+1, err)
		}
		walk(entry, nil, func(keys []string, v string) {
			if s, ok := secrets[v]; ok && leaks < 10 {
				leaks++
				t.Errorf("entry %d, field %s: the %s (%s) in clear", i+1, strings.Join(keys, "."), s.where, redact(v))
			}
		})
	}
	text := string(raw)
	for v, s := range secrets {
		if len(v) >= 16 && len(v) <= 4096 && strings.Contains(text, v) && leaks < 10 {
			leaks++
			t.Errorf("the %s (%s) appears inside an entry", s.where, redact(v))
		}
	}

	// 2. The chain verifies against the server's checkpoint.
	rep, err := auditlog.Verify(auditlog.VerifyOptions{Key: key, Checkpoint: &cp}, auditlog.Source{Name: logPath, R: bytes.NewReader(raw)})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Problem != nil || rep.Entries != len(lines) {
		t.Fatalf("verify: %d of %d entries, problem %v", rep.Entries, len(lines), rep.Problem)
	}

	// 3. Each value a served request carried is in the log, as its HMAC
	// (looked up in the log as read above: the audit-hash requests are
	// themselves logged).
	missing, checked := 0, 0
	defer func() {
		t.Logf("%d secret values, %d looked up by HMAC, %d entries", len(secrets), checked, len(lines))
	}()
	for v, s := range secrets {
		if !s.logged || len(v) > 4096 {
			continue
		}
		checked++
		st, body := rawDo(t, plain, "PUT", "/v1/sys/audit-hash/file", "", fmt.Sprintf(`{"input":%s}`, quote(v)))
		if st != 200 {
			t.Fatalf("audit-hash: %d %v", st, body)
		}
		h := body["data"].(map[string]any)["hash"].(string)
		if !strings.Contains(text, `"`+h+`"`) && missing < 10 {
			missing++
			t.Errorf("the %s (%s) is not in the log as %s", s.where, redact(v), h)
		}
	}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// redact shows enough of a test secret to find it, not all of it.
func redact(s string) string {
	if len(s) <= 6 {
		return fmt.Sprintf("%d bytes", len(s))
	}
	return s[:4] + "…"
}

// checkAuditedHeaders: the configured request headers are in the
// entries, the token HMAC'd and the User-Agent in clear.
func checkAuditedHeaders(t *testing.T, logPath string) {
	t.Helper()
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	tokens, agents := 0, 0
	for line := range strings.Lines(string(raw)) {
		var e auditlog.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Request == nil {
			continue
		}
		for _, v := range e.Request.Headers["x-vault-token"] {
			if !strings.HasPrefix(v, "hmac-sha256:") {
				t.Fatalf("token header logged as %q", v)
			}
			tokens++
		}
		for _, v := range e.Request.Headers["user-agent"] {
			if v == "" || strings.HasPrefix(v, "hmac-sha256:") {
				t.Fatalf("user agent logged as %q", v)
			}
			agents++
		}
	}
	if tokens == 0 || agents == 0 {
		t.Fatalf("%d token headers and %d user agents in the log", tokens, agents)
	}
}
