package httperr

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/charset"
)

// Config is what Write needs to know about the server it answers for.
type Config struct {
	// URIBase is the error_uri base; the code is appended as a fragment.
	// Empty means "<scheme>://<host>/docs/errors" of the request.
	URIBase string
	// Logger receives error logs; nil means slog.Default().
	Logger *slog.Logger
	// Count, when set, is called once for every error response Write
	// sends, with the code sent (always a catalog code) and the status
	// sent (the catalog's, or 302 for an authorization redirect): the
	// server counts errors through it (authd_errors_total{code,status}).
	Count func(code errors.Code, status int)
}

// noConfig is the Config of a Write outside Middleware.
var noConfig = &Config{}

func (c *Config) logger() *slog.Logger {
	if c.Logger != nil {
		return c.Logger
	}
	return slog.Default()
}

func (c *Config) uriBase(r *http.Request) string {
	if c.URIBase != "" {
		return c.URIBase
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/docs/errors"
}

// state is what Middleware keeps in a request's context: the server's
// Config and the request id, both fixed for the request's life.
type state struct {
	cfg       *Config
	requestID string
}

type stateKey struct{}

func stateFrom(ctx context.Context) *state {
	st, _ := ctx.Value(stateKey{}).(*state)
	return st
}

// config returns the Config Middleware recorded, or an empty one.
func (st *state) config() *Config {
	if st == nil {
		return noConfig
	}
	return st.cfg
}

// Middleware wraps the whole server. For every request it keeps or makes the
// request id (X-Request-Id on every response), records cfg for Write,
// tracks whether the response has started, and turns a panic into
// server_error.
func Middleware(cfg Config, next http.Handler) http.Handler {
	c := &cfg
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := &state{cfg: c, requestID: incomingRequestID(r.Header.Get("X-Request-Id"))}
		if st.requestID == "" {
			st.requestID = newRequestID()
		}
		w.Header().Set("X-Request-Id", st.requestID)
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		tw := &trackingWriter{ResponseWriter: w}
		defer recoverInto(tw, r)
		next.ServeHTTP(tw, r)
	})
}

// RequestID returns the request id Middleware assigned, or "".
func RequestID(ctx context.Context) string {
	if st := stateFrom(ctx); st != nil {
		return st.requestID
	}
	return ""
}

// incomingRequestID returns id if it is 1-64 characters of [A-Za-z0-9._-].
func incomingRequestID(id string) string {
	if len(id) == 0 || len(id) > 64 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return ""
		}
	}
	return id
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// requestIDFor returns the request's id, making one (and setting the
// header) when Write runs outside Middleware.
func requestIDFor(w http.ResponseWriter, r *http.Request, st *state) string {
	if st != nil {
		return st.requestID
	}
	id := w.Header().Get("X-Request-Id")
	if id == "" {
		id = incomingRequestID(r.Header.Get("X-Request-Id"))
	}
	if id == "" {
		id = newRequestID()
	}
	w.Header().Set("X-Request-Id", id)
	return id
}

// HandlerFunc is an HTTP handler that returns its error instead of writing
// it. ServeHTTP sends a non-nil error to Write, and turns a panic into
// server_error.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// ServeHTTP calls f and hands a non-nil error to Write.
func (f HandlerFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tracker(w) == nil {
		w = &trackingWriter{ResponseWriter: w}
	}
	defer recoverInto(w, r)
	if err := f(w, r); err != nil {
		Write(w, r, err)
	}
}

// recoverInto turns a panic into a server_error response. It re-panics
// http.ErrAbortHandler, which net/http uses to abort a response on purpose.
func recoverInto(w http.ResponseWriter, r *http.Request) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	buf := make([]byte, 8<<10)
	buf = buf[:runtime.Stack(buf, false)]
	Write(w, r, errors.E(errors.ServerError, "").WithCause("panic", fmt.Errorf("panic: %v\n%s", p, buf)))
}

// trackingWriter records whether the response has started, so Write never
// writes a second response over a first.
type trackingWriter struct {
	http.ResponseWriter
	started bool
}

func (tw *trackingWriter) WriteHeader(code int) {
	if code >= 200 || code == http.StatusSwitchingProtocols {
		tw.started = true
	}
	tw.ResponseWriter.WriteHeader(code)
}

func (tw *trackingWriter) Write(b []byte) (int, error) {
	tw.started = true
	return tw.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (tw *trackingWriter) Flush() {
	tw.started = true
	http.NewResponseController(tw.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (tw *trackingWriter) Unwrap() http.ResponseWriter { return tw.ResponseWriter }

// tracker finds the trackingWriter in w's Unwrap chain.
func tracker(w http.ResponseWriter) *trackingWriter {
	for w != nil {
		if tw, ok := w.(*trackingWriter); ok {
			return tw
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// Started reports whether the response on w has started (a status or body
// byte was written through it).
func Started(w http.ResponseWriter) bool {
	tw := tracker(w)
	return tw != nil && tw.started
}

// Routes serves mux, sending its own "404 page not found" and "405 method
// not allowed" answers through Write as not_found and method_not_allowed
// (with Allow), instead of the plain text http.ServeMux writes.
func Routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: make(http.Header)}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusNotFound:
			Write(w, r, errors.E(errors.NotFound, "No endpoint at "+charset.SanitizeText(r.URL.Path)))
		case http.StatusMethodNotAllowed:
			if allow := rec.header.Get("Allow"); allow != "" {
				w.Header().Set("Allow", allow)
			}
			Write(w, r, errors.E(errors.MethodNotAllowed, "Method "+charset.SanitizeText(r.Method)+" is not allowed here"))
		default:
			// A redirect to the canonical path, or anything else the mux
			// answers by itself below 400: pass it on unchanged.
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			if rec.status >= 400 || rec.status < 100 {
				Write(w, r, errors.E(errors.NotFound, "No endpoint at "+charset.SanitizeText(r.URL.Path)))
				return
			}
			w.WriteHeader(rec.status)
			io.WriteString(w, rec.body.String())
		}
	})
}

type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (rr *recorder) Header() http.Header { return rr.header }
func (rr *recorder) WriteHeader(code int) {
	if rr.status == 0 {
		rr.status = code
	}
}
func (rr *recorder) Write(b []byte) (int, error) {
	if rr.status == 0 {
		rr.status = http.StatusOK
	}
	return rr.body.Write(b)
}

// LimitBody bounds the request body of next to limit bytes. A body over
// the limit fails the handler's read, and Write reports that failure as
// code (for example request_too_large, or backup_too_large on backup
// routes), also when the handler wrapped the read error in an *Error of
// its own. A declared Content-Length over the limit fails the first read
// before a byte is taken from the connection; a body that turns out
// longer (chunked, say) fails after at most limit+1 bytes.
//
// LimitBody never answers by itself, so middleware inside it, such as a
// rate limiter that counts every request, still sees the request.
func LimitBody(limit int64, code errors.Code, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			// net/http closes the connection after the response, since
			// the body was not read.
			r.Body = &limitedBody{ReadCloser: io.NopCloser(tooLong{limit}), code: code}
			next.ServeHTTP(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			// http.MaxBytesReader tells the server to close the connection
			// once the limit is hit, but only when given net/http's own
			// writer, not a wrapper around it.
			r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(innermost(w), r.Body, limit), code: code}
		}
		next.ServeHTTP(w, r)
	})
}

// tooLong is the body of a request that declared a Content-Length over
// limit: its first read fails as http.MaxBytesReader's would.
type tooLong struct{ limit int64 }

func (t tooLong) Read([]byte) (int, error) { return 0, &http.MaxBytesError{Limit: t.limit} }

// limitedBody is a body under LimitBody: its read error over the limit
// carries the route's code, so Write answers with it even outside
// Middleware.
type limitedBody struct {
	io.ReadCloser
	code errors.Code
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	var mbe *http.MaxBytesError
	if err != nil && errors.As(err, &mbe) {
		err = &bodyLimitError{code: b.code, mbe: mbe}
	}
	return n, err
}

// bodyLimitError is a read past LimitBody's limit. It unwraps to the
// *http.MaxBytesError, so callers that look for that still find it.
type bodyLimitError struct {
	code errors.Code
	mbe  *http.MaxBytesError
}

func (e *bodyLimitError) Error() string { return e.mbe.Error() }
func (e *bodyLimitError) Unwrap() error { return e.mbe }

// innermost follows w's Unwrap chain to the writer net/http made.
func innermost(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}
