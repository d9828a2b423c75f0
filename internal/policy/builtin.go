package policy

import "fmt"

// Names of the built-in policies.
const (
	// RootName is the root token's policy: it has no text, allows
	// everything and cannot be combined with other policies.
	RootName = "root"
	// DefaultName is attached to every token unless it is created with
	// no_default_policy. It may be edited but not deleted.
	DefaultName = "default"
	// ResponseWrappingName is attached only to response-wrapping tokens.
	// It cannot be written, deleted or assigned.
	ResponseWrappingName = "response-wrapping"
)

// DefaultText is the text the default policy is created with at
// initialization. Operators may edit it afterwards.
const DefaultText = `# The default policy: what every token may do to itself. It is
# attached to every token created without no_default_policy.

# Read, renew and revoke the calling token.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}

# Ask which capabilities the calling token has on a path.
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Read the caller's own identity entity.
path "identity/entity/id/{{identity.entity.id}}" {
  capabilities = ["read"]
}
path "identity/entity/name/{{identity.entity.name}}" {
  capabilities = ["read"]
}

# The merged ACL of the calling token, for the web UI.
path "sys/internal/ui/resultant-acl" {
  capabilities = ["read"]
}

# Renew and look up leases whose id the caller already knows
# (sys/renew is the legacy renew path).
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/renew" {
  capabilities = ["update"]
}
path "sys/leases/lookup" {
  capabilities = ["update"]
}

# The token's private cubbyhole.
path "cubbyhole/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}

# Wrap values, and look up or unwrap wrapping tokens.
path "sys/wrapping/wrap" {
  capabilities = ["update"]
}
path "sys/wrapping/lookup" {
  capabilities = ["update"]
}
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}

# Hashing tools.
path "sys/tools/hash" {
  capabilities = ["update"]
}
path "sys/tools/hash/*" {
  capabilities = ["update"]
}

# The authorization endpoint of identity OIDC providers.
path "identity/oidc/provider/+/authorize" {
  capabilities = ["read", "update"]
}
`

// ResponseWrappingText is the text of the response-wrapping policy:
// a wrapping token may read the wrapped response from its cubbyhole and
// unwrap it, nothing else.
const ResponseWrappingText = `path "cubbyhole/response" {
  capabilities = ["create", "read"]
}
path "sys/wrapping/unwrap" {
  capabilities = ["update"]
}
`

// Default returns the default policy as shipped ([DefaultText]).
func Default() *Policy { return mustParse(DefaultName, DefaultText) }

// ResponseWrapping returns the response-wrapping policy.
func ResponseWrapping() *Policy { return mustParse(ResponseWrappingName, ResponseWrappingText) }

// RootPolicy returns the root policy: no rules, recognized by name.
// [Compile] turns it into the root ACL.
func RootPolicy() *Policy { return &Policy{Name: RootName} }

func mustParse(name, text string) *Policy {
	p, err := Parse(name, text)
	if err != nil {
		// The built-in texts are constants covered by tests.
		panic(fmt.Sprintf("policy: built-in %q does not parse: %v", name, err))
	}
	return p
}

// CheckWrite returns an error wrapping [ErrImmutable] when the policy name
// (normalized) may not be created or updated through the API: root and
// response-wrapping.
func CheckWrite(name string) error {
	switch name {
	case RootName, ResponseWrappingName:
		return fmt.Errorf("%w: cannot update %q policy", ErrImmutable, name)
	}
	return nil
}

// CheckDelete returns an error wrapping [ErrImmutable] when the policy name
// (normalized) may not be deleted: root, default and response-wrapping.
func CheckDelete(name string) error {
	switch name {
	case RootName, DefaultName, ResponseWrappingName:
		return fmt.Errorf("%w: cannot delete %q policy", ErrImmutable, name)
	}
	return nil
}
