package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

const regToken = "Zm9vYmFyYmF6cXV4MDEyMzQ1Njc4OWFiY2RlZmdoaWo="

func TestOnboardingConfig(t *testing.T) {
	c, err := parseConfig("serve", nil, envFunc(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Onboarding; o.Resources != nil || o.Registration != oauth.RegistrationOff || o.RegistrationToken != "" ||
		o.ClientMetadataDocuments || o.ClientMetadataAllowLoopback {
		t.Errorf("defaults %+v", o)
	}
	c, err = parseConfig("serve", nil, envFunc(map[string]string{
		"AUTHD_RESOURCES":                      " https://mcp.example.com/mcp , urn:example:api,, ",
		"AUTHD_REGISTRATION":                   "token",
		"AUTHD_REGISTRATION_TOKEN":             regToken,
		"AUTHD_CLIENT_METADATA_DOCUMENTS":      "true",
		"AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK": "true",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o := c.Onboarding
	if !slices.Equal(o.Resources, []string{"https://mcp.example.com/mcp", "urn:example:api"}) || o.Registration != oauth.RegistrationToken ||
		o.RegistrationToken != regToken || !o.ClientMetadataDocuments || !o.ClientMetadataAllowLoopback {
		t.Errorf("values %+v", o)
	}
	if c.onboardingWarning() == "" {
		t.Error("no warning with the loopback exception on")
	}
	c, err = parseConfig("serve", []string{"--registration", "open", "--resources", "https://a.example/x"}, envFunc(nil), io.Discard)
	if err != nil || c.Onboarding.Registration != oauth.RegistrationOpen || !slices.Equal(c.Onboarding.Resources, []string{"https://a.example/x"}) {
		t.Errorf("flags: %+v %v", c, err)
	}
	if c.onboardingWarning() != "" {
		t.Error("a warning without the loopback exception")
	}

	for _, tc := range []struct {
		env     map[string]string
		setting string
	}{
		{map[string]string{"AUTHD_RESOURCES": "https://a.example/x#frag"}, "AUTHD_RESOURCES"},
		{map[string]string{"AUTHD_RESOURCES": "https://a.example/x,/relative"}, "AUTHD_RESOURCES"},
		{map[string]string{"AUTHD_RESOURCES": "https://a.example/a b"}, "AUTHD_RESOURCES"},
		{map[string]string{"AUTHD_REGISTRATION": "closed"}, "AUTHD_REGISTRATION"},
		{map[string]string{"AUTHD_REGISTRATION": "token"}, "AUTHD_REGISTRATION_TOKEN"},
		{map[string]string{"AUTHD_REGISTRATION": "token", "AUTHD_REGISTRATION_TOKEN": "short"}, "AUTHD_REGISTRATION_TOKEN"},
		{map[string]string{"AUTHD_REGISTRATION": "token", "AUTHD_REGISTRATION_TOKEN": strings.Repeat("a", 31) + " b"}, "AUTHD_REGISTRATION_TOKEN"},
		{map[string]string{"AUTHD_REGISTRATION": "open", "AUTHD_REGISTRATION_TOKEN": regToken}, "AUTHD_REGISTRATION_TOKEN"},
		{map[string]string{"AUTHD_REGISTRATION_TOKEN": regToken}, "AUTHD_REGISTRATION_TOKEN"},
		{map[string]string{"AUTHD_CLIENT_METADATA_DOCUMENTS": "yes please"}, "AUTHD_CLIENT_METADATA_DOCUMENTS"},
		{map[string]string{"AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK": "true"}, "AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK"},
		{map[string]string{"AUTHD_CLIENT_METADATA_DOCUMENTS": "true", "AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK": "true",
			"AUTHD_ISSUER": "https://auth.example.com"}, "AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK"},
		{map[string]string{"AUTHD_RATE_LIMITS": "register=0/1h"}, "AUTHD_RATE_LIMITS"},
	} {
		_, err := parseConfig("serve", nil, envFunc(tc.env), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.setting) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v, want one line naming %s", tc.env, err, tc.setting)
		}
		if err != nil && strings.Contains(err.Error(), regToken) {
			t.Errorf("%v: the error shows the registration token: %v", tc.env, err)
		}
	}
	c, err = parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_RATE_LIMITS": "register=100/1h"}), io.Discard)
	if err != nil || c.RateLimits["register"].Limit != 100 {
		t.Errorf("register rate limit: %v", err)
	}
}

// TestClientCommandsOnboarding: client create takes resources; client
// list tells how each client was registered; client delete removes any.
func TestClientCommandsOnboarding(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	out, _, err := runCmd(t, clientCmd, db, "create", "--name", "API client", "--redirect-uri", "https://app.example.com/cb",
		"--resource", "https://api.example.com/v1", "--resource", "urn:example:api")
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal([]byte(out), &c)
	if res, _ := c["resources"].([]any); len(res) != 2 || res[0] != "https://api.example.com/v1" || c["registration"] != "operator" {
		t.Errorf("create: %s", out)
	}
	for _, bad := range []string{"https://api.example.com/v1#f", "v1", ""} {
		if _, _, err := runCmd(t, clientCmd, db, "create", "--name", "x", "--redirect-uri", "https://a.example/cb", "--resource", bad); err == nil ||
			!strings.Contains(err.Error(), "Resource") {
			t.Errorf("--resource %q: %v", bad, err)
		}
	}
	out, _, err = runCmd(t, clientCmd, db, "list")
	var list []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["registration"] != "operator" {
		t.Errorf("list: %s %v", out, err)
	}
	if out, _, _ := runCmd(t, clientCmd, db, "help"); !strings.Contains(out, "--resource") || !strings.Contains(out, "metadata_document") {
		t.Errorf("usage does not tell about resources and registrations:\n%s", out)
	}
}

// TestOnboardingEndToEnd: on real Redis and PostgreSQL, with the settings
// as an operator writes them, a client registers itself with the initial
// access token and another is known by its metadata document; both get
// tokens for the server-wide resource; `authd client list` tells the
// three kinds of client apart and `authd client delete` removes each.
func TestOnboardingEndToEnd(t *testing.T) {
	const mcp = "https://mcp.example.com/mcp"
	e := newE2E(t, map[string]string{
		"AUTHD_RESOURCES":                      mcp,
		"AUTHD_REGISTRATION":                   "token",
		"AUTHD_REGISTRATION_TOKEN":             regToken,
		"AUTHD_CLIENT_METADATA_DOCUMENTS":      "true",
		"AUTHD_CLIENT_METADATA_ALLOW_LOOPBACK": "true",
		"AUTHD_RATE_LIMITS":                    "register=3/1h",
	}, false)
	const ru = "http://localhost:45123/callback"

	// Self-registration, with the initial access token.
	regBody, _ := json.Marshal(map[string]any{"client_name": "CLI", "redirect_uris": []string{ru},
		"grant_types": []string{"authorization_code", "refresh_token"}, "token_endpoint_auth_method": "none"})
	resp, body := e.do("POST", "/register", regBody, map[string]string{"Content-Type": "application/json"})
	if resp.StatusCode != 401 || !strings.Contains(string(body), "invalid_token") {
		t.Errorf("registration without the token: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("POST", "/register", regBody, map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + regToken})
	var reg map[string]any
	if json.Unmarshal(body, &reg) != nil || resp.StatusCode != 201 || resp.Header.Get("RateLimit-Policy") != `"register";q=3;w=3600` {
		t.Fatalf("registration: %d %s", resp.StatusCode, body)
	}
	dynamicID := reg["client_id"].(string)

	// A metadata document on 127.0.0.1 (the loopback exception).
	var docID string
	docSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"client_id":%q,"client_name":"Doc Agent","redirect_uris":[%q],"grant_types":["authorization_code","refresh_token"],"token_endpoint_auth_method":"none"}`, docID, ru)
	}))
	t.Cleanup(docSrv.Close)
	docID = docSrv.URL + "/client.json"

	for _, id := range []string{dynamicID, docID} {
		verifier, challenge := pkcePair()
		q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {ru}, "state": {"s"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {mcp}}
		resp, body := e.signed("GET", "/authorize?"+q.Encode(), nil, nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: authorize: %d %s", id, resp.StatusCode, body)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		form := url.Values{"grant_type": {"authorization_code"}, "client_id": {id}, "code": {loc.Query().Get("code")},
			"redirect_uri": {ru}, "code_verifier": {verifier}, "resource": {mcp}}
		resp, body = e.do("POST", "/token", []byte(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if json.Unmarshal(body, &tok) != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: token: %d %s", id, resp.StatusCode, body)
		}
		// Introspected by a resource server: active, for the MCP server.
		rsID, rsSecret := e.client("--grant", "client_credentials")
		in := url.Values{"token": {tok.AccessToken}, "client_id": {rsID}, "client_secret": {rsSecret}}
		_, body = e.do("POST", "/introspect", []byte(in.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		if !bytes.Contains(body, []byte(`"active":true`)) || !bytes.Contains(body, []byte(`"aud":"`+mcp+`"`)) {
			t.Errorf("%s: introspection %s", id, body)
		}
		resp, _ = e.do("GET", "/userinfo", nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
		if resp.StatusCode != 401 {
			t.Errorf("%s: userinfo with a token for %s: %d", id, mcp, resp.StatusCode)
		}
	}

	// authd client list tells them apart.
	var out bytes.Buffer
	if err := runClient(t.Context(), e.a.db, []string{"list"}, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	json.Unmarshal(out.Bytes(), &list)
	kinds := map[string]any{}
	for _, c := range list {
		kinds[c["client_id"].(string)] = c["registration"]
	}
	if kinds[dynamicID] != "dynamic" || kinds[docID] != "metadata_document" {
		t.Errorf("client list: %s", out.String())
	}
	if n := slices.IndexFunc(list, func(c map[string]any) bool { return c["registration"] == "operator" }); n < 0 {
		t.Errorf("client list has no operator client: %s", out.String())
	}
	// authd client delete removes both.
	for _, id := range []string{dynamicID, docID} {
		out.Reset()
		if err := runClient(t.Context(), e.a.db, []string{"delete", id}, &out, io.Discard); err != nil || !strings.Contains(out.String(), `"deleted": true`) {
			t.Errorf("delete %s: %v %s", id, err, out.String())
		}
	}
}
