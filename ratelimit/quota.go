package ratelimit

import (
	"bytes"
	"context"
	_ "embed"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/redis/go-redis/v9"
)

//go:embed quota.lua
var quotaLua string

var quotaScript = redis.NewScript(quotaLua)

// MaxQuota bounds a quota's limit: counts stay exact integers in Redis's
// Lua numbers.
const MaxQuota = 1 << 50

// markerTTL is how long a decision's units may be refunded after it.
const markerTTL = 10 * time.Minute

// Units of a quota, as the RateLimit-Policy qu parameter names them
// (draft-ietf-httpapi-ratelimit-headers).
const (
	UnitRequests     = "requests"
	UnitContentBytes = "content-bytes"
)

// Quota is a budget of units per fixed window: at most Limit units are
// spent in each window [k·Window, (k+1)·Window) of Redis time, counted
// from the Unix epoch, so a 24-hour quota resets at 00:00 UTC. Unlike a
// Policy, whose sliding-window log stores one entry per unit, a quota is
// one counter, so its units can be bytes; the price is that a client may
// spend the whole budget just before a window ends and again just after.
type Quota struct {
	// Name identifies the quota, as a Policy name does: 1-32 characters of
	// [a-z0-9_-]. It is part of the Redis key and of the headers.
	Name string
	// Limit is the number of units a subject may spend per window,
	// 1..MaxQuota.
	Limit int64
	// Window is the window length, a whole number of seconds in
	// MinWindow..MaxWindow.
	Window time.Duration
	// Unit is what is counted: UnitRequests (the default) or
	// UnitContentBytes. It only names the unit in RateLimit-Policy; Cost
	// decides what a request spends.
	Unit string
	// Cost returns what a request spends under the quota (QuotaMiddleware,
	// SpendRequest); nil means 1. An error stops the request: it is
	// returned as is, for httperr.Write.
	Cost func(r *http.Request) (int64, error)
}

// Validate reports whether q can be used. It returns nil or a plain error
// naming what is wrong.
func (q Quota) Validate() error {
	if !validName(q.Name) {
		return errors.Errorf("quota name %q: want 1-32 characters of [a-z0-9_-]", q.Name)
	}
	if q.Limit < 1 || q.Limit > MaxQuota {
		return errors.Errorf("quota %s: limit %d outside 1..%d", q.Name, q.Limit, int64(MaxQuota))
	}
	if q.Window < MinWindow || q.Window > MaxWindow || q.Window%time.Second != 0 {
		return errors.Errorf("quota %s: window %s is not a whole number of seconds in %s..%s", q.Name, q.Window, MinWindow, MaxWindow)
	}
	switch q.Unit {
	case "", UnitRequests, UnitContentBytes:
	default:
		return errors.Errorf("quota %s: unit %q: want %s or %s", q.Name, q.Unit, UnitRequests, UnitContentBytes)
	}
	return nil
}

// QuotaStatus is the state of one quota after a Spend.
type QuotaStatus struct {
	Quota Quota
	// Cost is what this decision asked to spend under the quota.
	Cost int64
	// Allowed is false when this quota refused the cost.
	Allowed bool
	// Remaining is what the subject may still spend in this window,
	// counted after this decision.
	Remaining int64
	// Never is true when the cost exceeds the quota's limit.
	Never bool
	// Reset is when the window ends and the quota is whole again.
	Reset time.Time
	// window is the index of the window the units were counted in.
	window int64
}

// Spent is the outcome of a Spend. Every time in it is Redis time.
type Spent struct {
	// ID is the decision id; Refund takes the Spent back.
	ID string
	// Subject is whom the units were spent for.
	Subject string
	// Allowed is true when the units were spent under every quota.
	Allowed bool
	// Time is the Redis time of the decision.
	Time time.Time
	// Quotas has one entry per quota of the call, in call order.
	Quotas []QuotaStatus
}

// Spend asks to spend costs[i] units of subject under quotas[i], for every
// i at once: all are spent or none. Subject is hashed into the keys, as
// for AllowN, and all keys of one subject share a hash tag, so the quotas
// are decided in one script run on Redis Cluster too. id makes the
// decision idempotent and is what Refund needs; use NewID. A cost of 0 is
// allowed (the quota is reported, nothing is spent).
//
// Errors (*errors.Error): temporarily_unavailable (with Retry-After) when
// Redis fails or does not answer within the Limiter's timeout;
// server_error for a negative cost, no quota, an invalid quota, duplicate
// names, mismatched lengths, or an id that is empty or holds a colon.
func (l *Limiter) Spend(ctx context.Context, id, subject string, quotas []Quota, costs []int64) (Spent, error) {
	const op = "ratelimit.Spend"
	if err := checkQuotas(id, quotas, costs); err != nil {
		return Spent{}, errors.E(errors.ServerError, "").WithCause(op, err)
	}
	keys := quotaKeys(id, subject, quotas)
	args := make([]any, 0, 2+3*len(quotas))
	args = append(args, "spend", markerTTL.Milliseconds())
	for i, q := range quotas {
		args = append(args, costs[i], q.Limit, q.Window.Microseconds())
	}
	res, err := l.runQuota(ctx, keys, args, 2+3*len(quotas))
	if err != nil {
		if ctx.Err() == nil {
			l.countQuotas(quotas, resultError)
		}
		return Spent{}, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	s := Spent{ID: id, Subject: subject, Allowed: res[0] == 1, Time: usTime(res[1]), Quotas: make([]QuotaStatus, len(quotas))}
	for i, q := range quotas {
		st := QuotaStatus{Quota: q, Cost: costs[i], Allowed: true, Remaining: res[2+3*i], Reset: usTime(res[3+3*i]), window: res[4+3*i]}
		if !s.Allowed && costs[i] > st.Remaining {
			st.Allowed = false
			st.Never = costs[i] > q.Limit
		}
		s.Quotas[i] = st
	}
	if s.Allowed {
		l.countQuotas(quotas, resultAllowed)
	} else {
		l.countQuotas(quotas, resultLimited)
	}
	return s, nil
}

// Refund gives back the units an allowed Spend spent under the quotas for
// which refund(i) is true, in the window they were spent in. It is done
// once per Spend: a second Refund of the same Spend, or one more than ten
// minutes after it, changes nothing and reports false.
//
// Errors (*errors.Error): temporarily_unavailable when Redis fails or does
// not answer in time.
func (l *Limiter) Refund(ctx context.Context, s Spent, refund func(i int) bool) (bool, error) {
	const op = "ratelimit.Refund"
	if !s.Allowed || len(s.Quotas) == 0 {
		return false, nil
	}
	quotas := make([]Quota, len(s.Quotas))
	args := make([]any, 0, 2+3*len(s.Quotas))
	args = append(args, "refund", markerTTL.Milliseconds())
	for i, st := range s.Quotas {
		quotas[i] = st.Quota
		cost := int64(0)
		if refund(i) {
			cost = st.Cost
		}
		args = append(args, cost, st.window, 0)
	}
	ctx, cancel := context.WithTimeout(ctx, l.batch.timeout)
	defer cancel()
	n, err := quotaScript.Run(ctx, l.batch.rdb, quotaKeys(s.ID, s.Subject, quotas), args...).Int64()
	if err != nil {
		return false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return n == 1, nil
}

func (l *Limiter) runQuota(ctx context.Context, keys []string, args []any, want int) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, l.batch.timeout)
	defer cancel()
	res, err := quotaScript.Run(ctx, l.batch.rdb, keys, args...).Int64Slice()
	if err == nil && len(res) != want {
		err = errors.Errorf("script reply has %d values, want %d", len(res), want)
	}
	return res, err
}

// quotaKeys returns the keys of subject's quotas and of the decision's
// marker, all under the subject's hash tag.
func quotaKeys(id, subject string, quotas []Quota) []string {
	tag := hashSubject(subject)
	keys := make([]string, len(quotas)+1)
	for i, q := range quotas {
		keys[i] = "q:{" + tag + "}:" + q.Name
	}
	keys[len(quotas)] = "q:{" + tag + "}:d:" + id
	return keys
}

func checkQuotas(id string, quotas []Quota, costs []int64) error {
	if id == "" || strings.Contains(id, ":") {
		return errors.Errorf("decision id %q is empty or holds a colon", id)
	}
	if len(quotas) == 0 || len(quotas) != len(costs) {
		return errors.Errorf("%d quotas and %d costs", len(quotas), len(costs))
	}
	for i, q := range quotas {
		if err := q.Validate(); err != nil {
			return err
		}
		if costs[i] < 0 {
			return errors.Errorf("quota %s: cost %d below 0", q.Name, costs[i])
		}
		for _, p := range quotas[:i] {
			if p.Name == q.Name {
				return errors.Errorf("quota %q given twice", q.Name)
			}
		}
	}
	return nil
}

// policyField returns q's member of RateLimit-Policy:
// "name";q=limit;w=seconds, with ;qu="content-bytes" for byte quotas.
func (q Quota) policyField() string {
	f := `"` + q.Name + `";q=` + strconv.FormatInt(q.Limit, 10) + ";w=" + strconv.FormatInt(int64(q.Window/time.Second), 10)
	if q.Unit == UnitContentBytes {
		f += `;qu="content-bytes"`
	}
	return f
}

// BodyLength is a Quota.Cost that charges a request's body length in
// bytes. A body of unknown length (chunked) is read first, through
// whatever limit the route put on r.Body (httperr.LimitBody), and put back
// for the handler; a body over that limit fails with the limit's error, so
// it costs nothing and is answered with the route's code. A declared
// Content-Length is read too, so a client cannot be charged for bytes it
// does not send.
func BodyLength(r *http.Request) (int64, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return 0, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return 0, errors.Errorf("ratelimit.BodyLength: %w", err)
		}
		return 0, errors.E(errors.InvalidRequest, "The request body could not be read completely; send the request again").WithCause("ratelimit.BodyLength", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	return int64(len(b)), nil
}
