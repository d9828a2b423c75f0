package logicaltest

import (
	"context"
	"fmt"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// NoPasswordPolicies gives a test's [logical.SystemView] the password
// policies of a server that has none: embed it.
type NoPasswordPolicies struct{}

// GeneratePasswordFromPolicy implements [logical.SystemView]: every name
// is unknown.
func (NoPasswordPolicies) GeneratePasswordFromPolicy(_ context.Context, name string) (string, error) {
	return "", fmt.Errorf("%w: %q", logical.ErrPasswordPolicyNotFound, name)
}
