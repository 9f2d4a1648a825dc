package oauth_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// TestProviderSeam is what the Google/GitHub sign-in will do: keep a
// validated authorization pending in Redis across the upstream round trip
// (JSON), then finish it for a provider subject, or send the client an
// access_denied.
func TestProviderSeam(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) { testProviderSeam(t, db) })
}

func testProviderSeam(t *testing.T, db *store.DB) {
	h := newHarness(t, db, nil)
	const ru = "https://app.example.com/cb"
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}, Scopes: []string{"profile", "email"}})
	ctx := context.Background()
	v := codeParams(c, ru, "")
	v.Set("state", "st")
	p, err := h.s.ValidateAuthorize(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.s.SavePending(ctx, p); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Pending
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	got, err := h.s.TakePending(ctx, back.ID)
	if err != nil || got.ClientID != c.ID || got.RedirectURI != ru || got.State != "st" || !got.HasState || got.Message == "" {
		t.Fatalf("TakePending: %+v %v", got, err)
	}
	if _, err := h.s.TakePending(ctx, back.ID); errors.CodeOf(err) != errors.InvalidRequest {
		t.Errorf("taken twice: %v", err)
	}

	if err := h.s.UpsertIdentity(ctx, Identity{Subject: "google:1234", Kind: KindGoogle, Email: "a@example.com"}); err != nil {
		t.Fatal(err)
	}
	if err := h.s.UpsertIdentity(ctx, Identity{Subject: "google:1234", Kind: KindGoogle, Email: "b@example.com"}); err != nil {
		t.Fatal(err)
	}
	loc, err := h.s.FinishAuthorization(ctx, got, SignIn{Subject: "google:1234", AuthTime: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(loc)
	if u.Host != "app.example.com" || u.Query().Get("state") != "st" || u.Query().Get("iss") != h.issuer {
		t.Fatalf("location %s", loc)
	}
	tr := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")}, "redirect_uri": {ru}}, c.ID, secret)
	tr.wantOK(t)
	resp, body := h.userinfo(tr.AccessToken)
	var ui map[string]string
	json.Unmarshal(body, &ui)
	if resp.StatusCode != 200 || ui["sub"] != "google:1234" || ui["email"] != "b@example.com" || ui["address"] != "" {
		t.Errorf("userinfo %d %v", resp.StatusCode, ui)
	}

	// A failed upstream sign-in goes back to the client as access_denied.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/callback/google", nil)
	httperr.Middleware(httperr.Config{URIBase: h.issuer + "/docs/errors"}, httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		return h.s.RedirectError(got, errors.AccessDenied, "Google authentication was unsuccessful")
	})).ServeHTTP(rec, req)
	loc = rec.Header().Get("Location")
	u, _ = url.Parse(loc)
	if rec.Code != 302 || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != "st" || u.Query().Get("iss") != h.issuer {
		t.Errorf("RedirectError: %d %s", rec.Code, loc)
	}

	// Identity rules.
	for _, bad := range []Identity{
		{Subject: "1abc", Kind: KindWallet, Address: "1xyz"},
		{Subject: "google:", Kind: KindGoogle},
		{Subject: "github:1", Kind: KindGoogle},
		{Subject: "x", Kind: "facebook"},
	} {
		if err := h.s.UpsertIdentity(ctx, bad); err == nil {
			t.Errorf("UpsertIdentity accepted %+v", bad)
		}
	}
	// A wallet identity learns its pubkey once.
	if err := h.s.UpsertIdentity(ctx, Identity{Subject: "1Wallet", Kind: KindWallet, Address: "1Wallet"}); err != nil {
		t.Fatal(err)
	}
	h.s.UpsertIdentity(ctx, Identity{Subject: "1Wallet", Kind: KindWallet, Address: "1Wallet", PubKey: "02aa"})
	h.s.UpsertIdentity(ctx, Identity{Subject: "1Wallet", Kind: KindWallet, Address: "1Wallet", PubKey: "03bb"})
	id, err := h.s.LookupIdentity(ctx, "1Wallet")
	if err != nil || id == nil || id.PubKey != "02aa" || id.Kind != KindWallet {
		t.Errorf("LookupIdentity %+v %v", id, err)
	}
	if id, err := h.s.LookupIdentity(ctx, "nobody"); id != nil || err != nil {
		t.Errorf("unknown identity: %+v %v", id, err)
	}
}

// TestRedisCluster runs codes, their reuse, revocation, the deny list and
// pending logins on a Redis Cluster: every script and multi-key command
// must stay inside one hash slot.
func TestRedisCluster(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), testenv.RedisCluster(t))
	const ru = "https://app.example.com/cb"
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
	for i := range 5 {
		tr, _ := h.walletTokens(c, secret, "")
		if resp, _ := h.userinfo(tr.AccessToken); resp.StatusCode != 200 {
			t.Fatalf("%d: userinfo %d", i, resp.StatusCode)
		}
		resp, _ := h.postForm("/revoke", url.Values{"token": {tr.RefreshToken}, "client_id": {c.ID}, "client_secret": {secret}}, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("revoke %d", resp.StatusCode)
		}
		if resp, _ := h.userinfo(tr.AccessToken); resp.StatusCode != 401 {
			t.Fatalf("%d: revoked token %d", i, resp.StatusCode)
		}
	}
	addr := h.wallet.user()
	code := h.code(addr, codeParams(c, ru, ""))
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ru}}
	first := h.token(form, c.ID, secret)
	first.wantOK(t)
	h.token(form, c.ID, secret).wantError(t, 400, "invalid_grant")
	if resp, _ := h.userinfo(first.AccessToken); resp.StatusCode != 401 {
		t.Errorf("reused code did not revoke: %d", resp.StatusCode)
	}
	h.c = h.browser() // without the session the signed requests started
	_, body := h.get(authorizeURL(codeParams(c, ru, "")), nil)
	id, msg := loginPage(t, body)
	resp, _ := h.postForm("/authorize/login", url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg)}}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("login on the cluster: %d", resp.StatusCode)
	}
}

// TestUnavailable: Redis or the database failing is 503
// temporarily_unavailable with Retry-After, answered directly, never a
// redirect and never a 500.
func TestUnavailable(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	mr, rdb := miniredisClient(t)
	h := newHarness(t, db, rdb, func(c *server.Config) { c.StoreTimeout = 500 * time.Millisecond })
	const ru = "https://app.example.com/cb"
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}, Grants: []string{"authorization_code", "refresh_token", "client_credentials"}})
	tr, addr := h.walletTokens(c, secret, "")
	want503 := func(what string, resp *http.Response) {
		t.Helper()
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || resp.Header.Get("Location") != "" {
			t.Errorf("%s: %d Retry-After %q Location %q", what, resp.StatusCode, resp.Header.Get("Retry-After"), resp.Header.Get("Location"))
		}
	}
	mr.SetError("LOADING Redis is loading the dataset in memory")
	resp, _ := h.get(authorizeURL(codeParams(c, ru, "")), nil)
	want503("login page", resp)
	resp, _ = h.signedAuthorize(addr, authorizeURL(codeParams(c, ru, "")), nil)
	want503("signed authorize", resp)
	resp, _ = h.userinfo(tr.AccessToken)
	want503("userinfo", resp)
	resp, _ = h.postForm("/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {ru}, "client_id": {c.ID}, "client_secret": {secret}}, nil)
	want503("code exchange", resp)
	mr.SetError("")
	if resp, _ := h.userinfo(tr.AccessToken); resp.StatusCode != 200 {
		t.Errorf("after Redis recovered: %d", resp.StatusCode)
	}

	// A client nobody has used yet, so no server has it in memory.
	fresh, freshSecret := h.client(ClientRegistration{RedirectURIs: []string{ru}, Grants: []string{"authorization_code", "client_credentials"}})
	// A client just used is remembered for ClientCacheTTL: its grants
	// that need nothing else from the database keep working through a
	// database blip.
	if tr := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret); tr.status != 200 {
		t.Fatalf("client_credentials: %d", tr.status)
	}
	db.DB.Close()
	if tr := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret); tr.status != 200 {
		t.Errorf("client_credentials of a just-seen client with the database down: %d", tr.status)
	}
	resp, _ = h.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {c.ID}, "client_secret": {secret}}, nil)
	want503("refresh with the database down", resp)
	resp, _ = h.postForm("/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {fresh.ID}, "client_secret": {freshSecret}}, nil)
	want503("token with the database down", resp)
	resp, _ = h.get(authorizeURL(codeParams(fresh, ru, "")), map[string]string{"Accept": "application/json"})
	want503("authorize with the database down", resp)
}

// TestPurge removes expired refresh tokens and revoked-family records only.
func TestPurge(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}})
		h.walletTokens(c, secret, "") // a live grant
		old, _ := h.walletTokens(c, secret, "")
		if resp, body := h.postForm("/revoke", url.Values{"token": {old.RefreshToken}, "client_id": {c.ID}, "client_secret": {secret}}, nil); resp.StatusCode != 200 {
			t.Fatalf("revoke: %d %s", resp.StatusCode, body)
		}
		count := func(table string) int {
			var n int
			if err := db.QueryRowContext(context.Background(), fmt.Sprintf("SELECT COUNT(*) FROM %s", table)).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n
		}
		if err := h.s.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
		if count("oauth_refresh_tokens") != 2 || count("oauth_revoked_families") != 1 {
			t.Fatal("Purge removed live rows")
		}
		h.clock.Set(time.Now().Add(DefaultRefreshTokenTTL + DefaultCodeTTL + time.Hour))
		if err := h.s.Purge(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, m := count("oauth_refresh_tokens"), count("oauth_revoked_families"); n != 0 || m != 0 {
			t.Errorf("after expiry: %d refresh tokens, %d families", n, m)
		}
	})
}

// recordingTB records failures instead of failing.
type recordingTB struct {
	testing.TB
	msgs []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Fatalf(format string, args ...any) {
	r.msgs = append(r.msgs, fmt.Sprintf(format, args...))
}
func (r *recordingTB) Helper() {}

// TestWireCheckerCatches proves the response checker every test request
// goes through does catch what it looks for.
func TestWireCheckerCatches(t *testing.T) {
	const iss = "https://auth.example.com"
	req := httptest.NewRequest("POST", "/token", nil)
	for _, tc := range []struct {
		name   string
		status int
		hdr    map[string]string
		body   string
	}{
		{"description with a quote", 400, map[string]string{"Content-Type": "application/json"},
			`{"error":"invalid_request","error_description":"say \"hi\"","error_uri":"https://auth.example.com/docs/errors#invalid_request","request_id":"r"}`},
		{"anchor not on the docs page", 400, map[string]string{"Content-Type": "application/json"},
			`{"error":"made_up","error_description":"x","error_uri":"https://auth.example.com/docs/errors#made_up","request_id":"r"}`},
		{"status not the catalog's", 401, map[string]string{"Content-Type": "application/json"},
			`{"error":"invalid_grant","error_description":"x","error_uri":"https://auth.example.com/docs/errors#invalid_grant","request_id":"r"}`},
		{"redirect without iss", 302, map[string]string{"Location": "https://app.example.com/cb?code=x"}, ""},
		{"error redirect with a code", 302, map[string]string{"Location": "https://app.example.com/cb?error=invalid_request&error_description=x&error_uri=https%3A%2F%2Fauth.example.com%2Fdocs%2Ferrors%23invalid_request&code=y&iss=https%3A%2F%2Fauth.example.com"}, ""},
		{"challenge outside the charset", 401, map[string]string{"WWW-Authenticate": "Bearer realm=\"authd\", error_description=\"caf\u00e9\""}, ""},
	} {
		rt := &recordingTB{TB: t}
		resp := &http.Response{StatusCode: tc.status, Header: http.Header{}}
		for k, v := range tc.hdr {
			resp.Header.Set(k, v)
		}
		resp.Header.Set("X-Request-Id", "r")
		checkWire(rt, iss, req, resp, []byte(tc.body))
		if len(rt.msgs) == 0 {
			t.Errorf("%s: not caught", tc.name)
		}
	}
	rt := &recordingTB{TB: t}
	resp := &http.Response{StatusCode: 400, Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r"}}}
	checkWire(rt, iss, req, resp, []byte(`{"error":"invalid_request","error_description":"Missing required parameter: grant_type","error_uri":"https://auth.example.com/docs/errors#invalid_request","request_id":"r"}`))
	if len(rt.msgs) != 0 || !strings.Contains(iss, "auth") {
		t.Errorf("a correct body was flagged: %v", rt.msgs)
	}
}
