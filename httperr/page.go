package httperr

import (
	"encoding/json"
	"github.com/authd-dev/authd/errors"
	"html/template"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// PageData is what an HTML error page shows. Every string in it is already
// inside the RFC 6749 charset.
type PageData struct {
	Code          errors.Code
	Status        int
	Title         string
	Description   string
	URI           string
	RetryAfter    int64
	ProviderError string
	RequestID     string
}

// Page renders the HTML body of an error response for a browser.
type Page func(w io.Writer, d PageData) error

// WithPage returns err carrying page: Write shows err on page to a client
// that prefers HTML (see PrefersHTML), on any route, and in JSON to one
// that does not. A handler uses it for an error that belongs on a page of
// its own, such as a failed sign-in shown on the login form; it beats the
// route's page (HTML). Rendering has no side effects: what a page shows
// must be ready before the handler returns. With a nil page, WithPage
// returns err unchanged.
func WithPage(err error, page Page) error {
	if err == nil || page == nil {
		return err
	}
	return &pageError{err: err, page: page}
}

// pageError is an error and the page it is shown on.
type pageError struct {
	err  error
	page Page
}

func (e *pageError) Error() string { return e.err.Error() }
func (e *pageError) Unwrap() error { return e.err }

// withoutPage returns err without the page wrappers around it.
func withoutPage(err error) error {
	for {
		pe, ok := err.(*pageError)
		if !ok {
			return err
		}
		err = pe.err
	}
}

// HTML marks next as a browser-facing route: every error answered on it,
// by its handler or by middleware inside it (a rate limiter's 429, a
// verifier's 503), is shown on DefaultPage to a client that prefers HTML,
// and in JSON to one that does not. An error carrying a page of its own
// (WithPage) is shown on that page instead.
//
// The choice travels with the ResponseWriter HTML hands to next, which
// Write finds through the writers' Unwrap methods: a writer wrapped by
// middleware inside HTML must keep an Unwrap method.
func HTML(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&pageWriter{ResponseWriter: w, page: DefaultPage}, r)
	})
}

// pageWriter is the writer of a browser-facing route (HTML).
type pageWriter struct {
	http.ResponseWriter
	page Page
}

// Flush implements http.Flusher.
func (pw *pageWriter) Flush() { http.NewResponseController(pw.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController and Write reach the writer below.
func (pw *pageWriter) Unwrap() http.ResponseWriter { return pw.ResponseWriter }

// pageFor returns the page an error response on w shows a browser: err's
// own (WithPage), else the route's (HTML), else nil (JSON only).
func pageFor(w http.ResponseWriter, err error) Page {
	var pe *pageError
	if errors.As(err, &pe) {
		return pe.page
	}
	for w != nil {
		if pw, ok := w.(*pageWriter); ok {
			return pw.page
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// SetHTMLHeaders sets the headers every HTML page of authd carries: content
// type, no framing (clickjacking), and a policy that loads nothing external.
// A Content-Security-Policy the handler already set is kept: the login page
// widens form-action to the client's redirect origin, because browsers
// apply form-action to the redirect that follows a form post, and that
// page is also rendered by Write after a failed sign-in.
func SetHTMLHeaders(h http.Header) { setHTMLHeaders(h) }

// DefaultCSP is the Content-Security-Policy of authd's HTML pages.
const DefaultCSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func setHTMLHeaders(h http.Header) {
	h.Set("Content-Type", "text/html;charset=UTF-8")
	if h.Get("Content-Security-Policy") == "" {
		h.Set("Content-Security-Policy", DefaultCSP)
	}
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// PrefersHTML reports whether r's Accept header ranks text/html at least
// as high as application/json (RFC 9110 §12.5.1; no Accept header counts as
// a browser). It is the rule Write uses to choose an HTML page over JSON.
func PrefersHTML(r *http.Request) bool {
	accept := r.Header.Values("Accept")
	if len(accept) == 0 {
		return true
	}
	return quality(accept, "text", "html") >= quality(accept, "application", "json")
}

// quality returns the q-value RFC 9110 §12.5.1 gives typ/sub in accept: the
// most specific matching range wins.
func quality(accept []string, typ, sub string) float64 {
	best, spec := 0.0, -1
	for _, line := range accept {
		for _, part := range strings.Split(line, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			t, s, _ := strings.Cut(mt, "/")
			var sp int
			switch {
			case t == typ && s == sub:
				sp = 2
			case t == typ && s == "*":
				sp = 1
			case t == "*" && s == "*":
				sp = 0
			default:
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
			if sp > spec {
				best, spec = q, sp
			}
		}
	}
	return best
}

var errorPage = template.Must(template.New("error").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} - authd</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1a1a1a}
code{background:#f2f2f2;padding:0 .25rem}
.meta{color:#555;font-size:.9rem}
</style>
</head>
<body>
<main>
<h1>{{.Title}}</h1>
<p role="alert">{{.Description}}</p>
<p>Error code <code>{{.Code}}</code> (HTTP {{.Status}}){{if .ProviderError}}, provider error <code>{{.ProviderError}}</code>{{end}}.
{{if .RetryAfter}}You can try again in {{.RetryAfter}} seconds.{{end}}
<a href="{{.URI}}">What this error means and how to fix it</a>.</p>
<p class="meta">Request id <code>{{.RequestID}}</code></p>
</main>
</body>
</html>
`))

// DefaultPage is the plain HTML error page of browser-facing routes.
func DefaultPage(w io.Writer, d PageData) error { return errorPage.Execute(w, d) }

var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>authd error catalog</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
section{border-top:1px solid #ddd;padding:.5rem 0}
section:target{background:#fff8d6}
code,pre{background:#f2f2f2;padding:0 .25rem}
dt{font-weight:600}
dd{margin:0 0 .5rem 0}
</style>
</head>
<body>
<main>
<h1>authd error catalog</h1>
<p>Every error authd returns has this JSON shape (RFC 6749 §5.2); a <code>retry_after</code> member (seconds)
appears when waiting helps, <code>provider_error</code> when Google or GitHub failed:</p>
<pre>{"error":"invalid_request","error_description":"Missing required parameter: client_id",
 "error_uri":"…/docs/errors#invalid_request","request_id":"…"}</pre>
<p>Errors about an authorization request are sent back to the client's redirect_uri with
<code>error</code>, <code>error_description</code>, <code>error_uri</code>, <code>state</code> and <code>iss</code>.
This list is also available as <a href="errors.json">JSON</a>.</p>
<nav><ul>
{{range .}}<li><a href="#{{.Code}}"><code>{{.Code}}</code></a> ({{.Status}})</li>
{{end}}</ul></nav>
{{range .}}<section id="{{.Code}}">
<h2><code>{{.Code}}</code>: {{.Title}}</h2>
<dl>
<dt>Status</dt><dd>{{.Status}}{{if .Redirectable}}, or a redirect to the client's redirect_uri during authorization{{end}}</dd>
<dt>Meaning</dt><dd>{{.Description}}</dd>
<dt>Used by</dt><dd>{{range $i, $u := .UsedBy}}{{if $i}}, {{end}}{{$u}}{{end}}</dd>
{{if .Headers}}<dt>Headers</dt><dd>{{range $i, $h := .Headers}}{{if $i}}; {{end}}<code>{{$h}}</code>{{end}}</dd>{{end}}
<dt>Common causes</dt><dd><ul>{{range .Causes}}<li>{{.}}</li>{{end}}</ul></dd>
<dt>How to recover</dt><dd>{{.Fix}}</dd>
<dt>Retry</dt><dd>{{.Retry}}</dd>
</dl>
</section>
{{end}}</main>
</body>
</html>
`))

// Docs serves the error catalog as an HTML page, one section per code with
// id="<code>", so every error_uri resolves to its entry.
func Docs(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	setHTMLHeaders(h)
	h.Set("Cache-Control", "public, max-age=3600")
	return docsPage.Execute(w, errors.Catalog())
}

// DocsJSON serves the error catalog as JSON.
func DocsJSON(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Errors []errors.Entry `json:"errors"`
	}{errors.Catalog()})
}
