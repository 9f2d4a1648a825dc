package client

import (
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Defaults of RetryTransport.
const (
	DefaultMaxRetries = 3
	DefaultMaxDelay   = 30 * time.Second
	DefaultBaseDelay  = 500 * time.Millisecond
)

// RetryTransport is an http.RoundTripper that retries a request answered
// 429 (Too Many Requests) or 503 (Service Unavailable), after the wait its
// Retry-After header asks for (RFC 9110 §10.2.3), plus jitter; without
// one, after an exponential backoff with jitter.
//
// It retries only what is safe to send again:
//
//   - idempotent methods (GET, HEAD, OPTIONS, TRACE, PUT, DELETE; RFC 9110
//     §9.2.2) and requests with an Idempotency-Key header;
//   - any method when every attempt reaches the server as a new request:
//     when Next is a *SigningTransport (each attempt gets a fresh
//     X-Auth-Token; authd accepts a signed POST, PUT, PATCH or DELETE
//     once, so resending the first attempt's token would fail), or when
//     RetryNonIdempotent says so;
//   - requests whose body can be produced again (Body nil or
//     http.NoBody, or GetBody set, as http.NewRequest does for in-memory
//     bodies).
//
// It never waits longer than MaxDelay: a Retry-After beyond it, or beyond
// the request context's deadline, returns the response at once, for the
// caller to report (ParseError gives its RetryAfter). It stops waiting
// when the request's context ends, returning the context's error. A
// RetryBudget keeps a process from multiplying the load on a server that
// is already failing.
//
// The zero value is ready to use. A RetryTransport must not be copied
// after first use.
type RetryTransport struct {
	// Next sends each attempt; nil means http.DefaultTransport.
	Next http.RoundTripper
	// MaxRetries is the number of retries after the first attempt; 0
	// means DefaultMaxRetries, negative means none.
	MaxRetries int
	// MaxDelay caps any one wait; 0 means DefaultMaxDelay.
	MaxDelay time.Duration
	// BaseDelay is the first backoff when the response has no
	// Retry-After; 0 means DefaultBaseDelay.
	BaseDelay time.Duration
	// Budget limits retries across every request through this transport
	// (share one Budget between transports to limit them together); nil
	// means a budget of this transport's own, NewRetryBudget(0, 0).
	Budget *RetryBudget
	// RetryNonIdempotent retries POST and PATCH too. Set it only when a
	// transport under this one makes each attempt a new request the
	// server cannot mistake for the first (it is implied when Next is a
	// *SigningTransport).
	RetryNonIdempotent bool

	once   sync.Once
	budget *RetryBudget
	// after returns a channel that fires after d (tests replace it).
	after func(d time.Duration) (<-chan time.Time, func() bool)
	// jitter returns a uniform value in [0, n) (tests replace it).
	jitter func(n int64) int64
}

// RoundTrip implements http.RoundTripper.
func (t *RetryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.once.Do(t.init)
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	retries := t.MaxRetries
	if retries == 0 {
		retries = DefaultMaxRetries
	}
	if !t.mayRetry(req) {
		retries = 0
	}
	ctx := req.Context()
	attempt := req
	for n := 0; ; n++ {
		resp, err := next.RoundTrip(attempt)
		if err != nil {
			return nil, err
		}
		retryable := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
		t.budget.record(!retryable)
		if !retryable || n >= retries || !t.budget.allow() {
			return resp, nil
		}
		wait, ok := t.delay(resp, n)
		if !ok {
			return resp, nil
		}
		if dl, has := ctx.Deadline(); has && time.Until(dl) < wait {
			return resp, nil // the context would end before the retry
		}
		if attempt, err = rewind(req); err != nil {
			return resp, nil
		}
		discard(resp)
		fire, stop := t.after(wait)
		select {
		case <-ctx.Done():
			stop()
			return nil, ctx.Err()
		case <-fire:
		}
	}
}

func (t *RetryTransport) init() {
	t.budget = t.Budget
	if t.budget == nil {
		t.budget = NewRetryBudget(0, 0)
	}
	if t.after == nil {
		t.after = func(d time.Duration) (<-chan time.Time, func() bool) {
			tm := time.NewTimer(d)
			return tm.C, tm.Stop
		}
	}
	if t.jitter == nil {
		t.jitter = rand.Int64N
	}
}

// mayRetry reports whether req may be sent more than once.
func (t *RetryTransport) mayRetry(req *http.Request) bool {
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return false
	}
	if _, ok := t.Next.(*SigningTransport); ok || t.RetryNonIdempotent {
		return true
	}
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	// As net/http's Transport treats them (RFC 9110 §9.2.2 leaves room
	// for a key that makes a request idempotent).
	_, k1 := req.Header["Idempotency-Key"]
	_, k2 := req.Header["X-Idempotency-Key"]
	return k1 || k2
}

// delay returns how long to wait before retry number n+1, and false when
// the wait the server asks for is beyond MaxDelay.
func (t *RetryTransport) delay(resp *http.Response, n int) (time.Duration, bool) {
	maxDelay := t.MaxDelay
	if maxDelay <= 0 {
		maxDelay = DefaultMaxDelay
	}
	if ra, ok := ParseRetryAfter(resp.Header.Get("Retry-After"), dateOf(resp.Header), time.Now()); ok {
		if ra > maxDelay {
			return 0, false
		}
		// Never earlier than asked; up to a quarter later (at most a
		// second, at least 100 ms), so clients told the same second do
		// not return in step.
		spread := min(max(ra/4, 100*time.Millisecond), time.Second)
		return min(ra+time.Duration(t.jitter(int64(spread))), maxDelay), true
	}
	base := t.BaseDelay
	if base <= 0 {
		base = DefaultBaseDelay
	}
	ceiling := maxDelay
	if n < 30 && base<<n > 0 && base<<n < maxDelay {
		ceiling = base << n
	}
	// Equal jitter: uniform in [ceiling/2, ceiling].
	half := ceiling / 2
	return half + time.Duration(t.jitter(int64(ceiling-half)+1)), true
}

// rewind returns a copy of req with a fresh body for the next attempt.
func rewind(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if req.Body == nil || req.Body == http.NoBody {
		return r, nil
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r.Body = body
	return r, nil
}

// discard drains a little of resp's body, so the connection can be
// reused, and closes it.
func discard(resp *http.Response) {
	io.CopyN(io.Discard, resp.Body, 4<<10)
	resp.Body.Close()
}

// RetryBudget bounds the retries of a process, so that a fleet of clients
// does not multiply the load on a server that is already overloaded or
// down. It is the token bucket of gRPC's retry throttling: every answer
// that asks to retry (429, 503) takes a token, every other answer gives
// back Ratio of one, and a retry is allowed only while more than half of
// MaxTokens remain. In steady failure retries stop after a few requests;
// they come back once enough requests succeed.
type RetryBudget struct {
	mu     sync.Mutex
	tokens float64
	max    float64
	ratio  float64
}

// NewRetryBudget returns a full budget of maxTokens tokens (0 means 10)
// that earns ratio of a token per successful answer (0 means 0.1: about
// one retry per ten successes once the budget is spent).
func NewRetryBudget(maxTokens int, ratio float64) *RetryBudget {
	if maxTokens <= 0 {
		maxTokens = 10
	}
	if ratio <= 0 {
		ratio = 0.1
	}
	return &RetryBudget{tokens: float64(maxTokens), max: float64(maxTokens), ratio: ratio}
}

func (b *RetryBudget) record(success bool) {
	b.mu.Lock()
	if success {
		b.tokens = min(b.max, b.tokens+b.ratio)
	} else {
		b.tokens = max(0, b.tokens-1)
	}
	b.mu.Unlock()
}

func (b *RetryBudget) allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens > b.max/2
}
