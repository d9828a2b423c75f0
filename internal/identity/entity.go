package identity

import (
	"maps"
	"strings"
	"time"
)

// Entity is one workload or person, with the aliases its logins proved.
// An Entity handed out by the store is never modified; treat it as
// read-only.
type Entity struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Metadata is the entity's own metadata (not its aliases').
	Metadata map[string]string `json:"metadata,omitempty"`
	// Policies are granted to every token of the entity, on top of the
	// token's own (identity_policies).
	Policies       []string  `json:"policies,omitempty"`
	Disabled       bool      `json:"disabled,omitempty"`
	Aliases        []*Alias  `json:"aliases,omitempty"`
	CreationTime   time.Time `json:"creation_time"`
	LastUpdateTime time.Time `json:"last_update_time"`

	// rev is the store-wide revision of this copy (not persisted).
	rev uint64
}

// Alias ties an entity to a principal of one auth mount.
type Alias struct {
	ID string `json:"id"`
	// CanonicalID is the id of the entity the alias belongs to.
	CanonicalID   string `json:"canonical_id"`
	MountAccessor string `json:"mount_accessor"`
	// MountPath and MountType are the mount's as of the latest login.
	MountPath string `json:"mount_path"`
	MountType string `json:"mount_type"`
	// Name is unique within the mount: a service account uid, a JWT's
	// user claim, a role id.
	Name string `json:"name"`
	// Metadata is what the latest login proved.
	Metadata       map[string]string `json:"metadata,omitempty"`
	CreationTime   time.Time         `json:"creation_time"`
	LastUpdateTime time.Time         `json:"last_update_time"`
}

// Revision identifies this copy of the entity: every stored change of any
// entity gets a new one, so (ID, Revision) names the entity's contents.
func (e *Entity) Revision() uint64 { return e.rev }

// AliasFor returns the entity's alias on the mount with the accessor, or
// nil.
func (e *Entity) AliasFor(accessor string) *Alias {
	for _, a := range e.Aliases {
		if a.MountAccessor == accessor {
			return a
		}
	}
	return nil
}

// clone returns a deep copy of e (without its revision).
func (e *Entity) clone() *Entity {
	c := *e
	c.rev = 0
	c.Metadata = maps.Clone(e.Metadata)
	c.Policies = append([]string(nil), e.Policies...)
	c.Aliases = make([]*Alias, len(e.Aliases))
	for i, a := range e.Aliases {
		ac := *a
		ac.Metadata = maps.Clone(a.Metadata)
		c.Aliases[i] = &ac
	}
	return &c
}

// Template resolves one identity template of an ACL policy path for the
// entity (expr is the text between the braces, trimmed): identity.entity.id,
// identity.entity.name, identity.entity.metadata.<key>, and
// identity.entity.aliases.<mount accessor>.{id,name,metadata.<key>}. It
// returns false for anything the entity does not have (a missing key, no
// alias on that mount, groups, which Vigil does not have), so the rule
// holding the template is skipped. A nil entity resolves nothing.
func (e *Entity) Template(expr string) (string, bool) {
	if e == nil {
		return "", false
	}
	rest, ok := strings.CutPrefix(expr, "identity.entity.")
	if !ok {
		return "", false
	}
	switch {
	case rest == "id":
		return e.ID, true
	case rest == "name":
		return e.Name, true
	case strings.HasPrefix(rest, "metadata."):
		v, ok := e.Metadata[strings.TrimPrefix(rest, "metadata.")]
		return v, ok
	case strings.HasPrefix(rest, "aliases."):
		accessor, field, ok := strings.Cut(strings.TrimPrefix(rest, "aliases."), ".")
		if !ok {
			return "", false
		}
		a := e.AliasFor(accessor)
		if a == nil {
			return "", false
		}
		switch {
		case field == "id":
			return a.ID, true
		case field == "name":
			return a.Name, true
		case strings.HasPrefix(field, "metadata."):
			v, ok := a.Metadata[strings.TrimPrefix(field, "metadata.")]
			return v, ok
		}
	}
	return "", false
}
