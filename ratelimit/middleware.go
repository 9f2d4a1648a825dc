package ratelimit

import (
	"net/http"
	"strconv"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
)

// SubjectFunc returns the authenticated identity a request is limited by,
// and false when the request carries none.
type SubjectFunc func(r *http.Request) (subject string, ok bool)

// Middleware limits a route under policy p, one unit per request,
// whatever the request's outcome: a failed sign-in counts like any other.
// Limiting a route is one line in the route table:
//
//	mux.Handle("POST /token", lim.Middleware(pol[ratelimit.Token], nil)(tokenHandler))
//	mux.Handle("GET /userinfo", lim.Middleware(pol[ratelimit.Userinfo], identity)(userinfoHandler))
//
// The subject is subject(r) prefixed with "sub:" when subject is non-nil
// and returns ok and a non-empty string, else the client IP (IPSubject of
// Proxies.ClientIP with the Limiter's trusted proxies). For subject-keyed routes, put the
// authentication middleware before this one: it must record the identity
// in the request context without failing the request, so that subject can
// read it and an unauthenticated request is counted against its client IP
// before the handler refuses it.
//
// Every response of a limited route carries X-RateLimit-Limit,
// X-RateLimit-Remaining (after this request), X-RateLimit-Reset (unix
// seconds when Remaining next grows) and the fields of
// draft-ietf-httpapi-ratelimit-headers-10:
//
//	RateLimit-Policy: "token";q=10;w=60
//	RateLimit: "token";r=9;t=60
//
// When several limiters run on one route (per client IP, then per subject,
// say), each adds its policy to RateLimit-Policy and RateLimit, and the
// X-RateLimit fields describe the policy with the fewest requests
// remaining, or the one that refused.
//
// where t is the number of seconds until more quota is available. A refused
// request gets rate_limit_exceeded (429) through httperr.Write, with
// Retry-After and retry_after equal, at least 1, from Redis time. When
// Redis fails or times out, the request gets temporarily_unavailable (503,
// Retry-After) and never reaches next. The decision id is the request id
// (httperr.RequestID) plus a part the client cannot choose (Limiter.NewID).
//
// Middleware panics when p is invalid (a zero Policy from a misspelt map
// key, say), so that a wiring mistake stops the server at start.
func (l *Limiter) Middleware(p Policy, subject SubjectFunc) func(http.Handler) http.Handler {
	const op = "ratelimit.Middleware"
	if err := p.Validate(); err != nil {
		panic("ratelimit.Middleware: " + err.Error())
	}
	policyField := `"` + p.Name + `";q=` + strconv.Itoa(p.Limit) + ";w=" + strconv.FormatInt(int64(p.Window/time.Second), 10)
	limit := strconv.Itoa(p.Limit)
	desc := "Too many requests: the limit is " + limit + " per " + strconv.FormatInt(int64(p.Window/time.Second), 10) + " seconds"
	return func(next http.Handler) http.Handler {
		return httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			d, err := l.AllowN(r.Context(), l.NewID(httperr.RequestID(r.Context())), l.subjectOf(r, subject), 1, p)
			if err != nil {
				return err
			}
			h := w.Header()
			setLegacy(h, limit, d.Remaining, unixCeil(d.Reset), !d.Allowed)
			h.Add("RateLimit-Policy", policyField)
			h.Add("RateLimit", `"`+p.Name+`";r=`+strconv.Itoa(d.Remaining)+";t="+strconv.FormatInt(httperr.DelaySeconds(d.Reset.Sub(d.Time)), 10))
			if !d.Allowed {
				// Rounded up as t is, so that Retry-After, retry_after
				// and t agree; at least a second.
				retry := time.Duration(httperr.DelaySeconds(d.RetryAfter)) * time.Second
				return errors.E(errors.RateLimitExceeded, desc).WithCause(op, nil).WithRetryAfter(max(retry, time.Second))
			}
			next.ServeHTTP(w, r)
			return nil
		})
	}
}

// unixCeil returns t as Unix seconds, rounded up: when a reset has
// happened, not a second before.
func unixCeil(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() != 0 {
		s++
	}
	return s
}

// setLegacy sets the X-RateLimit fields, which can describe one policy
// only: the first one set, unless this one has fewer remaining or refused.
func setLegacy(h http.Header, limit string, remaining int, reset int64, refused bool) {
	if cur := h.Get("X-RateLimit-Remaining"); cur != "" && !refused {
		if n, err := strconv.Atoi(cur); err == nil && n <= remaining {
			return
		}
	}
	h.Set("X-RateLimit-Limit", limit)
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
}

// QuotaMiddleware spends, for each request, what quotas' Cost functions
// say under every quota at once, before next runs (SpendRequest): a
// request that would exceed one is refused with rate_limit_exceeded (429),
// Retry-After and retry_after at the end of the refusing quota's window,
// and never reaches next. The subject is found as Middleware finds it
// (subject, else the client IP).
//
// QuotaMiddleware panics when a quota is invalid or two share a name.
func (l *Limiter) QuotaMiddleware(subject SubjectFunc, quotas ...Quota) func(http.Handler) http.Handler {
	if err := checkQuotas("x", quotas, make([]int64, len(quotas))); err != nil {
		panic("ratelimit.QuotaMiddleware: " + err.Error())
	}
	return func(next http.Handler) http.Handler {
		return httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
			if _, err := l.SpendRequest(w, r, subject, quotas...); err != nil {
				return err
			}
			next.ServeHTTP(w, r)
			return nil
		})
	}
}

// SpendRequest spends, for r, what quotas' Cost functions say under every
// quota at once (Spend), with a decision id made from the request id, and
// writes the quotas' headers on w: each quota's RateLimit-Policy and
// RateLimit members (with qu="content-bytes" for byte quotas), and on a
// refusal the X-RateLimit fields of the refusing quota (only then, since
// a quota of bytes per day is not what those fields usually count).
// Refund takes the returned Spent back.
//
// Errors: a Cost function's error; rate_limit_exceeded (429) with
// RetryAfter at the end of the refusing quota's window when a quota
// refuses; temporarily_unavailable when Redis fails; server_error for
// invalid quotas.
func (l *Limiter) SpendRequest(w http.ResponseWriter, r *http.Request, subject SubjectFunc, quotas ...Quota) (Spent, error) {
	const op = "ratelimit.SpendRequest"
	costs := make([]int64, len(quotas))
	for i, q := range quotas {
		costs[i] = 1
		if q.Cost != nil {
			c, err := q.Cost(r)
			if err != nil {
				return Spent{}, err
			}
			costs[i] = max(c, 0)
		}
	}
	s, err := l.Spend(r.Context(), l.NewID(httperr.RequestID(r.Context())), l.subjectOf(r, subject), quotas, costs)
	if err != nil {
		return Spent{}, err
	}
	h := w.Header()
	var refusing *QuotaStatus
	for i := range s.Quotas {
		st := &s.Quotas[i]
		h.Add("RateLimit-Policy", st.Quota.policyField())
		h.Add("RateLimit", `"`+st.Quota.Name+`";r=`+strconv.FormatInt(st.Remaining, 10)+";t="+strconv.FormatInt(httperr.DelaySeconds(st.Reset.Sub(s.Time)), 10))
		if !st.Allowed && (refusing == nil || st.Reset.After(refusing.Reset)) {
			refusing = st
		}
	}
	if refusing == nil {
		return s, nil
	}
	q := refusing.Quota
	h.Set("X-RateLimit-Limit", strconv.FormatInt(q.Limit, 10))
	h.Set("X-RateLimit-Remaining", strconv.FormatInt(refusing.Remaining, 10))
	h.Set("X-RateLimit-Reset", strconv.FormatInt(unixCeil(refusing.Reset), 10))
	retry := time.Duration(httperr.DelaySeconds(refusing.Reset.Sub(s.Time))) * time.Second
	unit := "requests"
	if q.Unit == UnitContentBytes {
		unit = "bytes"
	}
	desc := "Quota exceeded: the limit is " + strconv.FormatInt(q.Limit, 10) + " " + unit + " per " +
		strconv.FormatInt(int64(q.Window/time.Second), 10) + " seconds per client, counted until the window ends"
	return s, errors.E(errors.RateLimitExceeded, desc).WithCause(op, errors.Errorf("quota %s", q.Name)).WithRetryAfter(max(retry, time.Second))
}

// subjectOf returns the rate-limit subject of r: "sub:" and subject(r)
// when that names one, else the client IP.
func (l *Limiter) subjectOf(r *http.Request, subject SubjectFunc) string {
	if subject != nil {
		if s, ok := subject(r); ok && s != "" {
			return "sub:" + s
		}
	}
	return IPSubject(l.proxies.ClientIP(r))
}
