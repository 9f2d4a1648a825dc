package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
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

// app is a running authd: its configuration, connections and server.
type app struct {
	cfg   *config
	log   *slog.Logger
	db    *store.DB
	redis *redisConn
	srv   *server.Server
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
	if w := cfg.onboardingWarning(); w != "" {
		log.Warn(w)
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
// the server on them.
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

	srv, err := server.New(ctx, serverConfig(cfg, log, db, rc))
	if err != nil {
		rc.Close()
		db.Close()
		if errors.Is(err, oauth.ErrKeyEncryption) {
			return nil, keyFileError(cfg.KeyFile.path, keyEncryptionReason(err))
		}
		return nil, err
	}
	return &app{cfg: cfg, log: log, db: db, redis: rc, srv: srv}, nil
}

func (a *app) close() {
	a.redis.Close()
	a.db.Close()
}

// handler returns authd's whole HTTP handler.
func (a *app) handler() http.Handler { return a.srv.Handler() }

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
		mux.Handle("GET /metrics", a.srv.MetricsHandler())
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
	a.srv.Drain()
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
