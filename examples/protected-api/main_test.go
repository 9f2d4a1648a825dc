package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/client"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/authdtest"
)

// TestProtectedAPI runs the API against the real authd: a wallet user's
// token with scope hello opens /hello, one without it is refused with
// insufficient_scope, no token with the challenge that leads a client to
// the metadata, and the metadata to authd.
func TestProtectedAPI(t *testing.T) {
	s := authdtest.Start(t)
	wif, addr, err := authtoken.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	withHello := s.WalletToken(t, wif, "profile hello")
	without := s.WalletToken(t, wif, "profile")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	apiAddr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	// authd's tokens name its issuer as their audience.
	go func() {
		done <- run(ctx, []string{"-issuer", s.Issuer, "-audience", s.Issuer, "-addr", apiAddr}, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	api := "http://" + apiAddr
	get := func(path, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", api+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				return resp
			}
			if time.Now().After(deadline) {
				t.Fatal(err)
			}
		}
	}

	resp := get("/hello", withHello.AccessToken)
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 200 || body["hello"] != addr {
		t.Fatalf("with scope hello: %d %v", resp.StatusCode, body)
	}

	err = client.ParseError(get("/hello", without.AccessToken))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != errors.InsufficientScope || ce.Scope != Scope || ce.URI != s.Issuer+"/docs/errors#insufficient_scope" {
		t.Fatalf("without scope hello: %v", err)
	}

	// No token: the challenge names the metadata, the metadata names authd.
	resp = get("/hello", "")
	resp.Body.Close()
	chs := client.ParseChallenges(resp.Header.Values("WWW-Authenticate"))
	if resp.StatusCode != 401 || len(chs) != 1 || chs[0].Params["resource_metadata"] != api+"/.well-known/oauth-protected-resource" {
		t.Fatalf("no token: %d %+v", resp.StatusCode, chs)
	}
	resp = get(strings.TrimPrefix(chs[0].Params["resource_metadata"], api), "")
	var md struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	json.NewDecoder(resp.Body).Decode(&md)
	resp.Body.Close()
	if resp.StatusCode != 200 || md.Resource != api || len(md.AuthorizationServers) != 1 || md.AuthorizationServers[0] != s.Issuer || md.ScopesSupported[0] != Scope {
		t.Fatalf("metadata: %d %+v", resp.StatusCode, md)
	}
	// ...whose own metadata leads the client on.
	if m, err := client.Discover(context.Background(), md.AuthorizationServers[0], nil); err != nil || m.TokenEndpoint != s.Issuer+"/token" {
		t.Fatalf("discovery from the resource metadata: %+v, %v", m, err)
	}
}

// TestProtectedAPIWrongIssuer: a wrong -issuer stops the API at start.
func TestProtectedAPIWrongIssuer(t *testing.T) {
	s := authdtest.Start(t)
	wrong := strings.Replace(s.Issuer, "127.0.0.1", "localhost", 1)
	err := run(context.Background(), []string{"-issuer", wrong, "-addr", "127.0.0.1:0"}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "names issuer") {
		t.Fatalf("run: %v", err)
	}
}
