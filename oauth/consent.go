package oauth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth/session"
)

// Consent: what a person allowed a client, remembered in SQL per
// (subject, client, scope), so that a session can answer the client's
// next authorization without asking again. A signed sign-in message names
// the client and the scopes, so signing it is consent; so is choosing
// Google or GitHub on the login page, which lists them. A session asked
// for scopes the client does not have yet shows the consent page.

// hasConsent reports whether subject has allowed clientID every scope of
// the space-separated scope.
//
// Errors: temporarily_unavailable.
func (s *Server) hasConsent(ctx context.Context, subject, clientID, scope string) (bool, error) {
	const op = "oauth.hasConsent"
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT scope FROM oauth_consents WHERE subject = $1 AND client_id = $2`, subject, clientID)
	if err != nil {
		return false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var sc string
		if err := rows.Scan(&sc); err != nil {
			return false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
		have[sc] = true
	}
	if err := rows.Err(); err != nil {
		return false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	for _, sc := range strings.Fields(scope) {
		if !have[sc] {
			return false, nil
		}
	}
	return true, nil
}

// recordConsent remembers that subject allowed clientID the scopes of the
// space-separated scope, in one statement that leaves what was allowed
// before as it was.
//
// Errors: temporarily_unavailable.
func (s *Server) recordConsent(ctx context.Context, subject, clientID, scope string) error {
	const op = "oauth.recordConsent"
	scopes := strings.Fields(scope)
	if len(scopes) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO oauth_consents (subject, client_id, scope, created_ms) VALUES `)
	args := []any{subject, clientID, s.now().UnixMilli()}
	for i, sc := range scopes {
		if i > 0 {
			q.WriteString(", ")
		}
		args = append(args, sc)
		q.WriteString("($1, $2, $" + strconv.Itoa(len(args)) + ", $3)")
	}
	q.WriteString(` ON CONFLICT (subject, client_id, scope) DO NOTHING`)
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, q.String(), args...); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return nil
}

// originHost is the host of origin, "" for none.
func originHost(origin string) string {
	if u, err := url.Parse(origin); err == nil {
		return u.Host
	}
	return ""
}

// pendingConsent is an authorization waiting on the consent page, bound
// to the session that is to answer it.
type pendingConsent struct {
	Pending *Pending `json:"pending"`
	// Session is the handle of the session.
	Session string `json:"session"`
}

func consentKey(id string) string { return "authd:oauth:consent:" + hashToken(id) }

// consentView is what the consent page shows.
type consentView struct {
	ID           string
	Action       string
	Client       string
	ClientID     string
	Verified     bool
	RedirectHost string
	// ClientHost is the host of an unverified client's Origin (Client.Origin).
	ClientHost string
	// Resources are the resource indicators (RFC 8707) the access is for.
	Resources []string
	Scopes    []scopeText
	Subject   string
	Logout    string
}

var consentTemplate = newPage("consent", `<!doctype html>
<html lang="en">
<head>
{{template "head"}}
<title>Allow {{.Client}}? - authd</title>
</head>
<body>
<main>
<h1>Allow {{.Client}}?</h1>
<p><strong>{{.Client}}</strong> at <strong>{{.RedirectHost}}</strong> wants to:</p>
<ul>{{range .Scopes}}<li>{{.Text}} (<code>{{.Scope}}</code>)</li>{{end}}</ul>
{{with .Resources}}<p>Its access is for {{if eq (len .) 1}}this service{{else}}these services{{end}} only:</p>
<ul>{{range .}}<li><code>{{.}}</code></li>{{end}}</ul>
{{end}}{{if not .Verified}}<div class="unverified" role="note"><strong>Unverified application.</strong>
Its name is what it says about itself: no operator of this server registered it.
{{if .ClientHost}}It is published at <strong>{{.ClientHost}}</strong>.{{else}}It is known only by where it sends you back: <strong>{{.RedirectHost}}</strong>.{{end}}
Allow only if you trust {{if .ClientHost}}{{.ClientHost}}{{else}}{{.RedirectHost}}{{end}}.</div>
{{end}}<p>You are signed in as <code>{{.Subject}}</code>. <a href="{{.Logout}}">Not you? Sign out</a>.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="consent_id" value="{{.ID}}">
<button type="submit" name="decision" value="allow">Allow</button>
<button class="alt" type="submit" name="decision" value="deny">Deny</button>
</form>
<p class="meta">Client <code>{{.ClientID}}</code>. Your answer is remembered for this application and these permissions.</p>
</main>
</body>
</html>
`)

// askConsent shows the consent page for p to the person signed in with
// sess: the page's form carries a new single-use token, kept for LoginTTL
// with p and bound to sess, so that only this browser, in this session,
// can answer it.
//
// Errors: invalid_request when the client is gone; temporarily_unavailable;
// server_error.
func (s *Server) askConsent(w http.ResponseWriter, r *http.Request, p *Pending, sess *session.Session) error {
	const op = "oauth.askConsent"
	ctx := r.Context()
	c, err := s.clients.get(ctx, p.ClientID)
	if err != nil {
		return direct(err, op)
	}
	if c == nil {
		return errors.E(errors.InvalidRequest, "The client or its redirect_uri is no longer registered")
	}
	id := randomToken(32)
	b, err := json.Marshal(pendingConsent{Pending: p, Session: sess.Handle})
	if err != nil {
		return errors.E(errors.ServerError, "").WithCause(op, err)
	}
	rctx, cancel := s.opCtx(ctx)
	defer cancel()
	if err := s.rdb.Set(rctx, consentKey(id), b, s.cfg.LoginTTL).Err(); err != nil {
		return direct(errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err), op)
	}
	return renderPage(w, consentTemplate, consentView{
		ID:           id,
		Action:       s.issuerURL.Path + "/authorize/consent",
		Client:       p.ClientName,
		ClientID:     p.ClientID,
		Verified:     c.Verified(),
		ClientHost:   originHost(c.Origin()),
		Resources:    p.Resources,
		RedirectHost: redirectHost(p.RedirectURI),
		Scopes:       scopeList(p.Scope),
		Subject:      sess.Subject,
		Logout:       s.issuerURL.Path + "/logout",
	}, loginCSP(p))
}

// errForeignConsent is the answer to a consent form that did not come from
// the consent page in this browser and its session.
func errForeignConsent(cause string) *errors.Error {
	return errors.E(errors.AccessDenied, "This consent form was not submitted from the page authd showed this browser, or its sign-in session has ended; start again from the application").
		WithCause("oauth.Consent", errors.New(cause))
}

// Consent handles POST /authorize/consent: the consent page's form
// (consent_id, decision=allow|deny). Allow records the consent and sends
// the browser to the client with a code (303), stating the session's
// sign-in in the ID Token; Deny sends it access_denied.
//
// The form is accepted only from the browser and session the page was
// shown to: a post with a foreign Origin or Sec-Fetch-Site: cross-site is
// refused before the form is read, and one from a browser whose session
// is not the page's before the token is used up. Both are access_denied,
// answered directly.
//
// Errors: access_denied (cross-site, another browser or session;
// redirected when the person denies); invalid_request (missing or bad
// field, unknown, expired or used token; the client is gone);
// request_too_large; temporarily_unavailable; server_error.
func (s *Server) Consent(w http.ResponseWriter, r *http.Request) error {
	const op = "oauth.Consent"
	ctx := r.Context()
	if cause := s.crossSite(r); cause != "" {
		return errForeignConsent(cause)
	}
	form, _, err := readForm(w, r)
	if err != nil {
		return err
	}
	if e := once(form, "consent_id", "decision"); e != nil {
		return e
	}
	id := form.Get("consent_id")
	if id == "" {
		return missing("consent_id")
	}
	decision := form.Get("decision")
	switch decision {
	case "allow", "deny":
	case "":
		return missing("decision")
	default:
		return errors.E(errors.InvalidRequest, "decision must be allow or deny")
	}
	gone := func(cause string) error {
		return errors.E(errors.InvalidRequest, "This consent request has expired or was already answered; start again from the application").WithCause(op, errors.New(cause))
	}
	if len(id) > 64 {
		return gone("malformed consent id")
	}
	var pc pendingConsent
	found, err := s.loadJSON(ctx, op, consentKey(id), false, &pc)
	if err != nil {
		return direct(err, op)
	}
	if !found || pc.Pending == nil {
		return gone("no such consent request")
	}
	sid, sess, err := s.browserSession(w, r)
	if err != nil {
		return direct(err, op)
	}
	if sess == nil || subtle.ConstantTimeCompare([]byte(sess.Handle), []byte(pc.Session)) != 1 {
		return errForeignConsent("not the session the consent page was shown to")
	}
	if found, err = s.loadJSON(ctx, op, consentKey(id), true, &pc); err != nil {
		return direct(err, op)
	}
	if !found {
		return gone("answered meanwhile")
	}
	p := pc.Pending
	if decision == "deny" {
		return s.RedirectError(p, errors.AccessDenied, "The user denied the request")
	}
	if err := s.recordConsent(ctx, sess.Subject, p.ClientID, p.Scope); err != nil {
		return direct(err, op)
	}
	return s.finishFromSession(w, r, p, sid, sess)
}
