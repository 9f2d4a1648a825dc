package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

const keysUsage = `usage:
  authd keys rotate [--alg ES256|RS256] [--now]   make new signing keys (default: one of each)
  authd keys retire KID                           delete a key that no longer signs
  authd keys list                                 list signing keys, their alg and status

ES256 keys sign access tokens and the ID Tokens of clients created with
--id-token-alg ES256; RS256 keys (RSA, 2048 bits) sign every other ID Token.
Each algorithm rotates on its own. rotate prints the new keys as a JSON array.

A rotated key is published in the JWKS at once and starts signing 7 minutes
later, so relying parties that cache the JWKS (5 minutes) know it before its
first token. Superseded keys keep verifying the tokens they signed for a
token lifetime (the longer of the access-token and ID Token lifetimes).

If a key leaked: authd keys rotate --alg <its alg> --now (running servers
sign with the new key within a minute), then authd keys retire <the leaked
kid>: tokens it signed stop verifying and it leaves the JWKS. Relying parties
with a cached JWKS may not know the new key for up to 5 minutes.
`

// runKeys is `authd keys …`: it rotates, retires and lists the signing
// keys in db (already opened and migrated). Results go to stdout as JSON.
func runKeys(ctx context.Context, db *store.DB, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: want rotate [--alg ALG] [--now], retire KID or list")
	}
	switch args[0] {
	case "retire":
		if len(args) != 2 {
			fmt.Fprint(stderr, keysUsage)
			return errors.New("keys retire: want the kid of the key to retire")
		}
		if err := oauth.RetireKey(ctx, db.DB, args[1], time.Now()); err != nil {
			return cliError("keys retire", err)
		}
		fmt.Fprintf(stdout, "retired %s\n", args[1])
		return nil
	case "rotate":
		fs := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
		fs.SetOutput(stderr)
		fs.Usage = func() { fmt.Fprint(stderr, keysUsage) }
		alg := fs.String("alg", "", "ES256 or RS256 (default: both)")
		now := fs.Bool("now", false, "sign with the new key at once (a leaked key); default: in 7 minutes")
		if err := fs.Parse(args[1:]); err != nil {
			return errors.Errorf("keys rotate: %w", err)
		}
		if fs.NArg() > 0 {
			fs.Usage()
			return errors.Errorf("keys rotate: unexpected argument %q", fs.Arg(0))
		}
		algs := oauth.KeyAlgorithms
		if *alg != "" {
			if !slices.Contains(oauth.KeyAlgorithms, *alg) {
				return errors.Errorf("keys rotate: --alg %q: want ES256 or RS256", *alg)
			}
			algs = []string{*alg}
		}
		activeFrom := time.Now().Add(oauth.KeyActivationDelay)
		if *now {
			activeFrom = time.Now()
		}
		made := []oauth.KeyInfo{}
		for _, a := range algs {
			k, err := oauth.RotateKey(ctx, db.DB, a, activeFrom)
			if err != nil {
				return cliError("keys rotate", err)
			}
			made = append(made, k)
		}
		return printJSON(stdout, made)
	case "list":
		if len(args) != 1 {
			fmt.Fprint(stderr, keysUsage)
			return errors.New("keys list: takes no arguments")
		}
		keys, err := oauth.ListKeys(ctx, db.DB, time.Now())
		if err != nil {
			return cliError("keys list", err)
		}
		return printJSON(stdout, keys)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	default:
		fmt.Fprint(stderr, keysUsage)
		return errors.Errorf("keys: unknown subcommand %q (want rotate, retire or list)", args[0])
	}
}
