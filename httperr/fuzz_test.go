package httperr_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/charset"
)

// challenge is one RFC 7235 challenge.
type challenge struct {
	scheme  string
	token68 string
	params  map[string]string
}

func tchar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// parseChallenges parses a WWW-Authenticate field value by RFC 7235 §4.1:
//
//	WWW-Authenticate = 1#challenge
//	challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//	auth-param = token BWS "=" BWS ( token / quoted-string )
//
// It is strict: anything the grammar does not produce is an error.
func parseChallenges(v string) ([]challenge, error) {
	p := &challengeParser{s: v}
	var out []challenge
	for {
		p.skipOWSCommas()
		if p.eof() {
			break
		}
		c, err := p.challenge()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no challenge in %q", v)
	}
	return out, nil
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) eof() bool { return p.i >= len(p.s) }
func (p *challengeParser) peek() byte {
	if p.eof() {
		return 0
	}
	return p.s[p.i]
}
func (p *challengeParser) ows() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t') {
		p.i++
	}
}
func (p *challengeParser) skipOWSCommas() {
	for !p.eof() && (p.peek() == ' ' || p.peek() == '\t' || p.peek() == ',') {
		p.i++
	}
}
func (p *challengeParser) token() string {
	start := p.i
	for !p.eof() && tchar(p.peek()) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *challengeParser) quoted() (string, error) {
	if p.peek() != '"' {
		return "", fmt.Errorf("want a quoted-string at %d in %q", p.i, p.s)
	}
	p.i++
	var b strings.Builder
	for !p.eof() {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), nil
		case c == '\\':
			if p.i+1 >= len(p.s) {
				return "", fmt.Errorf("dangling backslash in %q", p.s)
			}
			q := p.s[p.i+1]
			if q != '\t' && (q < 0x20 || q == 0x7f) {
				return "", fmt.Errorf("bad quoted-pair at %d in %q", p.i, p.s)
			}
			b.WriteByte(q)
			p.i += 2
		case c == '\t' || c == ' ' || c == 0x21 || c >= 0x23 && c <= 0x5b || c >= 0x5d && c <= 0x7e || c >= 0x80:
			b.WriteByte(c)
			p.i++
		default:
			return "", fmt.Errorf("byte %#x not allowed in a quoted-string in %q", c, p.s)
		}
	}
	return "", fmt.Errorf("unterminated quoted-string in %q", p.s)
}

func (p *challengeParser) challenge() (challenge, error) {
	c := challenge{scheme: p.token(), params: map[string]string{}}
	if c.scheme == "" {
		return c, fmt.Errorf("want an auth-scheme at %d in %q", p.i, p.s)
	}
	if p.eof() || p.peek() == ',' {
		return c, nil
	}
	if p.peek() != ' ' {
		return c, fmt.Errorf("want SP after scheme %q in %q", c.scheme, p.s)
	}
	p.ows()
	if p.eof() || p.peek() == ',' {
		return c, nil
	}
	// token68 or the first auth-param.
	save := p.i
	tok := p.token()
	p.ows()
	if p.peek() != '=' {
		return c, fmt.Errorf("want '=' after %q in %q", tok, p.s)
	}
	// token68 ends in "="s followed by the end or a comma.
	j := p.i
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	k := j
	for k < len(p.s) && (p.s[k] == ' ' || p.s[k] == '\t') {
		k++
	}
	if k == len(p.s) || p.s[k] == ',' && !p.nextIsParam(k+1) {
		c.token68 = p.s[save:j]
		p.i = k
		return c, nil
	}
	p.i = save
	for {
		name := p.token()
		if name == "" {
			return c, fmt.Errorf("want an auth-param at %d in %q", p.i, p.s)
		}
		p.ows()
		if p.peek() != '=' {
			return c, fmt.Errorf("want '=' after %q in %q", name, p.s)
		}
		p.i++
		p.ows()
		var val string
		if p.peek() == '"' {
			v, err := p.quoted()
			if err != nil {
				return c, err
			}
			val = v
		} else {
			val = p.token()
			if val == "" {
				return c, fmt.Errorf("empty value for %q in %q", name, p.s)
			}
		}
		name = strings.ToLower(name)
		if _, dup := c.params[name]; dup {
			return c, fmt.Errorf("parameter %q twice in %q", name, p.s)
		}
		c.params[name] = val
		p.ows()
		if p.eof() {
			return c, nil
		}
		if p.peek() != ',' {
			return c, fmt.Errorf("want ',' at %d in %q", p.i, p.s)
		}
		// A comma either separates parameters or ends this challenge.
		p.i++
		p.skipOWSCommas()
		if p.eof() {
			return c, nil
		}
		if !p.nextIsParam(p.i) {
			return c, nil
		}
	}
}

// nextIsParam reports whether s[i:] starts with `token BWS "="` (and not
// a token68's "=" followed by more, which cannot happen after a comma).
func (p *challengeParser) nextIsParam(i int) bool {
	for i < len(p.s) && (p.s[i] == ' ' || p.s[i] == '\t' || p.s[i] == ',') {
		i++
	}
	j := i
	for j < len(p.s) && tchar(p.s[j]) {
		j++
	}
	if j == i {
		return false
	}
	for j < len(p.s) && (p.s[j] == ' ' || p.s[j] == '\t') {
		j++
	}
	return j < len(p.s) && p.s[j] == '='
}

func TestParseChallenges(t *testing.T) {
	tests := []struct {
		in   string
		want []challenge
		bad  bool
	}{
		{in: `Bearer realm="authd"`, want: []challenge{{scheme: "Bearer", params: map[string]string{"realm": "authd"}}}},
		{in: `Basic realm="a b", charset="UTF-8"`, want: []challenge{{scheme: "Basic", params: map[string]string{"realm": "a b", "charset": "UTF-8"}}}},
		{in: `Bearer realm="x", error=invalid_token, Basic realm="y"`, want: []challenge{
			{scheme: "Bearer", params: map[string]string{"realm": "x", "error": "invalid_token"}},
			{scheme: "Basic", params: map[string]string{"realm": "y"}},
		}},
		{in: `Negotiate abc123==, Bitcoin-Auth`, want: []challenge{{scheme: "Negotiate", token68: "abc123==", params: map[string]string{}}, {scheme: "Bitcoin-Auth", params: map[string]string{}}}},
		{in: `Newauth realm="apps", type=1, title="Login to \"apps\""`, want: []challenge{{scheme: "Newauth", params: map[string]string{"realm": "apps", "type": "1", "title": `Login to "apps"`}}}},
		{in: `Bearer realm="unterminated`, bad: true},
		{in: `Bearer realm="a"b"`, bad: true},
		{in: `Bearer realm=`, want: []challenge{{scheme: "Bearer", token68: "realm=", params: map[string]string{}}}},
		{in: `Bearer =x`, bad: true},
		{in: `Bearer realm=a b`, bad: true},
		{in: `Bearer realm="x" error="y"`, bad: true},
		{in: "Bearer realm=\"a\nb\"", bad: true},
		{in: `Bearer realm="a", realm="b"`, bad: true},
		{in: `"Bearer"`, bad: true},
		{in: ``, bad: true},
	}
	for _, tt := range tests {
		got, err := parseChallenges(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("parseChallenges(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseChallenges(%q): %v", tt.in, err)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("parseChallenges(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// FuzzWrite feeds Write arbitrary descriptions, codes, provider errors,
// scopes, URI bases, redirect URIs, states and issuers. Whatever comes in,
// what goes out must be in the RFC 6749 Appendix A charsets: in the JSON
// body, in WWW-Authenticate (which must parse as RFC 7235 challenges) and
// in the Location of a redirect.
func FuzzWrite(f *testing.F) {
	f.Add("Missing required parameter: client_id", "", uint8(0), "", "", testBase, "", "", false, "", uint8(0), "")
	f.Add("bad \"quote\" and \\ backslash\r\n", "invalid_token", uint8(255), "", "", testBase, "", "", false, "", uint8(2), "")
	f.Add("naïve \x00 \xff", "", uint8(13), "", "a\"b c", "https://x/\"y\" z", "", "", false, "", uint8(2), "")
	f.Add("d", "", uint8(2), "", "", testBase, "https://c.example/cb?a=1&state=x#f", "s \"tate\"\n", true, "https://iss\"/", uint8(0), "id")
	f.Add("d", "", uint8(24), "access_denied\"\x7f", "", "", "", "", false, "", uint8(0), "")
	f.Add("é", "nope\"", uint8(255), "", "", "javascript:alert(1)", "com.app:/cb?%zz=1;x", "\u2028", true, "", uint8(1), "bad id")
	f.Add("", "", uint8(7), "", "", "", "", "", false, "", uint8(1), strings.Repeat("a", 65))
	f.Fuzz(func(t *testing.T, desc, code string, pick uint8, provider, scope, base, redirectURI, state string, hasState bool, issuer string, auth uint8, reqID string) {
		cat := errors.Catalog()
		c := errors.Code(code)
		if int(pick) < len(cat) {
			c = cat[pick].Code
		}
		e := errors.E(c, desc).WithRetryAfter(time.Duration(pick) * 100 * time.Millisecond).WithScope(scope).WithProviderError(provider)
		if redirectURI != "" {
			e.Redirect = &errors.Redirect{URI: redirectURI, State: state, HasState: hasState, Issuer: issuer}
		}
		h := httperr.Middleware(httperr.Config{URIBase: base, Logger: slog.New(slog.DiscardHandler)},
			httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error { return e }))
		r := httptest.NewRequest(http.MethodGet, "/authorize", nil)
		r.Header.Set("Accept", "application/json")
		r.Header["X-Request-Id"] = []string{reqID}
		switch auth % 4 {
		case 1:
			r.Header.Set("Authorization", "Basic YTpi")
		case 2:
			r.Header.Set("Authorization", "Bearer t")
		case 3:
			// Any scheme at all: an invalid_client challenge echoes it.
			r.Header.Set("Authorization", desc)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)

		id := rec.Header().Get("X-Request-Id")
		if !validRequestID(id) {
			t.Fatalf("X-Request-Id %q", id)
		}
		if rec.Code == http.StatusFound {
			checkFuzzLocation(t, rec.Header().Get("Location"), state, hasState)
			return
		}
		if rec.Code < 400 {
			t.Fatalf("status %d", rec.Code)
		}
		var b map[string]any
		dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&b); err != nil {
			t.Fatalf("body is not JSON: %v\n%q", err, rec.Body)
		}
		for k, v := range b {
			switch k {
			case "error", "error_description", "provider_error":
				s, ok := v.(string)
				if !ok || !charset.NQSChars(s) || s == "" {
					t.Errorf("%s = %q is outside %%x20-21 / %%x23-5B / %%x5D-7E", k, v)
				}
			case "error_uri":
				s, ok := v.(string)
				if !ok || !charset.NQChars(s) || s == "" {
					t.Errorf("error_uri = %q is outside %%x21 / %%x23-5B / %%x5D-7E", v)
				}
			case "request_id":
				if v != id {
					t.Errorf("request_id %v, header %q", v, id)
				}
			case "retry_after":
				n, ok := v.(json.Number)
				if ra := rec.Header().Get("Retry-After"); !ok || n.String() != ra || ra == "0" {
					t.Errorf("retry_after %v, Retry-After %q", v, ra)
				}
			default:
				t.Errorf("unexpected member %q", k)
			}
		}
		if _, ok := errors.Lookup(errors.Code(b["error"].(string))); !ok {
			t.Errorf("error %q is not in the catalog", b["error"])
		}
		if rec.Code == http.StatusUnauthorized && len(rec.Header().Values("WWW-Authenticate")) == 0 {
			t.Errorf("401 %s without WWW-Authenticate", b["error"])
		}
		for _, v := range rec.Header().Values("WWW-Authenticate") {
			cs, err := parseChallenges(v)
			if err != nil {
				t.Fatalf("WWW-Authenticate: %v", err)
			}
			for _, ch := range cs {
				for k, pv := range ch.params {
					ok := charset.NQSChars
					if k == "error_uri" {
						ok = charset.NQChars
					}
					if !ok(pv) {
						t.Errorf("WWW-Authenticate %s=%q is outside the charset", k, pv)
					}
				}
			}
		}
	})
}

// checkFuzzLocation checks the parameters an error redirect adds.
func checkFuzzLocation(t *testing.T, loc, state string, hasState bool) {
	t.Helper()
	_, q, ok := strings.Cut(loc, "?")
	if !ok {
		t.Fatalf("Location %q has no query", loc)
	}
	// The registered URI's own parameters come first and may be anything;
	// ours are the last ones, in a fixed order.
	parts := strings.Split(q, "&")
	ours := map[string]string{}
	for _, p := range parts {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "error", "error_description", "error_uri", "state", "iss":
			if _, dup := ours[k]; dup {
				t.Fatalf("Location %q has %s twice", loc, k)
			}
			dv, err := url.QueryUnescape(v)
			if err != nil {
				t.Fatalf("Location %q: %s: %v", loc, k, err)
			}
			ours[k] = dv
		}
	}
	for _, k := range []string{"error", "error_description", "error_uri"} {
		if _, ok := ours[k]; !ok {
			t.Fatalf("Location %q lacks %s", loc, k)
		}
	}
	if !charset.NQSChars(ours["error"]) || !charset.NQSChars(ours["error_description"]) {
		t.Errorf("Location %q: error or error_description outside the charset", loc)
	}
	if !charset.NQChars(ours["error_uri"]) || !charset.NQChars(ours["iss"]) {
		t.Errorf("Location %q: error_uri or iss outside the charset", loc)
	}
	if _, ok := errors.Lookup(errors.Code(ours["error"])); !ok {
		t.Errorf("Location %q: error not in the catalog", loc)
	}
	got, sent := ours["state"]
	if sent != hasState {
		t.Errorf("Location %q: state sent = %v, want %v", loc, sent, hasState)
	}
	// state is opaque to authd: whatever the client sent comes back byte
	// for byte, or its CSRF check would fail.
	if hasState && got != state {
		t.Errorf("Location %q: state %q, want %q echoed exactly", loc, got, state)
	}
	if strings.ContainsAny(loc, "#") && strings.Index(loc, "#") > strings.Index(loc, "?") {
		t.Errorf("Location %q: fragment after the query", loc)
	}
}
