package main

// OpenID Connect end to end: github.com/coreos/go-oidc/v3 is the relying
// party (discovery from the issuer URL alone, ID Token verification with
// nonce, at_hash and auth_time against max_age, userinfo), next to
// golang.org/x/oauth2, against authd as main wires it on Redis and
// PostgreSQL.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd-dev/authd/sigauth"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// rp is a relying party of an authd deployment of one or more nodes that
// share one database and Redis under one issuer, as behind a load
// balancer: its HTTP client connects to whichever node is current.
type rp struct {
	*e2e
	nodes   []string // listener addresses; nodes[0] is e's
	current atomic.Int32
	hc      *http.Client // does not follow redirects
}

func newRP(t *testing.T) *rp {
	r := &rp{e2e: newE2E(t, nil, false)}
	r.nodes = []string{r.srv.Listener.Addr().String()}
	d := sourceDialer()
	tr := sourceTransport()
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, r.nodes[r.current.Load()])
	}
	r.hc = &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return r
}

// addNode starts another authd on the same database, Redis and issuer,
// loading the keys as they are now, and makes it the current node.
func (r *rp) addNode(t *testing.T) {
	t.Helper()
	cfg := *r.a.cfg
	a, err := newApp(context.Background(), &cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	srv := httptest.NewServer(a.handler())
	t.Cleanup(srv.Close)
	r.nodes = append(r.nodes, srv.Listener.Addr().String())
	r.current.Store(int32(len(r.nodes) - 1))
	r.hc.CloseIdleConnections() // kept-alive connections lead to the old node
}

// ctx makes go-oidc and x/oauth2 use the relying party's client.
func (r *rp) ctx() context.Context {
	return oidc.ClientContext(context.WithValue(context.Background(), oauth2.HTTPClient, r.hc), r.hc)
}

// signIn has the wallet sign the authorization request at authURL and
// returns the redirect's query.
func (r *rp) signIn(t *testing.T, authURL string) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := sigauth.Token(r.wif, sigauth.TokenOptions{RequestPath: u.RequestURI()})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", authURL, nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := r.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("signed authorize: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	return loc.Query()
}

// login runs a whole OpenID Connect sign-in of the wallet for conf and
// returns the token response, after checking the ID Token with verifier
// as a relying party does: signature, iss, aud, exp, nonce, at_hash, and
// auth_time no older than maxAge.
func (r *rp) login(t *testing.T, conf *oauth2.Config, verifier *oidc.IDTokenVerifier, maxAge time.Duration) (*oauth2.Token, *oidc.IDToken) {
	t.Helper()
	state, nonce, pkce := oauth2.GenerateVerifier()[:16], oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	started := time.Now()
	q := r.signIn(t, conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce),
		oauth2.SetAuthURLParam("max_age", "300")))
	if q.Get("state") != state || q.Get("iss") != r.issuer || q.Get("code") == "" {
		t.Fatalf("authorization response %v", q)
	}
	ctx := r.ctx()
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pkce))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatalf("token response without id_token: %+v", tok)
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		t.Fatalf("go-oidc rejects the ID Token: %v", err)
	}
	if idt.Nonce != nonce || idt.Subject != r.addr || idt.Issuer != r.issuer {
		t.Fatalf("ID Token nonce %q sub %q iss %q", idt.Nonce, idt.Subject, idt.Issuer)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil || idt.AccessTokenHash == "" {
		t.Fatalf("at_hash %q: %v", idt.AccessTokenHash, err)
	}
	var c struct {
		AuthTime int64    `json:"auth_time"`
		AMR      []string `json:"amr"`
		AZP      string   `json:"azp"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	// OpenID Connect Core 1.0 §3.1.2.1: with max_age the RP checks
	// auth_time, and must get a fresh sign-in when it is too old.
	if at := time.Unix(c.AuthTime, 0); time.Since(at) > maxAge || at.Before(started.Truncate(time.Second)) {
		t.Errorf("auth_time %v, sign-in started %v, max_age %v", at, started, maxAge)
	}
	if len(c.AMR) != 1 || c.AMR[0] != "swk" || c.AZP != conf.ClientID {
		t.Errorf("amr %v azp %q", c.AMR, c.AZP)
	}
	return tok, idt
}

// TestOIDCRelyingParty: go-oidc discovers authd from its issuer URL
// alone, verifies RS256 and ES256 ID Tokens (nonce, at_hash, auth_time
// with max_age), reads /userinfo, and verifies the ID Token of a
// refresh.
func TestOIDCRelyingParty(t *testing.T) {
	r := newRP(t)
	ctx := r.ctx()
	provider, err := oidc.NewProvider(ctx, r.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil || strings.Join(meta.Algs, " ") != "RS256 ES256" {
		t.Fatalf("id_token_signing_alg_values_supported %v %v", meta.Algs, err)
	}
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			args := []string{"--redirect-uri", "http://127.0.0.1/cb", "--scope", "openid profile email offline_access"}
			if alg == "ES256" {
				args = append(args, "--id-token-alg", "ES256")
			}
			id, secret := r.client(args...)
			conf := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: "http://127.0.0.1/cb",
				Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess}}
			// A relying party that takes only this client's algorithm,
			// as openid-client does with id_token_signed_response_alg.
			verifier := provider.Verifier(&oidc.Config{ClientID: id, SupportedSigningAlgs: []string{alg}})
			tok, idt := r.login(t, conf, verifier, 5*time.Minute)

			// Another client's verifier refuses it (aud).
			if _, err := provider.Verifier(&oidc.Config{ClientID: "someone-else"}).Verify(ctx, tok.Extra("id_token").(string)); err == nil {
				t.Error("ID Token accepted for another audience")
			}

			ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatal(err)
			}
			var claims map[string]any
			ui.Claims(&claims)
			if ui.Subject != idt.Subject || claims["preferred_username"] != r.addr || claims["address"] != r.addr {
				t.Errorf("userinfo %v", claims)
			}

			// The refresh: a new ID Token of the same user and sign-in.
			expired := *tok
			expired.Expiry = time.Now().Add(-time.Minute)
			fresh, err := conf.TokenSource(ctx, &expired).Token()
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := fresh.Extra("id_token").(string)
			ridt, err := verifier.Verify(ctx, raw)
			if err != nil {
				t.Fatalf("refresh ID Token: %v", err)
			}
			var a, b struct {
				AuthTime int64 `json:"auth_time"`
			}
			idt.Claims(&a)
			ridt.Claims(&b)
			if ridt.Subject != idt.Subject || a.AuthTime != b.AuthTime || ridt.Nonce != "" || ridt.VerifyAccessToken(fresh.AccessToken) != nil {
				t.Errorf("refresh ID Token sub %q auth_time %d (was %d) nonce %q", ridt.Subject, b.AuthTime, a.AuthTime, ridt.Nonce)
			}
		})
	}
}

// TestOIDCKeyRotation: RS256 keys rotate while ID Tokens are live, across
// nodes that load keys at different times. A routine rotation is in the
// JWKS before any node signs with it; after an immediate rotation the
// ID Tokens of the previous key still verify.
func TestOIDCKeyRotation(t *testing.T) {
	r := newRP(t)
	ctx := r.ctx()
	provider, err := oidc.NewProvider(ctx, r.issuer)
	if err != nil {
		t.Fatal(err)
	}
	id, secret := r.client("--redirect-uri", "http://127.0.0.1/cb", "--scope", "openid")
	conf := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: "http://127.0.0.1/cb",
		Endpoint: provider.Endpoint(), Scopes: []string{oidc.ScopeOpenID}}
	verifier := provider.Verifier(&oidc.Config{ClientID: id})
	first, _ := r.login(t, conf, verifier, time.Minute)
	firstRaw := first.Extra("id_token").(string)
	kid := func(raw string) string { return kidOfJWT(t, raw) }
	jwks := func() map[string]string { // kid -> alg
		resp, err := r.hc.Get(r.issuer + "/.well-known/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct{ Keys []struct{ Kid, Alg string } }
		json.NewDecoder(resp.Body).Decode(&set)
		out := map[string]string{}
		for _, k := range set.Keys {
			out[k.Kid] = k.Alg
		}
		return out
	}
	rotate := func(args ...string) string {
		t.Helper()
		var out strings.Builder
		env := envFunc(map[string]string{keyFileEnv: r.a.cfg.KeyFile.path})
		if err := runKeys(context.Background(), r.a.db, append([]string{"rotate", "--alg", "RS256"}, args...), env, &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		var made []struct{ KID string }
		if err := json.Unmarshal([]byte(out.String()), &made); err != nil || len(made) != 1 {
			t.Fatalf("rotate: %s %v", out.String(), err)
		}
		return made[0].KID
	}

	// A routine rotation: a node that loads it publishes it, and keeps
	// signing with the current key.
	next := rotate()
	r.addNode(t)
	if ks := jwks(); ks[next] != "RS256" || ks[kid(firstRaw)] != "RS256" {
		t.Fatalf("JWKS %v lacks the next key %s or the current %s", ks, next, kid(firstRaw))
	}
	second, _ := r.login(t, conf, verifier, time.Minute)
	if k := kid(second.Extra("id_token").(string)); k != kid(firstRaw) {
		t.Fatalf("signed by %s before its activation", k)
	}

	// An immediate rotation: the next node signs with the new key, and
	// the relying party, meeting an unknown kid, fetches the JWKS again.
	now := rotate("--now")
	r.addNode(t)
	third, _ := r.login(t, conf, verifier, time.Minute)
	if k := kid(third.Extra("id_token").(string)); k != now {
		t.Fatalf("signed by %s, want the new key %s", k, now)
	}
	// The first ID Token, of the previous key, still verifies against
	// the JWKS of the node that signs with the new key.
	if _, err := provider.Verifier(&oidc.Config{ClientID: id}).Verify(ctx, firstRaw); err != nil {
		t.Errorf("ID Token of the previous key: %v", err)
	}
	if ks := jwks(); ks[kid(firstRaw)] != "RS256" || ks[now] != "RS256" || ks[next] != "RS256" {
		t.Errorf("JWKS %v", ks)
	}
}

func kidOfJWT(t *testing.T, raw string) string {
	t.Helper()
	h, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct{ Kid string }
	json.Unmarshal(b, &hdr)
	return hdr.Kid
}

// TestOIDCErrorsOnTheWire: the OpenID Connect errors authd gives, through
// the whole server: redirected with state and iss once the client and
// redirect URI are valid, 400 when they cannot be (a request object may
// carry its own redirect_uri), each documented at its error_uri.
func TestOIDCErrorsOnTheWire(t *testing.T) {
	e := newE2E(t, nil, false)
	id, _ := e.client("--redirect-uri", "https://rp.example.com/cb", "--scope", "openid profile")
	for _, tc := range []struct {
		code  string
		extra url.Values
	}{
		{"login_required", url.Values{"prompt": {"none"}}},
		{"request_not_supported", url.Values{"request": {"eyJhbGciOiJub25lIn0.e30."}}},
		{"request_uri_not_supported", url.Values{"request_uri": {"urn:ietf:params:oauth:request_uri:abc"}}},
		{"registration_not_supported", url.Values{"registration": {"{}"}}},
	} {
		t.Run(tc.code, func(t *testing.T) {
			q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"https://rp.example.com/cb"},
				"scope": {"openid"}, "state": {"a b&c"}, "nonce": {"n"}}
			for k, v := range tc.extra {
				q[k] = v
			}
			resp, body := e.do("GET", "/authorize?"+q.Encode(), nil, map[string]string{"Accept": "text/html"})
			loc, _ := url.Parse(resp.Header.Get("Location"))
			lq := loc.Query()
			if resp.StatusCode != http.StatusFound || loc.Host != "rp.example.com" || lq.Get("error") != tc.code ||
				lq.Get("state") != "a b&c" || lq.Get("iss") != e.issuer || lq.Get("error_description") == "" {
				t.Fatalf("redirect: %d %s %s", resp.StatusCode, loc, body)
			}
			e.checkErrorURI(lq.Get("error_uri"), tc.code)
			if tc.code == "login_required" {
				return // needs a valid redirect_uri to be an error at all
			}
			q.Del("redirect_uri")
			resp, body = e.do("GET", "/authorize?"+q.Encode(), nil, map[string]string{"Accept": "application/json"})
			var eb map[string]any
			json.Unmarshal(body, &eb)
			if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || eb["error"] != tc.code {
				t.Fatalf("direct: %d %s", resp.StatusCode, body)
			}
			e.checkErrorURI(eb["error_uri"].(string), tc.code)
		})
	}
}
