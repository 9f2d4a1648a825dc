package backup

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/store"
)

// failingConnector opens real connections to the test database through
// its real driver, and can be told to lose the connection of the next
// transaction at COMMIT: the connection is closed with the transaction
// still open, so the database rolls back whatever it wrote, and the
// commit fails as it does when the network or the server goes away.
type failingConnector struct {
	driver driver.Driver
	dsn    string

	dropNextCommit atomic.Bool
	dropped        atomic.Int64 // commits lost so far
	writesBefore   atomic.Int64 // statements the lost transaction had run
}

func (c *failingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	var conn driver.Conn
	var err error
	if dc, ok := c.driver.(driver.DriverContext); ok {
		var cn driver.Connector
		if cn, err = dc.OpenConnector(c.dsn); err == nil {
			conn, err = cn.Connect(ctx)
		}
	} else {
		conn, err = c.driver.Open(c.dsn)
	}
	if err != nil {
		return nil, err
	}
	return &failingConn{inner: conn, c: c}, nil
}

func (c *failingConnector) Driver() driver.Driver { return c.driver }

type failingConn struct {
	inner     driver.Conn
	c         *failingConnector
	closeOnce sync.Once
	closeErr  error
	txWrites  int64
}

func (fc *failingConn) Prepare(q string) (driver.Stmt, error) { return fc.inner.Prepare(q) }

func (fc *failingConn) Close() error {
	fc.closeOnce.Do(func() { fc.closeErr = fc.inner.Close() })
	return fc.closeErr
}

func (fc *failingConn) Begin() (driver.Tx, error) {
	return fc.BeginTx(context.Background(), driver.TxOptions{})
}

func (fc *failingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	b, ok := fc.inner.(driver.ConnBeginTx)
	if !ok {
		return nil, errors.New("failingConn: the test driver must implement driver.ConnBeginTx")
	}
	tx, err := b.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	fc.txWrites = 0
	return &failingTx{inner: tx, conn: fc}, nil
}

func (fc *failingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := fc.inner.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	res, err := e.ExecContext(ctx, q, args)
	if err == nil {
		fc.txWrites++
	}
	return res, err
}

func (fc *failingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	if qc, ok := fc.inner.(driver.QueryerContext); ok {
		return qc.QueryContext(ctx, q, args)
	}
	return nil, driver.ErrSkip
}

func (fc *failingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	if p, ok := fc.inner.(driver.ConnPrepareContext); ok {
		return p.PrepareContext(ctx, q)
	}
	return fc.inner.Prepare(q)
}

func (fc *failingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if c, ok := fc.inner.(driver.NamedValueChecker); ok {
		return c.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

func (fc *failingConn) ResetSession(ctx context.Context) error {
	if r, ok := fc.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (fc *failingConn) IsValid() bool {
	if v, ok := fc.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

type failingTx struct {
	inner driver.Tx
	conn  *failingConn
}

func (t *failingTx) Commit() error {
	c := t.conn.c
	if c.dropNextCommit.CompareAndSwap(true, false) {
		c.writesBefore.Store(t.conn.txWrites)
		c.dropped.Add(1)
		t.conn.Close()
		return errors.Join(driver.ErrBadConn, errors.New("failing driver: connection lost before COMMIT"))
	}
	return t.inner.Commit()
}

func (t *failingTx) Rollback() error { return t.inner.Rollback() }

// failingDB opens a fresh, migrated database of dialect d and returns it
// together with a second handle on the same database whose connections
// fail on demand.
func failingDB(t *testing.T, d store.Dialect) (*store.DB, *sql.DB, *failingConnector) {
	t.Helper()
	var url, dsn string
	switch d {
	case store.Postgres:
		url = testenv.PostgresURL(t)
		dsn = url
	case store.SQLite:
		url = testenv.SQLiteURL(t)
		dsn = "file:" + strings.TrimPrefix(url, "sqlite://") +
			"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	fc := &failingConnector{driver: db.Driver(), dsn: dsn}
	fdb := sql.OpenDB(fc)
	t.Cleanup(func() { fdb.Close() })
	return db, fdb, fc
}

// TestDatabaseFailureMidPut loses the database connection in the middle of
// a PUT, after its UPDATE (or INSERT) ran and before COMMIT: the client
// gets 503 temporarily_unavailable with Retry-After, and the backup stored
// before is still there, whole, to the same service and to a fresh one.
func TestDatabaseFailureMidPut(t *testing.T) {
	for _, d := range []store.Dialect{store.SQLite, store.Postgres} {
		t.Run(string(d), func(t *testing.T) {
			db, fdb, fc := failingDB(t, d)
			ts := newTestServer(t, fdb, serverOptions{})
			ts.wallet.register(alice)
			ts.wallet.register(bob)
			old := npmBackups(t)[0].data
			put := ts.do(t, call{method: "PUT", body: old, as: alice})
			must(t, "first PUT", put, 201, "")

			fc.dropNextCommit.Store(true)
			r := ts.do(t, call{method: "PUT", body: npmBackups(t)[1].data, as: alice})
			must(t, "PUT losing its connection", r, 503, errors.TemporarilyUnavailable)
			checkGolden(t, "put_unavailable", r.body)
			if r.header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After = %q, want 1", r.header.Get("Retry-After"))
			}
			if fc.dropped.Load() != 1 || fc.writesBefore.Load() < 1 {
				t.Fatalf("the failure hit %d commits after %d statements; want 1 commit after the UPDATE", fc.dropped.Load(), fc.writesBefore.Load())
			}

			r = ts.do(t, call{method: "GET", as: alice})
			must(t, "GET after the failure", r, 200, "")
			if !bytes.Equal(r.body, old) || r.header.Get("ETag") != put.header.Get("ETag") {
				t.Fatalf("after a failed PUT GET returned %d bytes, ETag %s; want the old %d bytes, ETag %s",
					len(r.body), r.header.Get("ETag"), len(old), put.header.Get("ETag"))
			}
			other := newTestServer(t, db.DB, serverOptions{})
			other.wallet.register(alice)
			if r := other.do(t, call{method: "GET", as: alice}); !bytes.Equal(r.body, old) {
				t.Fatal("a fresh connection does not see the old backup")
			}

			// A create that fails leaves nothing behind.
			fc.dropNextCommit.Store(true)
			must(t, "first PUT of bob, failing", ts.do(t, call{method: "PUT", body: old, as: bob}), 503, errors.TemporarilyUnavailable)
			must(t, "GET bob", ts.do(t, call{method: "GET", as: bob}), 404, errors.BackupNotFound)

			// A failing DELETE deletes nothing.
			fc.dropNextCommit.Store(true)
			must(t, "DELETE, failing", ts.do(t, call{method: "DELETE", as: alice}), 503, errors.TemporarilyUnavailable)
			must(t, "GET after the failed DELETE", ts.do(t, call{method: "GET", as: alice}), 200, "")

			// The pool recovers: the same request now succeeds.
			r = ts.do(t, call{method: "PUT", body: npmBackups(t)[1].data, as: alice, header: map[string]string{"If-Match": put.header.Get("ETag")}})
			must(t, "PUT after the failure", r, 200, "")
		})
	}
}

// TestClosedDatabase: with the *sql.DB closed under it, every method
// answers 503 temporarily_unavailable, never a 500 or a stack.
func TestClosedDatabase(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ts := newTestServer(t, db.DB, serverOptions{})
		ts.wallet.register(alice)
		body := npmBackups(t)[0].data
		must(t, "PUT", ts.do(t, call{method: "PUT", body: body, as: alice}), 201, "")
		db.Close()
		for _, c := range []call{
			{method: "GET", as: alice},
			{method: "HEAD", as: alice},
			{method: "PUT", body: body, as: alice},
			{method: "DELETE", as: alice},
		} {
			r := ts.do(t, c)
			if r.status != 503 || r.header.Get("Retry-After") == "" {
				t.Errorf("%s on a closed database: %d %s, Retry-After %q", c.method, r.status, r.body, r.header.Get("Retry-After"))
			}
			if c.method != "HEAD" && r.code() != errors.TemporarilyUnavailable {
				t.Errorf("%s on a closed database: code %s", c.method, r.code())
			}
		}
	})
}
