package resource

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/charset"
)

type claimsKey struct{}

// FromContext returns the claims Middleware verified for the request
// whose context is ctx.
func FromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// NewContext returns a copy of ctx carrying c (for tests of handlers that
// read FromContext).
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// Middleware admits a request only with an access token of v's issuer for
// v's resource (RFC 6750 §2.1: the Authorization header, Bearer scheme)
// that carries every one of scopes; the handler finds the token's claims
// with FromContext. Other requests are answered as authd answers them, in
// the shape of RFC 6749 §5.2 with error_uri pointing at the authorization
// server's documentation of the code and a request_id, and with the
// WWW-Authenticate challenge of RFC 6750 §3 naming this resource's
// metadata (RFC 9728 §5.1):
//
//   - no Authorization header: 401 invalid_token, and only
//     Bearer realm="…", resource_metadata="…" (RFC 6750 §3.1);
//   - a token that is malformed, forged, expired, for another audience or
//     issuer, or not in the header (access_token in the query is
//     refused): 401 invalid_token with error, error_description and
//     error_uri in the challenge;
//   - a valid token without a scope: 403 insufficient_scope, the challenge
//     naming every scope required;
//   - authd's keys cannot be fetched and none are known: 503
//     temporarily_unavailable with Retry-After.
//
// A protected endpoint:
//
//	v, _ := resource.NewVerifier(resource.Config{Issuer: "https://auth.example.com", Resource: "https://api.example.com"})
//	mux.Handle(v.MetadataPath(), resource.MetadataHandler(v))
//	mux.Handle("GET /notes", resource.Middleware(v, "notes")(notes))
func Middleware(v *Verifier, scopes ...string) func(http.Handler) http.Handler {
	scopes = append([]string(nil), scopes...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, err := bearerToken(r)
			if err == nil {
				var c *Claims
				if c, err = v.Verify(r.Context(), tok); err == nil {
					if err = needScopes(c, scopes); err == nil {
						next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
						return
					}
				}
			}
			v.writeError(w, r, err)
		})
	}
}

// needScopes returns insufficient_scope unless c carries every scope.
func needScopes(c *Claims, scopes []string) error {
	var missing []string
	for _, s := range scopes {
		if !c.HasScope(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	desc := "The access token does not carry the " + strings.Join(missing, " ") + " scope"
	if len(missing) > 1 {
		desc += "s"
	}
	return errors.E(errors.InsufficientScope, desc).WithScope(strings.Join(scopes, " "))
}

// bearerToken returns the access token of r's Authorization header.
//
// Errors: invalid_token.
func bearerToken(r *http.Request) (string, error) {
	if r.URL.Query().Has("access_token") {
		return "", errors.E(errors.InvalidToken, "Access tokens are accepted only in the Authorization header, never in the query")
	}
	h := r.Header.Values("Authorization")
	switch {
	case len(h) == 0:
		return "", errors.E(errors.InvalidToken, "No access token: send Authorization: Bearer <token>")
	case len(h) > 1:
		return "", errors.E(errors.InvalidToken, "Authorization header included more than once")
	}
	scheme, tok, _ := strings.Cut(h[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errors.E(errors.InvalidToken, "The Authorization header must use the Bearer scheme")
	}
	tok = strings.TrimLeft(tok, " ")
	if !validB64Token(tok) {
		return "", errInvalid("not a b64token")
	}
	return tok, nil
}

// validB64Token is RFC 6750 §2.1's b64token.
func validB64Token(t string) bool {
	if t == "" || len(t) > maxTokenLen {
		return false
	}
	i := 0
	for i < len(t) && t[i] != '=' {
		c := t[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~+/", c) >= 0) {
			return false
		}
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(t); i++ {
		if t[i] != '=' {
			return false
		}
	}
	return true
}

// errorBody is authd's JSON error body; field order is the wire order.
type errorBody struct {
	Error       errors.Code `json:"error"`
	Description string      `json:"error_description"`
	URI         string      `json:"error_uri"`
	RetryAfter  int64       `json:"retry_after,omitempty"`
	RequestID   string      `json:"request_id"`
}

// writeError answers r with err as authd's error writer would: status
// from the catalog, the catalog's generic text for statuses >= 500, every
// text forced into the RFC 6749 Appendix A charset, no-store, a request
// id, and the RFC 6750 challenge with this resource's metadata URL.
func (v *Verifier) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var e *errors.Error
	if !errors.As(err, &e) {
		e = errors.E(errors.ServerError, "").WithCause("resource.Middleware", err)
	}
	entry, ok := errors.Lookup(e.Code)
	if !ok {
		entry, _ = errors.Lookup(errors.ServerError)
	}
	status := entry.Status
	desc := e.Description
	if desc == "" || status >= 500 {
		desc = entry.Description
	}
	desc = charset.SanitizeText(desc)
	uri := charset.SanitizeURI(v.errorURIBase + "#" + string(entry.Code))
	reqID := requestID(r.Header.Get("X-Request-Id"))

	level := slog.LevelDebug
	if status >= 500 {
		level = slog.LevelWarn
	}
	if v.log.Enabled(r.Context(), level) {
		attrs := []slog.Attr{slog.String("request_id", reqID), slog.String("code", string(entry.Code)), slog.Int("status", status)}
		if e.Err != nil {
			attrs = append(attrs, slog.String("cause", e.Err.Error()))
		}
		v.log.LogAttrs(r.Context(), level, "resource: request refused", attrs...)
	}

	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Request-Id", reqID)
	var retry int64
	if e.RetryAfter > 0 {
		retry = int64((e.RetryAfter + time.Second - 1) / time.Second)
		h.Set("Retry-After", strconv.FormatInt(retry, 10))
	}
	switch entry.Code {
	case errors.InvalidToken, errors.InsufficientScope:
		c := `Bearer realm="` + charset.SanitizeText(v.cfg.Realm) + `"`
		if entry.Code == errors.InsufficientScope || r.Header.Get("Authorization") != "" {
			c += `, error="` + string(entry.Code) + `", error_description="` + desc + `", error_uri="` + uri + `"`
			if entry.Code == errors.InsufficientScope && e.Scope != "" {
				c += `, scope="` + charset.SanitizeText(e.Scope) + `"`
			}
		}
		c += `, resource_metadata="` + charset.SanitizeURI(v.metadataURL) + `"`
		h.Set("WWW-Authenticate", c)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(errorBody{Error: entry.Code, Description: desc, URI: uri, RetryAfter: retry, RequestID: reqID})
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// requestID keeps an incoming X-Request-Id of 1-64 characters of
// [A-Za-z0-9._-], as authd does, or makes a new one.
func requestID(in string) string {
	ok := len(in) > 0 && len(in) <= 64
	for i := 0; ok && i < len(in); i++ {
		c := in[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	if ok {
		return in
	}
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
