package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
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

// counterValue gathers the package's Collector through a registry, as
// /metrics would, and returns authd_ratelimit_decisions_total{policy,result}.
func counterValue(t testing.TB, policy, result string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(Collector()); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "authd_ratelimit_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["policy"] == policy && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
