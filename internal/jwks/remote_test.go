package jwks

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/internal/jwks/jwkstest"
)

func TestVerifyEveryKeyType(t *testing.T) {
	t.Parallel()
	is := newTestIssuer(t)
	for _, discovery := range []bool{false, true} {
		t.Run(fmt.Sprintf("discovery=%v", discovery), func(t *testing.T) {
			f := newFixture(t, is, discovery, Config{})
			for _, kid := range []string{"rsa", "ec", "ed"} {
				if err := f.verify(t, is.token(t, kid)); err != nil {
					t.Errorf("%s: %v", kid, err)
				}
			}
			// Without a key id, every key of the set is tried.
			k := is.key("ec")
			if err := f.verify(t, signToken(t, k.alg, k.signer, "")); err != nil {
				t.Errorf("no kid: %v", err)
			}
		})
	}
}

// TestUnknownKidRefreshLimited: forged key ids make at most one fetch per
// refresh interval; a key the issuer adds is found once it has passed.
func TestUnknownKidRefreshLimited(t *testing.T) {
	t.Parallel()
	is := newTestIssuer(t)
	f := newFixture(t, is, false, Config{})
	if err := f.verify(t, is.token(t, "rsa")); err != nil {
		t.Fatal(err)
	}
	base := is.fetches.Load()
	forger := jwkstest.Key(t, jose.ES256)
	for i := range 50 {
		err := f.verify(t, signToken(t, jose.ES256, forger, fmt.Sprintf("forged-%d", i)))
		if err == nil || !strings.Contains(err.Error(), "with the token's key id verifies its signature") {
			t.Fatalf("forged kid %d: %v", i, err)
		}
	}
	// Without a kid, a token no cached key verifies is limited the same.
	for range 10 {
		if err := f.verify(t, signToken(t, jose.ES256, forger, "")); err == nil || !strings.Contains(err.Error(), "no key of the issuer's key set verifies the signature") {
			t.Fatalf("forged, no kid: %v", err)
		}
	}
	if n := is.fetches.Load() - base; n > 1 {
		t.Fatalf("%d fetches for forged tokens in one interval, want at most 1", n)
	}
	is.add(t, "new", jose.ES256)
	tok := is.token(t, "new")
	if err := f.verify(t, tok); err == nil {
		t.Fatal("a new key was fetched before the interval passed")
	}
	f.clk.Advance(RefreshInterval)
	if err := f.verify(t, tok); err != nil {
		t.Fatalf("a key added after the interval: %v", err)
	}
	if n := is.fetches.Load() - base; n != 1 {
		t.Fatalf("%d fetches after the load, want 1 (the refresh the new key made)", n)
	}
}

// TestKeyUseAndAlgorithmPinned: a JWK verifies only with the algorithm it
// names and only when it is for signatures.
func TestKeyUseAndAlgorithmPinned(t *testing.T) {
	t.Parallel()
	is := newTestIssuer(t)
	f := newFixture(t, is, false, Config{})
	rsaKey := is.key("rsa")
	for _, kid := range []string{"rsa", ""} {
		if err := f.verify(t, signToken(t, jose.PS256, rsaKey.signer, kid)); err == nil {
			t.Errorf("kid %q: a PS256 token verified with a JWK that names RS256", kid)
		}
	}
	if err := f.verify(t, is.token(t, "rsa")); err != nil {
		t.Fatalf("RS256 with the RS256 JWK: %v", err)
	}
	is.setUse("ec", "enc")
	g := newFixture(t, is, false, Config{})
	if err := g.verify(t, is.token(t, "ec")); err == nil {
		t.Fatal("a JWK for encryption verified a signature")
	}
}

// TestFetchOutsideLock: while a refresh waits on a slow issuer, tokens of
// cached keys are verified at once, and a second refresh does not queue.
func TestFetchOutsideLock(t *testing.T) {
	t.Parallel()
	is := newTestIssuer(t)
	f := newFixture(t, is, false, Config{})
	if err := f.r.Load(t.Context()); err != nil {
		t.Fatal(err)
	}
	f.clk.Advance(RefreshInterval)
	is.hold.Store(true)
	forger := jwkstest.Key(t, jose.ES256)
	forged := signToken(t, jose.ES256, forger, "unknown")
	refreshed := make(chan error, 1)
	go func() { refreshed <- f.verify(t, forged) }()
	select {
	case <-is.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the unknown kid did not refresh the key set")
	}
	done := make(chan error, 2)
	go func() { done <- f.verify(t, is.token(t, "rsa")) }()
	go func() { done <- f.verify(t, signToken(t, jose.ES256, forger, "unknown-2")) }()
	for range 2 {
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("a verification waited for the refresh under way")
		}
	}
	if err := f.verify(t, is.token(t, "ed")); err != nil {
		t.Fatalf("a cached key during a refresh: %v", err)
	}
	is.hold.Store(false)
	is.release <- struct{}{}
	if err := <-refreshed; err == nil {
		t.Fatal("the forged token verified")
	}
	if n := is.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (the load and one refresh)", n)
	}
}

// TestFetchNotCancelledByCaller: the caller that starts a fetch going away
// does not fail the fetch; the set it brings serves the next callers.
func TestFetchNotCancelledByCaller(t *testing.T) {
	t.Parallel()
	is := newTestIssuer(t)
	f := newFixture(t, is, true, Config{})
	is.hold.Store(true)
	ctx, cancel := context.WithCancel(t.Context())
	jws, err := ParseSigned(is.token(t, "rsa"), nil)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := f.r.Verify(ctx, jws)
		done <- err
	}()
	select {
	case <-is.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no fetch")
	}
	cancel()
	is.hold.Store(false)
	is.release <- struct{}{}
	if err := <-done; err != nil {
		t.Fatalf("the fetch failed with its caller gone: %v", err)
	}
	if err := f.verify(t, is.token(t, "ec")); err != nil || is.fetches.Load() != 1 {
		t.Fatalf("after the fetch: %v, %d fetches, want the cached set", err, is.fetches.Load())
	}
}

// TestDiscoveryIssuer: the discovery document must name the discovery URL
// itself, or the issuer configured instead.
func TestDiscoveryIssuer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		docIssuer string // "" for the server's URL; "+/" for it with a trailing '/'
		issuer    string // Config.Issuer; "+" stands for the server's URL
		field     string
		urlSuffix string
		wantErr   string
	}{
		{name: "the issuer's own"},
		{name: "trailing slash on the URL", urlSuffix: "/"},
		{name: "trailing slash in the document", docIssuer: "+/"},
		{name: "another issuer", docIssuer: "https://evil.example", field: "oidc_discovery_url",
			wantErr: `names issuer "https://evil.example", an issuer other than oidc_discovery_url`},
		{name: "default field name", docIssuer: "https://evil.example", wantErr: "an issuer other than the discovery URL"},
		{name: "configured issuer", docIssuer: "https://kubernetes.default.svc", issuer: "https://kubernetes.default.svc"},
		{name: "configured issuer, mismatch", issuer: "https://kubernetes.default.svc", field: "the configured issuer",
			wantErr: "an issuer other than the configured issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			is := newTestIssuer(t)
			switch tc.docIssuer {
			case "":
			case "+/":
				u := is.srv.URL + "/"
				is.docIssuer = &u
			default:
				is.docIssuer = &tc.docIssuer
			}
			issuer := tc.issuer
			if issuer == "+" {
				issuer = is.srv.URL
			}
			r, err := NewRemote(Config{DiscoveryURL: is.srv.URL + tc.urlSuffix, Issuer: issuer, IssuerField: tc.field})
			if err != nil {
				t.Fatal(err)
			}
			err = r.Load(t.Context())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("Load: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Load: %v, want an error containing %q", err, tc.wantErr)
			case tc.wantErr != "" && is.fetches.Load() != 0:
				t.Fatal("the key set of a document naming another issuer was fetched")
			}
		})
	}
}

// TestFetchRefusals: what an issuer answers that is not a key set.
func TestFetchRefusals(t *testing.T) {
	t.Parallel()
	is := newTestIssuer(t)
	var redirectTargetHit atomic.Bool
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		redirectTargetHit.Store(true)
		json.NewEncoder(w).Encode(is.keySet())
	}))
	t.Cleanup(target.Close)
	huge := strings.Repeat(" ", MaxFetchSize) + `{"keys":[]}`
	for _, tc := range []struct {
		name      string
		discovery bool
		handler   http.HandlerFunc
		wantErr   string
	}{
		{"too large", false, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(huge)) }, fmt.Sprintf("answered more than %d bytes", MaxFetchSize)},
		{"redirect", false, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, target.URL, http.StatusFound) }, "redirects are not followed"},
		{"status", false, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusNotFound) }, "answered 404"},
		{"not JSON", false, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }, "answered malformed JSON"},
		{"no key", false, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"keys":[]}`)) }, "the JWKS holds no key"},
		{"discovery without jwks_uri", true, func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(map[string]string{"issuer": "http://" + r.Host})
		}, "names no jwks_uri"},
		{"discovery redirect", true, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL, http.StatusMovedPermanently)
		}, "fetch the OIDC discovery document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			cfg := Config{JWKSURL: srv.URL}
			if tc.discovery {
				cfg = Config{DiscoveryURL: srv.URL}
			}
			r, err := NewRemote(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Load(t.Context()); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Load: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	if redirectTargetHit.Load() {
		t.Fatal("a redirect was followed")
	}
}

// TestKeepLastGoodSet: a failed refresh keeps the cached set and is
// logged; with no set at all, a failed fetch is retried only after the
// refresh interval.
func TestKeepLastGoodSet(t *testing.T) {
	t.Parallel()
	is := newTestIssuer(t)
	// The log is written by the calls below only, all on this goroutine.
	var log strings.Builder
	f := newFixture(t, is, false, Config{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	tok := is.token(t, "rsa")
	if err := f.verify(t, tok); err != nil {
		t.Fatal(err)
	}
	is.failing.Store(true)
	f.clk.Advance(MaxAge)
	if err := f.verify(t, tok); err != nil {
		t.Fatalf("with the issuer down after MaxAge: %v", err)
	}
	if n := is.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (MaxAge passed)", n)
	}
	if !strings.Contains(log.String(), "keeping the cached one") || !strings.Contains(log.String(), "answered 500") {
		t.Fatalf("log %q, want the failed refresh", log.String())
	}
	if strings.Contains(log.String(), strings.Split(tok, ".")[2]) {
		t.Fatal("the log quotes the token")
	}
	if err := f.verify(t, tok); err != nil || is.fetches.Load() != 2 {
		t.Fatalf("right after the failed refresh: %v, %d fetches, want the cached set and no fetch", err, is.fetches.Load())
	}

	// No set yet: the failure is the caller's, and not retried at once.
	g := newFixture(t, is, false, Config{})
	before := is.fetches.Load()
	if err := g.r.Load(t.Context()); err == nil || !strings.Contains(err.Error(), "answered 500") {
		t.Fatalf("Load with the issuer down: %v", err)
	}
	if err := g.verify(t, tok); err == nil || !strings.Contains(err.Error(), "try again shortly") {
		t.Fatalf("right after a failed fetch: %v", err)
	}
	if n := is.fetches.Load() - before; n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
	is.failing.Store(false)
	g.clk.Advance(RefreshInterval)
	if err := g.verify(t, tok); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
}

func TestNewRemoteNeedsOneSource(t *testing.T) {
	t.Parallel()
	for _, cfg := range []Config{{}, {JWKSURL: "https://a/keys", DiscoveryURL: "https://a"}} {
		if _, err := NewRemote(cfg); err == nil {
			t.Errorf("NewRemote(%+v) accepted", cfg)
		}
	}
}
