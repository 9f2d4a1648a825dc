package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth/session"
)

const sessionsUsage = `usage:
  authd sessions list --subject SUBJECT
  authd sessions revoke --subject SUBJECT
  authd sessions revoke HANDLE

list prints the live sign-in sessions of a subject (a Bitcoin address, or
google:<id> / github:<id>) as JSON: each session's handle (the sid of the
ID Tokens issued in it; never the secret the browser holds), when it
signed in and how, when it was last used, when it ends, and the clients
it signed in to. revoke ends every session of a subject, or the one with
HANDLE: the browser must sign in again. Tokens already issued are not
revoked; they stay valid until they expire or are revoked at /revoke.

Sessions live in Redis: these commands read AUTHD_REDIS_URL or
AUTHD_REDIS_CLUSTER_ADDRS, or take --redis-url / --redis-cluster-addrs,
the settings the server runs with.
`

// runSessions is "authd sessions …": it lists and revokes sign-in
// sessions in the server's Redis. Results go to stdout as JSON, usage and
// diagnostics to stderr.
func runSessions(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, sessionsUsage)
		return &usageError{"sessions: missing subcommand (list or revoke)"}
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "list", "revoke":
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, sessionsUsage)
		return nil
	default:
		fmt.Fprint(stderr, sessionsUsage)
		return &usageError{fmt.Sprintf("sessions: unknown subcommand %q (want list or revoke)", sub)}
	}
	fs := flag.NewFlagSet("sessions "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, sessionsUsage) }
	redisURL := getenv("AUTHD_REDIS_URL")
	clusterAddrs := getenv("AUTHD_REDIS_CLUSTER_ADDRS")
	fs.StringVar(&redisURL, "redis-url", redisURL, "redis:// or rediss:// URL of the server's Redis [AUTHD_REDIS_URL]")
	fs.StringVar(&clusterAddrs, "redis-cluster-addrs", clusterAddrs, "host:port,… of the server's Redis Cluster [AUTHD_REDIS_CLUSTER_ADDRS]")
	subject := fs.String("subject", "", "the subject whose sessions to list or revoke")
	if err := fs.Parse(args); err != nil {
		return &usageError{fmt.Sprintf("sessions %s: %v", sub, err)}
	}
	var handle string
	switch {
	case sub == "list" && (*subject == "" || fs.NArg() > 0):
		fs.Usage()
		return &usageError{"sessions list: want --subject SUBJECT"}
	case sub == "revoke" && (*subject == "") == (fs.NArg() != 1):
		fs.Usage()
		return &usageError{"sessions revoke: want either --subject SUBJECT or one HANDLE"}
	case sub == "revoke" && *subject == "":
		handle = fs.Arg(0)
		if !session.ValidHandle(handle) {
			return errors.Errorf("sessions revoke: %q is not a session handle (22 characters, as sessions list prints them)", handle)
		}
	}
	if redisURL == "" && clusterAddrs == "" {
		return errors.New("sessions: set AUTHD_REDIS_URL or AUTHD_REDIS_CLUSTER_ADDRS (or --redis-url): a server without them keeps its sessions in an embedded Redis no other process can reach")
	}
	cfg := &config{RedisURL: redisURL}
	if clusterAddrs != "" {
		cfg.RedisURL = ""
		for _, a := range strings.Split(clusterAddrs, ",") {
			if a = strings.TrimSpace(a); a != "" {
				cfg.RedisClusterAddrs = append(cfg.RedisClusterAddrs, a)
			}
		}
	}
	rc, err := openRedis(cfg, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	defer rc.Close()
	store := session.New(rc, session.Config{})

	switch {
	case sub == "list":
		ss, err := store.List(ctx, *subject)
		if err != nil {
			return cliError("sessions list", err)
		}
		return printJSON(stdout, ss)
	case *subject != "":
		n, err := store.EndSubject(ctx, *subject)
		if err != nil {
			return cliError("sessions revoke", err)
		}
		fmt.Fprintln(stderr, "authd: tokens already issued in these sessions stay valid until they expire or are revoked")
		return printJSON(stdout, map[string]any{"subject": *subject, "revoked": n})
	}
	ended, err := store.End(ctx, handle)
	if err != nil {
		return cliError("sessions revoke", err)
	}
	if !ended {
		return errors.Errorf("sessions revoke: no live session with handle %q", handle)
	}
	fmt.Fprintln(stderr, "authd: tokens already issued in this session stay valid until they expire or are revoked")
	return printJSON(stdout, map[string]any{"handle": handle, "revoked": true})
}
