package watch

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/agent/lifetime"
	"github.com/vigil-secrets/vigil/internal/testcluster"
	"github.com/vigil-secrets/vigil/internal/testlog"
)

// The tests run a real in-process server and real subscriptions; only
// the waits are short (Backoff of milliseconds).

// fastBackoff keeps reconnections quick in tests.
var fastBackoff = lifetime.Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}

// The value written to secrets and checked never to reach the logs.
const value = "do-not-leak-this-value"

// hints records the hints a Watch gives, and fails the test for one given
// after Watch returned.
type hints struct {
	t        *testing.T
	mu       sync.Mutex
	got      []string
	returned bool
}

func (h *hints) hint(p string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.returned {
		h.t.Errorf("hint(%q) after Watch returned", p)
	}
	h.got = append(h.got, p)
}

func (h *hints) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.got)
}

func (h *hints) count(p string) int {
	n := 0
	for _, g := range h.list() {
		if g == p {
			n++
		}
	}
	return n
}

// waitCount waits until p was hinted n times at least.
func (h *hints) waitCount(t *testing.T, p string, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d hints of %q", n, p), func() bool { return h.count(p) >= n }, h.list)
}

// logger logs at debug level into l.
func logger(l *testlog.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// noSecrets fails if the logs hold any of the secrets.
func noSecrets(t *testing.T, l *testlog.Buffer, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(l.String(), s) {
			t.Errorf("the logs hold a secret:\n%s", l)
		}
	}
}

func waitFor(t *testing.T, what string, ok func() bool, state func() []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s; hints so far: %q", what, state())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// running is a Watch in the background.
type running struct {
	h      *hints
	cancel context.CancelFunc
	done   chan error
	// stopped is set by the first stop (the test's goroutine only).
	stopped bool
}

func start(t *testing.T, e Events, paths []string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{h: &hints{t: t}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := e.Watch(ctx, paths, r.h.hint)
		r.h.mu.Lock()
		r.h.returned = true
		r.h.mu.Unlock()
		r.done <- err
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends the Watch and checks it returned ctx's error.
func (r *running) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if r.stopped {
		return
	}
	r.stopped = true
	select {
	case err := <-r.done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}

// server is a test server with KV v2 at secret/ and its root client.
func server(t *testing.T) (*testcluster.Server, *api.Client) {
	t.Helper()
	s := testcluster.New(t, testcluster.Options{InMemory: true, MountKVv2: true})
	return s, client(t, s.URL, s.RootToken)
}

func client(t *testing.T, url, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: url, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// tokenWith creates a token with a policy of the given rules.
func tokenWith(t *testing.T, root *api.Client, name, rules string) string {
	t.Helper()
	ctx := t.Context()
	if err := root.Sys().PutPolicy(ctx, name, rules); err != nil {
		t.Fatal(err)
	}
	sec, err := root.TokenAuth().Create(ctx, api.TokenCreateRequest{Policies: []string{name}})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Auth.ClientToken
}

func put(t *testing.T, root *api.Client, path string) {
	t.Helper()
	if _, err := root.Logical().Write(t.Context(), path, map[string]any{"data": map[string]any{"v": value}}); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
}

const eventsRule = `path "sys/events/subscribe/*" { capabilities = ["read"] }`

// TestEventsHintsWatchedPaths: once subscribed, Watch hints "" and then
// the data path of each event about a watched path, and nothing for the
// others; with no paths, every event's data path; with Types, only the
// events of those types.
func TestEventsHintsWatchedPaths(t *testing.T) {
	t.Parallel()
	s, root := server(t)
	token := tokenWith(t, root, "app", eventsRule+`
path "secret/data/*" { capabilities = ["read"] }`)
	var logs testlog.Buffer
	e := Events{Client: client(t, s.URL, token), Backoff: fastBackoff, Logger: logger(&logs)}

	watched := start(t, e, []string{"secret/data/ml/openai", "/kv1/app/"})
	all := start(t, e, nil)
	e.Types = []string{"kv-v2/data-delete"}
	deletes := start(t, e, []string{"secret/data/ml/openai"})
	for _, r := range []*running{watched, all, deletes} {
		r.h.waitCount(t, "", 1)
	}

	put(t, root, "secret/data/ml/other")
	put(t, root, "secret/data/ml/openai")
	watched.h.waitCount(t, "secret/data/ml/openai", 1)
	all.h.waitCount(t, "secret/data/ml/openai", 1)
	// Events arrive in order: the other key's came first, and was not
	// hinted.
	if got := watched.h.list(); !slices.Equal(got, []string{"", "secret/data/ml/openai"}) {
		t.Errorf("watching one path: hints %q", got)
	}
	if got := all.h.list(); !slices.Equal(got, []string{"", "secret/data/ml/other", "secret/data/ml/openai"}) {
		t.Errorf("watching every path: hints %q", got)
	}

	if _, err := root.Logical().Delete(t.Context(), "secret/data/ml/openai"); err != nil {
		t.Fatal(err)
	}
	deletes.h.waitCount(t, "secret/data/ml/openai", 1)
	if got := deletes.h.list(); !slices.Equal(got, []string{"", "secret/data/ml/openai"}) {
		t.Errorf("watching deletes: hints %q (the writes are not deletes)", got)
	}

	for _, r := range []*running{watched, all, deletes} {
		r.stop(t)
	}
	noSecrets(t, &logs, token, s.RootToken, value)
}

// auditedSubscriptions counts the subscription requests in the audit log.
func auditedSubscriptions(t *testing.T, logPath string) int {
	t.Helper()
	f, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var entry struct {
			Type    string `json:"type"`
			Request struct {
				Path string `json:"path"`
			} `json:"request"`
		}
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil {
			t.Fatalf("audit log: %v", err)
		}
		if entry.Type == "request" && strings.HasPrefix(entry.Request.Path, "sys/events/subscribe/") {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEventsRefused: a token that may not subscribe is refused Refusals
// times, with backoff in between (the audit log counts the attempts),
// then Watch returns an error that names the policy rule the token needs.
// The refusals are logged at warn once, and the token never.
func TestEventsRefused(t *testing.T) {
	t.Parallel()
	s, root := server(t)
	ctx := t.Context()
	logPath := filepath.Join(t.TempDir(), "audit.log")
	if err := root.Sys().EnableAudit(ctx, "file", api.EnableAuditInput{Type: "file", Options: map[string]string{"file_path": logPath}}); err != nil {
		t.Fatal(err)
	}
	token := tokenWith(t, root, "no-events", `path "secret/data/*" { capabilities = ["read"] }`)
	var logs testlog.Buffer
	e := Events{Client: client(t, s.URL, token), Backoff: lifetime.Backoff{Min: 40 * time.Millisecond, Max: time.Second}, Refusals: 3, Logger: logger(&logs)}
	h := &hints{t: t}

	began := time.Now()
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err := e.Watch(wctx, []string{"secret/data/app"}, h.hint)
	took := time.Since(began)
	var re *RefusedError
	if !errors.Is(err, ErrRefused) || !errors.As(err, &re) || api.StatusCode(err) != 403 {
		t.Fatalf("Watch = %v, want a refusal (403)", err)
	}
	const rule = `path "sys/events/subscribe/*" { capabilities = ["read"] }`
	if !strings.Contains(err.Error(), rule) || re.PolicyRule() != rule || re.Attempts != 3 {
		t.Errorf("the error does not name the rule %s, or the attempts: %v (%d attempts)", rule, err, re.Attempts)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("the error is not one line: %q", err)
	}
	if n := auditedSubscriptions(t, logPath); n != 3 {
		t.Errorf("%d subscriptions, want 3", n)
	}
	// Two waits of the backoff, at least 30 and 60ms (less a quarter of
	// jitter): no tight loop.
	if took < 90*time.Millisecond {
		t.Errorf("3 attempts in %s: no backoff", took)
	}
	if got := h.list(); len(got) != 0 {
		t.Errorf("hints %q before any subscription opened", got)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want 1 for the streak:\n%s", n, logs.String())
	}
	noSecrets(t, &logs, token, s.RootToken)
	if strings.Contains(err.Error(), token) {
		t.Errorf("the error holds the token: %v", err)
	}

	// A refusal that is not a 403 names no policy.
	bad := &RefusedError{EventType: "x", Attempts: 1, Err: &api.ResponseError{StatusCode: 400, Errors: []string{"bad filter"}}}
	if got := bad.Error(); strings.Contains(got, "policy") || !strings.Contains(got, "(400: bad filter)") {
		t.Errorf("a 400: %q", got)
	}
}

// TestEventsOutage: when the server cannot be reached, the stream ends,
// Watch warns once and subscribes again with backoff until the server is
// back, then hints "" (what changed meanwhile was not told) and the next
// change's path. A server that seals ends the stream too (code 1012);
// Watch subscribes again once it is unsealed.
func TestEventsOutage(t *testing.T) {
	t.Parallel()
	s, root := server(t)
	proxy := testcluster.NewProxy(t, s.URL)
	var logs testlog.Buffer
	e := Events{Client: client(t, proxy.URL, s.RootToken), Backoff: fastBackoff, Logger: logger(&logs)}
	r := start(t, e, []string{"secret/data/app"})
	r.h.waitCount(t, "", 1)

	proxy.Down()
	waitFor(t, "a failed subscription", func() bool { return strings.Contains(logs.String(), "could not subscribe") }, r.h.list)
	put(t, root, "secret/data/app") // not told: no stream is open
	// Several more attempts fail meanwhile; one warning for the streak.
	waitFor(t, "more failed subscriptions", func() bool {
		return strings.Count(logs.String(), "could not subscribe") >= 4
	}, r.h.list)
	proxy.Up(t)
	r.h.waitCount(t, "", 2)
	if n := r.h.count("secret/data/app"); n != 0 {
		t.Errorf("the change made during the outage was hinted by path (%d): it must have been lost", n)
	}
	put(t, root, "secret/data/app")
	r.h.waitCount(t, "secret/data/app", 1)
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Errorf("%d warnings for one outage, want 1:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "subscribed to change events again") {
		t.Errorf("no message on recovery:\n%s", logs.String())
	}

	// The server seals: 1012; sealed, it refuses with 503, which is
	// retried.
	if err := root.Sys().Seal(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stream's end", func() bool { return strings.Contains(logs.String(), "code 1012") }, r.h.list)
	s.Unseal(t)
	r.h.waitCount(t, "", 3)
	put(t, root, "secret/data/app")
	r.h.waitCount(t, "secret/data/app", 2)
	r.stop(t)
	noSecrets(t, &logs, s.RootToken, value)
}

// TestEventsFollowsTheToken: the token set on the client is the one the
// next subscription uses. The first token sees only secret/data/a/*, the
// second only secret/data/b/*; after the client's token is replaced (and
// the first revoked), the stream opened again tells b's changes and no
// longer a's.
func TestEventsFollowsTheToken(t *testing.T) {
	t.Parallel()
	s, root := server(t)
	ctx := t.Context()
	first := tokenWith(t, root, "a", eventsRule+`
path "secret/data/a/*" { capabilities = ["read"] }`)
	second := tokenWith(t, root, "b", eventsRule+`
path "secret/data/b/*" { capabilities = ["read"] }`)
	proxy := testcluster.NewProxy(t, s.URL)
	c := client(t, proxy.URL, first)
	var logs testlog.Buffer
	r := start(t, Events{Client: c, Backoff: fastBackoff, Logger: logger(&logs)}, nil)
	r.h.waitCount(t, "", 1)

	put(t, root, "secret/data/b/x")
	put(t, root, "secret/data/a/x")
	r.h.waitCount(t, "secret/data/a/x", 1)
	if n := r.h.count("secret/data/b/x"); n != 0 {
		t.Fatal("the first token was told of a path it may not read")
	}

	c.SetToken(second)
	if err := root.TokenAuth().Revoke(ctx, first); err != nil {
		t.Fatal(err)
	}
	// The stream opened with the first token goes on until it breaks.
	proxy.Down()
	waitFor(t, "a failed subscription", func() bool { return strings.Contains(logs.String(), "could not subscribe") }, r.h.list)
	proxy.Up(t)
	r.h.waitCount(t, "", 2)
	put(t, root, "secret/data/a/y")
	put(t, root, "secret/data/b/y")
	r.h.waitCount(t, "secret/data/b/y", 1)
	if n := r.h.count("secret/data/a/y"); n != 0 {
		t.Error("the new stream was opened with the old token")
	}
	r.stop(t)
	noSecrets(t, &logs, first, second, s.RootToken, value)
}

// TestEventsNeedsAClient: a Watch without a client fails at once.
func TestEventsNeedsAClient(t *testing.T) {
	t.Parallel()
	if err := (Events{}).Watch(t.Context(), nil, func(string) {}); err == nil {
		t.Fatal("Watch without a client: no error")
	}
}
