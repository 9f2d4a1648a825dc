package server_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/ratelimit"
	"github.com/authd-dev/authd/store"
)

// testServer is a server built by New on the test Redis and a fresh
// SQLite database, on httptest.
type testServer struct {
	t      *testing.T
	srv    *server.Server
	db     *store.DB
	issuer string
	c      *http.Client
}

func newTestServer(t *testing.T, mod ...func(*server.Config)) *testServer {
	t.Helper()
	db := testenv.DB(t, store.SQLite)
	ts := httptest.NewUnstartedServer(nil)
	issuer := "http://" + ts.Listener.Addr().String()
	cfg := server.Config{Issuer: issuer, DB: db, Redis: testenv.Redis(t), KeyEncryption: keyEncryption(t), Logger: slog.New(slog.DiscardHandler)}
	for _, f := range mod {
		f(&cfg)
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	t.Cleanup(ts.Close)
	return &testServer{t: t, srv: srv, db: db, issuer: issuer, c: client()}
}

// keyEncryption is a key-encryption key for the signing keys of a test's
// database.
func keyEncryption(t *testing.T) *oauth.KeyEncryption {
	t.Helper()
	k := make([]byte, oauth.KEKSize)
	rand.Read(k)
	ke, err := oauth.NewKeyEncryption(k)
	if err != nil {
		t.Fatal(err)
	}
	return ke
}

// client is an HTTP client connecting from an address of its own in
// 127.0.0.0/8: the rate limits on the shared test Redis are per client IP
// and outlive a test. It follows no redirects.
func client() *http.Client {
	var b [3]byte
	rand.Read(b[:])
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, b[0], b[1], b[2]|1)}, Timeout: 5 * time.Second}).DialContext
	return &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (s *testServer) do(method, path string, hdr map[string]string, body string) (*http.Response, string) {
	s.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.issuer+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp, string(b)
}

// series returns the series of the authd_ metrics on /metrics, one
// "name{labels}" each.
func (s *testServer) series() []string {
	s.t.Helper()
	resp, body := s.do("GET", "/metrics", nil, "")
	if resp.StatusCode != 200 {
		s.t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "authd_") {
			out = append(out, l[:strings.LastIndexByte(l, ' ')]) // the value follows the last space
		}
	}
	return out
}

// invented returns a request method nobody uses: a token of n random
// characters.
func invented(n int) string {
	b := make([]byte, n/2+1)
	rand.Read(b)
	return "X" + strings.ToUpper(hex.EncodeToString(b))[:n]
}

var labelRe = regexp.MustCompile(`(\w+)="([^"]*)"`)

// TestMetricLabelsAreClosed: requests with invented methods and paths, on
// known routes and unknown ones, add no series to /metrics: every label
// value comes from a closed set.
func TestMetricLabelsAreClosed(t *testing.T) {
	s := newTestServer(t)
	paths := []string{"/token", "/authorize", "/backup", "/userinfo", "/docs/errors", "/nope"}
	send := func(n int) {
		for i := range n {
			p := paths[i%len(paths)]
			if i%2 == 1 {
				p = "/" + invented(12) + "/" + invented(6)
			}
			resp, _ := s.do(invented(8+i%200), p, nil, "")
			if resp.StatusCode != 404 && resp.StatusCode != 405 {
				t.Fatalf("%s: %d, want 404 or 405", p, resp.StatusCode)
			}
			// Standard methods on unknown paths, too.
			s.do([]string{"GET", "POST", "DELETE", "PATCH"}[i%4], "/"+invented(10), nil, "")
		}
	}
	send(12)   // every kind once: the series they belong to exist now
	s.series() // and the scrape's own
	before := s.series()
	send(300)
	after := s.series()
	if len(after) != len(before) {
		var added []string
		for _, x := range after {
			if !slices.Contains(before, x) {
				added = append(added, x)
			}
		}
		t.Fatalf("%d series before, %d after; added: %v", len(before), len(after), added)
	}
	// Every label value is one of the closed set it belongs to.
	methods := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "other"}
	for _, x := range after {
		for _, m := range labelRe.FindAllStringSubmatch(x, -1) {
			k, v := m[1], m[2]
			switch k {
			case "method":
				if !slices.Contains(methods, v) {
					t.Errorf("%s: method %q", x, v)
				}
			case "route":
				if v != "unmatched" && !strings.Contains(v, " /") {
					t.Errorf("%s: route %q is not a pattern", x, v)
				}
			case "code":
				if _, ok := errors.Lookup(errors.Code(v)); !ok {
					t.Errorf("%s: code %q is not in the catalog", x, v)
				}
			case "status":
				if len(v) != 3 && v != "other" {
					t.Errorf("%s: status %q", x, v)
				}
			}
		}
	}
	for _, want := range []string{`route="unmatched"`, `method="other"`, `code="method_not_allowed"`, `code="not_found"`} {
		if !strings.Contains(strings.Join(after, "\n"), want) {
			t.Errorf("no series with %s: the test sent nothing that lands there", want)
		}
	}
}

// TestRateLimitDecisionsOnMetrics: the rate limiter's decisions are
// counted on this server's /metrics, by policy and result.
func TestRateLimitDecisionsOnMetrics(t *testing.T) {
	s := newTestServer(t)
	const want = `authd_ratelimit_decisions_total{policy="token",result="allowed"}`
	if slices.Contains(s.series(), want) {
		t.Fatalf("%s before any request to /token", want)
	}
	if resp, _ := s.do("POST", "/token", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, "grant_type=x"); resp.StatusCode != 400 {
		t.Fatalf("POST /token: %d, want 400", resp.StatusCode)
	}
	if !slices.Contains(s.series(), want) {
		t.Errorf("no %s after a request to /token", want)
	}
}

// TestMetricsElsewhere: /metrics is on Handler only without
// MetricsElsewhere, and MetricsHandler serves it in any case.
func TestMetricsElsewhere(t *testing.T) {
	s := newTestServer(t, func(c *server.Config) { c.MetricsElsewhere = true })
	if resp, _ := s.do("GET", "/metrics", nil, ""); resp.StatusCode != 404 {
		t.Errorf("/metrics on the handler with MetricsElsewhere: %d", resp.StatusCode)
	}
	rec := httptest.NewRecorder()
	s.srv.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "go_goroutines") {
		t.Errorf("MetricsHandler: %d", rec.Code)
	}
}

// TestTokenCacheServed: /metrics reports the server's own verified-token
// cache: a Bearer token that has to be verified is one miss.
func TestTokenCacheServed(t *testing.T) {
	s := newTestServer(t)
	value := func(series string) string {
		t.Helper()
		_, body := s.do("GET", "/metrics", nil, "")
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, series+" "); ok {
				return v
			}
		}
		t.Fatalf("no %s on /metrics", series)
		return ""
	}
	const hit, miss = `authd_access_token_cache_lookups_total{result="hit"}`, `authd_access_token_cache_lookups_total{result="miss"}`
	if h, m := value(hit), value(miss); h != "0" || m != "0" {
		t.Fatalf("a new server: %s hits, %s misses", h, m)
	}
	resp, body := s.do("GET", "/userinfo", map[string]string{"Authorization": "Bearer eyJh.eyJz.c2ln"}, "")
	if resp.StatusCode != 401 {
		t.Fatalf("/userinfo with a forged token: %d %s", resp.StatusCode, body)
	}
	if h, m := value(hit), value(miss); h != "0" || m != "1" {
		t.Fatalf("after one forged token: %s hits, %s misses, want 0 and 1", h, m)
	}
}

// TestBrowserRoutesRenderEveryError: on a browser-facing route, the rate
// limiter's 429 reaches a person as a page, like the handler's own errors,
// and a client that asks for JSON gets JSON; other routes answer JSON.
func TestBrowserRoutesRenderEveryError(t *testing.T) {
	one, err := ratelimit.ParsePolicies("authorize=1/1m,login=1/1m,token=1/1m")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, func(c *server.Config) { c.RateLimits = one })
	browser := map[string]string{"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
	jsonAccept := map[string]string{"Accept": "application/json"}
	form := map[string]string{"Accept": browser["Accept"], "Content-Type": "application/x-www-form-urlencoded"}
	for _, tc := range []struct {
		method, path string
		hdr          map[string]string
		body         string
		page         bool
	}{
		{"GET", "/authorize?client_id=nope", browser, "", true},
		{"POST", "/authorize/login", form, "login_id=x", true},
		{"POST", "/token", form, "grant_type=client_credentials", false},
	} {
		s.do(tc.method, tc.path, tc.hdr, tc.body) // the one the policy allows
		resp, body := s.do(tc.method, tc.path, tc.hdr, tc.body)
		ct := resp.Header.Get("Content-Type")
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s %s: %d, want 429 with Retry-After", tc.method, tc.path, resp.StatusCode)
		}
		if tc.page != strings.HasPrefix(ct, "text/html") {
			t.Errorf("%s %s: 429 as %s, want a page: %v", tc.method, tc.path, ct, tc.page)
		}
		if tc.page && (!strings.Contains(body, "rate_limit_exceeded") || resp.Header.Get("X-Frame-Options") != "DENY") {
			t.Errorf("%s %s: the page does not show the error or may be framed:\n%s", tc.method, tc.path, body)
		}
		resp, body = s.do(tc.method, tc.path, map[string]string{"Accept": jsonAccept["Accept"], "Content-Type": tc.hdr["Content-Type"]}, tc.body)
		var e map[string]any
		if resp.StatusCode != 429 || json.Unmarshal([]byte(body), &e) != nil || e["error"] != "rate_limit_exceeded" {
			t.Errorf("%s %s asking for JSON: %d %s", tc.method, tc.path, resp.StatusCode, body)
		}
	}
}

// TestRouteTable: the routes the oauth tests once kept a copy of, and
// which that copy had lost, are served.
func TestRouteTable(t *testing.T) {
	s := newTestServer(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/docs/errors", 200},
		{"GET", "/docs/errors.json", 200},
		{"GET", "/healthz", 200},
		{"GET", "/readyz", 200},
		{"GET", "/.well-known/openid-configuration", 200},
		{"OPTIONS", "/.well-known/openid-configuration", 204},
		{"OPTIONS", "/.well-known/jwks.json", 204},
		{"OPTIONS", "/userinfo", 204},
		{"GET", "/backup", 401},
		{"GET", "/callback/google", 404}, // no provider configured
		{"POST", "/nope", 404},
		{"GET", "/token", 405},
	} {
		hdr := map[string]string{"Origin": "https://spa.example", "Access-Control-Request-Method": "GET"}
		if resp, body := s.do(tc.method, tc.path, hdr, ""); resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d: %s", tc.method, tc.path, resp.StatusCode, tc.status, body)
		}
	}
	s.srv.Drain()
	if resp, _ := s.do("GET", "/readyz", nil, ""); resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Errorf("/readyz while draining: %d", resp.StatusCode)
	}
}

// TestNewValidates: New refuses what it cannot run with.
func TestNewValidates(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	rdb := testenv.Redis(t)
	ke := keyEncryption(t)
	for _, tc := range []struct {
		name string
		cfg  server.Config
	}{
		{"no database", server.Config{Issuer: "https://auth.example.com", Redis: rdb, KeyEncryption: ke}},
		{"no Redis", server.Config{Issuer: "https://auth.example.com", DB: db, KeyEncryption: ke}},
		{"no key encryption", server.Config{Issuer: "https://auth.example.com", DB: db, Redis: rdb}},
		{"bad issuer", server.Config{Issuer: "auth.example.com", DB: db, Redis: rdb, KeyEncryption: ke}},
		{"bad policy", server.Config{Issuer: "https://auth.example.com", DB: db, Redis: rdb, KeyEncryption: ke,
			RateLimits: ratelimit.Policies{"token": {Name: "token", Limit: 0, Window: time.Minute}}}},
	} {
		if _, err := server.New(context.Background(), tc.cfg); err == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
}
