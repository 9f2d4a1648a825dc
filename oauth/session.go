package oauth

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth/session"
)

// Single sign-on. A successful sign-in at /authorize (a wallet-signed
// request, the login page, Google or GitHub) starts a session (package
// session): its id goes to the browser in the session cookie, a new id at
// every sign-in, so an id planted in a browser beforehand is never
// adopted. While it lives, /authorize answers the browser's authorization
// requests without a new signature: at once with a code when the client
// already has the person's consent for the scopes asked (consent.go),
// otherwise after the consent page. The ID Tokens of those codes carry the
// session's auth_time and amr, and its handle as sid. /logout ends it
// (logout.go).
//
// OpenID Connect requests may ask for more (OpenID Connect Core 1.0
// §3.1.2.1): prompt=login or select_account, a max_age the session's
// sign-in is older than, or an id_token_hint naming someone else each
// ignore the session (a fresh sign-in); prompt=consent always shows the
// consent page; prompt=none never shows a page, answering login_required
// or consent_required instead.

// Default session lifetimes.
const (
	DefaultSessionIdle = time.Hour
	DefaultSessionMax  = 12 * time.Hour
)

// SessionCookie is the name of the cookie holding a browser's session id.
const SessionCookie = "authd_session"

// sessionCookie is the session cookie: sent to every path of the issuer
// (the authorization, consent and logout endpoints all need it), never to
// scripts, and cross-site only on top-level navigation (SameSite=Lax: a
// client sends the browser to /authorize with a link or redirect, which
// is one). maxAge < 0 deletes it.
func (s *Server) sessionCookie(id string, maxAge int) *http.Cookie {
	path := s.issuerURL.Path
	if path == "" {
		path = "/"
	}
	return &http.Cookie{
		Name:     SessionCookie,
		Value:    id,
		Path:     path,
		MaxAge:   maxAge,
		Secure:   s.issuerURL.Scheme == "https",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	}
}

// sessionID returns the session id r's browser sent, or "" when it sent
// none or several: a second cookie of the name (one a sibling site
// planted for a narrower path, say) makes the browser's session
// ambiguous, and a guess could sign the person in as someone else.
func sessionID(r *http.Request) (id string, present bool) {
	cs := r.CookiesNamed(SessionCookie)
	if len(cs) != 1 {
		return "", len(cs) > 0
	}
	return cs[0].Value, true
}

// browserSession returns the live session of r's browser and its id,
// recording a use of it (see session.Store.Resume), or nil when sessions
// are off or there is none. A session cookie that names no live session
// is deleted on w.
//
// Errors: temporarily_unavailable; server_error.
func (s *Server) browserSession(w http.ResponseWriter, r *http.Request) (string, *session.Session, error) {
	if s.sessions == nil {
		return "", nil, nil
	}
	id, present := sessionID(r)
	if !present {
		return "", nil, nil
	}
	sess, err := s.sessions.Resume(r.Context(), id, "")
	if err != nil {
		return "", nil, err
	}
	if sess == nil {
		http.SetCookie(w, s.sessionCookie("", -1))
		return "", nil, nil
	}
	return id, sess, nil
}

// startSession starts a session for the sign-in in, made for client,
// gives its id to the browser and returns it; in.SessionID becomes its
// handle. The browser's previous session, if any, ends: the browser is
// someone's anew. It returns nil when sessions are off.
//
// Errors: temporarily_unavailable; server_error.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, in *SignIn, client string) (*session.Session, error) {
	if s.sessions == nil {
		return nil, nil
	}
	ctx := r.Context()
	if old, _ := sessionID(r); session.ValidID(old) {
		if _, err := s.sessions.End(ctx, session.Handle(old)); err != nil {
			return nil, err
		}
	}
	id, sess, err := s.sessions.Create(ctx, session.SignIn{Subject: in.Subject, AuthTime: in.AuthTime, Methods: in.Methods, Client: client})
	if err != nil {
		return nil, err
	}
	in.SessionID = sess.Handle
	http.SetCookie(w, s.sessionCookie(id, int(s.sessions.Max()/time.Second)))
	return sess, nil
}

// sessionSignIn is the SignIn an authorization answered from sess
// states: the session's own sign-in.
func sessionSignIn(sess *session.Session) SignIn {
	return SignIn{Subject: sess.Subject, AuthTime: sess.AuthTime, Methods: sess.Methods, SessionID: sess.Handle}
}

// prompts reports whether p's prompt parameter has value.
func (p *Pending) prompts(value string) bool {
	return slices.Contains(strings.Fields(p.Prompt), value)
}

// answersFor reports whether sess may answer p without a fresh sign-in
// (OpenID Connect Core 1.0 §3.1.2.1): not with prompt=login or
// select_account (the login page is where a person picks an account),
// not when p's max_age is shorter than the time since the session's
// sign-in, and not when p's id_token_hint names someone else.
func (p *Pending) answersFor(sess *session.Session, now time.Time) bool {
	switch {
	case p.prompts(PromptLogin), p.prompts(PromptSelectAccount):
		return false
	case p.HasMaxAge && now.UnixMilli()-sess.AuthTime.UnixMilli() > p.MaxAge*1000:
		return false
	case p.HintSubject != "" && p.HintSubject != sess.Subject:
		return false
	}
	return true
}

// authorizeFromSession answers p from the browser's session, when it has
// one that may (answersFor): with a code when the client has the
// person's consent for p's scopes (and prompt=consent was not asked),
// else with the consent page, or consent_required under prompt=none. It
// reports false, having written nothing, when the authorization needs a
// sign-in.
//
// Errors: consent_required (redirected); invalid_request when the client
// is gone; temporarily_unavailable; server_error.
func (s *Server) authorizeFromSession(w http.ResponseWriter, r *http.Request, p *Pending) (bool, error) {
	const op = "oauth.authorizeFromSession"
	id, sess, err := s.browserSession(w, r)
	if err != nil {
		return true, direct(err, op)
	}
	if sess == nil || !p.answersFor(sess, s.now()) {
		return false, nil
	}
	if !p.prompts(PromptConsent) {
		ok, err := s.hasConsent(r.Context(), sess.Subject, p.ClientID, p.Scope)
		if err != nil {
			return true, direct(err, op)
		}
		if ok {
			return true, s.finishFromSession(w, r, p, id, sess)
		}
	}
	if p.promptNone() {
		return true, s.RedirectError(p, errors.ConsentRequired, "The user has not consented to this client's scopes, and prompt=none forbids showing the consent page: send the request without prompt=none")
	}
	return true, s.askConsent(w, r, p, sess)
}

// finishFromSession issues p's code for the session sess (whose id is
// id), records the client on the session and sends the browser to the
// client.
//
// Errors: as FinishAuthorization; temporarily_unavailable.
func (s *Server) finishFromSession(w http.ResponseWriter, r *http.Request, p *Pending, id string, sess *session.Session) error {
	ctx := r.Context()
	loc, err := s.FinishAuthorization(ctx, p, sessionSignIn(sess))
	if err != nil {
		return err
	}
	if _, err := s.sessions.Resume(ctx, id, p.ClientID); err != nil {
		return direct(err, "oauth.finishFromSession")
	}
	redirectTo(w, r, loc)
	return nil
}

// signedIn finishes p for a person who has just signed in as in: it
// starts their session and, when the sign-in was also consent (a signed
// message names the client and scopes; a provider button sits on the
// login page that lists them), records the consent and sends the browser
// to the client with a code. A sign-in that was not consent (the client
// sent the person straight to Google or GitHub) is followed by the consent
// page, unless the client already has the person's consent. With sessions
// off, consent is neither recorded nor asked for: every authorization is
// a sign-in.
//
// Errors: as FinishAuthorization; temporarily_unavailable (answered
// directly); server_error.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, p *Pending, in SignIn, consented bool) error {
	const op = "oauth.signedIn"
	ctx := r.Context()
	sess, err := s.startSession(w, r, &in, p.ClientID)
	if err != nil {
		return direct(err, op)
	}
	if sess != nil {
		if consented {
			if err := s.recordConsent(ctx, in.Subject, p.ClientID, p.Scope); err != nil {
				return direct(err, op)
			}
		} else {
			ok, err := s.hasConsent(ctx, in.Subject, p.ClientID, p.Scope)
			if err != nil {
				return direct(err, op)
			}
			if !ok || p.prompts(PromptConsent) {
				return s.askConsent(w, r, p, sess)
			}
		}
	}
	loc, err := s.FinishAuthorization(ctx, p, in)
	if err != nil {
		return err
	}
	redirectTo(w, r, loc)
	return nil
}
