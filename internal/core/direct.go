package core

import (
	"context"

	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/policy"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/token"
)

// directRequest is a request the core serves outside the router, because
// its body or its answer is a stream: snapshots, event subscriptions.
type directRequest struct {
	// ID is the request id, for the audit log.
	ID string
	// Path is the path the client asked for: the ACL is checked, and the
	// request recorded, on it.
	Path string
	// Data are the request's parameters (the query), checked by the ACL's
	// parameter constraints and recorded (HMAC'd) in the audit log.
	Data       map[string]any
	Token      secret.String
	Connection *logical.Connection
	// Headers are the request's HTTP headers, for the audit log.
	Headers map[string][]string
}

// authorizeDirect checks the caller's token for op on req.Path (with sudo
// when sudo is set), records the request when an audit device is enabled
// (fail closed), and counts the token's use. It returns the audit record
// (nil without audit devices) for the outcome, the token's entry, and a
// function to call once the operation is over (it revokes a token whose
// last use this was). A refusal is recorded as the request's outcome. The
// caller holds stateMu for reading on an unsealed server.
func (c *Core) authorizeDirect(ctx context.Context, req directRequest, op logical.Operation, sudo bool) (rec *auditRecord, te *token.Entry, done func(), err error) {
	if c.audit.Enabled() {
		rec = &auditRecord{req: &Request{ID: req.ID, Operation: op, Path: req.Path, Data: req.Data, Token: req.Token, Connection: req.Connection, Headers: req.Headers}}
	}
	fail := func(err error) (*auditRecord, *token.Entry, func(), error) {
		if rec != nil {
			_, err = c.auditOutcome(ctx, rec, nil, err)
		}
		return nil, nil, nil, err
	}
	te, err = c.lookupToken(ctx, req.Token)
	if err != nil {
		return fail(err)
	}
	if rec != nil {
		rec.te = te
	}
	if err := checkCIDR(te, req.Connection); err != nil {
		return fail(err)
	}
	acl, err := c.tokenACL(ctx, te)
	if err != nil {
		return fail(c.storageError(err))
	}
	allowed := acl.IsRoot()
	if !allowed {
		res := acl.Allowed(policy.Request{Operation: policy.Operation(op), Path: req.Path, Data: req.Data, Sudo: sudo})
		allowed = res.Allowed
		if !allowed {
			c.log.Debug("request denied", "path", req.Path, "operation", op, "reason", res.Reason)
		}
	}
	if rec != nil {
		rec.decided, rec.allowed = true, allowed
	}
	if !allowed {
		return fail(logical.ErrPermissionDenied)
	}
	if rec != nil {
		if err := c.auditRequest(ctx, rec); err != nil {
			return nil, nil, nil, err
		}
	}
	used, err := c.useToken(ctx, te)
	if err != nil {
		return fail(err)
	}
	done = func() {}
	if used.Exhausted() {
		done = func() { c.revokeUsedUp(ctx, used) }
	}
	return rec, used, done, nil
}

// directOutcome records how a direct request ended (when there is an
// audit record) and returns the error the caller must return: err, or a
// 500 when no device recorded the outcome.
func (c *Core) directOutcome(ctx context.Context, rec *auditRecord, data map[string]any, err error) error {
	if rec == nil {
		return err
	}
	var res *Result
	if err == nil {
		res = &Result{Response: &logical.Response{Data: data}}
	}
	_, err = c.auditOutcome(ctx, rec, res, err)
	return err
}
