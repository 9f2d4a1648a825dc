package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

const keysUsage = `usage:
  authd keys rotate [--alg ES256|RS256] [--now]   make new signing keys
                                                  (default: one of each)
  authd keys retire KID                           delete a key that no longer signs
  authd keys list                                 list signing keys, their alg and status
  authd keys reencrypt                            rewrite every signing key under
                                                  the first key-encryption key

ES256 keys sign access tokens and the ID Tokens of clients created with
--id-token-alg ES256; RS256 keys (RSA, 2048 bits) sign every other ID Token.
Each algorithm rotates on its own. rotate prints the new keys as a JSON array.

rotate and reencrypt read the key-encryption keys from
--key-encryption-key-file FILE or AUTHD_KEY_ENCRYPTION_KEY_FILE (with
SQLite, by default <database>.keys beside the database).

A rotated key is published in the JWKS at once and starts signing 7 minutes
later, so relying parties that cache the JWKS (5 minutes) know it before its
first token. Superseded keys keep verifying the tokens they signed for a
token lifetime (the longer of the access-token and ID Token lifetimes).

If a key leaked: authd keys rotate --alg <its alg> --now (running servers
sign with the new key within a minute), then authd keys retire <the leaked
kid>: tokens it signed stop verifying and it leaves the JWKS. Relying parties
with a cached JWKS may not know the new key for up to 5 minutes.

Signing keys are stored encrypted under the first key of
AUTHD_KEY_ENCRYPTION_KEY_FILE (--key-encryption-key-file); every key in the
file decrypts. To change key-encryption keys: put a new line first
(openssl rand -base64 32) on every server and restart them, run
authd keys reencrypt, then delete the old line.
`

// keyFileEnv names the file of key-encryption keys.
const keyFileEnv = "AUTHD_KEY_ENCRYPTION_KEY_FILE"

// keyFileMax bounds what is read of a key file: a few lines of 45 bytes.
const keyFileMax = 64 << 10

// runKeys is `authd keys …`: it rotates, lists, retires and re-encrypts
// the signing keys in db (already opened and migrated).
// Results go to stdout as JSON.
func runKeys(ctx context.Context, db *store.DB, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fl := flag.NewFlagSet("keys", flag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() { fmt.Fprint(stderr, keysUsage) }
	keyFilePath := fl.String("key-encryption-key-file", getenv(keyFileEnv), "file of key-encryption keys ["+keyFileEnv+"]")
	now := fl.Bool("now", false, "rotate: the new key signs at once (a leaked key)")
	alg := fl.String("alg", "", "rotate: ES256 or RS256 (default: one key of each)")
	var sub string
	var rest []string
	// The subcommand comes first; flags may come anywhere after it.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	for {
		if err := fl.Parse(args); err != nil {
			return err
		}
		if fl.NArg() == 0 {
			break
		}
		rest, args = append(rest, fl.Arg(0)), fl.Args()[1:]
	}
	if (*now || *alg != "") && sub != "rotate" {
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: --now and --alg go with rotate only")
	}
	enc := func() (*oauth.KeyEncryption, error) {
		kf, err := resolveKeyFile(*keyFilePath, db.Target)
		if err != nil {
			return nil, err
		}
		return kf.open(ctx, db, slog.New(slog.NewTextHandler(stderr, nil)))
	}
	switch sub {
	case "retire":
		if len(rest) != 1 {
			fmt.Fprint(stderr, keysUsage)
			return errors.New("keys retire: want the kid of the key to retire")
		}
		if err := oauth.RetireKey(ctx, db.DB, rest[0], time.Now()); err != nil {
			return cliError("keys retire", err)
		}
		fmt.Fprintf(stdout, "retired %s\n", rest[0])
		return nil
	case "rotate":
		if len(rest) > 0 {
			fmt.Fprint(stderr, keysUsage)
			return errors.Errorf("keys rotate: unexpected argument %q", rest[0])
		}
		algs := oauth.KeyAlgorithms
		if *alg != "" {
			if !slices.Contains(oauth.KeyAlgorithms, *alg) {
				return errors.Errorf("keys rotate: --alg %q: want ES256 or RS256", *alg)
			}
			algs = []string{*alg}
		}
		e, err := enc()
		if err != nil {
			return err
		}
		if _, err := oauth.SealKeys(ctx, db.DB, e); err != nil {
			return cliError("keys rotate", err)
		}
		activeFrom := time.Now().Add(oauth.KeyActivationDelay)
		if *now {
			activeFrom = time.Now()
		}
		made := []oauth.KeyInfo{}
		for _, a := range algs {
			k, err := oauth.RotateKey(ctx, db.DB, e, a, activeFrom)
			if err != nil {
				return cliError("keys rotate", err)
			}
			made = append(made, k)
		}
		return printJSON(stdout, made)
	case "list", "reencrypt":
		if len(rest) > 0 {
			fmt.Fprint(stderr, keysUsage)
			return errors.Errorf("keys %s: unexpected argument %q", sub, rest[0])
		}
		if sub == "list" {
			keys, err := oauth.ListKeys(ctx, db.DB, time.Now())
			if err != nil {
				return cliError("keys list", err)
			}
			return printJSON(stdout, keys)
		}
		e, err := enc()
		if err != nil {
			return err
		}
		n, err := oauth.ReencryptKeys(ctx, db.DB, e)
		if errors.Is(err, oauth.ErrKeyEncryption) {
			return keyFileError(*keyFilePath, keyEncryptionReason(err))
		}
		if err != nil {
			return cliError("keys reencrypt", err)
		}
		return printJSON(stdout, struct {
			Reencrypted int    `json:"reencrypted"`
			KEK         string `json:"kek"`
		}{n, e.ID()})
	case "help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	case "":
		fmt.Fprint(stderr, keysUsage)
		return errors.New("keys: want rotate [--now], retire KID, list or reencrypt")
	default:
		fmt.Fprint(stderr, keysUsage)
		return errors.Errorf("keys: unknown subcommand %q (want rotate, retire, list or reencrypt)", sub)
	}
}

// keyFile is the file of key-encryption keys that encrypt the signing keys
// at rest, kept outside the database so that neither a copy of the
// database nor its backups can sign tokens. One key per line, each 32
// random bytes in standard base64 (openssl rand -base64 32); the first
// encrypts, every one decrypts; empty lines and lines starting with # are
// skipped. The file must not be readable by group or others.
type keyFile struct {
	path string
	// explicit is whether AUTHD_KEY_ENCRYPTION_KEY_FILE named the file;
	// otherwise it is the SQLite default, <database>.keys.
	explicit bool
	// sqlite is whether the database is SQLite: only then may open
	// create a missing file (replicas sharing PostgreSQL must share one).
	sqlite bool
	enc    *oauth.KeyEncryption // nil while the file does not exist
}

// keyFileError names AUTHD_KEY_ENCRYPTION_KEY_FILE in a start failure.
func keyFileError(path, reason string) error {
	return &settingError{s: &setting{flag: "key-encryption-key-file", env: keyFileEnv, value: path}, reason: reason}
}

// resolveKeyFile finds the key-encryption key file for the database at
// dbURL — value when set, else, for SQLite, <database>.keys beside the
// database file — and reads it when it exists. A missing file is an error
// unless the database is SQLite (then open creates it); PostgreSQL needs
// the setting.
func resolveKeyFile(value, dbURL string) (*keyFile, error) {
	dbPath, sqlite := store.SQLitePath(dbURL)
	kf := &keyFile{path: value, explicit: value != "", sqlite: sqlite}
	if !kf.explicit {
		if !sqlite {
			return nil, keyFileError("", "required with PostgreSQL, the same file on every authd sharing the database (make one with: umask 077; openssl rand -base64 32 > authd.keys)")
		}
		kf.path = dbPath + ".keys"
	}
	enc, err := readKeyFile(kf.path)
	switch {
	case err == nil:
		kf.enc = enc
	case errors.Is(err, fs.ErrNotExist) && sqlite:
		// open creates it.
	default:
		return nil, keyFileError(kf.path, err.Error())
	}
	return kf, nil
}

// readKeyFile reads and checks a key-encryption key file. Its errors never
// quote the file's contents.
func readKeyFile(path string) (*oauth.KeyEncryption, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errors.Errorf("cannot read it: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, errors.Errorf("cannot read it: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("not a regular file")
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, errors.Errorf("mode %04o lets group or others read it; make it owner-only: chmod 600 %s", perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, keyFileMax+1))
	if err != nil {
		return nil, errors.Errorf("cannot read it: %w", err)
	}
	if len(data) > keyFileMax {
		return nil, errors.Errorf("larger than %d bytes: not a key file", keyFileMax)
	}
	return parseKeyFile(data)
}

// parseKeyFile parses the lines of a key-encryption key file.
func parseKeyFile(data []byte) (*oauth.KeyEncryption, error) {
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.Strict().DecodeString(line)
		if err != nil || len(k) != oauth.KEKSize {
			return nil, errors.Errorf("line %d is not a key: want %d random bytes in standard base64, as openssl rand -base64 %d prints", n, oauth.KEKSize, oauth.KEKSize)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, errors.Errorf("cannot read it: %w", err)
	}
	if len(keys) == 0 {
		return nil, errors.New("holds no key: want one per line, made with openssl rand -base64 32")
	}
	enc, err := oauth.NewKeyEncryption(keys...)
	if err != nil {
		return nil, errors.Errorf("%s", strings.TrimPrefix(err.Error(), "oauth: "))
	}
	return enc, nil
}

// open returns the key-encryption keys, creating the file first when it
// does not exist (SQLite only): one new random key, mode 0600, and a log
// line saying where. It creates none for a database that holds keys
// encrypted under a key-encryption key already: they would be lost.
func (kf *keyFile) open(ctx context.Context, db *store.DB, log *slog.Logger) (*oauth.KeyEncryption, error) {
	if kf.enc != nil {
		return kf.enc, nil
	}
	if !kf.sqlite {
		return nil, keyFileError(kf.path, "cannot read it: file does not exist")
	}
	keys, err := oauth.ListKeys(ctx, db.DB, time.Now())
	if err != nil {
		return nil, cliError("reading the signing keys", err)
	}
	for _, k := range keys {
		if k.KEK != "" {
			return nil, keyFileError(kf.path, "does not exist, but the database holds signing keys encrypted under key-encryption key "+k.KEK+": restore the file")
		}
	}
	enc, created, err := createKeyFile(kf.path)
	if err != nil {
		return nil, keyFileError(kf.path, err.Error())
	}
	if created {
		log.Info("created a key-encryption key file for the signing keys: back it up, apart from the database (without it the signing keys cannot be read)",
			slog.String("path", kf.path), slog.String("setting", keyFileEnv))
	}
	kf.enc = enc
	return enc, nil
}

// createKeyFile writes a new key-encryption key file at path with one
// random key, mode 0600, unless one exists already (another authd made it
// first): then it reads that one.
func createKeyFile(path string) (enc *oauth.KeyEncryption, created bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		enc, err := readKeyFile(path)
		return enc, false, err
	}
	if err != nil {
		return nil, false, errors.Errorf("cannot create it: %w", err)
	}
	k := make([]byte, oauth.KEKSize)
	if _, err := rand.Read(k); err != nil {
		f.Close()
		os.Remove(path)
		return nil, false, err
	}
	content := "# authd key-encryption keys: one per line (openssl rand -base64 32); the first\n" +
		"# encrypts the signing keys, every line decrypts. Keep this file apart from\n" +
		"# database backups, and back it up: without it the signing keys are lost.\n" +
		base64.StdEncoding.EncodeToString(k) + "\n"
	_, err = f.WriteString(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, false, errors.Errorf("cannot write it: %w", err)
	}
	enc, err = parseKeyFile([]byte(content))
	return enc, true, err
}

// keyEncryptionReason is the part of an oauth.ErrKeyEncryption failure an
// operator needs: which key does not decrypt, and under what.
func keyEncryptionReason(err error) string {
	var e *errors.Error
	if errors.As(err, &e) && e.Err != nil {
		err = e.Err
	}
	return "cannot decrypt the stored signing keys: " + strings.TrimSuffix(err.Error(), ": "+oauth.ErrKeyEncryption.Error())
}
