package policy

import (
	"fmt"
	"strings"
)

// Capability is a set of capabilities, one bit each. A rule's set is what
// the rule grants on the paths it matches; [Deny] in a set cancels every
// other bit (see [Capability.Normalize]).
type Capability uint16

// The capabilities a policy may grant. There is no bit for "root": it is
// what a root token has, reported by [ACL.Capabilities], never written in a
// policy.
const (
	// Create allows a write to a path that does not exist yet.
	Create Capability = 1 << iota
	// Read allows reading a path.
	Read
	// Update allows a write to a path that exists, and the operations
	// mapped to update (lease renew and revoke, for example).
	Update
	// Patch allows a partial update.
	Patch
	// Delete allows deleting a path.
	Delete
	// List allows listing the keys under a path.
	List
	// Sudo allows root-protected paths, in addition to the operation's own
	// capability.
	Sudo
	// Deny forbids everything on the rule, whatever else it lists.
	Deny
	// Subscribe allows subscribing to events (Vault).
	Subscribe
	// Recover allows recovering data from a snapshot (newer Vault).
	Recover
	// Scan allows a recursive listing (OpenBao).
	Scan
)

// Granting is every capability except [Deny]: what a root token holds.
const Granting = Create | Read | Update | Patch | Delete | List | Sudo | Subscribe | Recover | Scan

// RootCapability is the name [ACL.Capabilities] reports for a root token.
// It cannot be written in a policy.
const RootCapability = "root"

// capNames lists every capability with its policy name, sorted by name so
// that [Capability.Strings] needs no sort.
var capNames = [...]struct {
	name string
	c    Capability
}{
	{"create", Create},
	{"delete", Delete},
	{"deny", Deny},
	{"list", List},
	{"patch", Patch},
	{"read", Read},
	{"recover", Recover},
	{"scan", Scan},
	{"subscribe", Subscribe},
	{"sudo", Sudo},
	{"update", Update},
}

// ParseCapability returns the capability a policy names. Names are
// case-sensitive, as in Vault; "root" is refused.
func ParseCapability(name string) (Capability, error) {
	for _, cn := range capNames {
		if cn.name == name {
			return cn.c, nil
		}
	}
	if name == RootCapability {
		return 0, fmt.Errorf("capability %q cannot be granted by a policy", name)
	}
	return 0, fmt.Errorf("invalid capability %q", name)
}

// Has reports whether c holds every bit of want (and, for want != Deny, is
// not a deny set).
func (c Capability) Has(want Capability) bool {
	if want != Deny && c&Deny != 0 {
		return false
	}
	return want != 0 && c&want == want
}

// Normalize returns c with [Deny] overriding everything: a set holding Deny
// becomes Deny alone.
func (c Capability) Normalize() Capability {
	if c&Deny != 0 {
		return Deny
	}
	return c
}

// Strings returns the capability names in c, sorted, as the API renders
// them. A set that grants nothing, or holds [Deny], is ["deny"].
func (c Capability) Strings() []string {
	c = c.Normalize()
	if c&Granting == 0 {
		return []string{"deny"}
	}
	out := make([]string, 0, 8)
	for _, cn := range capNames {
		if c&cn.c != 0 {
			out = append(out, cn.name)
		}
	}
	return out
}

// String returns the names of [Capability.Strings] joined by commas.
func (c Capability) String() string {
	return strings.Join(c.Strings(), ",")
}

// Legacy "policy" values and the capability sets they stand for, as Vault
// expands them. Note that "write" predates patch and does not include it.
var legacyPolicies = map[string]Capability{
	"deny":  Deny,
	"read":  Read | List,
	"write": Create | Read | Update | Delete | List,
	"sudo":  Create | Read | Update | Delete | List | Sudo,
}
