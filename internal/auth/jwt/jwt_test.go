package jwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// issuer is a real OIDC issuer on loopback: a discovery document and a
// JWKS of keys made in the test. It counts JWKS fetches.
type issuer struct {
	srv     *httptest.Server
	keys    map[string]crypto.Signer // kid → private key
	algs    map[string]jose.SignatureAlgorithm
	fetches atomic.Int64
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	is := &issuer{keys: map[string]crypto.Signer{}, algs: map[string]jose.SignatureAlgorithm{}}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is.keys["rsa"], is.algs["rsa"] = rsaKey, jose.RS256
	is.keys["ec"], is.algs["ec"] = ecKey, jose.ES256
	is.keys["ed"], is.algs["ed"] = edKey, jose.EdDSA
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		var set jose.JSONWebKeySet
		for kid, k := range is.keys {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Public(), KeyID: kid, Algorithm: string(is.algs[kid]), Use: "sig"})
		}
		json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

// sign makes a compact JWS of claims with the key kid.
func (is *issuer) sign(t *testing.T, kid string, c map[string]any) string {
	t.Helper()
	return signWith(t, is.algs[kid], is.keys[kid], kid, c)
}

func signWith(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, c map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(c)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ciClaims are the claims of a GitHub Actions job token.
func (is *issuer) ciClaims(now time.Time) map[string]any {
	return map[string]any{
		"iss": is.srv.URL, "aud": "vigil", "sub": "repo:acme/train:ref:refs/heads/main",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"repository": "acme/train", "ref": "refs/heads/main", "workflow": "train", "environment": "prod",
		"run_id": "8812", "actor": "octocat",
	}
}

type harness struct {
	t   *testing.T
	b   *backend
	s   *logicaltest.Storage
	clk *clock.Fake
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	clk := clock.NewFake(t0)
	b, err := newBackend(&logical.BackendConfig{Now: clk.Now, MountPoint: "auth/jwt/"}, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, b: b, s: logicaltest.New(), clk: clk}
}

func (h *harness) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	h.t.Helper()
	req := &logical.Request{ID: "r", Operation: op, Path: path, Data: data, Storage: h.s, MountPoint: "auth/jwt/",
		Connection: &logical.Connection{RemoteAddr: "10.0.0.7"}}
	if op == logical.UpdateOperation {
		if checked, exists, err := h.b.ExistenceCheck(h.t.Context(), req); err == nil && checked && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return h.b.HandleRequest(h.t.Context(), req)
}

func (h *harness) ok(op logical.Operation, path string, data map[string]any) *logical.Response {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

// status is the HTTP status an error maps to (400, 403...).
func status(err error) int {
	var ce *logical.CodedError
	switch {
	case err == nil:
		return 200
	case errors.As(err, &ce):
		return ce.Status
	case errors.Is(err, logical.ErrPermissionDenied):
		return 403
	}
	return 500
}

// ciRole is a role for the main branch of acme/train.
func ciRole() map[string]any {
	return map[string]any{
		"role_type": "jwt", "user_claim": "sub", "bound_audiences": "vigil",
		"bound_claims_type": "glob",
		"bound_claims":      map[string]any{"repository": "acme/train", "ref": []any{"refs/heads/main", "refs/tags/v*"}},
		"claim_mappings":    map[string]any{"repository": "repository", "ref": "ref", "workflow": "workflow", "environment": "environment", "run_id": "run_id", "actor": "actor"},
		"token_policies":    "train", "token_ttl": "10m",
	}
}

func TestLoginEveryKeySource(t *testing.T) {
	is := newIssuer(t)
	pemOf := func(k crypto.PublicKey) string {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	for name, cfg := range map[string]map[string]any{
		"discovery": {"oidc_discovery_url": is.srv.URL, "bound_issuer": is.srv.URL},
		"jwks_url":  {"jwks_url": is.srv.URL + "/keys"},
		"pubkeys": {"jwt_validation_pubkeys": []any{
			pemOf(is.keys["rsa"].Public()), pemOf(is.keys["ec"].Public()), pemOf(is.keys["ed"].Public()),
		}},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			h.ok(logical.UpdateOperation, "config", cfg)
			h.ok(logical.UpdateOperation, "role/ci", ciRole())
			for _, kid := range []string{"rsa", "ec", "ed"} {
				resp, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": is.sign(t, kid, is.ciClaims(t0))})
				if err != nil {
					t.Fatalf("%s: %v", kid, err)
				}
				a := resp.Auth
				if a == nil || a.Role != "ci" || a.Alias.Name != "repo:acme/train:ref:refs/heads/main" ||
					a.Metadata["repository"] != "acme/train" || a.Metadata["ref"] != "refs/heads/main" ||
					a.Metadata["run_id"] != "8812" || a.Metadata["actor"] != "octocat" || a.Metadata["role"] != "ci" ||
					len(a.Policies) != 1 || a.Policies[0] != "train" || a.TTL != 10*time.Minute {
					t.Fatalf("%s: auth = %+v", kid, a)
				}
			}
		})
	}
}

// TestForgedTokensRefused is the list of forgeries: each gets a
// 4xx and no auth.
func TestForgedTokensRefused(t *testing.T) {
	is := newIssuer(t)
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "config", map[string]any{"oidc_discovery_url": is.srv.URL, "bound_issuer": is.srv.URL})
	h.ok(logical.UpdateOperation, "role/ci", ciRole())
	with := func(k string, v any) map[string]any {
		c := is.ciClaims(t0)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaPub := is.keys["rsa"].Public().(*rsa.PublicKey)
	pubDER := x509.MarshalPKCS1PublicKey(rsaPub)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pubDER})
	valid := is.sign(t, "rsa", is.ciClaims(t0))
	parts := strings.Split(valid, ".")
	unsigned := func(header string, c map[string]any) string {
		p, _ := json.Marshal(c)
		return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
	}
	for name, tok := range map[string]string{
		"expired":             is.sign(t, "rsa", with("exp", t0.Add(-10*time.Minute).Unix())),
		"no exp":              is.sign(t, "rsa", with("exp", nil)),
		"not yet valid":       is.sign(t, "rsa", with("nbf", t0.Add(10*time.Minute).Unix())),
		"issued in future":    is.sign(t, "rsa", with("iat", t0.Add(10*time.Minute).Unix())),
		"wrong issuer":        is.sign(t, "rsa", with("iss", "https://evil.example")),
		"wrong audience":      is.sign(t, "rsa", with("aud", "someone-else")),
		"claim mismatch":      is.sign(t, "rsa", with("repository", "acme/other")),
		"missing claim":       is.sign(t, "rsa", with("repository", nil)),
		"branch glob":         is.sign(t, "rsa", with("ref", "refs/heads/dev")),
		"alg none":            unsigned(`{"alg":"none","typ":"JWT"}`, is.ciClaims(t0)),
		"HS256 with pub key":  signWith(t, jose.HS256, pubPEM, "rsa", is.ciClaims(t0)),
		"HS256 with pub DER":  signWith(t, jose.HS256, pubDER, "rsa", is.ciClaims(t0)),
		"bad signature":       parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2])),
		"other key same kid":  signWith(t, jose.RS256, other, "rsa", is.ciClaims(t0)),
		"unknown kid":         signWith(t, jose.RS256, other, "not-a-kid", is.ciClaims(t0)),
		"payload swapped":     parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x"}`)) + "." + parts[2],
		"not a jwt":           "hello",
		"user claim not str":  is.sign(t, "rsa", with("sub", 42)),
		"aud list no overlap": is.sign(t, "rsa", with("aud", []string{"a", "b"})),
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": tok})
			if s := status(err); s < 400 || s >= 500 {
				t.Fatalf("status %d (%v), want a 4xx", s, err)
			}
			if resp != nil && resp.Auth != nil {
				t.Fatal("an auth for a forged token")
			}
			if err != nil && len(tok) > 20 && strings.Contains(err.Error(), tok[:20]) {
				t.Fatalf("the error echoes the token: %v", err)
			}
		})
	}
	// The genuine token still works, and a tag matches the glob.
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": valid}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": is.sign(t, "ec", with("ref", "refs/tags/v1.2"))}); err != nil {
		t.Fatalf("tag glob: %v", err)
	}
}

// TestUnknownKidRefreshLimited: forged key ids make at most one JWKS fetch
// per refresh interval.
func TestUnknownKidRefreshLimited(t *testing.T) {
	is := newIssuer(t)
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "config", map[string]any{"jwks_url": is.srv.URL + "/keys"})
	h.ok(logical.UpdateOperation, "role/ci", ciRole())
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": is.sign(t, "rsa", is.ciClaims(t0))}); err != nil {
		t.Fatal(err)
	}
	base := is.fetches.Load()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for i := range 50 {
		tok := signWith(t, jose.ES256, other, "forged-"+string(rune('a'+i%26)), is.ciClaims(t0))
		if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": tok}); status(err) != 400 {
			t.Fatalf("forged kid: %v", err)
		}
	}
	if n := is.fetches.Load() - base; n > 1 {
		t.Fatalf("%d JWKS fetches for 50 forged kids in one interval, want at most 1", n)
	}
	// A key the issuer adds later is found after the interval.
	is.keys["new"], is.algs["new"] = other, jose.ES256
	h.clk.Advance(refreshInterval)
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": is.sign(t, "new", is.ciClaims(h.clk.Now()))}); err != nil {
		t.Fatalf("rotated-in key: %v", err)
	}
}

func TestConfigAndRoleValidation(t *testing.T) {
	is := newIssuer(t)
	h := newHarness(t)
	for name, tc := range map[string]struct {
		path string
		data map[string]any
	}{
		"no source":          {"config", map[string]any{"bound_issuer": "x"}},
		"two sources":        {"config", map[string]any{"jwks_url": is.srv.URL + "/keys", "oidc_discovery_url": is.srv.URL}},
		"unreachable":        {"config", map[string]any{"jwks_url": "http://127.0.0.1:1/keys"}},
		"not a URL":          {"config", map[string]any{"jwks_url": "ftp://x"}},
		"bad PEM":            {"config", map[string]any{"jwt_validation_pubkeys": []any{"nope"}}},
		"HMAC algorithm":     {"config", map[string]any{"jwks_url": is.srv.URL + "/keys", "jwt_supported_algs": "HS256"}},
		"CA without URL":     {"config", map[string]any{"jwt_validation_pubkeys": []any{"x"}, "jwks_ca_pem": "x"}},
		"jwt role unbounded": {"role/r", map[string]any{"role_type": "jwt", "user_claim": "sub"}},
		"no user claim":      {"role/r", map[string]any{"role_type": "jwt", "bound_subject": "x"}},
		"bad role type":      {"role/r", map[string]any{"role_type": "saml", "user_claim": "sub", "bound_subject": "x"}},
		"bad claims type":    {"role/r", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_subject": "x", "bound_claims_type": "regex"}},
	} {
		if _, err := h.do(logical.UpdateOperation, tc.path, tc.data); status(err) != 400 {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}
	h.ok(logical.UpdateOperation, "config", map[string]any{"oidc_discovery_url": is.srv.URL, "oidc_client_secret": "s3cret-value"})
	cfg := h.ok(logical.ReadOperation, "config", nil)
	if _, ok := cfg.Data["oidc_client_secret"]; ok || cfg.Data["oidc_discovery_url"] != is.srv.URL {
		t.Errorf("config read: %v", cfg.Data)
	}
	h.ok(logical.UpdateOperation, "role/web", map[string]any{"user_claim": "email"})
	_, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "web", "jwt": is.sign(t, "rsa", is.ciClaims(t0))})
	if status(err) != 400 || !strings.Contains(err.Error(), "oidc role_type is not allowed") {
		t.Errorf("oidc role login: %v", err)
	}
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "nope", "jwt": "x"}); status(err) != 400 || !strings.Contains(err.Error(), `role "nope" could not be found`) {
		t.Errorf("unknown role: %v", err)
	}
	h.ok(logical.UpdateOperation, "role/ci", ciRole())
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci"}); status(err) != 400 || !strings.Contains(err.Error(), "missing token") {
		t.Errorf("no jwt: %v", err)
	}
	r := h.ok(logical.ReadOperation, "role/ci", nil)
	if r.Data["role_type"] != "jwt" || r.Data["bound_claims_type"] != "glob" || r.Data["clock_skew_leeway"] != int64(60) || r.Data["expiration_leeway"] != int64(150) {
		t.Errorf("role read: %v", r.Data)
	}
	if list := h.ok(logical.ListOperation, "role/", nil); len(list.Data["keys"].([]string)) != 2 {
		t.Errorf("role list: %v", list.Data)
	}
}

func TestLeewaysAndRenewal(t *testing.T) {
	is := newIssuer(t)
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "config", map[string]any{"jwks_url": is.srv.URL + "/keys"})
	role := ciRole()
	role["expiration_leeway"] = -1
	role["clock_skew_leeway"] = -1
	h.ok(logical.UpdateOperation, "role/strict", role)
	h.ok(logical.UpdateOperation, "role/ci", ciRole())
	c := is.ciClaims(t0)
	c["exp"] = t0.Add(-time.Minute).Unix() // expired a minute ago: within the default leeways
	tok := is.sign(t, "rsa", c)
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "strict", "jwt": tok}); status(err) != 400 {
		t.Errorf("strict role accepted an expired token: %v", err)
	}
	resp, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": tok})
	if err != nil {
		t.Fatalf("default leeways: %v", err)
	}
	// Renewal follows the role; a deleted role ends it.
	renewReq := &logical.Request{Operation: logical.RenewOperation, Path: "login", Storage: h.s, Auth: resp.Auth}
	if _, err := h.b.HandleRequest(t.Context(), renewReq); err != nil {
		t.Fatalf("renew: %v", err)
	}
	h.ok(logical.DeleteOperation, "role/ci", nil)
	if _, err := h.b.HandleRequest(t.Context(), renewReq); status(err) != 400 {
		t.Fatalf("renew after the role went: %v", err)
	}
}

// FuzzLogin feeds arbitrary tokens through parsing and validation: never
// a panic, never a login.
func FuzzLogin(f *testing.F) {
	f.Add("")
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("eyJhbGciOiJSUzI1NiIsImtpZCI6InJzYSJ9.e30.AAAA")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(key.Public())
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	f.Fuzz(func(t *testing.T, tok string) {
		h := newHarness(t)
		h.ok(logical.UpdateOperation, "config", map[string]any{"jwt_validation_pubkeys": []any{pub}})
		h.ok(logical.UpdateOperation, "role/r", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_subject": "x"})
		resp, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "r", "jwt": tok})
		if err == nil || (resp != nil && resp.Auth != nil) {
			t.Fatalf("a login with a token not signed by the key: %q", tok)
		}
	})
}

// TestReconfigureDropsOldKeys: a new configuration's keys replace the old
// ones at once, even at the same instant.
func TestReconfigureDropsOldKeys(t *testing.T) {
	a, b := newIssuer(t), newIssuer(t)
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "role/ci", ciRole())
	h.ok(logical.UpdateOperation, "config", map[string]any{"jwks_url": a.srv.URL + "/keys"})
	fromA := a.sign(t, "rsa", a.ciClaims(t0))
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": fromA}); err != nil {
		t.Fatal(err)
	}
	h.ok(logical.UpdateOperation, "config", map[string]any{"jwks_url": b.srv.URL + "/keys"})
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": fromA}); status(err) != 400 {
		t.Fatalf("the old issuer's token after reconfiguration: %v", err)
	}
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": b.sign(t, "ec", b.ciClaims(t0))}); err != nil {
		t.Fatalf("the new issuer's token: %v", err)
	}
}
