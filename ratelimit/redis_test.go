package ratelimit

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/authd-dev/authd/internal/testenv"
)

// TestWindowProperty hammers real Redis (one server, and the 3-master
// Cluster) from 64 goroutines over several clients, each with its own
// Limiter as separate authd instances would, and checks from the Redis
// timestamps of the admissions that no window of length W ever held more
// than N units, and that N was reached.
func TestWindowProperty(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		var clients []redis.UniversalClient
		for i := 0; i < 4; i++ {
			clients = append(clients, realRedis(t))
		}
		testWindowProperty(t, clients)
	})
	t.Run("cluster", func(t *testing.T) {
		var clients []redis.UniversalClient
		for i := 0; i < 4; i++ {
			clients = append(clients, realCluster(t))
		}
		testWindowProperty(t, clients)
	})
}

type admission struct {
	at   int64 // Redis time, microseconds
	cost int
}

func testWindowProperty(t *testing.T, clients []redis.UniversalClient) {
	const goroutines = 64
	run := 3 * time.Second
	if testing.Short() {
		run = time.Second
	}
	type subject struct {
		name     string
		policies []Policy
		maxCost  int
	}
	subjects := []subject{
		{testenv.Name("one-"), []Policy{{Name: "one", Limit: 25, Window: time.Second}}, 1},
		{testenv.Name("two-"), []Policy{{Name: "fast", Limit: 20, Window: time.Second}, {Name: "slow", Limit: 45, Window: 3 * time.Second}}, 2},
		{testenv.Name("three-"), []Policy{{Name: "x", Limit: 30, Window: 2 * time.Second}}, 3},
	}
	limiters := make([]*Limiter, len(clients))
	for i, c := range clients {
		// A small Pipelines value batches more: both paths get exercised.
		limiters[i] = newLimiter(t, c, Options{Timeout: 5 * time.Second, Pipelines: 1 + i})
	}

	var mu sync.Mutex
	admitted := make([][]admission, len(subjects))
	last := make([]int64, len(subjects))
	decisions, refusals := 0, 0
	var wg sync.WaitGroup
	stop := time.Now().Add(run)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			l := limiters[g%len(limiters)]
			for time.Now().Before(stop) {
				si := rng.IntN(len(subjects))
				s := subjects[si]
				cost := 1 + rng.IntN(s.maxCost)
				d, err := l.AllowN(context.Background(), l.NewID("g"+strconv.Itoa(g)), s.name, cost, s.policies...)
				if err != nil {
					t.Errorf("AllowN: %v", err)
					return
				}
				mu.Lock()
				decisions++
				if d.Allowed {
					admitted[si] = append(admitted[si], admission{d.Time.UnixMicro(), cost})
				} else {
					refusals++
				}
				last[si] = max(last[si], d.Time.UnixMicro())
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("%d decisions, %d refused", decisions, refusals)

	ctx := ctxT(t)
	for si, s := range subjects {
		for _, p := range s.policies {
			var units []int64
			for _, a := range admitted[si] {
				for u := 0; u < a.cost; u++ {
					units = append(units, a.at)
				}
			}
			slices.Sort(units)
			checkWindows(t, s.name+"/"+p.Name, units, p)

			// The log in Redis holds exactly the admissions of the last
			// window before the last decision, at their reported times,
			// unless it expired since: one window after its newest unit.
			v, err := readLog.Run(ctx, clients[0], []string{windowKey(hashSubject(s.name), p.Name)}).Slice()
			if err != nil {
				t.Fatal(err)
			}
			readAt := v[0].(int64)
			var want []int64
			for _, u := range units {
				if u > last[si]-p.Window.Microseconds() {
					want = append(want, u)
				}
			}
			if len(units) > 0 {
				expiry := units[len(units)-1] + p.Window.Microseconds()
				if d := readAt - expiry; d > -5000 && d < 5000 {
					continue // too close to the expiry to tell
				} else if d > 0 {
					want = nil
				}
			}
			got := make([]int64, 0, len(v)-1)
			for _, x := range v[1:] {
				got = append(got, x.(int64))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s/%s: Redis holds %d units %v\nwant the %d admitted in the last window %v", s.name, p.Name, len(got), got, len(want), want)
			}
		}
	}
}

// readLog returns the Redis time and the scores of a limiter key, read
// together on the node that holds it.
var readLog = redis.NewScript(`
local t = redis.call('TIME')
local r = {tonumber(t[1]) * 1000000 + tonumber(t[2])}
local zs = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 2, #zs, 2 do
  r[#r + 1] = tonumber(zs[i])
end
return r
`)

// checkWindows fails t if some window (t-W, t] of the sorted unit times
// holds more than p.Limit units, or if none holds p.Limit.
func checkWindows(t *testing.T, name string, units []int64, p Policy) {
	t.Helper()
	n, w := p.Limit, p.Window.Microseconds()
	full := false
	for i := range units {
		if i+n < len(units) && units[i+n]-units[i] < w {
			t.Errorf("%s: %d units within %v: from %d to %d", name, n+1, p.Window, units[i], units[i+n])
			return
		}
		if i+n-1 < len(units) && units[i+n-1]-units[i] < w {
			full = true
		}
	}
	if !full {
		t.Errorf("%s: no window held %d units (%d admitted): the test did not push hard enough", name, n, len(units))
	}
}

// TestMembersNeverFromLuaNumbers guards against the %.14g pitfall: on real
// Redis, tostring() of a microsecond timestamp in Lua loses its last two
// digits, so members built from it collide and ZADD moves a unit instead of
// adding one. miniredis formats numbers exactly and hides the bug. The
// test makes many decisions within microseconds of each other and checks
// that every admitted unit is stored under the member made in Go, at the
// exact time reported. It also shows that the backend under test has the
// pitfall (real Redis) or not (miniredis), so it is known to have teeth.
func TestMembersNeverFromLuaNumbers(t *testing.T) {
	backends := []struct {
		name  string
		rdb   func(t *testing.T) redis.UniversalClient
		lossy bool
	}{
		{"miniredis", func(t *testing.T) redis.UniversalClient {
			m := miniredis.RunT(t)
			c := redis.NewClient(&redis.Options{Addr: m.Addr(), ContextTimeoutEnabled: true})
			t.Cleanup(func() { c.Close() })
			return c
		}, false},
		{"redis", func(t *testing.T) redis.UniversalClient { return realRedis(t) }, true},
		{"cluster", func(t *testing.T) redis.UniversalClient { return realCluster(t) }, true},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			rdb := b.rdb(t)
			ctx := ctxT(t)
			subject := testenv.Name("fmt-")
			key := windowKey(hashSubject(subject), "fmt")

			// The pitfall itself: Lua's tostring of a microsecond time.
			naive := redis.NewScript(`local t = redis.call('TIME') local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) return {now, tostring(now)}`)
			v, err := naive.Run(ctx, rdb, []string{key}).Slice()
			if err != nil {
				t.Fatal(err)
			}
			exact := strconv.FormatInt(v[0].(int64), 10)
			if lossy := v[1].(string) != exact; lossy != b.lossy {
				t.Fatalf("tostring(%s) in Lua = %q; this backend was expected lossy=%v", exact, v[1], b.lossy)
			}

			// The limiter: 60 concurrent decisions of 2 units under a limit of
			// 80, batched into pipelines so that scripts run microseconds apart.
			l := newLimiter(t, rdb, Options{Pipelines: 1, Timeout: 5 * time.Second})
			p := Policy{Name: "fmt", Limit: 80, Window: time.Minute}
			type result struct {
				id string
				d  Decision
			}
			results := make(chan result, 60)
			var wg sync.WaitGroup
			for i := 0; i < 60; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := l.NewID("f" + strconv.Itoa(i))
					d, err := l.AllowN(ctx, id, subject, 2, p)
					if err != nil {
						t.Error(err)
					}
					results <- result{id, d}
				}()
			}
			wg.Wait()
			close(results)
			want := map[string]int64{}
			for r := range results {
				if r.d.Allowed {
					want[r.id] = r.d.Time.UnixMicro()
					want[r.id+":2"] = r.d.Time.UnixMicro()
				}
			}
			if len(want) != 80 {
				t.Fatalf("admitted %d units, want exactly 80", len(want))
			}
			zs, err := rdb.ZRangeWithScores(ctx, key, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			if len(zs) != 80 {
				t.Fatalf("Redis holds %d units, want 80", len(zs))
			}
			distinct := map[int64]bool{}
			for _, z := range zs {
				m := z.Member.(string)
				at, ok := want[m]
				if !ok || int64(z.Score) != at {
					t.Errorf("stored %q at %d; admitted units: %v", m, int64(z.Score), want)
				}
				distinct[at] = true
			}
			t.Logf("80 units at %d distinct microseconds", len(distinct))
		})
	}
}

// TestClusterKeysShareASlot checks that every policy key of one subject
// hashes to one Cluster slot, and that one call over all default policies
// works on the Cluster (a CROSSSLOT error would fail it).
func TestClusterKeysShareASlot(t *testing.T) {
	rdb := realCluster(t)
	ctx := ctxT(t)
	subject := testenv.Name("slot-")
	var policies []Policy
	slots := map[int64]bool{}
	ps := Defaults()
	for _, name := range ps.Names() {
		policies = append(policies, ps[name])
		slot, err := rdb.ClusterKeySlot(ctx, windowKey(hashSubject(subject), name)).Result()
		if err != nil {
			t.Fatal(err)
		}
		slots[slot] = true
	}
	if len(slots) != 1 {
		t.Fatalf("keys of one subject span slots %v", slots)
	}
	l := newLimiter(t, rdb, Options{})
	for i := 0; i < 6; i++ {
		d, err := allow(ctx, l, subject, policies...)
		if err != nil {
			t.Fatal(err)
		}
		// login (5/min) is the tightest.
		if want := i < 5; d.Allowed != want {
			t.Fatalf("decision %d allowed=%v, want %v (%+v)", i, d.Allowed, want, d)
		}
	}
}
