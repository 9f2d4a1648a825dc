package ratelimit

import (
	"context"
	"math/rand/v2"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/authd-dev/authd/errors"
)

// step is one decision of a deterministic scenario on miniredis.
type step struct {
	at   time.Duration // Redis time, after t0
	cost int
	// want
	allowed   bool
	remaining int
	retry     time.Duration
	never     bool
	reset     time.Duration // after t0
}

func runSteps(t *testing.T, p Policy, steps []step) *Limiter {
	t.Helper()
	l, m, _ := newMini(t, Options{})
	subject := "steps"
	for i, s := range steps {
		m.SetTime(t0.Add(s.at))
		d, err := l.AllowN(context.Background(), l.NewID(""), subject, s.cost, p)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		now := t0.Add(s.at)
		if d.Allowed != s.allowed || d.Remaining != s.remaining || d.RetryAfter != s.retry || d.Never != s.never ||
			!d.Reset.Equal(t0.Add(s.reset)) || !d.Time.Equal(now) || d.Limit != p.Limit || d.Policy != p {
			t.Errorf("step %d at t0+%v cost %d:\n got allowed=%v remaining=%d retry=%v never=%v reset=t0+%v time=t0+%v limit=%d\nwant allowed=%v remaining=%d retry=%v never=%v reset=t0+%v time=t0+%v limit=%d",
				i, s.at, s.cost, d.Allowed, d.Remaining, d.RetryAfter, d.Never, d.Reset.Sub(t0), d.Time.Sub(t0), d.Limit,
				s.allowed, s.remaining, s.retry, s.never, s.reset, s.at, p.Limit)
		}
	}
	return l
}

func TestWindowEdge(t *testing.T) {
	const W = time.Minute
	p := Policy{Name: "edge", Limit: 3, Window: W}
	runSteps(t, p, []step{
		{at: 0, cost: 1, allowed: true, remaining: 2, reset: W},
		{at: 0, cost: 1, allowed: true, remaining: 1, reset: W},
		{at: 0, cost: 1, allowed: true, remaining: 0, reset: W},
		{at: 0, cost: 1, allowed: false, remaining: 0, retry: W, reset: W},
		{at: 30 * time.Second, cost: 1, allowed: false, remaining: 0, retry: 30 * time.Second, reset: W},
		// One millisecond (and one microsecond) before the edge the three
		// units from t0 still count.
		{at: W - time.Millisecond, cost: 1, allowed: false, remaining: 0, retry: time.Millisecond, reset: W},
		{at: W - time.Microsecond, cost: 1, allowed: false, remaining: 0, retry: time.Microsecond, reset: W},
		// At t0+W they have left: the window is (t-W, t].
		{at: W, cost: 1, allowed: true, remaining: 2, reset: 2 * W},
		{at: W, cost: 2, allowed: true, remaining: 0, reset: 2 * W},
		{at: W, cost: 1, allowed: false, remaining: 0, retry: W, reset: 2 * W},
	})
}

func TestRetryAndResetStaggered(t *testing.T) {
	const W = time.Minute
	p := Policy{Name: "stagger", Limit: 3, Window: W}
	s := time.Second
	runSteps(t, p, []step{
		{at: 0, cost: 1, allowed: true, remaining: 2, reset: W},
		{at: 10 * s, cost: 1, allowed: true, remaining: 1, reset: W},
		{at: 20 * s, cost: 1, allowed: true, remaining: 0, reset: W},
		// Full: the oldest unit (t0) leaves at t0+60s.
		{at: 30 * s, cost: 1, allowed: false, remaining: 0, retry: 30 * s, reset: W},
		// Two units need the two oldest (t0, t0+10s) to leave: t0+70s.
		{at: 30 * s, cost: 2, allowed: false, remaining: 0, retry: 40 * s, reset: W},
		{at: 30 * s, cost: 3, allowed: false, remaining: 0, retry: 50 * s, reset: W},
		// Cost above the limit: never, no retry hint.
		{at: 30 * s, cost: 4, allowed: false, remaining: 0, never: true, reset: W},
		// At t0+60s the first unit has left; the oldest is now t0+10s.
		{at: 60 * s, cost: 1, allowed: true, remaining: 0, reset: 10*s + W},
		{at: 60*s + 500*time.Millisecond, cost: 1, allowed: false, remaining: 0, retry: 9*s + 500*time.Millisecond, reset: 10*s + W},
	})
}

func TestCost(t *testing.T) {
	const W = time.Minute
	p := Policy{Name: "cost", Limit: 5, Window: W}
	s := time.Second
	runSteps(t, p, []step{
		{at: 0, cost: 3, allowed: true, remaining: 2, reset: W},
		{at: 1 * s, cost: 3, allowed: false, remaining: 2, retry: 59 * s, reset: W},
		{at: 1 * s, cost: 2, allowed: true, remaining: 0, reset: W},
		// Units: t0 x3, t0+1s x2. Four must leave for cost 4: the fourth
		// oldest is at t0+1s.
		{at: 2 * s, cost: 4, allowed: false, remaining: 0, retry: 59 * s, reset: W},
		{at: 2 * s, cost: 6, allowed: false, remaining: 0, never: true, reset: W},
		{at: W, cost: 3, allowed: true, remaining: 0, reset: s + W},
	})
}

func TestCostMembers(t *testing.T) {
	l, _, rdb := newMini(t, Options{})
	p := Policy{Name: "members", Limit: 10, Window: time.Minute}
	ctx := ctxT(t)
	id := l.NewID("req-1")
	d, err := l.AllowN(ctx, id, "who", 4, p)
	if err != nil || !d.Allowed || d.Remaining != 6 {
		t.Fatalf("AllowN = %+v, %v", d, err)
	}
	zs, err := rdb.ZRangeWithScores(ctx, windowKey(hashSubject("who"), p.Name), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{id: true, id + ":2": true, id + ":3": true, id + ":4": true}
	if len(zs) != 4 {
		t.Fatalf("stored %d members, want 4: %v", len(zs), zs)
	}
	for _, z := range zs {
		if !want[z.Member.(string)] || int64(z.Score) != t0.UnixMicro() {
			t.Errorf("member %q score %v; want one of %v at %d", z.Member, z.Score, want, t0.UnixMicro())
		}
	}
	if !regexp.MustCompile(`^req-1/[A-Za-z0-9_-]{12}\.[0-9a-z]+$`).MatchString(id) {
		t.Errorf("NewID(req-1) = %q", id)
	}
}

func TestCostAboveLimitStoresNothing(t *testing.T) {
	l, _, rdb := newMini(t, Options{})
	ctx := ctxT(t)
	p := Policy{Name: "big", Limit: 3, Window: time.Minute}
	d, err := l.AllowN(ctx, l.NewID(""), "s", 4, p)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || !d.Never || d.RetryAfter != 0 || d.Remaining != 3 || !d.Reset.Equal(t0) {
		t.Errorf("cost 4 of 3 = %+v; want refused, Never, no retry, remaining 3, reset now", d)
	}
	if n := rdb.Exists(ctx, windowKey(hashSubject("s"), p.Name)).Val(); n != 0 {
		t.Errorf("a refused decision created its key")
	}
}

func TestKeyExpiry(t *testing.T) {
	l, m, rdb := newMini(t, Options{})
	ctx := ctxT(t)
	p := Policy{Name: "ttl", Limit: 2, Window: 90 * time.Second}
	key := windowKey(hashSubject("s"), p.Name)
	if _, err := allow(ctx, l, "s", p); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl != p.Window {
		t.Fatalf("PTTL after first unit = %v, want %v", ttl, p.Window)
	}
	// A later unit pushes the expiry to one window after it.
	m.FastForward(30 * time.Second)
	m.SetTime(t0.Add(30 * time.Second))
	if _, err := allow(ctx, l, "s", p); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl != p.Window {
		t.Fatalf("PTTL after second unit = %v, want %v", ttl, p.Window)
	}
	// A refusal does not extend it.
	m.FastForward(10 * time.Second)
	m.SetTime(t0.Add(40 * time.Second))
	if d, err := allow(ctx, l, "s", p); err != nil || d.Allowed {
		t.Fatalf("third unit = %+v, %v; want refused", d, err)
	}
	if ttl := rdb.PTTL(ctx, key).Val(); ttl != p.Window-10*time.Second {
		t.Fatalf("PTTL after refusal = %v, want %v", ttl, p.Window-10*time.Second)
	}
	m.FastForward(p.Window - 10*time.Second - time.Millisecond)
	if !m.Exists(key) {
		t.Fatal("key expired before one window after its newest unit")
	}
	m.FastForward(time.Millisecond)
	if m.Exists(key) {
		t.Fatal("key outlived one window after its newest unit")
	}
	m.SetTime(t0.Add(120 * time.Second))
	if d, err := allow(ctx, l, "s", p); err != nil || !d.Allowed || d.Remaining != 1 {
		t.Fatalf("after expiry = %+v, %v; want a fresh window", d, err)
	}
}

func TestPoliciesAllOrNone(t *testing.T) {
	l, m, rdb := newMini(t, Options{})
	ctx := ctxT(t)
	short := Policy{Name: "short", Limit: 2, Window: 10 * time.Second}
	long := Policy{Name: "long", Limit: 3, Window: time.Minute}
	card := func(p Policy) int64 { return rdb.ZCard(ctx, windowKey(hashSubject("s"), p.Name)).Val() }
	allow := func(at time.Duration) Decision {
		t.Helper()
		m.SetTime(t0.Add(at))
		d, err := l.AllowN(ctx, l.NewID(""), "s", 1, short, long)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for i := 0; i < 2; i++ {
		if d := allow(0); !d.Allowed {
			t.Fatalf("unit %d refused: %+v", i, d)
		}
	}
	// short is full, long is not: nothing may be stored under long.
	d := allow(time.Second)
	if d.Allowed || d.Policy != short || d.RetryAfter != 9*time.Second {
		t.Fatalf("third unit = %+v; want refused by short, retry 9s", d)
	}
	if !d.Policies[1].Allowed || d.Policies[1].Remaining != 1 || d.Policies[0].Allowed {
		t.Errorf("statuses = %+v", d.Policies)
	}
	if card(short) != 2 || card(long) != 2 {
		t.Fatalf("after a refusal: short holds %d, long %d; want 2 and 2", card(short), card(long))
	}
	// Once short's window has moved, long is the one that is full after
	// one more unit.
	if d := allow(10 * time.Second); !d.Allowed || d.Policy != long || d.Remaining != 0 {
		t.Fatalf("unit at 10s = %+v; want admitted, binding long with 0 left", d)
	}
	d = allow(20 * time.Second)
	if d.Allowed || d.Policy != long || d.RetryAfter != 40*time.Second {
		t.Fatalf("unit at 20s = %+v; want refused by long, retry 40s", d)
	}
	// The unit short admitted at 10s left its window at 20s exactly.
	if card(short) != 0 || card(long) != 3 {
		t.Fatalf("short holds %d, long %d; want 0 and 3", card(short), card(long))
	}
}

func TestReplayCountsOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		policies []Policy
		cost     int
	}{
		{"one policy", []Policy{{Name: "a", Limit: 2, Window: time.Minute}}, 1},
		{"cost 2", []Policy{{Name: "a", Limit: 2, Window: time.Minute}}, 2},
		{"two policies", []Policy{{Name: "a", Limit: 2, Window: time.Minute}, {Name: "b", Limit: 5, Window: time.Hour}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, m, rdb := newMini(t, Options{})
			ctx := ctxT(t)
			id := l.NewID("")
			first, err := l.AllowN(ctx, id, "s", tc.cost, tc.policies...)
			if err != nil || !first.Allowed {
				t.Fatalf("first = %+v, %v", first, err)
			}
			// The same id again, later, as go-redis would re-send it.
			m.SetTime(t0.Add(time.Second))
			for i := 0; i < 3; i++ {
				again, err := l.AllowN(ctx, id, "s", tc.cost, tc.policies...)
				if err != nil {
					t.Fatal(err)
				}
				if !again.Allowed || !again.Time.Equal(first.Time) || again.Remaining != first.Remaining {
					t.Errorf("replay %d = %+v; want admitted at %v with %d remaining", i, again, first.Time, first.Remaining)
				}
			}
			for _, p := range tc.policies {
				if n := rdb.ZCard(ctx, windowKey(hashSubject("s"), p.Name)).Val(); n != int64(tc.cost) {
					t.Errorf("%s holds %d units, want %d", p.Name, n, tc.cost)
				}
			}
		})
	}
}

func TestAllowNArguments(t *testing.T) {
	l, _, _ := newMini(t, Options{})
	ok := Policy{Name: "ok", Limit: 1, Window: time.Second}
	for _, tc := range []struct {
		name     string
		id       string
		cost     int
		policies []Policy
	}{
		{"no id", "", 1, []Policy{ok}},
		{"id with a colon", "a:2", 1, []Policy{ok}},
		{"cost 0", "x", 0, []Policy{ok}},
		{"negative cost", "x", -1, []Policy{ok}},
		{"no policy", "x", 1, nil},
		{"zero policy", "x", 1, []Policy{{}}},
		{"bad name", "x", 1, []Policy{{Name: "a}b", Limit: 1, Window: time.Second}}},
		{"sub-second window", "x", 1, []Policy{{Name: "a", Limit: 1, Window: 1500 * time.Millisecond}}},
		{"duplicate", "x", 1, []Policy{ok, ok}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.AllowN(context.Background(), tc.id, "s", tc.cost, tc.policies...)
			if errors.CodeOf(err) != errors.ServerError {
				t.Fatalf("err = %v, want server_error", err)
			}
		})
	}
}

func TestNewNeedsContextTimeouts(t *testing.T) {
	if _, err := New(nil, Options{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer c.Close()
	if _, err := New(c, Options{}); err == nil {
		t.Error("New accepted a client without ContextTimeoutEnabled")
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	defer cc.Close()
	if _, err := New(cc, Options{}); err == nil {
		t.Error("New accepted a cluster client without ContextTimeoutEnabled")
	}
	ok := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true})
	defer ok.Close()
	if _, err := New(ok, Options{}); err != nil {
		t.Errorf("New(cluster client with ContextTimeoutEnabled) = %v", err)
	}
}

func TestWindowKey(t *testing.T) {
	k := windowKey(hashSubject("ip:192.0.2.1"), "token")
	if !regexp.MustCompile(`^rl:\{[0-9a-f]{24}\}:token$`).MatchString(k) {
		t.Errorf("windowKey = %q", k)
	}
	if windowKey(hashSubject("ip:192.0.2.2"), "token") == k || windowKey(hashSubject("ip:192.0.2.1"), "login")[:29] != k[:29] {
		t.Error("keys of different subjects collide, or keys of one subject differ in their hash tag")
	}
}

// TestModel checks every value of every decision against a plain Go model
// of the sliding-window log, over random sequences of costs, policy sets
// and clock steps. It covers both paths of the script (one policy and one
// unit; anything else).
func TestModel(t *testing.T) {
	a := Policy{Name: "a", Limit: 3, Window: 10 * time.Second}
	b := Policy{Name: "b", Limit: 5, Window: 30 * time.Second}
	sets := [][]Policy{{a}, {b}, {a, b}, {b, a}}
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run("seed"+strconv.FormatUint(seed, 10), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0))
			l, m, _ := newMini(t, Options{})
			model := map[string][]int64{}
			now := t0.UnixMicro()
			for i := 0; i < 300; i++ {
				now += rng.Int64N(4_000_000)
				if rng.IntN(4) == 0 {
					now += rng.Int64N(20) // exact microseconds near edges
				}
				m.SetTime(time.UnixMicro(now))
				ps := sets[rng.IntN(len(sets))]
				cost := 1
				if rng.IntN(3) == 0 {
					cost = 1 + rng.IntN(6)
				}
				d, err := l.AllowN(context.Background(), l.NewID(""), "m", cost, ps...)
				if err != nil {
					t.Fatal(err)
				}
				want := modelDecide(model, now, cost, ps)
				if d.Allowed != want.Allowed || d.Never != want.Never || d.RetryAfter != want.RetryAfter ||
					d.Remaining != want.Remaining || !d.Reset.Equal(want.Reset) || d.Policy != want.Policy ||
					d.Time.UnixMicro() != now {
					t.Fatalf("decision %d (cost %d, %v):\n got %+v\nwant %+v", i, cost, ps, d, want)
				}
				for j := range ps {
					g, w := d.Policies[j], want.Policies[j]
					if g.Allowed != w.Allowed || g.Remaining != w.Remaining || g.RetryAfter != w.RetryAfter || g.Never != w.Never || !g.Reset.Equal(w.Reset) {
						t.Fatalf("decision %d policy %s:\n got %+v\nwant %+v", i, ps[j].Name, g, w)
					}
				}
			}
		})
	}
}

// modelDecide is the sliding-window log in Go: the reference the script
// must agree with.
func modelDecide(model map[string][]int64, now int64, cost int, ps []Policy) Decision {
	d := Decision{Allowed: true, Time: time.UnixMicro(now)}
	counts := make([]int, len(ps))
	for i, p := range ps {
		w := p.Window.Microseconds()
		log := model[p.Name]
		for len(log) > 0 && log[0] <= now-w {
			log = log[1:]
		}
		model[p.Name] = log
		counts[i] = len(log)
		if len(log)+cost > p.Limit {
			d.Allowed = false
		}
	}
	for i, p := range ps {
		w := p.Window.Microseconds()
		log := model[p.Name]
		s := Status{Policy: p, Allowed: true}
		if !d.Allowed && counts[i]+cost > p.Limit {
			s.Allowed = false
			if cost > p.Limit {
				s.Never = true
			} else {
				s.RetryAfter = time.Duration(log[counts[i]+cost-p.Limit-1]+w-now) * time.Microsecond
			}
		}
		if d.Allowed {
			for u := 0; u < cost; u++ {
				log = append(log, now)
			}
			model[p.Name] = log
		}
		s.Remaining = max(0, p.Limit-len(log))
		s.Reset = time.UnixMicro(now)
		if len(log) > 0 {
			s.Reset = time.UnixMicro(log[0] + w)
		}
		d.Policies = append(d.Policies, s)
	}
	binding := 0
	for i := range d.Policies {
		if bindsBefore(d.Policies[i], d.Policies[binding], d.Allowed) {
			binding = i
		}
	}
	b := d.Policies[binding]
	d.Policy, d.Limit, d.Remaining, d.Reset = b.Policy, b.Policy.Limit, b.Remaining, b.Reset
	if !d.Allowed {
		for _, s := range d.Policies {
			d.Never = d.Never || s.Never
		}
		if !d.Never {
			d.RetryAfter = b.RetryAfter
		}
	}
	return d
}
