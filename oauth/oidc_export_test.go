package oauth

import "context"

// The OpenID Connect internals the external tests reach.

// MaxNonceLen is the longest nonce an authorization request may carry.
const MaxNonceLen = maxNonceLen

// SigningKID is the kid of the key that signs with alg now.
func (s *Server) SigningKID(ctx context.Context, alg string) string {
	if sk := s.keys.keys(ctx).signer(alg); sk != nil {
		return sk.kid
	}
	return ""
}
