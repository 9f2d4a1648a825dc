package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

const keysUsage = `usage:
  authd keys rotate [--now]   make a new access-token signing key (ES256)
  authd keys retire KID       delete a key that no longer signs
  authd keys list             list signing keys and their status

A rotated key is published in the JWKS at once and starts signing 7 minutes
later, so relying parties that cache the JWKS (5 minutes) know it before its
first token. Superseded keys keep verifying the tokens they signed for an
access-token lifetime.

If a key leaked: authd keys rotate --now (running servers sign with the new
key within a minute), then authd keys retire <the leaked kid>: tokens it
signed stop verifying and it leaves the JWKS. Relying parties with a cached
JWKS may not know the new key for up to 5 minutes.
`

// runKeys is `authd keys …`: it rotates and lists the access-token signing
// keys in db (already opened and migrated). Results go to stdout as JSON.
func runKeys(ctx context.Context, db *store.DB, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || len(args) > 2 || (len(args) == 2 && !(args[0] == "rotate" && args[1] == "--now" || args[0] == "retire")) {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: want rotate [--now], retire KID or list")
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
		activeFrom := time.Now().Add(oauth.KeyActivationDelay)
		if len(args) == 2 {
			activeFrom = time.Now()
		}
		k, err := oauth.RotateKey(ctx, db.DB, activeFrom)
		if err != nil {
			return cliError("keys rotate", err)
		}
		return printJSON(stdout, k)
	case "list":
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
