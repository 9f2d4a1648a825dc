// Package session keeps authd's sign-in sessions in Redis: what lets a
// person who signed in once be signed in to the next application without
// signing again (single sign-on).
//
// A sign-in creates a session. Its id is 256 random bits that only the
// browser holds, in a cookie; Redis holds the session under a hash of the
// id, its handle, so that nothing read from Redis, a log or an operator's
// listing can be turned back into a cookie. The handle is also the session
// id an ID Token carries (sid, OpenID Connect Front-Channel Logout 1.0
// §3) and what operators revoke a session by.
//
// A session ends when it is not used for the idle lifetime, when the
// absolute lifetime since its sign-in has passed, when it is revoked, or
// when its browser signs in again (a new sign-in always gets a new id, so
// an id planted in a browser before sign-in is never adopted). Deadlines
// are checked against the server's clock, the same on every instance; the
// Redis expiry of a key only collects what is already dead.
//
// Keys, all of one key each except the per-subject index, so every
// operation that must be atomic is one command or one script on one key
// and works on Redis Cluster unchanged:
//
//	authd:session:{<handle>}      hash: the session
//	authd:sessions:{<subject>}    sorted set: the subject's handles by absolute expiry
//
// The index is what listing and revoking by subject read. It is written
// after the session and cleaned lazily, so it may name a session that
// ended; it never misses a live one, since each live session was indexed
// when it was created. A subject keeps at most MaxPerSubject sessions:
// signing in once more ends the oldest.
package session

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/redis/go-redis/v9"
)

// MaxPerSubject bounds the sessions one subject has at once; a new one
// ends the oldest beyond it.
const MaxPerSubject = 50

// DefaultTimeout bounds each Redis operation when Config.Timeout is zero.
const DefaultTimeout = 3 * time.Second

// Bounds on what a session remembers of the clients it signed in to.
const (
	maxClients      = 64
	maxClientsBytes = 8 << 10
)

// idLen is the length of a session id: 32 random bytes, base64url.
const idLen = 43

// handleLen is the length of a handle: 16 bytes of SHA-256, base64url.
const handleLen = 22

// Session is a sign-in session as stored: everything but its id.
type Session struct {
	// Handle identifies the session without giving it away: the ID
	// Token's sid, and what operators list and revoke.
	Handle  string `json:"handle"`
	Subject string `json:"subject"`
	// AuthTime is when the person signed in (the session's creation).
	AuthTime time.Time `json:"auth_time"`
	// Methods are the authentication methods of the sign-in (RFC 8176
	// amr values), none for Google or GitHub.
	Methods  []string  `json:"amr"`
	LastSeen time.Time `json:"last_seen"`
	// IdleUntil is when the session ends unless it is used before;
	// Expires when it ends whatever its use.
	IdleUntil time.Time `json:"idle_until"`
	Expires   time.Time `json:"expires_at"`
	// Clients are the clients the session signed in to, first first (at
	// most 64).
	Clients []string `json:"clients"`
}

// alive reports whether the session is live at now.
func (s *Session) alive(now time.Time) bool {
	return now.Before(s.IdleUntil) && now.Before(s.Expires)
}

// Config configures a Store.
type Config struct {
	// Idle ends a session unused for this long; Max ends it this long
	// after its sign-in. Both must be positive for Create and Resume;
	// listing and ending sessions need neither.
	Idle, Max time.Duration
	// Now is the clock of the deadlines; nil means time.Now. Every
	// instance sharing the Redis must agree on it.
	Now func() time.Time
	// Timeout bounds each Redis operation; zero means DefaultTimeout.
	Timeout time.Duration
}

// Store keeps sessions in Redis. It holds no state of its own, so any
// number of instances on one Redis (or Redis Cluster) share the sessions.
type Store struct {
	rdb redis.UniversalClient
	cfg Config
}

// New returns a Store on rdb.
func New(rdb redis.UniversalClient, cfg Config) *Store {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Store{rdb: rdb, cfg: cfg}
}

// Idle and Max are the store's lifetimes.
func (s *Store) Idle() time.Duration { return s.cfg.Idle }

// Max is the absolute lifetime of a session.
func (s *Store) Max() time.Duration { return s.cfg.Max }

func sessionKey(handle string) string { return "authd:session:{" + handle + "}" }

func indexKey(subject string) string {
	h := sha256.Sum256([]byte(subject))
	return "authd:sessions:{" + hex.EncodeToString(h[:16]) + "}"
}

// Handle returns the handle of the session with id: base64url of the first
// 16 bytes of its SHA-256.
func Handle(id string) string {
	h := sha256.Sum256([]byte(id))
	return base64.RawURLEncoding.EncodeToString(h[:16])
}

// ValidID reports whether id has the shape of a session id, so that
// anything else a cookie holds costs no Redis call.
func ValidID(id string) bool { return len(id) == idLen && isBase64URL(id) }

// ValidHandle reports whether h has the shape of a handle.
func ValidHandle(h string) bool { return len(h) == handleLen && isBase64URL(h) }

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func unavailable(op string, err error) *errors.Error {
	return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// SignIn is what a new session records of the sign-in that creates it.
type SignIn struct {
	Subject  string
	AuthTime time.Time
	Methods  []string
	// Client is the client the sign-in was for.
	Client string
}

// indexAdd adds a session to its subject's index, drops the members whose
// absolute expiry has passed, ends the oldest beyond the cap (returning
// their handles for the caller to delete), and makes the index live at
// least as long as the new session.
//
// KEYS[1] the index; ARGV: [1] the session's expiry (unix ms), [2] its
// handle, [3] now (unix ms), [4] the session's lifetime in ms, [5] the cap.
var indexAdd = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
local over = n - tonumber(ARGV[5])
local evicted = {}
if over > 0 then
  evicted = redis.call('ZRANGE', KEYS[1], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return evicted
`)

// Create starts a session for in and returns its id, which only the
// browser may hold, and the session.
//
// Errors: temporarily_unavailable; server_error for a sign-in without a
// subject or time, or a Store without lifetimes.
func (s *Store) Create(ctx context.Context, in SignIn) (string, *Session, error) {
	const op = "session.Create"
	if in.Subject == "" || in.AuthTime.IsZero() || s.cfg.Idle <= 0 || s.cfg.Max <= 0 {
		return "", nil, errors.E(errors.ServerError, "").WithCause(op, errors.New("no subject, sign-in time or lifetimes"))
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, errors.E(errors.ServerError, "").WithCause(op, err)
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := time.UnixMilli(s.cfg.Now().UnixMilli()).UTC()
	sess := &Session{
		Handle:   Handle(id),
		Subject:  in.Subject,
		AuthTime: time.UnixMilli(in.AuthTime.UnixMilli()).UTC(),
		Methods:  in.Methods,
		LastSeen: now,
		Expires:  now.Add(s.cfg.Max),
	}
	sess.IdleUntil = now.Add(min(s.cfg.Idle, s.cfg.Max))
	if in.Client != "" {
		sess.Clients = []string{in.Client}
	}
	key := sessionKey(sess.Handle)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var evict *redis.Cmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key,
			"sub", sess.Subject,
			"auth", ms(sess.AuthTime),
			"amr", strings.Join(sess.Methods, " "),
			"seen", ms(now),
			"idle", ms(sess.IdleUntil),
			"exp", ms(sess.Expires),
			"clients", in.Client)
		p.PExpire(ctx, key, sess.IdleUntil.Sub(now))
		// Eval, not EvalSha: a pipeline cannot fall back on NOSCRIPT.
		evict = indexAdd.Eval(ctx, p, []string{indexKey(sess.Subject)},
			ms(sess.Expires), sess.Handle, ms(now), s.cfg.Max.Milliseconds(), MaxPerSubject)
		return nil
	})
	if err != nil {
		return "", nil, unavailable(op, err)
	}
	if old, _ := evict.StringSlice(); len(old) > 0 {
		keys := make([]string, len(old))
		for i, h := range old {
			keys[i] = sessionKey(h)
		}
		if err := s.del(ctx, keys); err != nil {
			return "", nil, unavailable(op, err)
		}
	}
	return id, sess, nil
}

// del deletes keys, one command each: on a Redis Cluster they live in
// different slots.
func (s *Store) del(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Del(ctx, k)
		}
		return nil
	})
	return err
}

// resume records a use of a live session and returns it; a session past
// a deadline is deleted instead.
//
// KEYS[1] the session; ARGV: [1] now (unix ms), [2] now + the idle
// lifetime (unix ms), [3] a client to record, or "", [4] the most
// clients kept, [5] the most bytes of client ids kept. Returns sub, auth,
// amr, seen, idle, exp and clients after the update, or false.
var resume = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'sub', 'auth', 'amr', 'idle', 'exp', 'clients')
if not f[1] then
  return false
end
local now = tonumber(ARGV[1])
if now >= tonumber(f[4]) or now >= tonumber(f[5]) then
  redis.call('DEL', KEYS[1])
  return false
end
local idle = ARGV[2]
if tonumber(idle) > tonumber(f[5]) then
  idle = f[5]
end
local clients = f[6] or ''
local c = ARGV[3]
if c ~= '' and string.find('\n' .. clients .. '\n', '\n' .. c .. '\n', 1, true) == nil then
  local _, n = string.gsub(clients, '\n', '')
  if clients == '' then
    clients = c
  elseif n + 1 < tonumber(ARGV[4]) and #clients + #c < tonumber(ARGV[5]) then
    clients = clients .. '\n' .. c
  end
end
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'idle', idle, 'clients', clients)
redis.call('PEXPIRE', KEYS[1], tonumber(idle) - now)
return {f[1], f[2], f[3] or '', ARGV[1], idle, f[5], clients}
`)

// Resume returns the live session with id, recording this use: its idle
// deadline moves to now + Idle (never past its absolute expiry), and
// client, when not "", joins its clients. It returns nil when there is no
// such session or it has ended; one past a deadline is deleted.
//
// Errors: temporarily_unavailable; server_error for a stored session
// that cannot be read.
func (s *Store) Resume(ctx context.Context, id, client string) (*Session, error) {
	const op = "session.Resume"
	if !ValidID(id) {
		return nil, nil
	}
	if s.cfg.Idle <= 0 {
		return nil, errors.E(errors.ServerError, "").WithCause(op, errors.New("no idle lifetime"))
	}
	handle := Handle(id)
	now := time.UnixMilli(s.cfg.Now().UnixMilli())
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	f, err := resume.Run(ctx, s.rdb, []string{sessionKey(handle)},
		ms(now), ms(now.Add(s.cfg.Idle)), client, maxClients, maxClientsBytes).StringSlice()
	if err == redis.Nil {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(op, err)
	}
	if len(f) != 7 {
		return nil, errors.E(errors.ServerError, "").WithCause(op, errors.Errorf("session script returned %d fields", len(f)))
	}
	sess, err := parse(handle, f[0], f[1], f[2], f[3], f[4], f[5], f[6])
	if err != nil {
		return nil, errors.E(errors.ServerError, "").WithCause(op, err)
	}
	return sess, nil
}

// fields are the hash fields of a session, in parse's order.
var fields = []string{"sub", "auth", "amr", "seen", "idle", "exp", "clients"}

func parse(handle, sub, auth, amr, seen, idle, exp, clients string) (*Session, error) {
	var t [4]int64
	for i, v := range []string{auth, seen, idle, exp} {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, errors.Errorf("session %s: bad time %q", handle, v)
		}
		t[i] = n
	}
	if sub == "" {
		return nil, errors.Errorf("session %s: no subject", handle)
	}
	s := &Session{
		Handle:    handle,
		Subject:   sub,
		AuthTime:  time.UnixMilli(t[0]).UTC(),
		Methods:   strings.Fields(amr),
		LastSeen:  time.UnixMilli(t[1]).UTC(),
		IdleUntil: time.UnixMilli(t[2]).UTC(),
		Expires:   time.UnixMilli(t[3]).UTC(),
		Clients:   []string{},
	}
	if s.Methods == nil {
		s.Methods = []string{}
	}
	if clients != "" {
		s.Clients = strings.Split(clients, "\n")
	}
	return s, nil
}

// Get returns the live session with handle without recording a use, or
// nil.
//
// Errors: temporarily_unavailable; server_error for a stored session
// that cannot be read.
func (s *Store) Get(ctx context.Context, handle string) (*Session, error) {
	const op = "session.Get"
	if !ValidHandle(handle) {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	v, err := s.rdb.HMGet(ctx, sessionKey(handle), fields...).Result()
	if err != nil {
		return nil, unavailable(op, err)
	}
	sess, err := fromHMGet(handle, v)
	if err != nil {
		return nil, errors.E(errors.ServerError, "").WithCause(op, err)
	}
	if sess == nil || !sess.alive(s.cfg.Now()) {
		return nil, nil
	}
	return sess, nil
}

// fromHMGet reads a session from HMGET's answer for fields; nil when the
// key does not exist.
func fromHMGet(handle string, v []any) (*Session, error) {
	if len(v) != len(fields) || v[0] == nil {
		return nil, nil
	}
	str := make([]string, len(v))
	for i, x := range v {
		str[i], _ = x.(string)
	}
	return parse(handle, str[0], str[1], str[2], str[3], str[4], str[5], str[6])
}

// End ends the session with handle and reports whether there was one.
//
// Errors: temporarily_unavailable.
func (s *Store) End(ctx context.Context, handle string) (bool, error) {
	const op = "session.End"
	if !ValidHandle(handle) {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	key := sessionKey(handle)
	sub, err := s.rdb.HGet(ctx, key, "sub").Result()
	if err == redis.Nil {
		return false, nil
	}
	if err != nil {
		return false, unavailable(op, err)
	}
	n, err := s.rdb.Del(ctx, key).Result()
	if err != nil {
		return false, unavailable(op, err)
	}
	if err := s.rdb.ZRem(ctx, indexKey(sub), handle).Err(); err != nil {
		return false, unavailable(op, err)
	}
	return n == 1, nil
}

// List returns the live sessions of subject, oldest sign-in first.
//
// Errors: temporarily_unavailable; server_error for a stored session
// that cannot be read.
func (s *Store) List(ctx context.Context, subject string) ([]*Session, error) {
	const op = "session.List"
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	handles, err := s.rdb.ZRange(ctx, indexKey(subject), 0, -1).Result()
	if err != nil {
		return nil, unavailable(op, err)
	}
	cmds := make([]*redis.SliceCmd, len(handles))
	if len(handles) > 0 {
		if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, h := range handles {
				cmds[i] = p.HMGet(ctx, sessionKey(h), fields...)
			}
			return nil
		}); err != nil {
			return nil, unavailable(op, err)
		}
	}
	now := s.cfg.Now()
	out := []*Session{}
	var gone []any
	for i, h := range handles {
		sess, err := fromHMGet(h, cmds[i].Val())
		if err != nil {
			return nil, errors.E(errors.ServerError, "").WithCause(op, err)
		}
		if sess == nil || sess.Subject != subject || !sess.alive(now) {
			gone = append(gone, h)
			continue
		}
		out = append(out, sess)
	}
	if len(gone) > 0 {
		// Lazy cleanup of members whose session ended.
		if err := s.rdb.ZRem(ctx, indexKey(subject), gone...).Err(); err != nil {
			return nil, unavailable(op, err)
		}
	}
	slices.SortStableFunc(out, func(a, b *Session) int { return a.AuthTime.Compare(b.AuthTime) })
	return out, nil
}

// EndSubject ends every session of subject and returns how many there
// were.
//
// Errors: temporarily_unavailable.
func (s *Store) EndSubject(ctx context.Context, subject string) (int, error) {
	const op = "session.EndSubject"
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	idx := indexKey(subject)
	handles, err := s.rdb.ZRange(ctx, idx, 0, -1).Result()
	if err != nil {
		return 0, unavailable(op, err)
	}
	if len(handles) == 0 {
		return 0, nil
	}
	dels := make([]*redis.IntCmd, len(handles))
	if _, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, h := range handles {
			dels[i] = p.Del(ctx, sessionKey(h))
		}
		return nil
	}); err != nil {
		return 0, unavailable(op, err)
	}
	members := make([]any, len(handles))
	n := 0
	for i, h := range handles {
		members[i] = h
		n += int(dels[i].Val())
	}
	// ZREM, not DEL: a session created meanwhile stays indexed.
	if err := s.rdb.ZRem(ctx, idx, members...).Err(); err != nil {
		return 0, unavailable(op, err)
	}
	return n, nil
}
