package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/backup"
	"github.com/authd-dev/authd/ratelimit"
)

// Per-client-IP limits of the backup routes. A Bitcoin key costs nothing
// to make, so limits per subject alone never stop one client with many
// keys; these count per client IP and run before anything costs a
// signature verification, a replay-guard write or a database write.

// Defaults of the daily per-IP backup quotas (AUTHD_BACKUP_IP_DAILY_BYTES,
// AUTHD_BACKUP_IP_DAILY_CREATES).
const (
	defaultBackupIPDailyBytes   = "32MiB"
	defaultBackupIPDailyCreates = "20"
)

// backupIPLimits wraps a /backup route for method with the per-IP limits
// that run before the request is authenticated: the backup_ip policy for
// every request, and for PUT the daily quota of body bytes sent
// (AUTHD_BACKUP_IP_DAILY_BYTES; 0 is off). The daily quota of creates
// needs to know whether a PUT creates: the backup service asks
// createQuota when it is about to.
func (a *app) backupIPLimits(method string) func(http.Handler) http.Handler {
	lim := a.svc.limiter
	perIP := lim.Middleware(a.cfg.RateLimits[ratelimit.BackupIP], nil)
	n := a.cfg.BackupIPDailyBytes
	if method != http.MethodPut || n <= 0 {
		return perIP
	}
	daily := lim.QuotaMiddleware(nil, ratelimit.Quota{Name: ratelimit.BackupIPBytes, Limit: n, Window: 24 * time.Hour,
		Unit: ratelimit.UnitContentBytes, Cost: ratelimit.BodyLength})
	return func(h http.Handler) http.Handler { return perIP(daily(h)) }
}

// createQuota limits the backups one client IP creates per UTC day
// (AUTHD_BACKUP_IP_DAILY_CREATES). A replace is never counted: the
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

// parseByteSize reads a byte count: an integer, optionally followed by
// KiB, MiB or GiB (powers of 1024).
func parseByteSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, suffix)), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > ratelimit.MaxQuota/mult {
		return 0, false
	}
	return n * mult, true
}
