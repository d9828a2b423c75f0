package jwt

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/internal/jwks"
	"github.com/vigil-secrets/vigil/internal/jwks/jwkstest"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// TestLoginSpecMessages: each refusal of spec §6.2's login carries the
// spec's status and message, and no part of the token.
func TestLoginSpecMessages(t *testing.T) {
	is := newIssuer(t)
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "config", map[string]any{"jwks_url": is.srv.URL + "/keys", "bound_issuer": is.srv.URL})
	h.ok(logical.UpdateOperation, "role/subject", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": "vigil",
		"bound_subject": "repo:acme/train:ref:refs/heads/main"})
	h.ok(logical.UpdateOperation, "role/noaud", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_subject": "repo:acme/train:ref:refs/heads/main"})
	h.ok(logical.UpdateOperation, "role/actor", map[string]any{"role_type": "jwt", "user_claim": "actor_id", "bound_audiences": "vigil"})
	with := func(k string, v any) map[string]any {
		c := is.ciClaims(t0)
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	for name, tc := range map[string]struct {
		role   string
		claims map[string]any
		want   string
	}{
		"wrong subject":         {"subject", with("sub", "repo:acme/train:ref:refs/heads/dev"), "error validating claims: sub claim does not match bound subject"},
		"no subject":            {"subject", with("sub", nil), "error validating claims: sub claim does not match bound subject"},
		"aud but none bound":    {"noaud", is.ciClaims(t0), "error validating claims: audience claim found in JWT but no audiences bound to the role"},
		"aud not bound":         {"subject", with("aud", "other"), "error validating claims: aud claim does not match any bound audience"},
		"no aud, some bound":    {"subject", with("aud", nil), "error validating claims: aud claim does not match any bound audience"},
		"wrong issuer":          {"subject", with("iss", "https://evil.example"), "error validating claims: iss claim"},
		"expired":               {"subject", with("exp", t0.Add(-time.Hour).Unix()), "error validating claims: token is expired"},
		"not yet valid":         {"subject", with("nbf", t0.Add(time.Hour).Unix()), "error validating claims: token not valid yet"},
		"exp not a number":      {"subject", with("exp", "tomorrow"), "error validating claims"},
		"nbf beyond int64":      {"subject", with("nbf", 1e300), "error validating claims: token not valid yet"},
		"iat beyond int64":      {"subject", with("iat", 1e300), "error validating claims: token issued in the future"},
		"exp below int64":       {"subject", with("exp", -1e300), "error validating claims: token is expired"},
		"user claim missing":    {"actor", is.ciClaims(t0), `claim "actor_id" not found in token or not a string`},
		"user claim not string": {"actor", with("actor_id", []string{"a"}), `claim "actor_id" not found in token or not a string`},
	} {
		t.Run(name, func(t *testing.T) {
			tok := is.sign(t, "rsa", tc.claims)
			_, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": tc.role, "jwt": tok})
			if status(err) != 400 || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v (status %d), want 400 %q", err, status(err), tc.want)
			}
			if strings.Contains(err.Error(), strings.Split(tok, ".")[2][:16]) {
				t.Fatalf("the error echoes the token: %v", err)
			}
		})
	}
	// The user claim is found, and it names the alias.
	resp := h.ok(logical.UpdateOperation, "login", map[string]any{"role": "actor", "jwt": is.sign(t, "ed", with("actor_id", "u-17"))})
	if resp.Auth.Alias.Name != "u-17" || resp.Auth.DisplayName != "u-17" || resp.Auth.Role != "actor" {
		t.Fatalf("auth = %+v", resp.Auth)
	}
	// default_role stands in for a missing role.
	h.ok(logical.UpdateOperation, "config", map[string]any{"jwks_url": is.srv.URL + "/keys", "default_role": "subject"})
	resp = h.ok(logical.UpdateOperation, "login", map[string]any{"jwt": is.sign(t, "ec", is.ciClaims(t0))})
	if resp.Auth.Role != "subject" || resp.Auth.Metadata["role"] != "subject" {
		t.Fatalf("default role: %+v", resp.Auth)
	}
}

// TestBoundClaimShapes: nested claims by JSON pointer, list claims, list
// bounds, globs, and the user claim by pointer or by plain name.
func TestBoundClaimShapes(t *testing.T) {
	is := newIssuer(t)
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "config", map[string]any{"oidc_discovery_url": is.srv.URL})
	h.ok(logical.UpdateOperation, "role/nested", map[string]any{
		"role_type": "jwt", "user_claim": "/ci/actor", "user_claim_json_pointer": true,
		"bound_audiences": "vigil", "bound_claims_type": "glob",
		"bound_claims": map[string]any{
			"/ci/env":     "prod-*",
			"groups":      []any{"ml", "data"},
			"/ci/tags/0":  "gpu",
			"/a~1b":       "slash",
			"environment": "prod",
		},
		"claim_mappings": map[string]any{"/ci/env": "env", "/ci/run": "run"},
	})
	h.ok(logical.UpdateOperation, "role/literal", map[string]any{"role_type": "jwt", "user_claim": "/odd", "bound_audiences": "vigil"})
	good := func() map[string]any {
		c := is.ciClaims(t0)
		c["ci"] = map[string]any{"actor": "octocat", "env": "prod-eu", "tags": []any{"gpu", "x"}, "run": 42}
		c["groups"] = []any{"web", "ml"}
		c["a/b"] = "slash"
		c["/odd"] = "literal-user"
		return c
	}
	resp, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "nested", "jwt": is.sign(t, "rsa", good())})
	if err != nil {
		t.Fatal(err)
	}
	if a := resp.Auth; a.Alias.Name != "octocat" || a.Metadata["env"] != "prod-eu" || a.Metadata["run"] != "42" {
		t.Fatalf("auth = %+v", a)
	}
	for name, mutate := range map[string]func(c map[string]any){
		"nested glob mismatch":  func(c map[string]any) { c["ci"].(map[string]any)["env"] = "dev-eu" },
		"nested claim missing":  func(c map[string]any) { delete(c["ci"].(map[string]any), "env") },
		"no list element":       func(c map[string]any) { c["groups"] = []any{"web", "ops"} },
		"array index mismatch":  func(c map[string]any) { c["ci"].(map[string]any)["tags"] = []any{"x", "gpu"} },
		"escaped key mismatch":  func(c map[string]any) { c["a/b"] = "other" },
		"object not a value":    func(c map[string]any) { c["environment"] = map[string]any{"prod": true} },
		"user pointer missing":  func(c map[string]any) { delete(c["ci"].(map[string]any), "actor") },
		"user pointer non-text": func(c map[string]any) { c["ci"].(map[string]any)["actor"] = 7 },
	} {
		c := good()
		mutate(c)
		if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "nested", "jwt": is.sign(t, "ec", c)}); status(err) != 400 {
			t.Errorf("%s: %v, want 400", name, err)
		}
	}
	// Without user_claim_json_pointer, "/odd" is a claim's name.
	resp, err = h.do(logical.UpdateOperation, "login", map[string]any{"role": "literal", "jwt": is.sign(t, "ed", good())})
	if err != nil || resp.Auth.Alias.Name != "literal-user" {
		t.Fatalf("literal user claim: %v", err)
	}
}

// TestKeyUseAndAlgorithm: a JWK is used only with the algorithm it names,
// PS256 works where the key allows it, and a discovery document naming
// another issuer is refused when the configuration is written.
func TestKeyUseAndAlgorithm(t *testing.T) {
	is := newIssuer(t)
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "config", map[string]any{"jwks_url": is.srv.URL + "/keys"})
	h.ok(logical.UpdateOperation, "role/ci", ciRole())
	// The JWKS names RS256 for kid "rsa": a PS256 token of the same key
	// is not accepted.
	ps := signWith(t, jose.PS256, is.keys["rsa"], "rsa", is.ciClaims(t0))
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": ps}); status(err) != 400 {
		t.Fatalf("PS256 against an RS256 JWK: %v, want 400", err)
	}
	// With the key given as PEM (no algorithm attached), PS256 is fine,
	// unless jwt_supported_algs leaves it out.
	der, err := x509.MarshalPKIXPublicKey(is.keys["rsa"].Public())
	if err != nil {
		t.Fatal(err)
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	h.ok(logical.UpdateOperation, "config", map[string]any{"jwt_validation_pubkeys": []any{pub}})
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": ps}); err != nil {
		t.Fatalf("PS256 with a PEM key: %v", err)
	}
	h.ok(logical.UpdateOperation, "config", map[string]any{"jwt_validation_pubkeys": []any{pub}, "jwt_supported_algs": "RS256"})
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": ps}); status(err) != 400 {
		t.Fatalf("PS256 outside jwt_supported_algs: %v, want 400", err)
	}
	if _, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "ci", "jwt": is.sign(t, "rsa", is.ciClaims(t0))}); err != nil {
		t.Fatalf("RS256 inside jwt_supported_algs: %v", err)
	}

	// A discovery document that is not the issuer's own.
	impostor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/keys"})
	}))
	t.Cleanup(impostor.Close)
	if _, err := h.do(logical.UpdateOperation, "config", map[string]any{"oidc_discovery_url": impostor.URL}); status(err) != 400 ||
		!strings.Contains(err.Error(), "issuer other than oidc_discovery_url") {
		t.Fatalf("discovery of another issuer: %v, want 400", err)
	}
	// A trailing slash on the URL is the same issuer.
	h.ok(logical.UpdateOperation, "config", map[string]any{"oidc_discovery_url": is.srv.URL + "/"})
}

// FuzzClaims feeds arbitrary payloads, genuinely signed, through claim
// validation against a role with every kind of bound: never a panic, and
// a login only when the payload meets the bounds.
func FuzzClaims(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		f.Fatal(err)
	}
	pub := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	exp := t0.Add(time.Minute).Unix()
	seed := func(c map[string]any) {
		b, _ := json.Marshal(c)
		f.Add(b)
	}
	good := map[string]any{"sub": "job", "aud": []any{"x", "vigil"}, "exp": exp, "ci": map[string]any{"ref": "refs/heads/main"}, "groups": []any{"ml"}}
	seed(good)
	seed(map[string]any{"sub": "job", "aud": "vigil", "exp": exp, "ci": map[string]any{"ref": "refs/heads/dev"}, "groups": "ml"})
	seed(map[string]any{"sub": "job", "aud": "vigil", "exp": float64(exp) + 0.5, "nbf": 1e300, "ci": map[string]any{"ref": []any{"refs/heads/x"}}, "groups": []any{1, "ml"}})
	seed(map[string]any{"sub": 1, "aud": nil, "exp": -1e300, "ci": []any{"ref"}})
	f.Add([]byte(`{"sub":"job","sub":"other","aud":"vigil","exp":1e19,"iat":-1}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"exp":"NaN"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		h := newHarness(t)
		h.ok(logical.UpdateOperation, "config", map[string]any{"jwt_validation_pubkeys": []any{pub}})
		h.ok(logical.UpdateOperation, "role/r", map[string]any{"role_type": "jwt", "user_claim": "sub",
			"bound_subject": "job", "bound_audiences": "vigil", "bound_claims_type": "glob",
			"bound_claims": map[string]any{"/ci/ref": "refs/heads/main*", "groups": "ml"}})
		tok := jwkstest.Sign(t, jose.ES256, key, "", payload)
		resp, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": "r", "jwt": tok})
		if err != nil {
			if s := status(err); s != 400 {
				t.Fatalf("status %d (%v), want 400", s, err)
			}
			return
		}
		// A login: check the bounds independently of the code under test.
		var c struct {
			Sub    string          `json:"sub"`
			Aud    json.RawMessage `json:"aud"`
			Exp    *float64        `json:"exp"`
			Groups json.RawMessage `json:"groups"`
			CI     struct {
				Ref json.RawMessage `json:"ref"`
			} `json:"ci"`
		}
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatalf("a login with an undecodable payload %q", payload)
		}
		if c.Sub != "job" || resp.Auth.Alias.Name != "job" {
			t.Fatalf("a login with sub %q", c.Sub)
		}
		if c.Exp == nil || time.Unix(int64(*c.Exp), 0).Add(210*time.Second).Before(t0) {
			t.Fatalf("a login with exp %v", c.Exp)
		}
		if !holds(c.Aud, func(s string) bool { return s == "vigil" }) ||
			!holds(c.Groups, func(s string) bool { return s == "ml" }) ||
			!holds(c.CI.Ref, func(s string) bool { return strings.HasPrefix(s, "refs/heads/main") }) {
			t.Fatalf("a login with claims that miss the bounds: %s", payload)
		}
	})
}

// holds reports whether raw, a string or a list, has a string that ok
// accepts.
func holds(raw json.RawMessage, ok func(string) bool) bool {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return ok(one)
	}
	var list []any
	if json.Unmarshal(raw, &list) != nil {
		return false
	}
	return slices.ContainsFunc(list, func(v any) bool { s, isStr := v.(string); return isStr && ok(s) })
}

// TestConcurrentRoleUpdates: updates of different fields of one role at
// the same time all land (each is a read, a change and a write).
func TestConcurrentRoleUpdates(t *testing.T) {
	h := newHarness(t)
	fields := map[string]any{
		"bound_subject": "s", "groups_claim": "g", "bound_audiences": "a", "oidc_scopes": "o",
		"allowed_redirect_uris": "https://r.example/cb", "max_age": 30, "token_ttl": 60, "token_policies": "p",
	}
	for round := range 20 {
		name := fmt.Sprintf("role/r%d", round)
		h.ok(logical.UpdateOperation, name, map[string]any{"role_type": "jwt", "user_claim": "sub", "token_bound_cidrs": "10.0.0.0/8"})
		var wg sync.WaitGroup
		for k, v := range fields {
			wg.Go(func() {
				req := &logical.Request{Operation: logical.UpdateOperation, Path: name, Storage: h.s, Data: map[string]any{k: v}}
				if _, err := h.b.HandleRequest(t.Context(), req); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		d := h.ok(logical.ReadOperation, name, nil).Data
		if d["bound_subject"] != "s" || d["groups_claim"] != "g" || len(d["bound_audiences"].([]string)) != 1 || len(d["oidc_scopes"].([]string)) != 1 ||
			len(d["allowed_redirect_uris"].([]string)) != 1 || d["max_age"] != int64(30) || d["token_ttl"] != int64(60) || len(d["token_policies"].([]string)) != 1 {
			t.Fatalf("round %d: an update was lost: %v", round, d)
		}
	}
}

// TestSlowRefreshDoesNotBlockLogins: while a refresh (here forced by an
// unknown kid) waits on a slow issuer, logins with known keys are served
// from the cached set.
func TestSlowRefreshDoesNotBlockLogins(t *testing.T) {
	is := newIssuer(t)
	var hold atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hold.Load() {
			entered <- struct{}{}
			<-release
		}
		resp, err := http.Get(is.srv.URL + "/keys")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "config", map[string]any{"jwks_url": slow.URL})
	h.ok(logical.UpdateOperation, "role/ci", ciRole())
	h.clk.Advance(jwks.RefreshInterval)
	hold.Store(true)
	forger, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged := signWith(t, jose.ES256, forger, "unknown", is.ciClaims(h.clk.Now()))
	go func() {
		req := &logical.Request{Operation: logical.UpdateOperation, Path: "login", Storage: h.s, Data: map[string]any{"role": "ci", "jwt": forged}}
		h.b.HandleRequest(context.Background(), req)
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the unknown kid did not refresh the key set")
	}
	done, genuine := make(chan error, 1), is.sign(t, "rsa", is.ciClaims(h.clk.Now()))
	go func() {
		req := &logical.Request{Operation: logical.UpdateOperation, Path: "login", Storage: h.s,
			Data: map[string]any{"role": "ci", "jwt": genuine}}
		_, err := h.b.HandleRequest(context.Background(), req)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("login during a refresh: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a login with a known key waited for the refresh")
	}
}
