package shamir

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

// Products from FIPS-197 §4.2 and a few identities.
func TestMulVectors(t *testing.T) {
	for _, tc := range []struct{ a, b, want byte }{
		{0x57, 0x83, 0xc1}, // FIPS-197 §4.2
		{0x57, 0x13, 0xfe}, // FIPS-197 §4.2.1
		{0x57, 0x02, 0xae},
		{0x57, 0x04, 0x47},
		{0x57, 0x08, 0x8e},
		{0x57, 0x10, 0x07},
		{0x00, 0xff, 0x00},
		{0x01, 0xab, 0xab},
		{0x53, 0xca, 0x01}, // 0xca is the inverse of 0x53 (FIPS-197 §5.1.1 example)
	} {
		if got := mul(tc.a, tc.b); got != tc.want {
			t.Errorf("mul(%#02x, %#02x) = %#02x, want %#02x", tc.a, tc.b, got, tc.want)
		}
		if got := mul(tc.b, tc.a); got != tc.want {
			t.Errorf("mul not commutative for %#02x, %#02x", tc.a, tc.b)
		}
	}
}

func TestInverseEveryElement(t *testing.T) {
	if inv(0) != 0 {
		t.Fatal("inv(0) must be 0")
	}
	for a := 1; a < 256; a++ {
		if got := mul(byte(a), inv(byte(a))); got != 1 {
			t.Fatalf("a * inv(a) = %#02x for a = %#02x", got, a)
		}
	}
}

// A polynomial small enough to check by hand: f(x) = 0x42 + 0x01*x, so
// f(1) = 0x43, f(2) = 0x40, f(3) = 0x41.
func TestCombineHandVector(t *testing.T) {
	shares := [][]byte{{0x43, 1}, {0x40, 2}, {0x41, 3}}
	for _, pick := range [][]int{{0, 1}, {1, 2}, {0, 2}, {2, 0}, {0, 1, 2}} {
		var in [][]byte
		for _, i := range pick {
			in = append(in, shares[i])
		}
		got, err := Combine(in)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, []byte{0x42}) {
			t.Errorf("shares %v: got %x, want 42", pick, got)
		}
	}
}

// f(x) = 0x57 + 0x83*x + 0x13*x^2 evaluated with the FIPS products above:
// f(1) = 0x57^0x83^0x13 = 0xc7; f(2) = 0x57 ^ mul(0x83,2) ^ mul(0x13,4).
func TestSplitDeterministicVector(t *testing.T) {
	// Random stream: two bytes choosing x coordinates (j = i + v % span),
	// then the two coefficients 0x83, 0x13.
	stream := []byte{0, 0, 0, 0, 0, 0, 0x83, 0x13}
	shares, err := split(bytes.NewReader(stream), []byte{0x57}, 3, 3)
	if err != nil {
		t.Fatal(err)
	}
	// v = 0 at every step keeps the identity order: x = 1, 2, 3.
	want := [][]byte{
		{0xc7, 1},
		{0x57 ^ mul(0x83, 2) ^ mul(0x13, 4), 2},
		{0x57 ^ mul(0x83, 3) ^ mul(0x13, mul(3, 3)), 3},
	}
	for i := range want {
		if !bytes.Equal(shares[i], want[i]) {
			t.Errorf("share %d = %x, want %x", i, shares[i], want[i])
		}
	}
	got, err := Combine(shares)
	if err != nil || !bytes.Equal(got, []byte{0x57}) {
		t.Fatalf("Combine = %x, %v", got, err)
	}
}

func TestSplitCombineAllSubsets(t *testing.T) {
	secret := []byte("a 32-byte unseal key for testing")
	shares, err := Split(secret, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[byte]bool{}
	for _, s := range shares {
		if len(s) != len(secret)+1 {
			t.Fatalf("share length %d", len(s))
		}
		x := s[len(s)-1]
		if x == 0 || seen[x] {
			t.Fatalf("bad x coordinate %d", x)
		}
		seen[x] = true
	}
	for a := range 5 {
		for b := a + 1; b < 5; b++ {
			for c := b + 1; c < 5; c++ {
				got, err := Combine([][]byte{shares[c], shares[a], shares[b]})
				if err != nil || !bytes.Equal(got, secret) {
					t.Fatalf("subset %d,%d,%d: %q, %v", a, b, c, got, err)
				}
			}
		}
	}
	// Two shares of a threshold-3 split give a different value.
	got, err := Combine(shares[:2])
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, secret) {
		t.Fatal("two shares reconstructed a threshold-3 secret")
	}
}

func TestMaxShares(t *testing.T) {
	secret := []byte{1, 2, 3}
	shares, err := Split(secret, 255, 255)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Combine(shares)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Combine = %x, %v", got, err)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		secret           []byte
		parts, threshold int
	}{
		{nil, 3, 2}, {[]byte{1}, 3, 1}, {[]byte{1}, 2, 3}, {[]byte{1}, 256, 3},
	} {
		if _, err := Split(tc.secret, tc.parts, tc.threshold); !errors.Is(err, ErrParams) {
			t.Errorf("Split(%d, %d, %d) = %v, want ErrParams", len(tc.secret), tc.parts, tc.threshold, err)
		}
	}
	for name, in := range map[string][][]byte{
		"one share":  {{1, 1}},
		"short":      {{1}, {2}},
		"lengths":    {{1, 1}, {1, 2, 2}},
		"zero x":     {{1, 0}, {2, 1}},
		"duplicates": {{1, 1}, {2, 1}},
	} {
		if _, err := Combine(in); err == nil {
			t.Errorf("%s: Combine succeeded", name)
		}
	}
}

func FuzzSplitCombine(f *testing.F) {
	f.Add([]byte("secret"), uint8(5), uint8(3))
	f.Add([]byte{0}, uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, secret []byte, parts, threshold uint8) {
		shares, err := Split(secret, int(parts), int(threshold))
		if err != nil {
			if !errors.Is(err, ErrParams) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		// Any threshold shares, here the last ones, reconstruct.
		got, err := Combine(shares[len(shares)-int(threshold):])
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func FuzzCombine(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, 2)
	f.Fuzz(func(t *testing.T, raw []byte, n int) {
		if n < 1 || n > 16 || len(raw) < n {
			return
		}
		size := len(raw) / n
		var shares [][]byte
		for i := range n {
			shares = append(shares, raw[i*size:(i+1)*size])
		}
		_, _ = Combine(shares) // must never panic
	})
}

func BenchmarkCombine(b *testing.B) {
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	shares, _ := Split(secret, 5, 3)
	for b.Loop() {
		_, _ = Combine(shares[:3])
	}
}
