package httperr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/charset"
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
// writes an error response, in these steps (one function each, below):
//
//  1. classify: err is reduced to its outermost *errors.Error; anything
//     else is server_error. A body over its limit is the route's
//     body-limit code (request_too_large unless LimitBody said otherwise).
//  2. lookup: the code's catalog entry; a code outside the catalog is
//     server_error.
//  3. decide: a redirectable code with a Redirect goes to the client as a
//     302 (RFC 6749 §4.1.2.1) carrying only error, error_description,
//     error_uri, state (when the request had one) and iss; every other
//     error (429, 503, client and Bitcoin authentication) is answered
//     directly with the catalog's status. For statuses >= 500 the
//     description is the catalog's generic text. Every text field is
//     forced into the RFC 6749 Appendix A charset.
//  4. record: logged (cause and op at error level for statuses >= 500,
//     debug level otherwise) and counted through Config.Count, with the
//     status actually sent.
//  5. setHeaders: no-store, nosniff, Retry-After; headers a handler set
//     for a success it never sent are dropped.
//  6. setChallenge: WWW-Authenticate; every 401 carries one.
//  7. writeBody: the HTML page chosen for this error (WithPage) or this
//     route (HTML) when the client prefers HTML, else the JSON body.
//
// If the response was already started, Write logs and writes nothing.
func Write(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		return
	}
	st := stateFrom(r.Context())
	cfg := st.config()
	reqID := requestIDFor(w, r, st)
	e := classify(err, r)
	entry := lookup(e)
	if Started(w) {
		logAfterStart(r, cfg.logger(), e, err, reqID)
		return
	}
	resp := decide(e, entry, cfg.uriBase(r), reqID)
	record(r, cfg, e, err, resp)
	h := w.Header()
	setHeaders(h, resp)
	if resp.location != "" {
		w.WriteHeader(http.StatusFound)
		return
	}
	setChallenge(h, r, resp)
	writeBody(w, r, cfg.logger(), resp, pageFor(w, err))
}

// response is what Write sends for one error, decided once by decide and
// then logged, counted and written.
type response struct {
	entry  errors.Entry // the catalog entry; entry.Code is the "error" sent
	status int          // the status sent: entry.Status, or 302 for a redirect
	// location is the redirect target; empty for a direct answer.
	location string
	// desc and uri are error_description and error_uri, in the RFC 6749
	// Appendix A charset.
	desc, uri string
	// retry is Retry-After in whole seconds; 0 for none.
	retry         int64
	providerError string // sanitized
	scope         string // sanitized; insufficient_scope only
	requestID     string
}

// classify returns a copy of the outermost *errors.Error in err's chain,
// or a new server_error wrapping err. A body over its limit (an
// *http.MaxBytesError anywhere in the chain) is the route's body-limit
// code even when a handler wrapped the read failure in another *Error
// (say invalid_request around ParseForm's error), unless that *Error
// already carries a 413 code.
func classify(err error, r *http.Request) *errors.Error {
	var e *errors.Error
	found := errors.As(err, &e)
	if found && e.Code.Status() == http.StatusRequestEntityTooLarge {
		return cloneError(e)
	}
	if code, limit, ok := bodyLimit(err, r); ok {
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
// limit, and the code and limit that apply. The code travels with the
// body: a read through LimitBody's body fails with its code; a limit
// error made by someone else (a verifier with a limit of its own, say) on
// a request whose body is still LimitBody's takes that body's code; any
// other is request_too_large.
func bodyLimit(err error, r *http.Request) (errors.Code, int64, bool) {
	var le *bodyLimitError
	if errors.As(err, &le) {
		return le.code, le.mbe.Limit, true
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		code := errors.RequestTooLarge
		if lb, ok := r.Body.(*limitedBody); ok {
			code = lb.code
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

// lookup returns the catalog entry of e's code. A code outside the
// catalog is a bug in authd: e becomes server_error, with the bug added to
// its cause for the log.
func lookup(e *errors.Error) errors.Entry {
	entry, ok := errors.Lookup(e.Code)
	if ok {
		return entry
	}
	e.Err = errors.Join(e.Err, fmt.Errorf("code %q is not in the catalog", e.Code))
	e.Code = errors.ServerError
	entry, _ = errors.Lookup(errors.ServerError)
	return entry
}

// decide settles what is sent for e: a redirect to the client when e's
// code may be redirected and e carries a Redirect whose URI parses (an
// unparseable one cannot have been validated, so it is answered directly
// rather than sending the user somewhere odd), else a direct answer with
// the catalog's status. uriBase is the error_uri base.
func decide(e *errors.Error, entry errors.Entry, uriBase, reqID string) response {
	resp := response{entry: entry, status: entry.Status, requestID: reqID}
	resp.desc = e.Description
	if resp.desc == "" || entry.Status >= 500 {
		resp.desc = entry.Description
	}
	resp.desc = charset.SanitizeText(resp.desc)
	anchor := entry.Code
	if _, ok := errors.Lookup(e.DocCode); ok {
		anchor = e.DocCode
	}
	resp.uri = charset.SanitizeURI(uriBase + "#" + string(anchor))
	if e.Redirect != nil && entry.Redirectable {
		if loc, ok := redirectURL(e.Redirect, entry.Code, resp.desc, resp.uri); ok {
			resp.location, resp.status = loc, http.StatusFound
			return resp
		}
	}
	if e.RetryAfter > 0 {
		resp.retry = DelaySeconds(e.RetryAfter)
	} else if slices.Contains(entry.Headers, "Retry-After") {
		// The catalog promises Retry-After for this code (429, 503): a
		// handler that forgot to set it still sends the shortest wait.
		resp.retry = 1
	}
	resp.providerError = charset.SanitizeText(e.ProviderError)
	if entry.Code == errors.InsufficientScope {
		resp.scope = charset.SanitizeText(e.Scope)
	}
	return resp
}

// DelaySeconds returns d in whole seconds, rounded up, so that a client
// told to wait never comes back early: the delay-seconds of Retry-After
// (RFC 9110 §10.2.3), retry_after, and the rate-limit fields. It is 0 for
// d <= 0 and does not overflow.
func DelaySeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// record logs the error and counts it (Config.Count) with the status
// resp sends.
func record(r *http.Request, cfg *Config, e *errors.Error, err error, resp response) {
	logError(r, cfg.logger(), e, err, resp.requestID, resp.status)
	if cfg.Count != nil {
		cfg.Count(resp.entry.Code, resp.status)
	}
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
	err = withoutPage(err)
	if outer := (*errors.Error)(nil); errors.As(err, &outer) && error(outer) != err {
		// Context added around the *Error (fmt.Errorf("loading %s: %w", …))
		// is kept for the operator.
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	log.LogAttrs(r.Context(), level, msg, attrs...)
}

// logAfterStart logs an error that came after the response started, when
// nothing more can be sent.
func logAfterStart(r *http.Request, log *slog.Logger, e *errors.Error, err error, reqID string) {
	level := slog.LevelError
	if clientGone(r, err) {
		level = slog.LevelDebug
	}
	log.LogAttrs(r.Context(), level, "error after response started",
		slog.String("request_id", reqID), slog.String("code", string(e.Code)),
		slog.String("op", e.Op), slog.Any("err", err))
}

// clientGone reports whether err only says that the client went away
// (canceled the request or closed the connection): not the server's fault.
func clientGone(r *http.Request, err error) bool {
	return r.Context().Err() != nil && errors.Is(err, context.Canceled) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// staleHeaders are headers a handler may have set for a success it never
// sent; none of them belongs on an error response.
var staleHeaders = []string{"Content-Length", "Content-Encoding", "Content-Type", "ETag", "Last-Modified", "Content-Disposition", "Location"}

// setHeaders sets the headers every error response carries, and Location
// for a redirect or Retry-After when waiting helps.
func setHeaders(h http.Header, resp response) {
	for _, k := range staleHeaders {
		h.Del(k)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if resp.location != "" {
		h.Set("Location", resp.location)
		return
	}
	if resp.retry > 0 {
		h.Set("Retry-After", strconv.FormatInt(resp.retry, 10))
	}
}

// writeBody writes the status and the body of a direct answer: page's
// HTML when there is a page and the client prefers HTML, else JSON. A page
// that fails to render is logged and replaced by the JSON body.
func writeBody(w http.ResponseWriter, r *http.Request, log *slog.Logger, resp response, page Page) {
	h := w.Header()
	if page != nil && PrefersHTML(r) {
		var buf bytes.Buffer
		err := page(&buf, PageData{
			Code: resp.entry.Code, Status: resp.status, Title: resp.entry.Title, Description: resp.desc,
			URI: resp.uri, RetryAfter: resp.retry, ProviderError: resp.providerError, RequestID: resp.requestID,
		})
		if err == nil {
			setHTMLHeaders(h)
			w.WriteHeader(resp.status)
			w.Write(buf.Bytes())
			return
		}
		log.LogAttrs(r.Context(), slog.LevelError, "error page failed",
			slog.String("request_id", resp.requestID), slog.Any("err", err))
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(body{
		Error:         resp.entry.Code,
		Description:   resp.desc,
		URI:           resp.uri,
		RetryAfter:    resp.retry,
		ProviderError: resp.providerError,
		RequestID:     resp.requestID,
	}); err != nil {
		// Every field is a sanitized string or an integer: unreachable.
		panic("httperr: encoding error body: " + err.Error())
	}
	h.Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(resp.status)
	w.Write(buf.Bytes())
}

// redirectParams are the only parameters an error redirect adds
// (RFC 6749 §4.1.2.1, RFC 9207); a registered redirect_uri's own parameters
// of these names are replaced.
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
		add("iss", charset.SanitizeURI(rd.Issuer))
	}
	return base + "?" + strings.Join(parts, "&"), true
}
