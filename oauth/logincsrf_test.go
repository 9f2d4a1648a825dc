package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// TestLoginCSRF reproduces login CSRF on the wallet login form: an
// attacker opens a login page of their own, signs its message with their
// own key, and makes the victim's browser post the form from another
// site, which would sign the victim in to the attacker's account at the
// client. Every variant is refused with access_denied, answered directly,
// and leaves the attacker's sign-in unused; the form posted from the page,
// in the browser that opened it, signs in.
func TestLoginCSRF(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	const ru = "https://app.example.com/cb"
	c, _ := h.client(ClientRegistration{RedirectURIs: []string{ru}})
	params := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {ru}, "state": {"s"}}
	form := func(id, addr, sig string) url.Values {
		return url.Values{"login_id": {id}, "address": {addr}, "signature": {sig}}
	}

	// The attacker's browser: a login page, the binding cookie, a
	// signature by the attacker's key.
	attacker := h.browser()
	h.c = attacker
	resp, body := h.get(authorizeURL(params), nil)
	id, msg := loginPage(t, body)
	mallory := h.wallet.user()
	signed := form(id, mallory, h.wallet.sign(mallory, msg))
	var binding *http.Cookie
	for _, ck := range resp.Cookies() {
		if strings.HasPrefix(ck.Name, "authd_login_") {
			binding = ck
		}
	}
	if binding == nil || !binding.HttpOnly || binding.SameSite != http.SameSiteStrictMode || binding.Path != "/authorize/login" ||
		binding.MaxAge <= 0 || len(binding.Value) < 43 {
		t.Fatalf("login cookie %+v", binding)
	}

	// The victim's browser, which has a sign-in of its own open.
	victim := h.browser()
	h.c = victim
	_, body = h.get(authorizeURL(params), nil)
	ownID, _ := loginPage(t, body)
	if ownID == id {
		t.Fatal("two browsers got the same login id")
	}
	refused := func(name string, hdr map[string]string) {
		t.Helper()
		for _, accept := range []string{"text/html", "application/json"} {
			m := map[string]string{"Accept": accept}
			for k, v := range hdr {
				m[k] = v
			}
			resp, body := h.postForm("/authorize/login", signed, m)
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Location") != "" {
				t.Fatalf("%s (%s): %d, Location %q: the forged sign-in went through", name, accept, resp.StatusCode, resp.Header.Get("Location"))
			}
			if accept == "application/json" {
				var e map[string]string
				if json.Unmarshal(body, &e); e["error"] != "access_denied" {
					t.Errorf("%s: %s, want access_denied", name, body)
				}
			} else if strings.Contains(string(body), `name="login_id"`) {
				t.Errorf("%s: the refusal shows the attacker's sign-in form", name)
			}
		}
	}
	refused("cross-site Origin", map[string]string{"Origin": "https://evil.example"})
	refused("Origin null", map[string]string{"Origin": "null"})
	refused("same host, other port", map[string]string{"Origin": "http://" + strings.Split(strings.TrimPrefix(h.issuer, "http://"), ":")[0] + ":1"})
	refused("Sec-Fetch-Site: cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"})
	refused("no Origin, no login cookie", nil)
	refused("same-origin headers, no login cookie", map[string]string{"Origin": h.issuer, "Sec-Fetch-Site": "same-origin"})
	// A cookie of the right name with another nonce (set by a sibling
	// site, say) does not bind either.
	u, _ := url.Parse(h.issuer + "/authorize/login")
	victim.Jar.SetCookies(u, []*http.Cookie{{Name: binding.Name, Value: strings.Repeat("A", 43), Path: "/authorize/login"}})
	refused("wrong nonce", nil)

	// The browser that holds the cookie (one that sends SameSite=Strict
	// cookies cross-site, say) is still refused a post from another site.
	h.c = attacker
	refused("cookie, cross-site Origin", map[string]string{"Origin": "https://evil.example"})
	refused("cookie, Sec-Fetch-Site: cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"})
	refused("cookie, two Origins", map[string]string{"Origin": h.issuer + ", https://evil.example"})

	// None of it touched the attacker's sign-in, nor locked anyone out:
	// in the attacker's own browser the same form signs in.
	resp, _ = h.postForm("/authorize/login", signed, map[string]string{"Origin": h.issuer, "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the form from its own page: %d, want 303", resp.StatusCode)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host != "app.example.com" || loc.Query().Get("code") == "" {
		t.Errorf("redirect %s", loc)
	}
	// The cookie is spent with the sign-in.
	deleted := false
	for _, ck := range resp.Cookies() {
		deleted = deleted || ck.Name == binding.Name && ck.MaxAge < 0
	}
	if !deleted {
		t.Error("the login cookie outlives its sign-in")
	}

	// The provider buttons post the same form: bound the same way.
	hu := newHarness(t, testenv.DB(t, store.SQLite), nil, func(c *server.Config) { c.Upstreams = []Upstream{newFakeUpstream(KindGoogle)} })
	cu, _ := hu.client(ClientRegistration{RedirectURIs: []string{ru}})
	params.Set("client_id", cu.ID)
	_, body = hu.get(authorizeURL(params), nil)
	id, _ = loginPage(t, body)
	hu.c = hu.browser()
	if resp, _ := hu.postForm("/authorize/login", url.Values{"login_id": {id}, "provider": {"google"}}, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("provider button from another browser: %d, want 403", resp.StatusCode)
	}
}
