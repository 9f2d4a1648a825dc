// Package oauth is authd's OAuth 2.0 authorization server and OpenID
// Provider: /authorize with Bitcoin sign-in, /token (with ID Tokens for
// OpenID Connect, see oidc.go), /userinfo, /revoke (RFC 7009), /introspect
// (RFC 7662), server metadata (RFC 8414, OpenID Connect Discovery 1.0) and
// the JWKS.
//
// It is built on github.com/go-oauth2/oauth2/v4's manager, with authd's own
// stores and generators plugged into it, and with every request validated
// here before the library sees it, because the library's defaults are
// unsafe (host-suffix redirect matching, redirects to unvalidated URIs,
// get-then-delete code redemption, refresh tokens not bound to their
// client, PKCE plain by default, 500s for client errors). What the library
// still does: it assembles token infos, runs the grant flows over the
// stores, and calls the generators. What authd adds:
//
//   - exact redirect_uri matching (only a loopback IP's port may vary),
//     checked before anything can redirect;
//   - codes in Redis, redeemed by a script that swaps the code for a
//     tombstone remembering the token family, so a second redemption, even
//     one that lost a race, revokes everything issued from that code;
//   - refresh tokens hashed in SQL, redeemed by a conditional UPDATE, bound
//     to their client, narrowing scope only, and revoking their family when
//     a rotated one comes back;
//   - RFC 9068 access tokens (ES256, typ at+jwt, kid) and OpenID Connect
//     ID Tokens (RS256, or ES256 per client) from persisted, rotatable
//     keys signed with go-jose, with a Redis deny list for revoked tokens
//     and families;
//   - resource indicators (RFC 8707), Client ID Metadata Documents and
//     dynamic client registration (RFC 7591, RFC 7592) for clients that
//     have never met authd (resource.go, clientdoc.go, register.go);
//   - every error as an *errors.Error, so httperr.Write answers it.
//
// # Wiring
//
// The handlers have the httperr.HandlerFunc shape. The route table of
// internal/server routes them like this (outermost first; "html" is
// httperr.HTML, "limit" the rate limiter, "form" httperr.LimitBody of
// 64 KiB):
//
//	GET  /authorize                     html → limit → Authorize
//	POST /authorize                     html → limit → form → Authorize
//	POST /authorize/login               html → limit → form → Login
//	POST /authorize/consent             html → limit → form → Consent
//	GET  /callback/{provider}           html → Callback
//	GET  /logout                        html → limit → Logout
//	POST /logout                        html → limit → form → Logout
//	POST /token                         CORS → limit → form → Token
//	GET|POST /userinfo                  CORS → Identify → limit(subject) → UserInfo
//	POST /revoke                        CORS → form → Revoke
//	POST /introspect                    form → Introspect
//	GET  /.well-known/oauth-authorization-server  CORS → Metadata
//	GET  /.well-known/openid-configuration        CORS → OpenIDConfiguration
//	GET  /.well-known/jwks.json         CORS → JWKS
//	POST /register                      CORS → limit → body → Register (when registration is on)
//	GET|PUT|DELETE /register/{client_id}
//	                                    CORS → (body →) Read/Update/DeleteRegistration
//	OPTIONS on each CORS route          Preflight
//
// Identify validates the Bearer token before the limiter so that /userinfo
// is limited per subject; it never answers, and SubjectFromContext gives
// the limiter the subject (none: key on the client IP). UserInfo returns
// the error Identify recorded. Purge should run now and then (hourly).
package oauth

import (
	"context"
	"database/sql"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth/session"
	"github.com/go-oauth2/oauth2/v4"
	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/redis/go-redis/v9"
)

// Scopes authd itself gives meaning to. Clients may register other RFC 6749
// §3.3 scope tokens.
const (
	ScopeProfile = "profile" // /userinfo
	ScopeBackup  = "backup"  // the backup API by Bearer token
)

// Default lifetimes.
const (
	DefaultAccessTokenTTL  = 15 * time.Minute
	DefaultRefreshTokenTTL = 720 * time.Hour
	DefaultCodeTTL         = 10 * time.Minute
	DefaultLoginTTL        = 10 * time.Minute
	DefaultTimeout         = 3 * time.Second
	// DefaultRefreshFamilyMax is how long a grant lives at most, 90 days.
	DefaultRefreshFamilyMax = 90 * 24 * time.Hour
)

// Config configures a Server. Issuer, DB, Dialect, Redis and Wallet are
// required; zero durations take the defaults above.
type Config struct {
	// Issuer is the server's issuer identifier (RFC 8414): an absolute
	// https URL (http only for a loopback host) without query, fragment
	// or trailing slash. Every endpoint URL is the issuer plus its path.
	Issuer string

	AccessTokenTTL  time.Duration // default 15m
	IDTokenTTL      time.Duration // default 1h
	RefreshTokenTTL time.Duration // default 720h
	CodeTTL         time.Duration // default 10m
	LoginTTL        time.Duration // default 10m: a login page's challenge

	// RefreshFamilyMax bounds a grant's life (RFC 9700 §4.14.2): however
	// often its refresh token rotates, none outlives the authorization
	// that started the family by more than this. Default 2160h (90 days).
	RefreshFamilyMax time.Duration

	// KeyEncryption encrypts the signing keys stored in DB; required.
	// Its key-encryption keys must be kept outside the database, the same
	// on every node.
	KeyEncryption *KeyEncryption

	// DB holds clients, identities, refresh tokens and signing keys; it
	// must have authd's migrations applied. Dialect is "postgres" or
	// "sqlite".
	DB      *sql.DB
	Dialect string

	// Redis holds codes, pending logins and the access-token deny list.
	Redis redis.UniversalClient

	// Wallet verifies Bitcoin-signed sign-ins.
	Wallet Wallet

	// Upstreams are the upstream sign-in providers configured (Google,
	// GitHub): the login page offers a button for each, /authorize takes
	// provider=<name>, and /callback/<name> finishes their sign-ins.
	Upstreams []Upstream

	// Logger receives the server's own logs (key generation, reloads);
	// nil means slog.Default().
	Logger *slog.Logger

	// Now is the clock for tokens, codes and challenges; nil means
	// time.Now. Redis expiry follows Redis's own clock.
	Now func() time.Time

	// Timeout bounds each Redis or SQL operation; default 3s.
	Timeout time.Duration

	// SessionIdle and SessionMax are the lifetimes of sign-in sessions
	// (single sign-on, see session.go): a session ends after SessionIdle
	// without use, and SessionMax after its sign-in whatever its use.
	// Zero means DefaultSessionIdle and DefaultSessionMax; an idle
	// lifetime longer than the maximum is cut to it. SessionsOff turns
	// sessions off: every authorization then needs a sign-in.
	SessionIdle, SessionMax time.Duration
	SessionsOff             bool

	// Resources are the resource indicators (RFC 8707) every client may
	// ask tokens for, besides those registered for it: absolute URIs
	// without a fragment (see CheckResource).
	Resources []string

	// Registration turns on dynamic client registration (RFC 7591, with
	// RFC 7592 management) at /register: RegistrationOff (the default),
	// RegistrationToken (RegistrationToken is then the initial access
	// token every registration must present as a Bearer token) or
	// RegistrationOpen.
	Registration      RegistrationMode
	RegistrationToken string

	// ClientDocuments, when set, turns on Client ID Metadata Documents: a
	// client_id it says IsURL of is fetched with it (see lookupClient).
	ClientDocuments DocumentFetcher
	// ClientDocumentCacheSize bounds the documents kept in memory;
	// default DefaultClientDocumentCacheSize.
	ClientDocumentCacheSize int
}

// RegistrationMode says whether and how clients may register themselves.
type RegistrationMode string

// The registration modes.
const (
	RegistrationOff   RegistrationMode = "off"
	RegistrationToken RegistrationMode = "token"
	RegistrationOpen  RegistrationMode = "open"
)

// minRegistrationToken is the shortest initial access token accepted.
const minRegistrationToken = 32

// Server is the authorization server. Its handlers have the
// httperr.HandlerFunc shape; the route table of internal/server adapts
// them.
type Server struct {
	cfg       Config
	issuer    string
	issuerURL *url.URL
	db        *sql.DB
	rdb       redis.UniversalClient
	wallet    Wallet
	log       *slog.Logger
	now       func() time.Time

	mgr     *manage.Manager
	clients *clientStore
	tokens  *tokenStore
	keys    *keyring

	// metadata and openidMetadata are the RFC 8414 document and the
	// OpenID Provider metadata, built once.
	metadata, openidMetadata []byte

	// upstreams are the configured sign-in providers, by name.
	upstreams map[string]Upstream
	// verified remembers access tokens whose signature verified.
	verified *verifiedTokens
	// sessions keeps sign-in sessions; nil when they are off.
	sessions *session.Store
	// docs are the metadata document clients; nil when they are off.
	docs *docClients
}

// New validates cfg, loads the signing keys from the database (generating
// the first one when there is none, encrypting any still in plaintext),
// writes the grants revoked recently back to the deny list in Redis (which
// may have lost them) and returns a ready Server.
//
// Errors: a configuration error names the setting; failing to load or
// create the signing key is temporarily_unavailable.
func New(ctx context.Context, cfg Config) (*Server, error) {
	const op = "oauth.New"
	iu, err := parseIssuer(cfg.Issuer)
	if err != nil {
		return nil, errors.Errorf("%s: Issuer: %w", op, err)
	}
	if cfg.DB == nil {
		return nil, errors.Errorf("%s: DB is required", op)
	}
	if cfg.Dialect != "postgres" && cfg.Dialect != "sqlite" {
		return nil, errors.Errorf("%s: Dialect must be postgres or sqlite, not %q", op, cfg.Dialect)
	}
	if cfg.Redis == nil {
		return nil, errors.Errorf("%s: Redis is required", op)
	}
	if cfg.Wallet == nil {
		return nil, errors.Errorf("%s: Wallet is required", op)
	}
	if cfg.KeyEncryption == nil {
		return nil, errors.Errorf("%s: KeyEncryption is required", op)
	}
	upstreams := make(map[string]Upstream, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		if n := u.Name(); n != KindGoogle && n != KindGitHub {
			return nil, errors.Errorf("%s: Upstreams: unknown provider %q (want google or github)", op, n)
		} else if upstreams[n] != nil {
			return nil, errors.Errorf("%s: Upstreams: provider %q given twice", op, n)
		}
		upstreams[u.Name()] = u
	}
	def := func(d *time.Duration, v time.Duration, name string) error {
		if *d < 0 {
			return errors.Errorf("%s: %s must not be negative", op, name)
		}
		if *d == 0 {
			*d = v
		}
		return nil
	}
	for _, d := range []struct {
		p    *time.Duration
		v    time.Duration
		name string
	}{
		{&cfg.AccessTokenTTL, DefaultAccessTokenTTL, "AccessTokenTTL"},
		{&cfg.IDTokenTTL, DefaultIDTokenTTL, "IDTokenTTL"},
		{&cfg.RefreshTokenTTL, DefaultRefreshTokenTTL, "RefreshTokenTTL"},
		{&cfg.CodeTTL, DefaultCodeTTL, "CodeTTL"},
		{&cfg.LoginTTL, DefaultLoginTTL, "LoginTTL"},
		{&cfg.RefreshFamilyMax, DefaultRefreshFamilyMax, "RefreshFamilyMax"},
		{&cfg.Timeout, DefaultTimeout, "Timeout"},
		{&cfg.SessionIdle, DefaultSessionIdle, "SessionIdle"},
		{&cfg.SessionMax, DefaultSessionMax, "SessionMax"},
	} {
		if err := def(d.p, d.v, d.name); err != nil {
			return nil, err
		}
	}
	if cfg.AccessTokenTTL < time.Second || cfg.IDTokenTTL < time.Second || cfg.CodeTTL < time.Second || cfg.LoginTTL < time.Second ||
		cfg.RefreshTokenTTL < time.Second || cfg.RefreshFamilyMax < time.Second {
		return nil, errors.Errorf("%s: token, code, login and grant lifetimes must be at least 1s", op)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := checkOnboarding(&cfg); err != nil {
		return nil, errors.Errorf("%s: %w", op, err)
	}

	s := &Server{
		cfg:       cfg,
		issuer:    cfg.Issuer,
		issuerURL: iu,
		db:        cfg.DB,
		rdb:       cfg.Redis,
		wallet:    cfg.Wallet,
		log:       cfg.Logger,
		now:       cfg.Now,
		upstreams: upstreams,
		verified:  newVerifiedTokens(verifiedTokensSize),
	}
	if !cfg.SessionsOff {
		s.sessions = session.New(cfg.Redis, session.Config{Idle: cfg.SessionIdle, Max: cfg.SessionMax, Now: cfg.Now, Timeout: cfg.Timeout})
	}
	if cfg.ClientDocuments != nil {
		s.docs = newDocClients(cfg.ClientDocuments, cfg.ClientDocumentCacheSize, cfg.Now)
	}
	s.clients = &clientStore{db: cfg.DB, timeout: cfg.Timeout}
	if err := s.clients.prepare(ctx); err != nil {
		return nil, err
	}
	s.tokens = &tokenStore{s: s}
	s.keys = &keyring{db: cfg.DB, enc: cfg.KeyEncryption, log: cfg.Logger, now: cfg.Now, timeout: cfg.Timeout, verifyFor: max(cfg.AccessTokenTTL, cfg.IDTokenTTL)}
	if err := s.keys.init(ctx); err != nil {
		return nil, err
	}
	if n, err := s.tokens.restoreDenyList(ctx); err != nil {
		// Redis may be down at start; requests that need it answer 503
		// until it is back.
		s.log.LogAttrs(ctx, slog.LevelWarn, "could not restore the deny list of recently revoked grants", slog.Any("err", err))
	} else if n > 0 {
		s.log.LogAttrs(ctx, slog.LevelDebug, "restored the deny list of recently revoked grants", slog.Int("count", n))
	}
	s.mgr = s.newManager()
	s.metadata, s.openidMetadata = s.buildMetadata()
	return s, nil
}

// checkOnboarding validates the resources and the registration settings
// of cfg, filling in their defaults.
func checkOnboarding(cfg *Config) error {
	for _, r := range cfg.Resources {
		if why := checkResource(r); why != "" {
			return errors.Errorf("Resources: %q %s", r, why)
		}
	}
	cfg.Resources = dedupe(cfg.Resources)
	switch cfg.Registration {
	case "":
		cfg.Registration = RegistrationOff
	case RegistrationOff, RegistrationOpen:
	case RegistrationToken:
		if len(cfg.RegistrationToken) < minRegistrationToken || !validB64Token(cfg.RegistrationToken) {
			return errors.Errorf("RegistrationToken: want at least %d characters of a Bearer token (RFC 6750 b64token), such as 32 random bytes in base64", minRegistrationToken)
		}
		return nil
	default:
		return errors.Errorf("Registration: %q is not off, token or open", cfg.Registration)
	}
	if cfg.RegistrationToken != "" {
		return errors.New("RegistrationToken is set but Registration is not token")
	}
	return nil
}

// RegistrationEnabled reports whether clients may register themselves at
// /register.
func (s *Server) RegistrationEnabled() bool { return s.cfg.Registration != RegistrationOff }

// newManager wires go-oauth2's manager to authd's stores and generators and
// replaces each of its unsafe defaults.
func (s *Server) newManager() *manage.Manager {
	m := manage.NewManager()
	m.MapClientStorage(s.clients)
	m.MapTokenStorage(s.tokens)
	m.MapAuthorizeGenerate(codeGenerator{})
	m.MapAccessGenerate(&accessGenerator{s: s})
	// DefaultValidateURI is a host-suffix check: exact matching instead.
	m.SetValidateURIHandler(validateRedirectURIList)
	m.SetExtractExtensionHandler(s.extractExtension)
	m.SetAuthorizeCodeExp(s.cfg.CodeTTL)
	m.SetAuthorizeCodeTokenCfg(&manage.Config{
		AccessTokenExp:    s.cfg.AccessTokenTTL,
		RefreshTokenExp:   s.cfg.RefreshTokenTTL,
		IsGenerateRefresh: true, // the generator issues one only to clients with the refresh_token grant
	})
	m.SetClientTokenCfg(&manage.Config{AccessTokenExp: s.cfg.AccessTokenTTL})
	m.SetRefreshTokenCfg(&manage.RefreshingConfig{
		AccessTokenExp:     s.cfg.AccessTokenTTL,
		RefreshTokenExp:    s.cfg.RefreshTokenTTL,
		IsGenerateRefresh:  true,  // rotate on every use
		IsResetRefreshTime: true,  // the new refresh token lives RefreshTokenTTL from now
		IsRemoveAccess:     false, // access tokens are JWTs: they live until they expire or are revoked
		IsRemoveRefreshing: true,  // a no-op: the store already marked the old one used
	})
	return m
}

// extractExtension gives every token info a token family: a fresh one for a
// new authorization or a client_credentials grant; a code exchange keeps
// the family its code was issued with.
func (s *Server) extractExtension(tgr *oauth2.TokenGenerateRequest, ti oauth2.ExtendableTokenInfo) {
	ext := ti.GetExtension()
	if ext == nil {
		ext = make(url.Values)
	}
	if ext.Get(extFamily) == "" {
		ext.Set(extFamily, newFamily())
	}
	ti.SetExtension(ext)
}

// CheckIssuer reports whether issuer can be authd's issuer identifier:
// an absolute URL without query, fragment, user information or trailing
// slash (RFC 8414 §2), with https unless the host is loopback
// (LoopbackHost). The authd command checks its setting with it before
// anything starts.
//
// Errors: a plain error saying what is wrong, for a person to read.
func CheckIssuer(issuer string) error {
	_, err := parseIssuer(issuer)
	return err
}

// parseIssuer is CheckIssuer, returning the parsed issuer.
func parseIssuer(issuer string) (*url.URL, error) {
	if issuer == "" {
		return nil, errors.New("required")
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return nil, errors.New("must be an absolute URL such as https://auth.example.com")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#") {
		return nil, errors.New("must not have a query or fragment")
	}
	if u.User != nil {
		return nil, errors.New("must not contain user information")
	}
	if strings.HasSuffix(issuer, "/") {
		return nil, errors.New("must not end with a slash")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !LoopbackHost(u.Hostname()) {
			return nil, errors.New("must use https unless the host is loopback")
		}
	default:
		return nil, errors.New("must use https")
	}
	return u, nil
}

// LoopbackHost reports whether host, as url.URL.Hostname returns it,
// names this machine: "localhost" or a loopback IP address.
func LoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// endpoint returns the absolute URL of path on this server.
func (s *Server) endpoint(path string) string { return s.issuer + path }

// opCtx bounds one Redis or SQL operation.
func (s *Server) opCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.cfg.Timeout)
}
