package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Timeouts of every Redis call. Redis answers in well under a millisecond
// on a healthy network; a call that takes longer than this is better failed
// (503, retry) than left to pile up requests.
const (
	redisDialTimeout = 2 * time.Second
	redisIOTimeout   = time.Second
)

// redisConn is the Redis authd uses: a real server or cluster, or an
// embedded miniredis for development.
type redisConn struct {
	redis.UniversalClient
	// embedded is non-nil when authd runs its own in-process Redis.
	embedded *miniredis.Miniredis
	stop     func()
}

func (c *redisConn) Close() error {
	err := c.UniversalClient.Close()
	if c.stop != nil {
		c.stop()
	}
	return err
}

// openRedis connects to the configured Redis: a cluster when
// AUTHD_REDIS_CLUSTER_ADDRS is set, one server for AUTHD_REDIS_URL, or else
// an embedded miniredis whose clock is advanced on a ticker so keys expire.
func openRedis(cfg *config, log *slog.Logger) (*redisConn, error) {
	routeRedisLogs(log)
	switch {
	case len(cfg.RedisClusterAddrs) > 0:
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:        cfg.RedisClusterAddrs,
			DialTimeout:  redisDialTimeout,
			ReadTimeout:  redisIOTimeout,
			WriteTimeout: redisIOTimeout,
			// Callers bound each call with a context deadline.
			ContextTimeoutEnabled: true,
		})
		return &redisConn{UniversalClient: c}, nil
	case cfg.RedisURL != "":
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, &settingError{s: &setting{flag: "redis-url", env: "AUTHD_REDIS_URL", value: redactURL(cfg.RedisURL)}, reason: "not a Redis URL"}
		}
		opt.DialTimeout = redisDialTimeout
		opt.ReadTimeout = redisIOTimeout
		opt.WriteTimeout = redisIOTimeout
		opt.ContextTimeoutEnabled = true
		return &redisConn{UniversalClient: redis.NewClient(opt)}, nil
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, err
	}
	log.Warn("no AUTHD_REDIS_URL: using an embedded in-process Redis; codes, rate limits and sessions live in memory and are lost on restart — for one node and development only",
		slog.String("addr", m.Addr()))
	stop := tickClock(m, 100*time.Millisecond)
	c := redis.NewClient(&redis.Options{
		Addr:                  m.Addr(),
		DialTimeout:           redisDialTimeout,
		ReadTimeout:           redisIOTimeout,
		WriteTimeout:          redisIOTimeout,
		ContextTimeoutEnabled: true,
	})
	return &redisConn{UniversalClient: c, embedded: m, stop: func() { stop(); m.Close() }}, nil
}

// tickClock moves m's key-expiry clock forward with real time: miniredis
// expires keys only when told to.
func tickClock(m *miniredis.Miniredis, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		last := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}
