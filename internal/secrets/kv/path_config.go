package kv

import (
	"context"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// pathConfig serves config: the mount-wide settings.
func (b *versioned) pathConfig() *framework.Path {
	return &framework.Path{
		Pattern: `config`,
		Fields: map[string]*framework.FieldSchema{
			"max_versions": {Type: framework.TypeInt, Description: "The number of versions to keep for each key; 0 means 10."},
			"cas_required": {Type: framework.TypeBool, Description: "Whether every write needs options.cas."},
			"delete_version_after": {Type: framework.TypeSignedDurationSecond, Description: "How long after its creation each new version is soft-deleted. " +
				"0 clears the setting; a negative value disables delete_version_after for every key."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.handleConfigRead, Summary: "Read the mount's settings."},
			logical.UpdateOperation: {Handler: b.handleConfigWrite, Summary: "Change the mount's settings."},
		},
		HelpSynopsis:    "Configure the settings that apply to every key of the mount.",
		HelpDescription: "max_versions and delete_version_after apply to keys that do not set their own; cas_required applies to every key.",
	}
}

func (b *versioned) handleConfigRead(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	cfg, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"max_versions":         cfg.MaxVersions,
		"cas_required":         cfg.CASRequired,
		"delete_version_after": cfg.DeleteVersionAfter.String(),
	}}, nil
}

// configUpdate is a decoded config write; nil fields were not supplied.
type configUpdate struct {
	maxVersions        *int
	casRequired        *bool
	deleteVersionAfter *time.Duration
}

func decodeConfigUpdate(d *framework.FieldData) (configUpdate, error) {
	var u configUpdate
	if d.Has("max_versions") {
		v := d.Int("max_versions")
		if v < 0 {
			return u, logical.BadRequest("max_versions must not be negative")
		}
		u.maxVersions = &v
	}
	if d.Has("cas_required") {
		v := d.Bool("cas_required")
		u.casRequired = &v
	}
	if d.Has("delete_version_after") {
		v := d.Duration("delete_version_after")
		if v < 0 {
			// Every negative value means "disabled"; store one form.
			v = -time.Second
		}
		u.deleteVersionAfter = &v
	}
	return u, nil
}

func (b *versioned) handleConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	u, err := decodeConfigUpdate(d)
	if err != nil {
		return nil, err
	}
	if u.maxVersions == nil && u.casRequired == nil && u.deleteVersionAfter == nil {
		return nil, nil
	}

	b.configMu.Lock()
	defer b.configMu.Unlock()
	cfg, err := loadConfig(ctx, req.Storage)
	if err != nil {
		return nil, err
	}
	if u.maxVersions != nil {
		cfg.MaxVersions = *u.maxVersions
	}
	if u.casRequired != nil {
		cfg.CASRequired = *u.casRequired
	}
	if u.deleteVersionAfter != nil {
		cfg.DeleteVersionAfter = *u.deleteVersionAfter
	}
	var ops writeOps
	if err := ops.put(configKey, cfg); err != nil {
		return nil, err
	}
	if err := ops.apply(ctx, req.Storage); err != nil {
		return nil, err
	}
	return withEvent(nil, logical.Event{Type: "kv-v2/config-write", Operation: "config-write", Path: "config", DataPath: "config"}), nil
}
