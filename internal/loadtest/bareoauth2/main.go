// Command bareoauth2 serves loadtest.BaselineHandler, go-oauth2 v4 with
// its memory stores, on a loopback address: the baseline authd's load
// benchmarks measure in the same run, as a process of its own so that its
// CPU is read apart from the load generator's.
//
//	bareoauth2 -addr 127.0.0.1:9096
//
// The client is loadtest.BaselineClientID with loadtest.BaselineClientSecret.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/authd-dev/authd/internal/loadtest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9096", "address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bareoauth2:", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Handler:           loadtest.BaselineHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	fmt.Fprintln(os.Stderr, "bareoauth2: listening on", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "bareoauth2:", err)
		os.Exit(1)
	}
}
