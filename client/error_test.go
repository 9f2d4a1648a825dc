package client_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/client"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
)

// writeOf answers one request with httperr.Write(err), authd's one error
// writer, and returns the response.
func writeOf(t *testing.T, err error, hdr map[string]string) *http.Response {
	t.Helper()
	h := httperr.Middleware(httperr.Config{URIBase: "https://auth.example.com/docs/errors", Logger: discard()},
		httperr.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return err }))
	req := httptest.NewRequest("GET", "/x", nil)
	req.Header.Set("X-Request-Id", "req-42")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

// TestParseErrorEveryCode: every code of authd's catalog, written by the
// server's own writer, comes back with every field the writer sent.
func TestParseErrorEveryCode(t *testing.T) {
	for _, entry := range errors.Catalog() {
		t.Run(string(entry.Code), func(t *testing.T) {
			e := errors.E(entry.Code, "Text for "+string(entry.Code))
			hdr := map[string]string{}
			switch entry.Code {
			case errors.RateLimitExceeded, errors.TemporarilyUnavailable:
				e.WithRetryAfter(2500 * time.Millisecond)
			case errors.InsufficientScope:
				e.WithScope("backup")
				hdr["Authorization"] = "Bearer x"
			case errors.InvalidToken:
				hdr["Authorization"] = "Bearer x"
			case errors.GoogleAuthFailed, errors.GitHubAuthFailed:
				e.WithProviderError("access_denied")
			}
			resp := writeOf(t, e, hdr)
			err := client.ParseError(resp)
			var ce *client.Error
			if !errors.As(err, &ce) {
				t.Fatalf("ParseError = %v, want *client.Error", err)
			}
			want := &client.Error{
				Code: entry.Code, Description: "Text for " + string(entry.Code),
				URI: "https://auth.example.com/docs/errors#" + string(entry.Code), RequestID: "req-42", Status: entry.Status,
			}
			if entry.Status >= 500 {
				want.Description = entry.Description // the writer sends the catalog's text
			}
			switch entry.Code {
			case errors.RateLimitExceeded, errors.TemporarilyUnavailable:
				want.RetryAfter = 3 * time.Second // whole seconds, rounded up
			case errors.InsufficientScope:
				want.Scope = "backup"
			case errors.GoogleAuthFailed, errors.GitHubAuthFailed:
				want.ProviderError = "access_denied"
			}
			if *ce != *want {
				t.Errorf("got  %+v\nwant %+v", *ce, *want)
			}
			if got := ce.Temporary(); got != (entry.Status == 429 || entry.Status == 503) {
				t.Errorf("Temporary() = %v for status %d", got, entry.Status)
			}
		})
	}
}

// TestParseErrorGolden reads the wire bodies the server's writer is pinned
// to (httperr's golden files) as a client would receive them.
func TestParseErrorGolden(t *testing.T) {
	files, err := filepath.Glob("../httperr/testdata/TestWrite/*.json.golden")
	if err != nil || len(files) < 20 {
		t.Fatalf("golden files: %v (%d)", err, len(files))
	}
	for _, f := range files {
		code := errors.Code(strings.TrimSuffix(filepath.Base(f), ".json.golden"))
		t.Run(string(code), func(t *testing.T) {
			resp := readGolden(t, f)
			var ce *client.Error
			if !errors.As(client.ParseError(resp), &ce) {
				t.Fatal("not an *Error")
			}
			if ce.Code != code || ce.Status != resp.StatusCode || ce.RequestID != "golden-request-0001" ||
				ce.URI != "https://auth.example.com/docs/errors#"+string(code) || ce.Description == "" {
				t.Errorf("%+v", *ce)
			}
			if ra := resp.Header.Get("Retry-After"); ra != "" && ce.RetryAfter.String() != ra+"s" {
				t.Errorf("RetryAfter %v, header %s", ce.RetryAfter, ra)
			}
			if code == errors.InsufficientScope && ce.Scope != "backup profile" {
				t.Errorf("Scope %q", ce.Scope)
			}
			if code == errors.GoogleAuthFailed && ce.ProviderError != "access_denied" {
				t.Errorf("ProviderError %q", ce.ProviderError)
			}
		})
	}
}

// readGolden turns a golden file ("HTTP 403", headers, blank line, body)
// into a response.
func readGolden(t *testing.T, path string) *http.Response {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.Replace(b, []byte("HTTP "), []byte("HTTP/1.1 "), 1)
	resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(b)), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestParseErrorBody covers what is not authd's writer: challenges
// without a body, HTTP dates, proxies' pages, odd members.
func TestParseErrorBody(t *testing.T) {
	date := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		body   string
		want   client.Error
	}{
		{
			name: "challenge only", status: 401,
			header: http.Header{"Www-Authenticate": {`Bearer realm="api", error="invalid_token", error_description="The token \"x\" expired", error_uri="https://a.example/docs/errors#invalid_token"`}},
			want:   client.Error{Code: "invalid_token", Description: `The token "x" expired`, URI: "https://a.example/docs/errors#invalid_token", Status: 401},
		},
		{
			name: "body wins over challenge", status: 403,
			header: http.Header{"Content-Type": {"application/json"}, "Www-Authenticate": {`Bearer error="invalid_token", scope="a b"`}},
			body:   `{"error":"insufficient_scope","error_description":"d","error_uri":"u","request_id":"r"}`,
			want:   client.Error{Code: "insufficient_scope", Description: "d", URI: "u", RequestID: "r", Status: 403, Scope: "a b"},
		},
		{
			name: "Bearer chosen among challenges", status: 401,
			header: http.Header{"Www-Authenticate": {`Bitcoin-Auth realm="authd", error="x"`, `Bearer realm="authd", error="invalid_token"`}},
			want:   client.Error{Code: "invalid_token", Status: 401},
		},
		{
			name: "challenge without error", status: 401,
			header: http.Header{"Www-Authenticate": {`Bearer realm="authd"`}, "X-Request-Id": {"hdr-id"}},
			want:   client.Error{Status: 401, RequestID: "hdr-id"},
		},
		{
			name: "retry_after member without header", status: 429,
			header: http.Header{"Content-Type": {"application/json;charset=UTF-8"}},
			body:   `{"error":"rate_limit_exceeded","retry_after":7}`,
			want:   client.Error{Code: "rate_limit_exceeded", Status: 429, RetryAfter: 7 * time.Second},
		},
		{
			name: "header wins over member", status: 503,
			header: http.Header{"Retry-After": {"2"}},
			body:   `{"error":"temporarily_unavailable","retry_after":7}`,
			want:   client.Error{Code: "temporarily_unavailable", Status: 503, RetryAfter: 2 * time.Second},
		},
		{
			name: "HTTP-date from the response's Date", status: 503,
			header: http.Header{"Retry-After": {date.Add(90 * time.Second).Format(http.TimeFormat)}, "Date": {date.Format(http.TimeFormat)}},
			want:   client.Error{Status: 503, RetryAfter: 90 * time.Second},
		},
		{
			name: "proxy HTML page", status: 502,
			header: http.Header{"Content-Type": {"text/html"}},
			body:   `<html>{"error":"no"}</html>`,
			want:   client.Error{Status: 502},
		},
		{
			name: "JSON with junk members", status: 400,
			header: http.Header{"Content-Type": {"application/problem+json"}},
			body:   `{"error":"invalid_request","retry_after":"soon","extra":[1,2]}`,
			want:   client.Error{Code: "invalid_request", Status: 400},
		},
		{
			name: "not JSON at all", status: 500, body: `{"error":`,
			want: client.Error{Status: 500},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.header == nil {
				tc.header = http.Header{}
			}
			got := client.ParseErrorBody(tc.status, tc.header, []byte(tc.body))
			if *got != tc.want {
				t.Errorf("got  %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

func TestParseErrorSuccess(t *testing.T) {
	for _, status := range []int{200, 201, 204, 302, 304, 399} {
		resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"error":"x"}`))}
		if err := client.ParseError(resp); err != nil {
			t.Errorf("status %d: %v", status, err)
		}
	}
}

func TestErrorIsAndText(t *testing.T) {
	e := &client.Error{Code: errors.BackupConflict, Description: "Changed", Status: 412, RequestID: "r1"}
	wrapped := fmt.Errorf("saving: %w", e)
	if !errors.Is(wrapped, client.ErrConflict) || errors.Is(wrapped, client.ErrNotFound) {
		t.Error("Is does not go by code")
	}
	if errors.Is(wrapped, &client.Error{Code: errors.BackupConflict, Status: 409}) {
		t.Error("Is ignores a status the target names")
	}
	if errors.Is(&client.Error{Status: 500}, &client.Error{}) {
		t.Error("an empty target matches")
	}
	if client.CodeOf(wrapped) != errors.BackupConflict || client.CodeOf(errors.New("x")) != "" || client.CodeOf(nil) != "" {
		t.Error("CodeOf")
	}
	if got := e.Error(); got != "authd: backup_conflict: Changed (HTTP 412, request r1)" {
		t.Errorf("Error() = %q", got)
	}
	if got := (&client.Error{Status: 502}).Error(); got != "authd: 502 Bad Gateway" {
		t.Errorf("Error() = %q", got)
	}
	for _, tc := range []struct {
		e    client.Error
		want bool
	}{
		{client.Error{Status: 429}, true},
		{client.Error{Status: 503}, true},
		{client.Error{Code: errors.TemporarilyUnavailable}, true}, // delivered by redirect
		{client.Error{Status: 500}, false},
		{client.Error{Status: 401, Code: errors.InvalidToken}, false},
	} {
		if got := tc.e.Temporary(); got != tc.want {
			t.Errorf("%+v.Temporary() = %v", tc.e, got)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		v    string
		date time.Time
		want time.Duration
		ok   bool
	}{
		{"0", time.Time{}, 0, true},
		{"12", time.Time{}, 12 * time.Second, true},
		{" 3 ", time.Time{}, 3 * time.Second, true},
		{"99999999999999999999", time.Time{}, 1 << 20 * time.Second, true},
		{now.Add(time.Minute).Format(http.TimeFormat), time.Time{}, time.Minute, true},
		{now.Add(time.Minute).Format(http.TimeFormat), now.Add(-time.Hour), time.Hour + time.Minute, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), time.Time{}, 0, true},
		{"Thursday, 04-Dec-26 10:00:05 GMT", time.Time{}, 5 * time.Second, true}, // RFC 850
		{"Thu Dec  4 10:00:05 2026", time.Time{}, 5 * time.Second, true},         // asctime
		{"", time.Time{}, 0, false},
		{"-1", time.Time{}, 0, false},
		{"1.5", time.Time{}, 0, false},
		{"soon", time.Time{}, 0, false},
	} {
		got, ok := client.ParseRetryAfter(tc.v, tc.date, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.v, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseChallenges(t *testing.T) {
	type ch = client.Challenge
	for _, tc := range []struct {
		in   []string
		want []ch
	}{
		{[]string{`Bearer realm="authd"`}, []ch{{Scheme: "Bearer", Params: map[string]string{"realm": "authd"}}}},
		{[]string{`Bearer`}, []ch{{Scheme: "Bearer"}}},
		{[]string{`Bitcoin-Auth realm="authd", Bearer realm="authd"`}, []ch{
			{Scheme: "Bitcoin-Auth", Params: map[string]string{"realm": "authd"}},
			{Scheme: "Bearer", Params: map[string]string{"realm": "authd"}},
		}},
		{[]string{`Bitcoin-Auth realm="authd"`, `Bearer realm="authd"`}, []ch{
			{Scheme: "Bitcoin-Auth", Params: map[string]string{"realm": "authd"}},
			{Scheme: "Bearer", Params: map[string]string{"realm": "authd"}},
		}},
		{[]string{`Basic realm="a\"b\\c", charset="UTF-8"`}, []ch{{Scheme: "Basic", Params: map[string]string{"realm": `a"b\c`, "charset": "UTF-8"}}}},
		{[]string{`Bearer REALM = x , Error=invalid_token,,`}, []ch{{Scheme: "Bearer", Params: map[string]string{"realm": "x", "error": "invalid_token"}}}},
		{[]string{`Negotiate YII=, Basic realm="x"`}, []ch{{Scheme: "Negotiate", Token68: "YII="}, {Scheme: "Basic", Params: map[string]string{"realm": "x"}}}},
		{[]string{`Newauth abc==`}, []ch{{Scheme: "Newauth", Token68: "abc=="}}},
		{[]string{`Bearer realm="a", realm="b"`}, []ch{{Scheme: "Bearer", Params: map[string]string{"realm": "a"}}}},
		{[]string{`, Bearer, Basic`}, []ch{{Scheme: "Bearer"}, {Scheme: "Basic"}}},
		// Stops at what it cannot parse, keeping what came before.
		{[]string{`Bearer realm="unterminated`}, []ch{{Scheme: "Bearer"}}},
		{[]string{`Basic realm="x", Bearer error="a" junk`}, []ch{{Scheme: "Basic", Params: map[string]string{"realm": "x"}}, {Scheme: "Bearer", Params: map[string]string{"error": "a"}}}},
		{[]string{`"quoted"`}, nil},
		{nil, nil},
	} {
		got := client.ParseChallenges(tc.in)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParseChallenges(%q)\n got  %v\n want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseCallback(t *testing.T) {
	const iss = "https://auth.example.com"
	for _, tc := range []struct {
		name, query, state, issuer string
		code                       string
		err                        error
		want                       *client.Error
	}{
		{name: "code", query: "code=abc&state=s1&iss=" + url.QueryEscape(iss), state: "s1", issuer: iss, code: "abc"},
		{name: "no iss check", query: "code=abc&state=s1", state: "s1", code: "abc"},
		{name: "no state sent", query: "code=abc&iss=" + iss, issuer: iss, code: "abc"},
		{name: "state missing", query: "code=abc", state: "s1", err: client.ErrStateMismatch},
		{name: "state differs", query: "code=abc&state=s2", state: "s1", err: client.ErrStateMismatch},
		{name: "state unexpected", query: "code=abc&state=s2", err: client.ErrStateMismatch},
		{name: "iss missing", query: "code=abc&state=s1", state: "s1", issuer: iss, err: client.ErrIssuerMismatch},
		{name: "iss differs", query: "code=abc&state=s1&iss=https://evil.example", state: "s1", issuer: iss, err: client.ErrIssuerMismatch},
		{name: "state checked before error", query: "error=access_denied&state=zz", state: "s1", err: client.ErrStateMismatch},
		{name: "repeated code", query: "code=a&code=b&state=s1", state: "s1", err: client.ErrInvalidCallback},
		{name: "nothing", query: "state=s1", state: "s1", err: client.ErrInvalidCallback},
		{name: "bad escape", query: "code=%zz&state=s1", state: "s1", err: client.ErrInvalidCallback},
		{
			name: "error", state: "st 42/?&=", issuer: iss,
			query: "keep=1&error=access_denied&error_description=Google+authentication+was+unsuccessful&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23google_auth_failed&state=st+42%2F%3F%26%3D&iss=https%3A%2F%2Fauth.example.com",
			want:  &client.Error{Code: "access_denied", Description: "Google authentication was unsuccessful", URI: "https://auth.example.com/docs/errors#google_auth_failed", State: "st 42/?&=", Issuer: iss},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := client.ParseCallback(&url.URL{Path: "/cb", RawQuery: tc.query}, tc.state, tc.issuer)
			if tc.want != nil {
				var ce *client.Error
				if !errors.As(err, &ce) || *ce != *tc.want {
					t.Fatalf("err = %#v, want %+v", err, tc.want)
				}
				return
			}
			if err != tc.err || code != tc.code {
				t.Fatalf("ParseCallback = %q, %v; want %q, %v", code, err, tc.code, tc.err)
			}
		})
	}
}

// TestParseCallbackFromWriter: the redirect authd's writer makes for every
// redirectable code is read back by ParseCallback.
func TestParseCallbackFromWriter(t *testing.T) {
	for _, entry := range errors.Catalog() {
		if !entry.Redirectable {
			continue
		}
		t.Run(string(entry.Code), func(t *testing.T) {
			e := errors.E(entry.Code, "Text").WithRedirect(&errors.Redirect{
				URI: "https://client.example/cb?keep=1", State: "s&1", HasState: true, Issuer: "https://auth.example.com"})
			resp := writeOf(t, e, nil)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = client.ParseCallback(loc, "s&1", "https://auth.example.com")
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Code != entry.Code || ce.URI != "https://auth.example.com/docs/errors#"+string(entry.Code) || ce.Status != 0 {
				t.Fatalf("ParseCallback: %#v", err)
			}
			if entry.Status < 500 && ce.Description != "Text" {
				t.Errorf("Description %q", ce.Description)
			}
		})
	}
}
