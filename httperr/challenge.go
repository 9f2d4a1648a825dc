package httperr

import (
	"net/http"
	"strings"

	"github.com/authd-dev/authd/errors"
)

// The challenges of WWW-Authenticate (RFC 9110 §11.6.1). Every 401 must
// carry at least one (RFC 9110 §15.5.2).
const (
	basicChallenge   = `Basic realm="` + Realm + `"`
	bearerChallenge  = `Bearer realm="` + Realm + `"`
	bitcoinChallenge = `Bitcoin-Auth realm="` + Realm + `"`
)

// providerScheme is the auth-scheme of the challenge sent with a failed
// Google or GitHub sign-in: the sign-in that failed, which the user has to
// start again. No client answers it by itself; it names the way in, as
// RFC 9110 §15.5.2 asks of every 401, without the prompt a Basic
// challenge would make a browser show on this browser-facing route.
var providerScheme = map[errors.Code]string{
	errors.GoogleAuthFailed: "Google",
	errors.GitHubAuthFailed: "GitHub",
}

// setChallenge sets WWW-Authenticate for resp's code. Parameter values are
// sanitized, so they never contain a quote or backslash and quoting them is
// safe.
//
//   - invalid_client: the auth-scheme the client used in Authorization, as
//     RFC 6749 §5.2 asks; Basic when it used none (client_secret_post, or
//     no credentials at all) or one that is not a valid token.
//   - invalid_token, insufficient_scope: Bearer with error,
//     error_description, error_uri and scope (RFC 6750 §3); just the realm
//     when the request carried no credentials at all (RFC 6750 §3.1).
//   - missing_auth_token, invalid_signature, invalid_timestamp:
//     Bitcoin-Auth, first, keeping the other challenges the handler added
//     (a Bearer one on /backup, which takes both).
//   - google_auth_failed, github_auth_failed: "Google" or "GitHub" (see
//     providerScheme).
//   - any other 401: the challenges the handler set, or Bitcoin-Auth.
func setChallenge(h http.Header, r *http.Request, resp response) {
	code := resp.entry.Code
	switch code {
	case errors.InvalidClient:
		h.Set("WWW-Authenticate", clientChallenge(r.Header.Get("Authorization")))
	case errors.InvalidToken, errors.InsufficientScope:
		if code == errors.InvalidToken && r.Header.Get("Authorization") == "" {
			h.Set("WWW-Authenticate", bearerChallenge)
			return
		}
		c := bearerChallenge + `, error="` + string(code) + `", error_description="` + resp.desc + `", error_uri="` + resp.uri + `"`
		if resp.scope != "" {
			c += `, scope="` + resp.scope + `"`
		}
		h.Set("WWW-Authenticate", c)
	case errors.MissingAuthToken, errors.InvalidSignature, errors.InvalidTimestamp:
		putFirst(h, "Bitcoin-Auth", bitcoinChallenge)
	default:
		if s, ok := providerScheme[code]; ok {
			h.Set("WWW-Authenticate", s+` realm="`+Realm+`"`)
			return
		}
		if resp.status == http.StatusUnauthorized && len(h.Values("WWW-Authenticate")) == 0 {
			h.Set("WWW-Authenticate", bitcoinChallenge)
		}
	}
}

// putFirst makes challenge the first WWW-Authenticate value, dropping
// earlier challenges of its scheme and keeping the others in order.
func putFirst(h http.Header, scheme, challenge string) {
	prev := h.Values("WWW-Authenticate")
	others := make([]string, 0, len(prev))
	for _, v := range prev {
		if s, _, _ := strings.Cut(v, " "); !strings.EqualFold(s, scheme) {
			others = append(others, v)
		}
	}
	h.Del("WWW-Authenticate")
	h.Add("WWW-Authenticate", challenge)
	for _, v := range others {
		h.Add("WWW-Authenticate", v)
	}
}

// knownSchemes are auth-schemes echoed in their registered spelling,
// whatever case the client used.
var knownSchemes = []string{"Basic", "Bearer", "Bitcoin-Auth", "Digest", "DPoP"}

// clientChallenge is the challenge of an invalid_client answer to a
// request whose Authorization header is authorization: its auth-scheme
// (RFC 6749 §5.2), or Basic.
func clientChallenge(authorization string) string {
	scheme, _, _ := strings.Cut(strings.TrimLeft(authorization, " "), " ")
	if scheme == "" || len(scheme) > 32 || !isToken(scheme) {
		return basicChallenge
	}
	for _, k := range knownSchemes {
		if strings.EqualFold(scheme, k) {
			scheme = k
			break
		}
	}
	return scheme + ` realm="` + Realm + `"`
}

// isToken reports whether s is an RFC 9110 §5.6.2 token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return s != ""
}
