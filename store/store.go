// Package store opens authd's SQL database (PostgreSQL through pgx, or an
// embedded SQLite file) and applies the embedded migrations. The packages
// that own data (oauth, backup) run their own queries on the *sql.DB it
// returns; store knows only how to reach and shape the database.
package store

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/migrations"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Dialect names the SQL engine behind a DB.
type Dialect string

const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// DB is an open authd database.
type DB struct {
	*sql.DB
	Dialect Dialect
	// Target is the database's location with any password removed, fit
	// for logs.
	Target string
}

// sqlitePragmas make SQLite safe for concurrent writers: WAL so readers do
// not block the writer, a busy timeout, and immediate transactions so two
// read-then-write transactions never deadlock into SQLITE_BUSY.
const sqlitePragmas = "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"

// Open opens the database named by rawURL and checks that it answers:
// "sqlite://<path>" (relative to the working directory unless it starts
// with "/") or "postgres://…" / "postgresql://…". It does not migrate.
func Open(ctx context.Context, rawURL string) (*DB, error) {
	const op = "store.Open"
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, errors.Errorf("%s: not a URL (want sqlite://<path> or postgres://…)", op)
	}
	var db *DB
	switch u.Scheme {
	case "sqlite":
		path, ok := SQLitePath(rawURL)
		if !ok {
			return nil, errors.Errorf("%s: sqlite URL has no path (want sqlite://authd.db or sqlite:///var/lib/authd/authd.db)", op)
		}
		if err := privateFiles(path); err != nil {
			return nil, errors.Errorf("%s: %w", op, err)
		}
		sdb, err := sql.Open("sqlite", "file:"+path+"?"+sqlitePragmas)
		if err != nil {
			return nil, errors.Errorf("%s: %w", op, err)
		}
		db = &DB{DB: sdb, Dialect: SQLite, Target: "sqlite://" + path}
	case "postgres", "postgresql":
		sdb, err := sql.Open("pgx", rawURL)
		if err != nil {
			return nil, errors.Errorf("%s: %w", op, err)
		}
		sdb.SetMaxOpenConns(32)
		sdb.SetMaxIdleConns(32)
		sdb.SetConnMaxIdleTime(5 * time.Minute)
		db = &DB{DB: sdb, Dialect: Postgres, Target: u.Redacted()}
	default:
		return nil, errors.Errorf("%s: unsupported scheme %q (want sqlite:// or postgres://)", op, u.Scheme)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, errors.Errorf("%s: cannot reach %s: %w", op, db.Target, err)
	}
	return db, nil
}

// SQLitePath returns the file path of a sqlite:// database URL, and
// whether rawURL is one.
func SQLitePath(rawURL string) (string, bool) {
	path, ok := strings.CutPrefix(rawURL, "sqlite://")
	if !ok {
		return "", false
	}
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return path, path != ""
}

// sqliteCompanions are the files SQLite keeps next to a database: the
// write-ahead log, its shared-memory index and the rollback journal.
var sqliteCompanions = []string{"-wal", "-shm", "-journal"}

// privateFiles makes a SQLite database readable by its owner alone, as
// everything in it (client secret hashes, identities, backups, signing
// keys) is for authd only. A missing database file is created empty with
// mode 0600 before the driver opens it: SQLite gives the write-ahead log
// and its index the database file's mode, so they are born 0600 too. An
// existing database, log, index or journal that group or others may read
// or write has those bits removed.
func privateFiles(path string) error {
	if strings.HasPrefix(path, ":") || strings.HasPrefix(path, "file:") {
		return nil // :memory: and URI file names are not plain paths
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrExist):
		return errors.Errorf("cannot create %s: %w", path, err)
	}
	for _, p := range append([]string{path}, companions(path)...) {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			if err := os.Chmod(p, perm&^0o077); err != nil {
				return errors.Errorf("%s is readable by other users and its mode cannot be changed to owner-only: %w", p, err)
			}
		}
	}
	return nil
}

func companions(path string) []string {
	out := make([]string, len(sqliteCompanions))
	for i, suffix := range sqliteCompanions {
		out[i] = path + suffix
	}
	return out
}

func (db *DB) provider() (*goose.Provider, error) {
	var opts []goose.ProviderOption
	dialect := goose.DialectSQLite3
	if db.Dialect == Postgres {
		dialect = goose.DialectPostgres
		// Several authd instances starting at once migrate one at a time.
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	return goose.NewProvider(dialect, db.DB, migrations.FS, opts...)
}

// Migrate applies every pending migration and returns how many it applied.
func (db *DB) Migrate(ctx context.Context) (int, error) {
	p, err := db.provider()
	if err != nil {
		return 0, errors.Errorf("store.Migrate: %w", err)
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), errors.Errorf("store.Migrate: %w", err)
	}
	return len(res), nil
}

// WriteStatus writes one line per migration to w: applied or pending.
func (db *DB) WriteStatus(ctx context.Context, w io.Writer) error {
	p, err := db.provider()
	if err != nil {
		return errors.Errorf("store.Status: %w", err)
	}
	st, err := p.Status(ctx)
	if err != nil {
		return errors.Errorf("store.Status: %w", err)
	}
	for _, s := range st {
		when := "pending"
		if s.State == goose.StateApplied {
			when = "applied " + s.AppliedAt.UTC().Format(time.RFC3339)
		}
		if _, err := fmt.Fprintf(w, "%05d  %-28s  %s\n", s.Source.Version, baseName(s.Source.Path), when); err != nil {
			return err
		}
	}
	return nil
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

// Check proves the database answers and holds authd's schema. /readyz
// calls it.
//
// Errors: temporarily_unavailable when the query fails.
func (db *DB) Check(ctx context.Context) error {
	var v string
	if err := db.QueryRowContext(ctx, `SELECT value FROM authd_meta WHERE key = 'schema'`).Scan(&v); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause("store.Check", err)
	}
	return nil
}
