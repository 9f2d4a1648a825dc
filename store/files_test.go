package store_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/migrations"
	"github.com/authd-dev/authd/store"
	"github.com/pressly/goose/v3"
)

// withUmask runs the test under a permissive umask, as a shell with the
// usual 022 would start authd.
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %04o, want %04o", filepath.Base(path), got, want)
	}
}

// TestSQLiteFilesPrivate: a new SQLite database, its write-ahead log and
// its shared-memory index are created readable by their owner only, and
// an existing database or log that others could read is made private when
// authd opens it.
func TestSQLiteFilesPrivate(t *testing.T) {
	withUmask(t, 0o022)
	ctx := context.Background()

	path := filepath.Join(t.TempDir(), "new.db")
	db, err := store.Open(ctx, "sqlite://"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(ctx); err != nil { // writes: the log and index exist now
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		wantMode(t, p, 0o600)
	}
	db.Close()

	// A database made by an earlier authd, with the log left behind.
	old := filepath.Join(t.TempDir(), "old.db")
	for _, p := range []string{old, old + "-wal", old + "-shm"} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o664); err != nil {
			t.Fatal(err)
		}
	}
	db, err = store.Open(ctx, "sqlite://"+old)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, p := range []string{old, old + "-wal", old + "-shm"} {
		wantMode(t, p, 0o600)
	}
}

// TestMigrationDatesRefreshFamilies: a refresh token family stored before
// families had a start is dated from its oldest stored token, on both
// databases.
func TestMigrationDatesRefreshFamilies(t *testing.T) {
	for _, tc := range []struct {
		dialect goose.Dialect
		url     func(testing.TB) string
	}{
		{goose.DialectSQLite3, testenv.SQLiteURL},
		{goose.DialectPostgres, testenv.PostgresURL},
	} {
		t.Run(string(tc.dialect), func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, tc.url(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			p, err := goose.NewProvider(tc.dialect, db.DB, migrations.FS)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 4); err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				hash, family string
				created      int64
			}{{"a1", "famA", 3000}, {"a2", "famA", 1000}, {"a3", "famA", 2000}, {"b1", "famB", 5000}} {
				if _, err := db.ExecContext(ctx, `INSERT INTO oauth_refresh_tokens (hash, family, client_id, subject, scope, created_ms, expires_ms)
					VALUES ($1, $2, 'c', 's', 'profile', $3, $4)`, r.hash, r.family, r.created, r.created+100); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			for hash, want := range map[string]int64{"a1": 1000, "a2": 1000, "a3": 1000, "b1": 5000} {
				var got int64
				if err := db.QueryRowContext(ctx, `SELECT family_created_ms FROM oauth_refresh_tokens WHERE hash = $1`, hash).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if got != want {
					t.Errorf("%s: family start %d, want %d", hash, got, want)
				}
			}
		})
	}
}
