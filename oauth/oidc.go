package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/authd-dev/authd/errors"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/go-oauth2/oauth2/v4"
)

// OpenID Connect: authd is an OpenID Provider for the authorization-code
// flow (OpenID Connect Core 1.0 §3.1). An authorization whose scope has
// openid gets an ID Token from /token, at the code exchange and at every
// refresh of its grant; one without openid is plain OAuth 2.0, and the
// parameters below are not read.

// OpenID Connect scopes (OpenID Connect Core 1.0 §3.1.2.1, §5.4, §11).
const (
	ScopeOpenID        = "openid"         // turns OpenID Connect on for the request
	ScopeEmail         = "email"          // /userinfo: email, email_verified (provider users)
	ScopeOfflineAccess = "offline_access" // accepted; refresh tokens follow the client's grants
)

// AMRSoftwareKey is the amr value of a wallet sign-in: proof of possession
// of a software-secured key (RFC 8176 §2, "swk").
const AMRSoftwareKey = "swk"

// DefaultIDTokenTTL is the lifetime of an ID Token.
const DefaultIDTokenTTL = time.Hour

// Prompt values (OpenID Connect Core 1.0 §3.1.2.1).
const (
	PromptNone          = "none"
	PromptLogin         = "login"
	PromptConsent       = "consent"
	PromptSelectAccount = "select_account"
)

// promptValues are the prompt values authd accepts, as advertised.
var promptValues = []string{PromptNone, PromptLogin, PromptConsent, PromptSelectAccount}

// oidcParams are the OpenID Connect authorization request parameters
// (OpenID Connect Core 1.0 §3.1.2.1, §5.5, §6, §7.2.1); none may be
// repeated. display, ui_locales, claims_locales and acr_values are
// accepted and ignored: there is one page, in English, and one way to
// sign in per request. claims is ignored too (claims_parameter_supported
// is false).
var oidcParams = []string{"nonce", "prompt", "max_age", "login_hint", "id_token_hint",
	"display", "ui_locales", "claims_locales", "acr_values", "claims", "registration"}

// Bounds on what authd keeps of a request's OpenID Connect parameters.
const (
	maxNonceLen     = 512
	maxLoginHintLen = 128
)

// SignIn is how a user proved who they are for one authorization: what
// an ID Token states about the authentication (OpenID Connect Core 1.0
// §2).
type SignIn struct {
	Subject string
	// AuthTime is when the user authenticated (the ID Token's auth_time).
	AuthTime time.Time
	// Methods are the authentication methods (amr, RFC 8176): ["swk"] for
	// a wallet signature; none for Google or GitHub, whose own methods
	// authd does not learn.
	Methods []string
	// SessionID is the sign-in session the authorization belongs to (the
	// ID Token's sid, OpenID Connect Front-Channel Logout 1.0 §2). Empty
	// until authd keeps sessions; a session-aware sign-in sets it, and it
	// reaches the code's ID Token unchanged.
	SessionID string
}

// walletSignIn is the SignIn of a wallet signature verified now.
func (s *Server) walletSignIn(subject string) SignIn {
	return SignIn{Subject: subject, AuthTime: s.now(), Methods: []string{AMRSoftwareKey}}
}

// hasScope reports whether the space-separated scope list has scope.
func hasScope(scopes, scope string) bool {
	return slices.Contains(strings.Fields(scopes), scope)
}

// unsupportedRequestParam returns the OpenID Connect error for a request
// that relies on what authd does not support: request objects by value
// or by reference (OpenID Connect Core 1.0 §6, RFC 9101) and passing
// registration metadata (§7.2.1). Nil when there is none.
func unsupportedRequestParam(v url.Values) *errors.Error {
	switch {
	case v.Has("request"):
		return errors.E(errors.RequestNotSupported, "Request objects are not supported: send the authorization request's parameters in the query, not in the request parameter")
	case v.Has("request_uri"):
		return errors.E(errors.RequestURINotSupported, "The request_uri parameter is not supported: send the authorization request's parameters in the query")
	case v.Has("registration"):
		return errors.E(errors.RegistrationNotSupported, "The registration parameter is not supported: register the client with authd first")
	}
	return nil
}

// readOIDC validates the OpenID Connect parameters of an authorization
// request whose scope has openid and records them in p.
//
// Errors: invalid_request (repeated or malformed parameter, prompt=none
// with another value, an id_token_hint that is not one of authd's ID
// Tokens); temporarily_unavailable.
func (s *Server) readOIDC(ctx context.Context, v url.Values, p *Pending) *errors.Error {
	if e := once(v, oidcParams...); e != nil {
		return e
	}
	if n, ok := v["nonce"]; ok && n[0] != "" {
		if len(n[0]) > maxNonceLen || !utf8.ValidString(n[0]) {
			return errors.E(errors.InvalidRequest, "nonce must be at most "+strconv.Itoa(maxNonceLen)+" bytes of UTF-8")
		}
		p.Nonce = n[0]
	}
	if raw := v.Get("prompt"); raw != "" {
		prompts := dedupe(strings.Split(raw, " "))
		for _, pr := range prompts {
			if !slices.Contains(promptValues, pr) {
				return errors.E(errors.InvalidRequest, "Unsupported prompt value '"+printable(pr, 32)+"' (want none, login, consent or select_account)")
			}
		}
		if slices.Contains(prompts, PromptNone) && len(prompts) > 1 {
			return errors.E(errors.InvalidRequest, "prompt=none cannot be combined with another prompt value (OpenID Connect Core 1.0 section 3.1.2.1)")
		}
		p.Prompt = strings.Join(prompts, " ")
	}
	if raw, ok := v["max_age"]; ok {
		n, err := strconv.ParseInt(raw[0], 10, 64)
		if err != nil || len(raw[0]) > 10 || strings.Trim(raw[0], "0123456789") != "" {
			return errors.E(errors.InvalidRequest, "max_age must be a non-negative integer number of seconds")
		}
		p.MaxAge, p.HasMaxAge = n, true
	}
	if hint := v.Get("id_token_hint"); hint != "" {
		h, err := s.verifyIDTokenHint(ctx, hint)
		if err != nil {
			return err
		}
		p.HintSubject = h.Subject
	}
	if lh := v.Get("login_hint"); len(lh) <= maxLoginHintLen && printable(lh, maxLoginHintLen) == lh {
		// Only pre-fills the login page: a hint that could not be an
		// address is dropped, not refused.
		p.LoginHint = lh
	}
	return nil
}

// promptNone reports whether the request forbids any page (prompt=none).
func (p *Pending) promptNone() bool { return p.Prompt == PromptNone }

// errLoginRequired is the answer to prompt=none when the user would have
// to sign in on a page (OpenID Connect Core 1.0 §3.1.2.6).
func (s *Server) errLoginRequired(p *Pending) *errors.Error {
	return s.RedirectError(p, errors.LoginRequired, "The user must sign in, and prompt=none forbids showing a page: sign the authorization request with the wallet (X-Auth-Token), or send it without prompt=none")
}

// idTokenClaims are an ID Token's claims (OpenID Connect Core 1.0 §2,
// §3.1.3.6): only what a client cannot get at /userinfo.
type idTokenClaims struct {
	Iss      string   `json:"iss"`
	Sub      string   `json:"sub"`
	Aud      string   `json:"aud"`
	Azp      string   `json:"azp"`
	Exp      int64    `json:"exp"`
	Iat      int64    `json:"iat"`
	AuthTime int64    `json:"auth_time"`
	Nonce    string   `json:"nonce,omitempty"`
	AtHash   string   `json:"at_hash,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	Sid      string   `json:"sid,omitempty"`
}

// idTokenFor returns the ID Token of a token response, or "" when the
// grant gets none: only grants of an authorization with openid do, at the
// code exchange (with the request's nonce) and at every refresh (same
// sub, the original auth_time, no nonce). ti is the issued token info;
// its extension carries how the user signed in.
//
// Errors: server_error.
func (s *Server) idTokenFor(ctx context.Context, c *Client, ti oauth2.TokenInfo) (string, error) {
	const op = "oauth.idTokenFor"
	eti, ok := ti.(oauth2.ExtendableTokenInfo)
	if !ok || ti.GetUserID() == "" {
		return "", nil
	}
	ext := eti.GetExtension()
	scope := ext.Get(extRefreshScope) // the grant's own scope after a refresh, never narrowed
	if scope == "" {
		scope = ti.GetScope()
	}
	authMS, _ := strconv.ParseInt(ext.Get(extAuthTime), 10, 64)
	if !hasScope(scope, ScopeOpenID) || authMS <= 0 {
		return "", nil
	}
	now := s.now()
	claims := idTokenClaims{
		Iss:      s.issuer,
		Sub:      ti.GetUserID(),
		Aud:      c.ID,
		Azp:      c.ID,
		Iat:      now.Unix(),
		Exp:      now.Add(s.cfg.IDTokenTTL).Unix(),
		AuthTime: time.UnixMilli(authMS).Unix(),
		Nonce:    ext.Get(extNonce),
		AtHash:   atHash(ti.GetAccess()),
		AMR:      strings.Fields(ext.Get(extAMR)),
		Sid:      ext.Get(extSID),
	}
	sk := s.keys.keys(ctx).signer(c.IDTokenAlg)
	if sk == nil {
		return "", errors.E(errors.ServerError, "").WithCause(op, errors.Errorf("no %q key for client %s", c.IDTokenAlg, c.ID))
	}
	tok, err := signJWT(sk.idToken, &claims)
	if err != nil {
		return "", errors.E(errors.ServerError, "").WithCause(op, err)
	}
	return tok, nil
}

// atHash is the at_hash of an access token (OpenID Connect Core 1.0
// §3.1.3.6): the left half of its SHA-256, base64url. SHA-256 is the hash
// of both RS256 and ES256.
func atHash(access string) string {
	if access == "" {
		return ""
	}
	h := sha256.Sum256([]byte(access))
	return base64.RawURLEncoding.EncodeToString(h[:len(h)/2])
}

// idTokenHint is what authd reads from an id_token_hint.
type idTokenHint struct {
	Subject string
	// ClientID is the ID Token's audience, the client it was issued to.
	ClientID string
	// SessionID is its sid: the session it was issued in, if any.
	SessionID string
}

// verifyIDTokenHint checks that hint is an ID Token authd issued (its
// signature by a key still in the keyring, its issuer, a subject; an
// expired one is fine, OpenID Connect Core 1.0 §3.1.2.1, RP-Initiated
// Logout 1.0 §2) and returns what it says.
//
// Errors: invalid_request.
func (s *Server) verifyIDTokenHint(ctx context.Context, hint string) (idTokenHint, *errors.Error) {
	const op = "oauth.verifyIDTokenHint"
	bad := func(cause error) (idTokenHint, *errors.Error) {
		return idTokenHint{}, errors.E(errors.InvalidRequest, "id_token_hint is not an ID Token issued by this server, or its signing key was retired").WithCause(op, cause)
	}
	if len(hint) > maxTokenLen {
		return bad(errors.New("too long"))
	}
	t, err := jwt.ParseSigned(hint, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return bad(err)
	}
	hdr := t.Headers[0]
	// An access token (typ at+jwt) is not an ID Token.
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != "" && !strings.EqualFold(typ, typIDToken) {
		return bad(errors.Errorf("typ %q", typ))
	}
	sk := s.keys.lookup(ctx, hdr.KeyID)
	if sk == nil || sk.alg != hdr.Algorithm {
		return bad(errors.Errorf("unknown kid %q for %s", hdr.KeyID, hdr.Algorithm))
	}
	var (
		std jwt.Claims
		sid struct {
			Sid string `json:"sid"`
		}
	)
	if err := t.Claims(sk.public(), &std, &sid); err != nil {
		return bad(err)
	}
	std.Expiry = nil // an expired hint still names its user
	if err := std.ValidateWithLeeway(jwt.Expected{Issuer: s.issuer, Time: s.now()}, clockSkew); err != nil {
		return bad(err)
	}
	if std.Subject == "" || len(std.Audience) != 1 {
		return bad(errors.New("no sub, or not one aud"))
	}
	return idTokenHint{Subject: std.Subject, ClientID: std.Audience[0], SessionID: sid.Sid}, nil
}
