package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/authd-dev/authd/errors"
)

// bearerToken returns the access token of r's Authorization header
// (RFC 6750 §2.1). Tokens anywhere else are refused: an access_token in the
// query is logged by every proxy on the way.
//
// Errors: invalid_token.
func bearerToken(r *http.Request) (string, *errors.Error) {
	const op = "oauth.bearerToken"
	if r.URL.Query().Has("access_token") {
		return "", errors.E(errors.InvalidToken, "Access tokens are accepted only in the Authorization header, never in the query")
	}
	h := r.Header.Values("Authorization")
	switch {
	case len(h) == 0:
		return "", errors.E(errors.InvalidToken, "No access token: send Authorization: Bearer <token>")
	case len(h) > 1:
		return "", errors.E(errors.InvalidToken, "Authorization header included more than once")
	}
	scheme, tok, _ := strings.Cut(h[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errors.E(errors.InvalidToken, "The Authorization header must use the Bearer scheme")
	}
	tok = strings.TrimLeft(tok, " ")
	if !validB64Token(tok) {
		return "", errBadToken(op, errors.New("not a b64token"))
	}
	return tok, nil
}

// validB64Token is RFC 6750 §2.1's b64token.
func validB64Token(t string) bool {
	if t == "" || len(t) > maxTokenLen {
		return false
	}
	i := 0
	for i < len(t) && t[i] != '=' {
		c := t[i]
		if !isBase64URL(c) && c != '.' && c != '~' && c != '+' && c != '/' {
			return false
		}
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(t); i++ {
		if t[i] != '=' {
			return false
		}
	}
	return true
}

// bearerClaims validates r's access token (genuine, not revoked) and
// returns its claims; with a scope it also checks the token carries it
// (the claims are returned with the insufficient_scope error).
func (s *Server) bearerClaims(r *http.Request, scope string) (*accessClaims, error) {
	tok, e := bearerToken(r)
	if e != nil {
		return nil, e
	}
	c, err := s.verifyAccessToken(r.Context(), tok)
	if err != nil {
		return nil, err
	}
	revoked, err := s.tokens.revoked(r.Context(), c.Jti)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, errBadToken("oauth.bearer", errors.New("revoked"))
	}
	if !s.forIssuer(c.Aud) {
		// RFC 8707: a token for another resource is no key to authd's
		// own APIs, even a genuine one.
		return nil, errors.E(errors.InvalidToken, "The access token was issued for another resource: its audience does not include this server").
			WithCause("oauth.bearer", errors.Errorf("aud %q", c.Aud))
	}
	if err := s.clientExists(r.Context(), c.ClientID, c.Iat); err != nil {
		return nil, err
	}
	if scope != "" && !slices.Contains(c.scopes(), scope) {
		return c, errInsufficientScope(scope)
	}
	return c, nil
}

// errInsufficientScope is the 403 for a token that lacks scope
// (RFC 6750 §3.1).
func errInsufficientScope(scope string) *errors.Error {
	e := errors.E(errors.InsufficientScope, "The access token does not carry the "+scope+" scope")
	e.Scope = scope
	return e
}

// AuthenticateBearer validates the request's access token (RFC 6750: the
// Authorization header only) and returns the user it was issued for. The
// token must be one of authd's JWTs — signature, iss, exp, and an aud
// that includes the issuer (a token for another resource is refused) — not
// revoked, carry scope (none checked when scope is ""), and name a user:
// a client_credentials token acts for its client alone (RFC 9068 §2.2 makes
// its sub the client_id), so it opens no user's resources, as at /userinfo.
//
// Errors: invalid_token (401, also for a token that names no user);
// insufficient_scope (403, with Error.Scope set); temporarily_unavailable.
func (s *Server) AuthenticateBearer(r *http.Request, scope string) (string, error) {
	c, err := s.bearerClaims(r, scope)
	if err != nil {
		return "", err
	}
	if c.Sub == c.ClientID {
		return "", errBadToken("oauth.AuthenticateBearer", errors.New("client_credentials token names no user"))
	}
	return c.Sub, nil
}

type identifiedKey struct{}

type identified struct {
	claims *accessClaims // the token's claims when it is genuine
	err    error         // the answer /userinfo gives, or nil
}

// userinfoClaims validates the token of a /userinfo request: it must
// carry openid or profile (OpenID Connect Core 1.0 §5.3; profile for
// plain OAuth 2.0 clients). claims is set whenever the token is genuine.
func (s *Server) userinfoClaims(r *http.Request) (*accessClaims, error) {
	c, err := s.bearerClaims(r, "")
	if err != nil {
		return nil, err
	}
	if sc := c.scopes(); !slices.Contains(sc, ScopeOpenID) && !slices.Contains(sc, ScopeProfile) {
		return c, errInsufficientScope(ScopeProfile)
	}
	return c, nil
}

// Identify is the middleware for GET|POST /userinfo that runs before the
// rate limiter: it validates the Bearer token (scope openid or profile)
// and records the outcome in the request context without answering
// anything, so the limiter can key on SubjectFromContext and UserInfo then
// returns the recorded error, if any. A request without a genuine token
// has no subject (the limiter falls back to the client IP).
func (s *Server) Identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := s.userinfoClaims(r)
		ctx := context.WithValue(r.Context(), identifiedKey{}, &identified{claims: c, err: err})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// SubjectFromContext returns the subject Identify found for this request:
// ok is true when a genuine, unrevoked access token was presented (even
// one that lacks the scope /userinfo needs).
func SubjectFromContext(ctx context.Context) (string, bool) {
	id, _ := ctx.Value(identifiedKey{}).(*identified)
	if id == nil || id.claims == nil {
		return "", false
	}
	return id.claims.Sub, true
}

// userInfo is the /userinfo response (OpenID Connect Core 1.0 §5.1, §5.3.2):
// sub always; the rest by scope, and only what is known.
type userInfo struct {
	Sub string `json:"sub"`
	// profile
	PreferredUsername string `json:"preferred_username,omitempty"`
	Name              string `json:"name,omitempty"`
	Picture           string `json:"picture,omitempty"`
	Address           string `json:"address,omitempty"` // the Bitcoin address (wallet users)
	PubKey            string `json:"pubkey,omitempty"`  // the wallet's public key, when known
	// email (provider users)
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
}

// UserInfo handles GET and POST /userinfo: the signed-in user's claims,
// by the token's scope (OpenID Connect Core 1.0 §5.4). Always sub (the
// Bitcoin address, or google:<id> / github:<id>). With profile:
// preferred_username (the address, or the GitHub login), address and
// pubkey (when known) for a wallet user, name and picture for a provider
// user when the provider said. With email: email and email_verified, for
// provider users whose provider gave an address. It uses Identify's result
// when Identify ran, else validates the token itself.
//
// Errors: invalid_token (401, also for a token that names no user, such
// as a client_credentials token); insufficient_scope (403, scope
// profile, for a token with neither openid nor profile);
// temporarily_unavailable.
func (s *Server) UserInfo(w http.ResponseWriter, r *http.Request) error {
	setNoStore(w.Header())
	var c *accessClaims
	var err error
	if id, ok := r.Context().Value(identifiedKey{}).(*identified); ok {
		c, err = id.claims, id.err
	} else {
		c, err = s.userinfoClaims(r)
	}
	if err != nil {
		return err
	}
	id, err := s.LookupIdentity(r.Context(), c.Sub)
	if err != nil {
		return err
	}
	if id == nil {
		return errBadToken("oauth.UserInfo", errors.New("token subject is not a user"))
	}
	out := userInfo{Sub: id.Subject}
	scopes := c.scopes()
	if slices.Contains(scopes, ScopeProfile) {
		out.Name, out.Picture = id.Name, id.Picture
		out.PreferredUsername = id.Login
		if id.Kind == KindWallet {
			out.PreferredUsername, out.Address, out.PubKey = id.Address, id.Address, id.PubKey
		}
	}
	if slices.Contains(scopes, ScopeEmail) && id.Email != "" {
		out.Email = id.Email
		out.EmailVerified = &id.EmailVerified
	}
	return writeJSON(w, http.StatusOK, out)
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return errors.E(errors.ServerError, "").WithCause("oauth.writeJSON", err)
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_, err = w.Write(b)
	return err
}
