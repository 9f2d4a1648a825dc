// Package provider signs people in through upstream OAuth 2.0 identity
// providers (Google and GitHub), for users without a wallet at hand.
//
// A Provider builds the redirect to the provider's authorization page (with
// its own state and PKCE), and on the callback exchanges the code and reads
// the user's profile. Every failure is an *errors.Error with the provider's
// code (google_auth_failed, github_auth_failed) and ProviderError set: the
// provider's own error parameter when it sent one, "timeout" when it was too
// slow, "server_error" otherwise. Upstream calls have timeouts and read at
// most MaxResponseBytes of any response.
package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"golang.org/x/oauth2"
)

const (
	// Timeout bounds each upstream call (token exchange, profile fetch).
	Timeout = 10 * time.Second
	// MaxResponseBytes bounds any upstream response body authd reads.
	MaxResponseBytes = 1 << 20
)

// Provider error values sent in provider_error when the provider itself
// did not name the error.
const (
	ErrTimeout      = "timeout"
	ErrServer       = "server_error"
	ErrInvalidState = "invalid_state"
)

// Profile is who the provider says the user is. Everything but Provider
// and ID is empty when the provider did not say.
type Profile struct {
	Provider      string // "google" or "github"
	ID            string // Google's sub, GitHub's numeric id
	Email         string
	EmailVerified bool   // the provider verified Email
	Login         string // GitHub login
	Name          string
	Picture       string // URL of the user's picture (GitHub: avatar)
}

// Subject is the authd subject of the profile: "google:<sub>" or
// "github:<id>".
func (p Profile) Subject() string { return p.Provider + ":" + p.ID }

// Config configures one provider.
type Config struct {
	ClientID     string
	ClientSecret string
	// RedirectURL is authd's callback, <issuer>/callback/<name>.
	RedirectURL string
	// HTTPClient is used for upstream calls; nil means a client with
	// Timeout. Its own timeout, if any, is kept.
	HTTPClient *http.Client
}

// GoogleEndpoints are Google's OpenID Connect endpoints; each may be
// overridden (AUTHD_GOOGLE_AUTH_URL, AUTHD_GOOGLE_TOKEN_URL,
// AUTHD_GOOGLE_USERINFO_URL).
type GoogleEndpoints struct {
	AuthURL, TokenURL, UserInfoURL string
}

// DefaultGoogle is Google's production endpoints.
var DefaultGoogle = GoogleEndpoints{
	AuthURL:     "https://accounts.google.com/o/oauth2/v2/auth",
	TokenURL:    "https://oauth2.googleapis.com/token",
	UserInfoURL: "https://openidconnect.googleapis.com/v1/userinfo",
}

// GitHubEndpoints locate GitHub or a GitHub Enterprise Server: BaseURL
// serves /login/oauth/*, APIURL the REST API (AUTHD_GITHUB_BASE_URL,
// AUTHD_GITHUB_API_URL).
type GitHubEndpoints struct {
	BaseURL, APIURL string
}

// DefaultGitHub is github.com.
var DefaultGitHub = GitHubEndpoints{BaseURL: "https://github.com", APIURL: "https://api.github.com"}

// Provider is one configured upstream identity provider.
type Provider struct {
	name        string
	code        errors.Code
	desc        string
	oauth       oauth2.Config
	profileURL  string
	client      *http.Client
	readProfile func(body []byte) (Profile, error)
	accept      string
	// emailScope is the provider scope that reveals the verified e-mail
	// address, asked for only when the caller wants it; "" when the base
	// scopes already do. readEmail, when set, fetches it after the profile.
	emailScope string
	readEmail  func(ctx context.Context, p *Provider, tok *oauth2.Token, prof *Profile) error
}

// NewGoogle returns the Google provider (OpenID Connect: scopes openid,
// email and profile, PKCE S256; the profile is the userinfo endpoint's
// sub, email, email_verified, name and picture).
func NewGoogle(cfg Config, ep GoogleEndpoints) *Provider {
	return &Provider{
		name: "google",
		code: errors.GoogleAuthFailed,
		desc: "Google authentication was unsuccessful",
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Scopes:   []string{"openid", "email", "profile"},
			Endpoint: oauth2.Endpoint{AuthURL: ep.AuthURL, TokenURL: ep.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		},
		profileURL: ep.UserInfoURL,
		client:     httpClient(cfg.HTTPClient),
		accept:     "application/json",
		readProfile: func(b []byte) (Profile, error) {
			var v struct {
				Sub           string `json:"sub"`
				Email         string `json:"email"`
				EmailVerified bool   `json:"email_verified"`
				Name          string `json:"name"`
				Picture       string `json:"picture"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				return Profile{}, err
			}
			if !validID(v.Sub) {
				return Profile{}, errors.New("userinfo has no usable sub")
			}
			return Profile{Provider: "google", ID: v.Sub, Email: v.Email, EmailVerified: v.EmailVerified && v.Email != "",
				Name: v.Name, Picture: httpsURL(v.Picture)}, nil
		},
	}
}

// NewGitHub returns the GitHub provider (OAuth app: scope read:user, PKCE
// S256, profile from GET /user's numeric id, login, name and avatar).
// When the caller wants the e-mail address it also asks for user:email
// and takes the verified primary address from GET /user/emails: the
// address on the public profile may be unverified or absent.
func NewGitHub(cfg Config, ep GitHubEndpoints) *Provider {
	base := strings.TrimRight(ep.BaseURL, "/")
	return &Provider{
		name: "github",
		code: errors.GitHubAuthFailed,
		desc: "GitHub authentication was unsuccessful",
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Scopes: []string{"read:user"},
			Endpoint: oauth2.Endpoint{
				AuthURL:   base + "/login/oauth/authorize",
				TokenURL:  base + "/login/oauth/access_token",
				AuthStyle: oauth2.AuthStyleInParams,
			},
		},
		profileURL: strings.TrimRight(ep.APIURL, "/") + "/user",
		client:     httpClient(cfg.HTTPClient),
		accept:     "application/vnd.github+json",
		readProfile: func(b []byte) (Profile, error) {
			var v struct {
				ID        json.Number `json:"id"`
				Login     string      `json:"login"`
				Name      string      `json:"name"`
				AvatarURL string      `json:"avatar_url"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				return Profile{}, err
			}
			id, err := strconv.ParseInt(v.ID.String(), 10, 64)
			if err != nil || id <= 0 {
				return Profile{}, errors.New("GET /user has no usable id")
			}
			return Profile{Provider: "github", ID: strconv.FormatInt(id, 10), Login: v.Login, Name: v.Name, Picture: httpsURL(v.AvatarURL)}, nil
		},
		emailScope: "user:email",
		readEmail:  githubEmail(strings.TrimRight(ep.APIURL, "/") + "/user/emails"),
	}
}

// githubEmail reads the verified primary address from GitHub's list of the
// user's addresses (GET /user/emails, which needs the user:email scope).
// A user without one keeps an empty Email.
func githubEmail(emailsURL string) func(ctx context.Context, p *Provider, tok *oauth2.Token, prof *Profile) error {
	return func(ctx context.Context, p *Provider, tok *oauth2.Token, prof *Profile) error {
		body, err := p.fetch(ctx, tok, emailsURL, "e-mail addresses")
		if err != nil {
			return err
		}
		var list []struct {
			Email    string `json:"email"`
			Primary  bool   `json:"primary"`
			Verified bool   `json:"verified"`
		}
		if err := json.Unmarshal(body, &list); err != nil {
			return p.Fail(ErrServer, fmt.Errorf("e-mail addresses: %w", err))
		}
		for _, e := range list {
			if e.Primary && e.Verified && e.Email != "" {
				prof.Email, prof.EmailVerified = e.Email, true
				return nil
			}
		}
		return nil
	}
}

// httpsURL returns u when it is an absolute https URL (a picture authd may
// hand to clients), else "".
func httpsURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil || pu.Scheme != "https" || pu.Host == "" || len(u) > 2048 {
		return ""
	}
	return u
}

func httpClient(c *http.Client) *http.Client {
	if c == nil {
		return &http.Client{Timeout: Timeout}
	}
	if c.Timeout == 0 {
		cc := *c
		cc.Timeout = Timeout
		return &cc
	}
	return c
}

// Name returns "google" or "github".
func (p *Provider) Name() string { return p.name }

// Code returns the provider's error code: google_auth_failed or
// github_auth_failed.
func (p *Provider) Code() errors.Code { return p.code }

// AuthCodeURL returns the provider's authorization URL for authd's own
// state and PKCE verifier (S256). email asks for the scope that reveals
// the user's verified e-mail address, where the base scopes do not.
func (p *Provider) AuthCodeURL(state, verifier string, email bool) string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if email && p.emailScope != "" {
		opts = append(opts, oauth2.SetAuthURLParam("scope", strings.Join(append(slices.Clone(p.oauth.Scopes), p.emailScope), " ")))
	}
	return p.oauth.AuthCodeURL(state, opts...)
}

// Fail returns the provider's error with providerError as its
// provider_error and cause as the logged cause.
func (p *Provider) Fail(providerError string, cause error) *errors.Error {
	return errors.E(p.code, p.desc).WithCause("provider."+p.name, cause).WithProviderError(providerError)
}

// providerCode is the syntax of an OAuth error code (RFC 6749 §4.1.2.1):
// anything else a provider sends is reported as server_error.
var providerCode = regexp.MustCompile(`^[\x20-\x21\x23-\x5B\x5D-\x7E]{1,64}$`)

// CallbackError returns the provider's error when its callback query
// carries one (RFC 6749 §4.1.2.1, e.g. error=access_denied when the user
// cancelled), and nil otherwise.
//
// Errors: google_auth_failed / github_auth_failed with provider_error set
// to the provider's error parameter.
func (p *Provider) CallbackError(q url.Values) error {
	if !q.Has("error") {
		return nil
	}
	code := q.Get("error")
	if !providerCode.MatchString(code) {
		code = ErrServer
	}
	return p.Fail(code, fmt.Errorf("provider redirected with error=%q", q.Get("error")))
}

// Exchange swaps the callback's code (with authd's PKCE verifier) for an
// upstream token and reads the user's profile with it; email says
// whether AuthCodeURL asked for the e-mail address, which GitHub then
// reads from its own endpoint.
//
// Errors: google_auth_failed / github_auth_failed, with provider_error the
// token endpoint's error code (e.g. invalid_grant, bad_verification_code),
// "timeout" when the provider did not answer in time, or "server_error"
// for any other failure (unreachable, 5xx, oversized or malformed answer).
func (p *Provider) Exchange(ctx context.Context, code, verifier string, email bool) (Profile, error) {
	if code == "" {
		return Profile{}, p.Fail(ErrServer, errors.New("callback without code"))
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Profile{}, p.upstreamError("token exchange", err)
	}
	body, err := p.fetch(ctx, tok, p.profileURL, "profile")
	if err != nil {
		return Profile{}, err
	}
	prof, err := p.readProfile(body)
	if err != nil {
		return Profile{}, p.Fail(ErrServer, fmt.Errorf("profile: %w", err))
	}
	if email && p.readEmail != nil {
		if err := p.readEmail(ctx, p, tok, &prof); err != nil {
			return Profile{}, err
		}
	}
	return prof, nil
}

// fetch GETs one of the provider's API resources with the user's token
// and returns the body of its 200 answer.
func (p *Provider) fetch(ctx context.Context, tok *oauth2.Token, target, what string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return nil, p.Fail(ErrServer, err)
	}
	req.Header.Set("Accept", p.accept)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, p.upstreamError(what+" request", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, p.upstreamError(what+" read", err)
	}
	if len(body) > MaxResponseBytes {
		return nil, p.Fail(ErrServer, fmt.Errorf("%s response over %d bytes", what, MaxResponseBytes))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, p.Fail(ErrServer, fmt.Errorf("%s endpoint answered %d", what, resp.StatusCode))
	}
	return body, nil
}

// upstreamError classifies a failed upstream call.
func (p *Provider) upstreamError(what string, err error) *errors.Error {
	cause := fmt.Errorf("%s: %w", what, err)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" && providerCode.MatchString(re.ErrorCode) {
			return p.Fail(re.ErrorCode, cause)
		}
		return p.Fail(ErrServer, cause)
	}
	if isTimeout(err) {
		return p.Fail(ErrTimeout, cause)
	}
	return p.Fail(ErrServer, cause)
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// validID accepts provider ids that are safe inside a subject: printable
// ASCII without spaces or colons, at most 255 bytes.
func validID(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= 0x20 || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}
