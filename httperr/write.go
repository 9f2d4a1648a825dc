package httperr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/authd-dev/authd/errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Realm is the realm of every WWW-Authenticate challenge authd sends.
const Realm = "authd"

// body is the JSON error body. Field order is the wire order.
type body struct {
	Error         errors.Code `json:"error"`
	Description   string      `json:"error_description"`
	URI           string      `json:"error_uri"`
	RetryAfter    int64       `json:"retry_after,omitempty"`
	ProviderError string      `json:"provider_error,omitempty"`
	RequestID     string      `json:"request_id"`
}

// Write sends err to the client. It is the only function in authd that
// writes an error response:
//
//   - err is reduced to its outermost *Error; anything else is server_error.
//     A body over its limit (*http.MaxBytesError in the chain, wrapped or
//     not) is the route's body-limit code: request_too_large unless
//     LimitBody said otherwise.
//   - status comes from the catalog; for statuses >= 500 the description is
//     the catalog's generic text and the cause is logged at error level,
//     other errors are logged at debug level.
//   - every text field is forced into the RFC 6749 Appendix A charset, in the
//     body, the redirect and WWW-Authenticate alike.
//   - a redirectable code with a Redirect goes to the client as a 302
//     (RFC 6749 §4.1.2.1) carrying only error, error_description,
//     error_uri, state (when the request had one) and iss; other codes
//     (429, 503, client and Bitcoin authentication) are answered directly.
//     A request whose handler set an HTML page (SetPage) and whose Accept
//     prefers HTML gets that page; everything else gets JSON.
//   - if the response was already started, Write logs and writes nothing.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	st := stateFrom(r.Context())
	e := classify(err, st)
	entry, known := errors.Lookup(e.Code)
	if !known {
		// A code outside the catalog is a bug in authd: answer as one.
		e.Err = errors.Join(e.Err, fmt.Errorf("code %q is not in the catalog", e.Code))
		e.Code = errors.ServerError
		entry, _ = errors.Lookup(errors.ServerError)
	}
	status := entry.Status

	reqID := requestIDFor(w, r, st)
	log := st.logger()
	if tw := tracker(w); tw != nil && tw.started {
		level := slog.LevelError
		if clientGone(r, err) {
			level = slog.LevelDebug
		}
		log.LogAttrs(r.Context(), level, "error after response started",
			slog.String("request_id", reqID), slog.String("code", string(e.Code)),
			slog.String("op", e.Op), slog.Any("err", err))
		return
	}

	desc := e.Description
	if desc == "" || status >= 500 {
		desc = entry.Description
	}
	desc = sanitizeText(desc)
	anchor := entry.Code
	if _, ok := errors.Lookup(e.DocCode); ok {
		anchor = e.DocCode
	}
	uri := sanitizeURI(st.uriBase(r) + "#" + string(anchor))

	// The redirect is decided before logging and counting, so both record
	// the status actually sent.
	var location string
	if e.Redirect != nil && entry.Redirectable {
		// An unparseable redirect_uri cannot have been validated: such an
		// error is answered directly rather than sending the user somewhere
		// odd.
		location, _ = redirectURL(e.Redirect, entry.Code, desc, uri)
	}
	sent := status
	if location != "" {
		sent = http.StatusFound
	}
	logError(r, log, e, err, reqID, sent)
	errorsTotal.WithLabelValues(string(e.Code), strconv.Itoa(sent)).Inc()

	h := w.Header()
	for _, k := range []string{"Content-Length", "Content-Encoding", "Content-Type", "ETag", "Last-Modified", "Content-Disposition", "Location"} {
		h.Del(k)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")

	if location != "" {
		h.Set("Location", location)
		w.WriteHeader(http.StatusFound)
		return
	}

	var retry int64
	if e.RetryAfter > 0 {
		retry = ceilSeconds(e.RetryAfter)
	} else if slices.Contains(entry.Headers, "Retry-After") {
		// The catalog promises Retry-After for this code (429, 503): a
		// handler that forgot to set it still sends the shortest wait.
		retry = 1
	}
	if retry > 0 {
		h.Set("Retry-After", strconv.FormatInt(retry, 10))
	}
	setChallenge(h, r, e, entry.Code, desc, uri)

	b := body{
		Error:         entry.Code,
		Description:   desc,
		URI:           uri,
		RetryAfter:    retry,
		ProviderError: sanitizeText(e.ProviderError),
		RequestID:     reqID,
	}
	if st != nil && st.page != nil && PrefersHTML(r) {
		var buf bytes.Buffer
		perr := st.page(&buf, PageData{
			Code: b.Error, Status: status, Title: entry.Title, Description: b.Description,
			URI: b.URI, RetryAfter: retry, ProviderError: b.ProviderError, RequestID: reqID,
		})
		if perr == nil {
			setHTMLHeaders(h)
			w.WriteHeader(status)
			w.Write(buf.Bytes())
			return
		}
		log.LogAttrs(r.Context(), slog.LevelError, "error page failed",
			slog.String("request_id", reqID), slog.Any("err", perr))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		// Every field is a sanitized string or an integer: unreachable.
		panic("errors: encoding error body: " + err.Error())
	}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// ceilSeconds returns d in whole seconds, rounded up, at least 1. It does
// not overflow for any positive duration.
func ceilSeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return max(s, 1)
}

// classify returns a copy of the outermost *Error in err's chain, or a new
// server_error wrapping err. A body over its limit (an *http.MaxBytesError
// anywhere in the chain) is the route's body-limit code even when a handler
// wrapped the read failure in another *Error (say invalid_request around
// ParseForm's error), unless that *Error already carries a 413 code.
func classify(err error, st *state) *errors.Error {
	var e *errors.Error
	found := errors.As(err, &e)
	if found && e.Code.Status() == http.StatusRequestEntityTooLarge {
		return cloneError(e)
	}
	if code, limit, ok := bodyLimit(err, st); ok {
		op := "httperr.LimitBody"
		if found && e.Op != "" {
			op = e.Op
		}
		return errors.E(code, tooLargeText(code, limit)).WithCause(op, err)
	}
	if found {
		return cloneError(e)
	}
	return errors.E(errors.ServerError, "").WithCause("", err)
}

func cloneError(e *errors.Error) *errors.Error {
	c := *e
	if c.Code == "" {
		c.Code = errors.ServerError
	}
	return &c
}

// bodyLimit reports whether err comes from reading a request body over its
// limit, and the code and limit that apply: LimitBody's code, else
// request_too_large.
func bodyLimit(err error, st *state) (errors.Code, int64, bool) {
	var le *bodyLimitError
	if errors.As(err, &le) {
		return le.code, le.mbe.Limit, true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code := errors.RequestTooLarge
		if st != nil && st.bodyCode != "" {
			code = st.bodyCode
		}
		return code, mbe.Limit, true
	}
	return "", 0, false
}

func tooLargeText(code errors.Code, limit int64) string {
	if code == errors.RequestTooLarge {
		return "Request body exceeds this endpoint's limit of " + strconv.FormatInt(limit, 10) + " bytes"
	}
	if e, ok := errors.Lookup(code); ok {
		return e.Description
	}
	return ""
}

func logError(r *http.Request, log *slog.Logger, e *errors.Error, err error, reqID string, status int) {
	level := slog.LevelDebug
	msg := "request failed"
	if status >= 500 {
		level = slog.LevelError
		msg = "request failed with server error"
	}
	if clientGone(r, err) {
		// The client went away; nothing is wrong with the server.
		level, msg = slog.LevelDebug, "request canceled by client"
	}
	if !log.Enabled(r.Context(), level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", reqID),
		slog.String("code", string(e.Code)),
		slog.Int("status", status),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
	}
	if e.Op != "" {
		attrs = append(attrs, slog.String("op", e.Op))
	}
	if e.Err != nil {
		attrs = append(attrs, slog.String("cause", e.Err.Error()))
	}
	if outer := (*errors.Error)(nil); errors.As(err, &outer) && error(outer) != err {
		// Context added around the *Error (fmt.Errorf("loading %s: %w", …))
		// is kept for the operator.
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	log.LogAttrs(r.Context(), level, msg, attrs...)
}

// clientGone reports whether err only says that the client went away
// (canceled the request or closed the connection): not the server's fault.
func clientGone(r *http.Request, err error) bool {
	return r.Context().Err() != nil && errors.Is(err, context.Canceled) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// redirectParams are the only parameters an error redirect adds (RFC 6749
// §4.1.2.1, RFC 9207); a registered redirect_uri's own parameters of these
// names are replaced.
var redirectParams = []string{"error", "error_description", "error_uri", "state", "iss"}

// redirectURL builds the error redirect of RFC 6749 §4.1.2.1 with the iss
// parameter of RFC 9207. The registered URI's own query is kept byte for
// byte (RFC 6749 §3.1.2), minus any parameter named like one of ours; the
// fragment is dropped. It reports false for a URI that does not parse.
func redirectURL(rd *errors.Redirect, code errors.Code, desc, uri string) (string, bool) {
	if rd.URI == "" {
		return "", false
	}
	if _, err := url.Parse(rd.URI); err != nil {
		return "", false
	}
	base, _, _ := strings.Cut(rd.URI, "#")
	base, query, _ := strings.Cut(base, "?")
	var parts []string
	if query != "" {
		for _, p := range strings.Split(query, "&") {
			k, _, _ := strings.Cut(p, "=")
			if dk, err := url.QueryUnescape(k); err == nil && slices.Contains(redirectParams, dk) {
				continue
			}
			parts = append(parts, p)
		}
	}
	add := func(k, v string) { parts = append(parts, k+"="+url.QueryEscape(v)) }
	add("error", string(code))
	add("error_description", desc)
	add("error_uri", uri)
	if rd.HasState {
		add("state", rd.State) // echoed exactly (RFC 6749 §4.1.2.1); the query encoding keeps any byte safe
	}
	if rd.Issuer != "" {
		add("iss", sanitizeURI(rd.Issuer))
	}
	return base + "?" + strings.Join(parts, "&"), true
}

// setChallenge sets WWW-Authenticate for the codes that need one (RFC 6750
// §3, RFC 7235 §4.1). Parameter values are sanitized, so they never contain
// a quote or backslash and quoting them is safe.
func setChallenge(h http.Header, r *http.Request, e *errors.Error, code errors.Code, desc, uri string) {
	const realm = `realm="` + Realm + `"`
	switch code {
	case errors.InvalidClient:
		if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "basic ") {
			h.Set("WWW-Authenticate", "Basic "+realm)
		}
	case errors.InvalidToken, errors.InsufficientScope:
		if code == errors.InvalidToken && r.Header.Get("Authorization") == "" {
			// No credentials at all: RFC 6750 §3.1 says no error code.
			h.Set("WWW-Authenticate", "Bearer "+realm)
			return
		}
		c := "Bearer " + realm + `, error="` + string(code) + `", error_description="` + desc + `", error_uri="` + uri + `"`
		if code == errors.InsufficientScope && e.Scope != "" {
			c += `, scope="` + sanitizeText(e.Scope) + `"`
		}
		h.Set("WWW-Authenticate", c)
	case errors.MissingAuthToken:
		prev := h.Values("WWW-Authenticate")
		others := make([]string, 0, len(prev))
		for _, v := range prev {
			if !strings.HasPrefix(v, "Bitcoin-Auth ") {
				others = append(others, v)
			}
		}
		h.Del("WWW-Authenticate")
		h.Add("WWW-Authenticate", "Bitcoin-Auth "+realm)
		for _, v := range others {
			h.Add("WWW-Authenticate", v)
		}
	}
}

// sanitizeText forces s into the charset of error and error_description
// (RFC 6749 Appendix A: %x20-21 / %x23-5B / %x5D-7E). A double quote becomes
// a single quote, a backslash a slash, anything else outside the set '?'.
func sanitizeText(s string) string {
	if validText(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, c := range s { // invalid UTF-8 yields one U+FFFD per bad byte
		switch {
		case c == '"':
			b.WriteByte('\'')
		case c == '\\':
			b.WriteByte('/')
		case c >= 0x20 && c <= 0x7e:
			b.WriteRune(c)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

func validText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// sanitizeURI forces s into the charset of error_uri (RFC 6749 Appendix A:
// %x21 / %x23-5B / %x5D-7E) by percent-encoding every other byte, which
// keeps a URI a URI.
func sanitizeURI(s string) string {
	ok := true
	for i := 0; i < len(s); i++ {
		if !uriByte(s[i]) {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if uriByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

func uriByte(c byte) bool { return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\' }
