package client_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/authd-dev/authd/client"
)

// FuzzParseChallenges: any header parses without panicking into at most
// 16 challenges whose schemes and parameter names are tokens; and what
// formatChallenge writes from parsed parameters parses back to them.
func FuzzParseChallenges(f *testing.F) {
	for _, s := range []string{
		`Bearer realm="authd", error="invalid_token", error_description="The access token is invalid or expired", error_uri="https://a/docs/errors#invalid_token"`,
		`Bitcoin-Auth realm="authd", Bearer realm="authd"`,
		`Basic realm="a\"b\\c", charset="UTF-8"`,
		`Negotiate YII=, Basic realm=x`,
		`Bearer realm="unterminated`,
		`,,, Bearer ,, realm = "x" ,`,
		"Bearer realm=\"\x7f\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		chs := client.ParseChallenges([]string{h})
		if len(chs) > 16 {
			t.Fatalf("%d challenges", len(chs))
		}
		for _, c := range chs {
			if c.Scheme == "" || strings.ContainsAny(c.Scheme, " \t,\"=") {
				t.Fatalf("scheme %q", c.Scheme)
			}
			names := make([]string, 0, len(c.Params))
			for k, v := range c.Params {
				if k == "" || k != strings.ToLower(k) || strings.ContainsAny(k, " \t,\"=") {
					t.Fatalf("param name %q", k)
				}
				for i := 0; i < len(v); i++ {
					if v[i] < 0x20 && v[i] != '\t' || v[i] == 0x7f {
						t.Fatalf("param %s value %q has a control byte", k, v)
					}
				}
				names = append(names, k)
			}
			slices.Sort(names)
			again := client.ParseChallenges([]string{client.FormatChallenge(c.Scheme, names, c.Params)})
			if len(again) != 1 || again[0].Scheme != c.Scheme || len(again[0].Params) != len(c.Params) {
				t.Fatalf("round trip of %+v: %+v", c, again)
			}
			for k, v := range c.Params {
				if again[0].Params[k] != v {
					t.Fatalf("round trip of %s=%q: %q", k, v, again[0].Params[k])
				}
			}
		}
	})
}

// FuzzParseErrorBody: any status, headers and body give an *Error with
// that status, a non-negative bounded wait, and never panic.
func FuzzParseErrorBody(f *testing.F) {
	f.Add(401, "application/json;charset=UTF-8", `Bearer realm="authd", error="invalid_token"`, "7", `{"error":"invalid_token","error_description":"d","error_uri":"u","retry_after":3,"request_id":"r"}`)
	f.Add(429, "", "", "Thu, 01 Jan 2099 00:00:00 GMT", `{"error":"rate_limit_exceeded","retry_after":99999999999999999999}`)
	f.Add(503, "text/html", "", "-5", `<html>`)
	f.Add(400, "application/problem+json", "Basic", "", `{"error":["x"]}`)
	f.Fuzz(func(t *testing.T, status int, ctype, challenge, retryAfter, body string) {
		h := http.Header{}
		h.Set("Content-Type", ctype)
		h.Set("WWW-Authenticate", challenge)
		h.Set("Retry-After", retryAfter)
		e := client.ParseErrorBody(status, h, []byte(body))
		if e.Status != status {
			t.Fatalf("status %d", e.Status)
		}
		if e.RetryAfter < 0 || e.RetryAfter > 1<<20*time.Second {
			t.Fatalf("RetryAfter %v", e.RetryAfter)
		}
		_ = e.Error()
		_ = e.Temporary()
	})
}

// FuzzParseCallback: any query either yields a code (then state and iss
// matched), or an error, never both and never a panic.
func FuzzParseCallback(f *testing.F) {
	f.Add("code=abc&state=s1&iss=https%3A%2F%2Fa.example", "s1", "https://a.example")
	f.Add("error=access_denied&error_description=x&state=s1&iss=https%3A%2F%2Fa.example", "s1", "https://a.example")
	f.Add("code=a&code=b", "", "")
	f.Add("code=%zz", "", "")
	f.Fuzz(func(t *testing.T, query, state, issuer string) {
		code, err := client.ParseCallback(&url.URL{RawQuery: query}, state, issuer)
		if (code == "") == (err == nil) {
			t.Fatalf("code %q, err %v", code, err)
		}
		if err != nil {
			return
		}
		q, _ := url.ParseQuery(query)
		if q.Get("state") != state || (issuer != "" && q.Get("iss") != issuer) || q.Get("error") != "" {
			t.Fatalf("accepted %q for state %q issuer %q", query, state, issuer)
		}
	})
}

// FuzzParseRetryAfter: any value gives a wait in [0, ~12 days], and a
// valid delta-seconds value is read as itself.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "12", "999999999999", "Thu, 01 Jan 2099 00:00:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "-1", "1e3", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := client.ParseRetryAfter(v, time.Time{}, now)
		if d < 0 || d > 1<<20*time.Second || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", v, d, ok)
		}
		if tv := strings.TrimSpace(v); ok && len(tv) > 0 && len(tv) <= 6 && utf8.ValidString(tv) && tv[0] >= '0' && tv[0] <= '9' {
			if d%time.Second != 0 {
				t.Fatalf("delta-seconds %q gave %v", v, d)
			}
		}
	})
}
