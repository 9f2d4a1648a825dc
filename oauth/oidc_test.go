package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const oidcRedirect = "https://rp.example.com/cb"

// oidcClient registers a confidential client for OpenID Connect.
func (h *harness) oidcClient(alg string) (*Client, string) {
	h.t.Helper()
	return h.client(ClientRegistration{RedirectURIs: []string{oidcRedirect},
		Scopes: []string{"openid", "profile", "email", "offline_access", "backup"}, IDTokenAlg: alg})
}

// oidcRequest is an OpenID Connect authentication request of c.
func oidcRequest(c *Client, extra map[string]string) url.Values {
	v := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {oidcRedirect},
		"scope": {"openid profile"}, "state": {"st"}}
	for k, x := range extra {
		if x == "" {
			v.Del(k)
		} else {
			v.Set(k, x)
		}
	}
	return v
}

// exchange redeems code for c.
func (h *harness) exchange(c *Client, secret, code string) tokenResp {
	h.t.Helper()
	tr := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {oidcRedirect}}, c.ID, secret)
	tr.wantOK(h.t)
	return tr
}

// idToken verifies tok against the server's JWKS, as a relying party
// would, and returns its header and claims.
func (h *harness) idToken(tok string) (jose.Header, map[string]any) {
	h.t.Helper()
	t, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		h.t.Fatalf("ID Token %q: %v", tok, err)
	}
	_, body := h.get("/.well-known/jwks.json", nil)
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		h.t.Fatal(err)
	}
	keys := set.Key(t.Headers[0].KeyID)
	if len(keys) != 1 || keys[0].Algorithm != t.Headers[0].Algorithm {
		h.t.Fatalf("kid %s (%s) is not in the JWKS %s", t.Headers[0].KeyID, t.Headers[0].Algorithm, body)
	}
	var claims map[string]any
	if err := t.Claims(keys[0].Key, &claims); err != nil {
		h.t.Fatalf("ID Token signature: %v", err)
	}
	return t.Headers[0], claims
}

func claimKeys(c map[string]any) []string {
	var ks []string
	for k := range c {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestIDToken: an authorization with openid gets an ID Token with exactly
// the claims OpenID Connect Core 1.0 §2 and §3.1.3.6 ask for, signed RS256
// by default or ES256 for a client registered so; its refreshes get one
// too (same sub, original auth_time, no nonce); a plain OAuth 2.0
// authorization gets none.
func TestIDToken(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		for _, alg := range []string{AlgRS256, AlgES256} {
			t.Run(alg, func(t *testing.T) {
				c, secret := h.oidcClient(map[string]string{AlgRS256: "", AlgES256: AlgES256}[alg])
				addr := h.wallet.user()
				before := time.Now().Truncate(time.Second)
				tr := h.exchange(c, secret, h.code(addr, oidcRequest(c, map[string]string{"nonce": "n-0S6_WzA2Mj ü"})))
				after := time.Now()
				if tr.IDToken == "" {
					t.Fatalf("no id_token in %+v", tr)
				}
				hdr, claims := h.idToken(tr.IDToken)
				if hdr.Algorithm != alg || hdr.ExtraHeaders[jose.HeaderType] != "JWT" {
					t.Errorf("header %+v, want alg %s typ JWT", hdr, alg)
				}
				// sid: the wallet-signed sign-in started a session.
				if got := claimKeys(claims); !slices.Equal(got, []string{"amr", "at_hash", "aud", "auth_time", "azp", "exp", "iat", "iss", "nonce", "sid", "sub"}) {
					t.Errorf("claims %v", got)
				}
				sum := sha256.Sum256([]byte(tr.AccessToken))
				for k, want := range map[string]any{
					"iss": h.issuer, "sub": addr, "aud": c.ID, "azp": c.ID, "nonce": "n-0S6_WzA2Mj ü",
					"at_hash": base64.RawURLEncoding.EncodeToString(sum[:16]), "amr": []any{"swk"},
				} {
					if got, _ := json.Marshal(claims[k]); string(got) != string(must(json.Marshal(want))) {
						t.Errorf("%s = %s, want %v", k, got, want)
					}
				}
				iat, exp, authTime := int64(claims["iat"].(float64)), int64(claims["exp"].(float64)), int64(claims["auth_time"].(float64))
				if exp-iat != int64(DefaultIDTokenTTL/time.Second) || authTime < before.Unix() || authTime > after.Unix() || iat < authTime {
					t.Errorf("iat %d exp %d auth_time %d (signed in between %d and %d)", iat, exp, authTime, before.Unix(), after.Unix())
				}
				if wantKid := h.s.SigningKID(context.Background(), alg); hdr.KeyID != wantKid {
					t.Errorf("kid %s, want the current %s key %s", hdr.KeyID, alg, wantKid)
				}

				// The refresh of the grant: a new ID Token, same sub, the
				// original auth_time, no nonce; also when the access token
				// is narrowed to a scope without openid.
				time.Sleep(1100 * time.Millisecond) // a later iat
				for _, scope := range []string{"", "profile"} {
					v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}
					if scope != "" {
						v.Set("scope", scope)
					}
					rt := h.token(v, c.ID, secret)
					rt.wantOK(t)
					if rt.IDToken == "" {
						t.Fatalf("refresh (scope %q): no id_token", scope)
					}
					_, rc := h.idToken(rt.IDToken)
					sum := sha256.Sum256([]byte(rt.AccessToken))
					if rc["sub"] != addr || int64(rc["auth_time"].(float64)) != authTime || rc["nonce"] != nil ||
						rc["at_hash"] != base64.RawURLEncoding.EncodeToString(sum[:16]) || int64(rc["iat"].(float64)) <= iat ||
						rc["aud"] != c.ID || rc["amr"] == nil {
						t.Errorf("refresh (scope %q) ID Token claims %v", scope, rc)
					}
					tr = rt
				}

				// An ID Token is not an access token.
				if resp, _ := h.userinfo(tr.IDToken); resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("ID Token accepted as an access token: %d", resp.StatusCode)
				}
			})
		}

		t.Run("no nonce, no openid", func(t *testing.T) {
			c, secret := h.oidcClient("")
			addr := h.wallet.user()
			tr := h.exchange(c, secret, h.code(addr, oidcRequest(c, nil)))
			if _, claims := h.idToken(tr.IDToken); claims["nonce"] != nil {
				t.Errorf("nonce %v without one in the request", claims["nonce"])
			}
			for _, scope := range []string{"profile", "profile email backup offline_access"} {
				tr = h.exchange(c, secret, h.code(addr, oidcRequest(c, map[string]string{"scope": scope, "nonce": "n"})))
				if tr.IDToken != "" {
					t.Errorf("scope %q got an ID Token", scope)
				}
				rt := h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, c.ID, secret)
				rt.wantOK(t)
				if rt.IDToken != "" {
					t.Errorf("refresh of scope %q got an ID Token", scope)
				}
			}
		})
	})
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestIDTokenSignInMethods: auth_time is when the user signed in, and amr
// says how: ["swk"] for a wallet signature on the login page, nothing for
// Google or GitHub.
func TestIDTokenSignInMethods(t *testing.T) {
	google := newFakeUpstream(KindGoogle)
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, func(c *server.Config) { c.Upstreams = []Upstream{google} })
	c, secret := h.oidcClient("")
	grantConsent(t, h, c, "google:4242")
	browser := map[string]string{"Accept": "text/html"}

	t.Run("login page", func(t *testing.T) {
		addr := h.wallet.user()
		resp, body := h.get(authorizeURL(oidcRequest(c, map[string]string{"nonce": "abc", "login_hint": addr})), browser)
		if resp.StatusCode != 200 {
			t.Fatalf("login page: %d", resp.StatusCode)
		}
		if !strings.Contains(string(body), `id="address" name="address" required autocomplete="off" autocapitalize="off" spellcheck="false" value="`+addr+`"`) {
			t.Errorf("login_hint does not pre-fill the address:\n%s", body)
		}
		id, msg := loginPage(t, body)
		h.clock.Set(time.Now().Add(3 * time.Minute)) // the user takes a while to sign
		defer h.clock.Set(time.Time{})
		signedAt := h.clock.Now()
		resp, _ = h.postForm("/authorize/login", url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg)}}, browser)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" {
			t.Fatalf("login: %d %s", resp.StatusCode, loc)
		}
		tr := h.exchange(c, secret, loc.Query().Get("code"))
		_, claims := h.idToken(tr.IDToken)
		if claims["sub"] != addr || claims["nonce"] != "abc" || int64(claims["auth_time"].(float64)) != signedAt.Unix() ||
			!slices.Equal(claims["amr"].([]any), []any{"swk"}) {
			t.Errorf("claims %v", claims)
		}
	})
	t.Run("google", func(t *testing.T) {
		resp, body := h.get(authorizeURL(oidcRequest(c, map[string]string{"nonce": "g", "provider": "google"})), nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize: %d %s", resp.StatusCode, body)
		}
		q := google.consent(t, resp.Header.Get("Location"))
		resp, body = h.get("/callback/google?"+q.Encode(), nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
			t.Fatalf("callback: %d %s", resp.StatusCode, body)
		}
		tr := h.exchange(c, secret, loc.Query().Get("code"))
		_, claims := h.idToken(tr.IDToken)
		if claims["sub"] != "google:4242" || claims["nonce"] != "g" || claims["auth_time"] == nil {
			t.Errorf("claims %v", claims)
		}
		if _, ok := claims["amr"]; ok {
			t.Errorf("amr %v for a Google sign-in", claims["amr"])
		}
	})
}

// authorizeRedirect sends an authorization request (signed by addr when
// addr is not "") and returns the query of the redirect it answers with.
func (h *harness) authorizeRedirect(t *testing.T, addr string, v url.Values) url.Values {
	t.Helper()
	var resp *http.Response
	var body []byte
	if addr != "" {
		resp, body = h.signedAuthorize(addr, authorizeURL(v), nil)
	} else {
		h.c = h.browser() // a browser without a session
		resp, body = h.get(authorizeURL(v), map[string]string{"Accept": "text/html"})
	}
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize %v: %d %s", v, resp.StatusCode, body)
	}
	u, _ := url.Parse(resp.Header.Get("Location"))
	if u.Host != "rp.example.com" {
		t.Fatalf("redirected to %s", u)
	}
	return u.Query()
}

// TestAuthorizeOIDCParams: prompt, max_age, id_token_hint and the
// parameters authd does not support, on the wire: the errors go back to
// the client with state and iss (the harness checks every redirect's
// error_uri against /docs/errors).
func TestAuthorizeOIDCParams(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, func(c *server.Config) { c.Upstreams = []Upstream{newFakeUpstream(KindGoogle)} })
	c, secret := h.oidcClient("")
	addr, other := h.wallet.user(), h.wallet.user()
	hintFor := func(who string) string {
		return h.exchange(c, secret, h.code(who, oidcRequest(c, nil))).IDToken
	}
	hint, otherHint := hintFor(addr), hintFor(other)
	access := h.exchange(c, secret, h.code(addr, oidcRequest(c, nil))).AccessToken

	// An ID Token signed by a key authd does not have.
	foreign := func() string {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		sig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kidOf(hint)))
		tok, _ := jwt.Signed(sig).Claims(jwt.Claims{Issuer: h.issuer, Subject: addr}).Serialize()
		return tok
	}()

	for _, tc := range []struct {
		name   string
		signer string // "" for an unsigned (browser) request
		set    map[string]string
		code   string // the error; "" for success
	}{
		{"prompt=none unsigned", "", map[string]string{"prompt": "none"}, "login_required"},
		{"prompt=none signed", addr, map[string]string{"prompt": "none"}, ""},
		{"prompt=none with a provider", "", map[string]string{"prompt": "none", "provider": "google"}, "login_required"},
		{"prompt=none login", addr, map[string]string{"prompt": "none login"}, "invalid_request"},
		{"prompt=select_account none", addr, map[string]string{"prompt": "select_account none"}, "invalid_request"},
		{"prompt unknown", addr, map[string]string{"prompt": "create"}, "invalid_request"},
		{"prompt login consent select_account", addr, map[string]string{"prompt": "login consent select_account"}, ""},
		{"max_age", addr, map[string]string{"max_age": "0"}, ""},
		{"max_age negative", addr, map[string]string{"max_age": "-1"}, "invalid_request"},
		{"max_age not a number", addr, map[string]string{"max_age": "1h"}, "invalid_request"},
		{"max_age with sign", addr, map[string]string{"max_age": "+60"}, "invalid_request"},
		{"nonce too long", addr, map[string]string{"nonce": strings.Repeat("n", MaxNonceLen+1)}, "invalid_request"},
		{"id_token_hint of the signer", addr, map[string]string{"id_token_hint": hint, "prompt": "none"}, ""},
		{"id_token_hint of another user", addr, map[string]string{"id_token_hint": otherHint, "prompt": "none"}, "login_required"},
		{"id_token_hint of another user, no prompt", addr, map[string]string{"id_token_hint": otherHint}, "login_required"},
		{"id_token_hint garbage", addr, map[string]string{"id_token_hint": "a.b.c"}, "invalid_request"},
		{"id_token_hint an access token", addr, map[string]string{"id_token_hint": access}, "invalid_request"},
		{"id_token_hint of a foreign key", addr, map[string]string{"id_token_hint": foreign}, "invalid_request"},
		{"ignored parameters", addr, map[string]string{"display": "popup", "ui_locales": "de fr", "claims_locales": "de",
			"acr_values": "urn:mace:incommon:iap:silver", "claims": `{"userinfo":{"email":null}}`, "login_hint": addr}, ""},
		{"request", addr, map[string]string{"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported"},
		{"request_uri", addr, map[string]string{"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "request_uri_not_supported"},
		{"registration", addr, map[string]string{"registration": `{"redirect_uris":["https://x"]}`}, "registration_not_supported"},
		{"request without openid", addr, map[string]string{"scope": "profile", "request": "x"}, "request_not_supported"},
		// Plain OAuth 2.0 (no openid): OpenID Connect parameters are not read.
		{"prompt=none login without openid", addr, map[string]string{"scope": "profile", "prompt": "none login", "max_age": "x"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, st := range []string{"st ü&=1", ""} {
				v := oidcRequest(c, tc.set)
				if st == "" {
					v.Del("state")
				} else {
					v.Set("state", st)
				}
				q := h.authorizeRedirect(t, tc.signer, v)
				if q.Get("error") != tc.code || (tc.code == "") != q.Has("code") {
					t.Fatalf("%v: want error %q", q, tc.code)
				}
				if q.Get("iss") != h.issuer || q.Get("state") != st || q.Has("state") != (st != "") {
					t.Errorf("redirect %v lacks iss or the exact state", q)
				}
			}
		})
	}

	t.Run("a repeated parameter", func(t *testing.T) {
		for _, p := range []string{"nonce", "prompt", "max_age", "id_token_hint", "login_hint", "display", "claims"} {
			q := h.authorizeRedirect(t, addr, url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {oidcRedirect},
				"scope": {"openid"}, "state": {"s"}, p: {"1", "2"}})
			if q.Get("error") != "invalid_request" || !strings.Contains(q.Get("error_description"), p) {
				t.Errorf("%s twice: %v", p, q)
			}
		}
	})

	t.Run("an expired id_token_hint", func(t *testing.T) {
		h.clock.Set(time.Now().Add(DefaultIDTokenTTL + time.Hour))
		defer h.clock.Set(time.Time{})
		if q := h.authorizeRedirect(t, addr, oidcRequest(c, map[string]string{"id_token_hint": hint})); !q.Has("code") {
			t.Errorf("expired hint: %v", q)
		}
	})
}

// TestUnsupportedRequestParamsDirect: with no redirect_uri to trust (a
// request object carries its own), request, request_uri and registration
// are answered directly, 400, in JSON or as a page.
func TestUnsupportedRequestParamsDirect(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	c, _ := h.oidcClient("")
	for _, tc := range []struct{ param, code string }{
		{"request", "request_not_supported"},
		{"request_uri", "request_uri_not_supported"},
		{"registration", "registration_not_supported"},
	} {
		for _, ru := range []string{"", "https://evil.example/cb"} {
			v := url.Values{"client_id": {c.ID}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s"}, tc.param: {"x"}}
			if ru != "" {
				v.Set("redirect_uri", ru)
			}
			resp, body := h.get(authorizeURL(v), map[string]string{"Accept": "application/json"})
			var e map[string]string
			json.Unmarshal(body, &e)
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || e["error"] != tc.code {
				t.Errorf("%s, redirect_uri %q: %d %s", tc.param, ru, resp.StatusCode, body)
			}
			resp, body = h.get(authorizeURL(v), map[string]string{"Accept": "text/html"})
			if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), tc.code) {
				t.Errorf("%s as a page: %d %s", tc.param, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
	}
	// An unknown client is still an unknown client.
	resp, body := h.get("/authorize?client_id=nobody&request=x", map[string]string{"Accept": "application/json"})
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"invalid_request"`) {
		t.Errorf("unknown client with request: %d %s", resp.StatusCode, body)
	}
}

// TestOIDCErrorCodesRedirect: every OpenID Connect error code in the
// catalog goes back to a validated client with state and iss, and is 400
// when answered directly; each has its anchor on /docs/errors.
func TestOIDCErrorCodesRedirect(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	for _, code := range []errors.Code{errors.LoginRequired, errors.ConsentRequired, errors.InteractionRequired,
		errors.AccountSelectionRequired, errors.RequestNotSupported, errors.RequestURINotSupported, errors.RegistrationNotSupported} {
		e, ok := errors.Lookup(code)
		if !ok || e.Status != 400 || !e.Redirectable || !docAnchors(t)[string(code)] {
			t.Errorf("%s: catalog %+v, anchor %v", code, e, docAnchors(t)[string(code)])
		}
		p := &Pending{RedirectURI: "https://rp.example.com/cb?x=1", State: "s t", HasState: true}
		rec := serveError(h, h.s.RedirectError(p, code, e.Description))
		u, _ := url.Parse(rec.Header().Get("Location"))
		q := u.Query()
		if rec.Code != http.StatusFound || q.Get("error") != string(code) || q.Get("state") != "s t" || q.Get("iss") != h.issuer ||
			q.Get("x") != "1" || q.Get("error_uri") != h.issuer+"/docs/errors#"+string(code) {
			t.Errorf("%s redirected: %d %s", code, rec.Code, u)
		}
		rec = serveError(h, errors.E(code, e.Description))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"error":"`+string(code)+`"`) {
			t.Errorf("%s directly: %d %s", code, rec.Code, rec.Body)
		}
	}
}

// TestUserInfoByScope: sub always; profile and email claims by scope;
// openid alone is enough to call /userinfo.
func TestUserInfoByScope(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		github := newFakeUpstream(KindGitHub)
		h := newHarness(t, db, nil, func(c *server.Config) { c.Upstreams = []Upstream{github} })
		c, secret := h.oidcClient("")
		grantConsent(t, h, c, "github:4242")
		addr := h.wallet.user()
		viaGitHub := func(scope string) string {
			resp, body := h.get(authorizeURL(oidcRequest(c, map[string]string{"scope": scope, "provider": "github"})), nil)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("authorize: %d %s", resp.StatusCode, body)
			}
			if github.emailAsked[0] != strings.Contains(scope, "email") {
				t.Errorf("scope %q: GitHub asked for e-mail = %v", scope, github.emailAsked[0])
			}
			q := github.consent(t, resp.Header.Get("Location"))
			resp, _ = h.get("/callback/github?"+q.Encode(), nil)
			loc, _ := url.Parse(resp.Header.Get("Location"))
			return h.exchange(c, secret, loc.Query().Get("code")).AccessToken
		}
		for _, tc := range []struct {
			name  string
			token func() string
			want  map[string]any
		}{
			{"wallet, openid", func() string {
				return h.exchange(c, secret, h.code(addr, oidcRequest(c, map[string]string{"scope": "openid"}))).AccessToken
			}, map[string]any{"sub": addr}},
			{"wallet, openid profile email", func() string {
				return h.exchange(c, secret, h.code(addr, oidcRequest(c, map[string]string{"scope": "openid profile email"}))).AccessToken
			}, map[string]any{"sub": addr, "preferred_username": addr, "address": addr, "pubkey": h.wallet.pubkey(addr)}},
			{"github, openid profile", func() string { return viaGitHub("openid profile") },
				map[string]any{"sub": "github:4242", "preferred_username": "pat", "name": "Pat Person", "picture": "https://pictures.example/pat.png"}},
			{"github, openid email", func() string { return viaGitHub("openid email") },
				map[string]any{"sub": "github:4242", "email": "person@example.com", "email_verified": true}},
			{"github, profile email (plain OAuth 2.0)", func() string { return viaGitHub("profile email") },
				map[string]any{"sub": "github:4242", "preferred_username": "pat", "name": "Pat Person", "picture": "https://pictures.example/pat.png",
					"email": "person@example.com", "email_verified": true}},
			// The address is known by now; without scope email it stays out.
			{"github, openid profile, e-mail known", func() string { return viaGitHub("openid profile") },
				map[string]any{"sub": "github:4242", "preferred_username": "pat", "name": "Pat Person", "picture": "https://pictures.example/pat.png"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := h.userinfo(tc.token())
				var got map[string]any
				json.Unmarshal(body, &got)
				if resp.StatusCode != 200 || string(must(json.Marshal(got))) != string(must(json.Marshal(tc.want))) {
					t.Errorf("userinfo %d %s, want %v", resp.StatusCode, body, tc.want)
				}
			})
		}
		// Neither openid nor profile: 403, scope="profile".
		tok := h.exchange(c, secret, h.code(addr, oidcRequest(c, map[string]string{"scope": "email backup"}))).AccessToken
		resp, _ := h.userinfo(tok)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="profile"`) {
			t.Errorf("token without openid or profile: %d %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
}

// TestRS256Rotation: a routine RS256 rotation publishes the next key
// before it signs; after it, ID Tokens of the previous key still verify
// for an ID Token lifetime, and the key then leaves the JWKS.
func TestRS256Rotation(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	h := newHarness(t, db, nil)
	c, secret := h.oidcClient("")
	addr := h.wallet.user()
	ctx := context.Background()
	issue := func() string { return h.exchange(c, secret, h.code(addr, oidcRequest(c, nil))).IDToken }
	oldTok := issue()
	oldKid := kidOf(oldTok)
	esBefore := jwksKids(t, h, AlgES256)

	now := time.Now()
	next, err := RotateKey(ctx, db.DB, testKeyEncryption, AlgRS256, now.Add(KeyActivationDelay))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if kids := jwksKids(t, h, AlgRS256); !slices.Equal(kids, []string{next.KID, oldKid}) {
		t.Fatalf("JWKS RS256 keys during the delay %v, want the next %s and the current %s", kids, next.KID, oldKid)
	}
	if kid := kidOf(issue()); kid != oldKid {
		t.Fatalf("signed by %s before its activation", kid)
	}
	defer h.clock.Set(time.Time{})
	h.clock.Set(now.Add(KeyActivationDelay + time.Second))
	fresh := issue()
	if kidOf(fresh) != next.KID {
		t.Fatalf("signed by %s after activation, want %s", kidOf(fresh), next.KID)
	}
	// The RP holding the old ID Token verifies it against today's JWKS.
	if _, claims := h.idToken(oldTok); claims["sub"] != addr {
		t.Fatalf("old ID Token: %v", claims)
	}
	if !slices.Equal(jwksKids(t, h, AlgES256), esBefore) {
		t.Error("an RS256 rotation changed the ES256 keys")
	}
	// Two rotations on, the old key stays while its ID Tokens may live.
	if _, err := RotateKey(ctx, db.DB, testKeyEncryption, AlgRS256, now.Add(KeyActivationDelay+2*time.Second)); err != nil {
		t.Fatal(err)
	}
	h.clock.Set(now.Add(KeyActivationDelay + DefaultIDTokenTTL - time.Minute))
	h.s.ReloadKeys(ctx)
	if kids := jwksKids(t, h, AlgRS256); len(kids) != 3 || kids[2] != oldKid {
		t.Errorf("JWKS RS256 keys within an ID Token lifetime %v", kids)
	}
	h.clock.Set(now.Add(KeyActivationDelay + DefaultIDTokenTTL + 2*time.Minute))
	h.s.ReloadKeys(ctx)
	if kids := jwksKids(t, h, AlgRS256); len(kids) != 2 || slices.Contains(kids, oldKid) {
		t.Errorf("JWKS RS256 keys after an ID Token lifetime %v", kids)
	}
}

// serveError answers err through the error layer, as a handler's error
// at /authorize.
func serveError(h *harness, err error) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/authorize", nil)
	req.Header.Set("Accept", "application/json")
	httperr.Middleware(httperr.Config{URIBase: h.issuer + "/docs/errors", Logger: quiet},
		httperr.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return err })).ServeHTTP(rec, req)
	return rec
}
