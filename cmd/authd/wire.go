package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/authd-dev/authd/backup"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/provider"
	"github.com/authd-dev/authd/ratelimit"
	"github.com/authd-dev/authd/sigauth"
	"github.com/authd-dev/authd/store"
)

// formLimit bounds the body of OAuth form posts: a few hundred bytes in
// practice.
const formLimit = 64 << 10

// services are authd's parts, built from the configuration and the
// connections.
type services struct {
	verifier *sigauth.Verifier
	limiter  *ratelimit.Limiter
	oauth    *oauth.Server
	backup   *backup.Service
}

// newServices builds the verifier, the limiter, the authorization server
// and the backup service, and wires them to each other through the small
// adapters below.
func newServices(ctx context.Context, cfg *config, log *slog.Logger, db *store.DB, rdb *redisConn) (*services, error) {
	clientIP := func(r *http.Request) netip.Addr { return cfg.TrustedProxies.ClientIP(r) }
	v := sigauth.NewVerifier(sigauth.Config{
		Redis:    rdb,
		Window:   cfg.SigauthWindow,
		ClientIP: clientIP,
		MaxBody:  backup.MaxSize,
		Logger:   log,
	})
	lim, err := ratelimit.New(rdb, ratelimit.Options{Proxies: cfg.TrustedProxies})
	if err != nil {
		return nil, err
	}
	var ups []oauth.Upstream
	if cfg.Google.ClientID != "" {
		ups = append(ups, upstream{provider.NewGoogle(providerSettings(cfg, "google", cfg.Google),
			provider.GoogleEndpoints{AuthURL: cfg.Google.AuthURL, TokenURL: cfg.Google.TokenURL, UserInfoURL: cfg.Google.UserInfoURL})})
	}
	if cfg.GitHub.ClientID != "" {
		ups = append(ups, upstream{provider.NewGitHub(providerSettings(cfg, "github", cfg.GitHub),
			provider.GitHubEndpoints{BaseURL: cfg.GitHub.BaseURL, APIURL: cfg.GitHub.APIURL})})
	}
	o, err := oauth.New(ctx, oauth.Config{
		Issuer:           cfg.Issuer,
		AccessTokenTTL:   cfg.AccessTokenTTL,
		IDTokenTTL:       cfg.IDTokenTTL,
		RefreshTokenTTL:  cfg.RefreshTokenTTL,
		RefreshFamilyMax: cfg.RefreshFamilyMax,
		KeyEncryption:    cfg.KeyFile.enc,
		CodeTTL:          cfg.CodeTTL,
		LoginTTL:         cfg.LoginTTL,
		DB:               db.DB,
		Dialect:          string(db.Dialect),
		Redis:            rdb,
		Wallet:           oauthWallet{v},
		Upstreams:        ups,
		Logger:           log,
	})
	if err != nil {
		return nil, err
	}
	b, err := backup.New(backup.Config{DB: db.DB, Wallet: backupWallet{v}, Bearer: o})
	if err != nil {
		return nil, err
	}
	return &services{verifier: v, limiter: lim, oauth: o, backup: b}, nil
}

func providerSettings(cfg *config, name string, p providerConfig) provider.Config {
	pc := provider.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		RedirectURL:  cfg.Issuer + "/callback/" + name,
	}
	if cfg.providerTimeout > 0 {
		pc.HTTPClient = &http.Client{Timeout: cfg.providerTimeout}
	}
	return pc
}

// routes registers every route of authd on mux, each with its middleware,
// outermost first. This table is the whole HTTP surface.
func (a *app) routes(mux *http.ServeMux) {
	s, pol := a.svc, a.cfg.RateLimits
	hf := func(f func(http.ResponseWriter, *http.Request) error) http.Handler { return httperr.HandlerFunc(f) }
	form := func(h http.Handler) http.Handler { return httperr.LimitBody(formLimit, errors.RequestTooLarge, h) }
	// byIP limits per client IP; bySubject per authenticated subject, or
	// per client IP for requests without one.
	byIP := func(name string) func(http.Handler) http.Handler { return s.limiter.Middleware(pol[name], nil) }
	bySubject := func(name string, subject ratelimit.SubjectFunc) func(http.Handler) http.Handler {
		return s.limiter.Middleware(pol[name], subject)
	}
	oauthSubject := func(r *http.Request) (string, bool) { return oauth.SubjectFromContext(r.Context()) }
	backupSubject := func(r *http.Request) (string, bool) { return backup.SubjectFromContext(r.Context()) }
	cors := oauth.CORS

	// Documentation and operations.
	mux.Handle("GET /docs/errors", hf(httperr.Docs))
	mux.Handle("GET /docs/errors.json", hf(httperr.DocsJSON))
	mux.Handle("GET /healthz", hf(a.healthz))
	mux.Handle("GET /readyz", hf(a.readyz))
	if a.cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", a.metricsHandler())
	}

	// OAuth 2.0 (DESIGN §4).
	// Browser routes: httperr.HTML comes first so that a 429 or 503 from
	// the limiter reaches a person as a page, not as JSON.
	html := httperr.HTML
	mux.Handle("GET /authorize", html(byIP(ratelimit.Authorize)(hf(s.oauth.Authorize))))
	mux.Handle("POST /authorize", html(byIP(ratelimit.Authorize)(form(hf(s.oauth.Authorize)))))
	mux.Handle("POST /authorize/login", html(byIP(ratelimit.Login)(form(hf(s.oauth.Login)))))
	mux.Handle("GET /callback/{provider}", html(hf(s.oauth.Callback)))
	mux.Handle("POST /token", cors(byIP(ratelimit.Token)(form(hf(s.oauth.Token)))))
	userinfo := cors(s.oauth.Identify(bySubject(ratelimit.Userinfo, oauthSubject)(hf(s.oauth.UserInfo))))
	mux.Handle("GET /userinfo", userinfo)
	mux.Handle("POST /userinfo", userinfo)
	mux.Handle("POST /revoke", cors(form(hf(s.oauth.Revoke))))
	mux.Handle("POST /introspect", form(hf(s.oauth.Introspect)))
	mux.Handle("GET /.well-known/oauth-authorization-server", cors(hf(s.oauth.Metadata)))
	mux.Handle("GET /.well-known/openid-configuration", cors(hf(s.oauth.OpenIDConfiguration)))
	mux.Handle("GET /.well-known/jwks.json", cors(hf(s.oauth.JWKS)))
	for p, methods := range map[string][]string{
		"/token":    {"POST"},
		"/revoke":   {"POST"},
		"/userinfo": {"GET", "POST"},
		"/.well-known/oauth-authorization-server": {"GET"},
		"/.well-known/openid-configuration":       {"GET"},
		"/.well-known/jwks.json":                  {"GET"},
	} {
		mux.Handle("OPTIONS "+p, oauth.Preflight(methods...))
	}

	// Encrypted backups (DESIGN §6). The body limit is outermost so an
	// oversize body is backup_too_large before anything reads it; Identify
	// authenticates once (the signature covers the body) and the limiter
	// then counts the request against its subject.
	backupRoute := func(policy string) http.Handler {
		return httperr.LimitBody(backup.MaxSize, errors.BackupTooLarge,
			s.backup.Identify(bySubject(policy, backupSubject)(s.backup.Handler())))
	}
	mux.Handle("GET /backup", backupRoute(ratelimit.BackupRead)) // and HEAD
	mux.Handle("PUT /backup", backupRoute(ratelimit.BackupWrite))
	mux.Handle("DELETE /backup", backupRoute(ratelimit.BackupWrite))
}

// purgeLoop deletes expired refresh tokens and revoked-family records
// hourly until ctx is done.
func (a *app) purgeLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if err := a.svc.oauth.Purge(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("purging expired tokens failed", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// oauthWallet lets the authorization server sign wallets in with sigauth.
type oauthWallet struct{ v *sigauth.Verifier }

// Authenticate accepts each signed authorization request once: it issues
// a code, so a replay must not sign the user in again.
func (w oauthWallet) Authenticate(r *http.Request) (oauth.WalletUser, error) {
	id, err := w.v.AuthenticateOnce(r)
	return oauth.WalletUser{Address: id.Address, PubKey: id.PubKey}, err
}

func (w oauthWallet) VerifyLogin(r *http.Request, address, message, signature string) (oauth.WalletUser, error) {
	id, err := w.v.VerifyLogin(r, address, message, signature)
	return oauth.WalletUser{Address: id.Address, PubKey: id.PubKey}, err
}

// backupWallet lets the backup service authenticate X-Auth-Token requests
// with sigauth: the identity is the signer's address.
type backupWallet struct{ v *sigauth.Verifier }

func (w backupWallet) AuthenticateWallet(r *http.Request) (string, error) {
	id, err := w.v.Authenticate(r)
	return id.Address, err
}

// upstream adapts a provider.Provider to the authorization server.
type upstream struct{ *provider.Provider }

func (u upstream) Exchange(ctx context.Context, code, verifier string, email bool) (oauth.UpstreamUser, error) {
	p, err := u.Provider.Exchange(ctx, code, verifier, email)
	if err != nil {
		return oauth.UpstreamUser{}, err
	}
	return oauth.UpstreamUser{Subject: p.Subject(), Email: p.Email, EmailVerified: p.EmailVerified,
		Login: p.Login, Name: p.Name, Picture: p.Picture}, nil
}

func (u upstream) CallbackError(q url.Values) error { return u.Provider.CallbackError(q) }
