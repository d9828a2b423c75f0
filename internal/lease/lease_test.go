package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
)

func TestRegisterLookup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		req        RegisterRequest
		wantErr    error
		wantPrefix string        // of the id
		wantTTL    time.Duration // expire - issue; 0 for never
	}{
		{name: "secret", req: RegisterRequest{Kind: KindSecret, Path: "database/creds/ro", TTL: time.Hour, Renewable: true}, wantPrefix: "database/creds/ro/", wantTTL: time.Hour},
		{name: "secret path with slash", req: RegisterRequest{Kind: KindSecret, Path: "kv/x/", TTL: time.Minute}, wantPrefix: "kv/x/", wantTTL: time.Minute},
		{name: "ttl capped by max ttl", req: RegisterRequest{Kind: KindSecret, Path: "p", TTL: 3 * time.Hour, MaxTTL: time.Hour}, wantPrefix: "p/", wantTTL: time.Hour},
		{name: "never expires", req: RegisterRequest{Kind: KindSecret, Path: "p"}, wantPrefix: "p/"},
		{name: "no ttl but max ttl", req: RegisterRequest{Kind: KindSecret, Path: "p", MaxTTL: time.Hour}, wantPrefix: "p/", wantTTL: time.Hour},
		{name: "token", req: RegisterRequest{Kind: KindToken, Path: "auth/approle/login", ID: "auth/approle/login/h1", TTL: time.Hour, TokenKey: "h1"}, wantPrefix: "auth/approle/login/h1", wantTTL: time.Hour},
		{name: "token without id", req: RegisterRequest{Kind: KindToken, Path: "auth/token/create"}, wantErr: ErrInvalid},
		{name: "secret with id", req: RegisterRequest{Kind: KindSecret, Path: "p", ID: "p/x"}, wantErr: ErrInvalid},
		{name: "bad kind", req: RegisterRequest{Kind: "other", Path: "p"}, wantErr: ErrInvalid},
		{name: "empty path", req: RegisterRequest{Kind: KindSecret}, wantErr: ErrInvalid},
		{name: "relative path", req: RegisterRequest{Kind: KindSecret, Path: "a/../b"}, wantErr: ErrInvalid},
		{name: "double slash", req: RegisterRequest{Kind: KindSecret, Path: "a//b"}, wantErr: ErrInvalid},
		{name: "negative ttl", req: RegisterRequest{Kind: KindSecret, Path: "p", TTL: -time.Second}, wantErr: ErrInvalid},
		{name: "unserialisable data", req: RegisterRequest{Kind: KindSecret, Path: "p", Data: map[string]any{"f": func() {}}}, wantErr: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			ctx := t.Context()
			l, err := f.m.Register(ctx, tc.req)
			if tc.name == "unserialisable data" {
				if err == nil {
					t.Fatal("Register accepted data that cannot be stored")
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Register: err = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if !strings.HasPrefix(l.ID, tc.wantPrefix) {
				t.Errorf("id %q, want prefix %q", l.ID, tc.wantPrefix)
			}
			if tc.req.Kind == KindSecret && len(l.ID) != len(tc.wantPrefix)+idSuffixLen {
				t.Errorf("id %q: want a %d-character random suffix", l.ID, idSuffixLen)
			}
			got, err := f.m.Lookup(ctx, l.ID)
			if err != nil {
				t.Fatal(err)
			}
			if ttl := got.ExpireTime.Sub(got.IssueTime); got.ExpireTime.IsZero() && tc.wantTTL != 0 || !got.ExpireTime.IsZero() && ttl != tc.wantTTL {
				t.Errorf("expire %v issue %v: want ttl %v", got.ExpireTime, got.IssueTime, tc.wantTTL)
			}
			if !got.IssueTime.Equal(epoch) || got.Kind != tc.req.Kind || got.Renewable != tc.req.Renewable ||
				got.TokenKey != tc.req.TokenKey || got.Path != strings.TrimSuffix(tc.req.Path, "/") {
				t.Errorf("Lookup = %+v, want the registered fields", *got)
			}
			if got.TTL(f.clk.Now()) != tc.wantTTL {
				t.Errorf("TTL = %v, want %v", got.TTL(f.clk.Now()), tc.wantTTL)
			}
		})
	}
}

func TestRegisterDataRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	l := f.register(RegisterRequest{Path: "database/creds/ro", TTL: time.Hour, TokenKey: "tok",
		InternalData: map[string]any{"username": "v-ro-1", "n": 3},
		Data:         map[string]any{"password": "hunter2"}})
	got, err := f.m.Lookup(t.Context(), l.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.InternalData["username"] != "v-ro-1" || got.InternalData["n"] != json.Number("3") || got.Data["password"] != "hunter2" {
		t.Errorf("data after storage: %#v %#v", got.InternalData, got.Data)
	}
	want := []string{"id/" + l.ID, "token/tok/" + strings.ReplaceAll(l.ID, "/", "%2F")}
	if keys := f.mem.Keys(); !slices.Equal(keys, want) {
		t.Errorf("storage keys = %q, want %q", keys, want)
	}
}

func TestRegisterTokenTwice(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	req := RegisterRequest{Kind: KindToken, Path: "auth/token/create", ID: "auth/token/create/h", TTL: time.Hour, TokenKey: "h"}
	f.register(req)
	if _, err := f.m.Register(t.Context(), req); !errors.Is(err, ErrExists) {
		t.Fatalf("second Register: %v, want ErrExists", err)
	}
}

func TestLeaseNeverPrintsData(t *testing.T) {
	t.Parallel()
	l := &Lease{ID: "db/creds/x/1", Kind: KindSecret, Data: map[string]any{"password": "hunter2"}, InternalData: map[string]any{"k": "hunter2"}}
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "lease", l)
	for _, s := range []string{fmt.Sprint(l), fmt.Sprintf("%v %+v %#v %s", l, l, l, l), logged.String()} {
		if strings.Contains(s, "hunter2") {
			t.Errorf("secret printed: %s", s)
		}
		if !strings.Contains(s, l.ID) {
			t.Errorf("id not printed: %s", s)
		}
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ro1 := f.register(RegisterRequest{Path: "database/creds/ro", TTL: time.Hour})
	ro2 := f.register(RegisterRequest{Path: "database/creds/ro", TTL: time.Hour})
	f.register(RegisterRequest{Path: "database/creds/rw", TTL: time.Hour})
	f.register(RegisterRequest{Path: "kv/x", TTL: time.Hour})
	suffix := func(id string) string { return id[strings.LastIndexByte(id, '/')+1:] }
	ros := []string{suffix(ro1.ID), suffix(ro2.ID)}
	slices.Sort(ros)
	tests := []struct {
		prefix  string
		want    []string
		wantErr error
	}{
		{"", []string{"database/", "kv/"}, nil},
		{"database/creds", []string{"ro/", "rw/"}, nil},
		{"database/creds/", []string{"ro/", "rw/"}, nil},
		{"database/creds/ro/", ros, nil},
		{"nothing/", []string{}, nil},
		{"../x", nil, ErrInvalid},
	}
	for _, tc := range tests {
		got, err := f.m.List(t.Context(), tc.prefix)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("List(%q): %v, want %v", tc.prefix, err, tc.wantErr)
			continue
		}
		if err == nil && !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func TestRenew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		req       RegisterRequest
		wait      time.Duration // before renewing
		increment time.Duration
		setup     func(f *fixture, l *Lease)
		wantErr   error
		wantTTL   time.Duration // after the renewal, from now
	}{
		{name: "increment", req: RegisterRequest{Path: "p", TTL: time.Hour, MaxTTL: 3 * time.Hour, Renewable: true}, wait: 30 * time.Minute, increment: 2 * time.Hour, wantTTL: 2 * time.Hour},
		{name: "default increment", req: RegisterRequest{Path: "p", TTL: time.Minute, Renewable: true}, wantTTL: time.Hour},
		{name: "capped by max ttl", req: RegisterRequest{Path: "p", TTL: time.Hour, MaxTTL: 3 * time.Hour, Renewable: true}, wait: 30 * time.Minute, increment: 5 * time.Hour, wantTTL: 150 * time.Minute},
		{name: "not renewable", req: RegisterRequest{Path: "p", TTL: time.Hour}, wantErr: ErrNotRenewable},
		{name: "token lease", req: RegisterRequest{Kind: KindToken, Path: "auth/x/login", ID: "auth/x/login/h", TTL: time.Hour, Renewable: true}, wantErr: ErrTokenLease},
		{
			name: "expired", req: RegisterRequest{Path: "p", TTL: time.Minute, Renewable: true}, wait: time.Minute, wantErr: ErrExpired,
			// Keep the expired lease around: its revocation fails.
			setup: func(f *fixture, _ *Lease) { f.rv.setFail(func(*Lease) error { return errors.New("backend down") }) },
		},
		{name: "not found", req: RegisterRequest{Path: "p", TTL: time.Hour, Renewable: true}, setup: func(f *fixture, l *Lease) {
			if err := f.m.Revoke(context.Background(), l.ID, false); err != nil {
				f.t.Fatal(err)
			}
		}, wantErr: ErrNotFound},
		{name: "renewer error", req: RegisterRequest{Path: "p", TTL: time.Hour, Renewable: true}, setup: func(f *fixture, _ *Lease) {
			f.rn.err = errors.New("role deleted")
		}, wantErr: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			l := f.register(tc.req)
			if tc.setup != nil {
				tc.setup(f, l)
			}
			f.advance(tc.wait)
			got, err := f.m.Renew(t.Context(), l.ID, tc.increment)
			if tc.name == "renewer error" {
				if err == nil || !strings.Contains(err.Error(), "role deleted") {
					t.Fatalf("Renew: %v, want the renewer's error", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Renew: %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			now := f.clk.Now()
			if ttl := got.TTL(now); ttl != tc.wantTTL || !got.LastRenewal.Equal(now) {
				t.Errorf("after renew: ttl %v last renewal %v, want %v at %v", ttl, got.LastRenewal, tc.wantTTL, now)
			}
			stored, err := f.m.Lookup(t.Context(), l.ID)
			if err != nil || !stored.ExpireTime.Equal(got.ExpireTime) {
				t.Fatalf("stored lease %v, %v: want expire %v", stored, err, got.ExpireTime)
			}
			if f.rn.got[len(f.rn.got)-1] != tc.increment {
				t.Errorf("renewer got increment %v, want %v", f.rn.got, tc.increment)
			}
			// The lease now expires at the new time, not the old one.
			f.advance(tc.wantTTL - time.Second)
			if f.rv.count(l.ID) != 0 {
				t.Fatal("revoked before its renewed expiry")
			}
			f.advance(time.Second)
			if !f.rv.revoked(l.ID) || f.exists(l.ID) {
				t.Fatal("not revoked at its renewed expiry")
			}
		})
	}
}

func TestExtend(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	l := f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login", ID: "auth/k/login/h", TTL: time.Hour, MaxTTL: 2 * time.Hour, TokenKey: "h"})
	ctx := t.Context()
	f.advance(30 * time.Minute)
	got, err := f.m.Extend(ctx, l.ID, f.clk.Now().Add(time.Hour))
	if err != nil || !got.ExpireTime.Equal(epoch.Add(90*time.Minute)) || !got.LastRenewal.Equal(f.clk.Now()) {
		t.Fatalf("Extend = %v, %v", got, err)
	}
	got, err = f.m.Extend(ctx, l.ID, f.clk.Now().Add(5*time.Hour))
	if err != nil || !got.ExpireTime.Equal(epoch.Add(2*time.Hour)) {
		t.Fatalf("Extend past max ttl = %v, %v; want capped at issue+2h", got, err)
	}
	if _, err := f.m.Extend(ctx, l.ID, time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Extend(zero) = %v, want ErrInvalid", err)
	}
	f.advance(30 * time.Minute) // the original expiry
	if f.rv.count(l.ID) != 0 {
		t.Fatal("revoked at the original expiry")
	}
	f.advance(time.Hour)
	if !f.rv.revoked(l.ID) {
		t.Fatal("not revoked at the extended expiry")
	}
	if _, err := f.m.Extend(ctx, l.ID, f.clk.Now().Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Errorf("Extend after revocation = %v, want ErrNotFound", err)
	}
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	l := f.register(RegisterRequest{Path: "database/creds/ro", TTL: time.Hour, TokenKey: "tok"})
	if err := f.m.Revoke(ctx, l.ID, false); err != nil {
		t.Fatal(err)
	}
	if f.rv.count(l.ID) != 1 || f.exists(l.ID) || len(f.mem.Keys()) != 0 {
		t.Fatalf("after revoke: calls %d, keys %q", f.rv.count(l.ID), f.mem.Keys())
	}
	if err := f.m.Revoke(ctx, l.ID, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Revoke = %v, want ErrNotFound", err)
	}
	if s := f.m.Stats(); s.Scheduled != 0 {
		t.Errorf("revoked lease still scheduled: %+v", s)
	}

	// A failing mount: the error comes back and the lease stays; force
	// deletes it anyway.
	l = f.register(RegisterRequest{Path: "database/creds/ro", TTL: time.Hour, TokenKey: "tok"})
	f.rv.setFail(func(*Lease) error { return errors.New("connection refused") })
	if err := f.m.Revoke(ctx, l.ID, false); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Revoke with failing mount = %v", err)
	}
	if !f.exists(l.ID) {
		t.Fatal("failed revocation deleted the lease")
	}
	if err := f.m.Revoke(ctx, l.ID, true); err != nil {
		t.Fatalf("forced Revoke = %v", err)
	}
	if f.exists(l.ID) || len(f.mem.Keys()) != 0 {
		t.Fatalf("forced revoke left %q", f.mem.Keys())
	}
}

func TestRevokeAsync(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *Config) { c.SpreadWindow = time.Hour }) // async revocations are not jittered
	ctx := t.Context()
	l := f.register(RegisterRequest{Path: "p", TTL: time.Hour})
	never := f.register(RegisterRequest{Path: "p"})
	for _, id := range []string{l.ID, never.ID} {
		if err := f.m.RevokeAsync(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	waitIdle(t, f.m)
	if !f.rv.revoked(l.ID) || !f.rv.revoked(never.ID) || len(f.mem.Keys()) != 0 {
		t.Fatalf("async revocation did not happen: keys %q", f.mem.Keys())
	}
	if err := f.m.RevokeAsync(ctx, l.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeAsync of a revoked lease = %v", err)
	}
}

func TestRevokeAsyncPersists(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.rv.setFail(func(*Lease) error { return errors.New("down") })
	l := f.register(RegisterRequest{Path: "p", TTL: time.Hour})
	if err := f.m.RevokeAsync(t.Context(), l.ID); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, f.m)
	got, err := f.m.Lookup(t.Context(), l.ID)
	if err != nil || !got.ExpireTime.Equal(epoch) || got.RevokeAttempts != 1 {
		t.Fatalf("queued lease = %+v, %v; want expire now and one attempt", got, err)
	}
	// After a restart the queued revocation is still due.
	f.rv.setFail(nil)
	f.restart()
	f.advance(DefaultRetryInitial)
	if f.exists(l.ID) {
		t.Fatal("queued revocation lost across a restart")
	}
}

func TestRevokePrefix(t *testing.T) {
	t.Parallel()
	for _, async := range []bool{false, true} {
		t.Run(fmt.Sprintf("async=%v", async), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			ctx := t.Context()
			exact := f.register(RegisterRequest{Kind: KindToken, Path: "a", ID: "a/b", TTL: time.Hour, TokenKey: "x"})
			in := []*Lease{
				exact,
				f.register(RegisterRequest{Path: "a/b", TTL: time.Hour}),
				f.register(RegisterRequest{Path: "a/b/c", TTL: time.Hour}),
				f.register(RegisterRequest{Path: "a/b/c/d"}),
			}
			out := []*Lease{
				f.register(RegisterRequest{Path: "a/bc", TTL: time.Hour}),
				f.register(RegisterRequest{Path: "a", TTL: time.Hour}),
			}
			var err error
			if async {
				err = f.m.RevokePrefixAsync(ctx, "a/b/")
				waitIdle(t, f.m)
			} else {
				err = f.m.RevokePrefix(ctx, "a/b/", false)
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range in {
				if f.rv.count(l.ID) != 1 || f.exists(l.ID) {
					t.Errorf("%s: calls %d, exists %v; want revoked", l.ID, f.rv.count(l.ID), f.exists(l.ID))
				}
			}
			for _, l := range out {
				if f.rv.count(l.ID) != 0 || !f.exists(l.ID) {
					t.Errorf("%s: revoked, but it is outside the prefix", l.ID)
				}
			}
		})
	}
}

func TestRevokePrefixForce(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	var ids []string
	for range 5 {
		ids = append(ids, f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Hour}).ID)
	}
	f.rv.setFail(func(l *Lease) error { return errors.New("cannot drop role") })
	err := f.m.RevokePrefix(ctx, "db/creds", false)
	if err == nil || !strings.Contains(err.Error(), "5 failed") {
		t.Fatalf("RevokePrefix with failing mount = %v, want 5 failures", err)
	}
	for _, id := range ids {
		if !f.exists(id) {
			t.Fatalf("%s deleted though its revocation failed", id)
		}
	}
	if err := f.m.RevokePrefix(ctx, "db/creds", true); err != nil {
		t.Fatalf("revoke-force = %v", err)
	}
	if keys := f.mem.Keys(); len(keys) != 0 {
		t.Fatalf("revoke-force left %q", keys)
	}
	for _, p := range []string{"", "/", "a//b"} {
		if err := f.m.RevokePrefix(ctx, p, true); !errors.Is(err, ErrInvalid) {
			t.Errorf("RevokePrefix(%q) = %v, want ErrInvalid", p, err)
		}
	}
}

func TestRevokeByTokenUsesIndex(t *testing.T) {
	t.Parallel()
	var cs *countingStorage
	f := newFixture(t, func(c *Config) {
		cs = &countingStorage{Storage: c.Storage}
		c.Storage = cs
	})
	ctx := t.Context()
	tokenA := f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login", ID: "auth/k/login/ha", TTL: time.Hour, TokenKey: "h/a"})
	var ownedA, ownedB []*Lease
	for range 3 {
		ownedA = append(ownedA, f.register(RegisterRequest{Path: "database/creds/ro", TTL: time.Hour, TokenKey: "h/a"}))
	}
	for range 2 {
		ownedB = append(ownedB, f.register(RegisterRequest{Path: "database/creds/ro", TTL: time.Hour, TokenKey: "hb"}))
	}
	f.register(RegisterRequest{Path: "kv/x", TTL: time.Hour})
	// The token's own lease has no index entry: the index lists only
	// the secrets it owns.
	if keys := f.keys("token/h%2Fa/"); len(keys) != len(ownedA) {
		t.Fatalf("token index = %q, want the %d secret leases only", keys, len(ownedA))
	}

	cs.reset()
	if err := f.m.RevokeByToken(ctx, "h/a", tokenA.ID); err != nil {
		t.Fatal(err)
	}
	cs.mu.Lock()
	lists, gets := slices.Clone(cs.lists), slices.Clone(cs.gets)
	cs.mu.Unlock()
	if want := []string{"token/h%2Fa/"}; !slices.Equal(lists, want) {
		t.Errorf("RevokeByToken listed %q, want only %q", lists, want)
	}
	for _, k := range gets {
		if !strings.HasPrefix(k, "id/auth/k/login/ha") && !slices.ContainsFunc(ownedA, func(l *Lease) bool { return k == "id/"+l.ID }) {
			t.Errorf("RevokeByToken read %q, which the token does not own", k)
		}
	}
	waitIdle(t, f.m)
	for _, l := range ownedA {
		if f.rv.count(l.ID) != 1 || f.exists(l.ID) {
			t.Errorf("%s owned by the token: calls %d", l.ID, f.rv.count(l.ID))
		}
	}
	if f.rv.count(tokenA.ID) != 0 || f.exists(tokenA.ID) {
		t.Errorf("the token's own lease: calls %d, exists %v; want deleted without a Revoker call", f.rv.count(tokenA.ID), f.exists(tokenA.ID))
	}
	for _, l := range ownedB {
		if f.rv.count(l.ID) != 0 || !f.exists(l.ID) {
			t.Errorf("%s of another token revoked", l.ID)
		}
	}
	if keys := f.keys("token/h%2Fa/"); len(keys) != 0 {
		t.Errorf("index left behind: %q", keys)
	}
	if err := f.m.RevokeByToken(ctx, "", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("RevokeByToken(\"\") = %v", err)
	}
	if err := f.m.RevokeByToken(ctx, "hb", "a//b"); !errors.Is(err, ErrInvalid) {
		t.Errorf("RevokeByToken with a malformed own lease id = %v", err)
	}
}

// TestRevokeByTokenOwnLease: the token's own lease is deleted whether an
// earlier version indexed it or not, and only if it is that token's.
func TestRevokeByTokenOwnLease(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	plain := f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login", ID: "auth/k/login/h1", TTL: time.Hour, TokenKey: "h1"})
	old := f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login", ID: "auth/k/login/h2", TTL: time.Hour, TokenKey: "h2"})
	// As earlier versions wrote it.
	if err := f.mem.Put(ctx, tokenIndexKey("h2", old.ID), []byte{}); err != nil {
		t.Fatal(err)
	}
	other := f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login", ID: "auth/k/login/h3", TTL: time.Hour, TokenKey: "h3"})
	secret := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Hour, TokenKey: "h5"})

	if err := f.m.RevokeByToken(ctx, "h1", plain.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.m.RevokeByToken(ctx, "h2", old.ID); err != nil {
		t.Fatal(err)
	}
	// Another token's lease, or a secret lease, named as a token's own:
	// left alone.
	if err := f.m.RevokeByToken(ctx, "h9", other.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.m.RevokeByToken(ctx, "h4", secret.ID); err != nil {
		t.Fatal(err)
	}
	waitIdle(t, f.m)
	for _, l := range []*Lease{plain, old} {
		if f.exists(l.ID) || f.rv.count(l.ID) != 0 {
			t.Errorf("%s: exists %v, %d Revoker calls; want deleted without one", l.ID, f.exists(l.ID), f.rv.count(l.ID))
		}
	}
	if keys := f.keys("token/h2/"); len(keys) != 0 {
		t.Errorf("the old index entry was left: %q", keys)
	}
	if !f.exists(other.ID) || !f.exists(secret.ID) {
		t.Errorf("a lease that was not the token's own went: %v %v", f.exists(other.ID), f.exists(secret.ID))
	}
	if err := f.m.RevokeByToken(ctx, "h1", plain.ID); err != nil {
		t.Errorf("revoking again = %v, want nil", err)
	}
}

func TestTokenKeys(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login", ID: "auth/k/login/h1", TTL: time.Hour, TokenKey: "h1"})
	f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login/r", ID: "auth/k/login/r/h2", TTL: time.Hour, TokenKey: "h2"})
	f.register(RegisterRequest{Kind: KindToken, Path: "auth/k2/login", ID: "auth/k2/login/h3", TTL: time.Hour, TokenKey: "h3"})
	f.register(RegisterRequest{Path: "auth/k/creds", TTL: time.Hour, TokenKey: "h1"})
	var got []string
	if err := f.m.TokenKeys(ctx, "auth/k/", func(key string) error {
		got = append(got, key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if want := []string{"h1", "h2"}; !slices.Equal(got, want) {
		t.Errorf("TokenKeys(auth/k) = %q, want %q (whole segments, tokens only)", got, want)
	}
	// A failure for one token does not stop the others.
	calls := 0
	err := f.m.TokenKeys(ctx, "auth", func(string) error {
		calls++
		return errors.New("revocation failed")
	})
	if calls != 3 || err == nil || !strings.Contains(err.Error(), "3 failed") {
		t.Errorf("TokenKeys with failures: %d calls, %v", calls, err)
	}
	if err := f.m.TokenKeys(ctx, "", func(string) error { return nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("TokenKeys(\"\") = %v, want ErrInvalid", err)
	}
}

// TestRevokeTokenFromRevoker: revoking a token lease makes core revoke the
// token, which calls RevokeByToken from inside the Revoker.
func TestRevokeTokenFromRevoker(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"expiry", "sync", "prefix"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, nil)
			f.rv.setHook(func(ctx context.Context, l *Lease) error {
				if l.Kind == KindToken {
					return f.m.RevokeByToken(ctx, l.TokenKey, l.ID)
				}
				return nil
			})
			tok := f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login", ID: "auth/k/login/h", TTL: time.Minute, TokenKey: "h"})
			s1 := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Hour, TokenKey: "h"})
			s2 := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Hour, TokenKey: "h"})
			switch how {
			case "expiry":
				f.advance(time.Minute)
			case "sync":
				if err := f.m.Revoke(t.Context(), tok.ID, false); err != nil {
					t.Fatal(err)
				}
				waitIdle(t, f.m)
			case "prefix":
				if err := f.m.RevokePrefix(t.Context(), "auth/k", false); err != nil {
					t.Fatal(err)
				}
				waitIdle(t, f.m)
			}
			for _, l := range []*Lease{tok, s1, s2} {
				if f.rv.count(l.ID) != 1 || f.exists(l.ID) {
					t.Errorf("%s: %d revocations, exists %v; want exactly one and gone", l.ID, f.rv.count(l.ID), f.exists(l.ID))
				}
			}
			if keys := f.mem.Keys(); len(keys) != 0 {
				t.Errorf("left behind: %q", keys)
			}
		})
	}
}

func TestTidy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	kept := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Hour, TokenKey: "tok"})
	lost := f.register(RegisterRequest{Path: "db/creds/ro", TTL: time.Hour, TokenKey: "tok"})
	// Tokens' own leases: one as written now (no index entry, and tidy
	// must not add one), one with the entry earlier versions wrote.
	tokNew := f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login", ID: "auth/k/login/t1", TTL: time.Hour, TokenKey: "t1"})
	tokOld := f.register(RegisterRequest{Kind: KindToken, Path: "auth/k/login", ID: "auth/k/login/t2", TTL: time.Hour, TokenKey: "t2"})
	// A crash lost an index entry, left two dangling ones and an entry
	// that names the wrong token.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.mem.Delete(ctx, tokenIndexKey("tok", lost.ID)))
	must(f.mem.Put(ctx, tokenIndexKey("tok", "db/creds/ro/gone"), nil))
	must(f.mem.Put(ctx, irrevocableKey("db/creds/ro/gone"), nil))
	must(f.mem.Put(ctx, tokenIndexKey("other", kept.ID), nil))
	must(f.mem.Put(ctx, "token/%zz/x", nil))
	must(f.mem.Put(ctx, recordKey("db/creds/ro/junk"), []byte("{not json")))
	must(f.mem.Put(ctx, tokenIndexKey("t2", tokOld.ID), nil))

	res, err := f.m.Tidy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := TidyResult{Leases: 5, Unreadable: 1, IndexRemoved: 4, IndexRestored: 1}
	if res != want {
		t.Errorf("Tidy = %+v, want %+v", res, want)
	}
	wantKeys := []string{
		recordKey(kept.ID), recordKey("db/creds/ro/junk"), recordKey(lost.ID),
		tokenIndexKey("tok", kept.ID), tokenIndexKey("tok", lost.ID),
		recordKey(tokNew.ID), recordKey(tokOld.ID), tokenIndexKey("t2", tokOld.ID),
	}
	slices.Sort(wantKeys)
	if keys := f.mem.Keys(); !slices.Equal(keys, wantKeys) {
		t.Errorf("after tidy: %q, want %q", keys, wantKeys)
	}
	res, err = f.m.Tidy(ctx)
	if err != nil || res != (TidyResult{Leases: 5, Unreadable: 1}) {
		t.Errorf("second Tidy = %+v, %v; want nothing to repair", res, err)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	m, err := New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lookup(ctx, "x/y"); !errors.Is(err, ErrStopped) {
		t.Errorf("Lookup before Start = %v", err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err == nil {
		t.Error("second Start succeeded")
	}
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Stop(ctx); err != nil {
		t.Errorf("second Stop = %v", err)
	}
	if _, err := m.Register(ctx, RegisterRequest{Kind: KindSecret, Path: "p"}); !errors.Is(err, ErrStopped) {
		t.Errorf("Register after Stop = %v", err)
	}
	if err := m.Start(ctx); !errors.Is(err, ErrStopped) {
		t.Errorf("Start after Stop = %v", err)
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without storage and revoker succeeded")
	}
}

func TestPlainStorage(t *testing.T) {
	t.Parallel()
	// Without transactions, writes are ordered: indexes first on create,
	// last on delete.
	f := newFixture(t, func(c *Config) { c.Storage = plainStorage{c.Storage} })
	if f.m.tx != nil {
		t.Fatal("plainStorage exposes transactions")
	}
	l := f.register(RegisterRequest{Path: "p", TTL: time.Minute, TokenKey: "t"})
	if len(f.mem.Keys()) != 2 {
		t.Fatalf("keys %q", f.mem.Keys())
	}
	f.advance(time.Minute)
	if !f.rv.revoked(l.ID) || len(f.mem.Keys()) != 0 {
		t.Fatalf("after expiry: %q", f.mem.Keys())
	}
}

// TestPrepareCommitAbort checks the two-step registration: Prepare writes
// nothing and holds the lease's claim; Commit after the caller's write
// schedules the lease, which then expires as a registered one; Abort
// forgets it; a token lease's id is checked unless NewID; Stop waits for
// a prepared lease.
func TestPrepareCommitAbort(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	ctx := t.Context()
	req := RegisterRequest{Kind: KindToken, Path: "auth/approle/login", ID: "auth/approle/login/h1", TTL: time.Hour, TokenKey: "h1", NewID: true}

	p, err := f.m.Prepare(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if keys := f.mem.Keys(); len(keys) != 0 {
		t.Fatalf("Prepare wrote %q", keys)
	}
	// The claim is held: a revocation of the id waits for the commit.
	revoked := make(chan error, 1)
	go func() { revoked <- f.m.Revoke(ctx, req.ID, false) }()
	if err := logical.ApplyOps(ctx, f.mem, p.Ops()); err != nil {
		t.Fatal(err)
	}
	l := p.Commit()
	if l.ID != req.ID || l.ExpireTime != epoch.Add(time.Hour) {
		t.Fatalf("committed %+v", l)
	}
	if err := <-revoked; err != nil {
		t.Fatalf("revoke after commit: %v", err)
	}
	if !f.rv.revoked(req.ID) || f.exists(req.ID) {
		t.Fatal("the committed lease was not revoked")
	}

	// Committed, it expires on time.
	req.ID, req.TokenKey = "auth/approle/login/h2", "h2"
	p, err = f.m.Prepare(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := logical.ApplyOps(ctx, f.mem, p.Ops()); err != nil {
		t.Fatal(err)
	}
	p.Commit()
	f.advance(time.Hour)
	if !f.rv.revoked(req.ID) || f.exists(req.ID) {
		t.Fatal("the committed lease did not expire")
	}

	// Aborted, nothing is known of it, and its id is free again.
	req.ID, req.TokenKey = "auth/approle/login/h3", "h3"
	p, err = f.m.Prepare(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	p.Abort()
	if slices.Contains(f.m.IDs(), req.ID) || len(f.mem.Keys()) != 0 {
		t.Fatalf("an aborted lease is known: %q %q", f.m.IDs(), f.mem.Keys())
	}
	f.register(RegisterRequest{Kind: KindToken, Path: req.Path, ID: req.ID, TTL: time.Hour, TokenKey: req.TokenKey})

	// Without NewID, a taken id is refused; with it the caller vouches
	// that the id is new, and storage is not read.
	req.NewID = false
	if _, err := f.m.Prepare(ctx, req); !errors.Is(err, ErrExists) {
		t.Fatalf("Prepare of a taken id: %v, want ErrExists", err)
	}

	// Stop waits for a prepared lease, then refuses new ones.
	req.ID, req.TokenKey, req.NewID = "auth/approle/login/h4", "h4", true
	p, err = f.m.Prepare(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- f.m.Stop(context.Background()) }()
	select {
	case <-stopped:
		t.Fatal("Stop returned with a lease prepared")
	case <-time.After(20 * time.Millisecond):
	}
	p.Abort()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if _, err := f.m.Prepare(ctx, req); !errors.Is(err, ErrStopped) {
		t.Fatalf("Prepare after Stop: %v", err)
	}
}
