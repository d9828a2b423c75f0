package core

import (
	"context"
	"errors"
	"strings"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
	"github.com/vigil-secrets/vigil/internal/policy"
	"github.com/vigil-secrets/vigil/internal/token"
)

// mountInfo renders a mount the way sys/mounts lists it.
func mountInfo(e *mount.Entry) map[string]any {
	cfg := map[string]any{
		"default_lease_ttl": int64(e.Config.DefaultLeaseTTL.Seconds()),
		"max_lease_ttl":     int64(e.Config.MaxLeaseTTL.Seconds()),
		"force_no_cache":    e.Config.ForceNoCache,
	}
	if e.Config.ListingVisibility != "" {
		cfg["listing_visibility"] = e.Config.ListingVisibility
	}
	if isAuthPath(e.Path) {
		cfg["token_type"] = tokenTypeOf(e)
	}
	for k, v := range map[string][]string{
		"audit_non_hmac_request_keys":  e.Config.AuditNonHMACRequestKeys,
		"audit_non_hmac_response_keys": e.Config.AuditNonHMACResponseKeys,
		"passthrough_request_headers":  e.Config.PassthroughRequestHeaders,
		"allowed_response_headers":     e.Config.AllowedResponseHeaders,
	} {
		if len(v) > 0 {
			cfg[k] = v
		}
	}
	var opts any // null when the mount has no options, as Vault renders it
	if len(e.Options) > 0 {
		opts = e.Options
	}
	return map[string]any{
		"type":                    e.Type,
		"description":             e.Description,
		"accessor":                e.Accessor,
		"uuid":                    e.UUID,
		"config":                  cfg,
		"options":                 opts,
		"local":                   e.Local,
		"seal_wrap":               e.SealWrap,
		"external_entropy_access": e.ExternalEntropyAccess,
		"plugin_version":          e.PluginVersion,
		"running_plugin_version":  "v" + Version + "+builtin.vigil",
		"running_sha256":          "",
		"deprecation_status":      "supported",
	}
}

// handleUIMounts serves sys/internal/ui/mounts[/<path>] and its alias
// sys/mounts-all/<path>: the preflight the KV CLI uses to find a path's
// mount and version. It answers 403, never 404, for a path the caller cannot
// see, so that mounts cannot be enumerated.
func (c *Core) handleUIMounts(ctx context.Context, req *Request) (*Result, error) {
	if req.Operation != logical.ReadOperation {
		return nil, logical.ErrUnsupportedOperation
	}
	var target string
	var one bool
	if rest, ok := strings.CutPrefix(req.Path, "sys/internal/ui/mounts"); ok {
		target, one = strings.TrimPrefix(rest, "/"), rest != ""
	} else {
		target, one = strings.TrimPrefix(strings.TrimPrefix(req.Path, "sys/mounts-all"), "/"), true
	}
	// The path needs no ACL grant of its own; what the caller sees
	// depends on what its policies reach.
	var acl *policy.ACL
	te, err := c.tokens.Lookup(ctx, req.Token)
	if err == nil && checkCIDR(te, req.Connection) != nil {
		err = token.ErrInvalid // a token bound elsewhere counts as none
	}
	switch {
	case err == nil:
		if acl, err = c.tokenACL(ctx, te); err != nil {
			return nil, c.storageError(err)
		}
	case !errors.Is(err, token.ErrInvalid):
		return nil, c.storageError(err)
	}
	sysRes := func(data map[string]any) *Result {
		return &Result{Response: &logical.Response{Data: data}, MountType: typeSystem}
	}
	if !one {
		secrets, auth := map[string]any{}, map[string]any{}
		for p, rt := range c.router.Routes() {
			if rt.Entry.Config.ListingVisibility != "unauth" && !acl.CanReachMount(p) {
				continue
			}
			if name, ok := strings.CutPrefix(p, authPrefix); ok {
				auth[name] = mountInfo(rt.Entry)
			} else {
				secrets[p] = mountInfo(rt.Entry)
			}
		}
		return sysRes(map[string]any{"secret": secrets, "auth": auth}), nil
	}
	if acl == nil {
		return nil, logical.ErrPermissionDenied
	}
	if target == "" {
		return nil, logical.BadRequest("path not specified")
	}
	rt, _, ok := c.router.Match(target)
	if !ok || !acl.CanReachMount(rt.Entry.Path) {
		p := target
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
		return nil, logical.CodedErrorf(403, "preflight capability check returned 403, please ensure client's policies grant access to path %q", p)
	}
	info := mountInfo(rt.Entry)
	info["path"] = rt.Entry.Path
	return sysRes(info), nil
}
