package database

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// roleEntry is a stored dynamic role.
type roleEntry struct {
	DBName     string        `json:"db_name"`
	Creation   []string      `json:"creation_statements"`
	Revocation []string      `json:"revocation_statements,omitempty"`
	Rollback   []string      `json:"rollback_statements,omitempty"`
	Renew      []string      `json:"renew_statements,omitempty"`
	DefaultTTL time.Duration `json:"default_ttl"`
	MaxTTL     time.Duration `json:"max_ttl"`
}

func loadRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	var r roleEntry
	found, err := framework.GetJSON(ctx, s, rolePrefix+name, &r)
	if err != nil || !found {
		return nil, err
	}
	return &r, nil
}

// parseStatements turns a statements field into a list. A single string
// may be a JSON array of strings or base64 (as Vault accepts); otherwise
// it is kept whole, several statements separated by ';' included: the
// driver sends each element as one query, so ';' inside a literal or a
// DO block is fine. Blank elements are dropped.
func parseStatements(in []string) []string {
	if len(in) == 1 {
		s := strings.TrimSpace(in[0])
		if dec, err := base64.StdEncoding.DecodeString(s); err == nil && len(dec) > 0 && utf8.Valid(dec) {
			s = strings.TrimSpace(string(dec))
		}
		var list []string
		if strings.HasPrefix(s, "[") && json.Unmarshal([]byte(s), &list) == nil {
			in = list
		} else {
			in = []string{s}
		}
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if strings.TrimSpace(s) != "" {
			out = append(out, s)
		}
	}
	return out
}

func (b *backend) pathRoleList() *framework.Path {
	return listPath(`roles/?`, rolePrefix, "List the roles.", "List the names of the dynamic roles.")
}

func (b *backend) pathRole() *framework.Path {
	return &framework.Path{
		Pattern: `roles/` + namePattern,
		Fields: map[string]*framework.FieldSchema{
			"name":    nameField("role"),
			"db_name": {Type: framework.TypeString, Description: "The connection (config/<db_name>) the role's users are created through."},
			"creation_statements": {Type: framework.TypeStringSlice,
				Description: "Statements that create the user ({{name}}, {{password}}, {{expiration}}), run in one transaction."},
			"revocation_statements": {Type: framework.TypeStringSlice,
				Description: "Statements that remove the user ({{name}}); by default its objects go to the admin user and the role is dropped."},
			"rollback_statements": {Type: framework.TypeStringSlice,
				Description: "Statements that undo a failed creation ({{name}}); the user is dropped afterwards in any case."},
			"renew_statements": {Type: framework.TypeStringSlice,
				Description: "Statements that extend the user's validity ({{name}}, {{expiration}}); by default ALTER ROLE ... VALID UNTIL."},
			"default_ttl": {Type: framework.TypeDurationSecond, Description: "The lease TTL of issued credentials (0: the mount's default)."},
			"max_ttl":     {Type: framework.TypeDurationSecond, Description: "The most a lease can be renewed to, from issue (0: the mount's maximum)."},
			"credential_type": {Type: framework.TypeString, Default: "password",
				Description: `The kind of credential issued; only "password".`},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.handleRoleRead, Summary: "Read a role."},
			logical.CreateOperation: {Handler: b.handleRoleWrite, Summary: "Create a role."},
			logical.UpdateOperation: {Handler: b.handleRoleWrite, Summary: "Change a role; fields not given keep their values."},
			logical.DeleteOperation: {Handler: b.handleRoleDelete, Summary: "Delete a role; users already issued live until their leases end."},
		},
		ExistenceCheck: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
			r, err := loadRole(ctx, req.Storage, d.String("name"))
			return r != nil, err
		},
		HelpSynopsis: "Create, read and delete a dynamic role.",
		HelpDescription: "A role names a connection and the statements that create, renew and remove a user. Each read of " +
			"creds/<role> creates a user under a lease.",
	}
}

func (b *backend) handleRoleRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	r, err := loadRole(ctx, req.Storage, d.String("name"))
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{
		"db_name":               r.DBName,
		"creation_statements":   nonNil(r.Creation),
		"revocation_statements": nonNil(r.Revocation),
		"rollback_statements":   nonNil(r.Rollback),
		"renew_statements":      nonNil(r.Renew),
		"default_ttl":           seconds(r.DefaultTTL),
		"max_ttl":               seconds(r.MaxTTL),
		"credential_type":       "password",
	}}, nil
}

func (b *backend) handleRoleWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	b.roleMu.Lock()
	defer b.roleMu.Unlock()
	if st, err := loadStaticRole(ctx, req.Storage, name); err != nil || st != nil {
		if err != nil {
			return nil, err
		}
		return nil, nameTaken(name, "static")
	}
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &roleEntry{}
	}
	if ct := d.String("credential_type"); ct != "password" {
		return nil, logical.BadRequest("credential_type %q is not supported; only \"password\" is", ct)
	}
	if d.Has("db_name") {
		r.DBName = d.String("db_name")
	}
	for field, dst := range map[string]*[]string{
		"creation_statements":   &r.Creation,
		"revocation_statements": &r.Revocation,
		"rollback_statements":   &r.Rollback,
		"renew_statements":      &r.Renew,
	} {
		if d.Has(field) {
			*dst = parseStatements(d.StringSlice(field))
		}
	}
	if d.Has("default_ttl") {
		r.DefaultTTL = d.Duration("default_ttl")
	}
	if d.Has("max_ttl") {
		r.MaxTTL = d.Duration("max_ttl")
	}
	switch {
	case r.DBName == "":
		return nil, logical.BadRequest("db_name is required")
	case len(r.Creation) == 0:
		return nil, logical.BadRequest("creation_statements are required")
	case r.MaxTTL > 0 && r.DefaultTTL > r.MaxTTL:
		return nil, logical.BadRequest("default_ttl cannot be greater than max_ttl")
	}
	if err := framework.PutJSON(ctx, req.Storage, rolePrefix+name, r); err != nil {
		return nil, err
	}
	return nil, nil
}

func (b *backend) handleRoleDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, req.Storage.Delete(ctx, rolePrefix+d.String("name"))
}
