package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// White-box tests of the access-token verifier: header rules and the
// clock-dependent claims, on keys in memory.

// verifierServer is a Server that only verifies tokens: its issuer, an
// ES256 and an RS256 key, and a clock the test sets.
type verifierServer struct {
	s      *Server
	issuer string
	clock  *testClock
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *testClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func newVerifierServer(t *testing.T) *verifierServer {
	const issuer = "https://auth.example.com"
	c := &testClock{}
	s := &Server{issuer: issuer, now: c.Now, keys: staticKeyring(testSigningKey(t, AlgES256), testSigningKey(t, AlgRS256)),
		verified: newVerifiedTokens(16)}
	return &verifierServer{s: s, issuer: issuer, clock: c}
}

// TestAccessTokenHeaderChecks: the access-token verifier takes ES256 JWS
// with typ at+jwt only, from a key that signs access tokens.
func TestAccessTokenHeaderChecks(t *testing.T) {
	h := newVerifierServer(t)
	ctx := context.Background()
	ks := h.s.keys.keys(ctx)
	now := time.Now()
	claims := accessClaims{Iss: h.issuer, Sub: "1Someone", Aud: jwt.Audience{h.issuer}, ClientID: "c", Scope: "profile",
		Iat: now.Unix(), Exp: now.Add(time.Minute).Unix(), Jti: newFamily() + ".x"}
	sign := func(alg jose.SignatureAlgorithm, key any, kid string, opts *jose.SignerOptions) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, opts)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	at := func() *jose.SignerOptions { return (&jose.SignerOptions{}).WithType("at+jwt") }
	good := sign(jose.ES256, ks.current.priv, ks.current.kid, at())
	if _, err := h.s.verifyAccessToken(ctx, good); err != nil {
		t.Fatalf("well-formed token: %v", err)
	}
	for name, tok := range map[string]string{
		"typ JWT":              sign(jose.ES256, ks.current.priv, ks.current.kid, (&jose.SignerOptions{}).WithType("JWT")),
		"no typ":               sign(jose.ES256, ks.current.priv, ks.current.kid, nil),
		"crit":                 sign(jose.ES256, ks.current.priv, ks.current.kid, at().WithCritical("b64").WithBase64(true)),
		"RS256 by the RSA key": sign(jose.RS256, ks.currentRS256.priv, ks.currentRS256.kid, at()),
		"unknown kid":          sign(jose.ES256, ks.current.priv, "nope", at()),
	} {
		if _, err := h.s.verifyAccessToken(ctx, tok); errors.CodeOf(err) != errors.InvalidToken {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := h.s.verifyAccessToken(ctx, sign(jose.ES256, ks.current.priv, ks.current.kid, (&jose.SignerOptions{}).WithType("application/at+jwt"))); err != nil {
		t.Errorf("typ application/at+jwt (RFC 9068 §4): %v", err)
	}
}

// TestAccessTokenLifetime: exp, iat and nbf on both sides of their limits,
// checked on every use of a remembered token: invalid from exp itself
// (RFC 7519 §4.1.4), iat and nbf at most a minute ahead of this server.
func TestAccessTokenLifetime(t *testing.T) {
	h := newVerifierServer(t)
	ctx := context.Background()
	ks := h.s.keys.keys(ctx)
	base := time.Unix(time.Now().Unix(), 0)
	mint := func(iat, exp time.Time, nbf *jwt.NumericDate) string {
		c := accessClaims{Iss: h.issuer, Sub: "1Someone", Aud: jwt.Audience{h.issuer}, ClientID: "c",
			Iat: iat.Unix(), Exp: exp.Unix(), Nbf: nbf, Jti: newFamily() + ".x"}
		tok, err := ks.current.sign(&c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	defer h.clock.Set(time.Time{})
	for _, tc := range []struct {
		name     string
		iat, exp time.Time
		now      time.Time
		valid    bool
		nbf      *jwt.NumericDate
	}{
		{"a second before exp", base, base.Add(time.Minute), base.Add(59 * time.Second), true, nil},
		{"at exp", base, base.Add(time.Minute), base.Add(time.Minute), false, nil},
		{"half a second after exp", base, base.Add(time.Minute), base.Add(time.Minute + 500*time.Millisecond), false, nil},
		{"iat a minute ahead", base.Add(time.Minute), base.Add(time.Hour), base, true, nil},
		{"iat 61 s ahead", base.Add(61 * time.Second), base.Add(time.Hour), base, false, nil},
		{"nbf a minute ahead", base, base.Add(time.Hour), base, true, jwt.NewNumericDate(base.Add(time.Minute))},
		{"nbf 61 s ahead", base, base.Add(time.Hour), base, false, jwt.NewNumericDate(base.Add(61 * time.Second))},
	} {
		tok := mint(tc.iat, tc.exp, tc.nbf)
		for _, round := range []string{"first", "remembered"} {
			h.clock.Set(tc.now)
			if _, err := h.s.verifyAccessToken(ctx, tok); (err == nil) != tc.valid {
				t.Errorf("%s (%s use): %v, want valid=%v", tc.name, round, err, tc.valid)
			}
			if !tc.valid {
				// Remembered only after a success: verify once in its life.
				h.clock.Set(tc.iat)
				h.s.verifyAccessToken(ctx, tok)
			}
		}
	}
}

// TestParseSigningKeyChecksType: a stored key is used only with the
// algorithm its row names, and only if it is strong enough for it.
func TestParseSigningKeyChecksType(t *testing.T) {
	der := func(k any) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, tc := range []struct {
		name string
		alg  string
		key  crypto.Signer
		ok   bool
	}{
		{"ES256 P-256", AlgES256, p256, true},
		{"RS256 2048", AlgRS256, rsa2048, true},
		{"RS256 1024", AlgRS256, rsa1024, false},
		{"ES256 P-384", AlgES256, p384, false},
		{"ES256 row with an RSA key", AlgES256, rsa2048, false},
		{"RS256 row with an EC key", AlgRS256, p256, false},
		{"unknown alg", "HS256", p256, false},
	} {
		j, err := publicJWK(tc.alg, tc.key.Public())
		if err != nil {
			t.Fatal(err)
		}
		sk, err := parseSigningKey(j.KeyID, tc.alg, der(tc.key), 0)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if tc.ok && (sk.idToken == nil || (sk.access == nil) != (tc.alg == AlgRS256)) {
			t.Errorf("%s: signers %+v", tc.name, sk)
		}
	}
	// A row whose kid is not its key's thumbprint is refused.
	if _, err := parseSigningKey("another-kid", AlgES256, der(p256), 0); err == nil {
		t.Error("kid that is not the key's thumbprint accepted")
	}
}
