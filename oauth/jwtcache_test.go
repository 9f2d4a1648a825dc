package oauth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// TestVerifiedTokenCache: a remembered token skips the signature check, but
// never what can change: a token of other bytes is verified afresh, the
// lifetime is checked on every use, a key no longer trusted voids it, and
// revocation still applies.
func TestVerifiedTokenCache(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	h := newHarness(t, db, nil)
	c, secret := h.client(ClientRegistration{Grants: []string{GrantClientCredentials}})
	issue := func() string {
		tr := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret)
		tr.wantOK(t)
		return tr.AccessToken
	}
	ctx := context.Background()
	tok := issue()
	if _, err := h.s.VerifyAccessToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if cached, n := h.s.CachedToken(tok); !cached || n != 1 {
		t.Fatalf("cache holds %d tokens after one verification (this one: %v)", n, cached)
	}
	if _, err := h.s.VerifyAccessToken(ctx, tok); err != nil {
		t.Fatalf("cached token: %v", err)
	}

	// Another signature over the same header and payload: not the cached
	// token, so it is verified, and fails.
	i := strings.LastIndexByte(tok, '.')
	sig := []byte(tok[i+1:])
	sig[5] ^= 1
	if sig[5] == '.' || sig[5] > 'z' {
		sig[5] = 'A'
	}
	if _, err := h.s.VerifyAccessToken(ctx, tok[:i+1]+string(sig)); errors.CodeOf(err) != errors.InvalidToken {
		t.Fatalf("tampered twin of a cached token: %v", err)
	}

	// Expiry is checked on every use.
	h.clock.Set(time.Now().Add(DefaultAccessTokenTTL + time.Second))
	if _, err := h.s.VerifyAccessToken(ctx, tok); errors.CodeOf(err) != errors.InvalidToken {
		t.Fatalf("cached token past its expiry: %v", err)
	}
	h.clock.Set(time.Time{})

	// Retiring the key that signed it voids the cached token.
	old := kidOf(tok)
	rotateNow(t, db)
	if err := RetireKey(ctx, db.DB, old, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.s.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.VerifyAccessToken(ctx, tok); errors.CodeOf(err) != errors.InvalidToken {
		t.Fatalf("cached token whose key was retired: %v", err)
	}

	// Revocation applies to a cached token: introspection says inactive.
	tok = issue()
	introspect := func() string {
		resp, body := h.postForm("/introspect", url.Values{"token": {tok}}, map[string]string{"Authorization": basicAuth(c.ID, secret)})
		if resp.StatusCode != 200 {
			t.Fatalf("introspect: %d %s", resp.StatusCode, body)
		}
		return string(body)
	}
	if b := introspect(); !strings.Contains(b, `"active":true`) {
		t.Fatalf("fresh token: %s", b)
	}
	if resp, body := h.postForm("/revoke", url.Values{"token": {tok}}, map[string]string{"Authorization": basicAuth(c.ID, secret)}); resp.StatusCode != 200 {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if b := introspect(); !strings.Contains(b, `"active":false`) {
		t.Fatalf("revoked cached token: %s", b)
	}
}

// TestTokenCacheStats: every access-token lookup is counted once, as a
// hit when the cache answered it and as a miss when the signature had to
// be verified: a new token, a tampered one, and a cached one whose key is
// no longer trusted.
func TestTokenCacheStats(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	h := newHarness(t, db, nil)
	c, secret := h.client(ClientRegistration{Grants: []string{GrantClientCredentials}})
	issue := func() string {
		tr := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret)
		tr.wantOK(t)
		return tr.AccessToken
	}
	ctx := context.Background()
	want := func(step string, hits, misses uint64) {
		t.Helper()
		if got := h.s.TokenCacheStats(); got != (TokenCacheStats{Hits: hits, Misses: misses}) {
			t.Fatalf("%s: %+v, want %d hits and %d misses", step, got, hits, misses)
		}
	}
	tok := issue()
	want("after issuing", 0, 0) // signing a token does not cache it
	for i := range 3 {
		if _, err := h.s.VerifyAccessToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		want(fmt.Sprintf("after %d verifications", i+1), uint64(i), 1)
	}
	other := issue()
	if _, err := h.s.VerifyAccessToken(ctx, other); err != nil {
		t.Fatal(err)
	}
	want("a second token", 2, 2)

	i := strings.LastIndexByte(tok, '.')
	sig := []byte(tok[i+1:])
	sig[5] ^= 1
	if sig[5] == '.' || sig[5] > 'z' {
		sig[5] = 'A'
	}
	if _, err := h.s.VerifyAccessToken(ctx, tok[:i+1]+string(sig)); errors.CodeOf(err) != errors.InvalidToken {
		t.Fatalf("tampered token: %v", err)
	}
	want("a tampered token", 2, 3)

	// Introspection and Bearer checks share the cache.
	resp, body := h.postForm("/introspect", url.Values{"token": {tok}}, map[string]string{"Authorization": basicAuth(c.ID, secret)})
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"active":true`) {
		t.Fatalf("introspect: %d %s", resp.StatusCode, body)
	}
	want("introspection", 3, 3)

	// A cached token whose key was retired is a miss (and then fails).
	old := kidOf(tok)
	rotateNow(t, db)
	if err := RetireKey(ctx, db.DB, old, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := h.s.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.VerifyAccessToken(ctx, tok); errors.CodeOf(err) != errors.InvalidToken {
		t.Fatalf("token of a retired key: %v", err)
	}
	want("a cached token of a retired key", 3, 4)
}

// jwksKids returns the kids of the JWKS's keys of alg, in its order.
func jwksKids(t testing.TB, h *harness, alg string) []string {
	t.Helper()
	_, body := h.get("/.well-known/jwks.json", nil)
	var set struct{ Keys []struct{ Kid, Alg string } }
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		if k.Alg == alg {
			kids = append(kids, k.Kid)
		}
	}
	return kids
}

// kidOf returns the kid of a JWT's header.
func kidOf(tok string) string {
	hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var hdr map[string]string
	json.Unmarshal(hb, &hdr)
	return hdr["kid"]
}

// rotateNow rotates to a key that signs at once, and waits out the
// millisecond RotateKey may add to keep keys apart.
func rotateNow(t *testing.T, db *store.DB) KeyInfo {
	t.Helper()
	k, err := RotateKey(context.Background(), db.DB, testKeyEncryption, AlgES256, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Millisecond)
	return k
}

// basicAuth is the client_secret_basic header (RFC 6749 §2.3.1).
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// TestClientCacheForgetsDeletedClients: a deleted client stops working on
// a running server within ClientCacheTTL.
func TestClientCacheForgetsDeletedClients(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	h := newHarness(t, db, nil)
	c, secret := h.client(ClientRegistration{Grants: []string{GrantClientCredentials}})
	grant := func() int {
		return h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret).status
	}
	if st := grant(); st != 200 {
		t.Fatalf("grant: %d", st)
	}
	if err := DeleteClient(context.Background(), db.DB, c.ID); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(ClientCacheTTL + 2*time.Second)
	for grant() != 401 {
		if time.Now().After(deadline) {
			t.Fatalf("deleted client still accepted %v after deletion", ClientCacheTTL+2*time.Second)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestStagedRotation: a routine rotation publishes the new key at once and
// lets it sign only from its activation time, so a relying party that
// cached the JWKS in between knows every key a token may carry.
func TestStagedRotation(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	h := newHarness(t, db, nil)
	c, secret := h.client(ClientRegistration{Grants: []string{GrantClientCredentials}})
	ctx := context.Background()
	kidOf := func() string {
		tr := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret)
		tr.wantOK(t)
		hb, _ := base64.RawURLEncoding.DecodeString(strings.Split(tr.AccessToken, ".")[0])
		var hdr map[string]string
		json.Unmarshal(hb, &hdr)
		return hdr["kid"]
	}
	jwksKids := func() []string { return jwksKids(t, h, AlgES256) }
	old := kidOf()
	now := time.Now()
	next, err := RotateKey(ctx, db.DB, testKeyEncryption, AlgES256, now.Add(KeyActivationDelay))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if kids := jwksKids(); !slices.Contains(kids, next.KID) || !slices.Contains(kids, old) {
		t.Fatalf("JWKS during the delay %v, want the next %s and the current %s", kids, next.KID, old)
	}
	if got := kidOf(); got != old {
		t.Fatalf("signed with %s before its activation; want %s", got, old)
	}
	// Activation: the server switches without waiting for its reload tick.
	h.clock.Set(now.Add(KeyActivationDelay + time.Second))
	defer h.clock.Set(time.Time{})
	if got := kidOf(); got != next.KID {
		t.Fatalf("signed with %s after activation; want %s", got, next.KID)
	}
	if kids := jwksKids(); len(kids) != 2 || kids[0] != next.KID || kids[1] != old {
		t.Fatalf("JWKS after activation %v, want [%s %s]", kids, next.KID, old)
	}
}

// TestRotateNowWhilePending: a leaked key is rotated out at once even if a
// routine rotation is waiting, and RetireKey then stops it verifying.
func TestRotateNowWhilePending(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	h := newHarness(t, db, nil)
	c, secret := h.client(ClientRegistration{Grants: []string{GrantClientCredentials}})
	ctx := context.Background()
	issue := func() string {
		tr := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret)
		tr.wantOK(t)
		return tr.AccessToken
	}
	leakedTok := issue()
	leaked := kidOf(leakedTok)
	pending, err := RotateKey(ctx, db.DB, testKeyEncryption, AlgES256, time.Now().Add(KeyActivationDelay))
	if err != nil || pending.Status != "next" {
		t.Fatalf("routine rotation: %+v %v", pending, err)
	}
	emergency := rotateNow(t, db)
	if emergency.Status != "current" || !emergency.ActiveFrom.Before(pending.ActiveFrom) {
		t.Fatalf("rotation --now while one is pending: %+v", emergency)
	}
	if err := h.s.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kidOf(issue()); got != emergency.KID {
		t.Fatalf("signing with %s after rotate --now, want %s", got, emergency.KID)
	}
	// The leaked key still verifies until it is retired...
	if _, err := h.s.VerifyAccessToken(ctx, leakedTok); err != nil {
		t.Fatalf("before retiring: %v", err)
	}
	if err := RetireKey(ctx, db.DB, emergency.KID, time.Now()); err != ErrKeyInUse {
		t.Fatalf("retiring the signing key: %v", err)
	}
	if err := RetireKey(ctx, db.DB, "no-such-kid", time.Now()); err != ErrNoKey {
		t.Fatalf("retiring an unknown key: %v", err)
	}
	if err := RetireKey(ctx, db.DB, leaked, time.Now()); err != nil {
		t.Fatal(err)
	}
	// ...and not after the server's next reload.
	if err := h.s.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.VerifyAccessToken(ctx, leakedTok); errors.CodeOf(err) != errors.InvalidToken {
		t.Fatalf("token of the retired key: %v", err)
	}
	_, body := h.get("/.well-known/jwks.json", nil)
	if strings.Contains(string(body), leaked) || !strings.Contains(string(body), pending.KID) {
		t.Fatalf("JWKS after retiring %s: %s", leaked, body)
	}
}

// TestFirstStartWithPendingKey: keys rotate before the first serve leaves a
// pending key only; the server still gets a key that signs at once.
func TestFirstStartWithPendingKey(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	if _, err := RotateKey(context.Background(), db.DB, testKeyEncryption, AlgES256, time.Now().Add(KeyActivationDelay)); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, db, nil)
	if !h.s.HasSigningKey(context.Background()) {
		t.Fatal("no signing key")
	}
}

// TestSupersededKeysVerifyForATokenLifetime: two rotations within one
// access-token lifetime do not kill the tokens of the key two back. (ES256
// keys also sign ID Tokens: here those live as long as access tokens.)
func TestSupersededKeysVerifyForATokenLifetime(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	h := newHarness(t, db, nil, func(c *server.Config) { c.IDTokenTTL = DefaultAccessTokenTTL })
	c, secret := h.client(ClientRegistration{Grants: []string{GrantClientCredentials}})
	ctx := context.Background()
	tr := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret)
	tr.wantOK(t)
	base := time.Now()
	for i := 1; i <= 2; i++ {
		if _, err := RotateKey(ctx, db.DB, testKeyEncryption, AlgES256, base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	defer h.clock.Set(time.Time{})
	for _, tc := range []struct {
		at    time.Duration
		valid bool
	}{
		{3 * time.Minute, true},                        // two keys on, the token's key superseded 2 min ago
		{DefaultAccessTokenTTL - time.Minute, true},    // still inside the token's life
		{DefaultAccessTokenTTL + 2*time.Minute, false}, // the token is dead anyway
	} {
		h.clock.Set(base.Add(tc.at))
		if err := h.s.ReloadKeys(ctx); err != nil {
			t.Fatal(err)
		}
		_, err := h.s.VerifyAccessToken(ctx, tr.AccessToken)
		if (err == nil) != tc.valid {
			t.Errorf("at +%v: %v, want valid=%v", tc.at, err, tc.valid)
		}
	}
	// Past the lifetime the old key leaves the JWKS: current and previous only.
	if kids := jwksKids(t, h, AlgES256); len(kids) != 2 {
		t.Errorf("JWKS has %d ES256 keys long after the rotations, want 2", len(kids))
	}
}

// TestActivationReloadsOnce: when a published key's time comes, the server
// reloads once; with the database down it does not retry on every request.
func TestActivationReloadsOnce(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	h := newHarness(t, db, nil)
	ctx := context.Background()
	next, err := RotateKey(ctx, db.DB, testKeyEncryption, AlgES256, time.Now().Add(KeyActivationDelay))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.ReloadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.clock.Set(time.Time{})
	h.clock.Set(next.ActiveFrom.Add(time.Second))
	db.DB.Close()
	h.s.HasSigningKey(ctx) // the one reload for this activation; it fails
	first := h.s.KeysLoadedAt()
	for range 100 {
		if !h.s.HasSigningKey(ctx) {
			t.Fatal("lost the loaded keys")
		}
	}
	if got := h.s.KeysLoadedAt(); got != first {
		t.Fatalf("reloaded again after a failed activation reload (%d -> %d)", first, got)
	}
}
