package token

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical/logicaltest"
)

// FuzzLookup feeds arbitrary token text to Lookup. The property: only the
// tokens the store issued are valid; anything else, a batch token with a
// single byte changed included, is ErrInvalid, never a panic or another
// error.
func FuzzLookup(f *testing.F) {
	ctx := context.Background()
	st, err := Open(ctx, logicaltest.New(), func() time.Time { return t0 })
	if err != nil {
		f.Fatal(err)
	}
	svc, _, err := st.CreateRoot(ctx, "")
	if err != nil {
		f.Fatal(err)
	}
	b := &Entry{Policies: []string{"default"}, Path: "auth/token/create", Type: TypeBatch, TTL: time.Hour}
	batch, err := st.create(ctx, "", b)
	if err != nil {
		f.Fatal(err)
	}
	valid := map[string]bool{svc.Reveal(): true, batch.Reveal(): true}
	for _, s := range []string{svc.Reveal(), batch.Reveal(), "hvb.", "hvb.AQ", "hvs.", "", "root", batch.Reveal()[:20]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := st.Lookup(ctx, tok(s))
		switch {
		case valid[s]:
			if err != nil {
				t.Fatalf("issued token rejected: %v", err)
			}
		case !errors.Is(err, ErrInvalid):
			t.Fatalf("Lookup(%q) = %v, want ErrInvalid", s, err)
		}
	})
}
