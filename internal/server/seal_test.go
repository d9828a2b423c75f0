package server

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/config"
	"github.com/vigil-secrets/vigil/internal/core"
	"github.com/vigil-secrets/vigil/internal/seal"
	"github.com/vigil-secrets/vigil/internal/seal/pkcs11"
	"github.com/vigil-secrets/vigil/internal/seal/pkcs11/softhsmtest"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage/inmem"
)

// A seal key that cannot be read stops the server with an error that
// names the file and line of the seal block, and never shows a key.
func TestSealKeyErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	key := secret.RandomBytes(16)
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte(hex.EncodeToString(key)), 0o600)
	noHSM := "libnothing.so"
	if _, err := pkcs11.Open(pkcs11.Config{Lib: "/nonexistent/libnothing.so", KeyLabel: "k", PIN: secret.NewString("p")}); errors.Is(err, pkcs11.ErrUnavailable) {
		noHSM = "built without cgo"
	}
	for name, tc := range map[string]struct{ seal, want string }{
		"missing file": {fmt.Sprintf("seal \"static\" {\n  current_key_id = \"a\"\n  current_key = \"file://%s\"\n}\n", filepath.Join(dir, "nope.key")), "current_key: read key file"},
		"short key":    {fmt.Sprintf("seal \"static\" {\n  current_key_id = \"a\"\n  current_key = \"file://%s\"\n}\n", short), "want a 32-byte key"},
		"unset env":    {"seal \"static\" {\n  current_key_id = \"a\"\n  current_key = \"env://VIGIL_TEST_NO_SUCH_KEY\"\n  previous_key_id = \"b\"\n  previous_key = \"env://VIGIL_TEST_NO_SUCH_KEY\"\n}\n", "VIGIL_TEST_NO_SUCH_KEY is not set"},
		"no hsm":       {"seal \"pkcs11\" {\n  lib = \"/nonexistent/libnothing.so\"\n  slot = 0\n  key_label = \"k\"\n  pin = \"1234\"\n}\n", noHSM},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, "vigil.hcl")
			os.WriteFile(path, []byte("storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \"127.0.0.1:0\"\n}\n"+tc.seal), 0o600)
			var stderr bytes.Buffer
			if code := Run(context.Background(), []string{"-config", path}, io.Discard, &stderr, nil); code != 1 {
				t.Fatalf("exit %d: %s", code, stderr.String())
			}
			out := stderr.String()
			if !strings.Contains(out, "vigil.hcl:5: seal ") || !strings.Contains(out, tc.want) {
				t.Fatalf("error lacks the place or %q: %s", tc.want, out)
			}
			if strings.Contains(out, hex.EncodeToString(key)) || strings.Contains(out, "1234") {
				t.Fatalf("error shows key material: %s", out)
			}
		})
	}
}

// The PIN in the environment wins over the configuration's, so that the
// file need not hold it.
func TestPKCS11PINFromTheEnvironment(t *testing.T) {
	tk := softhsmtest.New(t, "vigil")
	tk.Use(t)
	s := config.Seal{Type: "pkcs11", Line: 7, PKCS11: &config.PKCS11Seal{Lib: tk.Lib, TokenLabel: tk.Label, PIN: "wrong-pin", KeyLabel: "vigil-root", GenerateKey: true}}
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if _, _, err := openSeal("vigil.hcl", s, getenv); err == nil || !strings.Contains(err.Error(), "CKR_PIN_INCORRECT") || !strings.HasPrefix(err.Error(), "vigil.hcl:7: seal \"pkcs11\"") {
		t.Fatalf("wrong PIN in the file: %v", err)
	}
	env[PINEnv] = tk.PIN
	w, closeSeal, err := openSeal("vigil.hcl", s, getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSeal()
	if w.Type() != seal.TypePKCS11 || w.KeyID() != "vigil-root" {
		t.Fatalf("wrapper %s %s", w.Type(), w.KeyID())
	}
}

// A start whose auto-unseal fails keeps trying in the background, and
// stop ends the attempts; a seal of the wrong type stops the server.
func TestStartAutoUnseal(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	phys := inmem.New()
	newCore := func(w seal.Wrapper) *core.Core {
		c, err := core.New(core.Config{Storage: phys, Seal: w})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	static := func(id string) seal.Wrapper {
		w, err := seal.NewStatic(seal.Key{ID: id, Material: secret.RandomBytes(seal.KeySize)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	w := static("k1")
	c := newCore(w)
	stop, err := startAutoUnseal(ctx, c, log, false)
	if err != nil {
		t.Fatalf("uninitialized: %v", err)
	}
	stop()
	if _, err := c.Init(ctx, core.InitRequest{RecoveryShares: 1, RecoveryThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	c.SealInternal(ctx)

	c = newCore(w)
	if stop, err = startAutoUnseal(ctx, c, log, false); err != nil || c.Sealed() {
		t.Fatalf("restart: %v, sealed %v", err, c.Sealed())
	}
	stop()
	c.SealInternal(ctx)

	c = newCore(static("k1")) // the same id, another key
	stop, err = startAutoUnseal(ctx, c, log, false)
	if err != nil || !c.Sealed() {
		t.Fatalf("wrong key: %v, sealed %v", err, c.Sealed())
	}
	stop() // returns: the retries end
	if !c.Sealed() {
		t.Fatal("unsealed with the wrong key")
	}

	phys2 := inmem.New()
	shamir, err := core.New(core.Config{Storage: phys2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := shamir.Init(ctx, core.InitRequest{SecretShares: 1, SecretThreshold: 1}); err != nil {
		t.Fatal(err)
	}
	over, _ := core.New(core.Config{Storage: phys2, Seal: w})
	if _, err := startAutoUnseal(ctx, over, log, false); !errors.Is(err, core.ErrSealMismatch) {
		t.Fatalf("auto seal over a shamir server: %v", err)
	}
}
