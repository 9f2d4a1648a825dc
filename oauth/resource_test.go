package oauth_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// Resource indicators (RFC 8707) on the wire.

const (
	apiA  = "https://api-a.example/v1"    // registered for the client
	apiB  = "https://mcp.example/mcp"     // server-wide
	apiC  = "https://elsewhere.example/x" // nobody's
	apiRu = "https://app.example.com/cb"  // the client's redirect URI
	mcpRu = "http://localhost:33418/callback"
)

// withResources sets the server-wide resources.
func withResources(res ...string) harnessOpt {
	return func(c *server.Config) { c.Resources = res }
}

// audOf returns the aud claim of an access token, as a list.
func audOf(t *testing.T, tok string) []string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c struct {
		Aud json.RawMessage `json:"aud"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	if err := json.Unmarshal(c.Aud, &many); err != nil {
		t.Fatalf("aud %s", c.Aud)
	}
	return many
}

func wantAud(t *testing.T, tok string, want ...string) {
	t.Helper()
	if got := audOf(t, tok); !slices.Equal(got, want) {
		t.Errorf("aud %q, want %q", got, want)
	}
}

// withResourceParams adds resource parameters to v.
func withResourceParams(v url.Values, res ...string) url.Values {
	v = cloneValues(v)
	for _, r := range res {
		v.Add("resource", r)
	}
	return v
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// TestResourceIndicators: the audience follows the resources asked for,
// within what the client may ask for and what its grant granted; a token
// for another resource is no key to authd's own APIs.
func TestResourceIndicators(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil, withResources(apiB))
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{apiRu}, Scopes: []string{"profile", "backup"}, Resources: []string{apiA}})
		other, otherSecret := h.client(ClientRegistration{RedirectURIs: []string{apiRu}})
		addr := h.wallet.user()
		codeFor := func(res ...string) string {
			return h.code(addr, withResourceParams(codeParams(c, apiRu, ""), res...))
		}
		exchange := func(code string, res ...string) tokenResp {
			return h.token(withResourceParams(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {apiRu}}, res...), c.ID, secret)
		}
		refresh := func(rt string, res ...string) tokenResp {
			return h.token(withResourceParams(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, res...), c.ID, secret)
		}

		// No resource: authd's own APIs, as before.
		plain := exchange(codeFor())
		plain.wantOK(t)
		wantAud(t, plain.AccessToken, h.issuer)
		if resp, _ := h.userinfo(plain.AccessToken); resp.StatusCode != 200 {
			t.Errorf("userinfo with an issuer token: %d", resp.StatusCode)
		}
		// A refresh cannot widen it to a resource.
		refresh(plain.RefreshToken, apiA).wantError(t, 400, "invalid_target")

		// A resource the client may ask for, but its authorization did
		// not: invalid_target, checked in the redemption, which leaves
		// the code as it was.
		onlyA := codeFor(apiA)
		exchange(onlyA, apiB).wantError(t, 400, "invalid_target")
		exchange(onlyA, apiA, apiB).wantError(t, 400, "invalid_target")
		a := exchange(onlyA)
		a.wantOK(t)
		wantAud(t, a.AccessToken, apiA)
		refresh(a.RefreshToken, apiB).wantError(t, 400, "invalid_target")

		// The registered and the server-wide resource.
		code := codeFor(apiA, apiB)
		// A resource the authorization did not grant: invalid_target,
		// and the code is left as it was.
		exchange(code, apiC).wantError(t, 400, "invalid_target")
		// Another client may not ask for apiA at all, and the code is not
		// its own.
		otherExchange := func(res string) tokenResp {
			return h.token(withResourceParams(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {apiRu}}, res), other.ID, otherSecret)
		}
		otherExchange(apiA).wantError(t, 400, "invalid_target")
		otherExchange(apiB).wantError(t, 400, "invalid_grant")
		both := exchange(code, apiA)
		both.wantOK(t)
		wantAud(t, both.AccessToken, apiA)

		// Refreshes repeat or narrow, never widen.
		r1 := refresh(both.RefreshToken)
		r1.wantOK(t)
		wantAud(t, r1.AccessToken, apiA, apiB)
		r2 := refresh(r1.RefreshToken, apiB)
		r2.wantOK(t)
		wantAud(t, r2.AccessToken, apiB)
		r3 := refresh(r2.RefreshToken, apiA, apiB) // the grant still has both
		r3.wantOK(t)
		wantAud(t, r3.AccessToken, apiA, apiB)
		refresh(r3.RefreshToken, apiC).wantError(t, 400, "invalid_target")
		refresh(r3.RefreshToken, h.issuer).wantError(t, 400, "invalid_target")
		// A failed refresh left the token usable.
		refresh(r3.RefreshToken, apiB).wantOK(t)

		// authd's own APIs refuse tokens for other resources.
		resp, body := h.userinfo(r2.AccessToken)
		if resp.StatusCode != 401 || !strings.Contains(string(body), `"invalid_token"`) ||
			!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) ||
			!strings.Contains(string(body), "another resource") {
			t.Errorf("userinfo with a token for %s: %d %s %s", apiB, resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
		resp, body = h.get("/backup", map[string]string{"Authorization": "Bearer " + r2.AccessToken})
		if resp.StatusCode != 401 || !strings.Contains(string(body), `"invalid_token"`) {
			t.Errorf("backup with a token for %s: %d %s", apiB, resp.StatusCode, body)
		}
		// Introspection reports the audience to the resource server.
		rs, rsSecret := h.client(ClientRegistration{Name: "API", Grants: []string{"client_credentials"}})
		resp, body = h.postForm("/introspect", url.Values{"token": {r3.AccessToken}}, basic(rs.ID, rsSecret))
		var in struct {
			Active bool     `json:"active"`
			Aud    []string `json:"aud"`
		}
		if err := json.Unmarshal(body, &in); err != nil || resp.StatusCode != 200 || !in.Active || !slices.Equal(in.Aud, []string{apiA, apiB}) {
			t.Errorf("introspect: %d %s", resp.StatusCode, body)
		}
	})
}

// basic is an Authorization header with client credentials.
func basic(id, secret string) map[string]string {
	req := &http.Request{Header: http.Header{}}
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return map[string]string{"Authorization": req.Header.Get("Authorization")}
}

// TestResourceAtAuthorize: a resource the client may not ask for, or one
// that is not an absolute URI without a fragment, goes back to the client
// as invalid_target once the client and redirect URI are valid.
func TestResourceAtAuthorize(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, withResources(apiB))
	c, _ := h.client(ClientRegistration{RedirectURIs: []string{apiRu}, Resources: []string{apiA}})
	addr := h.wallet.user()
	for _, tc := range []struct {
		name string
		res  []string
		want string
	}{
		{"nobody's", []string{apiC}, "not one this client may ask for"},
		{"one of two", []string{apiA, apiC}, "not one this client may ask for"},
		{"fragment", []string{apiA + "#x"}, "fragment"},
		{"relative", []string{"/v1"}, "absolute URI"},
		{"empty", []string{""}, "1-2000 characters"},
		{"space", []string{"https://api-a.example/a b"}, "printable ASCII"},
		{"too many", []string{"https://a.example/1", "https://a.example/2", "https://a.example/3", "https://a.example/4", "https://a.example/5",
			"https://a.example/6", "https://a.example/7", "https://a.example/8", "https://a.example/9", "https://a.example/10", "https://a.example/11"}, "At most 10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.signedAuthorize(addr, authorizeURL(withResourceParams(codeParams(c, apiRu, ""), tc.res...)), nil)
			loc, _ := url.Parse(resp.Header.Get("Location"))
			q := loc.Query()
			if resp.StatusCode != http.StatusFound || q.Get("error") != "invalid_target" || q.Get("state") != "s" ||
				!strings.Contains(q.Get("error_description"), tc.want) || q.Has("code") {
				t.Errorf("got %d %s %s, want a redirect with invalid_target saying %q", resp.StatusCode, resp.Header.Get("Location"), body, tc.want)
			}
		})
	}
	// An unregistered redirect URI is still answered directly, resource
	// or not.
	v := withResourceParams(codeParams(c, "https://evil.example/cb", ""), apiC)
	if resp, _ := h.signedAuthorize(addr, authorizeURL(v), nil); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
		t.Errorf("unregistered redirect_uri with a bad resource: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	// The repeated parameter is RFC 8707's, not a repeated-parameter error.
	if code := h.code(addr, withResourceParams(codeParams(c, apiRu, ""), apiA, apiB, apiA)); code == "" {
		t.Error("no code")
	}
}

// TestResourceClientCredentials: a service token for one API.
func TestResourceClientCredentials(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, withResources(apiB))
	c, secret := h.client(ClientRegistration{Name: "svc", Grants: []string{"client_credentials"}, Resources: []string{apiA}})
	tr := h.token(url.Values{"grant_type": {"client_credentials"}, "resource": {apiA}}, c.ID, secret)
	tr.wantOK(t)
	wantAud(t, tr.AccessToken, apiA)
	tr = h.token(url.Values{"grant_type": {"client_credentials"}, "resource": {apiB}}, c.ID, secret)
	tr.wantOK(t)
	wantAud(t, tr.AccessToken, apiB)
	h.token(url.Values{"grant_type": {"client_credentials"}, "resource": {apiC}}, c.ID, secret).wantError(t, 400, "invalid_target")
	h.token(url.Values{"grant_type": {"client_credentials"}, "resource": {"urn:x#y"}}, c.ID, secret).wantError(t, 400, "invalid_target")
	tr = h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret)
	tr.wantOK(t)
	wantAud(t, tr.AccessToken, h.issuer)
}

// TestResourceWithdrawn: when the operator takes a server-wide resource
// away, grants for it get no more tokens for it.
func TestResourceWithdrawn(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	rdb := testenv.Redis(t)
	h := newHarness(t, db, rdb, withResources(apiB))
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{apiRu}})
	code := h.code(h.wallet.user(), withResourceParams(codeParams(c, apiRu, ""), apiB))
	tr := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {apiRu}}, c.ID, secret)
	tr.wantOK(t)
	wantAud(t, tr.AccessToken, apiB)

	// The same database and Redis, the resource no longer configured.
	h2 := newHarness(t, db, rdb)
	h2.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, c.ID, secret).wantError(t, 400, "invalid_target")
	h2.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "resource": {apiB}}, c.ID, secret).wantError(t, 400, "invalid_target")
}
