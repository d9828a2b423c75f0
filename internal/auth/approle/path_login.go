package approle

import (
	"context"
	"maps"
	"strings"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
)

// Login failures. Every failure after the request has been understood is
// errInvalidCredentials, whatever its cause, so that a caller learns
// nothing about which part was wrong; the cause is not logged either, as it
// would be a role_id oracle in the logs.
const (
	msgInvalidCredentials = "invalid role or secret ID"
	msgMissingRoleID      = "missing role_id"
	msgMissingSecretID    = "missing secret_id"
)

func errInvalidCredentials() error { return logical.BadRequest(msgInvalidCredentials) }

// InternalData keys of a login's auth, read back on renewal.
const (
	internalRoleName = "role_name"
	internalRoleID   = "role_id"
	internalAccessor = "secret_id_accessor"
)

func (b *backend) pathLogin() *framework.Path {
	return &framework.Path{
		Pattern: `login`,
		Fields: map[string]*framework.FieldSchema{
			"role_id":   {Type: framework.TypeString, Sensitive: true, Description: "The role_id of the role."},
			"secret_id": {Type: framework.TypeString, Sensitive: true, Description: "A secret ID of the role; required when the role binds secret IDs."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.UpdateOperation: {Handler: b.handleLogin, Summary: "Log in with a role_id and a secret_id."},
		},
		HelpSynopsis: "Log in with a role_id and, when the role binds them, a secret_id.",
		HelpDescription: "Every failure to authenticate gets the same answer, \"invalid role or secret ID\". A secret ID " +
			"with a use limit loses one use per login and is deleted with its last use or when it expires.",
	}
}

// loginInput is a decoded login request.
type loginInput struct {
	roleID   secret.String
	secretID secret.String
	// remote is the client address, "" for internal requests.
	remote string
}

func decodeLogin(req *logical.Request, d *framework.FieldData) loginInput {
	in := loginInput{
		roleID:   secret.NewString(strings.TrimSpace(d.String("role_id"))),
		secretID: secret.NewString(strings.TrimSpace(d.String("secret_id"))),
	}
	if req.Connection != nil {
		in.remote = req.Connection.RemoteAddr
	}
	return in
}

func (b *backend) handleLogin(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	in := decodeLogin(req, d)
	if in.roleID.IsEmpty() {
		return nil, logical.BadRequest(msgMissingRoleID)
	}
	if len(in.roleID.Reveal()) > maxInputLen || len(in.secretID.Reveal()) > maxInputLen {
		return nil, errInvalidCredentials()
	}
	name, err := b.roleNameForID(ctx, req.Storage, in.roleID)
	if err != nil {
		return nil, err
	}
	if name == "" {
		return nil, errInvalidCredentials()
	}
	// The role may not change or disappear until the login is decided.
	lock := b.roleLock(name)
	lock.RLock()
	defer lock.RUnlock()
	r, err := readCached[roleEntry](ctx, &b.records, req.Storage, roleKey(name))
	if err != nil {
		return nil, err
	}
	// The index may be stale: the role must still have this role_id.
	if r == nil || !secret.Equal([]byte(r.RoleID), []byte(in.roleID.Reveal())) {
		return nil, errInvalidCredentials()
	}
	if r.BindSecretID && in.secretID.IsEmpty() {
		return nil, logical.BadRequest(msgMissingSecretID)
	}
	// The role's address restriction comes before the secret ID's use is
	// counted, so that a login from the wrong place does not burn a use.
	if len(r.SecretIDBoundCIDRs) > 0 && !framework.CIDRsContain(r.SecretIDBoundCIDRs, in.remote) {
		return nil, errInvalidCredentials()
	}
	var e *secretIDEntry
	if r.BindSecretID {
		if e, err = b.useSecretID(ctx, req.Storage, r, in); err != nil {
			return nil, err
		}
	}
	return &logical.Response{Auth: loginAuth(r, e)}, nil
}

// roleNameForID returns the name of the role whose role_id the index says
// id is, "" when there is none.
func (b *backend) roleNameForID(ctx context.Context, s logical.Storage, id secret.String) (string, error) {
	h, err := b.mac(ctx, s, labelRoleID, id.Reveal())
	if err != nil {
		return "", err
	}
	idx, err := readCached[roleIDEntry](ctx, &b.records, s, roleIDKey(h))
	if err != nil || idx == nil {
		return "", err
	}
	return idx.Name, nil
}

// useSecretID checks the login's secret ID against role r and counts one
// use of it: a secret ID with one use left is deleted, an expired one is
// deleted and refused. The caller holds r's role lock. It returns the
// secret ID's record as it was before the use, which the caller must not
// modify (it may be shared with the record cache).
func (b *backend) useSecretID(ctx context.Context, s logical.Storage, r *roleEntry, in loginInput) (*secretIDEntry, error) {
	h, err := b.mac(ctx, s, labelSecretID, in.secretID.Reveal())
	if err != nil {
		return nil, err
	}
	key := secretIDKey(r.Name, h)
	lock := b.secretIDLock(h)

	// The common case, a secret ID without a use limit that has not
	// expired, changes nothing and needs only the shared lock.
	lock.RLock()
	e, err := readCached[secretIDEntry](ctx, &b.records, s, key)
	if err != nil || e == nil {
		lock.RUnlock()
		if err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials()
	}
	if e.NumUses == 0 && !e.expired(b.now()) {
		lock.RUnlock()
		if !secretIDAddressOK(e, in.remote) {
			return nil, errInvalidCredentials()
		}
		return e, nil
	}
	lock.RUnlock()

	// A change: re-read under the exclusive lock, which serializes the
	// logins of this secret ID.
	lock.Lock()
	defer lock.Unlock()
	if e, err = loadSecretID(ctx, s, key); err != nil {
		return nil, err
	}
	if e == nil {
		return nil, errInvalidCredentials()
	}
	var w writeOps
	switch {
	case e.expired(b.now()):
		if err := b.removeSecretID(ctx, s, &w, key, e); err != nil {
			return nil, err
		}
		if err := w.apply(ctx, s); err != nil {
			return nil, err
		}
		return nil, errInvalidCredentials()
	case !secretIDAddressOK(e, in.remote):
		return nil, errInvalidCredentials()
	case e.NumUses == 1:
		if err := b.removeSecretID(ctx, s, &w, key, e); err != nil {
			return nil, err
		}
	case e.NumUses > 1:
		used := *e
		used.NumUses--
		used.LastUpdatedTime = b.now().UTC()
		if err := w.put(key, &used); err != nil {
			return nil, err
		}
	}
	if err := w.apply(ctx, s); err != nil {
		return nil, err
	}
	return e, nil
}

// secretIDAddressOK reports whether a login from remote may use e.
func secretIDAddressOK(e *secretIDEntry, remote string) bool {
	return len(e.CIDRList) == 0 || framework.CIDRsContain(e.CIDRList, remote)
}

// loginAuth is the auth of a successful login with role r and secret ID e
// (nil when the role does not bind secret IDs).
func loginAuth(r *roleEntry, e *secretIDEntry) *logical.Auth {
	a := &logical.Auth{}
	r.Token.Populate(a)
	metadata := map[string]string{}
	accessor := ""
	if e != nil {
		maps.Copy(metadata, e.Metadata)
		accessor = e.Accessor
		if len(e.TokenBoundCIDRs) > 0 {
			a.BoundCIDRs = framework.FormatCIDRs(e.TokenBoundCIDRs)
		}
	}
	metadata["role_name"] = r.Name
	a.Metadata = metadata
	a.Role = r.Name
	a.DisplayName = r.Name
	a.Alias = &logical.Alias{Name: r.RoleID, Metadata: maps.Clone(metadata)}
	a.InternalData = map[string]any{
		internalRoleName: r.Name,
		internalRoleID:   r.RoleID,
		internalAccessor: accessor,
	}
	return a
}

// renew serves the renewal of a token a login created: the role must still
// exist with the same role_id and the same policies, and the token gets the
// role's current TTL, maximum TTL and period.
func (b *backend) renew(ctx context.Context, req *logical.Request) (*logical.Auth, error) {
	name, _ := req.Auth.InternalData[internalRoleName].(string)
	roleID, _ := req.Auth.InternalData[internalRoleID].(string)
	if name == "" || roleID == "" {
		return nil, logical.BadRequest("the token was not created by an AppRole login of this mount")
	}
	lock := b.roleLock(name)
	lock.RLock()
	defer lock.RUnlock()
	r, err := loadRole(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return framework.RenewFromRole(req, name, nil)
	}
	if !secret.Equal([]byte(r.RoleID), []byte(roleID)) {
		return nil, logical.BadRequest("the role_id of role %q has changed since the login; log in again", name)
	}
	return framework.RenewFromRole(req, name, &r.Token)
}
