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
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	vault "github.com/hashicorp/vault/api"
	"gopkg.in/yaml.v3"

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
	api, reviews := fakeKubeAPI(t, saKey, reviewer)
	podToken := func(ns, sa string) string {
		return saToken(t, saKey, issuer, "vigil", ns, sa, sa+"-6c9f7-x2x9q", 10*time.Minute)
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
		a.Metadata["pod_uid"] != "pod-uid-llm-gateway-6c9f7-x2x9q" || a.Metadata["role"] != "llm-gateway" ||
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

// fakeKubeAPI is a Kubernetes API server on loopback (TLS) that answers
// TokenReviews, authenticated with the reviewer token, for tokens signed
// with saKey: authenticated when the signature verifies, the token has not
// expired and its audiences hold the one asked for, with the user,
// uid and pod the token names. reviews counts the reviews answered.
func fakeKubeAPI(t *testing.T, saKey *rsa.PrivateKey, reviewer string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	reviews := new(atomic.Int64)
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
				if json.Unmarshal(payload, &c) == nil && time.Now().Unix() < c.Exp && len(tr.Spec.Audiences) > 0 && slices.Contains(c.Aud, tr.Spec.Audiences[0]) {
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
	t.Cleanup(api.Close)
	return api, reviews
}

// saToken is a projected service-account token as the kubelet gets it:
// signed by the cluster's key (key id "sa"), for one audience, bound to a
// pod, valid for ttl.
func saToken(t *testing.T, key *rsa.PrivateKey, issuer, aud, ns, sa, pod string, ttl time.Duration) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "sa"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{
		"iss": issuer, "aud": []string{aud}, "sub": "system:serviceaccount:" + ns + ":" + sa,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
		"kubernetes.io": map[string]any{
			"namespace":      ns,
			"serviceaccount": map[string]any{"name": sa, "uid": "uid-" + ns + "-" + sa},
			"pod":            map[string]any{"name": pod, "uid": "pod-uid-" + pod},
		},
	})
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

// podSpec is the part of the README's pod spec the test reads.
type podSpec struct {
	Metadata struct{ Name, Namespace string }
	Spec     struct {
		ServiceAccountName string `yaml:"serviceAccountName"`
		Containers         []struct {
			Env          []struct{ Name, Value string }
			VolumeMounts []struct {
				Name      string
				MountPath string `yaml:"mountPath"`
			} `yaml:"volumeMounts"`
		}
		Volumes []struct {
			Name      string
			Projected struct {
				Sources []struct {
					ServiceAccountToken *struct {
						Path, Audience    string
						ExpirationSeconds int `yaml:"expirationSeconds"`
					} `yaml:"serviceAccountToken"`
				}
			}
		}
	}
}

// projectedToken returns where the pod's container finds its projected
// service-account token, the token's audience and its lifetime.
func (p *podSpec) projectedToken(t *testing.T) (path, aud string, ttl time.Duration) {
	t.Helper()
	for _, v := range p.Spec.Volumes {
		for _, src := range v.Projected.Sources {
			sat := src.ServiceAccountToken
			if sat == nil {
				continue
			}
			for _, c := range p.Spec.Containers {
				for _, m := range c.VolumeMounts {
					if m.Name == v.Name {
						return strings.TrimSuffix(m.MountPath, "/") + "/" + sat.Path, sat.Audience, time.Duration(sat.ExpirationSeconds) * time.Second
					}
				}
			}
		}
	}
	t.Fatal("the README's pod spec mounts no projected service-account token")
	return "", "", 0
}

// env returns the value of a container's environment variable.
func (p *podSpec) env(name string) string {
	for _, c := range p.Spec.Containers {
		for _, e := range c.Env {
			if e.Name == name {
				return e.Value
			}
		}
	}
	return ""
}

// TestREADMEPods runs section 8 of the README as written: the pod spec
// gives the token's audience, lifetime, path, namespace, service account
// and pod; the server side (TokenReview against a loopback API server, with
// the CA and reviewer token kubectl would have written) and the pod's
// login and read run with the CLI; logins of other namespaces, accounts
// and audiences are refused; the audit log names the pod. Then the jwks
// mode on a second mount, against a loopback issuer of another cluster,
// with the pod's `-path=` login.
func TestREADMEPods(t *testing.T) {
	section := readmeSection(t, "### 8.")
	var pod podSpec
	if err := yaml.Unmarshal([]byte(block(t, section, "yaml", 0, "the pod spec")), &pod); err != nil {
		t.Fatalf("the README's pod spec: %v", err)
	}
	tokenPath, aud, ttl := pod.projectedToken(t)
	ns, sa, podName := pod.Metadata.Namespace, pod.Spec.ServiceAccountName, pod.Metadata.Name
	switch {
	case ns != "ml-serving" || sa != "llm-gateway" || aud != "vigil":
		t.Fatalf("the pod spec's namespace %q, service account %q, audience %q", ns, sa, aud)
	case ttl < 10*time.Minute:
		t.Fatalf("the pod spec's expirationSeconds is %v: Kubernetes refuses less than 600", ttl.Seconds())
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const clusterIssuer = "https://kubernetes.default.svc.cluster.local"
	reviewer := "reviewer-" + rand.Text()
	api, reviews := fakeKubeAPI(t, saKey, reviewer)
	// What the README's kubectl commands write, where they write it.
	dir := t.TempDir()
	t.Chdir(dir)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: api.Certificate().Raw})
	if err := os.WriteFile("k8s-ca.crt", caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("reviewer.jwt", []byte(reviewer+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(dir, "projected-token")
	project := func(tok string) {
		if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// The other cluster of the jwks mode: its issuer serves discovery and
	// its key set over plain HTTP on loopback.
	edgeKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var edge *httptest.Server
	edgeMux := http.NewServeMux()
	edgeMux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"issuer": edge.URL, "jwks_uri": edge.URL + "/openid/v1/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	edgeMux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: edgeKey.Public(), KeyID: "sa", Algorithm: "RS256", Use: "sig"}}})
	})
	edge = httptest.NewServer(edgeMux)
	defer edge.Close()

	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	root := vaultClient(t, &target{URL: s.URL, RootToken: s.RootToken})
	ctx := context.Background()
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := root.Sys().EnableAuditWithOptions("file", &vault.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	for path, v := range map[string]string{"ml/llm-gateway/openai": "sk-gateway", "ml/trainer/hf": "hf-trainer"} {
		if _, err := root.KVv2("secret").Put(ctx, path, map[string]any{"api_key": v}); err != nil {
			t.Fatal(err)
		}
	}
	subst := map[string]string{
		"https://k8s.internal:6443":     api.URL,
		"https://oidc.edge.example.com": edge.URL,
		pod.env("VIGIL_ADDR"):           s.URL,
		tokenPath:                       tokenFile,
	}
	podShell := func() *docShell {
		return newDocShell(t, map[string]string{"VIGIL_ADDR": subst[pod.env("VIGIL_ADDR")], "HOME": t.TempDir()}, subst)
	}

	admin := newDocShell(t, map[string]string{"VIGIL_ADDR": s.URL, "VIGIL_TOKEN": s.RootToken, "HOME": t.TempDir()}, subst, "kubectl")
	admin.mustRun(block(t, section, "sh", 0, "the TokenReview server side"))
	if admin.ran != 4 {
		t.Errorf("%d vigil commands in the server side, want 4", admin.ran)
	}

	// The pod: its token, its login, its read.
	inPod := shellCommands(block(t, section, "sh", 1, "the pod's login and read"))
	project(saToken(t, saKey, clusterIssuer, aud, ns, sa, podName, ttl))
	sh := podShell()
	var outs []string
	for _, c := range inPod {
		out, err := sh.run(c)
		if err != nil {
			t.Fatalf("in the pod: %v", err)
		}
		outs = append(outs, out)
	}
	if len(outs) != 2 || !strings.Contains(outs[0], "token_meta_pod_name") || !strings.Contains(outs[0], podName) ||
		!strings.Contains(outs[0], "token_meta_service_account_namespace") || outs[1] != "sk-gateway" {
		t.Fatalf("in the pod: %q", outs)
	}
	stored, err := os.ReadFile(filepath.Join(sh.env["HOME"], ".vigil-token"))
	if err != nil {
		t.Fatal(err)
	}
	podClient, _ := root.Clone()
	podClient.SetToken(string(stored))
	if self, err := podClient.Auth().Token().LookupSelf(); err != nil || self.Data["display_name"] != "kubernetes-"+ns+"-"+sa {
		t.Errorf("the pod's token: %v %v", self, err)
	}
	var re *vault.ResponseError
	if _, err := podClient.KVv2("secret").Get(ctx, "ml/trainer/hf"); !errors.As(err, &re) || re.StatusCode != 403 {
		t.Errorf("another workload's secret: %v, want 403", err)
	}

	// Pods the role does not name: the login is refused, with the
	// README's messages, and the read never happens.
	for name, c := range map[string]struct{ tok, want string }{
		"another namespace":       {saToken(t, saKey, clusterIssuer, aud, "default", sa, podName, ttl), "namespace not authorized"},
		"another service account": {saToken(t, saKey, clusterIssuer, aud, ns, "trainer", podName, ttl), "service account name not authorized"},
		"the API server audience": {saToken(t, saKey, clusterIssuer, clusterIssuer, ns, sa, podName, ttl), "permission denied"},
	} {
		project(c.tok)
		sh := podShell()
		err := sh.runLines(inPod)
		if err == nil || !strings.Contains(err.Error(), c.want) || sh.ran != 1 {
			t.Errorf("%s: %v after %d commands; want the login refused with %q", name, err, sh.ran, c.want)
		}
	}
	if reviews.Load() != 1 {
		t.Errorf("%d TokenReviews, want 1 (the refused logins never reach the API)", reviews.Load())
	}

	// The audit entry of the pod's read names the pod.
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var e struct {
			Auth    struct{ Metadata map[string]string }
			Request struct{ Path string }
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Request.Path == "secret/data/ml/llm-gateway/openai" {
			m := e.Auth.Metadata
			found = found || (m["pod_name"] == podName && m["pod_uid"] == "pod-uid-"+podName && m["service_account_namespace"] == ns &&
				m["service_account_name"] == sa && m["service_account_uid"] == "uid-"+ns+"-"+sa && m["role"] == "llm-gateway")
		}
	}
	if !found {
		t.Error("no audit entry of the pod's read names its pod, service account and namespace")
	}

	// jwks mode, for a cluster Vigil cannot reach: its own mount, and the
	// pod's login names it with -path.
	admin.mustRun(block(t, section, "sh", 2, "the jwks-mode server side"))
	edgeLogin := block(t, section, "sh", 3, "the jwks-mode pod's login")
	before := reviews.Load()
	project(saToken(t, edgeKey, edge.URL, aud, ns, sa, podName, ttl))
	sh = podShell()
	sh.mustRun(edgeLogin)
	stored, err = os.ReadFile(filepath.Join(sh.env["HOME"], ".vigil-token"))
	if err != nil {
		t.Fatal(err)
	}
	podClient.SetToken(string(stored))
	if sec, err := podClient.KVv2("secret").Get(ctx, "ml/llm-gateway/openai"); err != nil || sec.Data["api_key"] != "sk-gateway" {
		t.Errorf("read after the jwks-mode login: %v", err)
	}
	// A token of the first cluster (another issuer and key) is no good here.
	project(saToken(t, saKey, clusterIssuer, aud, ns, sa, podName, ttl))
	if err := podShell().runLines(shellCommands(edgeLogin)); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("another cluster's token on the jwks mount: %v, want permission denied", err)
	}
	if reviews.Load() != before {
		t.Errorf("the jwks mode made %d TokenReviews", reviews.Load()-before)
	}
}
