package oauth

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth/session"
)

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0): a client
// sends the browser to /logout to end the person's session at authd.
//
// An id_token_hint (one of authd's ID Tokens, expired or not) proves
// which session the client means: that session ends at once. Any other
// session the browser holds ends only after the person confirms on a page
// whose form is bound to that session, so that a page of a third party,
// which can send anyone's browser to /logout, cannot sign them out. Then
// the browser goes to the client's post_logout_redirect_uri, with state,
// when the client registered that exact URI; else it sees the signed-out
// page.

// logoutParams are the parameters of a logout request; none may be
// repeated. ui_locales and logout_hint are accepted and ignored.
var logoutParams = []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales", "logout_hint", "logout_id"}

// logoutTarget is where the browser goes after signing out.
type logoutTarget struct {
	// RedirectURI is the validated post_logout_redirect_uri, or "" for
	// the signed-out page.
	RedirectURI string `json:"redirect_uri,omitempty"`
	State       string `json:"state,omitempty"`
	HasState    bool   `json:"has_state,omitempty"`
	// ClientName names the client that asked, for the pages; "" when it
	// is not known.
	ClientName string `json:"client_name,omitempty"`
	Verified   bool   `json:"verified,omitempty"`
}

// pendingLogout is a sign-out waiting for the person to confirm it,
// bound to the session it ends.
type pendingLogout struct {
	Session string       `json:"session"`
	Target  logoutTarget `json:"target"`
}

func logoutKey(id string) string { return "authd:oauth:logout:" + hashToken(id) }

// Logout handles GET and POST /logout: the end-session endpoint (OpenID
// Connect RP-Initiated Logout 1.0 §2), with id_token_hint, client_id,
// post_logout_redirect_uri and state; and the POST of its confirmation
// form (logout_id). See the top of this file for what it ends when.
//
// A client's request may come from any site; the confirmation is accepted
// only from the browser and session its page was shown to (a foreign
// Origin or Sec-Fetch-Site: cross-site, or another session, is
// access_denied, answered directly).
//
// Errors (all answered directly, on a page for a browser): invalid_request
// (repeated or malformed parameter, an id_token_hint that is not one of
// authd's ID Tokens, a client_id other than the hint's audience, an
// unknown client, a post_logout_redirect_uri the client did not register
// or without a client, an unknown, expired or used confirmation);
// access_denied (a confirmation from another site, browser or session);
// request_too_large; temporarily_unavailable; server_error.
func (s *Server) Logout(w http.ResponseWriter, r *http.Request) error {
	const op = "oauth.Logout"
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errors.E(errors.InvalidRequest, "The query string is malformed").WithCause(op, err)
	}
	if r.Method == http.MethodPost {
		form, _, err := readForm(w, r)
		if err != nil {
			return err
		}
		for k, vs := range form {
			v[k] = append(v[k], vs...)
		}
	}
	if e := once(v, logoutParams...); e != nil {
		return e
	}
	if v.Has("logout_id") {
		if r.Method != http.MethodPost {
			return errors.E(errors.InvalidRequest, "A sign-out is confirmed by posting the form of its page")
		}
		return s.confirmLogout(w, r, v.Get("logout_id"))
	}
	target, hint, err := s.logoutRequest(r, v)
	if err != nil {
		return err
	}
	id, sess, err := s.browserSession(w, r)
	if err != nil {
		return direct(err, op)
	}
	if hint != nil && s.sessions != nil {
		// The hint names the session to end: by its sid, or, for an ID
		// Token issued without one, the browser's session when it is
		// the hint's subject's.
		handle := hint.SessionID
		if handle == "" && sess != nil && sess.Subject == hint.Subject {
			handle = sess.Handle
		}
		if handle != "" {
			named := sess
			if sess == nil || sess.Handle != handle {
				if named, err = s.sessions.Get(r.Context(), handle); err != nil {
					return direct(err, op)
				}
			}
			if named != nil && named.Subject == hint.Subject {
				if _, err := s.sessions.End(r.Context(), handle); err != nil {
					return direct(err, op)
				}
				if sess != nil && sess.Handle == handle {
					sess = nil
				}
			}
		}
	}
	if sess != nil {
		return s.askLogout(w, r, sess, target)
	}
	if id != "" || len(r.CookiesNamed(SessionCookie)) > 1 {
		// The browser's session ended by the hint, or an ambiguous pair.
		http.SetCookie(w, s.sessionCookie("", -1))
	}
	return s.signedOut(w, r, target)
}

// logoutRequest validates a client's logout request: the hint, the
// client and the post_logout_redirect_uri.
//
// Errors: invalid_request; temporarily_unavailable.
func (s *Server) logoutRequest(r *http.Request, v url.Values) (logoutTarget, *idTokenHint, error) {
	const op = "oauth.Logout"
	var (
		t    logoutTarget
		hint *idTokenHint
	)
	if raw := v.Get("id_token_hint"); raw != "" {
		h, e := s.verifyIDTokenHint(r.Context(), raw)
		if e != nil {
			return t, nil, e
		}
		hint = &h
	}
	clientID := v.Get("client_id")
	if hint != nil {
		if clientID != "" && clientID != hint.ClientID {
			return t, nil, errors.E(errors.InvalidRequest, "client_id is not the client the id_token_hint was issued to")
		}
		clientID = hint.ClientID
	}
	ru := v.Get("post_logout_redirect_uri")
	var c *Client
	if clientID != "" {
		var err error
		if c, err = s.clients.get(r.Context(), clientID); err != nil {
			return t, nil, direct(err, op)
		}
		if c == nil {
			return t, nil, errors.E(errors.InvalidRequest, "Unknown client_id: no client is registered with this id")
		}
		t.ClientName, t.Verified = c.displayName(), c.Verified()
	}
	if ru != "" {
		if c == nil {
			return t, nil, errors.E(errors.InvalidRequest, "post_logout_redirect_uri needs client_id or id_token_hint, to know whose registered URIs it must be one of")
		}
		// Exact match only (RP-Initiated Logout 1.0 §3.1): no port may
		// vary.
		if !slices.Contains(c.PostLogoutRedirectURIs, ru) {
			return t, nil, errors.E(errors.InvalidRequest, "The post_logout_redirect_uri is not registered for this client")
		}
		t.RedirectURI = ru
		if st, ok := v["state"]; ok {
			t.State, t.HasState = st[0], true
		}
	}
	return t, hint, nil
}

// signedOut sends the browser where a finished sign-out leads: the
// client's post_logout_redirect_uri with state, or the signed-out page.
//
// Errors: server_error.
func (s *Server) signedOut(w http.ResponseWriter, r *http.Request, t logoutTarget) error {
	if t.RedirectURI == "" {
		return renderPage(w, signedOutTemplate, t, "")
	}
	loc := t.RedirectURI
	if t.HasState {
		var err error
		if loc, err = appendQuery(t.RedirectURI, [][2]string{{"state", t.State}}); err != nil {
			return errors.E(errors.ServerError, "").WithCause("oauth.signedOut", err)
		}
	}
	redirectTo(w, r, loc)
	return nil
}

// logoutView is what the sign-out page shows.
type logoutView struct {
	logoutTarget
	ID       string
	Action   string
	Issuer   string
	Subject  string
	SignedIn string
}

var logoutTemplate = newPage("logout", `<!doctype html>
<html lang="en">
<head>
{{template "head"}}
<title>Sign out of {{.Issuer}}? - authd</title>
</head>
<body>
<main>
<h1>Sign out of {{.Issuer}}?</h1>
{{if .ClientName}}<p><strong>{{.ClientName}}</strong>{{if not .Verified}} (unverified){{end}} asks you to sign out.</p>
{{end}}<p>You are signed in as <code>{{.Subject}}</code> since {{.SignedIn}}. Signing out means the next application
that asks will need your signature again.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="logout_id" value="{{.ID}}">
<button type="submit">Sign out</button>
</form>
<p class="meta">If you did not ask to sign out, close this page: you stay signed in. Signing out of authd does not sign you
out of applications you are already signed in to.</p>
</main>
</body>
</html>
`)

var signedOutTemplate = newPage("signed-out", `<!doctype html>
<html lang="en">
<head>
{{template "head"}}
<title>Signed out - authd</title>
</head>
<body>
<main>
<h1>You are signed out</h1>
<p>Your authd session has ended: the next application that asks will need your signature again.</p>
<p class="meta">Applications you signed in to may keep you signed in to them until you sign out there too. You can close this page.</p>
</main>
</body>
</html>
`)

// askLogout shows the sign-out confirmation for the browser's session
// sess: its form carries a new single-use token, kept for LoginTTL with
// where to go afterwards and bound to sess.
//
// Errors: temporarily_unavailable; server_error.
func (s *Server) askLogout(w http.ResponseWriter, r *http.Request, sess *session.Session, t logoutTarget) error {
	const op = "oauth.askLogout"
	id := randomToken(32)
	b, err := json.Marshal(pendingLogout{Session: sess.Handle, Target: t})
	if err != nil {
		return errors.E(errors.ServerError, "").WithCause(op, err)
	}
	ctx, cancel := s.opCtx(r.Context())
	defer cancel()
	if err := s.rdb.Set(ctx, logoutKey(id), b, s.cfg.LoginTTL).Err(); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return renderPage(w, logoutTemplate, logoutView{
		logoutTarget: t,
		ID:           id,
		Action:       s.issuerURL.Path + "/logout",
		Issuer:       s.issuerURL.Host,
		Subject:      sess.Subject,
		SignedIn:     sess.AuthTime.UTC().Format(time.RFC1123),
	}, formCSP(t.RedirectURI))
}

// errForeignLogout is the answer to a sign-out confirmation that did not
// come from its page in this browser and session.
func errForeignLogout(cause string) *errors.Error {
	return errors.E(errors.AccessDenied, "This sign-out form was not submitted from the page authd showed this browser, or its session has already ended").
		WithCause("oauth.Logout", errors.New(cause))
}

// confirmLogout handles the sign-out page's form: from the browser and
// session it was shown to, it ends the session and leads on (signedOut).
//
// Errors: access_denied; invalid_request; temporarily_unavailable;
// server_error.
func (s *Server) confirmLogout(w http.ResponseWriter, r *http.Request, id string) error {
	const op = "oauth.confirmLogout"
	ctx := r.Context()
	if cause := s.crossSite(r); cause != "" {
		return errForeignLogout(cause)
	}
	gone := func(cause string) error {
		return errors.E(errors.InvalidRequest, "This sign-out request has expired or was already used; open the sign-out page again").WithCause(op, errors.New(cause))
	}
	if id == "" || len(id) > 64 {
		return gone("malformed logout id")
	}
	var pl pendingLogout
	found, err := s.loadJSON(ctx, op, logoutKey(id), false, &pl)
	if err != nil {
		return direct(err, op)
	}
	if !found {
		return gone("no such logout")
	}
	_, sess, err := s.browserSession(w, r)
	if err != nil {
		return direct(err, op)
	}
	if sess == nil || subtle.ConstantTimeCompare([]byte(sess.Handle), []byte(pl.Session)) != 1 {
		return errForeignLogout("not the session the sign-out page was shown to")
	}
	if found, err = s.loadJSON(ctx, op, logoutKey(id), true, &pl); err != nil {
		return direct(err, op)
	}
	if !found {
		return gone("used meanwhile")
	}
	if _, err := s.sessions.End(ctx, sess.Handle); err != nil {
		return direct(err, op)
	}
	http.SetCookie(w, s.sessionCookie("", -1))
	return s.signedOut(w, r, pl.Target)
}
