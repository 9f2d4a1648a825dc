package server

import (
	"context"
	"net/http"
	"time"

	"github.com/authd-dev/authd/backup"
	"github.com/authd-dev/authd/ratelimit"
)

// Per-client-IP limits of the backup routes. A Bitcoin key costs nothing
// to make, so limits per subject alone never stop one client with many
// keys; these count per client IP. The request rate and the bytes are
// checked before anything costs a signature verification or a
// replay-guard write; creates when a backup is about to be written.

// backupIPLimits wraps a /backup route for method with the per-IP limits
// that run before the request is authenticated: the backup_ip policy for
// every request, and for PUT the daily quota of body bytes sent
// (Config.BackupIPDailyBytes; 0 is off). The daily quota of creates
// needs to know whether a PUT creates: the backup service asks
// createQuota when it is about to.
func (s *Server) backupIPLimits(method string) func(http.Handler) http.Handler {
	lim := s.limiter
	perIP := lim.Middleware(s.policies[ratelimit.BackupIP], nil)
	n := s.cfg.BackupIPDailyBytes
	if method != http.MethodPut || n <= 0 {
		return perIP
	}
	daily := lim.QuotaMiddleware(nil, ratelimit.Quota{Name: ratelimit.BackupIPBytes, Limit: n, Window: 24 * time.Hour,
		Unit: ratelimit.UnitContentBytes, Cost: ratelimit.BodyLength})
	return func(h http.Handler) http.Handler { return perIP(daily(h)) }
}

// createQuota limits the backups one client IP creates per UTC day
// (Config.BackupIPDailyCreates). A replace is never counted: the
// backup service asks only when a PUT is about to create, and gives the
// reservation back when it did not.
type createQuota struct {
	lim   *ratelimit.Limiter
	quota ratelimit.Quota
}

// newCreateQuota returns the create limiter of the backup service, or nil
// when the cap is off.
func newCreateQuota(lim *ratelimit.Limiter, perDay int64) backup.CreateLimiter {
	if perDay <= 0 {
		return nil
	}
	return createQuota{lim: lim, quota: ratelimit.Quota{Name: ratelimit.BackupIPCreates, Limit: perDay, Window: 24 * time.Hour}}
}

// ReserveCreate spends one create of the client IP, writing the quota's
// headers.
//
// Errors: rate_limit_exceeded (429, Retry-After at 00:00 UTC),
// temporarily_unavailable.
func (c createQuota) ReserveCreate(w http.ResponseWriter, r *http.Request) (func(bool), error) {
	s, err := c.lim.SpendRequest(w, r, nil, c.quota)
	if err != nil {
		return nil, err
	}
	return func(created bool) {
		if created {
			return
		}
		// A refund that fails leaves the IP counted, never less.
		c.lim.Refund(context.WithoutCancel(r.Context()), s, func(int) bool { return true })
	}, nil
}
