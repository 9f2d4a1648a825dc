// Package server builds authd's HTTP server from its connections: the
// services (request signatures, rate limits, the authorization server,
// backups), every route with its middleware and limits, the error layer,
// the access log and the metrics. The authd command and the tests build
// the same handler through New, so what the tests exercise is what runs.
//
// The command keeps what is not HTTP: flags and environment, opening the
// database and Redis, logging, listening, serving and shutting down.
package server

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd-dev/authd/backup"
	"github.com/authd-dev/authd/clientdoc"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/ratelimit"
	"github.com/authd-dev/authd/sigauth"
	"github.com/authd-dev/authd/store"
	"github.com/redis/go-redis/v9"
)

// readyTimeout bounds the checks of /readyz.
const readyTimeout = 2 * time.Second

// Config is what New needs: the connections, and the settings of the
// services. Issuer, DB, Redis and KeyEncryption are required; zero values
// take the services' defaults.
type Config struct {
	// Issuer is authd's issuer identifier (RFC 8414): an absolute https
	// URL (http only for a loopback host) without query, fragment or
	// trailing slash. Every endpoint URL is the issuer plus its path.
	Issuer string
	// ErrorURIBase is the base of every error_uri; empty means
	// Issuer + "/docs/errors".
	ErrorURIBase string

	// DB is authd's migrated database; Redis its Redis, with
	// ContextTimeoutEnabled set (the rate limiter requires it).
	DB    *store.DB
	Redis redis.UniversalClient

	// Token, code and login lifetimes, and the longest life of a grant
	// however often its refresh token rotates; zero means oauth's
	// defaults.
	AccessTokenTTL, RefreshTokenTTL, CodeTTL, LoginTTL, RefreshFamilyMax time.Duration
	// IDTokenTTL is the lifetime of OpenID Connect ID Tokens; zero means
	// oauth.DefaultIDTokenTTL.
	IDTokenTTL time.Duration
	// KeyEncryption encrypts the token-signing keys stored in DB;
	// required (see oauth.Config.KeyEncryption).
	KeyEncryption *oauth.KeyEncryption
	// SigauthWindow is the accepted clock difference of X-Auth-Token
	// timestamps; zero means sigauth.DefaultWindow.
	SigauthWindow time.Duration
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is
	// believed when finding a client's IP.
	TrustedProxies ratelimit.Proxies
	// RateLimits are the rate-limit policies by name; a policy missing
	// from it (or all, when it is nil) takes ratelimit.Defaults'.
	RateLimits ratelimit.Policies
	// SigauthRequireBinding refuses X-Auth-Tokens that sign the path alone
	// on POST, PUT, PATCH, DELETE and at /authorize (see
	// sigauth.Config.RequireBinding). Bound tokens are checked against
	// Issuer.
	SigauthRequireBinding bool
	// SigauthUncompressedAddresses are the addresses of uncompressed keys
	// that may sign sigma tokens (see sigauth.Config.UncompressedAddresses).
	SigauthUncompressedAddresses []string
	// BackupIPDailyBytes and BackupIPDailyCreates cap, per client IP and
	// UTC day, the body bytes of PUT /backup and the backups created.
	// Zero is no cap (the authd command's defaults are 32 MiB and 20).
	BackupIPDailyBytes, BackupIPDailyCreates int64
	// Upstreams are the sign-in providers (Google, GitHub) offered on the
	// login page; Provider adapts a provider.Provider.
	Upstreams []oauth.Upstream

	// MetricsElsewhere leaves GET /metrics out of Handler, for a server
	// that serves MetricsHandler on a listener of its own.
	MetricsElsewhere bool

	// Logger receives the logs: access log lines at info level, errors
	// as httperr.Write logs them. Nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of tokens, codes, logins and signature windows;
	// nil means time.Now. (Redis expiry follows Redis's own clock.)
	Now func() time.Time
	// StoreTimeout bounds each Redis or SQL operation of the
	// authorization server; zero means oauth.DefaultTimeout.
	StoreTimeout time.Duration
	// SessionIdle and SessionMax are the lifetimes of sign-in sessions
	// (single sign-on); zero means oauth's defaults. SessionsOff turns
	// sessions off: every authorization needs a sign-in.
	SessionIdle, SessionMax time.Duration
	SessionsOff             bool

	// Resources are the resource indicators (RFC 8707) every client may
	// ask tokens for (see oauth.Config.Resources).
	Resources []string
	// Registration and RegistrationToken turn on dynamic client
	// registration at /register (see oauth.Config.Registration).
	Registration      oauth.RegistrationMode
	RegistrationToken string
	// ClientMetadataDocuments turns on Client ID Metadata Documents,
	// fetched as ClientMetadata says (its zero value is the production
	// configuration).
	ClientMetadataDocuments bool
	ClientMetadata          clientdoc.Config
}

// Server is authd's HTTP server: its services and the handler that serves
// them. It does not own the connections it was given.
type Server struct {
	cfg      Config
	log      *slog.Logger
	verifier *sigauth.Verifier
	limiter  *ratelimit.Limiter
	oauth    *oauth.Server
	backup   *backup.Service
	policies ratelimit.Policies
	metrics  *metrics
	handler  http.Handler
	draining atomic.Bool
}

// New builds the services on cfg's connections and the handler serving
// them. It loads the token-signing keys from the database, making the
// first one when there is none.
//
// Errors: plain errors naming a missing or invalid setting, or the
// failure to load the signing keys (oauth.ErrKeyEncryption in the chain
// when KeyEncryption cannot open them).
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DB == nil || cfg.Redis == nil {
		return nil, errors.New("server.New: DB and Redis are required")
	}
	if cfg.ErrorURIBase == "" {
		cfg.ErrorURIBase = cfg.Issuer + "/docs/errors"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	policies := ratelimit.Defaults()
	for name, p := range cfg.RateLimits {
		if err := p.Validate(); err != nil {
			return nil, errors.Errorf("server.New: RateLimits: %w", err)
		}
		policies[name] = p
	}
	s := &Server{cfg: cfg, log: cfg.Logger, policies: policies}

	clientIP := func(r *http.Request) netip.Addr { return cfg.TrustedProxies.ClientIP(r) }
	s.verifier = sigauth.NewVerifier(sigauth.Config{
		Redis:    cfg.Redis,
		Window:   cfg.SigauthWindow,
		ClientIP: clientIP,
		MaxBody:  backup.MaxSize,
		Logger:   cfg.Logger,
		Now:      cfg.Now,

		Issuer:                cfg.Issuer,
		RequireBinding:        cfg.SigauthRequireBinding,
		UncompressedAddresses: cfg.SigauthUncompressedAddresses,
	})
	s.metrics = newMetrics()
	var err error
	if s.limiter, err = ratelimit.New(cfg.Redis, ratelimit.Options{Proxies: cfg.TrustedProxies, Count: s.metrics.countDecision}); err != nil {
		return nil, err
	}
	var docs oauth.DocumentFetcher
	if cfg.ClientMetadataDocuments {
		docs = clientdoc.New(cfg.ClientMetadata)
	}
	s.oauth, err = oauth.New(ctx, oauth.Config{
		Issuer:           cfg.Issuer,
		AccessTokenTTL:   cfg.AccessTokenTTL,
		IDTokenTTL:       cfg.IDTokenTTL,
		RefreshTokenTTL:  cfg.RefreshTokenTTL,
		RefreshFamilyMax: cfg.RefreshFamilyMax,
		KeyEncryption:    cfg.KeyEncryption,
		CodeTTL:          cfg.CodeTTL,
		LoginTTL:         cfg.LoginTTL,
		DB:               cfg.DB.DB,
		Dialect:          string(cfg.DB.Dialect),
		Redis:            cfg.Redis,
		Wallet:           oauthWallet{s.verifier},
		Upstreams:        cfg.Upstreams,
		Logger:           cfg.Logger,
		Now:              cfg.Now,
		Timeout:          cfg.StoreTimeout,
		SessionIdle:      cfg.SessionIdle,
		SessionMax:       cfg.SessionMax,
		SessionsOff:      cfg.SessionsOff,

		Resources:         cfg.Resources,
		Registration:      cfg.Registration,
		RegistrationToken: cfg.RegistrationToken,
		ClientDocuments:   docs,
	})
	if err != nil {
		return nil, err
	}
	if s.backup, err = backup.New(backup.Config{DB: cfg.DB.DB, Wallet: backupWallet{s.verifier}, Bearer: s.oauth, Now: cfg.Now,
		Creates: newCreateQuota(s.limiter, cfg.BackupIPDailyCreates)}); err != nil {
		return nil, err
	}
	s.metrics.registry.MustRegister(newTokenCacheCollector(s.oauth.TokenCacheStats))
	rt := &routeTable{mux: http.NewServeMux(), patterns: map[string]bool{}}
	s.routes(rt)
	s.handler = httperr.Middleware(
		httperr.Config{URIBase: cfg.ErrorURIBase, Logger: cfg.Logger, Count: s.metrics.countError},
		s.accessLog(rt.patterns, httperr.Routes(rt.mux)))
	return s, nil
}

// Handler returns authd's whole HTTP handler: every route, with its
// middleware and limits, behind the error layer and the access log.
func (s *Server) Handler() http.Handler { return s.handler }

// MetricsHandler serves the Prometheus metrics of this server (also at
// GET /metrics on Handler unless Config.MetricsElsewhere).
func (s *Server) MetricsHandler() http.Handler { return s.metrics.handler(s.log) }

// OAuth returns the authorization server, for maintenance (Purge) and
// tests.
func (s *Server) OAuth() *oauth.Server { return s.oauth }

// Drain makes /readyz answer 503 from now on: the server is shutting down
// and a load balancer should send new requests elsewhere.
func (s *Server) Drain() { s.draining.Store(true) }

// accessLog logs each request at info level and observes its duration
// under labels from closed sets (see metrics.observe): a pattern of
// patterns (or "unmatched"), a known method (or "other") and a status.
func (s *Server) accessLog(patterns map[string]bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		route := r.Pattern // set by the mux on this very request
		if !patterns[route] {
			route = unmatchedRoute
		}
		s.metrics.observe(route, r.Method, status, d)
		if s.log.Enabled(r.Context(), slog.LevelInfo) {
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", d),
				slog.String("request_id", httperr.RequestID(r.Context())),
				slog.String("client_ip", s.cfg.TrustedProxies.ClientIP(r).String()))
		}
	})
}

// statusWriter remembers the status of a response for the access log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 && code >= 200 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.ResponseWriter.Write(b)
}

// Flush implements http.Flusher.
func (sw *statusWriter) Flush() { http.NewResponseController(sw.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController and httperr.Write see the writer below.
func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// healthz reports that the process is up and serving.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports whether authd can serve: Redis and the database answer
// and the server is not shutting down (Drain).
//
// Errors: temporarily_unavailable (503, Retry-After) otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	const op = "server.readyz"
	if s.draining.Load() {
		return errors.E(errors.TemporarilyUnavailable, "The server is shutting down").WithCause(op, errors.New("draining")).WithRetryAfter(time.Second)
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	var redisErr, dbErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); redisErr = s.cfg.Redis.Ping(ctx).Err() }()
	go func() { defer wg.Done(); dbErr = s.cfg.DB.Check(ctx) }()
	wg.Wait()
	if redisErr != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, errors.Errorf("redis: %w", redisErr))
	}
	if dbErr != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, errors.Errorf("database: %w", dbErr))
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// statusLabel is the status label of the request metric: the status when
// net/http knows it, else "other".
func statusLabel(status int) string {
	if http.StatusText(status) == "" {
		return otherLabel
	}
	return strconv.Itoa(status)
}
