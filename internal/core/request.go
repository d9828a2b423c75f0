package core

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-secrets/vigil/internal/barrier"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
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
}

// Result is a served request.
type Result struct {
	Response *logical.Response
	// MountType is the type of the mount that served the request.
	MountType string
}

// HandleRequest runs a request through the pipeline: sealed check, token
// check, routing, existence check, the mount itself.
func (c *Core) HandleRequest(ctx context.Context, req *Request) (*Result, error) {
	c.stateMu.RLock()
	defer c.stateMu.RUnlock()
	if c.sealed.Load() {
		return nil, ErrSealed
	}
	if isUIMountsPath(req.Path) {
		return c.handleUIMounts(ctx, req)
	}
	if err := c.requireRoot(ctx, req.Token); err != nil {
		return nil, err
	}
	route, rest, ok := c.router.Match(req.Path)
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrNoRoute, req.Path)
	}
	lreq := &logical.Request{
		ID:            req.ID,
		Operation:     req.Operation,
		Path:          rest,
		Data:          req.Data,
		Storage:       route.Storage,
		MountPoint:    route.Entry.Path,
		MountType:     route.Entry.Type,
		MountAccessor: route.Entry.Accessor,
		Connection:    req.Connection,
	}
	if lreq.Operation == logical.UpdateOperation {
		checked, exists, err := route.Backend.ExistenceCheck(ctx, lreq)
		if err != nil {
			return nil, c.storageError(err)
		}
		if checked && !exists {
			lreq.Operation = logical.CreateOperation
		}
	}
	resp, err := route.Backend.HandleRequest(ctx, lreq)
	if err != nil {
		return nil, c.storageError(err)
	}
	if resp == nil {
		resp = &logical.Response{}
	}
	if resp.Auth != nil {
		// Logins arrive with the token pipeline; until then no token may
		// be promised and not created.
		return nil, fmt.Errorf("core: mount %q returned an auth, but logins are not served yet", route.Entry.Path)
	}
	if s := resp.Secret; s != nil {
		if !s.NoLease {
			// Leases arrive with the expiration manager; no engine of
			// this build asks for one, and none may be handed out
			// unregistered.
			return nil, fmt.Errorf("core: mount %q returned a lease, but no lease manager is running", route.Entry.Path)
		}
		s.TTL = c.reportedTTL(route, s.TTL)
	}
	return &Result{Response: resp, MountType: route.Entry.Type}, nil
}

// requireRoot accepts only a valid root token. Policies and the full token
// store replace this check with ACLs.
func (c *Core) requireRoot(ctx context.Context, tok secret.String) error {
	e, err := c.tokens.Lookup(ctx, tok)
	if errors.Is(err, token.ErrInvalid) {
		return logical.ErrPermissionDenied
	}
	if err != nil {
		return c.storageError(err)
	}
	if !e.IsRoot() {
		return logical.ErrPermissionDenied
	}
	return nil
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
