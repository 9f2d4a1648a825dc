package server

import (
	"net/http"

	"github.com/authd-dev/authd/backup"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/ratelimit"
)

// formLimit bounds the body of OAuth form posts: a few hundred bytes in
// practice.
const formLimit = 64 << 10

// routeTable is the mux the routes are registered on, and the set of
// their patterns: the only values the route label of the request metric
// takes besides unmatchedRoute.
type routeTable struct {
	mux      *http.ServeMux
	patterns map[string]bool
}

func (t *routeTable) handle(pattern string, h http.Handler) {
	t.mux.Handle(pattern, h)
	t.patterns[pattern] = true
}

// routes registers every route of authd, each with its middleware,
// outermost first. This table is the whole HTTP surface.
//
// Browser-facing routes (/authorize, /authorize/login, /authorize/consent,
// /callback/…, /logout) are
// wrapped in httperr.HTML outermost, so that every error on them — the
// rate limiter's 429 and 503 as much as the handler's own — reaches a
// person as a page, and a client that asks for JSON as JSON.
func (s *Server) routes(rt *routeTable) {
	pol := s.policies
	hf := func(f func(http.ResponseWriter, *http.Request) error) http.Handler { return httperr.HandlerFunc(f) }
	form := func(h http.Handler) http.Handler { return httperr.LimitBody(formLimit, errors.RequestTooLarge, h) }
	html := httperr.HTML
	cors := oauth.CORS
	// byIP limits per client IP; bySubject per authenticated subject, or
	// per client IP for requests without one.
	byIP := func(name string) func(http.Handler) http.Handler { return s.limiter.Middleware(pol[name], nil) }
	bySubject := func(name string, subject ratelimit.SubjectFunc) func(http.Handler) http.Handler {
		return s.limiter.Middleware(pol[name], subject)
	}
	oauthSubject := func(r *http.Request) (string, bool) { return oauth.SubjectFromContext(r.Context()) }
	backupSubject := func(r *http.Request) (string, bool) { return backup.SubjectFromContext(r.Context()) }

	// Documentation and operations.
	rt.handle("GET /docs/errors", hf(httperr.Docs))
	rt.handle("GET /docs/errors.json", hf(httperr.DocsJSON))
	rt.handle("GET /healthz", hf(s.healthz))
	rt.handle("GET /readyz", hf(s.readyz))
	if !s.cfg.MetricsElsewhere {
		rt.handle("GET /metrics", s.MetricsHandler())
	}

	// OAuth 2.0: the authorization endpoint and its sign-in pages.
	o := s.oauth
	rt.handle("GET /authorize", html(byIP(ratelimit.Authorize)(hf(o.Authorize))))
	rt.handle("POST /authorize", html(byIP(ratelimit.Authorize)(form(hf(o.Authorize)))))
	rt.handle("POST /authorize/login", html(byIP(ratelimit.Login)(form(hf(o.Login)))))
	rt.handle("POST /authorize/consent", html(byIP(ratelimit.Authorize)(form(hf(o.Consent)))))
	rt.handle("GET /callback/{provider}", html(hf(o.Callback)))
	// RP-initiated logout: the end of single sign-on.
	rt.handle("GET /logout", html(byIP(ratelimit.Authorize)(hf(o.Logout))))
	rt.handle("POST /logout", html(byIP(ratelimit.Authorize)(form(hf(o.Logout)))))

	// OAuth 2.0: endpoints for clients, browser-based ones included (CORS).
	rt.handle("POST /token", cors(byIP(ratelimit.Token)(form(hf(o.Token)))))
	userinfo := cors(o.Identify(bySubject(ratelimit.Userinfo, oauthSubject)(hf(o.UserInfo))))
	rt.handle("GET /userinfo", userinfo)
	rt.handle("POST /userinfo", userinfo)
	rt.handle("POST /revoke", cors(byIP(ratelimit.Revoke)(form(hf(o.Revoke)))))
	rt.handle("POST /introspect", byIP(ratelimit.Introspect)(form(hf(o.Introspect))))
	rt.handle("GET /.well-known/oauth-authorization-server", cors(hf(o.Metadata)))
	rt.handle("GET /.well-known/openid-configuration", cors(hf(o.OpenIDConfiguration)))
	rt.handle("GET /.well-known/jwks.json", cors(hf(o.JWKS)))
	type preflight struct {
		path    string
		methods []string
	}
	preflights := []preflight{
		{"/token", []string{"POST"}},
		{"/revoke", []string{"POST"}},
		{"/userinfo", []string{"GET", "POST"}},
		{"/.well-known/oauth-authorization-server", []string{"GET"}},
		{"/.well-known/openid-configuration", []string{"GET"}},
		{"/.well-known/jwks.json", []string{"GET"}},
	}

	// Dynamic client registration (RFC 7591) and its management (RFC
	// 7592), when on: registrations limited per client IP.
	if o.RegistrationEnabled() {
		reg := func(h http.Handler) http.Handler {
			return httperr.LimitBody(oauth.MaxRegistrationBody, errors.RequestTooLarge, h)
		}
		rt.handle("POST /register", cors(byIP(ratelimit.Register)(reg(hf(o.Register)))))
		rt.handle("GET /register/{client_id}", cors(hf(o.ReadRegistration)))
		rt.handle("PUT /register/{client_id}", cors(reg(hf(o.UpdateRegistration))))
		rt.handle("DELETE /register/{client_id}", cors(hf(o.DeleteRegistration)))
		preflights = append(preflights,
			preflight{"/register", []string{"POST"}},
			preflight{"/register/{client_id}", []string{"GET", "PUT", "DELETE"}})
	}
	for _, p := range preflights {
		rt.handle("OPTIONS "+p.path, oauth.Preflight(p.methods...))
	}

	// Encrypted backups. The body limit is outermost so an oversize body
	// is backup_too_large before anything reads it; the per-client-IP
	// limits (backupIPLimits) come next, so that a client with many fresh
	// keys is stopped before its requests cost signature verifications
	// and replay-guard writes; Identify authenticates once (the signature
	// covers the body) and the limiter then counts the request against
	// its subject.
	backupRoute := func(method, policy string) http.Handler {
		return httperr.LimitBody(backup.MaxSize, errors.BackupTooLarge,
			s.backupIPLimits(method)(
				s.backup.Identify(bySubject(policy, backupSubject)(s.backup.Handler()))))
	}
	rt.handle("GET /backup", backupRoute("GET", ratelimit.BackupRead)) // and HEAD
	rt.handle("PUT /backup", backupRoute("PUT", ratelimit.BackupWrite))
	rt.handle("DELETE /backup", backupRoute("DELETE", ratelimit.BackupWrite))
}
