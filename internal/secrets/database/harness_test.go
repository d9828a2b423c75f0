package database

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
	"github.com/vigil-secrets/vigil/internal/passwordpolicy"
	"github.com/vigil-secrets/vigil/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// Mount TTLs of the test engine.
const (
	mountDefaultTTL = time.Hour
	mountMaxTTL     = 24 * time.Hour
)

// testSystem is the test engine's SystemView: the mount's TTLs, and the
// server's password policies, which the test sets (setPasswordPolicy).
type testSystem struct {
	mu       sync.Mutex
	policies map[string]*passwordpolicy.Policy
}

func (*testSystem) DefaultLeaseTTL() time.Duration { return mountDefaultTTL }
func (*testSystem) MaxLeaseTTL() time.Duration     { return mountMaxTTL }

// GeneratePasswordFromPolicy implements logical.SystemView as the core
// does.
func (s *testSystem) GeneratePasswordFromPolicy(_ context.Context, name string) (string, error) {
	s.mu.Lock()
	p := s.policies[name]
	s.mu.Unlock()
	if p == nil {
		return "", fmt.Errorf("%w: %q", logical.ErrPasswordPolicyNotFound, name)
	}
	return p.Generate(), nil
}

// engine drives a database engine as the request pipeline does, over
// in-memory storage, against a database of its own on the shared test
// server. Its fake clock starts now: the database compares VALID UNTIL
// with the real time.
type engine struct {
	t   testing.TB
	b   *backend
	s   *logicaltest.Storage
	clk *clock.Fake
	db  *pgtest.DB
	// start is the fake clock's start: when the test's leases were
	// issued.
	start time.Time
	// logs holds what the engine logged (its requests and periodic runs
	// are the test's calls, one at a time); wakes counts its Wake calls.
	logs  *bytes.Buffer
	wakes atomic.Int32
	// system is the mount's SystemView, kept across backends.
	system *testSystem
	// failPuts makes every storage write fail.
	failPuts atomic.Bool
	// sent are the events the periodic work sent (BackendConfig.SendEvent).
	sentMu sync.Mutex
	sent   []logical.Event
}

// takeSent returns the events sent since the last call.
func (e *engine) takeSent() []logical.Event {
	e.sentMu.Lock()
	defer e.sentMu.Unlock()
	out := e.sent
	e.sent = nil
	return out
}

func newEngine(t testing.TB) *engine {
	t.Helper()
	return newEngineOn(t, pgtest.New(t))
}

// newEngineOn is newEngine against db (on a server of the test's own,
// which it may stop).
func newEngineOn(t testing.TB, db *pgtest.DB) *engine {
	t.Helper()
	start := time.Now()
	e := &engine{t: t, s: logicaltest.New(), clk: clock.NewFake(start), db: db, start: start, logs: &bytes.Buffer{},
		system: &testSystem{policies: map[string]*passwordpolicy.Policy{}}}
	e.b = e.newBackend()
	return e
}

// newBackend builds a backend of the engine's mount, as the core does at
// each unseal (over the same storage).
func (e *engine) newBackend() *backend {
	e.t.Helper()
	lb, err := Factory(e.t.Context(), &logical.BackendConfig{Now: e.clk.Now, System: e.system, MountPoint: "database/",
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Wake:   func() { e.wakes.Add(1) },
		SendEvent: func(ev logical.Event) {
			e.sentMu.Lock()
			e.sent = append(e.sent, ev)
			e.sentMu.Unlock()
		}})
	if err != nil {
		e.t.Fatal(err)
	}
	b := lb.(*backend)
	e.t.Cleanup(func() { b.Cleanup(context.Background()) })
	return b
}

// setPasswordPolicy writes (or, with text "", deletes) the server's
// password policy name, and returns it parsed.
func (e *engine) setPasswordPolicy(name, text string) *passwordpolicy.Policy {
	e.t.Helper()
	e.system.mu.Lock()
	defer e.system.mu.Unlock()
	if text == "" {
		delete(e.system.policies, name)
		return nil
	}
	p, err := passwordpolicy.Parse(text)
	if err != nil {
		e.t.Fatal(err)
	}
	e.system.policies[name] = p
	return p
}

// storage is the engine's storage as its requests see it.
func (e *engine) storage() logical.Storage { return faultyStorage{e.s, &e.failPuts} }

// faultyStorage fails writes while fail is set.
type faultyStorage struct {
	*logicaltest.Storage
	fail *atomic.Bool
}

var errStorageDown = errors.New("storage unavailable")

func (f faultyStorage) Put(ctx context.Context, key string, value []byte) error {
	if f.fail.Load() {
		return errStorageDown
	}
	return f.Storage.Put(ctx, key, value)
}

// call sends a request with a JSON body ("" for none); an update goes
// through the existence check first, as the pipeline sends it.
func (e *engine) call(op logical.Operation, path, body string) (*logical.Response, error) {
	e.t.Helper()
	var data map[string]any
	if body != "" {
		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			e.t.Fatalf("body %s: %v", body, err)
		}
	}
	req := &logical.Request{Operation: op, Path: path, Data: data, Storage: e.storage(), MountPoint: "database/", DisplayName: "token"}
	if op == logical.UpdateOperation {
		if checked, exists, err := e.b.ExistenceCheck(e.t.Context(), req); err != nil {
			return nil, err
		} else if checked && !exists {
			req.Operation = logical.CreateOperation
		}
	}
	return e.b.HandleRequest(e.t.Context(), req)
}

// must sends a request that must succeed.
func (e *engine) must(op logical.Operation, path, body string) *logical.Response {
	e.t.Helper()
	resp, err := e.call(op, path, body)
	if err != nil {
		e.t.Fatalf("%s %s: %v", op, path, err)
	}
	return resp
}

// refused sends a request that must fail with status and a message
// containing want; it returns the message.
func (e *engine) refused(op logical.Operation, path, body string, status int, want string) string {
	e.t.Helper()
	_, err := e.call(op, path, body)
	got, msg := logicaltest.Status(err)
	if got != status || !strings.Contains(msg, want) {
		e.t.Fatalf("%s %s: got %d %q (%v), want %d containing %q", op, path, got, msg, err, status, want)
	}
	return msg
}

// configure writes config/<name> for the test database as the superuser,
// with extra JSON fields ("" for none).
func (e *engine) configure(name, extra string) {
	e.t.Helper()
	e.must(logical.UpdateOperation, "config/"+name, e.configBody(e.db.User, e.db.Password, extra))
}

func (e *engine) configBody(user, password, extra string) string {
	body := fmt.Sprintf(`{"plugin_name":"postgresql-database-plugin","connection_url":%q,"username":%q,"password":%q,"allowed_roles":"*"`,
		e.db.TemplateURL(), user, password)
	if extra != "" {
		body += "," + extra
	}
	return body + "}"
}

// creds issues credentials of role and returns the user, password and
// the response's secret.
func (e *engine) creds(role string) (user, password string, s *logical.Secret) {
	e.t.Helper()
	resp := e.must(logical.ReadOperation, "creds/"+role, "")
	if resp.Secret == nil {
		e.t.Fatalf("creds/%s: no secret in the response", role)
	}
	user, _ = resp.Data["username"].(string)
	password, _ = resp.Data["password"].(string)
	if user == "" || password == "" {
		e.t.Fatalf("creds/%s: no username or password in %v", role, resp.Data)
	}
	e.db.DropRoleAtEnd(e.t, user)
	return user, password, resp.Secret
}

// lease sends a renewal or revocation of s as the lease manager does,
// after the lease was stored (its data through JSON).
func (e *engine) lease(op logical.Operation, s *logical.Secret, increment time.Duration) (*logical.Response, error) {
	e.t.Helper()
	raw, err := json.Marshal(s.InternalData)
	if err != nil {
		e.t.Fatal(err)
	}
	var internal map[string]any
	if err := json.Unmarshal(raw, &internal); err != nil {
		e.t.Fatal(err)
	}
	req := &logical.Request{Operation: op, Storage: e.storage(), Secret: &logical.Secret{
		Renewable: true, InternalData: internal, LeaseID: "database/creds/x/1", IssueTime: e.start,
	}}
	if op == logical.RenewOperation {
		req.Data = map[string]any{"increment": int64(increment / time.Second)}
	}
	return e.b.HandleRequest(e.t.Context(), req)
}

// noPassword fails when a stored or returned text holds one of the
// passwords.
func noPassword(t *testing.T, text string, passwords ...string) {
	t.Helper()
	for _, p := range passwords {
		if p != "" && strings.Contains(text, p) {
			t.Fatalf("a password is in %q", text)
		}
	}
}
