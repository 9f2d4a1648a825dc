package sigauth

import (
	"context"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// The replay guard and the lockout on real servers: miniredis hides Lua
// number formatting, real TTLs, concurrency and Redis Cluster slots.

// realVerifier returns a Verifier on rdb with keys unique to the test,
// deleted when it ends.
// Clients are told apart by r.RemoteAddr.
func realVerifier(t *testing.T, rdb redis.UniversalClient) *Verifier {
	t.Helper()
	prefix := testenv.Name("sigauth_test_") + ":"
	t.Cleanup(func() { deletePrefix(t, rdb, prefix) })
	return NewVerifier(Config{Redis: rdb, KeyPrefix: prefix, Logger: slog.New(slog.DiscardHandler)})
}

func deletePrefix(t *testing.T, rdb redis.UniversalClient, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	del := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		return iter.Err()
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, del)
	} else {
		err = del(ctx, rdb.(*redis.Client))
	}
	if err != nil {
		t.Logf("cleanup of %s*: %v", prefix, err)
	}
}

func TestReplayGuardRedis(t *testing.T) {
	rdb := testenv.Redis(t)
	testReplayReal(t, realVerifier(t, rdb), rdb)
}

func TestReplayGuardRedisCluster(t *testing.T) {
	rdb := testenv.RedisCluster(t)
	testReplayReal(t, realVerifier(t, rdb), rdb)
}

func testReplayReal(t *testing.T, v *Verifier, rdb redis.UniversalClient) {
	now := time.Now().Truncate(time.Millisecond) // as the token carries it
	tok := mustToken(t, testWIF, TokenOptions{RequestPath: "/backup", Body: []byte("b"), Timestamp: now})
	if _, err := v.Authenticate(request("PUT", "/backup", tok, []byte("b"))); err != nil {
		t.Fatal(err)
	}
	_, err := v.Authenticate(request("PUT", "/backup", tok, []byte("b")))
	wantCode(t, err, errors.InvalidTimestamp)

	// The key outlives the token's validity by a second.
	key := v.replayKey(signerOf(t, testWIF), authtoken.SignedMessage("/backup", authtoken.FormatTimestamp(now), authtoken.BodyHash([]byte("b"))))
	before := time.Now()
	ttl, err := rdb.PTTL(context.Background(), key).Result()
	after := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	// The key must outlive timestamp + window + 1 s; it may outlive it by
	// the SET's own latency, which the TTL computed before it cannot see.
	expiry := now.Add(DefaultWindow + time.Second)
	if hi, lo := expiry.Sub(before)+time.Second, expiry.Sub(after)-5*time.Millisecond; ttl > hi || ttl < lo {
		t.Errorf("TTL %v, want between %v and %v", ttl, lo, hi)
	}

	// A GET with the same kind of token repeats freely.
	get := mustToken(t, testWIF, TokenOptions{RequestPath: "/backup", Timestamp: now})
	for i := 0; i < 3; i++ {
		if _, err := v.Authenticate(request("GET", "/backup", get, nil)); err != nil {
			t.Fatalf("GET %d: %v", i, err)
		}
	}

	// Racing copies of one signed DELETE, from several clients (so that
	// the replays, which count as failures, lock no client out): exactly
	// one wins. A lost race shows only now and then: many trials, each a
	// new message from new clients.
	trials := 25
	if testing.Short() {
		trials = 5
	}
	for trial := range trials {
		path := "/backup/x" + strconv.Itoa(trial)
		del := mustToken(t, testWIF, TokenOptions{RequestPath: path, Timestamp: time.Now()})
		const racers = 8
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, replays := 0, 0
		start := make(chan struct{})
		for i := 0; i < racers; i++ {
			wg.Add(1)
			r := request("DELETE", path, del, nil)
			r.RemoteAddr = "10.0." + strconv.Itoa(trial) + "." + strconv.Itoa(100+i) + ":4321"
			go func() {
				defer wg.Done()
				<-start
				_, err := v.Authenticate(r)
				mu.Lock()
				defer mu.Unlock()
				switch errors.CodeOf(err) {
				case "":
					wins++
				case errors.InvalidTimestamp:
					replays++
				default:
					t.Errorf("racer: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins != 1 || replays != racers-1 {
			t.Fatalf("trial %d: %d wins, %d replays; want 1 and %d", trial, wins, replays, racers-1)
		}
	}
}

func TestLockoutRedis(t *testing.T) {
	testLockoutReal(t, testenv.Redis(t))
}

func TestLockoutRedisCluster(t *testing.T) {
	testLockoutReal(t, testenv.RedisCluster(t))
}

func testLockoutReal(t *testing.T, rdb redis.UniversalClient) {
	v := realVerifier(t, rdb)
	ip := netip.MustParseAddr("192.0.2.1") // httptest's client
	bad := mustToken(t, testWIF, TokenOptions{RequestPath: "/elsewhere", Timestamp: time.Now()})
	for i := 0; i < lockoutThreshold; i++ {
		_, err := v.Authenticate(request("GET", "/backup", bad, nil))
		wantCode(t, err, errors.InvalidSignature)
	}
	good := mustToken(t, testWIF, TokenOptions{RequestPath: "/backup", Timestamp: time.Now()})
	_, err := v.Authenticate(request("GET", "/backup", good, nil))
	ee := wantCode(t, err, errors.RateLimitExceeded)
	if ee.RetryAfter <= 28*time.Second || ee.RetryAfter > 30*time.Second {
		t.Errorf("RetryAfter %v, want just under 30s", ee.RetryAfter)
	}

	// The stored numbers are plain integers (no %.14g exponent form), and
	// the keys expire after the quiet period and the longest lock.
	ctx := context.Background()
	keys := v.lockKeys(ip, testAddress)
	for _, k := range keys {
		vals, err := rdb.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"n", "lvl", "last", "until"} {
			if _, err := strconv.ParseInt(vals[f], 10, 64); err != nil {
				t.Errorf("%s %s = %q is not an integer", k, f, vals[f])
			}
		}
		if vals["lvl"] != "1" || vals["n"] != "0" {
			t.Errorf("%s: %v", k, vals)
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := lockoutQuiet + lockoutSteps[len(lockoutSteps)-1]; ttl > want || ttl < want-5*time.Second {
			t.Errorf("%s TTL %v, want about %v", k, ttl, want)
		}
	}

	// VerifyLogin shares the lockout.
	_, err = v.VerifyLogin(request("POST", "/authorize/login", "", nil), testAddress, "m", "x")
	wantCode(t, err, errors.RateLimitExceeded)
}
