package kubernetes

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/jwks/jwkstest"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

// t0 is the fake clock's start (jwks mode checks times with it).
var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// clusterIssuer is the iss of the test cluster's projected tokens.
const clusterIssuer = "https://kubernetes.default.svc.cluster.local"

// apiServer is a Kubernetes API server on loopback, over TLS, serving
// only TokenReviews. Like a real one, it checks the bearer token and the
// request, verifies the reviewed token's signature with the cluster's
// service-account key and its expiry and audiences, and answers with the
// user the token names. overrides change the answer for one token.
type apiServer struct {
	t        testing.TB
	srv      *httptest.Server
	key      *rsa.PrivateKey
	reviewer string
	// localToken is a second accepted bearer: the token of the pod Vigil
	// runs in.
	localToken atomic.Pointer[string]
	// delegator lets a reviewed token be its own bearer (the service
	// account has system:auth-delegator).
	delegator bool
	// forceStatus, when set, is the answer to every review.
	forceStatus atomic.Int32

	mu        sync.Mutex
	overrides map[string]func(*reviewStatus)
	bearers   []string   // who authenticated each call: reviewer, local or self
	audiences [][]string // the audiences of each review
}

// reviewStatus is a TokenReview's status, as the API server writes it
// (declared here, not taken from the package, so that a wrong field name
// in the package fails the tests).
type reviewStatus struct {
	Authenticated bool     `json:"authenticated"`
	Audiences     []string `json:"audiences,omitempty"`
	User          struct {
		Username string              `json:"username,omitempty"`
		UID      string              `json:"uid,omitempty"`
		Groups   []string            `json:"groups,omitempty"`
		Extra    map[string][]string `json:"extra,omitempty"`
	} `json:"user"`
	Error string `json:"error,omitempty"`
}

func newAPIServer(t testing.TB) *apiServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	a := &apiServer{t: t, key: key, reviewer: "reviewer-" + rand.Text(), overrides: map[string]func(*reviewStatus){}}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

// caPEM is the API server's certificate as PEM.
func (a *apiServer) caPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw}))
}

// publicPEM is the cluster's service-account public key as PEM.
func (a *apiServer) publicPEM() string {
	der, err := x509.MarshalPKIXPublicKey(&a.key.PublicKey)
	if err != nil {
		a.t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func (a *apiServer) override(token string, f func(*reviewStatus)) {
	a.mu.Lock()
	a.overrides[token] = f
	a.mu.Unlock()
}

func (a *apiServer) calls() (bearers []string, audiences [][]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.bearers), slices.Clone(a.audiences)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (a *apiServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/apis/authentication.k8s.io/v1/tokenreviews" {
		writeJSON(w, 404, map[string]any{"kind": "Status", "code": 404})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, 405, map[string]any{"kind": "Status", "code": 405})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		writeJSON(w, 415, map[string]any{"kind": "Status", "code": 415})
		return
	}
	var body struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Spec       struct {
			Token     string   `json:"token"`
			Audiences []string `json:"audiences"`
		} `json:"spec"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil || body.APIVersion != "authentication.k8s.io/v1" || body.Kind != "TokenReview" || body.Spec.Token == "" {
		writeJSON(w, 400, map[string]any{"kind": "Status", "code": 400, "message": "bad TokenReview"})
		return
	}
	bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	who := ""
	switch {
	case !ok:
	case bearer == a.reviewer:
		who = "reviewer"
	case a.localToken.Load() != nil && bearer == *a.localToken.Load():
		who = "local"
	case a.delegator && bearer == body.Spec.Token && a.authenticate(bearer, nil).Authenticated:
		who = "self"
	}
	if who == "" {
		writeJSON(w, 401, map[string]any{"kind": "Status", "code": 401, "message": "Unauthorized"})
		return
	}
	a.mu.Lock()
	a.bearers = append(a.bearers, who)
	a.audiences = append(a.audiences, body.Spec.Audiences)
	f := a.overrides[body.Spec.Token]
	a.mu.Unlock()
	if s := a.forceStatus.Load(); s != 0 {
		writeJSON(w, int(s), map[string]any{"kind": "Status", "code": s})
		return
	}
	st := a.authenticate(body.Spec.Token, body.Spec.Audiences)
	if f != nil {
		f(&st)
	}
	writeJSON(w, 201, map[string]any{"apiVersion": body.APIVersion, "kind": body.Kind, "spec": body.Spec, "status": st})
}

// authenticate reviews a token as the API server does: RS256 signature
// with the cluster key, expiry (real time: the API server's clock), and
// audiences (the API server's own by default; legacy tokens have it
// implicitly).
func (a *apiServer) authenticate(token string, audiences []string) reviewStatus {
	fail := reviewStatus{Error: "[invalid bearer token, token lookup failed]"}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return fail
	}
	payload, err := jws.Verify(&a.key.PublicKey)
	if err != nil {
		return fail
	}
	var c map[string]any
	if json.Unmarshal(payload, &c) != nil {
		return fail
	}
	if exp, ok := c["exp"].(float64); ok && time.Now().After(time.Unix(int64(exp), 0)) {
		return fail
	}
	tokAud := []string{clusterIssuer}
	switch v := c["aud"].(type) {
	case string:
		tokAud = []string{v}
	case []any:
		tokAud = nil
		for _, x := range v {
			s, _ := x.(string)
			tokAud = append(tokAud, s)
		}
	}
	if len(audiences) == 0 {
		audiences = []string{clusterIssuer}
	}
	var inter []string
	for _, x := range audiences {
		if slices.Contains(tokAud, x) {
			inter = append(inter, x)
		}
	}
	if len(inter) == 0 {
		return reviewStatus{Error: "[invalid bearer token, token audiences don't match]"}
	}
	st := reviewStatus{Authenticated: true, Audiences: inter}
	if k, ok := c["kubernetes.io"].(map[string]any); ok {
		sa, _ := k["serviceaccount"].(map[string]any)
		st.User.Username = "system:serviceaccount:" + k["namespace"].(string) + ":" + sa["name"].(string)
		st.User.UID = sa["uid"].(string)
		if pod, ok := k["pod"].(map[string]any); ok {
			st.User.Extra = map[string][]string{
				"authentication.kubernetes.io/pod-name": {pod["name"].(string)},
				"authentication.kubernetes.io/pod-uid":  {pod["uid"].(string)},
			}
		}
	} else {
		st.User.Username = "system:serviceaccount:" + c["kubernetes.io/serviceaccount/namespace"].(string) + ":" + c["kubernetes.io/serviceaccount/service-account.name"].(string)
		st.User.UID = c["kubernetes.io/serviceaccount/service-account.uid"].(string)
	}
	st.User.Groups = []string{"system:serviceaccounts", "system:authenticated"}
	return st
}

// uidOf is the test cluster's uid of a service account or pod.
func uidOf(ns, name string) string { return "5f3c" + ns + "-" + name + "-0001" }

// projected is the claims of a projected token of ns/name, bound to a pod
// when pod is not empty.
func projected(now time.Time, ns, name, pod string, aud ...string) map[string]any {
	k := map[string]any{
		"namespace":      ns,
		"serviceaccount": map[string]any{"name": name, "uid": uidOf(ns, name)},
	}
	if pod != "" {
		k["pod"] = map[string]any{"name": pod, "uid": uidOf(ns, pod)}
		k["node"] = map[string]any{"name": "node-1", "uid": "node-uid-1"}
	}
	if len(aud) == 0 {
		aud = []string{clusterIssuer}
	}
	return map[string]any{
		"iss": clusterIssuer, "sub": "system:serviceaccount:" + ns + ":" + name, "aud": aud,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"kubernetes.io": k,
	}
}

// legacy is the claims of a legacy secret-based token of ns/name.
func legacy(ns, name string) map[string]any {
	return map[string]any{
		"iss":                                    "kubernetes/serviceaccount",
		"sub":                                    "system:serviceaccount:" + ns + ":" + name,
		"kubernetes.io/serviceaccount/namespace": ns,
		"kubernetes.io/serviceaccount/secret.name":          name + "-token-x7k2p",
		"kubernetes.io/serviceaccount/service-account.name": name,
		"kubernetes.io/serviceaccount/service-account.uid":  uidOf(ns, name),
	}
}

// sign makes a compact JWS of claims.
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return jwkstest.Sign(t, alg, key, kid, payload)
}

// token signs claims with the cluster's key, as the API server would.
func (a *apiServer) token(claims map[string]any) string {
	return sign(a.t, jose.RS256, a.key, "cluster-key", claims)
}

// unsignedToken is claims with {"alg":"none"} and an empty signature.
func unsignedToken(claims map[string]any) string {
	enc := func(v any) string {
		raw, _ := json.Marshal(v)
		return b64(raw)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(claims) + "."
}

// hmacToken signs claims with HS256 keyed with the bytes of a public key
// PEM: the algorithm-confusion attack.
func hmacToken(t testing.TB, keyBytes []byte, kid string, claims map[string]any) string {
	t.Helper()
	return sign(t, jose.HS256, keyBytes, kid, claims)
}

// issuer is a cluster's service-account issuer as seen from outside: OIDC
// discovery and a JWKS, over TLS, with a key made in the test. It counts
// JWKS fetches.
type issuer struct {
	srv     *httptest.Server
	url     string
	fetches atomic.Int64

	mu  sync.Mutex
	key crypto.Signer
	kid string
}

// rotate replaces the issuer's signing key.
func (is *issuer) rotate(key crypto.Signer, kid string) {
	is.mu.Lock()
	is.key, is.kid = key, kid
	is.mu.Unlock()
}

func (is *issuer) current() (crypto.Signer, string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.key, is.kid
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key, kid: "sa-key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"issuer": is.url, "jwks_uri": is.url + "/openid/v1/jwks",
			"id_token_signing_alg_values_supported": []string{"ES256"}})
	})
	mux.HandleFunc("/openid/v1/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		key, kid := is.current()
		writeJSON(w, 200, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	})
	is.srv = httptest.NewTLSServer(mux)
	is.url = is.srv.URL
	t.Cleanup(is.srv.Close)
	return is
}

func (is *issuer) caPEM() string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: is.srv.Certificate().Raw}))
}

func (is *issuer) publicPEM(t testing.TB) []byte {
	key, _ := is.current()
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// claims are projected claims of this issuer at now.
func (is *issuer) claims(now time.Time, ns, name, pod string, aud ...string) map[string]any {
	c := projected(now, ns, name, pod, aud...)
	c["iss"] = is.url
	return c
}

func (is *issuer) token(t testing.TB, c map[string]any) string {
	key, kid := is.current()
	return sign(t, jose.ES256, key, kid, c)
}

// harness drives a Kubernetes backend the way the request pipeline does.
type harness struct {
	t   testing.TB
	b   *backend
	s   *logicaltest.Storage
	clk *clock.Fake
	dir string // the pod's service-account directory (empty: not in a pod)
	// logs is the backend's log.
	logs *testlog.Buffer
}

// lastLogLine is the last line logged to l.
func lastLogLine(l *testlog.Buffer) string {
	lines := strings.Split(strings.TrimSpace(l.String()), "\n")
	return lines[len(lines)-1]
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	clk := clock.NewFake(t0)
	dir := t.TempDir()
	logs := &testlog.Buffer{}
	b, err := newBackend(&logical.BackendConfig{Now: clk.Now, MountPoint: "auth/kubernetes/", Logger: slog.New(slog.NewTextHandler(logs, nil))},
		options{localSADir: dir, transport: http.DefaultTransport.(*http.Transport)})
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, b: b, s: logicaltest.New(), clk: clk, dir: dir, logs: logs}
}

func (h *harness) do(op logical.Operation, path string, data map[string]any) (*logical.Response, error) {
	h.t.Helper()
	req := &logical.Request{ID: "r", Operation: op, Path: path, Data: data, Storage: h.s, MountPoint: "auth/kubernetes/",
		MountType: "kubernetes", Connection: &logical.Connection{RemoteAddr: "10.0.0.7"}}
	if op == logical.UpdateOperation {
		if checked, exists, err := h.b.ExistenceCheck(h.t.Context(), req); err == nil && checked && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	resp, err := h.b.HandleRequest(h.t.Context(), req)
	if err == nil && resp == nil {
		h.t.Fatalf("%s %s: nil response without error", op, path)
	}
	return resp, err
}

func (h *harness) ok(op logical.Operation, path string, data map[string]any) *logical.Response {
	h.t.Helper()
	resp, err := h.do(op, path, data)
	if err != nil {
		h.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

func (h *harness) login(role, jwt string) (*logical.Auth, error) {
	h.t.Helper()
	resp, err := h.do(logical.UpdateOperation, "login", map[string]any{"role": role, "jwt": jwt})
	if err != nil {
		return nil, err
	}
	if resp.Auth == nil {
		h.t.Fatalf("login: no auth in %+v", resp)
	}
	return resp.Auth, nil
}

func (h *harness) mustLogin(role, jwt string) *logical.Auth {
	h.t.Helper()
	a, err := h.login(role, jwt)
	if err != nil {
		h.t.Fatalf("login with role %q: %v", role, err)
	}
	return a
}

// refused checks a login fails with status and a message containing msg,
// that neither the error nor the log quotes the token, and, when reason is
// given, that the logged reason contains it.
func (h *harness) refused(role, jwt string, wantStatus int, msg string, reason ...string) {
	h.t.Helper()
	_, err := h.login(role, jwt)
	if wantStatus == 403 {
		line := lastLogLine(h.logs)
		for _, r := range reason {
			if !strings.Contains(line, r) {
				h.t.Fatalf("logged reason %q, want it to contain %q", line, r)
			}
		}
		if len(jwt) > 20 && strings.Contains(h.logs.String(), jwt[len(jwt)-20:]) {
			h.t.Fatal("the log quotes the JWT")
		}
	}
	got, gotMsg := logicaltest.Status(err)
	if got != wantStatus || !strings.Contains(gotMsg, msg) {
		h.t.Fatalf("login: got %d %q (%v), want %d containing %q", got, gotMsg, err, wantStatus, msg)
	}
	if err != nil && len(jwt) > 20 && (strings.Contains(err.Error(), jwt) || strings.Contains(err.Error(), jwt[len(jwt)-20:])) {
		h.t.Fatalf("the error quotes the JWT: %v", err)
	}
}

// configure writes the mount's configuration for api (tokenreview mode,
// with the reviewer JWT) with extra keys on top.
func (h *harness) configure(a *apiServer, extra map[string]any) {
	h.t.Helper()
	data := map[string]any{
		"kubernetes_host":    a.srv.URL,
		"kubernetes_ca_cert": a.caPEM(),
		"token_reviewer_jwt": a.reviewer,
	}
	for k, v := range extra {
		if v == nil {
			delete(data, k)
		} else {
			data[k] = v
		}
	}
	h.ok(logical.UpdateOperation, "config", data)
}

func (h *harness) role(name string, data map[string]any) {
	h.t.Helper()
	h.ok(logical.UpdateOperation, "role/"+name, data)
}

func b64(raw []byte) string { return base64.RawURLEncoding.EncodeToString(raw) }
