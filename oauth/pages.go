package oauth

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
)

// The login, consent, sign-out and signed-out pages. They load nothing
// external and run no script (httperr.DefaultCSP), cannot be framed, use
// relative sizes only and wrap long words (readable at 200 % zoom without
// scrolling sideways), and every control is a native form control with a
// visible label or text, so a keyboard alone can use them. Their forms
// are accepted only from the browser that was shown the page (see Login,
// Consent and Logout).

// pageReferrerPolicy is the referrer policy of the pages with a form:
// no Referer leaves for another site, but the browser states the page's
// origin when it posts the form back (with no-referrer it would send
// "Origin: null", and a browser without Fetch metadata would be refused
// as a foreign post; see crossSite). The pages' meta element says the
// same, for the login page that httperr.Write renders after a failure.
const pageReferrerPolicy = "same-origin"

// pageBase holds what the pages share: the head and the style.
var pageBase = template.Must(template.New("base").Parse(`{{define "head"}}<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<style>
body{font:1rem/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a;overflow-wrap:anywhere}
button{margin:1rem .5rem 0 0;font-size:1rem;padding:.5rem 1.25rem;border-radius:.25rem;border:.0625rem solid #1a1a1a;background:#1a1a1a;color:#fff;cursor:pointer}
button.alt{background:#fff;color:#1a1a1a}
button:focus-visible,a:focus-visible{outline:.1875rem solid #1a5fb4;outline-offset:.125rem}
.note{border:.125rem solid #9a6700;border-radius:.25rem;padding:.5rem 1rem;margin:1rem 0;background:#fff8e1}
.meta{color:#555;font-size:.9rem}
code{background:#f2f2f2;padding:0 .25rem}
label{display:block;font-weight:600;margin-top:1rem}
textarea,input{box-sizing:border-box;width:100%;font:.875rem/1.4 ui-monospace,monospace;padding:.5rem;border:.0625rem solid #888;border-radius:.25rem}
textarea[readonly]{background:#f4f4f4}
textarea:focus-visible,input:focus-visible{outline:.1875rem solid #1a5fb4;outline-offset:.125rem}
.error{border:.125rem solid #b00020;border-radius:.25rem;padding:.5rem 1rem;margin:1rem 0;background:#fff4f4}
.unverified{border:.125rem solid #8a5a00;border-radius:.25rem;padding:.5rem 1rem;margin:1rem 0;background:#fff8e6}
</style>{{end}}`))

// newPage parses a page that uses the shared parts.
func newPage(name, text string) *template.Template {
	return template.Must(template.Must(pageBase.Clone()).New(name).Parse(text))
}

// renderPage writes t with data as a 200 page whose
// Content-Security-Policy is csp ("": httperr.DefaultCSP). It renders
// before writing, so a template failure is a clean server_error.
//
// Errors: server_error.
func renderPage(w http.ResponseWriter, t *template.Template, data any, csp string) error {
	var buf bytes.Buffer
	if err := t.Execute(&buf, data); err != nil {
		return errors.E(errors.ServerError, "").WithCause("oauth.renderPage", err)
	}
	h := w.Header()
	if csp != "" {
		h.Set("Content-Security-Policy", csp)
	}
	httperr.SetHTMLHeaders(h)
	h.Set("Referrer-Policy", pageReferrerPolicy)
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(buf.Bytes())
	return err
}

// formCSP is the Content-Security-Policy of a page whose form leads, after
// authd's redirect, to target (a validated redirect URI):
// httperr.DefaultCSP with form-action widened to target's origin, because
// Chrome and Safari apply form-action to the redirect that follows a form
// post. With no target it is the default.
func formCSP(target string) string {
	if target == "" {
		return httperr.DefaultCSP
	}
	return strings.Replace(httperr.DefaultCSP, "form-action 'self'", "form-action 'self' "+redirectSource(target), 1)
}
