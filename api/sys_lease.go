package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The sys/leases endpoints look up, renew and revoke the leases of
// dynamic secrets and tokens. A lease id is the path that created the
// secret plus a random suffix ("database/creds/readonly/2f6a..."), so it
// contains '/'.
//
// Revocation puts the id or prefix in the URL, as the Vault CLI does
// (PUT sys/leases/revoke/<id>). [Client.Do] escapes what a URL path needs
// ('%', '?', '#', spaces...) and keeps each '/' as a separator, which the
// server's route captures with the rest of the path; the id is therefore
// passed as is, never through url.PathEscape, which would escape it twice.
// What would not reach the server intact is refused before sending: an
// empty id, a leading '/', an empty segment ("a//b") and the dot segments
// "." and "..", which HTTP servers clean away.

// leaseIDPath checks a lease id or prefix (what) that goes into a URL
// after base. A trailing '/' is kept: prefixes may end in one.
func leaseIDPath(base, what, id string) (string, error) {
	if id == "" {
		return "", fmt.Errorf("api: empty lease %s", what)
	}
	if strings.HasPrefix(id, "/") {
		return "", fmt.Errorf("api: invalid lease %s %q: starts with '/'", what, id)
	}
	segs := strings.Split(strings.TrimSuffix(id, "/"), "/")
	for _, s := range segs {
		switch s {
		case "":
			return "", fmt.Errorf("api: invalid lease %s %q: empty path segment", what, id)
		case ".", "..":
			return "", fmt.Errorf("api: invalid lease %s %q: %q path segment", what, id, s)
		}
	}
	return base + id, nil
}

// LeaseLookup returns a lease's properties in the answer's Data (PUT
// sys/leases/lookup): id, path, issue_time, expire_time, last_renewal,
// renewable and ttl. An unknown lease is a 400 [*ResponseError].
func (s *Sys) LeaseLookup(ctx context.Context, id string) (*Secret, error) {
	if id == "" {
		return nil, errors.New("api: empty lease id")
	}
	return s.leaseWrite(ctx, "sys/leases/lookup", map[string]any{"lease_id": id})
}

// LeaseRenew renews a lease for increment from now, or for the secret's
// default TTL when increment is 0 (PUT sys/leases/renew). The answer's
// LeaseID, LeaseDuration and Renewable describe the renewed lease. Token
// leases are renewed through [TokenAuth.Renew] instead.
func (s *Sys) LeaseRenew(ctx context.Context, id string, increment time.Duration) (*Secret, error) {
	if id == "" {
		return nil, errors.New("api: empty lease id")
	}
	return s.leaseWrite(ctx, "sys/leases/renew", map[string]any{"lease_id": id, "increment": incrementSeconds(increment)})
}

// LeaseRevoke revokes one lease (PUT sys/leases/revoke/<id>). With sync
// the server revokes before answering; without, it queues the revocation
// and retries it on failure.
func (s *Sys) LeaseRevoke(ctx context.Context, id string, sync bool) error {
	p, err := leaseIDPath("sys/leases/revoke/", "id", id)
	if err != nil {
		return err
	}
	_, err = s.c.Do(ctx, http.MethodPut, p, nil, map[string]bool{"sync": sync})
	return err
}

// LeaseRevokePrefix revokes every lease whose id starts with prefix, and
// every token created under it, such as auth/approle/login (PUT
// sys/leases/revoke-prefix/<prefix>; sudo).
func (s *Sys) LeaseRevokePrefix(ctx context.Context, prefix string, sync bool) error {
	p, err := leaseIDPath("sys/leases/revoke-prefix/", "prefix", prefix)
	if err != nil {
		return err
	}
	_, err = s.c.Do(ctx, http.MethodPut, p, nil, map[string]bool{"sync": sync})
	return err
}

// LeaseRevokeForce revokes every lease under prefix and forgets it even
// when the secrets engine fails to revoke the secret (PUT
// sys/leases/revoke-force/<prefix>; sudo). It always runs synchronously
// and is meant for recovery, when the secrets were removed by hand.
func (s *Sys) LeaseRevokeForce(ctx context.Context, prefix string) error {
	p, err := leaseIDPath("sys/leases/revoke-force/", "prefix", prefix)
	if err != nil {
		return err
	}
	_, err = s.c.Do(ctx, http.MethodPut, p, nil, nil)
	return err
}

// LeaseList returns the lease id suffixes and sub-prefixes (ending in
// '/') under prefix (LIST sys/leases/lookup/<prefix>/; sudo). An empty
// prefix lists the top level. Nothing under prefix gives an empty list.
func (s *Sys) LeaseList(ctx context.Context, prefix string) ([]string, error) {
	p := "sys/leases/lookup/"
	if prefix != "" {
		var err error
		if p, err = leaseIDPath(p, "prefix", prefix); err != nil {
			return nil, err
		}
		if !strings.HasSuffix(p, "/") {
			p += "/"
		}
	}
	resp, err := s.c.Do(ctx, "LIST", p, nil, nil)
	var re *ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusNotFound && len(re.Errors) == 0 {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	sec, err := resp.Secret()
	if err != nil {
		return nil, err
	}
	if sec == nil || sec.Data == nil {
		return nil, fmt.Errorf("%w: LIST %s", errNoData, p)
	}
	var out struct {
		Keys []string `json:"keys"`
	}
	if err := decodeData(sec.Data, &out); err != nil {
		return nil, err
	}
	if out.Keys == nil {
		out.Keys = []string{}
	}
	return out.Keys, nil
}

// leaseWrite PUTs body to path and decodes the envelope.
func (s *Sys) leaseWrite(ctx context.Context, path string, body any) (*Secret, error) {
	resp, err := s.c.Do(ctx, http.MethodPut, path, nil, body)
	if err != nil {
		return nil, err
	}
	return resp.Secret()
}
