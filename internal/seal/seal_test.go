package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		shares, threshold int
		ok                bool
	}{
		{1, 1, true}, {5, 3, true}, {255, 255, true}, {2, 2, true},
		{0, 0, false}, {3, 1, false}, {3, 4, false}, {256, 3, false}, {3, 0, false},
	} {
		err := Config{Type: TypeShamir, SecretShares: tc.shares, SecretThreshold: tc.threshold}.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("shares=%d threshold=%d: err=%v", tc.shares, tc.threshold, err)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("error %v does not wrap ErrConfig", err)
		}
	}
	if err := (Config{Type: "awskms", SecretShares: 1, SecretThreshold: 1}).Validate(); err == nil {
		t.Error("unknown type accepted")
	}
}

func unsealWith(t *testing.T, rec Sealed, shares [][]byte) (rootKey []byte, err error) {
	t.Helper()
	u := NewUnsealer(rec.Threshold)
	for i, s := range shares {
		progress, key, done, err := u.Add(s)
		if err != nil {
			return nil, err
		}
		if done {
			return OpenShamir(rec, key)
		}
		if progress != i+1 {
			t.Fatalf("progress = %d after %d shares", progress, i+1)
		}
	}
	return nil, nil
}

func TestGenerateAndUnseal(t *testing.T) {
	for _, cfg := range []Config{{TypeShamir, 1, 1}, {TypeShamir, 5, 3}, {TypeShamir, 3, 3}} {
		root, shares, rec, err := GenerateShamir(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(root) != KeySize || len(shares) != cfg.SecretShares {
			t.Fatalf("root %d bytes, %d shares", len(root), len(shares))
		}
		if bytes.Contains(rec.WrappedRootKey, root) {
			t.Fatal("record holds the root key in clear")
		}
		raw, err := MarshalRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(root))) {
			t.Fatal("encoded record holds the root key")
		}
		rec2, err := UnmarshalRecord(raw)
		if err != nil {
			t.Fatal(err)
		}
		got, err := unsealWith(t, rec2, shares[len(shares)-cfg.SecretThreshold:])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, root) {
			t.Fatalf("%+v: recovered a different root key", cfg)
		}
	}
}

func TestWrongSharesReset(t *testing.T) {
	_, shares, rec, err := GenerateShamir(Config{TypeShamir, 3, 2})
	if err != nil {
		t.Fatal(err)
	}
	_, other, _, err := GenerateShamir(Config{TypeShamir, 3, 2})
	if err != nil {
		t.Fatal(err)
	}
	u := NewUnsealer(rec.Threshold)
	if _, _, _, err := u.Add(shares[0]); err != nil {
		t.Fatal(err)
	}
	// Mixed shares recombine to some key, which does not open the record.
	_, key, done, err := u.Add(other[1])
	if err != nil || !done {
		t.Fatalf("threshold reached: done=%v, %v", done, err)
	}
	if _, err := OpenShamir(rec, key); !errors.Is(err, ErrBadShares) {
		t.Fatalf("mixed shares: %v", err)
	}
	if n, nonce := u.Progress(); n != 0 || nonce != "" {
		t.Fatalf("progress not reset: %d %q", n, nonce)
	}
}

func TestInvalidShareKeepsProgress(t *testing.T) {
	_, shares, rec, _ := GenerateShamir(Config{TypeShamir, 5, 3})
	u := NewUnsealer(rec.Threshold)
	u.Add(shares[0])
	_, nonce := u.Progress()
	for _, bad := range [][]byte{nil, {1, 2, 3}, make([]byte, ShareSize+1)} {
		if _, _, _, err := u.Add(bad); !errors.Is(err, ErrInvalidShare) {
			t.Fatalf("bad share: %v", err)
		}
	}
	// A duplicate is ignored.
	if p, _, _, err := u.Add(shares[0]); err != nil || p != 1 {
		t.Fatalf("duplicate: progress %d, %v", p, err)
	}
	if n, n2 := u.Progress(); n != 1 || n2 != nonce {
		t.Fatalf("progress changed: %d %q", n, n2)
	}
	u.Reset()
	if n, _ := u.Progress(); n != 0 {
		t.Fatal("reset kept shares")
	}
}

// Editing the stored threshold must not let fewer shares open the seal.
func TestConfigBoundToRecord(t *testing.T) {
	_, shares, rec, _ := GenerateShamir(Config{TypeShamir, 5, 3})
	rec.Threshold = 2
	if _, err := unsealWith(t, rec, shares[:2]); !errors.Is(err, ErrBadShares) {
		t.Fatalf("tampered threshold: %v", err)
	}
	rec.Threshold = 3
	rec.WrappedRootKey[len(rec.WrappedRootKey)-1] ^= 1
	if _, err := unsealWith(t, rec, shares[:3]); !errors.Is(err, ErrBadShares) {
		t.Fatalf("tampered ciphertext: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb}, ShareSize)
	for _, s := range []string{
		hex.EncodeToString(key), base64.StdEncoding.EncodeToString(key),
		base64.RawURLEncoding.EncodeToString(key), " " + hex.EncodeToString(key) + "\n",
	} {
		got, err := ParseKey(s)
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("ParseKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "not a key!", "@@", "z"} {
		if _, err := ParseKey(s); !errors.Is(err, ErrInvalidShare) {
			t.Errorf("ParseKey(%q) = %v", s, err)
		}
	}
}

func TestUnmarshalRecordRejects(t *testing.T) {
	for _, raw := range []string{`{`, `{"version":9,"type":"shamir","shares":1,"threshold":1}`, `{"version":1,"type":"shamir","shares":3,"threshold":1}`} {
		if _, err := UnmarshalRecord([]byte(raw)); err == nil {
			t.Errorf("accepted %s", raw)
		}
	}
}
