package core

import (
	"context"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/clock"
	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
	"github.com/vigil-secrets/vigil/internal/storage/storagetest"
)

// credsEngine is a test secrets engine that hands out leased "users" and
// records what the pipeline asks it to revoke: a stand-in for the
// database engine, whose real version needs PostgreSQL.
type credsEngine struct {
	mu      sync.Mutex
	n       int
	revoked []string
	done    chan string
	fail    bool
	// registered lists the leases the pipeline confirmed (with the
	// request path it gave); failConfirm makes the confirmation fail.
	registered  []string
	failConfirm bool
}

func (e *credsEngine) factory(context.Context, *logical.BackendConfig) (logical.Backend, error) {
	issue := func(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
		e.mu.Lock()
		e.n++
		user := "user-" + string(rune('a'+e.n-1))
		e.mu.Unlock()
		return framework.SecretResponse("creds", map[string]any{"username": user, "password": "pw"},
			map[string]any{"username": user}, logical.Secret{TTL: time.Hour, Renewable: true}), nil
	}
	creds := &framework.SecretType{
		Type: "creds",
		Renew: func(_ context.Context, req *logical.Request) (*logical.Response, error) {
			ttl := time.Duration(0)
			if inc, ok := req.Data["increment"].(int64); ok {
				ttl = time.Duration(inc) * time.Second
			}
			return &logical.Response{Secret: &logical.Secret{TTL: ttl, Renewable: true}}, nil
		},
		Revoke: func(_ context.Context, req *logical.Request) (*logical.Response, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			if e.fail {
				return nil, errors.New("database unreachable")
			}
			user, _ := req.Secret.InternalData["username"].(string)
			e.revoked = append(e.revoked, user)
			if e.done != nil {
				e.done <- user
			}
			return nil, nil
		},
		Registered: func(_ context.Context, req *logical.Request, s *logical.Secret) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			if req.Storage == nil || s.LeaseID == "" {
				return errors.New("confirmed without storage or lease id")
			}
			if e.failConfirm {
				return errors.New("cannot take note")
			}
			e.registered = append(e.registered, req.Path+" "+s.LeaseID)
			return nil
		},
	}
	return framework.NewBackend("test creds", []*framework.Path{{
		Pattern:    "creds/(?P<role>\\w+)",
		Operations: map[logical.Operation]framework.OperationHandler{logical.ReadOperation: {Handler: issue}},
	}}, framework.WithSecrets(creds))
}

func (e *credsEngine) revokedUsers() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.revoked...)
}

func (e *credsEngine) confirmed() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.registered...)
}

// leaseFixture is an unsealed core with a fake clock and the test engine
// mounted at creds/.
func leaseFixture(t *testing.T, phys storage.Backend, clk *clock.Fake, eng *credsEngine) *fixture {
	t.Helper()
	c, err := New(Config{Storage: phys, StorageType: "inmem", Clock: clk, MaxLeaseTTL: 24 * time.Hour, DefaultLeaseTTL: time.Hour,
		Factories: map[string]logical.Factory{"creds": eng.factory}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.SealInternal(context.Background()) })
	f := &fixture{c: c, phys: phys}
	if ok, _ := c.Initialized(context.Background()); !ok {
		res, err := c.Init(context.Background(), InitRequest{SecretShares: 1, SecretThreshold: 1})
		if err != nil {
			t.Fatal(err)
		}
		f.token = res.RootToken
		f.keys = []string{hex.EncodeToString(res.Keys[0])}
	}
	return f
}

func (f *fixture) unsealWith(t *testing.T, keys []string) {
	t.Helper()
	for _, k := range keys {
		if _, err := f.c.Unseal(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLeasesThroughThePipeline(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	eng := &credsEngine{done: make(chan string, 16)}
	phys := inmem.New()
	f := leaseFixture(t, phys, clk, eng)
	f.unsealWith(t, f.keys)
	must := func(resp *logical.Response, err error) *logical.Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	must(f.do(t, logical.UpdateOperation, "sys/mounts/creds", map[string]any{"type": "creds", "config": map[string]any{"max_lease_ttl": "3h"}}))

	// A leased secret: the pipeline registers it and answers its id.
	resp := must(f.do(t, logical.ReadOperation, "creds/creds/ro", nil))
	s := resp.Secret
	if s == nil || !strings.HasPrefix(s.LeaseID, "creds/creds/ro/") || s.TTL != time.Hour || !s.Renewable {
		t.Fatalf("secret = %+v", s)
	}
	if _, leaked := resp.Data["username"]; !leaked || s.InternalData == nil {
		t.Fatalf("response = %+v", resp)
	}
	look := must(f.do(t, logical.UpdateOperation, "sys/leases/lookup", map[string]any{"lease_id": s.LeaseID})).Data
	if look["id"] != s.LeaseID || look["ttl"] != int64(3600) || look["renewable"] != true || look["last_renewal"] != nil || look["path"] != "creds/creds/ro" {
		t.Fatalf("lookup = %v", look)
	}
	keys := must(f.do(t, logical.ListOperation, "sys/leases/lookup/creds/creds/ro/", nil)).Data["keys"]
	if got := keys.([]string); len(got) != 1 || !strings.HasPrefix(s.LeaseID, "creds/creds/ro/"+got[0]) {
		t.Fatalf("list = %v", keys)
	}

	// Renewal: the mount's answer, capped by the mount's max_lease_ttl.
	clk.Advance(10 * time.Minute)
	r := must(f.do(t, logical.UpdateOperation, "sys/leases/renew", map[string]any{"lease_id": s.LeaseID, "increment": "2h"}))
	if r.Secret == nil || r.Secret.LeaseID != s.LeaseID || r.Secret.TTL != 2*time.Hour {
		t.Fatalf("renew = %+v", r.Secret)
	}
	r = must(f.do(t, logical.UpdateOperation, "sys/leases/renew/"+s.LeaseID, map[string]any{"increment": 10 * 3600}))
	if r.Secret.TTL != 3*time.Hour-10*time.Minute {
		t.Fatalf("renew past the max: ttl %v", r.Secret.TTL)
	}

	// Expiry revokes through the mount, on the fake clock.
	clk.Advance(3 * time.Hour)
	select {
	case u := <-eng.done:
		if u != "user-a" {
			t.Fatalf("revoked %q", u)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the expired lease was not revoked")
	}
	waitGone := func(id string) {
		t.Helper()
		for i := 0; i < 200; i++ {
			if _, err := f.do(t, logical.UpdateOperation, "sys/leases/lookup", map[string]any{"lease_id": id}); err != nil {
				var ce *logical.CodedError
				if errors.As(err, &ce) && ce.Status == 400 && strings.Contains(ce.Msg, "lease not found") {
					return
				}
				t.Fatalf("lookup: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
		t.Fatalf("lease %s still listed", id)
	}
	waitGone(s.LeaseID)

	// Revoke now, and revoke-prefix (sudo) for the incident button.
	a := must(f.do(t, logical.ReadOperation, "creds/creds/ro", nil)).Secret.LeaseID
	must(f.do(t, logical.UpdateOperation, "sys/leases/revoke", map[string]any{"lease_id": a}))
	if got := eng.revokedUsers(); !reflect.DeepEqual(got, []string{"user-a", "user-b"}) {
		t.Fatalf("revoked = %v", got)
	}
	<-eng.done
	b := must(f.do(t, logical.ReadOperation, "creds/creds/ro", nil)).Secret.LeaseID
	c := must(f.do(t, logical.ReadOperation, "creds/creds/rw", nil)).Secret.LeaseID
	must(f.do(t, logical.UpdateOperation, "sys/policies/acl/ops", map[string]any{"policy": `path "sys/leases/*" { capabilities = ["update"] }`}))
	if _, err := f.doAs(t, f.tokenWith(t, "ops"), logical.UpdateOperation, "sys/leases/revoke-prefix/creds", nil); !errors.Is(err, logical.ErrPermissionDenied) {
		t.Fatalf("revoke-prefix without sudo: %v", err)
	}
	must(f.do(t, logical.UpdateOperation, "sys/leases/revoke-prefix/creds", nil))
	for range 2 {
		<-eng.done
	}
	waitGone(b)
	waitGone(c)

	// Revoking a lease that is already gone succeeds (a retry must not
	// fail).
	must(f.do(t, logical.UpdateOperation, "sys/leases/revoke", map[string]any{"lease_id": a}))

	// Bad input: 400s with Vault's texts.
	for _, bad := range []struct {
		path string
		data map[string]any
		msg  string
	}{
		{"sys/leases/lookup", map[string]any{}, "missing lease ID"},
		{"sys/leases/renew", map[string]any{"lease_id": "creds/creds/ro/nosuch"}, "lease not found"},
		{"sys/leases/revoke", map[string]any{}, "missing lease ID"},
	} {
		_, err := f.do(t, logical.UpdateOperation, bad.path, bad.data)
		var ce *logical.CodedError
		if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Msg, bad.msg) {
			t.Fatalf("%s %v: %v", bad.path, bad.data, err)
		}
	}

	// Leases survive a restart and still expire on time.
	d := must(f.do(t, logical.ReadOperation, "creds/creds/ro", nil)).Secret.LeaseID
	keysBefore := f.keys
	f.c.SealInternal(ctx)
	f2 := leaseFixture(t, phys, clk, eng)
	f2.token, f2.keys = f.token, keysBefore
	f2.unsealWith(t, f2.keys)
	if _, err := f2.do(t, logical.UpdateOperation, "sys/leases/lookup", map[string]any{"lease_id": d}); err != nil {
		t.Fatalf("lookup after restart: %v", err)
	}
	// The restore runs in the background; once it is done the lease is
	// scheduled again.
	<-f2.c.leases.Restored()
	clk.Advance(2 * time.Hour)
	select {
	case <-eng.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a restored lease did not expire")
	}
}

func TestDisableRevokesMountLeases(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	eng := &credsEngine{}
	f := leaseFixture(t, inmem.New(), clk, eng)
	f.unsealWith(t, f.keys)
	if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/creds", map[string]any{"type": "creds"}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := f.do(t, logical.ReadOperation, "creds/creds/ro", nil); err != nil {
			t.Fatal(err)
		}
	}
	// While the mount cannot revoke, it cannot be disabled either.
	eng.mu.Lock()
	eng.fail = true
	eng.mu.Unlock()
	if _, err := f.do(t, logical.DeleteOperation, "sys/mounts/creds", nil); err == nil {
		t.Fatal("disabled a mount whose leases could not be revoked")
	}
	if _, ok := f.c.Mount("creds"); !ok {
		t.Fatal("the mount is gone although its leases are not")
	}
	eng.mu.Lock()
	eng.fail = false
	eng.mu.Unlock()
	if _, err := f.do(t, logical.DeleteOperation, "sys/mounts/creds", nil); err != nil {
		t.Fatal(err)
	}
	if got := eng.revokedUsers(); len(got) != 3 {
		t.Fatalf("revoked %v, want the 3 users", got)
	}
	if _, err := f.do(t, logical.ListOperation, "sys/leases/lookup/creds/", nil); !errors.Is(err, logical.ErrNotFound) {
		t.Fatalf("leases left after disable: %v", err)
	}
}

// TestLeaseConfirmation: the pipeline tells the mount once a secret's
// lease is stored; when the lease cannot be stored the secret is revoked
// through the mount at once and the mount is never told; when the mount
// cannot take note, the stored lease is revoked at once. Both failures
// fail the request and leave no lease.
func TestLeaseConfirmation(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	eng := &credsEngine{}
	phys := storagetest.NewFaulty(inmem.New())
	f := leaseFixture(t, phys, clk, eng)
	f.unsealWith(t, f.keys)
	if _, err := f.do(t, logical.UpdateOperation, "sys/mounts/creds", map[string]any{"type": "creds"}); err != nil {
		t.Fatal(err)
	}
	noLeases := func(what string) {
		t.Helper()
		if _, err := f.do(t, logical.ListOperation, "sys/leases/lookup/creds/creds/ro/", nil); !errors.Is(err, logical.ErrNotFound) {
			t.Fatalf("%s: leases listed: %v", what, err)
		}
	}

	resp, err := f.do(t, logical.ReadOperation, "creds/creds/ro", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := eng.confirmed(); !reflect.DeepEqual(got, []string{"creds/ro " + resp.Secret.LeaseID}) {
		t.Fatalf("confirmed %q, want the one lease %s", got, resp.Secret.LeaseID)
	}
	if _, err := f.do(t, logical.UpdateOperation, "sys/leases/revoke", map[string]any{"lease_id": resp.Secret.LeaseID}); err != nil {
		t.Fatal(err)
	}

	// The lease store fails: user-b is revoked before the answer.
	phys.FailWrites(func(k string) bool { return strings.HasPrefix(k, leaseView+"id/") })
	if _, err := f.do(t, logical.ReadOperation, "creds/creds/ro", nil); !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("creds with the lease store failing: %v", err)
	}
	phys.FailWrites(nil)
	if got := eng.revokedUsers(); !reflect.DeepEqual(got, []string{"user-a", "user-b"}) {
		t.Fatalf("revoked %q, want user-b revoked at once", got)
	}
	if got := eng.confirmed(); len(got) != 1 {
		t.Fatalf("a lease that was not stored was confirmed: %q", got)
	}
	noLeases("lease store failed")

	// The mount cannot take note: the stored lease (user-c) is revoked.
	eng.mu.Lock()
	eng.failConfirm = true
	eng.mu.Unlock()
	if _, err := f.do(t, logical.ReadOperation, "creds/creds/ro", nil); err == nil || !strings.Contains(err.Error(), "cannot take note") {
		t.Fatalf("creds with the confirmation failing: %v", err)
	}
	if got := eng.revokedUsers(); !reflect.DeepEqual(got, []string{"user-a", "user-b", "user-c"}) {
		t.Fatalf("revoked %q, want user-c revoked at once", got)
	}
	noLeases("confirmation failed")
}
