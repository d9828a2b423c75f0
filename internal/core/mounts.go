package core

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/identity"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
)

// Mount types the core itself provides.
const (
	typeSystem    = "system"
	typeKV        = "kv"
	typeIdentity  = "identity"
	typeCubbyhole = "cubbyhole"
)

// fixedMount reports whether a mount of type typ is one the core keeps
// in place: it can be neither disabled nor moved.
func fixedMount(typ string) bool {
	return typ == typeSystem || typ == typeIdentity || typ == typeCubbyhole
}

// identityMountPath is where the identity store is always mounted.
const identityMountPath = "identity/"

// cubbyholeMountPath is where the cubbyhole engine is always mounted, when
// the build serves it (Config.Factories["cubbyhole"]): each token's
// private storage, a view below the mount's named by the token's hashed
// id (see cubbyholeView).
const cubbyholeMountPath = "cubbyhole/"

// authPrefix is where auth methods are mounted ("auth/approle/").
const authPrefix = "auth/"

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
	// TokenType is an auth method's token_type.
	TokenType *string
	Options   map[string]string
	AuditNonHMACRequestKeys,
	AuditNonHMACResponseKeys,
	PassthroughRequestHeaders,
	AllowedResponseHeaders *[]string
}

func (c *Core) startMounts(ctx context.Context) error {
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	secrets, err := c.loadTable(ctx, mountsKey, c.defaultMounts)
	if err != nil {
		return err
	}
	auth, err := c.loadTable(ctx, authKey, func() *mount.Table { return &mount.Table{} })
	if err != nil {
		return err
	}
	if auth.Find(tokenMountPath) == nil {
		// The token store is always mounted (also on a store from before
		// the auth table had it).
		e := mount.NewEntry(tokenMountPath, typeToken, c.clk.Now())
		e.Accessor = mount.NewAccessor("auth_" + typeToken)
		e.Description = "token based credentials"
		auth.Entries = append(auth.Entries, e)
		if err := auth.Save(ctx, c.barrier, authKey); err != nil {
			return err
		}
	}
	if secrets.Find(identityMountPath) == nil {
		// The identity store is always mounted (also on a store from
		// before it existed).
		secrets.Entries = append(secrets.Entries, newIdentityEntry(c.clk.Now()))
		if err := secrets.Save(ctx, c.barrier, mountsKey); err != nil {
			return err
		}
	}
	if _, served := c.cfg.Factories[typeCubbyhole]; served && secrets.Find(cubbyholeMountPath) == nil {
		// So is the cubbyhole, as in Vault (also on a store from before
		// it existed).
		e := mount.NewEntry(cubbyholeMountPath, typeCubbyhole, c.clk.Now())
		e.Description = "per-token private secret storage"
		e.Local = true
		secrets.Entries = append(secrets.Entries, e)
		if err := secrets.Save(ctx, c.barrier, mountsKey); err != nil {
			return err
		}
	}
	if e := secrets.Find(cubbyholeMountPath); e != nil {
		prefix := e.ViewPrefix()
		c.cubbyholePrefix.Store(&prefix)
	}
	ident := identity.NewStore(c.barrier.View(secrets.Find(identityMountPath).ViewPrefix()), c.clk.Now)
	if err := ident.Load(ctx); err != nil {
		return err
	}
	c.identity = ident
	routes := make(map[string]*mount.Route, len(secrets.Entries)+len(auth.Entries))
	for _, e := range append(slices.Clone(secrets.Entries), auth.Entries...) {
		rt, err := c.buildRoute(ctx, e)
		if err != nil {
			cleanupRoutes(ctx, routes)
			c.identity = nil
			return fmt.Errorf("mount %q: %w", e.Path, err)
		}
		routes[e.Path] = rt
	}
	c.mounts, c.auth = secrets, auth
	c.router.Replace(routes)
	return nil
}

// loadTable reads the table at key, or saves and returns def() where
// there is none yet (the first unseal, or a store from before the table
// existed).
func (c *Core) loadTable(ctx context.Context, key string, def func() *mount.Table) (*mount.Table, error) {
	tbl, err := mount.Load(ctx, c.barrier, key)
	if errors.Is(err, logical.ErrNotFound) {
		tbl = def()
		if err := tbl.Save(ctx, c.barrier, key); err != nil {
			return nil, err
		}
		return tbl, nil
	}
	return tbl, err
}

// isAuthPath reports whether a normalized mount path belongs to the auth
// table: auth methods are mounted under auth/, where no secrets engine may
// be.
func isAuthPath(path string) bool { return strings.HasPrefix(path, authPrefix) }

// tableFor returns the table holding path and its storage key; the
// caller holds mountsMu.
func (c *Core) tableFor(path string) (*mount.Table, string) {
	if isAuthPath(path) {
		return c.auth, authKey
	}
	return c.mounts, mountsKey
}

func (c *Core) stopMounts(ctx context.Context) {
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	routes := c.router.Routes()
	c.router.Replace(map[string]*mount.Route{})
	cleanupRoutes(ctx, routes)
	c.mounts, c.auth = nil, nil
	c.identity = nil
	c.cubbyholePrefix.Store(nil)
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
	return &mount.Table{Entries: []*mount.Entry{sys, newIdentityEntry(c.clk.Now())}}
}

func newIdentityEntry(now time.Time) *mount.Entry {
	e := mount.NewEntry(identityMountPath, typeIdentity, now)
	e.Description = "identity store"
	return e
}

// buildRoute instantiates the backend of e over its barrier view.
func (c *Core) buildRoute(ctx context.Context, e *mount.Entry) (*mount.Route, error) {
	view := c.barrier.View(e.ViewPrefix())
	sv := &systemView{c: c, uuid: e.UUID}
	switch e.Type {
	case typeSystem:
		return &mount.Route{Entry: e, Backend: c.sys, Storage: view, System: sv}, nil
	case typeToken:
		b, err := c.tokenBackend(sv)
		if err != nil {
			return nil, err
		}
		return &mount.Route{Entry: e, Backend: b, Storage: view, System: sv}, nil
	case typeIdentity:
		b, err := identity.NewBackend(c.identity)
		if err != nil {
			return nil, err
		}
		return &mount.Route{Entry: e, Backend: b, Storage: view, System: sv}, nil
	}
	f, ok := c.factories(e.Path)[e.Type]
	if !ok {
		return nil, fmt.Errorf("unknown mount type %q", e.Type)
	}
	b, err := f(ctx, &logical.BackendConfig{
		Logger:     c.cfg.Logger.With("component", "mount", "mount_path", e.Path, "mount_type", e.Type),
		Now:        c.clk.Now,
		System:     sv,
		Options:    maps.Clone(e.Options),
		MountPoint: e.Path,
		Wake:       func() { c.wakeMount(e.UUID) },
		SendEvent:  func(ev logical.Event) { c.publishMountEvent(e.UUID, ev) },
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

// commitTable persists tbl, the table holding path, and installs routes;
// the caller holds mountsMu.
func (c *Core) commitTable(ctx context.Context, path string, tbl *mount.Table, routes map[string]*mount.Route) error {
	_, key := c.tableFor(path)
	if err := tbl.Save(ctx, c.barrier, key); err != nil {
		return err
	}
	if isAuthPath(path) {
		c.auth = tbl
	} else {
		c.mounts = tbl
	}
	old := c.router.Routes()
	c.router.Replace(routes)
	c.syncJobs(ctx, old, routes)
	return nil
}

// factories returns the factory table for mounts at path.
func (c *Core) factories(path string) map[string]logical.Factory {
	if isAuthPath(path) {
		return c.cfg.AuthFactories
	}
	return c.cfg.Factories
}

// EnableMount mounts a new secrets engine at path.
func (c *Core) EnableMount(ctx context.Context, path string, in MountInput) error {
	path, err := mount.NormalizeNewPath(path)
	if err != nil {
		return err
	}
	if isReservedPath(path) {
		return logical.BadRequest("cannot mount at %q: the path is reserved", path)
	}
	typ, opts, err := normalizeType(in.Type, in.Options)
	if err != nil {
		return err
	}
	in.Type, in.Options = typ, opts
	return c.enable(ctx, path, in)
}

// EnableAuth mounts a new auth method at auth/<path>.
func (c *Core) EnableAuth(ctx context.Context, path string, in MountInput) error {
	path, err := mount.NormalizeNewPath(path)
	if err != nil {
		return err
	}
	if path == authPrefix+"token/" || path == "token/" {
		return logical.BadRequest("token auth method is always mounted at auth/token")
	}
	if in.Type == "" {
		return logical.BadRequest("missing auth method type")
	}
	if _, ok := in.Options["version"]; ok {
		return logical.BadRequest("options.version is only valid for kv mounts")
	}
	if err := validateTokenType(in.Config.TokenType); err != nil {
		return err
	}
	return c.enable(ctx, authPrefix+strings.TrimPrefix(path, authPrefix), in)
}

// enable mounts in at path, a normalized path of either table.
func (c *Core) enable(ctx context.Context, path string, in MountInput) error {
	typ, opts := in.Type, in.Options
	if _, ok := c.factories(path)[typ]; !ok {
		return logical.BadRequest("plugin not found in the catalog: %s", typ)
	}
	if err := c.validateTTLs(in.Config.DefaultLeaseTTL, in.Config.MaxLeaseTTL); err != nil {
		return err
	}
	if err := validateVisibility(in.Config.ListingVisibility); err != nil {
		return err
	}
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	cur, _ := c.tableFor(path)
	if cur.Conflicts(path) {
		return logical.BadRequest("path is already in use at %s", path)
	}
	e := mount.NewEntry(path, typ, c.clk.Now())
	if isAuthPath(path) {
		e.Accessor = mount.NewAccessor("auth_" + typ)
	}
	e.Description = in.Description
	e.Config = in.Config
	e.Options = opts
	e.Local, e.SealWrap, e.ExternalEntropyAccess, e.PluginVersion = in.Local, in.SealWrap, in.ExternalEntropyAccess, in.PluginVersion
	rt, err := c.buildRoute(ctx, e)
	if err != nil {
		return fmt.Errorf("core: enable %q: %w", path, err)
	}
	tbl := cur.Clone()
	tbl.Entries = append(tbl.Entries, e)
	routes := maps.Clone(c.router.Routes())
	routes[path] = rt
	if err := c.commitTable(ctx, path, tbl, routes); err != nil {
		cleanupRoutes(ctx, map[string]*mount.Route{path: rt})
		return err
	}
	c.log.Info("mount enabled", "mount_path", path, "mount_type", typ)
	return nil
}

// DisableMount unmounts the secrets engine at path and deletes its data.
// Disabling a path where nothing is mounted is not an error.
func (c *Core) DisableMount(ctx context.Context, path string) error {
	path, err := mount.NormalizePath(path)
	if err != nil {
		return err
	}
	if isAuthPath(path) {
		return logical.BadRequest("cannot unmount %q: use sys/auth to disable auth methods", path)
	}
	return c.disable(ctx, path)
}

// DisableAuth unmounts the auth method at auth/<path> and deletes its
// data. Tokens it issued are revoked with it once logins create tokens
// (the token pipeline); until then it has issued none.
func (c *Core) DisableAuth(ctx context.Context, path string) error {
	path, err := mount.NormalizePath(path)
	if err != nil {
		return err
	}
	path = authPrefix + strings.TrimPrefix(path, authPrefix)
	if path == authPrefix+"token/" {
		return logical.BadRequest("token auth method cannot be disabled")
	}
	return c.disable(ctx, path)
}

func (c *Core) disable(ctx context.Context, path string) error {
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	cur, _ := c.tableFor(path)
	e := cur.Find(path)
	if e == nil {
		return nil
	}
	if fixedMount(e.Type) {
		return logical.BadRequest("cannot unmount %q", path)
	}
	if err := c.revokeMountLeases(ctx, path); err != nil {
		return err
	}
	if isAuthPath(path) {
		// Every token the method's logins issued goes with it.
		if err := c.revokeTokensUnder(ctx, path); err != nil {
			return fmt.Errorf("core: revoke the tokens of %q: %w", path, err)
		}
	}
	tbl := cur.Clone()
	tbl.Entries = removeEntry(tbl.Entries, path)
	routes := maps.Clone(c.router.Routes())
	rt := routes[path]
	delete(routes, path)
	if err := c.commitTable(ctx, path, tbl, routes); err != nil {
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

// revokeMountLeases revokes every lease a mount handed out, through the
// mount, before it goes away. A failure keeps the mount: its leases must
// not outlive the means to revoke them.
func (c *Core) revokeMountLeases(ctx context.Context, path string) error {
	if c.leases == nil {
		return nil
	}
	if err := c.leases.RevokePrefix(ctx, strings.TrimSuffix(path, "/"), false); err != nil {
		return fmt.Errorf("core: revoke the leases of %q: %w", path, err)
	}
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

// clearView deletes every key under prefix of s, depth first (a key
// deleted meanwhile by someone else is no error).
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
		if err := s.Delete(ctx, prefix+k); err != nil && !errors.Is(err, logical.ErrNotFound) {
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
	to, err = mount.NormalizeNewPath(to)
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
	if fixedMount(e.Type) {
		return logical.BadRequest("cannot remount %q", from)
	}
	// Leases name their path: those of the old path could no longer
	// reach their mount.
	if err := c.revokeMountLeases(ctx, from); err != nil {
		return err
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
	if err := c.commitTable(ctx, to, tbl, routes); err != nil {
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
	table, _ := c.tableFor(path)
	cur := table.Find(path)
	if cur == nil {
		return logical.BadRequest("no mount at %s", path)
	}
	e := cur.Clone()
	if in.TokenType != nil {
		if !isAuthPath(path) {
			return logical.BadRequest("token_type is only valid for auth methods")
		}
		if err := validateTokenType(*in.TokenType); err != nil {
			return err
		}
		e.Config.TokenType = *in.TokenType
	}
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
	tbl := table.Clone()
	for i, x := range tbl.Entries {
		if x.Path == path {
			tbl.Entries[i] = e
		}
	}
	if err := c.commitTable(ctx, path, tbl, routes); err != nil {
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

// Mounts returns a copy of the secrets engines' mount table.
func (c *Core) Mounts() []*mount.Entry {
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	return c.mounts.Clone().Entries
}

// AuthMounts returns a copy of the auth methods' mount table; their paths
// begin with "auth/".
func (c *Core) AuthMounts() []*mount.Entry {
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	return c.auth.Clone().Entries
}

// Mount returns a copy of the entry mounted exactly at path.
func (c *Core) Mount(path string) (*mount.Entry, bool) {
	path, err := mount.NormalizePath(path)
	if err != nil {
		return nil, false
	}
	c.mountsMu.Lock()
	defer c.mountsMu.Unlock()
	table, _ := c.tableFor(path)
	e := table.Find(path)
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

// validateTokenType checks an auth mount's token_type.
func validateTokenType(t string) error {
	switch t {
	case "", "default-service", "default-batch", "service", "batch":
		return nil
	}
	return logical.BadRequest("invalid token_type %q: want service, batch, default-service or default-batch", t)
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
	case typeIdentity:
		return "", nil, logical.BadRequest("cannot mount a second identity store")
	case typeCubbyhole:
		return "", nil, logical.BadRequest("cannot mount a second cubbyhole")
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
