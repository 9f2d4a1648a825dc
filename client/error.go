package client

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
)

// Error is an error answered by authd, in any of the forms it takes: a JSON
// body (RFC 6749 §5.2), an authorization redirect's query (RFC 6749
// §4.1.2.1) or a WWW-Authenticate challenge (RFC 6750 §3). Get it from an
// error chain with errors.As; compare codes with the constants of package
// github.com/authd-dev/authd/errors.
type Error struct {
	// Code is the "error" member, e.g. "invalid_token". It is empty when
	// the response carried no authd error (a proxy's 502 page, say).
	Code errors.Code
	// Description is the "error_description" member: text for a developer.
	Description string
	// URI is the "error_uri" member: a page that documents the code.
	URI string
	// RetryAfter is how long to wait before retrying: the Retry-After
	// header (delta-seconds or an HTTP-date), else the "retry_after"
	// member; zero when the response said nothing.
	RetryAfter time.Duration
	// RequestID is the "request_id" member, else the X-Request-Id header:
	// the key to the server's log line for this failure.
	RequestID string
	// Status is the HTTP status; 0 for an error delivered by redirect.
	Status int
	// ProviderError is the "provider_error" member: the upstream identity
	// provider's own error (google_auth_failed, github_auth_failed).
	ProviderError string
	// Scope is the scope an insufficient_scope challenge asks for.
	Scope string
	// State and Issuer are the "state" and "iss" parameters of an error
	// delivered by redirect (RFC 9207).
	State  string
	Issuer string
}

// Sentinels for errors.Is. An *Error matches one of them when the codes
// are equal.
var (
	// ErrConflict: a conditional backup write or delete found another
	// version (backup_conflict, 412). Fetch the backup, merge, retry with
	// its ETag.
	ErrConflict = &Error{Code: errors.BackupConflict}
	// ErrNotFound: the identity has no backup (backup_not_found, 404).
	ErrNotFound = &Error{Code: errors.BackupNotFound}
)

// Error returns "authd: <code>: <description> (HTTP <status>, request
// <id>)", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("authd: ")
	switch {
	case e.Code != "":
		b.WriteString(string(e.Code))
	case e.Status != 0:
		b.WriteString(strconv.Itoa(e.Status) + " " + http.StatusText(e.Status))
	default:
		b.WriteString("error")
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	var extra []string
	if e.Status != 0 && e.Code != "" {
		extra = append(extra, "HTTP "+strconv.Itoa(e.Status))
	}
	if e.RequestID != "" {
		extra = append(extra, "request "+e.RequestID)
	}
	if len(extra) > 0 {
		b.WriteString(" (" + strings.Join(extra, ", ") + ")")
	}
	return b.String()
}

// Is reports whether target is an *Error with e's code (and, when target
// names one, e's status), so errors.Is(err, ErrConflict) works.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t.Code == "" {
		return false
	}
	return t.Code == e.Code && (t.Status == 0 || t.Status == e.Status)
}

// CodeOf returns the code of the *Error in err's chain: the authd error
// code a call failed with, or "" when err is nil or did not come from an
// authd response (a network failure, a context that ended).
func CodeOf(err error) errors.Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Temporary reports whether waiting can help: a 429 or 503 answer, or a
// rate_limit_exceeded or temporarily_unavailable code. RetryAfter says
// how long to wait.
func (e *Error) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable ||
		e.Code == errors.RateLimitExceeded || e.Code == errors.TemporarilyUnavailable
}

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// ParseError returns nil for a response with a status below 400, and an
// *Error for any other: the JSON body, the WWW-Authenticate challenge and
// the Retry-After and X-Request-Id headers, combined. It reads at most
// 64 KiB of the body and closes it.
func ParseError(resp *http.Response) error {
	if resp.StatusCode < 400 {
		return nil
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		resp.Body.Close()
	}
	return ParseErrorBody(resp.StatusCode, resp.Header, body)
}

// wireBody is the JSON error body authd writes.
type wireBody struct {
	Error         string          `json:"error"`
	Description   string          `json:"error_description"`
	URI           string          `json:"error_uri"`
	RetryAfter    json.RawMessage `json:"retry_after"`
	ProviderError string          `json:"provider_error"`
	RequestID     string          `json:"request_id"`
}

// ParseErrorBody builds the *Error of a response from its status, header
// and body. The JSON body wins over the WWW-Authenticate challenge for
// the code and texts; the Retry-After header wins over the retry_after
// member (it is what HTTP caches and proxies see). A body that is not
// authd's JSON leaves the texts to the challenge, or empty.
func ParseErrorBody(status int, header http.Header, body []byte) *Error {
	e := &Error{Status: status}
	if looksJSON(header, body) {
		var w wireBody
		if json.Unmarshal(body, &w) == nil {
			e.Code = errors.Code(w.Error)
			e.Description = w.Description
			e.URI = w.URI
			e.ProviderError = w.ProviderError
			e.RequestID = w.RequestID
			if n, err := strconv.ParseInt(string(w.RetryAfter), 10, 64); err == nil && n > 0 {
				e.RetryAfter = seconds(n)
			}
		}
	}
	if ch, ok := errorChallenge(ParseChallenges(header.Values("WWW-Authenticate"))); ok {
		if e.Code == "" {
			e.Code = errors.Code(ch.Params["error"])
			e.Description = ch.Params["error_description"]
			e.URI = ch.Params["error_uri"]
		}
		e.Scope = ch.Params["scope"]
	}
	if d, ok := ParseRetryAfter(header.Get("Retry-After"), dateOf(header), time.Now()); ok {
		e.RetryAfter = d
	}
	if e.RequestID == "" {
		e.RequestID = header.Get("X-Request-Id")
	}
	return e
}

// looksJSON reports whether body should be read as JSON: a JSON media type,
// or no media type and a body that starts like an object.
func looksJSON(header http.Header, body []byte) bool {
	if ct := header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return true
		}
		if err == nil {
			return false
		}
	}
	return bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{"))
}

// errorChallenge returns the first challenge that carries an error
// parameter (RFC 6750 §3), Bearer first.
func errorChallenge(chs []Challenge) (Challenge, bool) {
	for _, bearerOnly := range []bool{true, false} {
		for _, c := range chs {
			if bearerOnly && !strings.EqualFold(c.Scheme, "Bearer") {
				continue
			}
			if c.Params["error"] != "" {
				return c, true
			}
		}
	}
	return Challenge{}, false
}

// maxRetryAfter bounds a parsed Retry-After, so arithmetic on it cannot
// overflow.
const maxRetryAfter = 1 << 20 * time.Second

func seconds(n int64) time.Duration {
	if n > int64(maxRetryAfter/time.Second) {
		return maxRetryAfter
	}
	return time.Duration(n) * time.Second
}

// dateOf returns the response's Date header, or the zero time.
func dateOf(h http.Header) time.Time {
	t, err := http.ParseTime(h.Get("Date"))
	if err != nil {
		return time.Time{}
	}
	return t
}

// ParseRetryAfter parses a Retry-After value (RFC 9110 §10.2.3): either
// delta-seconds, or an HTTP-date, which is measured from the response's
// Date (date; the clock that wrote it) when known, else from now. A date
// in the past is a zero wait. The result is capped at about 12 days. It
// reports false for an empty or malformed value.
func ParseRetryAfter(v string, date, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		if len(v) > 9 {
			return maxRetryAfter, true
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		return seconds(n), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	from := now
	if !date.IsZero() {
		from = date
	}
	d := t.Sub(from)
	switch {
	case d < 0:
		d = 0
	case d > maxRetryAfter:
		d = maxRetryAfter
	}
	return d, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
