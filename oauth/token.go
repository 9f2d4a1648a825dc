package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/authd-dev/authd/errors"
	"github.com/go-oauth2/oauth2/v4"
	liberrors "github.com/go-oauth2/oauth2/v4/errors"
)

// tokenParams are the token endpoint's parameters (RFC 6749 §4.1.3, §4.4.2,
// §6, RFC 7636 §4.5); none may be repeated.
var tokenParams = []string{"grant_type", "client_id", "client_secret", "code", "redirect_uri", "code_verifier", "refresh_token", "scope"}

// setNoStore marks a response as never cached (RFC 6749 §5.1).
func setNoStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// Token handles POST /token (RFC 6749 §3.2): the authorization_code (with
// PKCE), refresh_token and client_credentials grants; a grant of an
// OpenID Connect authorization (scope openid) also gets an ID Token (see
// idTokenFor). Clients authenticate with client_secret_basic
// (form-decoded, RFC 6749 §2.3.1), client_secret_post, or — public
// clients — none; never two at once.
//
// Every grant takes resource parameters (RFC 8707 §2.2): the access
// token's audience. A client may name only resources it may ask for and,
// for a code or refresh token, only resources its authorization granted;
// without any, the token is for everything the authorization granted (or
// for authd itself).
//
// Errors: invalid_request (missing, repeated or malformed parameter, two
// authentication methods, missing grant_type); invalid_client (401);
// unauthorized_client; unsupported_grant_type; invalid_grant; invalid_scope;
// invalid_target; invalid_client_metadata (a metadata document client
// whose document cannot be used); request_too_large;
// temporarily_unavailable; server_error.
func (s *Server) Token(w http.ResponseWriter, r *http.Request) error {
	const op = "oauth.Token"
	setNoStore(w.Header())
	form, _, err := readForm(w, r)
	if err != nil {
		return err
	}
	if e := once(form, tokenParams...); e != nil {
		return e
	}
	gt := form.Get("grant_type")
	switch gt {
	case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
	case "":
		return missing("grant_type")
	default:
		if len(gt) > 40 {
			gt = gt[:40] + "..."
		}
		return errors.E(errors.UnsupportedGrantType, "Grant type '"+gt+"' is not supported")
	}
	c, secret, err := s.authenticateClient(r.Context(), r, form, true)
	if err != nil {
		return err
	}
	if !c.allows(gt) || (gt == GrantClientCredentials && c.Public) {
		return errors.E(errors.UnauthorizedClient, "This client is not registered for the "+gt+" grant")
	}
	res, e := requestedResources(form)
	if e == nil {
		e = s.allowedResources(c, res)
	}
	if e != nil {
		return e
	}
	ctx := withAudience(withClient(r.Context(), c), res)
	var ti oauth2.TokenInfo
	switch gt {
	case GrantAuthorizationCode:
		ti, err = s.exchangeCode(ctx, r, c, secret, form)
	case GrantRefreshToken:
		ti, err = s.refresh(ctx, r, c, secret, form)
	case GrantClientCredentials:
		ti, err = s.clientCredentials(ctx, r, c, secret, form)
	}
	if err != nil {
		return s.libError(err, op)
	}
	idToken, err := s.idTokenFor(ctx, c, ti)
	if err != nil {
		return err
	}
	return writeToken(w, ti, idToken)
}

func (s *Server) exchangeCode(ctx context.Context, r *http.Request, c *Client, secret string, form url.Values) (oauth2.TokenInfo, error) {
	code := form.Get("code")
	if code == "" {
		return nil, missing("code")
	}
	ru := form.Get("redirect_uri")
	if ru == "" {
		// authd requires redirect_uri at /authorize, so RFC 6749 §4.1.3
		// requires it here.
		return nil, missing("redirect_uri")
	}
	ver := form.Get("code_verifier")
	if ver != "" && !validVerifier(ver) {
		return nil, errors.E(errors.InvalidRequest, "code_verifier must be 43-128 characters of [A-Za-z0-9-._~] (RFC 7636 section 4.1)")
	}
	if len(code) > 512 {
		return nil, errCodeInvalid("oauth.exchangeCode", errors.New("code too long"))
	}
	// The code is redeemed only if the client, redirect_uri and PKCE
	// verifier are the ones it was issued for, compared inside the
	// redemption (tokenStore.GetByCode), so a request that fails them
	// leaves the code as it was. The manager then checks redirect_uri
	// against the registration, checks client, redirect_uri and PKCE
	// once more, and issues the tokens.
	p := codePresentation{clientID: c.ID, redirectURI: ru, resources: form["resource"]}
	if ver != "" {
		p.challenge = s256(ver)
	}
	ctx = withCodePresentation(ctx, p)
	return s.mgr.GenerateAccessToken(ctx, oauth2.AuthorizationCode, &oauth2.TokenGenerateRequest{
		ClientID:     c.ID,
		ClientSecret: secret,
		RedirectURI:  ru,
		Code:         code,
		CodeVerifier: ver,
		Request:      r,
	})
}

func (s *Server) refresh(ctx context.Context, r *http.Request, c *Client, secret string, form url.Values) (oauth2.TokenInfo, error) {
	const op = "oauth.refresh"
	tok := form.Get("refresh_token")
	if tok == "" {
		return nil, missing("refresh_token")
	}
	var want []string
	if raw := form.Get("scope"); raw != "" {
		var ok bool
		if want, ok = parseScope(raw); !ok {
			return nil, errors.E(errors.InvalidScope, "The scope parameter is malformed (RFC 6749 section 3.3)")
		}
	}
	if len(tok) > 512 {
		return nil, errRefreshInvalid(op, errors.New("refresh token too long"))
	}
	// Checked before redeeming, so another client cannot burn the token:
	// the binding to the client (go-oauth2 does not bind refresh tokens).
	row, err := s.tokens.peekRefresh(ctx, tok)
	if err != nil {
		return nil, err
	}
	if row == nil || row.clientID != c.ID {
		return nil, errRefreshInvalid(op, errors.New("unknown refresh token, or another client's"))
	}
	if !row.active(s.now(), s.cfg.RefreshFamilyMax) {
		// Redeeming it anyway makes a rotated token's reuse revoke its
		// family, then fails.
		if _, err := s.tokens.GetByRefresh(ctx, tok); err != nil {
			return nil, err
		}
		return nil, errRefreshInvalid(op, errors.New("refresh token not active"))
	}
	// Scope only narrows (RFC 6749 §6); the library would widen it.
	if want != nil && !subset(want, strings.Fields(row.scope)) {
		return nil, errors.E(errors.InvalidScope, "The requested scope exceeds the scope of the refresh token")
	}
	// So do resources (RFC 8707 §2.2).
	if res := form["resource"]; !subset(res, splitResources(row.resources)) {
		return nil, errors.E(errors.InvalidTarget, "The requested resource was not granted by the authorization of this refresh token; a refresh may only repeat or narrow its resources")
	}
	return s.mgr.RefreshAccessToken(ctx, &oauth2.TokenGenerateRequest{
		ClientID:     c.ID,
		ClientSecret: secret,
		Refresh:      tok,
		Scope:        strings.Join(want, " "),
		Request:      r,
	})
}

func (s *Server) clientCredentials(ctx context.Context, r *http.Request, c *Client, secret string, form url.Values) (oauth2.TokenInfo, error) {
	scopes := c.Scopes
	if raw := form.Get("scope"); raw != "" {
		want, ok := parseScope(raw)
		if !ok {
			return nil, errors.E(errors.InvalidScope, "The scope parameter is malformed (RFC 6749 section 3.3)")
		}
		if !subset(want, c.Scopes) {
			return nil, errors.E(errors.InvalidScope, "The requested scope exceeds the scopes registered for this client")
		}
		scopes = want
	}
	return s.mgr.GenerateAccessToken(ctx, oauth2.ClientCredentials, &oauth2.TokenGenerateRequest{
		ClientID:     c.ID,
		ClientSecret: secret,
		Scope:        strings.Join(scopes, " "),
		Request:      r,
	})
}

// s256 is the S256 code challenge of a verifier (RFC 7636 §4.2):
// BASE64URL(SHA256(ASCII(code_verifier))).
func s256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// tokenResponse is the successful token response (RFC 6749 §5.1).
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	IDToken      string `json:"id_token,omitempty"` // OpenID Connect Core 1.0 §3.1.3.3
}

func writeToken(w http.ResponseWriter, ti oauth2.TokenInfo, idToken string) error {
	b, err := json.Marshal(tokenResponse{
		AccessToken:  ti.GetAccess(),
		TokenType:    "Bearer",
		ExpiresIn:    int64(ti.GetAccessExpiresIn().Seconds()),
		RefreshToken: ti.GetRefresh(),
		Scope:        ti.GetScope(),
		IDToken:      idToken,
	})
	if err != nil {
		return errors.E(errors.ServerError, "").WithCause("oauth.writeToken", err)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	setNoStore(h)
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// errClientAuth is the one answer for every failed client authentication,
// so the response does not tell which part was wrong.
func errClientAuth(op string, cause error) *errors.Error {
	return errors.E(errors.InvalidClient, "Client authentication failed").WithCause(op, cause)
}

// authenticateClient authenticates the client of a token, revocation or
// introspection request: HTTP Basic with form-encoded id and secret (RFC
// 6749 §2.3.1), or client_id/client_secret in the form, or client_id
// alone for a public client when allowPublic. It returns the client and
// the secret it proved.
//
// Errors: invalid_request (two methods at once, mismatched client_id);
// invalid_client; invalid_client_metadata (a metadata document client
// whose document cannot be used); temporarily_unavailable.
func (s *Server) authenticateClient(ctx context.Context, r *http.Request, form url.Values, allowPublic bool) (*Client, string, error) {
	const op = "oauth.authenticateClient"
	var id, secret string
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		if len(h) > 1 {
			return nil, "", errors.E(errors.InvalidRequest, "Authorization header included more than once")
		}
		scheme, _, _ := strings.Cut(h[0], " ")
		if !strings.EqualFold(scheme, "Basic") {
			return nil, "", errClientAuth(op, errors.New("authorization scheme is not Basic"))
		}
		u, p, ok := r.BasicAuth()
		if !ok {
			return nil, "", errClientAuth(op, errors.New("malformed Basic credentials"))
		}
		var err1, err2 error
		id, err1 = url.QueryUnescape(u)
		secret, err2 = url.QueryUnescape(p)
		if err1 != nil || err2 != nil || id == "" {
			return nil, "", errClientAuth(op, errors.New("Basic credentials are not form-encoded"))
		}
		if _, ok := form["client_secret"]; ok {
			return nil, "", errors.E(errors.InvalidRequest, "Use one client authentication method: HTTP Basic or client_secret in the form, not both")
		}
		if fid := form.Get("client_id"); fid != "" && fid != id {
			return nil, "", errors.E(errors.InvalidRequest, "client_id in the form does not match the HTTP Basic credentials")
		}
	} else {
		id, secret = form.Get("client_id"), form.Get("client_secret")
		if id == "" {
			if secret != "" {
				return nil, "", missing("client_id")
			}
			return nil, "", errClientAuth(op, errors.New("no client credentials"))
		}
	}
	c, err := s.lookupClient(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if c == nil {
		// As slow as a known client with a wrong secret.
		(&Client{secretHash: dummyHash[:]}).VerifyPassword(secret)
		return nil, "", errClientAuth(op, errors.New("unknown client"))
	}
	switch {
	case c.Public && secret != "":
		return nil, "", errClientAuth(op, errors.New("public client sent a secret"))
	case c.Public && !allowPublic:
		return nil, "", errClientAuth(op, errors.New("public client on an endpoint that needs authentication"))
	case !c.Public && secret == "":
		return nil, "", errClientAuth(op, errors.New("confidential client sent no secret"))
	case !c.VerifyPassword(secret):
		return nil, "", errClientAuth(op, errors.New("wrong secret"))
	}
	return c, secret, nil
}

// libError turns what go-oauth2's manager returns into authd's errors. The
// library compares its errors by identity and answers most of them with
// 401 or 500; here each becomes the RFC 6749 code, and anything unknown a
// logged server_error.
func (s *Server) libError(err error, op string) error {
	var e *errors.Error
	if errors.As(err, &e) {
		return err
	}
	switch {
	case errors.Is(err, liberrors.ErrInvalidAuthorizeCode):
		return errors.E(errors.InvalidGrant, "The authorization code is invalid, expired, already used, or was issued to another client or redirect_uri").WithCause(op, err)
	case errors.Is(err, liberrors.ErrMissingCodeVerifier):
		return errors.E(errors.InvalidGrant, "PKCE verification failed: code_verifier is missing, or was sent for a code issued without code_challenge").WithCause(op, err)
	case errors.Is(err, liberrors.ErrInvalidCodeChallenge):
		return errors.E(errors.InvalidGrant, "PKCE verification failed: code_verifier does not match code_challenge").WithCause(op, err)
	case errors.Is(err, liberrors.ErrInvalidRedirectURI):
		return errors.E(errors.InvalidGrant, "redirect_uri does not match the authorization request").WithCause(op, err)
	case errors.Is(err, liberrors.ErrInvalidRefreshToken), errors.Is(err, liberrors.ErrExpiredRefreshToken):
		return errRefreshInvalid(op, err)
	case errors.Is(err, liberrors.ErrInvalidClient):
		return errClientAuth(op, err)
	}
	return errors.E(errors.ServerError, "").WithCause(op, err)
}
