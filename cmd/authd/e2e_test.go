package main

// End-to-end tests: the whole server as main wires it (every route, the
// real sigauth, ratelimit, oauth, backup and provider packages) on real
// Redis and PostgreSQL, driven the way clients drive it.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/sigauth"
	"golang.org/x/oauth2"
)

// walletWIF is a key from the public test vectors in authtoken/testdata,
// for the tests that do not need a wallet of their own.
const walletWIF = "L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7"

// e2e is an authd built by newApp, served on httptest, with its issuer set
// to the server's own address.
type e2e struct {
	t testing.TB
	// wif and addr are this test's own wallet: limits per subject on the
	// shared Redis outlive a test.
	wif, addr string
	a         *app
	srv       *httptest.Server
	issuer    string
	c         *http.Client // does not follow redirects
}

// newE2E starts authd with env on real Redis and PostgreSQL (the embedded
// defaults when embedded is true).
func newE2E(t testing.TB, env map[string]string, embedded bool, tweak ...func(*config)) *e2e {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	full := map[string]string{"AUTHD_ISSUER": issuer, "AUTHD_LOG_LEVEL": "error"}
	if embedded {
		full["AUTHD_DATABASE_URL"] = testenv.SQLiteURL(t)
	} else {
		full["AUTHD_DATABASE_URL"] = testenv.PostgresURL(t)
		full["AUTHD_REDIS_URL"] = testenv.RedisURL(t)
		full[keyFileEnv] = writeKeyFile(t)
	}
	for k, v := range env {
		full[k] = v
	}
	cfg, err := parseConfig("serve", nil, envFunc(full), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range tweak {
		f(cfg)
	}
	a, err := newApp(context.Background(), cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	srv.Config.Handler = a.handler()
	srv.Start()
	t.Cleanup(srv.Close)
	wif, addr, err := authtoken.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil) // a browser's: the upstream sign-in binds its state to a cookie
	return &e2e{t: t, a: a, srv: srv, issuer: issuer, wif: wif, addr: addr, c: &http.Client{
		Jar:           jar,
		Transport:     sourceTransport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       30 * time.Second,
	}}
}

// sourceDialer connects from a random address in 127.0.0.0/8, so each test
// is a client of its own to the rate limiter, whose windows on the shared
// Redis outlive any one test.
func sourceDialer() *net.Dialer {
	var b [3]byte
	rand.Read(b[:])
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, b[0], b[1], b[2]|1)}, Timeout: 5 * time.Second}
}

// sourceTransport is an HTTP transport dialing with sourceDialer.
func sourceTransport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = sourceDialer().DialContext
	return tr
}

// ctx returns a context in which golang.org/x/oauth2 uses e's client.
func (e *e2e) ctx() context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, e.c)
}

// client registers an OAuth client with `authd client create` on the
// server's database and returns its id and secret.
func (e *e2e) client(args ...string) (id, secret string) {
	e.t.Helper()
	var out bytes.Buffer
	if err := runClient(context.Background(), e.a.db, append([]string{"create", "--name", "E2E App"}, args...), &out, io.Discard); err != nil {
		e.t.Fatal(err)
	}
	var c struct{ ClientID, ClientSecret string }
	var raw map[string]any
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil {
		e.t.Fatal(err)
	}
	c.ClientID, _ = raw["client_id"].(string)
	c.ClientSecret, _ = raw["client_secret"].(string)
	return c.ClientID, c.ClientSecret
}

func (e *e2e) do(method, target string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.issuer+target, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body == nil {
		req.Body = http.NoBody
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, b
}

// signed sends a request with an X-Auth-Token over its exact target and
// body, made by the wallet key.
func (e *e2e) signed(method, target string, body []byte, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	tok, err := sigauth.Token(e.wif, sigauth.TokenOptions{RequestPath: target, Body: body})
	if err != nil {
		e.t.Fatal(err)
	}
	h := map[string]string{"X-Auth-Token": tok}
	for k, v := range hdr {
		h[k] = v
	}
	return e.do(method, target, body, h)
}

// checkErrorURI fetches the catalog page and checks that uri is
// <issuer>/docs/errors#<anchor> with that anchor on the page.
func (e *e2e) checkErrorURI(uri, anchor string) {
	e.t.Helper()
	if uri != e.issuer+"/docs/errors#"+anchor {
		e.t.Errorf("error_uri %q, want %s/docs/errors#%s", uri, e.issuer, anchor)
	}
	resp, body := e.do("GET", "/docs/errors", nil, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `id="`+anchor+`"`) {
		e.t.Errorf("/docs/errors has no anchor %q", anchor)
	}
}

func pkcePair() (verifier, challenge string) {
	verifier = oauth2.GenerateVerifier()
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestWalletFlow: a wallet signs the authorize request (sign-in and
// consent at once), golang.org/x/oauth2 exchanges the code with PKCE, the
// token opens /userinfo and the backup API; a reused code fails with every
// error field populated in x/oauth2's RetrieveError.
func TestWalletFlow(t *testing.T) {
	for _, embedded := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis+postgres", true: "embedded"}[embedded], func(t *testing.T) {
			e := newE2E(t, nil, embedded)
			id, secret := e.client("--redirect-uri", "http://127.0.0.1/cb", "--scope", "profile backup")
			conf := &oauth2.Config{
				ClientID: id, ClientSecret: secret, RedirectURL: "http://127.0.0.1:7777/cb",
				Endpoint: oauth2.Endpoint{AuthURL: e.issuer + "/authorize", TokenURL: e.issuer + "/token"},
				Scopes:   []string{"profile", "backup"},
			}
			verifier := oauth2.GenerateVerifier()
			au, _ := url.Parse(conf.AuthCodeURL("the-state", oauth2.S256ChallengeOption(verifier)))
			resp, body := e.signed("GET", au.RequestURI(), nil, nil)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("signed authorize: %d %s", resp.StatusCode, body)
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if loc.Port() != "7777" || loc.Query().Get("state") != "the-state" || loc.Query().Get("iss") != e.issuer {
				t.Fatalf("redirect %s", loc)
			}
			if resp.Header.Get("X-RateLimit-Remaining") != "19" {
				t.Errorf("authorize X-RateLimit-Remaining = %q, want 19", resp.Header.Get("X-RateLimit-Remaining"))
			}
			code := loc.Query().Get("code")
			ctx := e.ctx()
			tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if tok.RefreshToken == "" || tok.Expiry.Before(time.Now().Add(14*time.Minute)) {
				t.Errorf("token %+v", tok)
			}

			resp, body = e.do("GET", "/userinfo", nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
			var ui map[string]string
			json.Unmarshal(body, &ui)
			if resp.StatusCode != 200 || ui["sub"] != e.addr || ui["address"] != e.addr {
				t.Fatalf("userinfo %d %s", resp.StatusCode, body)
			}

			// The same access token opens the backup API (scope backup).
			backupBody := []byte(base64.StdEncoding.EncodeToString(randomBytes(t, 200)))
			resp, body = e.do("PUT", "/backup", backupBody, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT /backup by Bearer: %d %s", resp.StatusCode, body)
			}
			// ... and the wallet itself sees the same backup.
			resp, body = e.signed("GET", "/backup", nil, nil)
			if resp.StatusCode != 200 || !bytes.Equal(body, backupBody) {
				t.Fatalf("GET /backup signed: %d", resp.StatusCode)
			}

			// The code again: invalid_grant, with x/oauth2 seeing every field.
			_, err = conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
			var re *oauth2.RetrieveError
			if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" || re.ErrorDescription == "" || re.Response.StatusCode != 400 {
				t.Fatalf("reused code: %v", err)
			}
			e.checkErrorURI(re.ErrorURI, "invalid_grant")
			// Reuse revoked the family: the access token is dead.
			resp, _ = e.do("GET", "/userinfo", nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("access token after code reuse: %d", resp.StatusCode)
			}
		})
	}
}

func asRetrieveError(err error, re **oauth2.RetrieveError) bool {
	e, ok := err.(*oauth2.RetrieveError)
	if ok {
		*re = e
	}
	return ok
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(sha256.Sum256([]byte(fmt.Sprint(t.Name(), i)))[0])
	}
	return b
}

var (
	loginIDRE  = regexp.MustCompile(`name="login_id" value="([^"]+)"`)
	messageRE  = regexp.MustCompile(`(?s)<pre[^>]*id="message"[^>]*>(.*?)</pre>`)
	messageRE2 = regexp.MustCompile(`(?s)<textarea[^>]*>(.*?)</textarea>`)
)

// TestLoginPageFlow: a person without wallet software integration opens the
// authorize URL, signs the shown message with their wallet, pastes address
// and signature, and is sent back with a code.
func TestLoginPageFlow(t *testing.T) {
	e := newE2E(t, nil, false)
	id, _ := e.client("--redirect-uri", "https://app.example.com/cb", "--public")
	_, challenge := pkcePair()
	q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"https://app.example.com/cb"},
		"state": {"s1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	resp, body := e.do("GET", "/authorize?"+q.Encode(), nil, map[string]string{"Accept": "text/html"})
	if resp.StatusCode != 200 || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("login page: %d %v", resp.StatusCode, resp.Header)
	}
	m := loginIDRE.FindSubmatch(body)
	mm := messageRE.FindSubmatch(body)
	if mm == nil {
		mm = messageRE2.FindSubmatch(body)
	}
	if m == nil || mm == nil {
		t.Fatalf("no login form or message in the page:\n%s", body)
	}
	msg := html.UnescapeString(string(mm[1]))
	if !strings.Contains(msg, "Application: E2E App") || !strings.Contains(msg, "Client ID: "+id) {
		t.Fatalf("message %q", msg)
	}
	// A wrong signature shows the error on the page, keeping the request.
	wrong, err := sigauth.SignMessage(e.wif, msg+"x")
	if err != nil {
		t.Fatal(err)
	}
	form := url.Values{"login_id": {string(m[1])}, "address": {e.addr}, "signature": {wrong}}
	resp, body = e.do("POST", "/authorize/login", []byte(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"})
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "Bitcoin signature verification failed") || !strings.Contains(string(body), string(m[1])) {
		t.Fatalf("wrong signature: %d", resp.StatusCode)
	}
	sig, err := sigauth.SignMessage(e.wif, msg)
	if err != nil {
		t.Fatal(err)
	}
	form.Set("signature", sig)
	resp, body = e.do("POST", "/authorize/login", []byte(form.Encode()), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Host != "app.example.com" || loc.Query().Get("code") == "" || loc.Query().Get("state") != "s1" {
		t.Fatalf("redirect %s", loc)
	}
}

// TestSignedFailuresAreNotRedirected: a bad X-Auth-Token at /authorize is
// answered directly, never sent to the client: a signature failure is
// not an authorization error of RFC 6749 §4.1.2.1.
func TestSignedFailuresAreNotRedirected(t *testing.T) {
	e := newE2E(t, nil, false)
	id, _ := e.client("--redirect-uri", "https://app.example.com/cb")
	target := "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"https://app.example.com/cb"}, "state": {"s"}}.Encode()
	tok, err := sigauth.Token(e.wif, sigauth.TokenOptions{RequestPath: target + "&x=1"})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := e.do("GET", target, nil, map[string]string{"X-Auth-Token": tok, "Accept": "application/json"})
	var eb errorBody
	json.Unmarshal(body, &eb)
	if resp.StatusCode != http.StatusUnauthorized || eb.Error != "invalid_signature" || resp.Header.Get("Location") != "" {
		t.Fatalf("signature over another URI: %d %s", resp.StatusCode, body)
	}
	e.checkErrorURI(eb.URI, "invalid_signature")
}

// TestSignedAuthorizeIsSingleUse: a signed authorization request is the
// user's sign-in and consent; replaying it, as GET or as POST, issues no
// second code.
func TestSignedAuthorizeIsSingleUse(t *testing.T) {
	e := newE2E(t, nil, false)
	id, _ := e.client("--redirect-uri", "https://app.example.com/cb")
	target := "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"https://app.example.com/cb"}, "state": {"s"}}.Encode()
	tok, err := sigauth.Token(e.wif, sigauth.TokenOptions{RequestPath: target})
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{"X-Auth-Token": tok, "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
	if resp, body := e.do("GET", target, nil, hdr); resp.StatusCode != http.StatusFound {
		t.Fatalf("first use: %d %s", resp.StatusCode, body)
	}
	for _, m := range []string{"GET", "POST"} {
		resp, body := e.do(m, target, nil, hdr)
		var eb errorBody
		json.Unmarshal(body, &eb)
		if resp.StatusCode != http.StatusUnauthorized || eb.Error != "invalid_timestamp" || resp.Header.Get("Location") != "" {
			t.Fatalf("replayed as %s: %d %s", m, resp.StatusCode, body)
		}
	}
}

// TestCodeTTLConfigurable: AUTHD_CODE_TTL reaches the codes.
func TestCodeTTLConfigurable(t *testing.T) {
	e := newE2E(t, map[string]string{"AUTHD_CODE_TTL": "1s"}, false)
	id, secret := e.client("--redirect-uri", "https://app.example.com/cb")
	target := "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"https://app.example.com/cb"}}.Encode()
	resp, body := e.signed("GET", target, nil, nil)
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	time.Sleep(1500 * time.Millisecond)
	conf := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: "https://app.example.com/cb",
		Endpoint: oauth2.Endpoint{TokenURL: e.issuer + "/token"}}
	_, err := conf.Exchange(e.ctx(), loc.Query().Get("code"))
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("code older than AUTHD_CODE_TTL: %v", err)
	}
}

// TestPreflightRoutes: the wired server answers CORS preflights with the
// methods each route serves, and unknown /.well-known/ paths are 404.
func TestPreflightRoutes(t *testing.T) {
	e := newE2E(t, nil, false)
	for path, methods := range map[string]string{
		"/token": "POST", "/revoke": "POST", "/userinfo": "GET, POST",
		"/.well-known/oauth-authorization-server": "GET",
		"/.well-known/openid-configuration":       "GET",
		"/.well-known/jwks.json":                  "GET",
	} {
		resp, _ := e.do("OPTIONS", path, nil, map[string]string{"Origin": "https://spa.example", "Access-Control-Request-Method": "POST"})
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Methods") != methods || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("OPTIONS %s: %d %v", path, resp.StatusCode, resp.Header)
		}
	}
	for _, path := range []string{"/.well-known/x", "/.well-known/"} {
		for _, m := range []string{"GET", "OPTIONS"} {
			if resp, body := e.do(m, path, nil, nil); resp.StatusCode != 404 || !strings.Contains(string(body), "not_found") {
				t.Errorf("%s %s: %d %s", m, path, resp.StatusCode, body)
			}
		}
	}
	if resp, body := e.do("OPTIONS", "/authorize", nil, map[string]string{"Origin": "https://spa.example"}); resp.StatusCode != http.StatusMethodNotAllowed ||
		resp.Header.Get("Access-Control-Allow-Origin") != "" || !strings.Contains(string(body), "method_not_allowed") {
		t.Errorf("OPTIONS /authorize: %d %s, Access-Control-Allow-Origin %q; want 405 and no CORS", resp.StatusCode, body, resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// TestRateLimitEndToEnd: the eleventh token request in a minute from one
// address is refused with the headers and retry_after.
func TestRateLimitEndToEnd(t *testing.T) {
	e := newE2E(t, nil, false)
	id, secret := e.client("--redirect-uri", "https://app.example.com/cb", "--grant", "client_credentials")
	form := []byte(url.Values{"grant_type": {"client_credentials"}}.Encode())
	hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))}
	for i := 1; i <= 10; i++ {
		resp, body := e.do("POST", "/token", form, hdr)
		if resp.StatusCode != 200 || resp.Header.Get("X-RateLimit-Remaining") != fmt.Sprint(10-i) {
			t.Fatalf("request %d: %d remaining %q %s", i, resp.StatusCode, resp.Header.Get("X-RateLimit-Remaining"), body)
		}
	}
	resp, body := e.do("POST", "/token", form, hdr)
	var eb errorBody
	json.Unmarshal(body, &eb)
	if resp.StatusCode != 429 || eb.Error != "rate_limit_exceeded" || eb.RetryAfter < 1 ||
		resp.Header.Get("Retry-After") != fmt.Sprint(eb.RetryAfter) || resp.Header.Get("RateLimit-Policy") != `"token";q=10;w=60` {
		t.Fatalf("11th request: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	e.checkErrorURI(eb.URI, "rate_limit_exceeded")
}

// TestRateLimitsConfigurable: AUTHD_RATE_LIMITS reaches the routes.
func TestRateLimitsConfigurable(t *testing.T) {
	e := newE2E(t, map[string]string{"AUTHD_RATE_LIMITS": "authorize=2/1m"}, false)
	for i, want := range []int{400, 400, 429} {
		resp, _ := e.do("GET", "/authorize", nil, map[string]string{"Accept": "application/json"})
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d, want %d", i+1, resp.StatusCode, want)
		}
	}
}

// TestBackupEndToEnd: the wallet stores, reads and deletes its backup with
// X-Auth-Token; no credentials gets both challenges; a GET token cannot
// delete.
func TestBackupEndToEnd(t *testing.T) {
	e := newE2E(t, nil, false)
	resp, body := e.do("GET", "/backup", nil, nil)
	if resp.StatusCode != 401 || !strings.Contains(string(body), "missing_auth_token") {
		t.Fatalf("no credentials: %d %s", resp.StatusCode, body)
	}
	if ch := resp.Header.Values("WWW-Authenticate"); len(ch) < 1 || ch[0] != `Bitcoin-Auth realm="authd"` {
		t.Fatalf("challenges %q", ch)
	}
	data := []byte(base64.StdEncoding.EncodeToString(randomBytes(t, 300)))
	resp, body = e.signed("PUT", "/backup", data, nil)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("ETag") == "" || resp.Header.Get("X-RateLimit-Limit") != "10" {
		t.Fatalf("PUT: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	getTok, err := sigauth.Token(e.wif, sigauth.TokenOptions{RequestPath: "/backup"})
	if err != nil {
		t.Fatal(err)
	}
	resp, body = e.do("GET", "/backup", nil, map[string]string{"X-Auth-Token": getTok})
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-RateLimit-Limit") != "20" {
		t.Fatalf("GET: %d %v", resp.StatusCode, resp.Header)
	}
	// The GET token replayed as a DELETE.
	resp, body = e.do("DELETE", "/backup", nil, map[string]string{"X-Auth-Token": getTok})
	if resp.StatusCode != 401 || !strings.Contains(string(body), "invalid_timestamp") {
		t.Fatalf("GET token as DELETE: %d %s", resp.StatusCode, body)
	}
	resp, _ = e.signed("DELETE", "/backup", nil, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	// Oversize, declared: refused before reading, with the backup code. The
	// request goes over a raw connection: net/http's client will not send
	// a Content-Length its body does not have.
	conn, err := sourceDialer().Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /backup HTTP/1.1\r\nHost: authd\r\nX-Auth-Token: %s\r\nContent-Length: %d\r\n\r\nxxxx", getTok, 50<<20)
	r, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("50 MiB declared: %v", err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 413 || !strings.Contains(string(b), "backup_too_large") {
		t.Fatalf("50 MiB declared: %d %s", r.StatusCode, b)
	}
	// Refused without reading, but still counted: the rate limiter runs
	// before the body limit.
	if r.Header.Get("X-RateLimit-Limit") == "" || r.Header.Get("RateLimit") == "" {
		t.Fatalf("50 MiB declared: no rate-limit headers: %v", r.Header)
	}
}

// fakeProvider is an upstream identity provider speaking Google's or
// GitHub's side of the code flow with PKCE: it issues codes bound to a
// challenge, checks the verifier and client credentials at its token
// endpoint and serves a profile for the token it issued. GitHub answers
// token requests form-encoded, with errors in a 200; Google in JSON with a
// 4xx. Knobs make it fail the ways the tests need.
type fakeProvider struct {
	kind       string // "google" or "github"
	mu         sync.Mutex
	challenges map[string]string
	srv        *httptest.Server
	knobs      providerKnobs // guarded by mu
}

// providerKnobs are the failures a fakeProvider can be told to produce.
type providerKnobs struct {
	tokenStatus   int // a non-2xx token response
	tokenError    string
	profileStatus int
	profileBody   string
	delay         time.Duration
}

func (f *fakeProvider) set(k providerKnobs) { f.mu.Lock(); f.knobs = k; f.mu.Unlock() }

func (f *fakeProvider) get() providerKnobs {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.knobs
}

const (
	fakeClientID     = "upstream-client"
	fakeClientSecret = "upstream-secret"
)

func newFakeProvider(t *testing.T, kind string) *fakeProvider {
	f := &fakeProvider{kind: kind, challenges: map[string]string{}}
	accessToken := map[string]string{"google": "ya29.e2e", "github": "gho_e2e"}[kind]
	mux := http.NewServeMux()
	token := func(w http.ResponseWriter, r *http.Request) {
		k := f.get()
		time.Sleep(k.delay)
		r.ParseForm()
		errCode := k.tokenError
		if errCode == "" {
			f.mu.Lock()
			ch, ok := f.challenges[r.Form.Get("code")]
			delete(f.challenges, r.Form.Get("code"))
			f.mu.Unlock()
			sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
			switch {
			case r.Form.Get("client_id") != fakeClientID || r.Form.Get("client_secret") != fakeClientSecret:
				errCode = "invalid_client"
			case !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != ch:
				errCode = map[string]string{"google": "invalid_grant", "github": "bad_verification_code"}[kind]
			}
		}
		if kind == "github" && k.tokenStatus == 0 {
			w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
			if errCode != "" {
				fmt.Fprintf(w, "error=%s&error_description=The+code+passed+is+incorrect+or+expired.", errCode)
				return
			}
			fmt.Fprintf(w, "access_token=%s&scope=read%%3Auser&token_type=bearer", accessToken)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if k.tokenStatus != 0 {
			w.WriteHeader(k.tokenStatus)
			fmt.Fprint(w, `{"error":"invalid_grant"}`)
			return
		}
		if errCode != "" {
			w.WriteHeader(400)
			fmt.Fprintf(w, `{"error":%q}`, errCode)
			return
		}
		fmt.Fprintf(w, `{"access_token":%q,"token_type":"Bearer","expires_in":3599}`, accessToken)
	}
	profile := func(w http.ResponseWriter, r *http.Request) {
		k := f.get()
		time.Sleep(k.delay)
		if r.Header.Get("Authorization") != "Bearer "+accessToken {
			w.WriteHeader(401)
			return
		}
		if k.profileStatus != 0 {
			w.WriteHeader(k.profileStatus)
		}
		switch {
		case k.profileBody != "":
			fmt.Fprint(w, k.profileBody)
		case kind == "github":
			fmt.Fprint(w, `{"login":"octocat","id":583231,"email":null}`)
		default:
			fmt.Fprint(w, `{"sub":"10769150350006150715113082367","email":"jane@example.com"}`)
		}
	}
	mux.HandleFunc("POST /token", token)                    // Google
	mux.HandleFunc("GET /userinfo", profile)                // Google
	mux.HandleFunc("POST /login/oauth/access_token", token) // GitHub
	mux.HandleFunc("GET /api/user", profile)                // GitHub (Enterprise Server layout)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// env is the configuration pointing authd at the fake.
func (f *fakeProvider) env() map[string]string {
	if f.kind == "github" {
		return map[string]string{
			"AUTHD_GITHUB_CLIENT_ID": fakeClientID, "AUTHD_GITHUB_CLIENT_SECRET": fakeClientSecret,
			"AUTHD_GITHUB_BASE_URL": f.srv.URL, "AUTHD_GITHUB_API_URL": f.srv.URL + "/api",
		}
	}
	return map[string]string{
		"AUTHD_GOOGLE_CLIENT_ID": fakeClientID, "AUTHD_GOOGLE_CLIENT_SECRET": fakeClientSecret,
		"AUTHD_GOOGLE_AUTH_URL": f.srv.URL + "/auth", "AUTHD_GOOGLE_TOKEN_URL": f.srv.URL + "/token",
		"AUTHD_GOOGLE_USERINFO_URL": f.srv.URL + "/userinfo",
	}
}

// consent plays the user approving at the provider: it checks the
// authorization URL, records the challenge and returns the callback query
// the provider would redirect with.
func (f *fakeProvider) consent(t *testing.T, authURL string) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	wantPath := map[string]string{"google": "/auth", "github": "/login/oauth/authorize"}[f.kind]
	if err != nil || !strings.HasPrefix(authURL, f.srv.URL+wantPath+"?") {
		t.Fatalf("authorization URL %q", authURL)
	}
	q := u.Query()
	if q.Get("client_id") != fakeClientID || q.Get("code_challenge_method") != "S256" || q.Get("state") == "" ||
		!strings.HasSuffix(q.Get("redirect_uri"), "/callback/"+f.kind) {
		t.Fatalf("authorization URL %q", authURL)
	}
	code := fmt.Sprint("c", time.Now().UnixNano())
	f.mu.Lock()
	f.challenges[code] = q.Get("code_challenge")
	f.mu.Unlock()
	return url.Values{"code": {code}, "state": {q.Get("state")}}
}

// TestProviderSignIn covers Google and GitHub sign-in end to end with the
// real provider package against fake providers: success, the user
// denying, bad and replayed state, token endpoint failures, profile 5xx, a
// slow provider and an oversized profile, each checked on the wire
// (redirect parameters or JSON body, provider_error, the error_uri anchor
// on /docs/errors).
func TestProviderSignIn(t *testing.T) {
	for _, tc := range []struct {
		kind, name, subject, other string
	}{
		{"google", "Google", "google:10769150350006150715113082367", "github"},
		{"github", "GitHub", "github:583231", "google"},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			testProviderSignIn(t, tc.kind, tc.name, tc.subject, tc.other)
		})
	}
}

func testProviderSignIn(t *testing.T, kind, name, subject, other string) {
	f := newFakeProvider(t, kind)
	e := newE2E(t, f.env(), false, func(c *config) { c.providerTimeout = 500 * time.Millisecond })
	code := kind + "_auth_failed"
	id, secret := e.client("--redirect-uri", "https://app.example.com/cb")
	verifier, challenge := pkcePair()
	params := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"https://app.example.com/cb"},
		"state": {"app-state"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}, "provider": {kind}}
	start := func() url.Values {
		t.Helper()
		resp, body := e.do("GET", "/authorize?"+params.Encode(), nil, nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize provider=%s: %d %s", kind, resp.StatusCode, body)
		}
		return f.consent(t, resp.Header.Get("Location"))
	}
	callback := func(q url.Values) (*http.Response, []byte) {
		return e.do("GET", "/callback/"+kind+"?"+q.Encode(), nil, map[string]string{"Accept": "application/json"})
	}
	wantDenied := func(resp *http.Response, body []byte) {
		t.Helper()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		q := loc.Query()
		if resp.StatusCode != http.StatusFound || loc.Host != "app.example.com" || q.Get("error") != "access_denied" ||
			q.Get("error_description") != name+" authentication was unsuccessful" || q.Get("state") != "app-state" ||
			q.Get("iss") != e.issuer || q.Has("code") {
			t.Fatalf("%d %s %s", resp.StatusCode, loc, body)
		}
		e.checkErrorURI(q.Get("error_uri"), code)
	}
	wantProviderError := func(resp *http.Response, body []byte, pe string) {
		t.Helper()
		var b map[string]any
		json.Unmarshal(body, &b)
		if resp.StatusCode != 401 || b["error"] != code || b["provider_error"] != pe {
			t.Fatalf("%d %s; want %s provider_error %s", resp.StatusCode, body, code, pe)
		}
		e.checkErrorURI(b["error_uri"].(string), code)
	}

	t.Run("success", func(t *testing.T) {
		q := start()
		resp, body := callback(q)
		// The client sent the person straight to the provider, so authd
		// never showed what it asks for: the consent page comes first,
		// in the session the sign-in started.
		m := regexp.MustCompile(`name="consent_id" value="([^"]+)"`).FindSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil || !strings.Contains(string(body), "wants to:") {
			t.Fatalf("callback: %d %s, want the consent page", resp.StatusCode, body)
		}
		resp, body = e.do("POST", "/authorize/consent", []byte(url.Values{"consent_id": {string(m[1])}, "decision": {"allow"}}.Encode()),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Origin": e.issuer})
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc.Query().Get("code") == "" || loc.Query().Get("state") != "app-state" {
			t.Fatalf("consent: %d %s %s", resp.StatusCode, loc, body)
		}
		conf := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: "https://app.example.com/cb",
			Endpoint: oauth2.Endpoint{TokenURL: e.issuer + "/token"}}
		tok, err := conf.Exchange(e.ctx(), loc.Query().Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		resp, body = e.do("GET", "/userinfo", nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"sub":"`+subject+`"`) {
			t.Fatalf("userinfo %d %s", resp.StatusCode, body)
		}
		// Replayed callback: the state was used up.
		resp, body = callback(q)
		wantProviderError(resp, body, "invalid_state")
	})
	t.Run("user denies", func(t *testing.T) {
		q := start()
		resp, body := callback(url.Values{"error": {"access_denied"}, "state": {q.Get("state")}})
		wantDenied(resp, body)
	})
	t.Run("bad state", func(t *testing.T) {
		resp, body := callback(url.Values{"code": {"x"}, "state": {"made-up"}})
		wantProviderError(resp, body, "invalid_state")
		resp, body = callback(url.Values{"error": {"access_denied"}, "state": {"made-up"}})
		wantProviderError(resp, body, "access_denied")
	})
	for _, tc := range []struct {
		name  string
		knobs providerKnobs
	}{
		{"token endpoint refuses the code", providerKnobs{tokenError: "invalid_grant"}},
		{"token endpoint 400", providerKnobs{tokenStatus: 400}},
		{"token endpoint 502", providerKnobs{tokenStatus: 502}},
		{"profile 500", providerKnobs{profileStatus: 500}},
		{"slow provider", providerKnobs{delay: 2 * time.Second}},
		{"oversized profile", providerKnobs{profileBody: `{"sub":"1","id":1,"x":"` + strings.Repeat("a", 2<<20) + `"}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := start()
			f.set(tc.knobs)
			defer f.set(providerKnobs{})
			t0 := time.Now()
			resp, body := callback(q)
			wantDenied(resp, body)
			if time.Since(t0) > 5*time.Second {
				t.Errorf("callback took %v", time.Since(t0))
			}
		})
	}
	t.Run("unconfigured provider", func(t *testing.T) {
		p := url.Values{}
		for k, v := range params {
			p[k] = v
		}
		p.Set("provider", other)
		resp, _ := e.do("GET", "/authorize?"+p.Encode(), nil, nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" ||
			loc.Query().Get("error_description") != "Provider '"+other+"' is not configured" {
			t.Fatalf("%d %s", resp.StatusCode, loc)
		}
	})
}

// TestBinaryCodeFlow runs the real authd binary on real Redis and
// PostgreSQL and drives it with golang.org/x/oauth2, as a client
// developer would.
func TestBinaryCodeFlow(t *testing.T) {
	bin := binary(t)
	dbURL := testenv.PostgresURL(t)
	redisURL := testenv.RedisURL(t)
	addr := freeAddr(t)
	env := append(os.Environ(), "AUTHD_ADDR="+addr, "AUTHD_DATABASE_URL="+dbURL, "AUTHD_REDIS_URL="+redisURL, keyFileEnv+"="+writeKeyFile(t))

	out, err := runBinary(bin, env, "client", "create", "--name", "Binary", "--redirect-uri", "http://127.0.0.1/callback", "--public")
	if err != nil {
		t.Fatalf("client create: %v\n%s", err, out)
	}
	var reg map[string]any
	if err := json.Unmarshal(out, &reg); err != nil {
		t.Fatalf("client create printed %s", out)
	}
	clientID := reg["client_id"].(string)

	cmd := exec.Command(bin)
	cmd.Env = env
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	issuer := "http://" + addr
	waitListening(t, issuer+"/healthz", &logs)

	conf := &oauth2.Config{ClientID: clientID, RedirectURL: "http://127.0.0.1:4321/callback",
		Endpoint: oauth2.Endpoint{AuthURL: issuer + "/authorize", TokenURL: issuer + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	au, _ := url.Parse(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	target := au.RequestURI()
	// The token is made by the binary itself, as a user would with curl.
	tok, err := runBinary(bin, append(env, "AUTHD_WIF="+walletWIF), "token", "sign", "--url", issuer+target)
	if err != nil {
		t.Fatalf("token sign: %v %s", err, tok)
	}
	req, _ := http.NewRequest("GET", issuer+target, nil)
	req.Header.Set("X-Auth-Token", strings.TrimSpace(string(tok)))
	nc := &http.Client{Transport: sourceTransport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := nc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %s\n%s", resp.StatusCode, loc, logs.String())
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, nc)
	token, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	// Refresh through x/oauth2's TokenSource.
	token.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, token).Token()
	if err != nil || fresh.AccessToken == token.AccessToken || fresh.RefreshToken == token.RefreshToken {
		t.Fatalf("refresh: %v", err)
	}
	// The rotated refresh token again: invalid_grant with all fields.
	_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: token.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
	var re *oauth2.RetrieveError
	if !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" || re.ErrorDescription == "" || !strings.HasPrefix(re.ErrorURI, issuer+"/docs/errors#invalid_grant") {
		t.Fatalf("rotated refresh token: %v", err)
	}
}

func runBinary(bin string, env []string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Dir = os.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return append(out, stderr.Bytes()...), err
	}
	return out, nil
}
