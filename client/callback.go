package client

import (
	"crypto/subtle"
	"net/url"

	"github.com/authd-dev/authd/errors"
)

// Errors of ParseCallback for a response that did not come from the
// authorization request this client made. Never retry on them: treat the
// response as an attack (RFC 6749 §10.12, RFC 9207 §2.4).
var (
	// ErrStateMismatch: the "state" parameter is missing or is not the
	// one the client sent.
	ErrStateMismatch = errors.New("client: authorization response state does not match the request's")
	// ErrIssuerMismatch: the "iss" parameter is missing or names another
	// authorization server (a mix-up attack, RFC 9207); Discover also
	// returns it, wrapped, for a metadata document naming another issuer
	// (RFC 8414 §3.3).
	ErrIssuerMismatch = errors.New("client: issuer does not match")
	// ErrInvalidCallback: the response has neither code nor error, or
	// repeats a parameter (RFC 6749 §3.1).
	ErrInvalidCallback = errors.New("client: malformed authorization response")
)

// ParseCallback reads the authorization response delivered to the
// client's redirect URI (RFC 6749 §4.1.2, §4.1.2.1; RFC 9207) and returns
// the authorization code.
//
// It first checks that the response belongs to this request: "state"
// must equal state (compared in constant time; pass "" only when the
// request sent none) and, when issuer is not empty, "iss" must equal it
// (authd sends iss on every authorization response). Then an "error"
// parameter becomes an *Error with Code, Description, URI, State and
// Issuer set and Status 0.
//
// Errors: ErrStateMismatch, ErrIssuerMismatch, ErrInvalidCallback, or an
// *Error for an error response.
func ParseCallback(u *url.URL, state, issuer string) (code string, err error) {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", ErrInvalidCallback
	}
	for _, k := range []string{"code", "state", "iss", "error", "error_description", "error_uri"} {
		if len(q[k]) > 1 {
			return "", ErrInvalidCallback
		}
	}
	got, has := q["state"]
	switch {
	case state == "" && has:
		return "", ErrStateMismatch
	case state != "" && (!has || subtle.ConstantTimeCompare([]byte(got[0]), []byte(state)) != 1):
		return "", ErrStateMismatch
	}
	if issuer != "" && q.Get("iss") != issuer {
		return "", ErrIssuerMismatch
	}
	if c := q.Get("error"); c != "" {
		return "", &Error{
			Code:        errors.Code(c),
			Description: q.Get("error_description"),
			URI:         q.Get("error_uri"),
			State:       q.Get("state"),
			Issuer:      q.Get("iss"),
		}
	}
	code = q.Get("code")
	if code == "" {
		return "", ErrInvalidCallback
	}
	return code, nil
}
