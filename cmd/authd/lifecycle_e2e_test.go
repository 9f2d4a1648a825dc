package main

// End-to-end tests of the token lifecycle against the attacks it must
// refuse: each drives the server as main wires it, on real PostgreSQL and
// Redis where the attack allows it.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
)

// walletCode runs a wallet-signed authorization for client id with a PKCE
// challenge and returns the code and the verifier.
func (e *e2e) walletCode(id, redirectURI, scope string) (code, verifier string) {
	e.t.Helper()
	verifier, challenge := pkcePair()
	q := url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {redirectURI}, "state": {"s"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	if scope != "" {
		q.Set("scope", scope)
	}
	resp, body := e.signed("GET", "/authorize?"+q.Encode(), nil, nil)
	if resp.StatusCode != http.StatusFound {
		e.t.Fatalf("signed authorize: %d %s", resp.StatusCode, body)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc.Query().Get("code") == "" {
		e.t.Fatalf("authorize redirected to %s", loc)
	}
	return loc.Query().Get("code"), verifier
}

// form posts a form and decodes the JSON answer.
func (e *e2e) form(path string, v url.Values, hdr map[string]string) (int, map[string]any) {
	e.t.Helper()
	h := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for k, x := range hdr {
		h[k] = x
	}
	resp, body := e.do("POST", path, []byte(v.Encode()), h)
	var m map[string]any
	if len(body) > 0 {
		if err := json.Unmarshal(body, &m); err != nil {
			e.t.Fatalf("%s: %d, not JSON: %s", path, resp.StatusCode, body)
		}
	}
	return resp.StatusCode, m
}

// status of a Bearer request.
func (e *e2e) bearerStatus(method, path, token string) int {
	e.t.Helper()
	resp, _ := e.do(method, path, nil, map[string]string{"Authorization": "Bearer " + token})
	return resp.StatusCode
}

// TestE2EOthersCannotBurnACode: a code leaked to another client — on real
// PostgreSQL and Redis — is refused to that client and to anyone using
// the public client's id without its verifier, and stays redeemable by
// the client it was issued to; presented again by the other client after
// the redemption, it does not revoke the rightful client's tokens.
func TestE2EOthersCannotBurnACode(t *testing.T) {
	e := newE2E(t, map[string]string{"AUTHD_RATE_LIMITS": "token=100/1m"}, false)
	const ru = "http://127.0.0.1/cb"
	victim, _ := e.client("--redirect-uri", ru, "--public")
	thief, _ := e.client("--redirect-uri", ru, "--public")
	code, verifier := e.walletCode(victim, ru, "")
	wrong, _ := pkcePair()
	present := func(clientID, ver string) (int, map[string]any) {
		return e.form("/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ru},
			"client_id": {clientID}, "code_verifier": {ver}}, nil)
	}
	for _, a := range []struct{ clientID, verifier string }{{thief, verifier}, {victim, wrong}} {
		if st, m := present(a.clientID, a.verifier); st != 400 || m["error"] != "invalid_grant" {
			t.Fatalf("foreign presentation: %d %v", st, m)
		}
	}
	conf := &oauth2.Config{ClientID: victim, RedirectURL: ru,
		Endpoint: oauth2.Endpoint{AuthURL: e.issuer + "/authorize", TokenURL: e.issuer + "/token", AuthStyle: oauth2.AuthStyleInParams}}
	tok, err := conf.Exchange(e.ctx(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("the rightful client after the foreign attempts: %v", err)
	}
	if st, m := present(thief, verifier); st != 400 || m["error"] != "invalid_grant" {
		t.Fatalf("foreign presentation of the used code: %d %v", st, m)
	}
	if st := e.bearerStatus("GET", "/userinfo", tok.AccessToken); st != 200 {
		t.Errorf("the rightful client's access token after a foreign presentation of its used code: %d", st)
	}
	tok.Expiry = time.Now().Add(-time.Minute)
	if _, err := conf.TokenSource(e.ctx(), tok).Token(); err != nil {
		t.Errorf("the rightful client's refresh token after a foreign presentation of its used code: %v", err)
	}
}

// failingSet fails the next SET of a key starting with prefix at the
// embedded Redis itself.
type failingSet struct {
	e      *e2e
	prefix string
	armed  atomic.Bool
	hits   atomic.Int32
}

func (f *failingSet) DialHook(next redis.DialHook) redis.DialHook { return next }
func (f *failingSet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (f *failingSet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		a := cmd.Args()
		if strings.EqualFold(cmd.Name(), "set") && len(a) > 1 && strings.HasPrefix(a[1].(string), f.prefix) && f.armed.CompareAndSwap(true, false) {
			f.hits.Add(1)
			mr := f.e.a.redis.embedded
			mr.SetError("ERR the test made Redis fail at this step")
			defer mr.SetError("")
		}
		return next(ctx, cmd)
	}
}

// TestE2ERevocationCompletesAfterRedisFailure: the embedded Redis fails
// exactly when /revoke writes a revoked grant's deny-list key, after the
// database recorded the revocation. /revoke answers 503; the retry answers
// 200 and the grant's access token is dead from then on (RFC 7009 §2.1).
func TestE2ERevocationCompletesAfterRedisFailure(t *testing.T) {
	e := newE2E(t, nil, true)
	fail := &failingSet{e: e, prefix: "authd:oauth:fam:"}
	e.a.redis.UniversalClient.AddHook(fail)
	const ru = "http://127.0.0.1/cb"
	id, secret := e.client("--redirect-uri", ru)
	code, verifier := e.walletCode(id, ru, "")
	conf := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: ru,
		Endpoint: oauth2.Endpoint{AuthURL: e.issuer + "/authorize", TokenURL: e.issuer + "/token"}}
	tok, err := conf.Exchange(e.ctx(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	revoke := url.Values{"token": {tok.RefreshToken}, "client_id": {id}, "client_secret": {secret}}

	fail.armed.Store(true)
	if st, m := e.form("/revoke", revoke, nil); st != http.StatusServiceUnavailable || m["error"] != "temporarily_unavailable" {
		t.Fatalf("revoke while Redis fails: %d %v", st, m)
	}
	if fail.hits.Load() != 1 {
		t.Fatal("the failure was not injected")
	}
	if st, m := e.form("/revoke", revoke, nil); st != 200 {
		t.Fatalf("revoke retried: %d %v", st, m)
	}
	if st := e.bearerStatus("GET", "/userinfo", tok.AccessToken); st != 401 {
		t.Errorf("access token of a grant whose revocation answered 200: %d", st)
	}
}

// TestE2EDeletedClientTokensRefused: `authd client delete` ends the
// client's access tokens at /userinfo, /backup and /introspect within a
// second, on real PostgreSQL and Redis.
func TestE2EDeletedClientTokensRefused(t *testing.T) {
	e := newE2E(t, nil, false)
	const ru = "http://127.0.0.1/cb"
	id, secret := e.client("--redirect-uri", ru, "--scope", "profile backup")
	rs, rsSecret := e.client("--grant", "client_credentials")
	code, verifier := e.walletCode(id, ru, "profile backup")
	conf := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: ru,
		Endpoint: oauth2.Endpoint{AuthURL: e.issuer + "/authorize", TokenURL: e.issuer + "/token"}}
	tok, err := conf.Exchange(e.ctx(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	introspect := func() map[string]any {
		st, m := e.form("/introspect", url.Values{"token": {tok.AccessToken}, "client_id": {rs}, "client_secret": {rsSecret}}, nil)
		if st != 200 {
			t.Fatalf("introspect: %d %v", st, m)
		}
		return m
	}
	if e.bearerStatus("GET", "/userinfo", tok.AccessToken) != 200 || e.bearerStatus("GET", "/backup", tok.AccessToken) != 404 || introspect()["active"] != true {
		t.Fatal("the token does not work before the deletion")
	}
	if err := runClient(context.Background(), e.a.db, []string{"delete", id}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // the client cache's lifetime
	for _, path := range []string{"/userinfo", "/backup"} {
		resp, body := e.do("GET", path, nil, map[string]string{"Authorization": "Bearer " + tok.AccessToken})
		if resp.StatusCode != 401 || !bytes.Contains(body, []byte(`"invalid_token"`)) {
			t.Errorf("%s with a deleted client's token: %d %s", path, resp.StatusCode, body)
		}
	}
	if m := introspect(); m["active"] != false || len(m) != 1 {
		t.Errorf("introspect a deleted client's token: %v", m)
	}
}

// TestE2ERefreshFamilyMax: AUTHD_REFRESH_FAMILY_MAX ends a grant however
// often it rotates: a refresh before the end works, one after it is
// invalid_grant.
func TestE2ERefreshFamilyMax(t *testing.T) {
	e := newE2E(t, map[string]string{"AUTHD_ACCESS_TOKEN_TTL": "1s", "AUTHD_REFRESH_FAMILY_MAX": "3s"}, true)
	const ru = "http://127.0.0.1/cb"
	id, secret := e.client("--redirect-uri", ru)
	code, verifier := e.walletCode(id, ru, "")
	conf := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: ru,
		Endpoint: oauth2.Endpoint{AuthURL: e.issuer + "/authorize", TokenURL: e.issuer + "/token"}}
	start := time.Now()
	tok, err := conf.Exchange(e.ctx(), code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	refresh := func() error {
		tok.Expiry = time.Now().Add(-time.Minute)
		next, err := conf.TokenSource(e.ctx(), tok).Token()
		if err == nil {
			tok = next
		}
		return err
	}
	time.Sleep(time.Second)
	if err := refresh(); err != nil || time.Since(start) > 2500*time.Millisecond {
		t.Fatalf("refresh inside the grant's lifetime: %v (at %v)", err, time.Since(start))
	}
	time.Sleep(time.Until(start.Add(3*time.Second + 200*time.Millisecond)))
	var re *oauth2.RetrieveError
	if err := refresh(); !asRetrieveError(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh past the grant's lifetime: %v", err)
	}
}
