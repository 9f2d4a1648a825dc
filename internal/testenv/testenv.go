// Package testenv gives tests the real servers `make test` starts: Redis,
// a Redis Cluster and PostgreSQL, found through AUTHD_TEST_REDIS_URL,
// AUTHD_TEST_REDIS_CLUSTER and AUTHD_TEST_DATABASE_URL. When a variable is
// unset the test is skipped, except under CI=true, where it fails: CI must
// never pass by skipping.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/store"
	"github.com/redis/go-redis/v9"
)

// need returns the value of the environment variable name, skipping the
// test when it is unset (failing it under CI=true).
func need(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set; under CI=true this test must run (use make test)", name)
		}
		t.Skipf("%s is not set; run make test to start the servers this test needs", name)
	}
	return v
}

// RedisURL returns the URL of the test Redis server.
func RedisURL(t testing.TB) string {
	t.Helper()
	return need(t, "AUTHD_TEST_REDIS_URL")
}

// Redis returns a client for the test Redis server, closed when t ends,
// with context deadlines enabled as authd's own clients have them (the
// rate limiter requires it). The server is shared by parallel test
// packages: never flush it, and use keys unique to the test (see Name).
func Redis(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(RedisURL(t))
	if err != nil {
		t.Fatalf("AUTHD_TEST_REDIS_URL: %v", err)
	}
	opt.ContextTimeoutEnabled = true
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("test Redis at %s does not answer: %v", opt.Addr, err)
	}
	return c
}

// ClusterAddrs returns the node addresses of the test Redis Cluster.
func ClusterAddrs(t testing.TB) []string {
	t.Helper()
	return strings.Split(need(t, "AUTHD_TEST_REDIS_CLUSTER"), ",")
}

// RedisCluster returns a client for the test Redis Cluster, closed when t
// ends, with context deadlines enabled.
func RedisCluster(t testing.TB) *redis.ClusterClient {
	t.Helper()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: ClusterAddrs(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ForEachShard(ctx, func(ctx context.Context, s *redis.Client) error {
		return s.Ping(ctx).Err()
	}); err != nil {
		t.Fatalf("test Redis Cluster does not answer: %v", err)
	}
	return c
}

// Name returns a short random name, unique to this call, for keys and
// databases a test creates on a shared server.
func Name(prefix string) string {
	var b [6]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// PostgresServerURL returns the URL of the test PostgreSQL server's
// maintenance database, for a caller that creates and drops databases
// that outlive one test (PostgresURL does both within a test).
func PostgresServerURL(t testing.TB) string {
	t.Helper()
	return need(t, "AUTHD_TEST_DATABASE_URL")
}

// PostgresURL creates a fresh, empty database on the test PostgreSQL server
// and returns its URL; the database is dropped when t ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := need(t, "AUTHD_TEST_DATABASE_URL")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := store.Open(ctx, base)
	if err != nil {
		t.Fatalf("AUTHD_TEST_DATABASE_URL: %v", err)
	}
	defer admin.Close()
	name := Name("authd_test_")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := store.Open(ctx, base)
		if err != nil {
			t.Logf("drop test database %s: %v", name, err)
			return
		}
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("AUTHD_TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// SQLiteURL returns the URL of a new SQLite database file in a temporary
// directory removed when t ends.
func SQLiteURL(t testing.TB) string {
	t.Helper()
	return "sqlite://" + filepath.Join(t.TempDir(), "authd.db")
}

// DB opens and migrates a fresh database of the given dialect, closed when
// t ends. A Postgres database needs the test server (see PostgresURL).
func DB(t testing.TB, d store.Dialect) *store.DB {
	t.Helper()
	var u string
	switch d {
	case store.Postgres:
		u = PostgresURL(t)
	case store.SQLite:
		u = SQLiteURL(t)
	default:
		t.Fatalf("testenv.DB: unknown dialect %q", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := store.Open(ctx, u)
	if err != nil {
		t.Fatalf("open %s database: %v", d, err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s database: %v", d, err)
	}
	return db
}

// EachDB runs f as a subtest on a fresh, migrated SQLite database and on a
// fresh, migrated PostgreSQL database (skipped, or failed under CI=true,
// when the test server is not there).
func EachDB(t *testing.T, f func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) { f(t, DB(t, d)) })
	}
}
