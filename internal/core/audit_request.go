package core

import (
	"context"

	"github.com/vigil-secrets/vigil/internal/audit"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/mount"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/token"
)

// auditRecord follows one request through the pipeline for the audit log.
type auditRecord struct {
	req   *Request
	lreq  *logical.Request // nil for paths served before routing
	route *mount.Route     // nil when unrouted
	te    *token.Entry     // the caller's token, once looked up
	// decided and allowed record the ACL's decision.
	decided, allowed bool
	// logged: the request entry is written (or queued, see pure);
	// failed: writing it failed.
	logged, failed bool
	// pure: serving the request changes nothing (see
	// logical.PureReader), so its request entry may be queued rather
	// than waited for; ticket holds it once queued.
	pure   bool
	ticket audit.Ticket
	// in is the request as recorded, reused for the response entry.
	in *audit.Input

	// The parts of the entries, allocated with the record.
	inBuf    audit.Input
	reqBuf   audit.Request
	authBuf  audit.Auth
	respBuf  audit.Response
	respAuth audit.Auth
}

// newAuditRecord returns a record for req, recycled if one is free.
func (c *Core) newAuditRecord(req *Request) *auditRecord {
	rec, _ := c.auditRecords.Get().(*auditRecord)
	if rec == nil {
		rec = new(auditRecord)
	}
	rec.req = req
	return rec
}

// freeAuditRecord recycles rec once its request is recorded: the devices
// keep only the entries' bytes, and the result returned to the client
// points into rec nowhere. rec is cleared first, so that the pool keeps
// no request's values, in clear, alive.
func (c *Core) freeAuditRecord(rec *auditRecord) {
	*rec = auditRecord{}
	c.auditRecords.Put(rec)
}

// auditRequest records the request before the mount runs: fail closed.
// A request that changes nothing is served while its entry is written
// (with its response entry, most often): if the entry is never written,
// neither is the response entry, and the request returns nothing.
func (c *Core) auditRequest(ctx context.Context, rec *auditRecord) error {
	in := c.auditInput(rec, nil)
	var err error
	if rec.pure {
		if rec.ticket, err = c.audit.QueueRequest(in); err == nil && rec.ticket.Queued() {
			rec.logged = true
			return nil
		}
	}
	if err == nil {
		err = c.audit.LogRequest(ctx, in)
	}
	if err != nil {
		rec.failed = true
		return c.auditFailure(err)
	}
	rec.logged = true
	return nil
}

// auditOutcome records how a request ended. A request that failed before
// its request entry gets one entry, with its error; a request that was
// recorded gets a response entry. Either way, an outcome no device
// records is not returned.
func (c *Core) auditOutcome(ctx context.Context, rec *auditRecord, res *Result, err error) (*Result, error) {
	if rec.failed {
		return nil, err
	}
	in := c.auditInput(rec, err)
	if !rec.logged {
		if lerr := c.audit.LogRequest(ctx, in); lerr != nil {
			return nil, c.auditFailure(lerr)
		}
		return res, err
	}
	if res != nil && res.Response != nil {
		in.Response = auditResponse(rec, res.Response)
		if w := res.Wrap; w != nil {
			in.Response.WrapInfo = &audit.WrapInfo{Token: w.Token, Accessor: w.Accessor, TTL: w.TTL,
				CreationTime: w.CreationTime, CreationPath: w.CreationPath, WrappedAccessor: w.WrappedAccessor}
		}
	}
	var lerr error
	if rec.ticket.Queued() {
		lerr = c.audit.LogResponseAfter(ctx, rec.ticket, in)
	} else {
		lerr = c.audit.LogResponse(ctx, in)
	}
	if lerr != nil {
		return nil, c.auditFailure(lerr)
	}
	return res, err
}

// auditFailure is the error of a request no device could record: a 500
// that says nothing of the devices (they are in the server log).
func (c *Core) auditFailure(err error) error {
	c.log.Error("audit: request not recorded; failing it", "error", err)
	return &logical.CodedError{Status: 500, Msg: "internal error", Err: err}
}

// auditInput describes the request as the pipeline knows it: once
// recorded, the request's description is reused for its response.
func (c *Core) auditInput(rec *auditRecord, err error) *audit.Input {
	if in := rec.in; in != nil && rec.logged {
		in.Time, in.Err = c.clk.Now(), err
		return in
	}
	req := rec.req
	op := req.Operation
	if rec.lreq != nil {
		op = rec.lreq.Operation
	}
	ar := &rec.reqBuf
	*ar = audit.Request{
		ID:          req.ID,
		Operation:   string(op),
		Path:        req.Path,
		Data:        req.Data,
		ClientToken: req.Token,
	}
	if conn := req.Connection; conn != nil {
		ar.RemoteAddr, ar.RemotePort, ar.ClientCertSubject = conn.RemoteAddr, conn.RemotePort, conn.ClientCertSubject
	}
	if rt := rec.route; rt != nil {
		e := rt.Entry
		ar.MountPoint, ar.MountType, ar.MountAccessor = e.Path, e.Type, e.Accessor
		ar.MountClass = "secret"
		if isAuthPath(e.Path) {
			ar.MountClass = "auth"
		}
		ar.NonHMACKeys = e.Config.AuditNonHMACRequestKeys
	}
	if hs := c.auditHeaders.Load(); hs != nil && len(req.Headers) > 0 {
		ar.Headers = hs.pick(req.Headers)
	}
	in := &rec.inBuf
	*in = audit.Input{Time: c.clk.Now(), Request: ar, Err: err}
	rec.in = in
	if te := rec.te; te != nil {
		ar.ClientTokenAccessor = te.Accessor
		in.Auth = &rec.authBuf
		*in.Auth = audit.Auth{
			Accessor:      te.Accessor,
			DisplayName:   te.DisplayName,
			Policies:      te.Policies,
			Metadata:      te.Meta,
			EntityID:      te.EntityID,
			TokenType:     te.Type,
			TTL:           te.TTL,
			IssueTime:     te.CreationTime,
			RemainingUses: max(te.NumUses, 0),
		}
		if rec.decided {
			in.Auth.Allowed = &rec.allowed
		}
	}
	return in
}

// auditResponse describes what a served request returned.
func auditResponse(rec *auditRecord, resp *logical.Response) *audit.Response {
	out := &rec.respBuf
	*out = audit.Response{Data: resp.Data, Warnings: resp.Warnings}
	if rec.route != nil {
		out.NonHMACKeys = rec.route.Entry.Config.AuditNonHMACResponseKeys
	}
	if s := resp.Secret; s != nil && !s.NoLease {
		out.LeaseID = s.LeaseID
	}
	if a := resp.Auth; a != nil {
		out.Auth = &rec.respAuth
		*out.Auth = audit.Auth{
			ClientToken: secret.NewString(a.ClientToken),
			Accessor:    a.Accessor,
			DisplayName: a.DisplayName,
			Policies:    a.Policies,
			Metadata:    a.Metadata,
			EntityID:    a.EntityID,
			TokenType:   a.TokenType,
			TTL:         a.TTL,
		}
	}
	return out
}
