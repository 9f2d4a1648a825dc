package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// dbFlags parses the flags of a command that only needs the database:
// --database-url (AUTHD_DATABASE_URL, default sqlite://authd.db) and
// --key-encryption-key-file (AUTHD_KEY_ENCRYPTION_KEY_FILE).
func dbFlags(name string, args []string, getenv func(string) string, stderr io.Writer) (dbURL, keyFilePath string, rest []string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	def := "sqlite://authd.db"
	if v, ok := lookup(getenv, "AUTHD_DATABASE_URL"); ok {
		def = v
	}
	fs.StringVar(&dbURL, "database-url", def, "sqlite://<path> or postgres://… [AUTHD_DATABASE_URL]")
	fs.StringVar(&keyFilePath, "key-encryption-key-file", getenv(keyFileEnv), "file of key-encryption keys for the signing keys ["+keyFileEnv+"]")
	if err := fs.Parse(args); err != nil {
		return "", "", nil, err
	}
	return dbURL, keyFilePath, fs.Args(), nil
}

// openDB opens the database and applies pending migrations, as every
// command that opens the database does.
func openDB(ctx context.Context, dbURL string, log *slog.Logger) (*store.DB, error) {
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("AUTHD_DATABASE_URL: %w", err)
	}
	n, err := db.Migrate(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	if n > 0 {
		log.Info("applied database migrations", slog.Int("count", n), slog.String("database", db.Target))
	}
	return db, nil
}

// runMigrate is "authd migrate [up|status]". Up also encrypts signing
// keys still stored in plaintext, so it needs the key-encryption keys.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sub := "up"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	dbURL, keyFilePath, rest, err := dbFlags("migrate", args, getenv, stderr)
	if err != nil {
		return err
	}
	if len(rest) > 0 || (sub != "up" && sub != "status") {
		return &usageError{"usage: authd migrate [--database-url URL] [--key-encryption-key-file FILE] [up|status]"}
	}
	var kf *keyFile
	if sub == "up" {
		if kf, err = resolveKeyFile(keyFilePath, dbURL); err != nil {
			return err
		}
	}
	db, err := store.Open(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("AUTHD_DATABASE_URL: %w", err)
	}
	defer db.Close()
	if sub == "status" {
		return db.WriteStatus(ctx, stdout)
	}
	n, err := db.Migrate(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migration(s) to %s\n", n, db.Target)
	enc, err := kf.open(ctx, db, slog.New(slog.NewTextHandler(stderr, nil)))
	if err != nil {
		return err
	}
	sealed, err := oauth.SealKeys(ctx, db.DB, enc)
	if err != nil {
		return cliError("encrypting signing keys", err)
	}
	if sealed > 0 {
		fmt.Fprintf(stdout, "encrypted %d signing key(s) stored in plaintext under key-encryption key %s\n", sealed, enc.ID())
	}
	return nil
}
