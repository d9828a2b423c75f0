package seal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-secrets/vigil/internal/secret"
)

func randomKey(t *testing.T, id string) Key {
	t.Helper()
	return Key{ID: id, Material: secret.RandomBytes(KeySize)}
}

func newStatic(t *testing.T, cur Key, prev *Key) *Static {
	t.Helper()
	s, err := NewStatic(cur, prev)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStaticWrapUnwrap(t *testing.T) {
	ctx := context.Background()
	k1 := randomKey(t, "2026-01")
	w := newStatic(t, k1, nil)
	if w.Type() != TypeStatic || w.KeyID() != "2026-01" {
		t.Fatalf("type %q key id %q", w.Type(), w.KeyID())
	}
	ct, err := w.Encrypt(ctx, []byte("root key bytes"), []byte("aad"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := w.Decrypt(ctx, "2026-01", ct, []byte("aad"))
	if err != nil || string(pt) != "root key bytes" {
		t.Fatalf("decrypt: %q, %v", pt, err)
	}
	for name, tc := range map[string]struct {
		w     *Static
		keyID string
		ct    []byte
		aad   string
		want  error
	}{
		"other aad":      {w, "2026-01", ct, "other", ErrUnwrap},
		"wrong key":      {newStatic(t, Key{ID: "2026-01", Material: secret.RandomBytes(KeySize)}, nil), "2026-01", ct, "aad", ErrUnwrap},
		"unknown key id": {w, "2025-12", ct, "aad", ErrUnknownKey},
		"truncated":      {w, "2026-01", ct[:10], "aad", ErrUnwrap},
		"tampered":       {w, "2026-01", append(append([]byte(nil), ct[:len(ct)-1]...), ct[len(ct)-1]^1), "aad", ErrUnwrap},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tc.w.Decrypt(ctx, tc.keyID, tc.ct, []byte(tc.aad))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestNewStaticRejects(t *testing.T) {
	k := randomKey(t, "a")
	for name, tc := range map[string]struct {
		cur  Key
		prev *Key
	}{
		"no id":        {Key{Material: k.Material}, nil},
		"short key":    {Key{ID: "a", Material: make([]byte, 16)}, nil},
		"same ids":     {k, &Key{ID: "a", Material: secret.RandomBytes(KeySize)}},
		"bad previous": {k, &Key{ID: "b", Material: make([]byte, 31)}},
	} {
		if _, err := NewStatic(tc.cur, tc.prev); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestAutoRecordAndRotation(t *testing.T) {
	ctx := context.Background()
	old := randomKey(t, "old")
	w := newStatic(t, old, nil)
	root, rec, err := GenerateAuto(ctx, w, Config{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Type != TypeStatic || rec.KeyID != "old" || rec.Shares != 5 || rec.Threshold != 3 || !rec.Auto() {
		t.Fatalf("record %+v", rec)
	}
	raw, _ := MarshalRecord(rec)
	if bytes.Contains(raw, root) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(root))) {
		t.Fatal("the record holds the root key in clear")
	}
	rec, err = UnmarshalRecord(raw)
	if err != nil {
		t.Fatal(err)
	}
	got, stale, err := OpenAuto(ctx, w, rec)
	if err != nil || stale || !bytes.Equal(got, root) {
		t.Fatalf("open: stale=%v %v", stale, err)
	}

	// Rotation: the old key becomes the previous one; the record opens
	// with it, is reported stale, and rewrapped opens with the new key
	// alone.
	newKey := randomKey(t, "new")
	rotated := newStatic(t, newKey, &old)
	got, stale, err = OpenAuto(ctx, rotated, rec)
	if err != nil || !stale || !bytes.Equal(got, root) {
		t.Fatalf("open with previous key: stale=%v %v", stale, err)
	}
	rec2, err := Rewrap(ctx, rotated, rec, got)
	if err != nil || rec2.KeyID != "new" {
		t.Fatalf("rewrap: %+v %v", rec2, err)
	}
	newOnly := newStatic(t, newKey, nil)
	if got, stale, err := OpenAuto(ctx, newOnly, rec2); err != nil || stale || !bytes.Equal(got, root) {
		t.Fatalf("open rewrapped record: stale=%v %v", stale, err)
	}
	if _, _, err := OpenAuto(ctx, newOnly, rec); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old record without the previous key: %v", err)
	}
}

func TestAutoRecordBindsConfig(t *testing.T) {
	ctx := context.Background()
	k := randomKey(t, "k1")
	w := newStatic(t, k, nil)
	root, rec, err := GenerateAuto(ctx, w, Config{SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer secret.Zero(root)
	for name, edit := range map[string]func(r *Sealed){
		"threshold":  func(r *Sealed) { r.Threshold = 2 },
		"shares":     func(r *Sealed) { r.Shares = 4 },
		"ciphertext": func(r *Sealed) { r.WrappedRootKey[len(r.WrappedRootKey)-1] ^= 1 },
	} {
		t.Run(name, func(t *testing.T) {
			r := rec
			r.WrappedRootKey = append([]byte(nil), rec.WrappedRootKey...)
			edit(&r)
			if _, _, err := OpenAuto(ctx, w, r); !errors.Is(err, ErrUnwrap) {
				t.Fatalf("tampered %s: %v", name, err)
			}
		})
	}
	other := rec
	other.Type = TypePKCS11
	if _, _, err := OpenAuto(ctx, w, other); !errors.Is(err, ErrConfig) {
		t.Fatalf("type mismatch: %v", err)
	}
	if _, _, err := GenerateAuto(ctx, w, Config{SecretShares: 3, SecretThreshold: 4}); !errors.Is(err, ErrConfig) {
		t.Fatalf("bad recovery config: %v", err)
	}
}

func TestRecoveryKey(t *testing.T) {
	key, shares, err := GenerateRecovery(Config{Type: TypeStatic, SecretShares: 5, SecretThreshold: 3})
	if err != nil {
		t.Fatal(err)
	}
	hash := RecoveryHash(key)
	if bytes.Contains(hash, key) || len(hash) != 32 {
		t.Fatal("hash holds the key")
	}
	s := NewShares(3)
	var got []byte
	for i, sh := range shares[1:4] {
		got, err = s.Add(sh)
		if err != nil {
			t.Fatal(err)
		}
		if (got != nil) != (i == 2) {
			t.Fatalf("share %d: key=%v", i, got != nil)
		}
	}
	if !CheckRecoveryKey(got, hash) {
		t.Fatal("recombined recovery key does not check")
	}
	other, _, _ := GenerateRecovery(Config{Type: TypeStatic, SecretShares: 1, SecretThreshold: 1})
	if CheckRecoveryKey(other, hash) {
		t.Fatal("another key checks")
	}
}

func TestSharesRefusesDuplicatesAndBadShapes(t *testing.T) {
	_, shares, _ := GenerateRecovery(Config{Type: TypeStatic, SecretShares: 3, SecretThreshold: 2})
	s := NewShares(2)
	if k, err := s.Add(shares[0]); err != nil || k != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(shares[0]); !errors.Is(err, ErrDuplicateShare) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := s.Add([]byte{1, 2}); !errors.Is(err, ErrInvalidShare) {
		t.Fatalf("short: %v", err)
	}
	if s.Len() != 1 {
		t.Fatalf("progress %d", s.Len())
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	key := secret.RandomBytes(KeySize)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return "file://" + p
	}
	env := map[string]string{
		"KEY_HEX": hex.EncodeToString(key),
		"KEY_B64": base64.StdEncoding.EncodeToString(key),
		"SHORT":   hex.EncodeToString(key[:16]),
	}
	getenv := func(k string) string { return env[k] }
	for name, src := range map[string]string{
		"raw file":       write("raw", key),
		"hex file":       write("hex", []byte(hex.EncodeToString(key)+"\n")),
		"base64 file":    write("b64", []byte(base64.StdEncoding.EncodeToString(key)+"\n")),
		"raw url base64": write("b64url", []byte(base64.RawURLEncoding.EncodeToString(key))),
		"hex env":        "env://KEY_HEX",
		"base64 env":     "env://KEY_B64",
	} {
		got, err := LoadKey(src, getenv)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, src := range map[string]string{
		"inline hex":    hex.EncodeToString(key),
		"missing file":  "file://" + filepath.Join(dir, "nope"),
		"empty file":    write("empty", nil),
		"short key":     write("short", []byte(hex.EncodeToString(key[:16]))),
		"long key":      write("long", append(append([]byte(nil), key...), key...)),
		"passphrase":    write("pass", []byte("correct horse battery staple!!!!")),
		"unset env":     "env://NOPE",
		"short env":     "env://SHORT",
		"no file named": "file://",
		"no env named":  "env://",
	} {
		_, err := LoadKey(src, getenv)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		for _, enc := range []string{hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key), hex.EncodeToString(key[:16])} {
			if strings.Contains(err.Error(), enc) {
				t.Errorf("%s: the error shows the key: %v", name, err)
			}
		}
	}
}

// FuzzDecodeKey: whatever a key file holds, a key is 32 bytes or an error
// that does not echo the content.
func FuzzDecodeKey(f *testing.F) {
	key := bytes.Repeat([]byte{0xa7}, KeySize)
	for _, seed := range [][]byte{key, []byte(hex.EncodeToString(key)), []byte(base64.StdEncoding.EncodeToString(key) + "\n"), []byte("correct horse battery staple!!!!"), nil} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := decodeKey(raw)
		if err == nil && len(got) != KeySize {
			t.Fatalf("accepted a %d-byte key", len(got))
		}
		if err != nil && len(raw) > 8 && strings.Contains(err.Error(), string(raw)) {
			t.Fatalf("error echoes the content: %v", err)
		}
	})
}
