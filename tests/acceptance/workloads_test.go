//go:build !e2e

package acceptance

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The outside world a workload login needs, on loopback: a Kubernetes API
// server that reviews service-account tokens, and an OIDC issuer that
// signs CI jobs' tokens. Keys are made per test, in memory.

// kubeAPI is a Kubernetes API server (TLS) answering TokenReviews for
// tokens signed with its service-account key.
type kubeAPI struct {
	*httptest.Server
	key      *rsa.PrivateKey
	reviewer string // the token reviewer's bearer token
	reviews  atomic.Int64
}

const kubeIssuer = "https://kubernetes.default.svc.cluster.local"

func newKubeAPI(t *testing.T) *kubeAPI {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k := &kubeAPI{key: key, reviewer: "reviewer-" + rand.Text()}
	k.Server = httptest.NewTLSServer(http.HandlerFunc(k.serveTokenReview))
	t.Cleanup(k.Close)
	return k
}

func (k *kubeAPI) serveTokenReview(w http.ResponseWriter, r *http.Request) {
	var tr struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Token     string   `json:"token"`
			Audiences []string `json:"audiences"`
		} `json:"spec"`
	}
	switch {
	case r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews":
		http.NotFound(w, r)
		return
	case r.Header.Get("Authorization") != "Bearer "+k.reviewer:
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if err := json.NewDecoder(r.Body).Decode(&tr); err != nil || tr.APIVersion != "authentication.k8s.io/v1" || tr.Kind != "TokenReview" || len(tr.Spec.Audiences) == 0 {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	k.reviews.Add(1)
	status := map[string]any{"authenticated": false, "error": "invalid bearer token"}
	if jws, err := jose.ParseSigned(tr.Spec.Token, []jose.SignatureAlgorithm{jose.RS256}); err == nil {
		if payload, err := jws.Verify(&k.key.PublicKey); err == nil {
			var c struct {
				Aud []string `json:"aud"`
				Exp int64    `json:"exp"`
				K   struct {
					Namespace string                     `json:"namespace"`
					SA        struct{ Name, UID string } `json:"serviceaccount"`
					Pod       struct{ Name, UID string }
				} `json:"kubernetes.io"`
			}
			if json.Unmarshal(payload, &c) == nil && time.Now().Unix() < c.Exp && slices.Contains(c.Aud, tr.Spec.Audiences[0]) {
				status = map[string]any{"authenticated": true, "audiences": tr.Spec.Audiences, "user": map[string]any{
					"username": "system:serviceaccount:" + c.K.Namespace + ":" + c.K.SA.Name, "uid": c.K.SA.UID,
					"groups": []string{"system:serviceaccounts", "system:authenticated"},
					"extra":  map[string][]string{"authentication.kubernetes.io/pod-name": {c.K.Pod.Name}, "authentication.kubernetes.io/pod-uid": {c.K.Pod.UID}},
				}}
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"apiVersion": tr.APIVersion, "kind": tr.Kind, "status": status})
}

// caPEM is the API server's certificate, as kubernetes_ca_cert takes it.
func (k *kubeAPI) caPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: k.Certificate().Raw}))
}

// podToken is the projected service-account token (audience "vigil") of a
// pod of account sa in namespace ns.
func (k *kubeAPI) podToken(t *testing.T, ns, sa string) string {
	t.Helper()
	now := time.Now()
	return signJWT(t, jose.RS256, k.key, map[string]any{
		"iss": kubeIssuer, "aud": []string{"vigil"}, "sub": "system:serviceaccount:" + ns + ":" + sa,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]any{"name": sa, "uid": "uid-" + ns + "-" + sa},
			"pod":            map[string]any{"name": sa + "-6c9f7-x2x9q", "uid": "pod-uid-" + sa},
		},
	})
}

// oidcIssuer is an OIDC issuer (discovery and JWKS) signing with an ES256
// key.
type oidcIssuer struct {
	*httptest.Server
	key *ecdsa.PrivateKey
}

func newOIDCIssuer(t *testing.T) *oidcIssuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	o := &oidcIssuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": o.URL, "jwks_uri": o.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	})
	o.Server = httptest.NewServer(mux)
	t.Cleanup(o.Close)
	return o
}

// sign returns a token of the issuer with claims on top of iss, iat and a
// five-minute exp.
func (o *oidcIssuer) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	now := time.Now()
	all := map[string]any{"iss": o.URL, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	maps.Copy(all, claims)
	return signJWT(t, jose.ES256, o.key, all)
}

// signJWT signs claims as a compact JWT with key id "k1" for ES256 and
// "sa" for RS256.
func signJWT(t *testing.T, alg jose.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	kid := "k1"
	if alg == jose.RS256 {
		kid = "sa"
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
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
