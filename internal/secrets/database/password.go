package database

import (
	"crypto/rand"
	"strings"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// randomFrom returns n characters drawn uniformly from alphabet (at most
// 256 characters) with crypto/rand.
func randomFrom(alphabet string, n int) string {
	out := make([]byte, n)
	limit := 256 - 256%len(alphabet) // reject above it: no modulo bias
	var buf [64]byte
	for i := 0; i < n; {
		_, _ = rand.Read(buf[:])
		for _, c := range buf {
			if int(c) >= limit {
				continue
			}
			out[i] = alphabet[int(c)%len(alphabet)]
			if i++; i == n {
				break
			}
		}
	}
	return string(out)
}

// passwordLength and passwordAlphabet make the default password: 20
// characters of letters, digits and '-', with one of each kind at least.
const (
	passwordLength   = 20
	passwordAlphabet = alphanumeric + "-"
)

// generatePassword returns a password from the built-in generator.
func generatePassword() secret.String {
	for {
		p := randomFrom(passwordAlphabet, passwordLength)
		if strings.ContainsAny(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") && strings.ContainsAny(p, "abcdefghijklmnopqrstuvwxyz") &&
			strings.ContainsAny(p, "0123456789") && strings.Contains(p, "-") {
			return secret.NewString(p)
		}
	}
}
