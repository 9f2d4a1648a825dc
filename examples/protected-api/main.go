// Command protected-api is a tiny API that accepts authd's access tokens:
// GET /hello answers the caller's identity to a token with scope "hello",
// and /.well-known/oauth-protected-resource tells clients where to get
// one (RFC 9728).
//
//	protected-api -issuer https://auth.example.com [-resource https://api.example.com] [-audience A] [-addr 127.0.0.1:9000]
//
// A client gets a token for it from authd with scope "hello" (register the
// client with that scope: authd client create --scope "hello" …). The
// resource identifier (default: http://<addr>) is where the metadata is
// served and, unless -audience says otherwise, the audience a token must
// name. Tokens authd issues today name authd's issuer as their audience:
// run with -audience <issuer> to accept them.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/authd-dev/authd/resource"
)

// Scope is the scope GET /hello needs.
const Scope = "hello"

// newHandler returns the API: its metadata and the protected endpoint.
func newHandler(v *resource.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(v.MetadataPath(), resource.MetadataHandler(v))
	mux.Handle("GET /hello", resource.Middleware(v, Scope)(http.HandlerFunc(hello)))
	return mux
}

// hello answers with the verified token's claims.
func hello(w http.ResponseWriter, r *http.Request) {
	c, _ := resource.FromContext(r.Context())
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"hello":      c.Subject,
		"client_id":  c.ClientID,
		"scopes":     c.Scopes,
		"expires_at": c.Expiry.UTC().Format(time.RFC3339),
	})
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "protected-api:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends or the process gets SIGINT or SIGTERM.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("protected-api", flag.ContinueOnError)
	fs.SetOutput(stderr)
	issuer := fs.String("issuer", os.Getenv("AUTHD_ISSUER"), "authd's issuer URL")
	res := fs.String("resource", "", "this API's resource identifier (default: http://<addr>)")
	aud := fs.String("audience", "", "the audience tokens must name (default: the resource)")
	addr := fs.String("addr", "127.0.0.1:9000", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *res == "" {
		*res = "http://" + *addr
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	v, err := resource.NewVerifier(resource.Config{
		Issuer: *issuer, Resource: *res, Audience: *aud, Logger: log,
		ScopesSupported: []string{Scope}, ResourceName: "protected-api example",
	})
	if err != nil {
		return err
	}
	// Fail at start on a wrong issuer rather than at the first request.
	if err := v.Refresh(ctx); err != nil {
		return err
	}
	srv := &http.Server{Addr: *addr, Handler: newHandler(v), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("protected-api listening", "addr", *addr, "resource", v.Resource(), "metadata", v.MetadataURL())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
