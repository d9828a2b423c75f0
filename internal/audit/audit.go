// Package audit records every request and response in Vigil's audit log:
// the entry schema (package auditlog), the HMAC of sensitive values with a
// per-device salt, the hash chain of each device, and the broker that fans
// entries out to the devices and fails closed.
//
// Devices are split in two. This package owns what every device shares:
// formatting, hashing (a recent caller's token and accessor are hashed
// once, not once an entry), numbering and linking entries, batches
// written by the first request to find the device idle or by one writer
// goroutine per device (so that the writes of concurrent requests are
// grouped; a busy device's batch gathers for up to 50 µs), timeouts,
// retries and checkpoints. A [Sink] (in the subpackages file, socket and
// syslog) only moves bytes.
//
// The broker's promise (security invariant 4): once a device is enabled,
// Log returns nil only if at least one device has written the entry, and
// it never waits on a device longer than that device's timeout. A request
// entry queued with QueueRequest is not waited for; LogResponseAfter then
// returns nil only once its device has written it and the response entry.
package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-secrets/vigil/internal/secret"
)

// Sentinel errors.
var (
	// ErrNotRecorded: no device wrote the entry. The request must fail
	// and return nothing.
	ErrNotRecorded = errors.New("audit: no audit device recorded the entry")
	// ErrUnknownDevice: no device at that path.
	ErrUnknownDevice = errors.New("audit: unknown audit device")
	// ErrBadOption: an option is unknown or has a bad value.
	ErrBadOption = errors.New("audit: invalid option")
)

// Sink is the output of a device: it moves whole lines somewhere. The
// device calls it from one goroutine at a time.
type Sink interface {
	// Write writes p, one or more lines each ending in '\n'. On error it
	// leaves as little of p written as it can: the device writes p again
	// later.
	Write(p []byte) error
	// Reopen reopens the output (a file moved away by log rotation).
	Reopen() error
	// Close releases the output.
	Close() error
}

// Bounded is implemented by sinks whose Write always returns within the
// device's timeout: a socket with a write deadline, a local file. A
// request may then write its entry's batch itself, which saves two
// goroutine switches per entry; other sinks are written by the device's
// writer goroutine, so that a hung write holds no request.
type Bounded interface {
	WritesBounded() bool
}

// Tailer is implemented by sinks that can read back the end of what they
// wrote (files), so that a device continues its chain after a crash.
type Tailer interface {
	Tail(max int) ([]byte, error)
}

// SinkConfig is what a Factory gets.
type SinkConfig struct {
	// Path is the device's path ("file/").
	Path string
	// Options holds the device's options; the factory takes its own keys
	// from it.
	Options *Options
	Logger  *slog.Logger
}

// Factory builds a sink. It fails with ErrBadOption for bad options and
// with another error when the output cannot be opened.
type Factory func(ctx context.Context, conf SinkConfig) (Sink, error)

// Options are a device's options: a string map read with typed getters
// that remember which keys were used, so that a key nobody used is
// reported as unknown.
type Options struct {
	m    map[string]string
	used map[string]bool
}

// NewOptions wraps m (which it does not modify).
func NewOptions(m map[string]string) *Options {
	return &Options{m: m, used: map[string]bool{}}
}

// String returns the value of key, or def.
func (o *Options) String(key, def string) string {
	o.used[key] = true
	if v, ok := o.m[key]; ok {
		return v
	}
	return def
}

// Bool returns the value of key as a boolean, or def.
func (o *Options) Bool(key string, def bool) (bool, error) {
	v := o.String(key, "")
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: %s must be true or false, got %q", ErrBadOption, key, v)
	}
	return b, nil
}

// Duration returns the value of key as a positive duration ("2s", or
// seconds), or def.
func (o *Options) Duration(key string, def time.Duration) (time.Duration, error) {
	v := o.String(key, "")
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		if nerr != nil {
			return 0, fmt.Errorf("%w: %s must be a duration such as 2s, got %q", ErrBadOption, key, v)
		}
		d = time.Duration(n) * time.Second
	}
	if d <= 0 {
		return 0, fmt.Errorf("%w: %s must be positive, got %q", ErrBadOption, key, v)
	}
	return d, nil
}

// checkUnused fails on options no getter asked for.
func (o *Options) checkUnused(typ string) error {
	var unused []string
	for k := range o.m {
		if !o.used[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) == 0 {
		return nil
	}
	sort.Strings(unused)
	return fmt.Errorf("%w: unknown option %s for audit type %q", ErrBadOption, strings.Join(unused, ", "), typ)
}

// Input is one request or response to record, with values in clear; each
// device hashes them with its own salt.
type Input struct {
	Time time.Time
	// Auth is the caller's token, nil for an unauthenticated request.
	Auth *Auth
	// Request is always set.
	Request *Request
	// Response is set on response entries of served requests.
	Response *Response
	// Err is the error the client gets, if any.
	Err error

	// hashed caches the caller's token and accessor as one device hashed
	// them: each appears twice in an entry.
	hashed struct {
		by              *hasher
		token, accessor loggedValue
	}
	// written keeps the "auth" and "request" members of the request
	// entry as the first device to write it formatted them: its response
	// entry repeats them byte for byte (see formatter.appendEntry).
	written struct {
		by  *formatter
		buf *[]byte
	}
}

// Auth describes a token. For the caller's token, Accessor is logged both
// as auth.accessor and as request.client_token_accessor.
type Auth struct {
	// ClientToken is the token itself (response auth of a login); for
	// a request's caller it is Request.ClientToken.
	ClientToken   secret.String
	Accessor      string
	DisplayName   string
	Policies      []string
	Metadata      map[string]string
	EntityID      string
	TokenType     string
	TTL           time.Duration
	IssueTime     time.Time
	RemainingUses int
	// Allowed is the ACL decision (nil when none was taken: root, or a
	// login).
	Allowed *bool
}

// Request describes a request.
type Request struct {
	ID        string
	Operation string
	// Path is the full request path.
	Path          string
	Data          map[string]any
	MountPoint    string
	MountType     string
	MountAccessor string
	MountClass    string
	// NonHMACKeys are data keys the mount logs in clear.
	NonHMACKeys         []string
	ClientToken         secret.String
	ClientTokenAccessor string
	RemoteAddr          string
	RemotePort          int
	ClientCertSubject   string
	// Headers are the request headers the operator chose to audit
	// (sys/config/auditing/request-headers), sorted by name.
	Headers []Header
}

// Header is an audited request header: its name in lower case and its
// values, HMAC'd when HMAC is set (unless the device logs raw).
type Header struct {
	Name   string
	Values []string
	HMAC   bool
}

// Response describes a served request.
type Response struct {
	// Auth is the token a login or token creation issued.
	Auth     *Auth
	LeaseID  string
	Data     map[string]any
	Warnings []string
	// NonHMACKeys are data keys the mount logs in clear.
	NonHMACKeys []string
	// WrapInfo is set when the response was wrapped: the client got the
	// wrapping token, and Data is what it holds.
	WrapInfo *WrapInfo
}

// WrapInfo describes the wrapping token of a wrapped response. Token,
// Accessor and WrappedAccessor are logged as the caller's token and
// accessor are.
type WrapInfo struct {
	Token           secret.String
	Accessor        string
	TTL             time.Duration
	CreationTime    time.Time
	CreationPath    string
	WrappedAccessor string
}
