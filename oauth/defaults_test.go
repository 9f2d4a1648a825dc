package oauth_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
	"github.com/go-oauth2/oauth2/v4"
	liberrors "github.com/go-oauth2/oauth2/v4/errors"
)

// TestGoOAuth2DefaultsNeutralised walks the go-oauth2 v4.5.4 defaults
// that must not reach a user, one subtest each, against the live
// handlers. The concurrency items are TestCodeRace and
// TestRefreshRace; form-decoding of Basic credentials is
// TestBasicCredentialsAreFormDecoded.
func TestGoOAuth2DefaultsNeutralised(t *testing.T) {
	h := newHarness(t, testenv.DB(t, store.SQLite), nil)
	const ru = "https://example.com/cb"
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
	pub, _ := h.client(ClientRegistration{RedirectURIs: []string{ru}, Public: true})
	other, otherSecret := h.client(ClientRegistration{RedirectURIs: []string{ru}})
	addr := h.wallet.user()
	verifier, challenge := pkce()
	authorize := func(v url.Values) (*http.Response, url.Values) {
		resp, _ := h.signedAuthorize(addr, authorizeURL(v), map[string]string{"Accept": "application/json"})
		loc, _ := url.Parse(resp.Header.Get("Location"))
		return resp, loc.Query()
	}
	exchange := func(code, redirect, ver string) tokenResp {
		v := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}}
		if ver != "" {
			v.Set("code_verifier", ver)
		}
		return h.token(v, c.ID, secret)
	}

	t.Run("host-suffix redirect matching", func(t *testing.T) {
		v := codeParams(c, "https://evilexample.com/cb", "")
		if resp, _ := authorize(v); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
			t.Errorf("suffix host: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if ValidateRedirectURIList(ru, "https://evilexample.com/cb") == nil {
			t.Error("the manager's URI validator still accepts a suffix")
		}
	})
	t.Run("unknown client or redirect_uri redirected with server_error", func(t *testing.T) {
		for _, v := range []url.Values{
			{"response_type": {"code"}, "client_id": {"nope"}, "redirect_uri": {"https://evil.com/"}},
			codeParams(c, "https://evil.com/", ""),
		} {
			if resp, _ := authorize(v); resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
				t.Errorf("%v: %d Location %q", v, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	})
	t.Run("errors that wrote nothing", func(t *testing.T) {
		resp, body := h.get(authorizeURL(url.Values{"response_type": {"code"}, "redirect_uri": {ru}}), map[string]string{"Accept": "application/json"})
		if resp.StatusCode != 400 || len(body) == 0 {
			t.Errorf("missing client_id: %d %q", resp.StatusCode, body)
		}
		v := codeParams(c, ru, "")
		v.Set("response_type", "token")
		if _, q := authorize(v); q.Get("error") != "unsupported_response_type" {
			t.Errorf("bad response_type: %v", q)
		}
		if _, q := authorize(codeParams(pub, ru, "short")); q.Get("error") != "invalid_request" {
			t.Errorf("short challenge: %v", q)
		}
	})
	t.Run("401 for invalid_grant, unsupported_grant_type, unauthorized_client", func(t *testing.T) {
		exchange("nope", ru, "").wantError(t, 400, "invalid_grant")
		h.token(url.Values{"grant_type": {"password"}}, c.ID, secret).wantError(t, 400, "unsupported_grant_type")
		h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, secret).wantError(t, 400, "unauthorized_client")
	})
	t.Run("500 for unknown client, PKCE mismatches, foreign redirect_uri", func(t *testing.T) {
		h.token(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {ru}}, "nope", "x").wantError(t, 401, "invalid_client")
		exchange(h.code(addr, codeParams(c, ru, challenge)), ru, "").wantError(t, 400, "invalid_grant")
		exchange(h.code(addr, codeParams(c, ru, "")), ru, verifier).wantError(t, 400, "invalid_grant")
		exchange(h.code(addr, codeParams(c, ru, "")), "https://evil.com/cb", "").wantError(t, 400, "invalid_grant")
	})
	t.Run("wrapped errors become 500", func(t *testing.T) {
		for lib, want := range map[error]errors.Code{
			liberrors.ErrInvalidAuthorizeCode: errors.InvalidGrant,
			liberrors.ErrMissingCodeVerifier:  errors.InvalidGrant,
			liberrors.ErrInvalidCodeChallenge: errors.InvalidGrant,
			liberrors.ErrInvalidRedirectURI:   errors.InvalidGrant,
			liberrors.ErrInvalidRefreshToken:  errors.InvalidGrant,
			liberrors.ErrExpiredRefreshToken:  errors.InvalidGrant,
			liberrors.ErrInvalidClient:        errors.InvalidClient,
		} {
			if got := errors.CodeOf(h.s.LibError(fmt.Errorf("layer: %w", lib), "test")); got != want {
				t.Errorf("wrapped %v: %s, want %s", lib, got, want)
			}
		}
		inner := errors.E(errors.TemporarilyUnavailable, "")
		if got := errors.CodeOf(h.s.LibError(fmt.Errorf("layer: %w", inner), "test")); got != errors.TemporarilyUnavailable {
			t.Errorf("wrapped *errors.Error: %s", got)
		}
	})
	t.Run("invalid_client without WWW-Authenticate, secrets compared with !=", func(t *testing.T) {
		tr := h.token(url.Values{"grant_type": {"client_credentials"}}, c.ID, "wrong")
		if tr.status != 401 || tr.hdr.Get("WWW-Authenticate") != `Basic realm="authd"` {
			t.Errorf("%d %q", tr.status, tr.hdr.Get("WWW-Authenticate"))
		}
		// The library compares GetSecret() with !=; authd's clients have no
		// readable secret and verify through VerifyPassword (constant time).
		var ci oauth2.ClientInfo = c
		if _, ok := ci.(oauth2.ClientPasswordVerifier); !ok || ci.GetSecret() != "" {
			t.Error("the library would compare secrets itself")
		}
		if !c.VerifyPassword(secret) || c.VerifyPassword(secret+"x") || c.VerifyPassword("") {
			t.Error("VerifyPassword")
		}
	})
	t.Run("refresh not bound, scope widens", func(t *testing.T) {
		tr := exchange(h.code(addr, codeParams(c, ru, "")), ru, "")
		h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, other.ID, otherSecret).wantError(t, 400, "invalid_grant")
		h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "scope": {"profile backup"}}, c.ID, secret).wantError(t, 400, "invalid_scope")
		h.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, c.ID, secret).wantOK(t)
	})
	t.Run("PKCE plain by default, verifier syntax unchecked", func(t *testing.T) {
		v := codeParams(pub, ru, challenge)
		v.Set("code_challenge_method", "plain")
		if _, q := authorize(v); q.Get("error") != "invalid_request" {
			t.Errorf("plain: %v", q)
		}
		v.Del("code_challenge_method")
		if _, q := authorize(v); q.Get("error") != "invalid_request" {
			t.Errorf("no method (plain): %v", q)
		}
		resp, body := h.postForm("/token", url.Values{"grant_type": {"authorization_code"}, "client_id": {pub.ID}, "redirect_uri": {ru},
			"code": {h.code(addr, codeParams(pub, ru, challenge))}, "code_verifier": {strings.Repeat("!", 50)}}, nil)
		var e map[string]string
		json.Unmarshal(body, &e)
		if resp.StatusCode != 400 || e["error"] != "invalid_request" {
			t.Errorf("verifier syntax: %d %v", resp.StatusCode, e)
		}
	})
}
