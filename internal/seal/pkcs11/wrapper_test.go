//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/seal/pkcs11/softhsmtest"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// The tests are not parallel: SoftHSM2 reads SOFTHSM2_CONF when the module
// is initialized, once per process, and each test closes its Wrappers
// (finalizing the module) before the next test points it elsewhere.

func config(tk *softhsmtest.Token, keyLabel string, generate bool) Config {
	return Config{Lib: tk.Lib, TokenLabel: tk.Label, PIN: secret.NewString(tk.PIN), KeyLabel: keyLabel, GenerateKey: generate}
}

func open(t *testing.T, cfg Config) *Wrapper {
	t.Helper()
	w, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return w
}

func TestWrapUnwrapInTheHSM(t *testing.T) {
	ctx := context.Background()
	tk := softhsmtest.New(t, "vigil")
	tk.Use(t)
	w := open(t, config(tk, "vigil-root", true))
	if w.Type() != seal.TypePKCS11 || w.KeyID() != "vigil-root" {
		t.Fatalf("type %q key id %q", w.Type(), w.KeyID())
	}
	pt := []byte("0123456789abcdef0123456789abcdef")
	ct, err := w.Encrypt(ctx, pt, []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, pt) || len(ct) != gcmIVSize+len(pt)+gcmTagBits/8 {
		t.Fatalf("ciphertext of %d bytes", len(ct))
	}
	got, err := w.Decrypt(ctx, "vigil-root", ct, []byte("aad"))
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("decrypt: %v", err)
	}
	tampered := append([]byte(nil), ct...)
	tampered[len(tampered)-1] ^= 1
	for name, tc := range map[string]struct {
		keyID string
		ct    []byte
		aad   string
		want  error
	}{
		"other aad":    {"vigil-root", ct, "other", seal.ErrUnwrap},
		"tampered":     {"vigil-root", tampered, "aad", seal.ErrUnwrap},
		"truncated":    {"vigil-root", ct[:20], "aad", seal.ErrUnwrap},
		"other key id": {"old-root", ct, "aad", seal.ErrUnknownKey},
	} {
		if _, err := w.Decrypt(ctx, tc.keyID, tc.ct, []byte(tc.aad)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// The session still works after the failures.
	if _, err := w.Decrypt(ctx, "vigil-root", ct, []byte("aad")); err != nil {
		t.Fatal(err)
	}
}

func TestKeyStaysInTheToken(t *testing.T) {
	ctx := context.Background()
	tk := softhsmtest.New(t, "vigil")
	tk.Use(t)
	if _, err := Open(config(tk, "vigil-root", false)); !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), "generate_key") {
		t.Fatalf("absent key without generate_key: %v", err)
	}
	w, err := Open(config(tk, "vigil-root", true))
	if err != nil {
		t.Fatal(err)
	}
	root, rec, err := seal.GenerateAuto(ctx, w, seal.Config{SecretShares: 3, SecretThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// A restart: the key is found by its label, not generated again.
	w2 := open(t, config(tk, "vigil-root", false))
	got, stale, err := seal.OpenAuto(ctx, w2, rec)
	if err != nil || stale || !bytes.Equal(got, root) {
		t.Fatalf("open after restart: stale=%v %v", stale, err)
	}
	rec.Threshold = 3
	if _, _, err := seal.OpenAuto(ctx, w2, rec); !errors.Is(err, seal.ErrUnwrap) {
		t.Fatalf("tampered record: %v", err)
	}
}

func TestAnotherTokensKeyDoesNotOpen(t *testing.T) {
	ctx := context.Background()
	tk := softhsmtest.New(t, "vigil")
	other := tk.Add(t, "vigil-dr")
	tk.Use(t)
	w := open(t, config(tk, "vigil-root", true))
	w2 := open(t, config(other, "vigil-root", true))
	ct, err := w.Encrypt(ctx, []byte("root key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Decrypt(ctx, "vigil-root", ct, nil); !errors.Is(err, seal.ErrUnwrap) {
		t.Fatalf("same label, another token's key: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	tk := softhsmtest.New(t, "vigil")
	tk.Use(t)
	good := config(tk, "vigil-root", true)
	for name, tc := range map[string]struct {
		edit func(c *Config)
		want string
	}{
		"wrong pin":     {func(c *Config) { c.PIN = secret.NewString("0000-wrong") }, "CKR_PIN_INCORRECT"},
		"no pin":        {func(c *Config) { c.PIN = secret.String{} }, "VIGIL_HSM_PIN"},
		"no such token": {func(c *Config) { c.TokenLabel = "nope" }, `no token labelled "nope"`},
		"no such slot":  {func(c *Config) { c.TokenLabel, c.HasSlot, c.Slot = "", true, 987654 }, "no token in slot 987654"},
		"not a module":  {func(c *Config) { c.Lib = "/nonexistent/libnothing.so" }, "cannot load"},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			w, err := Open(cfg)
			if err == nil {
				w.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q lacks %q", err, tc.want)
			}
			if strings.Contains(err.Error(), tk.PIN) || strings.Contains(err.Error(), "0000-wrong") {
				t.Fatalf("error shows the PIN: %v", err)
			}
		})
	}
}
