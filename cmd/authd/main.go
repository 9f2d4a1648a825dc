// Command authd is an OAuth 2.0 authorization server and identity service
// whose users are Bitcoin keys.
//
// Usage:
//
//	authd [serve] [flags]       run the server (the default command)
//	authd migrate [up|status]   apply or list database migrations
//	authd sessions list|revoke  list or end sign-in sessions
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
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/authd-dev/authd/store"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if err != flag.ErrHelp {
			// One line: a driver's multi-line message is folded.
			fmt.Fprintln(os.Stderr, "authd:", strings.Join(strings.Fields(err.Error()), " "))
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
  client create    register an OAuth client (prints its id and secret)
  client list      list registered clients
  client delete    delete a client and its refresh tokens
  keys rotate      make new token-signing keys (ES256 and RS256)
  keys list        list token-signing keys
  keys retire      delete a token-signing key that no longer signs
  keys reencrypt   rewrite the signing keys under the first key-encryption key
  sessions list    list a subject's sign-in sessions (reads AUTHD_REDIS_URL)
  sessions revoke  end a subject's sign-in sessions, or one by its handle
  token sign       make an X-Auth-Token for a request, signed with a Bitcoin key
  version          print the version

Commands that open the database read AUTHD_DATABASE_URL or take
--database-url URL, and apply pending migrations first.

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
	case "client":
		return withDB(ctx, args, getenv, stderr, func(db *store.DB, args []string) error {
			return runClient(ctx, db, args, stdout, stderr)
		})
	case "keys":
		return withDB(ctx, args, getenv, stderr, func(db *store.DB, args []string) error {
			return runKeys(ctx, db, args, getenv, stdout, stderr)
		})
	case "sessions":
		return runSessions(ctx, args, getenv, stdout, stderr)
	case "token":
		if len(args) == 0 || args[0] != "sign" {
			return &usageError{"usage: authd token sign --path P [flags] (authd token sign -h for the flags)"}
		}
		return runTokenSign(ctx, args[1:], getenv, stdin, stdout, stderr)
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

// redactURL hides a URL's passwords for messages and logs: the user
// info's, and query parameters that carry one (password=,
// sentinel_password= in Redis URLs).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
		}
	}
	u.RawQuery = q.Encode()
	return u.Redacted()
}

// withDB opens the database named by --database-url (anywhere in args) or
// AUTHD_DATABASE_URL, applies pending migrations, and calls f with the
// remaining arguments.
func withDB(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, f func(*store.DB, []string) error) error {
	dbURL := "sqlite://authd.db"
	if v, ok := lookup(getenv, "AUTHD_DATABASE_URL"); ok {
		dbURL = v
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--database-url" || a == "-database-url":
			if i+1 == len(args) {
				return &usageError{"flag needs an argument: --database-url"}
			}
			dbURL = args[i+1]
			i++
		case strings.HasPrefix(a, "--database-url=") || strings.HasPrefix(a, "-database-url="):
			dbURL = a[strings.IndexByte(a, '=')+1:]
		default:
			rest = append(rest, a)
		}
	}
	db, err := openDB(ctx, dbURL, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer db.Close()
	return f(db, rest)
}
