package provider_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/provider"
)

// fakeUpstream speaks the provider side of the authorization-code flow
// with PKCE: it issues codes bound to a code_challenge, checks the
// verifier and client credentials at the token endpoint, and serves a
// profile for the access token it issued.
type fakeUpstream struct {
	t            *testing.T
	kind         string // "google" or "github"
	clientID     string
	clientSecret string

	mu         sync.Mutex
	challenges map[string]string // code -> S256 challenge
	// Knobs for failure cases.
	tokenStatus   int    // non-zero: answer the token request with this status
	tokenError    string // error code in the token response
	profileStatus int
	profileBody   string
	delay         time.Duration
	// GitHub's GET /user/emails: its status and body, and how often it
	// was asked.
	emailsStatus int
	emailsBody   string
	emailsCalls  int
}

func newFake(t *testing.T, kind string) (*fakeUpstream, *httptest.Server) {
	f := &fakeUpstream{t: t, kind: kind, clientID: "cid", clientSecret: "csecret", challenges: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth", f.authorize)
	mux.HandleFunc("GET /login/oauth/authorize", f.authorize)
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /login/oauth/access_token", f.token)
	mux.HandleFunc("GET /userinfo", f.profile)
	mux.HandleFunc("GET /api/user", f.profile)
	mux.HandleFunc("GET /api/user/emails", f.emails)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

// authorize plays the user consenting: it records the challenge and
// returns the code it would redirect with.
func (f *fakeUpstream) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != f.clientID || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("state") == "" {
		http.Error(w, "bad authorize request", 400)
		return
	}
	code := fmt.Sprintf("code-%d", len(f.challenges)+1)
	f.mu.Lock()
	f.challenges[code] = q.Get("code_challenge")
	f.mu.Unlock()
	fmt.Fprint(w, code)
}

func (f *fakeUpstream) token(w http.ResponseWriter, r *http.Request) {
	time.Sleep(f.delay)
	r.ParseForm()
	if f.tokenStatus != 0 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.tokenStatus)
		fmt.Fprintf(w, `{"error":%q}`, f.tokenError)
		return
	}
	f.mu.Lock()
	challenge, ok := f.challenges[r.Form.Get("code")]
	delete(f.challenges, r.Form.Get("code"))
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(r.Form.Get("code_verifier")))
	errCode := ""
	switch {
	case r.Form.Get("client_id") != f.clientID || r.Form.Get("client_secret") != f.clientSecret:
		errCode = "invalid_client"
	case !ok:
		errCode = "invalid_grant"
	case base64.RawURLEncoding.EncodeToString(sum[:]) != challenge:
		errCode = "invalid_grant"
	}
	if f.kind == "github" {
		// GitHub answers 200 with a form-encoded body, errors included.
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
		if errCode != "" {
			if errCode == "invalid_grant" {
				errCode = "bad_verification_code"
			}
			fmt.Fprintf(w, "error=%s&error_description=nope", errCode)
			return
		}
		fmt.Fprint(w, "access_token=gho_test&token_type=bearer&scope=read%3Auser")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if errCode != "" {
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"error":%q}`, errCode)
		return
	}
	fmt.Fprint(w, `{"access_token":"ya29.test","token_type":"Bearer","expires_in":3599,"id_token":"x.y.z"}`)
}

func (f *fakeUpstream) profile(w http.ResponseWriter, r *http.Request) {
	time.Sleep(f.delay)
	want := "Bearer ya29.test"
	if f.kind == "github" {
		want = "Bearer gho_test"
	}
	if r.Header.Get("Authorization") != want {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if f.profileStatus != 0 {
		w.WriteHeader(f.profileStatus)
	}
	if f.profileBody != "" {
		fmt.Fprint(w, f.profileBody)
		return
	}
	if f.kind == "github" {
		fmt.Fprint(w, `{"login":"octocat","id":583231,"email":"public@example.com","name":"The Octocat","avatar_url":"https://avatars.githubusercontent.com/u/583231?v=4"}`)
		return
	}
	fmt.Fprint(w, `{"sub":"110169484474386276334","email":"user@example.com","email_verified":true,"name":"Gail User","picture":"https://lh3.googleusercontent.com/a/pic"}`)
}

func (f *fakeUpstream) emails(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.emailsCalls++
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer gho_test" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if f.emailsStatus != 0 {
		w.WriteHeader(f.emailsStatus)
	}
	body := f.emailsBody
	if body == "" {
		body = `[{"email":"old@example.com","primary":false,"verified":true},{"email":"octocat@github.com","primary":true,"verified":true}]`
	}
	fmt.Fprint(w, body)
}

func newProvider(kind string, srv *httptest.Server, client *http.Client) *provider.Provider {
	cfg := provider.Config{ClientID: "cid", ClientSecret: "csecret", RedirectURL: "https://authd.example/callback/" + kind, HTTPClient: client}
	if kind == "github" {
		return provider.NewGitHub(cfg, provider.GitHubEndpoints{BaseURL: srv.URL, APIURL: srv.URL + "/api"})
	}
	return provider.NewGoogle(cfg, provider.GoogleEndpoints{AuthURL: srv.URL + "/auth", TokenURL: srv.URL + "/token", UserInfoURL: srv.URL + "/userinfo"})
}

// consent follows the provider's authorization URL as the user's browser
// would and returns the code.
func consent(t *testing.T, p *provider.Provider, state, verifier string) string {
	t.Helper()
	u := p.AuthCodeURL(state, verifier, false)
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if pu.Query().Get("redirect_uri") != "https://authd.example/callback/"+p.Name() || pu.Query().Get("state") != state {
		t.Fatalf("authorization URL %s lacks redirect_uri or state", u)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("authorize at fake: %d %s %v", resp.StatusCode, b, err)
	}
	return string(b)
}

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

func TestExchangeSuccess(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		email bool // the caller wants the e-mail address
		want  provider.Profile
	}{
		{"google", false, provider.Profile{Provider: "google", ID: "110169484474386276334", Email: "user@example.com", EmailVerified: true,
			Name: "Gail User", Picture: "https://lh3.googleusercontent.com/a/pic"}},
		{"google", true, provider.Profile{Provider: "google", ID: "110169484474386276334", Email: "user@example.com", EmailVerified: true,
			Name: "Gail User", Picture: "https://lh3.googleusercontent.com/a/pic"}},
		// The public profile's address is not taken: it may be unverified.
		{"github", false, provider.Profile{Provider: "github", ID: "583231", Login: "octocat", Name: "The Octocat",
			Picture: "https://avatars.githubusercontent.com/u/583231?v=4"}},
		{"github", true, provider.Profile{Provider: "github", ID: "583231", Login: "octocat", Name: "The Octocat",
			Picture: "https://avatars.githubusercontent.com/u/583231?v=4", Email: "octocat@github.com", EmailVerified: true}},
	} {
		t.Run(fmt.Sprintf("%s/email=%v", tc.kind, tc.email), func(t *testing.T) {
			f, srv := newFake(t, tc.kind)
			p := newProvider(tc.kind, srv, nil)
			code := consent(t, p, "st4te", verifier)
			prof, err := p.Exchange(context.Background(), code, verifier, tc.email)
			if err != nil {
				t.Fatal(err)
			}
			if prof != tc.want {
				t.Fatalf("profile = %+v, want %+v", prof, tc.want)
			}
			if wantCalls := map[bool]int{true: 1}[tc.email && tc.kind == "github"]; f.emailsCalls != wantCalls {
				t.Errorf("GET /user/emails asked %d times, want %d", f.emailsCalls, wantCalls)
			}
		})
	}
}

// TestGitHubEmail: only a verified primary address is taken; GitHub
// failing to list the addresses fails the sign-in like any profile
// failure.
func TestGitHubEmail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string // the Email, or "fail"
	}{
		{"primary unverified", 0, `[{"email":"a@example.com","primary":true,"verified":false},{"email":"b@example.com","primary":false,"verified":true}]`, ""},
		{"none", 0, `[]`, ""},
		{"not JSON", 0, `<html>`, "fail"},
		{"500", 500, `[]`, "fail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newFake(t, "github")
			f.emailsStatus, f.emailsBody = tc.status, tc.body
			p := newProvider("github", srv, nil)
			code := consent(t, p, "s", verifier)
			prof, err := p.Exchange(context.Background(), code, verifier, true)
			if tc.want == "fail" {
				checkFailure(t, p, err, failure{"server_error"})
				return
			}
			if err != nil || prof.Email != tc.want || prof.EmailVerified {
				t.Fatalf("profile %+v, %v", prof, err)
			}
		})
	}
}

// TestPictureMustBeHTTPS: a picture is handed to clients as a URL, so only
// an absolute https one is kept.
func TestPictureMustBeHTTPS(t *testing.T) {
	for _, pic := range []string{"javascript:alert(1)", "http://example.com/a.png", "/relative.png", "https://"} {
		f, srv := newFake(t, "google")
		f.profileBody = `{"sub":"1","picture":` + strconv.Quote(pic) + `}`
		p := newProvider("google", srv, nil)
		code := consent(t, p, "s", verifier)
		prof, err := p.Exchange(context.Background(), code, verifier, false)
		if err != nil || prof.Picture != "" {
			t.Errorf("picture %q kept as %q (%v)", pic, prof.Picture, err)
		}
	}
}

// failure is what a failed exchange must look like on the wire.
type failure struct {
	providerError string
}

func checkFailure(t *testing.T, p *provider.Provider, err error, want failure) {
	t.Helper()
	var e *errors.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *errors.Error", err)
	}
	wantCode := errors.GoogleAuthFailed
	if p.Name() == "github" {
		wantCode = errors.GitHubAuthFailed
	}
	if e.Code != wantCode || e.ProviderError != want.providerError {
		t.Fatalf("error = code %s provider_error %q; want %s %q (cause %v)", e.Code, e.ProviderError, wantCode, want.providerError, e.Err)
	}
	if e.Code.Status() != http.StatusUnauthorized {
		t.Fatalf("status %d", e.Code.Status())
	}
}

func TestExchangeFailures(t *testing.T) {
	for _, kind := range []string{"google", "github"} {
		for _, tc := range []struct {
			name  string
			setup func(f *fakeUpstream)
			// verifier sent at exchange; "" means the right one
			verifier string
			client   *http.Client
			want     failure
		}{
			{name: "wrong PKCE verifier", verifier: strings.Repeat("x", 43),
				want: failure{map[string]string{"google": "invalid_grant", "github": "bad_verification_code"}[kind]}},
			{name: "token endpoint 400", setup: func(f *fakeUpstream) { f.tokenStatus, f.tokenError = 400, "invalid_client" },
				want: failure{"invalid_client"}},
			{name: "token endpoint 503", setup: func(f *fakeUpstream) { f.tokenStatus, f.tokenError = 503, "" },
				want: failure{"server_error"}},
			{name: "token endpoint odd error code", setup: func(f *fakeUpstream) { f.tokenStatus, f.tokenError = 400, "bad\"code\\" },
				want: failure{"server_error"}},
			{name: "profile 500", setup: func(f *fakeUpstream) { f.profileStatus = 500 },
				want: failure{"server_error"}},
			{name: "profile not JSON", setup: func(f *fakeUpstream) { f.profileBody = "<html>" },
				want: failure{"server_error"}},
			{name: "profile without id", setup: func(f *fakeUpstream) { f.profileBody = `{"email":"a@b"}` },
				want: failure{"server_error"}},
			{name: "profile oversized", setup: func(f *fakeUpstream) {
				f.profileBody = `{"sub":"1","id":1,"pad":"` + strings.Repeat("a", provider.MaxResponseBytes) + `"}`
			}, want: failure{"server_error"}},
			{name: "slow provider", setup: func(f *fakeUpstream) { f.delay = 2 * time.Second },
				client: &http.Client{Timeout: 200 * time.Millisecond}, want: failure{"timeout"}},
		} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				f, srv := newFake(t, kind)
				p := newProvider(kind, srv, tc.client)
				code := consent(t, p, "s", verifier)
				if tc.setup != nil {
					tc.setup(f)
				}
				v := verifier
				if tc.verifier != "" {
					v = tc.verifier
				}
				start := time.Now()
				_, err := p.Exchange(context.Background(), code, v, false)
				checkFailure(t, p, err, tc.want)
				if time.Since(start) > 5*time.Second {
					t.Fatalf("exchange took %v", time.Since(start))
				}
			})
		}
	}
}

func TestExchangeUnreachable(t *testing.T) {
	_, srv := newFake(t, "google")
	p := newProvider("google", srv, nil)
	code := consent(t, p, "s", verifier)
	srv.Close()
	_, err := p.Exchange(context.Background(), code, verifier, false)
	checkFailure(t, p, err, failure{"server_error"})
}

func TestExchangeContextDeadline(t *testing.T) {
	f, srv := newFake(t, "github")
	p := newProvider("github", srv, nil)
	code := consent(t, p, "s", verifier)
	f.delay = time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := p.Exchange(ctx, code, verifier, false)
	checkFailure(t, p, err, failure{"timeout"})
}

func TestCallbackError(t *testing.T) {
	p := provider.NewGoogle(provider.Config{}, provider.DefaultGoogle)
	for _, tc := range []struct {
		query string
		want  string // provider_error; "" means no error
	}{
		{"code=abc&state=s", ""},
		{"error=access_denied&state=s", "access_denied"},
		{"error=interaction_required", "interaction_required"},
		{"error=" + url.QueryEscape("evil\"\n<script>"), "server_error"},
		{"error=", "server_error"},
	} {
		q, _ := url.ParseQuery(tc.query)
		err := p.CallbackError(q)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.query, err)
			}
			continue
		}
		var e *errors.Error
		if !errors.As(err, &e) || e.Code != errors.GoogleAuthFailed || e.ProviderError != tc.want || e.Description != "Google authentication was unsuccessful" {
			t.Errorf("%s: got %#v, want provider_error %q", tc.query, err, tc.want)
		}
	}
}

func TestAuthCodeURL(t *testing.T) {
	for _, tc := range []struct {
		p     *provider.Provider
		email bool
		scope string
	}{
		{provider.NewGoogle(provider.Config{ClientID: "g", RedirectURL: "https://a/callback/google"}, provider.DefaultGoogle), false, "openid email profile"},
		{provider.NewGoogle(provider.Config{ClientID: "g", RedirectURL: "https://a/callback/google"}, provider.DefaultGoogle), true, "openid email profile"},
		{provider.NewGitHub(provider.Config{ClientID: "h", RedirectURL: "https://a/callback/github"}, provider.DefaultGitHub), false, "read:user"},
		{provider.NewGitHub(provider.Config{ClientID: "h", RedirectURL: "https://a/callback/github"}, provider.DefaultGitHub), true, "read:user user:email"},
	} {
		p := tc.p
		u, err := url.Parse(p.AuthCodeURL("the-state", verifier, tc.email))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		sum := sha256.Sum256([]byte(verifier))
		if q.Get("state") != "the-state" || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" ||
			q.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) || q.Get("code_verifier") != "" {
			t.Errorf("%s: %s", p.Name(), u)
		}
		if q.Get("scope") != tc.scope {
			t.Errorf("%s email=%v: scope %q, want %q", p.Name(), tc.email, q.Get("scope"), tc.scope)
		}
		if p.Name() == "google" && u.Host != "accounts.google.com" {
			t.Errorf("google URL %s", u)
		}
		if p.Name() == "github" && (u.Host != "github.com" || u.Path != "/login/oauth/authorize") {
			t.Errorf("github URL %s", u)
		}
	}
}

func TestProfileJSONShapes(t *testing.T) {
	// GitHub ids are JSON numbers; large ones must not go through float64.
	f, srv := newFake(t, "github")
	f.profileBody = `{"login":"big","id":9007199254740993}`
	p := newProvider("github", srv, nil)
	code := consent(t, p, "s", verifier)
	prof, err := p.Exchange(context.Background(), code, verifier, false)
	if err != nil {
		t.Fatal(err)
	}
	if prof.Subject() != "github:9007199254740993" {
		t.Fatalf("subject %s", prof.Subject())
	}
	b, _ := json.Marshal(prof)
	if !strings.Contains(string(b), "big") {
		t.Fatalf("%s", b)
	}
}
