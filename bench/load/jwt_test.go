package load

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// The issuer's JWTs verify with the public key it publishes, under the
// algorithm asked for, and carry claims the role accepts.
func TestJWTIssuer(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var role struct {
		BoundAudiences []string          `json:"bound_audiences"`
		BoundClaims    map[string]string `json:"bound_claims"`
		ClaimMappings  map[string]string `json:"claim_mappings"`
	}
	if err := json.Unmarshal([]byte(JWTRoleBody), &role); err != nil {
		t.Fatalf("JWTRoleBody: %v", err)
	}
	for _, c := range []struct {
		alg  jose.SignatureAlgorithm
		want func(any) bool
	}{
		{jose.ES256, func(k any) bool { ec, ok := k.(*ecdsa.PublicKey); return ok && ec.Curve == elliptic.P256() }},
		{jose.RS256, func(k any) bool { r, ok := k.(*rsa.PublicKey); return ok && r.N.BitLen() == 2048 }},
	} {
		t.Run(string(c.alg), func(t *testing.T) {
			t.Parallel()
			is, err := NewJWTIssuer(c.alg)
			if err != nil {
				t.Fatal(err)
			}
			if is.Alg() != c.alg {
				t.Errorf("Alg() = %s", is.Alg())
			}
			block, rest := pem.Decode([]byte(is.PublicKeyPEM()))
			if block == nil || block.Type != "PUBLIC KEY" || len(strings.TrimSpace(string(rest))) != 0 {
				t.Fatalf("PublicKeyPEM:\n%s", is.PublicKeyPEM())
			}
			pub, err := x509.ParsePKIXPublicKey(block.Bytes)
			if err != nil || !c.want(pub) {
				t.Fatalf("public key %T, %v", pub, err)
			}

			bodies, err := is.LoginBodies("bench", 4, now, 90*time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for i, body := range bodies {
				var in map[string]string
				if err := json.Unmarshal(body, &in); err != nil || len(in) != 2 || in["role"] != "bench" {
					t.Fatalf("body %d: %s (%v)", i, body, err)
				}
				if seen[in["jwt"]] {
					t.Errorf("body %d repeats a JWT", i)
				}
				seen[in["jwt"]] = true
				jws, err := jose.ParseSigned(in["jwt"], []jose.SignatureAlgorithm{c.alg})
				if err != nil {
					t.Fatalf("body %d: %v", i, err)
				}
				if h := jws.Signatures[0].Header; h.Algorithm != string(c.alg) || h.ExtraHeaders["typ"] != "JWT" {
					t.Errorf("body %d: header %+v", i, h)
				}
				payload, err := jws.Verify(pub)
				if err != nil {
					t.Fatalf("body %d: %v", i, err)
				}
				var claims map[string]any
				if err := json.Unmarshal(payload, &claims); err != nil {
					t.Fatal(err)
				}
				if claims["iss"] != JWTIssuerURL || claims["iat"] != float64(now.Unix()) || claims["nbf"] != float64(now.Unix()) ||
					claims["exp"] != float64(now.Add(90*time.Minute).Unix()) || claims["sub"] == "" {
					t.Errorf("body %d: claims %v", i, claims)
				}
				// What the role binds and maps is there.
				if !slices.Contains(role.BoundAudiences, claims["aud"].(string)) {
					t.Errorf("aud %v, the role binds %q", claims["aud"], role.BoundAudiences)
				}
				for name, want := range role.BoundClaims {
					if claims[name] != want {
						t.Errorf("claim %s = %v, the role binds %q", name, claims[name], want)
					}
				}
				for name := range role.ClaimMappings {
					if _, ok := claims[name].(string); !ok {
						t.Errorf("mapped claim %s = %v, want a string", name, claims[name])
					}
				}
			}
			// Another issuer's key does not verify these JWTs.
			other, err := NewJWTIssuer(c.alg)
			if err != nil {
				t.Fatal(err)
			}
			ob, _ := pem.Decode([]byte(other.PublicKeyPEM()))
			otherPub, _ := x509.ParsePKIXPublicKey(ob.Bytes)
			var in struct{ JWT string }
			json.Unmarshal(bodies[0], &in)
			if jws, err := jose.ParseSigned(in.JWT, []jose.SignatureAlgorithm{c.alg}); err != nil {
				t.Fatal(err)
			} else if _, err := jws.Verify(otherPub); err == nil {
				t.Error("a JWT verifies with another issuer's key")
			}
		})
	}
}

func TestJWTIssuerAlgs(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{jose.HS256, jose.ES384, jose.PS256, "none", ""} {
		if _, err := NewJWTIssuer(alg); err == nil {
			t.Errorf("NewJWTIssuer(%q) succeeded", alg)
		}
	}
}
