package oauth

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/go-oauth2/oauth2/v4"
	"github.com/go-oauth2/oauth2/v4/models"
	"github.com/redis/go-redis/v9"
)

// Token-info extension keys carried through go-oauth2's manager.
const (
	extFamily       = "family"        // token family, fixed when the code is issued
	extFamilyStart  = "family_start"  // unix ms the family's first token was issued
	extRefreshScope = "refresh_scope" // a refreshed grant's own scope (RFC 6749 §6)

	// How the user signed in, from the code to the grant's refresh
	// tokens, for ID Tokens: auth_time (unix milliseconds), amr
	// (space-separated); nonce and sid reach the code's ID Token only.
	extAuthTime = "auth_time"
	extAMR      = "amr"
	extNonce    = "nonce"
	extSID      = "sid"

	// The resources the grant granted (RFC 8707), space-separated, from
	// the code to the grant's refresh tokens.
	extResources = "resources"
)

// codeSignIn is what a new code remembers besides what go-oauth2 keeps:
// the sign-in and the request's nonce.
type codeSignIn struct {
	SignIn
	Nonce string
}

type codeSignInKey struct{}

// withCodeSignIn hands the sign-in of the code being issued to
// tokenStore.Create, through go-oauth2's manager, which carries only its
// own fields.
func withCodeSignIn(ctx context.Context, in *codeSignIn) context.Context {
	return context.WithValue(ctx, codeSignInKey{}, in)
}

// Redis keys. Family and jti keys share a hash tag, so the one EXISTS that
// checks both works on a Redis Cluster.
func codeKey(code string) string     { return "authd:oauth:code:" + hashToken(code) }
func familyKey(family string) string { return "authd:oauth:fam:{" + family + "}" }
func jtiKey(jti string) string {
	f, _ := familyOf(jti)
	return "authd:oauth:jti:{" + f + "}:" + jti
}

// hashToken returns the SHA-256 of a secret, in hex: what authd keeps of
// the codes, refresh tokens, states and cookie nonces it hands out, to
// look them up and compare them without storing them.
func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// tokenStore is authd's oauth2.TokenStore: codes in Redis, refresh tokens
// hashed in SQL, access tokens nowhere (they are self-contained JWTs).
//
// go-oauth2's manager redeems a code or refresh token with get-then-remove,
// which two concurrent requests can both pass. Here GetByCode and
// GetByRefresh are the redemption itself, each one atomic operation, and
// RemoveByCode/RemoveByRefresh do nothing. The manager calls them only
// from its code-exchange and refresh flows, which is the only way authd
// uses them.
type tokenStore struct{ s *Server }

// Create implements oauth2.TokenStore: it stores a new code, or the
// refresh token of a new grant. Access tokens need no storage.
//
// Errors: temporarily_unavailable.
func (ts *tokenStore) Create(ctx context.Context, info oauth2.TokenInfo) error {
	switch {
	case info.GetCode() != "":
		return ts.putCode(ctx, info)
	case info.GetRefresh() != "":
		return ts.insertRefresh(ctx, info)
	}
	return nil
}

// RemoveByCode implements oauth2.TokenStore; GetByCode already redeemed
// the code.
func (ts *tokenStore) RemoveByCode(ctx context.Context, code string) error { return nil }

// RemoveByAccess implements oauth2.TokenStore; the manager is configured
// never to call it (access tokens are revoked through the deny list).
func (ts *tokenStore) RemoveByAccess(ctx context.Context, access string) error { return nil }

// RemoveByRefresh implements oauth2.TokenStore; GetByRefresh already
// marked the old refresh token used, and its row must stay so that
// presenting it again is recognised as reuse.
func (ts *tokenStore) RemoveByRefresh(ctx context.Context, refresh string) error { return nil }

// GetByAccess implements oauth2.TokenStore; authd verifies access tokens
// itself and never asks the library.
func (ts *tokenStore) GetByAccess(ctx context.Context, access string) (oauth2.TokenInfo, error) {
	return nil, errors.E(errors.ServerError, "").WithCause("oauth.tokenStore.GetByAccess", errors.ErrUnsupported)
}

// putCode stores a code as a Redis hash living for the code's lifetime.
func (ts *tokenStore) putCode(ctx context.Context, info oauth2.TokenInfo) error {
	const op = "oauth.tokenStore.putCode"
	family := ""
	if eti, ok := info.(oauth2.ExtendableTokenInfo); ok {
		family = eti.GetExtension().Get(extFamily)
	}
	if !validFamily(family) {
		return errors.E(errors.ServerError, "").WithCause(op, errors.New("code without a family"))
	}
	in, _ := ctx.Value(codeSignInKey{}).(*codeSignIn)
	if in == nil {
		return errors.E(errors.ServerError, "").WithCause(op, errors.New("code without a sign-in"))
	}
	ttl := info.GetCodeExpiresIn()
	key := codeKey(info.GetCode())
	ctx, cancel := ts.s.opCtx(ctx)
	defer cancel()
	_, err := ts.s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key,
			"client_id", info.GetClientID(),
			"redirect_uri", info.GetRedirectURI(),
			"scope", info.GetScope(),
			"sub", info.GetUserID(),
			"cc", info.GetCodeChallenge(),
			"ccm", string(info.GetCodeChallengeMethod()),
			"family", family,
			extAuthTime, strconv.FormatInt(in.AuthTime.UnixMilli(), 10),
			extAMR, strings.Join(in.Methods, " "),
			extNonce, in.Nonce,
			extSID, in.SessionID,
			"resource", strings.Join(grantResourcesFrom(ctx), " "),
			"created_ms", strconv.FormatInt(ts.s.now().UnixMilli(), 10),
			"ttl_ms", strconv.FormatInt(ttl.Milliseconds(), 10),
		)
		p.PExpire(ctx, key, ttl)
		return nil
	})
	if err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return nil
}

// redeemCode swaps a live code for its tombstone in one step, if and only
// if the request presents what the code was issued for: the same client,
// the same redirect_uri (RFC 6749 §4.1.3) and, when the code has a PKCE
// challenge, a verifier that hashes to it (RFC 7636 §4.6); a code issued
// without a challenge takes no verifier. Anything else leaves the entry as
// it was, so a client that did not receive the code — or anyone who knows
// a public client's id but not the verifier — can neither burn a live code
// nor, with a used one, revoke the tokens of the client that redeemed it.
//
// A matching redemption marks the entry used by this redemption; it keeps
// its remaining lifetime and its family. A second matching redemption
// finds the tombstone and learns the family to revoke, also when it raced
// the first. A script retried by the client library after a lost reply
// (same redemption id) gets the same answer.
//
// The resources the request names (RFC 8707) must be among those the
// authorization granted, or the code is left as it was too.
//
// KEYS[1] the code; ARGV: redemption id, client_id, redirect_uri, S256
// challenge of the verifier ("" without one), the requested resources
// (space-separated, "" for none).
var redeemCode = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'client_id', 'redirect_uri', 'cc', 'used', 'family', 'resource')
if not f[1] then
  return false
end
if f[1] ~= ARGV[2] then
  return {'mismatch', 'client'}
end
if f[2] ~= ARGV[3] then
  return {'mismatch', 'redirect_uri'}
end
if (f[3] or '') ~= ARGV[4] then
  return {'mismatch', 'pkce'}
end
if ARGV[5] ~= '' then
  local granted = {}
  for r in string.gmatch(f[6] or '', '%S+') do
    granted[r] = true
  end
  for r in string.gmatch(ARGV[5], '%S+') do
    if not granted[r] then
      return {'mismatch', 'resource'}
    end
  end
end
local used = f[4]
if used and used ~= ARGV[1] then
  return {'reused', f[5] or ''}
end
if not used then
  redis.call('HSET', KEYS[1], 'used', ARGV[1])
end
local all = redis.call('HGETALL', KEYS[1])
table.insert(all, 1, 'live')
return all
`)

// codePresentation is what a token request presents with a code, to be
// compared with what the code was issued for inside redeemCode.
type codePresentation struct {
	clientID, redirectURI string
	// challenge is the S256 challenge of the request's code_verifier
	// (RFC 7636 §4.2), "" when it sent none.
	challenge string
	// resources are the resources the request names (RFC 8707).
	resources []string
}

type codePresentationKey struct{}

// withCodePresentation passes p to GetByCode through go-oauth2's manager,
// which hands the store nothing but the code.
func withCodePresentation(ctx context.Context, p codePresentation) context.Context {
	return context.WithValue(ctx, codePresentationKey{}, p)
}

// errCodeInvalid is the answer for a code that is unknown, expired, used,
// or another client's: one answer, so a client learns nothing about codes
// that are not its own.
func errCodeInvalid(op string, cause error) *errors.Error {
	return errors.E(errors.InvalidGrant, "The authorization code is invalid, expired, already used, or was issued to another client").WithCause(op, cause)
}

// GetByCode implements oauth2.TokenStore by redeeming the code for the
// presentation exchangeCode put in ctx: see redeemCode. Presenting a used
// code as its client revokes its token family.
//
// Errors: invalid_grant; temporarily_unavailable; server_error without a
// presentation in ctx.
func (ts *tokenStore) GetByCode(ctx context.Context, code string) (oauth2.TokenInfo, error) {
	const op = "oauth.tokenStore.GetByCode"
	p, ok := ctx.Value(codePresentationKey{}).(codePresentation)
	if !ok {
		return nil, errors.E(errors.ServerError, "").WithCause(op, errors.New("code redeemed without the request's client and redirect_uri"))
	}
	rctx, cancel := ts.s.opCtx(ctx)
	res, err := redeemCode.Run(rctx, ts.s.rdb, []string{codeKey(code)}, randomToken(12), p.clientID, p.redirectURI, p.challenge, strings.Join(p.resources, " ")).StringSlice()
	cancel()
	if err == redis.Nil {
		return nil, errCodeInvalid(op, errors.New("unknown or expired code"))
	}
	if err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if len(res) == 2 && res[0] == "mismatch" {
		switch res[1] {
		case "client":
			return nil, errCodeInvalid(op, errors.New("code of another client; left as it was"))
		case "redirect_uri":
			return nil, errors.E(errors.InvalidGrant, "redirect_uri does not match the authorization request").WithCause(op, errors.New("redirect_uri mismatch; code left as it was"))
		case "resource":
			return nil, errors.E(errors.InvalidTarget, "The resource was not granted by the authorization this code is for; a token request may only repeat or narrow its resources").WithCause(op, errors.New("resource not granted; code left as it was"))
		default:
			if p.challenge == "" {
				return nil, errors.E(errors.InvalidGrant, "PKCE verification failed: code_verifier is missing").WithCause(op, errors.New("no verifier for a code with a challenge; code left as it was"))
			}
			return nil, errors.E(errors.InvalidGrant, "PKCE verification failed: code_verifier does not match code_challenge, or the code was issued without one").WithCause(op, errors.New("verifier mismatch or downgrade; code left as it was"))
		}
	}
	if len(res) == 2 && res[0] == "reused" {
		if err := ts.revokeFamily(ctx, res[1], reasonCodeReuse); err != nil {
			return nil, err
		}
		return nil, errors.E(errors.InvalidGrant, "The authorization code was already used; the tokens issued for it are revoked").WithCause(op, errors.New("code reused; family "+res[1]+" revoked"))
	}
	if len(res) < 1 || res[0] != "live" || len(res)%2 != 1 {
		return nil, errors.E(errors.ServerError, "").WithCause(op, errors.Errorf("unexpected script reply of %d items", len(res)))
	}
	f := map[string]string{}
	for i := 1; i+1 < len(res); i += 2 {
		f[res[i]] = res[i+1]
	}
	created, _ := strconv.ParseInt(f["created_ms"], 10, 64)
	ttlMS, _ := strconv.ParseInt(f["ttl_ms"], 10, 64)
	if ts.s.now().UnixMilli() >= created+ttlMS {
		return nil, errCodeInvalid(op, errors.New("code expired"))
	}
	ti := models.NewToken()
	ti.SetCode(code)
	ti.SetClientID(f["client_id"])
	ti.SetRedirectURI(f["redirect_uri"])
	ti.SetScope(f["scope"])
	ti.SetUserID(f["sub"])
	ti.SetCodeChallenge(f["cc"])
	ti.SetCodeChallengeMethod(oauth2.CodeChallengeMethod(f["ccm"]))
	// The manager checks expiry against the wall clock: give it the
	// remaining lifetime from now.
	ti.SetCodeCreateAt(time.Now())
	ti.SetCodeExpiresIn(time.Duration(created+ttlMS-ts.s.now().UnixMilli()) * time.Millisecond)
	ti.SetExtension(url.Values{extFamily: {f["family"]}, extAuthTime: {f[extAuthTime]}, extAMR: {f[extAMR]},
		extNonce: {f[extNonce]}, extSID: {f[extSID]}, extResources: {f["resource"]}})
	return ti, nil
}

// refreshRow is a stored refresh token.
type refreshRow struct {
	family, clientID, subject, scope string
	created, expires, used           int64
	familyCreated                    int64 // unix ms the family started
	familyRevoked                    bool
	authTime                         int64  // unix milliseconds; 0 when unknown
	amr                              string // space-separated
	resources                        string // granted by the authorization, space-separated
}

// peekRefresh reads a refresh token without redeeming it; nil when there
// is none.
//
// Errors: temporarily_unavailable.
func (ts *tokenStore) peekRefresh(ctx context.Context, tok string) (*refreshRow, error) {
	const op = "oauth.tokenStore.peekRefresh"
	ctx, cancel := ts.s.opCtx(ctx)
	defer cancel()
	var r refreshRow
	var revoked int
	err := ts.s.db.QueryRowContext(ctx, `SELECT t.family, t.client_id, t.subject, t.scope, t.created_ms, t.expires_ms, t.used_ms, t.family_created_ms, t.resources,
		(SELECT COUNT(*) FROM oauth_revoked_families f WHERE f.family = t.family)
		FROM oauth_refresh_tokens t WHERE t.hash = $1`, hashToken(tok)).
		Scan(&r.family, &r.clientID, &r.subject, &r.scope, &r.created, &r.expires, &r.used, &r.familyCreated, &r.resources, &revoked)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	r.familyRevoked = revoked > 0
	return &r, nil
}

// expiry returns when the token stops redeeming, in unix ms: its own
// expiry, or its family's end after familyMax, whichever comes first.
func (r *refreshRow) expiry(familyMax time.Duration) int64 {
	return min(r.expires, r.familyCreated+familyMax.Milliseconds())
}

// active reports whether a refresh token may still be redeemed at now.
func (r *refreshRow) active(now time.Time, familyMax time.Duration) bool {
	return r.used == 0 && !r.familyRevoked && r.expiry(familyMax) > now.UnixMilli()
}

// errRefreshInvalid is the answer for any refresh token that cannot be
// redeemed.
func errRefreshInvalid(op string, cause error) *errors.Error {
	return errors.E(errors.InvalidGrant, "The refresh token is invalid, expired, revoked or was issued to another client").WithCause(op, cause)
}

// GetByRefresh implements oauth2.TokenStore by redeeming the refresh token
// with one conditional UPDATE: of concurrent redemptions exactly one
// succeeds, and none after the family's maximum lifetime. A token already
// redeemed (rotated) is reuse: its whole family is revoked. A token of a
// revoked family writes the family's revocation again (see revokeFamily),
// so a revocation that failed half-way is completed by the next attempt.
//
// Errors: invalid_grant; temporarily_unavailable.
func (ts *tokenStore) GetByRefresh(ctx context.Context, refresh string) (oauth2.TokenInfo, error) {
	const op = "oauth.tokenStore.GetByRefresh"
	now := ts.s.now().UnixMilli()
	qctx, cancel := ts.s.opCtx(ctx)
	var r refreshRow
	err := ts.s.db.QueryRowContext(qctx, `UPDATE oauth_refresh_tokens SET used_ms = $2
		WHERE hash = $1 AND used_ms = 0 AND expires_ms > $2 AND family_created_ms > $3
		AND NOT EXISTS (SELECT 1 FROM oauth_revoked_families f WHERE f.family = oauth_refresh_tokens.family)
		RETURNING family, client_id, subject, scope, created_ms, expires_ms, family_created_ms, auth_time_ms, amr, resources`,
		hashToken(refresh), now, now-ts.s.cfg.RefreshFamilyMax.Milliseconds()).
		Scan(&r.family, &r.clientID, &r.subject, &r.scope, &r.created, &r.expires, &r.familyCreated, &r.authTime, &r.amr, &r.resources)
	cancel()
	if err == sql.ErrNoRows {
		row, perr := ts.peekRefresh(ctx, refresh)
		if perr != nil {
			return nil, perr
		}
		if row != nil && (row.used != 0 || row.familyRevoked) {
			reason := reasonRefreshReuse
			if row.used == 0 {
				reason = reasonRevoked // an earlier revocation, written again
			}
			if err := ts.revokeFamily(ctx, row.family, reason); err != nil {
				return nil, err
			}
			if !row.familyRevoked {
				return nil, errors.E(errors.InvalidGrant, "The refresh token was already used; every token of this grant is revoked").WithCause(op, errors.New("rotated refresh token reused; family "+row.family+" revoked"))
			}
		}
		return nil, errRefreshInvalid(op, errors.New("unknown, used, expired or revoked refresh token, or its grant reached its maximum lifetime"))
	}
	if err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	ti := models.NewToken()
	ti.SetClientID(r.clientID)
	ti.SetUserID(r.subject)
	ti.SetScope(r.scope)
	ti.SetRefresh(refresh)
	// The manager checks expiry against the wall clock.
	ti.SetRefreshCreateAt(time.Now())
	ti.SetRefreshExpiresIn(time.Duration(r.expiry(ts.s.cfg.RefreshFamilyMax)-now) * time.Millisecond)
	ti.SetExtension(url.Values{
		extFamily:       {r.family},
		extFamilyStart:  {strconv.FormatInt(r.familyCreated, 10)},
		extRefreshScope: {r.scope},
		extAuthTime:     {strconv.FormatInt(r.authTime, 10)},
		extAMR:          {r.amr},
		extResources:    {r.resources},
	})
	return ti, nil
}

// insertRefresh stores the refresh token of a new or rotated grant, hashed.
// A rotated grant keeps its family, its family's start, its own scope
// even when the access token was narrowed (RFC 6749 §6), and how its user
// signed in. A new token lives the refresh-token lifetime, but never past
// its family's maximum lifetime (RFC 9700 §4.14.2): rotation does not
// extend a grant forever.
func (ts *tokenStore) insertRefresh(ctx context.Context, info oauth2.TokenInfo) error {
	const op = "oauth.tokenStore.insertRefresh"
	var family, scope, start, amr, resources string
	var authTime int64
	if eti, ok := info.(oauth2.ExtendableTokenInfo); ok {
		ext := eti.GetExtension()
		family = ext.Get(extFamily)
		scope = ext.Get(extRefreshScope)
		start = ext.Get(extFamilyStart)
		authTime, _ = strconv.ParseInt(ext.Get(extAuthTime), 10, 64)
		amr = ext.Get(extAMR)
		resources = ext.Get(extResources)
	}
	if !validFamily(family) {
		return errors.E(errors.ServerError, "").WithCause(op, errors.New("refresh token without a family"))
	}
	if scope == "" {
		scope = info.GetScope()
	}
	now := ts.s.now().UnixMilli()
	familyStart := now // a new grant
	if start != "" {
		var err error
		if familyStart, err = strconv.ParseInt(start, 10, 64); err != nil {
			return errors.E(errors.ServerError, "").WithCause(op, errors.Errorf("family start %q: %w", start, err))
		}
	}
	ttl := info.GetRefreshExpiresIn()
	if ttl <= 0 || ttl > ts.s.cfg.RefreshTokenTTL {
		ttl = ts.s.cfg.RefreshTokenTTL
	}
	expires := min(now+ttl.Milliseconds(), familyStart+ts.s.cfg.RefreshFamilyMax.Milliseconds())
	ctx, cancel := ts.s.opCtx(ctx)
	defer cancel()
	if _, err := ts.s.db.ExecContext(ctx, `INSERT INTO oauth_refresh_tokens
		(hash, family, client_id, subject, scope, created_ms, expires_ms, used_ms, family_created_ms, auth_time_ms, amr, resources)
		VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11)`,
		hashToken(info.GetRefresh()), family, info.GetClientID(), info.GetUserID(), scope,
		now, expires, familyStart, authTime, amr, resources); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return nil
}

// Why a family was revoked, for the log.
const (
	reasonCodeReuse    = "authorization code reused"
	reasonRefreshReuse = "rotated refresh token reused"
	reasonRevoked      = "revoked by the client (RFC 7009)"
)

// revokeFamily revokes every token issued from one authorization: its
// refresh tokens in SQL (also ones inserted later, by a request that won
// a race against this revocation) and its access tokens through the deny
// list in Redis.
//
// It is idempotent and writes both records on every call, also for a
// family revoked before: callers call it again whenever a token of a
// revoked family comes back, so a revocation that failed half-way (the
// SQL record written, then Redis failing) is completed by the retry
// instead of being taken as done. The SQL record comes first: if Redis
// then fails, the refresh tokens are already dead, the caller answers 503
// (never success), and the access tokens live at most their short
// lifetime unless the retry denies them.
//
// Errors: temporarily_unavailable.
func (ts *tokenStore) revokeFamily(ctx context.Context, family, reason string) error {
	const op = "oauth.tokenStore.revokeFamily"
	if !validFamily(family) {
		return errors.E(errors.ServerError, "").WithCause(op, errors.Errorf("bad family %q", family))
	}
	now := ts.s.now()
	ctx, cancel := ts.s.opCtx(ctx)
	defer cancel()
	res, err := ts.s.db.ExecContext(ctx, `INSERT INTO oauth_revoked_families (family, revoked_ms, expires_ms)
		VALUES ($1, $2, $3) ON CONFLICT (family) DO NOTHING`,
		family, now.UnixMilli(), now.Add(ts.s.cfg.RefreshTokenTTL+ts.s.cfg.CodeTTL).UnixMilli())
	if err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	// Every access token of the family expires within AccessTokenTTL of
	// being issued, and none is issued later than a code's lifetime after
	// the revocation.
	if err := ts.s.rdb.Set(ctx, familyKey(family), "1", familyDenyTTL(ts.s.cfg)).Err(); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		ts.s.log.LogAttrs(ctx, slog.LevelDebug, "token family revocation written again", slog.String("family", family), slog.String("reason", reason))
		return nil
	}
	level := slog.LevelWarn // reuse of a code or refresh token: a stolen token, or a client bug
	if reason == reasonRevoked {
		level = slog.LevelInfo
	}
	ts.s.log.LogAttrs(ctx, level, "token family revoked", slog.String("family", family), slog.String("reason", reason))
	return nil
}

// restoreDenyList writes the families revoked within familyDenyTTL back to
// the Redis deny list, each for the rest of its time there. Redis may have
// lost them (a restart without persistence, the embedded Redis of a
// restarted authd, a failover), while the database remembers every
// revocation: without this, access tokens of a grant revoked minutes
// before a restart would work again. It returns how many it wrote.
//
// Errors: temporarily_unavailable.
func (ts *tokenStore) restoreDenyList(ctx context.Context) (int, error) {
	const op = "oauth.tokenStore.restoreDenyList"
	ttl := familyDenyTTL(ts.s.cfg)
	now := ts.s.now().UnixMilli()
	qctx, cancel := ts.s.opCtx(ctx)
	defer cancel()
	rows, err := ts.s.db.QueryContext(qctx, `SELECT family, revoked_ms FROM oauth_revoked_families WHERE revoked_ms > $1`, now-ttl.Milliseconds())
	if err != nil {
		return 0, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	left := map[string]time.Duration{}
	for rows.Next() {
		var family string
		var revoked int64
		if err := rows.Scan(&family, &revoked); err != nil {
			rows.Close()
			return 0, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
		if d := time.Duration(revoked+ttl.Milliseconds()-now) * time.Millisecond; d > 0 && validFamily(family) {
			left[family] = d
		}
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	// One SET per family (each its own hash slot on a cluster); NX leaves
	// a key Redis still has as it is.
	for family, d := range left {
		rctx, cancel := ts.s.opCtx(ctx)
		err := ts.s.rdb.SetArgs(rctx, familyKey(family), "1", redis.SetArgs{TTL: d, Mode: "NX"}).Err()
		cancel()
		if err != nil && err != redis.Nil {
			return 0, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
	}
	return len(left), nil
}

// familyDenyTTL is how long a revoked family stays on the deny list: past
// the expiry of every access token issued before the revocation or, by a
// request racing it, up to a code's lifetime after.
func familyDenyTTL(cfg Config) time.Duration {
	return cfg.AccessTokenTTL + cfg.CodeTTL + time.Minute
}

// denyAccess puts one access token on the deny list until it expires.
//
// Errors: temporarily_unavailable.
func (ts *tokenStore) denyAccess(ctx context.Context, c *accessClaims) error {
	const op = "oauth.tokenStore.denyAccess"
	ttl := time.Until(c.expiry()) + time.Second
	if d := c.expiry().Sub(ts.s.now()) + time.Second; d > ttl {
		ttl = d
	}
	if ttl <= 0 {
		return nil
	}
	ctx, cancel := ts.s.opCtx(ctx)
	defer cancel()
	if err := ts.s.rdb.Set(ctx, jtiKey(c.Jti), "1", ttl).Err(); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return nil
}

// revoked reports whether an access token's jti or family is on the deny
// list: one EXISTS over two keys in one hash slot.
//
// Errors: temporarily_unavailable.
func (ts *tokenStore) revoked(ctx context.Context, jti string) (bool, error) {
	const op = "oauth.tokenStore.revoked"
	f, ok := familyOf(jti)
	if !ok {
		return true, nil
	}
	ctx, cancel := ts.s.opCtx(ctx)
	defer cancel()
	n, err := ts.s.rdb.Exists(ctx, familyKey(f), jtiKey(jti)).Result()
	if err != nil {
		return false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return n > 0, nil
}

// Purge deletes refresh tokens and revoked-family records that have
// expired. Call it now and then (hourly is plenty); nothing depends on it
// but the size of the tables.
//
// Errors: temporarily_unavailable.
func (s *Server) Purge(ctx context.Context) error {
	const op = "oauth.Purge"
	now := s.now().UnixMilli()
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, `DELETE FROM oauth_refresh_tokens WHERE expires_ms < $1`, now); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM oauth_revoked_families WHERE expires_ms < $1`, now); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return nil
}

// codeGenerator is authd's oauth2.AuthorizeGenerate: 256 random bits.
type codeGenerator struct{}

// Token implements oauth2.AuthorizeGenerate.
func (codeGenerator) Token(ctx context.Context, data *oauth2.GenerateBasic) (string, error) {
	return randomToken(32), nil
}
