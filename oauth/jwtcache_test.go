package oauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
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
	if _, err := h.s.verifyAccessToken(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if _, ok := h.s.verified.get(sha256.Sum256([]byte(tok))); !ok || len(h.s.verified.m) != 1 {
		t.Fatalf("cache holds %d tokens after one verification", len(h.s.verified.m))
	}
	if _, err := h.s.verifyAccessToken(ctx, tok); err != nil {
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
	if _, err := h.s.verifyAccessToken(ctx, tok[:i+1]+string(sig)); errors.CodeOf(err) != errors.InvalidToken {
		t.Fatalf("tampered twin of a cached token: %v", err)
	}

	// Expiry is checked on every use.
	h.clock.Set(time.Now().Add(DefaultAccessTokenTTL + time.Second))
	if _, err := h.s.verifyAccessToken(ctx, tok); errors.CodeOf(err) != errors.InvalidToken {
		t.Fatalf("cached token past its expiry: %v", err)
	}
	h.clock.Set(time.Time{})

	// Two rotations drop the key that signed it.
	for range 2 {
		// Active a second ago: both keys are past the activation time,
		// whatever millisecond each gets.
		if _, err := RotateKey(ctx, db.DB, time.Now().Add(-time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// A minute on, both new keys are active (RotateKey may stamp a key a
	// millisecond after the newest to keep them ordered).
	h.clock.Set(time.Now().Add(time.Minute))
	if err := h.s.keys.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.verifyAccessToken(ctx, tok); errors.CodeOf(err) != errors.InvalidToken {
		t.Fatalf("cached token whose key was rotated out: %v", err)
	}
	h.clock.Set(time.Time{})

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

// basicAuth is the client_secret_basic header (RFC 6749 §2.3.1).
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

func TestVerifiedTokensBounded(t *testing.T) {
	c := newVerifiedTokens(2)
	for i := byte(0); i < 5; i++ {
		c.add([32]byte{i}, verifiedToken{kid: string('a' + i)})
	}
	if len(c.m) != 2 {
		t.Fatalf("holds %d, want 2", len(c.m))
	}
	if _, ok := c.get([32]byte{4}); !ok {
		t.Fatal("newest entry evicted")
	}
	if _, ok := c.get([32]byte{0}); ok {
		t.Fatal("oldest entry kept")
	}
}

// TestClientCacheForgetsDeletedClients: a deleted client stops working on
// a running server within clientCacheTTL.
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
	deadline := time.Now().Add(clientCacheTTL + 2*time.Second)
	for grant() != 401 {
		if time.Now().After(deadline) {
			t.Fatalf("deleted client still accepted %v after deletion", clientCacheTTL+2*time.Second)
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
	jwksKids := func() []string {
		_, body := h.get("/.well-known/jwks.json", nil)
		var set struct{ Keys []struct{ Kid string } }
		json.Unmarshal(body, &set)
		var kids []string
		for _, k := range set.Keys {
			kids = append(kids, k.Kid)
		}
		return kids
	}
	old := kidOf()
	now := time.Now()
	next, err := RotateKey(ctx, db.DB, now.Add(KeyActivationDelay))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.keys.reload(ctx); err != nil {
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
