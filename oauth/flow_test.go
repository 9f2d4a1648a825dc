package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"math/big"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
	"golang.org/x/oauth2"
)

// TestCodeFlowWithXOAuth2 runs the whole authorization-code flow with PKCE
// with golang.org/x/oauth2 as the client: if authd's endpoints are
// orthodox, an ordinary OAuth client library works against them unchanged
// and its RetrieveError carries the error fields.
func TestCodeFlowWithXOAuth2(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		for _, tc := range []struct {
			name   string
			public bool
			style  oauth2.AuthStyle
		}{
			{"confidential/basic", false, oauth2.AuthStyleInHeader},
			{"confidential/post", false, oauth2.AuthStyleInParams},
			{"confidential/autodetect", false, oauth2.AuthStyleAutoDetect},
			{"public", true, oauth2.AuthStyleInParams},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c, secret := h.client(ClientRegistration{
					RedirectURIs: []string{"https://app.example.com/cb?tenant=7"},
					Public:       tc.public,
					Scopes:       []string{"profile", "backup"},
				})
				conf := &oauth2.Config{
					ClientID:     c.ID,
					ClientSecret: secret,
					Endpoint:     oauth2.Endpoint{AuthURL: h.issuer + "/authorize", TokenURL: h.issuer + "/token", AuthStyle: tc.style},
					RedirectURL:  "https://app.example.com/cb?tenant=7",
					Scopes:       []string{"profile"},
				}
				ctx := context.WithValue(context.Background(), oauth2.HTTPClient, h.c)
				addr := h.wallet.user()
				verifier := oauth2.GenerateVerifier()
				au, err := url.Parse(conf.AuthCodeURL("st-123", oauth2.S256ChallengeOption(verifier)))
				if err != nil {
					t.Fatal(err)
				}
				resp, body := h.signedAuthorize(addr, au.RequestURI(), nil)
				if resp.StatusCode != http.StatusFound {
					t.Fatalf("authorize: %d %s", resp.StatusCode, body)
				}
				loc, _ := url.Parse(resp.Header.Get("Location"))
				q := loc.Query()
				if loc.Scheme+"://"+loc.Host+loc.Path != "https://app.example.com/cb" || q.Get("tenant") != "7" {
					t.Errorf("redirected to %s, want the registered URI with its query kept", loc)
				}
				if q.Get("state") != "st-123" || q.Get("iss") != h.issuer || q.Get("code") == "" {
					t.Errorf("redirect parameters: %v", q)
				}
				for k := range q {
					if k != "code" && k != "state" && k != "iss" && k != "tenant" {
						t.Errorf("unexpected redirect parameter %q", k)
					}
				}

				tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
				if err != nil {
					t.Fatalf("Exchange: %v", err)
				}
				if tok.TokenType != "Bearer" || tok.RefreshToken == "" || time.Until(tok.Expiry) < 14*time.Minute || time.Until(tok.Expiry) > 16*time.Minute {
					t.Errorf("token: type %q, refresh %q, expiry in %v", tok.TokenType, tok.RefreshToken, time.Until(tok.Expiry))
				}
				if sc, _ := tok.Extra("scope").(string); sc != "profile" {
					t.Errorf("scope %q, want profile", sc)
				}
				claims := checkAccessJWT(t, h, tok.AccessToken)
				if claims["sub"] != addr || claims["client_id"] != c.ID || claims["scope"] != "profile" {
					t.Errorf("claims %v", claims)
				}

				// The token works at /userinfo through x/oauth2's client.
				uresp, err := conf.Client(ctx, tok).Get(h.issuer + "/userinfo")
				if err != nil {
					t.Fatal(err)
				}
				var ui map[string]string
				json.NewDecoder(uresp.Body).Decode(&ui)
				uresp.Body.Close()
				if uresp.StatusCode != 200 || ui["sub"] != addr || ui["address"] != addr || ui["pubkey"] != h.wallet.pubkey(addr) {
					t.Errorf("userinfo %d %v", uresp.StatusCode, ui)
				}

				// Refresh through x/oauth2: the refresh token rotates.
				nt, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
				if err != nil {
					t.Fatalf("refresh: %v", err)
				}
				if nt.AccessToken == tok.AccessToken || nt.RefreshToken == "" || nt.RefreshToken == tok.RefreshToken {
					t.Errorf("refresh did not rotate: %+v", nt)
				}

				// A second exchange of the code: RetrieveError carries
				// the error fields.
				_, err = conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
				wantRetrieveError(t, h, err, http.StatusBadRequest, "invalid_grant")

				if !tc.public {
					bad := *conf
					bad.ClientSecret = "wrong"
					_, err = bad.Exchange(ctx, "whatever", oauth2.VerifierOption(verifier))
					wantRetrieveError(t, h, err, http.StatusUnauthorized, "invalid_client")
				}
			})
		}
	})
}

func wantRetrieveError(t *testing.T, h *harness, err error, status int, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want an *oauth2.RetrieveError", err)
	}
	if re.Response.StatusCode != status || re.ErrorCode != code || re.ErrorDescription == "" || re.ErrorURI != h.issuer+"/docs/errors#"+code {
		t.Errorf("RetrieveError: status %d code %q description %q uri %q; want %d %q with description and uri",
			re.Response.StatusCode, re.ErrorCode, re.ErrorDescription, re.ErrorURI, status, code)
	}
}

// checkAccessJWT checks an access token against RFC 9068 and the JWKS the
// server publishes, independently of the server's own verifier, and
// returns its claims.
func checkAccessJWT(t *testing.T, h *harness, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWS: %q", tok)
	}
	var hdr map[string]string
	hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
	if err := json.Unmarshal(hb, &hdr); err != nil {
		t.Fatal(err)
	}
	if hdr["alg"] != "ES256" || hdr["typ"] != "at+jwt" || hdr["kid"] == "" || len(hdr) != 3 {
		t.Errorf("JWT header %v, want alg ES256, typ at+jwt, kid", hdr)
	}
	// Verify with the published key.
	resp, body := h.get("/.well-known/jwks.json", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("jwks: %d", resp.StatusCode)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	json.Unmarshal(body, &set)
	var pub *ecdsa.PublicKey
	for _, k := range set.Keys {
		if k["kid"] == hdr["kid"] {
			x, _ := base64.RawURLEncoding.DecodeString(k["x"])
			y, _ := base64.RawURLEncoding.DecodeString(k["y"])
			p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				t.Fatal(err)
			}
			pub = p
		}
	}
	if pub == nil {
		t.Fatalf("kid %s not in the JWKS %s", hdr["kid"], body)
	}
	sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if len(sig) != 64 || !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("access token signature does not verify with the JWKS key")
	}
	var claims map[string]any
	pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
	if err := json.Unmarshal(pb, &claims); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iss", "sub", "aud", "client_id", "scope", "exp", "iat", "jti"} {
		if _, ok := claims[k]; !ok {
			t.Errorf("claim %s missing: %v", k, claims)
		}
	}
	if claims["iss"] != h.issuer || claims["aud"] != h.issuer {
		t.Errorf("iss %v aud %v, want %s", claims["iss"], claims["aud"], h.issuer)
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != DefaultAccessTokenTTL.Seconds() {
		t.Errorf("exp - iat = %v", exp-iat)
	}
	return claims
}

var (
	loginIDRe = regexp.MustCompile(`name="login_id" value="([^"]+)"`)
	messageRe = regexp.MustCompile(`(?s)<textarea id="message"[^>]*>(.*?)</textarea>`)
)

// loginPage parses a login page: its login id and the message to sign.
func loginPage(t *testing.T, body []byte) (id, message string) {
	t.Helper()
	m := loginIDRe.FindSubmatch(body)
	mm := messageRe.FindSubmatch(body)
	if m == nil || mm == nil {
		t.Fatalf("no login form in page:\n%s", body)
	}
	return string(m[1]), html.UnescapeString(string(mm[1]))
}

// TestLoginPage walks the browser flow: the login page shows the exact
// message, a bad signature shows the error and keeps the request, a good
// one redirects with a code, and the login is single-use.
func TestLoginPage(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil, func(c *server.Config) { c.Upstreams = []Upstream{newFakeUpstream("google")} })
		c, secret := h.client(ClientRegistration{Name: "Sparrow <Demo>", RedirectURIs: []string{"https://app.example.com/cb"}, Scopes: []string{"profile", "backup"}})
		addr := h.wallet.user()
		verifier, challenge := pkce()
		params := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {"https://app.example.com/cb"},
			"scope": {"profile backup"}, "state": {"xyz"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		browser := map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}

		resp, body := h.get(authorizeURL(params), browser)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("login page: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		for k, want := range map[string]string{
			"X-Frame-Options":         "DENY",
			"Cache-Control":           "no-store",
			"Content-Security-Policy": "form-action 'self' https://app.example.com;",
		} {
			if got := resp.Header.Get(k); !strings.Contains(got, want) {
				t.Errorf("%s = %q, want it to contain %q", k, got, want)
			}
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Error("login page CSP lacks frame-ancestors 'none'")
		}
		page := string(body)
		for _, want := range []string{"Sparrow &lt;Demo&gt;", "app.example.com", "Sign in with Google", `value="google"`, "(<code>backup</code>)"} {
			if !strings.Contains(page, want) {
				t.Errorf("login page lacks %q", want)
			}
		}
		if strings.Contains(page, "GitHub") || strings.Contains(page, "<script") || strings.Contains(page, "http://") && strings.Contains(page, "src=") {
			t.Error("login page offers an unconfigured provider or loads something external")
		}
		id, msg := loginPage(t, body)
		host := strings.TrimPrefix(h.issuer, "http://")
		lines := strings.Split(msg, "\n")
		want := []string{
			"Sign in to " + host,
			"Application: Sparrow <Demo>",
			"Client ID: " + c.ID,
			"Redirect to: app.example.com",
			"Scopes: profile backup",
			"Nonce: " + id,
		}
		if len(lines) != 8 {
			t.Fatalf("message has %d lines, want 8:\n%s", len(lines), msg)
		}
		for i, w := range want {
			if lines[i] != w {
				t.Errorf("message line %d = %q, want %q", i+1, lines[i], w)
			}
		}
		issued, err1 := time.Parse(time.RFC3339, strings.TrimPrefix(lines[6], "Issued At: "))
		expires, err2 := time.Parse(time.RFC3339, strings.TrimPrefix(lines[7], "Expires At: "))
		if err1 != nil || err2 != nil || expires.Sub(issued) != DefaultLoginTTL || time.Since(issued) > time.Minute {
			t.Errorf("message times %q %q", lines[6], lines[7])
		}

		// A wrong signature: the login page again, with the error and the
		// same request, 401.
		form := url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg+"x")}}
		resp, body = h.postForm("/authorize/login", form, browser)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Location") != "" {
			t.Fatalf("bad signature: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if !strings.Contains(string(body), `role="alert"`) || !strings.Contains(string(body), "Bitcoin signature verification failed") ||
			!strings.Contains(string(body), `value="`+addr+`"`) {
			t.Errorf("error page does not show the error and keep the address:\n%s", body)
		}
		if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "form-action 'self' https://app.example.com") {
			t.Errorf("error page CSP %q blocks the redirect after the next post", resp.Header.Get("Content-Security-Policy"))
		}
		if id2, msg2 := loginPage(t, body); id2 != id || msg2 != msg {
			t.Error("the failed attempt did not keep the request")
		}
		// The same failure for a client that prefers JSON.
		resp, _ = h.postForm("/authorize/login", form, map[string]string{"Accept": "application/json"})
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("JSON failure: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		// A provider that is not configured: the error on the page, the
		// request kept (the configured one is TestUpstreamSignIn's).
		resp, body = h.postForm("/authorize/login", url.Values{"login_id": {id}, "provider": {"github"}}, browser)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || !strings.Contains(string(body), "Provider &#39;github&#39; is not configured") {
			t.Errorf("provider=github: %d %s", resp.StatusCode, body)
		}
		if id2, _ := loginPage(t, body); id2 != id {
			t.Error("the provider error did not keep the request")
		}

		// The right signature: 303 to the client with a code.
		form.Set("signature", h.wallet.sign(addr, msg))
		resp, _ = h.postForm("/authorize/login", form, browser)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("good signature: %d", resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc.Host != "app.example.com" || loc.Query().Get("state") != "xyz" || loc.Query().Get("iss") != h.issuer {
			t.Errorf("redirect %s", loc)
		}
		tr := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
			"redirect_uri": {"https://app.example.com/cb"}, "code_verifier": {verifier}}, c.ID, secret)
		tr.wantOK(t)
		if tr.Scope != "profile backup" {
			t.Errorf("scope %q", tr.Scope)
		}

		// Single use.
		resp, _ = h.postForm("/authorize/login", form, browser)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Errorf("reused login: %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, _ := h.postForm("/authorize/login", url.Values{"address": {addr}}, nil); resp.StatusCode != 400 {
			t.Errorf("no login_id: %d", resp.StatusCode)
		}
	})
}

// TestLoginLockoutAndExpiry: sigauth's lockout (429 after 5 failures) is
// shown on the login page with its delay and never redirected; it is the
// client's, not the address's; a login older than LoginTTL is refused.
func TestLoginLockoutAndExpiry(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	c, _ := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
	addr := h.wallet.user()
	params := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {"https://app.example.com/cb"}}
	_, body := h.get(authorizeURL(params), nil)
	id, msg := loginPage(t, body)
	bad := url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg+"x")}}
	for i := range 5 {
		if resp, _ := h.postForm("/authorize/login", bad, nil); resp.StatusCode != 401 {
			t.Fatalf("bad signature %d: %d", i+1, resp.StatusCode)
		}
	}
	resp, body := h.postForm("/authorize/login", url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg)}}, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "30" || resp.Header.Get("Location") != "" {
		t.Fatalf("locked out: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if !strings.Contains(string(body), "try again in 30 seconds") || !strings.Contains(string(body), `name="login_id"`) {
		t.Errorf("lockout page:\n%s", body)
	}

	// Another client signing in as the same address is not locked out:
	// the lockout is never per address alone.
	victim := h.c
	h.c = h.browser()
	_, body = h.get(authorizeURL(params), nil)
	id2, msg2 := loginPage(t, body)
	resp, _ = h.postForm("/authorize/login", url.Values{"login_id": {id2}, "address": {addr}, "signature": {h.wallet.sign(addr, msg2)}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the address's owner elsewhere: %d, want 303", resp.StatusCode)
	}
	h.c = victim

	h.clock.Set(time.Now().Add(DefaultLoginTTL + time.Second))
	resp, _ = h.postForm("/authorize/login", url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg)}}, nil)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
		t.Errorf("expired login: %d", resp.StatusCode)
	}
}
