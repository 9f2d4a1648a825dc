package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"golang.org/x/oauth2"
)

// Metadata is an authorization server's metadata document (RFC 8414 §2),
// the members a client uses.
type Metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint,omitempty"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint,omitempty"`
	EndSessionEndpoint                string   `json:"end_session_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	ServiceDocumentation              string   `json:"service_documentation,omitempty"`
	// AuthorizationResponseISSParameterSupported: every authorization
	// response carries "iss" (RFC 9207); ParseCallback then requires it.
	AuthorizationResponseISSParameterSupported bool `json:"authorization_response_iss_parameter_supported,omitempty"`
}

// maxMetadata bounds the metadata document read.
const maxMetadata = 256 << 10

// defaultClient is used where the caller passes no *http.Client: every
// request of this package has a deadline.
var defaultClient = &http.Client{Timeout: 30 * time.Second}

// MetadataURL returns where the metadata of issuer is published
// (RFC 8414 §3.1): "/.well-known/oauth-authorization-server" inserted
// between the host and the issuer's path.
func MetadataURL(issuer string) (string, error) {
	u, err := url.Parse(issuer)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", errors.Errorf("client: issuer %q is not an http(s) URL without query or fragment (RFC 8414 §2)", issuer)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	return u.Scheme + "://" + u.Host + "/.well-known/oauth-authorization-server" + path, nil
}

// Discover fetches the metadata of the authorization server issuer
// (RFC 8414 §3) through hc (nil: a client with a 30-second timeout) and
// checks that its "issuer" is exactly issuer (RFC 8414 §3.3), which
// defends against a document that impersonates another server.
//
// Errors: ErrIssuerMismatch (wrapped) for a document naming another
// issuer; an *Error for an error response; a plain error for an issuer
// that is not a URL, an unreadable document, or one without
// authorization and token endpoints.
func Discover(ctx context.Context, issuer string, hc *http.Client) (*Metadata, error) {
	if hc == nil {
		hc = defaultClient
	}
	where, err := MetadataURL(issuer)
	if err != nil {
		return nil, err
	}
	m, err := fetchMetadata(ctx, hc, where)
	var ae *Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && where != strings.TrimSuffix(issuer, "/")+"/.well-known/oauth-authorization-server" {
		// An issuer with a path may publish where OpenID Connect
		// Discovery puts it: appended to the issuer.
		m, err = fetchMetadata(ctx, hc, strings.TrimSuffix(issuer, "/")+"/.well-known/oauth-authorization-server")
	}
	if err != nil {
		return nil, err
	}
	if m.Issuer != issuer {
		return nil, errors.Errorf("%w: the metadata names %q, not %q", ErrIssuerMismatch, m.Issuer, issuer)
	}
	if m.AuthorizationEndpoint == "" && m.TokenEndpoint == "" {
		return nil, errors.Errorf("client: metadata of %s has no authorization or token endpoint", issuer)
	}
	return m, nil
}

func fetchMetadata(ctx context.Context, hc *http.Client, where string) (*Metadata, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := ParseError(resp); err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.Errorf("client: metadata at %s: unexpected HTTP status %q", where, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadata+1))
	if err != nil {
		return nil, errors.Errorf("client: reading metadata at %s: %w", where, err)
	}
	if len(b) > maxMetadata {
		return nil, errors.Errorf("client: metadata at %s is larger than %d bytes", where, maxMetadata)
	}
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, errors.Errorf("client: metadata at %s: %w", where, err)
	}
	return &m, nil
}

// OAuth2Config returns the golang.org/x/oauth2 configuration of a client
// registered at this server. clientSecret is empty for a public client,
// which then sends client_id in the form (token_endpoint_auth_method
// "none"); a confidential client uses HTTP Basic when the server offers
// client_secret_basic, else the form.
//
// Use PKCE with it (oauth2.GenerateVerifier, oauth2.S256ChallengeOption,
// oauth2.VerifierOption), and ParseCallback on the redirect.
func (m *Metadata) OAuth2Config(clientID, clientSecret, redirectURL string, scopes ...string) *oauth2.Config {
	style := oauth2.AuthStyleAutoDetect
	switch {
	case clientSecret == "":
		style = oauth2.AuthStyleInParams
	case slices.Contains(m.TokenEndpointAuthMethodsSupported, "client_secret_basic"):
		style = oauth2.AuthStyleInHeader
	case slices.Contains(m.TokenEndpointAuthMethodsSupported, "client_secret_post"):
		style = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		RedirectURL:  redirectURL,
		Scopes:       scopes,
		Endpoint: oauth2.Endpoint{
			AuthURL:   m.AuthorizationEndpoint,
			TokenURL:  m.TokenEndpoint,
			AuthStyle: style,
		},
	}
}
