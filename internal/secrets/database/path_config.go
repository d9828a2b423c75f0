package database

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/framework"
	"github.com/vigil-secrets/vigil/internal/glob"
	"github.com/vigil-secrets/vigil/internal/logical"
	"github.com/vigil-secrets/vigil/internal/secret"
	"github.com/vigil-secrets/vigil/internal/secrets/database/dbplugin"
)

// Connection pool defaults, as Vault's.
const defaultMaxOpenConnections = 4

// configEntry is a stored connection configuration.
type configEntry struct {
	Name                   string        `json:"name"`
	PluginName             string        `json:"plugin_name"`
	ConnectionURL          string        `json:"connection_url"`
	Username               string        `json:"username"`
	Password               secret.String `json:"-"` // stored by MarshalJSON
	AllowedRoles           []string      `json:"allowed_roles"`
	VerifyConnection       bool          `json:"verify_connection"`
	MaxOpenConnections     int           `json:"max_open_connections"`
	MaxIdleConnections     int           `json:"max_idle_connections"`
	MaxConnectionLifetime  time.Duration `json:"max_connection_lifetime"`
	UsernameTemplate       string        `json:"username_template,omitempty"`
	PasswordPolicy         string        `json:"password_policy,omitempty"`
	RootRotationStatements []string      `json:"root_rotation_statements,omitempty"`
}

// storedConfig is configEntry's stored form, the password included.
type storedConfig struct {
	*plainConfig
	Password string `json:"password,omitempty"`
}

type plainConfig configEntry

// MarshalJSON stores the password, which secret.String would redact.
func (c *configEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal(storedConfig{plainConfig: (*plainConfig)(c), Password: c.Password.Reveal()})
}

// UnmarshalJSON reads the stored form.
func (c *configEntry) UnmarshalJSON(raw []byte) error {
	s := storedConfig{plainConfig: (*plainConfig)(c)}
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	c.Password = secret.NewString(s.Password)
	return nil
}

// dbConfig is what the driver opens with.
func (c *configEntry) dbConfig() dbplugin.Config {
	return dbplugin.Config{
		ConnectionURL:         c.ConnectionURL,
		Username:              c.Username,
		Password:              c.Password,
		MaxOpenConnections:    c.MaxOpenConnections,
		MaxIdleConnections:    c.MaxIdleConnections,
		MaxConnectionLifetime: c.MaxConnectionLifetime,
	}
}

// allows reports whether role may use the connection: allowed_roles holds
// its name, "*", or a glob ('*' only) matching it.
func (c *configEntry) allows(role string) bool {
	return glob.MatchAny(c.AllowedRoles, role)
}

func loadConfig(ctx context.Context, s logical.Storage, name string) (*configEntry, error) {
	var c configEntry
	found, err := framework.GetJSON(ctx, s, configPrefix+name, &c)
	if err != nil || !found {
		return nil, err
	}
	return &c, nil
}

// mustConfig loads a configuration that the request needs; a missing one
// is a 400.
func mustConfig(ctx context.Context, s logical.Storage, name string) (*configEntry, error) {
	c, err := loadConfig(ctx, s, name)
	if err == nil && c == nil {
		err = logical.BadRequest("database %q does not exist", name)
	}
	return c, err
}

// roleConfig loads the connection dbName that the role called role (dynamic
// or static) uses, and checks that its allowed_roles let it: both are the
// caller's to fix (400).
func roleConfig(ctx context.Context, s logical.Storage, role, dbName string) (*configEntry, error) {
	c, err := mustConfig(ctx, s, dbName)
	if err != nil {
		return nil, err
	}
	if !c.allows(role) {
		return nil, logical.BadRequest("%q is not an allowed role", role)
	}
	return c, nil
}

// namePattern captures a configuration or role name; the field's type
// (TypeNameString) rejects a bad one with a 400.
const namePattern = `(?P<name>[^/]+)`

func nameField(what string) *framework.FieldSchema {
	return &framework.FieldSchema{Type: framework.TypeNameString, Description: "The name of the " + what + "."}
}

// namedPath is a path of one operation on a named connection or role:
// prefix followed by the name.
func namedPath(prefix, what string, op logical.Operation, h framework.OperationFunc, summary, synopsis string) *framework.Path {
	return &framework.Path{
		Pattern:      prefix + namePattern,
		Fields:       map[string]*framework.FieldSchema{"name": nameField(what)},
		Operations:   map[logical.Operation]framework.OperationHandler{op: {Handler: h, Summary: summary}},
		HelpSynopsis: synopsis,
	}
}

// listPath is the LIST of the entries stored under prefix.
func listPath(pattern, prefix, summary, synopsis string) *framework.Path {
	list := func(ctx context.Context, req *logical.Request, _ *framework.FieldData) (*logical.Response, error) {
		names, err := req.Storage.List(ctx, prefix)
		if err != nil {
			return nil, err
		}
		return framework.ListResponse(names)
	}
	return &framework.Path{
		Pattern:      pattern,
		Operations:   map[logical.Operation]framework.OperationHandler{logical.ListOperation: {Handler: list, Summary: summary}},
		HelpSynopsis: synopsis,
	}
}

func (b *backend) pathConfigList() *framework.Path {
	return listPath(`config/?`, configPrefix, "List the connections.", "List the names of the configured connections.")
}

func (b *backend) pathConfig() *framework.Path {
	return &framework.Path{
		Pattern: `config/` + namePattern,
		Fields: map[string]*framework.FieldSchema{
			"name":        nameField("connection"),
			"plugin_name": {Type: framework.TypeString, Description: `The driver: "postgresql-database-plugin". Required when the connection is created.`},
			"plugin_version": {Type: framework.TypeString,
				Description: "The driver's version; only the built-in version (empty) is available."},
			"verify_connection": {Type: framework.TypeBool, Default: true,
				Description: "Whether to connect when the configuration is written and refuse it if that fails."},
			"allowed_roles": {Type: framework.TypeCommaStringSlice,
				Description: `The roles that may use the connection: names or globs ("*" for all). Empty allows none.`},
			"root_rotation_statements": {Type: framework.TypeStringSlice,
				Description: "Statements that set the admin user's password on rotate-root ({{username}}, {{password}})."},
			"password_policy": {Type: framework.TypeString,
				Description: "The password policy (sys/policies/password/<name>) the engine's passwords come from: " +
					"issued users', static roles' and the admin's. Empty: the built-in generator."},
			"connection_url": {Type: framework.TypeString,
				Description: "The connection URL or DSN, with {{username}} and {{password}} standing for the admin credentials."},
			"username": {Type: framework.TypeString, Description: "The admin user."},
			"password": {Type: framework.TypeString, Sensitive: true, Description: "The admin user's password; never returned."},
			"max_open_connections": {Type: framework.TypeInt,
				Description: "The most connections open at once (default 4)."},
			"max_idle_connections": {Type: framework.TypeInt,
				Description: "The most connections kept open while idle (0: max_open_connections)."},
			"max_connection_lifetime": {Type: framework.TypeDurationSecond,
				Description: "How long a connection is used before it is closed (0: no limit)."},
			"username_template": {Type: framework.TypeString,
				Description: "A Go template for the names of issued users (.DisplayName, .RoleName; random, truncate, replace, unix_time...)."},
		},
		Operations: map[logical.Operation]framework.OperationHandler{
			logical.ReadOperation:   {Handler: b.handleConfigRead, Summary: "Read a connection (never its password)."},
			logical.CreateOperation: {Handler: b.handleConfigWrite, Summary: "Configure a connection."},
			logical.UpdateOperation: {Handler: b.handleConfigWrite, Summary: "Change a connection; fields not given keep their values."},
			logical.DeleteOperation: {Handler: b.handleConfigDelete, Summary: "Delete a connection."},
		},
		ExistenceCheck: func(ctx context.Context, req *logical.Request, d *framework.FieldData) (bool, error) {
			c, err := loadConfig(ctx, req.Storage, d.String("name"))
			return c != nil, err
		},
		HelpSynopsis: "Configure, read and delete a connection to a database.",
		HelpDescription: "A connection names a database driver, how to reach the database as an admin user, and which " +
			"roles may create users through it. The admin password is stored encrypted and never returned.",
	}
}

func (b *backend) handleConfigRead(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	c, err := loadConfig(ctx, req.Storage, d.String("name"))
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, logical.ErrNotFound
	}
	details := map[string]any{
		"connection_url":          maskURL(c.ConnectionURL),
		"username":                c.Username,
		"max_open_connections":    c.MaxOpenConnections,
		"max_idle_connections":    c.MaxIdleConnections,
		"max_connection_lifetime": c.MaxConnectionLifetime.String(),
	}
	if c.UsernameTemplate != "" {
		details["username_template"] = c.UsernameTemplate
	}
	return &logical.Response{Data: map[string]any{
		"plugin_name":                        c.PluginName,
		"plugin_version":                     "",
		"connection_details":                 details,
		"allowed_roles":                      nonNil(c.AllowedRoles),
		"root_credentials_rotate_statements": nonNil(c.RootRotationStatements),
		"password_policy":                    c.PasswordPolicy,
		"verify_connection":                  c.VerifyConnection,
	}}, nil
}

// Passwords written into a connection string: a key=value DSN's
// password (quoted or not), a URL's password query parameter.
var (
	dsnPassword   = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
	queryPassword = regexp.MustCompile(`(?i)([?&]password=)([^&#]*)`)
)

// maskURL hides a password written into a connection URL or DSN (the
// {{password}} placeholder is not one), as Vault's read does.
func maskURL(raw string) string {
	const mask = "*****"
	maskMatch := func(re *regexp.Regexp) func(string) string {
		return func(m string) string {
			sub := re.FindStringSubmatch(m)
			if strings.Trim(sub[2], "'") == dbplugin.PlaceholderPassword {
				return m
			}
			return sub[1] + mask
		}
	}
	scheme, rest, isURL := strings.Cut(raw, "://")
	if !isURL || (scheme != "postgres" && scheme != "postgresql") {
		return dsnPassword.ReplaceAllStringFunc(raw, maskMatch(dsnPassword))
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		if user, pw, ok := strings.Cut(rest[:at], ":"); ok && pw != "" && pw != dbplugin.PlaceholderPassword {
			rest = user + ":" + mask + rest[at:]
		}
	}
	return scheme + "://" + queryPassword.ReplaceAllStringFunc(rest, maskMatch(queryPassword))
}

// nonNil renders a missing list as [] rather than null.
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (b *backend) handleConfigWrite(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	defer b.conns.lock(name)()
	c, err := loadConfig(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	create := c == nil
	if create {
		c = &configEntry{Name: name}
	}
	if err := c.update(d, create); err != nil {
		return nil, err
	}
	if _, err := parseUsernameTemplate(c.UsernameTemplate, b.now); err != nil {
		return nil, err
	}
	if c.PasswordPolicy != "" {
		// The policy must exist: a password made and thrown away proves
		// it, as the creds requests will use it.
		if _, err := b.newPassword(ctx, c); err != nil {
			return nil, err
		}
	}
	db, err := c.open()
	if err != nil {
		return nil, configError(err)
	}
	if c.VerifyConnection {
		if err := db.Verify(ctx); err != nil {
			db.Close()
			return nil, configError(err)
		}
	}
	if err := framework.PutJSON(ctx, req.Storage, configPrefix+name, c); err != nil {
		db.Close()
		return nil, err
	}
	b.conns.set(c, db)
	return nil, nil
}

// configError answers a configuration the driver cannot open or connect
// with: the caller's to fix (400), with the driver's message, which holds
// no credential.
func configError(err error) error {
	var ce *dbplugin.ConnectError
	if errors.As(err, &ce) {
		return &logical.CodedError{Status: 400, Msg: "error verifying the connection: " + ce.Msg, Err: err}
	}
	return dbError(err)
}

// update applies the request's fields to c: on an update, fields not
// given keep their values (Vault merges connection details).
func (c *configEntry) update(d *framework.FieldData, create bool) error {
	if d.Has("plugin_name") {
		c.PluginName = d.String("plugin_name")
	}
	if c.PluginName == "" {
		return logical.BadRequest("plugin_name is required")
	}
	if plugins[c.PluginName] == nil {
		return unknownPlugin(c.PluginName)
	}
	if v := d.String("plugin_version"); v != "" {
		return logical.BadRequest("plugin_version %q is not available: only the built-in driver is", v)
	}
	if d.Has("password_policy") {
		c.PasswordPolicy = d.String("password_policy")
	}
	if d.Has("connection_url") {
		c.ConnectionURL = d.String("connection_url")
	}
	if c.ConnectionURL == "" {
		return logical.BadRequest("connection_url is required")
	}
	if d.Has("username") {
		c.Username = d.String("username")
	}
	if d.Has("password") {
		c.Password = secret.NewString(d.String("password"))
	}
	if d.Has("allowed_roles") {
		c.AllowedRoles = d.StringSlice("allowed_roles")
	}
	if d.Has("root_rotation_statements") {
		c.RootRotationStatements = parseStatements(d.StringSlice("root_rotation_statements"))
	}
	if d.Has("username_template") {
		c.UsernameTemplate = d.String("username_template")
	}
	if create || d.Has("verify_connection") {
		c.VerifyConnection = d.Bool("verify_connection")
	}
	if d.Has("max_open_connections") {
		c.MaxOpenConnections = d.Int("max_open_connections")
	}
	if d.Has("max_idle_connections") {
		c.MaxIdleConnections = d.Int("max_idle_connections")
	}
	if d.Has("max_connection_lifetime") {
		c.MaxConnectionLifetime = d.Duration("max_connection_lifetime")
	}
	if c.MaxOpenConnections < 0 || c.MaxIdleConnections < 0 {
		return logical.BadRequest("max_open_connections and max_idle_connections must not be negative")
	}
	if c.MaxOpenConnections == 0 {
		c.MaxOpenConnections = defaultMaxOpenConnections
	}
	if c.MaxIdleConnections == 0 || c.MaxIdleConnections > c.MaxOpenConnections {
		c.MaxIdleConnections = c.MaxOpenConnections
	}
	return nil
}

func (b *backend) handleConfigDelete(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	defer b.conns.lock(name)()
	if err := req.Storage.Delete(ctx, configPrefix+name); err != nil {
		return nil, err
	}
	b.conns.close(name)
	return nil, nil
}

func (b *backend) pathReset() *framework.Path {
	return namedPath(`reset/`, "connection", logical.UpdateOperation, b.handleReset, "Close the connection and open it again.",
		"Close a connection's open connections and reconnect with its stored configuration.")
}

func (b *backend) handleReset(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	defer b.conns.lock(name)()
	c, err := mustConfig(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	b.conns.close(name)
	db, err := b.conns.get(c)
	if err != nil {
		return nil, dbError(err)
	}
	if c.VerifyConnection {
		return nil, dbError(db.Verify(ctx))
	}
	return nil, nil
}

func (b *backend) pathRotateRoot() *framework.Path {
	p := namedPath(`rotate-root/`, "connection", logical.UpdateOperation, b.handleRotateRoot,
		"Give the admin user a new password that only the engine knows.", "Rotate the admin user's password.")
	p.HelpDescription = "A new password is generated and set with root_rotation_statements (by default ALTER ROLE ... " +
		"WITH PASSWORD), and stored. It is never returned: after this no operator knows it."
	return p
}

func (b *backend) handleRotateRoot(ctx context.Context, req *logical.Request, d *framework.FieldData) (*logical.Response, error) {
	name := d.String("name")
	defer b.conns.lock(name)()
	c, err := mustConfig(ctx, req.Storage, name)
	if err != nil {
		return nil, err
	}
	if c.Username == "" || c.Password.IsEmpty() {
		return nil, logical.BadRequest("cannot rotate the root credentials of %q: the configuration has no username and password", name)
	}
	db, err := b.conns.get(c)
	if err != nil {
		return nil, dbError(err)
	}
	next := *c
	if next.Password, err = b.newPassword(ctx, c); err != nil {
		return nil, err
	}
	key := configPrefix + name
	err = b.setPassword(ctx, db, c.Username, next.Password, c.RootRotationStatements,
		func(ctx context.Context) error { return framework.PutJSON(ctx, req.Storage, key, &next) },
		func(ctx context.Context) error { return framework.PutJSON(ctx, req.Storage, key, c) })
	if err != nil {
		return nil, err
	}
	// New connections log in with the new password.
	b.conns.close(name)
	return nil, nil
}
