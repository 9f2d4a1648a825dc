package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/sigauth"
	"github.com/authd-dev/authd/store"
)

// TestRedirectURITricks: a redirect_uri that is not exactly a registered
// one never gets a code, and is never redirected to at all; only a
// loopback IP literal may change its port (RFC 8252 §7.3, RFC 9700 §2.1).
func TestRedirectURITricks(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	c, _ := h.client(ClientRegistration{RedirectURIs: []string{
		"https://example.com/cb",
		"https://app.example.com/cb?x=1",
		"http://127.0.0.1/loop",
		"http://[::1]:8080/v6",
		"http://localhost:3000/dev",
		"com.example.app:/oauth",
	}, Public: true})
	addr := h.wallet.user()
	_, challenge := pkce()
	for _, tc := range []struct {
		uri string
		ok  bool
	}{
		{"https://example.com/cb", true},
		{"https://app.example.com/cb?x=1", true},
		{"com.example.app:/oauth", true},
		{"http://127.0.0.1/loop", true},
		{"http://127.0.0.1:49152/loop", true},
		{"http://127.0.0.1:1/loop", true},
		{"http://[::1]/v6", true},
		{"http://[::1]:51000/v6", true},
		{"http://localhost:3000/dev", true},

		{"https://evilexample.com/cb", false},      // go-oauth2's host-suffix match accepts this
		{"https://example.com.evil.com/cb", false}, // suffix
		{"https://evil.com/example.com/cb", false}, // host in the path
		{"https://sub.example.com/cb", false},      // subdomain
		{"https://example.com/cb/", false},         // trailing slash
		{"https://example.com/cb/../admin", false}, // path traversal
		{"https://example.com/cb/..%2fadmin", false},
		{"https://example.com/cbx", false},           // path prefix
		{"https://example.com/c%62", false},          // encoded path
		{"https://example.com/cb?x=1", false},        // added query
		{"https://example.com/cb#frag", false},       // fragment
		{"https://Example.com/cb", false},            // case
		{"https://example.com:443/cb", false},        // explicit default port
		{"http://example.com/cb", false},             // scheme downgrade
		{"https://example.com@evil.com/cb", false},   // userinfo
		{"https://evil.com\\@example.com/cb", false}, // backslash
		{"https://app.example.com/cb?x=1&x=2", false},
		{"https://app.example.com/cb?x=2", false},
		{"https://app.example.com/cb", false},
		{"com.example.app:/oauth/../x", false},
		{"com.example.app://oauth", false},
		{"http://127.0.0.1:8080/loopx", false},
		{"http://127.0.0.1:0/loop", false},
		{"http://127.0.0.1:65536/loop", false},
		{"http://127.0.0.1:080/loop", false},
		{"http://127.0.0.1.evil.com/loop", false},
		{"http://127.0.0.1:80@evil.com/loop", false},
		{"https://127.0.0.1/loop", false},
		{"http://127.0.0.2/loop", false},
		{"http://localhost/loop", false},     // only IP literals vary the port
		{"http://localhost:3001/dev", false}, // localhost keeps its port
		{"http://[::1]:51000/v6x", false},
		{"http://[::2]:8080/v6", false},
		{"", false},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			params := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "code_challenge": {challenge},
				"code_challenge_method": {"S256"}, "state": {"s"}}
			if tc.uri != "" {
				params.Set("redirect_uri", tc.uri)
			}
			for _, accept := range []string{"text/html", "application/json"} {
				resp, body := h.signedAuthorize(addr, authorizeURL(params), map[string]string{"Accept": accept})
				loc := resp.Header.Get("Location")
				if tc.ok {
					u, _ := url.Parse(loc)
					reg, _ := url.Parse(tc.uri)
					same := u.Scheme == reg.Scheme && u.Host == reg.Host && u.Path == reg.Path && u.Opaque == reg.Opaque
					for k, vs := range reg.Query() {
						same = same && len(u.Query()[k]) == 1 && u.Query().Get(k) == vs[0]
					}
					if resp.StatusCode != http.StatusFound || !same || u.Query().Get("code") == "" {
						t.Fatalf("%s: %d, Location %q: %s", accept, resp.StatusCode, loc, body)
					}
					continue
				}
				if loc != "" || resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("%s: %d, Location %q; want 400 and no redirect", accept, resp.StatusCode, loc)
				}
				if accept == "application/json" {
					var e map[string]string
					json.Unmarshal(body, &e)
					if e["error"] != "invalid_request" {
						t.Errorf("error %q", e["error"])
					}
				} else if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					t.Errorf("browser got %s", resp.Header.Get("Content-Type"))
				}
			}
		})
	}
	// go-oauth2's DefaultValidateURI is replaced in the manager too.
	if err := ValidateRedirectURIList("https://example.com/cb", "https://evilexample.com/cb"); err == nil {
		t.Error("validateRedirectURIList accepts a host suffix")
	}
}

// TestAuthorizeNeverRedirectsBeforeValidation: problems with client_id or
// redirect_uri are answered directly (HTML for browsers, JSON on request),
// never as a redirect, whatever else is wrong.
func TestAuthorizeNeverRedirectsBeforeValidation(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	c, _ := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
	addr := h.wallet.user()
	good := "https://app.example.com/cb"
	for _, tc := range []struct {
		name  string
		query string
		desc  string
	}{
		{"unknown client", "response_type=code&client_id=nope&redirect_uri=" + url.QueryEscape(good), "Unknown client_id"},
		{"unknown client, attacker URI", "response_type=code&client_id=nope&redirect_uri=https%3A%2F%2Fevil.com%2F", "Unknown client_id"},
		{"missing client_id", "response_type=code&redirect_uri=" + url.QueryEscape(good), "Missing required parameter: client_id"},
		{"empty client_id", "response_type=code&client_id=&redirect_uri=" + url.QueryEscape(good), "Missing required parameter: client_id"},
		{"repeated client_id", "response_type=code&client_id=" + c.ID + "&client_id=" + c.ID + "&redirect_uri=" + url.QueryEscape(good), "more than once: client_id"},
		{"missing redirect_uri", "response_type=code&client_id=" + c.ID, "Missing required parameter: redirect_uri"},
		{"repeated redirect_uri", "response_type=code&client_id=" + c.ID + "&redirect_uri=" + url.QueryEscape(good) + "&redirect_uri=" + url.QueryEscape(good), "more than once: redirect_uri"},
		{"unregistered redirect_uri", "response_type=token&client_id=" + c.ID + "&redirect_uri=https%3A%2F%2Fevil.com%2Fcb", "not registered"},
		{"malformed query", "client_id=%zz", "query string is malformed"},
		{"junk client_id", "response_type=code&client_id=%00%01%22&redirect_uri=" + url.QueryEscape(good), "Unknown client_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, signed := range []bool{false, true} {
				path := "/authorize?" + tc.query
				var resp *http.Response
				var body []byte
				if signed {
					resp, body = h.signedAuthorize(addr, path, map[string]string{"Accept": "application/json"})
				} else {
					resp, body = h.get(path, map[string]string{"Accept": "application/json"})
				}
				if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
					t.Fatalf("signed=%v: %d Location %q", signed, resp.StatusCode, resp.Header.Get("Location"))
				}
				var e map[string]string
				json.Unmarshal(body, &e)
				if e["error"] != "invalid_request" || !strings.Contains(e["error_description"], tc.desc) {
					t.Errorf("signed=%v: %v, want invalid_request mentioning %q", signed, e, tc.desc)
				}
			}
			resp, body := h.get("/authorize?"+tc.query, nil) // a browser
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
				!strings.Contains(string(body), "invalid_request") {
				t.Errorf("browser: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		})
	}
}

// TestAuthorizeErrorsRedirect: once client and redirect_uri are valid,
// errors go back to the client with error, error_description, error_uri,
// state (only when sent) and iss, keeping the registered URI's query.
func TestAuthorizeErrorsRedirect(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	pub, _ := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb?keep=1"}, Public: true, Scopes: []string{"profile", "backup"}})
	conf, _ := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb?keep=1"}, Scopes: []string{"profile"}})
	cc, _ := h.client(ClientRegistration{Grants: []string{"client_credentials"}, RedirectURIs: []string{"https://app.example.com/cb?keep=1"}})
	_, challenge := pkce()
	addr := h.wallet.user()
	for _, tc := range []struct {
		name   string
		client *Client
		set    map[string]string
		extra  string // raw query appended
		code   string
		noSt   bool
	}{
		{"missing response_type", pub, map[string]string{"response_type": ""}, "", "invalid_request", false},
		{"response_type token", pub, map[string]string{"response_type": "token"}, "", "unsupported_response_type", false},
		{"response_type code token", pub, map[string]string{"response_type": "code token"}, "", "unsupported_response_type", false},
		{"grant not registered", cc, nil, "", "unauthorized_client", false},
		{"scope beyond registration", conf, map[string]string{"scope": "profile backup"}, "", "invalid_scope", false},
		{"unknown scope", pub, map[string]string{"scope": "admin"}, "", "invalid_scope", false},
		{"malformed scope", pub, map[string]string{"scope": "profile  backup"}, "", "invalid_scope", false},
		{"scope with quote", pub, map[string]string{"scope": `pro"file`}, "", "invalid_scope", false},
		{"public without PKCE", pub, map[string]string{"code_challenge": "", "code_challenge_method": ""}, "", "invalid_request", false},
		{"plain", pub, map[string]string{"code_challenge_method": "plain"}, "", "invalid_request", false},
		{"method missing means plain", pub, map[string]string{"code_challenge_method": ""}, "", "invalid_request", false},
		{"method without challenge", conf, map[string]string{"code_challenge": ""}, "", "invalid_request", false},
		{"short challenge", pub, map[string]string{"code_challenge": "abc"}, "", "invalid_request", false},
		{"challenge with bad char", pub, map[string]string{"code_challenge": strings.Repeat("a", 42) + "="}, "", "invalid_request", false},
		{"repeated scope", pub, nil, "&scope=profile&scope=profile", "invalid_request", false},
		{"repeated response_type", pub, nil, "&response_type=code", "invalid_request", false},
		{"repeated state", pub, nil, "&state=other", "invalid_request", true},
		{"no state", pub, map[string]string{"state": "", "response_type": "token"}, "", "unsupported_response_type", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := url.Values{"response_type": {"code"}, "client_id": {tc.client.ID}, "redirect_uri": {"https://app.example.com/cb?keep=1"},
				"state": {"st ü&=1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			for k, v := range tc.set {
				if v == "" {
					p.Del(k)
				} else {
					p.Set(k, v)
				}
			}
			path := authorizeURL(p) + tc.extra
			for _, signed := range []bool{false, true} {
				var resp *http.Response
				if signed {
					resp, _ = h.signedAuthorize(addr, path, nil)
				} else {
					resp, _ = h.get(path, nil)
				}
				if resp.StatusCode != http.StatusFound {
					t.Fatalf("signed=%v: status %d, want 302", signed, resp.StatusCode)
				}
				u, _ := url.Parse(resp.Header.Get("Location"))
				q := u.Query()
				if u.Host != "app.example.com" || u.Path != "/cb" || q.Get("keep") != "1" {
					t.Errorf("redirected to %s", u)
				}
				if q.Get("error") != tc.code || q.Get("iss") != h.issuer || q.Get("error_description") == "" {
					t.Errorf("signed=%v: %v, want error=%s", signed, q, tc.code)
				}
				if tc.noSt && q.Has("state") || !tc.noSt && q.Get("state") != "st ü&=1" {
					t.Errorf("state %q (present %v)", q.Get("state"), q.Has("state"))
				}
				for k := range q {
					switch k {
					case "error", "error_description", "error_uri", "state", "iss", "keep":
					default:
						t.Errorf("unexpected parameter %q in error redirect", k)
					}
				}
			}
		})
	}
}

// TestWalletFailuresAreAnsweredDirectly: X-Auth-Token failures, the
// wallet's 429 and 503 at /authorize are never redirected: JSON when the
// client prefers it, else the login page showing the error.
func TestWalletFailuresAreAnsweredDirectly(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	c, _ := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
	addr := h.wallet.user()
	path := authorizeURL(url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {"https://app.example.com/cb"}, "state": {"s"}})
	other := authorizeURL(url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {"https://app.example.com/cb"}, "state": {"t"}})
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		down   bool // sigauth's Redis fails
		status int
		code   string
	}{
		{"empty token", map[string]string{"X-Auth-Token": ""}, false, 401, "missing_auth_token"},
		{"malformed", map[string]string{"X-Auth-Token": "nonsense"}, false, 400, "malformed_auth_token"},
		{"signed for another URI", map[string]string{"X-Auth-Token": h.wallet.token(addr, other, nil)}, false, 401, "invalid_signature"},
		{"Bitcoin-Auth scheme, bad", map[string]string{"Authorization": "Bitcoin-Auth " + h.wallet.token(addr, other, nil)}, false, 401, "invalid_signature"},
		{"wallet unavailable", map[string]string{"X-Auth-Token": h.wallet.token(addr, path, nil)}, true, 503, "temporarily_unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A browser of its own: its failures count towards a lockout
			// of its own.
			h.c = h.browser()
			if tc.down {
				h.fault.set(sigauth.DefaultKeyPrefix)
				defer h.fault.set("")
			}
			hdr := map[string]string{"Accept": "application/json"}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			resp, body := h.get(path, hdr)
			var e map[string]any
			json.Unmarshal(body, &e)
			if resp.StatusCode != tc.status || e["error"] != tc.code || resp.Header.Get("Location") != "" {
				t.Fatalf("JSON: %d %v Location %q", resp.StatusCode, e, resp.Header.Get("Location"))
			}
			if tc.status == 503 && resp.Header.Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			hdr["Accept"] = "text/html"
			resp, body = h.get(path, hdr)
			if resp.StatusCode != tc.status || resp.Header.Get("Location") != "" || !strings.Contains(string(body), `role="alert"`) {
				t.Fatalf("HTML: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			if !strings.Contains(string(body), `name="login_id"`) && tc.status != 503 {
				t.Error("the error page offers no way to sign in by hand")
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://app.example.com;") {
				t.Errorf("CSP %q would block the redirect after signing in on this page", csp)
			}
		})
	}
	// A signed request is also accepted as Authorization: Bitcoin-Auth.
	resp, _ := h.get(path, map[string]string{"Authorization": "Bitcoin-Auth " + h.wallet.token(addr, path, nil)})
	if resp.StatusCode != http.StatusFound {
		t.Errorf("Bitcoin-Auth: %d", resp.StatusCode)
	}
	// No token, JSON preferred: missing_auth_token, not a login page (in
	// a browser without the session the signed requests started).
	h.c = h.browser()
	resp, body := h.get(path, map[string]string{"Accept": "application/json"})
	if resp.StatusCode != 401 || !strings.Contains(string(body), "missing_auth_token") || resp.Header.Get("WWW-Authenticate") != `Bitcoin-Auth realm="authd"` {
		t.Errorf("no token, JSON: %d %s", resp.StatusCode, body)
	}
}

// TestAuthorizePOST: /authorize accepts its parameters as a form post,
// signed over the body, and a parameter in both query and body counts as
// repeated.
func TestAuthorizePOST(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
	addr := h.wallet.user()
	form := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {"https://app.example.com/cb"}, "state": {"p"}}
	body := []byte(form.Encode())
	resp, _ := h.postForm("/authorize", form, map[string]string{"X-Auth-Token": h.wallet.token(addr, "/authorize", body)})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("signed POST: %d", resp.StatusCode)
	}
	u, _ := url.Parse(resp.Header.Get("Location"))
	h.token(url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {"https://app.example.com/cb"}}, c.ID, secret).wantOK(t)

	// Signed over another body: refused.
	resp, _ = h.postForm("/authorize", form, map[string]string{"X-Auth-Token": h.wallet.token(addr, "/authorize", []byte("x"))})
	if resp.StatusCode != 401 {
		t.Errorf("body not covered by the signature: %d", resp.StatusCode)
	}
	// Unsigned, from a browser without the session the signed POST
	// started: the login page.
	h.c = h.browser()
	resp, b := h.postForm("/authorize", form, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `name="login_id"`) {
		t.Errorf("unsigned POST: %d", resp.StatusCode)
	}
	// A parameter in query and body.
	req, _ := http.NewRequest("POST", h.issuer+"/authorize?state=q", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, _ = h.do(req)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != 302 || loc.Query().Get("error") != "invalid_request" {
		t.Errorf("state in query and body: %d %s", resp.StatusCode, loc)
	}
}
