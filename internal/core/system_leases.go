package core

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/lease"
	"github.com/vigil-secrets/vigil/internal/logical"
)

// leasePaths serve sys/leases and its legacy aliases (sys/renew,
// sys/revoke, sys/revoke-prefix, sys/revoke-force). Lease ids contain '/',
// so the URL forms capture the rest of the path; a lease_id in the body
// wins over the URL (spec §3.11).
func (s *systemBackend) leasePaths() []*framework.Path {
	leaseID := &framework.FieldSchema{Type: framework.TypeString, Description: "the lease id"}
	urlID := &framework.FieldSchema{Type: framework.TypeString, Description: "the lease id, in the URL"}
	increment := &framework.FieldSchema{Type: framework.TypeDurationSecond, Description: "requested extension; 0 for the mount's default"}
	sync := &framework.FieldSchema{Type: framework.TypeBool, Default: true, Description: "revoke before answering (false: queue)"}
	update := func(f framework.OperationFunc) map[logical.Operation]framework.OperationHandler {
		return map[logical.Operation]framework.OperationHandler{logical.UpdateOperation: {Handler: f}}
	}
	renew := &framework.Path{
		Fields:     map[string]*framework.FieldSchema{"lease_id": leaseID, "url_lease_id": urlID, "increment": increment},
		Operations: update(s.renewLease),
	}
	revoke := &framework.Path{
		Fields:     map[string]*framework.FieldSchema{"lease_id": leaseID, "url_lease_id": urlID, "sync": sync},
		Operations: update(s.revokeLease),
	}
	prefix := func(force bool) *framework.Path {
		return &framework.Path{
			Fields:     map[string]*framework.FieldSchema{"prefix": {Type: framework.TypeString}, "sync": sync},
			Operations: update(s.revokePrefix(force)),
		}
	}
	at := func(p *framework.Path, pattern, help string) *framework.Path {
		c := *p
		c.Pattern, c.HelpSynopsis = pattern, help
		return &c
	}
	return []*framework.Path{
		{
			Pattern:      "leases/lookup",
			Fields:       map[string]*framework.FieldSchema{"lease_id": leaseID},
			Operations:   update(s.lookupLease),
			HelpSynopsis: "Read a lease's issue time, expiry and renewability.",
		},
		{
			Pattern: "leases/lookup/(?P<prefix>.*)",
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ListOperation: {Handler: s.listLeases},
			},
			HelpSynopsis: "List lease ids under a prefix (sudo).",
		},
		at(renew, "leases/renew(?:/(?P<url_lease_id>.+))?", "Renew a lease."),
		at(renew, "renew(?:/(?P<url_lease_id>.+))?", "Renew a lease (legacy path)."),
		at(revoke, "leases/revoke(?:/(?P<url_lease_id>.+))?", "Revoke a lease."),
		at(revoke, "revoke/(?P<url_lease_id>.+)", "Revoke a lease (legacy path)."),
		at(prefix(false), "leases/revoke-prefix/(?P<prefix>.+)", "Revoke every lease, and every token, under a prefix (sudo)."),
		at(prefix(false), "revoke-prefix/(?P<prefix>.+)", "Revoke every lease under a prefix (legacy path)."),
		at(prefix(true), "leases/revoke-force/(?P<prefix>.+)", "Revoke under a prefix, ignoring the mounts' errors (sudo)."),
		at(prefix(true), "revoke-force/(?P<prefix>.+)", "Revoke under a prefix ignoring errors (legacy path)."),
		{
			Pattern:      "leases/tidy",
			Operations:   update(s.tidyLeases),
			HelpSynopsis: "Repair the lease indexes.",
		},
		{
			Pattern: "leases/count",
			Fields:  map[string]*framework.FieldSchema{"type": {Type: framework.TypeString}, "include_child_namespaces": {Type: framework.TypeBool}},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: {Handler: s.countIrrevocable},
			},
			HelpSynopsis: "Count irrevocable leases (sudo).",
		},
		{
			Pattern: "leases",
			Fields:  map[string]*framework.FieldSchema{"type": {Type: framework.TypeString}, "include_child_namespaces": {Type: framework.TypeBool}, "limit": {Type: framework.TypeString}},
			Operations: map[logical.Operation]framework.OperationHandler{
				logical.ReadOperation: {Handler: s.listIrrevocable},
			},
			HelpSynopsis: "List irrevocable leases (sudo).",
		},
	}
}

// leaseIDOf returns the lease id of a renew or revoke: the body's, else
// the URL's.
func leaseIDOf(d *framework.FieldData) (string, error) {
	id := strings.TrimSpace(d.String("lease_id"))
	if id == "" {
		id = strings.TrimSpace(d.String("url_lease_id"))
	}
	if id == "" {
		return "", logical.BadRequest("missing lease ID")
	}
	return id, nil
}

// optionalTime renders a time, or null when it is zero.
func optionalTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (s *systemBackend) lookupLease(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id := strings.TrimSpace(d.String("lease_id"))
	if id == "" {
		return nil, logical.BadRequest("missing lease ID")
	}
	l, err := s.c.leases.Lookup(ctx, id)
	if err != nil {
		return nil, leaseError(err)
	}
	return &logical.Response{Data: map[string]any{
		"id":           l.ID,
		"path":         l.Path,
		"issue_time":   l.IssueTime.UTC().Format(time.RFC3339Nano),
		"expire_time":  optionalTime(l.ExpireTime),
		"last_renewal": optionalTime(l.LastRenewal),
		"renewable":    l.Renewable,
		"ttl":          int64(l.TTL(s.c.clk.Now()).Seconds()),
	}}, nil
}

func (s *systemBackend) listLeases(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	keys, err := s.c.leases.List(ctx, d.String("prefix"))
	if err != nil {
		return nil, leaseError(err)
	}
	if len(keys) == 0 {
		return nil, logical.ErrNotFound
	}
	return &logical.Response{Data: map[string]any{"keys": keys}}, nil
}

func (s *systemBackend) renewLease(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, err := leaseIDOf(d)
	if err != nil {
		return nil, err
	}
	l, err := s.c.leases.Renew(ctx, id, d.Duration("increment"))
	if err != nil {
		return nil, leaseError(err)
	}
	// The TTL granted, measured from the renewal, as Vault reports it:
	// measured from now it would come out a second short.
	ttl := l.ExpireTime.Sub(l.LastRenewal)
	if l.LastRenewal.IsZero() {
		ttl = l.TTL(s.c.clk.Now())
	}
	return &logical.Response{Secret: &logical.Secret{
		LeaseID:   l.ID,
		Renewable: l.Renewable,
		TTL:       ttl,
		NoLease:   true, // the lease exists; the answer only reports it
	}}, nil
}

func (s *systemBackend) revokeLease(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	id, err := leaseIDOf(d)
	if err != nil {
		return nil, err
	}
	if !d.Bool("sync") {
		err = s.c.leases.RevokeAsync(ctx, id)
	} else {
		err = s.c.leases.Revoke(ctx, id, false)
	}
	if errors.Is(err, lease.ErrNotFound) {
		// Revoking what is already gone succeeds, as in Vault: a retried
		// revocation must not fail.
		return nil, nil
	}
	return nil, leaseError(err)
}

// revokePrefix revokes every lease under a prefix: the incident-response
// button for a mount (sys/leases/revoke-prefix/database/creds) or an auth
// method (auth/approle).
func (s *systemBackend) revokePrefix(force bool) framework.OperationFunc {
	return func(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
		prefix := strings.TrimSuffix(strings.TrimSpace(d.String("prefix")), "/")
		if prefix == "" {
			return nil, logical.BadRequest("missing prefix")
		}
		if !force && !d.Bool("sync") {
			if err := s.c.leases.RevokePrefixAsync(ctx, prefix); err != nil {
				return nil, leaseError(err)
			}
		} else if err := s.c.leases.RevokePrefix(ctx, prefix, force); err != nil {
			return nil, leaseError(err)
		}
		// Tokens issued under the prefix (auth/approle/login), also
		// those without a lease of their own.
		if err := s.c.revokeTokensUnder(ctx, prefix); err != nil {
			return nil, err
		}
		return nil, nil
	}
}

func (s *systemBackend) tidyLeases(ctx context.Context, _ *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
	res, err := s.c.leases.Tidy(ctx)
	if err != nil {
		return nil, leaseError(err)
	}
	return &logical.Response{Data: map[string]any{
		"leases":         res.Leases,
		"unreadable":     res.Unreadable,
		"index_removed":  res.IndexRemoved,
		"index_restored": res.IndexRestored,
		"rescheduled":    res.Rescheduled,
	}}, nil
}

// checkIrrevocableType accepts the only lease type these endpoints report.
func checkIrrevocableType(d *framework.FieldData) error {
	if t := d.String("type"); t != "irrevocable" {
		return logical.BadRequest("invalid or missing type: only \"irrevocable\" is supported")
	}
	return nil
}

func (s *systemBackend) countIrrevocable(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkIrrevocableType(d); err != nil {
		return nil, err
	}
	n, err := s.c.leases.IrrevocableCount(ctx)
	if err != nil {
		return nil, leaseError(err)
	}
	return &logical.Response{Data: map[string]any{"lease_count": n}}, nil
}

func (s *systemBackend) listIrrevocable(ctx context.Context, _ *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	if err := checkIrrevocableType(d); err != nil {
		return nil, err
	}
	ls, err := s.c.leases.Irrevocable(ctx)
	if err != nil {
		return nil, leaseError(err)
	}
	out := make([]any, 0, len(ls))
	for _, l := range ls {
		out = append(out, map[string]any{
			"lease_id":    l.ID,
			"expire_time": optionalTime(l.ExpireTime),
			"error":       l.RevokeError,
		})
	}
	return &logical.Response{Data: map[string]any{"lease_count": len(ls), "leases": out}}, nil
}
