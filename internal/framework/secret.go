package framework

import (
	"context"
	"fmt"
	"maps"

	"github.com/vigil-secrets/vigil/internal/logical"
)

// SecretTypeKey is the key of a lease's InternalData under which the
// framework records the secret's type, to find its handlers on renewal
// and revocation.
const SecretTypeKey = "secret_type"

// SecretFunc renews or revokes one lease: req.Secret is the Secret the
// mount returned, as stored with the lease.
type SecretFunc func(ctx context.Context, req *logical.Request) (*logical.Response, error)

// SecretType is a kind of lease a mount hands out (database credentials,
// say) and what renews and revokes it.
type SecretType struct {
	// Type names the kind, unique within the mount.
	Type string
	// Renew answers a response whose Secret carries the new TTL; nil
	// means leases of this kind cannot be renewed.
	Renew SecretFunc
	// Revoke undoes the secret (drops the user). It must be idempotent:
	// a revocation interrupted by a crash is tried again.
	Revoke SecretFunc
	// Registered, when set, is told that the lease of a secret of this
	// kind is stored (see [logical.LeaseConfirmer]): s is the secret,
	// its LeaseID set. An engine deletes there the intent record that
	// covered the secret until then. If it fails, the lease is revoked
	// and the request fails.
	Registered func(ctx context.Context, req *logical.Request, s *logical.Secret) error
}

// WithSecrets declares the lease kinds the backend hands out.
func WithSecrets(types ...*SecretType) Option {
	return func(b *Backend) {
		if b.secrets == nil {
			b.secrets = map[string]*SecretType{}
		}
		for _, t := range types {
			b.secrets[t.Type] = t
		}
	}
}

// SecretResponse returns a response that hands out data under a lease of
// the given kind, which the backend must have declared with WithSecrets.
// internal is kept with the lease for renewal and revocation.
func SecretResponse(kind string, data, internal map[string]any, s logical.Secret) *logical.Response {
	in := maps.Clone(internal)
	if in == nil {
		in = make(map[string]any, 1)
	}
	in[SecretTypeKey] = kind
	s.InternalData = in
	return &logical.Response{Data: data, Secret: &s}
}

// handleSecret serves a renewal or revocation of a lease.
func (b *Backend) handleSecret(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	kind, _ := req.Secret.InternalData[SecretTypeKey].(string)
	t := b.secrets[kind]
	if t == nil {
		return nil, fmt.Errorf("framework: lease of unknown secret type %q", kind)
	}
	f := t.Revoke
	if req.Operation == logical.RenewOperation {
		f = t.Renew
		if f == nil {
			return nil, logical.BadRequest("lease is not renewable")
		}
	}
	if f == nil {
		return nil, fmt.Errorf("framework: secret type %q has no revoke handler", kind)
	}
	resp, err := f(ctx, req)
	if err != nil {
		return nil, err
	}
	if resp == nil {
		resp = &logical.Response{}
	}
	return resp, nil
}

// SecretRegistered implements [logical.LeaseConfirmer]: it calls the
// Registered func of the secret's kind, if it has one.
func (b *Backend) SecretRegistered(ctx context.Context, req *logical.Request, s *logical.Secret) error {
	kind, _ := s.InternalData[SecretTypeKey].(string)
	if t := b.secrets[kind]; t != nil && t.Registered != nil {
		return t.Registered(ctx, req, s)
	}
	return nil
}
