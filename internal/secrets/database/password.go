package database

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-secrets/vigil/internal/logical"
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

// newPassword returns a password for a user of the connection c (issued,
// static or its admin): from the password policy it names, else from the
// built-in generator. A policy that no longer exists is the operator's to
// fix (400).
func (b *backend) newPassword(ctx context.Context, c *configEntry) (secret.String, error) {
	if c.PasswordPolicy == "" {
		return generatePassword(), nil
	}
	pw, err := b.system.GeneratePasswordFromPolicy(ctx, c.PasswordPolicy)
	if errors.Is(err, logical.ErrPasswordPolicyNotFound) {
		return secret.String{}, &logical.CodedError{Status: 400, Err: err,
			Msg: fmt.Sprintf("password_policy %q of database %q does not exist (sys/policies/password/%s)", c.PasswordPolicy, c.Name, c.PasswordPolicy)}
	}
	if err != nil {
		return secret.String{}, fmt.Errorf("database: a password from policy %q: %w", c.PasswordPolicy, err)
	}
	return secret.NewString(pw), nil
}

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
