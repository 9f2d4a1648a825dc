package store_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/store"
)

func TestMigrateBothDialects(t *testing.T) {
	for _, tc := range []struct {
		dialect store.Dialect
		url     func(testing.TB) string
	}{
		{store.SQLite, testenv.SQLiteURL},
		{store.Postgres, testenv.PostgresURL},
	} {
		t.Run(string(tc.dialect), func(t *testing.T) {
			ctx := context.Background()
			db, err := store.Open(ctx, tc.url(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if db.Dialect != tc.dialect {
				t.Fatalf("dialect = %q, want %q", db.Dialect, tc.dialect)
			}
			var before bytes.Buffer
			if err := db.WriteStatus(ctx, &before); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(before.String(), "pending") {
				t.Fatalf("fresh database status shows nothing pending:\n%s", before.String())
			}
			n, err := db.Migrate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatal("Migrate applied nothing on a fresh database")
			}
			if n2, err := db.Migrate(ctx); err != nil || n2 != 0 {
				t.Fatalf("second Migrate = %d, %v; want 0, nil", n2, err)
			}
			var after bytes.Buffer
			if err := db.WriteStatus(ctx, &after); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(after.String(), "pending") {
				t.Fatalf("status after Migrate still pending:\n%s", after.String())
			}
			if err := db.Check(ctx); err != nil {
				t.Fatalf("Check after Migrate: %v", err)
			}
		})
	}
}

// TestMigrateConcurrently starts several migrators on one fresh database, as
// several authd instances starting together would.
func TestMigrateConcurrently(t *testing.T) {
	u := testenv.PostgresURL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := store.Open(ctx, u)
			if err != nil {
				errs <- err
				return
			}
			defer db.Close()
			_, err = db.Migrate(ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestCheckFailsWithoutSchema(t *testing.T) {
	db, err := store.Open(context.Background(), testenv.SQLiteURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Check(context.Background()); err == nil {
		t.Fatal("Check on an unmigrated database succeeded")
	}
}

func TestOpenRejects(t *testing.T) {
	for _, u := range []string{"mysql://x", "sqlite://", "::", "postgres://127.0.0.1:1/x?connect_timeout=1"} {
		if db, err := store.Open(context.Background(), u); err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
}
