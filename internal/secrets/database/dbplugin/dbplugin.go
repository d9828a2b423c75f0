// Package dbplugin is the contract between the database secrets engine and
// its connection drivers (internal/secrets/database/postgres, later mysql):
// the [Config] a driver opens with, the [Database] it returns, and the
// helpers every driver shares: statement placeholders ([Render]), the
// error types the engine turns into 400s ([StatementError],
// [ConnectError]) and the scrubbing that keeps credentials out of them
// ([Redact]).
//
// # Credentials never leave in an error
//
// A driver returns no error whose text holds a password or a connection
// string with one: messages from the server and the client library pass
// through [Redact] with every credential the operation used before they
// are wrapped, and a failing statement is named by its template (which
// holds "{{password}}", not the password).
//
// The package imports nothing internal but package secret.
package dbplugin

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// Config is how a driver reaches a database as its admin user.
type Config struct {
	// ConnectionURL is a URL or key=value DSN in which {{username}} and
	// {{password}} stand for Username and Password.
	ConnectionURL string
	// Username and Password are the admin user's credentials.
	Username string
	Password secret.String
	// MaxOpenConnections caps the connections open at once (>= 1).
	MaxOpenConnections int
	// MaxIdleConnections caps the connections kept open while unused
	// (0 keeps none).
	MaxIdleConnections int
	// MaxConnectionLifetime closes a connection this long after it was
	// opened; 0 keeps it for ever.
	MaxConnectionLifetime time.Duration
}

// NewUserRequest asks for a user to be created.
type NewUserRequest struct {
	Username string
	Password secret.String
	// Expiration is when the user's password stops working (the lease's
	// end); it fills {{expiration}}.
	Expiration time.Time
	// Creation runs in one transaction; Rollback runs if it fails.
	Creation []string
	Rollback []string
}

// Database is an open connection pool to one database server, through
// which the engine manages users. Implementations are safe for concurrent
// use. Every method runs its statements in one transaction.
type Database interface {
	// Verify connects (if no connection is open) and checks the server
	// answers.
	Verify(ctx context.Context) error
	// NewUser runs the creation statements. When they fail, the
	// transaction is rolled back, the rollback statements run, and a
	// user that still exists is deleted, so that none is left behind.
	// When that undoing fails too, the error is an [UndoError]: the user
	// may exist, and the engine must delete it later.
	NewUser(ctx context.Context, req NewUserRequest) error
	// RenewUser moves the user's expiration (renew statements, or the
	// driver's default when there are none).
	RenewUser(ctx context.Context, username string, expiration time.Time, statements []string) error
	// DeleteUser ends the user's sessions and removes it (revocation
	// statements, or the driver's default). A user that does not exist
	// is not an error: revocation is retried and must be idempotent.
	DeleteUser(ctx context.Context, username string, statements []string) error
	// SetPassword changes a user's password (statements, or the driver's
	// default). beforeCommit, when not nil, runs after the statements and
	// before the transaction commits; if it fails the change is rolled
	// back. The engine stores the new password there, so that the
	// database and the engine's storage do not disagree when either
	// fails.
	SetPassword(ctx context.Context, username string, password secret.String, statements []string, beforeCommit func(context.Context) error) error
	// Close closes the idle connections at once and the others when
	// they are released. The Database must not be used afterwards.
	Close()
}

// Twins is implemented by drivers that support the engine's alternating
// rotation strategy, in which two users take turns: each rotation sets a
// new password on the one not handed out, so that the credentials read
// before it keep working until the next.
type Twins interface {
	// EnsureTwin makes sure a login user called twin exists that an
	// application can use in place of user, and reports whether it
	// created it. An existing twin is left as it is. A new twin has no
	// password, so that no one can log in as it until
	// [Database.SetPassword] gives it one; it holds no credential of its
	// own to leak.
	EnsureTwin(ctx context.Context, user, twin string) (created bool, err error)
}

// Placeholders of statements.
const (
	PlaceholderName       = "{{name}}"
	PlaceholderUsername   = "{{username}}"
	PlaceholderPassword   = "{{password}}"
	PlaceholderExpiration = "{{expiration}}"
)

// ExpirationFormat is how {{expiration}} is written: a timestamp every
// SQL database parses, in UTC.
const ExpirationFormat = "2006-01-02 15:04:05-0700"

// Vars are the values of a statement's placeholders. Name fills both
// {{name}} and {{username}}.
type Vars struct {
	Name       string
	Password   string
	Expiration time.Time
}

// Render fills the placeholders of a statement template. The values are
// inserted as they are: the engine makes sure user names and passwords
// hold no quote, backslash or control character.
func Render(tmpl string, v Vars) string {
	pairs := []string{PlaceholderName, v.Name, PlaceholderUsername, v.Name, PlaceholderPassword, v.Password}
	if !v.Expiration.IsZero() {
		pairs = append(pairs, PlaceholderExpiration, v.Expiration.UTC().Format(ExpirationFormat))
	}
	return strings.NewReplacer(pairs...).Replace(tmpl)
}

// redacted replaces a credential in a message.
const redacted = "[redacted]"

// Redact removes every non-empty secret from msg, as it is and in the
// escaped forms a connection string or URL carries.
func Redact(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s == "" {
			continue
		}
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s), EscapeURL(s)} {
			msg = strings.ReplaceAll(msg, form, redacted)
		}
	}
	return msg
}

// EscapeURL percent-encodes every byte of s outside the unreserved set of
// RFC 3986, for a user name or password in a URL's userinfo.
func EscapeURL(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// maxShownStatement caps how much of a statement template an error shows.
const maxShownStatement = 200

// StatementError is a statement the database refused. The engine answers
// it with a 400: the statements are the operator's.
type StatementError struct {
	// Kind says which statements: "creation", "revocation", "renew",
	// "rollback", "rotation", "alternate user".
	Kind string
	// Index is the statement's position in its list, from 1.
	Index int
	// Statement is the statement's template (placeholders not filled).
	Statement string
	// Msg is the database's message, credentials removed.
	Msg string
}

func (e *StatementError) Error() string {
	stmt := e.Statement
	if len(stmt) > maxShownStatement {
		stmt = stmt[:maxShownStatement] + "..."
	}
	return fmt.Sprintf("%s statement %d (%q) failed: %s", e.Kind, e.Index, stmt, e.Msg)
}

// ConnectError is a failure to connect or log in to the database, with
// the driver's message, credentials removed.
type ConnectError struct {
	Msg string
}

func (e *ConnectError) Error() string { return "connecting to the database: " + e.Msg }

// UndoError is [Database.NewUser]'s failure when the creation failed and
// undoing it failed too: a user may have been left behind. Err holds both
// failures (a [StatementError] of the creation stays reachable through
// it).
type UndoError struct {
	Err error
}

func (e *UndoError) Error() string { return e.Err.Error() }

func (e *UndoError) Unwrap() error { return e.Err }
