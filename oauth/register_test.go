package oauth_test

import (
	"bytes"
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

// Dynamic client registration (RFC 7591) and its management (RFC 7592)
// on the wire.

// withRegistration turns registration on in mode, with token as the
// initial access token of mode token.
func withRegistration(mode RegistrationMode, token string) harnessOpt {
	return func(c *server.Config) { c.Registration, c.RegistrationToken = mode, token }
}

const initialToken = "initial-access-token-0123456789abcdefghij"

// sendJSON sends body (a string as it is, anything else as JSON) to path.
func (h *harness) sendJSON(method, path string, body any, hdr map[string]string) (*http.Response, map[string]any) {
	h.t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	case nil:
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			h.t.Fatal(err)
		}
	}
	req, err := http.NewRequest(method, h.issuer+path, bytes.NewReader(b))
	if err != nil {
		h.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, raw := h.do(req)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			h.t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp, m
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// mcpRegistration is what the MCP TypeScript SDK registers: loopback
// redirect URIs without application_type, a public client.
func mcpRegistration() map[string]any {
	return map[string]any{
		"client_name":                "Agent CLI",
		"redirect_uris":              []string{mcpRu},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
		"client_uri":                 "https://agent.example",
		"software_id":                "agent-cli",
		"software_version":           "1.2.3",
	}
}

func strs(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestRegister: a client registers itself and gets back every member it
// registered (RFC 7591 §3.2.1), its registration access token and URI,
// and a secret only when it is confidential; then it signs a user in.
func TestRegister(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil, withRegistration(RegistrationOpen, ""), withResources(apiB))
		resp, reg := h.sendJSON("POST", "/register", mcpRegistration(), nil)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("register: %d %v", resp.StatusCode, reg)
		}
		id, _ := reg["client_id"].(string)
		if id == "" || reg["client_secret"] != nil || reg["client_secret_expires_at"] != nil ||
			reg["registration_access_token"] == "" || reg["registration_client_uri"] != h.issuer+"/register/"+id {
			t.Errorf("registration response: %v", reg)
		}
		if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
			t.Error("the registration response is cacheable")
		}
		for k, want := range map[string]any{
			"client_name": "Agent CLI", "token_endpoint_auth_method": "none", "application_type": "native", "scope": "profile",
			"client_uri": "https://agent.example", "software_id": "agent-cli", "software_version": "1.2.3",
			"id_token_signed_response_alg": "RS256",
		} {
			if reg[k] != want {
				t.Errorf("%s = %v, want %v", k, reg[k], want)
			}
		}
		if !slices.Equal(strs(reg["redirect_uris"]), []string{mcpRu}) || !slices.Equal(strs(reg["grant_types"]), []string{"authorization_code", "refresh_token"}) ||
			!slices.Equal(strs(reg["response_types"]), []string{"code"}) {
			t.Errorf("lists: %v", reg)
		}
		if iat, _ := reg["client_id_issued_at"].(float64); iat < 1e9 {
			t.Errorf("client_id_issued_at %v", reg["client_id_issued_at"])
		}

		// The client signs a user in, for the MCP server.
		addr := h.wallet.user()
		verifier, challenge := pkce()
		v := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {mcpRu}, "state": {"s"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {apiB}}
		tr := h.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {h.code(addr, v)},
			"redirect_uri": {mcpRu}, "code_verifier": {verifier}, "resource": {apiB}}, "", "")
		tr.wantOK(t)
		wantAud(t, tr.AccessToken, apiB)

		// A confidential web client gets a secret, once, that works.
		resp, conf := h.sendJSON("POST", "/register", map[string]any{
			"client_name": "Web App", "redirect_uris": []string{apiRu}, "token_endpoint_auth_method": "client_secret_post",
			"scope": "openid profile backup", "resources": []string{apiB}, "id_token_signed_response_alg": "ES256",
		}, nil)
		secret, _ := conf["client_secret"].(string)
		if resp.StatusCode != 201 || secret == "" || conf["client_secret_expires_at"] != float64(0) || conf["application_type"] != "web" ||
			!slices.Equal(strs(conf["grant_types"]), []string{"authorization_code"}) || conf["token_endpoint_auth_method"] != "client_secret_post" ||
			!slices.Equal(strs(conf["resources"]), []string{apiB}) || conf["scope"] != "openid profile backup" || conf["id_token_signed_response_alg"] != "ES256" {
			t.Fatalf("confidential registration: %d %v", resp.StatusCode, conf)
		}
		cid := conf["client_id"].(string)
		code := h.code(addr, url.Values{"response_type": {"code"}, "client_id": {cid}, "redirect_uri": {apiRu}, "scope": {"profile"}})
		h.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {apiRu}, "client_id": {cid}, "client_secret": {secret}}, "", "").wantOK(t)

		// Unverified on the login page, with the host it sends users to
		// (in a browser without a session).
		h.c = h.browser()
		_, page := h.get(authorizeURL(url.Values{"response_type": {"code"}, "client_id": {cid}, "redirect_uri": {apiRu}}), map[string]string{"Accept": "text/html"})
		if !strings.Contains(string(page), "Unverified application") || !strings.Contains(string(page), "where it sends you back: <strong>app.example.com</strong>") {
			t.Errorf("login page of a self-registered client:\n%s", page)
		}
		if _, msg := loginPage(t, page); !strings.Contains(msg, "Application: Web App (unverified)\n") {
			t.Errorf("signed message:\n%s", msg)
		}
		// An operator's client is not marked.
		op, _ := h.client(ClientRegistration{RedirectURIs: []string{apiRu}})
		_, page = h.get(authorizeURL(url.Values{"response_type": {"code"}, "client_id": {op.ID}, "redirect_uri": {apiRu}}), map[string]string{"Accept": "text/html"})
		if strings.Contains(string(page), "Unverified application") || strings.Contains(string(page), "(unverified") {
			t.Error("an operator's client is shown as unverified")
		}

		// Listed as self-registered.
		list, err := ListClients(t.Context(), db.DB)
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]Registration{}
		for _, c := range list {
			kinds[c.ID] = c.Registration
		}
		if kinds[id] != RegisteredDynamically || kinds[cid] != RegisteredDynamically || kinds[op.ID] != RegisteredByOperator {
			t.Errorf("registrations %v", kinds)
		}

		// The metadata names the endpoint.
		_, body := h.get("/.well-known/oauth-authorization-server", nil)
		var md map[string]any
		json.Unmarshal(body, &md)
		if md["registration_endpoint"] != h.issuer+"/register" || !slices.Equal(strs(md["protected_resources"]), []string{apiB}) {
			t.Errorf("metadata: registration_endpoint %v, protected_resources %v", md["registration_endpoint"], md["protected_resources"])
		}
		_, body = h.get("/.well-known/openid-configuration", nil)
		json.Unmarshal(body, &md)
		if md["registration_endpoint"] != h.issuer+"/register" {
			t.Errorf("OpenID configuration: registration_endpoint %v", md["registration_endpoint"])
		}
	})
}

// TestRegisterErrors: every error of RFC 7591 §3.2.2 that authd answers,
// each with its catalog status, and the request errors around them.
// (unapproved_software_statement never occurs: every software statement
// is refused as invalid_software_statement, without looking at it.)
func TestRegisterErrors(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, withRegistration(RegistrationOpen, ""), withResources(apiB))
	with := func(k string, v any) map[string]any {
		m := mcpRegistration()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
		want   string
	}{
		// invalid_redirect_uri
		{"no redirect URIs", with("redirect_uris", nil), 400, "invalid_redirect_uri", "redirect_uris is required"},
		{"empty redirect URIs", with("redirect_uris", []string{}), 400, "invalid_redirect_uri", "redirect_uris is required"},
		{"http, not loopback", with("redirect_uris", []string{"http://agent.example/cb"}), 400, "invalid_redirect_uri", "must use https"},
		{"fragment", with("redirect_uris", []string{"https://agent.example/cb#x"}), 400, "invalid_redirect_uri", "fragment"},
		{"relative", with("redirect_uris", []string{"/cb"}), 400, "invalid_redirect_uri", "absolute"},
		{"wildcard", with("redirect_uris", []string{"https://*.agent.example/cb"}), 400, "invalid_redirect_uri", "wildcard"},
		{"custom scheme, not reverse-domain", with("redirect_uris", []string{"agent:/cb"}), 400, "invalid_redirect_uri", "private-use"},
		{"web with loopback", with("application_type", "web"), 400, "invalid_redirect_uri", "web client's redirect URIs are https"},
		{"web with a private-use scheme", func() map[string]any {
			m := with("application_type", "web")
			m["redirect_uris"] = []string{"com.agent.app:/cb"}
			return m
		}(), 400, "invalid_redirect_uri", "must use https"},
		// invalid_client_metadata
		{"implicit grant", with("grant_types", []string{"implicit"}), 400, "invalid_client_metadata", "Grant type 'implicit' is not supported"},
		{"password grant", with("grant_types", []string{"password"}), 400, "invalid_client_metadata", "'password' is not supported"},
		{"token response type", with("response_types", []string{"token"}), 400, "invalid_client_metadata", "Response type 'token'"},
		{"grants without their response type", with("response_types", []string{}), 400, "invalid_client_metadata", "grant_types and response_types do not match"},
		{"response type without its grant", with("grant_types", []string{"client_credentials"}), 400, "invalid_client_metadata", "grant_types and response_types do not match"},
		{"refresh without code", func() map[string]any {
			m := with("grant_types", []string{"refresh_token"})
			delete(m, "response_types")
			return m
		}(), 400, "invalid_client_metadata", "needs the authorization_code grant"},
		{"public client_credentials", func() map[string]any {
			m := with("grant_types", []string{"authorization_code", "client_credentials"})
			return m
		}(), 400, "invalid_client_metadata", "cannot use client_credentials"},
		{"private_key_jwt", with("token_endpoint_auth_method", "private_key_jwt"), 400, "invalid_client_metadata", "'private_key_jwt' is not supported"},
		{"scope not offered", with("scope", "profile admin"), 400, "invalid_client_metadata", "Scope 'admin' is not offered"},
		{"scope malformed", with("scope", "profile  backup"), 400, "invalid_client_metadata", "scope must be"},
		{"application type desktop", with("application_type", "desktop"), 400, "invalid_client_metadata", "application_type must be web or native"},
		{"name with a control character", with("client_name", "Agent\x07"), 400, "invalid_client_metadata", "client_name must be plain text"},
		{"name with a bidi override", with("client_name", "Agent \u202eetalpmet"), 400, "invalid_client_metadata", "client_name must be plain text"},
		{"name too long", with("client_name", strings.Repeat("n", 201)), 400, "invalid_client_metadata", "at most 200 bytes"},
		{"redirect_uris a string", with("redirect_uris", mcpRu), 400, "invalid_client_metadata", "redirect_uris must be an array of strings"},
		{"client_name a number", with("client_name", 7), 400, "invalid_client_metadata", "client_name must be a string"},
		{"resource not served", with("resources", []string{apiC}), 400, "invalid_client_metadata", "is not served by this server"},
		{"resource with a fragment", with("resources", []string{apiB + "#f"}), 400, "invalid_client_metadata", "fragment"},
		{"client_uri not a URL", with("client_uri", "javascript:alert(1)"), 400, "invalid_client_metadata", "client_uri must be"},
		{"id token alg HS256", with("id_token_signed_response_alg", "HS256"), 400, "invalid_client_metadata", "'HS256' is not supported"},
		{"JSON array", `[{"redirect_uris":["https://a.example/cb"]}]`, 400, "invalid_client_metadata", "must be a JSON object"},
		{"not JSON", `redirect_uris=https://a.example/cb`, 400, "invalid_client_metadata", "must be a JSON object"},
		{"JSON null", `null`, 400, "invalid_client_metadata", "must be a JSON object"},
		// invalid_software_statement
		{"software statement", with("software_statement", "eyJhbGciOiJSUzI1NiJ9.e30.c2ln"), 400, "invalid_software_statement", "Software statements are not supported"},
		// The request around the metadata.
		{"too large", `{"client_name":"` + strings.Repeat("a", MaxRegistrationBody) + `"}`, 413, "request_too_large", "limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, e := h.sendJSON("POST", "/register", tc.body, nil)
			desc, _ := e["error_description"].(string)
			if resp.StatusCode != tc.status || e["error"] != tc.code || !strings.Contains(desc, tc.want) {
				t.Errorf("got %d %v, want %d %s saying %q", resp.StatusCode, e, tc.status, tc.code, tc.want)
			}
		})
	}
	// The wrong content type.
	req, _ := http.NewRequest("POST", h.issuer+"/register", strings.NewReader(`{"redirect_uris":["https://a.example/cb"]}`))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, body := h.do(req); resp.StatusCode != 400 || !strings.Contains(string(body), "application/json") {
		t.Errorf("form body: %d %s", resp.StatusCode, body)
	}
	// Nothing was registered by any of them.
	list, err := ListClients(t.Context(), h.db.DB)
	if err != nil || len(list) != 0 {
		t.Errorf("%d clients registered by failed registrations", len(list))
	}
	// Native and web inference, and what is accepted.
	for _, tc := range []struct {
		uris    []string
		appType string
		want    string
	}{
		{[]string{"http://127.0.0.1:8000/cb"}, "", "native"},
		{[]string{"http://[::1]/cb"}, "", "native"},
		{[]string{"com.agent.app:/oauth"}, "", "native"},
		{[]string{"https://agent.example/cb", "http://localhost:9/cb"}, "", "native"},
		{[]string{"https://agent.example/cb"}, "", "web"},
		{[]string{"https://agent.example/cb"}, "native", "native"},
	} {
		m := mcpRegistration()
		m["redirect_uris"] = tc.uris
		if tc.appType != "" {
			m["application_type"] = tc.appType
		}
		resp, reg := h.sendJSON("POST", "/register", m, nil)
		if resp.StatusCode != 201 || reg["application_type"] != tc.want {
			t.Errorf("%v %q: %d %v, want application_type %s", tc.uris, tc.appType, resp.StatusCode, reg, tc.want)
		}
	}
	// Unknown members are ignored, and not echoed (RFC 7591 §2).
	m := mcpRegistration()
	m["logo_uri"], m["x_custom"] = "https://agent.example/logo.png", true
	if resp, reg := h.sendJSON("POST", "/register", m, nil); resp.StatusCode != 201 || reg["logo_uri"] != nil || reg["x_custom"] != nil {
		t.Errorf("unknown members: %d %v", resp.StatusCode, reg)
	}
}

// TestRegisterInitialToken: with AUTHD_REGISTRATION=token a registration
// needs the initial access token as a Bearer token.
func TestRegisterInitialToken(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, withRegistration(RegistrationToken, initialToken))
	for _, tc := range []struct {
		name      string
		hdr       map[string]string
		challenge string // the WWW-Authenticate it must start with
	}{
		{"missing", nil, `Bearer realm="authd"`},
		{"wrong", bearer(initialToken + "x"), `Bearer realm="authd", error="invalid_token"`},
		{"prefix", bearer(initialToken[:20]), `Bearer realm="authd", error="invalid_token"`},
		{"basic", map[string]string{"Authorization": "Basic " + initialToken}, `Bearer realm="authd", error="invalid_token"`},
		{"malformed", bearer("a b"), `Bearer realm="authd", error="invalid_token"`},
	} {
		resp, e := h.sendJSON("POST", "/register", mcpRegistration(), tc.hdr)
		if resp.StatusCode != 401 || e["error"] != "invalid_token" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), tc.challenge) {
			t.Errorf("%s: %d %v %q", tc.name, resp.StatusCode, e, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if resp, reg := h.sendJSON("POST", "/register", mcpRegistration(), bearer(initialToken)); resp.StatusCode != 201 || reg["client_id"] == nil {
		t.Errorf("with the initial access token: %d %v", resp.StatusCode, reg)
	}
}

// TestRegistrationManagement: RFC 7592 read, update and delete with the
// registration access token, and nothing with any other.
func TestRegistrationManagement(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil, withRegistration(RegistrationOpen, ""))
		_, a := h.sendJSON("POST", "/register", mcpRegistration(), nil)
		_, b := h.sendJSON("POST", "/register", mcpRegistration(), nil)
		aID, aTok := a["client_id"].(string), a["registration_access_token"].(string)
		bTok := b["registration_access_token"].(string)
		op, _ := h.client(ClientRegistration{RedirectURIs: []string{apiRu}})
		path := "/register/" + aID

		// Read.
		resp, got := h.sendJSON("GET", path, nil, bearer(aTok))
		if resp.StatusCode != 200 || got["client_id"] != aID || got["registration_access_token"] != aTok ||
			!slices.Equal(strs(got["redirect_uris"]), []string{mcpRu}) || got["client_name"] != "Agent CLI" || got["client_secret"] != nil {
			t.Errorf("read: %d %v", resp.StatusCode, got)
		}

		// Every wrong token is the same 401, with a challenge.
		for _, tc := range []struct {
			name string
			path string
			hdr  map[string]string
		}{
			{"missing", path, nil},
			{"wrong", path, bearer(aTok + "x")},
			{"another client's", path, bearer(bTok)},
			{"an initial access token", path, bearer(initialToken)},
			{"unknown client", "/register/nosuchclient", bearer(aTok)},
			{"operator's client", "/register/" + op.ID, bearer(aTok)},
		} {
			for _, method := range []string{"GET", "PUT", "DELETE"} {
				var body any
				if method == "PUT" {
					body = map[string]any{"client_id": aID, "redirect_uris": []string{mcpRu}}
				}
				resp, e := h.sendJSON(method, tc.path, body, tc.hdr)
				if resp.StatusCode != 401 || e["error"] != "invalid_token" || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s %s: %d %v %q", method, tc.name, resp.StatusCode, e, resp.Header.Get("WWW-Authenticate"))
				}
			}
		}

		// Update: replaces, validated as a registration.
		upd := map[string]any{"client_id": aID, "client_name": "Agent CLI 2", "redirect_uris": []string{"http://127.0.0.1:7000/cb"},
			"token_endpoint_auth_method": "none"}
		resp, got = h.sendJSON("PUT", path, upd, bearer(aTok))
		if resp.StatusCode != 200 || got["client_name"] != "Agent CLI 2" || !slices.Equal(strs(got["redirect_uris"]), []string{"http://127.0.0.1:7000/cb"}) ||
			!slices.Equal(strs(got["grant_types"]), []string{"authorization_code"}) || got["client_uri"] != nil {
			t.Errorf("update: %d %v", resp.StatusCode, got)
		}
		if _, got = h.sendJSON("GET", path, nil, bearer(aTok)); got["client_name"] != "Agent CLI 2" {
			t.Errorf("read after update: %v", got)
		}
		for _, tc := range []struct {
			name string
			body map[string]any
			code string
			want string
		}{
			{"no client_id", map[string]any{"redirect_uris": []string{mcpRu}}, "invalid_client_metadata", "own client_id"},
			{"another client_id", map[string]any{"client_id": b["client_id"], "redirect_uris": []string{mcpRu}}, "invalid_client_metadata", "own client_id"},
			{"registration_access_token", map[string]any{"client_id": aID, "redirect_uris": []string{mcpRu}, "registration_access_token": aTok}, "invalid_client_metadata", "must not include registration_access_token"},
			{"client_id_issued_at", map[string]any{"client_id": aID, "redirect_uris": []string{mcpRu}, "client_id_issued_at": 1}, "invalid_client_metadata", "must not include client_id_issued_at"},
			{"a secret of its own choosing", map[string]any{"client_id": aID, "redirect_uris": []string{mcpRu}, "client_secret": "mine"}, "invalid_client_metadata", "client_secret is not"},
			{"bad redirect", map[string]any{"client_id": aID, "redirect_uris": []string{"http://agent.example/cb"}}, "invalid_redirect_uri", "https"},
			{"software statement", map[string]any{"client_id": aID, "redirect_uris": []string{mcpRu}, "software_statement": "x.y.z"}, "invalid_software_statement", "not supported"},
		} {
			resp, e := h.sendJSON("PUT", path, tc.body, bearer(aTok))
			desc, _ := e["error_description"].(string)
			if resp.StatusCode != 400 || e["error"] != tc.code || !strings.Contains(desc, tc.want) {
				t.Errorf("update %s: %d %v", tc.name, resp.StatusCode, e)
			}
		}
		// Turning confidential issues a secret; staying so keeps it, and
		// the update may name it.
		resp, got = h.sendJSON("PUT", path, map[string]any{"client_id": aID, "redirect_uris": []string{mcpRu}, "token_endpoint_auth_method": "client_secret_basic"}, bearer(aTok))
		secret, _ := got["client_secret"].(string)
		if resp.StatusCode != 200 || secret == "" || got["client_secret_expires_at"] != float64(0) {
			t.Fatalf("turning confidential: %d %v", resp.StatusCode, got)
		}
		resp, got = h.sendJSON("PUT", path, map[string]any{"client_id": aID, "client_secret": secret, "redirect_uris": []string{mcpRu}, "client_name": "Kept"}, bearer(aTok))
		if resp.StatusCode != 200 || got["client_secret"] != nil || got["client_name"] != "Kept" {
			t.Errorf("staying confidential: %d %v", resp.StatusCode, got)
		}
		tr := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {h.code(h.wallet.user(), codeParamsFor(aID, mcpRu))}, "redirect_uri": {mcpRu}}, aID, secret)
		tr.wantOK(t)

		// Delete: the client, its tokens and its registration token end.
		resp, _ = h.sendJSON("DELETE", path, nil, bearer(aTok))
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("delete: %d", resp.StatusCode)
		}
		if resp, _ := h.sendJSON("GET", path, nil, bearer(aTok)); resp.StatusCode != 401 {
			t.Errorf("read after delete: %d", resp.StatusCode)
		}
		h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, aID, secret).wantError(t, 401, "invalid_client")
		if resp, _ := h.userinfo(tr.AccessToken); resp.StatusCode != 401 {
			t.Errorf("userinfo with a deleted client's token: %d", resp.StatusCode)
		}
		// b is untouched.
		if resp, _ := h.sendJSON("GET", "/register/"+b["client_id"].(string), nil, bearer(bTok)); resp.StatusCode != 200 {
			t.Errorf("the other client: %d", resp.StatusCode)
		}
	})
}

// codeParamsFor is codeParams for a client id.
func codeParamsFor(id, ru string) url.Values {
	return url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {ru}, "state": {"s"}}
}

// TestRegisterRateLimit: registrations are limited per client IP, with
// the limit's headers, and a 429 that says when to retry.
func TestRegisterRateLimit(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, withRegistration(RegistrationOpen, ""), withRateLimits(t, "register=2/1h"))
	// A failed registration counts as much as one that succeeds.
	for i, body := range []any{mcpRegistration(), map[string]any{"redirect_uris": "not a list"}} {
		resp, _ := h.sendJSON("POST", "/register", body, nil)
		if resp.StatusCode != []int{201, 400}[i] || resp.Header.Get("X-RateLimit-Limit") != "2" || resp.Header.Get("X-RateLimit-Remaining") != []string{"1", "0"}[i] ||
			resp.Header.Get("RateLimit-Policy") != `"register";q=2;w=3600` {
			t.Errorf("registration %d: %d %v", i, resp.StatusCode, resp.Header)
		}
	}
	resp, e := h.sendJSON("POST", "/register", mcpRegistration(), nil)
	if resp.StatusCode != 429 || e["error"] != "rate_limit_exceeded" || resp.Header.Get("Retry-After") == "" || e["retry_after"] == nil ||
		resp.Header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("third registration: %d %v %v", resp.StatusCode, e, resp.Header)
	}
	// Another address is not limited by this one's registrations.
	h.c = h.browser()
	if resp, _ := h.sendJSON("POST", "/register", mcpRegistration(), nil); resp.StatusCode != 201 {
		t.Errorf("from another address: %d", resp.StatusCode)
	}
}

// TestRegisterCORS: browser-based clients may register, and MCP clients'
// preflights, which ask for MCP-Protocol-Version, are answered.
func TestRegisterCORS(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, withRegistration(RegistrationOpen, ""))
	for _, path := range []string{"/register", "/register/someclient", "/.well-known/oauth-authorization-server", "/token"} {
		req, _ := http.NewRequest("OPTIONS", h.issuer+path, nil)
		req.Header.Set("Origin", "https://agent.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type, mcp-protocol-version")
		resp, _ := h.do(req)
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
			!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "MCP-Protocol-Version") {
			t.Errorf("preflight %s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	resp, _ := h.sendJSON("POST", "/register", mcpRegistration(), map[string]string{"Origin": "https://agent.example", "MCP-Protocol-Version": "2025-06-18"})
	if resp.StatusCode != 201 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("cross-origin registration: %d %v", resp.StatusCode, resp.Header)
	}
}

// TestRegistrationOff: by default there is no /register, and the metadata
// says so.
func TestRegistrationOff(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	resp, e := h.sendJSON("POST", "/register", mcpRegistration(), nil)
	if resp.StatusCode != 404 || e["error"] != "not_found" {
		t.Errorf("POST /register: %d %v", resp.StatusCode, e)
	}
	if resp, _ := h.sendJSON("GET", "/register/x", nil, bearer("x")); resp.StatusCode != 404 {
		t.Errorf("GET /register/x: %d", resp.StatusCode)
	}
	_, body := h.get("/.well-known/oauth-authorization-server", nil)
	if strings.Contains(string(body), "registration_endpoint") || strings.Contains(string(body), "protected_resources") {
		t.Errorf("metadata with registration off and no resources: %s", body)
	}
}
