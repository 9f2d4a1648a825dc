package oauth

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/authd-dev/authd/errors"
)

// bearerToken returns the access token of r's Authorization header (RFC
// 6750 §2.1). Tokens anywhere else are refused: an access_token in the
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

// bearer validates r's access token and checks scope. subject is set
// whenever the token is genuine and not revoked, also when err is
// insufficient_scope.
func (s *Server) bearer(r *http.Request, scope string) (subject string, err error) {
	subject, _, err = s.bearerClaims(r, scope)
	return subject, err
}

// bearerClaims is bearer, also returning the token's client_id.
func (s *Server) bearerClaims(r *http.Request, scope string) (subject, clientID string, err error) {
	tok, e := bearerToken(r)
	if e != nil {
		return "", "", e
	}
	c, err := s.verifyAccessToken(r.Context(), tok)
	if err != nil {
		return "", "", err
	}
	revoked, err := s.tokens.revoked(r.Context(), c.Jti)
	if err != nil {
		return "", "", err
	}
	if revoked {
		return "", "", errBadToken("oauth.bearer", errors.New("revoked"))
	}
	if !s.forIssuer(c.Aud) {
		// RFC 8707: a token for another resource is no key to authd's
		// own APIs, even a genuine one.
		return "", "", errors.E(errors.InvalidToken, "The access token was issued for another resource: its audience does not include this server").
			WithCause("oauth.bearer", errors.Errorf("aud %q", c.Aud))
	}
	if err := s.clientExists(r.Context(), c.ClientID, c.Iat); err != nil {
		return "", "", err
	}
	if scope != "" && !slices.Contains(c.scopes(), scope) {
		e := errors.E(errors.InsufficientScope, "The access token does not carry the "+scope+" scope")
		e.Scope = scope
		return c.Sub, c.ClientID, e
	}
	return c.Sub, c.ClientID, nil
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
	sub, client, err := s.bearerClaims(r, scope)
	if err != nil {
		return "", err
	}
	if sub == client {
		return "", errBadToken("oauth.AuthenticateBearer", errors.New("client_credentials token names no user"))
	}
	return sub, nil
}

type identifiedKey struct{}

type identified struct {
	subject string // the token's subject when the token is genuine
	err     error  // the answer /userinfo gives, or nil
}

// Identify is the middleware for GET|POST /userinfo that runs before the
// rate limiter: it validates the Bearer token (scope profile) and records
// the outcome in the request context without answering anything, so the
// limiter can key on SubjectFromContext and UserInfo then returns the
// recorded error, if any. A request without a genuine token has no
// subject (the limiter falls back to the client IP).
func (s *Server) Identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sub, err := s.bearer(r, ScopeProfile)
		ctx := context.WithValue(r.Context(), identifiedKey{}, &identified{subject: sub, err: err})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// SubjectFromContext returns the subject Identify found for this request:
// ok is true when a genuine, unrevoked access token was presented (even
// one that lacks the profile scope).
func SubjectFromContext(ctx context.Context) (string, bool) {
	id, _ := ctx.Value(identifiedKey{}).(*identified)
	if id == nil || id.subject == "" {
		return "", false
	}
	return id.subject, true
}

// UserInfo handles GET and POST /userinfo: the signed-in user, as
// {"sub", "address", "pubkey"} for a wallet user ("pubkey" when known) or
// {"sub", "email"} for a provider user. It uses Identify's result when
// Identify ran, else validates the token itself.
//
// Errors: invalid_token (401, also for a token that names no user, such
// as a client_credentials token); insufficient_scope (403, scope
// profile); temporarily_unavailable.
func (s *Server) UserInfo(w http.ResponseWriter, r *http.Request) error {
	setNoStore(w.Header())
	var sub string
	var err error
	if id, ok := r.Context().Value(identifiedKey{}).(*identified); ok {
		sub, err = id.subject, id.err
	} else {
		sub, err = s.bearer(r, ScopeProfile)
	}
	if err != nil {
		return err
	}
	id, err := s.LookupIdentity(r.Context(), sub)
	if err != nil {
		return err
	}
	if id == nil {
		return errBadToken("oauth.UserInfo", errors.New("token subject is not a user"))
	}
	out := struct {
		Sub     string `json:"sub"`
		Address string `json:"address,omitempty"`
		PubKey  string `json:"pubkey,omitempty"`
		Email   string `json:"email,omitempty"`
	}{Sub: id.Subject, Address: id.Address, PubKey: id.PubKey, Email: id.Email}
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
