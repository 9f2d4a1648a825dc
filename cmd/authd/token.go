package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
)

// maxWIFInput bounds what is read as a key: a WIF is 51 or 52 characters.
const maxWIFInput = 4096

const tokenSignUsage = `Usage: authd token sign (--wif-file FILE | --wif - | AUTHD_WIF=… | --wif WIF)
                       (--url URL | [--issuer ISSUER] --path P | --unbound --path P) [flags]

Prints an X-Auth-Token for one request, signed with a mainnet WIF private key:

  curl -X DELETE -H "X-Auth-Token: $(authd token sign --wif-file key.wif \
      --method DELETE --url https://auth.example.com/backup)" https://auth.example.com/backup

By default the token signs the bound request target, <METHOD> <absolute URL>
(here DELETE https://auth.example.com/backup), so it is good for that method
at that server only. Give the absolute URL the request will use with --url,
or the server's issuer with --issuer (or AUTHD_ISSUER) and the path and query
with --path; --method defaults to GET. With --path alone the token is bound
to the issuer a local server started with the same environment assumes
(http://127.0.0.1:8080, or http://<AUTHD_ADDR>), and a note on stderr says so. --unbound signs the path and query
alone (--path), the older form that any method at any server accepting the
key would take; servers with AUTHD_SIGAUTH_REQUIRE_BINDING=true refuse it for
POST, PUT, PATCH, DELETE and /authorize.

The token signs <target>|<timestamp>|<sha256 of the body>: sign the exact path
and query the request will use, and the exact body bytes it will send. It is
valid for 5 minutes around its timestamp; a signed POST, PUT, PATCH or DELETE
is accepted once.

The key comes from --wif-file, from standard input (--wif -), or from the
AUTHD_WIF environment variable. --wif WIF works too, but the key then stays
in shell history and shows in the process list.

Flags:
`

// runTokenSign implements `authd token sign`; args are what follows "sign".
// It prints the token and a newline on stdout; warnings and usage go to
// stderr. A -h/--help request returns flag.ErrHelp after printing usage.
func runTokenSign(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	_ = ctx // signing is local: nothing to cancel
	fs := flag.NewFlagSet("authd token sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		wifFile   = fs.String("wif-file", "", "read the WIF private key from `FILE`")
		wifArg    = fs.String("wif", "", "the WIF private key, or - to read it from standard input")
		rawURL    = fs.String("url", "", "the request's absolute `URL`, exactly as sent, e.g. https://auth.example.com/backup (bound form)")
		issuer    = fs.String("issuer", "", "the server's issuer `URL`, e.g. https://auth.example.com, to which --path is appended (bound form; default $AUTHD_ISSUER)")
		method    = fs.String("method", "", "the request's `method` (bound form; default GET)")
		unbound   = fs.Bool("unbound", false, "sign the path and query alone (--path), not <METHOD> <absolute URL>")
		path      = fs.String("path", "", "the request's path and query exactly as sent, e.g. /backup or '/authorize?client_id=app'")
		bodyFile  = fs.String("body", "", "`FILE` with the request body to sign (- for standard input); none by default")
		format    = fs.String("format", authtoken.FormatSigma, "token `format`: sigma or bitcoin-auth")
		scheme    = fs.String("scheme", "", "signature `scheme` of a bitcoin-auth token: bsm (default) or brc77")
		timestamp = fs.String("timestamp", "", "signing `time`, RFC 3339 (e.g. 2026-11-21T22:00:00.000Z); default now")
	)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), tokenSignUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errors.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	opts := authtoken.TokenOptions{Format: *format, Scheme: *scheme}
	if err := signedTarget(&opts, set, *rawURL, *issuer, *method, *path, *unbound, getenv, stderr); err != nil {
		return err
	}
	if *wifArg == "-" && *bodyFile == "-" {
		return errors.New("--wif - and --body - both read standard input: give one of them as a file")
	}

	wif, err := readWIF(set, *wifFile, *wifArg, getenv, stdin, stderr)
	if err != nil {
		return err
	}

	switch opts.Format {
	case authtoken.FormatSigma, authtoken.FormatBitcoinAuth:
	default:
		return errors.Errorf("--format %q: want sigma or bitcoin-auth", *format)
	}
	switch opts.Scheme {
	case "", authtoken.SchemeBSM:
	case authtoken.SchemeBRC77:
		if opts.Format != authtoken.FormatBitcoinAuth {
			return errors.New("--scheme brc77 needs --format bitcoin-auth")
		}
	default:
		return errors.Errorf("--scheme %q: want bsm or brc77", *scheme)
	}
	if *timestamp != "" {
		t, err := time.Parse(time.RFC3339Nano, *timestamp)
		if err != nil {
			return errors.Errorf("--timestamp %q is not RFC 3339, e.g. 2026-11-21T22:00:00.000Z", *timestamp)
		}
		opts.Timestamp = t
	}
	if *bodyFile != "" {
		if opts.Body, err = readBody(*bodyFile, stdin); err != nil {
			return err
		}
	}

	token, err := authtoken.Token(wif, opts)
	if err != nil {
		// authtoken's errors never contain the key.
		return err
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// signedTarget sets the request target opts signs from the flags: the
// bound form from --url, or from --issuer (or AUTHD_ISSUER) and --path,
// with --method; the unbound form from --unbound and --path.
func signedTarget(opts *authtoken.TokenOptions, set map[string]bool, rawURL, issuer, method, path string, unbound bool, getenv func(string) string, stderr io.Writer) error {
	if path != "" && !strings.HasPrefix(path, "/") {
		return errors.Errorf("--path %q must start with /: sign the path and query exactly as the request sends them", path)
	}
	if unbound {
		for _, f := range []string{"url", "issuer", "method"} {
			if set[f] {
				return errors.Errorf("--unbound signs the path alone: drop --%s", f)
			}
		}
		if path == "" {
			return errors.New("--unbound needs --path: the request's path and query, e.g. --path /backup")
		}
		opts.RequestPath = path
		return nil
	}
	if method == "" {
		method = "GET"
	}
	opts.Method = method
	switch {
	case set["url"] && (set["path"] || set["issuer"]):
		return errors.New("give the request's absolute URL with --url, or --issuer with --path, not both")
	case set["url"]:
		u, err := url.Parse(rawURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || strings.ContainsAny(rawURL, " #") {
			return errors.Errorf("--url %q: want the absolute http(s) URL the request is sent to, e.g. https://auth.example.com/backup", rawURL)
		}
		if u.User != nil {
			return errors.Errorf("--url: the URL must not carry user info")
		}
		opts.URL = rawURL
		return nil
	}
	if !set["issuer"] {
		issuer = strings.TrimSpace(getenv("AUTHD_ISSUER"))
	}
	switch {
	case issuer == "" && path == "":
		return errors.New("the token signs <METHOD> <absolute URL>: give --url https://auth.example.com/backup, " +
			"or --issuer https://auth.example.com (or AUTHD_ISSUER) with --path /backup; --unbound --path /backup signs the path alone")
	case issuer == "":
		// The issuer a server started with the same environment assumes:
		// http://127.0.0.1:8080 unless AUTHD_ADDR says otherwise.
		addr := strings.TrimSpace(getenv("AUTHD_ADDR"))
		if addr == "" {
			addr = "127.0.0.1:8080"
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "" {
			return errors.Errorf("AUTHD_ADDR %q: want host:port, e.g. 127.0.0.1:8080; or give --issuer", addr)
		}
		issuer = issuerForAddr(host, port)
		fmt.Fprintf(stderr, "authd token sign: signing for %s%s (the local server's default issuer); give --issuer or --url for another server\n", issuer, path)
	case path == "":
		return errors.New("--issuer needs --path: the request's path and query, e.g. --path /backup")
	}
	issuer = strings.TrimSuffix(issuer, "/")
	if u, err := url.Parse(issuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return errors.Errorf("issuer %q: want the server's issuer URL, e.g. https://auth.example.com", issuer)
	}
	opts.URL = issuer + path
	return nil
}

// readWIF returns the private key from exactly one of --wif-file, --wif
// (a key, or - for standard input) and AUTHD_WIF.
func readWIF(set map[string]bool, file, arg string, getenv func(string) string, stdin io.Reader, stderr io.Writer) (string, error) {
	switch {
	case set["wif-file"] && set["wif"]:
		return "", errors.New("give the key once: --wif-file or --wif, not both")
	case set["wif-file"]:
		return readWIFFile(file, stderr)
	case set["wif"] && arg == "-":
		return readWIFFrom(stdin, "standard input")
	case set["wif"]:
		fmt.Fprintln(stderr, "authd token sign: warning: a key given with --wif stays in your shell history and shows in the process list; prefer --wif-file, --wif - or AUTHD_WIF")
		return arg, nil
	case getenv("AUTHD_WIF") != "":
		return strings.TrimSpace(getenv("AUTHD_WIF")), nil
	default:
		return "", errors.New("no private key: use --wif-file FILE, --wif - (standard input) or AUTHD_WIF")
	}
}

func readWIFFile(name string, stderr io.Writer) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", errors.Errorf("--wif-file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(stderr, "authd token sign: warning: %s is readable by other users (mode %v); chmod 600 it\n", name, fi.Mode().Perm())
	}
	return readWIFFrom(f, name)
}

// readWIFFrom reads the first line of r as the key.
func readWIFFrom(r io.Reader, what string) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxWIFInput)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", errors.Errorf("reading the key from %s: %w", what, err)
	}
	wif := strings.TrimSpace(line)
	if wif == "" {
		return "", errors.Errorf("no key in %s", what)
	}
	return wif, nil
}

func readBody(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		b, err := io.ReadAll(stdin)
		if err != nil {
			return nil, errors.Errorf("--body -: %w", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, errors.Errorf("--body: %w", err)
	}
	return b, nil
}
