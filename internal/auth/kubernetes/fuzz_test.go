package kubernetes

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/jwks"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

// tokenSeeds are real and broken tokens for the fuzzers.
func tokenSeeds(t testing.TB, a *apiServer) []string {
	now := time.Now()
	good := a.token(projected(now, "ml-serving", "llm-gateway", "pod-1"))
	parts := strings.Split(good, ".")
	noSA := projected(now, "ml-serving", "llm-gateway", "")
	noSA["kubernetes.io"] = map[string]any{"namespace": 7}
	return []string{
		good,
		a.token(legacy("ml-serving", "llm-gateway")),
		a.token(noSA),
		unsignedToken(projected(now, "ml-serving", "llm-gateway", "")),
		hmacToken(t, []byte(a.publicPEM()), "", projected(now, "a", "b", "")),
		parts[0] + "." + b64([]byte(`{"kubernetes.io":{"namespace":"a:b","serviceaccount":{"name":"x","uid":"y"}}}`)) + "." + parts[2],
		parts[0] + "." + b64([]byte(`{"exp":1e400}`)) + "." + parts[2],
		parts[0] + "." + b64([]byte(`{"aud":[1,2]}`)) + "." + parts[2],
		parts[0] + "." + b64([]byte(`[]`)) + "." + parts[2],
		parts[0] + "." + parts[1],
		"..", "", "a.b.c", "e30.e30.e30",
	}
}

// FuzzParseToken runs the token parsing path of a login (JWS parsing, then
// the claims) on arbitrary input. Whatever the input: no panic, an error
// never quotes the input, and an accepted token names a well-formed
// service account consistent with its subject.
func FuzzParseToken(f *testing.F) {
	a := newAPIServer(f)
	for _, s := range tokenSeeds(f, a) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		jws, err := jwks.ParseSigned(token, nil)
		if err != nil {
			if len(token) >= 16 && strings.Contains(err.Error(), token) {
				t.Fatalf("the error quotes the token: %v", err)
			}
			return
		}
		c, err := parseClaims(jws.UnsafePayloadWithoutVerification())
		if err != nil {
			if p := string(jws.UnsafePayloadWithoutVerification()); len(p) >= 16 && strings.Contains(err.Error(), p) {
				t.Fatalf("the error quotes the payload: %v", err)
			}
			return
		}
		if err := c.SA.check(); err != nil {
			t.Fatalf("accepted an account that fails its own check: %v", err)
		}
		if strings.Count(c.SA.username(), ":") != 3 {
			t.Fatalf("username %q is ambiguous", c.SA.username())
		}
		if c.Subject != "" && c.Subject != c.SA.username() {
			t.Fatalf("subject %q accepted for %q", c.Subject, c.SA.username())
		}
	})
}

// FuzzLogin sends arbitrary JWTs to a login with pem_keys configured and
// the real TokenReview server behind. The answer is a login only for a
// token the cluster signed for the bound account, and otherwise a 403;
// never a panic, a 500, or an error that quotes the token.
func FuzzLogin(f *testing.F) {
	a := newAPIServer(f)
	h := newHarness(f)
	h.configure(a, map[string]any{"pem_keys": a.publicPEM()})
	h.role("llm", llmRole)
	for _, s := range tokenSeeds(f, a) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if strings.TrimSpace(token) == "" {
			return // missing jwt: a 400 tested elsewhere
		}
		resp, err := h.b.HandleRequest(t.Context(), &logical.Request{
			Operation: logical.UpdateOperation, Path: "login", Storage: h.s,
			Data: map[string]any{"role": "llm", "jwt": token}, Connection: &logical.Connection{RemoteAddr: "10.0.0.7"},
		})
		if err == nil {
			if resp.Auth == nil || resp.Auth.Metadata["service_account_name"] != "llm-gateway" || resp.Auth.Metadata["service_account_namespace"] != "ml-serving" {
				t.Fatalf("login succeeded with %+v", resp)
			}
			return
		}
		got, msg := logicaltest.Status(err)
		if got != 403 {
			t.Fatalf("status %d %q, want 403", got, msg)
		}
		if len(token) >= 16 && strings.Contains(err.Error(), strings.TrimSpace(token)) {
			t.Fatalf("the error quotes the token: %v", err)
		}
	})
}
