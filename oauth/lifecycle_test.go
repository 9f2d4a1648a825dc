package oauth_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
	"github.com/redis/go-redis/v9"
)

// failAtStep makes Redis itself fail at one exact step: the next command
// named cmd on a key starting with prefix runs while the miniredis answers
// every command with an error, so the command truly fails at the server
// and nothing before or after it does.
type failAtStep struct {
	mr          *miniredis.Miniredis
	cmd, prefix string
	armed, hits atomic.Int32
}

func (f *failAtStep) arm() { f.armed.Store(1) }

func (f *failAtStep) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *failAtStep) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if strings.EqualFold(cmd.Name(), f.cmd) && len(args) > 1 && strings.HasPrefix(args[1].(string), f.prefix) && f.armed.CompareAndSwap(1, 0) {
			f.hits.Add(1)
			f.mr.SetError("LOADING Redis is loading the dataset in memory")
			defer f.mr.SetError("")
		}
		return next(ctx, cmd)
	}
}

func (f *failAtStep) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// newFailingHarness is a harness on db whose Redis (a miniredis, with
// retries off so a failed command is not quietly sent again) fails at the
// step f is armed for: a SET of a family's deny-list key.
func newFailingHarness(t *testing.T, db *store.DB) (*harness, *failAtStep) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	f := &failAtStep{mr: mr, cmd: "set", prefix: FamilyKey("")[:len(FamilyKey(""))-2]}
	rdb.AddHook(f)
	return newHarness(t, db, rdb), f
}

// wantStatus fails unless resp has status.
func wantStatus(t *testing.T, what string, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("%s: %d %s, want %d", what, resp.StatusCode, body, status)
	}
}

// TestRevokeCompletesAfterRedisFailure: Redis fails between the SQL record
// of a revoked grant and its deny-list key. The revocation answers 503, not
// 200; the client's retry answers 200 only after the deny-list key is
// written, and from then on the grant's access token is refused
// (RFC 7009 §2.1: the access tokens of a revoked refresh token's grant go
// too).
func TestRevokeCompletesAfterRedisFailure(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h, fail := newFailingHarness(t, db)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
		tr, _ := h.walletTokens(c, secret, "")
		revoke := url.Values{"token": {tr.RefreshToken}, "token_type_hint": {"refresh_token"}, "client_id": {c.ID}, "client_secret": {secret}}

		fail.arm()
		resp, body := h.postForm("/revoke", revoke, nil)
		if fail.hits.Load() != 1 {
			t.Fatal("the revocation never wrote the deny list")
		}
		wantStatus(t, "revoke while Redis fails", resp, body, http.StatusServiceUnavailable)
		// Half done: the grant is revoked in SQL, its access token not yet.
		var n int
		if err := db.QueryRowContext(context.Background(), `SELECT COUNT(*) FROM oauth_revoked_families`).Scan(&n); err != nil || n != 1 {
			t.Fatalf("revoked families after the failure: %d %v", n, err)
		}

		resp, body = h.postForm("/revoke", revoke, nil)
		wantStatus(t, "revoke retried", resp, body, http.StatusOK)
		resp, body = h.userinfo(tr.AccessToken)
		wantStatus(t, "access token of a grant revoked with 200", resp, body, http.StatusUnauthorized)
		h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, c.ID, secret).wantError(t, 400, "invalid_grant")
	})
}

// TestRefreshReuseCompletesAfterRedisFailure: a rotated refresh token
// comes back (stolen) and Redis fails while its grant is revoked. Presented
// again, it revokes the grant's access tokens for good.
func TestRefreshReuseCompletesAfterRedisFailure(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h, fail := newFailingHarness(t, db)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
		first, _ := h.walletTokens(c, secret, "")
		refresh := func(tok string) tokenResp {
			return h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}, c.ID, secret)
		}
		second := refresh(first.RefreshToken)
		second.wantOK(t)

		fail.arm()
		reuse := refresh(first.RefreshToken)
		if fail.hits.Load() != 1 {
			t.Fatal("the reuse never wrote the deny list")
		}
		reuse.wantError(t, http.StatusServiceUnavailable, "temporarily_unavailable")

		refresh(first.RefreshToken).wantError(t, 400, "invalid_grant")
		resp, body := h.userinfo(second.AccessToken)
		wantStatus(t, "access token of a grant whose refresh token was reused", resp, body, http.StatusUnauthorized)
		refresh(second.RefreshToken).wantError(t, 400, "invalid_grant")
	})
}

// TestCodeReuseCompletesAfterRedisFailure: the same for a code presented
// twice (the tombstone path): the retry denies the access token.
func TestCodeReuseCompletesAfterRedisFailure(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h, fail := newFailingHarness(t, db)
		const ru = "https://app.example.com/cb"
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		form := url.Values{"grant_type": {"authorization_code"}, "code": {h.code(h.wallet.user(), codeParams(c, ru, ""))}, "redirect_uri": {ru}}
		first := h.token(form, c.ID, secret)
		first.wantOK(t)

		fail.arm()
		h.token(form, c.ID, secret).wantError(t, http.StatusServiceUnavailable, "temporarily_unavailable")
		if fail.hits.Load() != 1 {
			t.Fatal("the code's reuse never wrote the deny list")
		}
		h.token(form, c.ID, secret).wantError(t, 400, "invalid_grant")
		resp, body := h.userinfo(first.AccessToken)
		wantStatus(t, "access token of a reused code", resp, body, http.StatusUnauthorized)
	})
}

// TestOthersCannotBurnACode: a leaked code presented by another client —
// confidential or public, with the right verifier even — or under the
// rightful public client's id without its verifier, or with another
// redirect_uri, is invalid_grant and leaves the code as it was: the
// rightful client redeems it afterwards. Once redeemed, the same foreign
// presentations do not revoke the rightful client's tokens; only the
// rightful client presenting it again does (RFC 6749 §4.1.2).
func TestOthersCannotBurnACode(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		const ru, ru2 = "https://app.example.com/cb", "https://app.example.com/other"
		victim, _ := h.client(ClientRegistration{RedirectURIs: []string{ru, ru2}, Public: true})
		thief, _ := h.client(ClientRegistration{RedirectURIs: []string{ru}, Public: true})
		conf, confSecret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		verifier, challenge := pkce()
		wrongVerifier, _ := pkce()
		code := h.code(h.wallet.user(), codeParams(victim, ru, challenge))
		present := func(clientID, secret, redirectURI, ver string) tokenResp {
			v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
			if ver != "" {
				v.Set("code_verifier", ver)
			}
			if secret == "" {
				v.Set("client_id", clientID)
				return h.token(v, "", "")
			}
			return h.token(v, clientID, secret)
		}
		attacks := []struct {
			name                      string
			clientID, secret, ru, ver string
		}{
			{"another public client", thief.ID, "", ru, verifier},
			{"another confidential client", conf.ID, confSecret, ru, verifier},
			{"the public client's id, no verifier", victim.ID, "", ru, ""},
			{"the public client's id, a wrong verifier", victim.ID, "", ru, wrongVerifier},
			{"another registered redirect_uri", victim.ID, "", ru2, verifier},
		}
		for _, a := range attacks {
			present(a.clientID, a.secret, a.ru, a.ver).wantError(t, 400, "invalid_grant")
		}
		got := present(victim.ID, "", ru, verifier)
		got.wantOK(t)

		// The code is used now: the same presentations still change nothing.
		for _, a := range attacks {
			present(a.clientID, a.secret, a.ru, a.ver).wantError(t, 400, "invalid_grant")
		}
		resp, body := h.userinfo(got.AccessToken)
		wantStatus(t, "access token after foreign presentations of its used code", resp, body, http.StatusOK)
		next := h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {got.RefreshToken}, "client_id": {victim.ID}}, "", "")
		next.wantOK(t)

		// The rightful client presenting it again: reuse, the grant goes.
		present(victim.ID, "", ru, verifier).wantError(t, 400, "invalid_grant")
		resp, body = h.userinfo(next.AccessToken)
		wantStatus(t, "access token after the code's reuse by its client", resp, body, http.StatusUnauthorized)
	})
}

// TestRefreshFamilyMaxLifetime: rotation keeps a grant alive only up to
// RefreshFamilyMax from the authorization that started it
// (RFC 9700 §4.14.2): each rotated token expires at min(now + refresh TTL,
// start + max). Checked on both sides of the deadline with the server's
// clock.
func TestRefreshFamilyMaxLifetime(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		const ttl, max = time.Hour, 2 * time.Hour
		h := newHarness(t, db, nil, func(c *server.Config) { c.RefreshTokenTTL, c.RefreshFamilyMax = ttl, max })
		const ru = "https://app.example.com/cb"
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		start := time.Now().Truncate(time.Second)
		h.clock.Set(start)
		tr := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {h.code(h.wallet.user(), codeParams(c, ru, ""))}, "redirect_uri": {ru}}, c.ID, secret)
		tr.wantOK(t)
		expiry := func(tok string) time.Time {
			t.Helper()
			var ms int64
			if err := db.QueryRowContext(context.Background(), `SELECT expires_ms FROM oauth_refresh_tokens WHERE hash = $1`, HashToken(tok)).Scan(&ms); err != nil {
				t.Fatal(err)
			}
			return time.UnixMilli(ms)
		}
		refreshAt := func(at time.Time, tok string) tokenResp {
			t.Helper()
			h.clock.Set(at)
			return h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}, c.ID, secret)
		}
		if got := expiry(tr.RefreshToken); !got.Equal(start.Add(ttl)) {
			t.Fatalf("first refresh token expires %v, want start + ttl", got.Sub(start))
		}
		r2 := refreshAt(start.Add(50*time.Minute), tr.RefreshToken)
		r2.wantOK(t)
		if got := expiry(r2.RefreshToken); !got.Equal(start.Add(50*time.Minute + ttl)) {
			t.Errorf("rotated at 50m: expires %v after start, want 1h50m", got.Sub(start))
		}
		r3 := refreshAt(start.Add(100*time.Minute), r2.RefreshToken)
		r3.wantOK(t)
		if got := expiry(r3.RefreshToken); !got.Equal(start.Add(max)) {
			t.Errorf("rotated at 1h40m: expires %v after start, want the family's end, %v", got.Sub(start), max)
		}
		// Introspection reports the family's end as exp.
		resp, body := h.postForm("/introspect", url.Values{"token": {r3.RefreshToken}, "client_id": {c.ID}, "client_secret": {secret}}, nil)
		var in map[string]any
		json.Unmarshal(body, &in)
		if resp.StatusCode != 200 || in["active"] != true || int64(in["exp"].(float64)) != start.Add(max).Unix() {
			t.Errorf("introspect near the family's end: %d %s", resp.StatusCode, body)
		}

		// One second before the end it still rotates — to a token that
		// expires at the end, not an hour later.
		r4 := refreshAt(start.Add(max-time.Second), r3.RefreshToken)
		r4.wantOK(t)
		if got := expiry(r4.RefreshToken); !got.Equal(start.Add(max)) {
			t.Errorf("rotated 1s before the end: expires %v after start", got.Sub(start))
		}
		// At the end it is dead, though its own row is 1s old.
		refreshAt(start.Add(max), r4.RefreshToken).wantError(t, 400, "invalid_grant")
		resp, body = h.postForm("/introspect", url.Values{"token": {r4.RefreshToken}, "client_id": {c.ID}, "client_secret": {secret}}, nil)
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"active":false}` {
			t.Errorf("introspect at the family's end: %d %s", resp.StatusCode, body)
		}
	})
}

// TestRefreshFamilyMaxAppliesToStoredGrants: lowering RefreshFamilyMax
// ends grants whose tokens were issued under a longer one, without
// waiting for their own expiry.
func TestRefreshFamilyMaxAppliesToStoredGrants(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	h := newHarness(t, db, nil)
	const ru = "https://app.example.com/cb"
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
	start := time.Now()
	h.clock.Set(start)
	tr := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {h.code(h.wallet.user(), codeParams(c, ru, ""))}, "redirect_uri": {ru}}, c.ID, secret)
	tr.wantOK(t)

	short := newHarness(t, db, nil, func(cfg *server.Config) { cfg.RefreshFamilyMax = time.Hour })
	short.clock.Set(start.Add(time.Hour))
	short.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, c.ID, secret).wantError(t, 400, "invalid_grant")
	short.clock.Set(start.Add(time.Hour - time.Second))
	short.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, c.ID, secret).wantOK(t)
}

// TestDeletedClientTokensRefused: once a client is deleted, its access
// tokens open nothing — /userinfo, the Bearer check the backup API uses,
// /introspect — within the client cache's lifetime, not when they expire.
func TestDeletedClientTokensRefused(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}, Scopes: []string{"profile", "backup"}})
		rs, rsSecret := h.client(ClientRegistration{Grants: []string{GrantClientCredentials}})
		tr, _ := h.walletTokens(c, secret, "profile backup")
		bearer := func() error {
			r, _ := http.NewRequest("GET", h.issuer+"/backup", nil)
			r.Header.Set("Authorization", "Bearer "+tr.AccessToken)
			_, err := h.s.AuthenticateBearer(r, ScopeBackup)
			return err
		}
		introspect := func() string {
			resp, body := h.postForm("/introspect", url.Values{"token": {tr.AccessToken}}, map[string]string{"Authorization": basicAuth(rs.ID, rsSecret)})
			wantStatus(t, "introspect", resp, body, http.StatusOK)
			return string(body)
		}
		resp, body := h.userinfo(tr.AccessToken)
		wantStatus(t, "userinfo before the deletion", resp, body, http.StatusOK)
		if err := bearer(); err != nil {
			t.Fatalf("bearer before the deletion: %v", err)
		}
		if !strings.Contains(introspect(), `"active":true`) {
			t.Fatal("introspect before the deletion: inactive")
		}

		if err := DeleteClient(context.Background(), db.DB, c.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(ClientCacheTTL + 100*time.Millisecond)

		resp, body = h.userinfo(tr.AccessToken)
		wantStatus(t, "userinfo after the deletion", resp, body, http.StatusUnauthorized)
		if !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
		}
		if err := bearer(); errors.CodeOf(err) != errors.InvalidToken {
			t.Errorf("bearer after the deletion: %v", err)
		}
		if got := introspect(); strings.TrimSpace(got) != `{"active":false}` {
			t.Errorf("introspect after the deletion: %s", got)
		}
	})
}

// TestDenyListRestoredAtStart: Redis loses its data (a restart without
// persistence, the embedded Redis of a restarted authd). A server started
// on the same database writes the grants revoked within the deny list's
// lifetime back, so their access tokens stay refused.
func TestDenyListRestoredAtStart(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
		revoked, _ := h.walletTokens(c, secret, "")
		live, _ := h.walletTokens(c, secret, "")
		resp, body := h.postForm("/revoke", url.Values{"token": {revoked.RefreshToken}, "client_id": {c.ID}, "client_secret": {secret}}, nil)
		wantStatus(t, "revoke", resp, body, http.StatusOK)

		mr, rdb := miniredisClient(t) // a Redis that remembers nothing
		s2, err := New(context.Background(), Config{Issuer: h.issuer, DB: db.DB, Dialect: string(db.Dialect), Redis: rdb,
			Wallet: noWallet{}, KeyEncryption: testKeyEncryption, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		userinfo := func(tok string) error {
			r, _ := http.NewRequest("GET", h.issuer+"/userinfo", nil)
			r.Header.Set("Authorization", "Bearer "+tok)
			_, err := s2.AuthenticateBearer(r, ScopeProfile)
			return err
		}
		if err := userinfo(revoked.AccessToken); errors.CodeOf(err) != errors.InvalidToken {
			t.Errorf("revoked grant's access token after Redis lost its data: %v", err)
		}
		if err := userinfo(live.AccessToken); err != nil {
			t.Errorf("live access token: %v", err)
		}
		claims, err := h.s.VerifyAccessToken(context.Background(), revoked.AccessToken)
		if err != nil {
			t.Fatal(err)
		}
		fam, _ := FamilyOf(claims.Jti)
		if ttl := mr.TTL(FamilyKey(fam)); ttl <= h.s.FamilyDenyTTL()-time.Minute || ttl > h.s.FamilyDenyTTL() {
			t.Errorf("restored key lives %v, want about %v", ttl, h.s.FamilyDenyTTL())
		}

		// Once every access token of the grant has expired, there is
		// nothing to restore.
		for _, tc := range []struct {
			after time.Duration
			want  bool
		}{{h.s.FamilyDenyTTL() - time.Minute, true}, {h.s.FamilyDenyTTL() + time.Second, false}} {
			mr, rdb := miniredisClient(t)
			later := time.Now().Add(tc.after)
			if _, err := New(context.Background(), Config{Issuer: h.issuer, DB: db.DB, Dialect: string(db.Dialect), Redis: rdb,
				Wallet: noWallet{}, KeyEncryption: testKeyEncryption, Logger: quiet, Now: func() time.Time { return later }}); err != nil {
				t.Fatal(err)
			}
			if got := mr.Exists(FamilyKey(fam)); got != tc.want {
				t.Errorf("started %v after the revocation: deny-list key restored %v, want %v", tc.after, got, tc.want)
			}
		}
	})
}
