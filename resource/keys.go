package resource

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
)

// fetchTimeout bounds one fetch of the metadata and keys, whatever the
// HTTP client allows.
const fetchTimeout = 30 * time.Second

// key returns the verification key named kid. A known key is returned
// at once, starting a background refresh when the set has expired. An
// unknown kid, or no key set yet, waits for a fetch (one at a time, at
// most one per MinRefreshInterval).
//
// Errors: invalid_token for a kid the fresh key set does not have;
// temporarily_unavailable when no usable key set can be had.
func (v *Verifier) key(ctx context.Context, kid string) (*publicKey, error) {
	now := v.now()
	if ks := v.keys.Load(); ks != nil && now.Before(ks.expires.Add(MaxStale)) {
		if k := ks.byKid[kid]; k != nil {
			if !now.Before(ks.expires) {
				v.refresh(ctx, false, false) // stale: serve it while fetching anew
			}
			return k, nil
		}
	}
	err := v.refresh(ctx, true, false)
	ks := v.keys.Load()
	if ks != nil && v.now().Before(ks.expires.Add(MaxStale)) {
		if k := ks.byKid[kid]; k != nil {
			return k, nil
		}
		if err == nil {
			return nil, errInvalid("unknown kid " + strconv.Quote(kid))
		}
	}
	if err == nil {
		err = errors.New("no key set")
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return nil, errors.E(errors.TemporarilyUnavailable, "").
		WithRetryAfter(v.cfg.MinRefreshInterval).
		WithCause("resource.Verify", errors.Errorf("fetching the issuer's keys: %w", err))
}

// Refresh fetches the issuer's keys now (joining a fetch in progress),
// whatever MinRefreshInterval says: call it at start to fail fast on a
// wrong Issuer, or to learn a new key at once.
//
// Errors: a plain error saying why the metadata or keys could not be
// fetched or used; the keys held before, if any, are kept.
func (v *Verifier) Refresh(ctx context.Context) error {
	return v.refresh(ctx, true, true)
}

// refresh starts a fetch unless one is in flight, or unless the last one
// began less than MinRefreshInterval ago (then it reports that attempt's
// error, nil if it succeeded). With wait it waits for the fetch or the
// end of ctx; the fetch itself is not bound to ctx: other requests may be
// waiting for it.
func (v *Verifier) refresh(ctx context.Context, wait, force bool) error {
	v.mu.Lock()
	f := v.flight
	if f == nil {
		now := v.now()
		if !force && !v.lastAttempt.IsZero() && now.Sub(v.lastAttempt) < v.cfg.MinRefreshInterval {
			err := v.lastErr
			v.mu.Unlock()
			return err
		}
		f = &flight{done: make(chan struct{})}
		v.flight, v.lastAttempt = f, now
		go v.fetch(f)
	}
	v.mu.Unlock()
	if !wait {
		return nil
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch runs one fetch of the keys (discovering the jwks_uri first when
// needed) and publishes its outcome.
func (v *Verifier) fetch(f *flight) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	err := v.fetchKeys(ctx)
	if err != nil {
		v.log.LogAttrs(ctx, slog.LevelWarn, "resource: fetching the issuer's keys failed; keeping the keys held",
			slog.String("issuer", v.cfg.Issuer), slog.Any("err", err))
	}
	v.mu.Lock()
	v.flight, v.lastErr = nil, err
	v.mu.Unlock()
	f.err = err
	close(f.done)
}

func (v *Verifier) fetchKeys(ctx context.Context) error {
	v.mu.Lock()
	where := v.jwksURI
	v.mu.Unlock()
	if where == "" {
		u, err := v.discover(ctx)
		if err != nil {
			return err
		}
		where = u
	}
	body, hdr, err := v.get(ctx, where, maxJWKSBytes)
	if err == nil {
		var byKid map[string]*publicKey
		if byKid, err = parseJWKS(body); err == nil {
			v.keys.Store(&keySet{byKid: byKid, expires: v.now().Add(v.cacheTTL(hdr))})
		}
	}
	v.mu.Lock()
	if err != nil && v.cfg.JWKSURI == "" {
		v.jwksURI = "" // discover again next time: the keys may have moved
	} else if err == nil {
		v.jwksURI = where
	}
	v.mu.Unlock()
	if err != nil {
		return errors.Errorf("JWK Set at %s: %w", where, err)
	}
	return nil
}

// discover reads the issuer's metadata (RFC 8414 §3) and returns its
// jwks_uri, after checking that the document names the issuer (§3.3).
func (v *Verifier) discover(ctx context.Context) (string, error) {
	where := issuerMetadataURL(v.cfg.Issuer)
	body, _, err := v.get(ctx, where, 256<<10)
	if err != nil {
		return "", errors.Errorf("metadata at %s: %w", where, err)
	}
	var m struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return "", errors.Errorf("metadata at %s: %w", where, err)
	}
	if m.Issuer != v.cfg.Issuer {
		return "", errors.Errorf("metadata at %s names issuer %q, not %q", where, m.Issuer, v.cfg.Issuer)
	}
	if err := checkURI("jwks_uri", m.JWKSURI, true); err != nil {
		return "", errors.Errorf("metadata at %s: %w", where, err)
	}
	return m.JWKSURI, nil
}

// issuerMetadataURL is where issuer publishes its metadata (RFC 8414 §3.1):
// the well-known path inserted before the issuer's path.
func issuerMetadataURL(issuer string) string {
	u, _ := url.Parse(issuer) // checked by NewVerifier
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + strings.TrimSuffix(u.EscapedPath(), "/")
}

// get fetches where, reading at most limit bytes; a non-200 answer or a
// longer body is an error.
func (v *Verifier) get(ctx context.Context, where string, limit int64) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, errors.Errorf("HTTP status %q", resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, nil, err
	}
	if int64(len(b)) > limit {
		return nil, nil, errors.Errorf("larger than %d bytes", limit)
	}
	return b, resp.Header, nil
}

// cacheTTL is how long a key set may be kept: its freshness lifetime
// (RFC 9111 §4.2.1: Cache-Control max-age, less Age; no-store and
// no-cache mean none), or DefaultCacheTTL without one, bounded by
// MinCacheTTL and MaxCacheTTL.
func (v *Verifier) cacheTTL(h http.Header) time.Duration {
	ttl := DefaultCacheTTL
	for _, d := range strings.Split(strings.Join(h.Values("Cache-Control"), ","), ",") {
		name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			ttl = 0
		case "max-age":
			if n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && n >= 0 && ttl != 0 {
				ttl = time.Duration(min(n, 1<<32)) * time.Second
			}
		}
	}
	if age, err := strconv.ParseInt(h.Get("Age"), 10, 64); err == nil && age > 0 {
		ttl -= time.Duration(min(age, 1<<32)) * time.Second
	}
	return min(max(ttl, v.cfg.MinCacheTTL), v.cfg.MaxCacheTTL)
}
