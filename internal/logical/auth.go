package logical

import "time"

// Auth describes the token a login asks for. An auth method returns it in
// [Response.Auth]; the pipeline creates the token, registers its lease and
// fills in the fields marked "set by the pipeline". On a renewal the
// pipeline hands the stored Auth back to the mount in [Request.Auth].
type Auth struct {
	// Policies are the token's policies. The pipeline adds "default"
	// unless NoDefaultPolicy is set.
	Policies        []string
	NoDefaultPolicy bool
	// Metadata is recorded on the token and in every audit entry of its
	// requests: what the login proved (role name, service account...).
	Metadata map[string]string
	// Role names the role the login used, when the method has roles: it
	// labels the login metrics, so it must be a configured role's name
	// and never a value taken from the request.
	Role string
	// DisplayName names the token in lookups ("approle", "kubernetes-ns-sa").
	DisplayName string
	// TTL is the token's lifetime; 0 means the mount's default. MaxTTL caps
	// the TTL and every renewal from the token's issue time; 0 means the
	// mount's maximum. ExplicitMaxTTL is a hard cap that survives tuning.
	TTL            time.Duration
	MaxTTL         time.Duration
	ExplicitMaxTTL time.Duration
	// Period makes the token periodic: each renewal resets its TTL to
	// Period, and MaxTTL does not apply.
	Period time.Duration
	// NumUses limits the token's requests; 0 means unlimited.
	NumUses int
	// Renewable reports whether the token may be renewed.
	Renewable bool
	// TokenType is "service", "batch" or "" for the mount's default.
	TokenType string
	// BoundCIDRs restricts the client addresses that may use the token.
	BoundCIDRs []string
	// Alias is the identity the login proved: the pipeline finds or
	// creates its identity entity, and it is recorded for audit.
	Alias *Alias
	// InternalData is kept with the token's lease and handed back on
	// renewal. It is never shown to clients.
	InternalData map[string]any

	// ClientToken is the new token. Set by the pipeline; it is a secret
	// and must never be logged.
	ClientToken string
	// Accessor is the new token's accessor. Set by the pipeline.
	Accessor string
	// Orphan reports a token without a parent. Set by the pipeline.
	Orphan bool
	// EntityID is the identity entity of the login's alias. Set by the
	// pipeline.
	EntityID string
}

// Alias is an identity proved by an auth method: a name unique within the
// mount (a role id, a service account uid) and its metadata.
type Alias struct {
	Name     string
	Metadata map[string]string
}

// PathsSpecial lists the paths of a mount that the pipeline treats
// specially. An entry ending in '*' matches every path with that prefix;
// any other entry matches exactly.
type PathsSpecial struct {
	// Unauthenticated paths are served without a token: logins.
	Unauthenticated []string
	// Root paths need the sudo capability in addition to the operation's.
	Root []string
}

// SpecialPather is implemented by backends with special paths.
type SpecialPather interface {
	SpecialPaths() PathsSpecial
}

// MatchSpecial reports whether path matches one of patterns (see
// [PathsSpecial]).
func MatchSpecial(patterns []string, path string) bool {
	for _, p := range patterns {
		if n := len(p); n > 0 && p[n-1] == '*' {
			if len(path) >= n-1 && path[:n-1] == p[:n-1] {
				return true
			}
		} else if p == path {
			return true
		}
	}
	return false
}
