package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/url"
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
// AUTHD_REDIS_CLUSTER_ADDRS is set; Sentinel when AUTHD_REDIS_URL names a
// master_name, as in
//
//	redis://:pw@sentinel1:26379/0?master_name=mymaster&addr=sentinel2:26379
//
// one server for any other AUTHD_REDIS_URL; or else an embedded miniredis
// whose clock is advanced on a ticker so keys expire.
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
	case cfg.RedisURL != "" && sentinelURL(cfg.RedisURL):
		opt, err := redis.ParseFailoverURL(cfg.RedisURL)
		if err != nil {
			return nil, &settingError{s: &setting{flag: "redis-url", env: "AUTHD_REDIS_URL", value: cfg.RedisURL},
				reason: "not a Redis Sentinel URL (" + err.Error() + ")"}
		}
		// The URL's user info authenticates to the sentinels; without a
		// password= parameter of its own, the master is taken to use the
		// same password, the usual setup.
		if opt.Password == "" {
			opt.Username, opt.Password = opt.SentinelUsername, opt.SentinelPassword
		}
		opt.DialTimeout = redisDialTimeout
		opt.ReadTimeout = redisIOTimeout
		opt.WriteTimeout = redisIOTimeout
		opt.ContextTimeoutEnabled = true
		return &redisConn{UniversalClient: redis.NewFailoverClient(opt)}, nil
	case cfg.RedisURL != "":
		opt, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return nil, &settingError{s: &setting{flag: "redis-url", env: "AUTHD_REDIS_URL", value: cfg.RedisURL}, reason: "not a Redis URL"}
		}
		opt.DialTimeout = redisDialTimeout
		opt.ReadTimeout = redisIOTimeout
		opt.WriteTimeout = redisIOTimeout
		opt.ContextTimeoutEnabled = true
		return &redisConn{UniversalClient: redis.NewClient(opt)}, nil
	}
	m := miniredis.NewMiniRedis()
	// It listens on loopback TCP: a random password keeps other local
	// users from reading codes or writing their own.
	var pw [24]byte
	rand.Read(pw[:])
	password := hex.EncodeToString(pw[:])
	m.RequireAuth(password)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, err
	}
	log.Warn("no AUTHD_REDIS_URL: using an embedded Redis (in memory, on loopback with a random password); codes, rate limits and sessions are lost on restart — for one node and development only",
		slog.String("addr", m.Addr()))
	stop := tickClock(m, 100*time.Millisecond)
	c := redis.NewClient(&redis.Options{
		Addr:                  m.Addr(),
		Password:              password,
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

// sentinelURL reports whether u asks for Redis Sentinel (a master_name
// query parameter).
func sentinelURL(u string) bool {
	p, err := url.Parse(u)
	return err == nil && p.Query().Get("master_name") != ""
}
