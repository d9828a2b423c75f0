package token

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
)

// SystemDefaultTTL is the default and maximum token TTL when nothing else
// says otherwise (Vault's 768h).
const SystemDefaultTTL = 768 * time.Hour

// TTLDefaults are the TTL settings of the mount a token is created or
// renewed under (its default_lease_ttl and max_lease_ttl, as tuned). Zero
// values mean SystemDefaultTTL.
type TTLDefaults struct {
	DefaultTTL time.Duration
	MaxTTL     time.Duration
}

func (d TTLDefaults) resolved() TTLDefaults {
	if d.DefaultTTL <= 0 {
		d.DefaultTTL = SystemDefaultTTL
	}
	if d.MaxTTL <= 0 {
		d.MaxTTL = SystemDefaultTTL
	}
	return d
}

// ttlInput is what decides a token's TTL, at creation or renewal (Vault's
// framework.CalculateTTL, spec §4.4).
type ttlInput struct {
	// Now is the current time; Start is the token's issue time (Now at
	// creation).
	Now, Start time.Time
	// Increment is the TTL asked for: the request's ttl at creation, the
	// increment at renewal; 0 for none.
	Increment time.Duration
	// BackendTTL is the TTL used when no increment is given: a role's or
	// login's TTL, or at renewal the token's creation TTL; 0 for the
	// mount default.
	BackendTTL time.Duration
	// Period makes the TTL Period, whatever else is asked.
	Period time.Duration
	// BackendMaxTTL (a role's token_max_ttl, a login's MaxTTL) and
	// ExplicitMaxTTL lower the mount maximum; 0 for none.
	BackendMaxTTL  time.Duration
	ExplicitMaxTTL time.Duration
	Defaults       TTLDefaults
}

// calculateTTL returns the TTL to give a token from now, and the warnings
// for the caps it applied:
//
//   - the effective maximum is the least of the mount maximum, the backend
//     maximum and the explicit maximum;
//   - a periodic token gets its period, capped at the effective maximum
//     (warning), and only an explicit maximum bounds its life from Start;
//   - any other token gets the increment, else the backend TTL, else the
//     mount default, capped so that it ends no later than Start plus the
//     effective maximum (warning);
//   - a token already past that point cannot be renewed (ErrPastMaxTTL).
//
// Times are taken to the second, as Vault does, so TTLs are whole seconds.
func calculateTTL(in ttlInput) (time.Duration, []string, error) {
	defs := in.Defaults.resolved()
	now := in.Now.Truncate(time.Second)
	start := in.Start.Truncate(time.Second)
	if in.Start.IsZero() {
		start = now
	}
	maxTTL := defs.MaxTTL
	if in.BackendMaxTTL > 0 && in.BackendMaxTTL < maxTTL {
		maxTTL = in.BackendMaxTTL
	}
	if in.ExplicitMaxTTL > 0 && in.ExplicitMaxTTL < maxTTL {
		maxTTL = in.ExplicitMaxTTL
	}
	var warnings []string
	var ttl time.Duration
	var limit time.Time
	if in.Period > 0 {
		period := in.Period
		if period > maxTTL {
			warnings = append(warnings, fmt.Sprintf("period of %q exceeded the effective max_ttl of %q; period value is capped accordingly", period, maxTTL))
			period = maxTTL
		}
		ttl = period
		if in.ExplicitMaxTTL > 0 {
			limit = start.Add(in.ExplicitMaxTTL)
		}
	} else {
		switch {
		case in.Increment > 0:
			ttl = in.Increment
		case in.BackendTTL > 0:
			ttl = in.BackendTTL
		default:
			ttl = defs.DefaultTTL
		}
		limit = start.Add(maxTTL)
	}
	if !limit.IsZero() {
		left := limit.Sub(now)
		if left <= 0 {
			return 0, nil, ErrPastMaxTTL
		}
		if ttl > left {
			warnings = append(warnings, fmt.Sprintf("TTL of %q exceeded the effective max_ttl of %q; TTL value is capped accordingly", ttl, left))
			ttl = left
		}
	}
	return ttl, warnings, nil
}

// sanitizePolicies returns the policies lowercased, trimmed, without
// duplicates and sorted, with "default" added when addDefault; a list
// holding "root" is just ["root"], as Vault's is.
func sanitizePolicies(in []string, addDefault bool) []string {
	out := framework.SanitizePolicies(in)
	if slices.Contains(out, rootPolicy) {
		return []string{rootPolicy}
	}
	if addDefault && !slices.Contains(out, defaultPolicy) {
		out = append(out, defaultPolicy)
		slices.Sort(out)
	}
	return out
}

// subset reports whether every policy of child is in parent.
func subset(parent, child []string) bool {
	for _, p := range child {
		if !slices.Contains(parent, p) {
			return false
		}
	}
	return true
}

// Token types a mount or token role may be configured with.
const (
	typeDefault        = "default"
	typeDefaultService = "default-service"
	typeDefaultBatch   = "default-batch"
)

// ResolveType returns the type of a token a login asks for (asked, from
// the auth method: "", "service" or "batch") on a mount whose token_type
// is configured: "service" or "batch" force the type; "default-batch"
// makes batch the default; "", "default" and "default-service" make
// service the default.
func ResolveType(configured, asked string) (string, error) {
	switch asked {
	case "", typeDefault, TypeService, TypeBatch:
	default:
		return "", fmt.Errorf("token: invalid token type %q", asked)
	}
	if asked == typeDefault {
		asked = ""
	}
	switch strings.ToLower(configured) {
	case TypeService:
		return TypeService, nil
	case TypeBatch:
		return TypeBatch, nil
	case typeDefaultBatch:
		if asked == "" {
			return TypeBatch, nil
		}
		return asked, nil
	case "", typeDefault, typeDefaultService:
		if asked == "" {
			return TypeService, nil
		}
		return asked, nil
	}
	return "", fmt.Errorf("token: invalid configured token type %q", configured)
}

func anyGlob(patterns []string, s string) bool {
	for _, p := range patterns {
		if framework.GlobMatch(p, s) {
			return true
		}
	}
	return false
}
