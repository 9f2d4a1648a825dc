package httperr_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/authd-dev/authd/internal/golden"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
)

const (
	testBase      = "https://auth.example.com/docs/errors"
	testRequestID = "golden-request-0001"
	browserAccept = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	jsonAccept    = "application/json"
	testClientURI = "https://client.example/cb?keep=1&x=a%20b"
	testIssuer    = "https://auth.example.com"
)

// logs collects what Write logs, one decoded JSON record per line.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *logs) records(t *testing.T) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(l.buf.Bytes()))
	for dec.More() {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("log output is not JSON lines: %v\n%s", err, l.buf.String())
		}
		out = append(out, m)
	}
	return out
}

// only returns the single record logged, failing when there is not exactly one.
func (l *logs) only(t *testing.T) map[string]any {
	t.Helper()
	rs := l.records(t)
	if len(rs) != 1 {
		t.Fatalf("got %d log records, want 1:\n%s", len(rs), l.buf.String())
	}
	return rs[0]
}

// server wraps h the way the server does: Middleware outside, the handler
// in HandlerFunc, errors counted into counted. The returned logs hold what
// Write logged.
func server(h httperr.HandlerFunc) (http.Handler, *logs) {
	l := &logs{}
	return httperr.Middleware(httperr.Config{URIBase: testBase, Logger: l.logger(), Count: counted.add}, h), l
}

// counts records what Write counts through Config.Count.
type counts struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counts) add(code errors.Code, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[string(code)+"/"+strconv.Itoa(status)]++
}

// counted is what every server in these tests counts into.
var counted = &counts{}

// errorsCount returns how many error responses with code and status the
// test servers counted.
func errorsCount(t *testing.T, code errors.Code, status int) int {
	t.Helper()
	counted.mu.Lock()
	defer counted.mu.Unlock()
	return counted.n[string(code)+"/"+strconv.Itoa(status)]
}

// wireBody is the JSON error body, decoded strictly.
type wireBody struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	URI           string `json:"error_uri"`
	RetryAfter    *int64 `json:"retry_after"`
	ProviderError string `json:"provider_error"`
	RequestID     string `json:"request_id"`
}

func decodeBody(t *testing.T, rec *httptest.ResponseRecorder) wireBody {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		t.Fatalf("Content-Type = %q, want application/json;charset=UTF-8; body:\n%s", ct, rec.Body)
	}
	dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	dec.DisallowUnknownFields()
	var b wireBody
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("body is not the error JSON: %v\n%s", err, rec.Body)
	}
	if dec.More() {
		t.Fatalf("trailing data after the JSON body:\n%s", rec.Body)
	}
	return b
}

// dump renders a response as its status line, its sorted headers and its
// body: the form the golden files hold.
func dump(rec *httptest.ResponseRecorder) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP %d\n", rec.Code)
	keys := make([]string, 0, len(rec.Header()))
	for k := range rec.Header() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range rec.Header()[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	b.Write(rec.Body.Bytes())
	return b.Bytes()
}

// checkGolden compares got with testdata/<name>.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}

// modes are the three ways Write answers.
var modes = []string{"json", "redirect", "html"}

// goldenError is the error a handler returns for entry c in a TestWrite
// case: a custom description, a cause that must never be sent, and the
// fields the code uses.
func goldenError(c errors.Entry, mode string) *errors.Error {
	e := errors.E(c.Code, "Handler text for "+string(c.Code)).WithCause("test.Handler", errors.New("dial tcp 10.0.0.7:5432: SECRET-CAUSE"))
	switch c.Code {
	case errors.RateLimitExceeded:
		e.RetryAfter = 1500 * time.Millisecond
	case errors.TemporarilyUnavailable:
		e.RetryAfter = 3 * time.Second
	case errors.GoogleAuthFailed:
		e.ProviderError = "access_denied"
	case errors.GitHubAuthFailed:
		e.ProviderError = "invalid_state"
	case errors.InsufficientScope:
		e.Scope = "backup profile"
	}
	if mode == "redirect" {
		e.Redirect = &errors.Redirect{URI: testClientURI, State: "st 42/?&=", HasState: true, Issuer: testIssuer}
	}
	return e
}

// goldenRequest is the request of a TestWrite case: a fixed request id, the
// Accept header of the mode, and the credentials the code is about.
func goldenRequest(c errors.Entry, mode string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/authorize?client_id=c1", nil)
	r.Header.Set("X-Request-Id", testRequestID)
	switch mode {
	case "json":
		r.Header.Set("Accept", jsonAccept)
	default:
		r.Header.Set("Accept", browserAccept)
	}
	switch c.Code {
	case errors.InvalidClient:
		r.SetBasicAuth("c1", "wrong")
	case errors.InvalidToken, errors.InsufficientScope:
		r.Header.Set("Authorization", "Bearer expired-token")
	}
	return r
}

// wantChallenge is the WWW-Authenticate a direct answer for c carries in a
// TestWrite case.
func wantChallenge(c errors.Entry, desc string) []string {
	uri := testBase + "#" + string(c.Code)
	switch c.Code {
	case errors.InvalidClient:
		return []string{`Basic realm="authd"`}
	case errors.InvalidToken:
		return []string{`Bearer realm="authd", error="invalid_token", error_description="` + desc + `", error_uri="` + uri + `"`}
	case errors.InsufficientScope:
		return []string{`Bearer realm="authd", error="insufficient_scope", error_description="` + desc + `", error_uri="` + uri + `", scope="backup profile"`}
	case errors.MissingAuthToken, errors.InvalidSignature, errors.InvalidTimestamp:
		return []string{`Bitcoin-Auth realm="authd"`}
	case errors.GoogleAuthFailed:
		return []string{`Google realm="authd"`}
	case errors.GitHubAuthFailed:
		return []string{`GitHub realm="authd"`}
	}
	return nil
}

func TestWrite(t *testing.T) {
	for _, c := range errors.Catalog() {
		for _, mode := range modes {
			t.Run(string(c.Code)+"/"+mode, func(t *testing.T) {
				h, l := server(func(w http.ResponseWriter, r *http.Request) error {
					if mode == "html" {
						return httperr.WithPage(goldenError(c, mode), httperr.DefaultPage)
					}
					return goldenError(c, mode)
				})
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, goldenRequest(c, mode))
				checkGolden(t, filepath.Join("TestWrite", string(c.Code)+"."+mode+".golden"), dump(rec))

				wantDesc := "Handler text for " + string(c.Code)
				if c.Status >= 500 {
					wantDesc = c.Description
				}
				wantURI := testBase + "#" + string(c.Code)
				hd := rec.Header()
				for k, want := range map[string]string{
					"Cache-Control":          "no-store",
					"Pragma":                 "no-cache",
					"X-Content-Type-Options": "nosniff",
					"X-Request-Id":           testRequestID,
				} {
					if got := hd.Values(k); len(got) != 1 || got[0] != want {
						t.Errorf("%s = %q, want %q", k, got, want)
					}
				}
				if strings.Contains(rec.Body.String(), "SECRET-CAUSE") || strings.Contains(hd.Get("Location"), "SECRET-CAUSE") {
					t.Errorf("the cause reached the client:\n%s", dump(rec))
				}

				if mode == "redirect" && c.Redirectable {
					if rec.Code != http.StatusFound {
						t.Fatalf("status = %d, want 302", rec.Code)
					}
					if rec.Body.Len() != 0 {
						t.Errorf("redirect has a body: %q", rec.Body)
					}
					checkLocation(t, hd.Get("Location"), "https://client.example/cb?keep=1&x=a%20b&", url.Values{
						"keep": {"1"}, "x": {"a b"},
						"error": {string(c.Code)}, "error_description": {wantDesc}, "error_uri": {wantURI},
						"state": {"st 42/?&="}, "iss": {testIssuer},
					})
					for _, k := range []string{"Retry-After", "WWW-Authenticate", "Content-Type"} {
						if v := hd.Values(k); v != nil {
							t.Errorf("redirect carries %s: %q", k, v)
						}
					}
					return
				}

				// Every other case is answered directly, including a Redirect
				// on a code that must never be redirected (a 503, a Bitcoin
				// authentication failure).
				if rec.Code != c.Status {
					t.Fatalf("status = %d, want %d", rec.Code, c.Status)
				}
				if loc := hd.Get("Location"); loc != "" {
					t.Errorf("direct answer carries Location %q", loc)
				}
				if got, want := hd.Values("WWW-Authenticate"), wantChallenge(c, wantDesc); !slices.Equal(got, want) {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				var wantRetry int64
				switch c.Code {
				case errors.RateLimitExceeded:
					wantRetry = 2
				case errors.TemporarilyUnavailable:
					wantRetry = 3
				}
				if got := hd.Get("Retry-After"); wantRetry == 0 && got != "" || wantRetry != 0 && got != strconv.FormatInt(wantRetry, 10) {
					t.Errorf("Retry-After = %q, want %d", got, wantRetry)
				}
				if mode == "html" {
					if ct := hd.Get("Content-Type"); ct != "text/html;charset=UTF-8" {
						t.Fatalf("Content-Type = %q, want the HTML page", ct)
					}
					for _, s := range []string{string(c.Code), testRequestID, `href="` + wantURI + `"`, strconv.Itoa(c.Status)} {
						if !strings.Contains(rec.Body.String(), s) {
							t.Errorf("page lacks %q", s)
						}
					}
					return
				}
				b := decodeBody(t, rec)
				if b.Error != string(c.Code) || b.Description != wantDesc || b.URI != wantURI || b.RequestID != testRequestID {
					t.Errorf("body = %+v, want error %s, description %q, uri %s, request_id %s", b, c.Code, wantDesc, wantURI, testRequestID)
				}
				switch {
				case wantRetry == 0 && b.RetryAfter != nil:
					t.Errorf("retry_after = %d, want none", *b.RetryAfter)
				case wantRetry != 0 && (b.RetryAfter == nil || *b.RetryAfter != wantRetry):
					t.Errorf("retry_after = %v, want %d", b.RetryAfter, wantRetry)
				}
				wantProvider := map[errors.Code]string{errors.GoogleAuthFailed: "access_denied", errors.GitHubAuthFailed: "invalid_state"}[c.Code]
				if b.ProviderError != wantProvider {
					t.Errorf("provider_error = %q, want %q", b.ProviderError, wantProvider)
				}
				if strings.Contains(rec.Body.String(), `"provider_error"`) != (wantProvider != "") {
					t.Errorf("provider_error present only when set:\n%s", rec.Body)
				}
				rs := l.records(t)
				if len(rs) != 1 || rs[0]["request_id"] != testRequestID || rs[0]["code"] != string(c.Code) {
					t.Errorf("log = %v, want one record with request_id and code", rs)
				}
			})
		}
	}
}

// checkLocation checks that loc starts with prefix (the registered URI and
// its own query, untouched) and carries exactly the parameters in want.
func checkLocation(t *testing.T, loc, prefix string, want url.Values) {
	t.Helper()
	if !strings.HasPrefix(loc, prefix) {
		t.Errorf("Location = %q, want it to start with %q", loc, prefix)
	}
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	got, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		t.Fatalf("Location %q: %v", loc, err)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("Location has parameter %q, which a redirect must not add", k)
		}
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			t.Errorf("Location %s = %q, want %q", k, got[k], v)
		}
	}
	if u.Fragment != "" {
		t.Errorf("Location has a fragment: %q", loc)
	}
}

// TestRequestID checks X-Request-Id: an incoming id of 1-64 [A-Za-z0-9._-]
// is kept, anything else is replaced by a fresh id, inside Middleware and
// for Write called without it.
func TestRequestID(t *testing.T) {
	long64 := strings.Repeat("a", 64)
	tests := []struct {
		in   []string
		keep bool
	}{
		{in: []string{"abc-123_X.y"}, keep: true},
		{in: []string{"A"}, keep: true},
		{in: []string{long64}, keep: true},
		{in: nil},
		{in: []string{""}},
		{in: []string{long64 + "b"}},
		{in: []string{"has space"}},
		{in: []string{"semi;colon"}},
		{in: []string{"a/b"}},
		{in: []string{"quote\""}},
		{in: []string{"naïve"}},
		{in: []string{"line\nbreak"}},
	}
	for _, tt := range tests {
		for _, wrapped := range []bool{true, false} {
			t.Run(fmt.Sprintf("%q/middleware=%v", tt.in, wrapped), func(t *testing.T) {
				var h http.Handler = httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
					return errors.E(errors.InvalidRequest, "Missing required parameter: client_id")
				})
				if wrapped {
					h = httperr.Middleware(httperr.Config{URIBase: testBase, Logger: slog.New(slog.DiscardHandler)}, h)
				}
				r := httptest.NewRequest(http.MethodGet, "/token", nil)
				r.Header.Set("Accept", jsonAccept)
				r.Header["X-Request-Id"] = append(r.Header["X-Request-Id"], tt.in...)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				ids := rec.Header().Values("X-Request-Id")
				if len(ids) != 1 {
					t.Fatalf("X-Request-Id = %q, want exactly one", ids)
				}
				id := ids[0]
				if tt.keep && id != tt.in[0] {
					t.Errorf("X-Request-Id = %q, want the incoming %q kept", id, tt.in[0])
				}
				if !tt.keep {
					if len(tt.in) > 0 && id == tt.in[0] {
						t.Errorf("invalid incoming id %q kept", id)
					}
					if !validRequestID(id) {
						t.Errorf("made id %q is not 1-64 [A-Za-z0-9._-]", id)
					}
				}
				if b := decodeBody(t, rec); b.RequestID != id {
					t.Errorf("request_id = %q, header = %q", b.RequestID, id)
				}
			})
		}
	}

	// Made ids are unique.
	seen := map[string]bool{}
	h, _ := server(func(w http.ResponseWriter, r *http.Request) error { return errors.E(errors.NotFound, "") })
	for range 100 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		id := rec.Header().Get("X-Request-Id")
		if seen[id] {
			t.Fatalf("request id %q made twice", id)
		}
		seen[id] = true
	}
}

func validRequestID(id string) bool {
	if len(id) < 1 || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func TestDelaySeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int64
	}{
		{math.MinInt64, 0}, {-time.Second, 0}, {0, 0},
		{time.Nanosecond, 1}, {time.Second - time.Nanosecond, 1}, {time.Second, 1},
		{time.Second + time.Nanosecond, 2}, {90 * time.Second, 90},
		{math.MaxInt64, math.MaxInt64/int64(time.Second) + 1},
	} {
		if got := httperr.DelaySeconds(tt.d); got != tt.want {
			t.Errorf("DelaySeconds(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

// TestRetryAfter checks that Retry-After and retry_after are the ceiling of
// RetryAfter in seconds, at least 1, and that a 429 or 503 always has one.
func TestRetryAfter(t *testing.T) {
	tests := []struct {
		code errors.Code
		d    time.Duration
		want int64 // 0: no Retry-After
	}{
		{errors.RateLimitExceeded, time.Nanosecond, 1},
		{errors.RateLimitExceeded, time.Second, 1},
		{errors.RateLimitExceeded, time.Second + time.Nanosecond, 2},
		{errors.RateLimitExceeded, 1500 * time.Millisecond, 2},
		{errors.RateLimitExceeded, 90 * time.Second, 90},
		{errors.RateLimitExceeded, 10 * time.Minute, 600},
		{errors.RateLimitExceeded, math.MaxInt64, math.MaxInt64/int64(time.Second) + 1},
		{errors.TemporarilyUnavailable, 999 * time.Millisecond, 1},
		// The catalog promises Retry-After on 429 and 503: a handler that
		// forgot it still sends one.
		{errors.RateLimitExceeded, 0, 1},
		{errors.TemporarilyUnavailable, 0, 1},
		{errors.TemporarilyUnavailable, -time.Second, 1},
		// Any other code with a RetryAfter sends it too.
		{errors.ServerError, 2 * time.Second, 2},
		{errors.InvalidRequest, 0, 0},
		{errors.InvalidRequest, -time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%v", tt.code, tt.d), func(t *testing.T) {
			h, _ := server(func(w http.ResponseWriter, r *http.Request) error {
				return errors.E(tt.code, "").WithRetryAfter(tt.d)
			})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/token", nil))
			b := decodeBody(t, rec)
			got := rec.Header().Values("Retry-After")
			if tt.want == 0 {
				if got != nil || b.RetryAfter != nil {
					t.Errorf("Retry-After = %q, retry_after = %v, want neither", got, b.RetryAfter)
				}
				return
			}
			if len(got) != 1 || got[0] != strconv.FormatInt(tt.want, 10) {
				t.Errorf("Retry-After = %q, want %d", got, tt.want)
			}
			if b.RetryAfter == nil || *b.RetryAfter != tt.want {
				t.Errorf("retry_after = %v, want %d", b.RetryAfter, tt.want)
			}
		})
	}
}

// TestChallenge checks the WWW-Authenticate forms of each code.
func TestChallenge(t *testing.T) {
	const uri = testBase + "#"
	tests := []struct {
		name     string
		err      *errors.Error
		auth     string   // Authorization header sent
		existing []string // WWW-Authenticate the handler set before failing
		want     []string
	}{
		{
			name: "invalid_client with Basic",
			err:  errors.E(errors.InvalidClient, "Client authentication failed"),
			auth: "Basic YzE6d3Jvbmc=",
			want: []string{`Basic realm="authd"`},
		},
		{
			name: "invalid_client with lower-case basic",
			err:  errors.E(errors.InvalidClient, "Client authentication failed"),
			auth: "basic YzE6d3Jvbmc=",
			want: []string{`Basic realm="authd"`},
		},
		{
			name: "invalid_client with credentials in the form, or none",
			err:  errors.E(errors.InvalidClient, "Client authentication failed"),
			want: []string{`Basic realm="authd"`},
		},
		{
			name: "invalid_client with a Bearer header: the scheme echoed",
			err:  errors.E(errors.InvalidClient, "Client authentication failed"),
			auth: "Bearer abc",
			want: []string{`Bearer realm="authd"`},
		},
		{
			name: "invalid_client with a lower-case known scheme: registered spelling",
			err:  errors.E(errors.InvalidClient, "Client authentication failed"),
			auth: "bitcoin-auth abc",
			want: []string{`Bitcoin-Auth realm="authd"`},
		},
		{
			name: "invalid_client with an unknown scheme: echoed as sent",
			err:  errors.E(errors.InvalidClient, "Client authentication failed"),
			auth: "PrivateKeyJWT abc",
			want: []string{`PrivateKeyJWT realm="authd"`},
		},
		{
			name: "invalid_client with a scheme that is not a token: Basic",
			err:  errors.E(errors.InvalidClient, "Client authentication failed"),
			auth: `Ev"il abc`,
			want: []string{`Basic realm="authd"`},
		},
		{
			name: "invalid_client with an overlong scheme: Basic",
			err:  errors.E(errors.InvalidClient, "Client authentication failed"),
			auth: strings.Repeat("x", 33) + " abc",
			want: []string{`Basic realm="authd"`},
		},
		{
			name: "invalid_token with a token",
			err:  errors.E(errors.InvalidToken, "The access token expired"),
			auth: "Bearer abc",
			want: []string{`Bearer realm="authd", error="invalid_token", error_description="The access token expired", error_uri="` + uri + `invalid_token"`},
		},
		{
			name: "invalid_token without credentials",
			err:  errors.E(errors.InvalidToken, "The access token is missing"),
			want: []string{`Bearer realm="authd"`},
		},
		{
			name: "invalid_token description outside the charset",
			err:  errors.E(errors.InvalidToken, "bad \"token\" \\ here\r\nX-Injected: 1 é"),
			auth: "Bearer abc",
			want: []string{`Bearer realm="authd", error="invalid_token", error_description="bad 'token' / here??X-Injected: 1 ?", error_uri="` + uri + `invalid_token"`},
		},
		{
			name: "insufficient_scope with scope",
			err:  errors.E(errors.InsufficientScope, "The token lacks the backup scope").WithScope("backup"),
			auth: "Bearer abc",
			want: []string{`Bearer realm="authd", error="insufficient_scope", error_description="The token lacks the backup scope", error_uri="` + uri + `insufficient_scope", scope="backup"`},
		},
		{
			name: "insufficient_scope with a hostile scope",
			err:  errors.E(errors.InsufficientScope, "").WithScope("a\"b\\c, realm=\"x\""),
			auth: "Bearer abc",
			want: []string{`Bearer realm="authd", error="insufficient_scope", error_description="The access token does not carry the scope this resource requires", error_uri="` + uri + `insufficient_scope", scope="a'b/c, realm='x'"`},
		},
		{
			name: "insufficient_scope without scope",
			err:  errors.E(errors.InsufficientScope, ""),
			auth: "Bearer abc",
			want: []string{`Bearer realm="authd", error="insufficient_scope", error_description="The access token does not carry the scope this resource requires", error_uri="` + uri + `insufficient_scope"`},
		},
		{
			name: "missing_auth_token alone",
			err:  errors.E(errors.MissingAuthToken, ""),
			want: []string{`Bitcoin-Auth realm="authd"`},
		},
		{
			name:     "missing_auth_token first, other challenges kept",
			err:      errors.E(errors.MissingAuthToken, ""),
			existing: []string{`Bearer realm="authd"`, `Basic realm="authd"`},
			want:     []string{`Bitcoin-Auth realm="authd"`, `Bearer realm="authd"`, `Basic realm="authd"`},
		},
		{
			name:     "missing_auth_token replaces an earlier Bitcoin-Auth",
			err:      errors.E(errors.MissingAuthToken, ""),
			existing: []string{`Bitcoin-Auth realm="other"`, `Bearer realm="authd"`},
			want:     []string{`Bitcoin-Auth realm="authd"`, `Bearer realm="authd"`},
		},
		{
			name: "invalid_signature: Bitcoin-Auth",
			err:  errors.E(errors.InvalidSignature, ""),
			auth: "Bearer abc",
			want: []string{`Bitcoin-Auth realm="authd"`},
		},
		{
			name:     "invalid_timestamp: Bitcoin-Auth first, others kept",
			err:      errors.E(errors.InvalidTimestamp, ""),
			existing: []string{`Bearer realm="authd"`},
			want:     []string{`Bitcoin-Auth realm="authd"`, `Bearer realm="authd"`},
		},
		{
			name: "google_auth_failed: the provider's sign-in",
			err:  errors.E(errors.GoogleAuthFailed, "").WithProviderError("access_denied"),
			want: []string{`Google realm="authd"`},
		},
		{
			name: "github_auth_failed: the provider's sign-in",
			err:  errors.E(errors.GitHubAuthFailed, "").WithProviderError("invalid_state"),
			want: []string{`GitHub realm="authd"`},
		},
		{
			name: "no challenge for codes that are not 401",
			err:  errors.E(errors.InvalidRequest, ""),
			auth: "Bearer abc",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := server(func(w http.ResponseWriter, r *http.Request) error {
				for _, v := range tt.existing {
					w.Header().Add("WWW-Authenticate", v)
				}
				return tt.err
			})
			r := httptest.NewRequest(http.MethodGet, "/userinfo", nil)
			if tt.auth != "" {
				r.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			got := rec.Header().Values("WWW-Authenticate")
			if !slices.Equal(got, tt.want) {
				t.Errorf("WWW-Authenticate = %q\nwant %q", got, tt.want)
			}
			for _, v := range got {
				if _, err := parseChallenges(v); err != nil {
					t.Errorf("WWW-Authenticate %q does not parse: %v", v, err)
				}
			}
			if rec.Code != tt.err.Code.Status() {
				t.Errorf("status = %d, want %d", rec.Code, tt.err.Code.Status())
			}
		})
	}
}

// TestRedirect covers redirect mode beyond the golden cases: which codes
// may be redirected, state, iss, the registered URI's query, and URIs Write
// must not redirect to.
func TestRedirect(t *testing.T) {
	tests := []struct {
		name     string
		err      *errors.Error
		wantLoc  string // exact Location; "" means a direct answer
		wantCode int
	}{
		{
			name:     "no state sent: none echoed, a registered one removed",
			err:      errors.E(errors.AccessDenied, "The user denied access").WithRedirect(&errors.Redirect{URI: "https://c.example/cb?state=registered&a=1", Issuer: testIssuer}),
			wantLoc:  "https://c.example/cb?a=1&error=access_denied&error_description=The+user+denied+access&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23access_denied&iss=https%3A%2F%2Fauth.example.com",
			wantCode: http.StatusFound,
		},
		{
			name:     "empty state is echoed",
			err:      errors.E(errors.InvalidScope, "Unknown scope").WithRedirect(&errors.Redirect{URI: "https://c.example/cb", HasState: true, Issuer: testIssuer}),
			wantLoc:  "https://c.example/cb?error=invalid_scope&error_description=Unknown+scope&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23invalid_scope&state=&iss=https%3A%2F%2Fauth.example.com",
			wantCode: http.StatusFound,
		},
		{
			name:     "registered parameters named like ours are replaced, others kept byte for byte, fragment dropped",
			err:      errors.E(errors.InvalidRequest, "Missing required parameter: code_challenge").WithRedirect(&errors.Redirect{URI: "https://c.example/cb?error=x&flag&b=%7e;c=d&iss=old&error_uri=y#frag", State: "s", HasState: true, Issuer: testIssuer}),
			wantLoc:  "https://c.example/cb?flag&b=%7e;c=d&error=invalid_request&error_description=Missing+required+parameter%3A+code_challenge&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23invalid_request&state=s&iss=https%3A%2F%2Fauth.example.com",
			wantCode: http.StatusFound,
		},
		{
			name:     "server_error redirects with the generic description",
			err:      errors.E(errors.ServerError, "pq: relation clients does not exist").WithRedirect(&errors.Redirect{URI: "http://127.0.0.1:9000/cb", State: "s", HasState: true, Issuer: testIssuer}),
			wantLoc:  "http://127.0.0.1:9000/cb?error=server_error&error_description=The+server+encountered+an+unexpected+condition&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23server_error&state=s&iss=https%3A%2F%2Fauth.example.com",
			wantCode: http.StatusFound,
		},
		{
			name:     "state is echoed byte for byte, description sanitized",
			err:      errors.E(errors.AccessDenied, "no \"thanks\"\n").WithRedirect(&errors.Redirect{URI: "https://c.example/cb", State: "a\x00b\u00e9\"\\", HasState: true}),
			wantLoc:  "https://c.example/cb?error=access_denied&error_description=no+%27thanks%27%3F&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23access_denied&state=a%00b%C3%A9%22%5C",
			wantCode: http.StatusFound,
		},
		{
			name:     "provider failure: access_denied documented at the provider's entry",
			err:      errors.E(errors.AccessDenied, "Google authentication was unsuccessful").WithRedirect(&errors.Redirect{URI: "https://c.example/cb", State: "s", HasState: true, Issuer: testIssuer}).WithDocCode(errors.GoogleAuthFailed),
			wantLoc:  "https://c.example/cb?error=access_denied&error_description=Google+authentication+was+unsuccessful&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23google_auth_failed&state=s&iss=https%3A%2F%2Fauth.example.com",
			wantCode: http.StatusFound,
		},
		{
			name:     "a DocCode outside the catalog is ignored",
			err:      errors.E(errors.AccessDenied, "").WithRedirect(&errors.Redirect{URI: "https://c.example/cb", Issuer: testIssuer}).WithDocCode("made_up"),
			wantLoc:  "https://c.example/cb?error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23access_denied&iss=https%3A%2F%2Fauth.example.com",
			wantCode: http.StatusFound,
		},
		{
			name:     "custom URI scheme of a native app",
			err:      errors.E(errors.AccessDenied, "").WithRedirect(&errors.Redirect{URI: "com.example.app:/oauth", State: "s", HasState: true, Issuer: testIssuer}),
			wantLoc:  "com.example.app:/oauth?error=access_denied&error_description=The+resource+owner+or+authorization+server+denied+the+request&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23access_denied&state=s&iss=https%3A%2F%2Fauth.example.com",
			wantCode: http.StatusFound,
		},
		{name: "429 is answered directly", err: errors.E(errors.RateLimitExceeded, "").WithRetryAfter(time.Second).WithRedirect(&errors.Redirect{URI: "https://c.example/cb"}), wantCode: 429},
		{name: "503 is answered directly", err: errors.E(errors.TemporarilyUnavailable, "").WithRedirect(&errors.Redirect{URI: "https://c.example/cb"}), wantCode: 503},
		{name: "Bitcoin auth failures are answered directly", err: errors.E(errors.InvalidSignature, "").WithRedirect(&errors.Redirect{URI: "https://c.example/cb"}), wantCode: 401},
		{name: "provider failures are answered directly", err: errors.E(errors.GoogleAuthFailed, "").WithRedirect(&errors.Redirect{URI: "https://c.example/cb"}), wantCode: 401},
		{name: "empty URI is answered directly", err: errors.E(errors.AccessDenied, "").WithRedirect(&errors.Redirect{}), wantCode: 403},
		{name: "unparseable URI is answered directly", err: errors.E(errors.AccessDenied, "").WithRedirect(&errors.Redirect{URI: "https://c.example/\x7fcb"}), wantCode: 403},
		{name: "unknown code is server_error, redirected", err: errors.E("made_up", "").WithRedirect(&errors.Redirect{URI: "https://c.example/cb"}),
			wantLoc:  "https://c.example/cb?error=server_error&error_description=The+server+encountered+an+unexpected+condition&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23server_error",
			wantCode: http.StatusFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, l := server(func(w http.ResponseWriter, r *http.Request) error { return tt.err })
			r := httptest.NewRequest(http.MethodGet, "/authorize", nil)
			r.Header.Set("Accept", browserAccept)
			rec := httptest.NewRecorder()
			code := tt.err.Code
			if _, ok := errors.Lookup(code); !ok {
				code = errors.ServerError
			}
			before := errorsCount(t, code, tt.wantCode)
			h.ServeHTTP(rec, r)
			if rec.Code != tt.wantCode {
				t.Fatalf("status = %d, want %d\n%s", rec.Code, tt.wantCode, dump(rec))
			}
			if got := rec.Header().Get("Location"); got != tt.wantLoc {
				t.Errorf("Location = %q\n     want %q", got, tt.wantLoc)
			}
			if after := errorsCount(t, code, tt.wantCode); after != before+1 {
				t.Errorf("authd_errors_total{code=%q,status=\"%d\"} went from %v to %v, want +1", code, tt.wantCode, before, after)
			}
			if got := l.only(t)["status"]; got != float64(tt.wantCode) {
				t.Errorf("logged status %v, want %d", got, tt.wantCode)
			}
			if tt.wantLoc == "" {
				decodeBody(t, rec)
			}
		})
	}
}

// TestAccept checks the content negotiation of HTML routes: the page for
// browsers and for clients that do not prefer JSON, JSON for clients that
// prefer it, and always JSON on routes without a page.
func TestAccept(t *testing.T) {
	tests := []struct {
		accept []string // nil: no Accept header
		html   bool
	}{
		{accept: []string{browserAccept}, html: true},
		{accept: []string{"text/html"}, html: true},
		{accept: []string{"application/json"}, html: false},
		{accept: []string{"application/json;charset=UTF-8"}, html: false},
		{accept: []string{"*/*"}, html: true},
		{accept: nil, html: true},
		{accept: []string{""}, html: true},
		{accept: []string{"text/html;q=0.5, application/json"}, html: false},
		{accept: []string{"application/json;q=0.5, text/html"}, html: true},
		{accept: []string{"application/json, */*;q=0.1"}, html: false},
		{accept: []string{"text/*, application/json;q=0.9"}, html: true},
		{accept: []string{"application/*"}, html: false},
		{accept: []string{"text/html;q=0, */*"}, html: false},
		{accept: []string{"application/json;q=0, */*"}, html: true},
		{accept: []string{"application/json;q=0.8", "text/html;q=0.9"}, html: true},
		{accept: []string{"application/json", "text/html;q=0.9"}, html: false},
		{accept: []string{"TEXT/HTML;Q=0.2, APPLICATION/JSON;Q=0.3"}, html: false},
		{accept: []string{"image/png"}, html: true},
		{accept: []string{"garbage;;;, application/json"}, html: false},
	}
	for _, tt := range tests {
		for _, page := range []bool{true, false} {
			t.Run(fmt.Sprintf("%q/page=%v", tt.accept, page), func(t *testing.T) {
				h, _ := server(func(w http.ResponseWriter, r *http.Request) error {
					return errors.E(errors.InvalidRequest, "Missing required parameter: client_id")
				})
				if page {
					h = httperr.Middleware(httperr.Config{URIBase: testBase, Logger: slog.New(slog.DiscardHandler)},
						httperr.HTML(httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
							return errors.E(errors.InvalidRequest, "Missing required parameter: client_id")
						})))
				}
				r := httptest.NewRequest(http.MethodGet, "/authorize", nil)
				if tt.accept != nil {
					r.Header["Accept"] = tt.accept
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != http.StatusBadRequest {
					t.Fatalf("status = %d, want 400", rec.Code)
				}
				ct := rec.Header().Get("Content-Type")
				if page && tt.html {
					if ct != "text/html;charset=UTF-8" || !strings.Contains(rec.Body.String(), "Missing required parameter: client_id") {
						t.Errorf("Content-Type = %q, want the HTML page:\n%s", ct, rec.Body)
					}
					for k, want := range map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"} {
						if got := rec.Header().Get(k); got != want {
							t.Errorf("%s = %q, want %q", k, got, want)
						}
					}
					return
				}
				decodeBody(t, rec)
			})
		}
	}
}

// TestPageFailure checks that a page that fails to render falls back to
// JSON, and that the failure is logged.
func TestPageFailure(t *testing.T) {
	h, l := server(func(w http.ResponseWriter, r *http.Request) error {
		return httperr.WithPage(errors.E(errors.AccessDenied, "Denied"), func(w io.Writer, d httperr.PageData) error {
			io.WriteString(w, "<half a page")
			return errors.New("template broke")
		})
	})
	r := httptest.NewRequest(http.MethodGet, "/authorize", nil)
	r.Header.Set("Accept", browserAccept)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if b := decodeBody(t, rec); b.Error != "access_denied" || rec.Code != 403 {
		t.Errorf("got %d %+v, want 403 access_denied JSON", rec.Code, b)
	}
	found := false
	for _, rec := range l.records(t) {
		if rec["msg"] == "error page failed" && rec["level"] == "ERROR" {
			found = true
		}
	}
	if !found {
		t.Errorf("page failure not logged: %v", l.records(t))
	}
}

// TestStaleHeaders checks that headers a handler set for a success it never
// sent do not leak into the error response.
func TestStaleHeaders(t *testing.T) {
	h, _ := server(func(w http.ResponseWriter, r *http.Request) error {
		hd := w.Header()
		hd.Set("Content-Type", "image/png")
		hd.Set("Content-Length", "12345")
		hd.Set("Content-Encoding", "gzip")
		hd.Set("ETag", `"v1"`)
		hd.Set("Location", "https://elsewhere.example/")
		hd.Set("Cache-Control", "public, max-age=86400")
		return errors.E(errors.BackupNotFound, "")
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/backup", nil))
	decodeBody(t, rec)
	for _, k := range []string{"Content-Length", "Content-Encoding", "ETag", "Location"} {
		if v := rec.Header().Get(k); v != "" {
			t.Errorf("%s = %q survived into the error response", k, v)
		}
	}
	if v := rec.Header().Get("Cache-Control"); v != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", v)
	}
}

// TestEvery401HasAChallenge walks every 401 code of the catalog: whatever
// credentials the request carried, and on JSON and browser routes alike,
// the answer carries a WWW-Authenticate challenge that parses
// (RFC 9110 §15.5.2), and the catalog documents it.
func TestEvery401HasAChallenge(t *testing.T) {
	auths := map[string]string{
		"no credentials": "",
		"Basic":          "Basic YzE6d3Jvbmc=",
		"Bearer":         "Bearer abc",
		"Bitcoin-Auth":   "Bitcoin-Auth sigma:1abc",
		"other scheme":   "Negotiate abc",
		"garbage":        "\"\x01",
	}
	n := 0
	for _, c := range errors.Catalog() {
		if c.Status != http.StatusUnauthorized {
			continue
		}
		n++
		documented := false
		for _, h := range c.Headers {
			documented = documented || strings.HasPrefix(h, "WWW-Authenticate: ")
		}
		if !documented {
			t.Errorf("%s: the catalog entry does not document its WWW-Authenticate", c.Code)
		}
		for name, auth := range auths {
			for _, html := range []bool{false, true} {
				var h http.Handler = httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return errors.E(c.Code, "") })
				if html {
					h = httperr.HTML(h)
				}
				h = httperr.Middleware(httperr.Config{URIBase: testBase, Logger: slog.New(slog.DiscardHandler)}, h)
				r := httptest.NewRequest(http.MethodPost, "/x", nil)
				if auth != "" {
					r.Header.Set("Authorization", auth)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				got := rec.Header().Values("WWW-Authenticate")
				if rec.Code != http.StatusUnauthorized || len(got) == 0 {
					t.Errorf("%s, %s, html=%v: %d with WWW-Authenticate %q", c.Code, name, html, rec.Code, got)
				}
				for _, v := range got {
					if _, err := parseChallenges(v); err != nil {
						t.Errorf("%s, %s: WWW-Authenticate %q does not parse: %v", c.Code, name, v, err)
					}
				}
			}
		}
	}
	if n < 7 {
		t.Errorf("walked %d 401 codes; the catalog has at least 7", n)
	}
}
