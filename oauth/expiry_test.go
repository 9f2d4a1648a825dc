package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
	"github.com/redis/go-redis/v9"
)

// Every deadline is checked on both sides: one millisecond before it the
// thing still works, at it it no longer does. The server's deadlines are
// checked with its clock (Config.Now) standing still; Redis's with
// miniredis's clock moved (FastForward), the server's clock left alone.

// stillClock stops h's clock at a whole second from now and returns it:
// sign-in times are kept to the second.
func stillClock(h *harness) time.Time {
	t0 := time.Now().Add(time.Second).Truncate(time.Second)
	h.clock.Set(t0)
	return t0
}

// exchangeCode redeems a code at the token endpoint.
func exchangeCode(h *harness, c *Client, secret, code, ru string) tokenResp {
	h.t.Helper()
	return h.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ru}}, c.ID, secret)
}

// TestCodeDeadline: a code redeems one millisecond before CodeTTL runs out
// and not at it, by the server's clock and by Redis's expiry.
func TestCodeDeadline(t *testing.T) {
	const ru = "https://app.example.com/cb"
	t.Run("server clock", func(t *testing.T) {
		h := newHarness(t, testenv.DB(t, store.SQLite), nil)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		addr := h.wallet.user()
		t0 := stillClock(h)
		before, at := h.code(addr, codeParams(c, ru, "")), h.code(addr, codeParams(c, ru, ""))
		h.clock.Set(t0.Add(DefaultCodeTTL - time.Millisecond))
		exchangeCode(h, c, secret, before, ru).wantOK(t)
		h.clock.Set(t0.Add(DefaultCodeTTL))
		exchangeCode(h, c, secret, at, ru).wantError(t, 400, "invalid_grant")
	})
	t.Run("redis expiry", func(t *testing.T) {
		mr, rdb := miniredisClient(t)
		h := newHarness(t, testenv.DB(t, store.SQLite), rdb)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		addr := h.wallet.user()
		before := h.code(addr, codeParams(c, ru, ""))
		mr.FastForward(DefaultCodeTTL - time.Millisecond)
		exchangeCode(h, c, secret, before, ru).wantOK(t)
		at := h.code(addr, codeParams(c, ru, ""))
		mr.FastForward(DefaultCodeTTL)
		exchangeCode(h, c, secret, at, ru).wantError(t, 400, "invalid_grant")
	})
}

// loginForm opens the login page for c and returns the signed form that
// completes it as addr.
func loginForm(t *testing.T, h *harness, c *Client, ru, addr string) url.Values {
	t.Helper()
	resp, body := h.get(authorizeURL(codeParams(c, ru, "")), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login page: %d %s", resp.StatusCode, body)
	}
	id, msg := loginPage(t, body)
	return url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg)}}
}

// wantLogin posts a login form and checks for the code redirect (ok) or
// the invalid_request of an expired login.
func wantLogin(t *testing.T, h *harness, form url.Values, ok bool) {
	t.Helper()
	resp, body := h.postForm("/authorize/login", form, map[string]string{"Accept": "application/json"})
	var e map[string]any
	switch {
	case ok && resp.StatusCode == http.StatusSeeOther && strings.Contains(resp.Header.Get("Location"), "code="):
	case !ok && resp.StatusCode == http.StatusBadRequest && json.Unmarshal(body, &e) == nil && e["error"] == "invalid_request":
	default:
		t.Fatalf("login: %d %s (Location %q), want ok=%v", resp.StatusCode, body, resp.Header.Get("Location"), ok)
	}
}

// TestLoginChallengeDeadline: a login page's challenge signs in one
// millisecond before LoginTTL runs out and not at it.
func TestLoginChallengeDeadline(t *testing.T) {
	const ru = "https://app.example.com/cb"
	t.Run("server clock", func(t *testing.T) {
		h := newHarness(t, testenv.DB(t, store.SQLite), nil)
		c, _ := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		addr := h.wallet.user()
		t0 := stillClock(h)
		before, at := loginForm(t, h, c, ru, addr), loginForm(t, h, c, ru, addr)
		h.clock.Set(t0.Add(DefaultLoginTTL - time.Millisecond))
		wantLogin(t, h, before, true)
		h.clock.Set(t0.Add(DefaultLoginTTL))
		wantLogin(t, h, at, false)
	})
	t.Run("redis expiry", func(t *testing.T) {
		mr, rdb := miniredisClient(t)
		h := newHarness(t, testenv.DB(t, store.SQLite), rdb)
		c, _ := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		addr := h.wallet.user()
		before := loginForm(t, h, c, ru, addr)
		mr.FastForward(DefaultLoginTTL - time.Millisecond)
		wantLogin(t, h, before, true)
		h.c = h.browser() // without the session that sign-in started
		at := loginForm(t, h, c, ru, addr)
		mr.FastForward(DefaultLoginTTL)
		wantLogin(t, h, at, false)
	})
}

// TestUpstreamStateDeadline: a provider's callback finishes the sign-in
// one millisecond before LoginTTL runs out and not at it.
func TestUpstreamStateDeadline(t *testing.T) {
	const ru = "https://app.example.com/cb"
	// setup starts a server on rdb (nil: the test Redis server).
	setup := func(t *testing.T, rdb redis.UniversalClient) (*harness, *fakeUpstream, *Client) {
		google := newFakeUpstream(KindGoogle)
		h := newHarness(t, testenv.DB(t, store.SQLite), rdb, func(c *server.Config) { c.Upstreams = []Upstream{google} })
		c, _ := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		grantConsent(t, h, c, "google:4242")
		return h, google, c
	}
	start := func(t *testing.T, h *harness, up *fakeUpstream, c *Client) url.Values {
		t.Helper()
		v := codeParams(c, ru, "")
		v.Set("provider", up.name)
		resp, body := h.get(authorizeURL(v), nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize with provider: %d %s", resp.StatusCode, body)
		}
		return up.consent(t, resp.Header.Get("Location"))
	}
	callback := func(t *testing.T, h *harness, up *fakeUpstream, q url.Values, ok bool) {
		t.Helper()
		resp, body := h.get("/callback/"+up.name+"?"+q.Encode(), map[string]string{"Accept": "application/json"})
		if ok {
			if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "code=") {
				t.Fatalf("callback before the deadline: %d %s", resp.StatusCode, body)
			}
			return
		}
		wantProviderError(t, resp, body, up.Code(), "invalid_state")
	}
	t.Run("server clock", func(t *testing.T) {
		h, up, c := setup(t, nil)
		t0 := stillClock(h)
		before, at := start(t, h, up, c), start(t, h, up, c)
		h.clock.Set(t0.Add(DefaultLoginTTL - time.Millisecond))
		callback(t, h, up, before, true)
		h.clock.Set(t0.Add(DefaultLoginTTL))
		callback(t, h, up, at, false)
	})
	t.Run("redis expiry", func(t *testing.T) {
		mr, rdb := miniredisClient(t)
		h, up, c := setup(t, rdb)
		before := start(t, h, up, c)
		mr.FastForward(DefaultLoginTTL - time.Millisecond)
		callback(t, h, up, before, true)
		at := start(t, h, up, c)
		mr.FastForward(DefaultLoginTTL)
		callback(t, h, up, at, false)
	})
}

// TestRefreshTokenDeadline: a refresh token rotates one millisecond before
// RefreshTokenTTL runs out and not at it.
func TestRefreshTokenDeadline(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		const ru = "https://app.example.com/cb"
		h := newHarness(t, db, nil)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		addr := h.wallet.user()
		t0 := stillClock(h)
		before := exchangeCode(h, c, secret, h.code(addr, codeParams(c, ru, "")), ru)
		at := exchangeCode(h, c, secret, h.code(addr, codeParams(c, ru, "")), ru)
		before.wantOK(t)
		at.wantOK(t)
		refresh := func(tok string) tokenResp {
			return h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}, c.ID, secret)
		}
		h.clock.Set(t0.Add(DefaultRefreshTokenTTL - time.Millisecond))
		refresh(before.RefreshToken).wantOK(t)
		h.clock.Set(t0.Add(DefaultRefreshTokenTTL))
		refresh(at.RefreshToken).wantError(t, 400, "invalid_grant")
	})
}

// TestDenyListOutlivesTheToken: a revoked access token stays refused up to
// its last valid moment: the deny-list entry (Redis TTL) outlives exp.
func TestDenyListOutlivesTheToken(t *testing.T) {
	mr, rdb := miniredisClient(t)
	h := newHarness(t, testenv.DB(t, store.SQLite), rdb)
	const ru = "https://app.example.com/cb"
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
	t0 := stillClock(h)
	tr, _ := h.walletTokens(c, secret, "")
	if resp, body := h.postForm("/revoke", url.Values{"token": {tr.AccessToken}}, map[string]string{"Authorization": basicAuth(c.ID, secret)}); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	// The token's last valid moment: one millisecond before exp.
	last := t0.Add(DefaultAccessTokenTTL - time.Millisecond)
	h.clock.Set(last)
	mr.FastForward(last.Sub(t0))
	if resp, body := h.userinfo(tr.AccessToken); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked token at its last valid moment: %d %s", resp.StatusCode, body)
	}
	// And it was valid then but for the revocation: a fresh one is.
	fresh, _ := h.walletTokens(c, secret, "")
	if resp, body := h.userinfo(fresh.AccessToken); resp.StatusCode != http.StatusOK {
		t.Fatalf("fresh token: %d %s", resp.StatusCode, body)
	}
}

// TestKeyPublicationDeadlines: a rotated key signs from the millisecond of
// its activation, not one before; a superseded key (older than the
// previous one) stays published and verifying for an access-token
// lifetime after its successor took over, to the millisecond.
func TestKeyPublicationDeadlines(t *testing.T) {
	f := newVerifierFixture(t) // current and previous keys, clock still
	h, ctx := f.h, context.Background()
	issuedKid := func() string {
		t.Helper()
		tr := h.token(url.Values{"grant_type": {"client_credentials"}}, f.rsID, f.rsSecret)
		tr.wantOK(t)
		return kidOf(tr.AccessToken)
	}
	jwksKids := func() []string {
		t.Helper()
		resp, body := h.get("/.well-known/jwks.json", nil)
		var set struct{ Keys []struct{ Kid string } }
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &set) != nil {
			t.Fatalf("jwks: %d %s", resp.StatusCode, body)
		}
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		return kids
	}
	at := func(tm time.Time) {
		t.Helper()
		h.clock.Set(tm)
		if err := h.s.ReloadKeys(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Publication: the next key is in the JWKS at once, signs from its
	// activation on.
	next, err := RotateKey(ctx, h.db.DB, testKeyEncryption, AlgES256, f.now.Add(KeyActivationDelay))
	if err != nil {
		t.Fatal(err)
	}
	at(f.now)
	if kids := jwksKids(); !slices.Contains(kids, next.KID) {
		t.Fatalf("the next key %s is not published: %v", next.KID, kids)
	}
	at(next.ActiveFrom.Add(-time.Millisecond))
	if got := issuedKid(); got != f.current.kid {
		t.Fatalf("one millisecond before activation, signed with %s; want %s", got, f.current.kid)
	}
	at(next.ActiveFrom)
	if got := issuedKid(); got != next.KID {
		t.Fatalf("at activation, signed with %s; want %s", got, next.KID)
	}

	// Retirement: f.current was superseded at next.ActiveFrom and is the
	// previous key; one more rotation makes it older than that. Its
	// tokens verify, and it is published, until the longer of the
	// access-token and ID Token lifetimes
	// after next.ActiveFrom.
	third, err := RotateKey(ctx, h.db.DB, testKeyEncryption, AlgES256, next.ActiveFrom.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	end := next.ActiveFrom.Add(max(DefaultAccessTokenTTL, DefaultIDTokenTTL)) // ES256 keys also sign ES256 clients' ID Tokens
	c := f.claims()
	c["exp"] = end.Add(time.Hour).Unix() // alive whatever the key's fate
	tok := f.sign(t, f.current, f.header(f.current), c)
	for _, tc := range []struct {
		at   time.Time
		kept bool
	}{
		{third.ActiveFrom, true},
		{end.Add(-time.Millisecond), true},
		{end, false},
	} {
		at(tc.at)
		kids := jwksKids()
		if slices.Contains(kids, f.current.kid) != tc.kept || !slices.Contains(kids, third.KID) || !slices.Contains(kids, next.KID) {
			t.Errorf("at successor+%v: JWKS %v; want %s kept=%v", tc.at.Sub(next.ActiveFrom), kids, f.current.kid, tc.kept)
		}
		if _, err := h.s.VerifyAccessToken(ctx, tok); (err == nil) != tc.kept {
			t.Errorf("at successor+%v: token of the superseded key: %v, want valid=%v", tc.at.Sub(next.ActiveFrom), err, tc.kept)
		}
	}
}
