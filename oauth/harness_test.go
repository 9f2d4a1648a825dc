// Tests of the authorization server on the wire, against the whole server
// as the binary builds it. They are an external test package because
// internal/server imports this one; the dot import lets them read as if
// they were inside it (export_test.go gives them the few internals they
// need).
package oauth_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/charset"
	"github.com/authd-dev/authd/internal/golden"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/ratelimit"
	"github.com/authd-dev/authd/sigauth"
	"github.com/authd-dev/authd/store"
	"github.com/redis/go-redis/v9"
)

// testWallet holds the keys of the harness's wallet users: real
// secp256k1 keys, whose tokens and login signatures the server verifies
// with sigauth, lockouts and replay guard included.
type testWallet struct {
	now  func() time.Time // the server's clock: tokens are signed "now"
	mu   sync.Mutex
	wifs map[string]string // address -> WIF
	last time.Time         // timestamp of the last token
}

// user makes a new wallet user and returns its address.
func (tw *testWallet) user() string {
	wif, addr, err := authtoken.GenerateKey()
	if err != nil {
		panic(err)
	}
	tw.mu.Lock()
	tw.wifs[addr] = wif
	tw.mu.Unlock()
	return addr
}

func (tw *testWallet) wif(addr string) string {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	wif, ok := tw.wifs[addr]
	if !ok {
		panic("testWallet: unknown address " + addr)
	}
	return wif
}

// pubkey is addr's compressed public key, hex encoded.
func (tw *testWallet) pubkey(addr string) string {
	key, _, err := authtoken.ParseWIF(tw.wif(addr))
	if err != nil {
		panic(err)
	}
	return hex.EncodeToString(key.PubKey().SerializeCompressed())
}

// token is the X-Auth-Token addr's wallet makes for requestURI and body:
// the bitcoin-auth format (BSM), which tells the server the public key.
// Each token has a timestamp of its own, so that two tokens for the same
// request are two messages, as a wallet signing twice makes them.
func (tw *testWallet) token(addr, requestURI string, body []byte) string {
	tw.mu.Lock()
	ts := tw.now().Truncate(time.Millisecond)
	if !ts.After(tw.last) {
		ts = tw.last.Add(time.Millisecond)
	}
	tw.last = ts
	tw.mu.Unlock()
	tok, err := sigauth.Token(tw.wif(addr), sigauth.TokenOptions{
		Format: sigauth.FormatBitcoinAuth, RequestPath: requestURI, Body: body, Timestamp: ts,
	})
	if err != nil {
		panic(err)
	}
	return tok
}

// sign is addr's Bitcoin Signed Message signature over a login message.
func (tw *testWallet) sign(addr, message string) string {
	sig, err := sigauth.SignMessage(tw.wif(addr), message)
	if err != nil {
		panic(err)
	}
	return sig
}

// noWallet is the Wallet of the extra servers some tests start next to
// the harness's, which never sign anyone in.
type noWallet struct{}

func (noWallet) Authenticate(*http.Request) (WalletUser, error) {
	return WalletUser{}, errors.E(errors.ServerError, "").WithCause("noWallet", errors.New("no wallet"))
}

func (noWallet) VerifyLogin(*http.Request, string, string, string) (WalletUser, error) {
	return WalletUser{}, errors.E(errors.ServerError, "").WithCause("noWallet", errors.New("no wallet"))
}

// redisFault fails the Redis commands that name a key with a prefix, on
// the harness's Redis client: a dependency of one service going down
// while the rest of the server stays up.
type redisFault struct{ prefix atomic.Pointer[string] }

// set makes commands on keys starting with prefix fail; "" ends it.
func (f *redisFault) set(prefix string) {
	if prefix == "" {
		f.prefix.Store(nil)
		return
	}
	f.prefix.Store(&prefix)
}

func (f *redisFault) hits(cmd redis.Cmder) bool {
	p := f.prefix.Load()
	if p == nil {
		return false
	}
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && strings.HasPrefix(s, *p) {
			return true
		}
	}
	return false
}

var errInjected = errors.New("injected Redis failure")

func (f *redisFault) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *redisFault) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if f.hits(cmd) {
			cmd.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, cmd)
	}
}

func (f *redisFault) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if f.hits(c) {
				for _, c := range cmds {
					c.SetErr(errInjected)
				}
				return errInjected
			}
		}
		return next(ctx, cmds)
	}
}

// quiet discards logs; set AUTHD_TEST_LOG=1 to see them.
var quiet = func() *slog.Logger {
	if os.Getenv("AUTHD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}()

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.t.IsZero() {
		return time.Now()
	}
	return c.t
}

func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// harness is authd's whole server, built by internal/server as the
// binary builds it (every route, middleware and limit), on httptest.
type harness struct {
	t      testing.TB
	srv    *server.Server
	cfg    server.Config // what srv was built with
	s      *Server       // the authorization server inside srv
	db     *store.DB
	rdb    redis.UniversalClient
	ts     *httptest.Server
	wallet *testWallet
	clock  *clock
	fault  *redisFault
	issuer string
	c      *http.Client // a browser: cookies, no redirects followed, every response checked
}

// harnessOpt changes the server's configuration before it starts.
type harnessOpt func(*server.Config)

// withRateLimits sets rate-limit policies ("login=5/1m,…", the syntax of
// AUTHD_RATE_LIMITS) where a test needs the real limits; the harness
// otherwise raises every limit out of the way.
func withRateLimits(t testing.TB, spec string) harnessOpt {
	ps, err := ratelimit.ParsePolicies(spec)
	if err != nil {
		t.Fatal(err)
	}
	return func(c *server.Config) { c.RateLimits = ps }
}

// newHarness starts a server on db and real Redis (rdb nil: the test
// Redis server; use miniredisClient for fake time).
func newHarness(t testing.TB, db *store.DB, rdb redis.UniversalClient, opts ...harnessOpt) *harness {
	t.Helper()
	if rdb == nil {
		rdb = testenv.Redis(t)
	}
	h := &harness{t: t, db: db, rdb: rdb, clock: &clock{}, fault: &redisFault{}}
	h.wallet = &testWallet{now: h.clock.Now, wifs: map[string]string{}}
	rdb.AddHook(h.fault)
	h.ts = httptest.NewUnstartedServer(nil)
	h.issuer = "http://" + h.ts.Listener.Addr().String()
	// Many requests from one address: the limits are raised out of the
	// way unless a test sets them (withRateLimits).
	raised := ratelimit.Policies{}
	for name := range ratelimit.Defaults() {
		raised[name] = ratelimit.Policy{Name: name, Limit: ratelimit.MaxLimit, Window: time.Minute}
	}
	cfg := server.Config{
		Issuer:     h.issuer,
		DB:         db,
		Redis:      rdb,
		RateLimits: raised,
		Logger:     quiet,
		Now:        h.clock.Now,
		// One key-encryption key for every server of the package's
		// tests: several servers share one database.
		KeyEncryption: testKeyEncryption,
	}
	for _, o := range opts {
		o(&cfg)
	}
	h.cfg = cfg
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	h.srv, h.s = srv, srv.OAuth()
	h.ts.Config.Handler = srv.Handler()
	h.ts.Start()
	t.Cleanup(h.ts.Close)
	h.c = h.browser()
	return h
}

// browser returns a new client of the server, as a browser of its own:
// an empty cookie jar, and a source address of its own in 127.0.0.0/8, so
// that the rate limits and sign-in lockouts, kept per client IP in the
// shared test Redis, are its own too. It never follows redirects and
// checks every response (wireChecker).
func (h *harness) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	var b [3]byte
	rand.Read(b[:])
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, b[0], b[1], b[2]|1)}, Timeout: 5 * time.Second}).DialContext
	return &http.Client{
		Jar:           jar,
		Transport:     &wireChecker{t: h.t, issuer: h.issuer, next: tr},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
}

// miniredisClient returns a client on a fresh miniredis.
func miniredisClient(t testing.TB) (*miniredis.Miniredis, redis.UniversalClient) {
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return mr, c
}

// client registers a client and returns it with its secret.
func (h *harness) client(reg ClientRegistration) (*Client, string) {
	h.t.Helper()
	if reg.Name == "" {
		reg.Name = "Test App"
	}
	c, secret, err := CreateClient(context.Background(), h.db.DB, reg, time.Now())
	if err != nil {
		h.t.Fatalf("CreateClient: %v", err)
	}
	return c, secret
}

// do sends a request and returns the response with its body read.
func (h *harness) do(req *http.Request) (*http.Response, []byte) {
	h.t.Helper()
	resp, err := h.c.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("read body: %v", err)
	}
	return resp, b
}

func (h *harness) get(path string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest("GET", h.issuer+path, nil)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return h.do(req)
}

func (h *harness) postForm(path string, v url.Values, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	req, err := http.NewRequest("POST", h.issuer+path, strings.NewReader(v.Encode()))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return h.do(req)
}

// authorizeURL builds /authorize?… from params.
func authorizeURL(params url.Values) string { return "/authorize?" + params.Encode() }

// signedAuthorize GETs path with addr's X-Auth-Token over it.
func (h *harness) signedAuthorize(addr, path string, hdr map[string]string) (*http.Response, []byte) {
	h.t.Helper()
	m := map[string]string{"X-Auth-Token": h.wallet.token(addr, path, nil)}
	for k, v := range hdr {
		m[k] = v
	}
	return h.get(path, m)
}

// code runs a wallet-signed authorization and returns the code.
func (h *harness) code(addr string, params url.Values) string {
	h.t.Helper()
	resp, body := h.signedAuthorize(addr, authorizeURL(params), nil)
	if resp.StatusCode != http.StatusFound {
		h.t.Fatalf("authorize: status %d: %s", resp.StatusCode, body)
	}
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		h.t.Fatal(err)
	}
	code := u.Query().Get("code")
	if code == "" {
		h.t.Fatalf("authorize: no code in %s", u)
	}
	return code
}

// tokenResp is a decoded token endpoint answer, success or error.
type tokenResp struct {
	status int
	hdr    http.Header
	TokenResponse
	Error       string `json:"error"`
	Description string `json:"error_description"`
	URI         string `json:"error_uri"`
}

func (h *harness) token(v url.Values, basicID, basicSecret string) tokenResp {
	h.t.Helper()
	hdr := map[string]string{}
	if basicID != "" {
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
		hdr["Authorization"] = req.Header.Get("Authorization")
	}
	resp, body := h.postForm("/token", v, hdr)
	var tr tokenResp
	if err := json.Unmarshal(body, &tr); err != nil {
		h.t.Fatalf("token response %d is not JSON: %s", resp.StatusCode, body)
	}
	tr.status, tr.hdr = resp.StatusCode, resp.Header
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
		h.t.Errorf("token response %d: Cache-Control %q, Pragma %q", resp.StatusCode, cc, resp.Header.Get("Pragma"))
	}
	return tr
}

func (tr tokenResp) wantError(t testing.TB, status int, code string) {
	t.Helper()
	if tr.status != status || tr.Error != code {
		t.Fatalf("got %d %q (%s), want %d %q", tr.status, tr.Error, tr.Description, status, code)
	}
}

func (tr tokenResp) wantOK(t testing.TB) {
	t.Helper()
	if tr.status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("got %d %q (%s), want a token", tr.status, tr.Error, tr.Description)
	}
}

// userinfo calls /userinfo with a Bearer token.
func (h *harness) userinfo(tok string) (*http.Response, []byte) {
	h.t.Helper()
	return h.get("/userinfo", map[string]string{"Authorization": "Bearer " + tok})
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = RandomToken(32)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, b64url(sum[:])
}

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ---- wire checks: every response the harness sees ----

// wireChecker checks every response: error bodies, redirects and
// WWW-Authenticate challenges stay in the RFC 6749 Appendix A charset,
// error redirects carry only the parameters RFC 6749 and RFC 9207 allow,
// and every error_uri resolves to an anchor on /docs/errors.
type wireChecker struct {
	t      testing.TB
	issuer string
	next   http.RoundTripper
}

var (
	anchorsOnce sync.Once
	anchors     map[string]bool
)

// docAnchors returns the ids on httperr.Docs' page.
func docAnchors(t testing.TB) map[string]bool {
	anchorsOnce.Do(func() {
		rec := httptest.NewRecorder()
		if err := httperr.Docs(rec, httptest.NewRequest("GET", "/docs/errors", nil)); err != nil {
			t.Fatalf("httperr.Docs: %v", err)
		}
		anchors = map[string]bool{}
		for _, m := range regexp.MustCompile(`id="([^"]+)"`).FindAllStringSubmatch(rec.Body.String(), -1) {
			anchors[m[1]] = true
		}
	})
	return anchors
}

func (wc *wireChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := wc.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	checkWire(wc.t, wc.issuer, req, resp, body)
	return resp, nil
}

// checkErrorTriple checks error, error_description and error_uri.
func checkErrorTriple(t testing.TB, issuer, where, code, desc, uri string) {
	t.Helper()
	if code == "" || !charset.NQSChars(code) || !charset.NQSChars(desc) || !charset.NQChars(uri) {
		t.Errorf("%s: error fields outside the RFC 6749 charset: %q %q %q", where, code, desc, uri)
	}
	base, frag, ok := strings.Cut(uri, "#")
	// A failed upstream sign-in is access_denied documented at the
	// provider's entry.
	providerDoc := code == "access_denied" && (frag == "google_auth_failed" || frag == "github_auth_failed")
	if !ok || base != issuer+"/docs/errors" || (frag != code && !providerDoc) {
		t.Errorf("%s: error_uri %q is not %s/docs/errors#%s", where, uri, issuer, code)
	}
	if !docAnchors(t)[frag] {
		t.Errorf("%s: error_uri anchor #%s is not on /docs/errors", where, frag)
	}
}

func checkWire(t testing.TB, issuer string, req *http.Request, resp *http.Response, body []byte) {
	t.Helper()
	where := req.Method + " " + req.URL.Path
	for _, c := range resp.Header.Values("WWW-Authenticate") {
		for i := 0; i < len(c); i++ {
			if c[i] < 0x20 || c[i] > 0x7e {
				t.Errorf("%s: WWW-Authenticate %q has a byte outside printable ASCII", where, c)
				break
			}
		}
		for _, m := range regexp.MustCompile(`(\w+)="([^"]*)"`).FindAllStringSubmatch(c, -1) {
			if !charset.NQSChars(m[2]) {
				t.Errorf("%s: WWW-Authenticate parameter %s=%q outside the charset", where, m[1], m[2])
			}
		}
	}
	if loc := resp.Header.Get("Location"); loc != "" && req.URL.Path != "/logout" {
		// (A sign-out leads to the client with state alone.)
		u, err := url.Parse(loc)
		if err != nil {
			t.Errorf("%s: bad Location %q", where, loc)
			return
		}
		q := u.Query()
		if strings.HasSuffix(u.Host, ".example") && u.Path == "/auth" {
			// To an upstream provider (fakeUpstream): authd's own state
			// and PKCE challenge, nothing of the client's.
			if len(q.Get("state")) < 43 || q.Get("code_challenge") == "" || q.Has("iss") || q.Has("code") {
				t.Errorf("%s: upstream redirect %s", where, loc)
			}
			return
		}
		if q.Get("iss") != issuer {
			t.Errorf("%s: redirect without iss=%s: %s", where, issuer, loc)
		}
		if len(q["state"]) > 1 || len(q["iss"]) != 1 {
			t.Errorf("%s: repeated parameters in %s", where, loc)
		}
		if q.Has("error") {
			checkErrorTriple(t, issuer, where+" redirect", q.Get("error"), q.Get("error_description"), q.Get("error_uri"))
			if q.Has("code") {
				t.Errorf("%s: error redirect with a code: %s", where, loc)
			}
		} else if q.Get("code") == "" {
			t.Errorf("%s: redirect with neither code nor error: %s", where, loc)
		}
	}
	if resp.StatusCode >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
			URI         string `json:"error_uri"`
			RequestID   string `json:"request_id"`
		}
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("%s: error body is not JSON: %s", where, body)
			return
		}
		checkErrorTriple(t, issuer, where, e.Error, e.Description, e.URI)
		if e.RequestID == "" || resp.Header.Get("X-Request-Id") != e.RequestID {
			t.Errorf("%s: request_id %q vs X-Request-Id %q", where, e.RequestID, resp.Header.Get("X-Request-Id"))
		}
		if st := errors.Code(e.Error).Status(); st != resp.StatusCode {
			t.Errorf("%s: %s answered %d, catalog says %d", where, e.Error, resp.StatusCode, st)
		}
	}
	if resp.StatusCode >= 400 && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s: HTML error page without anti-framing headers", where)
		}
	}
}

// checkGolden compares got with testdata/<name>.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	golden.Check(t, filepath.Join("testdata", name), got)
}
