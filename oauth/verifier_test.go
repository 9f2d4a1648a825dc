package oauth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// The access-token verifier is tested on tokens the test signs itself,
// from a claims map, with the server's own current key read from the
// database: a token otherwise valid and signed by a trusted key, changed
// in exactly one claim, header field or the signature. Nothing here uses
// the production signer, so the tests hold whatever library signs and
// verifies tokens in the server.

// verifierLeeway is how far ahead of the server's clock iat and nbf may
// be: clocks of the nodes that sign and verify may disagree a little
// (RFC 7519 §4.1.5, §4.1.6). exp has none: a token is dead at exp.
const verifierLeeway = 60 // seconds

// verifierFixture is a server whose clock stands still at now, a wallet
// user it knows, a client that user's tokens name, a resource server that
// may introspect, and the keys: the server's current (signing) key and
// previous key, read from its database, and a key it does not trust.
type verifierFixture struct {
	h          *harness
	now        time.Time
	sub        string
	clientID   string
	rsID       string
	rsSecret   string
	current    testKey
	previous   testKey
	untrusted  testKey
	validToken string // the unmodified token
}

// testKey is an ES256 key and its kid (RFC 7638 thumbprint).
type testKey struct {
	kid  string
	priv *ecdsa.PrivateKey
}

func newVerifierFixture(t *testing.T) *verifierFixture {
	t.Helper()
	db := testenv.DB(t, store.SQLite)
	h := newHarness(t, db, nil)
	ctx := context.Background()
	f := &verifierFixture{h: h}

	rs, rsSecret := h.client(ClientRegistration{Grants: []string{GrantClientCredentials}})
	f.rsID, f.rsSecret = rs.ID, rsSecret
	signingKid := func() string {
		t.Helper()
		tr := h.token(url.Values{"grant_type": {"client_credentials"}}, rs.ID, rsSecret)
		tr.wantOK(t)
		return kidOf(tr.AccessToken)
	}

	// Two keys: the one the server made at start becomes the previous
	// one, still trusted.
	first := signingKid()
	rotateNow(t, db)
	if err := h.s.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	// The clock stands still from here, on a whole second: token times
	// are whole seconds.
	f.now = time.Now().Add(time.Second).Truncate(time.Second)
	h.clock.Set(f.now)

	f.current = signingKeyAt(t, db, 0, f.now)
	f.previous = signingKeyAt(t, db, 1, f.now)
	if f.previous.kid != first || f.current.kid == first {
		t.Fatalf("stored keys: current %s previous %s; the server started with %s", f.current.kid, f.previous.kid, first)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f.untrusted = testKey{kid: thumbprint(t, &priv.PublicKey), priv: priv}

	// The current key is the one the server signs with, and both keys
	// are published: the tests below sign with trusted keys.
	if got := signingKid(); got != f.current.kid {
		t.Fatalf("the server signs with %s; the database's current key is %s", got, f.current.kid)
	}
	resp, body := h.get("/.well-known/jwks.json", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %d %s", resp.StatusCode, body)
	}
	for _, k := range []testKey{f.current, f.previous} {
		if !strings.Contains(string(body), `"kid":"`+k.kid+`"`) {
			t.Fatalf("key %s is not published: %s", k.kid, body)
		}
	}

	// A wallet user with an identity, so /userinfo can answer 200.
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}, Scopes: []string{"profile"}})
	_, f.sub = h.walletTokens(c, secret, "profile")
	f.clientID = c.ID
	f.validToken = f.sign(t, f.current, f.header(f.current), f.claims())
	return f
}

// signingKeyAt reads the n-th newest ES256 key active at now from the
// database, opens it with the key-encryption key the test servers use,
// and checks that its kid is its thumbprint.
func signingKeyAt(t *testing.T, db *store.DB, n int, now time.Time) testKey {
	t.Helper()
	var kid, kekID, sealed string
	err := db.DB.QueryRowContext(context.Background(), `SELECT kid, kek_id, private_key FROM oauth_signing_keys
		WHERE alg = 'ES256' AND created_ms <= $1 ORDER BY created_ms DESC, kid DESC LIMIT 1 OFFSET $2`, now.UnixMilli(), n).Scan(&kid, &kekID, &sealed)
	if err != nil {
		t.Fatalf("signing key %d: %v", n, err)
	}
	raw, err := testKeyEncryption.Open(kid, kekID, sealed)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.ParsePKCS8PrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	priv, ok := pk.(*ecdsa.PrivateKey)
	if !ok {
		t.Fatalf("key %s is a %T", kid, pk)
	}
	if tp := thumbprint(t, &priv.PublicKey); tp != kid {
		t.Fatalf("key %s has thumbprint %s", kid, tp)
	}
	return testKey{kid: kid, priv: priv}
}

// thumbprint is the RFC 7638 thumbprint of an EC P-256 public key.
func thumbprint(t *testing.T, pub *ecdsa.PublicKey) string {
	t.Helper()
	b, err := pub.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	x, y := b64url(b[1:33]), b64url(b[33:])
	sum := sha256.Sum256([]byte(`{"crv":"P-256","kty":"EC","x":"` + x + `","y":"` + y + `"}`))
	return b64url(sum[:])
}

// header is a valid RFC 9068 JWS header for key.
func (f *verifierFixture) header(k testKey) map[string]any {
	return map[string]any{"alg": "ES256", "typ": "at+jwt", "kid": k.kid}
}

// claims are valid access-token claims at f.now.
func (f *verifierFixture) claims() map[string]any {
	now := f.now.Unix()
	return map[string]any{
		"iss":       f.h.issuer,
		"sub":       f.sub,
		"aud":       f.h.issuer,
		"client_id": f.clientID,
		"scope":     "profile",
		"iat":       now - 10,
		"exp":       now + 600,
		"jti":       NewFamily() + "." + RandomToken(8),
	}
}

// sign makes a compact JWS (RFC 7515 §7.1) of header and claims, signed
// ES256 with k (RFC 7518 §3.4: R || S, 32 bytes each).
func (f *verifierFixture) sign(t *testing.T, k testKey, header, claims map[string]any) string {
	t.Helper()
	input := jwsPart(t, header) + "." + jwsPart(t, claims)
	return input + "." + b64url(es256(t, k.priv, input))
}

func jwsPart(t *testing.T, v map[string]any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64url(b)
}

// es256 signs input: the 64-byte R || S.
func es256(t *testing.T, priv *ecdsa.PrivateKey, input string) []byte {
	t.Helper()
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, priv, h[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return sig
}

// verifierCase is a token changed from the valid one in one respect.
type verifierCase struct {
	name  string
	valid bool
	// token makes the token; most cases change a copy of the valid
	// header or claims and sign it with the current key.
	token func(t *testing.T, f *verifierFixture) string
}

// withClaim signs the valid token with claim set to v (deleted when v is
// deleteField).
func withClaim(claim string, v any) func(*testing.T, *verifierFixture) string {
	return func(t *testing.T, f *verifierFixture) string {
		c := f.claims()
		set(c, claim, v)
		return f.sign(t, f.current, f.header(f.current), c)
	}
}

// withClaimAt signs the valid token with a time claim at f.now + d seconds.
func withClaimAt(claim string, d int64) func(*testing.T, *verifierFixture) string {
	return func(t *testing.T, f *verifierFixture) string {
		c := f.claims()
		c[claim] = f.now.Unix() + d
		return f.sign(t, f.current, f.header(f.current), c)
	}
}

// withHeader signs the valid claims under a header with field set to v.
func withHeader(field string, v any) func(*testing.T, *verifierFixture) string {
	return func(t *testing.T, f *verifierFixture) string {
		h := f.header(f.current)
		set(h, field, v)
		return f.sign(t, f.current, h, f.claims())
	}
}

type deleted struct{}

// deleteField, as a value, removes the field.
var deleteField = deleted{}

func set(m map[string]any, k string, v any) {
	if v == deleteField {
		delete(m, k)
		return
	}
	m[k] = v
}

// withSignature replaces the valid token's signature with sig(input).
func withSignature(sig func(t *testing.T, f *verifierFixture, input string) string) func(*testing.T, *verifierFixture) string {
	return func(t *testing.T, f *verifierFixture) string {
		input := jwsPart(t, f.header(f.current)) + "." + jwsPart(t, f.claims())
		return input + "." + sig(t, f, input)
	}
}

func verifierCases() []verifierCase {
	const skew = verifierLeeway
	return []verifierCase{
		{"control: unmodified", true, func(t *testing.T, f *verifierFixture) string { return f.validToken }},

		// iss: exactly the issuer (RFC 9068 §4, RFC 8414 §2).
		{"iss another issuer", false, withClaim("iss", "https://other.example.com")},
		{"iss with a trailing slash", false, func(t *testing.T, f *verifierFixture) string {
			return withClaim("iss", f.h.issuer+"/")(t, f)
		}},
		{"iss in other case", false, func(t *testing.T, f *verifierFixture) string {
			return withClaim("iss", strings.ToUpper(f.h.issuer))(t, f)
		}},
		{"iss missing", false, withClaim("iss", deleteField)},
		{"iss not a string", false, func(t *testing.T, f *verifierFixture) string {
			return withClaim("iss", []string{f.h.issuer})(t, f)
		}},

		// aud: present (RFC 7519 §4.1.3: a string or an array), naming
		// the issuer for authd's own APIs; tokens for other resources
		// (RFC 8707) are in otherAudienceCases.
		{"aud missing", false, withClaim("aud", deleteField)},
		{"aud empty array", false, withClaim("aud", []string{})},
		{"aud array with the issuer", true, func(t *testing.T, f *verifierFixture) string {
			return withClaim("aud", []string{"https://api.example.com", f.h.issuer})(t, f)
		}},

		// exp: valid strictly before it (RFC 7519 §4.1.4), no leeway.
		{"exp one second ahead", true, withClaimAt("exp", 1)},
		{"exp now", false, withClaimAt("exp", 0)},
		{"exp one second ago", false, withClaimAt("exp", -1)},
		{"exp long ago", false, withClaimAt("exp", -86400)},
		{"exp missing", false, withClaim("exp", deleteField)},
		{"exp not a number", false, func(t *testing.T, f *verifierFixture) string {
			return withClaim("exp", "9999999999")(t, f)
		}},

		// nbf: not before it, with the leeway (RFC 7519 §4.1.5).
		{"nbf long ago", true, withClaimAt("nbf", -3600)},
		{"nbf now", true, withClaimAt("nbf", 0)},
		{"nbf just inside the leeway", true, withClaimAt("nbf", skew)},
		{"nbf just past the leeway", false, withClaimAt("nbf", skew+1)},
		{"nbf an hour ahead", false, withClaimAt("nbf", 3600)},

		// iat: not in the future beyond the leeway.
		{"iat now", true, withClaimAt("iat", 0)},
		{"iat just inside the leeway", true, withClaimAt("iat", skew)},
		{"iat just past the leeway", false, withClaimAt("iat", skew+1)},
		{"iat far in the future", false, withClaimAt("iat", 365*86400)},

		// The other claims the server relies on.
		{"sub missing", false, withClaim("sub", deleteField)},
		{"client_id missing", false, withClaim("client_id", deleteField)},
		{"jti malformed", false, withClaim("jti", "not-a-jti")},

		// typ: RFC 9068 §4, the media type at+jwt, case-insensitive,
		// with or without its application/ prefix (RFC 7515 §4.1.9).
		{"typ application/at+jwt", true, withHeader("typ", "application/at+jwt")},
		{"typ AT+JWT", true, withHeader("typ", "AT+JWT")},
		{"typ JWT", false, withHeader("typ", "JWT")},
		{"typ id-token-like", false, withHeader("typ", "JWT+at")},
		{"typ missing", false, withHeader("typ", deleteField)},

		// kid: selects a trusted key; the signature must be that key's.
		{"kid unknown", false, withHeader("kid", "no-such-kid")},
		{"kid missing", false, withHeader("kid", deleteField)},
		{"kid of the previous key, signed by the current", false, func(t *testing.T, f *verifierFixture) string {
			return f.sign(t, f.current, f.header(f.previous), f.claims())
		}},
		{"signed by the previous key, its kid", true, func(t *testing.T, f *verifierFixture) string {
			return f.sign(t, f.previous, f.header(f.previous), f.claims())
		}},
		{"signed by an untrusted key, the current kid", false, func(t *testing.T, f *verifierFixture) string {
			return f.sign(t, f.untrusted, f.header(f.current), f.claims())
		}},
		{"signed by an untrusted key, its own kid", false, func(t *testing.T, f *verifierFixture) string {
			return f.sign(t, f.untrusted, f.header(f.untrusted), f.claims())
		}},

		// alg: ES256 only, exactly (RFC 7515 §4.1.1: case-sensitive).
		{"alg ES384", false, withHeader("alg", "ES384")},
		{"alg es256", false, withHeader("alg", "es256")},
		{"alg HS256", false, withHeader("alg", "HS256")},
		{"alg RS256", false, withHeader("alg", "RS256")},
		{"alg none", false, withHeader("alg", "none")},
		{"alg missing", false, withHeader("alg", deleteField)},
		{"alg none without a signature", false, func(t *testing.T, f *verifierFixture) string {
			h := f.header(f.current)
			h["alg"] = "none"
			return jwsPart(t, h) + "." + jwsPart(t, f.claims()) + "."
		}},
		{"crit header", false, withHeader("crit", []string{"exp"})},

		// The signature covers every byte of header and payload.
		{"signature with one bit flipped", false, withSignature(func(t *testing.T, f *verifierFixture, input string) string {
			sig := es256(t, f.current.priv, input)
			sig[17] ^= 0x04
			return b64url(sig)
		})},
		{"signature of other claims", false, withSignature(func(t *testing.T, f *verifierFixture, input string) string {
			c := f.claims()
			c["sub"] = "1Someoneelse"
			return b64url(es256(t, f.current.priv, jwsPart(t, f.header(f.current))+"."+jwsPart(t, c)))
		})},
		{"signature R and S swapped", false, withSignature(func(t *testing.T, f *verifierFixture, input string) string {
			sig := es256(t, f.current.priv, input)
			return b64url(append(sig[32:], sig[:32]...))
		})},
		{"signature in DER form", false, withSignature(func(t *testing.T, f *verifierFixture, input string) string {
			h := sha256.Sum256([]byte(input))
			der, err := ecdsa.SignASN1(rand.Reader, f.current.priv, h[:])
			if err != nil {
				t.Fatal(err)
			}
			return b64url(der)
		})},
		{"signature truncated", false, withSignature(func(t *testing.T, f *verifierFixture, input string) string {
			return b64url(es256(t, f.current.priv, input)[:63])
		})},
		{"signature missing", false, withSignature(func(t *testing.T, f *verifierFixture, input string) string { return "" })},
		{"signature padded base64", false, withSignature(func(t *testing.T, f *verifierFixture, input string) string {
			return base64.URLEncoding.EncodeToString(es256(t, f.current.priv, input))
		})},
	}
}

// TestAccessTokenVerifier checks every claim and header field of an
// access token, and its signature, one at a time, where a resource
// consults the verifier: the function itself, AuthenticateBearer (the
// backup service's Bearer check), /userinfo and /introspect.
func TestAccessTokenVerifier(t *testing.T) {
	f := newVerifierFixture(t)
	ctx := context.Background()
	for _, tc := range verifierCases() {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t, f)

			_, err := f.h.s.VerifyAccessToken(ctx, tok)
			if tc.valid && err != nil {
				t.Errorf("verifyAccessToken: %v, want it valid", err)
			} else if !tc.valid && errors.CodeOf(err) != errors.InvalidToken {
				t.Errorf("verifyAccessToken: %v, want invalid_token", err)
			}

			req, err := http.NewRequest("PUT", "/backup", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			sub, err := f.h.s.AuthenticateBearer(req, ScopeProfile)
			if tc.valid && (err != nil || sub != f.sub) {
				t.Errorf("AuthenticateBearer: %q %v, want %s", sub, err, f.sub)
			} else if !tc.valid && (errors.CodeOf(err) != errors.InvalidToken || sub != "") {
				t.Errorf("AuthenticateBearer: %q %v, want invalid_token", sub, err)
			}

			resp, body := f.h.userinfo(tok)
			if tc.valid {
				var ui map[string]any
				if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &ui) != nil || ui["sub"] != f.sub {
					t.Errorf("/userinfo: %d %s, want 200 for %s", resp.StatusCode, body, f.sub)
				}
			} else {
				var e map[string]any
				if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(body, &e) != nil || e["error"] != "invalid_token" ||
					!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
					t.Errorf("/userinfo: %d %s (WWW-Authenticate %q), want 401 invalid_token",
						resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
				}
			}

			resp, body = f.h.postForm("/introspect", url.Values{"token": {tok}}, map[string]string{"Authorization": basicAuth(f.rsID, f.rsSecret)})
			var m map[string]any
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &m) != nil {
				t.Fatalf("/introspect: %d %s", resp.StatusCode, body)
			}
			if tc.valid && (m["active"] != true || m["sub"] != f.sub || m["iss"] != f.h.issuer || m["client_id"] != f.clientID) {
				t.Errorf("/introspect: %s, want it active for %s", body, f.sub)
			} else if !tc.valid && !maps.Equal(m, map[string]any{"active": false}) {
				t.Errorf("/introspect: %s, want {\"active\":false}", body)
			}
		})
	}
}

// otherAudienceCases are genuine access tokens for resources other than
// authd (RFC 8707): their audience does not name the issuer.
func otherAudienceCases() []verifierCase {
	return []verifierCase{
		{"aud another audience", false, withClaim("aud", "https://api.example.com")},
		{"aud array without the issuer", false, withClaim("aud", []string{"https://api.example.com", "https://b.example.com"})},
		{"aud the issuer with a trailing slash", false, func(t *testing.T, f *verifierFixture) string {
			return withClaim("aud", f.h.issuer+"/")(t, f)
		}},
	}
}

// TestAccessTokenOtherAudience: a genuine token for another resource is
// verified and reported active, with its aud, to the resource server that
// introspects it, and refused by authd's own APIs (AuthenticateBearer, the
// backup service's Bearer check, and /userinfo).
func TestAccessTokenOtherAudience(t *testing.T) {
	f := newVerifierFixture(t)
	ctx := context.Background()
	for _, tc := range otherAudienceCases() {
		t.Run(tc.name, func(t *testing.T) {
			tok := tc.token(t, f)
			c, err := f.h.s.VerifyAccessToken(ctx, tok)
			if err != nil || c.Sub != f.sub {
				t.Errorf("verifyAccessToken: %v, want the token verified", err)
			}
			req, err := http.NewRequest("PUT", "/backup", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			if sub, err := f.h.s.AuthenticateBearer(req, ScopeProfile); errors.CodeOf(err) != errors.InvalidToken || sub != "" {
				t.Errorf("AuthenticateBearer: %q %v, want invalid_token", sub, err)
			}
			resp, body := f.h.userinfo(tok)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_token"`) ||
				!strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
				t.Errorf("/userinfo: %d %s, want 401 invalid_token", resp.StatusCode, body)
			}
			resp, body = f.h.postForm("/introspect", url.Values{"token": {tok}}, map[string]string{"Authorization": basicAuth(f.rsID, f.rsSecret)})
			var m map[string]any
			if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &m) != nil || m["active"] != true || m["sub"] != f.sub || m["aud"] == nil {
				t.Errorf("/introspect: %d %s, want it active with its aud", resp.StatusCode, body)
			}
		})
	}
}

// TestAccessTokenLifetimeOnTheClock moves the server's clock over one
// token instead of making tokens around a still clock: the same bytes are
// refused before nbf - leeway, valid up to the second before exp, and
// refused from exp on, also once remembered as verified.
func TestAccessTokenLifetimeOnTheClock(t *testing.T) {
	f := newVerifierFixture(t)
	ctx := context.Background()
	c := f.claims()
	nbf, exp := f.now.Unix()+100, f.now.Unix()+400
	c["nbf"], c["iat"], c["exp"] = nbf, f.now.Unix(), exp
	tok := f.sign(t, f.current, f.header(f.current), c)
	for _, tc := range []struct {
		at    int64
		valid bool
	}{
		{nbf - verifierLeeway - 1, false},
		{nbf - verifierLeeway, true},
		{nbf, true},
		{exp - 1, true},
		{exp, false},
		{exp + 1, false},
		{exp - 1, true}, // the clock of another node may be behind
	} {
		f.h.clock.Set(time.Unix(tc.at, 0))
		_, err := f.h.s.VerifyAccessToken(ctx, tok)
		if tc.valid != (err == nil) {
			t.Errorf("at exp%+ds: %v, want valid=%v", tc.at-exp, err, tc.valid)
		}
		resp, body := f.h.userinfo(tok)
		if want := map[bool]int{true: 200, false: 401}[tc.valid]; resp.StatusCode != want {
			t.Errorf("/userinfo at exp%+ds: %d %s, want %d", tc.at-exp, resp.StatusCode, body, want)
		}
	}
}
