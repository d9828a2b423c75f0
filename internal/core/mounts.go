package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
)

// Mount types the core itself provides.
const (
	typeSystem = "system"
	typeKV     = "kv"
)

// MountInput is what enabling a mount takes.
type MountInput struct {
	Type        string
	Description string
	Config      mount.Config
	Options     map[string]string
	Local       bool
	SealWrap    bool
	// ExternalEntropyAccess and PluginVersion are recorded only.
	ExternalEntropyAccess bool
	PluginVersion         string
}

// TuneInput changes a mount; nil fields are left as they are.
type TuneInput struct {
	Description       *string
	DefaultLeaseTTL   *time.Duration
	MaxLeaseTTL       *time.Duration
	ListingVisibility *string
	Options           map[string]string
	AuditNonHMACRequestKeys,
	AuditNonHMACResponseKeys,
	PassthroughRequestHeaders,
	AllowedResponseHeaders *[]string
}

func (c *Core) startMounts(ctx context.Context) error {
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	tbl, err := mount.Load(ctx, c.barrier, mountsKey)
	if errors.Is(err, logical.ErrNotFound) {
		tbl = c.defaultMounts()
		if err := tbl.Save(ctx, c.barrier, mountsKey); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	routes := make(map[string]*mount.Route, len(tbl.Entries))
	for _, e := range tbl.Entries {
		rt, err := c.buildRoute(ctx, e)
		if err != nil {
			cleanupRoutes(ctx, routes)
			return fmt.Errorf("mount %q: %w", e.Path, err)
		}
		routes[e.Path] = rt
	}
	c.mounts = tbl
	c.router.Replace(routes)
	return nil
}

func (c *Core) stopMounts(ctx context.Context) {
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	routes := c.router.Routes()
	c.router.Replace(map[string]*mount.Route{})
	cleanupRoutes(ctx, routes)
	c.mounts = nil
}

func cleanupRoutes(ctx context.Context, routes map[string]*mount.Route) {
	for _, rt := range routes {
		if cl, ok := rt.Backend.(logical.Cleaner); ok {
			cl.Cleanup(ctx)
		}
	}
}

func (c *Core) defaultMounts() *mount.Table {
	sys := mount.NewEntry("sys/", typeSystem, c.clk.Now())
	sys.Description = "system endpoints used for control, policy and debugging"
	return &mount.Table{Entries: []*mount.Entry{sys}}
}

// buildRoute instantiates the backend of e over its barrier view.
func (c *Core) buildRoute(ctx context.Context, e *mount.Entry) (*mount.Route, error) {
	view := c.barrier.View(e.ViewPrefix())
	sv := &systemView{c: c, uuid: e.UUID}
	if e.Type == typeSystem {
		return &mount.Route{Entry: e, Backend: c.sys, Storage: view, System: sv}, nil
	}
	f, ok := c.cfg.Factories[e.Type]
	if !ok {
		return nil, fmt.Errorf("unknown mount type %q", e.Type)
	}
	b, err := f(ctx, &logical.BackendConfig{
		Logger:     c.cfg.Logger.With("component", "mount", "mount_path", e.Path, "mount_type", e.Type),
		Now:        c.clk.Now,
		System:     sv,
		Options:    maps.Clone(e.Options),
		MountPoint: e.Path,
	})
	if err != nil {
		return nil, err
	}
	if in, ok := b.(logical.Initializer); ok {
		if err := in.Initialize(ctx, view); err != nil {
			if cl, ok := b.(logical.Cleaner); ok {
				cl.Cleanup(ctx)
			}
			return nil, fmt.Errorf("initialize: %w", err)
		}
	}
	return &mount.Route{Entry: e, Backend: b, Storage: view, System: sv}, nil
}

// commitTable persists tbl and installs routes; the caller holds mountsMu.
func (c *Core) commitTable(ctx context.Context, tbl *mount.Table, routes map[string]*mount.Route) error {
	if err := tbl.Save(ctx, c.barrier, mountsKey); err != nil {
		return err
	}
	c.mounts = tbl
	c.router.Replace(routes)
	return nil
}

// EnableMount mounts a new engine at path.
func (c *Core) EnableMount(ctx context.Context, path string, in MountInput) error {
	path, err := mount.NormalizePath(path)
	if err != nil {
		return err
	}
	typ, opts, err := normalizeType(in.Type, in.Options)
	if err != nil {
		return err
	}
	if _, ok := c.cfg.Factories[typ]; !ok {
		return logical.BadRequest("plugin not found in the catalog: %s", in.Type)
	}
	if err := c.validateTTLs(in.Config.DefaultLeaseTTL, in.Config.MaxLeaseTTL); err != nil {
		return err
	}
	if err := validateVisibility(in.Config.ListingVisibility); err != nil {
		return err
	}
	if isReservedPath(path) {
		return logical.BadRequest("cannot mount at %q: the path is reserved", path)
	}
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	if c.mounts.Conflicts(path) {
		return logical.BadRequest("path is already in use at %s", path)
	}
	e := mount.NewEntry(path, typ, c.clk.Now())
	e.Description = in.Description
	e.Config = in.Config
	e.Options = opts
	e.Local, e.SealWrap, e.ExternalEntropyAccess, e.PluginVersion = in.Local, in.SealWrap, in.ExternalEntropyAccess, in.PluginVersion
	rt, err := c.buildRoute(ctx, e)
	if err != nil {
		return fmt.Errorf("core: enable %q: %w", path, err)
	}
	tbl := c.mounts.Clone()
	tbl.Entries = append(tbl.Entries, e)
	routes := maps.Clone(c.router.Routes())
	routes[path] = rt
	if err := c.commitTable(ctx, tbl, routes); err != nil {
		cleanupRoutes(ctx, map[string]*mount.Route{path: rt})
		return err
	}
	c.log.Info("mount enabled", "mount_path", path, "mount_type", typ)
	return nil
}

// DisableMount unmounts path and deletes its data. Disabling a path where
// nothing is mounted is not an error.
func (c *Core) DisableMount(ctx context.Context, path string) error {
	path, err := mount.NormalizePath(path)
	if err != nil {
		return err
	}
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	e := c.mounts.Find(path)
	if e == nil {
		return nil
	}
	if e.Type == typeSystem {
		return logical.BadRequest("cannot unmount %q", path)
	}
	tbl := c.mounts.Clone()
	tbl.Entries = removeEntry(tbl.Entries, path)
	routes := maps.Clone(c.router.Routes())
	rt := routes[path]
	delete(routes, path)
	if err := c.commitTable(ctx, tbl, routes); err != nil {
		return err
	}
	cleanupRoutes(ctx, map[string]*mount.Route{path: rt})
	if err := clearView(ctx, rt.Storage, ""); err != nil {
		// The mount is gone; leftover ciphertext under its UUID is
		// unreachable. Report it for the operator.
		c.log.Warn("could not delete all data of a disabled mount", "mount_path", path, "error", err)
	}
	c.log.Info("mount disabled", "mount_path", path)
	return nil
}

func removeEntry(es []*mount.Entry, path string) []*mount.Entry {
	out := es[:0]
	for _, e := range es {
		if e.Path != path {
			out = append(out, e)
		}
	}
	return out
}

// clearView deletes every key under prefix of s, depth first.
func clearView(ctx context.Context, s logical.Storage, prefix string) error {
	keys, err := s.List(ctx, prefix)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasSuffix(k, "/") {
			if err := clearView(ctx, s, prefix+k); err != nil {
				return err
			}
			continue
		}
		if err := s.Delete(ctx, prefix+k); err != nil {
			return err
		}
	}
	return nil
}

// MoveMount moves the mount at from to to. Its data stays in place: the
// storage view is named by the mount's UUID.
func (c *Core) MoveMount(ctx context.Context, from, to string) error {
	from, err := mount.NormalizePath(from)
	if err != nil {
		return err
	}
	to, err = mount.NormalizePath(to)
	if err != nil {
		return err
	}
	if isReservedPath(to) {
		return logical.BadRequest("cannot mount at %q: the path is reserved", to)
	}
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	e := c.mounts.Find(from)
	if e == nil {
		return logical.BadRequest("no secret engine mount at %s", from)
	}
	if e.Type == typeSystem {
		return logical.BadRequest("cannot remount %q", from)
	}
	tbl := c.mounts.Clone()
	tbl.Entries = removeEntry(tbl.Entries, from)
	if tbl.Conflicts(to) {
		return logical.BadRequest("path already in use at %s", to)
	}
	moved := e.Clone()
	moved.Path = to
	rt, err := c.buildRoute(ctx, moved)
	if err != nil {
		return fmt.Errorf("core: move %q: %w", from, err)
	}
	tbl.Entries = append(tbl.Entries, moved)
	routes := maps.Clone(c.router.Routes())
	old := routes[from]
	delete(routes, from)
	routes[to] = rt
	if err := c.commitTable(ctx, tbl, routes); err != nil {
		cleanupRoutes(ctx, map[string]*mount.Route{to: rt})
		return err
	}
	cleanupRoutes(ctx, map[string]*mount.Route{from: old})
	c.log.Info("mount moved", "from", from, "to", to)
	return nil
}

// TuneMount changes a mount's configuration. Changing a KV mount's version
// from 1 to 2 rebuilds it, which upgrades its data in place.
func (c *Core) TuneMount(ctx context.Context, path string, in TuneInput) error {
	path, err := mount.NormalizePath(path)
	if err != nil {
		return err
	}
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	cur := c.mounts.Find(path)
	if cur == nil {
		return logical.BadRequest("no mount at %s", path)
	}
	e := cur.Clone()
	if in.Description != nil {
		e.Description = *in.Description
	}
	if in.DefaultLeaseTTL != nil {
		e.Config.DefaultLeaseTTL = *in.DefaultLeaseTTL
	}
	if in.MaxLeaseTTL != nil {
		e.Config.MaxLeaseTTL = *in.MaxLeaseTTL
	}
	if err := c.validateTTLs(e.Config.DefaultLeaseTTL, e.Config.MaxLeaseTTL); err != nil {
		return err
	}
	if in.ListingVisibility != nil {
		if err := validateVisibility(*in.ListingVisibility); err != nil {
			return err
		}
		e.Config.ListingVisibility = *in.ListingVisibility
	}
	for dst, src := range map[*[]string]*[]string{
		&e.Config.AuditNonHMACRequestKeys:   in.AuditNonHMACRequestKeys,
		&e.Config.AuditNonHMACResponseKeys:  in.AuditNonHMACResponseKeys,
		&e.Config.PassthroughRequestHeaders: in.PassthroughRequestHeaders,
		&e.Config.AllowedResponseHeaders:    in.AllowedResponseHeaders,
	} {
		if src != nil {
			*dst = *src
		}
	}
	rebuild := false
	if len(in.Options) > 0 {
		if e.Type != typeKV {
			if _, ok := in.Options["version"]; ok {
				return logical.BadRequest("options.version is only valid for kv mounts")
			}
		}
		if e.Options == nil {
			e.Options = map[string]string{}
		}
		for k, v := range in.Options {
			if k == "version" && e.Type == typeKV {
				old := kvVersion(e.Options)
				switch {
				case v == old:
				case old == "1" && v == "2":
					rebuild = true
				case v != "1" && v != "2":
					return logical.BadRequest("invalid kv version %q", v)
				default:
					return logical.BadRequest("cannot downgrade mount from version 2")
				}
			}
			e.Options[k] = v
		}
	}
	routes := maps.Clone(c.router.Routes())
	old := routes[path]
	if rebuild {
		rt, err := c.buildRoute(ctx, e)
		if err != nil {
			return fmt.Errorf("core: tune %q: %w", path, err)
		}
		routes[path] = rt
	} else {
		routes[path] = &mount.Route{Entry: e, Backend: old.Backend, Storage: old.Storage, System: old.System}
	}
	tbl := c.mounts.Clone()
	for i, x := range tbl.Entries {
		if x.Path == path {
			tbl.Entries[i] = e
		}
	}
	if err := c.commitTable(ctx, tbl, routes); err != nil {
		if rebuild {
			cleanupRoutes(ctx, map[string]*mount.Route{path: routes[path]})
		}
		return err
	}
	if rebuild {
		cleanupRoutes(ctx, map[string]*mount.Route{path: old})
		c.log.Info("kv mount upgraded to version 2", "mount_path", path)
	}
	return nil
}

// Mounts returns a copy of the mount table.
func (c *Core) Mounts() []*mount.Entry {
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	return c.mounts.Clone().Entries
}

// Mount returns a copy of the entry mounted exactly at path.
func (c *Core) Mount(path string) (*mount.Entry, bool) {
	path, err := mount.NormalizePath(path)
	if err != nil {
		return nil, false
	}
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	e := c.mounts.Find(path)
	if e == nil {
		return nil, false
	}
	return e.Clone(), true
}

// EffectiveTTLs returns a mount's default and max lease TTLs with the
// system defaults filled in.
func (c *Core) EffectiveTTLs(cfg mount.Config) (def, max time.Duration) {
	def, max = cfg.DefaultLeaseTTL, cfg.MaxLeaseTTL
	if max == 0 {
		max = c.cfg.MaxLeaseTTL
	}
	if def == 0 {
		def = c.cfg.DefaultLeaseTTL
	}
	if def > max {
		def = max
	}
	return def, max
}

// reportedTTL is the lease_duration reported for a response that carries a
// TTL without a lease (KV v1): the backend's value, or the mount default.
func (c *Core) reportedTTL(rt *mount.Route, ttl time.Duration) time.Duration {
	if ttl > 0 {
		return ttl
	}
	def, _ := c.EffectiveTTLs(rt.Entry.Config)
	return def
}

func (c *Core) validateTTLs(def, max time.Duration) error {
	if def < 0 || max < 0 {
		return logical.BadRequest("lease ttls must not be negative")
	}
	if max > c.cfg.MaxLeaseTTL {
		return logical.BadRequest("max_lease_ttl %s exceeds the system maximum of %s", max, c.cfg.MaxLeaseTTL)
	}
	if def > 0 && max > 0 && def > max {
		return logical.BadRequest("default_lease_ttl %s exceeds max_lease_ttl %s", def, max)
	}
	if def > c.cfg.MaxLeaseTTL {
		return logical.BadRequest("default_lease_ttl %s exceeds the system maximum of %s", def, c.cfg.MaxLeaseTTL)
	}
	return nil
}

func validateVisibility(v string) error {
	switch v {
	case "", "unauth", "hidden":
		return nil
	}
	return logical.BadRequest("listing_visibility must be \"unauth\", \"hidden\" or empty, got %q", v)
}

// normalizeType resolves the kv-v1/kv-v2 aliases and checks options.
func normalizeType(typ string, opts map[string]string) (string, map[string]string, error) {
	opts = maps.Clone(opts)
	switch typ {
	case "":
		return "", nil, logical.BadRequest("missing mount type")
	case "kv-v1", "kv-v2":
		if opts == nil {
			opts = map[string]string{}
		}
		opts["version"] = typ[len(typ)-1:]
		return typeKV, opts, nil
	case typeKV:
		if v, ok := opts["version"]; ok && v != "1" && v != "2" && v != "" {
			return "", nil, logical.BadRequest("invalid kv version %q", v)
		}
		if opts == nil || opts["version"] == "" {
			if opts == nil {
				opts = map[string]string{}
			}
			opts["version"] = "1"
		}
		return typ, opts, nil
	case typeSystem:
		return "", nil, logical.BadRequest("cannot mount a second system backend")
	}
	if _, ok := opts["version"]; ok {
		return "", nil, logical.BadRequest("options.version is only valid for kv mounts")
	}
	return typ, opts, nil
}

func kvVersion(opts map[string]string) string {
	if v := opts["version"]; v != "" {
		return v
	}
	return "1"
}

// isReservedPath reports paths no engine may take.
func isReservedPath(p string) bool {
	for _, r := range []string{"sys/", "auth/", "cubbyhole/", "identity/"} {
		if strings.HasPrefix(p, r) || strings.HasPrefix(r, p) {
			return true
		}
	}
	return false
}

// systemView gives a backend its mount's tuned TTLs at request time.
type systemView struct {
	c    *Core
	uuid string
}

func (s *systemView) ttls() (time.Duration, time.Duration) {
	for _, rt := range s.c.router.Routes() {
		if rt.Entry.UUID == s.uuid {
			return s.c.EffectiveTTLs(rt.Entry.Config)
		}
	}
	return s.c.EffectiveTTLs(mount.Config{})
}

// DefaultLeaseTTL implements logical.SystemView.
func (s *systemView) DefaultLeaseTTL() time.Duration { d, _ := s.ttls(); return d }

// MaxLeaseTTL implements logical.SystemView.
func (s *systemView) MaxLeaseTTL() time.Duration { _, m := s.ttls(); return m }
