package backup

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/authd-dev/authd/internal/golden"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
)

// testClock is the fixed time of every test backup's updated_at.
var testClock = time.Date(2026, 1, 15, 12, 0, 0, 123e6, time.UTC)

type serverOptions struct {
	noBearer    bool // a service without Bearer support
	noLimitBody bool // leave httperr.LimitBody out: the handler must bound the body itself
	randomTags  bool // real random ETags instead of a predictable sequence
	creates     CreateLimiter
}

// testServer runs the service on a real listener the way cmd/authd wires
// it: httperr.Middleware, httperr.Routes, httperr.LimitBody, Identify, a rate
// limiter stand-in that records SubjectFromContext, and Handler.
type testServer struct {
	*httptest.Server
	svc    *Service
	wallet *fakeWallet
	bearer *fakeBearer

	bodyRead atomic.Int64 // request body bytes the handler chain read
	conns    *countingListener

	mu  sync.Mutex
	saw []limiterView // what the limiter stand-in saw, per request
}

type limiterView struct {
	subject  string
	ok       bool
	bodyRead int64 // body bytes read before the limiter ran
}

func newTestServer(t *testing.T, db *sql.DB, opt serverOptions) *testServer {
	t.Helper()
	ts := &testServer{wallet: newFakeWallet(), bearer: newFakeBearer()}
	cfg := Config{DB: db, Wallet: ts.wallet, Bearer: ts.bearer, Now: func() time.Time { return testClock }}
	if opt.noBearer {
		cfg.Bearer = nil
	}
	cfg.Creates = opt.creates
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !opt.randomTags {
		var n atomic.Int64
		svc.newTag = func() string { return fmt.Sprintf("%032x", n.Add(1)) }
	}
	ts.svc = svc

	limiter := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sub, ok := SubjectFromContext(r.Context())
			ts.mu.Lock()
			ts.saw = append(ts.saw, limiterView{sub, ok, ts.bodyRead.Load()})
			ts.mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}
	h := svc.Identify(limiter(svc.Handler()))
	if !opt.noLimitBody {
		h = httperr.LimitBody(MaxSize, errors.BackupTooLarge, h)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /backup", h) // and HEAD
	mux.Handle("PUT /backup", h)
	mux.Handle("DELETE /backup", h)
	counting := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = &countingBody{ReadCloser: r.Body, n: &ts.bodyRead}
		httperr.Routes(mux).ServeHTTP(w, r)
	})
	root := httperr.Middleware(httperr.Config{
		URIBase: "https://authd.example/docs/errors",
		Logger:  slog.New(slog.DiscardHandler),
	}, counting)

	ts.Server = httptest.NewUnstartedServer(root)
	ts.conns = &countingListener{Listener: ts.Listener}
	ts.Listener = ts.conns
	ts.Start()
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) limiterSaw() []limiterView {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]limiterView(nil), ts.saw...)
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c *countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// countingListener counts the bytes the server reads from each
// connection, by the client's address.
type countingListener struct {
	net.Listener
	read sync.Map // client address → *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := new(atomic.Int64)
	l.read.Store(c.RemoteAddr().String(), n)
	return &countingConn{Conn: c, n: n}, nil
}

// readFrom returns what the server read from the connection whose client
// end has address addr.
func (l *countingListener) readFrom(addr string) int64 {
	if n, ok := l.read.Load(addr); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// call is one request to the test server.
type call struct {
	method string
	body   []byte
	as     string            // sign with X-Auth-Token as this address
	bearer string            // send Authorization: Bearer
	header map[string]string // more headers
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// code returns the "error" member of an error reply.
func (r reply) code() errors.Code {
	var b struct {
		Error errors.Code `json:"error"`
	}
	json.Unmarshal(r.body, &b)
	return b.Error
}

func (ts *testServer) do(t *testing.T, c call) reply {
	t.Helper()
	r, err := ts.send(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// send is do for goroutines other than the test's: it returns its error.
func (ts *testServer) send(c call) (reply, error) {
	var body io.Reader
	if c.body != nil {
		body = bytes.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, ts.URL+"/backup", body)
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("X-Request-Id", "test-request")
	if c.as != "" {
		req.Header.Set("X-Auth-Token", ts.wallet.sign(c.as, c.method, "/backup", bodyHash(c.body)))
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		return reply{}, fmt.Errorf("%s /backup: %w", c.method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, fmt.Errorf("%s /backup: reading the reply: %w", c.method, err)
	}
	return reply{resp.StatusCode, resp.Header, b}, nil
}

// must fails the test unless r has the status (and, for errors, the code).
func must(t *testing.T, what string, r reply, status int, code errors.Code) {
	t.Helper()
	if r.status != status || (code != "" && r.code() != code) {
		t.Fatalf("%s: status %d %s, want %d %s; body %.300s", what, r.status, r.code(), status, code, r.body)
	}
}

// checkGolden compares got with testdata/golden/<name>.json.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", "golden", name+".json"), got)
}
