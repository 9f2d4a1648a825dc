package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/authd-dev/authd/internal/testenv"
)

// benchSubjects is how many subjects the benchmark spreads decisions over,
// like one route's traffic from many clients.
const benchSubjects = 1024

// benchLimit is generous enough that almost every decision is admitted:
// the common case of a limiter in front of a healthy service.
const benchLimit = 1000

// BenchmarkLimiter compares parallel decisions/s of this limiter with
// github.com/go-redis/redis_rate/v10 on the same real Redis, in the same
// run, with the same client, subjects, limit and 32 goroutines. Compare with
//
//	go test -run '^$' -bench Limiter -count 10 ./ratelimit/ > bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl bench.txt
func BenchmarkLimiter(b *testing.B) {
	opt, err := redis.ParseURL(testenv.RedisURL(b))
	if err != nil {
		b.Fatal(err)
	}
	opt.ContextTimeoutEnabled = true
	benchLimiters(b, opt)
}

// BenchmarkLimiterMiniredis is BenchmarkLimiter on miniredis, for
// information only: the embedded development mode.
func BenchmarkLimiterMiniredis(b *testing.B) {
	m := miniredis.RunT(b)
	benchLimiters(b, &redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
}

func benchLimiters(b *testing.B, opt *redis.Options) {
	rdb := redis.NewClient(opt)
	b.Cleanup(func() { rdb.Close() })
	run := testenv.Name("bench")
	subjects := make([]string, benchSubjects)
	for i := range subjects {
		subjects[i] = run + strconv.Itoa(i)
	}
	p := Policy{Name: "bench", Limit: benchLimit, Window: time.Second}
	// redis_rate first: benchstat -col /impl takes the first column as
	// the base of its ratios.
	b.Run("impl=redis_rate", func(b *testing.B) {
		l := redis_rate.NewLimiter(rdb)
		limit := redis_rate.PerSecond(benchLimit)
		parallel(b, func(ctx context.Context, i uint64) error {
			_, err := l.Allow(ctx, subjects[i%benchSubjects], limit)
			return err
		})
	})
	b.Run("impl=authd", func(b *testing.B) {
		l, err := New(rdb, Options{Timeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, func(ctx context.Context, i uint64) error {
			_, err := allow(ctx, l, subjects[i%benchSubjects], p)
			return err
		})
	})
	// For information: one round trip per decision, as redis_rate does.
	// So many pipelines are allowed that every caller leads its own.
	b.Run("impl=authd_unbatched", func(b *testing.B) {
		l, err := New(rdb, Options{Timeout: 5 * time.Second, Pipelines: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		parallel(b, func(ctx context.Context, i uint64) error {
			_, err := allow(ctx, l, subjects[i%benchSubjects], p)
			return err
		})
	})
}

func parallel(b *testing.B, decide func(context.Context, uint64) error) {
	ctx := context.Background()
	var n atomic.Uint64
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := decide(ctx, n.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
}
