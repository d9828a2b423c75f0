package approle

import (
	"context"
	"maps"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// roleNamePattern captures the role name of a role path; the field's type
// (TypeNameString) then rejects names that are not valid with a 400.
const roleNamePattern = `role/(?P<role_name>[^/]+)`

func roleNameField() *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeNameString, Description: "The name of the role; names are case-insensitive."}
}

// roleName returns the request's role name, lowercased.
func roleName(d *framework.FieldData) (string, error) {
	name := strings.ToLower(d.String("role_name"))
	if len(name) >= maxInputLen {
		return "", logical.BadRequest("role_name must be shorter than %d bytes", maxInputLen)
	}
	return name, nil
}

// errNoRole is the answer to a change aimed at a role that does not exist.
func errNoRole(name string) error {
	return logical.CodedErrorf(404, "role %q does not exist", name)
}

func (b *backend) pathRoleList() *framework.Path {
	return &framework.Path{
		Pattern: `role/?`,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: {Handler: b.handleRoleList, Summary: "List the roles."},
		},
		HelpSynopsis: "List the names of the roles.",
	}
}

func (b *backend) handleRoleList(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, rolePrefix)
	if err != nil {
		return nil, err
	}
	return framework.ListResponse(names)
}

// roleFields are the fields of role/<name>.
func roleFields() map[string]*framework.FieldSchema {
	f := framework.TokenFields()
	maps.Copy(f, map[string]*framework.FieldSchema{
		"role_name": roleNameField(),
		"role_id":   {Type: framework.TypeString, Sensitive: true, Description: "The role_id of the role; a random UUID when the role is created without one."},
		"bind_secret_id": {Type: framework.TypeBool, Default: true,
			Description: "Whether a login must present a secret_id."},
		"secret_id_bound_cidrs": {Type: framework.TypeCommaStringSlice,
			Description: "CIDR blocks (or single addresses) logins with this role must come from."},
		"bound_cidr_list": {Type: framework.TypeCommaStringSlice,
			Description: `Deprecated: use "secret_id_bound_cidrs".`},
		"secret_id_num_uses": {Type: framework.TypeInt,
			Description: "How many logins each secret ID of the role allows; 0 means unlimited."},
		"secret_id_ttl": {Type: framework.TypeDurationSecond,
			Description: "How long each secret ID of the role lives; 0 means it does not expire."},
		"local_secret_ids": {Type: framework.TypeBool,
			Description: "Whether the role's secret IDs are local to this cluster; set only at creation."},
	})
	return f
}

func (b *backend) pathRole() *framework.Path {
	return &framework.Path{
		Pattern: roleNamePattern,
		Fields:  roleFields(),
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.handleRoleRead, Summary: "Read a role."},
			logical.CreateOperation: {Handler: b.handleRoleWrite, Summary: "Create a role."},
			logical.UpdateOperation: {Handler: b.handleRoleWrite, Summary: "Change a role."},
			logical.DeleteOperation: {Handler: b.handleRoleDelete, Summary: "Delete a role, its role_id and all its secret IDs."},
		},
		ExistenceCheck: b.roleExists,
		HelpSynopsis:   "Create, read, change and delete a role.",
		HelpDescription: "A role sets the constraints of a login (bind_secret_id, secret_id_bound_cidrs) and the " +
			"properties of the tokens its logins create (the token_* fields). At least one constraint must be set.",
	}
}

func (b *backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	name, err := roleName(d)
	if err != nil {
		return false, err
	}
	r, err := loadRole(ctx, req.Storage, name)
	return r != nil, err
}

func (b *backend) handleRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	r, unlock, err := b.lockedRole(ctx, req.Storage, name, false, logical.ErrNotFound)
	if err != nil {
		return nil, err
	}
	defer unlock()
	data := map[string]any{
		"bind_secret_id":        r.BindSecretID,
		"local_secret_ids":      r.LocalSecretIDs,
		"secret_id_bound_cidrs": framework.FormatCIDRs(r.SecretIDBoundCIDRs),
		"secret_id_num_uses":    r.SecretIDNumUses,
		"secret_id_ttl":         seconds(r.SecretIDTTL),
	}
	r.Token.ResponseData(data)
	return &logical.Response{Data: data}, nil
}

func (b *backend) handleRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	create := r == nil
	if create && req.Operation != logical.CreateOperation {
		// The existence check saw the role; it has been deleted since.
		return nil, errNoRole(name)
	}
	if create {
		r = &roleEntry{Name: name, BindSecretID: true}
	}
	previousRoleID := r.RoleID

	warnings, err := r.Token.Parse(d)
	if err != nil {
		return nil, err
	}
	if d.Has("local_secret_ids") {
		if !create {
			return nil, logical.BadRequest("local_secret_ids can only be set when the role is created")
		}
		r.LocalSecretIDs = d.Bool("local_secret_ids")
	}
	if d.Has("bind_secret_id") {
		r.BindSecretID = d.Bool("bind_secret_id")
	}
	switch {
	case d.Has("secret_id_bound_cidrs"):
		if r.SecretIDBoundCIDRs, err = framework.ParseCIDRs("secret_id_bound_cidrs", d.StringSlice("secret_id_bound_cidrs")); err != nil {
			return nil, err
		}
	case d.Has("bound_cidr_list"):
		if r.SecretIDBoundCIDRs, err = framework.ParseCIDRs("bound_cidr_list", d.StringSlice("bound_cidr_list")); err != nil {
			return nil, err
		}
		warnings = append(warnings, `The "bound_cidr_list" parameter is deprecated; use "secret_id_bound_cidrs".`)
	}
	if d.Has("secret_id_num_uses") {
		r.SecretIDNumUses = d.Int("secret_id_num_uses")
	}
	if d.Has("secret_id_ttl") {
		r.SecretIDTTL = d.Duration("secret_id_ttl")
	}
	if d.Has("role_id") {
		id, err := parseRoleID(d)
		if err != nil {
			return nil, err
		}
		r.RoleID = id
	} else if create {
		r.RoleID = secret.UUID()
	}
	more, err := b.checkRole(r)
	if err != nil {
		return nil, err
	}
	if err := b.saveRole(ctx, req.Storage, r, previousRoleID); err != nil {
		return nil, err
	}
	return warningsResponse(append(warnings, more...)), nil
}

// parseRoleID reads a custom role_id.
func parseRoleID(d *framework.FieldData) (string, error) {
	id := strings.TrimSpace(d.String("role_id"))
	switch {
	case id == "":
		return "", logical.BadRequest("missing role_id")
	case len(id) > maxInputLen:
		return "", logical.BadRequest("role_id must be at most %d bytes", maxInputLen)
	}
	return id, nil
}

// checkRole validates a role about to be saved. It returns warnings for
// settings the mount will cap.
func (b *backend) checkRole(r *roleEntry) ([]string, error) {
	if r.SecretIDNumUses < 0 {
		return nil, logical.BadRequest("secret_id_num_uses must not be negative")
	}
	if !r.BindSecretID && len(r.SecretIDBoundCIDRs) == 0 && len(r.Token.BoundCIDRs) == 0 {
		return nil, logical.BadRequest("at least one constraint must be enabled on the role: bind_secret_id, secret_id_bound_cidrs or token_bound_cidrs")
	}
	if err := r.Token.Validate(); err != nil {
		return nil, err
	}
	var warnings []string
	if b.system != nil {
		if limit := b.system.MaxLeaseTTL(); limit > 0 {
			if r.Token.Period > limit {
				return nil, logical.BadRequest("token_period of %s is greater than the mount's maximum lease TTL of %s", r.Token.Period, limit)
			}
			if r.Token.MaxTTL > limit {
				warnings = append(warnings, "token_max_ttl is greater than the mount's maximum lease TTL; the tokens' maximum TTL will be capped to it")
			}
		}
	}
	return warnings, nil
}

// saveRole stores r and, when its role_id changed from previous, moves the
// role_id index. The caller holds r's role lock exclusively. A role_id
// another role uses is refused with a 400.
func (b *backend) saveRole(ctx context.Context, s logical.Storage, r *roleEntry, previous string) error {
	var w writeOps
	if r.RoleID == previous {
		if err := w.put(roleKey(r.Name), r); err != nil {
			return err
		}
		return w.apply(ctx, s)
	}
	h, err := b.mac(ctx, s, labelRoleID, r.RoleID)
	if err != nil {
		return err
	}
	lock := b.roleIDLock(h)
	lock.Lock()
	defer lock.Unlock()
	var idx roleIDEntry
	found, err := getJSON(ctx, s, roleIDKey(h), &idx)
	if err != nil {
		return err
	}
	if found && idx.Name != r.Name {
		// The index may be stale (an interrupted change); the role it
		// names decides.
		other, err := loadRole(ctx, s, idx.Name)
		if err != nil {
			return err
		}
		if other != nil && secret.Equal([]byte(other.RoleID), []byte(r.RoleID)) {
			return logical.BadRequest("role_id is already in use by another role")
		}
	}
	// The new index first, then the role, then the old index: every
	// prefix leaves the role reachable by one of its role_ids.
	if err := w.put(roleIDKey(h), roleIDEntry{Name: r.Name}); err != nil {
		return err
	}
	if err := w.put(roleKey(r.Name), r); err != nil {
		return err
	}
	if previous != "" {
		ph, err := b.mac(ctx, s, labelRoleID, previous)
		if err != nil {
			return err
		}
		w.del(roleIDKey(ph))
	}
	return w.apply(ctx, s)
}

func (b *backend) handleRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	lock := b.roleLock(name)
	lock.Lock()
	defer lock.Unlock()
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil || r == nil {
		return nil, err
	}
	// The secret IDs go first: a role deleted half-way keeps working or
	// loses only secret IDs, and a new role with the same name can never
	// inherit old ones.
	if _, err := b.removeRoleSecretIDs(ctx, req.Storage, name, nil); err != nil {
		return nil, err
	}
	h, err := b.mac(ctx, req.Storage, labelRoleID, r.RoleID)
	if err != nil {
		return nil, err
	}
	idLock := b.roleIDLock(h)
	idLock.Lock()
	defer idLock.Unlock()
	var w writeOps
	var idx roleIDEntry
	found, err := getJSON(ctx, req.Storage, roleIDKey(h), &idx)
	if err != nil {
		return nil, err
	}
	if found && idx.Name == name {
		w.del(roleIDKey(h))
	}
	w.del(roleKey(name))
	return nil, w.apply(ctx, req.Storage)
}

// removeRoleSecretIDs removes the secret IDs of the role called name for
// which remove returns true (all of them when remove is nil), and returns
// how many it removed. The caller holds the role's lock.
func (b *backend) removeRoleSecretIDs(ctx context.Context, s logical.Storage, name string, remove func(*secretIDEntry) bool) (int, error) {
	hmacs, err := s.List(ctx, secretIDDir(name))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, h := range hmacs {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if strings.HasSuffix(h, "/") {
			continue
		}
		removed, err := b.removeSecretIDIf(ctx, s, secretIDKey(name, h), h, remove)
		if err != nil {
			return n, err
		}
		if removed {
			n++
		}
	}
	return n, nil
}

// removeSecretIDIf removes the secret ID at key, whose HMAC is h, under its
// lock, if remove (nil: always) says so.
func (b *backend) removeSecretIDIf(ctx context.Context, s logical.Storage, key, h string, remove func(*secretIDEntry) bool) (bool, error) {
	lock := b.secretIDLock(h)
	lock.Lock()
	defer lock.Unlock()
	e, err := loadSecretID(ctx, s, key)
	if err != nil || e == nil {
		return false, err
	}
	if remove != nil && !remove(e) {
		return false, nil
	}
	var w writeOps
	if err := b.removeSecretID(ctx, s, &w, key, e); err != nil {
		return false, err
	}
	return true, w.apply(ctx, s)
}

func (b *backend) pathRoleID() *framework.Path {
	return &framework.Path{
		Pattern: roleNamePattern + `/role-id`,
		Fields: map[string]*framework.FieldSchema{
			"role_name": roleNameField(),
			"role_id":   {Type: framework.TypeString, Sensitive: true, Description: "The new role_id; it must not be used by another role."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.handleRoleIDRead, Summary: "Read the role's role_id."},
			logical.UpdateOperation: {Handler: b.handleRoleIDWrite, Summary: "Set a custom role_id."},
		},
		HelpSynopsis: "Read or set the role_id a login names the role with.",
	}
}

func (b *backend) handleRoleIDRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	r, unlock, err := b.lockedRole(ctx, req.Storage, name, false, logical.ErrNotFound)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return &logical.Response{Data: map[string]any{"role_id": r.RoleID}}, nil
}

func (b *backend) handleRoleIDWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	id, err := parseRoleID(d)
	if err != nil {
		return nil, err
	}
	r, unlock, err := b.lockedRole(ctx, req.Storage, name, true, errNoRole(name))
	if err != nil {
		return nil, err
	}
	defer unlock()
	previous := r.RoleID
	r.RoleID = id
	return nil, b.saveRole(ctx, req.Storage, r, previous)
}

// warningsResponse is nil (204) without warnings.
func warningsResponse(warnings []string) *logical.Response {
	if len(warnings) == 0 {
		return nil
	}
	return &logical.Response{Warnings: warnings}
}
