package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
	"golang.org/x/oauth2"
)

// TestMCPClientOnboarding: a Model Context Protocol client that knows
// nothing but authd's issuer URL discovers it, makes itself known — by
// registering (RFC 7591), or by the URL of its metadata document — and
// gets, with golang.org/x/oauth2 as its OAuth library, a token whose
// audience is the MCP server it asked for (RFC 8707), refreshes it for
// that server, and cannot use it at authd's own API.
func TestMCPClientOnboarding(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil, withRegistration(RegistrationOpen, ""), withDocuments(), withResources(apiB))
		const mcpServer = apiB

		// Discovery, as the MCP SDK does it: RFC 8414 metadata, with its
		// protocol version header.
		resp, body := h.get("/.well-known/oauth-authorization-server", map[string]string{"MCP-Protocol-Version": "2025-06-18"})
		var md struct {
			Issuer                string   `json:"issuer"`
			AuthorizationEndpoint string   `json:"authorization_endpoint"`
			TokenEndpoint         string   `json:"token_endpoint"`
			RegistrationEndpoint  string   `json:"registration_endpoint"`
			CIMD                  bool     `json:"client_id_metadata_document_supported"`
			PKCE                  []string `json:"code_challenge_methods_supported"`
			AuthMethods           []string `json:"token_endpoint_auth_methods_supported"`
			Resources             []string `json:"protected_resources"`
		}
		if err := json.Unmarshal(body, &md); err != nil || resp.StatusCode != 200 || md.Issuer != h.issuer || md.RegistrationEndpoint == "" || !md.CIMD ||
			!slices.Contains(md.PKCE, "S256") || !slices.Contains(md.AuthMethods, "none") || !slices.Contains(md.Resources, mcpServer) {
			t.Fatalf("discovery: %d %s", resp.StatusCode, body)
		}
		path := func(u string) string {
			p, err := url.Parse(u)
			if err != nil || p.Scheme+"://"+p.Host != h.issuer {
				t.Fatalf("endpoint %q is not on the issuer", u)
			}
			return p.RequestURI()
		}

		// Way 1: dynamic registration.
		resp, reg := h.sendJSON("POST", path(md.RegistrationEndpoint), mcpRegistration(), map[string]string{"MCP-Protocol-Version": "2025-06-18"})
		if resp.StatusCode != 201 || !slices.Equal(strs(reg["redirect_uris"]), []string{mcpRu}) {
			t.Fatalf("registration: %d %v", resp.StatusCode, reg)
		}
		registered, _ := reg["client_id"].(string)

		// Way 2: a metadata document.
		d := newDocHost(t, agentDoc())

		for _, clientID := range []string{registered, d.id} {
			conf := &oauth2.Config{
				ClientID:    clientID,
				Endpoint:    oauth2.Endpoint{AuthURL: md.AuthorizationEndpoint, TokenURL: md.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams},
				RedirectURL: mcpRu,
				Scopes:      []string{"profile"},
			}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, h.c)
			verifier := oauth2.GenerateVerifier()
			au := conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", mcpServer))
			resp, body := h.signedAuthorize(h.wallet.user(), path(au), nil)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("%s: authorize: %d %s", clientID, resp.StatusCode, body)
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if loc.Query().Get("iss") != h.issuer || loc.Query().Get("state") != "st" {
				t.Errorf("%s: authorization response %s", clientID, loc)
			}
			tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", mcpServer))
			if err != nil {
				t.Fatalf("%s: exchange: %v", clientID, err)
			}
			wantAud(t, tok.AccessToken, mcpServer)
			if tok.RefreshToken == "" {
				t.Fatalf("%s: no refresh token", clientID)
			}
			// The SDK sends resource again on refresh.
			rt := h.token(url.Values{"grant_type": {"refresh_token"}, "client_id": {clientID}, "refresh_token": {tok.RefreshToken}, "resource": {mcpServer}}, "", "")
			rt.wantOK(t)
			wantAud(t, rt.AccessToken, mcpServer)
			// The token opens the MCP server, not authd.
			if resp, _ := h.userinfo(rt.AccessToken); resp.StatusCode != 401 {
				t.Errorf("%s: userinfo with the MCP server's token: %d", clientID, resp.StatusCode)
			}
			// A token request for a server it was not granted fails, with
			// the error fields x/oauth2 reads.
			_, err = conf.Exchange(ctx, "no-such-code", oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", apiC))
			wantRetrieveError(t, h, err, 400, "invalid_target")
		}
	})
}
