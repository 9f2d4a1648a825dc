package httperr

import (
	"net/http"
	"strings"

	"github.com/authd-dev/authd/errors"
)

// setChallenge sets WWW-Authenticate for the codes that need one (RFC 6750
// §3, RFC 7235 §4.1). Parameter values are sanitized, so they never contain
// a quote or backslash and quoting them is safe.
func setChallenge(h http.Header, r *http.Request, resp response) {
	const realm = `realm="` + Realm + `"`
	code := resp.entry.Code
	switch code {
	case errors.InvalidClient:
		if strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "basic ") {
			h.Set("WWW-Authenticate", "Basic "+realm)
		}
	case errors.InvalidToken, errors.InsufficientScope:
		if code == errors.InvalidToken && r.Header.Get("Authorization") == "" {
			// No credentials at all: RFC 6750 §3.1 says no error code.
			h.Set("WWW-Authenticate", "Bearer "+realm)
			return
		}
		c := "Bearer " + realm + `, error="` + string(code) + `", error_description="` + resp.desc + `", error_uri="` + resp.uri + `"`
		if resp.scope != "" {
			c += `, scope="` + resp.scope + `"`
		}
		h.Set("WWW-Authenticate", c)
	case errors.MissingAuthToken:
		prev := h.Values("WWW-Authenticate")
		others := make([]string, 0, len(prev))
		for _, v := range prev {
			if !strings.HasPrefix(v, "Bitcoin-Auth ") {
				others = append(others, v)
			}
		}
		h.Del("WWW-Authenticate")
		h.Add("WWW-Authenticate", "Bitcoin-Auth "+realm)
		for _, v := range others {
			h.Add("WWW-Authenticate", v)
		}
	}
}
