package audit

import (
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/auditlog"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// TestCallersMemo: a caller's token and accessor are logged the same
// whether a device remembers them or not, for every option; a token that
// is not the one remembered for its accessor is hashed afresh.
func TestCallersMemo(t *testing.T) {
	for _, opts := range []formatOptions{{hmacAccessor: true}, {}, {logRaw: true}} {
		f := newFormatter(opts, testSalt)
		fresh := newFormatter(opts, testSalt)
		entry := func(f *formatter, tok, acc string) string {
			in := sampleInput()
			in.Request.ClientToken, in.Request.ClientTokenAccessor, in.Auth.Accessor = secret.NewString(tok), acc, acc
			return string(f.format(auditlog.TypeRequest, in))
		}
		for i, c := range []struct{ tok, acc string }{
			{"hvs.first", "acc-1"},
			{"hvs.first", "acc-1"}, // remembered
			{"hvs.other", "acc-1"}, // the same accessor, another token
			{"hvs.first", "acc-1"},
			{"hvs.first", "acc-2"},
			{"hvs.first", ""}, // no accessor: never remembered
			{"hvs.first", ""},
		} {
			got, want := entry(f, c.tok, c.acc), entry(fresh, c.tok, c.acc)
			fresh = newFormatter(opts, testSalt)
			if got != want {
				t.Errorf("%+v, entry %d (%s, %s):\n got %s\nwant %s", opts, i, c.tok, c.acc, got, want)
			}
			if opts.logRaw || c.acc == "" {
				continue
			}
			if tok := fresh.h.hash(c.tok); !strings.Contains(got, tok) {
				t.Errorf("%+v, entry %d: the token's hash %s is not logged", opts, i, tok)
			}
		}
		if _, ok := f.callers.m.Load("acc-1"); ok == opts.logRaw {
			t.Errorf("%+v: remembered acc-1: %v", opts, ok)
		}
	}
}

// TestCallersBounded: past maxCallers the memo starts afresh.
func TestCallersBounded(t *testing.T) {
	c := newCallers()
	var tok, acc loggedValue
	for i := range maxCallers {
		c.remember("hvs.t", "acc-"+strconv.Itoa(i), &tok, &acc)
	}
	if !c.lookup("hvs.t", "acc-0", &tok, &acc) {
		t.Fatal("the first caller is forgotten before the memo is full")
	}
	c.remember("hvs.t", "acc-new", &tok, &acc)
	if c.lookup("hvs.t", "acc-0", &tok, &acc) {
		t.Error("the memo grew past maxCallers")
	}
	if !c.lookup("hvs.t", "acc-new", &tok, &acc) {
		t.Error("the caller that overflowed the memo is not remembered")
	}
}
