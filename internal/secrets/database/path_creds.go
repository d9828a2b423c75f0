package database

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secrets/database/dbplugin"
)

// credsType is the kind of the leases creds/<role> hands out.
const credsType = "creds"

// Keys of a creds lease's InternalData: what renewal and revocation need,
// never the password.
const (
	internalUsername   = "username"
	internalRole       = "role"
	internalDBName     = "db_name"
	internalRevocation = "revocation_statements"
)

func (b *backend) pathCreds() *framework.Path {
	return namedPath(`creds/`, "role", logical.ReadOperation, b.handleCreds, "Create a database user under a lease.",
		"Create a database user with the role's statements and return its name and password under a lease.")
}

func (b *backend) credsSecret() *framework.SecretType {
	return &framework.SecretType{Type: credsType, Renew: b.renewCreds, Revoke: b.revokeCreds}
}

// ttls returns the lease TTL and maximum of role's credentials: the role's,
// else the mount's, capped by the mount's maximum.
func (b *backend) ttls(r *roleEntry) (ttl, maxTTL time.Duration) {
	sysMax := b.system.MaxLeaseTTL()
	maxTTL = r.MaxTTL
	if maxTTL <= 0 || maxTTL > sysMax {
		maxTTL = sysMax
	}
	ttl = r.DefaultTTL
	if ttl <= 0 {
		ttl = b.system.DefaultLeaseTTL()
	}
	return min(ttl, maxTTL), maxTTL
}

func (b *backend) handleCreds(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("unknown role: %s", name)
	}
	c, err := roleConfig(ctx, req.Storage, name, r.DBName)
	if err != nil {
		return nil, err
	}
	tmpl, err := parseUsernameTemplate(c.UsernameTemplate, b.now)
	if err != nil {
		return nil, err
	}
	username, err := tmpl.generate(usernameData{DisplayName: req.DisplayName, RoleName: name})
	if err != nil {
		return nil, err
	}
	db, err := b.conns.get(c)
	if err != nil {
		return nil, dbError(err)
	}
	ttl, maxTTL := b.ttls(r)
	password, err := b.newPassword(ctx, c)
	if err != nil {
		return nil, err
	}
	err = db.NewUser(ctx, dbplugin.NewUserRequest{
		Username:   username,
		Password:   password,
		Expiration: b.now().Add(ttl),
		Creation:   r.Creation,
		Rollback:   r.Rollback,
	})
	if err != nil {
		return nil, dbError(err)
	}
	return framework.SecretResponse(credsType,
		map[string]any{"username": username, "password": password.Reveal()},
		map[string]any{
			internalUsername:   username,
			internalRole:       name,
			internalDBName:     r.DBName,
			internalRevocation: r.Revocation,
		},
		logical.Secret{TTL: ttl, MaxTTL: maxTTL, Renewable: true},
	), nil
}

// leaseUser is what a creds lease records about its user.
type leaseUser struct {
	username, role, dbName string
	revocation             []string
}

func parseLease(s *logical.Secret) (leaseUser, error) {
	in := s.InternalData
	u := leaseUser{}
	u.username, _ = in[internalUsername].(string)
	u.role, _ = in[internalRole].(string)
	u.dbName, _ = in[internalDBName].(string)
	if u.username == "" || u.dbName == "" {
		return u, fmt.Errorf("database: lease %q has no user name or database", s.LeaseID)
	}
	// A list stored with the lease comes back from JSON as []any.
	switch v := in[internalRevocation].(type) {
	case []string:
		u.revocation = v
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				u.revocation = append(u.revocation, s)
			}
		}
	}
	return u, nil
}

// renewCreds extends the user's validity to the lease's new end: the
// increment asked for (or the role's TTL) from now, capped at the role's
// maximum from issue.
func (b *backend) renewCreds(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	u, err := parseLease(req.Secret)
	if err != nil {
		return nil, err
	}
	r, err := loadRole(ctx, req.Storage, u.role)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("cannot renew: role %q no longer exists", u.role)
	}
	c, err := mustConfig(ctx, req.Storage, u.dbName)
	if err != nil {
		return nil, err
	}
	ttl, maxTTL := b.ttls(r)
	if raw, ok := req.Data["increment"]; ok {
		inc, err := framework.ParseDurationSecond(raw)
		if err != nil {
			return nil, logical.BadRequest("invalid increment: %v", err)
		}
		if inc > 0 {
			ttl = inc
		}
	}
	now := b.now()
	if issued := req.Secret.IssueTime; !issued.IsZero() {
		ttl = min(ttl, issued.Add(maxTTL).Sub(now))
	}
	ttl = min(ttl, maxTTL)
	if ttl <= 0 {
		return nil, logical.BadRequest("lease is at its max_ttl and cannot be renewed")
	}
	db, err := b.conns.get(c)
	if err != nil {
		return nil, dbError(err)
	}
	if err := db.RenewUser(ctx, u.username, now.Add(ttl), r.Renew); err != nil {
		return nil, dbError(err)
	}
	s := *req.Secret
	s.TTL, s.MaxTTL = ttl, maxTTL
	return &logical.Response{Secret: &s}, nil
}

// revokeCreds removes the user. The role's current revocation statements
// apply while the role exists; after it is deleted, those recorded with
// the lease. A user already gone is not an error.
func (b *backend) revokeCreds(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	u, err := parseLease(req.Secret)
	if err != nil {
		return nil, err
	}
	stmts := u.revocation
	r, err := loadRole(ctx, req.Storage, u.role)
	if err != nil {
		return nil, err
	}
	if r != nil && r.DBName == u.dbName {
		stmts = r.Revocation
	}
	c, err := loadConfig(ctx, req.Storage, u.dbName)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, fmt.Errorf("database: cannot revoke user %q: connection %q no longer exists", u.username, u.dbName)
	}
	db, err := b.conns.get(c)
	if err != nil {
		return nil, dbError(err)
	}
	if err := db.DeleteUser(ctx, u.username, stmts); err != nil {
		return nil, dbError(err)
	}
	return nil, nil
}
