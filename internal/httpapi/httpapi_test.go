package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/auth/approle"
	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secrets/kv"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

type env struct {
	t     *testing.T
	core  *core.Core
	srv   *httptest.Server
	token string
	keys  []string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	c, err := core.New(core.Config{Storage: inmem.New(), StorageType: "inmem", Factories: map[string]logical.Factory{"kv": kv.Factory}})
	if err != nil {
		t.Fatal(err)
	}
	h := New(Options{Core: c, Version: "test", Now: func() time.Time { return time.Unix(1700000000, 0) }})
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		c.SealInternal(context.Background())
	})
	return &env{t: t, core: c, srv: srv}
}

// do sends a request and decodes a JSON body if there is one.
func (e *env) do(method, path, body string, hdr ...string) (int, http.Header, map[string]any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if e.token != "" {
		req.Header.Set("X-Vault-Token", e.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: body is not JSON: %q", method, path, raw)
		}
	}
	return resp.StatusCode, resp.Header, out
}

func (e *env) initAndUnseal() {
	e.t.Helper()
	code, _, body := e.do("PUT", "/v1/sys/init", `{"secret_shares":3,"secret_threshold":2}`)
	if code != 200 {
		e.t.Fatalf("init: %d %v", code, body)
	}
	for _, k := range body["keys"].([]any) {
		e.keys = append(e.keys, k.(string))
	}
	if len(body["keys_base64"].([]any)) != 3 {
		e.t.Fatal("keys_base64 missing")
	}
	e.token = body["root_token"].(string)
	for _, k := range e.keys[:2] {
		if code, _, body := e.do("PUT", "/v1/sys/unseal", `{"key":"`+k+`"}`); code != 200 {
			e.t.Fatalf("unseal: %d %v", code, body)
		}
	}
}

func TestHealthCodes(t *testing.T) {
	e := newEnv(t)
	check := func(query string, want int) {
		t.Helper()
		code, _, body := e.do("GET", "/v1/sys/health"+query, "")
		if code != want {
			t.Fatalf("health%s = %d, want %d", query, code, want)
		}
		if body["server_time_utc"] != float64(1700000000) || body["version"] != "test" {
			t.Fatalf("body %v", body)
		}
		req, _ := http.NewRequest("HEAD", e.srv.URL+"/v1/sys/health"+query, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("HEAD health%s = %d, want %d", query, resp.StatusCode, want)
		}
	}
	check("", 501)
	check("?uninitcode=200", 200)
	e.do("PUT", "/v1/sys/init", `{"secret_shares":1,"secret_threshold":1}`)
	check("", 503)
	check("?sealedcode=299", 299)
	check("?standbyok=true&sealedcode=473", 473)
	if code, _, body := e.do("GET", "/v1/sys/health?sealedcode=abc", ""); code != 400 || body["errors"] == nil {
		t.Fatalf("bad code: %d %v", code, body)
	}
	if code, _, _ := e.do("GET", "/v1/sys/health?standbyok=maybe", ""); code != 400 {
		t.Fatalf("bad standbyok: %d", code)
	}
}

func TestHealthActiveAndCodes(t *testing.T) {
	e := newEnv(t)
	e.initAndUnseal()
	for q, want := range map[string]int{"": 200, "?activecode=204": 204, "?standbycode=200": 200, "?drsecondarycode=200&perfstandbyok=true": 200} {
		if code, _, _ := e.do("GET", "/v1/sys/health"+q, ""); code != want {
			t.Errorf("health%s = %d, want %d", q, code, want)
		}
	}
	_, _, body := e.do("GET", "/v1/sys/health", "")
	for _, k := range []string{"initialized", "sealed", "standby", "performance_standby", "replication_dr_mode", "cluster_name", "cluster_id"} {
		if _, ok := body[k]; !ok {
			t.Errorf("health lacks %s", k)
		}
	}
}

func TestSealedAnswersOnlySealEndpoints(t *testing.T) {
	e := newEnv(t)
	e.do("PUT", "/v1/sys/init", `{"secret_shares":1,"secret_threshold":1}`)
	e.token = "anything"
	for _, p := range []string{"/v1/sys/mounts", "/v1/secret/data/x", "/v1/sys/key-status", "/v1/sys/internal/ui/mounts"} {
		code, _, body := e.do("GET", p, "")
		if code != 503 {
			t.Errorf("%s while sealed = %d %v", p, code, body)
		}
	}
	for _, p := range []string{"/v1/sys/seal-status", "/v1/sys/init"} {
		if code, _, _ := e.do("GET", p, ""); code != 200 {
			t.Errorf("%s while sealed = %d", p, code)
		}
	}
}

func TestSealStatusAndUnsealErrors(t *testing.T) {
	e := newEnv(t)
	code, _, body := e.do("GET", "/v1/sys/seal-status", "")
	if code != 200 || body["initialized"] != false || body["sealed"] != true {
		t.Fatalf("uninitialized seal-status: %d %v", code, body)
	}
	code, _, body = e.do("PUT", "/v1/sys/init", `{"secret_shares":"5","secret_threshold":3}`)
	if code != 200 || len(body["keys"].([]any)) != 5 {
		t.Fatalf("init with a string number: %d %v", code, body)
	}
	keys := body["keys"].([]any)
	if code, _, _ := e.do("PUT", "/v1/sys/init", `{"secret_shares":1,"secret_threshold":1}`); code != 400 {
		t.Fatalf("second init = %d", code)
	}
	e.do("PUT", "/v1/sys/unseal", `{"key":"`+keys[0].(string)+`"}`)
	for _, bad := range []string{`{"key":"zz!"}`, `{"key":"abcd"}`, `{}`, `{"key":5}`, `{"reset":"x"}`, `not json`} {
		code, _, body := e.do("PUT", "/v1/sys/unseal", bad)
		if code != 400 {
			t.Errorf("unseal %s = %d %v", bad, code, body)
		}
	}
	_, _, body = e.do("GET", "/v1/sys/seal-status", "")
	if body["progress"] != float64(1) || body["t"] != float64(3) || body["n"] != float64(5) || body["type"] != "shamir" {
		t.Fatalf("seal-status after bad keys: %v", body)
	}
	_, _, body = e.do("PUT", "/v1/sys/unseal", `{"reset":true}`)
	if body["progress"] != float64(0) {
		t.Fatalf("after reset: %v", body)
	}
	if code, _, _ := e.do("PUT", "/v1/sys/init", `{"secret_shares":3,"pgp_keys":["x"]}`); code != 400 {
		t.Fatalf("pgp init = %d", code)
	}
}

func TestLeaderAndSeal(t *testing.T) {
	e := newEnv(t)
	e.initAndUnseal()
	code, _, body := e.do("GET", "/v1/sys/leader", "")
	if code != 200 || body["ha_enabled"] != false {
		t.Fatalf("leader: %d %v", code, body)
	}
	tok := e.token
	e.token = ""
	if code, _, _ := e.do("PUT", "/v1/sys/seal", ""); code != 403 {
		t.Fatalf("seal without token = %d", code)
	}
	e.token = tok
	if code, _, _ := e.do("PUT", "/v1/sys/seal", ""); code != 204 {
		t.Fatalf("seal = %d", code)
	}
	if !e.core.Sealed() {
		t.Fatal("not sealed")
	}
}

func TestTokenHeadersAndDeny(t *testing.T) {
	e := newEnv(t)
	e.initAndUnseal()
	tok := e.token
	e.token = ""
	code, _, body := e.do("GET", "/v1/sys/mounts", "")
	if code != 403 || body["errors"].([]any)[0] != "permission denied" {
		t.Fatalf("no token: %d %v", code, body)
	}
	if code, _, _ := e.do("GET", "/v1/sys/mounts", "", "Authorization", "Bearer "+tok); code != 200 {
		t.Fatalf("bearer token = %d", code)
	}
	// X-Vault-Token wins over Authorization.
	if code, _, _ := e.do("GET", "/v1/sys/mounts", "", "X-Vault-Token", "bad", "Authorization", "Bearer "+tok); code != 403 {
		t.Fatalf("X-Vault-Token precedence = %d", code)
	}
}

func TestEnvelopeAndErrors(t *testing.T) {
	e := newEnv(t)
	e.initAndUnseal()
	if code, _, _ := e.do("POST", "/v1/sys/mounts/kv", `{"type":"kv","options":{"version":"1"}}`); code != 204 {
		t.Fatalf("mount = %d", code)
	}
	if code, _, _ := e.do("PUT", "/v1/kv/a", `{"v":"1"}`); code != 204 {
		t.Fatalf("write = %d", code)
	}
	code, hdr, body := e.do("GET", "/v1/kv/a", "")
	if code != 200 || hdr.Get("Content-Type") != "application/json" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("read: %d %v", code, hdr)
	}
	for _, k := range []string{"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth", "mount_type"} {
		if _, ok := body[k]; !ok {
			t.Errorf("envelope lacks %q", k)
		}
	}
	if body["mount_type"] != "kv" || body["data"].(map[string]any)["v"] != "1" {
		t.Fatalf("body %v", body)
	}
	// kv v1 reads carry the mount's TTL as lease_duration, 768h by default.
	if body["lease_duration"] != float64(768*3600) {
		t.Errorf("lease_duration = %v", body["lease_duration"])
	}
	// LIST and ?list=true give the same keys.
	for _, m := range [][2]string{{"LIST", "/v1/kv/"}, {"GET", "/v1/kv/?list=true"}} {
		code, _, body := e.do(m[0], m[1], "")
		if code != 200 || len(body["data"].(map[string]any)["keys"].([]any)) != 1 {
			t.Fatalf("%s %s: %d %v", m[0], m[1], code, body)
		}
	}
	code, _, body = e.do("GET", "/v1/kv/missing", "")
	if code != 404 || len(body["errors"].([]any)) != 0 {
		t.Fatalf("not found: %d %v", code, body)
	}
	code, _, body = e.do("GET", "/v1/nowhere/x", "")
	if code != 404 || !strings.Contains(body["errors"].([]any)[0].(string), "no handler for route") {
		t.Fatalf("no route: %d %v", code, body)
	}
	if code, _, _ := e.do("GET", "/v1/kv/a", "", "X-Vault-Namespace", "team-a"); code != 404 {
		t.Fatalf("foreign namespace = %d", code)
	}
	if code, _, _ := e.do("GET", "/v1/kv/a", "", "X-Vault-Namespace", "root/"); code != 200 {
		t.Fatalf("root namespace = %d", code)
	}
	// What only the root namespace has is a 400 elsewhere, as Vault says.
	for _, p := range []string{"sys/health", "sys/metrics", "sys/seal", "sys/generate-root/attempt", "sys/rekey/init"} {
		code, _, body := e.do("GET", "/v1/"+p, "", "X-Vault-Namespace", "team-a")
		if code != 400 || body["errors"].([]any)[0] != "operation unavailable in namespaces" {
			t.Errorf("%s in a namespace: %d %v", p, code, body)
		}
	}
	// Malformed bodies are a 400 that says where, never quoting the body
	// (a secret), and write nothing.
	for body, want := range map[string]string{
		`{"v":`:                   "failed to parse JSON input: unexpected end of input",
		`{"v":"hunter2",}`:        "failed to parse JSON input: invalid character looking for beginning of object key string at offset 15",
		`{"v":"hunter2"}]`:        "failed to parse JSON input: trailing data after the JSON value at offset 15",
		`{"v":"hunter2"} {"w":1}`: "failed to parse JSON input: trailing data after the JSON value at offset 16",
		`["hunter2"]`:             "failed to parse JSON input: the body must be a JSON object",
	} {
		code, _, resp := e.do("PUT", "/v1/kv/b", body)
		if code != 400 || resp["errors"].([]any)[0] != want {
			t.Errorf("body %s: %d %v, want 400 %q", body, code, resp, want)
		}
	}
	if code, _, _ := e.do("GET", "/v1/kv/b", ""); code != 404 {
		t.Fatalf("a malformed write was stored: GET = %d", code)
	}
	if code, _, body := e.do("POST", "/v1/sys/mounts/x", `{"type":"kv","local":"notbool"}`); code != 400 || !strings.Contains(body["errors"].([]any)[0].(string), "local") {
		t.Fatalf("wrong type: %d %v", code, body)
	}
}

// TestBadPaths: parent references and control characters are a 400 for
// any method; a write to a path that is not UTF-8 is a 400 and stores
// nothing, while a read or a delete of one still reaches the mount.
func TestBadPaths(t *testing.T) {
	e := newEnv(t)
	e.initAndUnseal()
	if code, _, _ := e.do("POST", "/v1/sys/mounts/kv", `{"type":"kv","options":{"version":"1"}}`); code != 204 {
		t.Fatalf("mount = %d", code)
	}
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/v1/kv/a/../b", "invalid request path: parent references are not allowed"},
		{"PUT", "/v1/kv/a%00b", "invalid request path: non-printable characters are not allowed"},
		{"GET", "/v1/kv/a%1Fb", "invalid request path: non-printable characters are not allowed"},
		{"PUT", "/v1/kv/a%FF", "invalid request path: not valid UTF-8"},
		{"POST", "/v1/kv/a%C3", "invalid request path: not valid UTF-8"},
		{"PATCH", "/v1/kv/a%FF", "invalid request path: not valid UTF-8"},
	} {
		code, _, body := e.do(tc.method, tc.path, `{"v":"1"}`)
		if code != 400 || body["errors"].([]any)[0] != tc.want {
			t.Errorf("%s %s: %d %v, want 400 %q", tc.method, tc.path, code, body, tc.want)
		}
	}
	if code, _, body := e.do("LIST", "/v1/kv/", ""); code != 404 {
		t.Errorf("a refused write was stored: LIST = %d %v", code, body)
	}
	for _, m := range []string{"GET", "DELETE"} {
		if code, _, body := e.do(m, "/v1/kv/a%FF", ""); code == 400 {
			t.Errorf("%s of a path that is not UTF-8: %d %v, want it to reach the mount", m, code, body)
		}
	}
	// Valid UTF-8 beyond ASCII is a name like any other.
	if code, _, _ := e.do("PUT", "/v1/kv/caf%C3%A9", `{"v":"1"}`); code != 204 {
		t.Errorf("a UTF-8 name: %d", code)
	}
}

// TestResponseWrapping: X-Vault-Wrap-TTL parsed as Vault parses it; a
// wrapped response is a single-use wrapping token that sys/wrapping
// looks up, unwraps (with the token in the body, or as the caller's
// token), rewraps; a response with nothing in it is not wrapped; paths
// served outside the pipeline refuse a wrap TTL rather than answer in
// clear.
func TestResponseWrapping(t *testing.T) {
	for v, want := range map[string]struct {
		ttl time.Duration
		msg string
	}{
		"":                     {},
		"0":                    {},
		"0s":                   {},
		"300":                  {ttl: 5 * time.Minute},
		"5m":                   {ttl: 5 * time.Minute},
		"-5":                   {msg: "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative"},
		"-1m":                  {msg: "error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative"},
		"soon":                 {msg: "error parsing X-Vault-Wrap-TTL header: not a duration"},
		"99999999999999999999": {msg: "error parsing X-Vault-Wrap-TTL header: not a duration"},
		"9999999999999":        {msg: "error parsing X-Vault-Wrap-TTL header: not a duration"},
	} {
		if ttl, msg := parseWrapTTL(v); ttl != want.ttl || msg != want.msg {
			t.Errorf("parseWrapTTL(%q) = %v %q, want %v %q", v, ttl, msg, want.ttl, want.msg)
		}
	}
	e := newEnv(t)
	e.initAndUnseal()
	if code, _, _ := e.do("POST", "/v1/sys/mounts/kv", `{"type":"kv","options":{"version":"1"}}`); code != 204 {
		t.Fatalf("mount = %d", code)
	}
	// A write that answers nothing has nothing to wrap.
	if code, _, body := e.do("PUT", "/v1/kv/a", `{"v":"s3cret"}`, "X-Vault-Wrap-TTL", "5m"); code != 204 {
		t.Fatalf("wrapped write: %d %v", code, body)
	}
	wrapRead := func() (tok string, info map[string]any) {
		t.Helper()
		code, _, body := e.do("GET", "/v1/kv/a", "", "X-Vault-Wrap-TTL", "60")
		info, _ = body["wrap_info"].(map[string]any)
		if code != 200 || body["data"] != nil || body["auth"] != nil || info == nil {
			t.Fatalf("wrapped read: %d %v", code, body)
		}
		if info["ttl"] != 60.0 || info["creation_path"] != "kv/a" || info["accessor"] == "" {
			t.Fatalf("wrap_info = %v", info)
		}
		if _, err := time.Parse(time.RFC3339, info["creation_time"].(string)); err != nil {
			t.Fatalf("creation_time: %v", err)
		}
		if strings.Contains(fmt.Sprint(body), "s3cret") {
			t.Fatalf("the wrapped value is in the answer: %v", body)
		}
		return info["token"].(string), info
	}
	tok, _ := wrapRead()

	// Looked up without a token, and without using it.
	root := e.token
	e.token = ""
	for range 2 {
		code, _, body := e.do("POST", "/v1/sys/wrapping/lookup", `{"token":"`+tok+`"}`)
		data, _ := body["data"].(map[string]any)
		if code != 200 || data["creation_path"] != "kv/a" || data["creation_ttl"] != 60.0 {
			t.Fatalf("lookup: %d %v", code, body)
		}
	}
	// Never in a query string, where access logs would keep it.
	if code, _, _ := e.do("GET", "/v1/sys/wrapping/lookup?token="+tok, ""); code != http.StatusMethodNotAllowed {
		t.Fatalf("lookup by GET: %d", code)
	}
	e.token = root
	// The wrapping token may do nothing but unwrap.
	if code, _, _ := e.do("GET", "/v1/kv/a", "", "X-Vault-Token", tok); code != 403 {
		t.Fatalf("read with the wrapping token: %d", code)
	}
	unwrap := func(tok string) map[string]any {
		t.Helper()
		code, _, body := e.do("POST", "/v1/sys/wrapping/unwrap", `{"token":"`+tok+`"}`)
		if code != 200 {
			t.Fatalf("unwrap: %d %v", code, body)
		}
		return body
	}
	body := unwrap(tok)
	if data, _ := body["data"].(map[string]any); data["v"] != "s3cret" || body["wrap_info"] != nil {
		t.Fatalf("unwrapped = %v", body)
	}
	bad := func(what string, code int, body map[string]any) {
		t.Helper()
		if code != 400 || body["errors"].([]any)[0] != "wrapping token is not valid or does not exist" {
			t.Fatalf("%s: %d %v", what, code, body)
		}
	}
	code, _, body := e.do("POST", "/v1/sys/wrapping/unwrap", `{"token":"`+tok+`"}`)
	bad("second unwrap", code, body)
	code, _, body = e.do("POST", "/v1/sys/wrapping/lookup", `{"token":"`+tok+`"}`)
	bad("lookup of an unwrapped token", code, body)
	code, _, body = e.do("POST", "/v1/sys/wrapping/unwrap", `{"token":"`+root+`"}`)
	bad("unwrap of a token that wraps nothing", code, body)

	// The wrapping token as the caller's token.
	tok, _ = wrapRead()
	code, _, body = e.do("POST", "/v1/sys/wrapping/unwrap", "", "X-Vault-Token", tok)
	if data, _ := body["data"].(map[string]any); code != 200 || data["v"] != "s3cret" {
		t.Fatalf("unwrap as the caller: %d %v", code, body)
	}
	if code, _, _ := e.do("POST", "/v1/sys/wrapping/unwrap", "", "X-Vault-Token", tok); code != 403 {
		t.Fatalf("second unwrap as the caller: %d", code)
	}

	// Rewrap: a new token with the same contents and TTL; the old one is
	// spent.
	tok, _ = wrapRead()
	code, _, body = e.do("POST", "/v1/sys/wrapping/rewrap", `{"token":"`+tok+`"}`)
	info, _ := body["wrap_info"].(map[string]any)
	if code != 200 || info == nil || info["ttl"] != 60.0 || info["creation_path"] != "kv/a" || info["token"] == tok {
		t.Fatalf("rewrap: %d %v", code, body)
	}
	code, _, body = e.do("POST", "/v1/sys/wrapping/unwrap", `{"token":"`+tok+`"}`)
	bad("unwrap of a rewrapped token", code, body)
	if data, _ := unwrap(info["token"].(string))["data"].(map[string]any); data["v"] != "s3cret" {
		t.Fatalf("unwrap after rewrap = %v", data)
	}

	// sys/wrapping/wrap wraps the request's data; it needs a TTL.
	code, _, body = e.do("POST", "/v1/sys/wrapping/wrap", `{"api_key":"sk-1"}`)
	if code != 400 {
		t.Fatalf("wrap without a TTL: %d %v", code, body)
	}
	code, _, body = e.do("POST", "/v1/sys/wrapping/wrap", `{"api_key":"sk-1","n":3}`, "X-Vault-Wrap-TTL", "5m")
	info, _ = body["wrap_info"].(map[string]any)
	if code != 200 || info == nil || info["creation_path"] != "sys/wrapping/wrap" || info["ttl"] != 300.0 {
		t.Fatalf("wrap: %d %v", code, body)
	}
	if data, _ := unwrap(info["token"].(string))["data"].(map[string]any); data["api_key"] != "sk-1" || data["n"] != 3.0 {
		t.Fatalf("unwrapped wrap = %v", data)
	}

	// Paths served outside the pipeline refuse wrapping.
	code, _, body = e.do("GET", "/v1/sys/health", "", "X-Vault-Wrap-TTL", "5m")
	if code != 400 || !strings.Contains(body["errors"].([]any)[0].(string), "not supported on sys/health") {
		t.Fatalf("wrapped health: %d %v", code, body)
	}
	code, _, body = e.do("GET", "/v1/kv/a", "", "X-Vault-Wrap-TTL", "soon")
	if code != 400 || body["data"] != nil {
		t.Fatalf("garbled wrap TTL: %d %v", code, body)
	}
}

func TestBodyLimit(t *testing.T) {
	c, _ := core.New(core.Config{Storage: inmem.New(), Factories: map[string]logical.Factory{"kv": kv.Factory}})
	srv := httptest.NewServer(New(Options{Core: c, MaxRequestSize: 1024}))
	defer srv.Close()
	req, _ := http.NewRequest("PUT", srv.URL+"/v1/sys/init", strings.NewReader(`{"x":"`+strings.Repeat("a", 2048)+`"}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("oversized body = %d", resp.StatusCode)
	}
	if ok, _ := c.Initialized(context.Background()); ok {
		t.Fatal("oversized request had an effect")
	}
}

// A login past the per-address limit is a 429 with Retry-After.
func TestLoginRateLimit(t *testing.T) {
	c, err := core.New(core.Config{Storage: inmem.New(), StorageType: "inmem", LoginRate: 0.5, LoginBurst: 1,
		AuthFactories: map[string]logical.Factory{"approle": approle.Factory}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(Options{Core: c, Version: "test"}))
	t.Cleanup(func() {
		srv.Close()
		c.SealInternal(context.Background())
	})
	e := &env{t: t, core: c, srv: srv}
	e.initAndUnseal()
	if code, _, body := e.do("POST", "/v1/sys/auth/approle", `{"type":"approle"}`); code != 204 {
		t.Fatalf("enable: %d %v", code, body)
	}
	e.token = ""
	if code, _, _ := e.do("POST", "/v1/auth/approle/login", `{"role_id":"x","secret_id":"y"}`); code != 400 {
		t.Fatalf("first login: %d, want 400 (bad credentials)", code)
	}
	code, hdr, body := e.do("POST", "/v1/auth/approle/login", `{"role_id":"x","secret_id":"y"}`)
	if code != 429 || hdr.Get("Retry-After") != "2" || len(body["errors"].([]any)) != 1 {
		t.Fatalf("second login: %d, Retry-After %q, %v", code, hdr.Get("Retry-After"), body)
	}
}
