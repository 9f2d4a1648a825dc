// Command wallet-backup keeps a wallet's encrypted backup on authd,
// authenticating every request with the wallet's own Bitcoin key.
//
//	wallet-backup keygen                        print a new key (WIF) and its address
//	wallet-backup put FILE                      store FILE; refuses to overwrite a backup
//	wallet-backup put -if-match ETAG FILE       replace the version ETAG only
//	wallet-backup put -force FILE               replace whatever is stored
//	wallet-backup get [-o FILE]                 fetch the backup (stdout by default)
//	wallet-backup delete [-if-match ETAG]       delete it
//
// FILE holds the string the npm bitcoin-backup library's encryptBackup
// returns (a trailing newline is dropped); authd refuses anything that
// looks like an unencrypted key. The key comes from -wif-file or
// AUTHD_WIF, the server from -issuer or AUTHD_ISSUER. put and get print the
// version's ETag on stderr: pass it to -if-match, so that two devices
// never overwrite each other's backup unknowingly.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/client"
	"github.com/authd-dev/authd/errors"
)

const usage = `usage: wallet-backup [-issuer URL] [-wif-file FILE] COMMAND
  keygen                          print a new key (WIF) and its address
  put [-if-match ETAG | -force] FILE
                                  store FILE; without a flag, only if no backup exists
  get [-o FILE]                   fetch the backup
  delete [-if-match ETAG]         delete the backup
The key comes from -wif-file or AUTHD_WIF; the server from -issuer or AUTHD_ISSUER.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run runs one command and returns the exit status: 0 done, 1 failed, 2
// bad usage.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("wallet-backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	issuer := fs.String("issuer", getenv("AUTHD_ISSUER"), "authd's issuer URL")
	wifFile := fs.String("wif-file", "", "file holding the wallet's WIF private key (else AUTHD_WIF)")
	if err := fs.Parse(args); err != nil || fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	if cmd == "keygen" {
		wif, addr, err := authtoken.GenerateKey()
		if err != nil {
			fmt.Fprintln(stderr, "wallet-backup:", err)
			return 1
		}
		fmt.Fprintf(stdout, "%s\n", wif)
		fmt.Fprintf(stderr, "address %s (keep the WIF above secret: it is the wallet's key)\n", addr)
		return 0
	}
	if *issuer == "" {
		fmt.Fprintln(stderr, "wallet-backup: no server: set -issuer or AUTHD_ISSUER")
		return 2
	}
	wif := getenv("AUTHD_WIF")
	if *wifFile != "" {
		b, err := os.ReadFile(*wifFile)
		if err != nil {
			fmt.Fprintln(stderr, "wallet-backup:", err)
			return 1
		}
		wif = strings.TrimSpace(string(b))
	}
	if wif == "" {
		fmt.Fprintln(stderr, "wallet-backup: no key: set -wif-file or AUTHD_WIF")
		return 2
	}
	signer, err := authtoken.NewSigner(wif)
	if err != nil {
		fmt.Fprintln(stderr, "wallet-backup:", err)
		return 2
	}
	// Every request, and every retry of one, signed anew by the wallet.
	backups := client.NewBackups(*issuer, client.NewSignedClient(*issuer, signer))

	switch cmd {
	case "put":
		return put(ctx, backups, rest, stderr)
	case "get":
		return get(ctx, backups, rest, stdout, stderr)
	case "delete":
		return del(ctx, backups, rest, stderr)
	}
	fmt.Fprint(stderr, usage)
	return 2
}

func put(ctx context.Context, b *client.Backups, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("put", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ifMatch := fs.String("if-match", "", "replace only this version")
	force := fs.Bool("force", false, "replace whatever is stored")
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 || (*ifMatch != "" && *force) {
		fmt.Fprint(stderr, usage)
		return 2
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(stderr, "wallet-backup:", err)
		return 1
	}
	data = bytes.TrimRight(data, "\r\n")
	var conds []client.Precondition
	switch {
	case *ifMatch != "":
		conds = append(conds, client.IfMatch(*ifMatch))
	case !*force:
		conds = append(conds, client.CreateOnly())
	}
	stored, err := b.Put(ctx, data, conds...)
	if err != nil {
		return fail(stderr, err)
	}
	verb := "replaced"
	if stored.Created {
		verb = "stored"
	}
	fmt.Fprintf(stderr, "%s %d bytes, etag %s\n", verb, stored.Size, stored.ETag)
	return 0
}

func get(ctx context.Context, b *client.Backups, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	out := fs.String("o", "", "write the backup to this file (default: stdout)")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	bk, err := b.Get(ctx)
	if err != nil {
		return fail(stderr, err)
	}
	if *out != "" {
		if err := os.WriteFile(*out, bk.Data, 0o600); err != nil {
			fmt.Fprintln(stderr, "wallet-backup:", err)
			return 1
		}
	} else {
		stdout.Write(bk.Data)
		fmt.Fprintln(stdout)
	}
	fmt.Fprintf(stderr, "etag %s, stored %s\n", bk.ETag, bk.UpdatedAt.Format("2006-01-02 15:04:05 MST"))
	return 0
}

func del(ctx context.Context, b *client.Backups, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("delete", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	ifMatch := fs.String("if-match", "", "delete only this version")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var conds []client.Precondition
	if *ifMatch != "" {
		conds = append(conds, client.IfMatch(*ifMatch))
	}
	if err := b.Delete(ctx, conds...); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stderr, "deleted")
	return 0
}

// fail explains err, with what to do about the common cases, and returns
// exit status 1.
func fail(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "wallet-backup:", err)
	var e *client.Error
	switch {
	case errors.Is(err, client.ErrConflict):
		fmt.Fprintln(stderr, "  The stored backup is not the version you named (or one exists): run get, merge, then put -if-match with its etag.")
	case errors.Is(err, client.ErrNotFound):
		fmt.Fprintln(stderr, "  No backup is stored for this key.")
	case errors.As(err, &e) && e.Temporary():
		fmt.Fprintf(stderr, "  Try again in %v.\n", max(e.RetryAfter, time.Second))
	case errors.As(err, &e) && e.URI != "":
		fmt.Fprintln(stderr, "  See", e.URI)
	}
	return 1
}
