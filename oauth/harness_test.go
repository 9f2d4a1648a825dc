package oauth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"github.com/authd-dev/authd/internal/golden"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/store"
	"github.com/redis/go-redis/v9"
)

// fakeWallet stands in for sigauth: each address has an HMAC key, and a
// token or login signature is valid only when it is that key's MAC over
// exactly what sigauth would verify (the request URI and body hash, or
// the login message). It also counts failed logins into a lockout, and can
// be made unreachable.
type fakeWallet struct {
	mu      sync.Mutex
	keys    map[string][]byte
	pubkeys map[string]string
	fails   map[string]int
	down    bool
}

func newFakeWallet() *fakeWallet {
	return &fakeWallet{keys: map[string][]byte{}, pubkeys: map[string]string{}, fails: map[string]int{}}
}

// user registers a new wallet user and returns its address.
func (fw *fakeWallet) user(pubkey string) string {
	k := make([]byte, 32)
	rand.Read(k)
	addr := "1Fake" + hex.EncodeToString(k[:10])
	fw.mu.Lock()
	fw.keys[addr] = k
	fw.pubkeys[addr] = pubkey
	fw.mu.Unlock()
	return addr
}

func (fw *fakeWallet) mac(addr, msg string) string {
	fw.mu.Lock()
	k := fw.keys[addr]
	fw.mu.Unlock()
	if k == nil {
		k = []byte("unknown")
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte(msg))
	return hex.EncodeToString(m.Sum(nil))
}

func bodyHash(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// token is the X-Auth-Token addr's wallet makes for requestURI and body.
func (fw *fakeWallet) token(addr, requestURI string, body []byte) string {
	return "fake|" + addr + "|" + fw.mac(addr, requestURI+"|"+bodyHash(body))
}

// sign is addr's signature over a login message.
func (fw *fakeWallet) sign(addr, message string) string { return fw.mac(addr, "login|"+message) }

func (fw *fakeWallet) Authenticate(r *http.Request) (WalletUser, error) {
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		if a := r.Header.Get("Authorization"); strings.HasPrefix(a, "Bitcoin-Auth ") {
			tok = strings.TrimPrefix(a, "Bitcoin-Auth ")
		}
	}
	if tok == "" {
		return WalletUser{}, errors.E(errors.MissingAuthToken, "X-Auth-Token header is required for Bitcoin authentication")
	}
	parts := strings.Split(tok, "|")
	if len(parts) != 3 || parts[0] != "fake" {
		return WalletUser{}, errors.E(errors.MalformedAuthToken, "Auth token format is invalid")
	}
	fw.mu.Lock()
	down := fw.down
	fw.mu.Unlock()
	if down {
		return WalletUser{}, errors.E(errors.TemporarilyUnavailable, "").WithCause("fakeWallet.Authenticate", errors.New("fake wallet down"))
	}
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	want := fw.mac(parts[1], r.RequestURI+"|"+bodyHash(body))
	if !hmac.Equal([]byte(want), []byte(parts[2])) {
		return WalletUser{}, errors.E(errors.InvalidSignature, "Bitcoin signature verification failed")
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return WalletUser{Address: parts[1], PubKey: fw.pubkeys[parts[1]]}, nil
}

func (fw *fakeWallet) VerifyLogin(r *http.Request, address, message, signature string) (WalletUser, error) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.down {
		return WalletUser{}, errors.E(errors.TemporarilyUnavailable, "").WithCause("fakeWallet.VerifyLogin", errors.New("fake wallet down"))
	}
	if fw.fails[address] >= 3 {
		return WalletUser{}, errors.E(errors.RateLimitExceeded, "Too many failed sign-ins; retry after the indicated delay").WithRetryAfter(30 * time.Second)
	}
	k := fw.keys[address]
	if k == nil {
		k = []byte("unknown")
	}
	m := hmac.New(sha256.New, k)
	m.Write([]byte("login|" + message))
	if !hmac.Equal([]byte(hex.EncodeToString(m.Sum(nil))), []byte(signature)) || fw.keys[address] == nil {
		fw.fails[address]++
		return WalletUser{}, errors.E(errors.InvalidSignature, "Bitcoin signature verification failed")
	}
	fw.fails[address] = 0
	return WalletUser{Address: address, PubKey: fw.pubkeys[address]}, nil
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

// harness is an authd authorization server on httptest, routed as the
// server binary routes it.
type harness struct {
	t      testing.TB
	s      *Server
	db     *store.DB
	rdb    redis.UniversalClient
	mr     *miniredis.Miniredis // when the harness uses miniredis
	ts     *httptest.Server
	wallet *fakeWallet
	clock  *clock
	issuer string
	c      *http.Client // never follows redirects; checks every response
}

type harnessOpt func(*Config)

// newHarness starts a server on db and real Redis (rdb nil: the test
// Redis server; use miniredisClient for fake time).
func newHarness(t testing.TB, db *store.DB, rdb redis.UniversalClient, opts ...harnessOpt) *harness {
	t.Helper()
	if rdb == nil {
		rdb = testenv.Redis(t)
	}
	h := &harness{t: t, db: db, rdb: rdb, wallet: newFakeWallet(), clock: &clock{}}
	h.ts = httptest.NewUnstartedServer(nil)
	h.issuer = "http://" + h.ts.Listener.Addr().String()
	cfg := Config{
		Issuer:  h.issuer,
		DB:      db.DB,
		Dialect: string(db.Dialect),
		Redis:   rdb,
		Wallet:  h.wallet,
		Now:     h.clock.Now,
		Logger:  quiet,
		// One key-encryption key for every server of the package's
		// tests: several servers share one database.
		KeyEncryption: testKeyEncryption,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.s = s
	h.ts.Config.Handler = routes(s, h.issuer)
	h.ts.Start()
	t.Cleanup(h.ts.Close)
	jar, _ := cookiejar.New(nil) // a browser's: the upstream sign-in binds its state to a cookie
	h.c = &http.Client{
		Jar:           jar,
		Transport:     &wireChecker{t: t, issuer: h.issuer, next: http.DefaultTransport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}
	return h
}

// miniredisClient returns a client on a fresh miniredis.
func miniredisClient(t testing.TB) (*miniredis.Miniredis, redis.UniversalClient) {
	mr := miniredis.RunT(t)
	c := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { c.Close() })
	return mr, c
}

// routes is the route table cmd/authd uses for this package, in the order
// its middleware runs (rate limiting, which the server adds, left out).
func routes(s *Server, issuer string) http.Handler {
	mux := http.NewServeMux()
	hf := func(f func(http.ResponseWriter, *http.Request) error) http.Handler { return httperr.HandlerFunc(f) }
	form := func(h http.Handler) http.Handler { return httperr.LimitBody(64<<10, errors.RequestTooLarge, h) }
	mux.Handle("GET /authorize", hf(s.Authorize))
	mux.Handle("POST /authorize", form(hf(s.Authorize)))
	mux.Handle("POST /authorize/login", form(hf(s.Login)))
	mux.Handle("POST /token", CORS(form(hf(s.Token))))
	mux.Handle("OPTIONS /token", Preflight("POST"))
	userinfo := CORS(s.Identify(hf(s.UserInfo)))
	mux.Handle("GET /userinfo", userinfo)
	mux.Handle("POST /userinfo", userinfo)
	mux.Handle("OPTIONS /userinfo", Preflight("GET", "POST"))
	mux.Handle("POST /revoke", CORS(form(hf(s.Revoke))))
	mux.Handle("OPTIONS /revoke", Preflight("POST"))
	mux.Handle("POST /introspect", form(hf(s.Introspect)))
	mux.Handle("GET /.well-known/oauth-authorization-server", CORS(hf(s.Metadata)))
	mux.Handle("GET /.well-known/openid-configuration", CORS(hf(s.OpenIDConfiguration)))
	mux.Handle("GET /.well-known/jwks.json", CORS(hf(s.JWKS)))
	mux.Handle("OPTIONS /.well-known/oauth-authorization-server", Preflight("GET"))
	mux.Handle("OPTIONS /.well-known/jwks.json", Preflight("GET"))
	mux.Handle("GET /callback/{provider}", hf(s.Callback))
	mux.Handle("GET /docs/errors", hf(httperr.Docs))
	return httperr.Middleware(httperr.Config{URIBase: issuer + "/docs/errors", Logger: quiet}, httperr.Routes(mux))
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
	tokenResponse
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
	verifier = randomToken(32)
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

func validErrorText(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

func validErrorURI(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// checkErrorTriple checks error, error_description and error_uri.
func checkErrorTriple(t testing.TB, issuer, where, code, desc, uri string) {
	t.Helper()
	if code == "" || !validErrorText(code) || !validErrorText(desc) || !validErrorURI(uri) {
		t.Errorf("%s: error fields outside the RFC 6749 charset: %q %q %q", where, code, desc, uri)
	}
	base, frag, ok := strings.Cut(uri, "#")
	// A failed upstream sign-in is access_denied documented at the
	// provider's entry (DESIGN §2.4).
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
			if !validErrorText(m[2]) {
				t.Errorf("%s: WWW-Authenticate parameter %s=%q outside the charset", where, m[1], m[2])
			}
		}
	}
	if loc := resp.Header.Get("Location"); loc != "" {
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
