package oauth

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/charset"
)

// maxForm bounds a form body authd reads: 64 KiB. The route table may wrap a tighter httperr.LimitBody around it.
const maxForm = 64 << 10

// readForm reads r's application/x-www-form-urlencoded body, at most
// maxForm bytes, and returns its parameters and raw bytes.
//
// Errors: invalid_request (wrong content type, malformed body);
// request_too_large.
func readForm(w http.ResponseWriter, r *http.Request) (url.Values, []byte, error) {
	const op = "oauth.readForm"
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return nil, nil, errors.E(errors.InvalidRequest, "Content-Type must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForm))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, nil, errors.E(errors.RequestTooLarge, "Request body exceeds this endpoint's limit of "+strconv.FormatInt(mbe.Limit, 10)+" bytes").WithCause(op, err)
		}
		return nil, nil, errors.E(errors.InvalidRequest, "The request body could not be read").WithCause(op, err)
	}
	v, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, nil, errors.E(errors.InvalidRequest, "The form body is not valid application/x-www-form-urlencoded data").WithCause(op, err)
	}
	return v, body, nil
}

// once checks that none of names appears more than once (RFC 6749 §3.1:
// "Request and response parameters MUST NOT be included more than once").
//
// Errors: invalid_request naming the parameter.
func once(v url.Values, names ...string) *errors.Error {
	for _, n := range names {
		if len(v[n]) > 1 {
			return errors.E(errors.InvalidRequest, "Parameter included more than once: "+n)
		}
	}
	return nil
}

// missing is the invalid_request for an absent required parameter.
func missing(name string) *errors.Error {
	return errors.E(errors.InvalidRequest, "Missing required parameter: "+name)
}

// validScopeToken is RFC 6749 §3.3, at most 128 bytes:
//
//	scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
func validScopeToken(s string) bool {
	return s != "" && len(s) <= 128 && charset.NQChars(s)
}

// parseScope splits a scope parameter (RFC 6749 §3.3: tokens separated by
// single spaces) and removes repeats. ok is false for anything else.
func parseScope(s string) (scopes []string, ok bool) {
	if len(s) > 2048 {
		return nil, false
	}
	for _, tok := range strings.Split(s, " ") {
		if !validScopeToken(tok) {
			return nil, false
		}
		scopes = append(scopes, tok)
	}
	return dedupe(scopes), true
}

// subset reports whether every one of want is in have.
func subset(want, have []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// validChallenge checks an S256 code_challenge: BASE64URL(SHA256(verifier))
// without padding is exactly 43 characters (RFC 7636 §4.2).
func validChallenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if !isBase64URL(c[i]) {
			return false
		}
	}
	return true
}

// validVerifier is RFC 7636 §4.1: 43-128 characters of
// [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; !isBase64URL(c) && c != '.' && c != '~' {
			return false
		}
	}
	return true
}

func isBase64URL(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
