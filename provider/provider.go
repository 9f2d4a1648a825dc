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

// Profile is who the provider says the user is.
type Profile struct {
	Provider string // "google" or "github"
	ID       string // Google's sub, GitHub's numeric id
	Email    string
	Login    string // GitHub login
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
}

// NewGoogle returns the Google provider (OpenID Connect: scopes openid and
// email, PKCE S256, profile from the userinfo endpoint's sub and email).
func NewGoogle(cfg Config, ep GoogleEndpoints) *Provider {
	return &Provider{
		name: "google",
		code: errors.GoogleAuthFailed,
		desc: "Google authentication was unsuccessful",
		oauth: oauth2.Config{
			ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: cfg.RedirectURL,
			Scopes:   []string{"openid", "email"},
			Endpoint: oauth2.Endpoint{AuthURL: ep.AuthURL, TokenURL: ep.TokenURL, AuthStyle: oauth2.AuthStyleInParams},
		},
		profileURL: ep.UserInfoURL,
		client:     httpClient(cfg.HTTPClient),
		accept:     "application/json",
		readProfile: func(b []byte) (Profile, error) {
			var v struct {
				Sub   string `json:"sub"`
				Email string `json:"email"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				return Profile{}, err
			}
			if !validID(v.Sub) {
				return Profile{}, errors.New("userinfo has no usable sub")
			}
			return Profile{Provider: "google", ID: v.Sub, Email: v.Email}, nil
		},
	}
}

// NewGitHub returns the GitHub provider (OAuth app: scope read:user, PKCE
// S256, profile from GET /user's numeric id and login).
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
				ID    json.Number `json:"id"`
				Login string      `json:"login"`
				Email string      `json:"email"`
			}
			if err := json.Unmarshal(b, &v); err != nil {
				return Profile{}, err
			}
			id, err := strconv.ParseInt(v.ID.String(), 10, 64)
			if err != nil || id <= 0 {
				return Profile{}, errors.New("GET /user has no usable id")
			}
			return Profile{Provider: "github", ID: strconv.FormatInt(id, 10), Login: v.Login, Email: v.Email}, nil
		},
	}
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
// state and PKCE verifier (S256).
func (p *Provider) AuthCodeURL(state, verifier string) string {
	return p.oauth.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier))
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
// upstream token and reads the user's profile with it.
//
// Errors: google_auth_failed / github_auth_failed, with provider_error the
// token endpoint's error code (e.g. invalid_grant, bad_verification_code),
// "timeout" when the provider did not answer in time, or "server_error"
// for any other failure (unreachable, 5xx, oversized or malformed answer).
func (p *Provider) Exchange(ctx context.Context, code, verifier string) (Profile, error) {
	if code == "" {
		return Profile{}, p.Fail(ErrServer, errors.New("callback without code"))
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.client)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return Profile{}, p.upstreamError("token exchange", err)
	}
	return p.profile(ctx, tok)
}

func (p *Provider) profile(ctx context.Context, tok *oauth2.Token) (Profile, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.profileURL, nil)
	if err != nil {
		return Profile{}, p.Fail(ErrServer, err)
	}
	req.Header.Set("Accept", p.accept)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err := p.client.Do(req)
	if err != nil {
		return Profile{}, p.upstreamError("profile request", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return Profile{}, p.upstreamError("profile read", err)
	}
	if len(body) > MaxResponseBytes {
		return Profile{}, p.Fail(ErrServer, fmt.Errorf("profile response over %d bytes", MaxResponseBytes))
	}
	if resp.StatusCode != http.StatusOK {
		return Profile{}, p.Fail(ErrServer, fmt.Errorf("profile endpoint answered %d", resp.StatusCode))
	}
	prof, err := p.readProfile(body)
	if err != nil {
		return Profile{}, p.Fail(ErrServer, fmt.Errorf("profile: %w", err))
	}
	return prof, nil
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
