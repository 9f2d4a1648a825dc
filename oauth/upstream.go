package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/authd-dev/authd/errors"
)

// Upstream is an upstream identity provider people may sign in with
// instead of a wallet (Google, GitHub). The provider package implements
// it; cmd/authd adapts it.
type Upstream interface {
	// Name is "google" or "github": the value of the provider parameter
	// and the last segment of the callback path.
	Name() string
	// Code is the provider's catalog code (google_auth_failed,
	// github_auth_failed).
	Code() errors.Code
	// AuthCodeURL is the provider's authorization URL for authd's own
	// state and PKCE verifier; email asks the provider for the user's
	// verified e-mail address too (the authorization has scope email).
	AuthCodeURL(state, verifier string, email bool) string
	// CallbackError returns the provider's error when the callback query
	// carries one, else nil. The error is an *errors.Error with Code() and
	// ProviderError set.
	CallbackError(q url.Values) error
	// Exchange swaps the callback's code for the user's profile; email
	// is what AuthCodeURL was given. Errors are *errors.Error with Code()
	// and ProviderError set.
	Exchange(ctx context.Context, code, verifier string, email bool) (UpstreamUser, error)
}

// UpstreamUser is who an upstream provider says the user is. Everything
// but Subject is empty when unknown.
type UpstreamUser struct {
	Subject       string // "google:<sub>" or "github:<id>"
	Email         string
	EmailVerified bool   // the provider verified Email
	Login         string // the provider's user name (GitHub)
	Name          string
	Picture       string // URL
}

// upstreamState is what authd keeps in Redis while the user is at the
// provider: the authorization to finish, and the PKCE verifier of authd's
// own request to the provider.
type upstreamState struct {
	Provider string   `json:"provider"`
	Verifier string   `json:"verifier"`
	Pending  *Pending `json:"pending"`
	// Binding is the SHA-256 (hex) of the nonce in the browser's binding
	// cookie (see bindingCookie).
	Binding string `json:"binding"`
}

func upstreamKey(state string) string { return "oauth:upstream:" + hashToken(state) }

// startUpstream sends the browser to the provider for p, under a fresh
// random state that is also the key of p in Redis (for LoginTTL).
//
// Errors: invalid_request (redirected) when the provider is not
// configured; temporarily_unavailable; server_error.
func (s *Server) startUpstream(w http.ResponseWriter, r *http.Request, p *Pending, name string) error {
	const op = "oauth.startUpstream"
	up, ok := s.upstreams[name]
	if !ok {
		return s.RedirectError(p, errors.InvalidRequest, "Provider '"+printable(name, 32)+"' is not configured")
	}
	state, verifier := randomToken(32), randomToken(32) // 43 characters: a valid PKCE verifier
	nonce := randomToken(32)
	if p.IssuedAt.IsZero() {
		p.IssuedAt = s.now().UTC().Truncate(time.Second)
		p.ExpiresAt = p.IssuedAt.Add(s.cfg.LoginTTL)
	}
	b, err := json.Marshal(upstreamState{Provider: name, Verifier: verifier, Pending: p, Binding: hashToken(nonce)})
	if err != nil {
		return errors.E(errors.ServerError, "").WithCause(op, err)
	}
	ctx, cancel := s.opCtx(r.Context())
	defer cancel()
	if err := s.rdb.Set(ctx, upstreamKey(state), b, s.cfg.LoginTTL).Err(); err != nil {
		return direct(errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err), op)
	}
	http.SetCookie(w, s.bindingCookie(state, nonce, int(s.cfg.LoginTTL/time.Second)))
	redirectTo(w, r, up.AuthCodeURL(state, verifier, hasScope(p.Scope, ScopeEmail)))
	return nil
}

// bindingCookie ties an upstream sign-in to the browser that started it:
// the callback is honoured only from a browser holding the cookie named
// for its state, whose value is a random nonce kept (hashed) with the
// sign-in, so nobody can hand a victim a callback URL that signs them in
// as someone else (login CSRF, RFC 6749 §10.12); knowing the state is not
// enough to forge it. It is sent only to the issuer's /callback/ path,
// never to scripts, and cross-site on top-level navigation only
// (SameSite=Lax: the provider's redirect back is one). maxAge < 0 deletes
// it.
func (s *Server) bindingCookie(state, nonce string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     "authd_up_" + hashToken(state)[:12],
		Value:    nonce,
		Path:     s.issuerURL.Path + "/callback/",
		MaxAge:   maxAge,
		Secure:   s.issuerURL.Scheme == "https",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// boundToBrowser reports whether r carries the binding cookie of st.
func (s *Server) boundToBrowser(r *http.Request, state string, st *upstreamState) bool {
	c, err := r.Cookie(s.bindingCookie(state, "", 0).Name)
	return err == nil && st.Binding != "" &&
		subtle.ConstantTimeCompare([]byte(hashToken(c.Value)), []byte(st.Binding)) == 1
}

// Callback handles GET /callback/{provider}: the provider sends the
// browser back with code and state (or error and state). The state is
// taken from Redis once, so a replayed callback finds nothing. On success
// the identity "google:<id>" / "github:<id>" is found or created and the
// client's authorization finishes with a code.
//
// A provider failure for a pending authorization goes back to the client
// as access_denied, described as the provider's failure, with error_uri
// at the provider's catalog entry (errors.Error.DocCode). Without a pending
// authorization (unknown, expired or replayed state) the answer is the
// provider's code, 401, with provider_error: the provider's own error if
// it sent one, else invalid_state.
//
// Errors: google_auth_failed, github_auth_failed (401, no pending
// authorization); access_denied (redirected); not_found for a provider that
// is not configured; temporarily_unavailable; server_error.
func (s *Server) Callback(w http.ResponseWriter, r *http.Request) error {
	const op = "oauth.Callback"
	ctx := r.Context()
	name := r.PathValue("provider")
	up, ok := s.upstreams[name]
	if !ok {
		return errors.E(errors.NotFound, "No sign-in provider at this path")
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return failUpstream(up, "server_error", err)
	}
	providerErr := up.CallbackError(q)
	if e := once(q, "state", "code", "error"); e != nil {
		return e
	}

	// A callback from a browser that did not start this sign-in is
	// refused before the state is used up: it may be someone else's.
	state := q.Get("state")
	st, err := s.upstream(ctx, state, false)
	if err != nil {
		return err
	}
	if st != nil && !s.boundToBrowser(r, state, st) {
		if providerErr != nil {
			return providerErr
		}
		return failUpstream(up, "invalid_state", errors.New("callback from a browser without the sign-in's binding cookie"))
	}
	if st != nil {
		if st, err = s.upstream(ctx, state, true); err != nil {
			return err
		}
		http.SetCookie(w, s.bindingCookie(state, "", -1))
	}
	if st == nil || st.Provider != name || st.Pending == nil {
		if providerErr != nil {
			return providerErr
		}
		return failUpstream(up, "invalid_state", errors.New("unknown, expired or replayed state"))
	}
	p := st.Pending
	if !s.now().Before(p.ExpiresAt) {
		return failUpstream(up, "invalid_state", errors.New("sign-in expired"))
	}
	if providerErr != nil {
		return s.upstreamDenied(p, up, providerErr)
	}
	user, err := up.Exchange(ctx, q.Get("code"), st.Verifier, hasScope(p.Scope, ScopeEmail))
	if err != nil {
		if errors.CodeOf(err) == up.Code() {
			return s.upstreamDenied(p, up, err)
		}
		return direct(err, op)
	}
	if err := s.UpsertIdentity(ctx, Identity{Subject: user.Subject, Kind: name, Email: user.Email, EmailVerified: user.EmailVerified,
		Login: user.Login, Name: user.Name, Picture: user.Picture}); err != nil {
		return direct(err, op)
	}
	return s.signedIn(w, r, p, SignIn{Subject: user.Subject, AuthTime: s.now()}, p.Consented)
}

// failUpstream is up's error with providerError, answered directly.
func failUpstream(up Upstream, providerError string, cause error) *errors.Error {
	e, _ := errors.Lookup(up.Code())
	return errors.E(up.Code(), e.Description).WithCause("oauth.Callback", cause).WithProviderError(providerError)
}

// upstreamDenied sends a provider failure back to p's client as
// access_denied, documented at the provider's catalog entry; the
// provider's own error is logged.
func (s *Server) upstreamDenied(p *Pending, up Upstream, cause error) *errors.Error {
	entry, _ := errors.Lookup(up.Code())
	e := s.RedirectError(p, errors.AccessDenied, entry.Description)
	e.DocCode = up.Code()
	e.Op = "oauth.Callback"
	e.Err = cause
	return e
}

// upstream returns the state's record, deleting it when take is set (once:
// a second take finds nothing), or nil when there is none.
//
// Errors: temporarily_unavailable.
func (s *Server) upstream(ctx context.Context, state string, take bool) (*upstreamState, error) {
	const op = "oauth.upstream"
	if state == "" || len(state) > 128 {
		return nil, nil
	}
	var st upstreamState
	found, err := s.loadJSON(ctx, op, upstreamKey(state), take, &st)
	if !found || err != nil {
		return nil, err
	}
	return &st, nil
}

// printable returns s cut to n bytes with anything outside printable ASCII
// replaced, for echoing a client's value in a description.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '\'' {
			b[i] = '?'
		}
	}
	return string(b)
}
