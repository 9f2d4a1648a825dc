package httperr

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
)

// The tests in this file take Write apart: one table per step.

func TestClassifyStep(t *testing.T) {
	cause := errors.New("cause")
	tooBig := &http.MaxBytesError{Limit: 10}
	limited := func(code errors.Code) *http.Request {
		r := httptest.NewRequest("POST", "/x", nil)
		r.Body = &limitedBody{ReadCloser: io.NopCloser(strings.NewReader("")), code: code}
		return r
	}
	plain := httptest.NewRequest("POST", "/x", nil)
	tests := []struct {
		name string
		err  error
		r    *http.Request
		code errors.Code
		desc string
		op   string
	}{
		{"*Error", errors.E(errors.InvalidGrant, "d").WithCause("op", cause), plain, errors.InvalidGrant, "d", "op"},
		{"wrapped *Error", fmt.Errorf("ctx: %w", errors.E(errors.AccessDenied, "d")), plain, errors.AccessDenied, "d", ""},
		{"plain error", cause, plain, errors.ServerError, "", ""},
		{"empty code", &errors.Error{Description: "d"}, plain, errors.ServerError, "d", ""},
		{"read past LimitBody", &bodyLimitError{code: errors.BackupTooLarge, mbe: tooBig}, plain, errors.BackupTooLarge, "Backup exceeds the 1 MiB limit (1048576 bytes)", "httperr.LimitBody"},
		{"read past LimitBody inside invalid_request", errors.E(errors.InvalidRequest, "bad form").WithCause("oauth.readForm", &bodyLimitError{code: errors.RequestTooLarge, mbe: tooBig}), plain,
			errors.RequestTooLarge, "Request body exceeds this endpoint's limit of 10 bytes", "oauth.readForm"},
		{"a foreign limit error on a LimitBody body takes its code", fmt.Errorf("verify: %w", tooBig), limited(errors.BackupTooLarge), errors.BackupTooLarge, "Backup exceeds the 1 MiB limit (1048576 bytes)", "httperr.LimitBody"},
		{"a foreign limit error elsewhere is request_too_large", fmt.Errorf("verify: %w", tooBig), plain, errors.RequestTooLarge, "Request body exceeds this endpoint's limit of 10 bytes", "httperr.LimitBody"},
		{"a 413 *Error is kept", errors.E(errors.BackupTooLarge, "mine").WithCause("backup", tooBig), limited(errors.RequestTooLarge), errors.BackupTooLarge, "mine", "backup"},
		{"a page wrapper is looked through", WithPage(errors.E(errors.InvalidScope, "s"), DefaultPage), plain, errors.InvalidScope, "s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := classify(tt.err, tt.r)
			if e.Code != tt.code || e.Description != tt.desc || e.Op != tt.op {
				t.Errorf("classify = %s %q op %q, want %s %q op %q", e.Code, e.Description, e.Op, tt.code, tt.desc, tt.op)
			}
			var orig *errors.Error
			if errors.As(tt.err, &orig) && orig == e {
				t.Error("classify returned the handler's *Error itself; Write must not edit it")
			}
		})
	}
}

func TestLookupStep(t *testing.T) {
	for _, c := range errors.Catalog() {
		e := errors.E(c.Code, "")
		if got := lookup(e); got.Code != c.Code || e.Code != c.Code || e.Err != nil {
			t.Errorf("%s: lookup = %s, e = %s %v", c.Code, got.Code, e.Code, e.Err)
		}
	}
	e := errors.E("made_up", "")
	if got := lookup(e); got.Code != errors.ServerError || e.Code != errors.ServerError || e.Err == nil || !strings.Contains(e.Err.Error(), "made_up") {
		t.Errorf("unknown code: lookup = %s, e = %s %v", got.Code, e.Code, e.Err)
	}
}

func TestDecideStep(t *testing.T) {
	const base = "https://auth.example.com/docs/errors"
	rd := &errors.Redirect{URI: "https://c.example/cb", State: "s", HasState: true, Issuer: "https://auth.example.com"}
	tests := []struct {
		name     string
		err      *errors.Error
		status   int
		location bool
		desc     string
		anchor   string
		retry    int64
		scope    string
	}{
		{"direct", errors.E(errors.InvalidRequest, "Missing required parameter: x"), 400, false, "Missing required parameter: x", "invalid_request", 0, ""},
		{"catalog text when none given", errors.E(errors.BackupNotFound, ""), 404, false, "No backup found for this user", "backup_not_found", 0, ""},
		{"5xx text is the catalog's", errors.E(errors.ServerError, "SQL SECRET"), 500, false, "The server encountered an unexpected condition", "server_error", 0, ""},
		{"redirectable with a Redirect", errors.E(errors.InvalidScope, "s").WithRedirect(rd), 302, true, "s", "invalid_scope", 0, ""},
		{"redirectable without one", errors.E(errors.InvalidScope, "s"), 400, false, "s", "invalid_scope", 0, ""},
		{"never redirected", errors.E(errors.RateLimitExceeded, "slow").WithRedirect(rd).WithRetryAfter(2500 * time.Millisecond), 429, false, "slow", "rate_limit_exceeded", 3, ""},
		{"unparseable redirect", errors.E(errors.AccessDenied, "").WithRedirect(&errors.Redirect{URI: "https://c.example/\x7f"}), 403, false, "The resource owner or authorization server denied the request", "access_denied", 0, ""},
		{"Retry-After promised by the catalog", errors.E(errors.TemporarilyUnavailable, ""), 503, false, "The service is temporarily unable to handle the request; retry after the indicated delay", "temporarily_unavailable", 1, ""},
		{"DocCode", errors.E(errors.AccessDenied, "x").WithDocCode(errors.GitHubAuthFailed), 403, false, "x", "github_auth_failed", 0, ""},
		{"text outside the charset", errors.E(errors.InvalidRequest, "a\"b\\c\né"), 400, false, "a'b/c??", "invalid_request", 0, ""},
		{"scope of insufficient_scope", errors.E(errors.InsufficientScope, "").WithScope(`a"b`), 403, false, "The access token does not carry the scope this resource requires", "insufficient_scope", 0, "a'b"},
		{"scope of another code is not sent", errors.E(errors.InvalidToken, "").WithScope("backup"), 401, false, "The access token is missing, malformed, expired or revoked", "invalid_token", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entry := lookup(tt.err)
			resp := decide(tt.err, entry, base, "rid")
			if resp.status != tt.status || (resp.location != "") != tt.location || resp.desc != tt.desc ||
				resp.uri != base+"#"+tt.anchor || resp.retry != tt.retry || resp.scope != tt.scope || resp.requestID != "rid" {
				t.Errorf("decide = %+v", resp)
			}
			if tt.location && !strings.HasPrefix(resp.location, "https://c.example/cb?error="+string(entry.Code)+"&") {
				t.Errorf("location %q", resp.location)
			}
		})
	}
}

func TestSetHeadersStep(t *testing.T) {
	stale := http.Header{}
	for _, k := range staleHeaders {
		stale.Set(k, "stale")
	}
	stale.Set("Set-Cookie", "binding=1")
	stale.Set("Content-Security-Policy", "form-action 'self' https://c.example")
	tests := []struct {
		name string
		resp response
		want map[string]string // "" means absent
	}{
		{"direct", response{status: 400}, map[string]string{"Cache-Control": "no-store", "Pragma": "no-cache", "X-Content-Type-Options": "nosniff", "Retry-After": "", "Location": "", "ETag": "", "Content-Type": ""}},
		{"retry", response{status: 429, retry: 7}, map[string]string{"Retry-After": "7", "Location": ""}},
		{"redirect", response{status: 302, location: "https://c.example/cb?error=x", retry: 7}, map[string]string{"Location": "https://c.example/cb?error=x", "Retry-After": ""}},
		{"headers of the handler that are not stale are kept", response{status: 400}, map[string]string{"Set-Cookie": "binding=1", "Content-Security-Policy": "form-action 'self' https://c.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := stale.Clone()
			setHeaders(h, tt.resp)
			for k, want := range tt.want {
				if got := h.Get(k); got != want {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestClientChallenge(t *testing.T) {
	for _, tt := range []struct{ auth, want string }{
		{"", `Basic realm="authd"`},
		{"Basic YTpi", `Basic realm="authd"`},
		{"BASIC YTpi", `Basic realm="authd"`},
		{"Bearer t", `Bearer realm="authd"`},
		{"  Bearer t", `Bearer realm="authd"`},
		{"dpop t", `DPoP realm="authd"`},
		{"Custom_1.x t", `Custom_1.x realm="authd"`},
		{"NoCredentials", `NoCredentials realm="authd"`},
		{"Bad,scheme t", `Basic realm="authd"`},
		{"Bad\"scheme t", `Basic realm="authd"`},
		{"Ünicode t", `Basic realm="authd"`},
		{strings.Repeat("a", 32) + " t", strings.Repeat("a", 32) + ` realm="authd"`},
		{strings.Repeat("a", 33) + " t", `Basic realm="authd"`},
	} {
		if got := clientChallenge(tt.auth); got != tt.want {
			t.Errorf("clientChallenge(%q) = %q, want %q", tt.auth, got, tt.want)
		}
	}
}

func TestPageForStep(t *testing.T) {
	own := Page(func(w io.Writer, d PageData) error { _, err := io.WriteString(w, "own"); return err })
	e := errors.E(errors.InvalidRequest, "")
	route := func() http.ResponseWriter {
		return &trackingWriter{ResponseWriter: &pageWriter{ResponseWriter: httptest.NewRecorder(), page: DefaultPage}}
	}
	tests := []struct {
		name string
		w    http.ResponseWriter
		err  error
		want string // "own", "default" or "" (none)
	}{
		{"JSON route", httptest.NewRecorder(), e, ""},
		{"HTML route", route(), e, "default"},
		{"the error's own page on a JSON route", httptest.NewRecorder(), WithPage(e, own), "own"},
		{"the error's own page beats the route's", route(), WithPage(e, own), "own"},
		{"an own page under %w", route(), fmt.Errorf("ctx: %w", WithPage(e, own)), "own"},
		{"WithPage(nil page) changes nothing", route(), WithPage(e, nil), "default"},
		{"a wrapper without Unwrap hides the route", struct{ http.ResponseWriter }{route()}, e, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pageFor(tt.w, tt.err)
			got := ""
			if p != nil {
				var b bytes.Buffer
				p(&b, PageData{Title: "t"})
				got = "default"
				if b.String() == "own" {
					got = "own"
				}
			}
			if got != tt.want {
				t.Errorf("page = %q, want %q", got, tt.want)
			}
		})
	}
	if WithPage(nil, own) != nil {
		t.Error("WithPage(nil, page) is not nil")
	}
}

func TestWriteBodyStep(t *testing.T) {
	resp := response{entry: errors.Entry{Code: errors.AccessDenied, Title: "Access denied"}, status: 403, desc: "d", uri: "u", requestID: "rid"}
	broken := Page(func(w io.Writer, d PageData) error { return errors.New("broken") })
	for _, tt := range []struct {
		name   string
		accept string
		page   Page
		ct     string
	}{
		{"no page", "text/html", nil, "application/json;charset=UTF-8"},
		{"page, browser", "text/html", DefaultPage, "text/html;charset=UTF-8"},
		{"page, JSON client", "application/json", DefaultPage, "application/json;charset=UTF-8"},
		{"broken page", "text/html", broken, "application/json;charset=UTF-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/authorize", nil)
			r.Header.Set("Accept", tt.accept)
			rec := httptest.NewRecorder()
			writeBody(rec, r, slog.New(slog.DiscardHandler), resp, tt.page)
			if rec.Code != 403 || rec.Header().Get("Content-Type") != tt.ct {
				t.Fatalf("%d %q, want 403 %q", rec.Code, rec.Header().Get("Content-Type"), tt.ct)
			}
			if tt.ct == "text/html;charset=UTF-8" {
				if !slices.Contains(rec.Header().Values("X-Frame-Options"), "DENY") || !strings.Contains(rec.Body.String(), "rid") {
					t.Errorf("page without framing protection or request id:\n%s", rec.Body)
				}
				return
			}
			if got, want := rec.Body.String(), `{"error":"access_denied","error_description":"d","error_uri":"u","request_id":"rid"}`+"\n"; got != want {
				t.Errorf("body %q, want %q", got, want)
			}
		})
	}
}
