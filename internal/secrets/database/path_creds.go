package database

import (
	"context"
	"errors"
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
	// internalIntent is the id of the intent record that covers the user
	// until its lease is stored (see rollback.go).
	internalIntent = "intent_id"
)

func (b *backend) pathCreds() *framework.Path {
	return namedPath(`creds/`, "role", logical.ReadOperation, b.handleCreds, "Create a database user under a lease.",
		"Create a database user with the role's statements and return its name and password under a lease.")
}

func (b *backend) credsSecret() *framework.SecretType {
	return &framework.SecretType{Type: credsType, Renew: b.renewCreds, Revoke: b.revokeCreds, Registered: b.credsRegistered}
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
	u := issuedUser{Username: username, Role: name, DBName: r.DBName, Revocation: r.Revocation}
	// No user without a record of it: if the lease is never stored, the
	// rollback job finds the intent and drops the user.
	intent, err := framework.PutIntent(ctx, req.Storage, b.now(), intentCredsUser, u)
	if err != nil {
		return nil, fmt.Errorf("database: user %q not created: %w", username, err)
	}
	err = db.NewUser(ctx, dbplugin.NewUserRequest{
		Username:   username,
		Password:   password,
		Expiration: b.now().Add(ttl),
		Creation:   r.Creation,
		Rollback:   r.Rollback,
	})
	if err != nil {
		b.creationFailed(ctx, req.Storage, intent, username, err)
		return nil, dbError(err)
	}
	internal := u.internalData()
	internal[internalIntent] = intent
	return framework.SecretResponse(credsType,
		map[string]any{"username": username, "password": password.Reveal()},
		internal,
		logical.Secret{TTL: ttl, MaxTTL: maxTTL, Renewable: true},
	), nil
}

// creationFailed settles the intent of a user whose creation failed: the
// driver undid the creation, so the intent goes; or it could not, and the
// intent stays for the rollback job, which is woken to schedule it.
func (b *backend) creationFailed(ctx context.Context, s logical.Storage, intent, username string, err error) {
	var undo *dbplugin.UndoError
	if errors.As(err, &undo) {
		b.logger.Warn("a failed user creation could not be undone; the user is dropped by the rollback job",
			"username", username, "intent_id", intent, "error", err)
		b.wake()
		return
	}
	if derr := framework.DeleteIntent(context.WithoutCancel(ctx), s, intent); derr != nil {
		// Harmless: the rollback job drops a user that does not exist.
		b.logger.Warn("the intent of a user whose creation failed was not deleted", "intent_id", intent, "error", derr)
	}
}

// credsRegistered is told that the lease of a user is stored: the lease
// revokes the user from now on, and the intent that covered it goes.
func (b *backend) credsRegistered(ctx context.Context, req *logical.Request, s *logical.Secret) error {
	id, _ := s.InternalData[internalIntent].(string)
	if id == "" {
		return nil
	}
	return framework.DeleteIntent(ctx, req.Storage, id)
}

// issuedUser is what the engine records of a user it creates, with its
// intent and then with its lease: what it takes to drop the user.
type issuedUser struct {
	Username   string   `json:"username"`
	Role       string   `json:"role"`
	DBName     string   `json:"db_name"`
	Revocation []string `json:"revocation_statements,omitempty"`
}

// internalData is u as a lease's InternalData.
func (u issuedUser) internalData() map[string]any {
	return map[string]any{
		internalUsername:   u.Username,
		internalRole:       u.Role,
		internalDBName:     u.DBName,
		internalRevocation: u.Revocation,
	}
}

func parseLease(s *logical.Secret) (issuedUser, error) {
	in := s.InternalData
	u := issuedUser{}
	u.Username, _ = in[internalUsername].(string)
	u.Role, _ = in[internalRole].(string)
	u.DBName, _ = in[internalDBName].(string)
	if u.Username == "" || u.DBName == "" {
		return u, fmt.Errorf("database: lease %q has no user name or database", s.LeaseID)
	}
	// A list stored with the lease comes back from JSON as []any.
	switch v := in[internalRevocation].(type) {
	case []string:
		u.Revocation = v
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok {
				u.Revocation = append(u.Revocation, s)
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
	r, err := loadRole(ctx, req.Storage, u.Role)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, logical.BadRequest("cannot renew: role %q no longer exists", u.Role)
	}
	c, err := mustConfig(ctx, req.Storage, u.DBName)
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
	if err := db.RenewUser(ctx, u.Username, now.Add(ttl), r.Renew); err != nil {
		return nil, dbError(err)
	}
	s := *req.Secret
	s.TTL, s.MaxTTL = ttl, maxTTL
	return &logical.Response{Secret: &s}, nil
}

// revokeCreds removes the user, and the intent that covered it if the
// lease was revoked before it was confirmed (its storage failed). A user
// already gone is not an error.
//
// When the user cannot be removed, the rollback job is woken: if this was
// the pipeline undoing a secret whose lease it could not store, no lease
// retries the revocation, and the intent is all that is left of the user.
func (b *backend) revokeCreds(ctx context.Context, req *logical.Request) (*logical.Response, error) {
	u, err := parseLease(req.Secret)
	if err != nil {
		return nil, err
	}
	intent, _ := req.Secret.InternalData[internalIntent].(string)
	if err := b.dropUser(ctx, req.Storage, u); err != nil {
		if intent != "" {
			b.wake()
		}
		return nil, err
	}
	if intent != "" {
		if err := framework.DeleteIntent(ctx, req.Storage, intent); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// dropUser removes an issued user. The role's current revocation
// statements apply while the role exists; after it is deleted, those
// recorded with the user. A user already gone is not an error.
func (b *backend) dropUser(ctx context.Context, s logical.Storage, u issuedUser) error {
	stmts := u.Revocation
	r, err := loadRole(ctx, s, u.Role)
	if err != nil {
		return err
	}
	if r != nil && r.DBName == u.DBName {
		stmts = r.Revocation
	}
	c, err := loadConfig(ctx, s, u.DBName)
	if err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("database: cannot drop user %q: connection %q no longer exists", u.Username, u.DBName)
	}
	db, err := b.conns.get(c)
	if err != nil {
		return dbError(err)
	}
	return dbError(db.DeleteUser(ctx, u.Username, stmts))
}
