package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// walletTokens runs a code flow for a new wallet user and returns the
// token response.
func (h *harness) walletTokens(c *Client, secret, scope string) (tokenResp, string) {
	h.t.Helper()
	const ru = "https://app.example.com/cb"
	addr := h.wallet.user()
	p := codeParams(c, ru, "")
	if scope != "" {
		p.Set("scope", scope)
	}
	tr := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {h.code(addr, p)}, "redirect_uri": {ru}}, c.ID, secret)
	tr.wantOK(h.t)
	return tr, addr
}

// TestUserInfo: RFC 6750 header-only Bearer, WWW-Authenticate on every
// 401/403, the scope it needs, and the user it returns.
func TestUserInfo(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}, Scopes: []string{"profile", "backup"}})
		tr, addr := h.walletTokens(c, secret, "profile")
		backupOnly, _ := h.walletTokens(c, secret, "backup")

		resp, body := h.userinfo(tr.AccessToken)
		var ui map[string]string
		json.Unmarshal(body, &ui)
		if resp.StatusCode != 200 || ui["sub"] != addr || ui["address"] != addr || ui["pubkey"] != h.wallet.pubkey(addr) ||
			ui["preferred_username"] != addr || len(ui) != 4 {
			t.Fatalf("userinfo %d %v", resp.StatusCode, ui)
		}
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Error("userinfo is cacheable")
		}
		req, _ := http.NewRequest("POST", h.issuer+"/userinfo", nil)
		req.Header.Set("Authorization", "bearer "+tr.AccessToken) // scheme is case-insensitive
		if resp, _ := h.do(req); resp.StatusCode != 200 {
			t.Errorf("POST /userinfo: %d", resp.StatusCode)
		}

		// A tampered token: every byte of the signature matters.
		parts := strings.Split(tr.AccessToken, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[10] ^= 1
		tampered := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
		// Claims with a changed subject under the same signature.
		var claims map[string]any
		pb, _ := base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(pb, &claims)
		claims["sub"] = "1Someoneelse"
		nb, _ := json.Marshal(claims)
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(nb) + "." + parts[2]
		// alg none.
		none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + "."

		for _, tc := range []struct {
			name      string
			header    string
			query     string
			status    int
			code      string
			challenge string
		}{
			{"no credentials", "", "", 401, "invalid_token", `Bearer realm="authd"`},
			{"token in the query", "", "access_token=" + tr.AccessToken, 401, "invalid_token", `Bearer realm="authd"`},
			{"token in the query and header", "Bearer " + tr.AccessToken, "access_token=" + tr.AccessToken, 401, "invalid_token", `error="invalid_token"`},
			{"basic scheme", "Basic eDp5", "", 401, "invalid_token", `error="invalid_token"`},
			{"garbage", "Bearer garbage", "", 401, "invalid_token", `error="invalid_token"`},
			{"bad b64token", "Bearer a b", "", 401, "invalid_token", `error="invalid_token"`},
			{"tampered signature", "Bearer " + tampered, "", 401, "invalid_token", `error="invalid_token"`},
			{"forged claims", "Bearer " + forged, "", 401, "invalid_token", `error="invalid_token"`},
			{"alg none", "Bearer " + none, "", 401, "invalid_token", `error="invalid_token"`},
			{"no profile scope", "Bearer " + backupOnly.AccessToken, "", 403, "insufficient_scope", `error="insufficient_scope"`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest("GET", h.issuer+"/userinfo?"+tc.query, nil)
				if tc.header != "" {
					req.Header.Set("Authorization", tc.header)
				}
				resp, body := h.do(req)
				var e map[string]string
				json.Unmarshal(body, &e)
				if resp.StatusCode != tc.status || e["error"] != tc.code {
					t.Fatalf("%d %v, want %d %s", resp.StatusCode, e, tc.status, tc.code)
				}
				ch := resp.Header.Get("WWW-Authenticate")
				if !strings.HasPrefix(ch, "Bearer ") || !strings.Contains(ch, tc.challenge) {
					t.Errorf("WWW-Authenticate %q, want it to contain %q", ch, tc.challenge)
				}
				if tc.code == "insufficient_scope" && !strings.Contains(ch, `scope="profile"`) {
					t.Errorf("WWW-Authenticate %q lacks scope=\"profile\"", ch)
				}
			})
		}

		// Expired: by the server's clock.
		h.clock.Set(time.Now().Add(DefaultAccessTokenTTL + time.Second))
		if resp, _ := h.userinfo(tr.AccessToken); resp.StatusCode != 401 {
			t.Errorf("expired token: %d", resp.StatusCode)
		}
		h.clock.Set(time.Time{})
	})
}

// TestAuthenticateBearer is the API the backup service uses.
func TestAuthenticateBearer(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}, Scopes: []string{"profile", "backup"}})
	tr, addr := h.walletTokens(c, secret, "profile backup")
	req := httptest.NewRequest("PUT", "/backup", strings.NewReader("body stays unread"))
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	sub, err := h.s.AuthenticateBearer(req, ScopeBackup)
	if err != nil || sub != addr {
		t.Fatalf("AuthenticateBearer: %q %v", sub, err)
	}
	narrow, _ := h.walletTokens(c, secret, "profile")
	req.Header.Set("Authorization", "Bearer "+narrow.AccessToken)
	_, err = h.s.AuthenticateBearer(req, ScopeBackup)
	var e *errors.Error
	if !errors.As(err, &e) || e.Code != errors.InsufficientScope || e.Scope != "backup" {
		t.Errorf("missing scope: %v", err)
	}
	req.Header.Del("Authorization")
	if _, err := h.s.AuthenticateBearer(req, ScopeBackup); errors.CodeOf(err) != errors.InvalidToken {
		t.Errorf("no token: %v", err)
	}
	// A client_credentials token, even with scope backup, names no user.
	svc, svcSecret := h.client(ClientRegistration{Grants: []string{GrantClientCredentials}, Scopes: []string{"backup"}})
	cc := h.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"backup"}}, svc.ID, svcSecret)
	cc.wantOK(t)
	req.Header.Set("Authorization", "Bearer "+cc.AccessToken)
	if sub, err := h.s.AuthenticateBearer(req, ScopeBackup); errors.CodeOf(err) != errors.InvalidToken {
		t.Errorf("client_credentials token: %q %v", sub, err)
	}
	// A token from another issuer (same keys) is refused.
	other, err := New(context.Background(), Config{Issuer: "https://other.example.com", DB: h.db.DB, Dialect: "sqlite", Redis: h.rdb, Wallet: noWallet{}, KeyEncryption: testKeyEncryption, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	if _, err := other.AuthenticateBearer(req, ""); errors.CodeOf(err) != errors.InvalidToken {
		t.Errorf("token of another issuer: %v", err)
	}
	// Redis down: temporarily_unavailable, not invalid_token.
	mr, rdb := miniredisClient(t)
	down, err := New(context.Background(), Config{Issuer: h.issuer, DB: h.db.DB, Dialect: "sqlite", Redis: rdb, Wallet: noWallet{}, KeyEncryption: testKeyEncryption, Logger: quiet, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mr.Close()
	if _, err := down.AuthenticateBearer(req, ""); errors.CodeOf(err) != errors.TemporarilyUnavailable {
		t.Errorf("Redis down: %v", err)
	}
}

// TestIdentify: the middleware records the subject for the rate limiter
// and never answers; /userinfo returns what it recorded.
func TestIdentify(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}, Scopes: []string{"profile", "backup"}})
	tr, addr := h.walletTokens(c, secret, "profile")
	backupOnly, addr2 := h.walletTokens(c, secret, "backup")
	for _, tc := range []struct {
		name string
		auth string
		sub  string
		ok   bool
	}{
		{"valid", "Bearer " + tr.AccessToken, addr, true},
		{"genuine, wrong scope", "Bearer " + backupOnly.AccessToken, addr2, true},
		{"invalid", "Bearer x.y.z", "", false},
		{"none", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var sub string
			var ok, called bool
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				sub, ok = SubjectFromContext(r.Context())
				w.WriteHeader(299)
			})
			req := httptest.NewRequest("GET", "/userinfo", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.s.Identify(next).ServeHTTP(rec, req)
			if !called || rec.Code != 299 || sub != tc.sub || ok != tc.ok {
				t.Errorf("called %v status %d sub %q ok %v", called, rec.Code, sub, ok)
			}
		})
	}
	if _, ok := SubjectFromContext(context.Background()); ok {
		t.Error("subject without Identify")
	}
}

// TestRevoke: RFC 7009.
func TestRevoke(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
		other, otherSecret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
		revoke := func(tok, hint, id, sec string) *http.Response {
			v := url.Values{"token": {tok}}
			if hint != "" {
				v.Set("token_type_hint", hint)
			}
			if sec != "" {
				v.Set("client_secret", sec)
			}
			v.Set("client_id", id)
			resp, _ := h.postForm("/revoke", v, nil)
			return resp
		}
		// An access token.
		a, _ := h.walletTokens(c, secret, "")
		if r := revoke(a.AccessToken, "access_token", other.ID, otherSecret); r.StatusCode != 200 {
			t.Fatalf("another client's token: %d", r.StatusCode)
		}
		if resp, _ := h.userinfo(a.AccessToken); resp.StatusCode != 200 {
			t.Fatal("another client revoked a token")
		}
		if r := revoke(a.AccessToken, "", c.ID, secret); r.StatusCode != 200 || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("revoke: %d", r.StatusCode)
		}
		if resp, _ := h.userinfo(a.AccessToken); resp.StatusCode != 401 {
			t.Errorf("revoked access token: %d", resp.StatusCode)
		}
		if tr := h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {a.RefreshToken}}, c.ID, secret); tr.status != 200 {
			t.Errorf("revoking an access token killed its refresh token: %d", tr.status)
		}
		// A refresh token: its whole grant goes, access tokens included.
		b, _ := h.walletTokens(c, secret, "")
		if r := revoke(b.RefreshToken, "refresh_token", c.ID, secret); r.StatusCode != 200 {
			t.Fatalf("revoke refresh: %d", r.StatusCode)
		}
		h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {b.RefreshToken}}, c.ID, secret).wantError(t, 400, "invalid_grant")
		if resp, _ := h.userinfo(b.AccessToken); resp.StatusCode != 401 {
			t.Errorf("access token of a revoked grant: %d", resp.StatusCode)
		}
		// Unknown, repeated and odd tokens: 200.
		for _, tok := range []string{"nope", "a.b.c", b.RefreshToken, strings.Repeat("x", 600)} {
			if r := revoke(tok, "", c.ID, secret); r.StatusCode != 200 {
				t.Errorf("revoke %q: %d", tok[:4], r.StatusCode)
			}
		}
		// Errors.
		for _, tc := range []struct {
			name   string
			form   url.Values
			status int
			code   string
		}{
			{"bad hint", url.Values{"token": {"x"}, "token_type_hint": {"id_token"}, "client_id": {c.ID}, "client_secret": {secret}}, 400, "unsupported_token_type"},
			{"no token", url.Values{"client_id": {c.ID}, "client_secret": {secret}}, 400, "invalid_request"},
			{"wrong secret", url.Values{"token": {"x"}, "client_id": {c.ID}, "client_secret": {"no"}}, 401, "invalid_client"},
			{"no client", url.Values{"token": {"x"}}, 401, "invalid_client"},
		} {
			resp, body := h.postForm("/revoke", tc.form, nil)
			var e map[string]string
			json.Unmarshal(body, &e)
			if resp.StatusCode != tc.status || e["error"] != tc.code {
				t.Errorf("%s: %d %v", tc.name, resp.StatusCode, e)
			}
		}
	})
}

// TestIntrospect: RFC 7662 for confidential clients.
func TestIntrospect(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
		rs, rsSecret := h.client(ClientRegistration{Grants: []string{"client_credentials"}})
		pub, _ := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}, Public: true})
		tr, addr := h.walletTokens(c, secret, "")
		introspect := func(tok string) map[string]any {
			t.Helper()
			resp, body := h.postForm("/introspect", url.Values{"token": {tok}, "client_id": {rs.ID}, "client_secret": {rsSecret}}, nil)
			if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("introspect: %d", resp.StatusCode)
			}
			var m map[string]any
			json.Unmarshal(body, &m)
			return m
		}
		m := introspect(tr.AccessToken)
		if m["active"] != true || m["sub"] != addr || m["client_id"] != c.ID || m["token_type"] != "Bearer" || m["iss"] != h.issuer || m["aud"] != h.issuer {
			t.Errorf("access token: %v", m)
		}
		// A refresh token is active only to the client it was issued to.
		if m := introspect(tr.RefreshToken); len(m) != 1 || m["active"] != false {
			t.Errorf("another client's refresh token: %v", m)
		}
		resp, body := h.postForm("/introspect", url.Values{"token": {tr.RefreshToken}, "client_id": {c.ID}, "client_secret": {secret}}, nil)
		m = map[string]any{}
		json.Unmarshal(body, &m)
		if resp.StatusCode != 200 || m["active"] != true || m["sub"] != addr || m["client_id"] != c.ID || m["token_type"] != nil {
			t.Errorf("own refresh token: %d %v", resp.StatusCode, m)
		}
		for _, tok := range []string{"nope", "a.b.c", ""[0:0] + "x.y"} {
			if m := introspect(tok); len(m) != 1 || m["active"] != false {
				t.Errorf("introspect %q: %v", tok, m)
			}
		}
		h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, c.ID, secret).wantOK(t)
		resp, body = h.postForm("/introspect", url.Values{"token": {tr.RefreshToken}, "client_id": {c.ID}, "client_secret": {secret}}, nil)
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"active":false}` {
			t.Errorf("rotated refresh token active: %s", body)
		}
		resp, _ = h.postForm("/introspect", url.Values{"token": {tr.AccessToken}, "client_id": {pub.ID}}, nil)
		if resp.StatusCode != 401 {
			t.Errorf("public client introspects: %d", resp.StatusCode)
		}
		resp, _ = h.postForm("/introspect", url.Values{"client_id": {rs.ID}, "client_secret": {rsSecret}}, nil)
		if resp.StatusCode != 400 {
			t.Errorf("no token: %d", resp.StatusCode)
		}
	})
}

// TestMetadata: /.well-known/oauth-authorization-server serves the RFC
// 8414 document and /.well-known/openid-configuration the OpenID Provider
// metadata, each pinned by a golden file; every member the two share has
// the same value, and the OpenID one has every member OpenID Connect
// Discovery 1.0 §3 requires.
func TestMetadata(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	_, rdb := miniredisClient(t)
	s, err := New(context.Background(), Config{Issuer: "https://auth.example.com", DB: db.DB, Dialect: "sqlite", Redis: rdb, Wallet: noWallet{}, KeyEncryption: testKeyEncryption, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]any{}
	for _, tc := range []struct {
		path, golden string
		h            httperr.HandlerFunc
	}{
		{"/.well-known/oauth-authorization-server", "metadata.golden", s.Metadata},
		{"/.well-known/openid-configuration", "openid-configuration.golden", s.OpenIDConfiguration},
	} {
		rec := httptest.NewRecorder()
		tc.h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json;charset=UTF-8" {
			t.Fatalf("%s: %d %s", tc.path, rec.Code, rec.Header().Get("Content-Type"))
		}
		checkGolden(t, tc.golden, rec.Body.Bytes())
		var m map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		docs[tc.path] = m
	}
	oauthDoc, op := docs["/.well-known/oauth-authorization-server"], docs["/.well-known/openid-configuration"]
	for k, v := range oauthDoc {
		if !reflect.DeepEqual(op[k], v) {
			t.Errorf("%s: %v in the RFC 8414 document, %v in the OpenID one", k, v, op[k])
		}
	}
	if m := oauthDoc; m["issuer"] != "https://auth.example.com" || m["authorization_response_iss_parameter_supported"] != true {
		t.Errorf("metadata %v", m)
	}
	if ccm, _ := oauthDoc["code_challenge_methods_supported"].([]any); len(ccm) != 1 || ccm[0] != "S256" {
		t.Errorf("code_challenge_methods_supported %v", ccm)
	}
	// OpenID Connect Discovery 1.0 §3: REQUIRED members, and the ones
	// whose default would be untrue (request_uri_parameter_supported
	// defaults to true).
	for _, k := range []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported",
		"subject_types_supported", "id_token_signing_alg_values_supported", "userinfo_endpoint", "scopes_supported", "claims_supported"} {
		if op[k] == nil {
			t.Errorf("OpenID metadata lacks %s", k)
		}
	}
	for k, want := range map[string]any{
		"request_parameter_supported": false, "request_uri_parameter_supported": false, "claims_parameter_supported": false,
		"subject_types_supported": []any{"public"}, "id_token_signing_alg_values_supported": []any{"RS256", "ES256"},
		"prompt_values_supported": []any{"none", "login", "consent", "select_account"},
	} {
		if !reflect.DeepEqual(op[k], want) {
			t.Errorf("%s = %v, want %v", k, op[k], want)
		}
	}
	scopes, _ := op["scopes_supported"].([]any)
	for _, sc := range []string{"openid", "profile", "email", "offline_access"} {
		if !slices.Contains(scopes, any(sc)) {
			t.Errorf("scopes_supported %v lacks %s", scopes, sc)
		}
	}
	// No endpoint the server does not have.
	for _, k := range []string{"registration_endpoint", "check_session_iframe"} {
		if _, ok := op[k]; ok {
			t.Errorf("advertises %s", k)
		}
	}
}

// TestMetadataEndpointsExist: every endpoint the metadata names answers
// on the live server (no 404).
func TestMetadataEndpointsExist(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	_, body := h.get("/.well-known/oauth-authorization-server", nil)
	var m map[string]any
	json.Unmarshal(body, &m)
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "revocation_endpoint", "introspection_endpoint", "service_documentation"} {
		u, _ := m[k].(string)
		if !strings.HasPrefix(u, h.issuer+"/") {
			t.Errorf("%s = %q", k, u)
			continue
		}
		for _, method := range []string{"GET", "POST"} {
			req, _ := http.NewRequest(method, u, nil)
			resp, _ := h.do(req)
			if resp.StatusCode == 404 {
				t.Errorf("%s %s: 404", method, k)
			}
		}
	}
}

// TestCORS: browser clients may call /token, /revoke, /userinfo and the
// well-known documents from any origin, without credentials.
func TestCORS(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	// Each preflight names exactly the methods the route serves.
	for p, methods := range map[string]string{
		"/token":    "POST",
		"/revoke":   "POST",
		"/userinfo": "GET, POST",
		"/.well-known/oauth-authorization-server": "GET",
		"/.well-known/jwks.json":                  "GET",
	} {
		req, _ := http.NewRequest("OPTIONS", h.issuer+p, nil)
		req.Header.Set("Origin", "https://spa.example.org")
		req.Header.Set("Access-Control-Request-Method", strings.Split(methods, ",")[0])
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type")
		resp, _ := h.do(req)
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") ||
			resp.Header.Get("Access-Control-Allow-Methods") != methods || !strings.HasPrefix(resp.Header.Get("Allow"), "OPTIONS, "+methods) ||
			resp.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight %s: %d %v", p, resp.StatusCode, resp.Header)
		}
	}
	resp, _ := h.postForm("/token", url.Values{}, map[string]string{"Origin": "https://spa.example.org"})
	if resp.StatusCode != 400 || resp.Header.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
		t.Errorf("error response %d without CORS headers: %v", resp.StatusCode, resp.Header)
	}
	resp, _ = h.get("/authorize", map[string]string{"Origin": "https://spa.example.org"})
	if resp.StatusCode != 400 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("/authorize without parameters, cross-origin: %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// TestKeys: the signing key persists across restarts; after a rotation the
// new key signs, the JWKS serves current and previous, and tokens of the
// previous key still verify; two rotations later they do not.
func TestKeys(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
		old, _ := h.walletTokens(c, secret, "")
		kid := func(tok string) string {
			hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
			var hdr map[string]string
			json.Unmarshal(hb, &hdr)
			return hdr["kid"]
		}
		// A restart (a new Server on the same database) keeps the key.
		s2, err := New(context.Background(), Config{Issuer: h.issuer, DB: db.DB, Dialect: string(db.Dialect), Redis: h.rdb, Wallet: noWallet{}, KeyEncryption: testKeyEncryption, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest("GET", "/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+old.AccessToken)
		if _, err := s2.AuthenticateBearer(req, ""); err != nil {
			t.Fatalf("token from before the restart: %v", err)
		}

		rotateNow(t, db)
		if err := h.s.ReloadKeys(context.Background()); err != nil {
			t.Fatal(err)
		}
		fresh, _ := h.walletTokens(c, secret, "")
		if kid(fresh.AccessToken) == kid(old.AccessToken) {
			t.Fatal("the rotated key does not sign")
		}
		_, body := h.get("/.well-known/jwks.json", nil)
		var set struct {
			Keys []map[string]string `json:"keys"`
		}
		json.Unmarshal(body, &set)
		var ec []map[string]string
		for _, k := range set.Keys {
			switch k["alg"] {
			case "ES256":
				if k["kty"] != "EC" || k["crv"] != "P-256" || k["use"] != "sig" || k["d"] != "" || k["x"] == "" || k["y"] == "" {
					t.Errorf("JWK %v", k)
				}
				ec = append(ec, k)
			case "RS256":
				if k["kty"] != "RSA" || k["use"] != "sig" || k["d"] != "" || k["p"] != "" || k["e"] != "AQAB" || len(k["n"]) != 342 { // 2048 bits
					t.Errorf("JWK %v", k)
				}
			default:
				t.Errorf("JWK %v", k)
			}
		}
		if len(set.Keys) != 3 || len(ec) != 2 || ec[0]["kid"] != kid(fresh.AccessToken) || ec[1]["kid"] != kid(old.AccessToken) {
			t.Errorf("JWKS %s", body)
		}
		if resp, _ := h.userinfo(old.AccessToken); resp.StatusCode != 200 {
			t.Errorf("token of the previous key: %d", resp.StatusCode)
		}
		// s2 has not reloaded yet: the unknown kid makes it look again.
		req.Header.Set("Authorization", "Bearer "+fresh.AccessToken)
		if _, err := s2.AuthenticateBearer(req, ""); err != nil {
			t.Errorf("other node, new kid: %v", err)
		}

		rotateNow(t, db)
		h.s.ReloadKeys(context.Background())
		// Two keys on, the first still verifies: its tokens are alive.
		if resp, _ := h.userinfo(old.AccessToken); resp.StatusCode != 200 {
			t.Errorf("token two keys old, within its lifetime: %d", resp.StatusCode)
		}
		if err := RetireKey(context.Background(), db.DB, kid(old.AccessToken), time.Now()); err != nil {
			t.Fatal(err)
		}
		h.s.ReloadKeys(context.Background())
		if resp, _ := h.userinfo(old.AccessToken); resp.StatusCode != 401 {
			t.Errorf("token of a retired key: %d", resp.StatusCode)
		}
		rotateNow(t, db)
		keys, err := ListKeys(context.Background(), db.DB, time.Now())
		if err != nil || len(keys) != 4 || keys[0].Status != "current" || keys[1].Status != "previous" || keys[2].Status != "superseded" ||
			keys[0].Algorithm != AlgES256 || keys[1].Algorithm != AlgES256 || keys[2].Algorithm != AlgES256 ||
			keys[3].Algorithm != AlgRS256 || keys[3].Status != "current" {
			t.Errorf("ListKeys %+v %v", keys, err)
		}
	})
}

// TestNewValidatesConfig: bad configuration fails at start, naming the
// setting.
func TestNewValidatesConfig(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	_, rdb := miniredisClient(t)
	good := Config{Issuer: "https://auth.example.com", DB: db.DB, Dialect: "sqlite", Redis: rdb, Wallet: noWallet{}, KeyEncryption: testKeyEncryption, Logger: quiet}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no issuer", func(c *Config) { c.Issuer = "" }, "Issuer"},
		{"http issuer", func(c *Config) { c.Issuer = "http://auth.example.com" }, "Issuer"},
		{"trailing slash", func(c *Config) { c.Issuer = "https://auth.example.com/" }, "Issuer"},
		{"query", func(c *Config) { c.Issuer = "https://auth.example.com?x" }, "Issuer"},
		{"relative", func(c *Config) { c.Issuer = "auth.example.com" }, "Issuer"},
		{"dialect", func(c *Config) { c.Dialect = "mysql" }, "Dialect"},
		{"no db", func(c *Config) { c.DB = nil }, "DB"},
		{"no redis", func(c *Config) { c.Redis = nil }, "Redis"},
		{"no wallet", func(c *Config) { c.Wallet = nil }, "Wallet"},
		{"provider", func(c *Config) { c.Upstreams = []Upstream{newFakeUpstream("facebook")} }, "Upstreams"},
		{"provider twice", func(c *Config) { c.Upstreams = []Upstream{newFakeUpstream("github"), newFakeUpstream("github")} }, "Upstreams"},
		{"negative ttl", func(c *Config) { c.AccessTokenTTL = -time.Second }, "AccessTokenTTL"},
		{"no key encryption", func(c *Config) { c.KeyEncryption = nil }, "KeyEncryption"},
		{"negative grant lifetime", func(c *Config) { c.RefreshFamilyMax = -time.Hour }, "RefreshFamilyMax"},
	} {
		cfg := good
		tc.mod(&cfg)
		if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", tc.name, err, tc.want)
		}
	}
	for _, iss := range []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:9", "https://auth.example.com/tenant"} {
		cfg := good
		cfg.Issuer = iss
		if _, err := New(context.Background(), cfg); err != nil {
			t.Errorf("issuer %s: %v", iss, err)
		}
	}
}
