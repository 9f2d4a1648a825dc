package resource

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/charset"
)

// wellKnown is the well-known URI suffix of protected resource metadata
// (RFC 9728 §3).
const wellKnown = "/.well-known/oauth-protected-resource"

// metadataURL returns where the metadata of resource is published
// (RFC 9728 §3.1): the well-known suffix inserted between the host and the
// resource identifier's path and query.
func metadataURL(resource string) string {
	u, _ := url.Parse(resource) // checked by NewVerifier
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	s := u.Scheme + "://" + u.Host + wellKnown + path
	if u.RawQuery != "" {
		s += "?" + u.RawQuery
	}
	return s
}

// MetadataURL returns the URL of this resource's metadata, as the
// resource_metadata parameter of its challenges names it.
func (v *Verifier) MetadataURL() string { return v.metadataURL }

// MetadataPath returns the path to serve MetadataHandler on, on the
// resource's own host: "/.well-known/oauth-protected-resource" followed by
// the resource identifier's path (RFC 9728 §3.1).
func (v *Verifier) MetadataPath() string {
	u, _ := url.Parse(v.metadataURL)
	return u.Path
}

// protectedResource is the metadata document (RFC 9728 §2).
type protectedResource struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// MetadataHandler serves the OAuth 2.0 Protected Resource Metadata of v's
// resource (RFC 9728 §2–3) on GET and HEAD: the resource identifier, authd
// as its authorization server, the scopes of Config.ScopesSupported, the
// Authorization header as the one way to send a token, and the name and
// documentation when configured. It names no jwks_uri: that member is for
// keys of the resource itself, which signs nothing. Any origin may read
// it (CORS), as browser-based clients discover through it. Mount it at
// v.MetadataPath().
func MetadataHandler(v *Verifier) http.Handler {
	doc, err := json.MarshalIndent(protectedResource{
		Resource:               v.cfg.Resource,
		AuthorizationServers:   []string{v.cfg.Issuer},
		ScopesSupported:        v.cfg.ScopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           v.cfg.ResourceName,
		ResourceDocumentation:  v.cfg.ResourceDocumentation,
	}, "", "  ")
	if err != nil {
		panic("resource: encoding metadata: " + err.Error()) // strings only: unreachable
	}
	doc = append(doc, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			if r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, HEAD")
				h.Set("Access-Control-Allow-Headers", "MCP-Protocol-Version")
				h.Set("Access-Control-Max-Age", "86400")
			}
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			v.writeError(w, r, errors.E(errors.MethodNotAllowed, "Method "+charset.SanitizeText(r.Method)+" is not allowed here; use GET"))
			return
		}
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=3600")
		if r.Method == http.MethodGet {
			w.Write(doc)
		}
	})
}
