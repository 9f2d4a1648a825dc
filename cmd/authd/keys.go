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
  authd keys list             list signing keys and their status

A rotated key is published in the JWKS at once and starts signing 6 minutes
later, so relying parties that cache the JWKS (5 minutes) know it before its
first token; with --now it signs at once (use that only when the current key
leaked: cached JWKS copies will not know the new key for up to 5 minutes).
The previous key stays in the JWKS and keeps verifying the tokens it signed.
Rotate at most once per access-token lifetime (15 minutes by default), or
tokens signed two keys ago stop verifying before they expire.
`

// runKeys is `authd keys …`: it rotates and lists the access-token signing
// keys in db (already opened and migrated). Results go to stdout as JSON.
func runKeys(ctx context.Context, db *store.DB, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || len(args) > 2 || (len(args) == 2 && (args[0] != "rotate" || args[1] != "--now")) {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: want rotate [--now] or list")
	}
	switch args[0] {
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
		return errors.Errorf("keys: unknown subcommand %q (want rotate or list)", args[0])
	}
}
