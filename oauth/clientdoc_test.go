package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd-dev/authd/clientdoc"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// withDocuments turns on Client ID Metadata Documents, with the loopback
// exception the test servers need.
func withDocuments() harnessOpt {
	return func(c *server.Config) {
		c.ClientMetadataDocuments = true
		c.ClientMetadata = clientdoc.Config{AllowLoopback: true}
	}
}

// docHost serves one client's metadata document on 127.0.0.1, as the
// test says, and counts the fetches.
type docHost struct {
	srv  *httptest.Server
	id   string // the client_id: the document's URL
	hits atomic.Int32

	mu     sync.Mutex
	status int
	doc    map[string]any
}

func newDocHost(t *testing.T, doc map[string]any) *docHost {
	d := &docHost{status: 200, doc: doc}
	d.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.hits.Add(1)
		d.mu.Lock()
		defer d.mu.Unlock()
		if d.status != 200 {
			w.WriteHeader(d.status)
			return
		}
		m := map[string]any{"client_id": d.id}
		for k, v := range d.doc {
			m[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(m)
	}))
	t.Cleanup(d.srv.Close)
	d.id = d.srv.URL + "/oauth/client-metadata.json"
	return d
}

func (d *docHost) set(status int, doc map[string]any) {
	d.mu.Lock()
	d.status, d.doc = status, doc
	d.mu.Unlock()
}

// agentDoc is the document of an MCP-style agent.
func agentDoc() map[string]any {
	return map[string]any{
		"client_name":                "Doc Agent",
		"redirect_uris":              []string{mcpRu, "http://127.0.0.1:33418/callback"},
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"token_endpoint_auth_method": "none",
		"scope":                      "profile",
	}
}

// docParams are the authorization request of the document client.
func docParams(id, challenge string, res ...string) url.Values {
	v := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {mcpRu}, "state": {"s"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	return withResourceParams(v, res...)
}

// TestMetadataDocumentClient: a client known only by the URL of its
// metadata document signs a user in with a wallet, gets tokens for the
// resource it asked for, refreshes them, is listed, shown as unverified,
// and deleted.
func TestMetadataDocumentClient(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil, withDocuments(), withResources(apiB))
		d := newDocHost(t, agentDoc())

		_, body := h.get("/.well-known/oauth-authorization-server", nil)
		var md map[string]any
		json.Unmarshal(body, &md)
		if md["client_id_metadata_document_supported"] != true {
			t.Errorf("metadata: client_id_metadata_document_supported = %v", md["client_id_metadata_document_supported"])
		}

		addr := h.wallet.user()
		verifier, challenge := pkce()
		code := h.code(addr, docParams(d.id, challenge, apiB))
		tr := h.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {d.id}, "code": {code},
			"redirect_uri": {mcpRu}, "code_verifier": {verifier}, "resource": {apiB}}, "", "")
		tr.wantOK(t)
		wantAud(t, tr.AccessToken, apiB)
		if tr.RefreshToken == "" {
			t.Error("no refresh token for a document asking for the refresh_token grant")
		}
		// authd's own API refuses the token: its audience is the MCP
		// server.
		if resp, body := h.userinfo(tr.AccessToken); resp.StatusCode != 401 || !strings.Contains(string(body), "another resource") {
			t.Errorf("userinfo: %d %s", resp.StatusCode, body)
		}
		rt := h.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {d.id}, "refresh_token": {tr.RefreshToken}, "resource": {apiB}}, "", "")
		rt.wantOK(t)
		wantAud(t, rt.AccessToken, apiB)
		if n := d.hits.Load(); n != 1 {
			t.Errorf("the document was fetched %d times for one authorization and two token requests; it is cached", n)
		}

		// Listed, as a metadata document client.
		list, err := ListClients(context.Background(), db.DB)
		if err != nil {
			t.Fatal(err)
		}
		var found *Client
		for _, c := range list {
			if c.ID == d.id {
				found = c
			}
		}
		if found == nil || found.Registration != RegisteredByDocument || found.Name != "Doc Agent" || found.Verified() ||
			found.Origin() != d.srv.URL || !found.Public {
			t.Fatalf("listed as %+v", found)
		}

		// Shown as unverified, with its host, on the login page and in
		// the message the user signs (in a browser without a session).
		h.c = h.browser()
		resp, page := h.get(authorizeURL(docParams(d.id, challenge, apiB)), map[string]string{"Accept": "text/html"})
		host := strings.TrimPrefix(d.srv.URL, "http://")
		if resp.StatusCode != 200 || !strings.Contains(string(page), "Unverified application") || !strings.Contains(string(page), "published at <strong>"+host+"</strong>") {
			t.Errorf("login page %d does not show the client as unverified from %s:\n%s", resp.StatusCode, host, page)
		}
		if _, msg := loginPage(t, page); !strings.Contains(msg, "Application: Doc Agent (unverified, from "+host+")") ||
			!strings.Contains(msg, "\nResources: "+apiB+"\n") {
			t.Errorf("signed message does not say the client is unverified, and for what:\n%s", msg)
		}
		if !strings.Contains(string(page), "this service only:</p>\n<ul><li><code>"+apiB+"</code>") {
			t.Errorf("login page does not say what the access is for:\n%s", page)
		}

		// Public, PKCE, exact redirect URIs.
		resp, _ = h.signedAuthorize(addr, authorizeURL(url.Values{"response_type": {"code"}, "client_id": {d.id}, "redirect_uri": {mcpRu}, "state": {"s"}}), nil)
		if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != 302 || loc.Query().Get("error") != "invalid_request" {
			t.Errorf("without PKCE: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		// (An operator's client may vary a loopback IP's port, RFC 8252
		// §7.3; a document's redirect URIs are matched exactly.)
		for _, other := range []string{"http://localhost:33419/callback", "http://127.0.0.1:33419/callback"} {
			p := docParams(d.id, challenge)
			p.Set("redirect_uri", other)
			if resp, _ := h.signedAuthorize(addr, authorizeURL(p), nil); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
				t.Errorf("another port of the loopback redirect URI %s: %d %s", other, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
		h.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {d.id}, "client_secret": {"x"}, "refresh_token": {rt.RefreshToken}}, "", "").wantError(t, 401, "invalid_client")

		// Deleted: its tokens end; its next authorization makes it anew,
		// and the old tokens stay dead.
		if err := DeleteClient(context.Background(), db.DB, d.id); err != nil {
			t.Fatal(err)
		}
		h.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {d.id}, "refresh_token": {rt.RefreshToken}}, "", "").wantError(t, 400, "invalid_grant")
		rs, rsSecret := h.client(ClientRegistration{Name: "API", Grants: []string{"client_credentials"}})
		introspect := func(tok string) bool {
			_, body := h.postForm("/introspect", url.Values{"token": {tok}}, basic(rs.ID, rsSecret))
			var in struct{ Active bool }
			json.Unmarshal(body, &in)
			return in.Active
		}
		waitClientCache()
		if introspect(rt.AccessToken) {
			t.Error("an access token of the deleted client is active")
		}
		h.clock.Set(h.clock.Now().Add(2 * time.Second)) // the new client is younger than the old tokens
		v2, c2 := pkce()
		code = h.code(addr, docParams(d.id, c2, apiB))
		tr2 := h.token(url.Values{"grant_type": {"authorization_code"}, "client_id": {d.id}, "code": {code},
			"redirect_uri": {mcpRu}, "code_verifier": {v2}}, "", "")
		tr2.wantOK(t)
		waitClientCache()
		if !introspect(tr2.AccessToken) || introspect(rt.AccessToken) {
			t.Error("after the client came back: the new token must be active and the old one not")
		}
	})
}

// waitClientCache lets the server's one-second client cache expire.
func waitClientCache() { time.Sleep(ClientCacheTTL + 100*time.Millisecond) }

// TestMetadataDocumentRefused: a document that cannot be used is
// invalid_client_metadata, answered directly (never redirected: its
// redirect URIs are unknown), saying what is wrong; such failures are not
// cached, so a fixed document works at once.
func TestMetadataDocumentRefused(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil, withDocuments())
	d := newDocHost(t, nil)
	addr := h.wallet.user()
	_, challenge := pkce()
	with := func(k string, v any) map[string]any {
		m := agentDoc()
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		name   string
		status int
		doc    map[string]any
		want   string
	}{
		{"not found", 404, nil, "HTTP 404"},
		{"shared secret", 200, with("token_endpoint_auth_method", "client_secret_basic"), "token_endpoint_auth_method must be none"},
		{"client secret", 200, with("client_secret", "s3cret"), "must not contain client_secret"},
		{"no redirect URIs", 200, with("redirect_uris", nil), "redirect_uris is required"},
		{"http redirect URI", 200, with("redirect_uris", []string{"http://app.example/cb"}), "must use https"},
		{"web with loopback", 200, with("application_type", "web"), "must use https"},
		{"client credentials", 200, with("grant_types", []string{"authorization_code", "client_credentials"}), "cannot use client_credentials"},
		{"grants and responses apart", 200, with("grant_types", []string{"client_credentials"}), "grant_types and response_types do not match"},
		{"implicit", 200, with("response_types", []string{"token"}), "Response type 'token' is not supported"},
		{"unknown scope", 200, with("scope", "admin"), "Scope 'admin' is not offered"},
		{"redirect_uris not a list", 200, with("redirect_uris", mcpRu), "redirect_uris must be an array of strings"},
		{"name with control characters", 200, with("client_name", "Doc\u202eAgent"), "client_name must be plain text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.set(tc.status, tc.doc)
			for _, accept := range []string{"application/json", "text/html"} {
				resp, body := h.signedAuthorize(addr, authorizeURL(docParams(d.id, challenge)), map[string]string{"Accept": accept})
				if resp.StatusCode != 400 || resp.Header.Get("Location") != "" || !strings.Contains(string(body), "invalid_client_metadata") ||
					!strings.Contains(string(body), "Client ID Metadata Document: ") || !strings.Contains(strings.ReplaceAll(string(body), "&#39;", "'"), tc.want) {
					t.Errorf("%s: %d %s\n%s", accept, resp.StatusCode, resp.Header.Get("Location"), body)
				}
			}
		})
	}
	// Fixed, it works at once: failures are not cached.
	d.set(200, agentDoc())
	if code := h.code(addr, docParams(d.id, challenge)); code == "" {
		t.Error("no code after the document was fixed")
	}
	// At the token endpoint too, the document must serve.
	before := d.hits.Load()
	d.set(500, nil)
	h2 := newHarness(t, testenv.DB(t, store.SQLite), nil, withDocuments()) // an empty cache
	tr := h2.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {d.id}, "refresh_token": {"x"}}, "", "")
	tr.wantError(t, 400, "invalid_client_metadata")
	if d.hits.Load() == before {
		t.Error("the token endpoint did not fetch the document")
	}

	// With metadata documents off, a URL is an unknown client_id.
	off := newHarness(t, testenv.DB(t, store.SQLite), nil)
	d.set(200, agentDoc())
	resp, body := off.signedAuthorize(off.wallet.user(), authorizeURL(docParams(d.id, challenge)), map[string]string{"Accept": "application/json"})
	if resp.StatusCode != 400 || !strings.Contains(string(body), "Unknown client_id") {
		t.Errorf("documents off: %d %s", resp.StatusCode, body)
	}
	_, body = off.get("/.well-known/oauth-authorization-server", nil)
	if !strings.Contains(string(body), `"client_id_metadata_document_supported": false`) {
		t.Errorf("metadata with documents off: %s", body)
	}
}
