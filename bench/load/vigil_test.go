package load

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
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
)

const (
	unsealKey = "c0ffee00UNSEAL-KEY-do-not-print"
	roleID    = "role-id-0000"
	secretID  = "SECRET-ID-do-not-print"
)

// fakeVigil answers the calls the benchmark makes the way Vigil does.
type fakeVigil struct {
	mu          sync.Mutex
	initialized bool
	sealed      bool
	mounted     bool
	configPolls int
	kv          map[string][]byte
	writeFails  bool
	// The auth calls.
	approle     bool // enabled at approle/
	role        bool // role bench exists, with token_ttl 1h
	secretIDs   int  // secret IDs handed out
	tokens      int  // tokens created or logged in, of any type
	batchAsSvc  bool // answer batch token requests with a service token
	loginStatus int  // when not 0, the status of every login
	loginTokens int  // logins that carried a token, which they should not
	tokenTTL    int  // lease_duration of the tokens made; 3600 when 0
	// The JWT auth methods, by mount.
	jwt map[string]*fakeJWT
	// db, when not nil, is the database secrets engine at database/.
	db *fakeDB
}

// fakeJWT is a JWT auth method of the fake, which checks a login's JWT
// against its key and role the way Vigil does (leeways aside).
type fakeJWT struct {
	key    any    // the configured public key; nil until configured
	issuer string // bound_issuer
	role   *fakeJWTRole
	logins int             // successful ones
	jtis   map[string]bool // the jti of every JWT logged in with
}

// fakeJWTRole is the part of a JWT role the fake checks logins against.
type fakeJWTRole struct {
	RoleType       string            `json:"role_type"`
	UserClaim      string            `json:"user_claim"`
	BoundAudiences []string          `json:"bound_audiences"`
	BoundClaims    map[string]string `json:"bound_claims"`
	ClaimMappings  map[string]string `json:"claim_mappings"`
	TokenPolicies  []string          `json:"token_policies"`
	TokenTTL       string            `json:"token_ttl"`
}

func newFakeVigil() *fakeVigil {
	return &fakeVigil{sealed: true, kv: map[string][]byte{}, jwt: map[string]*fakeJWT{}}
}

// jwtMount returns the mount of p, "/v1/auth/<mount>/<rest>", if a JWT
// auth method is enabled there.
func (f *fakeVigil) jwtMount(p, rest string) *fakeJWT {
	m, ok := strings.CutPrefix(p, "/v1/auth/")
	if !ok {
		return nil
	}
	if m, ok = strings.CutSuffix(m, "/"+rest); !ok {
		return nil
	}
	return f.jwt[m]
}

// jwtLogin checks a login to j: a role that exists, and a JWT signed by
// its key whose claims meet the role's bounds. The caller holds f.mu.
func (f *fakeVigil) jwtLogin(w http.ResponseWriter, j *fakeJWT, body []byte, errs func(int, string)) {
	var in struct{ Role, JWT string }
	if json.Unmarshal(body, &in) != nil || in.JWT == "" {
		errs(http.StatusBadRequest, "missing token")
		return
	}
	if in.Role != "bench" || j.role == nil || j.key == nil {
		errs(http.StatusBadRequest, "role could not be found")
		return
	}
	jws, err := jose.ParseSigned(in.JWT, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
	if err != nil {
		errs(http.StatusBadRequest, "error validating token: malformed token")
		return
	}
	payload, err := jws.Verify(j.key)
	if err != nil {
		errs(http.StatusBadRequest, "error validating token: no configured key verifies the signature")
		return
	}
	var c map[string]any
	if json.Unmarshal(payload, &c) != nil {
		errs(http.StatusBadRequest, "error validating token: bad payload")
		return
	}
	exp, _ := c["exp"].(float64)
	nbf, _ := c["nbf"].(float64)
	now := float64(time.Now().Unix())
	switch {
	case c["iss"] != j.issuer:
		errs(http.StatusBadRequest, "error validating claims: iss claim does not match the configured bound_issuer")
		return
	case exp < now || nbf > now:
		errs(http.StatusBadRequest, "error validating claims: token is expired or not yet valid")
		return
	case !slices.Contains(j.role.BoundAudiences, fmt.Sprint(c["aud"])):
		errs(http.StatusBadRequest, "error validating claims: aud claim does not match any bound audience")
		return
	case c[j.role.UserClaim] == nil:
		errs(http.StatusBadRequest, "claim not found in token")
		return
	}
	for name, want := range j.role.BoundClaims {
		if c[name] != want {
			errs(http.StatusBadRequest, "error validating claims: claim "+name+" does not match any associated bound claim values")
			return
		}
	}
	j.logins++
	j.jtis[fmt.Sprint(c["jti"])] = true
	f.reply(w, "service", j.role.TokenPolicies[0])
}

func (f *fakeVigil) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	reply := func(status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	errs := func(status int, msg string) { reply(status, map[string][]string{"errors": {msg}}) }
	p := r.URL.Path
	switch {
	case p == "/v1/sys/health":
		if f.sealed {
			reply(http.StatusServiceUnavailable, map[string]bool{"sealed": true})
			return
		}
		reply(http.StatusOK, map[string]bool{"sealed": false})
		return
	case p == "/v1/sys/init" && r.Method == http.MethodPut:
		f.initialized = true
		reply(http.StatusOK, map[string]any{"keys": []string{unsealKey}, "keys_base64": []string{"x"}, "root_token": secretToken})
		return
	case p == "/v1/auth/approle/login" && r.Method == http.MethodPost && f.approle:
		// Unauthenticated, like Vigil's: the token header is ignored.
		if f.sealed {
			errs(http.StatusServiceUnavailable, "Vault is sealed")
			return
		}
		if r.Header.Get("X-Vault-Token") != "" {
			f.loginTokens++
		}
		var in struct {
			RoleID   string `json:"role_id"`
			SecretID string `json:"secret_id"`
		}
		json.Unmarshal(body, &in)
		switch {
		case f.loginStatus != 0:
			errs(f.loginStatus, "request rate limited")
		case !f.role || in.RoleID != roleID || in.SecretID != secretID || f.secretIDs == 0:
			errs(http.StatusBadRequest, "invalid role or secret ID")
		default:
			f.reply(w, "service", "default")
		}
		return
	case strings.HasSuffix(p, "/login") && r.Method == http.MethodPost && f.jwtMount(p, "login") != nil:
		if f.sealed {
			errs(http.StatusServiceUnavailable, "Vault is sealed")
			return
		}
		if r.Header.Get("X-Vault-Token") != "" {
			f.loginTokens++
		}
		if f.loginStatus != 0 {
			errs(f.loginStatus, "request rate limited")
			return
		}
		f.jwtLogin(w, f.jwtMount(p, "login"), body, errs)
		return
	case p == "/v1/sys/unseal" && r.Method == http.MethodPut:
		var in struct{ Key string }
		json.Unmarshal(body, &in)
		if !f.initialized || in.Key != unsealKey {
			errs(http.StatusBadRequest, "bad key")
			return
		}
		f.sealed = false
		reply(http.StatusOK, map[string]any{"sealed": false})
		return
	}
	if f.sealed {
		errs(http.StatusServiceUnavailable, "Vault is sealed")
		return
	}
	if r.Header.Get("X-Vault-Token") != secretToken {
		errs(http.StatusForbidden, "permission denied")
		return
	}
	if f.db != nil && f.db.serve(w, r, p, body, reply, errs) {
		return
	}
	switch {
	case p == "/v1/sys/mounts/kvbench" && r.Method == http.MethodPost:
		if !bytes.Contains(body, []byte(`"version":"2"`)) {
			errs(http.StatusBadRequest, "want version 2")
			return
		}
		f.mounted = true
		w.WriteHeader(http.StatusNoContent)
	case p == "/v1/kvbench/config" && f.mounted:
		f.configPolls++
		if f.configPolls < 3 { // the mount takes an instant to set up
			errs(http.StatusBadRequest, "upgrading")
			return
		}
		reply(http.StatusOK, map[string]any{"data": map[string]any{"max_versions": 0}})
	case strings.HasPrefix(p, "/v1/kvbench/data/") && f.mounted:
		key := strings.TrimPrefix(p, "/v1/kvbench/data/")
		switch r.Method {
		case http.MethodPost:
			if f.writeFails {
				errs(http.StatusInternalServerError, "disk full")
				return
			}
			var in struct{ Data map[string]string }
			if json.Unmarshal(body, &in) != nil || in.Data["value"] == "" {
				errs(http.StatusBadRequest, "no data")
				return
			}
			f.kv[key] = body
			reply(http.StatusOK, map[string]any{"data": map[string]any{"version": 1}})
		case http.MethodGet:
			if f.kv[key] == nil {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(KVReadBody(16))
		}
	case p == "/v1/auth/token/create" && r.Method == http.MethodPost:
		var in struct {
			Type     string
			Policies []string
			TTL      string
		}
		if json.Unmarshal(body, &in) != nil || in.TTL != "1h" || len(in.Policies) != 1 {
			errs(http.StatusBadRequest, "bad request")
			return
		}
		if in.Type == "batch" && !f.batchAsSvc {
			f.reply(w, "batch", in.Policies[0])
			return
		}
		f.reply(w, "service", in.Policies[0])
	case p == "/v1/sys/auth/approle" && r.Method == http.MethodPost:
		if !bytes.Equal(body, []byte(`{"type":"approle"}`)) {
			errs(http.StatusBadRequest, "want type approle")
			return
		}
		f.approle = true
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(p, "/v1/sys/auth/") && r.Method == http.MethodPost && bytes.Equal(body, []byte(`{"type":"jwt"}`)):
		f.jwt[strings.TrimPrefix(p, "/v1/sys/auth/")] = &fakeJWT{jtis: map[string]bool{}}
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && f.jwtMount(p, "config") != nil:
		var in struct {
			PubKeys     []string `json:"jwt_validation_pubkeys"`
			BoundIssuer string   `json:"bound_issuer"`
		}
		if json.Unmarshal(body, &in) != nil || len(in.PubKeys) != 1 || in.BoundIssuer == "" {
			errs(http.StatusBadRequest, "want one public key and a bound issuer")
			return
		}
		block, _ := pem.Decode([]byte(in.PubKeys[0]))
		if block == nil || block.Type != "PUBLIC KEY" {
			errs(http.StatusBadRequest, "jwt_validation_pubkeys[0] is not PEM")
			return
		}
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			errs(http.StatusBadRequest, "jwt_validation_pubkeys[0]: "+err.Error())
			return
		}
		j := f.jwtMount(p, "config")
		j.key, j.issuer = key, in.BoundIssuer
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && f.jwtMount(p, "role/bench") != nil:
		var role fakeJWTRole
		if json.Unmarshal(body, &role) != nil || role.RoleType != "jwt" || role.UserClaim != "sub" ||
			len(role.BoundAudiences) == 0 || len(role.BoundClaims) == 0 || len(role.ClaimMappings) == 0 ||
			len(role.TokenPolicies) != 1 || role.TokenPolicies[0] != "default" || role.TokenTTL != "1h" {
			errs(http.StatusBadRequest, "bad role")
			return
		}
		f.jwtMount(p, "role/bench").role = &role
		w.WriteHeader(http.StatusNoContent)
	case p == "/v1/auth/approle/role/bench" && r.Method == http.MethodPost && f.approle:
		var in struct {
			TokenPolicies string `json:"token_policies"`
			TokenTTL      string `json:"token_ttl"`
		}
		if json.Unmarshal(body, &in) != nil || in.TokenPolicies != "default" || in.TokenTTL != "1h" {
			errs(http.StatusBadRequest, "bad role")
			return
		}
		f.role = true
		w.WriteHeader(http.StatusNoContent)
	case p == "/v1/auth/approle/role/bench/role-id" && r.Method == http.MethodGet && f.role:
		reply(http.StatusOK, map[string]any{"data": map[string]string{"role_id": roleID}})
	case p == "/v1/auth/approle/role/bench/secret-id" && r.Method == http.MethodPost && f.role:
		f.secretIDs++
		reply(http.StatusOK, map[string]any{"data": map[string]any{"secret_id": secretID, "secret_id_accessor": "acc", "secret_id_num_uses": 0}})
	default:
		errs(http.StatusNotFound, "no handler for route")
	}
}

// count returns what get returns, holding f.mu.
func (f *fakeVigil) count(get func() int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return get()
}

// reply answers a token creation or a login with a new token of type typ
// and an hour's TTL. The caller holds f.mu.
func (f *fakeVigil) reply(w http.ResponseWriter, typ, policy string) {
	f.tokens++
	ttl := f.tokenTTL
	if ttl == 0 {
		ttl = 3600
	}
	auth := map[string]any{
		"client_token": fmt.Sprintf("hvs.token-%d", f.tokens), "accessor": fmt.Sprintf("acc-%d", f.tokens),
		"token_type": typ, "lease_duration": ttl, "policies": []string{policy},
	}
	if typ == "batch" {
		auth["accessor"] = ""
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"auth": auth})
}

func TestVigilSetup(t *testing.T) {
	fake := newFakeVigil()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	v := &Vigil{Base: srv.URL, Client: NewClient(8)}
	ctx := t.Context()
	if err := v.WaitHealthy(ctx, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := v.InitUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.MountKV2(ctx, "kvbench", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := v.Preload(ctx, "kvbench", 50, 32, 8); err != nil {
		t.Fatal(err)
	}
	fake.mu.Lock()
	n, ok := len(fake.kv), fake.kv["k0"] != nil && fake.kv["k49"] != nil
	fake.mu.Unlock()
	if n != 50 || !ok {
		t.Fatalf("preload wrote %d keys", n)
	}
	if _, err := v.Read(ctx, "/v1/kvbench/data/k7"); err != nil {
		t.Fatal(err)
	}
	if h := v.Header(); h.Get("X-Vault-Token") != secretToken || h.Get("Content-Type") != "application/json" {
		t.Errorf("Header() = %v", h)
	}
	if s := v.String(); strings.Contains(s, secretToken) {
		t.Errorf("String() shows the token: %q", s)
	}

	// Errors name the call and the server's answer, never the token.
	fake.mu.Lock()
	fake.writeFails = true
	fake.mu.Unlock()
	err := v.Preload(ctx, "kvbench", 10, 4, 2)
	if err == nil || !strings.Contains(err.Error(), "POST /v1/kvbench/data/k") || !strings.Contains(err.Error(), "status 500") || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("failed write: err = %v", err)
	}
	if strings.Contains(err.Error(), secretToken) || strings.Contains(err.Error(), unsealKey) {
		t.Errorf("error leaks a secret: %v", err)
	}
}

func TestVigilAuthSetup(t *testing.T) {
	fake := newFakeVigil()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	v := &Vigil{Base: srv.URL, Client: NewClient(4)}
	ctx := t.Context()
	if err := v.InitUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	// No role before AppRole is enabled.
	if _, err := v.SetupAppRole(ctx, "approle", "bench"); err == nil || !strings.Contains(err.Error(), "POST /v1/auth/approle/role/bench: status 404") {
		t.Errorf("role without AppRole: err = %v", err)
	}
	if err := v.EnableAuth(ctx, "approle", "approle"); err != nil {
		t.Fatal(err)
	}
	login, err := v.SetupAppRole(ctx, "approle", "bench")
	if err != nil {
		t.Fatal(err)
	}
	var in map[string]string
	if err := json.Unmarshal(login, &in); err != nil || len(in) != 2 || in["role_id"] != roleID || in["secret_id"] != secretID {
		t.Fatalf("login body %s (%v)", login, err)
	}
	if n := fake.count(func() int { return fake.secretIDs }); n != 1 {
		t.Errorf("%d secret IDs created, want 1", n)
	}

	for _, c := range []struct {
		name string
		call func() (TokenInfo, error)
		want TokenInfo
	}{
		{"login", func() (TokenInfo, error) { return v.Login(ctx, "approle", login) },
			TokenInfo{Type: "service", LeaseDuration: 3600, Policies: []string{"default"}, Accessor: true}},
		{"service", func() (TokenInfo, error) { return v.CreateToken(ctx, []byte(ServiceTokenBody)) },
			TokenInfo{Type: "service", LeaseDuration: 3600, Policies: []string{"default"}, Accessor: true}},
		{"batch", func() (TokenInfo, error) { return v.CreateToken(ctx, []byte(BatchTokenBody)) },
			TokenInfo{Type: "batch", LeaseDuration: 3600, Policies: []string{"default"}}},
	} {
		got, err := c.call()
		if err != nil || got.Type != c.want.Type || got.LeaseDuration != c.want.LeaseDuration || got.Accessor != c.want.Accessor ||
			strings.Join(got.Policies, ",") != strings.Join(c.want.Policies, ",") {
			t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
		}
	}
	if n := fake.count(func() int { return fake.loginTokens }); n != 0 {
		t.Errorf("%d logins sent a token", n)
	}

	// A failed login names the path and the server's answer, never the
	// credentials.
	_, err = v.Login(ctx, "approle", []byte(`{"role_id":"`+roleID+`","secret_id":"wrong-`+secretID+`"}`))
	if err == nil || !strings.Contains(err.Error(), "POST /v1/auth/approle/login: status 400: ") || !strings.Contains(err.Error(), "invalid role or secret ID") {
		t.Errorf("failed login: err = %v", err)
	}
	if err != nil && (strings.Contains(err.Error(), secretID) || strings.Contains(err.Error(), secretToken)) {
		t.Errorf("error leaks a secret: %v", err)
	}
	// An answer without a token is an error that shows no part of it.
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"auth":{"accessor":"` + secretID + `"`)) // truncated
	}))
	defer srv2.Close()
	v2 := &Vigil{Base: srv2.URL}
	if _, err := v2.Login(ctx, "approle", login); err == nil || strings.Contains(err.Error(), secretID) || !strings.Contains(err.Error(), "no auth.client_token") {
		t.Errorf("truncated login answer: err = %v", err)
	}
	if _, err := v2.SetupAppRole(ctx, "approle", "bench"); err == nil || strings.Contains(err.Error(), secretID) {
		t.Errorf("SetupAppRole against a broken server: err = %v", err)
	}
}

func TestVigilJWTSetup(t *testing.T) {
	fake := newFakeVigil()
	srv := httptest.NewServer(fake)
	defer srv.Close()
	v := &Vigil{Base: srv.URL, Client: NewClient(4)}
	ctx := t.Context()
	if err := v.InitUnseal(ctx); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.RS256} {
		t.Run(string(alg), func(t *testing.T) {
			is, err := NewJWTIssuer(alg)
			if err != nil {
				t.Fatal(err)
			}
			mount := "jwt-" + strings.ToLower(string(alg))
			// Nothing to configure before the method is enabled.
			if err := v.SetupJWT(ctx, mount, "bench", is); err == nil || !strings.Contains(err.Error(), "POST /v1/auth/"+mount+"/config: status 404") {
				t.Errorf("SetupJWT without the method: err = %v", err)
			}
			if err := v.EnableAuth(ctx, mount, "jwt"); err != nil {
				t.Fatal(err)
			}
			if err := v.SetupJWT(ctx, mount, "bench", is); err != nil {
				t.Fatal(err)
			}
			bodies, err := is.LoginBodies("bench", 3, time.Now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for i, body := range bodies {
				got, err := v.Login(ctx, mount, body)
				if err != nil || got.Type != "service" || got.LeaseDuration != 3600 || !got.Accessor || strings.Join(got.Policies, ",") != "default" {
					t.Errorf("login %d: %+v, %v", i, got, err)
				}
			}
			fake.mu.Lock()
			logins, jtis := fake.jwt[mount].logins, len(fake.jwt[mount].jtis)
			fake.mu.Unlock()
			if logins != 3 || jtis != 3 {
				t.Errorf("%d logins with %d JWTs, want 3 with 3", logins, jtis)
			}

			// A JWT of another key, or an expired one, is refused; the
			// error names the path and the server's answer, never the
			// JWT.
			other, err := NewJWTIssuer(alg)
			if err != nil {
				t.Fatal(err)
			}
			forged, err := other.LoginBodies("bench", 1, time.Now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			expired, err := is.LoginBodies("bench", 1, time.Now().Add(-2*time.Hour), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			for name, body := range map[string][]byte{"forged": forged[0], "expired": expired[0]} {
				_, err := v.Login(ctx, mount, body)
				if err == nil || !strings.Contains(err.Error(), "POST /v1/auth/"+mount+"/login: status 400: ") {
					t.Errorf("%s JWT: err = %v", name, err)
				}
				var in struct{ JWT string }
				json.Unmarshal(body, &in)
				if err != nil && (in.JWT == "" || strings.Contains(err.Error(), in.JWT) || strings.Contains(err.Error(), strings.Split(in.JWT, ".")[2])) {
					t.Errorf("%s JWT: error leaks the JWT: %v", name, err)
				}
			}
		})
	}
}

func TestVigilErrorsKeepSecrets(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte(`{"keys":["` + unsealKey + `"],"root_token":"` + secretToken + `"`)) // truncated JSON
	}))
	defer srv.Close()
	v := &Vigil{Base: srv.URL}
	err := v.InitUnseal(t.Context())
	if err == nil {
		t.Fatal("no error for a truncated init response")
	}
	if strings.Contains(err.Error(), secretToken) || strings.Contains(err.Error(), unsealKey) {
		t.Errorf("error leaks a secret: %v", err)
	}

	srv.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := v.WaitHealthy(ctx, time.Minute); err == nil {
		t.Error("WaitHealthy succeeded with nothing listening")
	}
}

func TestForEach(t *testing.T) {
	var calls atomic.Int64
	seen := make([]atomic.Bool, 100)
	if err := ForEach(t.Context(), 100, 7, func(_ context.Context, i int) error {
		calls.Add(1)
		seen[i].Store(true)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 100 {
		t.Errorf("%d calls, want 100", calls.Load())
	}
	for i := range seen {
		if !seen[i].Load() {
			t.Errorf("%d not called", i)
		}
	}

	boom := errors.New("boom")
	calls.Store(0)
	err := ForEach(t.Context(), 1_000_000, 4, func(_ context.Context, i int) error {
		calls.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if calls.Load() == 1_000_000 {
		t.Error("ForEach went on after the error")
	}
}
