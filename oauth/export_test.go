package oauth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
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
	return s.validateAuthorize(ctx, v, s.clients.get)
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
	_, cached = s.verified.get(sha256.Sum256([]byte(tok)))
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
