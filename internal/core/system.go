package core

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// systemBackend serves the sys/ mount: mounts, key status and rotation.
type systemBackend struct {
	c *Core
}

// newSystemBackend builds the sys/ path table.
func newSystemBackend(c *Core) logical.Backend {
	s := &systemBackend{c: c}
	pathField := &framework.FieldSchema{Type: framework.TypeString, Description: "mount path"}
	mountFields := map[string]*framework.FieldSchema{
		"path":                    pathField,
		"type":                    {Type: framework.TypeString, Description: "engine type"},
		"description":             {Type: framework.TypeString},
		"config":                  {Type: framework.TypeMap, Description: "default_lease_ttl, max_lease_ttl, force_no_cache, listing_visibility, ..."},
		"options":                 {Type: framework.TypeKVPairs, Description: "engine options (kv: version)"},
		"local":                   {Type: framework.TypeBool},
		"seal_wrap":               {Type: framework.TypeBool},
		"external_entropy_access": {Type: framework.TypeBool},
		"plugin_name":             {Type: framework.TypeString},
		"plugin_version":          {Type: framework.TypeString},
	}
	tuneFields := map[string]*framework.FieldSchema{
		"path":                         pathField,
		"description":                  {Type: framework.TypeString},
		"default_lease_ttl":            {Type: framework.TypeString},
		"max_lease_ttl":                {Type: framework.TypeString},
		"listing_visibility":           {Type: framework.TypeString},
		"options":                      {Type: framework.TypeKVPairs},
		"audit_non_hmac_request_keys":  {Type: framework.TypeCommaStringSlice},
		"audit_non_hmac_response_keys": {Type: framework.TypeCommaStringSlice},
		"passthrough_request_headers":  {Type: framework.TypeCommaStringSlice},
		"allowed_response_headers":     {Type: framework.TypeCommaStringSlice},
		"token_type":                   {Type: framework.TypeString},
		"plugin_version":               {Type: framework.TypeString},
		"force_no_cache":               {Type: framework.TypeBool},
	}
	paths := []*framework.Path{
		{
			Pattern: "mounts/?",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: sysOp(s.listMounts, "List the mounted secrets engines."),
			},
			HelpSynopsis: "List the mounted secrets engines.",
		},
		{
			Pattern: "mounts/(?P<path>.+?)/tune/?",
			Fields:  tuneFields,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   sysOp(s.readTune, "Read a mount's effective configuration."),
				logical.UpdateOperation: sysOp(s.tune, "Tune a mount."),
			},
			HelpSynopsis: "Tune a secrets engine mount.",
		},
		{
			Pattern: "mounts/(?P<path>.+)",
			Fields:  mountFields,
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation:   sysOp(s.readMount, "Read a mount."),
				logical.UpdateOperation: sysOp(s.enableMount, "Enable a secrets engine."),
				logical.DeleteOperation: sysOp(s.disableMount, "Disable a secrets engine and delete its data."),
			},
			HelpSynopsis: "Enable, read or disable a secrets engine.",
		},
		{
			Pattern: "remount",
			Fields: map[string]*framework.FieldSchema{
				"from": {Type: framework.TypeString, Required: true},
				"to":   {Type: framework.TypeString, Required: true},
			},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: sysOp(s.remount, "Move a mount to another path."),
			},
			HelpSynopsis: "Move a secrets engine to another path; its data moves with it.",
		},
		{
			Pattern: "remount/status/(?P<migration_id>.+)",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: sysOp(s.remountStatus, "Read the status of a move."),
			},
		},
		{
			Pattern: "key-status",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: sysOp(s.keyStatus, "Read the barrier key term."),
			},
			HelpSynopsis: "The current barrier encryption key term.",
		},
		{
			Pattern: "rotate(/keyring)?",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.UpdateOperation: sysOp(s.rotate, "Add a barrier key term."),
			},
			HelpSynopsis: "Rotate the barrier encryption key: new writes use a new term, old data stays readable.",
		},
	}
	paths = append(paths, s.authPaths(mountFields, tuneFields)...)
	paths = append(paths, s.policyPaths()...)
	paths = append(paths, s.passwordPolicyPaths()...)
	paths = append(paths, s.leasePaths()...)
	paths = append(paths, s.capabilityPaths()...)
	paths = append(paths, s.auditPaths()...)
	paths = append(paths, s.wrappingPaths()...)
	paths = append(paths, s.metricsPaths()...)
	b, err := framework.NewBackend("The system backend: mounts, keys, policies and server control.", paths,
		// A wrapping token is looked up without a token, as in Vault.
		framework.WithSpecialPaths(logical.PathsSpecial{Unauthenticated: []string{"wrapping/lookup"}}))
	if err != nil {
		// The table above is static: an error is a programming mistake
		// caught by every test that builds a core.
		panic(err)
	}
	return b
}

func (s *systemBackend) listMounts(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	data := map[string]any{}
	for _, e := range s.c.Mounts() {
		data[e.Path] = mountInfo(e)
	}
	return &logical.Response{Data: data}, nil
}

func (s *systemBackend) readMount(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	e, ok := s.c.Mount(d.String("path"))
	if !ok {
		return nil, logical.BadRequest("no mount at %s", d.String("path"))
	}
	return &logical.Response{Data: mountInfo(e)}, nil
}

func (s *systemBackend) enableMount(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	in, err := mountInput(d)
	if err != nil {
		return nil, err
	}
	return nil, s.c.EnableMount(ctx, d.String("path"), in)
}

// mountInput decodes the body of an enable request (sys/mounts/<path>,
// sys/auth/<path>).
func mountInput(d *framework.FieldData) (MountInput, error) {
	cfg, err := decodeMountConfig(d.Map("config"))
	if err != nil {
		return MountInput{}, err
	}
	typ := d.String("type")
	if typ == "" {
		typ = d.String("plugin_name")
	}
	return MountInput{
		Type:                  typ,
		Description:           d.String("description"),
		Config:                cfg,
		Options:               d.StringMap("options"),
		Local:                 d.Bool("local"),
		SealWrap:              d.Bool("seal_wrap"),
		ExternalEntropyAccess: d.Bool("external_entropy_access"),
		PluginVersion:         d.String("plugin_version"),
	}, nil
}

func (s *systemBackend) disableMount(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return nil, s.c.DisableMount(ctx, d.String("path"))
}

func (s *systemBackend) readTune(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return s.readTunePath(d.String("path"))
}

// readTunePath answers the effective configuration of the mount at path
// (of either table).
func (s *systemBackend) readTunePath(path string) (*logical.Response, error) {
	e, ok := s.c.Mount(path)
	if !ok {
		return nil, logical.BadRequest("cannot fetch sysview for path %q", path)
	}
	def, max := s.c.EffectiveTTLs(e.Config)
	data := map[string]any{
		"description":       e.Description,
		"default_lease_ttl": int64(def.Seconds()),
		"max_lease_ttl":     int64(max.Seconds()),
		"force_no_cache":    e.Config.ForceNoCache,
	}
	if len(e.Options) > 0 {
		data["options"] = e.Options
	}
	if e.Config.ListingVisibility != "" {
		data["listing_visibility"] = e.Config.ListingVisibility
	}
	for k, v := range map[string][]string{
		"audit_non_hmac_request_keys":  e.Config.AuditNonHMACRequestKeys,
		"audit_non_hmac_response_keys": e.Config.AuditNonHMACResponseKeys,
		"passthrough_request_headers":  e.Config.PassthroughRequestHeaders,
		"allowed_response_headers":     e.Config.AllowedResponseHeaders,
	} {
		if len(v) > 0 {
			data[k] = v
		}
	}
	if isAuthPath(e.Path) {
		data["token_type"] = tokenTypeOf(e)
	}
	return &logical.Response{Data: data}, nil
}

func (s *systemBackend) tune(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return s.tunePath(ctx, d.String("path"), d)
}

// tunePath tunes the mount at path (of either table) from d's fields.
func (s *systemBackend) tunePath(ctx context.Context, path string, d *framework.FieldData) (*logical.Response, error) {
	var in TuneInput
	if d.Has("description") {
		v := d.String("description")
		in.Description = &v
	}
	for name, dst := range map[string]**time.Duration{"default_lease_ttl": &in.DefaultLeaseTTL, "max_lease_ttl": &in.MaxLeaseTTL} {
		if !d.Has(name) {
			continue
		}
		ttl, set, err := parseTuneTTL(name, d.String(name))
		if err != nil {
			return nil, err
		}
		if set {
			*dst = &ttl
		}
	}
	if d.Has("listing_visibility") {
		v := d.String("listing_visibility")
		in.ListingVisibility = &v
	}
	if d.Has("options") {
		in.Options = d.StringMap("options")
	}
	for name, dst := range map[string]**[]string{
		"audit_non_hmac_request_keys":  &in.AuditNonHMACRequestKeys,
		"audit_non_hmac_response_keys": &in.AuditNonHMACResponseKeys,
		"passthrough_request_headers":  &in.PassthroughRequestHeaders,
		"allowed_response_headers":     &in.AllowedResponseHeaders,
	} {
		if d.Has(name) {
			v := d.StringSlice(name)
			*dst = &v
		}
	}
	if v := d.String("token_type"); v != "" {
		in.TokenType = &v
	}
	return nil, s.c.TuneMount(ctx, path, in)
}

// parseTuneTTL decodes a tune TTL as Vault does: "" leaves the value
// unchanged, "system" (or zero) resets it to the system default, anything
// else is a duration or integer seconds.
func parseTuneTTL(name, v string) (time.Duration, bool, error) {
	switch v {
	case "":
		return 0, false, nil
	case "system":
		return 0, true, nil
	}
	ttl, err := framework.ParseDurationSecond(v)
	if err != nil {
		return 0, false, logical.BadRequest("invalid value for %q: %v", name, err)
	}
	return ttl, true, nil
}

func (s *systemBackend) remount(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := s.c.MoveMount(ctx, d.String("from"), d.String("to")); err != nil {
		return nil, err
	}
	// Moves complete before the answer; the id lets clients that poll
	// sys/remount/status (the Vault CLI does) see the result.
	return &logical.Response{Data: map[string]any{"migration_id": secret.UUID()}}, nil
}

func (s *systemBackend) remountStatus(_ context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	return &logical.Response{Data: map[string]any{
		"migration_id": d.String("migration_id"),
		"migration_info": map[string]any{
			"status": "success",
		},
	}}, nil
}

func (s *systemBackend) keyStatus(context.Context, *logical.Request, *framework.FieldData) (*logical.Response, error) {
	ks, err := s.c.barrier.KeyStatus()
	if err != nil {
		return nil, err
	}
	return &logical.Response{Data: map[string]any{
		"term":         ks.Term,
		"install_time": ks.InstallTime.UTC().Format(time.RFC3339Nano),
		"encryptions":  ks.Encryptions,
	}}, nil
}

func (s *systemBackend) rotate(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	term, err := s.c.barrier.Rotate(ctx)
	if err != nil {
		return nil, fmt.Errorf("core: rotate barrier key: %w", err)
	}
	s.c.log.Info("barrier key rotated", "term", term)
	return nil, nil
}

// decodeMountConfig decodes the "config" object of a mount request.
func decodeMountConfig(m map[string]any) (mount.Config, error) {
	var cfg mount.Config
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := m[k]
		bad := func(want string) error {
			return logical.BadRequest("invalid value for \"config.%s\": expected %s", k, want)
		}
		switch k {
		case "default_lease_ttl", "max_lease_ttl":
			var ttl time.Duration
			if s, ok := v.(string); !ok || (s != "" && s != "system") {
				var err error
				if ttl, err = framework.ParseDurationSecond(v); err != nil {
					return cfg, bad("a duration")
				}
			}
			if k == "default_lease_ttl" {
				cfg.DefaultLeaseTTL = ttl
			} else {
				cfg.MaxLeaseTTL = ttl
			}
		case "force_no_cache":
			b, ok := v.(bool)
			if s, isStr := v.(string); isStr {
				var err error
				b, err = strconv.ParseBool(s)
				ok = err == nil
			}
			if !ok {
				return cfg, bad("a boolean")
			}
			cfg.ForceNoCache = b
		case "listing_visibility":
			s, ok := v.(string)
			if !ok {
				return cfg, bad("a string")
			}
			cfg.ListingVisibility = s
		case "audit_non_hmac_request_keys", "audit_non_hmac_response_keys", "passthrough_request_headers", "allowed_response_headers":
			list, ok := stringList(v)
			if !ok {
				return cfg, bad("a list of strings")
			}
			switch k {
			case "audit_non_hmac_request_keys":
				cfg.AuditNonHMACRequestKeys = list
			case "audit_non_hmac_response_keys":
				cfg.AuditNonHMACResponseKeys = list
			case "passthrough_request_headers":
				cfg.PassthroughRequestHeaders = list
			default:
				cfg.AllowedResponseHeaders = list
			}
		case "token_type":
			s, ok := v.(string)
			if !ok {
				return cfg, bad("a string")
			}
			cfg.TokenType = s
		case "plugin_version", "options", "description":
			// Accepted for compatibility; options and description are
			// top-level fields of the request.
		default:
			return cfg, logical.BadRequest("unknown config field %q", k)
		}
	}
	return cfg, nil
}

// stringList accepts a JSON list of strings or a comma-separated string.
func stringList(v any) ([]string, bool) {
	switch t := v.(type) {
	case nil:
		return nil, true
	case string:
		if t == "" {
			return nil, true
		}
		parts := strings.Split(t, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return parts, true
	case []any:
		out := make([]string, 0, len(t))
		for _, x := range t {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	return nil, false
}

// sysOp is an operation of the system backend: its handler and summary.
func sysOp(f framework.OperationFunc, summary string) framework.OperationHandler {
	return framework.OperationHandler{Handler: f, Summary: summary}
}
