package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
)

// maxWIFInput bounds what is read as a key: a WIF is 51 or 52 characters.
const maxWIFInput = 4096

const tokenSignUsage = `Usage: authd token sign (--wif-file FILE | --wif - | AUTHD_WIF=… | --wif WIF) --path P [flags]

Prints an X-Auth-Token for one request, signed with a mainnet WIF private key:

  curl -H "X-Auth-Token: $(authd token sign --wif-file key.wif --path /backup)" http://127.0.0.1:8080/backup

The token signs <path>|<timestamp>|<sha256 of the body>: sign the exact path
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

	if *path == "" {
		return errors.New("--path is required: the request's path and query, e.g. --path /backup")
	}
	if !strings.HasPrefix(*path, "/") {
		return errors.Errorf("--path %q must start with /: sign the path and query exactly as the request sends them", *path)
	}
	if *wifArg == "-" && *bodyFile == "-" {
		return errors.New("--wif - and --body - both read standard input: give one of them as a file")
	}

	wif, err := readWIF(set, *wifFile, *wifArg, getenv, stdin, stderr)
	if err != nil {
		return err
	}

	opts := authtoken.TokenOptions{Format: *format, Scheme: *scheme, RequestPath: *path}
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
		// authtoken.s errors never contain the key.
		return err
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
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
