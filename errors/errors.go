// Package errors is authd's error model: the wire codes, their catalog,
// and *Error, the error every handler returns. It knows nothing of HTTP:
// package httperr renders an *Error as a response (RFC 6749 §5.2), so
// code that only makes or inspects errors (stores, the Go SDK) does not
// pull in a web stack.
//
// The package is named errors on purpose: it forwards Is, As, Unwrap, Join
// and New from the standard library with the same signatures and semantics,
// so callers import only this package.
package errors

import (
	stderrors "errors"
	"fmt"
	"time"
)

// Code is the wire value of the "error" member (RFC 6749 §5.2). Codes are an
// append-only catalog: a code, once published, keeps its meaning and status.
type Code string

// Error is the error every authd handler returns. Only Code, Description,
// RetryAfter, ProviderError, Scope and Redirect reach the client; Op and Err
// are for logs and never leave the process.
type Error struct {
	// Code is the "error" member; it selects status and catalog entry.
	Code Code
	// Description is the "error_description" member: static, client-safe
	// text. For statuses >= 500 Write sends the catalog's generic text
	// instead, whatever is set here.
	Description string
	// RetryAfter, when positive, becomes the Retry-After header and the
	// "retry_after" member (whole seconds, rounded up, at least 1).
	RetryAfter time.Duration
	// ProviderError is the "provider_error" member: the upstream identity
	// provider's own error code (google_auth_failed, github_auth_failed).
	ProviderError string
	// Scope is the scope an insufficient_scope response asks for (RFC 6750 §3).
	Scope string
	// Redirect, when set, sends the error to the client's redirect_uri
	// (RFC 6749 §4.1.2.1). Only the oauth package sets it, and only after it
	// validated the client and the redirect_uri.
	Redirect *Redirect
	// DocCode, when set to a catalog code, is the entry error_uri points at
	// instead of Code's: a failed Google sign-in is redirected to the client
	// as access_denied (authorization responses carry only standard codes)
	// but documented at #google_auth_failed.
	DocCode Code
	// Op names the operation that failed ("sigauth.Authenticate"); logs only.
	Op string
	// Err is the underlying cause; logs only, never sent.
	Err error
}

// Redirect is where an authorization error is delivered (RFC 6749 §4.1.2.1).
type Redirect struct {
	// URI is the client's validated redirect_uri, exactly as registered.
	URI string
	// State is the request's "state", echoed when HasState is true.
	State    string
	HasState bool
	// Issuer is the "iss" parameter (RFC 9207).
	Issuer string
}

// E returns an *Error with the given code and description. It is the one
// way to make an *Error: the With methods add the optional parts to the
// value E just returned, for example
//
//	errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
//	errors.E(errors.RateLimitExceeded, desc).WithRetryAfter(wait)
func E(code Code, description string) *Error {
	return &Error{Code: code, Description: description}
}

// WithCause records the operation that failed and the underlying cause, for
// logs only. It returns e.
func (e *Error) WithCause(op string, cause error) *Error {
	e.Op, e.Err = op, cause
	return e
}

// WithRetryAfter sets how long the client should wait before retrying
// (the Retry-After header and the "retry_after" member). It returns e.
func (e *Error) WithRetryAfter(d time.Duration) *Error {
	e.RetryAfter = d
	return e
}

// WithScope sets the scope an insufficient_scope response asks for. It
// returns e.
func (e *Error) WithScope(scope string) *Error {
	e.Scope = scope
	return e
}

// WithProviderError sets the upstream provider's own error code. It
// returns e.
func (e *Error) WithProviderError(providerError string) *Error {
	e.ProviderError = providerError
	return e
}

// WithRedirect sends the error to the client's validated redirect_uri
// (RFC 6749 §4.1.2.1). It returns e.
func (e *Error) WithRedirect(rd *Redirect) *Error {
	e.Redirect = rd
	return e
}

// WithDocCode makes error_uri point at code's catalog entry instead of
// e.Code's. It returns e.
func (e *Error) WithDocCode(code Code) *Error {
	e.DocCode = code
	return e
}

// Error returns a log-friendly text: op, code, description and cause.
func (e *Error) Error() string {
	s := string(e.Code)
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause, so Is and As see through an *Error.
func (e *Error) Unwrap() error { return e.Err }

// CodeOf returns err's code: the code of the outermost *Error in err's
// chain, the empty code for nil, and ServerError for anything else (an
// error authd did not classify is an internal error). The HTTP writer
// answers a request body over its limit with a 413 code whatever the
// chain says; CodeOf knows nothing of HTTP.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if As(err, &e) && e.Code != "" {
		return e.Code
	}
	return ServerError
}

// Errorf is fmt.Errorf: it formats a cause for logs (use %w to wrap).
// Never put its text in a Description.
func Errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// New is the standard library's errors.New.
func New(text string) error { return stderrors.New(text) }

// Is is the standard library's errors.Is.
func Is(err, target error) bool { return stderrors.Is(err, target) }

// As is the standard library's errors.As.
func As(err error, target any) bool { return stderrors.As(err, target) }

// Unwrap is the standard library's errors.Unwrap.
func Unwrap(err error) error { return stderrors.Unwrap(err) }

// Join is the standard library's errors.Join.
func Join(errs ...error) error { return stderrors.Join(errs...) }

// ErrUnsupported is the standard library's errors.ErrUnsupported.
var ErrUnsupported = stderrors.ErrUnsupported
