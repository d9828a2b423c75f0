package auth

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/jwks/jwkstest"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/testcluster"
)

// TestNewLogin: the methods describe themselves by type and mount (auth/
// added when missing), and auto-auth refuses the methods for people and a
// login without fields.
func TestNewLogin(t *testing.T) {
	t.Parallel()
	role := map[string]*Credential{"role_id": FileCredential("/r")}
	for _, tt := range []struct {
		typ, mount, want string
	}{
		{"approle", "", "approle at auth/approle"},
		{"approle", "auth/apps/", "approle at auth/apps"},
		{"approle", "apps", "approle at auth/apps"},
		{"kubernetes", "/auth/k8s-edge", "kubernetes at auth/k8s-edge"},
	} {
		m, err := NewLogin(tt.typ, tt.mount, role)
		if err != nil {
			t.Fatal(err)
		}
		if m.String() != tt.want {
			t.Errorf("NewLogin(%q, %q).String() = %q, want %q", tt.typ, tt.mount, m.String(), tt.want)
		}
	}
	if got := NewToken(FileCredential("/tok")).String(); got != "token_file /tok" {
		t.Errorf("NewToken(file).String() = %q", got)
	}
	for _, typ := range []string{"", "token", "userpass", "ldap"} {
		if _, err := NewLogin(typ, "", map[string]*Credential{"username": ValueCredential(secret.NewString("a"))}); err == nil {
			t.Errorf("NewLogin accepts %q", typ)
		}
	}
	if _, err := NewLogin("jwt", "", nil); err == nil {
		t.Error("NewLogin accepts a login without fields")
	}
}

func TestCredentialFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "secret-id")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := FileCredential(path)
	if _, err := c.read(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	write("  one\n")
	if v, err := c.read(); err != nil || v.Reveal() != "one" {
		t.Errorf("read: %v", err)
	}
	write("two")
	if v, _ := c.read(); v.Reveal() != "two" {
		t.Error("the file is not read again")
	}
	write("")
	if v, err := c.read(); err != nil || v.Reveal() != "two" {
		t.Errorf("an emptied file: %v, want the last value", err)
	}

	rm := &Credential{File: path, Remove: true}
	write("three")
	if v, err := rm.read(); err != nil || v.Reveal() != "three" {
		t.Fatalf("read: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the file was not removed: %v", err)
	}
	if v, err := rm.read(); err != nil || v.Reveal() != "three" {
		t.Errorf("after removal: %v, want the value read before", err)
	}
	empty := &Credential{File: path}
	write("\n")
	if _, err := empty.read(); err == nil || strings.Contains(err.Error(), "three") {
		t.Errorf("an empty file never read before: %v", err)
	}
}

// managedClock wraps the fake clock the server also runs on, and counts
// the manager's own timers, so that the test moves time only while the
// manager sleeps.
type managedClock struct {
	*clock.Fake
	mu      sync.Mutex
	waiting int
}

func (c *managedClock) AfterFunc(d time.Duration, f func()) clock.Timer {
	c.mu.Lock()
	c.waiting++
	c.mu.Unlock()
	var once sync.Once
	done := func() {
		once.Do(func() {
			c.mu.Lock()
			c.waiting--
			c.mu.Unlock()
		})
	}
	t := c.Fake.AfterFunc(d, func() { done(); f() })
	return stopHook{t, done}
}

type stopHook struct {
	clock.Timer
	done func()
}

func (s stopHook) Stop() bool {
	s.done()
	return s.Timer.Stop()
}

func (c *managedClock) asleep() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.waiting > 0
}

// runUntil runs m in the background and moves the clock a second at a
// time, while the manager sleeps, until cond holds or Run returns.
func runUntil(t *testing.T, m *Manager, clk *managedClock, cond func() bool) error {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			cancel()
			return err
		default:
		}
		if cond() {
			cancel()
			return <-done
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no progress after 60s; the fake clock is at %v", clk.Now())
		}
		if clk.asleep() {
			clk.Advance(time.Second)
		}
		time.Sleep(time.Millisecond) // let the manager's goroutine run: pacing, not waiting for a result
	}
}

// server starts a server on the fake clock and returns a root client and
// a client without a token.
func server(t *testing.T, clk *clock.Fake) (*api.Client, *api.Client) {
	t.Helper()
	s := testcluster.New(t, testcluster.Options{InMemory: true, Clock: clk})
	root, err := api.NewClient(api.Config{Address: s.URL, Token: s.RootToken})
	if err != nil {
		t.Fatal(err)
	}
	return root, root.WithToken("")
}

func mustWrite(t *testing.T, c *api.Client, path string, data map[string]any) *api.Secret {
	t.Helper()
	s, err := c.Logical().Write(t.Context(), path, data)
	if err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return s
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAppRoleManager: the approle method logs in from its files (the
// secret id file removed after reading), renews the token at two thirds
// of its TTL, and logs in again, with the secret id kept in memory, when
// the token's max TTL nears.
func TestAppRoleManager(t *testing.T) {
	t.Parallel()
	clk := &managedClock{Fake: clock.NewFake(time.Now())}
	root, anon := server(t, clk.Fake)
	ctx := t.Context()
	if err := root.Sys().EnableAuth(ctx, "approle", api.EnableAuthInput{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, root, "auth/approle/role/job", map[string]any{"token_ttl": "60s", "token_max_ttl": "150s", "token_policies": "default"})
	roleID, err := root.Logical().Read(ctx, "auth/approle/role/job/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid := mustWrite(t, root, "auth/approle/role/job/secret-id", nil)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "role-id"), roleID.Data["role_id"].(string)+"\n")
	writeFile(t, filepath.Join(dir, "secret-id"), sid.Data["secret_id"].(string))

	m, err := NewLogin("approle", "", map[string]*Credential{
		"role_id":   FileCredential(filepath.Join(dir, "role-id")),
		"secret_id": {File: filepath.Join(dir, "secret-id"), Remove: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var tokens []Token
	mgr := NewManager(ManagerOptions{Method: m, Client: anon, Retry: lifetime.RetryOptions{Clock: clk}, Rand: func() float64 { return 0 },
		OnToken: func(tok Token) { mu.Lock(); tokens = append(tokens, tok); mu.Unlock() }})
	if err := mgr.Run(ctx); !errors.Is(err, ErrNoToken) {
		t.Errorf("Run before Login: %v", err)
	}
	if err := mgr.Login(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "secret-id")); !errors.Is(err, os.ErrNotExist) {
		t.Error("the secret id file is still there after the login")
	}
	first, changed := mgr.Token()
	if first.Value.IsEmpty() || !first.Issued || first.TTL != 60*time.Second || !first.Renewable {
		t.Fatalf("first token: %+v", first)
	}
	// The token works.
	if _, err := anon.WithToken(first.Value.Reveal()).TokenAuth().LookupSelf(ctx); err != nil {
		t.Fatal(err)
	}
	start := clk.Now()
	err = runUntil(t, mgr, clk, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(tokens) >= 2
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	select {
	case <-changed:
	default:
		t.Error("the change channel was not closed")
	}
	second, _ := mgr.Token()
	if second.Value.Equal(first.Value) || second.Accessor == first.Accessor {
		t.Fatal("no new token")
	}
	// The first token lived past its first TTL thanks to renewals, and
	// was replaced before its max TTL.
	if lived := clk.Now().Sub(start); lived <= 60*time.Second || lived >= 150*time.Second {
		t.Errorf("the first token was replaced after %v; want renewals past 60s and a login before 150s", lived)
	}
	if err := mgr.Revoke(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.WithToken(second.Value.Reveal()).TokenAuth().LookupSelf(ctx); api.StatusCode(err) != http.StatusForbidden {
		t.Errorf("the revoked token still works: %v", err)
	}
}

// jwtRole enables the jwt method at auth/ci with a key of its own and a
// role "train" whose tokens live ttl (at most maxTTL) and carry the JWT's
// "run" claim in their metadata; sign returns a JWT for a run.
func jwtRole(t *testing.T, root *api.Client, clk *clock.Fake, ttl, maxTTL string) (sign func(run string) string) {
	t.Helper()
	ctx := t.Context()
	key := jwkstest.Key(t, jose.ES256)
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuth(ctx, "ci", api.EnableAuthInput{Type: "jwt"}); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, root, "auth/ci/config", map[string]any{"jwt_validation_pubkeys": []string{string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}})
	mustWrite(t, root, "auth/ci/role/train", map[string]any{"role_type": "jwt", "user_claim": "sub", "bound_audiences": []string{"vigil"},
		"claim_mappings": map[string]string{"run": "run"}, "token_ttl": ttl, "token_max_ttl": maxTTL})
	return func(run string) string {
		now := clk.Now()
		b, _ := json.Marshal(map[string]any{"sub": "job", "aud": "vigil", "run": run, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		return jwkstest.Sign(t, jose.ES256, key, "", b)
	}
}

// TestJWTFileIsReadAtEachLogin: the jwt method reads its file at every
// login, so a rotated token (a new projected service-account token) is
// what the next login sends; a refused first login fails at once.
func TestJWTFileIsReadAtEachLogin(t *testing.T) {
	t.Parallel()
	clk := &managedClock{Fake: clock.NewFake(time.Now())}
	root, anon := server(t, clk.Fake)
	ctx := t.Context()
	sign := jwtRole(t, root, clk.Fake, "60s", "100s")
	path := filepath.Join(t.TempDir(), "token")

	m, err := NewLogin("jwt", "auth/ci", map[string]*Credential{"jwt": FileCredential(path), "role": ValueCredential(secret.NewString("train"))})
	if err != nil {
		t.Fatal(err)
	}
	mgr := NewManager(ManagerOptions{Method: m, Client: anon, Retry: lifetime.RetryOptions{Clock: clk}})
	writeFile(t, path, "not-a-jwt")
	if err := mgr.Login(ctx); api.StatusCode(err) != http.StatusBadRequest && api.StatusCode(err) != http.StatusForbidden {
		t.Fatalf("a bad JWT: %v, want a refusal at once", err)
	} else if strings.Contains(err.Error(), "not-a-jwt") {
		t.Errorf("the error quotes the credential: %v", err)
	}
	writeFile(t, path, sign("1"))
	if err := mgr.Login(ctx); err != nil {
		t.Fatal(err)
	}
	meta := func(tok Token) string {
		s, err := anon.WithToken(tok.Value.Reveal()).TokenAuth().LookupSelf(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := s.Data["meta"].(map[string]any)
		return m["run"].(string)
	}
	first, _ := mgr.Token()
	if got := meta(first); got != "1" {
		t.Fatalf("first login's run = %q", got)
	}
	writeFile(t, path, sign("2")) // the platform rotates the file
	if err := runUntil(t, mgr, clk, func() bool { tok, _ := mgr.Token(); return tok.Accessor != first.Accessor }); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	second, _ := mgr.Token()
	if got := meta(second); got != "2" {
		t.Errorf("the login after rotation sent run %q, want the new file's 2", got)
	}
}

// TestJWTNewFileLogsInAgain: with a polled JWT file, a new JWT dropped in
// place means a new login at once, long before the token needs one; a
// response-wrapped login waits for new credentials the same way.
func TestJWTNewFileLogsInAgain(t *testing.T) {
	t.Parallel()
	clk := &managedClock{Fake: clock.NewFake(time.Now())}
	root, anon := server(t, clk.Fake)
	ctx := t.Context()
	sign := jwtRole(t, root, clk.Fake, "1h", "10h")
	run := func(tok Token) string {
		t.Helper()
		if tok.Wrapped != nil {
			u, err := anon.WithToken(tok.Wrapped.Token).Logical().Write(ctx, "sys/wrapping/unwrap", nil)
			if err != nil || u == nil || u.Auth == nil {
				t.Fatalf("unwrap: %+v %v", u, err)
			}
			tok.Value = secret.NewString(u.Auth.ClientToken)
		}
		s, err := anon.WithToken(tok.Value.Reveal()).TokenAuth().LookupSelf(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := s.Data["meta"].(map[string]any)
		return m["run"].(string)
	}
	for _, wrapTTL := range []time.Duration{0, 5 * time.Minute} {
		path := filepath.Join(t.TempDir(), "jwt")
		m, err := NewLogin("jwt", "auth/ci", map[string]*Credential{
			"jwt":  {File: path, Remove: true, Poll: 500 * time.Millisecond},
			"role": ValueCredential(secret.NewString("train")),
		})
		if err != nil {
			t.Fatal(err)
		}
		mgr := NewManager(ManagerOptions{Method: m, Client: anon, Retry: lifetime.RetryOptions{Clock: clk}, WrapTTL: wrapTTL})
		writeFile(t, path, sign("1"))
		if err := mgr.Login(ctx); err != nil {
			t.Fatal(err)
		}
		first, _ := mgr.Token()
		if got := run(first); got != "1" {
			t.Fatalf("wrap %v: first login's run = %q", wrapTTL, got)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("wrap %v: the JWT file was not removed once read: %v", wrapTTL, err)
		}

		// Run for a while on the old JWT: the token needs no new login.
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- mgr.Run(rctx) }()
		start := clk.Now()
		step := func(d time.Duration) {
			clk.Advance(d)
			time.Sleep(2 * time.Millisecond) // let the watcher and manager run: pacing, not waiting for a result
		}
		for clk.Now().Sub(start) < 5*time.Second {
			step(100 * time.Millisecond)
		}
		if tok, _ := mgr.Token(); tok.Accessor != first.Accessor {
			t.Fatalf("wrap %v: a new login without new credentials", wrapTTL)
		}
		writeFile(t, path, sign("2"))
		deadline := time.Now().Add(30 * time.Second)
		for tok, _ := mgr.Token(); tok.Accessor == first.Accessor; tok, _ = mgr.Token() {
			if time.Now().After(deadline) {
				t.Fatalf("wrap %v: no new login after a new JWT (fake clock %v past the write)", wrapTTL, clk.Now().Sub(start))
			}
			step(100 * time.Millisecond)
		}
		second, _ := mgr.Token()
		if got := run(second); got != "2" {
			t.Errorf("wrap %v: the login after the new JWT sent run %q", wrapTTL, got)
		}
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("wrap %v: Run = %v", wrapTTL, err)
		}
	}
}

// TestCredentialFollowsSymlinks: with FollowSymlinks a credential read
// through a symlink removes the file it points to and leaves the link;
// without it, the link goes and the file stays.
func TestCredentialFollowsSymlinks(t *testing.T) {
	t.Parallel()
	for _, follow := range []bool{false, true} {
		dir := t.TempDir()
		target, link := filepath.Join(dir, "jwt-1"), filepath.Join(dir, "jwt")
		writeFile(t, target, "value")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		c := &Credential{File: link, Remove: true, FollowSymlinks: follow}
		if v, err := c.read(); err != nil || v.Reveal() != "value" {
			t.Fatalf("follow %v: read = %v", follow, err)
		}
		_, terr := os.Stat(target)
		_, lerr := os.Lstat(link)
		if follow != errors.Is(terr, os.ErrNotExist) || follow != (lerr == nil) {
			t.Errorf("follow %v: target removed %v, link kept %v", follow, terr != nil, lerr == nil)
		}
	}
}

// TestTokenMethod: a given token is looked up, renewed, and, once it can
// no longer be renewed, Run ends with ErrNoRelogin; it is never revoked.
func TestTokenMethod(t *testing.T) {
	t.Parallel()
	clk := &managedClock{Fake: clock.NewFake(time.Now())}
	root, anon := server(t, clk.Fake)
	ctx := t.Context()
	s, err := root.TokenAuth().Create(ctx, api.TokenCreateRequest{Policies: []string{"default"}, TTL: "60s", ExplicitMaxTTL: "100s"})
	if err != nil {
		t.Fatal(err)
	}
	mgr := NewManager(ManagerOptions{Method: NewToken(ValueCredential(secret.NewString(s.Auth.ClientToken))), Client: anon, Retry: lifetime.RetryOptions{Clock: clk}})
	if err := mgr.Login(ctx); err != nil {
		t.Fatal(err)
	}
	tok, _ := mgr.Token()
	if tok.Issued || !tok.Renewable || tok.TTL != 60*time.Second || tok.Accessor != s.Auth.Accessor {
		t.Fatalf("token: %+v", tok)
	}
	err = runUntil(t, mgr, clk, func() bool { return false })
	if !errors.Is(err, ErrNoRelogin) || !errors.Is(err, lifetime.ErrPermanent) {
		t.Fatalf("Run = %v, want ErrNoRelogin", err)
	}
	if strings.Contains(err.Error(), s.Auth.ClientToken) {
		t.Error("the error holds the token")
	}
	if err := mgr.Revoke(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.WithToken(s.Auth.ClientToken).TokenAuth().LookupSelf(ctx); err != nil {
		t.Errorf("a given token was revoked: %v", err)
	}

	bad := NewManager(ManagerOptions{Method: NewToken(ValueCredential(secret.NewString("nope"))), Client: anon})
	if err := bad.Login(ctx); api.StatusCode(err) != http.StatusForbidden {
		t.Errorf("a bad token: %v", err)
	}
}

// TestKubernetesLoginRequest: the kubernetes method sends the role and
// the token file's JWT to <mount>/login.
func TestKubernetesLoginRequest(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got map[string]any
	var gotPath string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		gotPath = r.URL.Path
		_ = json.NewDecoder(r.Body).Decode(&got)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"auth":{"client_token":"s.pod","accessor":"a1","lease_duration":900,"renewable":true}}`))
	}))
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "token")
	writeFile(t, path, "pod.jwt\n")
	m, err := NewLogin("kubernetes", "auth/k8s-edge", map[string]*Credential{"jwt": FileCredential(path), "role": ValueCredential(secret.NewString("gateway"))})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := api.NewClient(api.Config{Address: srv.URL, Token: "not-sent"})
	tok, err := m.Login(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gotPath != "/v1/auth/k8s-edge/login" || got["role"] != "gateway" || got["jwt"] != "pod.jwt" || len(got) != 2 {
		t.Errorf("request %s %v", gotPath, got)
	}
	if tok.Value.Reveal() != "s.pod" || tok.TTL != 15*time.Minute || !tok.Issued {
		t.Errorf("token %+v", tok)
	}
}

// TestFailFastLogin: with FailFastLogin a refused login and an unreachable
// server end Login at once; without it, a refusal is retried when the
// options say so.
func TestFailFastLogin(t *testing.T) {
	t.Parallel()
	clk := &managedClock{Fake: clock.NewFake(time.Now())}
	_, anon := server(t, clk.Fake)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "role-id"), "no-such-role")
	method := func() Method {
		m, err := NewLogin("approle", "", map[string]*Credential{"role_id": FileCredential(filepath.Join(dir, "role-id"))})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	calls := 0
	fast := NewManager(ManagerOptions{Method: method(), Client: anon, FailFastLogin: true,
		Retry: lifetime.RetryOptions{Clock: clk, RetryRefusals: true, OnError: func(error, int, time.Duration) { calls++ }}})
	if err := fast.Login(t.Context()); err == nil || calls != 0 {
		t.Fatalf("fail-fast login: err %v after %d retries", err, calls)
	}

	down, err := api.NewClient(api.Config{Address: "http://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	fast = NewManager(ManagerOptions{Method: method(), Client: down, FailFastLogin: true, Retry: lifetime.RetryOptions{Clock: clk}})
	if err := fast.Login(t.Context()); err == nil || !errors.Is(err, lifetime.ErrRetriesExhausted) {
		t.Fatalf("fail-fast login to a server that is down: %v", err)
	}
}

// TestAppRoleWrappedSecretID: with secret_id_response_wrapping_path the
// secret id file holds a wrapping token, which the method looks up,
// checks against the path, unwraps once and logs in with; later logins
// use the unwrapped secret id. A token created at another path is not
// unwrapped (and so not spent); a spent one is an error.
func TestAppRoleWrappedSecretID(t *testing.T) {
	t.Parallel()
	root, anon := server(t, clock.NewFake(time.Now()))
	ctx := t.Context()
	if err := root.Sys().EnableAuth(ctx, "approle", api.EnableAuthInput{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	for _, role := range []string{"job", "other"} {
		mustWrite(t, root, "auth/approle/role/"+role, map[string]any{"token_ttl": "1h", "token_policies": "default"})
	}
	roleID, err := root.Logical().Read(ctx, "auth/approle/role/job/role-id")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := root.WithWrapTTL(time.Minute)
	wrap := func(path string) string {
		t.Helper()
		s := mustWrite(t, wrapper, path, nil)
		if s == nil || s.WrapInfo == nil || s.WrapInfo.Token == "" {
			t.Fatalf("wrapped %s: %+v", path, s)
		}
		return s.WrapInfo.Token
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "role-id"), roleID.Data["role_id"].(string))
	sidFile := filepath.Join(dir, "secret-id")
	method := func() Method {
		t.Helper()
		m, err := NewLogin("approle", "", map[string]*Credential{
			"role_id":   FileCredential(filepath.Join(dir, "role-id")),
			"secret_id": {File: sidFile, Remove: true, UnwrapPath: "auth/approle/role/job/secret-id"},
		})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}

	m := method()
	writeFile(t, sidFile, wrap("auth/approle/role/job/secret-id")+"\n")
	first, err := m.Login(ctx, anon)
	if err != nil || first.Value.IsEmpty() {
		t.Fatalf("login with a wrapped secret id: %+v %v", first, err)
	}
	if _, err := os.Stat(sidFile); !errors.Is(err, os.ErrNotExist) {
		t.Error("the wrapping token's file is still there after the login")
	}
	second, err := m.Login(ctx, anon)
	if err != nil || second.Value.Equal(first.Value) {
		t.Fatalf("second login, from the unwrapped secret id: %+v %v", second, err)
	}

	// Created at another path: refused, and still unwrappable.
	other := wrap("auth/approle/role/other/secret-id")
	writeFile(t, sidFile, other)
	_, err = method().Login(ctx, anon)
	if err == nil || !strings.Contains(err.Error(), `was created at "auth/approle/role/other/secret-id"`) {
		t.Fatalf("login with another path's wrapping token: %v", err)
	}
	if strings.Contains(err.Error(), other) {
		t.Fatal("the wrapping token is in the error")
	}
	if _, err := anon.Logical().Write(ctx, "sys/wrapping/lookup", map[string]any{"token": other}); err != nil {
		t.Fatalf("the refused wrapping token was spent: %v", err)
	}

	// Spent (unwrapped by someone else first): an error, not a login.
	spent := wrap("auth/approle/role/job/secret-id")
	if _, err := anon.WithToken(spent).Logical().Write(ctx, "sys/wrapping/unwrap", nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, sidFile, spent)
	if _, err := method().Login(ctx, anon); err == nil {
		t.Fatal("login with a spent wrapping token")
	}
}
