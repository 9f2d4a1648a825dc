package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/go-oauth2/oauth2/v4/models"
)

// BenchmarkIDToken: signing an ID Token (claims, at_hash, JWS through
// go-jose), against the bare signature of one SHA-256 digest with the same
// key in the same run. Run with -bench IDToken -count 10 and compare with
// benchstat: the ratio is what authd adds to the key's own cost.
func BenchmarkIDToken(b *testing.B) {
	keys := map[string]*signingKey{AlgRS256: testSigningKey(b, AlgRS256), AlgES256: testSigningKey(b, AlgES256)}
	s := &Server{issuer: "https://auth.example.com", now: time.Now, cfg: Config{IDTokenTTL: DefaultIDTokenTTL},
		keys: staticKeyring(keys[AlgRS256], keys[AlgES256])}
	ti := models.NewToken()
	ti.SetUserID("1BitcoinEaterAddressDontSendf59kuE")
	ti.SetScope("openid profile")
	ti.SetAccess("eyJhbGciOiJFUzI1NiIsImtpZCI6IngiLCJ0eXAiOiJhdCtqd3QifQ.e30.c2lnbmF0dXJl")
	ti.SetExtension(url.Values{extAuthTime: {"1796400000000"}, extAMR: {AMRSoftwareKey}, extNonce: {"n-0S6_WzA2Mj"}})
	digest := sha256.Sum256([]byte("header.payload"))
	ctx := context.Background()
	for _, alg := range []string{AlgRS256, AlgES256} {
		sk := keys[alg]
		b.Run("baseline=crypto/"+alg, func(b *testing.B) {
			for b.Loop() {
				var err error
				switch k := sk.priv.(type) {
				case *rsa.PrivateKey:
					_, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:])
				case *ecdsa.PrivateKey:
					_, err = ecdsa.SignASN1(rand.Reader, k, digest[:])
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("authd="+alg, func(b *testing.B) {
			c := &Client{ID: "client-1", IDTokenAlg: alg}
			for b.Loop() {
				if tok, err := s.idTokenFor(ctx, c, ti); err != nil || tok == "" {
					b.Fatal(tok, err)
				}
			}
		})
	}
}

// BenchmarkAccessTokenVerify: verifying an access token that is not in
// the cache of verified tokens (go-jose parse, ES256 signature, claims),
// against bare ecdsa.VerifyASN1 of one digest in the same run.
func BenchmarkAccessTokenVerify(b *testing.B) {
	sk := testSigningKey(b, AlgES256)
	s := &Server{issuer: "https://auth.example.com", now: time.Now, keys: staticKeyring(sk)}
	now := time.Now()
	tok, err := sk.sign(&accessClaims{Iss: s.issuer, Sub: "1BitcoinEaterAddressDontSendf59kuE", Aud: jwt.Audience{s.issuer},
		ClientID: "client-1", Scope: "openid profile", Iat: now.Unix(), Exp: now.Add(time.Hour).Unix(), Jti: newFamily() + ".x"})
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte(tok))
	sig, _ := ecdsa.SignASN1(rand.Reader, sk.priv.(*ecdsa.PrivateKey), digest[:])
	ctx := context.Background()
	b.Run("baseline=crypto/ecdsa.VerifyASN1", func(b *testing.B) {
		for b.Loop() {
			if !ecdsa.VerifyASN1(&sk.priv.(*ecdsa.PrivateKey).PublicKey, digest[:], sig) {
				b.Fatal("bad signature")
			}
		}
	})
	b.Run("authd=verifySigned", func(b *testing.B) {
		for b.Loop() {
			v, err := s.verifySigned(ctx, tok)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.validateClaims(v.std, s.issuer); err != nil {
				b.Fatal(err)
			}
		}
	})
}
