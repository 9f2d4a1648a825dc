package ratelimit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/authd-dev/authd/internal/golden"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/testenv"
)

// serve wraps a limited route the way the server does: httperr.Middleware
// around everything, the limiter around the route's handler.
func serve(l *Limiter, p Policy, subject SubjectFunc, h http.Handler) http.Handler {
	if h == nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	}
	mux := http.NewServeMux()
	mux.Handle("/limited", l.Middleware(p, subject)(h))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return httperr.Middleware(httperr.Config{URIBase: "https://auth.example/docs/errors", Logger: quiet}, mux)
}

type errorBody struct {
	Error      string `json:"error"`
	RetryAfter int64  `json:"retry_after"`
	RequestID  string `json:"request_id"`
}

func do(h http.Handler, mutate func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/limited", nil)
	if mutate != nil {
		mutate(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestBurstExactHeaders sends N+k requests at one Redis instant (miniredis
// with a fixed clock) and checks every header value exactly.
func TestBurstExactHeaders(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	p := Policy{Name: Token, Limit: 5, Window: time.Minute}
	h := serve(l, p, nil, nil)
	reset := strconv.FormatInt(t0.Add(time.Minute).Unix()+1, 10) // t0 has a fraction: rounded up
	for i := 0; i < 8; i++ {
		w := do(h, nil)
		remaining := max(0, 4-i)
		want := http.StatusOK
		if i >= 5 {
			want = http.StatusTooManyRequests
		}
		if w.Code != want {
			t.Fatalf("request %d: status %d, want %d", i, w.Code, want)
		}
		for k, v := range map[string]string{
			"X-RateLimit-Limit":     "5",
			"X-RateLimit-Remaining": strconv.Itoa(remaining),
			"X-RateLimit-Reset":     reset,
			"RateLimit-Policy":      `"token";q=5;w=60`,
			"RateLimit":             `"token";r=` + strconv.Itoa(remaining) + ";t=60",
		} {
			if got := w.Header().Values(k); len(got) != 1 || got[0] != v {
				t.Errorf("request %d: %s = %q, want %q", i, k, got, v)
			}
		}
		if want == http.StatusTooManyRequests {
			var b errorBody
			if err := json.Unmarshal(w.Body.Bytes(), &b); err != nil {
				t.Fatal(err)
			}
			if b.Error != "rate_limit_exceeded" || b.RetryAfter != 60 || w.Header().Get("Retry-After") != "60" {
				t.Errorf("request %d: body %s, Retry-After %q; want rate_limit_exceeded, 60 and 60", i, w.Body, w.Header().Get("Retry-After"))
			}
		} else if w.Header().Get("Retry-After") != "" {
			t.Errorf("request %d: Retry-After on an admitted request", i)
		}
	}
}

// TestRefusalGolden pins the whole 429 response: status, headers and body.
func TestRefusalGolden(t *testing.T) {
	l, m, _ := newMini(t, Options{})
	p := Policy{Name: Login, Limit: 1, Window: time.Minute}
	h := serve(l, p, nil, nil)
	do(h, nil)
	m.SetTime(t0.Add(12*time.Second + 250*time.Millisecond))
	w := do(h, func(r *http.Request) { r.Header.Set("X-Request-Id", "golden-1") })
	var b bytes.Buffer
	fmt.Fprintf(&b, "%d\n", w.Code)
	keys := make([]string, 0, len(w.Header()))
	for k := range w.Header() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, strings.Join(w.Header()[k], ", "))
	}
	b.WriteString("\n")
	b.Write(w.Body.Bytes())
	golden.Check(t, filepath.Join("testdata", "refusal.golden"), b.Bytes())
}

// TestBurstRealRedis fires N+k concurrent requests through a real HTTP
// server on the real Redis: exactly N pass, every other one is a complete
// 429, and every response carries the headers. A lost race shows only now
// and then: several trials, each on a policy of its own.
func TestBurstRealRedis(t *testing.T) {
	rdb := realRedis(t)
	l := newLimiter(t, rdb, Options{Timeout: 5 * time.Second})
	trials := 8
	if testing.Short() {
		trials = 2
	}
	for trial := range trials {
		// A policy name unique to this run keeps parallel test runs
		// apart: the subject (127.0.0.1) is the same for all of them.
		p := Policy{Name: testenv.Name("burst"), Limit: 20, Window: time.Hour}
		burst(t, l, p, 50)
		if t.Failed() {
			t.Fatalf("trial %d failed", trial)
		}
	}
}

// burst sends total requests at once through p and checks that exactly
// p.Limit pass.
func burst(t *testing.T, l *Limiter, p Policy, total int) {
	t.Helper()
	srv := httptest.NewServer(serve(l, p, nil, nil))
	defer srv.Close()
	var wg sync.WaitGroup
	statuses := make([]int, total)
	resps := make([]http.Header, total)
	bodies := make([][]byte, total)
	start := make(chan struct{})
	for i := 0; i < total; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := srv.Client().Get(srv.URL + "/limited")
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Error(err)
				return
			}
			bodies[i], statuses[i], resps[i] = b, resp.StatusCode, resp.Header
		}()
	}
	close(start)
	wg.Wait()
	ok, limited := 0, 0
	seen := map[string]bool{}
	for i, st := range statuses {
		h := resps[i]
		if h == nil {
			t.Errorf("response %d: none", i)
			continue
		}
		for _, k := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"} {
			if h.Get(k) == "" {
				t.Errorf("response %d (%d) lacks %s", i, st, k)
			}
		}
		switch st {
		case http.StatusOK:
			ok++
			seen[h.Get("X-RateLimit-Remaining")] = true
		case http.StatusTooManyRequests:
			limited++
			var b errorBody
			if err := json.Unmarshal(bodies[i], &b); err != nil {
				t.Fatal(err)
			}
			ra := h.Get("Retry-After")
			if b.Error != "rate_limit_exceeded" || b.RetryAfter < 1 || strconv.FormatInt(b.RetryAfter, 10) != ra ||
				h.Get("RateLimit") != `"`+p.Name+`";r=0;t=`+ra || h.Get("X-RateLimit-Remaining") != "0" {
				t.Errorf("429 %d: Retry-After %q, RateLimit %q, body %s", i, ra, h.Get("RateLimit"), bodies[i])
			}
		default:
			t.Errorf("response %d: status %d: %s", i, st, bodies[i])
		}
	}
	if ok != p.Limit || limited != total-p.Limit {
		t.Fatalf("%d passed and %d were limited; want %d and %d", ok, limited, p.Limit, total-p.Limit)
	}
	// Remaining is counted after each request: Limit-1 down to 0, each once.
	if len(seen) != p.Limit || !seen[strconv.Itoa(p.Limit-1)] || !seen["0"] {
		t.Errorf("X-RateLimit-Remaining values of admitted requests: %v", seen)
	}
}

// TestRepeatedRequestIDStillCounts: a client that sends the same
// X-Request-Id every time must not be taken for a retried decision.
func TestRepeatedRequestIDStillCounts(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	h := serve(l, Policy{Name: "rid", Limit: 3, Window: time.Minute}, nil, nil)
	codes := ""
	for i := 0; i < 5; i++ {
		w := do(h, func(r *http.Request) { r.Header.Set("X-Request-Id", "same-id") })
		codes += strconv.Itoa(w.Code) + " "
	}
	if codes != "200 200 200 429 429 " {
		t.Errorf("statuses %s, want 200 200 200 429 429", codes)
	}
}

// TestSubjects: an identity limits by identity; a request without one by
// its client IP; the two never share a bucket.
func TestSubjects(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	// The server's authentication middleware runs first and records the
	// identity; here a header stands in for it.
	identity := func(r *http.Request) (string, bool) {
		s := r.Header.Get("X-Test-Identity")
		return s, s != ""
	}
	h := serve(l, Policy{Name: Userinfo, Limit: 2, Window: time.Minute}, identity, nil)
	as := func(id, ip string) func(*http.Request) {
		return func(r *http.Request) {
			r.RemoteAddr = ip + ":5555"
			if id != "" {
				r.Header.Set("X-Test-Identity", id)
			}
		}
	}
	for _, tc := range []struct {
		mutate func(*http.Request)
		want   int
	}{
		{as("alice", "192.0.2.1"), 200},
		{as("alice", "192.0.2.2"), 200}, // another address, same identity
		{as("alice", "192.0.2.3"), 429},
		{as("bob", "192.0.2.1"), 200},
		{as("", "192.0.2.1"), 200}, // unauthenticated: its IP's own bucket
		{as("", "192.0.2.1"), 200},
		{as("", "192.0.2.1"), 429},
		{as("", "192.0.2.9"), 200},
		{as("bob", "192.0.2.1"), 200},
		{as("bob", "192.0.2.1"), 429},
	} {
		if w := do(h, tc.mutate); w.Code != tc.want {
			r := httptest.NewRequest("GET", "/", nil)
			tc.mutate(r)
			t.Errorf("identity %q from %s: %d, want %d", r.Header.Get("X-Test-Identity"), r.RemoteAddr, w.Code, tc.want)
		}
	}
}

// TestProxiesKeying: behind a trusted proxy each forwarded client has its
// own bucket; a spoofed X-Forwarded-For from an untrusted peer is ignored.
func TestProxiesKeying(t *testing.T) {
	proxies, err := ParseProxies("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	l, _, _ := newMini(t, Options{Proxies: proxies})
	h := serve(l, Policy{Name: Authorize, Limit: 1, Window: time.Minute}, nil, nil)
	from := func(peer, xff string) func(*http.Request) {
		return func(r *http.Request) {
			r.RemoteAddr = peer
			r.Header.Set("X-Forwarded-For", xff)
		}
	}
	for i, tc := range []struct {
		peer, xff string
		want      int
	}{
		{"10.1.1.1:443", "198.51.100.1", 200},
		{"10.1.1.2:443", "198.51.100.2", 200}, // another client through another proxy
		{"10.1.1.1:443", "198.51.100.1", 429},
		{"203.0.113.5:1000", "198.51.100.3", 200}, // untrusted peer: keyed by 203.0.113.5
		{"203.0.113.5:1000", "198.51.100.4", 429}, // a new spoofed address does not help
		{"10.1.1.1:443", "198.51.100.4, 10.2.2.2", 200},
	} {
		if w := do(h, from(tc.peer, tc.xff)); w.Code != tc.want {
			t.Errorf("case %d (%s, XFF %s): %d, want %d", i, tc.peer, tc.xff, w.Code, tc.want)
		}
	}
}

// TestEveryResponseCarriesHeaders: the handler's own errors still carry
// the rate-limit headers, and the request counted.
func TestEveryResponseCarriesHeaders(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	failing := httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return errors.E(errors.InvalidSignature, "")
	})
	h := serve(l, Policy{Name: Login, Limit: 2, Window: time.Minute}, nil, failing)
	for i, want := range []int{401, 401, 429} {
		w := do(h, nil)
		if w.Code != want || w.Header().Get("RateLimit") == "" || w.Header().Get("X-RateLimit-Remaining") != strconv.Itoa(max(0, 1-i)) {
			t.Errorf("request %d: %d with RateLimit %q, Remaining %q", i, w.Code, w.Header().Get("RateLimit"), w.Header().Get("X-RateLimit-Remaining"))
		}
	}
}

// TestDecisionCounts: every decision is reported through Options.Count,
// under each of its policies or quotas, with its result.
func TestDecisionCounts(t *testing.T) {
	var c counts
	l, m, _ := newMini(t, Options{Timeout: 200 * time.Millisecond, Count: c.count})
	name := testenv.Name("m")
	h := serve(l, Policy{Name: name, Limit: 1, Window: time.Minute}, nil, nil)
	do(h, nil)
	do(h, nil)
	do(h, nil)
	m.SetError("LOADING Redis is loading the dataset in memory")
	w := do(h, nil)
	m.SetError("")
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("with Redis failing: %d, want 503", w.Code)
	}
	for result, want := range map[string]int{"allowed": 1, "limited": 2, "error": 1} {
		if got := c.get(name, result); got != want {
			t.Errorf("Count(%q, %q) called %d times, want %d", name, result, got, want)
		}
	}

	// Quotas: one decision over two quotas counts once under each.
	spend(t, l, "ip:192.0.2.1", 60, 1)
	spend(t, l, "ip:192.0.2.1", 60, 1)
	for _, q := range []Quota{testBytes, testCreates} {
		if a, l := c.get(q.Name, "allowed"), c.get(q.Name, "limited"); a != 1 || l != 1 {
			t.Errorf("quota %s: allowed %d, limited %d; want 1 and 1", q.Name, a, l)
		}
	}
}

func TestMiddlewarePanicsOnBadPolicy(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	defer func() {
		if recover() == nil {
			t.Error("Middleware accepted the zero Policy")
		}
	}()
	l.Middleware(Defaults()["no-such-policy"], nil)
}
