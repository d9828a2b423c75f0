package core

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/barrier"
	"github.com/vigil-secrets/vigil/internal/identity"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
	"github.com/vigil-secrets/vigil/internal/policy"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/storage"
	"github.com/vigil-secrets/vigil/internal/token"
)

// Request is a client request before routing.
type Request struct {
	// ID is the request id (a UUID) echoed as request_id.
	ID string
	// Operation is read, list, update (POST/PUT: the existence check turns
	// it into create where the target does not exist), patch or delete.
	Operation logical.Operation
	// Path is the full logical path ("secret/data/foo").
	Path string
	// Data is the decoded body or query.
	Data map[string]any
	// Token is the client token.
	Token secret.String
	// Connection describes the client.
	Connection *logical.Connection
	// Headers are the request's HTTP headers, by canonical name (an
	// http.Header), read only: the audit log records those configured in
	// sys/config/auditing/request-headers.
	Headers map[string][]string
	// WrapTTL asks for the response wrapped (X-Vault-Wrap-TTL): the
	// result is then a single-use wrapping token that lives this long
	// (see wrapping.go). WrapRender renders a result as the client would
	// receive it, the form the wrapped response is kept in; it must be
	// set with WrapTTL, and is called for sys/wrapping/rewrap too.
	WrapTTL    time.Duration
	WrapRender WrapRenderer

	// Mount is set by HandleRequest once the request is routed: the path
	// of the mount that serves it ("secret/"), empty when none does. The
	// HTTP layer labels its metrics with it.
	Mount string

	// lreq and res back the mount's request and the result, so that
	// serving a request does not allocate them apart.
	lreq logical.Request
	res  Result
	// wrap is what sys/wrapping/wrap and rewrap ask of wrapping.
	wrap wrapOverride
}

// WrapRenderer renders a result as the client would receive it (the HTTP
// layer's envelope), for a wrapping token to hold.
type WrapRenderer interface {
	RenderWrapped(*Result) ([]byte, error)
}

// Result is a served request.
type Result struct {
	Response *logical.Response
	// MountType is the type of the mount that served the request.
	MountType string
	// Wrap is set when the response was wrapped: the client gets it, and
	// Response is what the wrapping token holds.
	Wrap *WrapInfo
}

// HandleRequest runs a request through the pipeline: sealed check,
// routing, token check (skipped for a mount's unauthenticated paths, its
// logins), existence check, ACL check, the mount itself. A request the
// ACL does not allow fails with logical.ErrPermissionDenied whether or not
// its path exists.
//
// A Request serves once: the Result returned lives in it.
//
// Once an audit device is enabled, the request is recorded before the
// mount runs and the response after, and a request or response no device
// records fails with a 500 and returns nothing (see audit.go). A request
// that changes nothing (a KV read, see changesNothing) with a single
// device is served while its request entry is being written, and its
// response waits for both entries: it fails and returns nothing all the
// same if the request entry cannot be written.
func (c *Core) HandleRequest(ctx context.Context, req *Request) (*Result, error) {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	if c.sealed.Load() {
		return nil, ErrSealed
	}
	if c.standby.Load() {
		return nil, ErrStandby
	}
	var res *Result
	var err error
	if !c.audit.Enabled() {
		res, err = c.handleRequest(ctx, req, nil)
	} else {
		rec := c.newAuditRecord(req)
		res, err = c.handleRequest(ctx, req, rec)
		res, err = c.auditOutcome(ctx, rec, res, err)
		c.freeAuditRecord(rec)
	}
	if err != nil && errors.Is(err, storage.ErrFenced) {
		// This server lost the leader lock while serving: another one is
		// active now, and the client may retry there.
		return nil, fmt.Errorf("%w: %w", ErrStandby, err)
	}
	return res, err
}

// handleRequest serves a request; rec, when set, is told what the
// pipeline learns and records the request before the mount runs.
func (c *Core) handleRequest(ctx context.Context, req *Request, rec *auditRecord) (res *Result, err error) {
	if isUIMountsPath(req.Path) {
		if rec != nil {
			if err := c.auditRequest(ctx, rec); err != nil {
				return nil, err
			}
		}
		res, err := c.handleUIMounts(ctx, req)
		if err != nil || req.WrapTTL <= 0 || !wrapsResponse(res.Response) {
			return res, err
		}
		// Asked for wrapped, as anyone may ask: no policy grants the path,
		// so none bounds the TTL.
		if err := c.wrapResult(ctx, res, req.WrapRender, req.WrapTTL, req.Path); err != nil {
			return nil, err
		}
		return res, nil
	}
	route, rest, routed := c.router.Match(req.Path)
	lreq := &req.lreq
	*lreq = logical.Request{
		ID:         req.ID,
		Operation:  req.Operation,
		Path:       rest,
		Data:       req.Data,
		Connection: req.Connection,
	}
	if routed {
		req.Mount = route.Entry.Path
		lreq.Storage = route.Storage
		lreq.MountPoint = route.Entry.Path
		lreq.MountType = route.Entry.Type
		lreq.MountAccessor = route.Entry.Accessor
	}
	if rec != nil {
		rec.lreq = lreq
		if routed {
			rec.route = route
		}
	}
	unauth := routed && isUnauthenticated(route, rest)
	if unauth {
		defer func() { c.observeLogin(route, res, err) }()
		if err := c.limitLogin(req.Connection); err != nil {
			return nil, err
		}
	}
	var te *token.Entry // the caller's token; nil on an unauthenticated path
	if !unauth {
		var err error
		if te, err = c.lookupToken(ctx, req.Token); err != nil {
			return nil, err
		}
		if rec != nil {
			rec.te = te
		}
		lreq.DisplayName = te.DisplayName
		if err := checkCIDR(te, req.Connection); err != nil {
			return nil, err
		}
		if routed && route.Entry.Type == typeCubbyhole {
			// The caller's own cubbyhole, and no other; before the
			// existence check, which must look there too.
			if lreq.Storage, err = c.cubbyholeView(te); err != nil {
				return nil, err
			}
		}
		if routed && lreq.Operation == logical.UpdateOperation {
			if err := c.existenceCheck(ctx, route, lreq); err != nil {
				return nil, err
			}
		}
		acl, err := c.checkACL(ctx, te, req.Path, route, rest, lreq, req.WrapTTL)
		if rec != nil {
			rec.decided, rec.allowed = true, err == nil
		}
		if err != nil {
			return nil, err
		}
		if rec != nil && routed {
			// Recorded before the token's use is counted: a request
			// that cannot be recorded costs no use.
			// A wrapped response creates a wrapping token: not pure.
			rec.pure = req.WrapTTL == 0 && changesNothing(route, lreq, te)
			if err := c.auditRequest(ctx, rec); err != nil {
				return nil, err
			}
		}
		if te, err = c.useToken(ctx, te); err != nil {
			return nil, err
		}
		if te.Exhausted() {
			// That was the token's last use: it goes once the request
			// is served.
			defer c.revokeUsedUp(ctx, te)
		}
		if routed {
			switch route.Entry.Type {
			case typeSystem:
				// sys endpoints about the caller (capabilities-self,
				// unwrap) need its token; no other mount sees it.
				// sys/wrapping/wrap and rewrap steer wrapping.
				ctx = context.WithValue(ctx, callerKey{}, te)
				req.wrap = wrapOverride{ttl: req.WrapTTL}
				ctx = context.WithValue(ctx, wrapKey{}, &req.wrap)
			case typeToken:
				ctx = token.WithCaller(ctx, &token.Caller{Entry: te, Token: req.Token, ACL: acl})
			}
		}
	}
	if !routed {
		return nil, fmt.Errorf("%w %q", ErrNoRoute, req.Path)
	}
	if unauth && lreq.Operation == logical.UpdateOperation {
		if err := c.existenceCheck(ctx, route, lreq); err != nil {
			return nil, err
		}
	}
	if rec != nil && unauth {
		if err := c.auditRequest(ctx, rec); err != nil {
			return nil, err
		}
	}
	var resp *logical.Response
	if te != nil && route.Entry.Type == typeCubbyhole && isWrappingToken(te) {
		// The wrapped response, as old clients read it (see wrapping.go).
		resp, err = c.readCubbyholeResponse(ctx, te, lreq)
	} else {
		resp, err = route.Backend.HandleRequest(ctx, lreq)
	}
	if err != nil {
		return nil, c.storageError(err)
	}
	if resp == nil {
		resp = &logical.Response{}
	}
	if resp.Auth != nil {
		switch {
		case route.Entry.Type == typeToken:
			// auth/token created the token it answers.
		case isAuthPath(route.Entry.Path):
			if err := c.issueLoginToken(ctx, route, req.Path, resp); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("core: secrets engine %q returned an auth", route.Entry.Path)
		}
	}
	if s := resp.Secret; s != nil {
		if s.NoLease {
			s.TTL = c.reportedTTL(route, s.TTL)
		} else if err := c.registerLease(ctx, route, lreq, req.Path, te, s); err != nil {
			return nil, err
		}
	}
	if len(resp.Events) > 0 {
		// The request succeeded: what it changed is published (events.go).
		c.publishEvents(route.Entry, resp.Events)
	}
	req.res = Result{Response: resp, MountType: route.Entry.Type}
	if ttl, path := wrapFor(req); ttl > 0 && wrapsResponse(resp) {
		if err := c.wrapResult(ctx, &req.res, req.WrapRender, ttl, path); err != nil {
			return nil, err
		}
	}
	return &req.res, nil
}

// wrapFor returns the TTL to wrap req's response with (0: not wrapped)
// and its creation path: the request's, or what sys/wrapping/rewrap set.
func wrapFor(req *Request) (time.Duration, string) {
	if o := req.wrap; o.ttl > 0 {
		if o.creationPath != "" {
			return o.ttl, o.creationPath
		}
		return o.ttl, req.Path
	}
	return req.WrapTTL, req.Path
}

// changesNothing reports whether serving lreq with te changes nothing: a
// read or list of a mount whose reads change nothing (logical.PureReader),
// with a token that has no use to count.
func changesNothing(route *mount.Route, lreq *logical.Request, te *token.Entry) bool {
	if lreq.Operation != logical.ReadOperation && lreq.Operation != logical.ListOperation {
		return false
	}
	if te.NumUses != 0 {
		return false
	}
	pr, ok := route.Backend.(logical.PureReader)
	return ok && pr.PureReads()
}

// callerKey carries the caller's token entry to the sys backend.
type callerKey struct{}

// callerOf returns the caller's token entry, nil for an unauthenticated
// request.
func callerOf(ctx context.Context) *token.Entry {
	te, _ := ctx.Value(callerKey{}).(*token.Entry)
	return te
}

// lookupToken returns the entry of a valid token; a missing, unknown or
// expired token is permission denied.
func (c *Core) lookupToken(ctx context.Context, tok secret.String) (*token.Entry, error) {
	e, err := c.tokens.Lookup(ctx, tok)
	if errors.Is(err, token.ErrInvalid) {
		return nil, logical.ErrPermissionDenied
	}
	if err != nil {
		return nil, c.storageError(err)
	}
	return e, nil
}

// existenceCheck turns an update into a create where the mount says the
// target does not exist: a policy may grant one and not the other.
func (c *Core) existenceCheck(ctx context.Context, route *mount.Route, lreq *logical.Request) error {
	checked, exists, err := route.Backend.ExistenceCheck(ctx, lreq)
	if err != nil {
		return c.storageError(err)
	}
	if checked && !exists {
		lreq.Operation = logical.CreateOperation
	}
	return nil
}

// checkACL decides a request against the ACL of the token's policies:
// deny by default. path is the full request path; route and rest are its
// mount and the path within it (route is nil for an unrouted path, which
// the ACL still decides first, so that a caller learns nothing of paths it
// may not use).
func (c *Core) checkACL(ctx context.Context, te *token.Entry, path string, route *mount.Route, rest string, lreq *logical.Request, wrapTTL time.Duration) (*policy.ACL, error) {
	acl, err := c.tokenACL(ctx, te)
	if err != nil {
		return nil, c.storageError(err)
	}
	if acl.IsRoot() {
		return acl, nil
	}
	res := acl.Allowed(policy.Request{
		Operation: policy.Operation(lreq.Operation),
		Path:      path,
		Data:      lreq.Data,
		Sudo:      c.needsSudo(route, path, rest, lreq.Operation),
		WrapTTL:   wrapTTL,
	})
	if !res.Allowed {
		c.log.Debug("request denied", "path", path, "operation", lreq.Operation, "reason", res.Reason)
		return nil, logical.ErrPermissionDenied
	}
	return acl, nil
}

// tokenACL returns the ACL of a token: its policies and its entity's,
// identity templates resolved for its entity. A token whose entity has
// been disabled is denied everything.
func (c *Core) tokenACL(ctx context.Context, te *token.Entry) (*policy.ACL, error) {
	var ent *identity.Entity
	if te.EntityID != "" && c.identity != nil {
		if ent = c.identity.Entity(te.EntityID); ent != nil && ent.Disabled {
			return nil, logical.ErrPermissionDenied
		}
	}
	return c.policies.aclFor(ctx, te.Policies, ent)
}

// limitLogin counts a login attempt against its client address (429 with
// Retry-After past the limit). Internal requests have no address and no
// limit.
func (c *Core) limitLogin(conn *logical.Connection) error {
	if conn == nil || conn.RemoteAddr == "" {
		return nil
	}
	if ok, wait := c.logins.allow(conn.RemoteAddr, c.clk.Now()); !ok {
		return &logical.RateLimitError{RetryAfter: wait}
	}
	return nil
}

// checkCIDR refuses a token bound to addresses the client is not in.
func checkCIDR(te *token.Entry, conn *logical.Connection) error {
	var addr string
	if conn != nil {
		addr = conn.RemoteAddr
	}
	if err := token.CheckCIDR(te, addr); err != nil {
		return logical.ErrPermissionDenied
	}
	return nil
}

// useToken counts one use of a token with a use limit.
func (c *Core) useToken(ctx context.Context, te *token.Entry) (*token.Entry, error) {
	used, err := c.tokens.UseToken(ctx, te)
	if errors.Is(err, token.ErrInvalid) {
		return nil, logical.ErrPermissionDenied
	}
	if err != nil {
		return nil, c.storageError(err)
	}
	return used, nil
}

// revokeUsedUp revokes a token whose last use was just served. A failure
// leaves a token no lookup accepts; tidy and its lease finish the job.
func (c *Core) revokeUsedUp(ctx context.Context, te *token.Entry) {
	if err := c.tokens.RevokeTree(context.WithoutCancel(ctx), te.HashedID); err != nil {
		c.log.Warn("could not revoke a used-up token", "error", err)
	}
}

// isUnauthenticated reports whether the mount serves rest without a token
// (a login).
func isUnauthenticated(route *mount.Route, rest string) bool {
	sp, ok := route.Backend.(logical.SpecialPather)
	return ok && logical.MatchSpecial(sp.SpecialPaths().Unauthenticated, rest)
}

// sysRootPaths are the root-protected paths of sys/ (spec §3): they need
// sudo on top of the operation's capability.
var sysRootPaths = []string{
	"auth/*", "audit", "audit/*", "audit-chain/*", "remount", "raw", "raw/*", "rotate", "rotate/*",
	"config/cors", "config/auditing/*", "config/ui/headers/*", "plugins/catalog/*",
	"revoke-prefix/*", "revoke-force/*", "leases/revoke-prefix/*", "leases/revoke-force/*",
	"seal", "step-down",
}

// needsSudo reports whether a request's path is root-protected.
func (c *Core) needsSudo(route *mount.Route, path, rest string, op logical.Operation) bool {
	if sys, ok := strings.CutPrefix(path, "sys/"); ok {
		switch {
		case logical.MatchSpecial(sysRootPaths, sys):
			return true
		case op == logical.ListOperation && strings.HasPrefix(sys, "leases/lookup/"),
			op == logical.ReadOperation && (sys == "leases" || sys == "leases/count"):
			return true
		}
		return false
	}
	if route == nil {
		return false
	}
	sp, ok := route.Backend.(logical.SpecialPather)
	return ok && logical.MatchSpecial(sp.SpecialPaths().Root, rest)
}

// authorizeSys checks a token for a sys operation served outside the
// router (sys/seal).
func (c *Core) authorizeSys(ctx context.Context, tok secret.String, conn *logical.Connection, path string, op logical.Operation) error {
	te, err := c.lookupToken(ctx, tok)
	if err != nil {
		return err
	}
	if err := checkCIDR(te, conn); err != nil {
		return err
	}
	_, err = c.checkACL(ctx, te, path, nil, "", &logical.Request{Operation: op}, 0)
	return err
}

// storageError turns a barrier decryption failure into a 500 that names the
// storage path (never the plaintext); other errors pass through.
func (c *Core) storageError(err error) error {
	if errors.Is(err, barrier.ErrDecrypt) {
		c.log.Error("storage entry failed authentication", "error", err)
		return &logical.CodedError{Status: 500, Msg: err.Error(), Err: err}
	}
	return err
}

func isUIMountsPath(p string) bool {
	return p == "sys/internal/ui/mounts" || strings.HasPrefix(p, "sys/internal/ui/mounts/") ||
		strings.HasPrefix(p, "sys/mounts-all/") || p == "sys/mounts-all"
}
