package jwks

import (
	"crypto"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/jwks/jwkstest"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// testPayload is the payload of every test token: this package never
// reads claims.
const testPayload = `{"sub":"test"}`

// testKey is one signing key of a test issuer.
type testKey struct {
	signer crypto.Signer
	alg    jose.SignatureAlgorithm
	use    string // the JWK's "use" ("sig" when empty)
}

// testIssuer is an OIDC issuer on loopback: a discovery document and a
// key set at /keys. It counts key set fetches, and its answers can be
// broken or held.
type testIssuer struct {
	srv     *httptest.Server
	fetches atomic.Int64
	// failing makes the key set answer 500.
	failing atomic.Bool
	// hold, when set, makes a key set fetch signal entered and wait for
	// release.
	hold             atomic.Bool
	entered, release chan struct{}

	mu        sync.Mutex
	keys      map[string]testKey // kid → key
	docIssuer *string            // the discovery document's issuer (the server's URL when nil)
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	is := &testIssuer{
		keys:    map[string]testKey{},
		entered: make(chan struct{}, 1),
		release: make(chan struct{}),
	}
	is.add(t, "rsa", jose.RS256)
	is.add(t, "ec", jose.ES256)
	is.add(t, "ed", jose.EdDSA)
	mux := http.NewServeMux()
	mux.HandleFunc(discoveryPath, func(w http.ResponseWriter, r *http.Request) {
		is.mu.Lock()
		iss := is.srv.URL
		if is.docIssuer != nil {
			iss = *is.docIssuer
		}
		is.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"issuer": iss, "jwks_uri": is.srv.URL + "/keys"})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, r *http.Request) {
		is.fetches.Add(1)
		if is.hold.Load() {
			is.entered <- struct{}{}
			<-is.release
		}
		if is.failing.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(is.keySet())
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		is.hold.Store(false)
		close(is.release)
		is.srv.Close()
	})
	return is
}

// add makes a new key of alg under kid.
func (is *testIssuer) add(t *testing.T, kid string, alg jose.SignatureAlgorithm) {
	t.Helper()
	k := testKey{signer: jwkstest.Key(t, alg), alg: alg}
	is.mu.Lock()
	is.keys[kid] = k
	is.mu.Unlock()
}

func (is *testIssuer) key(kid string) testKey {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.keys[kid]
}

func (is *testIssuer) setUse(kid, use string) {
	is.mu.Lock()
	k := is.keys[kid]
	k.use = use
	is.keys[kid] = k
	is.mu.Unlock()
}

func (is *testIssuer) keySet() jose.JSONWebKeySet {
	is.mu.Lock()
	defer is.mu.Unlock()
	var set jose.JSONWebKeySet
	for kid, k := range is.keys {
		use := k.use
		if use == "" {
			use = "sig"
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.signer.Public(), KeyID: kid, Algorithm: string(k.alg), Use: use})
	}
	return set
}

// token signs the test payload with the issuer's key kid under its
// algorithm.
func (is *testIssuer) token(t *testing.T, kid string) string {
	t.Helper()
	k := is.key(kid)
	return signToken(t, k.alg, k.signer, kid)
}

// signToken signs the test payload with key under alg, naming kid when it
// is not empty.
func signToken(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string) string {
	t.Helper()
	return jwkstest.Sign(t, alg, key, kid, []byte(testPayload))
}

// fixture is a Remote over a test issuer, with a fake clock.
type fixture struct {
	is  *testIssuer
	r   *Remote
	clk *clock.Fake
}

// newFixture builds a Remote for is with cfg's logger; discovery picks the
// discovery URL over the JWKS URL.
func newFixture(t *testing.T, is *testIssuer, discovery bool, cfg Config) *fixture {
	t.Helper()
	f := &fixture{is: is, clk: clock.NewFake(t0)}
	cfg.Now = f.clk.Now
	if discovery {
		cfg.DiscoveryURL = is.srv.URL
	} else {
		cfg.JWKSURL = is.srv.URL + "/keys"
	}
	r, err := NewRemote(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	return f
}

// verify parses tok and verifies it with the fixture's Remote.
func (f *fixture) verify(t *testing.T, tok string) error {
	t.Helper()
	jws, err := ParseSigned(tok, nil)
	if err != nil {
		return err
	}
	payload, err := f.r.Verify(t.Context(), jws)
	if err == nil && string(payload) != testPayload {
		t.Fatalf("payload %q", payload)
	}
	return err
}
