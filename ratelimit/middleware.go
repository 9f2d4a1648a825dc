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
// and returns ok and a non-empty string, else the client IP (IPSubject of Proxies.ClientIP with
// the Limiter's trusted proxies). For subject-keyed routes, put the
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
			key := ""
			if subject != nil {
				if s, ok := subject(r); ok && s != "" {
					key = "sub:" + s
				}
			}
			if key == "" {
				key = IPSubject(l.proxies.ClientIP(r))
			}
			d, err := l.AllowN(r.Context(), l.NewID(httperr.RequestID(r.Context())), key, 1, p)
			if err != nil {
				return err
			}
			h := w.Header()
			h.Set("X-RateLimit-Limit", limit)
			h.Set("X-RateLimit-Remaining", strconv.Itoa(d.Remaining))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(ceilSeconds(d.Reset.UnixMicro()), 10))
			h.Set("RateLimit-Policy", policyField)
			h.Set("RateLimit", `"`+p.Name+`";r=`+strconv.Itoa(d.Remaining)+";t="+strconv.FormatInt(ceilSeconds(d.Reset.Sub(d.Time).Microseconds()), 10))
			if !d.Allowed {
				// Whole seconds, so that Retry-After, retry_after and t agree.
				retry := time.Duration(ceilSeconds(d.RetryAfter.Microseconds())) * time.Second
				return errors.E(errors.RateLimitExceeded, desc).WithCause(op, nil).WithRetryAfter(max(retry, time.Second))
			}
			next.ServeHTTP(w, r)
			return nil
		})
	}
}

// ceilSeconds converts microseconds to whole seconds, rounding up.
func ceilSeconds(us int64) int64 {
	if us <= 0 {
		return 0
	}
	return (us + 999_999) / 1_000_000
}
