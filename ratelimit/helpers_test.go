package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/authd-dev/authd/internal/testenv"
)

// t0 is the fake Redis time deterministic tests start at: a whole second
// plus microseconds, so rounding mistakes show.
var t0 = time.Unix(1718987654, 321123000)

// newMini returns a miniredis at t0 and a Limiter on it.
func newMini(t testing.TB, opts Options) (*Limiter, *miniredis.Miniredis, *redis.Client) {
	t.Helper()
	m := miniredis.RunT(t)
	m.SetTime(t0)
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	return newLimiter(t, rdb, opts), m, rdb
}

func newLimiter(t testing.TB, rdb redis.UniversalClient, opts Options) *Limiter {
	t.Helper()
	l, err := New(rdb, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// realRedis and realCluster are the shared test servers; startRedis is a
// private redis-server a test may stop.
var (
	realRedis   = testenv.Redis
	realCluster = testenv.RedisCluster
	startRedis  = testenv.StartRedisServer
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// counts records the decisions a Limiter reports through Options.Count.
type counts struct {
	mu sync.Mutex
	n  map[[2]string]int
}

func (c *counts) count(name, result string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[[2]string]int{}
	}
	c.n[[2]string{name, result}]++
}

func (c *counts) get(name, result string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[[2]string{name, result}]
}

// allow spends one unit of subject under policies, with a fresh decision
// id.
func allow(ctx context.Context, l *Limiter, subject string, policies ...Policy) (Decision, error) {
	return l.AllowN(ctx, l.NewID(""), subject, 1, policies...)
}
