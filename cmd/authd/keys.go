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
  authd keys rotate   make a new access-token signing key (ES256) current
  authd keys list     list signing keys, newest first

After a rotation the previous key stays in the JWKS and keeps verifying the
tokens it signed; running servers switch to the new key within a minute.
Rotate at most once per access-token lifetime (15 minutes by default), or
tokens signed two keys ago stop verifying before they expire.
`

// runKeys is `authd keys …`: it rotates and lists the access-token signing
// keys in db (already opened and migrated). Results go to stdout as JSON.
func runKeys(ctx context.Context, db *store.DB, args []string, stdout, stderr io.Writer) error {
	if len(args) != 1 {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: want one subcommand (rotate or list)")
	}
	switch args[0] {
	case "rotate":
		k, err := oauth.RotateKey(ctx, db.DB, time.Now())
		if err != nil {
			return cliError("keys rotate", err)
		}
		return printJSON(stdout, k)
	case "list":
		keys, err := oauth.ListKeys(ctx, db.DB)
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
