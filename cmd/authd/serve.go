package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/ratelimit"
	"github.com/authd-dev/authd/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server timeouts. ReadHeaderTimeout bounds slow-header clients
// (slowloris); the others bound slow bodies, slow readers and idle
// keep-alive connections.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
	shutdownTimeout   = 25 * time.Second
	readyTimeout      = 2 * time.Second
)

// app is a running authd: its configuration, connections and handlers.
type app struct {
	cfg      *config
	log      *slog.Logger
	db       *store.DB
	redis    *redisConn
	registry *prometheus.Registry
	svc      *services
	draining atomic.Bool
	requests *prometheus.HistogramVec
}

// runServe is "authd serve".
func runServe(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	cfg, err := parseConfig("serve", args, getenv, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	if w := cfg.behindProxyWarning(); w != "" {
		log.Warn(w, slog.String("issuer", cfg.Issuer))
	}

	// Listen first, so a bad or busy address fails before anything else.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("AUTHD_ADDR: cannot listen on %s: %w", cfg.Addr, err)
	}
	defer ln.Close()
	cfg.setListenAddr(ln.Addr())
	var mln net.Listener
	if cfg.MetricsAddr != "" {
		if mln, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("AUTHD_METRICS_ADDR: cannot listen on %s: %w", cfg.MetricsAddr, err)
		}
		defer mln.Close()
	}

	a, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	return a.serve(ctx, ln, mln)
}

// newApp opens the database (applying migrations) and Redis, and builds
// the handlers.
func newApp(ctx context.Context, cfg *config, log *slog.Logger) (*app, error) {
	db, err := openDB(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return nil, err
	}
	if _, err := cfg.KeyFile.open(ctx, db, log); err != nil {
		db.Close()
		return nil, err
	}
	rc, err := openRedis(cfg, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, readyTimeout)
	if err := rc.Ping(pctx).Err(); err != nil {
		// Start anyway: /readyz reports it and requests that need Redis
		// answer 503 until it is back.
		log.Warn("Redis does not answer at start; requests that need it will get 503 until it does", slog.Any("err", err))
	}
	cancel()

	svc, err := newServices(ctx, cfg, log, db, rc)
	if err != nil {
		rc.Close()
		db.Close()
		if errors.Is(err, oauth.ErrKeyEncryption) {
			return nil, keyFileError(cfg.KeyFile.path, keyEncryptionReason(err))
		}
		return nil, err
	}
	a := &app{cfg: cfg, log: log, db: db, redis: rc, svc: svc, registry: prometheus.NewRegistry()}
	a.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "authd_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests, by route pattern, method and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method", "status"})
	a.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		httperr.Collector(),
		ratelimit.Collector(),
		a.requests,
	)
	return a, nil
}

func (a *app) close() {
	a.redis.Close()
	a.db.Close()
}

// handler returns authd's whole HTTP handler: every route, in one place,
// behind the error layer.
func (a *app) handler() http.Handler {
	mux := http.NewServeMux()
	a.routes(mux)
	return httperr.Middleware(httperr.Config{URIBase: a.cfg.ErrorURIBase, Logger: a.log},
		a.accessLog(httperr.Routes(mux)))
}

func (a *app) metricsHandler() http.Handler {
	return promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelError)})
}

// serve answers on ln (and /metrics on mln when set) until ctx is done,
// then stops accepting, drains in-flight requests and returns.
func (a *app) serve(ctx context.Context, ln, mln net.Listener) error {
	errLog := slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          errLog,
			BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		}
	}
	servers := []*http.Server{newServer(a.handler())}
	listeners := []net.Listener{ln}
	if mln != nil {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metricsHandler())
		servers = append(servers, newServer(mux))
		listeners = append(listeners, mln)
	}

	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func() {
			if err := s.Serve(listeners[i]); err != nil && err != http.ErrServerClosed {
				errc <- err
			}
		}()
	}
	attrs := []any{slog.String("addr", ln.Addr().String()), slog.String("issuer", a.cfg.Issuer), slog.String("version", version)}
	if mln != nil {
		attrs = append(attrs, slog.String("metrics_addr", mln.Addr().String()))
	}
	a.log.Info("authd listening", attrs...)
	pctx, stopPurge := context.WithCancel(ctx)
	purged := make(chan struct{})
	go func() { defer close(purged); a.purgeLoop(pctx) }()
	defer func() { stopPurge(); <-purged }()

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	a.draining.Store(true)
	a.log.Info("shutting down: draining in-flight requests", slog.Duration("timeout", shutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(sctx); err != nil {
				a.log.Error("shutdown deadline passed; closing remaining connections", slog.Any("err", err))
				s.Close()
			}
		}()
	}
	wg.Wait()
	a.log.Info("stopped")
	return serveErr
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// healthz reports that the process is up and serving.
func (a *app) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz reports whether authd can serve: Redis and the database answer
// and the server is not shutting down.
//
// Errors: temporarily_unavailable (503, Retry-After) otherwise.
func (a *app) readyz(w http.ResponseWriter, r *http.Request) error {
	const op = "authd.readyz"
	if a.draining.Load() {
		return errors.E(errors.TemporarilyUnavailable, "The server is shutting down").WithCause(op, errors.New("draining")).WithRetryAfter(time.Second)
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	var redisErr, dbErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); redisErr = a.redis.Ping(ctx).Err() }()
	go func() { defer wg.Done(); dbErr = a.db.Check(ctx) }()
	wg.Wait()
	if redisErr != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, errors.Errorf("redis: %w", redisErr))
	}
	if dbErr != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, errors.Errorf("database: %w", dbErr))
	}
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// accessLog logs each request at info level and records its duration.
func (a *app) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		d := time.Since(start)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		a.requests.WithLabelValues(route, r.Method, strconv.Itoa(status)).Observe(d.Seconds())
		if a.log.Enabled(r.Context(), slog.LevelInfo) {
			a.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", d),
				slog.String("request_id", httperr.RequestID(r.Context())),
				slog.String("client_ip", a.cfg.TrustedProxies.ClientIP(r).String()))
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
