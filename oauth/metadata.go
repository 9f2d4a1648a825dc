package oauth

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
)

// metadata is the authorization server metadata (RFC 8414 §2). Every
// member is true to what the server does.
type metadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethods          []string `json:"token_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethods     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethods  []string `json:"introspection_endpoint_auth_methods_supported"`
	ServiceDocumentation              string   `json:"service_documentation"`
	AuthorizationResponseISSSupported bool     `json:"authorization_response_iss_parameter_supported"`
	// RegistrationEndpoint (RFC 8414 §2) only when clients may register
	// themselves.
	RegistrationEndpoint string `json:"registration_endpoint,omitempty"`
	// ClientIDMetadataDocumentSupported: whether a client_id may be the
	// URL of the client's metadata document
	// (draft-ietf-oauth-client-id-metadata-document).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported"`
	// ProtectedResources (RFC 9728 §4) are the server-wide resource
	// indicators; resources registered for one client are not listed.
	ProtectedResources []string `json:"protected_resources,omitempty"`
	// EndSessionEndpoint is /logout (OpenID Connect RP-Initiated Logout
	// 1.0 §2.1, which registers it for RFC 8414 metadata too).
	EndSessionEndpoint string `json:"end_session_endpoint"`
}

// providerMetadata is the OpenID Provider metadata (OpenID Connect
// Discovery 1.0 §3): the RFC 8414 members with the same values, and the
// OpenID Connect ones.
type providerMetadata struct {
	metadata
	SubjectTypesSupported            []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported                  []string `json:"claims_supported"`
	ClaimTypesSupported              []string `json:"claim_types_supported"`
	PromptValuesSupported            []string `json:"prompt_values_supported"`
	RequestParameterSupported        bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported     bool     `json:"request_uri_parameter_supported"`
	ClaimsParameterSupported         bool     `json:"claims_parameter_supported"`
}

// claimsSupported are the claims authd can give: in the ID Token, and at
// /userinfo by scope.
var claimsSupported = []string{
	"iss", "sub", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash", "amr", "sid",
	"preferred_username", "name", "picture", "email", "email_verified", "address", "pubkey",
}

// buildMetadata returns the RFC 8414 document and the OpenID Provider
// metadata.
func (s *Server) buildMetadata() (oauthDoc, openidDoc []byte) {
	m := metadata{
		Issuer:                            s.issuer,
		AuthorizationEndpoint:             s.endpoint("/authorize"),
		TokenEndpoint:                     s.endpoint("/token"),
		UserinfoEndpoint:                  s.endpoint("/userinfo"),
		JWKSURI:                           s.endpoint("/.well-known/jwks.json"),
		RevocationEndpoint:                s.endpoint("/revoke"),
		IntrospectionEndpoint:             s.endpoint("/introspect"),
		ScopesSupported:                   scopesSupported,
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials},
		CodeChallengeMethodsSupported:     []string{"S256"},
		TokenEndpointAuthMethods:          []string{"client_secret_basic", "client_secret_post", "none"},
		RevocationEndpointAuthMethods:     []string{"client_secret_basic", "client_secret_post", "none"},
		IntrospectionEndpointAuthMethods:  []string{"client_secret_basic", "client_secret_post"},
		ServiceDocumentation:              s.endpoint("/docs/errors"),
		AuthorizationResponseISSSupported: true,
		ClientIDMetadataDocumentSupported: s.docs != nil,
		ProtectedResources:                s.cfg.Resources,
		RegistrationEndpoint:              s.registrationEndpoint(),
		EndSessionEndpoint:                s.endpoint("/logout"),
	}
	op := providerMetadata{
		metadata:                         m,
		SubjectTypesSupported:            []string{"public"},
		IDTokenSigningAlgValuesSupported: []string{AlgRS256, AlgES256},
		ClaimsSupported:                  claimsSupported,
		ClaimTypesSupported:              []string{"normal"},
		PromptValuesSupported:            promptValues,
	}
	return marshalMetadata(m), marshalMetadata(op)
}

func marshalMetadata(v any) []byte {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		panic("oauth: encoding metadata: " + err.Error()) // plain strings: unreachable
	}
	return append(b, '\n')
}

// Metadata serves the authorization server metadata (RFC 8414) at
// /.well-known/oauth-authorization-server.
//
// Errors: none.
func (s *Server) Metadata(w http.ResponseWriter, r *http.Request) error {
	return serveMetadata(w, s.metadata)
}

// OpenIDConfiguration serves the OpenID Provider metadata (OpenID Connect
// Discovery 1.0 §4) at /.well-known/openid-configuration: the RFC 8414
// document's members with the same values, and the OpenID Connect ones.
//
// Errors: none.
func (s *Server) OpenIDConfiguration(w http.ResponseWriter, r *http.Request) error {
	return serveMetadata(w, s.openidMetadata)
}

func serveMetadata(w http.ResponseWriter, doc []byte) error {
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "public, max-age=3600")
	_, err := w.Write(doc)
	return err
}

// exposedHeaders are the response headers a browser client may read.
const exposedHeaders = "WWW-Authenticate, Retry-After, X-Request-Id, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, RateLimit-Policy, RateLimit"

// CORS lets browser-based public clients call next from any origin,
// without credentials (cookies are never used by these endpoints): for
// /token, /revoke, /userinfo, /register and /.well-known/*. Preflight
// requests are answered by Preflight, on the route's OPTIONS pattern.
func CORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", "*")
			h.Set("Access-Control-Expose-Headers", exposedHeaders)
		}
		next.ServeHTTP(w, r)
	})
}

// Preflight answers OPTIONS for a route that allows methods: 204 with
// Allow and, for a CORS preflight, the allowed methods and request
// headers (Fetch standard, CORS protocol).
func Preflight(methods ...string) http.Handler {
	list := strings.Join(methods, ", ")
	allow := "OPTIONS, " + list
	if slices.Contains(methods, http.MethodGet) {
		allow += ", HEAD" // net/http serves HEAD wherever it serves GET
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Allow", allow)
		if r.Header.Get("Origin") != "" {
			h.Set("Access-Control-Allow-Origin", "*")
			if r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", list)
				// MCP-Protocol-Version: Model Context Protocol clients
				// send it with their metadata and registration requests.
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id, MCP-Protocol-Version")
				h.Set("Access-Control-Max-Age", "86400")
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
