// Tests of single sign-on on the wire: sessions, remembered consent, the
// consent page and RP-initiated logout, each through the whole server with
// a cookie jar as the browser.
package oauth_test

import (
	"context"
	"encoding/json"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/oauth/session"
	"github.com/authd-dev/authd/store"
)

// grantConsent records that each subject allowed c all its scopes.
func grantConsent(t testing.TB, h *harness, c *Client, subjects ...string) {
	t.Helper()
	for _, sub := range subjects {
		if err := h.s.GrantConsent(context.Background(), sub, c); err != nil {
			t.Fatalf("GrantConsent: %v", err)
		}
	}
}

var (
	consentIDRe = regexp.MustCompile(`name="consent_id" value="([^"]+)"`)
	logoutIDRe  = regexp.MustCompile(`name="logout_id" value="([^"]+)"`)
)

// outcome is what /authorize answered a browser.
type outcome struct {
	kind string // "code", "error", "login", "consent"
	q    url.Values
	id   string // the consent page's consent_id
	resp *http.Response
	body []byte
}

// classify reads an /authorize (or consent, or login) answer.
func classify(t testing.TB, resp *http.Response, body []byte) outcome {
	t.Helper()
	o := outcome{resp: resp, body: body}
	switch {
	case resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther:
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err != nil {
			t.Fatalf("Location %q", resp.Header.Get("Location"))
		}
		o.q = loc.Query()
		o.kind = "code"
		if o.q.Has("error") {
			o.kind = "error"
		}
	case resp.StatusCode == http.StatusOK && loginIDRe.Match(body):
		o.kind = "login"
	case resp.StatusCode == http.StatusOK && consentIDRe.Match(body):
		o.kind = "consent"
		o.id = string(consentIDRe.FindSubmatch(body)[1])
	default:
		t.Fatalf("unexpected answer %d %s", resp.StatusCode, body)
	}
	return o
}

// authorize sends the browser h.c to /authorize with params.
func (h *harness) authorize(params url.Values) outcome {
	h.t.Helper()
	resp, body := h.get(authorizeURL(params), map[string]string{"Accept": "text/html"})
	return classify(h.t, resp, body)
}

// want fails unless o is of kind (and, for "error", code).
func (o outcome) want(t testing.TB, kind, code string) outcome {
	t.Helper()
	if o.kind != kind || (kind == "error" && o.q.Get("error") != code) {
		t.Fatalf("got %s %v (%d), want %s %s", o.kind, o.q, o.resp.StatusCode, kind, code)
	}
	return o
}

// post sends a form from one of authd's pages in h.c.
func (h *harness) post(path string, form url.Values, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	m := map[string]string{"Origin": h.issuer, "Sec-Fetch-Site": "same-origin", "Accept": "text/html"}
	for k, v := range hdr {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return h.postForm(path, form, m)
}

// signIn signs addr in on the login page of params in h.c and returns the
// authorization answer.
func (h *harness) signIn(addr string, params url.Values) outcome {
	h.t.Helper()
	o := h.authorize(params).want(h.t, "login", "")
	m, mm := loginIDRe.FindSubmatch(o.body), messageRe.FindSubmatch(o.body)
	if m == nil || mm == nil {
		h.t.Fatalf("no login form in %s", o.body)
	}
	id, msg := string(m[1]), html.UnescapeString(string(mm[1]))
	resp, body := h.post("/authorize/login", url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg)}}, nil)
	return classify(h.t, resp, body)
}

// consent answers a consent page in h.c.
func (h *harness) consent(id, decision string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	return h.post("/authorize/consent", url.Values{"consent_id": {id}, "decision": {decision}}, hdr)
}

// jarSession is the session id h.c holds, "" for none.
func (h *harness) jarSession() string {
	u, _ := url.Parse(h.issuer + "/")
	for _, c := range h.c.Jar.Cookies(u) {
		if c.Name == SessionCookie {
			return c.Value
		}
	}
	return ""
}

// setSession returns the session cookie resp sets, or nil.
func setSession(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == SessionCookie {
			return c
		}
	}
	return nil
}

// errorOf decodes a JSON error body.
func errorOf(body []byte) string {
	var e map[string]any
	json.Unmarshal(body, &e)
	s, _ := e["error"].(string)
	return s
}

// TestSessionFixation: a session id planted in a browser before sign-in is
// never adopted, and every sign-in gets a new id, after which the old one
// is worthless.
func TestSessionFixation(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	c, secret := h.oidcClient("")
	addr := h.wallet.user()
	root, _ := url.Parse(h.issuer + "/")
	planted := RandomToken(32)
	plant := func() { h.c.Jar.SetCookies(root, []*http.Cookie{{Name: SessionCookie, Value: planted, Path: "/"}}) }

	// Before sign-in the planted id is no session: the login page, and
	// the cookie is deleted.
	plant()
	o := h.authorize(oidcRequest(c, nil)).want(t, "login", "")
	if ck := setSession(o.resp); ck == nil || ck.MaxAge >= 0 {
		t.Errorf("the planted cookie was not deleted: %+v", ck)
	}
	// At sign-in, with the planted cookie sent along: a new id.
	id, msg := loginPage(t, o.body)
	plant()
	resp, body := h.post("/authorize/login", url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg)}}, nil)
	o = classify(t, resp, body).want(t, "code", "")
	ck := setSession(resp)
	if ck == nil || ck.Value == planted || !session.ValidID(ck.Value) {
		t.Fatalf("sign-in cookie %+v", ck)
	}
	if !ck.HttpOnly || ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.MaxAge != int(DefaultSessionMax/time.Second) {
		t.Errorf("session cookie attributes %+v", ck)
	}
	first := ck.Value
	tr := h.exchange(c, secret, o.q.Get("code"))
	if _, claims := h.idToken(tr.IDToken); claims["sid"] != session.Handle(first) {
		t.Errorf("sid %v, want the handle of the session %s", claims["sid"], session.Handle(first))
	}
	// The planted id signs nobody in, in any browser.
	h.c = h.browser()
	plant()
	h.authorize(oidcRequest(c, map[string]string{"prompt": "none"})).want(t, "error", "login_required")

	// Every sign-in a new id: a wallet-signed request in the session's
	// browser, then the login page with prompt=login.
	h.c = h.browser()
	h.c.Jar.SetCookies(root, []*http.Cookie{{Name: SessionCookie, Value: first, Path: "/"}})
	h.authorize(oidcRequest(c, map[string]string{"prompt": "none"})).want(t, "code", "")
	resp, _ = h.signedAuthorize(addr, authorizeURL(oidcRequest(c, nil)), nil)
	second := setSession(resp)
	if resp.StatusCode != http.StatusFound || second == nil || second.Value == first {
		t.Fatalf("signed sign-in: %d, cookie %+v", resp.StatusCode, second)
	}
	third := h.signIn(addr, oidcRequest(c, map[string]string{"prompt": "login"})).want(t, "code", "")
	if ck := setSession(third.resp); ck == nil || ck.Value == second.Value || ck.Value == first {
		t.Fatalf("prompt=login sign-in cookie %+v", ck)
	}
	// The replaced sessions are over.
	for _, old := range []string{first, second.Value} {
		h.c = h.browser()
		h.c.Jar.SetCookies(root, []*http.Cookie{{Name: SessionCookie, Value: old, Path: "/"}})
		h.authorize(oidcRequest(c, map[string]string{"prompt": "none"})).want(t, "error", "login_required")
	}

	// Two session cookies (one planted for a narrower path): ambiguous,
	// so neither is used.
	h.c = h.browser()
	h.signIn(addr, oidcRequest(c, nil)).want(t, "code", "")
	h.c.Jar.SetCookies(root, []*http.Cookie{{Name: SessionCookie, Value: planted, Path: "/authorize"}})
	h.authorize(oidcRequest(c, map[string]string{"prompt": "none"})).want(t, "error", "login_required")
}

// TestSessionCookieAttributes: behind an https issuer with a path the
// cookie is Secure and scoped to the issuer's path.
func TestSessionCookieAttributes(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	s, err := New(context.Background(), Config{Issuer: "https://auth.example.com/sso", DB: db.DB, Dialect: "sqlite", Redis: testenv.Redis(t),
		Wallet: oneWallet{addr: "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"}, KeyEncryption: testKeyEncryption, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := CreateClient(context.Background(), db.DB, ClientRegistration{Name: "App", RedirectURIs: []string{"https://app.example.com/cb"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/authorize?"+codeParams(c, "https://app.example.com/cb", "").Encode(), nil)
	req.Header.Set("X-Auth-Token", "signed")
	httperr.Middleware(httperr.Config{}, httperr.HandlerFunc(s.Authorize)).ServeHTTP(rec, req)
	ck := setSession(rec.Result())
	if rec.Code != http.StatusFound || ck == nil || !ck.Secure || !ck.HttpOnly || ck.Path != "/sso" || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("%d, cookie %+v", rec.Code, ck)
	}
}

// oneWallet signs in one address, whatever the request carries.
type oneWallet struct{ addr string }

func (w oneWallet) Authenticate(*http.Request) (WalletUser, error) {
	return WalletUser{Address: w.addr}, nil
}

func (w oneWallet) VerifyLogin(*http.Request, string, string, string) (WalletUser, error) {
	return WalletUser{Address: w.addr}, nil
}

// TestConsentPage: a session meeting a client without the person's
// consent shows the consent page; Allow issues a code stating the
// session's sign-in and is remembered, Deny is access_denied; the form
// works once, only from the page's browser and session.
func TestConsentPage(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) { testConsentPage(t, db) })
}

func testConsentPage(t *testing.T, db *store.DB) {
	h := newHarness(t, db, nil)
	ctx := context.Background()
	a, _ := h.oidcClient("")
	b, bSecret := h.client(ClientRegistration{Name: "Board <Games>", RedirectURIs: []string{oidcRedirect},
		Scopes: []string{"openid", "profile", "email", "backup"}})
	addr := h.wallet.user()
	t0 := stillClock(h)
	h.signIn(addr, oidcRequest(a, nil)).want(t, "code", "")
	home := h.c
	sid := session.Handle(h.jarSession())
	// Signing the message was consent for a, and only for a.
	if ok, _ := h.s.HasConsent(ctx, addr, a.ID, "openid profile"); !ok {
		t.Error("the signed sign-in was not recorded as consent")
	}
	if ok, _ := h.s.HasConsent(ctx, addr, b.ID, "openid"); ok {
		t.Error("consent recorded for a client never signed for")
	}

	h.clock.Set(t0.Add(10 * time.Minute))
	o := h.authorize(oidcRequest(b, map[string]string{"nonce": "n1"})).want(t, "consent", "")
	page := string(o.body)
	for _, want := range []string{
		`<strong>Board &lt;Games&gt;</strong> at <strong>rp.example.com</strong> wants to:`,
		`Know your Bitcoin address (<code>profile</code>)`,
		`You are signed in as <code>` + addr + `</code>`,
		`<button type="submit" name="decision" value="allow">Allow</button>`,
		`<button class="alt" type="submit" name="decision" value="deny">Deny</button>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	if strings.Contains(page, "Unverified application") {
		t.Error("an operator's client is shown as unverified")
	}
	hdr := o.resp.Header
	if hdr.Get("X-Frame-Options") != "DENY" || hdr.Get("Cache-Control") != "no-store" || hdr.Get("Referrer-Policy") != "same-origin" ||
		hdr.Get("Content-Security-Policy") != "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https://rp.example.com; frame-ancestors 'none'; base-uri 'none'" {
		t.Errorf("consent page headers %v", hdr)
	}

	refused := func(name string, hdr map[string]string) {
		t.Helper()
		for _, accept := range []string{"application/json", "text/html"} {
			m := map[string]string{"Accept": accept}
			for k, v := range hdr {
				m[k] = v
			}
			resp, body := h.consent(o.id, "allow", m)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
				t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
			}
			if accept == "application/json" && errorOf(body) != "access_denied" {
				t.Fatalf("%s: %s", name, body)
			}
		}
	}
	// From another site, in the right browser: refused before anything.
	refused("cross-site Origin", map[string]string{"Origin": "https://evil.example"})
	refused("Origin null, no Fetch metadata", map[string]string{"Origin": "null", "Sec-Fetch-Site": ""})
	refused("Origin null, same-site", map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-site"})
	refused("Sec-Fetch-Site: cross-site", map[string]string{"Origin": "", "Sec-Fetch-Site": "cross-site"})
	// From a browser with no session, and one with a session of its own.
	h.c = h.browser()
	refused("no session", nil)
	h.signIn(h.wallet.user(), oidcRequest(a, nil)).want(t, "code", "")
	refused("another session", nil)
	// None of that used the form up: its own browser answers it.
	h.c = home
	resp, body := h.consent(o.id, "allow", nil)
	got := classify(t, resp, body).want(t, "code", "")
	if resp.StatusCode != http.StatusSeeOther || got.q.Get("state") != "st" || got.q.Get("iss") != h.issuer {
		t.Fatalf("allow: %d %v", resp.StatusCode, got.q)
	}
	tr := h.exchange(b, bSecret, got.q.Get("code"))
	_, claims := h.idToken(tr.IDToken)
	if claims["sub"] != addr || claims["sid"] != sid || claims["nonce"] != "n1" || int64(claims["auth_time"].(float64)) != t0.Unix() ||
		!jsonEqual(claims["amr"], []any{"swk"}) {
		t.Errorf("ID Token of a session-answered authorization: %v", claims)
	}
	// Once only.
	resp, body = h.consent(o.id, "allow", map[string]string{"Accept": "application/json"})
	if resp.StatusCode != http.StatusBadRequest || errorOf(body) != "invalid_request" || !strings.Contains(string(body), "already answered") {
		t.Errorf("second answer: %d %s", resp.StatusCode, body)
	}
	// Remembered: the same scopes need no page.
	h.authorize(oidcRequest(b, nil)).want(t, "code", "")
	h.authorize(oidcRequest(b, map[string]string{"prompt": "none"})).want(t, "code", "")
	// prompt=consent shows the page all the same.
	h.authorize(oidcRequest(b, map[string]string{"prompt": "consent"})).want(t, "consent", "")
	// More scopes than allowed: the page again; Deny goes to the client
	// and allows nothing.
	more := oidcRequest(b, map[string]string{"scope": "openid profile backup"})
	h.authorize(with(more, "prompt", "none")).want(t, "error", "consent_required")
	o = h.authorize(more).want(t, "consent", "")
	if !strings.Contains(string(o.body), "(<code>backup</code>)") {
		t.Error("the page does not list backup")
	}
	resp, body = h.consent(o.id, "deny", nil)
	got = classify(t, resp, body).want(t, "error", "access_denied")
	if got.q.Get("state") != "st" || got.q.Get("iss") != h.issuer || got.q.Has("code") {
		t.Errorf("deny: %v", got.q)
	}
	if ok, _ := h.s.HasConsent(ctx, addr, b.ID, "backup"); ok {
		t.Error("a denied scope was recorded")
	}
	// Bad forms.
	o = h.authorize(more).want(t, "consent", "")
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"no decision", url.Values{"consent_id": {o.id}}},
		{"bad decision", url.Values{"consent_id": {o.id}, "decision": {"maybe"}}},
		{"no consent_id", url.Values{"decision": {"allow"}}},
		{"unknown consent_id", url.Values{"consent_id": {RandomToken(32)}, "decision": {"allow"}}},
		{"repeated decision", url.Values{"consent_id": {o.id}, "decision": {"allow", "deny"}}},
	} {
		resp, body := h.post("/authorize/consent", tc.form, map[string]string{"Accept": "application/json"})
		if resp.StatusCode != http.StatusBadRequest || errorOf(body) != "invalid_request" {
			t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
		}
	}
	// ...and none of them used the page up.
	resp, body = h.consent(o.id, "allow", nil)
	classify(t, resp, body).want(t, "code", "")
}

// TestConsentPageUnverified: a client no operator registered (one that
// registered itself) is marked unverified on the consent page, with the
// host it sends the browser back to, and is not remembered as anything
// more than what the person allowed.
func TestConsentPageUnverified(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, withRegistration(RegistrationOpen, ""))
	const ru = "https://agent.example.net/cb"
	resp, reg := h.sendJSON("POST", "/register", map[string]any{
		"client_name": "Helpful Agent", "redirect_uris": []string{ru}, "token_endpoint_auth_method": "none", "scope": "openid profile",
	}, nil)
	id, _ := reg["client_id"].(string)
	if resp.StatusCode != 201 || id == "" {
		t.Fatalf("registration: %d %v", resp.StatusCode, reg)
	}
	a, _ := h.oidcClient("")
	h.signIn(h.wallet.user(), oidcRequest(a, nil)).want(t, "code", "")
	_, challenge := pkce()
	params := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {ru}, "scope": {"openid profile"}, "state": {"st"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	o := h.authorize(params).want(t, "consent", "")
	page := string(o.body)
	for _, want := range []string{
		`<strong>Helpful Agent</strong> at <strong>agent.example.net</strong> wants to:`,
		`<strong>Unverified application.</strong>`,
		`It is known only by where it sends you back: <strong>agent.example.net</strong>.`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("consent page of a self-registered client lacks %q:\n%s", want, page)
		}
	}
	resp, body := h.consent(o.id, "allow", nil)
	classify(t, resp, body).want(t, "code", "")
	h.authorize(with(params, "prompt", "none")).want(t, "code", "")
}

func with(v url.Values, k, x string) url.Values {
	c := url.Values{}
	for kk, vv := range v {
		c[kk] = append([]string(nil), vv...)
	}
	c.Set(k, x)
	return c
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestConsentRace: one consent page's Allow, posted by 8 racers at once
// from its browser, issues exactly one code; the others are told it was
// already answered.
func TestConsentRace(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	a, _ := h.oidcClient("")
	addr := h.wallet.user()
	h.signIn(addr, oidcRequest(a, nil)).want(t, "code", "")
	for trial := range raceTrials() {
		b, _ := h.oidcClient("")
		o := h.authorize(oidcRequest(b, nil)).want(t, "consent", "")
		resps, bodies := raceRequests(t, h, 8, func() *http.Request {
			req, _ := http.NewRequest("POST", h.issuer+"/authorize/consent", strings.NewReader(url.Values{"consent_id": {o.id}, "decision": {"allow"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept", "application/json")
			return req
		})
		won, lost := 0, 0
		for i, resp := range resps {
			switch {
			case resp.StatusCode == http.StatusSeeOther && strings.Contains(resp.Header.Get("Location"), "code="):
				won++
			case resp.StatusCode == http.StatusBadRequest && errorOf(bodies[i]) == "invalid_request":
				lost++
			default:
				t.Fatalf("trial %d racer %d: %d %s", trial, i, resp.StatusCode, bodies[i])
			}
		}
		if won != 1 || lost != 7 {
			t.Fatalf("trial %d: %d codes, %d refusals; want exactly 1 and 7", trial, won, lost)
		}
	}
}

// TestProviderConsent: a Google sign-in the client started itself showed
// no scopes, so the consent page follows it; one chosen on the login
// page, which lists them, is consent; with sessions off nothing changes
// from before.
func TestProviderConsent(t *testing.T) {
	for _, off := range []bool{false, true} {
		t.Run("sessions off="+strconv.FormatBool(off), func(t *testing.T) {
			google := newFakeUpstream(KindGoogle)
			h := newHarness(t, testenv.DB(t, store.SQLite), nil, func(c *server.Config) {
				c.Upstreams = []Upstream{google}
				c.SessionsOff = off
			})
			c, _ := h.oidcClient("")
			direct := func() outcome {
				resp, _ := h.get(authorizeURL(oidcRequest(c, map[string]string{"provider": KindGoogle})), nil)
				q := google.consent(t, resp.Header.Get("Location"))
				resp, body := h.get("/callback/google?"+q.Encode(), nil)
				return classify(t, resp, body)
			}
			if off {
				direct().want(t, "code", "")
				return
			}
			o := direct().want(t, "consent", "")
			if !strings.Contains(string(o.body), "<code>google:4242</code>") {
				t.Error("the consent page does not name the provider user")
			}
			resp, body := h.consent(o.id, "allow", nil)
			classify(t, resp, body).want(t, "code", "")
			// Remembered for the next direct sign-in.
			direct().want(t, "code", "")

			// From the login page: no consent page.
			d, _ := h.oidcClient("")
			h.c = h.browser()
			o = h.authorize(oidcRequest(d, nil)).want(t, "login", "")
			id, _ := loginPage(t, o.body)
			resp, _ = h.post("/authorize/login", url.Values{"login_id": {id}, "provider": {KindGoogle}}, nil)
			q := google.consent(t, resp.Header.Get("Location"))
			resp, body = h.get("/callback/google?"+q.Encode(), nil)
			classify(t, resp, body).want(t, "code", "")
			if ok, _ := h.s.HasConsent(context.Background(), "google:4242", d.ID, "openid profile"); !ok {
				t.Error("the login page's provider sign-in was not recorded as consent")
			}
		})
	}
}

// TestPromptWithSession: what a live session may answer (OpenID Connect
// Core 1.0 §3.1.2.1), both sides of max_age included.
func TestPromptWithSession(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	c, secret := h.oidcClient("")
	addr, other := h.wallet.user(), h.wallet.user()
	hintOf := func(who string) string {
		h.c = h.browser()
		defer func() { h.c = h.browser() }()
		return h.exchange(c, secret, h.code(who, oidcRequest(c, nil))).IDToken
	}
	hint, otherHint := hintOf(addr), hintOf(other)
	t0 := stillClock(h)
	h.signIn(addr, oidcRequest(c, nil)).want(t, "code", "")
	home := h.c
	h.clock.Set(t0.Add(100 * time.Second))

	for _, tc := range []struct {
		name string
		set  map[string]string
		kind string // code, error, login, consent
		code string
	}{
		{"no prompt", nil, "code", ""},
		{"prompt=none", map[string]string{"prompt": "none"}, "code", ""},
		{"plain OAuth 2.0", map[string]string{"scope": "profile"}, "code", ""},
		{"prompt=login", map[string]string{"prompt": "login"}, "login", ""},
		{"prompt=select_account", map[string]string{"prompt": "select_account"}, "login", ""},
		{"prompt=consent", map[string]string{"prompt": "consent"}, "consent", ""},
		{"prompt=login consent", map[string]string{"prompt": "login consent"}, "login", ""},
		{"max_age at the sign-in's age", map[string]string{"max_age": "100"}, "code", ""},
		{"max_age under the sign-in's age", map[string]string{"max_age": "99"}, "login", ""},
		{"max_age under, prompt=none", map[string]string{"max_age": "99", "prompt": "none"}, "error", "login_required"},
		{"max_age=0", map[string]string{"max_age": "0"}, "login", ""},
		{"id_token_hint of the session's user", map[string]string{"id_token_hint": hint, "prompt": "none"}, "code", ""},
		{"id_token_hint of another user, prompt=none", map[string]string{"id_token_hint": otherHint, "prompt": "none"}, "error", "login_required"},
		{"id_token_hint of another user", map[string]string{"id_token_hint": otherHint}, "login", ""},
		{"scope beyond the consent, prompt=none", map[string]string{"scope": "openid backup", "prompt": "none"}, "error", "consent_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.c = home
			o := h.authorize(oidcRequest(c, tc.set)).want(t, tc.kind, tc.code)
			if o.kind == "code" {
				if ck := setSession(o.resp); ck != nil {
					t.Errorf("a session-answered authorization set the cookie %+v", ck)
				}
				if tc.set["scope"] == "profile" {
					return
				}
				_, claims := h.idToken(h.exchange(c, secret, o.q.Get("code")).IDToken)
				if int64(claims["auth_time"].(float64)) != t0.Unix() || claims["sub"] != addr {
					t.Errorf("claims %v: auth_time is not the session's sign-in", claims)
				}
			}
		})
	}
	// A fresh sign-in under max_age: a new session with a new auth_time.
	h.c = home
	o := h.authorize(oidcRequest(c, map[string]string{"max_age": "10"})).want(t, "login", "")
	id, msg := loginPage(t, o.body)
	resp, body := h.post("/authorize/login", url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg)}}, nil)
	o = classify(t, resp, body).want(t, "code", "")
	if _, claims := h.idToken(h.exchange(c, secret, o.q.Get("code")).IDToken); int64(claims["auth_time"].(float64)) != t0.Add(100*time.Second).Unix() {
		t.Errorf("auth_time %v after a fresh sign-in", claims["auth_time"])
	}
	h.authorize(oidcRequest(c, map[string]string{"max_age": "10", "prompt": "none"})).want(t, "code", "")
}

// TestSessionExpiry: a session ends after SessionIdle unused and after
// SessionMax however used, on the server's clock (one millisecond before
// each deadline it answers, at it not), and its Redis key does not outlive
// the idle lifetime.
func TestSessionExpiry(t *testing.T) {
	const idle, maxLife = 30 * time.Minute, 2 * time.Hour
	lifetimes := func(c *server.Config) { c.SessionIdle, c.SessionMax = idle, maxLife }
	t.Run("idle", func(t *testing.T) {
		h := newHarness(t, testenv.DB(t, store.SQLite), nil, lifetimes)
		c, _ := h.oidcClient("")
		addr := h.wallet.user()
		t0 := stillClock(h)
		h.signIn(addr, oidcRequest(c, nil)).want(t, "code", "")
		a := h.c
		h.c = h.browser()
		h.signIn(addr, oidcRequest(c, nil)).want(t, "code", "")
		b := h.c
		none := oidcRequest(c, map[string]string{"prompt": "none"})
		h.clock.Set(t0.Add(idle - time.Millisecond))
		h.c = a
		h.authorize(none).want(t, "code", "")
		h.clock.Set(t0.Add(idle))
		h.c = b
		h.authorize(none).want(t, "error", "login_required")
		// a's use moved its idle deadline.
		h.clock.Set(t0.Add(2*idle - 2*time.Millisecond))
		h.c = a
		h.authorize(none).want(t, "code", "")
	})
	t.Run("absolute", func(t *testing.T) {
		h := newHarness(t, testenv.DB(t, store.SQLite), nil, lifetimes)
		c, _ := h.oidcClient("")
		addr := h.wallet.user()
		t0 := stillClock(h)
		h.signIn(addr, oidcRequest(c, nil)).want(t, "code", "")
		none := oidcRequest(c, map[string]string{"prompt": "none"})
		for at := idle - time.Minute; at < maxLife; at += idle - time.Minute {
			h.clock.Set(t0.Add(at))
			h.authorize(none).want(t, "code", "")
		}
		h.clock.Set(t0.Add(maxLife - time.Millisecond))
		h.authorize(none).want(t, "code", "")
		h.clock.Set(t0.Add(maxLife))
		h.authorize(none).want(t, "error", "login_required")
	})
	t.Run("redis expiry", func(t *testing.T) {
		mr, rdb := miniredisClient(t)
		h := newHarness(t, testenv.DB(t, store.SQLite), rdb, lifetimes)
		c, _ := h.oidcClient("")
		addr := h.wallet.user()
		h.signIn(addr, oidcRequest(c, nil)).want(t, "code", "")
		key := "authd:session:{" + session.Handle(h.jarSession()) + "}"
		mr.FastForward(idle - time.Millisecond)
		if !mr.Exists(key) {
			t.Fatal("the session's key is gone before its idle lifetime")
		}
		mr.FastForward(time.Millisecond)
		if mr.Exists(key) {
			t.Fatal("the session's key outlives its idle lifetime")
		}
	})
}

// TestSessionReplica: two instances of authd on one Redis and one
// database serve one issuer; a session made at one is used, and ended,
// at the other.
func TestSessionReplica(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		other, err := server.New(context.Background(), h.cfg)
		if err != nil {
			t.Fatal(err)
		}
		replica := httptest.NewServer(other.Handler())
		defer replica.Close()
		c, secret := h.oidcClient("")
		addr := h.wallet.user()
		h.signIn(addr, oidcRequest(c, nil)).want(t, "code", "")
		sid := session.Handle(h.jarSession())

		// The browser's next requests reach the replica (cookies are
		// sent whatever the port).
		at := func(path string, form url.Values) (*http.Response, []byte) {
			t.Helper()
			var req *http.Request
			if form == nil {
				req, _ = http.NewRequest("GET", replica.URL+path, nil)
			} else {
				req, _ = http.NewRequest("POST", replica.URL+path, strings.NewReader(form.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Origin", h.issuer)
			}
			req.Header.Set("Accept", "text/html")
			return h.do(req)
		}
		resp, body := at(authorizeURL(oidcRequest(c, map[string]string{"prompt": "none"})), nil)
		o := classify(t, resp, body).want(t, "code", "")
		if _, claims := h.idToken(h.exchange(c, secret, o.q.Get("code")).IDToken); claims["sid"] != sid {
			t.Errorf("sid at the replica %v, want %s", claims["sid"], sid)
		}
		// A consent page shown by one instance is answered at the other.
		d, _ := h.oidcClient("")
		o = h.authorize(oidcRequest(d, nil)).want(t, "consent", "")
		resp, body = at("/authorize/consent", url.Values{"consent_id": {o.id}, "decision": {"allow"}})
		classify(t, resp, body).want(t, "code", "")
		// Signing out at the replica ends the session at the first.
		resp, body = at("/logout", nil)
		m := logoutIDRe.FindSubmatch(body)
		if resp.StatusCode != 200 || m == nil {
			t.Fatalf("logout at the replica: %d %s", resp.StatusCode, body)
		}
		resp, body = at("/logout", url.Values{"logout_id": {string(m[1])}})
		if resp.StatusCode != 200 || !strings.Contains(string(body), "You are signed out") {
			t.Fatalf("confirm at the replica: %d %s", resp.StatusCode, body)
		}
		h.authorize(oidcRequest(c, map[string]string{"prompt": "none"})).want(t, "error", "login_required")
	})
}

// TestSessionsOff: with AUTHD_SESSION_IDLE=0 every authorization needs a
// signature, as without single sign-on: no cookie, no sid, no consent
// recorded, prompt=none only for signed requests.
func TestSessionsOff(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, func(c *server.Config) { c.SessionsOff = true })
	c, secret := h.oidcClient("")
	addr := h.wallet.user()
	o := h.signIn(addr, oidcRequest(c, nil)).want(t, "code", "")
	if ck := setSession(o.resp); ck != nil {
		t.Errorf("session cookie %+v with sessions off", ck)
	}
	if _, claims := h.idToken(h.exchange(c, secret, o.q.Get("code")).IDToken); claims["sid"] != nil {
		t.Errorf("sid %v with sessions off", claims["sid"])
	}
	if ok, _ := h.s.HasConsent(context.Background(), addr, c.ID, "openid"); ok {
		t.Error("consent recorded with sessions off")
	}
	h.authorize(oidcRequest(c, nil)).want(t, "login", "")
	h.authorize(oidcRequest(c, map[string]string{"prompt": "none"})).want(t, "error", "login_required")
	resp, _ := h.signedAuthorize(addr, authorizeURL(oidcRequest(c, map[string]string{"prompt": "none"})), nil)
	if resp.StatusCode != http.StatusFound || setSession(resp) != nil || !strings.Contains(resp.Header.Get("Location"), "code=") {
		t.Errorf("signed prompt=none: %d %v", resp.StatusCode, resp.Header)
	}
	// Logout has nothing to end: straight to the signed-out page.
	resp, body := h.get("/logout", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "You are signed out") {
		t.Errorf("logout: %d %s", resp.StatusCode, body)
	}
}

// TestLogout: RP-initiated logout. A valid id_token_hint (expired too)
// ends the session it names at once; without one the person confirms on
// a page whose form is bound to the session; post_logout_redirect_uri
// must be one the client registered, exactly.
func TestLogout(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) { testLogout(t, db) })
}

func testLogout(t *testing.T, db *store.DB) {
	// ID Tokens live a second, so a hint is easily an expired one.
	h := newHarness(t, db, nil, func(c *server.Config) { c.IDTokenTTL = time.Second })
	const after = "https://rp.example.com/signed-out?from=authd"
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{oidcRedirect}, Scopes: []string{"openid", "profile"},
		PostLogoutRedirectURIs: []string{after}})
	other, _ := h.client(ClientRegistration{RedirectURIs: []string{oidcRedirect}, Scopes: []string{"openid"}})
	addr := h.wallet.user()
	none := oidcRequest(c, map[string]string{"prompt": "none"})
	signIn := func() (hint string) {
		t.Helper()
		h.c = h.browser()
		o := h.signIn(addr, oidcRequest(c, nil)).want(t, "code", "")
		return h.exchange(c, secret, o.q.Get("code")).IDToken
	}
	signedOut := func(name string, resp *http.Response, body []byte) {
		t.Helper()
		if resp.StatusCode != 200 || !strings.Contains(string(body), "You are signed out") {
			t.Fatalf("%s: %d %s, want the signed-out page", name, resp.StatusCode, body)
		}
	}
	deleted := func(name string, resp *http.Response) {
		t.Helper()
		if ck := setSession(resp); ck == nil || ck.MaxAge >= 0 {
			t.Errorf("%s: the session cookie was not deleted (%+v)", name, ck)
		}
	}
	confirmPage := func(name string, resp *http.Response, body []byte) string {
		t.Helper()
		m := logoutIDRe.FindSubmatch(body)
		if resp.StatusCode != 200 || m == nil || !strings.Contains(string(body), "<code>"+addr+"</code>") {
			t.Fatalf("%s: %d %s, want the sign-out page", name, resp.StatusCode, body)
		}
		if hdr := resp.Header; hdr.Get("X-Frame-Options") != "DENY" || !strings.Contains(hdr.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: headers %v", name, hdr)
		}
		return string(m[1])
	}

	t.Run("without a hint: confirm first", func(t *testing.T) {
		signIn()
		resp, body := h.get("/logout", nil)
		id := confirmPage("GET /logout", resp, body)
		// Showing the page ended nothing.
		h.authorize(none).want(t, "code", "")
		resp, body = h.post("/logout", url.Values{"logout_id": {id}}, nil)
		signedOut("confirm", resp, body)
		deleted("confirm", resp)
		h.authorize(none).want(t, "error", "login_required")
		// Used once.
		signIn()
		resp, body = h.post("/logout", url.Values{"logout_id": {id}}, map[string]string{"Accept": "application/json"})
		if resp.StatusCode != 400 || errorOf(body) != "invalid_request" {
			t.Errorf("a used confirmation: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("without a hint, to the client", func(t *testing.T) {
		signIn()
		resp, body := h.postForm("/logout", url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {after}, "state": {"s 1"}},
			map[string]string{"Origin": "https://rp.example.com", "Sec-Fetch-Site": "cross-site"})
		id := confirmPage("POST /logout", resp, body)
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "form-action 'self' https://rp.example.com;") {
			t.Errorf("CSP %q would block the redirect after the form", csp)
		}
		resp, _ = h.post("/logout", url.Values{"logout_id": {id}}, nil)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != after+"&state=s+1" {
			t.Fatalf("confirm: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		deleted("confirm", resp)
		h.authorize(none).want(t, "error", "login_required")
	})
	t.Run("confirmation from elsewhere", func(t *testing.T) {
		signIn()
		home := h.c
		resp, body := h.get("/logout", nil)
		id := confirmPage("GET /logout", resp, body)
		for _, tc := range []struct {
			name string
			hdr  map[string]string
		}{
			{"cross-site Origin", map[string]string{"Origin": "https://evil.example"}},
			{"Sec-Fetch-Site: cross-site", map[string]string{"Origin": "", "Sec-Fetch-Site": "cross-site"}},
		} {
			resp, body := h.post("/logout", url.Values{"logout_id": {id}}, map[string]string{"Accept": "application/json", "Origin": tc.hdr["Origin"], "Sec-Fetch-Site": tc.hdr["Sec-Fetch-Site"]})
			if resp.StatusCode != 403 || errorOf(body) != "access_denied" {
				t.Errorf("%s: %d %s", tc.name, resp.StatusCode, body)
			}
		}
		// Another browser: without a session, and with one of its own.
		foreign := func(name string) {
			t.Helper()
			resp, body := h.post("/logout", url.Values{"logout_id": {id}}, map[string]string{"Accept": "application/json"})
			if resp.StatusCode != 403 || errorOf(body) != "access_denied" {
				t.Errorf("%s: %d %s", name, resp.StatusCode, body)
			}
		}
		h.c = h.browser()
		foreign("no session")
		h.signIn(addr, oidcRequest(c, nil)).want(t, "code", "")
		foreign("another session")
		// A GET never confirms.
		h.c = home
		resp, body = h.get("/logout?logout_id="+id, map[string]string{"Accept": "application/json"})
		if resp.StatusCode != 400 || errorOf(body) != "invalid_request" {
			t.Errorf("GET with logout_id: %d %s", resp.StatusCode, body)
		}
		h.authorize(none).want(t, "code", "")
		resp, body = h.post("/logout", url.Values{"logout_id": {id}}, nil)
		signedOut("its own browser", resp, body)
	})
	t.Run("with a hint", func(t *testing.T) {
		hint := signIn()
		resp, _ := h.get("/logout?"+url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {after}, "state": {"xyz"}}.Encode(), nil)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != after+"&state=xyz" {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		deleted("hint", resp)
		h.authorize(none).want(t, "error", "login_required")
		// Without a post_logout_redirect_uri: the signed-out page, and no
		// state anywhere.
		hint = signIn()
		resp, body := h.get("/logout?"+url.Values{"id_token_hint": {hint}, "state": {"xyz"}}.Encode(), nil)
		signedOut("hint alone", resp, body)
		h.authorize(none).want(t, "error", "login_required")
	})
	t.Run("expired hint, posted cross-site without cookies", func(t *testing.T) {
		hint := signIn()
		home := h.c
		h.clock.Set(time.Now().Add(time.Minute)) // the hint expired
		defer h.clock.Set(time.Time{})
		// A POST from the client's site carries no SameSite=Lax cookie:
		// the hint's sid names the session.
		h.c = h.browser()
		resp, _ := h.postForm("/logout", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {after}},
			map[string]string{"Origin": "https://rp.example.com", "Sec-Fetch-Site": "cross-site"})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != after {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		h.c = home
		h.authorize(none).want(t, "error", "login_required")
	})
	t.Run("hint of another session", func(t *testing.T) {
		// The hint's session ends; the browser's own session is the
		// person's to end.
		hint := signIn()
		theirs := h.c
		signIn()
		resp, body := h.get("/logout?"+url.Values{"id_token_hint": {hint}}.Encode(), nil)
		confirmPage("another session's hint", resp, body)
		h.authorize(none).want(t, "code", "")
		h.c = theirs
		h.authorize(none).want(t, "error", "login_required")
	})
	t.Run("no session", func(t *testing.T) {
		h.c = h.browser()
		resp, _ := h.get("/logout?"+url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {after}, "state": {"q"}}.Encode(), nil)
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != after+"&state=q" || setSession(resp) != nil {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		hint := signIn()
		for _, tc := range []struct {
			name string
			v    url.Values
		}{
			{"post_logout_redirect_uri not registered", url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"https://rp.example.com/elsewhere"}}},
			{"post_logout_redirect_uri of another case", url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {strings.ToUpper(after[:5]) + after[5:]}}},
			{"post_logout_redirect_uri with a trailing slash", url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {after + "/"}}},
			{"post_logout_redirect_uri of another client", url.Values{"client_id": {other.ID}, "post_logout_redirect_uri": {after}}},
			{"post_logout_redirect_uri without a client", url.Values{"post_logout_redirect_uri": {after}}},
			{"client_id not the hint's", url.Values{"id_token_hint": {hint}, "client_id": {other.ID}}},
			{"unknown client_id", url.Values{"client_id": {"nope"}}},
			{"garbage hint", url.Values{"id_token_hint": {"a.b.c"}}},
			{"repeated state", url.Values{"client_id": {c.ID}, "post_logout_redirect_uri": {after}, "state": {"a", "b"}}},
		} {
			for _, accept := range []string{"application/json", "text/html"} {
				resp, body := h.get("/logout?"+tc.v.Encode(), map[string]string{"Accept": accept})
				if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
					t.Fatalf("%s: %d %q", tc.name, resp.StatusCode, resp.Header.Get("Location"))
				}
				if accept == "application/json" && errorOf(body) != "invalid_request" {
					t.Errorf("%s: %s", tc.name, body)
				}
				if accept == "text/html" && !strings.Contains(string(body), "invalid_request") {
					t.Errorf("%s: the page does not show the error", tc.name)
				}
			}
		}
		// None of them ended the session.
		h.authorize(none).want(t, "code", "")
	})
	t.Run("discovery", func(t *testing.T) {
		for _, doc := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
			_, body := h.get(doc, nil)
			var m map[string]any
			json.Unmarshal(body, &m)
			if m["end_session_endpoint"] != h.issuer+"/logout" {
				t.Errorf("%s: end_session_endpoint %v", doc, m["end_session_endpoint"])
			}
		}
	})
}
