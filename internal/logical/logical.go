// Package logical is the contract between the request pipeline and a mount
// (a secrets engine or an auth method): the [Request] a mount receives, the
// [Response] it returns, the [Storage] it may use, and the sentinel errors
// whose meaning the HTTP layer turns into status codes.
//
// A mount sees storage only as the [Storage] on its request, already
// confined to its own barrier view; it never sees the barrier, the physical
// store or other mounts. It asks for a lease only by returning a [Secret].
//
// The package imports nothing internal.
package logical

import (
	"context"
	"log/slog"
	"time"
)

// Operation is what a request asks of a path.
type Operation string

// The operations. HTTP GET is read (or list with ?list=true), POST and PUT
// are create or update (decided by the path's existence check), PATCH is
// patch, DELETE is delete and LIST is list.
const (
	ReadOperation   Operation = "read"
	CreateOperation Operation = "create"
	UpdateOperation Operation = "update"
	PatchOperation  Operation = "patch"
	DeleteOperation Operation = "delete"
	ListOperation   Operation = "list"
	HelpOperation   Operation = "help"
	// RenewOperation is sent by the pipeline, never by a client: a lease
	// the mount handed out is being renewed (Request.Secret is set), or a
	// token one of its logins created (Request.Auth is set).
	RenewOperation Operation = "renew"
	// RevokeOperation is sent by the pipeline, never by a client: a lease
	// the mount handed out has expired or is revoked (Request.Secret is
	// set). The mount undoes what it created (drops the database user).
	RevokeOperation Operation = "revoke"
)

// Connection describes the client's network connection.
type Connection struct {
	// RemoteAddr is the client IP address (no port).
	RemoteAddr string
	// RemotePort is the client's TCP port, 0 when unknown.
	RemotePort int
	// ClientCertSubject is the subject of the client's verified TLS
	// certificate, "" when it sent none.
	ClientCertSubject string
}

// Request is one operation on one path of a mount.
type Request struct {
	// ID is the request's unique id (a UUID), echoed as request_id.
	ID string
	// Operation is the operation requested.
	Operation Operation
	// Path is relative to the mount: "data/foo" for "secret/data/foo". A
	// list request's path ends in '/' (or is empty for the mount root).
	Path string
	// Data holds the request body (a JSON object) or, for read, list and
	// delete, the query parameters. Mounts decode it with package framework
	// and never pass the map further.
	Data map[string]any
	// Storage is the mount's own view of the encrypted store.
	Storage Storage
	// MountPoint is the path the mount is mounted at, with a trailing '/'.
	MountPoint string
	// MountType is the mount's type ("kv").
	MountType string
	// MountAccessor is the mount's accessor ("kv_1a2b3c4d").
	MountAccessor string
	// Connection is the client connection, nil for internal requests.
	Connection *Connection
	// DisplayName is the display name of the caller's token ("root",
	// "approle", "token-ci"), "" on an unauthenticated path or an
	// internal request. Engines may put it into the names of what they
	// create (the database engine's user names).
	DisplayName string
	// Auth is set on a RenewOperation of a token: the Auth the mount
	// returned at login, as stored with the token's lease.
	Auth *Auth
	// Secret is set on a RenewOperation or RevokeOperation of a lease:
	// the Secret the mount returned, with its InternalData, as stored
	// with the lease.
	Secret *Secret
}

// Response is what a mount returns for a successful request.
type Response struct {
	// Data is the payload rendered as the envelope's "data". A
	// json.RawMessage value is written to the client as it is, unchecked:
	// mounts use it only for JSON documents they stored themselves.
	Data map[string]any
	// Warnings are non-fatal notes rendered as "warnings".
	Warnings []string
	// Secret asks for a lease on the returned data (or, with NoLease, only
	// reports a TTL).
	Secret *Secret
	// Auth asks for a token: a login's answer (see [Auth]).
	Auth *Auth
	// StatusCode overrides the HTTP status of the rendered envelope when
	// non-zero: KV v2 answers 404 with data for a deleted version.
	StatusCode int
	// Raw, when set, is sent instead of the envelope (sys/metrics in the
	// Prometheus format). Nothing else of the response is rendered.
	Raw *RawBody
	// Events are the changes the request made, published by the pipeline
	// once it has served the request (see [Event]). They are never
	// rendered to the client.
	Events []Event
}

// RawBody is a response body sent as it is, with its content type.
type RawBody struct {
	ContentType string
	Body        []byte
}

// AddWarning appends a warning to r.
func (r *Response) AddWarning(w string) { r.Warnings = append(r.Warnings, w) }

// Secret describes the lease a response asks for.
type Secret struct {
	// TTL is the lease duration; 0 means the mount's default.
	TTL time.Duration
	// MaxTTL caps renewals; 0 means the mount's maximum.
	MaxTTL time.Duration
	// Renewable reports whether the lease may be renewed.
	Renewable bool
	// NoLease reports the TTL as lease_duration without registering a lease
	// (KV v1 reads: clients use it as a refresh hint).
	NoLease bool
	// InternalData is kept with the lease (behind the barrier) and handed
	// back to the mount on renewal and revocation: what it needs to undo
	// the secret (the database user's name). It is never shown to
	// clients; put no credential in it that revocation does not need.
	InternalData map[string]any
	// LeaseID is set by the pipeline when it registers the lease.
	LeaseID string
	// IssueTime is when the lease was issued, set by the pipeline on a
	// RenewOperation or RevokeOperation (a renewal never extends a lease
	// past IssueTime plus its MaxTTL).
	IssueTime time.Time
}

// SystemView is what a mount may learn about its configuration at request
// time, and the server's services it may use. Its values follow mount
// tuning.
type SystemView interface {
	// DefaultLeaseTTL is the mount's effective default lease TTL.
	DefaultLeaseTTL() time.Duration
	// MaxLeaseTTL is the mount's effective maximum lease TTL.
	MaxLeaseTTL() time.Duration
	// GeneratePasswordFromPolicy returns a new password from the named
	// password policy (sys/policies/password/<name>). A name that is no
	// policy's is an error wrapping [ErrPasswordPolicyNotFound], the
	// caller's to fix.
	GeneratePasswordFromPolicy(ctx context.Context, policyName string) (string, error)
}

// Backend is a mount: a secrets engine or an auth method.
type Backend interface {
	// HandleRequest serves one request. It returns a non-nil response or an
	// error; "not found" is ErrNotFound, never a nil response.
	HandleRequest(ctx context.Context, req *Request) (*Response, error)
	// ExistenceCheck reports whether the target of a create/update request
	// already exists. checked is false when the path has no existence
	// check, and the operation is then always update.
	ExistenceCheck(ctx context.Context, req *Request) (checked, exists bool, err error)
}

// Initializer is implemented by backends that must prepare their storage
// before serving (a KV v1 mount upgrading to v2, for example). The pipeline
// calls Initialize after the factory and before the first request.
type Initializer interface {
	Initialize(ctx context.Context, s Storage) error
}

// PureReader is implemented by backends whose read and list operations
// change nothing, in their storage or elsewhere: no lease, no credential,
// no counter (KV). PureReads reports whether that holds for this
// instance. The pipeline serves such a request while its audit request
// entry is being written, and returns nothing unless the entry was (see
// core's HandleRequest).
type PureReader interface {
	PureReads() bool
}

// Cleaner is implemented by backends that hold resources; Cleanup runs when
// the mount is disabled, reloaded or the server seals.
type Cleaner interface {
	Cleanup(ctx context.Context)
}

// Periodic is implemented by backends with background work (the database
// engine's rotation schedules). While the server is unsealed and the mount
// is enabled, the core calls Periodic with the mount's storage: once at
// once (at unseal, or when the mount is enabled: work missed while sealed
// or down is done then), and again at the time it returns, or sooner
// after the backend's [BackendConfig.Wake]. The zero time means no work is
// known; the core calls again within minutes all the same.
//
// Calls to one mount never overlap. ctx is cancelled when the server seals
// or the mount is disabled, moved or rebuilt, and the core waits for the
// call to return before it cleans the backend up. A Periodic backend must
// be a pointer: the core tells its instances apart with ==.
type Periodic interface {
	Periodic(ctx context.Context, s Storage) (next time.Time, err error)
}

// LeaseConfirmer is implemented by backends that must know when the lease
// of a secret they returned is stored. Until then a mount cannot tell a
// secret whose lease will revoke it from one the pipeline failed to put
// under a lease (storage failed, or the server stopped in between): an
// engine that created something outside Vigil for the secret keeps its
// intent record (package framework) until SecretRegistered, and undoes
// the thing on its own if it never comes.
//
// The pipeline calls SecretRegistered after it stored the lease of the
// Secret a mount returned (s.LeaseID is set) and before it answers, with
// the request that produced it (req.Storage is the mount's). If it fails,
// the pipeline revokes the lease at once (a [RevokeOperation] through the
// mount) and answers the error. If the lease could not be stored, the
// pipeline sends the mount a RevokeOperation for the secret at once
// instead, and never calls SecretRegistered.
type LeaseConfirmer interface {
	SecretRegistered(ctx context.Context, req *Request, s *Secret) error
}

// BackendConfig is what a Factory receives.
type BackendConfig struct {
	// Logger is the mount's logger (component and mount attributes set).
	Logger *slog.Logger
	// Now tells the time; tests pass a fake clock's Now.
	Now func() time.Time
	// System exposes the mount's tuned settings.
	System SystemView
	// Options are the mount's options ("version": "2" for KV v2).
	Options map[string]string
	// MountPoint is the path the mount is mounted at, with a trailing '/'.
	MountPoint string
	// Wake asks for a call of the backend's [Periodic] soon: after a change
	// that brings its next work forward. It returns at once. It is nil when
	// the backend is built outside the core (unit tests).
	Wake func()
	// SendEvent publishes a change the backend made outside a request
	// (its [Periodic] work); changes made while serving a request go in
	// [Response.Events] instead. It returns at once and never fails: an
	// event no one is subscribed to is dropped. It is nil when the
	// backend is built outside the core (unit tests).
	SendEvent func(Event)
}

// Factory builds a backend for one mount.
type Factory func(ctx context.Context, conf *BackendConfig) (Backend, error)
