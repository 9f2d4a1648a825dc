package oauth_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// codeParams is an authorization request for c with PKCE challenge.
func codeParams(c *Client, ru, challenge string) url.Values {
	v := url.Values{"response_type": {"code"}, "client_id": {c.ID}, "redirect_uri": {ru}, "state": {"s"}}
	if challenge != "" {
		v.Set("code_challenge", challenge)
		v.Set("code_challenge_method", "S256")
	}
	return v
}

// TestTokenEndpointErrors: every way a token request can be wrong gets the
// RFC 6749 code with the catalog status (400, 401 only for invalid_client,
// with WWW-Authenticate naming the scheme the client used, or Basic), never
// a 500.
func TestTokenEndpointErrors(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		const ru = "https://app.example.com/cb"
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		pub, _ := h.client(ClientRegistration{RedirectURIs: []string{ru}, Public: true})
		addr := h.wallet.user()
		code := func() string { return h.code(addr, codeParams(c, ru, "")) }
		basic := func(id, sec string) string {
			r := &http.Request{Header: http.Header{}}
			r.SetBasicAuth(id, sec)
			return r.Header.Get("Authorization")
		}
		for _, tc := range []struct {
			name      string
			form      url.Values
			auth      string
			status    int
			code      string
			challenge string
		}{
			{"missing grant_type", url.Values{"client_id": {c.ID}, "client_secret": {secret}}, "", 400, "invalid_request", ""},
			{"empty grant_type", url.Values{"grant_type": {""}, "client_id": {c.ID}, "client_secret": {secret}}, "", 400, "invalid_request", ""},
			{"password grant", url.Values{"grant_type": {"password"}, "client_id": {c.ID}, "client_secret": {secret}}, "", 400, "unsupported_grant_type", ""},
			{"implicit grant", url.Values{"grant_type": {"__implicit"}, "client_id": {c.ID}, "client_secret": {secret}}, "", 400, "unsupported_grant_type", ""},
			{"repeated grant_type", url.Values{"grant_type": {"authorization_code", "authorization_code"}}, "", 400, "invalid_request", ""},
			{"two auth methods", url.Values{"grant_type": {"client_credentials"}, "client_secret": {secret}}, basic(c.ID, secret), 400, "invalid_request", ""},
			{"mismatched client_id", url.Values{"grant_type": {"client_credentials"}, "client_id": {pub.ID}}, basic(c.ID, secret), 400, "invalid_request", ""},
			{"no credentials", url.Values{"grant_type": {"client_credentials"}}, "", 401, "invalid_client", `Basic realm="authd"`},
			{"unknown client, post", url.Values{"grant_type": {"client_credentials"}, "client_id": {"nope"}, "client_secret": {"x"}}, "", 401, "invalid_client", `Basic realm="authd"`},
			{"unknown client, basic", url.Values{"grant_type": {"client_credentials"}}, basic("nope", "x"), 401, "invalid_client", `Basic realm="authd"`},
			{"wrong secret, post", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {"x"}}, "", 401, "invalid_client", `Basic realm="authd"`},
			{"wrong secret, basic", url.Values{"grant_type": {"client_credentials"}}, basic(c.ID, "x"), 401, "invalid_client", `Basic realm="authd"`},
			{"confidential without secret", url.Values{"grant_type": {"authorization_code"}, "client_id": {c.ID}, "code": {"x"}, "redirect_uri": {ru}}, "", 401, "invalid_client", `Basic realm="authd"`},
			{"public with a secret", url.Values{"grant_type": {"authorization_code"}, "client_id": {pub.ID}, "client_secret": {"x"}}, "", 401, "invalid_client", `Basic realm="authd"`},
			{"bearer at token", url.Values{"grant_type": {"client_credentials"}}, "Bearer abc", 401, "invalid_client", `Bearer realm="authd"`},
			{"malformed basic", url.Values{"grant_type": {"client_credentials"}}, "Basic !!!", 401, "invalid_client", `Basic realm="authd"`},
			{"grant not registered", url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ID}, "client_secret": {secret}}, "", 400, "unauthorized_client", ""},
			{"missing code", url.Values{"grant_type": {"authorization_code"}, "redirect_uri": {ru}}, basic(c.ID, secret), 400, "invalid_request", ""},
			{"missing redirect_uri", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, basic(c.ID, secret), 400, "invalid_request", ""},
			{"unknown code", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {ru}}, basic(c.ID, secret), 400, "invalid_grant", ""},
			{"foreign redirect_uri", url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {"https://evil.com/cb"}}, basic(c.ID, secret), 400, "invalid_grant", ""},
			{"code of another client", url.Values{"grant_type": {"authorization_code"}, "client_id": {pub.ID}, "code": {code()}, "redirect_uri": {ru}}, "", 400, "invalid_grant", ""},
			{"bad verifier syntax", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {ru}, "code_verifier": {"short"}}, basic(c.ID, secret), 400, "invalid_request", ""},
			{"missing refresh_token", url.Values{"grant_type": {"refresh_token"}}, basic(c.ID, secret), 400, "invalid_request", ""},
			{"unknown refresh_token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, basic(c.ID, secret), 400, "invalid_grant", ""},
			{"access token as refresh token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"a.b.c"}}, basic(c.ID, secret), 400, "invalid_grant", ""},
			{"malformed refresh scope", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "scope": {" "}}, basic(c.ID, secret), 400, "invalid_scope", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				hdr := map[string]string{}
				if tc.auth != "" {
					hdr["Authorization"] = tc.auth
				}
				resp, body := h.postForm("/token", tc.form, hdr)
				var e map[string]any
				if err := json.Unmarshal(body, &e); err != nil {
					t.Fatalf("%d: not JSON: %s", resp.StatusCode, body)
				}
				if resp.StatusCode != tc.status || e["error"] != tc.code {
					t.Fatalf("got %d %v, want %d %s", resp.StatusCode, e, tc.status, tc.code)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != tc.challenge {
					t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
				}
				if resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("Pragma") != "no-cache" {
					t.Error("error without Cache-Control: no-store and Pragma: no-cache")
				}
			})
		}
		// Not a form.
		req, _ := http.NewRequest("POST", h.issuer+"/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
		req.Header.Set("Content-Type", "application/json")
		if resp, _ := h.do(req); resp.StatusCode != 400 {
			t.Errorf("JSON body: %d", resp.StatusCode)
		}
		// Over the form limit.
		big := url.Values{"grant_type": {"client_credentials"}, "pad": {strings.Repeat("a", 70<<10)}}
		if resp, _ := h.postForm("/token", big, nil); resp.StatusCode != 413 {
			t.Errorf("oversized form: %d", resp.StatusCode)
		}
		// GET /token goes through httperr.Write as method_not_allowed.
		if resp, _ := h.get("/token", nil); resp.StatusCode != 405 {
			t.Errorf("GET /token: %d", resp.StatusCode)
		}
	})
}

// TestBasicCredentialsAreFormDecoded: RFC 6749 §2.3.1 has the client id and
// secret form-encoded before Basic encoding; go-oauth2 does not decode
// them.
func TestBasicCredentialsAreFormDecoded(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	id, secret := "my client+1:a", "s3cret %+:/ é"
	sum := sha256.Sum256([]byte(secret))
	if _, err := h.db.ExecContext(context.Background(), `INSERT INTO oauth_clients
		(id, secret_hash, name, redirect_uris, grant_types, scope, public, created_ms) VALUES ($1, $2, 'Odd', '[]', 'client_credentials', 'profile', 0, 0)`,
		id, hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	h.token(url.Values{"grant_type": {"client_credentials"}}, id, secret).wantOK(t)
	h.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}}, "", "").wantOK(t)
	// Basic without form-encoding: "+" would mean a space.
	r := &http.Request{Header: http.Header{}}
	r.SetBasicAuth(id, secret)
	resp, _ := h.postForm("/token", url.Values{"grant_type": {"client_credentials"}}, map[string]string{"Authorization": r.Header.Get("Authorization")})
	if resp.StatusCode != 401 {
		t.Errorf("raw Basic credentials with '+' and '%%': %d, want 401", resp.StatusCode)
	}
}

// TestClientCredentials: confidential clients with the grant get an access
// token (sub = client_id, RFC 9068 §2.2) and no refresh token; scope only
// narrows.
func TestClientCredentials(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		c, secret := h.client(ClientRegistration{Grants: []string{"client_credentials"}, Scopes: []string{"profile", "backup"}})
		tr := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret)
		tr.wantOK(t)
		if tr.RefreshToken != "" || tr.Scope != "profile backup" || tr.ExpiresIn != 900 || tr.TokenType != "Bearer" {
			t.Errorf("response %+v", tr.TokenResponse)
		}
		claims := checkAccessJWT(t, h, tr.AccessToken)
		if claims["sub"] != c.ID || claims["client_id"] != c.ID {
			t.Errorf("claims %v", claims)
		}
		tr = h.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"backup"}}, c.ID, secret)
		tr.wantOK(t)
		if tr.Scope != "backup" {
			t.Errorf("narrowed scope %q", tr.Scope)
		}
		h.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"backup admin"}}, c.ID, secret).wantError(t, 400, "invalid_scope")
		// A client_credentials token names no user: /userinfo refuses it.
		resp, _ := h.userinfo(tr.AccessToken)
		if resp.StatusCode != 403 { // scope backup lacks profile
			t.Errorf("userinfo with backup-only token: %d", resp.StatusCode)
		}
		tr = h.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"profile"}}, c.ID, secret)
		if resp, _ := h.userinfo(tr.AccessToken); resp.StatusCode != 401 {
			t.Errorf("userinfo with a client token: %d, want 401", resp.StatusCode)
		}
	})
}

// TestPKCE: S256 round trip, and every downgrade is invalid_grant (never
// 500): a verifier for a code issued without a challenge, a challenge
// without a verifier, a wrong verifier.
func TestPKCE(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		const ru = "https://app.example.com/cb"
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		addr := h.wallet.user()
		verifier, challenge := pkce()
		other, _ := pkce()
		exchange := func(code, ver string) tokenResp {
			v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ru}}
			if ver != "" {
				v.Set("code_verifier", ver)
			}
			return h.token(v, c.ID, secret)
		}
		exchange(h.code(addr, codeParams(c, ru, challenge)), verifier).wantOK(t)
		exchange(h.code(addr, codeParams(c, ru, "")), "").wantOK(t) // confidential: PKCE optional
		exchange(h.code(addr, codeParams(c, ru, "")), verifier).wantError(t, 400, "invalid_grant")
		exchange(h.code(addr, codeParams(c, ru, challenge)), "").wantError(t, 400, "invalid_grant")
		exchange(h.code(addr, codeParams(c, ru, challenge)), other).wantError(t, 400, "invalid_grant")
		exchange(h.code(addr, codeParams(c, ru, challenge)), challenge).wantError(t, 400, "invalid_grant") // plain-style
		exchange(h.code(addr, codeParams(c, ru, challenge)), verifier+"~").wantError(t, 400, "invalid_grant")
		exchange(h.code(addr, codeParams(c, ru, challenge)), strings.Repeat("a", 129)).wantError(t, 400, "invalid_request")
		exchange(h.code(addr, codeParams(c, ru, challenge)), "has space"+strings.Repeat("a", 40)).wantError(t, 400, "invalid_request")
	})
}

// TestCodeSingleUse: a code redeems once; presenting it again revokes the
// tokens issued from it (RFC 6749 §4.1.2).
func TestCodeSingleUse(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		const ru = "https://app.example.com/cb"
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		addr := h.wallet.user()
		code := h.code(addr, codeParams(c, ru, ""))
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ru}}
		first := h.token(form, c.ID, secret)
		first.wantOK(t)
		if resp, _ := h.userinfo(first.AccessToken); resp.StatusCode != 200 {
			t.Fatalf("fresh token: %d", resp.StatusCode)
		}
		h.token(form, c.ID, secret).wantError(t, 400, "invalid_grant")
		if resp, _ := h.userinfo(first.AccessToken); resp.StatusCode != 401 {
			t.Errorf("access token still works after its code was reused: %d", resp.StatusCode)
		}
		h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, c.ID, secret).wantError(t, 400, "invalid_grant")
	})
}

// TestCodeRace: a code redeemed by 8 concurrent requests succeeds exactly
// once, and the losers' reuse revokes what the winner got — also when a
// loser ran before the winner finished issuing. Many trials on real Redis;
// run under -race.
func TestCodeRace(t *testing.T) {
	trials := 40
	if testing.Short() {
		trials = 8
	}
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		const ru = "https://app.example.com/cb"
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		addr := h.wallet.user()
		for trial := range trials {
			verifier, challenge := pkce()
			code := h.code(addr, codeParams(c, ru, challenge))
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ru}, "code_verifier": {verifier}}
			winners, losers := raceTokens(t, h, 8, form, c.ID, secret)
			if len(winners) != 1 || losers != 7 {
				t.Fatalf("trial %d: %d winners and %d invalid_grant losers; want exactly 1 and 7", trial, len(winners), losers)
			}
			w := winners[0]
			if resp, body := h.userinfo(w.AccessToken); resp.StatusCode != 401 {
				t.Fatalf("trial %d: the winner's access token survived the reuse: %d %s", trial, resp.StatusCode, body)
			}
			h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {w.RefreshToken}}, c.ID, secret).wantError(t, 400, "invalid_grant")
		}
	})
}

// raceTokens sends n copies of one token request at once and returns the
// successes and the number of invalid_grant answers; any other answer
// fails t.
func raceTokens(t *testing.T, h *harness, n int, form url.Values, id, secret string) (winners []tokenResp, losers int) {
	t.Helper()
	var (
		wg sync.WaitGroup
		mu sync.Mutex
	)
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tr := h.token(form, id, secret)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case tr.status == 200 && tr.AccessToken != "":
				winners = append(winners, tr)
			case tr.status == 400 && tr.Error == "invalid_grant":
				losers++
			default:
				t.Errorf("unexpected %d %s (%s)", tr.status, tr.Error, tr.Description)
			}
		}()
	}
	close(start)
	wg.Wait()
	return winners, losers
}

// TestCodeExpiry: a code is dead after CodeTTL, by Redis expiry (miniredis
// with a moved clock) and by the server's clock alike.
func TestCodeExpiry(t *testing.T) {
	mr, rdb := miniredisClient(t)
	h := newHarness(t, testenv.DB(t, store.SQLite), rdb)
	const ru = "https://app.example.com/cb"
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
	addr := h.wallet.user()
	form := func(code string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {ru}}
	}
	code := h.code(addr, codeParams(c, ru, ""))
	mr.FastForward(DefaultCodeTTL + time.Second)
	h.token(form(code), c.ID, secret).wantError(t, 400, "invalid_grant")

	code = h.code(addr, codeParams(c, ru, ""))
	mr.FastForward(DefaultCodeTTL - 5*time.Second)
	h.token(form(code), c.ID, secret).wantOK(t)

	code = h.code(addr, codeParams(c, ru, ""))
	h.clock.Set(time.Now().Add(DefaultCodeTTL))
	h.token(form(code), c.ID, secret).wantError(t, 400, "invalid_grant")
}

// TestRefreshRotation: refresh tokens rotate; the old one, presented
// again, fails and kills the new one and its access token; they are bound
// to their client; scope only narrows, and the rotated grant keeps its
// scope (RFC 6749 §6).
func TestRefreshRotation(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		const ru = "https://app.example.com/cb"
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}, Scopes: []string{"profile", "backup"}})
		other, otherSecret := h.client(ClientRegistration{RedirectURIs: []string{ru}, Scopes: []string{"profile", "backup"}})
		addr := h.wallet.user()
		p := codeParams(c, ru, "")
		p.Set("scope", "profile backup")
		first := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {h.code(addr, p)}, "redirect_uri": {ru}}, c.ID, secret)
		first.wantOK(t)
		refresh := func(tok, scope, id, sec string) tokenResp {
			v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok}}
			if scope != "" {
				v.Set("scope", scope)
			}
			return h.token(v, id, sec)
		}

		// Another client's credentials: invalid_grant, and the token is
		// not burnt for its owner.
		refresh(first.RefreshToken, "", other.ID, otherSecret).wantError(t, 400, "invalid_grant")
		// Wider scope: invalid_scope, nothing burnt either.
		refresh(first.RefreshToken, "profile backup admin", c.ID, secret).wantError(t, 400, "invalid_scope")

		// Narrowing: the access token narrows, the grant does not.
		second := refresh(first.RefreshToken, "backup", c.ID, secret)
		second.wantOK(t)
		if second.Scope != "backup" || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
			t.Fatalf("narrowed refresh %+v", second.TokenResponse)
		}
		third := refresh(second.RefreshToken, "profile backup", c.ID, secret)
		third.wantOK(t)
		if third.Scope != "profile backup" {
			t.Errorf("the rotated grant lost its scope: %q", third.Scope)
		}
		if resp, _ := h.userinfo(third.AccessToken); resp.StatusCode != 200 {
			t.Fatalf("new access token: %d", resp.StatusCode)
		}

		// Reusing a rotated token: invalid_grant, and the newest refresh
		// token and its access token die with it.
		refresh(first.RefreshToken, "", c.ID, secret).wantError(t, 400, "invalid_grant")
		refresh(third.RefreshToken, "", c.ID, secret).wantError(t, 400, "invalid_grant")
		if resp, _ := h.userinfo(third.AccessToken); resp.StatusCode != 401 {
			t.Errorf("access token survived the family's revocation: %d", resp.StatusCode)
		}

		// Expiry by the server's clock.
		fresh := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {h.code(addr, codeParams(c, ru, ""))}, "redirect_uri": {ru}}, c.ID, secret)
		h.clock.Set(time.Now().Add(DefaultRefreshTokenTTL + time.Minute))
		refresh(fresh.RefreshToken, "", c.ID, secret).wantError(t, 400, "invalid_grant")
		h.clock.Set(time.Time{})

		// A client that lost the refresh_token grant gets no refresh token.
		noRefresh, nrSecret := h.client(ClientRegistration{RedirectURIs: []string{ru}, Grants: []string{"authorization_code"}})
		tr := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {h.code(addr, codeParams(noRefresh, ru, ""))}, "redirect_uri": {ru}}, noRefresh.ID, nrSecret)
		tr.wantOK(t)
		if tr.RefreshToken != "" {
			t.Error("refresh token issued to a client without the refresh_token grant")
		}
	})
}

// TestRefreshRace: a refresh token redeemed by 8 concurrent requests
// rotates exactly once, and the losers' reuse revokes the family: the
// winner's new refresh and access tokens die with it. Many trials on real
// Redis; run under -race.
func TestRefreshRace(t *testing.T) {
	trials := 40
	if testing.Short() {
		trials = 8
	}
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		const ru = "https://app.example.com/cb"
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		addr := h.wallet.user()
		for trial := range trials {
			first := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {h.code(addr, codeParams(c, ru, ""))}, "redirect_uri": {ru}}, c.ID, secret)
			first.wantOK(t)
			if first.RefreshToken == "" {
				t.Fatal("no refresh token")
			}
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}
			winners, losers := raceTokens(t, h, 8, form, c.ID, secret)
			if len(winners) != 1 || losers != 7 {
				t.Fatalf("trial %d: %d winners and %d invalid_grant losers; want exactly 1 and 7", trial, len(winners), losers)
			}
			w := winners[0]
			if w.RefreshToken == "" || w.RefreshToken == first.RefreshToken {
				t.Fatalf("trial %d: the winner got refresh token %q", trial, w.RefreshToken)
			}
			h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {w.RefreshToken}}, c.ID, secret).wantError(t, 400, "invalid_grant")
			if resp, body := h.userinfo(w.AccessToken); resp.StatusCode != 401 {
				t.Fatalf("trial %d: the winner's access token survived the reuse: %d %s", trial, resp.StatusCode, body)
			}
		}
	})
}

// TestTokenErrorGolden pins the wire bodies of token errors.
func TestTokenErrorGolden(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	_, rdb := miniredisClient(t)
	s, err := New(context.Background(), Config{Issuer: "https://auth.example.com", DB: db.DB, Dialect: "sqlite", Redis: rdb, Wallet: noWallet{}, KeyEncryption: testKeyEncryption, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	h := httperr.Middleware(httperr.Config{URIBase: "https://auth.example.com/docs/errors", Logger: quiet}, httperr.HandlerFunc(s.Token))
	for _, tc := range []struct {
		name string
		form string
		auth string
	}{
		{"missing_grant_type", "client_id=x", ""},
		{"unsupported_grant_type", "grant_type=password&username=u&password=p", ""},
		{"invalid_client_basic", "grant_type=client_credentials", "Basic bm9wZTp4"},
		{"repeated_parameter", "grant_type=client_credentials&grant_type=client_credentials", ""},
		{"grant_type_with_quote", `grant_type=pass"word%0A`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/token", strings.NewReader(tc.form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("X-Request-Id", "req-"+tc.name)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			var buf bytes.Buffer
			buf.WriteString(strconv.Itoa(rec.Code) + "\n")
			for _, k := range []string{"Cache-Control", "Content-Type", "Pragma", "WWW-Authenticate"} {
				if v := rec.Header().Get(k); v != "" {
					buf.WriteString(k + ": " + v + "\n")
				}
			}
			buf.WriteString("\n")
			buf.Write(rec.Body.Bytes())
			checkGolden(t, "token_"+tc.name+".golden", buf.Bytes())
		})
	}
}
