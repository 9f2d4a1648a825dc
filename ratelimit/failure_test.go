package ratelimit

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestScriptFlushMidRun flushes the script cache again and again while
// decisions run, on the pipelined and on the single path: every decision
// still succeeds, and exactly the limit is admitted.
func TestScriptFlushMidRun(t *testing.T) {
	srv := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer rdb.Close()
	for _, pipelines := range []int{1, 1 << 10} {
		if err := rdb.ConfigResetStat(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
		l := newLimiter(t, rdb, Options{Pipelines: pipelines, Timeout: 5 * time.Second})
		p := Policy{Name: "flush", Limit: 600, Window: time.Hour}
		subject := "flush" + time.Now().String()
		var admitted, decided, flushes atomic.Int64
		stop := make(chan struct{})
		var flusher sync.WaitGroup
		flusher.Add(1)
		go func() {
			defer flusher.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				time.Sleep(time.Millisecond)
				if err := rdb.ScriptFlush(context.Background()).Err(); err != nil {
					t.Error(err)
					return
				}
				flushes.Add(1)
			}
		}()
		var wg sync.WaitGroup
		for g := 0; g < 16; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 60; i++ {
					d, err := allow(context.Background(), l, subject, p)
					if err != nil {
						t.Errorf("decision during SCRIPT FLUSH: %v", err)
						return
					}
					decided.Add(1)
					if d.Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		close(stop)
		flusher.Wait()
		if admitted.Load() != 600 || decided.Load() != 960 {
			t.Errorf("pipelines %d: %d decided, %d admitted; want 960 and exactly 600", pipelines, decided.Load(), admitted.Load())
		}
		// Each EVAL is a decision that found the script flushed and sent
		// it in full.
		evals := evalCalls(t, rdb)
		if evals < 2 {
			t.Errorf("pipelines %d: %d flushes but only %d EVAL fallbacks: the flushes missed the run", pipelines, flushes.Load(), evals)
		}
		t.Logf("pipelines %d: %d flushes, %d EVAL fallbacks", pipelines, flushes.Load(), evals)
	}
}

// evalCalls returns how many EVAL commands the server ran since its
// statistics were reset.
func evalCalls(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_eval:calls="); ok {
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			return n
		}
	}
	return 0
}

// TestRedisDown stops Redis in the middle of a run: the limited route
// answers 503 temporarily_unavailable with Retry-After, quickly, never 500
// and never lets a request through; when Redis is back, so is the route.
func TestRedisDown(t *testing.T) {
	srv := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer rdb.Close()
	l := newLimiter(t, rdb, Options{Timeout: 250 * time.Millisecond})
	var reached atomic.Int64
	h := serve(l, Policy{Name: "down", Limit: 1000, Window: time.Hour}, nil,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	hs := httptest.NewServer(h)
	defer hs.Close()

	get := func() (int, http.Header, string, time.Duration) {
		start := time.Now()
		resp, err := hs.Client().Get(hs.URL + "/limited")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, string(b), time.Since(start)
	}
	for i := 0; i < 5; i++ {
		if st, _, b, _ := get(); st != 200 {
			t.Fatalf("before the outage: %d %s", st, b)
		}
	}

	srv.Stop()
	before := reached.Load()
	for i := 0; i < 10; i++ {
		st, h, b, took := get()
		var body errorBody
		json.Unmarshal([]byte(b), &body)
		if st != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || body.Error != "temporarily_unavailable" || body.RetryAfter < 1 {
			t.Fatalf("Redis down, request %d: %d, Retry-After %q, %s", i, st, h.Get("Retry-After"), b)
		}
		if took > 2*time.Second {
			t.Errorf("Redis down, request %d took %v", i, took)
		}
	}
	if reached.Load() != before {
		t.Fatal("a request reached the handler while Redis was down")
	}

	srv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, _, b, _ := get()
		if st == 200 {
			break
		}
		if st != http.StatusServiceUnavailable {
			t.Fatalf("recovering: %d %s", st, b)
		}
		if time.Now().After(deadline) {
			t.Fatal("the route did not recover after Redis came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisHangs freezes Redis (connections open, no answers): decisions
// give up after the Limiter's timeout with 503, and work again once Redis
// answers.
func TestRedisHangs(t *testing.T) {
	srv := startRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	defer rdb.Close()
	l := newLimiter(t, rdb, Options{Timeout: 200 * time.Millisecond})
	h := serve(l, Policy{Name: "hang", Limit: 1000, Window: time.Hour}, nil, nil)
	if w := do(h, nil); w.Code != 200 {
		t.Fatalf("before: %d", w.Code)
	}
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			w := do(h, nil)
			if took := time.Since(start); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" || took > time.Second {
				t.Errorf("Redis frozen: %d, Retry-After %q, after %v", w.Code, w.Header().Get("Retry-After"), took)
			}
		}()
	}
	wg.Wait()
	srv.Resume()
	resumed = true
	deadline := time.Now().Add(10 * time.Second)
	for do(h, nil).Code != 200 {
		if time.Now().After(deadline) {
			t.Fatal("no recovery after Redis resumed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
