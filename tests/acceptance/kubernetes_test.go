//go:build !e2e

package acceptance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	vault "github.com/hashicorp/vault/api"

	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestKubernetesLogin is a pod's identity end to end, with the official
// client: a Kubernetes API server on loopback that answers TokenReviews
// for tokens signed with its service-account key, the kubernetes auth
// method configured against it, a role for ml-serving/llm-gateway, a
// login with the pod's projected token, a read the role's policy allows
// and one it does not, and logins of other accounts refused.
func TestKubernetesLogin(t *testing.T) {
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const issuer = "https://kubernetes.default.svc.cluster.local"
	reviewer := "reviewer-" + rand.Text()
	var reviews atomic.Int64
	api := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
		case r.Header.Get("Authorization") != "Bearer "+reviewer:
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&tr); err != nil || tr.APIVersion != "authentication.k8s.io/v1" || tr.Kind != "TokenReview" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		reviews.Add(1)
		status := map[string]any{"authenticated": false, "error": "invalid bearer token"}
		if jws, err := jose.ParseSigned(tr.Spec.Token, []jose.SignatureAlgorithm{jose.RS256}); err == nil {
			if payload, err := jws.Verify(&saKey.PublicKey); err == nil {
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
	}))
	defer api.Close()
	podToken := func(ns, sa string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: saKey}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "sa"))
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		payload, _ := json.Marshal(map[string]any{
			"iss": issuer, "aud": []string{"vigil"}, "sub": "system:serviceaccount:" + ns + ":" + sa,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
			"kubernetes.io": map[string]any{
				"namespace":      ns,
				"serviceaccount": map[string]any{"name": sa, "uid": "uid-" + ns + "-" + sa},
				"pod":            map[string]any{"name": sa + "-6c9f7-x2x9q", "uid": "pod-uid-" + sa},
			},
		})
		obj, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := obj.CompactSerialize()
		return out
	}

	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	ctx := context.Background()
	for path, v := range map[string]string{"ml/llm-gateway/openai": "sk-gateway", "ml/trainer/hf": "hf-trainer"} {
		if _, err := root.KVv2("secret").Put(ctx, path, map[string]any{"api_key": v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := root.Sys().PutPolicy("llm-gateway", `path "secret/data/ml/llm-gateway/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("kubernetes", &vault.EnableAuthOptions{Type: "kubernetes"}); err != nil {
		t.Fatal(err)
	}
	caPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw}))
	if _, err := root.Logical().Write("auth/kubernetes/config", map[string]any{
		"kubernetes_host": api.URL, "kubernetes_ca_cert": caPEM, "token_reviewer_jwt": reviewer,
	}); err != nil {
		t.Fatal(err)
	}
	cfg, err := root.Logical().Read("auth/kubernetes/config")
	if err != nil || cfg.Data["token_reviewer_jwt_set"] != true || cfg.Data["token_reviewer_jwt"] != nil {
		t.Fatalf("config read: %v %v", cfg, err)
	}
	if _, err := root.Logical().Write("auth/kubernetes/role/llm-gateway", map[string]any{
		"bound_service_account_names": "llm-gateway", "bound_service_account_namespaces": "ml-serving",
		"audience": "vigil", "token_policies": "llm-gateway", "token_ttl": "15m",
	}); err != nil {
		t.Fatal(err)
	}

	pod, _ := root.Clone()
	pod.ClearToken()
	login, err := pod.Logical().Write("auth/kubernetes/login", map[string]any{"role": "llm-gateway", "jwt": podToken("ml-serving", "llm-gateway")})
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	a := login.Auth
	if a == nil || !strings.HasPrefix(a.ClientToken, "hvs.") || a.LeaseDuration != 900 || !a.Renewable || !a.Orphan ||
		a.Metadata["service_account_namespace"] != "ml-serving" || a.Metadata["service_account_name"] != "llm-gateway" ||
		a.Metadata["service_account_uid"] != "uid-ml-serving-llm-gateway" || a.Metadata["pod_name"] != "llm-gateway-6c9f7-x2x9q" ||
		a.Metadata["pod_uid"] != "pod-uid-llm-gateway" || a.Metadata["role"] != "llm-gateway" ||
		!slices.Contains(a.TokenPolicies, "llm-gateway") {
		t.Fatalf("login auth: %+v", a)
	}
	pod.SetToken(a.ClientToken)
	if sec, err := pod.KVv2("secret").Get(ctx, "ml/llm-gateway/openai"); err != nil || sec.Data["api_key"] != "sk-gateway" {
		t.Fatalf("allowed read: %v", err)
	}
	var re *vault.ResponseError
	if _, err := pod.KVv2("secret").Get(ctx, "ml/trainer/hf"); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Fatalf("another workload's secret: %v, want 403", err)
	}
	self, err := pod.Auth().Token().LookupSelf()
	if err != nil || self.Data["display_name"] != "kubernetes-ml-serving-llm-gateway" {
		t.Fatalf("lookup-self: %v %v", self, err)
	}
	if _, err := pod.Auth().Token().RenewSelf(0); err != nil {
		t.Fatalf("renew: %v", err)
	}

	anon, _ := root.Clone()
	anon.ClearToken()
	for name, c := range map[string]struct {
		role, jwt string
		status    int
	}{
		"another namespace":       {"llm-gateway", podToken("default", "llm-gateway"), 403},
		"another service account": {"llm-gateway", podToken("ml-serving", "trainer"), 403},
		"unknown role":            {"nope", podToken("ml-serving", "llm-gateway"), 400},
		"missing jwt":             {"llm-gateway", "", 400},
	} {
		if _, err := anon.Logical().Write("auth/kubernetes/login", map[string]any{"role": c.role, "jwt": c.jwt}); !errors.As(err, &re) || re.StatusCode != c.status {
			t.Errorf("%s: %v, want %d", name, err, c.status)
		}
	}
	// The API server down: refused (403), not a 5xx the client would retry.
	api.Close()
	if _, err := anon.Logical().Write("auth/kubernetes/login", map[string]any{"role": "llm-gateway", "jwt": podToken("ml-serving", "llm-gateway")}); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Errorf("API server down: %v, want 403", err)
	}
	if reviews.Load() != 1 {
		t.Errorf("%d TokenReviews, want 1 (the refused accounts never reach the API)", reviews.Load())
	}
}
