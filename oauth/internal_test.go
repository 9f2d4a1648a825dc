package oauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
)

// White-box tests of the parts below the wire. The tests of the server on
// the wire are in package oauth_test.

// FuzzAuthorizeParams feeds arbitrary query strings through authorize
// parameter parsing and validation: it never panics, an error is always an
// *errors.Error in the catalog, it redirects only to the registered URI,
// and a request it accepts satisfies every rule.
func FuzzAuthorizeParams(f *testing.F) {
	const id, ru = "client-1", "https://app.example.com/cb"
	c := &Client{ID: id, Name: "Fuzz", RedirectURIs: []string{ru, "http://127.0.0.1/cb"}, Grants: []string{GrantAuthorizationCode},
		Scopes: []string{"openid", "profile", "backup"}, Public: true, Resources: []string{"https://api.example/v1"}}
	lookup := func(ctx context.Context, got string) (*Client, error) {
		if got == id {
			return c, nil
		}
		return nil, nil
	}
	s := &Server{issuer: "https://auth.example.com", now: time.Now, cfg: Config{Resources: []string{"urn:example:api"}}}
	// ID Token hints verify against the one key of a keyring without a
	// database.
	sk := testSigningKey(f, AlgRS256)
	s.keys = staticKeyring(sk)
	hint, err := signJWT(sk.idToken, idTokenClaims{Iss: s.issuer, Sub: "1HintSubject", Aud: id, Exp: time.Now().Unix()})
	if err != nil {
		f.Fatal(err)
	}
	sum := sha256.Sum256([]byte(randomToken(32)))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	base := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {ru}, "code_challenge": {challenge},
		"code_challenge_method": {"S256"}, "state": {"x"}, "scope": {"profile"}}
	f.Add(base.Encode())
	f.Add(base.Encode() + "&state=y")
	f.Add("client_id=client-1&redirect_uri=http%3A%2F%2F127.0.0.1%3A999%2Fcb&response_type=code&code_challenge=" + challenge + "&code_challenge_method=S256")
	f.Add("client_id=client-1&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=token")
	f.Add("client_id=client-1&redirect_uri=https%3A%2F%2Fevil.com&response_type=code")
	f.Add(base.Encode() + "&resource=https%3A%2F%2Fapi.example%2Fv1&resource=urn%3Aexample%3Aapi")
	f.Add(base.Encode() + "&resource=https%3A%2F%2Fapi.example%2Fv1%23f")
	f.Add("client_id=%zz")
	f.Add("scope=%22&client_id=client-1&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb")
	oidc := func(extra string) string {
		v := url.Values{}
		for k, x := range base {
			v[k] = x
		}
		v.Set("scope", "openid profile")
		return v.Encode() + "&" + extra
	}
	f.Add(oidc("nonce=n&prompt=none&max_age=30&login_hint=1abc"))
	f.Add(oidc("prompt=none+login"))
	f.Add(oidc("prompt=login%20consent&max_age=-1"))
	f.Add(oidc("id_token_hint=" + hint))
	f.Add(oidc("id_token_hint=" + hint + "x"))
	f.Add(oidc("request=a.b.c"))
	f.Add("client_id=client-1&request_uri=urn%3Ax")
	f.Add(oidc("registration=%7B%7D&display=page&claims=%7B%7D"))
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return // answered as invalid_request before validation
		}
		p, err := s.validateAuthorize(context.Background(), v, lookup)
		if err != nil {
			var e *errors.Error
			if !errors.As(err, &e) {
				t.Fatalf("not an *errors.Error: %v", err)
			}
			if _, ok := errors.Lookup(e.Code); !ok {
				t.Fatalf("code %q not in the catalog", e.Code)
			}
			if e.Redirect != nil {
				if !matchRedirectURI(c.RedirectURIs, e.Redirect.URI) || e.Redirect.URI != v.Get("redirect_uri") || v.Get("client_id") != id {
					t.Fatalf("redirect to an unvalidated URI %q", e.Redirect.URI)
				}
				if e.Redirect.Issuer != s.issuer {
					t.Fatal("redirect without iss")
				}
			}
			return
		}
		if v.Get("response_type") != "code" || p.ClientID != id || !matchRedirectURI(c.RedirectURIs, p.RedirectURI) ||
			!validChallenge(p.CodeChallenge) || p.CodeChallengeMethod != "S256" {
			t.Fatalf("accepted an invalid request: %+v", p)
		}
		for _, k := range authorizeParams {
			if len(v[k]) > 1 {
				t.Fatalf("accepted repeated %s", k)
			}
		}
		sc, ok := parseScope(p.Scope)
		if !ok || !subset(sc, c.Scopes) {
			t.Fatalf("accepted scope %q", p.Scope)
		}
		if p.HasState != (v.Get("state") != "") || p.State != v.Get("state") {
			t.Fatalf("state %q vs %q", p.State, v.Get("state"))
		}
		for _, r := range p.Resources {
			if checkResource(r) != "" || !s.resourceAllowed(c, r) {
				t.Fatalf("accepted resource %q", r)
			}
		}
		if !subset(v["resource"], p.Resources) {
			t.Fatalf("resources %q dropped some of %q", p.Resources, v["resource"])
		}
		if v.Has("request") || v.Has("request_uri") || v.Has("registration") {
			t.Fatalf("accepted a request object or registration: %q", raw)
		}
		if !slices.Contains(sc, ScopeOpenID) {
			if p.Nonce != "" || p.Prompt != "" || p.HasMaxAge || p.HintSubject != "" || p.LoginHint != "" {
				t.Fatalf("read OpenID Connect parameters without openid: %+v", p)
			}
			return
		}
		for _, k := range oidcParams {
			if len(v[k]) > 1 {
				t.Fatalf("accepted repeated %s", k)
			}
		}
		prompts := strings.Fields(p.Prompt)
		if slices.Contains(prompts, PromptNone) && len(prompts) > 1 || len(p.Nonce) > maxNonceLen || p.MaxAge < 0 ||
			p.HintSubject != "" && p.HintSubject != "1HintSubject" {
			t.Fatalf("accepted OpenID Connect parameters %+v", p)
		}
	})
}

// testSigningKey makes a signing key of alg, ready to sign, as the
// keyring loads one.
func testSigningKey(t testing.TB, alg string) *signingKey {
	priv, err := generateKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	j, err := publicJWK(alg, priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(priv)
	sk, err := parseSigningKey(j.KeyID, alg, der, time.Now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// staticKeyring is a keyring of keys (the first of each algorithm signs)
// that never reloads: it has no database.
func staticKeyring(keys ...*signingKey) *keyring {
	ks := &keySet{byKid: map[string]*signingKey{}}
	for _, sk := range keys {
		ks.byKid[sk.kid] = sk
		switch {
		case sk.alg == AlgES256 && ks.current == nil:
			ks.current = sk
		case sk.alg == AlgRS256 && ks.currentRS256 == nil:
			ks.currentRS256 = sk
		}
	}
	k := &keyring{log: slog.New(slog.DiscardHandler), now: time.Now}
	k.set.Store(ks)
	k.loadedAt.Store(time.Now().Add(time.Hour).UnixNano())
	k.lastForced.Store(time.Now().Add(time.Hour).UnixNano())
	return k
}

// TestSuccessRedirectKeepsQuery: the registered redirect_uri's own query
// reaches the client byte for byte (RFC 6749 §3.1.2), ours after it, and
// an empty state is echoed.
func TestSuccessRedirectKeepsQuery(t *testing.T) {
	for _, tc := range []struct{ registered, want string }{
		{"https://app.example.com/cb?z=1&a=b%20c", "https://app.example.com/cb?z=1&a=b%20c&code=C&state=&iss=I"},
		{"https://app.example.com/cb?code=old&x;y=1", "https://app.example.com/cb?x;y=1&code=C&state=&iss=I"},
		{"https://app.example.com/cb", "https://app.example.com/cb?code=C&state=&iss=I"},
		{"com.example.app:/oauth?k", "com.example.app:/oauth?k&code=C&state=&iss=I"},
	} {
		got, err := appendQuery(tc.registered, [][2]string{{"code", "C"}, {"state", ""}, {"iss", "I"}})
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.registered, got, err, tc.want)
		}
	}
	// No state sent: a registered one does not stand in for it.
	got, _ := appendQuery("https://app.example.com/cb?state=fixed&error=x&a=1", [][2]string{{"code", "C"}, {"iss", "I"}})
	if got != "https://app.example.com/cb?a=1&code=C&iss=I" {
		t.Errorf("registered state and error kept: %q", got)
	}
}

// TestVerifiedTokensBounded: the verified-token cache keeps at most its
// size, evicting the oldest.
func TestVerifiedTokensBounded(t *testing.T) {
	c := newVerifiedTokens(2)
	for i := byte(0); i < 5; i++ {
		c.add([32]byte{i}, verifiedToken{kid: string('a' + i)})
	}
	if len(c.m) != 2 {
		t.Fatalf("holds %d, want 2", len(c.m))
	}
	if _, ok := c.get([32]byte{4}); !ok {
		t.Fatal("newest entry evicted")
	}
	if _, ok := c.get([32]byte{0}); ok {
		t.Fatal("oldest entry kept")
	}
}

func TestNewKeyEncryption(t *testing.T) {
	k := randomKEK()
	for _, tc := range []struct {
		name string
		keys [][]byte
	}{
		{"none", nil},
		{"short", [][]byte{k[:16]}},
		{"long", [][]byte{append(bytes.Clone(k), 0)}},
		{"repeated", [][]byte{k, randomKEK(), k}},
	} {
		if _, err := NewKeyEncryption(tc.keys...); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	ke, err := NewKeyEncryption(k, randomKEK())
	if err != nil {
		t.Fatal(err)
	}
	if ids := ke.IDs(); len(ids) != 2 || ids[0] != ke.ID() || len(ke.ID()) != 16 || ids[0] == ids[1] {
		t.Errorf("ids %v", ids)
	}
	// Two sealings of one key differ (fresh nonces) and both open.
	id1, a, _ := ke.seal("kid", []byte("der"))
	id2, b, _ := ke.seal("kid", []byte("der"))
	if a == b || id1 != id2 {
		t.Error("sealing is deterministic")
	}
	for _, s := range []string{a, b} {
		if der, err := ke.open("kid", id1, s); err != nil || string(der) != "der" {
			t.Errorf("open: %q %v", der, err)
		}
	}
}

func randomKEK() []byte {
	k := make([]byte, KEKSize)
	rand.Read(k)
	return k
}

// TestCrossSite: the rule every form of authd's pages is posted under.
// Fetch metadata, which browsers alone set, decides; only without it does
// Origin; a browser's own form posted from a page whose referrer policy
// hides the origin ("Origin: null") passes on its metadata.
func TestCrossSite(t *testing.T) {
	s := &Server{}
	s.issuerURL, _ = url.Parse("https://auth.example.com")
	for _, tc := range []struct {
		name    string
		site    []string
		origin  []string
		foreign bool
	}{
		{name: "no headers"},
		{name: "same-origin", site: []string{"same-origin"}, origin: []string{"https://auth.example.com"}},
		{name: "same-origin, Origin null", site: []string{"same-origin"}, origin: []string{"null"}},
		{name: "same-origin, no Origin", site: []string{"same-origin"}},
		{name: "same-origin with another Origin", site: []string{"same-origin"}, origin: []string{"https://evil.example"}, foreign: true},
		{name: "typed by the person", site: []string{"none"}},
		{name: "same-site", site: []string{"same-site"}, origin: []string{"https://app.example.com"}, foreign: true},
		{name: "same-site, Origin null", site: []string{"same-site"}, origin: []string{"null"}, foreign: true},
		{name: "cross-site", site: []string{"cross-site"}, foreign: true},
		{name: "cross-site with the issuer's Origin", site: []string{"cross-site"}, origin: []string{"https://auth.example.com"}, foreign: true},
		{name: "unknown metadata", site: []string{"nearby"}, foreign: true},
		{name: "two metadata headers", site: []string{"same-origin", "cross-site"}, foreign: true},
		{name: "Origin alone", origin: []string{"https://auth.example.com"}},
		{name: "Origin with the default port", origin: []string{"https://auth.example.com:443"}},
		{name: "Origin null alone", origin: []string{"null"}, foreign: true},
		{name: "another Origin", origin: []string{"https://evil.example"}, foreign: true},
		{name: "another port", origin: []string{"https://auth.example.com:8443"}, foreign: true},
		{name: "http", origin: []string{"http://auth.example.com"}, foreign: true},
		{name: "two Origins", origin: []string{"https://auth.example.com", "https://evil.example"}, foreign: true},
	} {
		r := httptest.NewRequest("POST", "https://auth.example.com/authorize/consent", nil)
		r.Header["Sec-Fetch-Site"] = tc.site
		r.Header["Origin"] = tc.origin
		if got := s.crossSite(r); (got != "") != tc.foreign {
			t.Errorf("%s: crossSite = %q, want foreign %v", tc.name, got, tc.foreign)
		}
	}
}
