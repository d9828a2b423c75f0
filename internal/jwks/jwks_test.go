package jwks

import (
	"crypto"
	"crypto/ecdh"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/internal/jwks/jwkstest"
)

func pemOf(t *testing.T, typ string, der []byte) string {
	t.Helper()
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func pkixPEM(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf(t, "PUBLIC KEY", der)
}

func TestParseSigned(t *testing.T) {
	t.Parallel()
	rsaKey, ecKey := jwkstest.Key(t, jose.RS256), jwkstest.Key(t, jose.ES256)
	pubPEM := pkixPEM(t, rsaKey.Public())
	valid := signToken(t, jose.RS256, rsaKey, "k")
	unsigned := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"test"}`)) + "."
	multi, err := jose.NewMultiSigner([]jose.SigningKey{{Algorithm: jose.RS256, Key: rsaKey}, {Algorithm: jose.ES256, Key: ecKey}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	twoSigs, err := multi.Sign([]byte(`{"sub":"test"}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		token   string
		algs    []jose.SignatureAlgorithm
		wantErr string
	}{
		{name: "valid", token: valid},
		{name: "valid, listed", token: valid, algs: []jose.SignatureAlgorithm{jose.RS256}},
		{name: "alg none", token: unsigned, wantErr: ErrMalformed.Error()},
		{name: "HS256 keyed with the public key", token: signToken(t, jose.HS256, []byte(pubPEM), "k"), wantErr: ErrMalformed.Error()},
		{name: "HS256 even when listed", token: signToken(t, jose.HS256, []byte(pubPEM), "k"), algs: []jose.SignatureAlgorithm{jose.HS256, jose.RS256}, wantErr: ErrMalformed.Error()},
		{name: "outside the list", token: valid, algs: []jose.SignatureAlgorithm{jose.ES256}, wantErr: ErrMalformed.Error()},
		{name: "two signatures", token: twoSigs.FullSerialize(), wantErr: "exactly one signature"},
		{name: "garbage", token: "not.a.jwt-at-all-but-long-enough", wantErr: ErrMalformed.Error()},
		{name: "too long", token: valid + strings.Repeat("A", MaxTokenSize), wantErr: "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			jws, err := ParseSigned(tc.token, tc.algs)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if _, err := VerifyWithKeys(jws, []crypto.PublicKey{rsaKey.Public()}); err != nil {
					t.Fatalf("VerifyWithKeys: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("ParseSigned: %v, want an error containing %q", err, tc.wantErr)
			}
			for _, part := range strings.Split(tc.token, ".") {
				if len(part) >= 8 && strings.Contains(err.Error(), part) {
					t.Fatalf("the error quotes the token: %v", err)
				}
			}
		})
	}
}

func TestVerifyWithKeys(t *testing.T) {
	t.Parallel()
	a, b := jwkstest.Key(t, jose.ES256), jwkstest.Key(t, jose.ES256)
	jws, err := ParseSigned(signToken(t, jose.ES256, a, ""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if payload, err := VerifyWithKeys(jws, []crypto.PublicKey{b.Public(), a.Public()}); err != nil || string(payload) != `{"sub":"test"}` {
		t.Fatalf("VerifyWithKeys: %q, %v", payload, err)
	}
	if _, err := VerifyWithKeys(jws, []crypto.PublicKey{b.Public()}); err == nil || !strings.Contains(err.Error(), "no configured key verifies") {
		t.Fatalf("another key: %v", err)
	}
	// A JWS parsed elsewhere with HMAC allowed is still refused.
	hs, err := jose.ParseSigned(signToken(t, jose.HS256, []byte("a-shared-secret-of-32-bytes-long"), ""), []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyWithKeys(hs, []crypto.PublicKey{[]byte("a-shared-secret-of-32-bytes-long")}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("an HS256 JWS: %v, want ErrMalformed", err)
	}
}

func TestParseAlgorithms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		in      []string
		want    []jose.SignatureAlgorithm
		wantErr string
	}{
		{name: "empty is all", want: Algorithms()},
		{name: "narrowed", in: []string{"RS256", " ES384 "}, want: []jose.SignatureAlgorithm{jose.RS256, jose.ES384}},
		{name: "HMAC", in: []string{"RS256", "HS256"}, wantErr: `unsupported signing algorithm "HS256": want one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA`},
		{name: "none", in: []string{"none"}, wantErr: "unsupported signing algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseAlgorithms(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("%v, %v; want %v", got, err, tc.want)
			}
		})
	}
	// The list handed out is the caller's own.
	Algorithms()[0] = jose.HS256
	if Algorithms()[0] != jose.RS256 {
		t.Fatal("Algorithms shares its list")
	}
}

func TestParsePublicKeys(t *testing.T) {
	t.Parallel()
	rsaKey, ecKey := jwkstest.Key(t, jose.RS256), jwkstest.Key(t, jose.ES256)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1)}
	certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ecKey.Public(), ecKey)
	if err != nil {
		t.Fatal(err)
	}
	xKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	rsaPKIX, ecPKIX := pkixPEM(t, rsaKey.Public()), pkixPEM(t, ecKey.Public())
	pkcs1 := pemOf(t, "RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(rsaKey.Public().(*rsa.PublicKey)))
	cert := pemOf(t, "CERTIFICATE", certDER)
	for _, tc := range []struct {
		name    string
		texts   []string
		mode    PEMMode
		want    int
		wantErr string
	}{
		{name: "PKIX, PKCS#1 and a certificate", texts: []string{rsaPKIX, pkcs1, cert}, want: 3},
		{name: "first block only", texts: []string{rsaPKIX + ecPKIX}, mode: FirstBlock, want: 1},
		{name: "every block", texts: []string{rsaPKIX + ecPKIX, pkcs1}, mode: EveryBlock, want: 3},
		{name: "another label over PKIX", texts: []string{strings.ReplaceAll(ecPKIX, "PUBLIC KEY", "EC PUBLIC KEY")}, want: 1},
		{name: "not PEM", texts: []string{rsaPKIX, "nope"}, wantErr: "keys[1] is not PEM"},
		{name: "private key", texts: []string{pemOf(t, "PRIVATE KEY", privDER)}, wantErr: `keys[0]: unsupported PEM block "PRIVATE KEY"`},
		{name: "bad key", texts: []string{pemOf(t, "PUBLIC KEY", []byte("AAAA"))}, wantErr: "keys[0]: parse public key"},
		{name: "X25519", texts: []string{pkixPEM(t, xKey.PublicKey())}, wantErr: "keys[0]: unsupported key type"},
		{name: "a bad later block", texts: []string{ecPKIX + pemOf(t, "PUBLIC KEY", []byte("AAAA"))}, mode: EveryBlock, wantErr: "keys[0]: parse public key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keys, err := ParsePublicKeys("keys", tc.texts, tc.mode)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("%v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(keys) != tc.want {
				t.Fatalf("%d keys, %v; want %d", len(keys), err, tc.want)
			}
		})
	}
}

func TestHTTPClient(t *testing.T) {
	t.Parallel()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	t.Cleanup(srv.Close)
	ca := pemOf(t, "CERTIFICATE", srv.Certificate().Raw)
	get := func(c *http.Client) error {
		var v struct{}
		return getJSON(t.Context(), c, srv.URL, &v)
	}
	trusting, err := HTTPClient(http.DefaultTransport, ca, FetchTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if err := get(trusting); err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	plain, err := HTTPClient(nil, "", FetchTimeout)
	if err != nil {
		t.Fatal(err)
	}
	var unknownCA x509.UnknownAuthorityError
	if err := get(plain); !errors.As(err, &unknownCA) {
		t.Fatalf("without the CA: %v, want an unknown authority", err)
	}
	if _, err := HTTPClient(http.DefaultTransport, "not a cert", FetchTimeout); err == nil || !strings.Contains(err.Error(), "no PEM certificate found") {
		t.Fatalf("a bad CA PEM: %v", err)
	}
	if _, err := HTTPClient(roundTripper(nil), ca, FetchTimeout); err == nil {
		t.Fatal("a CA PEM over a transport that cannot take it was accepted")
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzParseSigned: whatever the input, no panic, no error that quotes it,
// and an accepted JWS carries one signature under an accepted algorithm.
func FuzzParseSigned(f *testing.F) {
	key := jwkstest.Key(f, jose.ES256)
	good := jwkstest.Sign(f, jose.ES256, key, "k", []byte(testPayload))
	parts := strings.Split(good, ".")
	for _, seed := range []string{
		good,
		jwkstest.Sign(f, jose.HS256, []byte("a-shared-secret-of-32-bytes-long"), "", []byte(testPayload)),
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".",
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"ES256","crit":["x"]}`)) + "." + parts[1] + "." + parts[2],
		`{"payload":"e30","signatures":[]}`,
		"", "..", "a.b.c", "e30.e30.e30",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		jws, err := ParseSigned(token, nil)
		if err != nil {
			if len(token) >= 16 && strings.Contains(err.Error(), token) {
				t.Fatalf("the error quotes the token: %v", err)
			}
			return
		}
		if len(jws.Signatures) != 1 {
			t.Fatalf("accepted %d signatures", len(jws.Signatures))
		}
		if alg := jws.Signatures[0].Header.Algorithm; !slices.Contains(Algorithms(), jose.SignatureAlgorithm(alg)) {
			t.Fatalf("accepted alg %q", alg)
		}
	})
}
