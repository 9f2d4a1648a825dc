package ratelimit

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/testenv"
)

var (
	testBytes   = Quota{Name: "bytes", Limit: 100, Window: 24 * time.Hour, Unit: UnitContentBytes}
	testCreates = Quota{Name: "creates", Limit: 2, Window: 24 * time.Hour}
)

// dayEnd is the end of t0's UTC day: where a 24-hour quota resets.
func dayEnd() time.Time {
	return time.Unix((t0.Unix()/86400+1)*86400, 0)
}

func spend(t *testing.T, l *Limiter, subject string, costs ...int64) Spent {
	t.Helper()
	s, err := l.Spend(ctxT(t), l.NewID(""), subject, []Quota{testBytes, testCreates}, costs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSpendAllOrNone: quotas of one subject are spent together or not at
// all, each reports what remains, and the refusing one says so.
func TestSpendAllOrNone(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	s := spend(t, l, "ip:192.0.2.1", 60, 1)
	if !s.Allowed || s.Quotas[0].Remaining != 40 || s.Quotas[1].Remaining != 1 || !s.Quotas[0].Reset.Equal(dayEnd()) || !s.Time.Equal(t0) {
		t.Fatalf("first: %+v", s)
	}
	// Too many bytes: refused, and the create is not spent either.
	s = spend(t, l, "ip:192.0.2.1", 41, 1)
	if s.Allowed || s.Quotas[0].Allowed || !s.Quotas[1].Allowed || s.Quotas[0].Never || s.Quotas[0].Remaining != 40 || s.Quotas[1].Remaining != 1 {
		t.Fatalf("over bytes: %+v", s)
	}
	s = spend(t, l, "ip:192.0.2.1", 40, 1)
	if !s.Allowed || s.Quotas[0].Remaining != 0 || s.Quotas[1].Remaining != 0 {
		t.Fatalf("to the limit: %+v", s)
	}
	// A cost of 0 only reports; a cost above the limit can never pass.
	if s = spend(t, l, "ip:192.0.2.1", 0, 0); !s.Allowed {
		t.Fatalf("zero cost: %+v", s)
	}
	if s = spend(t, l, "ip:192.0.2.2", 101, 0); s.Allowed || !s.Quotas[0].Never {
		t.Fatalf("above the limit: %+v", s)
	}
	// Another subject has its own budget.
	if s = spend(t, l, "ip:192.0.2.3", 100, 2); !s.Allowed {
		t.Fatalf("other subject: %+v", s)
	}
}

// TestQuotaWindowEdge: a day's quota is whole again at 00:00 UTC, not a
// microsecond earlier.
func TestQuotaWindowEdge(t *testing.T) {
	l, m, _ := newMini(t, Options{})
	if s := spend(t, l, "ip:192.0.2.1", 100, 2); !s.Allowed {
		t.Fatal(s)
	}
	m.SetTime(dayEnd().Add(-time.Microsecond))
	if s := spend(t, l, "ip:192.0.2.1", 1, 0); s.Allowed || !s.Quotas[0].Reset.Equal(dayEnd()) {
		t.Fatalf("last microsecond of the day: %+v", s)
	}
	m.SetTime(dayEnd())
	s := spend(t, l, "ip:192.0.2.1", 100, 2)
	if !s.Allowed || !s.Quotas[0].Reset.Equal(dayEnd().Add(24*time.Hour)) {
		t.Fatalf("new day: %+v", s)
	}
}

// TestRefund: a refund gives back the chosen quotas' units, once, and only
// in the window they were spent in.
func TestRefund(t *testing.T) {
	l, m, _ := newMini(t, Options{})
	ctx := ctxT(t)
	s := spend(t, l, "ip:192.0.2.1", 50, 2)
	onlyCreates := func(i int) bool { return i == 1 }
	if ok, err := l.Refund(ctx, s, onlyCreates); !ok || err != nil {
		t.Fatalf("refund: %v %v", ok, err)
	}
	if ok, err := l.Refund(ctx, s, onlyCreates); ok || err != nil {
		t.Fatalf("second refund: %v %v", ok, err)
	}
	if s := spend(t, l, "ip:192.0.2.1", 0, 0); s.Quotas[0].Remaining != 50 || s.Quotas[1].Remaining != 2 {
		t.Fatalf("after refund: %+v", s)
	}
	// Spent just before midnight, refunded after: the new day is not
	// credited.
	m.SetTime(dayEnd().Add(-time.Second))
	s = spend(t, l, "ip:192.0.2.1", 50, 2)
	m.SetTime(dayEnd())
	if ok, err := l.Refund(ctx, s, func(int) bool { return true }); !ok || err != nil {
		t.Fatalf("refund across midnight: %v %v", ok, err)
	}
	if s := spend(t, l, "ip:192.0.2.1", 0, 0); s.Quotas[0].Remaining != 100 || s.Quotas[1].Remaining != 2 {
		t.Fatalf("new day after a late refund: %+v", s)
	}
	// A refused Spend has nothing to refund.
	if ok, _ := l.Refund(ctx, spend(t, l, "ip:192.0.2.4", 101, 0), func(int) bool { return true }); ok {
		t.Fatal("refund of a refusal")
	}
}

// TestSpendReplayCountsOnce: go-redis re-sending the script with the same
// decision id spends nothing more.
func TestSpendReplayCountsOnce(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	ctx := ctxT(t)
	qs := []Quota{testBytes, testCreates}
	for i := 0; i < 3; i++ {
		s, err := l.Spend(ctx, "req-1", "ip:192.0.2.1", qs, []int64{60, 1})
		if err != nil || !s.Allowed || s.Quotas[0].Remaining != 40 {
			t.Fatalf("try %d: %+v %v", i, s, err)
		}
	}
}

func TestSpendArguments(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	ctx := ctxT(t)
	for name, c := range map[string]struct {
		id     string
		quotas []Quota
		costs  []int64
	}{
		"colon id":       {"a:b", []Quota{testBytes}, []int64{1}},
		"empty id":       {"", []Quota{testBytes}, []int64{1}},
		"no quota":       {"x", nil, nil},
		"lengths differ": {"x", []Quota{testBytes}, []int64{1, 2}},
		"negative cost":  {"x", []Quota{testBytes}, []int64{-1}},
		"twice":          {"x", []Quota{testBytes, testBytes}, []int64{1, 1}},
		"bad window":     {"x", []Quota{{Name: "q", Limit: 1, Window: 1500 * time.Millisecond}}, []int64{1}},
		"bad unit":       {"x", []Quota{{Name: "q", Limit: 1, Window: time.Hour, Unit: "bits"}}, []int64{1}},
		"zero limit":     {"x", []Quota{{Name: "q", Window: time.Hour}}, []int64{1}},
	} {
		if _, err := l.Spend(ctx, c.id, "s", c.quotas, c.costs); errors.CodeOf(err) != errors.ServerError {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSpendExactUnderConcurrency: on real Redis (one server and the
// Cluster), from many goroutines and Limiters, exactly the limit is spent:
// with a limit of one, exactly one winner.
func TestSpendExactUnderConcurrency(t *testing.T) {
	for name, rdb := range map[string]func(testing.TB) redis.UniversalClient{
		"redis":   func(t testing.TB) redis.UniversalClient { return realRedis(t) },
		"cluster": func(t testing.TB) redis.UniversalClient { return realCluster(t) },
	} {
		t.Run(name, func(t *testing.T) {
			for _, limit := range []int64{1, 7} {
				subject := testenv.Name("quota-")
				q := Quota{Name: "race", Limit: limit, Window: 24 * time.Hour}
				var won atomic.Int64
				var wg sync.WaitGroup
				for g := 0; g < 32; g++ {
					l := newLimiter(t, rdb(t), Options{})
					wg.Add(1)
					go func() {
						defer wg.Done()
						s, err := l.Spend(ctxT(t), l.NewID(""), subject, []Quota{q}, []int64{1})
						if err != nil {
							t.Error(err)
							return
						}
						if s.Allowed {
							won.Add(1)
						}
					}()
				}
				wg.Wait()
				if won.Load() != limit {
					t.Errorf("limit %d: %d spent", limit, won.Load())
				}
			}
		})
	}
}

// serveQuota wraps h with QuotaMiddleware inside a body limit, the way the
// server mounts PUT /backup.
func serveQuota(l *Limiter, h http.Handler, quotas ...Quota) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/q", httperr.LimitBody(150, errors.BackupTooLarge, l.QuotaMiddleware(nil, quotas...)(h)))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	return httperr.Middleware(httperr.Config{URIBase: "https://auth.example/docs/errors", Logger: quiet}, mux)
}

// TestQuotaMiddleware: bytes are counted from the body however it is sent,
// all quotas are spent together, and a refusal carries the refusing
// quota's headers and the wait until midnight UTC.
func TestQuotaMiddleware(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	bytesQ := testBytes
	bytesQ.Cost = BodyLength
	var seen [][]byte
	h := serveQuota(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = append(seen, b)
	}), bytesQ, testCreates)
	put := func(body string, chunked bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("PUT", "/q", strings.NewReader(body))
		r.RemoteAddr = "192.0.2.9:1234"
		if chunked {
			r.ContentLength = -1
			r.Body = io.NopCloser(strings.NewReader(body))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	wait := strconv.FormatInt(int64(dayEnd().Sub(t0).Seconds())+1, 10) // t0 has a fraction
	remaining := func() (int64, int64) {
		s := spend(t, l, IPSubject(parseHost("192.0.2.9")), 0, 0)
		return s.Quotas[0].Remaining, s.Quotas[1].Remaining
	}
	w := put(strings.Repeat("a", 30), false)
	if w.Code != 200 || !bytes.Equal(seen[0], bytes.Repeat([]byte("a"), 30)) {
		t.Fatalf("first: %d %q", w.Code, seen)
	}
	if got := w.Header().Values("RateLimit-Policy"); strings.Join(got, ", ") != `"bytes";q=100;w=86400;qu="content-bytes", "creates";q=2;w=86400` {
		t.Errorf("RateLimit-Policy %q", got)
	}
	if got := w.Header().Values("RateLimit"); strings.Join(got, ", ") != `"bytes";r=70;t=`+wait+`, "creates";r=1;t=`+wait {
		t.Errorf("RateLimit %q", got)
	}
	if w.Header().Get("X-RateLimit-Limit") != "" {
		t.Errorf("X-RateLimit-Limit on an admitted request: %q", w.Header().Get("X-RateLimit-Limit"))
	}
	// Chunked: the length is read from the body, which the handler still
	// gets whole.
	if w := put(strings.Repeat("b", 20), true); w.Code != 200 || string(seen[1]) != strings.Repeat("b", 20) {
		t.Fatalf("chunked: %d", w.Code)
	}
	if b, c := remaining(); b != 50 || c != 0 {
		t.Fatalf("after two: %d bytes, %d creates left", b, c)
	}
	// The third is refused before the handler runs, spending no bytes
	// either.
	w = put("d", false)
	var eb errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil || w.Code != 429 || eb.Error != "rate_limit_exceeded" || strconv.FormatInt(eb.RetryAfter, 10) != wait ||
		w.Header().Get("Retry-After") != wait || w.Header().Get("X-RateLimit-Limit") != "2" || w.Header().Get("X-RateLimit-Remaining") != "0" ||
		w.Header().Get("X-RateLimit-Reset") != strconv.FormatInt(dayEnd().Unix(), 10) || len(seen) != 2 {
		t.Fatalf("third: %d %v %s", w.Code, w.Header(), w.Body)
	}
	if b, c := remaining(); b != 50 || c != 0 {
		t.Fatalf("after the refusal: %d bytes, %d creates left", b, c)
	}
	// Over the body limit: the route's 413, nothing spent.
	if w := put(strings.Repeat("f", 151), true); w.Code != 413 || !strings.Contains(w.Body.String(), "backup_too_large") {
		t.Fatalf("oversize: %d %s", w.Code, w.Body)
	}
	if b, _ := remaining(); b != 50 {
		t.Fatalf("oversize body spent bytes: %d left", b)
	}
}

// TestSpendRequestRefund: what SpendRequest spent for a request, Refund
// gives back; its headers are on the response.
func TestSpendRequestRefund(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	r := httptest.NewRequest("PUT", "/q", nil)
	r.RemoteAddr = "192.0.2.10:1"
	w := httptest.NewRecorder()
	s, err := l.SpendRequest(w, r, nil, testCreates)
	if err != nil || !s.Allowed || s.Subject != "ip:192.0.2.10" || w.Header().Get("RateLimit-Policy") != `"creates";q=2;w=86400` {
		t.Fatalf("spend: %+v %v %v", s, err, w.Header())
	}
	if ok, err := l.Refund(ctxT(t), s, func(int) bool { return true }); !ok || err != nil {
		t.Fatalf("refund: %v %v", ok, err)
	}
	for i := 0; i < 2; i++ {
		if _, err := l.SpendRequest(httptest.NewRecorder(), r, nil, testCreates); err != nil {
			t.Fatalf("spend %d after the refund: %v", i, err)
		}
	}
	_, err = l.SpendRequest(httptest.NewRecorder(), r, nil, testCreates)
	if e := new(errors.Error); !errors.As(err, &e) || e.Code != errors.RateLimitExceeded || e.RetryAfter < time.Second {
		t.Fatalf("third: %v", err)
	}
}

// TestStackedMiddlewares: a route limited per client IP and then per
// subject lists both policies in the draft fields, and the X-RateLimit
// fields describe the tighter one, or the one that refused.
func TestStackedMiddlewares(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	ip := Policy{Name: "per_ip", Limit: 3, Window: time.Minute}
	sub := Policy{Name: "per_sub", Limit: 5, Window: time.Minute}
	subject := func(r *http.Request) (string, bool) { return r.Header.Get("Subject"), true }
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux := http.NewServeMux()
	mux.Handle("/s", l.Middleware(ip, nil)(l.Middleware(sub, subject)(ok)))
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := httperr.Middleware(httperr.Config{URIBase: "https://auth.example/docs/errors", Logger: quiet}, mux)
	get := func(s string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/s", nil)
		r.RemoteAddr = "192.0.2.7:1"
		r.Header.Set("Subject", s)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i, c := range []struct {
		subject            string
		status             int
		limit, remaining   string
		policies, counters string
	}{
		// per_sub has more left than per_ip: per_ip is described.
		{"a", 200, "3", "2", `"per_ip";q=3;w=60, "per_sub";q=5;w=60`, `"per_ip";r=2;t=60, "per_sub";r=4;t=60`},
		{"a", 200, "3", "1", `"per_ip";q=3;w=60, "per_sub";q=5;w=60`, `"per_ip";r=1;t=60, "per_sub";r=3;t=60`},
		{"b", 200, "3", "0", `"per_ip";q=3;w=60, "per_sub";q=5;w=60`, `"per_ip";r=0;t=60, "per_sub";r=4;t=60`},
		// Refused per client IP: the subject's limiter never runs.
		{"c", 429, "3", "0", `"per_ip";q=3;w=60`, `"per_ip";r=0;t=60`},
	} {
		w := get(c.subject)
		hd := w.Header()
		if w.Code != c.status || hd.Get("X-RateLimit-Limit") != c.limit || hd.Get("X-RateLimit-Remaining") != c.remaining ||
			strings.Join(hd.Values("RateLimit-Policy"), ", ") != c.policies || strings.Join(hd.Values("RateLimit"), ", ") != c.counters {
			t.Errorf("request %d: %d %v", i, w.Code, hd)
		}
	}
	// Tighter per subject: the subject's policy is described.
	l2, _, _ := newMini(t, Options{})
	mux = http.NewServeMux()
	mux.Handle("/s", l2.Middleware(Policy{Name: "per_ip", Limit: 50, Window: time.Minute}, nil)(l2.Middleware(Policy{Name: "per_sub", Limit: 2, Window: time.Minute}, subject)(ok)))
	h = httperr.Middleware(httperr.Config{URIBase: "https://auth.example/docs/errors", Logger: quiet}, mux)
	for i, want := range []struct {
		status           int
		limit, remaining string
	}{{200, "2", "1"}, {200, "2", "0"}, {429, "2", "0"}} {
		w := get("d")
		if w.Code != want.status || w.Header().Get("X-RateLimit-Limit") != want.limit || w.Header().Get("X-RateLimit-Remaining") != want.remaining {
			t.Errorf("tight subject, request %d: %d %v", i, w.Code, w.Header())
		}
	}
}
