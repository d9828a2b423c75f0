package proxy

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// Errors of cache-clear requests (answered 400).
var (
	errClearType  = errors.New(`invalid type: want "request_path", "lease", "token", "token_accessor" or "all"`)
	errClearValue = errors.New("no value provided")
)

// Revocation paths, without /v1/: a lease id or prefix may follow the
// ones that end in "/".
var (
	leaseRevokePaths  = []string{"sys/leases/revoke", "sys/revoke"}
	prefixRevokePaths = []string{"sys/leases/revoke-prefix/", "sys/revoke-prefix/", "sys/leases/revoke-force/", "sys/revoke-force/"}
)

// afterRevocation evicts what a successful revocation through the proxy
// revoked on the server: a lease (sys/leases/revoke), the leases and
// tokens under a prefix (revoke-prefix, revoke-force), a token with its
// leases and children (auth/token/revoke, revoke-self, revoke-accessor),
// or a token and its leases only (revoke-orphan: its children live on).
func (c *leaseCache) afterRevocation(x *exchange) {
	p := x.apiPath
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	switch {
	case p == "auth/token/revoke":
		n = c.evictTokenByValueLocked(secret.NewString(bodyString(x.body, "token")), true)
	case p == "auth/token/revoke-self":
		n = c.evictTokenByValueLocked(x.token, true)
	case p == "auth/token/revoke-accessor":
		if node := c.accessors[bodyString(x.body, "accessor")]; node != nil {
			n = c.evictTokenLocked(node, "revoked", true)
		}
	case p == "auth/token/revoke-orphan":
		n = c.evictTokenByValueLocked(secret.NewString(bodyString(x.body, "token")), false)
	default:
		for _, base := range leaseRevokePaths {
			if p != base && !strings.HasPrefix(p, base+"/") {
				continue
			}
			id := bodyString(x.body, "lease_id") // the body wins over the path
			if id == "" {
				id = strings.TrimPrefix(strings.TrimPrefix(p, base), "/")
			}
			if e := c.leases[id]; e != nil {
				n = c.evictLocked(e, "revoked")
			}
		}
		for _, base := range prefixRevokePaths {
			if prefix, ok := strings.CutPrefix(p, base); ok && prefix != "" {
				n = c.evictPrefixLocked(prefix)
			}
		}
	}
	if n > 0 {
		c.log.Debug("cache: evicted after a revocation", "path", p, "evicted", n)
	}
}

// evictTokenByValueLocked evicts the token tok (see evictTokenLocked).
func (c *leaseCache) evictTokenByValueLocked(tok secret.String, cascade bool) int {
	if tok.IsEmpty() {
		return 0
	}
	node := c.tokens[idOf(tok)]
	if node == nil {
		return 0
	}
	return c.evictTokenLocked(node, "revoked", cascade)
}

// evictPrefixLocked evicts the leases whose id starts with prefix and the
// tokens created on a path that does, as sys/leases/revoke-prefix
// revokes them on the server.
func (c *leaseCache) evictPrefixLocked(prefix string) int {
	var victims []*entry
	for _, e := range c.entries {
		if e.kind == kindLease && strings.HasPrefix(e.leaseID, prefix) || e.kind == kindToken && strings.HasPrefix(e.path, prefix) {
			victims = append(victims, e)
		}
	}
	n := 0
	for _, e := range victims {
		n += c.evictLocked(e, "revoked")
	}
	return n
}

// clear serves /agent/v1/cache-clear: it evicts by request path (a
// prefix, with or without /v1/), lease id, token, token accessor, or
// everything, and returns how many entries went.
func (c *leaseCache) clear(kind string, value secret.String) (int, error) {
	if kind != "all" && value.IsEmpty() {
		if kind == "request_path" || kind == "lease" || kind == "token" || kind == "token_accessor" {
			return 0, errClearValue
		}
		return 0, errClearType
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	const reason = "cache-clear"
	switch kind {
	case "request_path":
		prefix := strings.TrimPrefix(value.Reveal(), "/")
		prefix = strings.TrimPrefix(prefix, "v1/")
		var victims []*entry
		for _, e := range c.entries {
			if strings.HasPrefix(e.path, prefix) {
				victims = append(victims, e)
			}
		}
		n := 0
		for _, e := range victims {
			n += c.evictLocked(e, reason)
		}
		return n, nil
	case "lease":
		if e := c.leases[value.Reveal()]; e != nil {
			return c.evictLocked(e, reason), nil
		}
		return 0, nil
	case "token":
		if node := c.tokens[idOf(value)]; node != nil {
			return c.evictTokenLocked(node, reason, true), nil
		}
		return 0, nil
	case "token_accessor":
		if node := c.accessors[value.Reveal()]; node != nil {
			return c.evictTokenLocked(node, reason, true), nil
		}
		return 0, nil
	case "all":
		n := 0
		for len(c.entries) > 0 {
			for _, e := range c.entries {
				n += c.evictLocked(e, reason)
				break
			}
		}
		clear(c.tokens)
		clear(c.accessors)
		return n, nil
	default:
		return 0, errClearType
	}
}

// bodyString returns the string field of a JSON request body, "" when
// there is none.
func bodyString(body []byte, field string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	var s string
	if json.Unmarshal(m[field], &s) != nil {
		return ""
	}
	return s
}
