package token

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// TestOldFormatEntry reads a root token stored by the store before entries
// had a format version: accessor in clear, ttl 0, no expire time.
func TestOldFormatEntry(t *testing.T) {
	ctx := context.Background()
	s := logicaltest.New()
	st, err := Open(ctx, s, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	const token, accessor = "hvs.OldRootTokenOldRootToken", "OldAccessorOldAccessor01"
	d := st.hash(token)
	old := `{"accessor":"` + accessor + `","policies":["root"],"path":"auth/token/root","display_name":"root",` +
		`"creation_time":"2023-11-14T22:13:20Z","ttl":0,"type":"service"}`
	if err := s.Put(ctx, "id/"+d.String(), []byte(old)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "accessor/"+st.hash(accessor).String(), []byte(d.String())); err != nil {
		t.Fatal(err)
	}
	// An old entry with a TTL expired at creation plus TTL.
	const short = "hvs.OldShortTokenOldShortTo"
	ds := st.hash(short)
	if err := s.Put(ctx, "id/"+ds.String(), []byte(`{"accessor":"a2","policies":["default"],"path":"auth/token/create",`+
		`"display_name":"token","creation_time":"2024-05-01T09:00:00Z","ttl":7200000000000,"type":"service"}`)); err != nil {
		t.Fatal(err)
	}

	clk := t0.Add(100 * 365 * 24 * time.Hour)
	st, err = Open(ctx, s, func() time.Time { return clk })
	if err != nil {
		t.Fatal(err)
	}
	e, err := st.Lookup(ctx, tok(token))
	if err != nil {
		t.Fatalf("old root token: %v", err)
	}
	if !e.IsRoot() || e.Accessor != accessor || !e.ExpireTime.IsZero() || e.Renewable || e.Type != TypeService || !e.IsOrphan() {
		t.Fatalf("old root token decoded as %+v", e)
	}
	if e2, err := st.LookupAccessor(ctx, accessor); err != nil || e2.HashedID != e.HashedID {
		t.Fatalf("old accessor: %v", err)
	}
	data := rendered(t, lookupData(e, token, clk))
	if data["expire_time"] != nil || num(t, data, "ttl") != 0 || data["renewable"] != false {
		t.Fatalf("old root lookup: %v", data)
	}
	// The short one expired at 11:00.
	st2, _ := Open(ctx, s, func() time.Time { return t0.Add(30 * time.Minute) })
	es, err := st2.Lookup(ctx, tok(short))
	if err != nil || !es.ExpireTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("old short token before expiry: %v %v", es, err)
	}
	st3, _ := Open(ctx, s, func() time.Time { return t0.Add(time.Hour) })
	if _, err := st3.Lookup(ctx, tok(short)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("old short token after expiry: %v", err)
	}
	// A change rewrites the entry in the current format, accessor sealed.
	if err := st.RevokeOrphan(ctx, e.HashedID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Lookup(ctx, tok(token)); !errors.Is(err, ErrInvalid) {
		t.Fatal("revoked old token still valid")
	}
}

func TestCreateAndLookup(t *testing.T) {
	h := newHarness(t)
	e := &Entry{Policies: []string{"default", "dev"}, Path: "auth/token/create", DisplayName: "token-test", TTL: time.Hour}
	v, err := h.st.Create(h.ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	// A token that expires begins with its creation second, and so
	// does its accessor.
	if o := order(t0); !strings.HasPrefix(v.Reveal(), ServicePrefix+o) || len(v.Reveal()) != len(ServicePrefix)+orderLen+24 ||
		!strings.HasPrefix(e.Accessor, o) || len(e.Accessor) != orderLen+24 || !strings.HasPrefix(e.HashedID, o) {
		t.Fatalf("token shape: %d chars, accessor %d chars", len(v.Reveal()), len(e.Accessor))
	}
	if e.Accessor == "" || e.HashedID == "" || e.Type != TypeService || !e.ExpireTime.Equal(t0.Add(time.Hour)) {
		t.Fatalf("Create did not fill the entry: %+v", e)
	}
	got := h.entry(v.Reveal())
	if got.Accessor != e.Accessor || !slices.Equal(got.Policies, e.Policies) || got.HashedID != e.HashedID {
		t.Fatalf("lookup = %+v", got)
	}
	if byAcc, err := h.st.LookupAccessor(h.ctx, e.Accessor); err != nil || byAcc.HashedID != e.HashedID {
		t.Fatalf("LookupAccessor: %v", err)
	}
	if byHash, err := h.st.LookupHashed(h.ctx, e.HashedID); err != nil || byHash.Accessor != e.Accessor {
		t.Fatalf("LookupHashed: %v", err)
	}
	if got.LeaseID() != "auth/token/create/"+e.HashedID {
		t.Fatalf("LeaseID = %q", got.LeaseID())
	}
	if !slices.Contains(h.hooks.created, e.HashedID) {
		t.Fatal("TokenCreated not called")
	}
	// Expiry.
	h.clk.Advance(time.Hour)
	h.gone(v.Reveal())
	if _, err := h.st.LookupAccessor(h.ctx, e.Accessor); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired token by accessor: %v", err)
	}
	for _, bad := range []string{"", "hvs.nope", "hvb.nope", "hvb.!!!"} {
		if _, err := h.st.Lookup(h.ctx, tok(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("Lookup(%q) = %v", bad, err)
		}
	}
	if _, err := h.st.LookupHashed(h.ctx, "zz"); !errors.Is(err, ErrInvalid) {
		t.Errorf("LookupHashed(bad) = %v", err)
	}
}

func TestCreateHookFailure(t *testing.T) {
	h := newHarness(t)
	before := len(h.s.Keys())
	h.hooks.failNext = errors.New("lease manager down")
	if _, err := h.st.Create(h.ctx, &Entry{Policies: []string{"dev"}, Path: "auth/token/create", TTL: time.Hour}); err == nil {
		t.Fatal("create succeeded although its lease failed")
	}
	if n := len(h.s.Keys()); n != before {
		t.Fatalf("a failed create left %d keys, want %d: %v", n, before, h.s.Keys())
	}
}

func TestCreateChildNeedsUsableParent(t *testing.T) {
	h := newHarness(t)
	root := h.entry(h.root.Reveal())
	child := &Entry{Policies: []string{"dev"}, Path: "auth/token/create", Parent: root.HashedID, TTL: time.Hour}
	if _, err := h.st.Create(h.ctx, child); err != nil {
		t.Fatal(err)
	}
	gone := &Entry{Policies: []string{"dev"}, Path: "auth/token/create", Parent: strings.Repeat("0", 64)}
	if _, err := h.st.Create(h.ctx, gone); !errors.Is(err, ErrInvalid) {
		t.Fatalf("child of a missing parent: %v", err)
	}
}

func TestValidateID(t *testing.T) {
	for id, ok := range map[string]bool{
		"root": true, "my-token_1": true,
		"": false, "a.b": false, "hvs.x": false, "s.x": false, "hvb.x": false, "b.x": false,
		" root": false, "a b": false, "a\tb": false, "a\x00b": false,
	} {
		if err := ValidateID(id); (err == nil) != ok || (err != nil && !errors.Is(err, ErrBadID)) {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestCheckCIDR(t *testing.T) {
	e := &Entry{BoundCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}}
	for addr, ok := range map[string]bool{
		"10.1.2.3": true, "::ffff:10.1.2.3": true, "2001:db8::1": true,
		"11.0.0.1": false, "": false, "not-an-ip": false,
	} {
		if err := CheckCIDR(e, addr); (err == nil) != ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("CheckCIDR(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
	if err := CheckCIDR(&Entry{}, "anything"); err != nil {
		t.Errorf("unbound token: %v", err)
	}
}

func TestNumUses(t *testing.T) {
	h := newHarness(t)
	v, err := h.st.Create(h.ctx, &Entry{Policies: []string{"dev"}, Path: "auth/token/create", NumUses: 3, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for i := 3; i > 0; i-- {
		e := h.entry(v.Reveal())
		if e.NumUses != i {
			t.Fatalf("before use: num_uses %d, want %d", e.NumUses, i)
		}
		next, err := h.st.UseToken(h.ctx, e)
		if err != nil {
			t.Fatalf("use %d: %v", 4-i, err)
		}
		if next.Exhausted() != (i == 1) {
			t.Fatalf("use %d: exhausted=%v", 4-i, next.Exhausted())
		}
		if i == 1 {
			// The last use: lookups fail now, and the caller revokes.
			h.gone(v.Reveal())
			if _, err := h.st.UseToken(h.ctx, e); !errors.Is(err, ErrInvalid) {
				t.Fatalf("use after the last: %v", err)
			}
			if err := h.st.RevokeTree(h.ctx, next.HashedID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if h.keysUnder("id/") != nil && len(h.keysUnder("id/")) != 1 { // the root token
		t.Fatalf("exhausted token left behind: %v", h.keysUnder("id/"))
	}
}

// TestNumUsesConcurrent races many requests on one token with num_uses:
// exactly num_uses of them get through.
func TestNumUsesConcurrent(t *testing.T) {
	h := newHarness(t)
	const uses, workers, tries = 50, 16, 20
	v, err := h.st.Create(h.ctx, &Entry{Policies: []string{"dev"}, Path: "auth/token/create", NumUses: uses, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var served, last atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range tries {
				e, err := h.st.Lookup(h.ctx, v)
				if err != nil {
					continue
				}
				next, err := h.st.UseToken(h.ctx, e)
				if err != nil {
					continue
				}
				served.Add(1)
				if next.Exhausted() {
					last.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if served.Load() != uses || last.Load() != 1 {
		t.Fatalf("served %d requests (%d last), want %d (1 last)", served.Load(), last.Load(), uses)
	}
}

func TestUseTokenUnlimitedWritesNothing(t *testing.T) {
	h := newHarness(t)
	e := h.entry(h.root.Reveal())
	before := h.s.writes.Load()
	for range 100 {
		next, err := h.st.UseToken(h.ctx, e)
		if err != nil || next != e {
			t.Fatalf("UseToken: %v", err)
		}
	}
	if n := h.s.writes.Load() - before; n != 0 {
		t.Fatalf("UseToken of an unlimited token wrote %d times", n)
	}
}

// tree creates root → a → b → c and a → d, and returns their entries.
func (h *harness) tree() (a, b, c, d *Entry, toks map[string]string) {
	h.t.Helper()
	toks = map[string]string{}
	mk := func(name string, parent *Entry) *Entry {
		e := &Entry{Policies: []string{"dev"}, Path: "auth/token/create", TTL: time.Hour, Renewable: true}
		if parent != nil {
			e.Parent = parent.HashedID
		}
		v, err := h.st.Create(h.ctx, e)
		if err != nil {
			h.t.Fatal(err)
		}
		toks[name] = v.Reveal()
		return e
	}
	a = mk("a", h.entry(h.root.Reveal()))
	b = mk("b", a)
	c = mk("c", b)
	d = mk("d", a)
	return a, b, c, d, toks
}

func TestRevokeTree(t *testing.T) {
	h := newHarness(t)
	a, b, c, d, toks := h.tree()
	if err := h.st.RevokeTree(h.ctx, a.HashedID); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c", "d"} {
		h.gone(toks[name])
	}
	h.entry(h.root.Reveal())
	got := h.hooks.revokedIDs()
	if len(got) != 4 {
		t.Fatalf("RevokeLeases called for %d tokens, want 4", len(got))
	}
	pos := func(e *Entry) int { return slices.Index(got, e.HashedID) }
	if !(pos(c) < pos(b) && pos(b) < pos(a) && pos(d) < pos(a)) {
		t.Fatalf("revocation order %v: children must go before parents", got)
	}
	// Nothing is left of them: entries, accessors, indexes.
	for _, p := range []string{"parent/", "accessor/", "path/"} {
		for _, k := range h.keysUnder(p) {
			for _, e := range []*Entry{a, b, c, d} {
				if strings.Contains(k, e.HashedID) || strings.Contains(k, h.st.hash(e.Accessor).String()) {
					t.Errorf("left behind: %s", k)
				}
			}
		}
	}
	if len(h.keysUnder("id/")) != 1 {
		t.Fatalf("ids left: %v", h.keysUnder("id/"))
	}
	// Revoking again, or an unknown token, is not an error.
	if err := h.st.RevokeTree(h.ctx, a.HashedID); err != nil {
		t.Fatal(err)
	}
	if err := h.st.Revoke(h.ctx, tok("hvs.unknown")); err != nil {
		t.Fatal(err)
	}
}

func TestRevokeTreeHookFailureKeepsTokens(t *testing.T) {
	h := newHarness(t)
	a, b, c, d, toks := h.tree()
	h.hooks.failFor[b.HashedID] = errors.New("database unreachable")
	if err := h.st.RevokeTree(h.ctx, a.HashedID); err == nil {
		t.Fatal("revocation succeeded although a lease revocation failed")
	}
	h.gone(toks["c"]) // below b: revoked first
	h.entry(toks["b"])
	h.entry(toks["a"])
	_ = d
	// The retry finishes the job.
	delete(h.hooks.failFor, b.HashedID)
	if err := h.st.RevokeTree(h.ctx, a.HashedID); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c", "d"} {
		h.gone(toks[name])
	}
	if n := len(h.hooks.revokedIDs()); n != 4 {
		t.Fatalf("RevokeLeases succeeded for %d tokens, want 4", n)
	}
	_ = c
}

func TestRevokeOrphan(t *testing.T) {
	h := newHarness(t)
	a, b, _, d, toks := h.tree()
	if err := h.st.RevokeOrphan(h.ctx, a.HashedID); err != nil {
		t.Fatal(err)
	}
	h.gone(toks["a"])
	if got := h.hooks.revokedIDs(); !slices.Equal(got, []string{a.HashedID}) {
		t.Fatalf("RevokeLeases for %v, want only a", got)
	}
	for _, e := range []*Entry{b, d} {
		got, err := h.st.LookupHashed(h.ctx, e.HashedID)
		if err != nil || !got.IsOrphan() {
			t.Fatalf("child after revoke-orphan: %+v, %v", got, err)
		}
	}
	if k := h.keysUnder("parent/" + a.HashedID); len(k) != 0 {
		t.Fatalf("children index of the revoked parent left: %v", k)
	}
	// c is still b's child: revoking b takes c.
	if err := h.st.RevokeTree(h.ctx, b.HashedID); err != nil {
		t.Fatal(err)
	}
	h.gone(toks["c"])
	h.entry(toks["d"])
}

// TestRevokeByPathPrefix: the store's path index holds the tokens without
// a lease of their own (and those earlier versions indexed); a leased
// token's lease record is its path index, which core walks.
func TestRevokeByPathPrefix(t *testing.T) {
	h := newHarness(t)
	login := func(mount string) (*Entry, string) {
		e, v, _, err := h.st.CreateForLogin(h.ctx, Login{MountPath: mount}, &logical.Auth{Policies: []string{"dev"}, Renewable: true})
		if err != nil {
			t.Fatal(err)
		}
		return e, v.Reveal()
	}
	leased, vLeased := login("auth/approle/")
	if leased.ExpireTime.IsZero() {
		t.Fatal("a login token that does not expire")
	}
	if k := h.keysUnder("path/auth/approle/"); len(k) != 0 {
		t.Fatalf("a leased token was indexed by path: %v", k)
	}
	// An earlier version's leased token, indexed by path.
	old, vOld := login("auth/approle/")
	if err := h.s.Put(h.ctx, pathIndexDir(old.Path)+old.HashedID, nil); err != nil {
		t.Fatal(err)
	}
	forever := func(path string) string {
		v, err := h.st.Create(h.ctx, &Entry{Policies: []string{"dev"}, Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return v.Reveal()
	}
	v1 := forever("auth/approle/login")
	v2 := forever("auth/approle2/login")
	if a, a2 := h.keysUnder("path/auth/approle/"), h.keysUnder("path/auth/approle2/"); len(a) != 2 || len(a2) != 1 {
		t.Fatalf("path index = %v %v, want the two tokens without a lease and the old one", a, a2)
	}
	child := &Entry{Policies: []string{"dev"}, Path: "auth/token/create", Parent: h.entry(v1).HashedID, TTL: time.Minute}
	cv, err := h.st.Create(h.ctx, child)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.st.RevokeByPathPrefix(h.ctx, "auth/approle"); err != nil {
		t.Fatal(err)
	}
	h.gone(v1)
	h.gone(vOld)
	h.gone(cv.Reveal()) // the subtree goes with it
	h.entry(v2)
	h.entry(vLeased) // core revokes it through its lease record
	h.entry(h.root.Reveal())
	if k := h.keysUnder("path/auth/approle/"); len(k) != 0 {
		t.Fatalf("path index left: %v", k)
	}
}

func TestListAccessors(t *testing.T) {
	h := newHarness(t)
	root := h.entry(h.root.Reveal())
	want := []string{root.Accessor}
	for range 3 {
		e := &Entry{Policies: []string{"dev"}, Path: "auth/token/create", TTL: time.Hour}
		if _, err := h.st.Create(h.ctx, e); err != nil {
			t.Fatal(err)
		}
		want = append(want, e.Accessor)
	}
	expired := &Entry{Policies: []string{"dev"}, Path: "auth/token/create", TTL: time.Minute}
	if _, err := h.st.Create(h.ctx, expired); err != nil {
		t.Fatal(err)
	}
	h.clk.Advance(2 * time.Minute)
	got, err := h.st.ListAccessors(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("accessors = %v, want %v", got, want)
	}
}

func TestTidy(t *testing.T) {
	h := newHarness(t)
	a, b, c, _, toks := h.tree()
	// An expiring token with a child that would live longer.
	exp := &Entry{Policies: []string{"dev"}, Path: "auth/token/create", TTL: time.Minute}
	if _, err := h.st.Create(h.ctx, exp); err != nil {
		t.Fatal(err)
	}
	expChild := &Entry{Policies: []string{"dev"}, Path: "auth/token/create", Parent: exp.HashedID, TTL: time.Hour}
	ecv, err := h.st.Create(h.ctx, expChild)
	if err != nil {
		t.Fatal(err)
	}
	// Dangling index entries, as a crash could leave them.
	ghost := strings.Repeat("ab", 32)
	for _, k := range []string{"accessor/" + strings.Repeat("cd", 32), "parent/" + a.HashedID + "/" + ghost, "path/auth/token/create/" + ghost} {
		val := []byte{}
		if strings.HasPrefix(k, "accessor/") {
			val = []byte(ghost)
		}
		if err := h.s.Put(h.ctx, k, val); err != nil {
			t.Fatal(err)
		}
	}
	// A child whose parent vanished (an interrupted revoke-orphan).
	if err := h.s.Delete(h.ctx, "id/"+b.HashedID); err != nil {
		t.Fatal(err)
	}
	h.st.cacheDelete(mustDigest(t, b.HashedID))

	h.clk.Advance(2 * time.Minute)
	stats, err := h.st.Tidy(h.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Revoked != 1 || stats.Orphaned != 1 || stats.IndexEntries < 4 {
		t.Fatalf("tidy stats %+v", stats)
	}
	h.gone(ecv.Reveal())
	if !slices.Contains(h.hooks.revokedIDs(), exp.HashedID) || !slices.Contains(h.hooks.revokedIDs(), expChild.HashedID) {
		t.Fatal("tidy did not revoke the expired token's leases")
	}
	if e := h.entry(toks["c"]); !e.IsOrphan() {
		t.Fatal("child of a vanished parent not orphaned")
	}
	for _, k := range h.s.Keys() {
		if strings.Contains(k, ghost) || strings.Contains(k, b.HashedID) {
			t.Errorf("tidy left %s", k)
		}
	}
	// A second tidy finds nothing to do.
	stats, err = h.st.Tidy(h.ctx)
	if err != nil || stats != (TidyStats{}) {
		t.Fatalf("second tidy: %+v, %v", stats, err)
	}
	_ = c
}

func mustDigest(t testing.TB, s string) digest {
	t.Helper()
	d, ok := parseDigest(s)
	if !ok {
		t.Fatalf("bad digest %q", s)
	}
	return d
}

func TestRestart(t *testing.T) {
	h := newHarness(t)
	a, _, _, _, toks := h.tree()
	batch := &Entry{Policies: []string{"dev"}, Path: "auth/token/create", Type: TypeBatch, TTL: time.Hour, Parent: a.HashedID}
	bv, err := h.st.create(h.ctx, "", batch)
	if err != nil {
		t.Fatal(err)
	}
	h.ok(h.as(h.root), logical.UpdateOperation, "roles/ci", `{"allowed_policies":"dev"}`)
	h.st.Close()
	if _, err := h.st.Lookup(h.ctx, h.root); !errors.Is(err, ErrClosed) {
		t.Fatalf("lookup after close: %v", err)
	}

	h.open()
	for _, name := range []string{"a", "b", "c", "d"} {
		h.entry(toks[name])
	}
	if e, err := h.st.LookupAccessor(h.ctx, a.Accessor); err != nil || e.HashedID != a.HashedID {
		t.Fatalf("accessor after restart: %v", err)
	}
	if e := h.entry(bv.Reveal()); e.Type != TypeBatch {
		t.Fatal("batch token after restart")
	}
	h.ok(h.as(h.root), logical.ReadOperation, "roles/ci", "")
	if err := h.st.RevokeTree(h.ctx, a.HashedID); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b", "c", "d"} {
		h.gone(toks[name])
	}
	h.gone(bv.Reveal())
}

// TestNothingInClear checks a dump of the store's storage for any token or
// accessor it issued.
func TestNothingInClear(t *testing.T) {
	h := newHarness(t)
	root := h.as(h.root)
	var secrets []string
	for _, js := range []string{`{"policies":"dev"}`, `{"policies":"dev","type":"batch"}`, `{"id":"my-custom-token"}`, `{"period":"1h"}`} {
		a := h.create(root, "create", js)
		secrets = append(secrets, a.ClientToken)
		if a.Accessor != "" {
			secrets = append(secrets, a.Accessor)
		}
	}
	a := &logical.Auth{Policies: []string{"dev"}, Metadata: map[string]string{"role_name": "ci"}}
	if _, _, _, err := h.st.CreateForLogin(h.ctx, Login{MountPath: "auth/approle/"}, a); err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, a.ClientToken, a.Accessor, h.root.Reveal(), h.entry(h.root.Reveal()).Accessor)
	for _, k := range h.s.Keys() {
		v, _ := h.s.Get(h.ctx, k)
		for _, s := range secrets {
			if strings.Contains(k, s) || strings.Contains(string(v), s) {
				t.Errorf("%q stored in clear under %s", s[:6]+"…", k)
			}
			// Nor base64-encoded in a JSON []byte.
			if strings.Contains(string(v), base64.StdEncoding.EncodeToString([]byte(s))) {
				t.Errorf("%q stored base64-encoded under %s", s[:6]+"…", k)
			}
		}
	}
}

func TestBatchTokens(t *testing.T) {
	h := newHarness(t)
	root := h.as(h.root)
	parent := h.create(root, "create", `{"policies":"dev","ttl":"2h"}`)
	pctx := h.as(tok(parent.ClientToken))

	// Make the store key first: from then on batch tokens write nothing.
	h.create(pctx, "create", `{"type":"batch"}`)
	before := h.s.writes.Load()
	a := h.create(pctx, "create", `{"type":"batch","ttl":"30m","meta":{"team":"ml"},"display_name":"job"}`)
	if !strings.HasPrefix(a.ClientToken, BatchPrefix) || a.Accessor != "" || a.Renewable || a.TokenType != TypeBatch || a.Orphan {
		t.Fatalf("batch auth = %+v", a)
	}
	e := h.entry(a.ClientToken)
	if e.Type != TypeBatch || !slices.Equal(e.Policies, []string{"default", "dev"}) || e.Meta["team"] != "ml" ||
		e.DisplayName != "token-job" || e.Parent != h.entry(parent.ClientToken).HashedID || e.TTL != 30*time.Minute {
		t.Fatalf("batch entry = %+v", e)
	}
	bctx := h.as(tok(a.ClientToken))
	data := rendered(t, h.ok(bctx, logical.ReadOperation, "lookup-self", "").Data)
	if data["type"] != "batch" || data["accessor"] != "" || data["renewable"] != false || num(t, data, "ttl") != 1800 || data["id"] != a.ClientToken {
		t.Fatalf("batch lookup-self = %v", data)
	}
	h.fails(bctx, logical.UpdateOperation, "renew-self", "", 400, "batch tokens cannot be renewed")
	h.fails(root, logical.UpdateOperation, "renew", js(`{"token":%q}`, a.ClientToken), 400, "batch tokens cannot be renewed")
	h.fails(bctx, logical.UpdateOperation, "revoke-self", "", 400, "batch tokens cannot be revoked")
	h.fails(root, logical.UpdateOperation, "revoke", js(`{"token":%q}`, a.ClientToken), 400, "batch tokens cannot be revoked")
	h.fails(bctx, logical.UpdateOperation, "create", "", 400, "batch tokens cannot create more tokens")
	if n := h.s.writes.Load() - before; n != 0 {
		t.Fatalf("batch tokens wrote %d times", n)
	}

	// Tampering with any byte invalidates the token.
	raw := a.ClientToken
	for i := len(BatchPrefix); i < len(raw); i += 7 {
		c := byte('A')
		if raw[i] == 'A' {
			c = 'B'
		}
		bad := raw[:i] + string(c) + raw[i+1:]
		if _, err := h.st.Lookup(h.ctx, tok(bad)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("tampered batch token (byte %d) accepted: %v", i, err)
		}
	}
	// A batch token made by another store (another key) is not ours.
	other := newHarness(t)
	ob := other.create(other.as(other.root), "create", `{"type":"batch","policies":"dev"}`)
	if _, err := h.st.Lookup(h.ctx, tok(ob.ClientToken)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("foreign batch token: %v", err)
	}

	// Expiry.
	h.clk.Advance(30 * time.Minute)
	h.gone(a.ClientToken)

	// A batch token cannot outlive its parent.
	b := h.create(pctx, "create", `{"type":"batch","ttl":"10m"}`)
	h.entry(b.ClientToken)
	if err := h.st.Revoke(h.ctx, tok(parent.ClientToken)); err != nil {
		t.Fatal(err)
	}
	h.gone(b.ClientToken)

	// An orphan batch token lives its TTL.
	o := h.create(root, "create-orphan", `{"type":"batch","policies":"dev","ttl":"1h"}`)
	if !o.Orphan {
		t.Fatal("create-orphan batch token has a parent")
	}
	h.entry(o.ClientToken)
	if err := h.st.Revoke(h.ctx, tok(o.ClientToken)); !errors.Is(err, ErrBatch) {
		t.Fatalf("Revoke(batch) = %v", err)
	}
	if _, _, err := h.st.Renew(h.ctx, h.entry(o.ClientToken), 0, TTLDefaults{}); !errors.Is(err, ErrBatch) {
		t.Fatalf("Renew(batch) = %v", err)
	}
}

func TestCreateFromAuth(t *testing.T) {
	h := newHarness(t)
	a := &logical.Auth{
		Policies:     []string{"Dev", "ops"},
		Metadata:     map[string]string{"role_name": "ci"},
		DisplayName:  "ci",
		TTL:          2 * time.Hour,
		MaxTTL:       5 * time.Hour,
		Renewable:    true,
		BoundCIDRs:   []string{"10.0.0.0/8"},
		InternalData: map[string]any{"role_id": "x", "n": 3},
		Alias:        &logical.Alias{Name: "uuid-1"},
	}
	login := Login{MountPath: "auth/approle", Defaults: TTLDefaults{DefaultTTL: time.Hour, MaxTTL: 4 * time.Hour}}
	e, v, warnings, err := h.st.CreateForLogin(h.ctx, login, a)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings %q", warnings)
	}
	if a.ClientToken != v.Reveal() || a.Accessor != e.Accessor || !a.Orphan || a.TTL != 2*time.Hour || a.TokenType != TypeService ||
		!slices.Equal(a.Policies, []string{"default", "dev", "ops"}) {
		t.Fatalf("auth after create = %+v", a)
	}
	got := h.entry(v.Reveal())
	if got.DisplayName != "approle-ci" || got.Path != "auth/approle/login" || got.MountPath != "auth/approle/" ||
		got.Meta["role_name"] != "ci" || !got.IsOrphan() || got.MaxTTL != 5*time.Hour || got.Alias.Name != "uuid-1" ||
		len(got.BoundCIDRs) != 1 || got.LeaseID() != "auth/approle/login/"+got.HashedID {
		t.Fatalf("login token = %+v", got)
	}
	if _, ok := got.InternalData["n"].(interface{ Int64() (int64, error) }); !ok {
		// Restored from storage, numbers are json.Number.
		h.st.cacheDelete(mustDigest(t, got.HashedID))
		if got = h.entry(v.Reveal()); fmt.Sprint(got.InternalData["n"]) != "3" {
			t.Fatalf("internal data = %#v", got.InternalData)
		}
	}

	// Capped by the mount's maximum, with a warning.
	a2 := &logical.Auth{Policies: []string{"dev"}, TTL: 10 * time.Hour}
	_, _, warnings, err = h.st.CreateForLogin(h.ctx, login, a2)
	if err != nil || a2.TTL != 4*time.Hour || len(warnings) != 1 {
		t.Fatalf("capped login: ttl %s, warnings %q, %v", a2.TTL, warnings, err)
	}
	// Batch by the mount's default.
	a3 := &logical.Auth{Policies: []string{"dev"}, NoDefaultPolicy: true}
	_, v3, _, err := h.st.CreateForLogin(h.ctx, Login{MountPath: "auth/jwt/", TokenType: "default-batch"}, a3)
	if err != nil || !strings.HasPrefix(v3.Reveal(), BatchPrefix) || a3.Renewable || !slices.Equal(a3.Policies, []string{"dev"}) {
		t.Fatalf("batch login: %+v, %v", a3, err)
	}
	// Mistakes of the method.
	for _, bad := range []*logical.Auth{
		{Policies: []string{"root"}},
		{Policies: []string{"dev"}, NumUses: -1},
		{Policies: []string{"dev"}, TokenType: TypeBatch, Period: time.Hour},
		{Policies: []string{"dev"}, BoundCIDRs: []string{"nope"}},
	} {
		if _, _, _, err := h.st.CreateForLogin(h.ctx, login, bad); err == nil {
			t.Errorf("CreateForLogin(%+v) succeeded", bad)
		} else if s, _ := httpStatus(nil, err); s != 400 {
			t.Errorf("CreateForLogin(%+v) = %v, want a 400", bad, err)
		}
	}
}

// TestRenewLoginToken renews a login's token through the AuthRenewer.
func TestRenewLoginToken(t *testing.T) {
	h := newHarness(t)
	a := &logical.Auth{Policies: []string{"dev"}, TTL: time.Hour, Renewable: true, InternalData: map[string]any{"role": "ci"}}
	_, v, _, err := h.st.CreateForLogin(h.ctx, Login{MountPath: "auth/approle/"}, a)
	if err != nil {
		t.Fatal(err)
	}
	h.renewer.ret = func(a *logical.Auth) (*logical.Auth, TTLDefaults, error) {
		out := *a
		out.TTL = 2 * time.Hour
		out.MaxTTL = 3 * time.Hour
		return &out, TTLDefaults{DefaultTTL: time.Hour, MaxTTL: 10 * time.Hour}, nil
	}
	h.clk.Advance(30 * time.Minute)
	e, warnings, err := h.st.Renew(h.ctx, h.entry(v.Reveal()), 0, TTLDefaults{})
	if err != nil || len(warnings) != 0 {
		t.Fatalf("renew: %v %q", err, warnings)
	}
	if h.renewer.calls != 1 || h.renewer.got.InternalData["role"] != "ci" || h.renewer.got.ClientToken != "" {
		t.Fatalf("AuthRenewer got %+v", h.renewer.got)
	}
	if want := t0.Add(30*time.Minute + 2*time.Hour); !e.ExpireTime.Equal(want) || !e.LastRenewal.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("renewed to %s, want %s", e.ExpireTime, want)
	}
	if !slices.Equal(h.hooks.renewed, []string{e.HashedID}) {
		t.Fatal("TokenRenewed not called")
	}
	// The method's MaxTTL caps later renewals from the issue time.
	h.clk.Advance(105 * time.Minute)
	e, warnings, err = h.st.Renew(h.ctx, e, 0, TTLDefaults{})
	if err != nil || len(warnings) != 1 || !e.ExpireTime.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("capped renew: %v %q %s", err, warnings, e.ExpireTime)
	}
	// The method refuses (its role was deleted): the error passes through.
	h.renewer.ret = func(*logical.Auth) (*logical.Auth, TTLDefaults, error) {
		return nil, TTLDefaults{}, logical.BadRequest(`role "ci" no longer exists; log in again`)
	}
	_, _, err = h.st.Renew(h.ctx, e, 0, TTLDefaults{})
	if s, msg := httpStatus(nil, err); s != 400 || !strings.Contains(msg, "no longer exists") {
		t.Fatalf("refused renewal: %d %q", s, msg)
	}
	// A failing lease hook undoes the renewal.
	h.renewer.ret = func(a *logical.Auth) (*logical.Auth, TTLDefaults, error) { return a, TTLDefaults{}, nil }
	h.hooks.failNext = errors.New("lease manager down")
	before := h.entry(v.Reveal()).ExpireTime
	if _, _, err := h.st.Renew(h.ctx, e, time.Minute, TTLDefaults{}); err == nil {
		t.Fatal("renewal succeeded although its lease failed")
	}
	if got := h.entry(v.Reveal()).ExpireTime; !got.Equal(before) {
		t.Fatalf("failed renewal moved the expiry from %s to %s", before, got)
	}
}

func TestCloseIsFinal(t *testing.T) {
	h := newHarness(t)
	h.st.Close()
	h.st.Close()
	ctx := h.ctx
	if _, err := h.st.Create(ctx, &Entry{Policies: []string{"dev"}}); !errors.Is(err, ErrClosed) {
		t.Errorf("Create after Close: %v", err)
	}
	if err := h.st.RevokeTree(ctx, strings.Repeat("0", 64)); !errors.Is(err, ErrClosed) {
		t.Errorf("RevokeTree after Close: %v", err)
	}
	if _, err := h.st.Tidy(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Tidy after Close: %v", err)
	}
	if _, err := h.st.LookupAccessor(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Errorf("LookupAccessor after Close: %v", err)
	}
	_ = secret.String{}
}

// TestRevokeTreeSkipsStaleChildIndex: a child index entry left by an
// interrupted revoke-orphan does not drag an orphan into a revocation.
func TestRevokeTreeSkipsStaleChildIndex(t *testing.T) {
	h := newHarness(t)
	a, b, _, _, toks := h.tree()
	// b was orphaned, but the crash left its index entry under a.
	cur := h.entry(toks["b"]).clone()
	cur.Parent = ""
	if err := h.st.putEntry(h.ctx, mustDigest(t, b.HashedID), cur); err != nil {
		t.Fatal(err)
	}
	if err := h.st.RevokeTree(h.ctx, a.HashedID); err != nil {
		t.Fatal(err)
	}
	h.gone(toks["a"])
	h.gone(toks["d"])
	h.entry(toks["b"])
	h.entry(toks["c"])
	if k := h.keysUnder("parent/" + a.HashedID); len(k) != 0 {
		t.Fatalf("stale index left: %v", k)
	}
	// Revoking a token that is already gone leaves the children it may
	// still list alone.
	if err := h.s.Put(h.ctx, childKey(a.HashedID, b.HashedID), []byte{}); err != nil {
		t.Fatal(err)
	}
	if err := h.st.RevokeTree(h.ctx, a.HashedID); err != nil {
		t.Fatal(err)
	}
	h.entry(toks["b"])
}

// TestBatchTokenOneSpelling: flipping the unused low bits of the last
// base64 character does not give a second valid spelling of a token.
func TestBatchTokenOneSpelling(t *testing.T) {
	h := newHarness(t)
	for range 20 {
		a := h.create(h.as(h.root), "create", `{"type":"batch","policies":"dev"}`)
		v := a.ClientToken
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
		last := strings.IndexByte(alphabet, v[len(v)-1])
		for i := range 64 {
			if i == last || i>>4 != last>>4 && i>>2 != last>>2 {
				continue
			}
			alt := v[:len(v)-1] + string(alphabet[i])
			if _, err := h.st.Lookup(h.ctx, tok(alt)); err == nil {
				t.Fatalf("a second spelling of a batch token is valid")
			}
		}
	}
}

// A token enters the entry cache when it is used, not when it is created:
// a login's token that nobody presents never costs the cache (and the
// collector) anything.
func TestEntryCachedOnUse(t *testing.T) {
	h := newHarness(t)
	tok, err := h.st.Create(h.ctx, &Entry{Policies: []string{"dev"}, Path: "auth/token/create", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	d := h.st.hashToken(tok.Reveal())
	if _, ok := h.st.cached(d); ok {
		t.Fatal("a new token was cached before any use")
	}
	e, err := h.st.Lookup(h.ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := h.st.cached(d); !ok || c != e {
		t.Fatalf("a looked-up token is not cached (%v)", ok)
	}
}

// The entry cache is bounded: using many tokens does not keep them all in
// memory, and an entry forgotten by the cache is read back from storage.
func TestEntryCacheIsBounded(t *testing.T) {
	h := newHarness(t)
	var first *Entry
	var firstTok secret.String
	for i := range cacheShards*cacheShardSize + 2000 {
		tok, err := h.st.Create(h.ctx, &Entry{Policies: []string{"dev"}, Path: "auth/token/create"})
		if err != nil {
			t.Fatal(err)
		}
		e, err := h.st.Lookup(h.ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			firstTok, first = tok, e
		}
	}
	n := 0
	for i := range h.st.cache {
		n += len(h.st.cache[i].m)
		if len(h.st.cache[i].m) > cacheShardSize {
			t.Fatalf("shard %d holds %d entries", i, len(h.st.cache[i].m))
		}
	}
	if n > cacheShards*cacheShardSize {
		t.Fatalf("cache holds %d entries", n)
	}
	got, err := h.st.Lookup(h.ctx, firstTok)
	if err != nil || got.Accessor != first.Accessor {
		t.Fatalf("first token after eviction: %v", err)
	}
}
