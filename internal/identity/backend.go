package identity

import (
	"context"
	"maps"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

const backendHelp = `The identity store: the entities behind tokens and the aliases that tie
them to what each auth method proved. Entities are created at first login.`

// NewBackend returns the identity/ mount's backend over s.
func NewBackend(s *Store) (logical.Backend, error) {
	b := &backend{store: s}
	idField := &framework.FieldSchema{Type: framework.TypeString, Description: "The entity's id."}
	nameField := &framework.FieldSchema{Type: framework.TypeString, Description: "The entity's name."}
	aliasIDField := &framework.FieldSchema{Type: framework.TypeString, Description: "The alias's id."}
	return framework.NewBackend(backendHelp, []*framework.Path{
		{
			Pattern: `entity/id/?`,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: {Handler: b.listByID, Summary: "List entities by id."},
			},
			HelpSynopsis: "List the entities' ids, with their names and aliases.",
		},
		{
			Pattern: `entity/id/(?P<id>[^/]+)`,
			Fields:  map[string]*framework.FieldSchema{"id": idField},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   {Handler: b.readByID, Summary: "Read an entity by id."},
				logical.DeleteOperation: {Handler: b.deleteByID, Summary: "Delete an entity by id."},
			},
			HelpSynopsis: "An entity, by id.",
		},
		{
			Pattern: `entity/name/?`,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: {Handler: b.listByName, Summary: "List entities by name."},
			},
			HelpSynopsis: "List the entities' names.",
		},
		{
			Pattern: `entity/name/(?P<name>[^/]+)`,
			Fields:  map[string]*framework.FieldSchema{"name": nameField},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   {Handler: b.readByName, Summary: "Read an entity by name."},
				logical.DeleteOperation: {Handler: b.deleteByName, Summary: "Delete an entity by name."},
			},
			HelpSynopsis: "An entity, by name.",
		},
		{
			Pattern: `entity-alias/id/?`,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: {Handler: b.listAliases, Summary: "List entity aliases by id."},
			},
			HelpSynopsis: "List the aliases' ids, with their mounts and names.",
		},
		{
			Pattern: `entity-alias/id/(?P<id>[^/]+)`,
			Fields:  map[string]*framework.FieldSchema{"id": aliasIDField},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   {Handler: b.readAlias, Summary: "Read an entity alias by id."},
				logical.DeleteOperation: {Handler: b.deleteAlias, Summary: "Delete an entity alias by id."},
			},
			HelpSynopsis: "An entity alias, by id.",
		},
		{
			Pattern: `lookup/entity`,
			Fields: map[string]*framework.FieldSchema{
				"id":                   idField,
				"name":                 nameField,
				"alias_id":             aliasIDField,
				"alias_name":           {Type: framework.TypeString, Description: "An alias's name (with alias_mount_accessor)."},
				"alias_mount_accessor": {Type: framework.TypeString, Description: "The accessor of the alias's auth mount (with alias_name)."},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: {Handler: b.lookupEntity, Summary: "Find an entity by one of its identifiers."},
			},
			HelpSynopsis: "Find an entity by id, name, alias id, or alias name and mount.",
		},
	})
}

type backend struct {
	store *Store
}

func (b *backend) listByID(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	ents := b.store.Entities()
	if len(ents) == 0 {
		return nil, logical.ErrNotFound
	}
	keys := make([]string, len(ents))
	info := make(map[string]any, len(ents))
	for i, e := range ents {
		keys[i] = e.ID
		aliases := make([]map[string]any, len(e.Aliases))
		for j, a := range e.Aliases {
			aliases[j] = map[string]any{
				"id": a.ID, "mount_accessor": a.MountAccessor, "mount_path": a.MountPath,
				"mount_type": a.MountType, "name": a.Name,
			}
		}
		info[e.ID] = map[string]any{"name": e.Name, "aliases": aliases}
	}
	return &logical.Response{Data: map[string]any{"keys": keys, "key_info": info}}, nil
}

func (b *backend) listByName(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	ents := b.store.Entities()
	if len(ents) == 0 {
		return nil, logical.ErrNotFound
	}
	keys := make([]string, len(ents))
	for i, e := range ents {
		keys[i] = e.Name
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

func (b *backend) listAliases(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	var keys []string
	info := map[string]any{}
	for _, e := range b.store.Entities() {
		for _, a := range e.Aliases {
			keys = append(keys, a.ID)
			info[a.ID] = map[string]any{
				"canonical_id": a.CanonicalID, "mount_accessor": a.MountAccessor,
				"mount_path": a.MountPath, "mount_type": a.MountType, "name": a.Name,
				"custom_metadata": map[string]string{}, "local": false,
			}
		}
	}
	if len(keys) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": keys, "key_info": info}}, nil
}

func (b *backend) readByID(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return entityResponse(b.store.Entity(d.String("id")))
}

func (b *backend) readByName(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return entityResponse(b.store.EntityByName(d.String("name")))
}

func (b *backend) deleteByID(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, b.store.DeleteEntity(ctx, d.String("id"))
}

func (b *backend) deleteByName(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if e := b.store.EntityByName(d.String("name")); e != nil {
		return nil, b.store.DeleteEntity(ctx, e.ID)
	}
	return nil, nil
}

func (b *backend) readAlias(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	a, _ := b.store.Alias(d.String("id"))
	if a == nil {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: aliasData(a)}, nil
}

func (b *backend) deleteAlias(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, b.store.DeleteAlias(ctx, d.String("id"))
}

// lookupEntity finds an entity by exactly one kind of identifier; no
// match is an empty answer (204), as Vault gives.
func (b *backend) lookupEntity(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, name, aliasID := d.String("id"), d.String("name"), d.String("alias_id")
	aliasName, accessor := d.String("alias_name"), d.String("alias_mount_accessor")
	given := 0
	for _, v := range []string{id, name, aliasID, aliasName + accessor} {
		if v != "" {
			given++
		}
	}
	switch {
	case given == 0:
		return nil, logical.BadRequest("one of id, name, alias_id, or alias_name with alias_mount_accessor is required")
	case given > 1:
		return nil, logical.BadRequest("only one of id, name, alias_id, or alias_name with alias_mount_accessor may be given")
	case (aliasName == "") != (accessor == ""):
		return nil, logical.BadRequest("alias_name and alias_mount_accessor go together")
	}
	var e *Entity
	switch {
	case id != "":
		e = b.store.Entity(id)
	case name != "":
		e = b.store.EntityByName(name)
	case aliasID != "":
		_, e = b.store.Alias(aliasID)
	default:
		e = b.store.AliasByName(accessor, aliasName)
	}
	if e == nil {
		return nil, nil
	}
	return entityResponse(e)
}

// entityResponse renders an entity as Vault does (groups, which Vigil
// does not have, are empty lists).
func entityResponse(e *Entity) (*logical.Response, error) {
	if e == nil {
		return nil, logical.ErrNotFound
	}
	aliases := make([]map[string]any, len(e.Aliases))
	for i, a := range e.Aliases {
		aliases[i] = aliasData(a)
	}
	policies := e.Policies
	if policies == nil {
		policies = []string{}
	}
	return &logical.Response{Data: map[string]any{
		"id":                  e.ID,
		"name":                e.Name,
		"metadata":            stringMap(e.Metadata),
		"policies":            policies,
		"disabled":            e.Disabled,
		"aliases":             aliases,
		"creation_time":       e.CreationTime.UTC().Format(time.RFC3339Nano),
		"last_update_time":    e.LastUpdateTime.UTC().Format(time.RFC3339Nano),
		"direct_group_ids":    []string{},
		"group_ids":           []string{},
		"inherited_group_ids": []string{},
		"merged_entity_ids":   nil,
		"namespace_id":        "root",
	}}, nil
}

func aliasData(a *Alias) map[string]any {
	return map[string]any{
		"id":                        a.ID,
		"canonical_id":              a.CanonicalID,
		"mount_accessor":            a.MountAccessor,
		"mount_path":                a.MountPath,
		"mount_type":                a.MountType,
		"name":                      a.Name,
		"metadata":                  stringMap(a.Metadata),
		"custom_metadata":           map[string]string{},
		"creation_time":             a.CreationTime.UTC().Format(time.RFC3339Nano),
		"last_update_time":          a.LastUpdateTime.UTC().Format(time.RFC3339Nano),
		"local":                     false,
		"merged_from_canonical_ids": nil,
		"namespace_id":              "root",
	}
}

// stringMap is m, or an empty map (rendered {}, not null) when m is nil.
func stringMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}
