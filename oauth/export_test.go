package oauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"net/http"
	"net/url"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// The internals the external tests (package oauth_test) reach. They test
// the server built by internal/server, which imports this package, so they
// cannot live inside it.

// TokenResponse is the token endpoint's success body.
type TokenResponse = tokenResponse

// ClientCacheTTL is how long a running server may keep using a client it
// has seen.
const ClientCacheTTL = clientCacheTTL

// RandomToken is randomToken.
var RandomToken = randomToken

// ValidateRedirectURIList is the URI validator go-oauth2's manager gets.
var ValidateRedirectURIList = validateRedirectURIList

// ValidateAuthorize validates an authorization request against the
// server's clients.
func (s *Server) ValidateAuthorize(ctx context.Context, v url.Values) (*Pending, error) {
	return s.validateAuthorize(ctx, v, s.lookupClient)
}

// LibError is libError.
func (s *Server) LibError(err error, op string) error { return s.libError(err, op) }

// VerifyAccessToken verifies an access token as /userinfo does.
func (s *Server) VerifyAccessToken(ctx context.Context, tok string) (*accessClaims, error) {
	return s.verifyAccessToken(ctx, tok)
}

// CachedToken reports whether tok is in the verified-token cache, and how
// many tokens the cache holds.
func (s *Server) CachedToken(tok string) (cached bool, size int) {
	// Not through get: a look from a test is no lookup of the server's.
	s.verified.mu.Lock()
	defer s.verified.mu.Unlock()
	_, cached = s.verified.m[sha256.Sum256([]byte(tok))]
	return cached, len(s.verified.m)
}

// ReloadKeys reloads the signing keys from the database.
func (s *Server) ReloadKeys(ctx context.Context) error { return s.keys.reload(ctx) }

// HasSigningKey reports whether the keys in use have a current signing
// key (reloading them first when due).
func (s *Server) HasSigningKey(ctx context.Context) bool { return s.keys.keys(ctx).current != nil }

// KeysLoadedAt is when the keys were last (re)loaded, in unix nanoseconds.
func (s *Server) KeysLoadedAt() int64 { return s.keys.loadedAt.Load() }

// BindingCookie is the cookie binding an upstream sign-in to a browser.
func (s *Server) BindingCookie(state, nonce string, maxAge int) *http.Cookie {
	return s.bindingCookie(state, nonce, maxAge)
}

// SigningKey is a token-signing key.
type SigningKey = signingKey

// KID is the key's id.
func (sk *signingKey) KID() string { return sk.kid }

// SignAccessToken signs an access token with the key, as the token
// endpoint does.
func (sk *signingKey) SignAccessToken(iss, sub, clientID, scope, jti string, iat, exp time.Time) (string, error) {
	return sk.sign(&accessClaims{Iss: iss, Sub: sub, Aud: jwt.Audience{iss}, ClientID: clientID, Scope: scope,
		Iat: iat.Unix(), Exp: exp.Unix(), Jti: jti})
}

// ParseSigningKey is parseSigningKey.
var ParseSigningKey = parseSigningKey

// PublicKID is the kid of an ES256 public key.
func PublicKID(pub *ecdsa.PublicKey) (string, error) {
	j, err := publicJWK(AlgES256, pub)
	return j.KeyID, err
}

// Open decrypts a stored signing key.
func (ke *KeyEncryption) Open(kid, kekID, stored string) ([]byte, error) {
	return ke.open(kid, kekID, stored)
}

// FamilyKey is the Redis key of a token family's deny-list entry.
var FamilyKey = familyKey

// FamilyOf is the token family of an access token's jti.
var FamilyOf = familyOf

// NewFamily is a new token family id.
var NewFamily = newFamily

// FamilyDenyTTL is how long a revoked family stays on the deny list.
func (s *Server) FamilyDenyTTL() time.Duration { return familyDenyTTL(s.cfg) }

// HashToken is how a refresh token is stored.
var HashToken = hashToken
