package core

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/api"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

const testOTP = "0123456789abcdefghijABCDEFGH" // 28 characters

// runGenerateRoot runs a whole generation with keys and returns the decoded
// root token.
func runGenerateRoot(t *testing.T, c *Core, otp string, keys []string) secret.String {
	t.Helper()
	ctx := context.Background()
	st, err := c.GenerateRootInit(ctx, otp, "")
	if err != nil {
		t.Fatal(err)
	}
	if otp == "" {
		otp = st.OTP
	}
	for i, k := range keys {
		st, err = c.GenerateRootUpdate(ctx, k, st.Nonce)
		if err != nil {
			t.Fatalf("key %d: %v", i, err)
		}
		if st.Complete != (i == len(keys)-1) || (!st.Complete && st.Progress != i+1) {
			t.Fatalf("key %d: %+v", i, st)
		}
	}
	tok, err := api.DecodeRootToken(st.EncodedToken, otp)
	if err != nil {
		t.Fatal(err)
	}
	return secret.NewString(tok)
}

// isRoot checks that tok is a working root token.
func isRoot(t *testing.T, c *Core, tok secret.String) {
	t.Helper()
	if !strings.HasPrefix(tok.Reveal(), "hvs.") || len(tok.Reveal()) != OTPLength {
		t.Fatalf("generated token of %d characters", len(tok.Reveal()))
	}
	res, err := c.HandleRequest(context.Background(), &Request{Operation: logical.ReadOperation, Path: "auth/token/lookup-self", Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := res.Response.Data["policies"].([]string); len(p) != 1 || p[0] != "root" {
		t.Fatalf("policies %v", res.Response.Data["policies"])
	}
}

func TestGenerateRootWithUnsealKeys(t *testing.T) {
	ctx := context.Background()
	f := initCore(t) // 3 shares, threshold 2
	st, err := f.c.GenerateRootStatus(ctx)
	if err != nil || st.Started || st.Required != 2 || st.OTPLength != 28 || st.Nonce != "" {
		t.Fatalf("status: %+v %v", st, err)
	}
	tok := runGenerateRoot(t, f.c, testOTP, f.keys[1:3])
	isRoot(t, f.c, tok)
	if tok.Equal(f.token) {
		t.Fatal("the generated token is the initial one")
	}
	if st, _ := f.c.GenerateRootStatus(ctx); st.Started {
		t.Fatalf("an attempt remains after completion: %+v", st)
	}
	// Without an OTP the server makes one and shows it once.
	st, err = f.c.GenerateRootInit(ctx, "", "")
	if err != nil || len(st.OTP) != OTPLength {
		t.Fatalf("generated otp: %+v %v", st, err)
	}
	if again, _ := f.c.GenerateRootStatus(ctx); again.OTP != "" || !again.Started {
		t.Fatalf("the status shows the otp: %+v", again)
	}
	f.c.GenerateRootCancel(ctx)
	isRoot(t, f.c, runGenerateRoot(t, f.c, "", f.keys[:2]))
}

func TestGenerateRootRefusals(t *testing.T) {
	ctx := context.Background()
	f := initCore(t)
	for _, tc := range map[string]struct{ otp, pgp, text string }{
		"short otp": {"abc", "", "OTP string is wrong length"},
		"pgp":       {"", "-----BEGIN PGP PUBLIC KEY BLOCK-----", "pgp_key is not supported"},
	} {
		_, err := f.c.GenerateRootInit(ctx, tc.otp, tc.pgp)
		wantStatus(t, err, 400, tc.text)
	}
	_, err := f.c.GenerateRootUpdate(ctx, f.keys[0], "nonce")
	wantStatus(t, err, 400, "no root generation in progress")

	st, err := f.c.GenerateRootInit(ctx, testOTP, "")
	if err != nil || !st.Started || st.Nonce == "" || st.OTP != "" {
		t.Fatalf("init: %+v %v", st, err)
	}
	_, err = f.c.GenerateRootInit(ctx, testOTP, "")
	wantStatus(t, err, 400, "root generation already in progress")
	_, err = f.c.GenerateRootUpdate(ctx, f.keys[0], "another-nonce")
	wantStatus(t, err, 400, "incorrect nonce supplied; nonce for this root generation operation is \""+st.Nonce+"\"")
	_, err = f.c.GenerateRootUpdate(ctx, "not a key!", st.Nonce)
	wantStatus(t, err, 400, "'key' must be a valid hex or base64 string")
	_, err = f.c.GenerateRootUpdate(ctx, "abcd", st.Nonce)
	wantStatus(t, err, 400, "invalid key")
	if _, err := f.c.GenerateRootUpdate(ctx, f.keys[0], st.Nonce); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.GenerateRootUpdate(ctx, f.keys[0], st.Nonce)
	wantStatus(t, err, 400, "given key has already been provided")

	// A share of another server's key: the round aborts, the attempt
	// stays with no shares.
	other := initCore(t)
	_, err = f.c.GenerateRootUpdate(ctx, other.keys[1], st.Nonce)
	wantStatus(t, err, 400, "root generation aborted")
	if got, _ := f.c.GenerateRootStatus(ctx); !got.Started || got.Progress != 0 || got.Nonce != st.Nonce {
		t.Fatalf("after an aborted round: %+v", got)
	}

	// Cancel drops the attempt and its shares.
	if _, err := f.c.GenerateRootUpdate(ctx, f.keys[0], st.Nonce); err != nil {
		t.Fatal(err)
	}
	if err := f.c.GenerateRootCancel(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.c.GenerateRootStatus(ctx); got.Started || got.Progress != 0 {
		t.Fatalf("after cancel: %+v", got)
	}
	_, err = f.c.GenerateRootUpdate(ctx, f.keys[1], st.Nonce)
	wantStatus(t, err, 400, "no root generation in progress")

	// Sealing ends an attempt; a sealed or new server has none.
	if _, err := f.c.GenerateRootInit(ctx, testOTP, ""); err != nil {
		t.Fatal(err)
	}
	f.c.SealInternal(ctx)
	for _, err := range []error{
		func() error { _, err := f.c.GenerateRootStatus(ctx); return err }(),
		func() error { _, err := f.c.GenerateRootInit(ctx, testOTP, ""); return err }(),
		f.c.GenerateRootCancel(ctx),
	} {
		if !errors.Is(err, ErrSealed) {
			t.Fatalf("sealed: %v", err)
		}
	}
	f.unseal(t)
	if got, _ := f.c.GenerateRootStatus(ctx); got.Started {
		t.Fatalf("an attempt survived the seal: %+v", got)
	}
	if _, err := newCore(t, inmem.New()).GenerateRootStatus(ctx); !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("uninitialized: %v", err)
	}
}

func TestGenerateRootWithRecoveryKeys(t *testing.T) {
	ctx := context.Background()
	f := initAuto(t) // 5 recovery shares, threshold 3
	st, err := f.c.GenerateRootStatus(ctx)
	if err != nil || st.Required != 3 {
		t.Fatalf("status: %+v %v", st, err)
	}
	isRoot(t, f.c, runGenerateRoot(t, f.c, testOTP, f.recovery[2:5]))

	// Another server's recovery shares do not authorize it.
	other := initAuto(t)
	st, err = f.c.GenerateRootInit(ctx, testOTP, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range other.recovery[:2] {
		if _, err := f.c.GenerateRootUpdate(ctx, k, st.Nonce); err != nil {
			t.Fatal(err)
		}
	}
	_, err = f.c.GenerateRootUpdate(ctx, other.recovery[2], st.Nonce)
	wantStatus(t, err, 400, "do not reconstruct the recovery key")
}
