package token

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// TestOrderSortsAsTime: orders have a fixed length and sort as the times
// they encode, so that keys beginning with them do too.
func TestOrderSortsAsTime(t *testing.T) {
	times := []time.Time{time.Unix(0, 0), t0, t0.Add(time.Second), t0.Add(61 * time.Second), t0.Add(24 * time.Hour), time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}
	var orders []string
	for _, tm := range times {
		o := order(tm)
		if len(o) != orderLen || !isOrder(o) {
			t.Fatalf("order(%v) = %q", tm, o)
		}
		orders = append(orders, o)
	}
	if !slices.IsSorted(orders) || len(slices.Compact(slices.Clone(orders))) != len(orders) {
		t.Fatalf("orders do not sort as their times: %q", orders)
	}
	if order(t0) != order(t0.Add(999*time.Millisecond)) {
		t.Error("one second has two orders")
	}
}

// TestDigestShapes: only what this version generates for a token that
// expires has an order: an earlier version's token or accessor, a custom
// id and a batch token hash as before, so that their storage keys are the
// ones that version wrote. Digests of both shapes parse back.
func TestDigestShapes(t *testing.T) {
	h := newHarness(t)
	o := order(t0)
	random := secret.RandomBase62(24)
	for _, c := range []struct {
		v        string
		accessor bool
		order    string
	}{
		{ServicePrefix + o + random, false, o},
		{ServicePrefix + random, false, ""},           // earlier versions, root tokens
		{"my-custom-token-id-of-30-chars", false, ""}, // custom ids never start with hvs.
		{ServicePrefix + "!!!!!!" + random, false, ""},
		{BatchPrefix + random + random, false, ""},
		{o + random, true, o},
		{random, true, ""}, // earlier versions
		{"-" + random[:5] + random, true, ""},
	} {
		d := h.st.hashToken(c.v)
		if c.accessor {
			d = h.st.hashAccessor(c.v)
		}
		if got := string(d.order[:]); strings.TrimRight(got, "\x00") != c.order {
			t.Errorf("%q: order %q, want %q", c.v, got, c.order)
		}
		if d.sum != h.st.hash(c.v).sum {
			t.Errorf("%q: the order changed the hash", c.v)
		}
		s := d.String()
		if !strings.HasPrefix(s, c.order) || len(s) != len(c.order)+64 {
			t.Errorf("%q: digest string %q", c.v, s)
		}
		if back, ok := parseDigest(s); !ok || back != d {
			t.Errorf("%q: %q does not parse back", c.v, s)
		}
	}
	for _, bad := range []string{"", strings.Repeat("a", 63), "!!!!!!" + strings.Repeat("a", 64), strings.Repeat("g", 64), strings.Repeat("a", 71)} {
		if _, ok := parseDigest(bad); ok {
			t.Errorf("parseDigest(%q) succeeded", bad)
		}
	}
}

// TestTokensStoredInCreationOrder: the storage keys of expiring tokens and
// of their accessors sort as the tokens were created, and every shape looks
// up, by token and by accessor.
func TestTokensStoredInCreationOrder(t *testing.T) {
	h := newHarness(t)
	var ids, accessors []string
	var toks []secret.String
	for range 5 {
		e := &Entry{Policies: []string{"dev"}, Path: "auth/token/create", TTL: time.Hour}
		tok, err := h.st.Create(h.ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, idKey(h.st.hashToken(tok.Reveal())))
		accessors = append(accessors, accessorKey(h.st.hashAccessor(e.Accessor)))
		toks = append(toks, tok)
		h.clk.Advance(1500 * time.Millisecond)
	}
	if !slices.IsSorted(ids) || !slices.IsSorted(accessors) {
		t.Fatalf("keys not in creation order:\n%q\n%q", ids, accessors)
	}
	never, err := h.st.Create(h.ctx, &Entry{Policies: []string{"dev"}, Path: "auth/token/create"})
	if err != nil {
		t.Fatal(err)
	}
	if len(never.Reveal()) != len(ServicePrefix)+24 {
		t.Errorf("a token that never expires has %d characters, want Vault's 28", len(never.Reveal()))
	}
	for _, tok := range append(toks, never) {
		e, err := h.st.Lookup(h.ctx, tok)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.st.LookupAccessor(h.ctx, e.Accessor); err != nil {
			t.Fatalf("accessor of a %d-character token: %v", len(tok.Reveal()), err)
		}
	}
}
