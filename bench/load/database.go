package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// DatabaseSetup is the database secrets engine's configuration for
// DBCreds: the engine mounted at Mount, one connection and one role.
type DatabaseSetup struct {
	// Mount is where the engine is mounted, without slashes.
	Mount string
	// Connection is the connection's name (config/<Connection>), Role the
	// role's (roles/<Role>), the only one the connection allows.
	Connection, Role string
	// ConnectionURL, Username and Password reach the server as its admin
	// user; the URL has {{username}} and {{password}} for them (see
	// PG.ConnectionURL). Password is sent, never printed.
	ConnectionURL, Username, Password string
	// MaxOpenConnections is the engine's pool size for the connection.
	MaxOpenConnections int
	// UsernameTemplate names the users (see PG.UsernameTemplate).
	UsernameTemplate string
	// Creation are the role's creation statements (see
	// PG.CreationStatements); its revocation is the driver's default.
	Creation []string
	// TTL is the role's default_ttl, the lease of each credential.
	TTL time.Duration
}

// Mount enables a secrets engine of type typ at path (without slashes):
// POST /v1/sys/mounts/<path>.
func (v *Vigil) Mount(ctx context.Context, path, typ string) error {
	body, _ := json.Marshal(map[string]string{"type": typ})
	_, err := v.expect(ctx, http.MethodPost, "/v1/sys/mounts/"+path, body)
	return err
}

// SetupDatabase mounts the database secrets engine and writes d's
// connection (which Vigil verifies by connecting) and role.
func (v *Vigil) SetupDatabase(ctx context.Context, d DatabaseSetup) error {
	if err := v.Mount(ctx, d.Mount, "database"); err != nil {
		return err
	}
	cfg, _ := json.Marshal(map[string]any{
		"plugin_name":          "postgresql-database-plugin",
		"connection_url":       d.ConnectionURL,
		"username":             d.Username,
		"password":             d.Password,
		"allowed_roles":        []string{d.Role},
		"verify_connection":    true,
		"max_open_connections": d.MaxOpenConnections,
		"username_template":    d.UsernameTemplate,
	})
	_, err := v.expect(ctx, http.MethodPost, "/v1/"+d.Mount+"/config/"+d.Connection, cfg)
	clear(cfg) // holds the admin password
	if err != nil {
		return err
	}
	role, _ := json.Marshal(map[string]any{
		"db_name":             d.Connection,
		"creation_statements": d.Creation,
		"default_ttl":         int64(d.TTL.Seconds()),
		"max_ttl":             int64((24 * time.Hour).Seconds()),
	})
	_, err = v.expect(ctx, http.MethodPost, "/v1/"+d.Mount+"/roles/"+d.Role, role)
	return err
}

// DatabaseCreds is a database credential Vigil issued under a lease.
type DatabaseCreds struct {
	LeaseID string
	// LeaseDuration is the lease's TTL in seconds.
	LeaseDuration int64
	Renewable     bool
	Username      string
	// Password is the user's password: a credential, never printed.
	Password string
}

// String describes c without its password.
func (c DatabaseCreds) String() string {
	return fmt.Sprintf("user %q under lease %q (%ds, renewable %v)", c.Username, c.LeaseID, c.LeaseDuration, c.Renewable)
}

// ReadCreds reads a credential at path (like "/v1/database/creds/bench").
func (v *Vigil) ReadCreds(ctx context.Context, path string) (DatabaseCreds, error) {
	b, err := v.expect(ctx, http.MethodGet, path, nil)
	if err != nil {
		return DatabaseCreds{}, err
	}
	var resp struct {
		LeaseID       string `json:"lease_id"`
		LeaseDuration int64  `json:"lease_duration"`
		Renewable     bool   `json:"renewable"`
		Data          struct {
			Username string `json:"username"`
			Password string `json:"password"`
		} `json:"data"`
	}
	err = json.Unmarshal(b, &resp)
	clear(b) // holds the password
	if err != nil || resp.LeaseID == "" || resp.Data.Username == "" || resp.Data.Password == "" {
		return DatabaseCreds{}, fmt.Errorf("GET %s: the response has no lease_id, data.username or data.password", path)
	}
	return DatabaseCreds{
		LeaseID: resp.LeaseID, LeaseDuration: resp.LeaseDuration, Renewable: resp.Renewable,
		Username: resp.Data.Username, Password: resp.Data.Password,
	}, nil
}

// RevokeLease revokes a lease and waits for the revocation (the user
// dropped, for a database credential): PUT /v1/sys/leases/revoke.
func (v *Vigil) RevokeLease(ctx context.Context, leaseID string) error {
	body, _ := json.Marshal(map[string]string{"lease_id": leaseID})
	_, err := v.expect(ctx, http.MethodPut, "/v1/sys/leases/revoke", body)
	return err
}

// RevokePrefix revokes every lease under prefix (like
// "database/creds/bench") and waits for them all:
// PUT /v1/sys/leases/revoke-prefix/<prefix>.
func (v *Vigil) RevokePrefix(ctx context.Context, prefix string) error {
	_, err := v.expect(ctx, http.MethodPut, "/v1/sys/leases/revoke-prefix/"+prefix, []byte(`{}`))
	return err
}

// IssueRevoke is one DBCreds operation: read a credential at path, then
// revoke its lease, which drops the user. Only the lease ID is taken from
// the answer; the password is never kept.
func (v *Vigil) IssueRevoke(ctx context.Context, path string) error {
	b, err := v.expect(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	var resp struct {
		LeaseID string `json:"lease_id"`
	}
	err = json.Unmarshal(b, &resp)
	clear(b) // holds the password
	if err != nil || resp.LeaseID == "" {
		return fmt.Errorf("GET %s: the response has no lease_id", path)
	}
	return v.RevokeLease(ctx, resp.LeaseID)
}

// withClient returns a copy of v that sends its requests with c.
func (v *Vigil) withClient(c *http.Client) *Vigil {
	w := *v
	w.Client = c
	return &w
}

// DBCredsScenario is where DBCreds reads its credentials, and how they
// are checked.
type DBCredsScenario struct {
	// Vigil is the server, with the root token.
	Vigil *Vigil
	// Mount and Role are the engine's mount and the role read.
	Mount, Role string
	// PG is the server the users are created on; the check logs in to
	// it as one.
	PG *PG
	// TTL is the role's default_ttl, which each credential's lease should
	// have.
	TTL time.Duration
}

// CredsPath is the path DBCreds reads, /v1/<mount>/creds/<role>.
func (d *DBCredsScenario) CredsPath() string { return "/v1/" + d.Mount + "/creds/" + d.Role }

// op is DBCreds's Target.Op.
func (d *DBCredsScenario) op(ctx context.Context, c *http.Client, _, _ int) error {
	if d == nil {
		return errors.New("no database engine set up")
	}
	return d.Vigil.withClient(c).IssueRevoke(ctx, d.CredsPath())
}

// check reads one credential and checks it is what DBCreds means to
// measure: a user of the run, under a renewable lease of the role's TTL,
// who can log in and read the run's table; then revokes it and checks
// that the user can no longer log in and is gone.
func (d *DBCredsScenario) check(ctx context.Context) (err error) {
	creds, err := d.Vigil.ReadCreds(ctx, d.CredsPath())
	if err != nil {
		return err
	}
	revoked := false
	defer func() {
		if !revoked { // leave nothing behind
			if rerr := d.Vigil.RevokeLease(context.WithoutCancel(ctx), creds.LeaseID); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
	}()
	ttl := int64(d.TTL.Seconds())
	if !strings.HasPrefix(creds.LeaseID, d.Mount+"/creds/"+d.Role+"/") || creds.LeaseDuration < ttl-1 || creds.LeaseDuration > ttl ||
		!creds.Renewable || !strings.HasPrefix(creds.Username, d.PG.Prefix()+"-v-") {
		return fmt.Errorf("got %v; want a user whose name begins with %q under a renewable lease of %ds at %s/creds/%s/…",
			creds, d.PG.Prefix()+"-v-", ttl, d.Mount, d.Role)
	}
	if err := d.PG.LogIn(ctx, creds.Username, creds.Password); err != nil {
		return fmt.Errorf("the issued user cannot work: %w", err)
	}
	revoked = true
	if err := d.Vigil.RevokeLease(ctx, creds.LeaseID); err != nil {
		return err
	}
	return checkGone(ctx, d.PG, creds.Username, creds.Password, "revoke")
}

// checkGone checks that user, just removed by what, can no longer log in
// and does not exist.
func checkGone(ctx context.Context, pg *PG, user, password, what string) error {
	err := pg.LogIn(ctx, user, password)
	if !errors.Is(err, ErrLoginRefused) {
		if err == nil {
			return fmt.Errorf("user %q can still log in after its %s", user, what)
		}
		return fmt.Errorf("after its %s: %w", what, err)
	}
	exists, err := pg.RoleExists(ctx, user)
	if err != nil {
		return err
	}
	if exists {
		return fmt.Errorf("user %q still exists after its %s", user, what)
	}
	return nil
}

// op is PGCreateDrop's Target.Op.
func (b *PGBaseline) op(ctx context.Context, _ *http.Client, _, _ int) error {
	if b == nil {
		return errors.New("no PostgreSQL baseline set up")
	}
	return b.CreateDrop(ctx)
}

// check creates one user, checks it can log in and read the run's
// table, drops it and checks it is gone: the same check as DBCreds'.
func (b *PGBaseline) check(ctx context.Context) error {
	user, password, err := b.Create(ctx)
	if err != nil {
		return err
	}
	lerr := b.pg.LogIn(ctx, user, password)
	if err := b.Drop(ctx, user); err != nil {
		return errors.Join(lerr, err)
	}
	if lerr != nil {
		return fmt.Errorf("the created user cannot work: %w", lerr)
	}
	return checkGone(ctx, b.pg, user, password, "drop")
}

// CheckDatabase checks, for each of DBCreds and PGCreateDrop among names,
// that one operation does what the scenario is meant to measure: a user
// is created who can log in and read the run's table, and after the
// revocation (or drop) cannot log in and is gone. Like CheckTokens, it
// runs before the measurement, so that a misconfiguration fails the
// setup with a clear error. It leaves no user behind.
func (s Suite) CheckDatabase(ctx context.Context, names []string) error {
	for _, name := range names {
		var err error
		switch name {
		case DBCreds:
			if s.DBCreds == nil {
				return fmt.Errorf("%s: no database engine set up", name)
			}
			err = s.DBCreds.check(ctx)
		case PGCreateDrop:
			if s.PGCreateDrop == nil {
				return fmt.Errorf("%s: no PostgreSQL baseline set up", name)
			}
			err = s.PGCreateDrop.check(ctx)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}
