package oauth

import (
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/authd-dev/authd/errors"
)

// Client metadata (RFC 7591 §2) as a client sends it about itself: in a
// registration request (RFC 7591 §3.1, RFC 7592 §2.2) or in its Client
// ID Metadata Document. authd understands the members of clientMetadata
// and ignores the others (RFC 7591 §2: "The authorization server MUST
// ignore any client metadata sent by the client that it does not
// understand"); what it registered is echoed back, so a client sees what
// was ignored.

// clientMetadata is the client metadata authd understands. Pointers and
// nil slices tell an absent member from an empty one.
type clientMetadata struct {
	RedirectURIs    []string `json:"redirect_uris"`
	AuthMethod      *string  `json:"token_endpoint_auth_method"`
	GrantTypes      []string `json:"grant_types"`
	ResponseTypes   []string `json:"response_types"`
	ClientName      *string  `json:"client_name"`
	Scope           *string  `json:"scope"`
	ApplicationType *string  `json:"application_type"`
	ClientURI       *string  `json:"client_uri"`
	Contacts        []string `json:"contacts"`
	SoftwareID      *string  `json:"software_id"`
	SoftwareVersion *string  `json:"software_version"`
	// IDTokenAlg is OpenID Connect Dynamic Client Registration 1.0 §2's
	// id_token_signed_response_alg: RS256 (the default) or ES256.
	IDTokenAlg *string `json:"id_token_signed_response_alg"`
	// Resources is authd's own member: resource indicators (RFC 8707)
	// the client will ask for, among the server-wide ones.
	Resources []string `json:"resources"`
}

// clientExtra is the metadata authd keeps only to echo it back.
type clientExtra struct {
	AuthMethod      string   `json:"token_endpoint_auth_method,omitempty"`
	ClientURI       string   `json:"client_uri,omitempty"`
	Contacts        []string `json:"contacts,omitempty"`
	SoftwareID      string   `json:"software_id,omitempty"`
	SoftwareVersion string   `json:"software_version,omitempty"`
}

// metadataSource says where client metadata comes from.
type metadataSource int

const (
	fromRegistration metadataSource = iota // POST /register, PUT /register/{id}
	fromDocument                           // a Client ID Metadata Document
)

// Application types (OpenID Connect Dynamic Client Registration 1.0 §2).
const (
	appWeb    = "web"
	appNative = "native"
)

// scopesSupported are the scopes authd offers: those in its metadata,
// and the only ones a client that registers itself may ask for.
var scopesSupported = []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess, ScopeBackup}

// metaError is invalid_client_metadata with a description.
func metaError(desc string) *errors.Error {
	return errors.E(errors.InvalidClientMetadata, desc)
}

// parseClientMetadata decodes raw, a JSON object of client metadata, and
// validates it as authd validates `authd client create`, with the rules of
// clients that register themselves on top: redirect URIs per
// application_type, grant_types consistent with response_types, scopes
// and resources within the server's. It returns an unsaved client.
//
// A registration defaults, as RFC 7591 §2 says, to the authorization_code
// grant and client_secret_basic; a metadata document must be a public
// client (token_endpoint_auth_method none, the default there: a document
// cannot carry a secret). Neither may carry a software_statement member in
// a registration (RFC 7591 §2.3: authd accepts none).
//
// Errors: invalid_client_metadata; invalid_redirect_uri;
// invalid_software_statement.
func (s *Server) parseClientMetadata(raw []byte, src metadataSource) (*Client, *errors.Error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil || members == nil {
		return nil, metaError("The client metadata must be a JSON object")
	}
	if _, ok := members["software_statement"]; ok && src == fromRegistration {
		return nil, errors.E(errors.InvalidSoftwareStatement, "Software statements are not supported: send the client metadata as plain members")
	}
	if src == fromDocument {
		for _, m := range []string{"client_secret", "client_secret_expires_at"} {
			if _, ok := members[m]; ok {
				return nil, metaError("A Client ID Metadata Document must not contain " + m + ": it cannot carry a shared secret")
			}
		}
	}
	var md clientMetadata
	if err := json.Unmarshal(raw, &md); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return nil, metaError("Client metadata " + te.Field + " must be " + jsonKind(te.Field))
		}
		return nil, metaError("The client metadata must be a JSON object")
	}
	c := &Client{ApplicationType: "", Scopes: []string{ScopeProfile}}

	// Name and the members only echoed.
	if md.ClientName != nil {
		c.Name = strings.TrimSpace(*md.ClientName)
	}
	if e := plainText("client_name", c.Name, 200); e != nil {
		return nil, e
	}
	if md.ClientURI != nil && *md.ClientURI != "" {
		u, err := url.Parse(*md.ClientURI)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(*md.ClientURI) > 2000 {
			return nil, metaError("client_uri must be an absolute http or https URL of at most 2000 characters")
		}
		c.metadata.ClientURI = *md.ClientURI
	}
	if len(md.Contacts) > 10 {
		return nil, metaError("At most 10 contacts")
	}
	for _, ct := range md.Contacts {
		if e := plainText("contacts", ct, 254); e != nil || ct == "" {
			return nil, metaError("Each contact must be 1-254 characters without control characters")
		}
	}
	c.metadata.Contacts = md.Contacts
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
	}{{"software_id", md.SoftwareID, &c.metadata.SoftwareID}, {"software_version", md.SoftwareVersion, &c.metadata.SoftwareVersion}} {
		if f.v == nil {
			continue
		}
		if e := plainText(f.name, *f.v, 200); e != nil {
			return nil, e
		}
		*f.dst = *f.v
	}

	// Client authentication.
	method := "client_secret_basic" // RFC 7591 §2
	if src == fromDocument {
		method = "none"
	}
	if md.AuthMethod != nil {
		method = *md.AuthMethod
	}
	switch {
	case src == fromDocument && method != "none":
		return nil, metaError("A Client ID Metadata Document client is public: token_endpoint_auth_method must be none")
	case method == "none":
		c.Public = true
	case method == "client_secret_basic" || method == "client_secret_post":
		c.metadata.AuthMethod = method
	default:
		return nil, metaError("token_endpoint_auth_method " + quoted(method, 40) + " is not supported (want none, client_secret_basic or client_secret_post)")
	}

	// Grants and response types (RFC 7591 §2.1).
	grants, responses := md.GrantTypes, md.ResponseTypes
	if grants == nil {
		grants = []string{GrantAuthorizationCode}
		if responses != nil && !slices.Contains(responses, "code") {
			grants = []string{}
		}
	}
	for _, g := range grants {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
		default:
			return nil, metaError("Grant type " + quoted(g, 40) + " is not supported (want authorization_code, refresh_token or client_credentials)")
		}
	}
	for _, rt := range responses {
		if rt != "code" {
			return nil, metaError("Response type " + quoted(rt, 40) + " is not supported: only code")
		}
	}
	code := slices.Contains(grants, GrantAuthorizationCode)
	if responses != nil && code != slices.Contains(responses, "code") {
		return nil, metaError("grant_types and response_types do not match: the authorization_code grant goes with the code response type (RFC 7591 section 2.1)")
	}
	if len(grants) == 0 {
		return nil, metaError("grant_types must name at least one grant type")
	}
	if slices.Contains(grants, GrantRefreshToken) && !code {
		return nil, metaError("The refresh_token grant needs the authorization_code grant: authd issues refresh tokens only with codes")
	}
	if c.Public && slices.Contains(grants, GrantClientCredentials) {
		return nil, metaError("A public client (token_endpoint_auth_method none) cannot use client_credentials (RFC 6749 section 4.4)")
	}
	c.Grants = grants

	// Scopes: within the server's.
	if md.Scope != nil && *md.Scope != "" {
		want, ok := parseScope(*md.Scope)
		if !ok {
			return nil, metaError("scope must be scope tokens separated by single spaces (RFC 6749 section 3.3)")
		}
		for _, sc := range want {
			if !slices.Contains(scopesSupported, sc) {
				return nil, metaError("Scope " + quoted(sc, 40) + " is not offered by this server (offered: " + strings.Join(scopesSupported, " ") + ")")
			}
		}
		c.Scopes = want
	}

	// Redirect URIs, per application type.
	if code && len(md.RedirectURIs) == 0 {
		return nil, errors.E(errors.InvalidRedirectURI, "redirect_uris is required for the authorization_code grant")
	}
	for _, u := range md.RedirectURIs {
		if e := CheckRedirectURI(u); e != nil {
			return nil, e
		}
	}
	c.RedirectURIs = md.RedirectURIs
	switch {
	case md.ApplicationType == nil || *md.ApplicationType == "":
		// RFC 8252 §7.3: loopback redirect URIs are a native app's; a
		// private-use scheme can be nothing else. OpenID Connect's
		// default otherwise is web.
		c.ApplicationType = appWeb
		for _, u := range c.RedirectURIs {
			if !strings.HasPrefix(u, "https:") {
				c.ApplicationType = appNative
			}
		}
	case *md.ApplicationType == appWeb || *md.ApplicationType == appNative:
		c.ApplicationType = *md.ApplicationType
	default:
		return nil, metaError("application_type must be web or native")
	}
	if c.ApplicationType == appWeb {
		for _, u := range c.RedirectURIs {
			if !strings.HasPrefix(u, "https:") {
				return nil, errors.E(errors.InvalidRedirectURI, "Redirect URI "+quoted(u, 200)+" must use https: a web client's redirect URIs are https (register application_type native for loopback http or a private-use scheme)")
			}
		}
	}

	if md.IDTokenAlg != nil && *md.IDTokenAlg != "" {
		if *md.IDTokenAlg != AlgRS256 && *md.IDTokenAlg != AlgES256 {
			return nil, metaError("id_token_signed_response_alg " + quoted(*md.IDTokenAlg, 20) + " is not supported (want RS256 or ES256)")
		}
		c.IDTokenAlg = *md.IDTokenAlg
	}

	// Resources: a client no operator registered may name only
	// server-wide ones, or it could make authd mint tokens for an API
	// the operator reserved for another client.
	if src == fromRegistration {
		for _, r := range md.Resources {
			if why := checkResource(r); why != "" {
				return nil, metaError("Resource " + quoted(r, 100) + " " + why)
			}
			if !slices.Contains(s.cfg.Resources, r) {
				return nil, metaError("Resource " + quoted(r, 100) + " is not served by this server (its resources are in the server metadata, protected_resources)")
			}
		}
		c.Resources = md.Resources
	}
	if e := c.check(); e != nil {
		return nil, e
	}
	return c, nil
}

// plainText checks a human-readable member: at most n bytes of UTF-8
// without control or invisible formatting characters.
//
// Errors: invalid_client_metadata naming the member.
func plainText(name, v string, n int) *errors.Error {
	if len(v) > n || !utf8.ValidString(v) || strings.IndexFunc(v, isControl) >= 0 {
		return metaError(name + " must be plain text of at most " + strconv.Itoa(n) + " bytes, without control characters")
	}
	return nil
}

// jsonKind says what JSON a clientMetadata member must be.
func jsonKind(field string) string {
	switch field {
	case "redirect_uris", "grant_types", "response_types", "contacts", "resources":
		return "an array of strings"
	}
	return "a string"
}

// quoted is a client's value for a description: in single quotes, cut to
// n bytes, anything outside printable ASCII (and any quote) replaced.
func quoted(s string, n int) string { return "'" + printable(s, n) + "'" }
