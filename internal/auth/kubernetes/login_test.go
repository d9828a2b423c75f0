package kubernetes

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/internal/jwks"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

// llmRole is the role of the examples: namespace ml-serving, account
// llm-gateway.
var llmRole = map[string]any{
	"bound_service_account_names":      "llm-gateway",
	"bound_service_account_namespaces": "ml-serving",
	"token_policies":                   "llm",
	"token_ttl":                        "10m",
}

func TestLoginProjectedToken(t *testing.T) {
	a := newAPIServer(t)
	h := newHarness(t)
	h.configure(a, nil)
	h.role("llm", llmRole)
	tok := a.token(projected(time.Now(), "ml-serving", "llm-gateway", "llm-gateway-7d9f-abcde"))
	auth := h.mustLogin("llm", tok)

	want := map[string]string{
		"role":                        "llm",
		"service_account_name":        "llm-gateway",
		"service_account_namespace":   "ml-serving",
		"service_account_uid":         uidOf("ml-serving", "llm-gateway"),
		"service_account_secret_name": "",
		"pod_name":                    "llm-gateway-7d9f-abcde",
		"pod_uid":                     uidOf("ml-serving", "llm-gateway-7d9f-abcde"),
	}
	for k, v := range want {
		if got, ok := auth.Metadata[k]; !ok || got != v {
			t.Errorf("metadata[%s] = %q, want %q", k, got, v)
		}
		// The alias is the service account's, whichever pod logs in.
		pod := k == "pod_name" || k == "pod_uid"
		if got, ok := auth.Alias.Metadata[k]; ok == pod || (!pod && got != v) {
			t.Errorf("alias metadata[%s] = %q (set %v)", k, got, ok)
		}
	}
	if len(auth.Alias.Metadata) != len(want)-2 {
		t.Errorf("alias metadata %v: want the account's only", auth.Alias.Metadata)
	}
	if len(auth.Metadata) != len(want) {
		t.Errorf("metadata %v: want exactly %v", auth.Metadata, want)
	}
	if auth.DisplayName != "ml-serving-llm-gateway" || auth.Role != "llm" || auth.Alias.Name != uidOf("ml-serving", "llm-gateway") {
		t.Errorf("display %q, role %q, alias %q", auth.DisplayName, auth.Role, auth.Alias.Name)
	}
	if !slices.Equal(auth.Policies, []string{"llm"}) || auth.TTL != 10*time.Minute || !auth.Renewable {
		t.Errorf("token params: policies %v ttl %s renewable %v", auth.Policies, auth.TTL, auth.Renewable)
	}
	bearers, audiences := a.calls()
	if !slices.Equal(bearers, []string{"reviewer"}) || !slices.Equal(audiences[0], []string{clusterIssuer}) {
		t.Errorf("reviews: bearers %v audiences %v; want the reviewer JWT and the token's own audience", bearers, audiences)
	}
}

func TestLoginLegacyToken(t *testing.T) {
	a := newAPIServer(t)
	h := newHarness(t)
	h.configure(a, nil)
	h.role("llm", llmRole)
	auth := h.mustLogin("llm", a.token(legacy("ml-serving", "llm-gateway")))
	if auth.Metadata["service_account_secret_name"] != "llm-gateway-token-x7k2p" || auth.Metadata["service_account_uid"] != uidOf("ml-serving", "llm-gateway") {
		t.Errorf("metadata %v", auth.Metadata)
	}
	if _, ok := auth.Metadata["pod_name"]; ok {
		t.Errorf("a legacy token has no pod: %v", auth.Metadata)
	}
	// Legacy tokens have no aud: the review asks for none.
	if _, audiences := a.calls(); len(audiences[0]) != 0 {
		t.Errorf("review audiences %v, want none", audiences[0])
	}
}

func TestLoginGlobs(t *testing.T) {
	a := newAPIServer(t)
	h := newHarness(t)
	h.configure(a, nil)
	h.role("ml", map[string]any{
		"bound_service_account_names":      []any{"llm-*", "embedder"},
		"bound_service_account_namespaces": "ml-*",
		"alias_name_source":                "serviceaccount_name",
	})
	h.role("anyns", map[string]any{"bound_service_account_names": "batch-runner", "bound_service_account_namespaces": "*"})
	now := time.Now()
	for _, c := range []struct{ role, ns, name string }{
		{"ml", "ml-serving", "llm-gateway"},
		{"ml", "ml-training", "embedder"},
		{"ml", "ml-", "llm-"},
		{"anyns", "anything", "batch-runner"},
	} {
		auth := h.mustLogin(c.role, a.token(projected(now, c.ns, c.name, "")))
		if c.role == "ml" && auth.Alias.Name != c.ns+"/"+c.name {
			t.Errorf("alias %q, want %s/%s", auth.Alias.Name, c.ns, c.name)
		}
	}
	h.refused("ml", a.token(projected(now, "ml-serving", "gateway-llm", "")), 403, msgNameNotAuthorized)
	h.refused("ml", a.token(projected(now, "prod-ml", "llm-gateway", "")), 403, msgNamespaceNotAuthorized)
	h.refused("anyns", a.token(projected(now, "x", "batch-runner-2", "")), 403, msgNameNotAuthorized)
}

func TestLoginRefusals(t *testing.T) {
	a := newAPIServer(t)
	h := newHarness(t)
	h.configure(a, nil)
	h.role("llm", llmRole)
	h.role("aud", map[string]any{"bound_service_account_names": "llm-gateway", "bound_service_account_namespaces": "ml-serving", "audience": "vigil"})
	now := time.Now()
	good := a.token(projected(now, "ml-serving", "llm-gateway", ""))
	h.mustLogin("llm", good)

	t.Run("request", func(t *testing.T) {
		h.refused("", good, 400, "missing role")
		h.refused("llm", "", 400, "missing jwt")
		h.refused("nope", good, 400, `invalid role name "nope"`)
	})
	t.Run("another namespace", func(t *testing.T) {
		h.refused("llm", a.token(projected(now, "default", "llm-gateway", "")), 403, msgNamespaceNotAuthorized)
	})
	t.Run("another service account", func(t *testing.T) {
		h.refused("llm", a.token(projected(now, "ml-serving", "default", "")), 403, msgNameNotAuthorized)
	})
	t.Run("malformed", func(t *testing.T) {
		h.refused("llm", "not.a.jwt", 403, "permission denied")
		h.refused("llm", strings.Repeat("a", jwks.MaxTokenSize+1), 403, "permission denied")
		noSA := projected(now, "ml-serving", "llm-gateway", "")
		delete(noSA, "kubernetes.io")
		h.refused("llm", a.token(noSA), 403, "permission denied")
		badSub := projected(now, "ml-serving", "llm-gateway", "")
		badSub["sub"] = "system:serviceaccount:kube-system:admin"
		h.refused("llm", a.token(badSub), 403, "permission denied")
	})
	t.Run("forged signature", func(t *testing.T) {
		// The API server does not know the key: the review refuses.
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		h.refused("llm", sign(t, jose.RS256, other, "cluster-key", projected(now, "ml-serving", "llm-gateway", "")), 403, "permission denied")
	})
	t.Run("alg none", func(t *testing.T) {
		h.refused("llm", unsignedToken(projected(now, "ml-serving", "llm-gateway", "")), 403, "permission denied", "accepted asymmetric algorithm")
	})
	t.Run("unauthenticated review", func(t *testing.T) {
		tok := a.token(projected(now.Add(time.Second), "ml-serving", "llm-gateway", ""))
		a.override(tok, func(s *reviewStatus) { *s = reviewStatus{Error: "token has been invalidated"} })
		h.refused("llm", tok, 403, "permission denied", "not authenticated")
	})
	t.Run("review username mismatch", func(t *testing.T) {
		tok := a.token(projected(now.Add(2*time.Second), "ml-serving", "llm-gateway", ""))
		a.override(tok, func(s *reviewStatus) { s.User.Username = "system:serviceaccount:kube-system:admin" })
		h.refused("llm", tok, 403, "permission denied", "another user")
	})
	t.Run("review uid mismatch", func(t *testing.T) {
		// A service account deleted and created again: same name, new uid.
		tok := a.token(projected(now.Add(3*time.Second), "ml-serving", "llm-gateway", ""))
		a.override(tok, func(s *reviewStatus) { s.User.UID = "a-new-uid" })
		h.refused("llm", tok, 403, "permission denied", "another uid")
	})
	t.Run("review pod mismatch", func(t *testing.T) {
		tok := a.token(projected(now.Add(4*time.Second), "ml-serving", "llm-gateway", "pod-a"))
		a.override(tok, func(s *reviewStatus) { s.User.Extra["authentication.kubernetes.io/pod-uid"] = []string{"other"} })
		h.refused("llm", tok, 403, "permission denied", "another pod uid")
	})
	t.Run("review audience mismatch", func(t *testing.T) {
		tok := a.token(projected(now.Add(5*time.Second), "ml-serving", "llm-gateway", ""))
		a.override(tok, func(s *reviewStatus) { s.Audiences = []string{"something-else"} })
		h.refused("llm", tok, 403, "permission denied", "audiences do not overlap")
	})
	t.Run("wrong audience", func(t *testing.T) {
		// Locally: the role wants "vigil", the token is for the API server.
		h.refused("aud", good, 403, "permission denied", "role's audience")
		// The API server too refuses a token whose audience it was not asked for.
		h.mustLogin("aud", a.token(projected(now, "ml-serving", "llm-gateway", "", "vigil")))
		if _, audiences := a.calls(); !slices.Equal(audiences[len(audiences)-1], []string{"vigil"}) {
			t.Errorf("review audiences %v, want the role's [vigil]", audiences[len(audiences)-1])
		}
	})
	t.Run("expired", func(t *testing.T) {
		c := projected(now.Add(-time.Hour), "ml-serving", "llm-gateway", "")
		h.refused("llm", a.token(c), 403, "permission denied")
	})
	t.Run("API error", func(t *testing.T) {
		a.forceStatus.Store(500)
		defer a.forceStatus.Store(0)
		h.refused("llm", good, 403, "permission denied")
	})
	t.Run("reviewer JWT refused", func(t *testing.T) {
		h.configure(a, map[string]any{"token_reviewer_jwt": "not-the-reviewer"})
		defer h.configure(a, nil)
		h.refused("llm", good, 403, "permission denied")
	})
	t.Run("token_bound_cidrs", func(t *testing.T) {
		h.role("cidr", map[string]any{"bound_service_account_names": "llm-gateway", "bound_service_account_namespaces": "ml-serving", "token_bound_cidrs": "192.168.0.0/16"})
		h.refused("cidr", good, 403, "permission denied")
	})
}

func TestLoginAPIDown(t *testing.T) {
	a := newAPIServer(t)
	h := newHarness(t)
	h.configure(a, nil)
	h.role("llm", llmRole)
	tok := a.token(projected(time.Now(), "ml-serving", "llm-gateway", ""))
	a.srv.Close()
	h.refused("llm", tok, 403, "permission denied", "TokenReview call failed")
}

func TestLoginUntrustedAPIServerCert(t *testing.T) {
	a := newAPIServer(t)
	h := newHarness(t)
	h.configure(a, map[string]any{"kubernetes_ca_cert": selfSignedPEM(t)})
	h.role("llm", llmRole)
	h.refused("llm", a.token(projected(time.Now(), "ml-serving", "llm-gateway", "")), 403, "permission denied")
	if bearers, _ := a.calls(); len(bearers) != 0 {
		t.Fatalf("the reviewer JWT went to a server with an untrusted certificate: %v", bearers)
	}
}

func TestLoginBearer(t *testing.T) {
	now := time.Now()
	t.Run("client JWT", func(t *testing.T) {
		a := newAPIServer(t)
		a.delegator = true
		h := newHarness(t)
		h.configure(a, map[string]any{"token_reviewer_jwt": nil})
		h.role("llm", llmRole)
		h.mustLogin("llm", a.token(projected(now, "ml-serving", "llm-gateway", "")))
		if bearers, _ := a.calls(); !slices.Equal(bearers, []string{"self"}) {
			t.Fatalf("bearers %v, want the client's own JWT", bearers)
		}
		// Without system:auth-delegator, the API server refuses the call.
		a.delegator = false
		h.refused("llm", a.token(projected(now, "ml-serving", "llm-gateway", "")), 403, "permission denied")
	})
	t.Run("reviewer JWT", func(t *testing.T) {
		a := newAPIServer(t)
		a.delegator = true
		h := newHarness(t)
		h.configure(a, nil)
		h.role("llm", llmRole)
		h.mustLogin("llm", a.token(projected(now, "ml-serving", "llm-gateway", "")))
		if bearers, _ := a.calls(); !slices.Equal(bearers, []string{"reviewer"}) {
			t.Fatalf("bearers %v, want the reviewer JWT", bearers)
		}
	})
	t.Run("local service account", func(t *testing.T) {
		a := newAPIServer(t)
		h := newHarness(t)
		// Vigil runs in a pod: its own CA and token are mounted.
		local1 := "local-" + rand.Text()
		a.localToken.Store(&local1)
		writeFile(t, filepath.Join(h.dir, "ca.crt"), a.caPEM())
		writeFile(t, filepath.Join(h.dir, "token"), local1+"\n")
		h.configure(a, map[string]any{"token_reviewer_jwt": nil, "kubernetes_ca_cert": nil})
		h.role("llm", llmRole)
		h.mustLogin("llm", a.token(projected(now, "ml-serving", "llm-gateway", "")))
		// The kubelet rotates the token; the old one stops working.
		local2 := "local-" + rand.Text()
		a.localToken.Store(&local2)
		writeFile(t, filepath.Join(h.dir, "token"), local2)
		h.refused("llm", a.token(projected(now, "ml-serving", "llm-gateway", "")), 403, "permission denied")
		h.clk.Advance(localSARefresh + time.Second)
		h.mustLogin("llm", a.token(projected(now, "ml-serving", "llm-gateway", "")))
		if bearers, _ := a.calls(); !slices.Equal(bearers, []string{"local", "local"}) {
			t.Fatalf("bearers %v, want the pod's own token twice", bearers)
		}
		// disable_local_ca_jwt: neither the CA nor the token is used.
		h.configure(a, map[string]any{"token_reviewer_jwt": nil, "kubernetes_ca_cert": nil, "disable_local_ca_jwt": true})
		h.refused("llm", a.token(projected(now, "ml-serving", "llm-gateway", "")), 403, "permission denied")
	})
}

// selfSignedPEM is a CA certificate that signed nothing the test servers
// use.
func selfSignedPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoginPEMKeys(t *testing.T) {
	a := newAPIServer(t)
	h := newHarness(t)
	h.configure(a, map[string]any{"pem_keys": []any{a.publicPEM()}})
	h.role("llm", llmRole)
	now := time.Now()
	h.mustLogin("llm", a.token(projected(now, "ml-serving", "llm-gateway", "")))
	calls, _ := a.calls()

	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	h.refused("llm", sign(t, jose.RS256, other, "cluster-key", projected(now, "ml-serving", "llm-gateway", "")), 403, "permission denied", "pem_keys")
	h.refused("llm", unsignedToken(projected(now, "ml-serving", "llm-gateway", "")), 403, "permission denied")
	h.refused("llm", hmacToken(t, []byte(a.publicPEM()), "cluster-key", projected(now, "ml-serving", "llm-gateway", "")), 403, "permission denied")
	if after, _ := a.calls(); len(after) != len(calls) {
		t.Errorf("a token with a bad signature reached the TokenReview API")
	}

	// Issuer validation, when enabled, uses the configured issuer.
	h.configure(a, map[string]any{"pem_keys": []any{a.publicPEM()}, "disable_iss_validation": false, "issuer": clusterIssuer})
	h.mustLogin("llm", a.token(projected(now, "ml-serving", "llm-gateway", "")))
	h.refused("llm", a.token(legacy("ml-serving", "llm-gateway")), 403, "permission denied")
	h.configure(a, map[string]any{"disable_iss_validation": false})
	h.mustLogin("llm", a.token(legacy("ml-serving", "llm-gateway")))
}

func TestRenew(t *testing.T) {
	a := newAPIServer(t)
	h := newHarness(t)
	h.configure(a, nil)
	h.role("llm", llmRole)
	auth := h.mustLogin("llm", a.token(projected(time.Now(), "ml-serving", "llm-gateway", "")))
	renew := func() error {
		_, err := h.b.HandleRequest(t.Context(), &logical.Request{Operation: logical.RenewOperation, Storage: h.s, Auth: auth})
		return err
	}
	if err := renew(); err != nil {
		t.Fatalf("renew: %v", err)
	}
	h.role("llm", map[string]any{"token_policies": "llm,admin"})
	if got, _ := logicaltest.Status(renew()); got != 400 {
		t.Fatalf("renew after a policy change: %d, want 400", got)
	}
	h.ok(logical.DeleteOperation, "role/llm", nil)
	if got, _ := logicaltest.Status(renew()); got != 400 {
		t.Fatalf("renew after the role's deletion: %d, want 400", got)
	}
}

// TestLoginJWKS is Vigil's own mode: no TokenReview, the issuer's keys.
func TestLoginJWKS(t *testing.T) {
	is := newIssuer(t)
	for _, source := range []string{"oidc_discovery_url", "jwks_url"} {
		t.Run(source, func(t *testing.T) {
			h := newHarness(t)
			u := is.url
			if source == "jwks_url" {
				u += "/openid/v1/jwks"
			}
			h.ok(logical.UpdateOperation, "config", map[string]any{
				"token_validation": "jwks", source: u, "jwks_ca_pem": is.caPEM(), "issuer": is.url,
			})
			h.role("llm", map[string]any{"bound_service_account_names": "llm-gateway", "bound_service_account_namespaces": "ml-serving", "audience": "vigil"})
			now := h.clk.Now()
			auth := h.mustLogin("llm", is.token(t, is.claims(now, "ml-serving", "llm-gateway", "llm-gateway-0", "vigil")))
			if auth.Metadata["pod_name"] != "llm-gateway-0" || auth.Metadata["service_account_uid"] != uidOf("ml-serving", "llm-gateway") {
				t.Errorf("metadata %v", auth.Metadata)
			}
		})
	}
}

func TestLoginJWKSRefusals(t *testing.T) {
	is := newIssuer(t)
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "config", map[string]any{
		"token_validation": "jwks", "oidc_discovery_url": is.url, "jwks_ca_pem": is.caPEM(), "issuer": is.url,
	})
	h.role("llm", map[string]any{"bound_service_account_names": "llm-gateway", "bound_service_account_namespaces": "ml-serving", "audience": "vigil"})
	now := h.clk.Now()
	claims := func() map[string]any { return is.claims(now, "ml-serving", "llm-gateway", "", "vigil") }
	h.mustLogin("llm", is.token(t, claims()))

	t.Run("expired", func(t *testing.T) {
		c := claims()
		c["exp"] = now.Add(-timeLeeway - time.Second).Unix()
		h.refused("llm", is.token(t, c), 403, "permission denied", "expired")
		// Within the leeway it passes.
		c["exp"] = now.Add(-timeLeeway / 2).Unix()
		h.mustLogin("llm", is.token(t, c))
	})
	t.Run("no exp", func(t *testing.T) {
		c := claims()
		delete(c, "exp")
		h.refused("llm", is.token(t, c), 403, "permission denied")
	})
	t.Run("not yet valid", func(t *testing.T) {
		c := claims()
		c["nbf"] = now.Add(5 * time.Minute).Unix()
		h.refused("llm", is.token(t, c), 403, "permission denied")
	})
	t.Run("wrong issuer", func(t *testing.T) {
		c := claims()
		c["iss"] = "https://another-cluster.example"
		h.refused("llm", is.token(t, c), 403, "permission denied", "iss")
	})
	t.Run("wrong audience", func(t *testing.T) {
		h.refused("llm", is.token(t, is.claims(now, "ml-serving", "llm-gateway", "", clusterIssuer)), 403, "permission denied", "aud")
	})
	t.Run("role without audience", func(t *testing.T) {
		// Nothing but the audience keeps a token made for another
		// service out when no TokenReview runs.
		resp := h.ok(logical.UpdateOperation, "role/any-aud", map[string]any{"bound_service_account_names": "llm-gateway", "bound_service_account_namespaces": "ml-serving"})
		if resp == nil || !slices.ContainsFunc(resp.Warnings, func(w string) bool { return strings.Contains(w, `no "audience"`) }) {
			t.Errorf("writing a role without audience: no warning in %v", resp)
		}
		h.refused("any-aud", is.token(t, claims()), 403, "permission denied", "no audience")
	})
	t.Run("another namespace and account", func(t *testing.T) {
		h.refused("llm", is.token(t, is.claims(now, "default", "llm-gateway", "", "vigil")), 403, msgNamespaceNotAuthorized)
		h.refused("llm", is.token(t, is.claims(now, "ml-serving", "default", "", "vigil")), 403, msgNameNotAuthorized)
	})
	t.Run("bad signature", func(t *testing.T) {
		forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		h.refused("llm", sign(t, jose.ES256, forger, "sa-key-1", claims()), 403, "permission denied", "verifies its signature")
		// A valid signature over other claims: the payload swapped.
		good := strings.Split(is.token(t, claims()), ".")
		evil := strings.Split(is.token(t, is.claims(now, "ml-serving", "llm-gateway", "", "vigil")), ".")
		evil[1] = b64([]byte(`{"iss":"` + is.url + `","aud":"vigil","exp":` + "9999999999" + `,"kubernetes.io":{"namespace":"ml-serving","serviceaccount":{"name":"llm-gateway","uid":"x"}}}`))
		h.refused("llm", good[0]+"."+evil[1]+"."+good[2], 403, "permission denied", "verifies its signature")
	})
	t.Run("alg none", func(t *testing.T) {
		h.refused("llm", unsignedToken(claims()), 403, "permission denied", "accepted asymmetric algorithm")
	})
	t.Run("HS256 with the public key", func(t *testing.T) {
		h.refused("llm", hmacToken(t, is.publicPEM(t), "sa-key-1", claims()), 403, "permission denied", "accepted asymmetric algorithm")
	})
	t.Run("unknown kid", func(t *testing.T) {
		before := is.fetches.Load()
		forger, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		for i := range 5 {
			h.refused("llm", sign(t, jose.ES256, forger, "kid-"+string(rune('a'+i)), claims()), 403, "permission denied", "verifies its signature")
		}
		if n := is.fetches.Load() - before; n > 1 {
			t.Fatalf("%d JWKS fetches for unknown key ids within one refresh interval, want at most 1", n)
		}
		h.clk.Advance(jwks.RefreshInterval + time.Second)
		now = h.clk.Now()
		h.refused("llm", sign(t, jose.ES256, forger, "kid-z", claims()), 403, "permission denied")
		if n := is.fetches.Load() - before; n > 2 {
			t.Fatalf("%d JWKS fetches, want at most 2 after one interval", n)
		}
	})
}

func TestJWKSKeyRotation(t *testing.T) {
	is := newIssuer(t)
	h := newHarness(t)
	h.ok(logical.UpdateOperation, "config", map[string]any{
		"token_validation": "jwks", "jwks_url": is.url + "/openid/v1/jwks", "jwks_ca_pem": is.caPEM(), "issuer": is.url,
	})
	h.role("llm", map[string]any{"bound_service_account_names": "llm-gateway", "bound_service_account_namespaces": "ml-serving", "audience": "vigil"})
	// The cluster rotates its signing key: the new kid is fetched once the
	// refresh interval has passed since the last fetch.
	newKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	is.rotate(newKey, "sa-key-2")
	h.clk.Advance(jwks.RefreshInterval + time.Second)
	h.mustLogin("llm", is.token(t, is.claims(h.clk.Now(), "ml-serving", "llm-gateway", "", "vigil")))
}
