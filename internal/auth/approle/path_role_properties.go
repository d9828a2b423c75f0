package approle

import (
	"context"
	"maps"
	"slices"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// roleProperty is one sub-path of a role that reads, sets and resets a
// single setting (role/<name>/token-ttl, ...), as Vault's AppRole offers.
type roleProperty struct {
	// segment is the path segment after the role name.
	segment string
	// fields are the fields the sub-path accepts besides role_name.
	fields   map[string]*framework.FieldSchema
	synopsis string
	// read renders the setting.
	read func(r *roleEntry) *logical.Response
	// update applies the request to r; nil makes the property read-only.
	update func(r *roleEntry, d *framework.FieldData) ([]string, error)
	// reset puts the setting back to its default.
	reset func(r *roleEntry)
}

// requireOne returns the 400 for a property write that supplies none of
// names.
func requireOne(d *framework.FieldData, names ...string) error {
	for _, n := range names {
		if d.Has(n) {
			return nil
		}
	}
	return logical.BadRequest("missing %s", names[0])
}

// tokenFields returns the named token fields' schemas.
func tokenFields(names ...string) map[string]*framework.FieldSchema {
	all := framework.TokenFields()
	out := make(map[string]*framework.FieldSchema, len(names))
	for _, n := range names {
		out[n] = all[n]
	}
	return out
}

// tokenProperty is a property backed by token fields: names[0] is the
// field a write must supply (or one of its aliases, the other names).
func tokenProperty(segment, synopsis string, names []string, read func(t *framework.TokenParams) map[string]any, reset func(t *framework.TokenParams)) roleProperty {
	return roleProperty{
		segment:  segment,
		fields:   tokenFields(names...),
		synopsis: synopsis,
		read:     func(r *roleEntry) *logical.Response { return &logical.Response{Data: read(&r.Token)} },
		update: func(r *roleEntry, d *framework.FieldData) ([]string, error) {
			if err := requireOne(d, names...); err != nil {
				return nil, err
			}
			return r.Token.Parse(d)
		},
		reset: func(r *roleEntry) { reset(&r.Token) },
	}
}

func (b *backend) roleProperties() []roleProperty {
	return []roleProperty{
		tokenProperty("policies", "The policies of the tokens the role's logins create.",
			[]string{"token_policies", "policies"},
			func(t *framework.TokenParams) map[string]any {
				policies := t.Policies
				if policies == nil {
					policies = []string{}
				}
				m := map[string]any{"token_policies": policies}
				if t.LegacyPolicies {
					m["policies"] = policies
				}
				return m
			},
			func(t *framework.TokenParams) { t.Policies, t.LegacyPolicies = nil, false }),
		tokenProperty("token-ttl", "The initial TTL of the tokens the role's logins create.",
			[]string{"token_ttl"},
			func(t *framework.TokenParams) map[string]any { return map[string]any{"token_ttl": seconds(t.TTL)} },
			func(t *framework.TokenParams) { t.TTL = 0 }),
		tokenProperty("token-max-ttl", "The maximum TTL of the tokens the role's logins create.",
			[]string{"token_max_ttl"},
			func(t *framework.TokenParams) map[string]any {
				return map[string]any{"token_max_ttl": seconds(t.MaxTTL)}
			},
			func(t *framework.TokenParams) { t.MaxTTL = 0 }),
		tokenProperty("token-num-uses", "How many requests the tokens the role's logins create may make.",
			[]string{"token_num_uses"},
			func(t *framework.TokenParams) map[string]any { return map[string]any{"token_num_uses": t.NumUses} },
			func(t *framework.TokenParams) { t.NumUses = 0 }),
		tokenProperty("token-bound-cidrs", "The CIDR blocks that may use the tokens the role's logins create.",
			[]string{"token_bound_cidrs"},
			func(t *framework.TokenParams) map[string]any {
				return map[string]any{"token_bound_cidrs": framework.FormatCIDRs(t.BoundCIDRs)}
			},
			func(t *framework.TokenParams) { t.BoundCIDRs = nil }),
		tokenProperty("period", "The period of the tokens the role's logins create.",
			[]string{"token_period", "period"},
			func(t *framework.TokenParams) map[string]any {
				m := map[string]any{"token_period": seconds(t.Period)}
				if t.LegacyPeriod {
					m["period"] = seconds(t.Period)
				}
				return m
			},
			func(t *framework.TokenParams) { t.Period, t.LegacyPeriod = 0, false }),
		{
			segment:  "secret-id-ttl",
			synopsis: "How long the role's secret IDs live.",
			fields: map[string]*framework.FieldSchema{
				"secret_id_ttl": {Type: framework.TypeDurationSecond, Description: "0 means the secret IDs do not expire."},
			},
			read: func(r *roleEntry) *logical.Response {
				return &logical.Response{Data: map[string]any{"secret_id_ttl": seconds(r.SecretIDTTL)}}
			},
			update: func(r *roleEntry, d *framework.FieldData) ([]string, error) {
				if err := requireOne(d, "secret_id_ttl"); err != nil {
					return nil, err
				}
				r.SecretIDTTL = d.Duration("secret_id_ttl")
				return nil, nil
			},
			reset: func(r *roleEntry) { r.SecretIDTTL = 0 },
		},
		{
			segment:  "secret-id-num-uses",
			synopsis: "How many logins each of the role's secret IDs allows.",
			fields: map[string]*framework.FieldSchema{
				"secret_id_num_uses": {Type: framework.TypeInt, Description: "0 means unlimited."},
			},
			read: func(r *roleEntry) *logical.Response {
				return &logical.Response{Data: map[string]any{"secret_id_num_uses": r.SecretIDNumUses}}
			},
			update: func(r *roleEntry, d *framework.FieldData) ([]string, error) {
				if err := requireOne(d, "secret_id_num_uses"); err != nil {
					return nil, err
				}
				r.SecretIDNumUses = d.Int("secret_id_num_uses")
				return nil, nil
			},
			reset: func(r *roleEntry) { r.SecretIDNumUses = 0 },
		},
		{
			segment:  "bind-secret-id",
			synopsis: "Whether a login with the role must present a secret_id.",
			fields: map[string]*framework.FieldSchema{
				"bind_secret_id": {Type: framework.TypeBool, Description: "Deleting the setting sets it back to true."},
			},
			read: func(r *roleEntry) *logical.Response {
				return &logical.Response{Data: map[string]any{"bind_secret_id": r.BindSecretID}}
			},
			update: func(r *roleEntry, d *framework.FieldData) ([]string, error) {
				if err := requireOne(d, "bind_secret_id"); err != nil {
					return nil, err
				}
				r.BindSecretID = d.Bool("bind_secret_id")
				return nil, nil
			},
			reset: func(r *roleEntry) { r.BindSecretID = true },
		},
		b.cidrProperty("secret-id-bound-cidrs", "secret_id_bound_cidrs", nil),
		b.cidrProperty("bound-cidr-list", "bound_cidr_list",
			[]string{`The "bound_cidr_list" parameter is deprecated; use "secret_id_bound_cidrs".`}),
		{
			segment:  "local-secret-ids",
			synopsis: "Whether the role's secret IDs are local to this cluster (set at creation only).",
			read: func(r *roleEntry) *logical.Response {
				return &logical.Response{Data: map[string]any{"local_secret_ids": r.LocalSecretIDs}}
			},
		},
	}
}

// cidrProperty is secret-id-bound-cidrs or its legacy name: field names
// the setting in requests and responses.
func (b *backend) cidrProperty(segment, field string, warnings []string) roleProperty {
	return roleProperty{
		segment:  segment,
		synopsis: "The CIDR blocks logins with the role must come from.",
		fields: map[string]*framework.FieldSchema{
			field: {Type: framework.TypeCommaStringSlice, Description: "A comma-separated string or a list of CIDR blocks or addresses."},
		},
		read: func(r *roleEntry) *logical.Response {
			return &logical.Response{
				Data:     map[string]any{field: framework.FormatCIDRs(r.SecretIDBoundCIDRs)},
				Warnings: slices.Clone(warnings),
			}
		},
		update: func(r *roleEntry, d *framework.FieldData) ([]string, error) {
			cidrs, err := framework.ParseCIDRs(field, d.StringSlice(field))
			if err != nil {
				return nil, err
			}
			if len(cidrs) == 0 {
				return nil, logical.BadRequest("missing %s", field)
			}
			r.SecretIDBoundCIDRs = cidrs
			return slices.Clone(warnings), nil
		},
		reset: func(r *roleEntry) { r.SecretIDBoundCIDRs = nil },
	}
}

// pathRoleProperties builds one path per property.
func (b *backend) pathRoleProperties() []*framework.Path {
	props := b.roleProperties()
	paths := make([]*framework.Path, 0, len(props))
	for _, p := range props {
		fields := map[string]*framework.FieldSchema{"role_name": roleNameField()}
		maps.Copy(fields, p.fields)
		ops := map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation: {Handler: b.propertyRead(p), Summary: "Read the setting."},
		}
		if p.update != nil {
			ops[logical.UpdateOperation] = framework.OperationHandler{Handler: b.propertyUpdate(p), Summary: "Change the setting."}
			ops[logical.DeleteOperation] = framework.OperationHandler{Handler: b.propertyReset(p), Summary: "Reset the setting to its default."}
		}
		paths = append(paths, &framework.Path{
			Pattern:      roleNamePattern + "/" + p.segment,
			Fields:       fields,
			Operations:   ops,
			HelpSynopsis: p.synopsis,
		})
	}
	return paths
}

func (b *backend) propertyRead(p roleProperty) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		name, err := roleName(d)
		if err != nil {
			return nil, err
		}
		r, unlock, err := b.lockedRole(ctx, req.Storage, name, false, logical.ErrNotFound)
		if err != nil {
			return nil, err
		}
		defer unlock()
		return p.read(r), nil
	}
}

func (b *backend) propertyUpdate(p roleProperty) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		return b.changeRole(ctx, req, d, true, func(r *roleEntry) ([]string, error) { return p.update(r, d) })
	}
}

func (b *backend) propertyReset(p roleProperty) framework.OperationFunc {
	return func(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		return b.changeRole(ctx, req, d, false, func(r *roleEntry) ([]string, error) {
			p.reset(r)
			return nil, nil
		})
	}
}

// changeRole applies change to the request's role under its lock, checks
// and saves it. A missing role is a 404 when mustExist, else nothing to do
// (a delete).
func (b *backend) changeRole(ctx context.Context, req *logical.Request, d *framework.FieldData, mustExist bool, change func(*roleEntry) ([]string, error)) (*logical.Response, error) {
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
	if r == nil {
		if mustExist {
			return nil, errNoRole(name)
		}
		return nil, nil
	}
	warnings, err := change(r)
	if err != nil {
		return nil, err
	}
	more, err := b.checkRole(r)
	if err != nil {
		return nil, err
	}
	if err := b.saveRole(ctx, req.Storage, r, r.RoleID); err != nil {
		return nil, err
	}
	return warningsResponse(append(warnings, more...)), nil
}
