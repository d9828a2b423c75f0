package logical

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. The HTTP layer maps each to a status code in one table;
// mounts return them (wrapped or not) and never choose a status by other
// means, except [CodedError].
var (
	// ErrNotFound: the named item does not exist (404 with an empty
	// errors list). Storage views wrap it for a missing key too.
	ErrNotFound = errors.New("not found")
	// ErrPermissionDenied: the caller may not do this (403).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnsupportedPath: no path of the mount matches (404).
	ErrUnsupportedPath = errors.New("unsupported path")
	// ErrUnsupportedOperation: the path does not support the operation (405).
	ErrUnsupportedOperation = errors.New("unsupported operation")
	// ErrInvalidRequest: the request is malformed (400).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrPasswordPolicyNotFound: [SystemView.GeneratePasswordFromPolicy]
	// was given a name no password policy has. The mount that asked turns
	// it into its own answer (a 400 naming the setting that holds the
	// name); the HTTP layer does not map it.
	ErrPasswordPolicyNotFound = errors.New("password policy not found")
)

// CodedError is an error with an HTTP status and a message that is safe to
// show the client. Err, when set, is the internal cause: it is logged, never
// sent.
type CodedError struct {
	Status int
	Msg    string
	Err    error
}

func (e *CodedError) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *CodedError) Unwrap() error { return e.Err }

// CodedErrorf returns a CodedError with the formatted message.
func CodedErrorf(status int, format string, args ...any) *CodedError {
	return &CodedError{Status: status, Msg: fmt.Sprintf(format, args...)}
}

// BadRequest returns a 400 CodedError with the formatted message: the error
// for every mistake the caller can fix.
func BadRequest(format string, args ...any) *CodedError {
	return CodedErrorf(400, format, args...)
}

// ErrRateLimited: the client sent too many requests of a kind (429). A
// [RateLimitError] says when to retry.
var ErrRateLimited = errors.New("rate limit exceeded")

// RateLimitError is a 429 that tells the client when it may try again
// (the Retry-After header).
type RateLimitError struct {
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string { return ErrRateLimited.Error() }

// Is makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Is(target error) bool { return target == ErrRateLimited }
