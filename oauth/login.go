package oauth

import (
	"bytes"
	"crypto/subtle"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
)

// loginView is what the login page shows.
type loginView struct {
	Pending *Pending // nil: the error alone, no form
	Error   *httperr.PageData
	Address string // kept after a failed attempt
}

// loginData is the template's input.
type loginData struct {
	loginView
	Issuer       string
	Action       string
	RedirectHost string
	Scopes       []scopeText
	Providers    []providerButton
	ExpiresAt    string
	// ClientHost is the host of an unverified client's Origin.
	ClientHost string
}

type scopeText struct{ Scope, Text string }

type providerButton struct{ Name, Label string }

var scopeTexts = map[string]string{
	ScopeOpenID:        "Confirm who you are: your Bitcoin address",
	ScopeProfile:       "Know your Bitcoin address",
	ScopeEmail:         "Know your e-mail address, if you sign in with Google or GitHub",
	ScopeOfflineAccess: "Stay signed in when you are not using it",
	ScopeBackup:        "Store and read your encrypted wallet backup",
}

var providerLabels = map[string]string{"google": "Google", "github": "GitHub"}

// renderLogin writes the login page (200); the page with an error on it
// is written by httperr.Write, through loginPage.
func (s *Server) renderLogin(w http.ResponseWriter, v loginView) error {
	var buf bytes.Buffer
	if err := s.executeLogin(&buf, v); err != nil {
		return errors.E(errors.ServerError, "").WithCause("oauth.renderLogin", err)
	}
	h := w.Header()
	if v.Pending != nil {
		h.Set("Content-Security-Policy", loginCSP(v.Pending))
	}
	httperr.SetHTMLHeaders(h)
	h.Set("Referrer-Policy", pageReferrerPolicy)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(buf.Bytes())
	return err
}

func (s *Server) executeLogin(w io.Writer, v loginView) error {
	d := loginData{
		loginView: v,
		Issuer:    s.issuerURL.Host,
		Action:    s.issuerURL.Path + "/authorize/login",
	}
	if p := v.Pending; p != nil {
		if d.Address == "" {
			d.Address = p.LoginHint
		}
		d.RedirectHost = redirectHost(p.RedirectURI)
		d.Scopes = scopeList(p.Scope)
		if u, err := url.Parse(p.ClientOrigin); err == nil {
			d.ClientHost = u.Host
		}
		for _, name := range []string{KindGoogle, KindGitHub} {
			if s.upstreams[name] == nil {
				continue
			}
			d.Providers = append(d.Providers, providerButton{name, providerLabels[name]})
		}
		d.ExpiresAt = p.ExpiresAt.UTC().Format(time.RFC1123)
	}
	return loginTemplate.Execute(w, d)
}

// loginPage is the httperr.Page of a failure on the login form: the
// login page for p (nil: the error alone, no form), with the failure
// shown and address kept. It only renders.
func (s *Server) loginPage(p *Pending, address string) httperr.Page {
	return func(w io.Writer, d httperr.PageData) error {
		return s.executeLogin(w, loginView{Pending: p, Error: &d, Address: address})
	}
}

// loginCSP is the login page's Content-Security-Policy: httperr.DefaultCSP
// with form-action widened to the validated redirect target, because
// Chrome and Safari apply form-action to the redirect that follows the
// form post, and that redirect goes to the client.
func loginCSP(p *Pending) string { return formCSP(p.RedirectURI) }

// redirectSource is the CSP source expression (CSP3 §2.3.1) matching a
// redirect URI: its origin, its scheme for a private-use scheme, or its
// scheme alone where a host-source cannot name the host (IPv6 literals).
func redirectSource(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return ""
	}
	scheme := strings.ToLower(u.Scheme)
	for i := 0; i < len(scheme); i++ {
		c := scheme[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return ""
		}
	}
	if u.Host == "" || (scheme != "http" && scheme != "https") {
		return scheme + ":"
	}
	host, port := u.Hostname(), u.Port()
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return scheme + ":"
		}
	}
	src := scheme + "://" + host
	if port != "" {
		src += ":" + port
	}
	return src
}

func splitScope(s string) []string {
	out, _ := parseScope(s)
	return out
}

// scopeList is how pages list the scopes of an authorization.
func scopeList(scope string) []scopeText {
	var out []scopeText
	for _, sc := range splitScope(scope) {
		t := scopeTexts[sc]
		if t == "" {
			t = "Access " + sc
		}
		out = append(out, scopeText{sc, t})
	}
	return out
}

// redirectHost is how pages and the signed message name where a redirect
// URI leads: its host, or its scheme for a private-use scheme.
func redirectHost(uri string) string {
	u, err := url.Parse(uri)
	switch {
	case err != nil:
		return uri
	case u.Host != "":
		return u.Host
	}
	return u.Scheme + ":"
}

var loginTemplate = newPage("login", `<!doctype html>
<html lang="en">
<head>
{{template "head"}}
<title>Sign in{{with .Pending}} to {{.ClientName}}{{end}} - authd</title>
</head>
<body>
<main>
{{with .Pending}}<h1>Sign in to {{.ClientName}}</h1>
{{if .Unverified}}<div class="unverified" role="note"><strong>Unverified application.</strong>
The operator of {{$.Issuer}} has not registered it: its name is its own claim.
{{if $.ClientHost}}It is published at <strong>{{$.ClientHost}}</strong>.{{else}}It is known only by where it sends you back: <strong>{{$.RedirectHost}}</strong>.{{end}}
Sign in only if you trust {{if $.ClientHost}}{{$.ClientHost}}{{else}}{{$.RedirectHost}}{{end}}.</div>
{{end}}<p><strong>{{.ClientName}}</strong> (client <code>{{.ClientID}}</code>) asks you to sign in with your Bitcoin key.
You will be sent back to <strong>{{$.RedirectHost}}</strong>.</p>
{{if $.Scopes}}<p>It will be able to:</p>
<ul>{{range $.Scopes}}<li>{{.Text}} (<code>{{.Scope}}</code>)</li>{{end}}</ul>{{end}}
{{with .Resources}}<p>Its access is for {{if eq (len .) 1}}this service{{else}}these services{{end}} only:</p>
<ul>{{range .}}<li><code>{{.}}</code></li>{{end}}</ul>{{end}}
{{else}}<h1>Sign in</h1>{{end}}
{{with .Error}}<div class="error" role="alert">
<h2>{{.Title}}</h2>
<p>{{.Description}}</p>
{{if .RetryAfter}}<p>You can try again in {{.RetryAfter}} seconds.</p>{{end}}
<p class="meta">Error code <code>{{.Code}}</code> (HTTP {{.Status}}), request id <code>{{.RequestID}}</code>.
<a href="{{.URI}}">What this error means</a>.</p>
</div>{{end}}
{{with .Pending}}<form method="post" action="{{$.Action}}">
<input type="hidden" name="login_id" value="{{.ID}}">
<label for="message">1. Copy this message exactly</label>
<textarea id="message" readonly rows="8" spellcheck="false" aria-describedby="message-help">{{.Message}}</textarea>
<p id="message-help" class="meta">Sign it with the "Sign message" tool of any Bitcoin wallet (Electrum, Sparrow, or Bitcoin Core's
<code>signmessage</code>), using a legacy address that starts with 1. Check that it names {{$.Issuer}} and {{.ClientName}}.</p>
<label for="address">2. Your Bitcoin address</label>
<input id="address" name="address" required autocomplete="off" autocapitalize="off" spellcheck="false" value="{{$.Address}}">
<label for="signature">3. The signature</label>
<textarea id="signature" name="signature" required rows="3" spellcheck="false" autocomplete="off"></textarea>
<button type="submit">Sign in</button>
</form>
{{if $.Providers}}<form method="post" action="{{$.Action}}">
<input type="hidden" name="login_id" value="{{.ID}}">
<p>Or:</p>
{{range $.Providers}}<button class="alt" type="submit" name="provider" value="{{.Name}}">Sign in with {{.Label}}</button>
{{end}}</form>{{end}}
<p class="meta">This sign-in request expires at {{$.ExpiresAt}}. The message can be used once.</p>
{{else}}<p>Start the sign-in again from the application.</p>{{end}}
</main>
</body>
</html>
`)

// startLogin stores p as a pending login for a login page (SavePending)
// bound to the browser it is shown to: a random nonce goes to that browser
// in the login cookie, and its hash into p.Binding, so that Login accepts
// the page's form only from a browser holding the cookie (boundLogin).
// Knowing the login id, which is on the page and in the signed message, is
// not enough to post the form from elsewhere.
//
// Errors: temporarily_unavailable.
func (s *Server) startLogin(w http.ResponseWriter, r *http.Request, p *Pending) error {
	nonce := randomToken(32)
	p.Binding = hashToken(nonce)
	if err := s.SavePending(r.Context(), p); err != nil {
		return err
	}
	http.SetCookie(w, s.loginCookie(p.ID, nonce, int(s.cfg.LoginTTL/time.Second)))
	return nil
}

// loginCookie is the cookie binding the login id to a browser: named for
// the login (a person may have several sign-ins open), holding the nonce
// whose hash the pending login keeps. It is sent only to the issuer's
// /authorize/login, never to scripts, and only with requests from authd's
// own pages (SameSite=Strict): a form posted from another site arrives
// without it. maxAge < 0 deletes it.
func (s *Server) loginCookie(id, nonce string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     "authd_login_" + hashToken(id)[:12],
		Value:    nonce,
		Path:     s.issuerURL.Path + "/authorize/login",
		MaxAge:   maxAge,
		Secure:   s.issuerURL.Scheme == "https",
		HttpOnly: true,
		SameSite: http.SameSiteStrictMode,
	}
}

// errForeignLogin is the answer to a login form that did not come from
// the login page in this browser.
func errForeignLogin(cause string) *errors.Error {
	return errors.E(errors.AccessDenied, "This sign-in form was not submitted from the sign-in page authd showed this browser; start the sign-in again from the application").
		WithCause("oauth.Login", errors.New(cause))
}

// boundLogin checks that r comes from the browser p's login page was shown
// to: it carries the login cookie whose nonce hashes to p.Binding.
//
// Errors: access_denied.
func (s *Server) boundLogin(r *http.Request, p *Pending) error {
	c, err := r.Cookie(s.loginCookie(p.ID, "", 0).Name)
	if err != nil || p.Binding == "" {
		return errForeignLogin("no login cookie for this login")
	}
	if subtle.ConstantTimeCompare([]byte(hashToken(c.Value)), []byte(p.Binding)) != 1 {
		return errForeignLogin("login cookie of another login")
	}
	return nil
}

// sameOrigin refuses a request another site made a browser send (see
// crossSite).
//
// Errors: access_denied.
func (s *Server) sameOrigin(r *http.Request) error {
	if cause := s.crossSite(r); cause != "" {
		return errForeignLogin(cause)
	}
	return nil
}

// crossSite returns why r is a request another site made a browser send,
// or "" when it is not known to be one: the rule for every form of
// authd's pages. Fetch metadata, which browsers alone set, must not say
// same-site or cross-site: only Sec-Fetch-Site: same-origin (or none, a
// request the person made themselves) passes. An Origin header, when
// present, must be the issuer's (RFC 6454 §7), except that "Origin: null"
// passes with that metadata: a page whose referrer policy is no-referrer
// makes the browser send it even for its own forms (Fetch, "serializing a
// request origin"). A request with neither header (an older browser, a
// script) passes: the cookies binding each form still apply.
func (s *Server) crossSite(r *http.Request) string {
	sameOrigin := false
	switch site := r.Header.Values("Sec-Fetch-Site"); len(site) {
	case 0:
	case 1:
		switch v := strings.ToLower(strings.TrimSpace(site[0])); v {
		case "same-origin", "none":
			sameOrigin = true
		case "same-site", "cross-site":
			return "Sec-Fetch-Site: " + v
		default:
			return "unknown Sec-Fetch-Site"
		}
	default:
		return "several Sec-Fetch-Site headers"
	}
	switch origin := r.Header.Values("Origin"); {
	case len(origin) == 0:
		return ""
	case len(origin) > 1:
		return "several Origin headers"
	case origin[0] == "null" && sameOrigin:
		return ""
	case !s.isIssuerOrigin(origin[0]):
		return "cross-origin post"
	}
	return ""
}

// isIssuerOrigin reports whether origin (an Origin header's value) is the
// issuer's origin: same scheme, host and port.
func (s *Server) isIssuerOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Path != "" || u.RawQuery != "" || u.User != nil || u.Host == "" {
		return false // includes "null"
	}
	return strings.EqualFold(u.Scheme, s.issuerURL.Scheme) &&
		strings.EqualFold(u.Hostname(), s.issuerURL.Hostname()) &&
		effectivePort(u) == effectivePort(s.issuerURL)
}

// effectivePort is u's port, or its scheme's default.
func effectivePort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}
