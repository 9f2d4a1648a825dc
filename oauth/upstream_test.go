package oauth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// fakeUpstream plays an upstream provider: its authorization URL carries
// authd's state and S256 challenge, and Exchange accepts only a code it
// issued for that challenge, with the matching verifier.
type fakeUpstream struct {
	name string
	mu   sync.Mutex
	// codes issued: code -> challenge
	codes map[string]string
	// exchangeErr, when set, is what Exchange fails with.
	exchangeErr string
	// emailAsked records the email flag of the last AuthCodeURL and
	// Exchange.
	emailAsked [2]bool
}

func newFakeUpstream(name string) *fakeUpstream {
	return &fakeUpstream{name: name, codes: map[string]string{}}
}

func (f *fakeUpstream) Name() string { return f.name }

func (f *fakeUpstream) Code() errors.Code {
	if f.name == KindGitHub {
		return errors.GitHubAuthFailed
	}
	return errors.GoogleAuthFailed
}

func (f *fakeUpstream) fail(providerError string) *errors.Error {
	e, _ := errors.Lookup(f.Code())
	return errors.E(f.Code(), e.Description).WithCause("", errors.New("fake upstream failure")).WithProviderError(providerError)
}

func (f *fakeUpstream) AuthCodeURL(state, verifier string, email bool) string {
	f.mu.Lock()
	f.emailAsked[0] = email
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(verifier))
	return "https://" + f.name + ".example/auth?" + url.Values{"state": {state}, "code_challenge": {b64url(sum[:])}}.Encode()
}

func (f *fakeUpstream) CallbackError(q url.Values) error {
	if q.Has("error") {
		return f.fail(q.Get("error"))
	}
	return nil
}

// consent is the user approving at the provider: it returns the callback
// query the provider would redirect with.
func (f *fakeUpstream) consent(t *testing.T, authURL string) url.Values {
	t.Helper()
	u, err := url.Parse(authURL)
	if err != nil || u.Host != f.name+".example" {
		t.Fatalf("authorization URL %q", authURL)
	}
	code := RandomToken(8)
	f.mu.Lock()
	f.codes[code] = u.Query().Get("code_challenge")
	f.mu.Unlock()
	return url.Values{"code": {code}, "state": {u.Query().Get("state")}}
}

func (f *fakeUpstream) Exchange(ctx context.Context, code, verifier string, email bool) (UpstreamUser, error) {
	f.mu.Lock()
	f.emailAsked[1] = email
	f.mu.Unlock()
	if f.exchangeErr != "" {
		return UpstreamUser{}, f.fail(f.exchangeErr)
	}
	f.mu.Lock()
	challenge, ok := f.codes[code]
	delete(f.codes, code)
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(verifier))
	if !ok || b64url(sum[:]) != challenge {
		return UpstreamUser{}, f.fail("invalid_grant")
	}
	u := UpstreamUser{Subject: f.name + ":4242", Name: "Pat Person", Picture: "https://pictures.example/pat.png"}
	if f.name == KindGitHub {
		u.Login = "pat"
	}
	if email || f.name == KindGoogle {
		u.Email, u.EmailVerified = "person@example.com", true
	}
	return u, nil
}

func TestUpstreamSignIn(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) { testUpstreamSignIn(t, db) })
}

func testUpstreamSignIn(t *testing.T, db *store.DB) {
	google, github := newFakeUpstream(KindGoogle), newFakeUpstream(KindGitHub)
	h := newHarness(t, db, nil, func(c *server.Config) { c.Upstreams = []Upstream{google, github} })
	const ru = "https://app.example.com/cb"
	c, secret := h.client(ClientRegistration{RedirectURIs: []string{ru}, Scopes: []string{"profile"}})
	// The users allowed the client before: a sign-in the client starts at
	// the provider then needs no consent page (see TestProviderConsent).
	grantConsent(t, h, c, "google:4242", "github:4242")
	verifier, challenge := pkce()
	params := codeParams(c, ru, challenge)
	params.Set("state", "client-state")

	start := func(provider string) *http.Response {
		t.Helper()
		v := url.Values{}
		for k, vs := range params {
			v[k] = vs
		}
		v.Set("provider", provider)
		resp, body := h.get(authorizeURL(v), nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize with provider=%s: %d %s", provider, resp.StatusCode, body)
		}
		return resp
	}
	callback := func(provider string, q url.Values) (*http.Response, []byte) {
		t.Helper()
		return h.get("/callback/"+provider+"?"+q.Encode(), map[string]string{"Accept": "application/json"})
	}

	for _, up := range []*fakeUpstream{google, github} {
		t.Run(up.name+" success", func(t *testing.T) {
			resp := start(up.name)
			q := up.consent(t, resp.Header.Get("Location"))
			resp, body := callback(up.name, q)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("callback: %d %s", resp.StatusCode, body)
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if loc.Host != "app.example.com" || loc.Query().Get("state") != "client-state" || loc.Query().Get("iss") != h.issuer || loc.Query().Get("code") == "" {
				t.Fatalf("redirect %s", loc)
			}
			tr := h.token(url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")}, "redirect_uri": {ru}, "code_verifier": {verifier}}, c.ID, secret)
			tr.wantOK(t)
			resp, body = h.userinfo(tr.AccessToken)
			var ui map[string]string
			json.Unmarshal(body, &ui)
			if resp.StatusCode != 200 || ui["sub"] != up.name+":4242" || ui["address"] != "" {
				t.Fatalf("userinfo %d %s", resp.StatusCode, body)
			}
			// The state was single use: the same callback again has no
			// pending authorization.
			resp, body = callback(up.name, q)
			wantProviderError(t, resp, body, up.Code(), "invalid_state")
		})
	}

	t.Run("user denies at the provider", func(t *testing.T) {
		resp := start(KindGoogle)
		q := google.consent(t, resp.Header.Get("Location"))
		q.Del("code")
		q.Set("error", "access_denied")
		resp, body := callback(KindGoogle, q)
		wantDenied(t, h, resp, body, "google_auth_failed", "Google authentication was unsuccessful")
	})
	t.Run("exchange fails", func(t *testing.T) {
		resp := start(KindGitHub)
		q := github.consent(t, resp.Header.Get("Location"))
		github.exchangeErr = "timeout"
		defer func() { github.exchangeErr = "" }()
		resp, body := callback(KindGitHub, q)
		wantDenied(t, h, resp, body, "github_auth_failed", "GitHub authentication was unsuccessful")
	})
	t.Run("callback in another browser", func(t *testing.T) {
		// The attacker starts a sign-in, consents as themselves, and hands
		// the callback URL to a victim whose browser never started it.
		resp := start(KindGoogle)
		q := google.consent(t, resp.Header.Get("Location"))
		victim := &http.Client{Transport: h.c.Transport, CheckRedirect: h.c.CheckRedirect}
		req, _ := http.NewRequest("GET", h.issuer+"/callback/google?"+q.Encode(), nil)
		req.Header.Set("Accept", "application/json")
		vresp, err := victim.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(vresp.Body)
		vresp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		wantProviderError(t, vresp, body, errors.GoogleAuthFailed, "invalid_state")
		// The state was not spent: the browser that started it finishes.
		resp, body = callback(KindGoogle, q)
		if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "code=") {
			t.Fatalf("the starting browser after the refused one: %d %s", resp.StatusCode, body)
		}
	})
	t.Run("binding cookie", func(t *testing.T) {
		v := url.Values{}
		for k, vs := range params {
			v[k] = vs
		}
		v.Set("provider", KindGoogle)
		resp, body := h.get(authorizeURL(v), nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("authorize with provider=google: %d %s", resp.StatusCode, body)
		}
		var ck *http.Cookie
		for _, c := range resp.Cookies() {
			if strings.HasPrefix(c.Name, "authd_up_") {
				ck = c
			}
		}
		if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/callback/" || ck.MaxAge <= 0 || len(ck.Value) < 43 {
			t.Fatalf("binding cookie %+v", ck)
		}
		// Knowing the state is not enough to forge it.
		q := google.consent(t, resp.Header.Get("Location"))
		forged := &http.Client{Transport: h.c.Transport, CheckRedirect: h.c.CheckRedirect}
		req, _ := http.NewRequest("GET", h.issuer+"/callback/google?"+q.Encode(), nil)
		sum := sha256.Sum256([]byte(q.Get("state")))
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: b64url(sum[:])})
		hs := sha256.Sum256([]byte(q.Get("state")))
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: hex.EncodeToString(hs[:])})
		req.Header.Set("Accept", "application/json")
		fresp, err := forged.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err = io.ReadAll(fresp.Body)
		fresp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		wantProviderError(t, fresp, body, errors.GoogleAuthFailed, "invalid_state")
	})
	t.Run("state of another provider", func(t *testing.T) {
		resp := start(KindGoogle)
		q := google.consent(t, resp.Header.Get("Location"))
		resp, body := callback(KindGitHub, q)
		wantProviderError(t, resp, body, errors.GitHubAuthFailed, "invalid_state")
	})
	t.Run("unknown state", func(t *testing.T) {
		resp, body := callback(KindGoogle, url.Values{"code": {"x"}, "state": {"forged"}})
		wantProviderError(t, resp, body, errors.GoogleAuthFailed, "invalid_state")
		resp, body = callback(KindGoogle, url.Values{"code": {"x"}})
		wantProviderError(t, resp, body, errors.GoogleAuthFailed, "invalid_state")
	})
	t.Run("provider error without pending authorization", func(t *testing.T) {
		resp, body := callback(KindGitHub, url.Values{"error": {"access_denied"}, "state": {"gone"}})
		wantProviderError(t, resp, body, errors.GitHubAuthFailed, "access_denied")
	})
	t.Run("expired state", func(t *testing.T) {
		resp := start(KindGoogle)
		q := google.consent(t, resp.Header.Get("Location"))
		h.clock.Set(time.Now().Add(DefaultLoginTTL + time.Second))
		defer h.clock.Set(time.Time{})
		resp, body := callback(KindGoogle, q)
		wantProviderError(t, resp, body, errors.GoogleAuthFailed, "invalid_state")
	})
	t.Run("unconfigured provider", func(t *testing.T) {
		v := url.Values{}
		for k, vs := range params {
			v[k] = vs
		}
		v.Set("provider", "facebook")
		resp, body := h.get(authorizeURL(v), nil)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc.Query().Get("error") != "invalid_request" ||
			loc.Query().Get("error_description") != "Provider 'facebook' is not configured" || loc.Query().Get("state") != "client-state" {
			t.Fatalf("%d %s %s", resp.StatusCode, loc, body)
		}
		resp, _ = h.get("/callback/facebook?state=x", nil)
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("callback of an unconfigured provider: %d", resp.StatusCode)
		}
	})
	t.Run("from the login page", func(t *testing.T) {
		h.c = h.browser() // without the session of the sign-ins above
		resp, body := h.get(authorizeURL(params), map[string]string{"Accept": "text/html"})
		if resp.StatusCode != 200 || !strings.Contains(string(body), "Sign in with GitHub") {
			t.Fatalf("login page %d", resp.StatusCode)
		}
		id, _ := loginPage(t, body)
		resp, body = h.postForm("/authorize/login", url.Values{"login_id": {id}, "provider": {"github"}}, nil)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("provider button: %d %s", resp.StatusCode, body)
		}
		q := github.consent(t, resp.Header.Get("Location"))
		resp, body = callback(KindGitHub, q)
		if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "code=") {
			t.Fatalf("callback: %d %s", resp.StatusCode, body)
		}
		// The login was taken: the page's form cannot be used again.
		resp, _ = h.postForm("/authorize/login", url.Values{"login_id": {id}, "provider": {"github"}}, nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("reused login: %d", resp.StatusCode)
		}
	})
}

// wantDenied checks a provider failure delivered to the client: an
// access_denied redirect documented at the provider's catalog entry.
func wantDenied(t *testing.T, h *harness, resp *http.Response, body []byte, anchor, desc string) {
	t.Helper()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	q := loc.Query()
	if loc.Host != "app.example.com" || q.Get("error") != "access_denied" || q.Get("error_description") != desc ||
		q.Get("error_uri") != h.issuer+"/docs/errors#"+anchor || q.Get("state") != "client-state" || q.Get("iss") != h.issuer || q.Has("code") {
		t.Fatalf("redirect %s", loc)
	}
}

func wantProviderError(t *testing.T, resp *http.Response, body []byte, code errors.Code, providerError string) {
	t.Helper()
	var e struct {
		Error, ErrorURI, ProviderError string
	}
	var raw map[string]any
	json.Unmarshal(body, &raw)
	e.Error, _ = raw["error"].(string)
	e.ErrorURI, _ = raw["error_uri"].(string)
	e.ProviderError, _ = raw["provider_error"].(string)
	if resp.StatusCode != http.StatusUnauthorized || e.Error != string(code) || e.ProviderError != providerError ||
		!strings.HasSuffix(e.ErrorURI, "#"+string(code)) {
		t.Fatalf("got %d %s; want %s with provider_error %s", resp.StatusCode, body, code, providerError)
	}
}

// TestBindingCookiePath: under an issuer with a path, the binding cookie is
// sent to that issuer's callback, not to the host's root.
func TestBindingCookiePath(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	s, err := New(context.Background(), Config{Issuer: "https://auth.example.com/tenant", DB: db.DB, Dialect: "sqlite",
		Redis: testenv.Redis(t), Wallet: noWallet{}, KeyEncryption: testKeyEncryption, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	c := s.BindingCookie("st", "nonce", 60)
	if c.Path != "/tenant/callback/" || !c.Secure {
		t.Fatalf("cookie %+v", c)
	}
}
