package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/go-oauth2/oauth2/v4"
	"github.com/redis/go-redis/v9"
)

// WalletUser is a user who proved control of a Bitcoin key.
type WalletUser struct{ Address, PubKey string } // PubKey "" when unknown

// Wallet verifies Bitcoin-signed sign-ins. sigauth.Verifier implements
// it, through an adapter in internal/server.
type Wallet interface {
	// Authenticate verifies the request's X-Auth-Token over the exact
	// request URI (r.RequestURI), accepting each token once.
	//
	// Errors (*errors.Error): missing_auth_token, malformed_auth_token,
	// invalid_public_key, invalid_signature, invalid_timestamp,
	// rate_limit_exceeded, temporarily_unavailable.
	Authenticate(r *http.Request) (WalletUser, error)
	// VerifyLogin verifies a BSM signature by address over message (the
	// login form), counting failures towards the lockout.
	//
	// Errors (*errors.Error): malformed_auth_token, invalid_signature,
	// rate_limit_exceeded, temporarily_unavailable.
	VerifyLogin(r *http.Request, address, message, signature string) (WalletUser, error)
}

// The authorization request parameters (RFC 6749 §4.1.1, RFC 7636 §4.3).
var authorizeParams = []string{"response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge", "code_challenge_method"}

// Pending is a validated authorization request waiting for its user to
// sign in: the client and redirect_uri were checked, so errors about it
// may be redirected. It is JSON-serialisable and kept in Redis while a
// login page (or, later, an upstream provider) is in progress.
type Pending struct {
	// ID identifies the pending login; it is also the nonce in Message.
	ID                  string    `json:"id,omitempty"`
	ClientID            string    `json:"client_id"`
	ClientName          string    `json:"client_name"`
	RedirectURI         string    `json:"redirect_uri"`
	Scope               string    `json:"scope"`
	State               string    `json:"state,omitempty"`
	HasState            bool      `json:"has_state,omitempty"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	IssuedAt            time.Time `json:"issued_at"`
	ExpiresAt           time.Time `json:"expires_at"`
	// Message is the exact text the user signs on the login page.
	Message string `json:"message,omitempty"`
	// Binding is the SHA-256 (hex) of the nonce in the login cookie of
	// the browser the login page was shown to (see startLogin); empty for
	// a pending authorization no login page was made for.
	Binding string `json:"binding,omitempty"`

	// Resources are the resource indicators (RFC 8707) the authorization
	// grants: the audience of its tokens. Empty: authd's own APIs.
	Resources []string `json:"resources,omitempty"`
	// Unverified is set for a client no operator registered (see
	// Client.Verified); ClientOrigin is then where its identity comes
	// from, when it has one (Client.Origin). Pages show both.
	Unverified   bool   `json:"unverified,omitempty"`
	ClientOrigin string `json:"client_origin,omitempty"`

	// OpenID Connect parameters (OpenID Connect Core 1.0 §3.1.2.1), read
	// only when Scope has openid: the nonce to echo in the ID Token, the
	// validated prompt values, max_age, the subject of a verified
	// id_token_hint (the user who must sign in) and a login_hint to
	// pre-fill the login page with. A fresh sign-in meets max_age and
	// prompt=login; a session is used only when it meets them too
	// (session.go).
	Nonce       string `json:"nonce,omitempty"`
	Prompt      string `json:"prompt,omitempty"`
	MaxAge      int64  `json:"max_age,omitempty"`
	HasMaxAge   bool   `json:"has_max_age,omitempty"`
	HintSubject string `json:"hint_subject,omitempty"`
	LoginHint   string `json:"login_hint,omitempty"`

	// Consented is set when the person chose a provider on the login
	// page, which lists the client and scopes: the sign-in is consent, as
	// a signed message is. A provider sign-in the client started itself
	// is not (see signedIn).
	Consented bool `json:"consented,omitempty"`
}

// redirect is where errors about p go (RFC 6749 §4.1.2.1, RFC 9207).
func (s *Server) redirect(p *Pending) *errors.Redirect {
	return &errors.Redirect{URI: p.RedirectURI, State: p.State, HasState: p.HasState, Issuer: s.issuer}
}

// RedirectError returns an error that httperr.Write delivers to p's
// validated redirect_uri, with p's state and the issuer. Use it for
// failures of an authorization whose client was validated, such as a
// failed upstream sign-in (access_denied).
//
// Errors: the returned error has the given code.
func (s *Server) RedirectError(p *Pending, code errors.Code, description string) *errors.Error {
	e := errors.E(code, description)
	e.Redirect = s.redirect(p)
	return e
}

// clientLookup finds a client by id (nil when unknown).
type clientLookup func(ctx context.Context, id string) (*Client, error)

// validateAuthorize checks an authorization request in the order that
// keeps redirects safe: client_id, then redirect_uri (exact match, only a
// loopback IP's port may vary); errors up to there are answered directly.
// Everything after is redirected to the now validated redirect_uri.
//
// Errors: invalid_request, unsupported_response_type, unauthorized_client,
// invalid_scope, invalid_target, request_not_supported,
// request_uri_not_supported, registration_not_supported (directly when
// redirect_uri is missing or unregistered, else redirected);
// invalid_client_metadata (directly) for a metadata document client whose
// document cannot be used; temporarily_unavailable.
func (s *Server) validateAuthorize(ctx context.Context, v url.Values, lookup clientLookup) (*Pending, error) {
	if e := once(v, "client_id"); e != nil {
		return nil, e
	}
	id := v.Get("client_id")
	if id == "" {
		return nil, missing("client_id")
	}
	c, err := lookup(ctx, id)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.E(errors.InvalidRequest, "Unknown client_id: no client is registered with this id")
	}
	if e := once(v, "redirect_uri"); e != nil {
		return nil, e
	}
	ru := v.Get("redirect_uri")
	if ru == "" || !c.redirectAllowed(ru) {
		// A request object may carry redirect_uri itself (OpenID Connect
		// Core 1.0 §6.1): say what is not supported, directly.
		if e := unsupportedRequestParam(v); e != nil {
			return nil, e
		}
		if ru == "" {
			return nil, missing("redirect_uri")
		}
		return nil, errors.E(errors.InvalidRequest, "The redirect_uri is not registered for this client")
	}

	// From here on, errors go back to the client.
	p := &Pending{ClientID: c.ID, ClientName: c.displayName(), RedirectURI: ru, Unverified: !c.Verified(), ClientOrigin: c.Origin()}
	// state is echoed whenever it was present, even empty (RFC 6749
	// §4.1.2.1); a repeated one is refused just below, echoing neither.
	if st := v["state"]; len(st) == 1 {
		p.State, p.HasState = st[0], true
	}
	fail := func(code errors.Code, desc string) error { return s.RedirectError(p, code, desc) }
	if e := once(v, authorizeParams...); e != nil {
		return nil, fail(e.Code, e.Description)
	}
	if e := unsupportedRequestParam(v); e != nil {
		return nil, fail(e.Code, e.Description)
	}
	switch rt := v.Get("response_type"); rt {
	case "code":
	case "":
		return nil, fail(errors.InvalidRequest, "Missing required parameter: response_type")
	default:
		if len(rt) > 40 {
			rt = rt[:40] + "..."
		}
		return nil, fail(errors.UnsupportedResponseType, "Response type '"+rt+"' is not supported")
	}
	if !c.allows(GrantAuthorizationCode) {
		return nil, fail(errors.UnauthorizedClient, "This client is not registered for the authorization_code grant")
	}
	scopes := c.Scopes
	if raw := v.Get("scope"); raw != "" {
		want, ok := parseScope(raw)
		if !ok {
			return nil, fail(errors.InvalidScope, "The scope parameter is malformed (RFC 6749 section 3.3)")
		}
		if !subset(want, c.Scopes) {
			return nil, fail(errors.InvalidScope, "The requested scope exceeds the scopes registered for this client")
		}
		scopes = want
	}
	p.Scope = strings.Join(scopes, " ")
	res, e := requestedResources(v)
	if e == nil {
		e = s.allowedResources(c, res)
	}
	if e != nil {
		return nil, fail(e.Code, e.Description)
	}
	p.Resources = res
	cc, ccm := v.Get("code_challenge"), v.Get("code_challenge_method")
	switch {
	case cc == "" && ccm != "":
		return nil, fail(errors.InvalidRequest, "code_challenge_method was sent without code_challenge")
	case cc == "" && c.Public:
		return nil, fail(errors.InvalidRequest, "PKCE is required for public clients: send code_challenge with code_challenge_method=S256")
	case cc == "":
	case ccm != "S256":
		// Absent means plain (RFC 7636 §4.3), which authd refuses.
		return nil, fail(errors.InvalidRequest, "code_challenge_method must be S256; plain is not supported")
	case !validChallenge(cc):
		return nil, fail(errors.InvalidRequest, "code_challenge must be 43 characters of base64url: BASE64URL(SHA256(code_verifier)) (RFC 7636 section 4.2)")
	default:
		p.CodeChallenge, p.CodeChallengeMethod = cc, "S256"
	}
	if hasScope(p.Scope, ScopeOpenID) {
		if e := s.readOIDC(ctx, v, p); e != nil {
			return nil, fail(e.Code, e.Description)
		}
	}
	return p, nil
}

// Authorize handles GET and POST /authorize (RFC 6749 §4.1.1). It validates
// the request (see validateAuthorize), then signs the user in: with an
// X-Auth-Token (or Authorization: Bitcoin-Auth) over this exact request,
// which is sign-in and consent at once, it redirects to the client with a
// code and starts a session; without one, a live session of the browser
// answers (with a code, or the consent page when the client lacks consent
// for the scopes; see session.go), and otherwise the login page (or, to a
// client that prefers JSON, missing_auth_token).
//
// Wallet failures, 429 and 503 are answered directly, never redirected
// (only errors about the authorization request itself go back to the
// client): JSON when the request prefers it, else the login page with the
// error shown.
//
// With openid in the scope it is an OpenID Connect authentication request
// (OpenID Connect Core 1.0 §3.1.2): see readOIDC for its parameters.
// prompt=none is honoured by a wallet-signed request and by a session
// whose consent covers the request, the kinds that need no page.
//
// Errors: invalid_request, unsupported_response_type, unauthorized_client,
// invalid_scope, login_required, consent_required, request_not_supported,
// request_uri_not_supported, registration_not_supported (redirected once
// the client and redirect_uri are valid); missing_auth_token,
// malformed_auth_token, invalid_public_key, invalid_signature,
// invalid_timestamp, rate_limit_exceeded (from the Wallet);
// request_too_large; temporarily_unavailable; server_error.
func (s *Server) Authorize(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	v, body, err := s.authorizeRequest(w, r)
	if err != nil {
		return err
	}
	p, err := s.validateAuthorize(ctx, v, s.lookupClient)
	if err != nil {
		return err
	}
	if e := once(v, "provider"); e != nil {
		return s.RedirectError(p, e.Code, e.Description)
	}
	// prompt=none: no page may be shown (OpenID Connect Core 1.0
	// §3.1.2.1). A wallet-signed request signs the user in and consents
	// without one, and a session may answer without one (session.go);
	// anything else would need the login page or the provider's.
	if p.promptNone() && v.Has("provider") {
		return s.errLoginRequired(p)
	}
	if v.Has("provider") {
		return s.startUpstream(w, r, p, v.Get("provider"))
	}
	if hasWalletToken(r) {
		return s.walletAuthorize(w, r, p, body)
	}
	if done, err := s.authorizeFromSession(w, r, p); done {
		return err
	}
	if p.promptNone() {
		return s.errLoginRequired(p)
	}
	if !httperr.PrefersHTML(r) {
		return errors.E(errors.MissingAuthToken, "X-Auth-Token header is required for Bitcoin authentication: sign this exact request URI, or open it in a browser to sign in")
	}
	if err := s.startLogin(w, r, p); err != nil {
		return err
	}
	return s.renderLogin(w, loginView{Pending: p})
}

// authorizeRequest returns the request's parameters: the query, plus for a
// POST the form body (a parameter in both counts as repeated). The raw
// body is returned so a signed POST can be verified over it.
func (s *Server) authorizeRequest(w http.ResponseWriter, r *http.Request) (url.Values, []byte, error) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, nil, errors.E(errors.InvalidRequest, "The query string is malformed").WithCause("oauth.Authorize", err)
	}
	if r.Method != http.MethodPost {
		return v, nil, nil
	}
	form, body, err := readForm(w, r)
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range form {
		v[k] = append(v[k], vs...)
	}
	return v, body, nil
}

// hasWalletToken reports whether the request carries Bitcoin
// authentication, which selects the wallet-driven flow.
func hasWalletToken(r *http.Request) bool {
	if len(r.Header.Values("X-Auth-Token")) > 0 {
		return true
	}
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "Bitcoin-Auth")
}

// walletAuthorize runs the wallet-driven flow: the signed request is the
// user's sign-in and consent.
func (s *Server) walletAuthorize(w http.ResponseWriter, r *http.Request, p *Pending, body []byte) error {
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	u, err := s.wallet.Authenticate(r)
	if err != nil {
		return s.walletFailed(w, r, p, direct(err, "oauth.Authorize"))
	}
	return s.finishWallet(w, r, p, u)
}

// walletFailed answers a failed wallet sign-in at /authorize. A browser
// gets the failure on a fresh login page for p, so the person can still
// sign in by hand: the page's pending login is stored here, before the
// error is returned, since rendering a page has no side effects. When
// that fails too (Redis is down), the page shows the error alone.
func (s *Server) walletFailed(w http.ResponseWriter, r *http.Request, p *Pending, err *errors.Error) error {
	w.Header().Set("Content-Security-Policy", loginCSP(p))
	if !httperr.PrefersHTML(r) {
		return err
	}
	fresh := *p
	if s.startLogin(w, r, &fresh) != nil {
		return httperr.WithPage(err, s.loginPage(nil, ""))
	}
	return httperr.WithPage(err, s.loginPage(&fresh, ""))
}

// direct returns err as an *errors.Error that is never redirected.
func direct(err error, op string) *errors.Error {
	var e *errors.Error
	if !errors.As(err, &e) {
		return errors.E(errors.ServerError, "").WithCause(op, err)
	}
	c := *e
	c.Redirect = nil
	return &c
}

// redirectTo sends the browser to loc: 302 after a GET, 303 after a POST
// (RFC 9700 §4.12: never 307 after a POST carrying credentials).
func redirectTo(w http.ResponseWriter, r *http.Request, loc string) {
	h := w.Header()
	h.Set("Location", loc)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusSeeOther)
		return
	}
	w.WriteHeader(http.StatusFound)
}

func loginKey(id string) string { return "authd:oauth:login:" + id }

// SavePending stores p for LoginTTL under a new single-use nonce, which
// becomes p.ID, and sets p's times and the message its user signs.
//
// Errors: temporarily_unavailable.
func (s *Server) SavePending(ctx context.Context, p *Pending) error {
	const op = "oauth.SavePending"
	p.ID = randomToken(16)
	p.IssuedAt = s.now().UTC().Truncate(time.Second)
	p.ExpiresAt = p.IssuedAt.Add(s.cfg.LoginTTL)
	p.Message = s.loginMessage(p)
	b, err := json.Marshal(p)
	if err != nil {
		return errors.E(errors.ServerError, "").WithCause(op, err)
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := s.rdb.Set(ctx, loginKey(p.ID), b, s.cfg.LoginTTL).Err(); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return nil
}

// errLoginGone is the answer for a login id that is unknown, expired or
// already used.
func errLoginGone(op string, cause error) *errors.Error {
	return errors.E(errors.InvalidRequest, "This sign-in request has expired or was already used; start again from the application").WithCause(op, cause)
}

// LoadPending returns the pending authorization id, leaving it in place.
//
// Errors: invalid_request when it is unknown, expired or used;
// temporarily_unavailable.
func (s *Server) LoadPending(ctx context.Context, id string) (*Pending, error) {
	return s.pending(ctx, id, false)
}

// TakePending returns the pending authorization id and deletes it, so it
// is finished at most once.
//
// Errors: invalid_request when it is unknown, expired or already taken;
// temporarily_unavailable.
func (s *Server) TakePending(ctx context.Context, id string) (*Pending, error) {
	return s.pending(ctx, id, true)
}

func (s *Server) pending(ctx context.Context, id string, take bool) (*Pending, error) {
	const op = "oauth.pending"
	if !validFamily(id) { // same shape: 22 base64url characters
		return nil, errLoginGone(op, errors.New("malformed login id"))
	}
	var p Pending
	found, err := s.loadJSON(ctx, op, loginKey(id), take, &p)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, errLoginGone(op, errors.New("no such login"))
	}
	if !s.now().Before(p.ExpiresAt) {
		return nil, errLoginGone(op, errors.New("login expired"))
	}
	return &p, nil
}

// loadJSON reads the JSON value at key into v, deleting it when take is
// set (GETDEL: of several takers, one finds it), and reports whether it
// was there.
//
// Errors: temporarily_unavailable; server_error for a value that is not
// v's JSON.
func (s *Server) loadJSON(ctx context.Context, op, key string, take bool, v any) (bool, error) {
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	var cmd *redis.StringCmd
	if take {
		cmd = s.rdb.GetDel(ctx, key)
	} else {
		cmd = s.rdb.Get(ctx, key)
	}
	b, err := cmd.Bytes()
	if err == redis.Nil {
		return false, nil
	}
	if err != nil {
		return false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, errors.E(errors.ServerError, "").WithCause(op, err)
	}
	return true, nil
}

// FinishAuthorization issues a code for p to the user who signed in (and
// consented) as in, and returns the URL to send the browser to: p's
// redirect_uri with code, state and iss (RFC 9207). The code remembers
// in, for the ID Token. The client is checked again, since it may have
// changed while the user was signing in.
//
// Errors: invalid_request when the client or its redirect_uri is gone,
// invalid_client_metadata when its metadata document no longer serves
// (both answered directly); login_required (redirected) when p's
// id_token_hint names another user; invalid_target (redirected) when a
// resource is no longer allowed; temporarily_unavailable; server_error.
func (s *Server) FinishAuthorization(ctx context.Context, p *Pending, in SignIn) (string, error) {
	const op = "oauth.FinishAuthorization"
	subject := in.Subject
	if subject == "" || in.AuthTime.IsZero() {
		return "", errors.E(errors.ServerError, "").WithCause(op, errors.New("sign-in without a subject or time"))
	}
	if p.HintSubject != "" && p.HintSubject != subject {
		// OpenID Connect Core 1.0 §3.1.2.1: the hint names who must be
		// signed in.
		return "", s.RedirectError(p, errors.LoginRequired, "The user who signed in is not the one named by id_token_hint")
	}
	c, err := s.lookupClient(ctx, p.ClientID)
	if err != nil {
		return "", direct(err, op)
	}
	if c == nil || !c.redirectAllowed(p.RedirectURI) || !c.allows(GrantAuthorizationCode) {
		return "", errors.E(errors.InvalidRequest, "The client or its redirect_uri is no longer registered")
	}
	if err := s.allowedResources(c, p.Resources); err != nil {
		return "", s.RedirectError(p, err.Code, err.Description)
	}
	if err := s.rememberDocumentClient(ctx, c); err != nil {
		return "", err
	}
	tgr := &oauth2.TokenGenerateRequest{
		ClientID:    c.ID,
		UserID:      subject,
		RedirectURI: p.RedirectURI,
		Scope:       p.Scope,
	}
	if p.CodeChallenge != "" {
		tgr.CodeChallenge = p.CodeChallenge
		tgr.CodeChallengeMethod = oauth2.CodeChallengeS256
	}
	ctx = withGrantResources(withCodeSignIn(withClient(ctx, c), &codeSignIn{SignIn: in, Nonce: p.Nonce}), p.Resources)
	ti, err := s.mgr.GenerateAuthToken(ctx, oauth2.Code, tgr)
	if err != nil {
		return "", direct(s.libError(err, op), op)
	}
	params := [][2]string{{"code", ti.GetCode()}}
	if p.HasState {
		params = append(params, [2]string{"state", p.State})
	}
	params = append(params, [2]string{"iss", s.issuer})
	loc, err := appendQuery(p.RedirectURI, params)
	if err != nil {
		return "", errors.E(errors.ServerError, "").WithCause(op, err)
	}
	return loc, nil
}

// responseParams are the parameters an authorization response may carry
// (RFC 6749 §4.1.2, §4.1.2.1, RFC 9207): a registered redirect URI's own
// parameters of these names never reach the client, so a state is present
// only when the request sent one.
var responseParams = []string{"code", "state", "iss", "error", "error_description", "error_uri"}

// appendQuery adds params to the registered redirect URI u, keeping u's
// own query byte for byte (RFC 6749 §3.1.2: it must be retained) except
// for parameters named like a response parameter, and dropping any
// fragment.
func appendQuery(u string, params [][2]string) (string, error) {
	if _, err := url.Parse(u); err != nil {
		return "", err
	}
	base, _, _ := strings.Cut(u, "#")
	base, query, _ := strings.Cut(base, "?")
	var parts []string
	for _, part := range strings.Split(query, "&") {
		if part == "" {
			continue
		}
		k, _, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err == nil && slices.Contains(responseParams, dk) {
			continue
		}
		parts = append(parts, part)
	}
	for _, p := range params {
		parts = append(parts, url.QueryEscape(p[0])+"="+url.QueryEscape(p[1]))
	}
	return base + "?" + strings.Join(parts, "&"), nil
}

// loginMessage is the text the user signs: human-readable, one field per
// line, and bound to this server and this request, so a signature made for
// one sign-in is worthless for any other.
func (s *Server) loginMessage(p *Pending) string {
	dest := redirectHost(p.RedirectURI)
	clean := func(x string) string {
		return strings.Map(func(r rune) rune {
			if isControl(r) {
				return ' '
			}
			return r
		}, x)
	}
	var b strings.Builder
	b.WriteString("Sign in to " + s.issuerURL.Host + "\n")
	app := clean(p.ClientName)
	if p.Unverified {
		// Its name is its own claim: say so, and where it comes from.
		if o, err := url.Parse(p.ClientOrigin); err == nil && o.Host != "" {
			app += " (unverified, from " + o.Host + ")"
		} else {
			app += " (unverified)"
		}
	}
	b.WriteString("Application: " + app + "\n")
	b.WriteString("Client ID: " + p.ClientID + "\n")
	b.WriteString("Redirect to: " + clean(dest) + "\n")
	b.WriteString("Scopes: " + p.Scope + "\n")
	if len(p.Resources) > 0 {
		// The APIs the tokens will open (RFC 8707): printable ASCII.
		b.WriteString("Resources: " + strings.Join(p.Resources, " ") + "\n")
	}
	b.WriteString("Nonce: " + p.ID + "\n")
	b.WriteString("Issued At: " + p.IssuedAt.UTC().Format(time.RFC3339) + "\n")
	b.WriteString("Expires At: " + p.ExpiresAt.UTC().Format(time.RFC3339))
	return b.String()
}

// Login handles POST /authorize/login: the login page's form (login_id,
// address, signature, or provider). A valid signature over the page's
// message signs the user in and redirects to the client with a code
// (303); a failure shows the login page again with the error, keeping the
// request.
//
// The form is accepted only from the browser its page was shown to, and
// never from another site, so that nobody can sign a person in to their
// own account (login CSRF, RFC 6749 §10.12): a post with a foreign Origin
// or Sec-Fetch-Site: cross-site is refused before the form is read, and
// one without the login's binding cookie before anything is verified or
// used up (see startLogin). Both are access_denied, answered directly.
//
// Errors: access_denied (cross-site, or not the browser of the login
// page); invalid_request (missing field, unknown or expired login);
// malformed_auth_token, invalid_signature, rate_limit_exceeded (from the
// Wallet); request_too_large; temporarily_unavailable; server_error.
func (s *Server) Login(w http.ResponseWriter, r *http.Request) error {
	const op = "oauth.Login"
	ctx := r.Context()
	if err := s.sameOrigin(r); err != nil {
		return err
	}
	form, _, err := readForm(w, r)
	if err != nil {
		return err
	}
	if e := once(form, "login_id", "address", "signature", "provider"); e != nil {
		return e
	}
	id := form.Get("login_id")
	if id == "" {
		return missing("login_id")
	}
	p, err := s.LoadPending(ctx, id)
	if err != nil {
		return err
	}
	if err := s.boundLogin(r, p); err != nil {
		return err
	}
	address := strings.TrimSpace(form.Get("address"))
	signature := strings.TrimSpace(form.Get("signature"))
	// Until the sign-in succeeds, a failure is shown on the login page
	// again, with the request and the address kept.
	w.Header().Set("Content-Security-Policy", loginCSP(p))
	onPage := func(err error) error { return httperr.WithPage(err, s.loginPage(p, address)) }
	if form.Has("provider") {
		prov := form.Get("provider")
		if s.upstreams[prov] == nil {
			return onPage(errors.E(errors.InvalidRequest, "Provider '"+printable(prov, 32)+"' is not configured"))
		}
		if p, err = s.TakePending(ctx, id); err != nil {
			return onPage(err)
		}
		http.SetCookie(w, s.loginCookie(id, "", -1))
		p.Consented = true // the page listed the client and scopes
		return onPage(s.startUpstream(w, r, p, prov))
	}
	if address == "" {
		return onPage(missing("address"))
	}
	if signature == "" {
		return onPage(missing("signature"))
	}
	u, err := s.wallet.VerifyLogin(r, address, p.Message, signature)
	if err != nil {
		return onPage(direct(err, op))
	}
	p, err = s.TakePending(ctx, id)
	if err != nil {
		return err
	}
	http.SetCookie(w, s.loginCookie(id, "", -1))
	return s.finishWallet(w, r, p, u)
}

// finishWallet completes p for the wallet user u, whose signature over a
// message naming the client and scopes is their consent: it records u,
// starts their session, issues the code and sends the browser to the
// client (signedIn).
func (s *Server) finishWallet(w http.ResponseWriter, r *http.Request, p *Pending, u WalletUser) error {
	sub, err := s.signInWallet(r.Context(), u)
	if err != nil {
		return err
	}
	return s.signedIn(w, r, p, s.walletSignIn(sub), true)
}

// signInWallet records the wallet user and returns their subject: the
// Bitcoin address.
func (s *Server) signInWallet(ctx context.Context, u WalletUser) (string, error) {
	const op = "oauth.signInWallet"
	if u.Address == "" {
		return "", errors.E(errors.ServerError, "").WithCause(op, errors.New("wallet returned no address"))
	}
	if err := s.UpsertIdentity(ctx, Identity{Subject: u.Address, Kind: KindWallet, Address: u.Address, PubKey: u.PubKey}); err != nil {
		return "", err
	}
	return u.Address, nil
}
