package sigauth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/netip"
	"strconv"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/redis/go-redis/v9"
)

// Escalating lockout: failures are counted per client IP and
// per (client IP, address), never per address alone, or anyone could lock a
// victim out. lockoutThreshold failures lock a subject for the next step of
// lockoutSteps; lockoutQuiet without failures resets it, and so does a
// success, except that the IP's count is reset only when all its failures
// named the address that succeeded (see resetScript): a success with one's
// own key must not launder guesses at other addresses.
const (
	lockoutThreshold = 5
	lockoutQuiet     = 24 * time.Hour
)

var lockoutSteps = []time.Duration{30 * time.Second, 2 * time.Minute, 10 * time.Minute}

// failScript records one failed verification for each key (a hash with n:
// failures since the last lock, lvl: lock level, last: time of the last
// failure, until: end of the current lock, all unix milliseconds) and
// returns the end of the latest lock this failure started, or 0. Each hash
// also keeps who: the one address all its failures named, or "*" once they
// named different ones (or none); resetScript reads the IP's (KEYS[1]) to
// decide whether a success may reset it.
//
// KEYS: lockout hashes of one client IP (one hash slot: they share the
// {ip} tag), the IP's first. ARGV: now, quiet, threshold, address (or ""),
// then the lock durations (ms). Numbers are written with %d: Redis would
// print a Lua number with %.14g.
var failScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local quiet = tonumber(ARGV[2])
local threshold = tonumber(ARGV[3])
local addr = ARGV[4]
if addr == '' then addr = '*' end
local levels = #ARGV - 4
local longest = tonumber(ARGV[#ARGV])
local started = 0
for i, k in ipairs(KEYS) do
  local v = redis.call('HMGET', k, 'n', 'lvl', 'last', 'until', 'who')
  local n = tonumber(v[1]) or 0
  local lvl = tonumber(v[2]) or 0
  local last = tonumber(v[3]) or 0
  local untl = tonumber(v[4]) or 0
  local who = v[5]
  if now - last > quiet then
    n = 0
    lvl = 0
    who = false
  end
  n = n + 1
  if n >= threshold then
    if lvl < levels then lvl = lvl + 1 end
    untl = now + tonumber(ARGV[4 + lvl])
    n = 0
    if untl > started then started = untl end
  end
  if not who then who = addr elseif who ~= addr then who = '*' end
  redis.call('HSET', k, 'n', string.format('%d', n), 'lvl', string.format('%d', lvl),
    'last', string.format('%d', now), 'until', string.format('%d', untl), 'who', who)
  redis.call('PEXPIRE', k, string.format('%d', quiet + longest))
end
return started
`)

// resetScript forgets failures after a success by ARGV[1]: the
// (IP, address) hash KEYS[2] always, and the IP's hash KEYS[1] only if
// every failure it counts named that same address. A success with one's
// own key must not wipe the IP's count of failures at other addresses, or
// an attacker could interleave them and guess without end.
var resetScript = redis.NewScript(`
redis.call('DEL', KEYS[2])
if redis.call('HGET', KEYS[1], 'who') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
`)

// lockState is what a lockout check found.
type lockState struct {
	// retry > 0: locked out for that long.
	retry time.Duration
	// dirty: some failure is on record, so a success must reset it.
	dirty bool
}

// lockSubject is the client-IP part of the lockout keys. An IPv6 client
// is counted by its /64, the smallest block a subscriber is usually given:
// counting single IPv6 addresses would let one client rotate through 2^64
// of them.
func lockSubject(ip netip.Addr) string {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid():
		return "unknown"
	case ip.Is6():
		p, _ := ip.Prefix(64)
		return p.String()
	default:
		return ip.String()
	}
}

// lockKeys returns the lockout keys of a client: its IP, and (IP, address)
// when the request named a well-formed signer.
func (v *Verifier) lockKeys(ip netip.Addr, address string) []string {
	base := v.prefix + "lock:{" + lockSubject(ip) + "}"
	if address == "" {
		return []string{base}
	}
	return []string{base, base + ":" + address}
}

// withTimeout bounds one Redis round trip. Each round trip gets its own
// deadline: reading a slow client's body between two of them must not eat
// into the next one's.
func (v *Verifier) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, v.timeout)
}

// checkLock reads the lockout state of keys in one round trip.
func (v *Verifier) checkLock(ctx context.Context, keys []string, now time.Time) (lockState, error) {
	ctx, cancel := v.withTimeout(ctx)
	defer cancel()
	cmds := make([]*redis.SliceCmd, len(keys))
	_, err := v.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HMGet(ctx, k, "until", "last")
		}
		return nil
	})
	if err != nil {
		return lockState{}, err
	}
	var st lockState
	nowMS := now.UnixMilli()
	for _, c := range cmds {
		vals := c.Val()
		if len(vals) != 2 || (vals[0] == nil && vals[1] == nil) {
			continue
		}
		until, last := msField(vals[0]), msField(vals[1])
		if nowMS-last > lockoutQuiet.Milliseconds() {
			// 24 hours without failures: forgotten, even where Redis has
			// not expired the key yet.
			continue
		}
		st.dirty = true
		if d := time.Duration(until-nowMS) * time.Millisecond; d > st.retry {
			st.retry = d
		}
	}
	return st, nil
}

func msField(v any) int64 {
	s, _ := v.(string)
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// recordFailure counts one failed verification against keys and returns
// when the lock it started ends, or the zero Time when it started none.
func (v *Verifier) recordFailure(ctx context.Context, keys []string, address string, now time.Time) (time.Time, error) {
	ctx, cancel := v.withTimeout(ctx)
	defer cancel()
	args := make([]any, 0, 4+len(lockoutSteps))
	args = append(args, now.UnixMilli(), lockoutQuiet.Milliseconds(), lockoutThreshold, address)
	for _, d := range lockoutSteps {
		args = append(args, d.Milliseconds())
	}
	until, err := failScript.Run(ctx, v.rdb, keys, args...).Int64()
	if err != nil {
		return time.Time{}, err
	}
	if until == 0 {
		return time.Time{}, nil
	}
	return time.UnixMilli(until), nil
}

// resetLock forgets failures after a success by address (see
// resetScript). keys are the IP's and the (IP, address) pair's.
func (v *Verifier) resetLock(ctx context.Context, keys []string, address string) error {
	ctx, cancel := v.withTimeout(ctx)
	defer cancel()
	return resetScript.Run(ctx, v.rdb, keys, address).Err()
}

// replayKey is the replay-guard key of a signed message: SHA-256 of the
// signing key, as a curve point in compressed form, and the message. A
// signature has parts its signer never fixed and anyone can vary without
// the key: the header's compression flag (with the address to match, which
// makes a valid token for the key's other address), the recovery id with
// s → n − s (every ECDSA signature has a high-S twin, accepted like
// Bitcoin Core does), the DER encoding and the random key ID of a BRC-77
// envelope, and the token syntax around it. The point and the message are
// what the signature proves, and none of those variations changes either,
// so each signed request is accepted once however it is dressed. Keying on
// (r, low-s normalised s) with the point would also work, but would let a
// signer spend one message twice with two nonces; the message is what must
// act once.
func (v *Verifier) replayKey(signer authtoken.SignerKey, message string) string {
	h := sha256.New()
	h.Write(signer[:])
	io.WriteString(h, message)
	var sum [32]byte
	h.Sum(sum[:0])
	return v.prefix + "replay:" + hex.EncodeToString(sum[:])
}

// claimOnce records (signer, message) and reports whether it was new. The
// key lives until the token's timestamp leaves the window, plus a second:
// TTL = timestamp + window − now + 1 s.
func (v *Verifier) claimOnce(ctx context.Context, signer authtoken.SignerKey, message string, ts, now time.Time) (bool, error) {
	ctx, cancel := v.withTimeout(ctx)
	defer cancel()
	ttl := ts.Add(v.window).Sub(now) + time.Second
	if ttl < time.Second {
		ttl = time.Second
	}
	return v.rdb.SetNX(ctx, v.replayKey(signer, message), "1", ttl).Result()
}
