// Package ratelimit is authd's exact sliding-window rate limiter on Redis,
// its policies, the client-IP resolver behind it and the HTTP middleware
// that limits routes and writes the rate-limit headers.
//
// Each decision is one Lua script run (EVALSHA, falling back to EVAL after
// a SCRIPT FLUSH or a failover) over a sliding-window log: one ZSET per
// (policy, subject), keyed rl:{<hashed subject>}:<policy>, whose members are
// the admitted units scored by the Redis TIME at which they were admitted.
// Only admitted units are stored, and each key expires one window after its
// newest unit. Because the script is atomic and reads the time from Redis,
// never more than Limit units are admitted in any window of length Window,
// whatever the concurrency and whichever authd instance asks. All keys of
// one subject share a hash tag, so one call can decide several policies of
// that subject together on Redis Cluster.
//
// Time comes from the Redis server that holds the subject's keys; on a
// Cluster, a failover to a replica whose clock differs shifts that
// subject's windows by the difference.
//
// The server builds one Limiter (New), reads its policies with
// ParsePolicies (AUTHD_RATE_LIMITS) and its trusted proxies with
// ParseProxies (AUTHD_TRUSTED_PROXIES), and limits each route with one
// line: Limiter.Middleware. Decisions fail closed: when Redis is down or
// slow, limited routes answer 503 temporarily_unavailable.
package ratelimit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/redis/go-redis/v9"
)

//go:embed allow.lua
var allowLua string

var allowScript = redis.NewScript(allowLua)

// DefaultTimeout bounds one decision when Options.Timeout is zero.
const DefaultTimeout = 300 * time.Millisecond

// DefaultPipelines is Options.Pipelines when zero.
const DefaultPipelines = 4

// Options configures a Limiter.
type Options struct {
	// Timeout bounds each decision, including go-redis's own retries;
	// zero means DefaultTimeout. A decision that runs out of time fails
	// with temporarily_unavailable, never silently passes.
	Timeout time.Duration
	// Pipelines is how many round trips of decisions may be in flight at
	// once; zero means DefaultPipelines. Decisions that arrive while all
	// are busy wait and go together in the next pipeline (each is still
	// its own atomic script run). More pipelines lower latency under load
	// at the cost of more connections and smaller batches.
	Pipelines int
	// Proxies are the trusted reverse proxies the middleware uses to find
	// the client IP (see Proxies.ClientIP). The zero value trusts none.
	Proxies Proxies
	// Count, when set, is called for every decision once under each of
	// its policies or quotas, with the name and the decision's result:
	// "allowed", "limited", or "error" when Redis failed or did not answer
	// in time (the request was refused with temporarily_unavailable). A
	// decision the caller gave up on is not counted. The server counts
	// decisions through it (authd_ratelimit_decisions_total).
	Count func(name, result string)
}

// Limiter decides whether a subject may spend units under one or more
// policies. It is safe for concurrent use.
type Limiter struct {
	batch   batcher
	proxies Proxies
	count   func(name, result string) // Options.Count; may be nil
	prefix  string                    // random per Limiter: makes decision ids unique
	seq     atomic.Uint64             // decision counter
}

// New returns a Limiter deciding on rdb (a single server, Sentinel or
// Cluster client). The client must have ContextTimeoutEnabled set: the
// Limiter bounds each decision with a context deadline, and a go-redis
// client without that option ignores deadlines on its sockets and could
// hold a request for its ReadTimeout times its retries. New returns a plain
// error when rdb is nil or when it can see that option is off; it does not
// contact Redis.
func New(rdb redis.UniversalClient, opts Options) (*Limiter, error) {
	if rdb == nil {
		return nil, errors.New("ratelimit: nil Redis client")
	}
	if !contextTimeouts(rdb) {
		return nil, errors.New("ratelimit: the Redis client must be created with ContextTimeoutEnabled: true, or decisions cannot time out")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	var b [9]byte
	rand.Read(b[:])
	if opts.Pipelines <= 0 {
		opts.Pipelines = DefaultPipelines
	}
	return &Limiter{
		batch:   batcher{rdb: rdb, timeout: opts.Timeout, max: opts.Pipelines},
		proxies: opts.Proxies,
		count:   opts.Count,
		prefix:  base64.RawURLEncoding.EncodeToString(b[:]),
	}, nil
}

// contextTimeouts reports whether rdb honours context deadlines, as far as
// its type tells.
func contextTimeouts(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case interface{ Options() *redis.Options }:
		return c.Options().ContextTimeoutEnabled
	case interface{ Options() *redis.ClusterOptions }:
		return c.Options().ContextTimeoutEnabled
	case interface{ Options() *redis.RingOptions }:
		return c.Options().ContextTimeoutEnabled
	}
	return true
}

// Decision is the outcome of one call. Every time in it is Redis time.
type Decision struct {
	// Allowed is true when the units were admitted under every policy.
	Allowed bool
	// Policy is the binding policy: when refused, the refusing policy
	// with the longest wait; when allowed, the one with the fewest units
	// remaining. Limit, Remaining, Reset and RetryAfter are its values.
	Policy Policy
	// Limit is Policy.Limit.
	Limit int
	// Remaining is what the subject may still spend under Policy, counted
	// after this decision.
	Remaining int
	// RetryAfter is how long to wait before the same cost can be admitted
	// (assuming nothing else is admitted meanwhile). It is zero when
	// Allowed, and zero too when refused because the cost exceeds a limit,
	// which no wait can fix (see Never).
	RetryAfter time.Duration
	// Never is true when the cost exceeds a policy's limit: no wait helps.
	Never bool
	// Reset is when the oldest unit counted under Policy leaves the window,
	// that is when Remaining next grows (Time itself if nothing is counted).
	Reset time.Time
	// Time is the Redis time of the decision; for a replayed decision (see
	// AllowN) the time the units were admitted.
	Time time.Time
	// Policies has one entry per policy of the call, in call order.
	Policies []Status
}

// Status is the state of one policy after a decision.
type Status struct {
	Policy Policy
	// Allowed is false when this policy refused the cost.
	Allowed bool
	// Remaining is what the subject may still spend under this policy.
	Remaining int
	// RetryAfter is how long until this policy could admit the cost; zero
	// when it admits now or never can (Never).
	RetryAfter time.Duration
	// Never is true when the cost exceeds this policy's limit.
	Never bool
	// Reset is when the oldest counted unit leaves this policy's window.
	Reset time.Time
}

// NewID returns a decision id unique to this Limiter's process: prefix
// (for instance a request id, so that the stored units can be traced to
// it) followed by a random per-Limiter part and a counter. Prefix must not
// be the whole id when it can come from a client: see AllowN.
func (l *Limiter) NewID(prefix string) string {
	n := l.seq.Add(1)
	b := make([]byte, 0, len(prefix)+len(l.prefix)+16)
	if prefix != "" {
		b = append(b, prefix...)
		b = append(b, '/')
	}
	b = append(b, l.prefix...)
	b = append(b, '.')
	b = strconv.AppendUint(b, n, 36)
	return string(b)
}

// AllowN asks to spend cost units of subject under every policy at once:
// the units are admitted under all of them or under none. Subject is any
// string naming who is limited (the middleware uses IPSubject or
// "sub:<identity>"); it is hashed into the keys, so it never appears in
// Redis. The policies must have distinct names.
//
// id makes the decision idempotent: go-redis re-sends a script after a
// network error, and a decision whose units are already stored under id is
// answered as admitted without storing them again. Ids must therefore be
// unique per decision and never chosen by a client (a client that could
// repeat an id would be admitted for free): use NewID. The stored members
// are id (first unit) and id + ":" + the unit number (further units), made
// here as strings; they never pass through a Lua number. An id must not
// hold a colon, so that no id names another id's further units.
//
// A cost above a policy's limit is refused with Never set and no
// RetryAfter. AllowN returns temporarily_unavailable (with Retry-After)
// when Redis fails, is unreachable or does not answer within the Limiter's
// timeout, and server_error for a cost below 1, no policy, an invalid
// policy, duplicate policy names, or an id that is empty or holds a colon.
// Every call with valid arguments is counted through Options.Count.
func (l *Limiter) AllowN(ctx context.Context, id, subject string, cost int, policies ...Policy) (Decision, error) {
	const op = "ratelimit.AllowN"
	if err := checkArgs(id, cost, policies); err != nil {
		return Decision{}, errors.E(errors.ServerError, "").WithCause(op, err)
	}
	// Members for every unit, unless some limit is below the cost: then
	// nothing will be stored, and the first member is enough to recognise
	// a replay.
	members := cost
	for _, p := range policies {
		if cost > p.Limit {
			members = 1
		}
	}
	keys := make([]string, len(policies))
	tag := hashSubject(subject)
	args := make([]any, 0, 1+2*len(policies)+members)
	args = append(args, cost)
	for i, p := range policies {
		keys[i] = windowKey(tag, p.Name)
		args = append(args, p.Limit, p.Window.Microseconds())
	}
	args = append(args, id)
	for u := 2; u <= members; u++ {
		args = append(args, id+":"+strconv.Itoa(u))
	}

	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, l.batch.timeout)
	defer cancel()
	c := &call{keys: keys, args: args}
	l.batch.run(ctx, c)
	var res []int64
	var err error
	if isDone(c) {
		res, err = c.cmd.Int64Slice()
	} else {
		err = ctx.Err()
	}
	if err == nil && len(res) != 2+3*len(policies) {
		err = errors.Errorf("script reply has %d values, want %d", len(res), 2+3*len(policies))
	}
	if err != nil {
		if parent.Err() == nil {
			// Not counted when the caller gave up (a client that went
			// away): that says nothing about Redis.
			l.countPolicies(policies, resultError)
		}
		return Decision{}, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}

	d := Decision{Allowed: res[0] == 1, Time: usTime(res[1]), Policies: make([]Status, len(policies))}
	binding := -1
	for i, p := range policies {
		remaining, retry, reset := res[2+3*i], res[3+3*i], res[4+3*i]
		s := Status{Policy: p, Allowed: true, Remaining: int(remaining), Reset: usTime(reset)}
		if !d.Allowed && int64(cost) > remaining {
			s.Allowed = false
			if retry < 0 {
				s.Never = true
			} else {
				s.RetryAfter = time.Duration(retry) * time.Microsecond
			}
		}
		d.Policies[i] = s
		if binding < 0 || bindsBefore(s, d.Policies[binding], d.Allowed) {
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
	if d.Allowed {
		l.countPolicies(policies, resultAllowed)
	} else {
		l.countPolicies(policies, resultLimited)
	}
	return d, nil
}

// bindsBefore reports whether status a should be the decision's binding
// policy rather than b.
func bindsBefore(a, b Status, allowed bool) bool {
	if allowed {
		return a.Remaining < b.Remaining
	}
	if a.Allowed != b.Allowed {
		return !a.Allowed
	}
	if a.Never != b.Never {
		return a.Never
	}
	return a.RetryAfter > b.RetryAfter
}

func checkArgs(id string, cost int, policies []Policy) error {
	if id == "" || strings.Contains(id, ":") {
		return errors.Errorf("decision id %q is empty or holds a colon", id)
	}
	if cost < 1 {
		return errors.Errorf("cost %d below 1", cost)
	}
	if len(policies) == 0 {
		return errors.New("no policy")
	}
	for i, p := range policies {
		if err := p.Validate(); err != nil {
			return err
		}
		for _, q := range policies[:i] {
			if q.Name == p.Name {
				return errors.Errorf("policy %q given twice", p.Name)
			}
		}
	}
	return nil
}

// hashSubject returns the hash tag of subject's keys: 96 bits of SHA-256,
// in hex. It keeps keys short and free of braces, and keeps addresses and
// identities out of Redis's key space (it is not a secret: IPv4 addresses
// can be enumerated).
func hashSubject(subject string) string {
	h := sha256.Sum256([]byte(subject))
	return hex.EncodeToString(h[:12])
}

// windowKey returns the Redis key of a policy's sliding-window log,
// rl:{<hashed subject>}:<policy>, given the subject's hash tag.
func windowKey(tag, policy string) string { return "rl:{" + tag + "}:" + policy }

func usTime(us int64) time.Time { return time.UnixMicro(us) }
