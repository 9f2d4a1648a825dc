package httperr_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
)

// TestClassify checks which code, status and description an error becomes,
// and that nothing of a cause reaches the client.
func TestClassify(t *testing.T) {
	secret := errors.New("pq: password authentication failed for user authd; SECRET")
	inner := errors.E(errors.InvalidGrant, "The authorization code was already used").WithCause("oauth.Token", secret)
	tests := []struct {
		name     string
		err      error
		code     errors.Code
		status   int
		desc     string // "" means the catalog's text for code
		logLevel string
	}{
		{name: "E", err: errors.E(errors.InvalidRequest, "Missing required parameter: client_id"), code: errors.InvalidRequest, status: 400, desc: "Missing required parameter: client_id", logLevel: "DEBUG"},
		{name: "E without description", err: errors.E(errors.BackupNotFound, ""), code: errors.BackupNotFound, status: 404, logLevel: "DEBUG"},
		{name: "Wrap", err: inner, code: errors.InvalidGrant, status: 400, desc: "The authorization code was already used", logLevel: "DEBUG"},
		{name: "%w around *Error", err: fmt.Errorf("redeeming code: %w", inner), code: errors.InvalidGrant, status: 400, desc: "The authorization code was already used", logLevel: "DEBUG"},
		{name: "two %w around *Error", err: fmt.Errorf("a: %w", fmt.Errorf("b: %w", inner)), code: errors.InvalidGrant, status: 400, desc: "The authorization code was already used", logLevel: "DEBUG"},
		{name: "Join keeps the first *Error", err: errors.Join(secret, inner), code: errors.InvalidGrant, status: 400, desc: "The authorization code was already used", logLevel: "DEBUG"},
		{name: "outermost *Error wins", err: errors.E(errors.AccessDenied, "Denied").WithCause("oauth.Authorize", inner), code: errors.AccessDenied, status: 403, desc: "Denied", logLevel: "DEBUG"},
		{name: "plain error", err: secret, code: errors.ServerError, status: 500, logLevel: "ERROR"},
		{name: "wrapped plain error", err: fmt.Errorf("loading client: %w", secret), code: errors.ServerError, status: 500, logLevel: "ERROR"},
		{name: "5xx custom description", err: errors.E(errors.ServerError, "Query SELECT * FROM clients failed: SECRET").WithCause("store.Get", secret), code: errors.ServerError, status: 500, logLevel: "ERROR"},
		{name: "503 custom description", err: errors.E(errors.TemporarilyUnavailable, "redis 10.0.0.5:6379 down SECRET").WithCause("", secret), code: errors.TemporarilyUnavailable, status: 503, logLevel: "ERROR"},
		{name: "Unavailable", err: errors.E(errors.TemporarilyUnavailable, "").WithCause("store.Check", secret), code: errors.TemporarilyUnavailable, status: 503, logLevel: "ERROR"},
		{name: "empty code", err: &errors.Error{Description: "SECRET", Err: secret}, code: errors.ServerError, status: 500, logLevel: "ERROR"},
		{name: "code outside the catalog", err: errors.E("invalid_everything", "SECRET"), code: errors.ServerError, status: 500, logLevel: "ERROR"},
		{name: "client went away", err: fmt.Errorf("reading body: %w", context.Canceled), code: errors.ServerError, status: 500, logLevel: "DEBUG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.desc == "" {
				e, _ := errors.Lookup(tt.code)
				tt.desc = e.Description
			}
			if got, want := errors.CodeOf(tt.err), tt.code; got != want && tt.name != "code outside the catalog" {
				t.Errorf("CodeOf = %q, want %q", got, want)
			}
			before := errorsCount(t, tt.code, tt.status)
			h, l := server(func(w http.ResponseWriter, r *http.Request) error { return tt.err })
			ctx := context.Background()
			if tt.name == "client went away" {
				c, cancel := context.WithCancel(ctx)
				cancel()
				ctx = c
			}
			r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/token", nil)
			r.Header.Set("X-Request-Id", "req-classify")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.status {
				t.Errorf("status = %d, want %d", rec.Code, tt.status)
			}
			b := decodeBody(t, rec)
			if b.Error != string(tt.code) || b.Description != tt.desc {
				t.Errorf("body = %+v, want %s %q", b, tt.code, tt.desc)
			}
			if strings.Contains(rec.Body.String(), "SECRET") || strings.Contains(rec.Body.String(), "pq:") {
				t.Errorf("the cause reached the client: %s", rec.Body)
			}
			rs := l.only(t)
			if rs["level"] != tt.logLevel || rs["request_id"] != "req-classify" || rs["code"] != string(tt.code) || rs["status"] != float64(tt.status) {
				t.Errorf("log = %v, want level %s with request_id, code and status", rs, tt.logLevel)
			}
			if tt.status >= 500 && tt.logLevel == "ERROR" {
				if cause, _ := rs["cause"].(string); !strings.Contains(cause, "SECRET") && !strings.Contains(cause, "catalog") {
					t.Errorf("log cause = %q, want the cause", cause)
				}
			}
			if after := errorsCount(t, tt.code, tt.status); after != before+1 {
				t.Errorf("authd_errors_total{code=%q,status=\"%d\"}: %v -> %v, want +1", tt.code, tt.status, before, after)
			}
		})
	}
}

// TestLogContext checks that context added around an *Error with %w reaches
// the log, and that Op is logged.
func TestLogContext(t *testing.T) {
	h, l := server(func(w http.ResponseWriter, r *http.Request) error {
		return fmt.Errorf("loading client c1: %w", errors.E(errors.InvalidClient, "").WithCause("oauth.Token", errors.New("sql: no rows")))
	})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/token", nil))
	rec := l.only(t)
	if rec["op"] != "oauth.Token" || rec["cause"] != "sql: no rows" || !strings.Contains(fmt.Sprint(rec["error"]), "loading client c1") {
		t.Errorf("log = %v, want op, cause and the outer context", rec)
	}
}

// TestWriteOutsideMiddleware checks that Write works on a bare writer: a
// request id is still made, the base comes from the request.
func TestWriteOutsideMiddleware(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "http://authd.test/x", nil)
	rec := httptest.NewRecorder()
	httperr.Write(rec, r, errors.E(errors.NotFound, "No endpoint at /x"))
	b := decodeBody(t, rec)
	if b.URI != "http://authd.test/docs/errors#not_found" || b.RequestID == "" || b.RequestID != rec.Header().Get("X-Request-Id") {
		t.Errorf("body = %+v, headers %v", b, rec.Header())
	}
	rec = httptest.NewRecorder()
	httperr.Write(rec, r, nil)
	if rec.Code != 200 || rec.Body.Len() != 0 || len(rec.Header()) != 0 {
		t.Errorf("Write(nil) wrote %d %q %v", rec.Code, rec.Body, rec.Header())
	}
}

// TestAfterWrite checks that a handler that fails after it started its
// response gets no second write, and that the failure is logged.
func TestAfterWrite(t *testing.T) {
	tests := []struct {
		name     string
		start    func(w http.ResponseWriter)
		wantCode int
		wantBody string
	}{
		{name: "body written", start: func(w http.ResponseWriter) { io.WriteString(w, `{"partial":`) }, wantCode: 200, wantBody: `{"partial":`},
		{name: "status written", start: func(w http.ResponseWriter) { w.WriteHeader(http.StatusCreated) }, wantCode: 201},
		{name: "flushed", start: func(w http.ResponseWriter) { http.NewResponseController(w).Flush() }, wantCode: 200},
	}
	for _, tt := range tests {
		for _, withMiddleware := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/middleware=%v", tt.name, withMiddleware), func(t *testing.T) {
				l := &logs{}
				var h http.Handler = httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
					tt.start(w)
					return errors.E(errors.ServerError, "").WithCause("backup.Get", errors.New("write: broken pipe"))
				})
				if withMiddleware {
					h = httperr.Middleware(httperr.Config{URIBase: testBase, Logger: l.logger()}, h)
				} else {
					old := slog.Default()
					slog.SetDefault(l.logger())
					defer slog.SetDefault(old)
				}
				r := httptest.NewRequest(http.MethodGet, "/backup", nil)
				r.Header.Set("X-Request-Id", "req-after")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != tt.wantCode || rec.Body.String() != tt.wantBody {
					t.Errorf("response = %d %q, want %d %q", rec.Code, rec.Body, tt.wantCode, tt.wantBody)
				}
				if ct := rec.Header().Get("Content-Type"); strings.Contains(ct, "json") && tt.wantBody == "" {
					t.Errorf("error headers written after the response started: %v", rec.Header())
				}
				rs := l.only(t)
				if rs["level"] != "ERROR" || rs["msg"] != "error after response started" || rs["request_id"] != "req-after" || rs["code"] != "server_error" {
					t.Errorf("log = %v", rs)
				}
			})
		}
	}

	// A 1xx informational response does not start the response.
	h, _ := server(func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Link", "</style.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		return errors.E(errors.InvalidRequest, "x")
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "invalid_request") {
		t.Errorf("after 103, got %d %s, want 400 invalid_request", res.StatusCode, body)
	}

	// Started reports what Write relies on.
	httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		if httperr.Started(w) {
			t.Error("Started before any write")
		}
		w.Write(nil)
		if !httperr.Started(w) {
			t.Error("not Started after a write")
		}
		return nil
	}).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
}

// TestPanic checks that a panic becomes server_error through HandlerFunc
// and through Middleware, and that http.ErrAbortHandler is re-panicked.
func TestPanic(t *testing.T) {
	panicker := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { panic(v) }
	}
	tests := []struct {
		name string
		h    func(l *logs, v any) http.Handler
	}{
		{name: "HandlerFunc", h: func(l *logs, v any) http.Handler {
			return httperr.Middleware(httperr.Config{URIBase: testBase, Logger: l.logger(), Count: counted.add},
				httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { panic(v) }))
		}},
		{name: "HandlerFunc alone", h: func(l *logs, v any) http.Handler {
			return httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { panic(v) })
		}},
		{name: "Middleware around a plain handler", h: func(l *logs, v any) http.Handler {
			return httperr.Middleware(httperr.Config{URIBase: testBase, Logger: l.logger(), Count: counted.add}, panicker(v))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := &logs{}
			if tt.name == "HandlerFunc alone" {
				old := slog.Default()
				slog.SetDefault(l.logger())
				defer slog.SetDefault(old)
			}
			before := errorsCount(t, errors.ServerError, 500)
			r := httptest.NewRequest(http.MethodGet, "/boom", nil)
			r.Header.Set("X-Request-Id", "req-panic")
			rec := httptest.NewRecorder()
			tt.h(l, "SECRET nil map write").ServeHTTP(rec, r)
			if rec.Code != 500 {
				t.Fatalf("status = %d, want 500", rec.Code)
			}
			b := decodeBody(t, rec)
			if b.Error != "server_error" || strings.Contains(rec.Body.String(), "SECRET") || strings.Contains(rec.Body.String(), "goroutine") {
				t.Errorf("body = %s", rec.Body)
			}
			rs := l.only(t)
			if cause, _ := rs["cause"].(string); rs["level"] != "ERROR" || rs["request_id"] != "req-panic" || !strings.Contains(cause, "SECRET nil map write") || !strings.Contains(cause, "goroutine") {
				t.Errorf("log = %v, want the panic value and stack at error level", rs)
			}
			// Outside Middleware there is no Config to count through.
			want := before + 1
			if tt.name == "HandlerFunc alone" {
				want = before
			}
			if after := errorsCount(t, errors.ServerError, 500); after != want {
				t.Errorf("counted server_error/500: %v -> %v, want %v", before, after, want)
			}

			// http.ErrAbortHandler goes on up to net/http.
			got := func() (p any) {
				defer func() { p = recover() }()
				tt.h(l, http.ErrAbortHandler).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
				return nil
			}()
			if got != http.ErrAbortHandler {
				t.Errorf("recovered %v, want http.ErrAbortHandler re-panicked", got)
			}
		})
	}

	// A panic after the response started writes nothing more.
	l := &logs{}
	h := httperr.Middleware(httperr.Config{Logger: l.logger()}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok so far")
		panic("late")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 200 || rec.Body.String() != "ok so far" {
		t.Errorf("response = %d %q, want the partial response untouched", rec.Code, rec.Body)
	}
	if rs := l.only(t); rs["msg"] != "error after response started" {
		t.Errorf("log = %v", rs)
	}
}

// TestPanicOnServer runs a panicking handler on a real server: the client
// gets server_error JSON and the connection stays usable.
func TestPanicOnServer(t *testing.T) {
	h, _ := server(func(w http.ResponseWriter, r *http.Request) error {
		panic("boom")
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	for range 2 {
		res, err := srv.Client().Get(srv.URL + "/boom")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 500 || !strings.Contains(string(body), `"error":"server_error"`) {
			t.Errorf("got %d %s", res.StatusCode, body)
		}
	}
}

// TestRoutes checks that unknown routes and wrong methods go through Write,
// and that the mux's own redirects pass through.
func TestRoutes(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /docs/errors", httperr.HandlerFunc(httperr.Docs))
	mux.Handle("POST /token", httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return errors.E(errors.UnsupportedGrantType, "Grant type 'password' is not supported")
	}))
	mux.Handle("GET /dir/", httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		io.WriteString(w, "dir")
		return nil
	}))
	l := &logs{}
	h := httperr.Middleware(httperr.Config{URIBase: testBase, Logger: l.logger()}, httperr.Routes(mux))

	tests := []struct {
		method, target string
		status         int
		code           string
		allow          string
		location       string
		body           string
	}{
		{method: "GET", target: "/nope", status: 404, code: "not_found"},
		{method: "POST", target: "/nope?x=1", status: 404, code: "not_found"},
		{method: "GET", target: "/token", status: 405, code: "method_not_allowed", allow: "POST"},
		{method: "DELETE", target: "/docs/errors", status: 405, code: "method_not_allowed", allow: "GET, HEAD"},
		{method: "POST", target: "/token", status: 400, code: "unsupported_grant_type"},
		{method: "GET", target: "/dir/x", status: 200, body: "dir"},
		{method: "GET", target: "/dir", status: http.StatusTemporaryRedirect, location: "/dir/"},
		{method: "GET", target: "/a/../dir/x", status: http.StatusTemporaryRedirect, location: "/dir/x"},
		{method: "GET", target: "/a/../nope", status: http.StatusTemporaryRedirect, location: "/nope"},
		{method: "POST", target: "//token", status: http.StatusTemporaryRedirect, location: "/token"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "http://authd.test"+tt.target, nil)
			r.Header.Set("Accept", jsonAccept)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.status {
				t.Fatalf("status = %d, want %d\n%s", rec.Code, tt.status, dump(rec))
			}
			if got := rec.Header().Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			if got := rec.Header().Get("Location"); got != tt.location {
				t.Errorf("Location = %q, want %q", got, tt.location)
			}
			if rec.Header().Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if tt.code == "" {
				if tt.body != "" && rec.Body.String() != tt.body {
					t.Errorf("body = %q, want %q", rec.Body, tt.body)
				}
				return
			}
			b := decodeBody(t, rec)
			if b.Error != tt.code || b.URI != testBase+"#"+tt.code || b.RequestID != rec.Header().Get("X-Request-Id") {
				t.Errorf("body = %+v", b)
			}
		})
	}

	// HEAD of an unknown route: status and headers, no body.
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodHead, srv.URL+"/nope", nil)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 || res.Header.Get("Content-Type") != "application/json;charset=UTF-8" {
		t.Errorf("HEAD /nope = %d %v", res.StatusCode, res.Header)
	}
}

// TestBodyLimit checks LimitBody and *http.MaxBytesError: a declared
// Content-Length over the limit is refused before reading, a longer chunked
// body after at most limit+1 bytes, with the route's code, even when the
// handler wrapped the read error or ran without Middleware.
func TestBodyLimit(t *testing.T) {
	const limit = 1024
	readAll := func(w http.ResponseWriter, r *http.Request) error {
		if _, err := io.ReadAll(r.Body); err != nil {
			return err
		}
		return nil
	}
	parseForm := func(w http.ResponseWriter, r *http.Request) error {
		if err := r.ParseForm(); err != nil {
			return errors.E(errors.InvalidRequest, "The request body is not a valid form").WithCause("oauth.Token", err)
		}
		return nil
	}
	tests := []struct {
		name       string
		code       errors.Code // LimitBody's code; "" for a bare MaxBytesReader
		handler    httperr.HandlerFunc
		size       int
		chunked    bool
		middleware bool
		want       errors.Code
		wantStatus int
	}{
		{name: "under the limit", code: errors.RequestTooLarge, handler: readAll, size: limit, middleware: true, wantStatus: 200},
		{name: "declared length over", code: errors.RequestTooLarge, handler: readAll, size: limit + 1, middleware: true, want: errors.RequestTooLarge, wantStatus: 413},
		{name: "chunked over", code: errors.RequestTooLarge, handler: readAll, size: 10 * limit, chunked: true, middleware: true, want: errors.RequestTooLarge, wantStatus: 413},
		{name: "chunked exactly at the limit", code: errors.RequestTooLarge, handler: readAll, size: limit, chunked: true, middleware: true, wantStatus: 200},
		{name: "backup code", code: errors.BackupTooLarge, handler: readAll, size: 10 * limit, chunked: true, middleware: true, want: errors.BackupTooLarge, wantStatus: 413},
		{name: "backup code, declared", code: errors.BackupTooLarge, handler: readAll, size: 10 * limit, middleware: true, want: errors.BackupTooLarge, wantStatus: 413},
		{name: "backup code without Middleware", code: errors.BackupTooLarge, handler: readAll, size: 10 * limit, chunked: true, want: errors.BackupTooLarge, wantStatus: 413},
		{name: "ParseForm error wrapped as invalid_request", code: errors.RequestTooLarge, handler: parseForm, size: 10 * limit, chunked: true, middleware: true, want: errors.RequestTooLarge, wantStatus: 413},
		{name: "ParseForm error wrapped, backup code, no Middleware", code: errors.BackupTooLarge, handler: parseForm, size: 10 * limit, chunked: true, want: errors.BackupTooLarge, wantStatus: 413},
		{name: "bare MaxBytesReader", handler: func(w http.ResponseWriter, r *http.Request) error {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			return readAll(w, r)
		}, size: 10 * limit, chunked: true, middleware: true, want: errors.RequestTooLarge, wantStatus: 413},
		{name: "bare MaxBytesReader wrapped in server_error", handler: func(w http.ResponseWriter, r *http.Request) error {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			if _, err := io.ReadAll(r.Body); err != nil {
				return errors.E(errors.ServerError, "").WithCause("x.Y", err)
			}
			return nil
		}, size: 10 * limit, chunked: true, middleware: true, want: errors.RequestTooLarge, wantStatus: 413},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h http.Handler = tt.handler
			if tt.code != "" {
				h = httperr.LimitBody(limit, tt.code, h)
			}
			if tt.middleware {
				h = httperr.Middleware(httperr.Config{URIBase: testBase, Logger: slog.New(slog.DiscardHandler)}, h)
			}
			body := &countingReader{r: strings.NewReader("a=" + strings.Repeat("b", tt.size-2))}
			r := httptest.NewRequest(http.MethodPost, "/token", body)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if tt.chunked {
				r.ContentLength = -1
			} else {
				r.ContentLength = int64(tt.size)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d\n%s", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus == 200 {
				return
			}
			if b := decodeBody(t, rec); b.Error != string(tt.want) {
				t.Errorf("error = %q, want %q", b.Error, tt.want)
			}
			switch {
			case !tt.chunked && body.n != 0:
				t.Errorf("read %d bytes of a body whose declared length was over the limit", body.n)
			case tt.chunked && body.n > limit+1:
				t.Errorf("read %d bytes, want at most limit+1 = %d", body.n, limit+1)
			}
		})
	}

	// The description names the limit for request_too_large.
	err := errors.E(errors.InvalidRequest, "bad form").WithCause("x", &http.MaxBytesError{Limit: 65536})
	rec := httptest.NewRecorder()
	httperr.Write(rec, httptest.NewRequest(http.MethodPost, "/", nil), err)
	if b := decodeBody(t, rec); rec.Code != 413 || !strings.Contains(b.Description, "65536 bytes") {
		t.Errorf("got %d %+v", rec.Code, b)
	}
	// An *Error that already says 413 keeps its description.
	err = errors.E(errors.BackupTooLarge, "Backup exceeds 1 MiB").WithCause("backup.Put", &http.MaxBytesError{Limit: 1})
	rec = httptest.NewRecorder()
	httperr.Write(rec, httptest.NewRequest(http.MethodPut, "/backup", nil), err)
	if b := decodeBody(t, rec); rec.Code != 413 || b.Error != "backup_too_large" || b.Description != "Backup exceeds 1 MiB" {
		t.Errorf("got %d %+v", rec.Code, b)
	}
}

// TestBodyLimitOnServer sends an over-long chunked body to a real server:
// the answer is 413 and the server closes the connection instead of reading
// the rest of the body.
func TestBodyLimitOnServer(t *testing.T) {
	h := httperr.Middleware(httperr.Config{URIBase: testBase, Logger: slog.New(slog.DiscardHandler)},
		httperr.LimitBody(1024, errors.RequestTooLarge, httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			_, err := io.ReadAll(r.Body)
			return err
		})))
	srv := httptest.NewServer(h)
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Without the close, the server waits for the rest of the body it
	// means to discard: the deadline turns that into a failure.
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	chunk := strings.Repeat("x", 4096)
	fmt.Fprintf(conn, "POST /x HTTP/1.1\r\nHost: authd.test\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n", len(chunk), chunk)
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 413 || !strings.Contains(string(body), `"error":"request_too_large"`) {
		t.Errorf("got %d %s", res.StatusCode, body)
	}
	if !res.Close {
		t.Errorf("response keeps the connection open (Connection: %q); the rest of the body would be read as a request", res.Header.Get("Connection"))
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestForwards checks that the standard library forwards keep their
// semantics through *Error.
func TestForwards(t *testing.T) {
	cause := errors.New("cause")
	e := errors.E(errors.InvalidGrant, "d").WithCause("op", cause)
	wrapped := errors.Errorf("ctx: %w", e)
	if !errors.Is(wrapped, cause) || errors.Unwrap(e) != cause || errors.Unwrap(wrapped) != error(e) {
		t.Error("Is/Unwrap do not see through *Error")
	}
	var got *errors.Error
	if !errors.As(wrapped, &got) || got != e {
		t.Error("As does not find the *Error")
	}
	if !errors.Is(errors.Join(cause, nil), cause) {
		t.Error("Join")
	}
	if got, want := e.Error(), "op: invalid_grant: d: cause"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if errors.CodeOf(nil) != "" {
		t.Error("CodeOf(nil) is not empty")
	}
	if c := errors.Code("nope").Status(); c != 500 {
		t.Errorf("unknown code status = %d", c)
	}
}
