package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authd-dev/authd/client"
	"github.com/authd-dev/authd/errors"
	"golang.org/x/oauth2"
)

func TestMetadataURL(t *testing.T) {
	for _, tc := range []struct{ issuer, want string }{
		{"https://auth.example.com", "https://auth.example.com/.well-known/oauth-authorization-server"},
		{"https://auth.example.com/", "https://auth.example.com/.well-known/oauth-authorization-server"},
		{"https://auth.example.com/tenant/a", "https://auth.example.com/.well-known/oauth-authorization-server/tenant/a"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080/.well-known/oauth-authorization-server"},
		{"ftp://x", ""},
		{"https://auth.example.com?x=1", ""},
		{"https://auth.example.com#f", ""},
		{"https://user@auth.example.com", ""},
		{"/relative", ""},
	} {
		got, err := client.MetadataURL(tc.issuer)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("MetadataURL(%q) = %q, %v; want %q", tc.issuer, got, err, tc.want)
		}
	}
}

// metadataServer serves doc (with "{issuer}" replaced by the server's
// URL plus issuerPath) at path.
func metadataServer(t *testing.T, path, issuerPath string, doc map[string]any) (*httptest.Server, string) {
	t.Helper()
	var base string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != path {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(404)
			w.Write([]byte(`{"error":"not_found","error_description":"No such page"}`))
			return
		}
		b, _ := json.Marshal(doc)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(strings.ReplaceAll(string(b), "{issuer}", base+issuerPath)))
	}))
	base = "http://" + srv.Listener.Addr().String() // before Start: the handler reads it
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, srv.URL + issuerPath
}

func authdDoc() map[string]any {
	return map[string]any{
		"issuer":                                "{issuer}",
		"authorization_endpoint":                "{issuer}/authorize",
		"token_endpoint":                        "{issuer}/token",
		"jwks_uri":                              "{issuer}/.well-known/jwks.json",
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post", "none"},
		"scopes_supported":                      []string{"profile", "backup"},
		"authorization_response_iss_parameter_supported": true,
	}
}

func TestDiscover(t *testing.T) {
	ctx := context.Background()
	t.Run("authd", func(t *testing.T) {
		_, issuer := metadataServer(t, "/.well-known/oauth-authorization-server", "", authdDoc())
		m, err := client.Discover(ctx, issuer, nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.TokenEndpoint != issuer+"/token" || m.JWKSURI != issuer+"/.well-known/jwks.json" || !m.AuthorizationResponseISSParameterSupported {
			t.Fatalf("%+v", m)
		}
		conf := m.OAuth2Config("cid", "secret", "http://127.0.0.1/cb", "profile")
		want := &oauth2.Config{ClientID: "cid", ClientSecret: "secret", RedirectURL: "http://127.0.0.1/cb", Scopes: []string{"profile"},
			Endpoint: oauth2.Endpoint{AuthURL: issuer + "/authorize", TokenURL: issuer + "/token", AuthStyle: oauth2.AuthStyleInHeader}}
		gb, _ := json.Marshal(conf)
		wb, _ := json.Marshal(want)
		if string(gb) != string(wb) {
			t.Errorf("config %s\nwant %s", gb, wb)
		}
		if s := m.OAuth2Config("pub", "", "").Endpoint.AuthStyle; s != oauth2.AuthStyleInParams {
			t.Errorf("public client auth style %v", s)
		}
	})
	t.Run("issuer with a path, RFC 8414 location", func(t *testing.T) {
		_, issuer := metadataServer(t, "/.well-known/oauth-authorization-server/t1", "/t1", authdDoc())
		if _, err := client.Discover(ctx, issuer, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("issuer with a path, appended location", func(t *testing.T) {
		_, issuer := metadataServer(t, "/t1/.well-known/oauth-authorization-server", "/t1", authdDoc())
		if _, err := client.Discover(ctx, issuer, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("another issuer", func(t *testing.T) {
		doc := authdDoc()
		doc["issuer"] = "https://evil.example"
		_, issuer := metadataServer(t, "/.well-known/oauth-authorization-server", "", doc)
		if _, err := client.Discover(ctx, issuer, nil); !errors.Is(err, client.ErrIssuerMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("trailing slash is another issuer", func(t *testing.T) {
		_, issuer := metadataServer(t, "/.well-known/oauth-authorization-server", "", authdDoc())
		if _, err := client.Discover(ctx, issuer+"/", nil); !errors.Is(err, client.ErrIssuerMismatch) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("not found", func(t *testing.T) {
		_, issuer := metadataServer(t, "/elsewhere", "", authdDoc())
		_, err := client.Discover(ctx, issuer, nil)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 404 || ce.Code != errors.NotFound {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("no endpoints", func(t *testing.T) {
		_, issuer := metadataServer(t, "/.well-known/oauth-authorization-server", "", map[string]any{"issuer": "{issuer}"})
		if _, err := client.Discover(ctx, issuer, nil); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("not JSON", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>")) }))
		defer srv.Close()
		if _, err := client.Discover(ctx, srv.URL, nil); err == nil {
			t.Fatal("no error")
		}
	})
	t.Run("too large", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"issuer":"` + strings.Repeat("a", 300<<10) + `"}`))
		}))
		defer srv.Close()
		if _, err := client.Discover(ctx, srv.URL, nil); err == nil || !strings.Contains(err.Error(), "larger") {
			t.Fatalf("err = %v", err)
		}
	})
}
