package client_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/client"
	"github.com/authd-dev/authd/errors"
)

// script is a test server answering each attempt from a list of statuses
// and headers (the last one repeats), recording what it received.
type script struct {
	mu       sync.Mutex
	answers  []answer
	requests []seen
}

type answer struct {
	status int
	header map[string]string
}

type seen struct {
	method, target, body, token string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, seen{r.Method, r.RequestURI, string(b), r.Header.Get("X-Auth-Token")})
	a := s.answers[min(len(s.requests), len(s.answers))-1]
	s.mu.Unlock()
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(a.status)
	io.WriteString(w, `{"error":"rate_limit_exceeded"}`)
}

func (s *script) seen() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.requests...)
}

func newScript(t *testing.T, answers ...answer) (*script, *httptest.Server) {
	s := &script{answers: answers}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

// instantWaits replaces rt's timer with one that fires at once and
// records the waits asked for; jitter returns its maximum.
func instantWaits(rt *client.RetryTransport) *[]time.Duration {
	var waits []time.Duration
	var mu sync.Mutex
	client.SetRetryHooks(rt, func(d time.Duration) (<-chan time.Time, func() bool) {
		mu.Lock()
		waits = append(waits, d)
		mu.Unlock()
		c := make(chan time.Time, 1)
		c <- time.Now()
		return c, func() bool { return true }
	}, func(n int64) int64 { return n - 1 })
	return &waits
}

func ra(status int, retryAfter string) answer {
	h := map[string]string{}
	if retryAfter != "" {
		h["Retry-After"] = retryAfter
	}
	return answer{status, h}
}

func TestRetryTransport(t *testing.T) {
	date := time.Now().UTC().Truncate(time.Second)
	for _, tc := range []struct {
		name     string
		answers  []answer
		method   string
		header   map[string]string
		rt       *client.RetryTransport
		attempts int
		status   int
		waits    []time.Duration
	}{
		{
			name: "429 then success waits Retry-After plus jitter", method: "GET",
			answers:  []answer{ra(429, "1"), ra(200, "")},
			attempts: 2, status: 200, waits: []time.Duration{1250*time.Millisecond - 1},
		},
		{
			name: "503 with an HTTP-date", method: "GET",
			answers: []answer{
				{503, map[string]string{"Retry-After": date.Add(2 * time.Second).Format(http.TimeFormat), "Date": date.Format(http.TimeFormat)}},
				ra(204, ""),
			},
			attempts: 2, status: 204, waits: []time.Duration{2500*time.Millisecond - 1},
		},
		{
			name: "Retry-After 0 still spreads", method: "GET",
			answers:  []answer{ra(429, "0"), ra(200, "")},
			attempts: 2, status: 200, waits: []time.Duration{100*time.Millisecond - 1},
		},
		{
			name: "jitter is capped at a second", method: "GET",
			answers:  []answer{ra(503, "20"), ra(200, "")},
			attempts: 2, status: 200, waits: []time.Duration{21*time.Second - 1},
		},
		{
			name: "gives up after MaxRetries", method: "GET",
			answers:  []answer{ra(429, "1")},
			rt:       &client.RetryTransport{MaxRetries: 2},
			attempts: 3, status: 429, waits: []time.Duration{1250*time.Millisecond - 1, 1250*time.Millisecond - 1},
		},
		{
			name: "negative MaxRetries: no retry", method: "GET",
			answers:  []answer{ra(429, "1")},
			rt:       &client.RetryTransport{MaxRetries: -1},
			attempts: 1, status: 429,
		},
		{
			name: "Retry-After beyond MaxDelay is not waited for", method: "GET",
			answers:  []answer{ra(429, "120"), ra(200, "")},
			rt:       &client.RetryTransport{MaxDelay: time.Minute},
			attempts: 1, status: 429,
		},
		{
			name: "jitter never passes MaxDelay", method: "GET",
			answers:  []answer{ra(429, "60"), ra(200, "")},
			rt:       &client.RetryTransport{MaxDelay: time.Minute},
			attempts: 2, status: 200, waits: []time.Duration{time.Minute},
		},
		{
			name: "no Retry-After: exponential backoff", method: "GET",
			answers:  []answer{ra(503, ""), ra(503, ""), ra(503, ""), ra(200, "")},
			rt:       &client.RetryTransport{BaseDelay: 100 * time.Millisecond},
			attempts: 4, status: 200, waits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond},
		},
		{
			name: "other statuses are not retried", method: "GET",
			answers:  []answer{ra(500, "1"), ra(200, "")},
			attempts: 1, status: 500,
		},
		{
			name: "PUT and DELETE are idempotent", method: "PUT",
			answers:  []answer{ra(429, "1"), ra(201, "")},
			attempts: 2, status: 201, waits: []time.Duration{1250*time.Millisecond - 1},
		},
		{
			name: "POST is not retried", method: "POST",
			answers:  []answer{ra(429, "1"), ra(200, "")},
			attempts: 1, status: 429,
		},
		{
			name: "PATCH is not retried", method: "PATCH",
			answers:  []answer{ra(503, "1"), ra(200, "")},
			attempts: 1, status: 503,
		},
		{
			name: "POST with an Idempotency-Key is", method: "POST", header: map[string]string{"Idempotency-Key": "k1"},
			answers:  []answer{ra(429, "1"), ra(200, "")},
			attempts: 2, status: 200, waits: []time.Duration{1250*time.Millisecond - 1},
		},
		{
			name: "POST when told each attempt is new", method: "POST",
			answers:  []answer{ra(429, "1"), ra(200, "")},
			rt:       &client.RetryTransport{RetryNonIdempotent: true},
			attempts: 2, status: 200, waits: []time.Duration{1250*time.Millisecond - 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, srv := newScript(t, tc.answers...)
			rt := tc.rt
			if rt == nil {
				rt = &client.RetryTransport{}
			}
			waits := instantWaits(rt)
			req, _ := http.NewRequest(tc.method, srv.URL+"/backup?x=1", strings.NewReader("the body"))
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := s.seen()
			if len(got) != tc.attempts || resp.StatusCode != tc.status {
				t.Fatalf("%d attempts, status %d; want %d, %d", len(got), resp.StatusCode, tc.attempts, tc.status)
			}
			for i, r := range got {
				if r.body != "the body" || r.method != tc.method || r.target != "/backup?x=1" {
					t.Errorf("attempt %d: %+v", i+1, r)
				}
			}
			if strings.Join(durs(*waits), " ") != strings.Join(durs(tc.waits), " ") {
				t.Errorf("waits %v, want %v", *waits, tc.waits)
			}
		})
	}
}

func durs(ds []time.Duration) []string {
	var s []string
	for _, d := range ds {
		s = append(s, d.String())
	}
	return s
}

// TestRetryJitterNeverEarly: with the jitter source at its minimum, the
// wait is exactly what Retry-After says: never earlier.
func TestRetryJitterNeverEarly(t *testing.T) {
	s, srv := newScript(t, ra(429, "3"), ra(200, ""))
	rt := &client.RetryTransport{}
	var waits []time.Duration
	client.SetRetryHooks(rt, func(d time.Duration) (<-chan time.Time, func() bool) {
		waits = append(waits, d)
		c := make(chan time.Time, 1)
		c <- time.Now()
		return c, func() bool { return true }
	}, func(int64) int64 { return 0 })
	resp, err := rt.RoundTrip(mustRequest(t, "GET", srv.URL, ""))
	if err != nil || resp.StatusCode != 200 || len(s.seen()) != 2 {
		t.Fatalf("%v %v", resp, err)
	}
	if len(waits) != 1 || waits[0] != 3*time.Second {
		t.Fatalf("waits %v, want [3s]", waits)
	}
}

func mustRequest(t *testing.T, method, url, body string) *http.Request {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestRetryBodyWithoutGetBody: a body that cannot be read again is sent
// once.
func TestRetryBodyWithoutGetBody(t *testing.T) {
	s, srv := newScript(t, ra(429, "0"), ra(200, ""))
	rt := &client.RetryTransport{}
	instantWaits(rt)
	req := mustRequest(t, "PUT", srv.URL, "")
	req.Body = io.NopCloser(strings.NewReader("once"))
	req.ContentLength = 4
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || len(s.seen()) != 1 {
		t.Fatalf("status %d after %d attempts", resp.StatusCode, len(s.seen()))
	}
}

// TestRetryContextCancel: a request whose context ends while it waits
// returns at once with the context's error, on the real timer.
func TestRetryContextCancel(t *testing.T) {
	s, srv := newScript(t, ra(503, "10"), ra(200, ""))
	rt := &client.RetryTransport{}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	resp, err := rt.RoundTrip(req)
	if !errors.Is(err, context.Canceled) || resp != nil {
		t.Fatalf("RoundTrip = %v, %v; want context.Canceled", resp, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("returned after %v", d)
	}
	if len(s.seen()) != 1 {
		t.Fatalf("%d attempts", len(s.seen()))
	}
}

// TestRetryContextDeadline: a wait that would outlast the context's
// deadline is not started; the response is returned for the caller.
func TestRetryContextDeadline(t *testing.T) {
	s, srv := newScript(t, ra(429, "5"), ra(200, ""))
	rt := &client.RetryTransport{}
	waits := instantWaits(rt)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	var ce *client.Error
	if !errors.As(client.ParseError(resp), &ce) || ce.RetryAfter != 5*time.Second || len(*waits) != 0 || len(s.seen()) != 1 {
		t.Fatalf("error %+v, waits %v, %d attempts", ce, *waits, len(s.seen()))
	}
}

// TestRetryBudget: in steady failure retries stop once half the budget is
// spent, so the server sees barely more requests than callers make; they
// come back after enough successes.
func TestRetryBudget(t *testing.T) {
	var failing sync.Map
	failing.Store("on", true)
	attempts := 0
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts++
		mu.Unlock()
		if on, _ := failing.Load("on"); on.(bool) {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(503)
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	budget := client.NewRetryBudget(10, 0.1)
	// Two transports sharing one budget: the budget is the process's.
	rts := []*client.RetryTransport{{Budget: budget}, {Budget: budget}}
	for _, rt := range rts {
		instantWaits(rt)
	}
	do := func(rt *client.RetryTransport) int {
		resp, err := rt.RoundTrip(mustRequest(t, "GET", srv.URL, ""))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := range 20 {
		if do(rts[i%2]) != 503 {
			t.Fatal("not failing")
		}
	}
	// 10 tokens: the first request fails 4 times (10 → 6, each retry
	// allowed while more than 5 remain), the second fails once (6 → 5)
	// and may not retry; so do all after it.
	if attempts != 4+19 {
		t.Fatalf("%d attempts for 20 requests, want 23", attempts)
	}
	if budget.Tokens() != 0 {
		t.Fatalf("tokens %v", budget.Tokens())
	}
	failing.Store("on", false)
	for range 50 { // 0 + 50 × 0.1 = 5: not more than half yet
		do(rts[0])
	}
	failing.Store("on", true)
	attempts = 0
	do(rts[1])
	if attempts != 1 {
		t.Fatalf("retried with %v tokens", budget.Tokens())
	}
	failing.Store("on", false)
	for range 21 { // 4 + 2.1 = 6.1
		do(rts[0])
	}
	failing.Store("on", true)
	attempts = 0
	do(rts[1])
	if attempts != 2 { // 6.1 → 5.1: one retry, then 4.1
		t.Fatalf("%d attempts with the budget regained, want 2", attempts)
	}
}

// TestRetryResignsEachAttempt: under a SigningTransport a POST is retried,
// and every attempt carries a token of its own over the same body.
func TestRetryResignsEachAttempt(t *testing.T) {
	s, srv := newScript(t, ra(429, "1"), ra(503, "1"), ra(200, ""))
	signer := &fakeSigner{}
	rt := &client.RetryTransport{Next: &client.SigningTransport{Signer: signer}}
	instantWaits(rt)
	resp, err := rt.RoundTrip(mustRequest(t, "POST", srv.URL+"/things?a=%2F", "payload"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := s.seen()
	if resp.StatusCode != 200 || len(got) != 3 {
		t.Fatalf("status %d after %d attempts", resp.StatusCode, len(got))
	}
	tokens := map[string]bool{}
	for i, r := range got {
		if r.body != "payload" || r.token != "tok-"+strconv.Itoa(i+1)+"|POST "+srv.URL+"/things?a=%2F|payload" {
			t.Errorf("attempt %d: %+v", i+1, r)
		}
		tokens[r.token] = true
	}
	if len(tokens) != 3 {
		t.Errorf("tokens reused: %v", tokens)
	}
}
