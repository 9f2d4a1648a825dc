// Command authd is an OAuth 2.0 authorization server and identity service
// whose users are Bitcoin keys.
//
// Usage:
//
//	authd [serve] [flags]       run the server (the default command)
//	authd migrate [up|status]   apply or list database migrations
//	authd version               print the version
//
// Every serve setting has a flag and an AUTHD_* environment twin; run
// "authd serve -h" for the list.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if err != flag.ErrHelp {
			fmt.Fprintln(os.Stderr, "authd:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError is a command line that cannot be understood.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func exitCode(err error) int {
	switch err.(type) {
	case *usageError:
		return 2
	}
	if err == flag.ErrHelp {
		return 0
	}
	return 1
}

const usage = `usage: authd <command> [arguments]

Commands:
  serve            run the server (the default when no command is given)
  migrate [up]     apply pending database migrations
  migrate status   list migrations and whether they are applied
  version          print the version

Run "authd <command> -h" for the flags of a command.
`

// run is authd's entry point, with its environment passed in so tests can
// run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return runServe(ctx, args, getenv, stderr)
	case "migrate":
		return runMigrate(ctx, args, getenv, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "authd %s\n", version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return &usageError{fmt.Sprintf("unknown command %q", cmd)}
}

// redactURL hides a URL's password for messages and logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
