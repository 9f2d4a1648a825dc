package store_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/authd-dev/authd/store"
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
