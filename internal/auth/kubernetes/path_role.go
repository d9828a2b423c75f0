package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// Alias name sources.
const (
	aliasSourceUID  = "serviceaccount_uid"
	aliasSourceName = "serviceaccount_name"
)

// maxRoleNameLen bounds role names.
const maxRoleNameLen = 512

// roleEntry is a role.
type roleEntry struct {
	Name              string                `json:"name"`
	BoundSANames      []string              `json:"bound_service_account_names"`
	BoundSANamespaces []string              `json:"bound_service_account_namespaces"`
	Audience          string                `json:"audience,omitempty"`
	AliasNameSource   string                `json:"alias_name_source"`
	Token             framework.TokenParams `json:"token"`
}

func roleFields() map[string]*framework.FieldSchema {
	f := framework.TokenFields()
	maps.Copy(f, map[string]*framework.FieldSchema{
		"name": {Type: framework.TypeNameString, Description: "The role's name; names are case-insensitive."},
		"bound_service_account_names": {Type: framework.TypeCommaStringSlice,
			Description: `Service account names a login may use; "*" for any, '*' as a wildcard inside a name ("app-*").`},
		"bound_service_account_namespaces": {Type: framework.TypeCommaStringSlice,
			Description: `Namespaces a login may come from; "*" for any, '*' as a wildcard inside a name ("team-*").`},
		"audience": {Type: framework.TypeString,
			Description: "The aud the JWT must carry; also the audience of the TokenReview."},
		// Declared so that a role asking for it is refused rather than
		// quietly narrower: matching labels needs Namespace reads.
		"bound_service_account_namespace_selector": {Type: framework.TypeString,
			Description: "Not supported: list the namespaces in bound_service_account_namespaces."},
		"alias_name_source": {Type: framework.TypeString,
			Description: `The alias name: "serviceaccount_uid" (the default) or "serviceaccount_name" (<namespace>/<name>).`},
	})
	return f
}

func (b *backend) pathRoleList() *framework.Path {
	return &framework.Path{
		Pattern: `role/?`,
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ListOperation: {Handler: b.listRoles, Summary: "List the roles."},
		},
		HelpSynopsis: "List the names of the roles.",
	}
}

func (b *backend) pathRole() *framework.Path {
	return &framework.Path{
		Pattern: `role/(?P<name>[^/]+)`,
		Fields:  roleFields(),
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.readRole, Summary: "Read a role."},
			logical.CreateOperation: {Handler: b.writeRole, Summary: "Create a role."},
			logical.UpdateOperation: {Handler: b.writeRole, Summary: "Update a role."},
			logical.DeleteOperation: {Handler: b.deleteRole, Summary: "Delete a role."},
		},
		ExistenceCheck: b.roleExists,
		HelpSynopsis:   "A role: the service accounts and namespaces that may log in with it, and the token they get.",
	}
}

// roleName returns the request's role name, lowercased.
func roleName(d *framework.FieldData) (string, error) {
	name := strings.ToLower(d.String("name"))
	if len(name) > maxRoleNameLen {
		return "", logical.BadRequest("role name must be at most %d bytes", maxRoleNameLen)
	}
	return name, nil
}

// loadRole returns the role called name, or nil when there is none.
func loadRole(ctx context.Context, s logical.Storage, name string) (*roleEntry, error) {
	r := new(roleEntry)
	found, err := framework.GetJSON(ctx, s, rolePrefix+strings.ToLower(name), r)
	if err != nil || !found {
		return nil, err
	}
	return r, nil
}

func (b *backend) roleExists(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
	name, err := roleName(d)
	if err != nil {
		return false, err
	}
	r, err := loadRole(ctx, req.Storage, name)
	return r != nil, err
}

func (b *backend) listRoles(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	names, err := req.Storage.List(ctx, rolePrefix)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list roles: %w", err)
	}
	return framework.ListResponse(names)
}

func (b *backend) deleteRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	if err := req.Storage.Delete(ctx, rolePrefix+name); err != nil {
		return nil, fmt.Errorf("kubernetes: delete role %q: %w", name, err)
	}
	return nil, nil
}

func (b *backend) readRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.ErrNotFound
	}
	data := map[string]any{
		"bound_service_account_names":              nonNil(r.BoundSANames),
		"bound_service_account_namespaces":         nonNil(r.BoundSANamespaces),
		"bound_service_account_namespace_selector": "",
		"audience":          r.Audience,
		"alias_name_source": r.AliasNameSource,
	}
	r.Token.ResponseData(data)
	return &logical.Response{Data: data}, nil
}

func (b *backend) writeRole(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name, err := roleName(d)
	if err != nil {
		return nil, err
	}
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		r = &roleEntry{Name: name, AliasNameSource: aliasSourceUID}
	}
	if d.Has("bound_service_account_names") {
		r.BoundSANames = d.StringSlice("bound_service_account_names")
	}
	if d.Has("bound_service_account_namespaces") {
		r.BoundSANamespaces = d.StringSlice("bound_service_account_namespaces")
	}
	if strings.TrimSpace(d.String("bound_service_account_namespace_selector")) != "" {
		return nil, logical.BadRequest("bound_service_account_namespace_selector is not supported; list the namespaces in bound_service_account_namespaces")
	}
	if d.Has("audience") {
		r.Audience = strings.TrimSpace(d.String("audience"))
	}
	if d.Has("alias_name_source") {
		r.AliasNameSource = strings.TrimSpace(d.String("alias_name_source"))
		if r.AliasNameSource == "" {
			r.AliasNameSource = aliasSourceUID
		}
	}
	warnings, err := r.Token.Parse(d)
	if err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: encode role %q: %w", name, err)
	}
	if err := req.Storage.Put(ctx, rolePrefix+name, raw); err != nil {
		return nil, fmt.Errorf("kubernetes: write role %q: %w", name, err)
	}
	if r.Audience == "" {
		warnings = append(warnings, `the role has no "audience": a token a pod made for another service logs in too; `+
			`set audience (a mount with token_validation=jwks refuses logins to roles without one)`)
	}
	if len(warnings) == 0 {
		return nil, nil
	}
	return &logical.Response{Warnings: warnings}, nil
}

// validate checks a role about to be written, with the 400 the write gets.
func (r *roleEntry) validate() error {
	switch {
	case len(r.BoundSANames) == 0:
		return logical.BadRequest(`"bound_service_account_names" can not be empty`)
	case len(r.BoundSANamespaces) == 0:
		return logical.BadRequest(`"bound_service_account_namespaces" can not be empty`)
	case len(r.BoundSANames) > 1 && slices.Contains(r.BoundSANames, "*"):
		return logical.BadRequest(`"bound_service_account_names" can not mix "*" with other values`)
	case len(r.BoundSANamespaces) > 1 && slices.Contains(r.BoundSANamespaces, "*"):
		return logical.BadRequest(`"bound_service_account_namespaces" can not mix "*" with other values`)
	case slices.Equal(r.BoundSANames, []string{"*"}) && slices.Equal(r.BoundSANamespaces, []string{"*"}):
		return logical.BadRequest(`"bound_service_account_names" and "bound_service_account_namespaces" can not both be "*"`)
	case r.AliasNameSource != aliasSourceUID && r.AliasNameSource != aliasSourceName:
		return logical.BadRequest(`invalid alias_name_source %q: want "serviceaccount_uid" or "serviceaccount_name"`, r.AliasNameSource)
	}
	return r.Token.Validate()
}
