package oauth

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/authd-dev/authd/errors"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Revoke handles POST /revoke (RFC 7009). The client authenticates as at
// /token (a public client with its client_id). Revoking a refresh token
// revokes its whole grant: every refresh and access token of its family
// (RFC 7009 §2.1). Revoking an access token puts it on the deny list
// until it expires. A token that is unknown, invalid, already revoked or
// another client's is answered 200 like any other (RFC 7009 §2.2), so the
// endpoint tells nothing about tokens.
//
// 200 means every token of the grant is refused from now on: revoking a
// refresh token whose grant was revoked before writes the revocation
// again, so a client retrying after a 503 (the database written, Redis
// not) completes it instead of being told it is done.
//
// Errors: invalid_request (missing token, repeated parameter);
// invalid_client; unsupported_token_type (token_type_hint other than
// access_token or refresh_token); request_too_large;
// temporarily_unavailable.
func (s *Server) Revoke(w http.ResponseWriter, r *http.Request) error {
	form, c, tok, err := s.tokenRequest(w, r, true)
	if err != nil {
		return err
	}
	switch hint := form.Get("token_type_hint"); hint {
	case "", "access_token", "refresh_token":
	default:
		if len(hint) > 40 {
			hint = hint[:40] + "..."
		}
		return errors.E(errors.UnsupportedTokenType, "Token type '"+hint+"' cannot be revoked here; use access_token or refresh_token")
	}
	ctx := r.Context()
	if looksLikeJWT(tok) {
		claims, err := s.verifyAccessToken(ctx, tok)
		if err == nil && claims.ClientID == c.ID {
			if err := s.tokens.denyAccess(ctx, claims); err != nil {
				return err
			}
		}
	} else if len(tok) <= 512 {
		row, err := s.tokens.peekRefresh(ctx, tok)
		if err != nil {
			return err
		}
		if row != nil && row.clientID == c.ID {
			if err := s.tokens.revokeFamily(ctx, row.family, reasonRevoked); err != nil {
				return err
			}
		}
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// introspection is the RFC 7662 §2.2 response.
type introspection struct {
	Active    bool         `json:"active"`
	Scope     string       `json:"scope,omitempty"`
	ClientID  string       `json:"client_id,omitempty"`
	TokenType string       `json:"token_type,omitempty"`
	Exp       int64        `json:"exp,omitempty"`
	Iat       int64        `json:"iat,omitempty"`
	Sub       string       `json:"sub,omitempty"`
	Aud       jwt.Audience `json:"aud,omitempty"`
	Iss       string       `json:"iss,omitempty"`
	Jti       string       `json:"jti,omitempty"`
}

// Introspect handles POST /introspect (RFC 7662) for confidential clients
// (resource servers). An access token is active when its signature, iss,
// aud and exp check out, it is not revoked and the client it was issued
// to still exists; a refresh token when it is
// unused, unexpired and its grant not revoked. Anything else is
// {"active":false}.
//
// Any confidential client (a resource server) may introspect access
// tokens; a refresh token is reported active only to the client it was
// issued to.
//
// Errors: invalid_request (missing token, repeated parameter);
// invalid_client (also for public clients); request_too_large;
// temporarily_unavailable.
func (s *Server) Introspect(w http.ResponseWriter, r *http.Request) error {
	_, caller, tok, err := s.tokenRequest(w, r, false)
	if err != nil {
		return err
	}
	ctx := r.Context()
	out := introspection{}
	if looksLikeJWT(tok) {
		if c, err := s.verifyAccessToken(ctx, tok); err == nil {
			revoked, err := s.tokens.revoked(ctx, c.Jti)
			if err != nil {
				return err
			}
			if !revoked {
				if err := s.clientExists(ctx, c.ClientID, c.Iat); errors.CodeOf(err) == errors.TemporarilyUnavailable {
					return err
				} else if err != nil {
					revoked = true // issued to a client that was deleted
				}
			}
			if !revoked {
				out = introspection{Active: true, Scope: c.Scope, ClientID: c.ClientID, TokenType: "Bearer",
					Exp: c.Exp, Iat: c.Iat, Sub: c.Sub, Aud: c.Aud, Iss: c.Iss, Jti: c.Jti}
			}
		}
	} else if len(tok) <= 512 && !strings.ContainsAny(tok, " \t") {
		row, err := s.tokens.peekRefresh(ctx, tok)
		if err != nil {
			return err
		}
		// A refresh token is only ever presented by the client it was
		// issued to: to any other caller (a resource server) it is just
		// not an active token it may use (RFC 7662 §2.2).
		if row != nil && row.active(s.now(), s.cfg.RefreshFamilyMax) && row.clientID == caller.ID {
			out = introspection{Active: true, Scope: row.scope, ClientID: row.clientID,
				Exp: row.expiry(s.cfg.RefreshFamilyMax) / 1000, Iat: row.created / 1000, Sub: row.subject, Iss: s.issuer}
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// tokenRequest reads a revocation or introspection request (RFC 7009
// §2.1, RFC 7662 §2.1): the form, the authenticated client (public ones
// only when allowPublic) and the token.
//
// Errors: invalid_request (missing token, repeated parameter);
// invalid_client; request_too_large; temporarily_unavailable.
func (s *Server) tokenRequest(w http.ResponseWriter, r *http.Request, allowPublic bool) (url.Values, *Client, string, error) {
	setNoStore(w.Header())
	form, _, err := readForm(w, r)
	if err != nil {
		return nil, nil, "", err
	}
	if e := once(form, "token", "token_type_hint", "client_id", "client_secret"); e != nil {
		return nil, nil, "", e
	}
	c, _, err := s.authenticateClient(r.Context(), r, form, allowPublic)
	if err != nil {
		return nil, nil, "", err
	}
	tok := form.Get("token")
	if tok == "" {
		return nil, nil, "", missing("token")
	}
	return form, c, tok, nil
}
