package oauth

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/authd-dev/authd/errors"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Resource indicators (RFC 8707). A client names the APIs it wants a
// token for with resource parameters, at /authorize and at /token; the
// access token's aud is those resources, or authd's issuer (its own APIs:
// /userinfo, /backup) when it named none. A client may name the resources
// registered for it (authd client create --resource) and the server-wide
// ones (Config.Resources). The authorization code and every refresh token
// of the grant remember the resources the authorization granted: a token
// request may repeat or narrow them, never widen them.

// maxResources bounds the resource parameters of one request.
const maxResources = 10

// CheckResource checks a resource indicator: an absolute URI without a
// fragment (RFC 8707 §2), at most 2000 characters of printable ASCII
// without spaces (resources are stored space-separated).
//
// Errors: a plain error saying what is wrong.
func CheckResource(r string) error {
	if why := checkResource(r); why != "" {
		return errors.New(why)
	}
	return nil
}

// checkResource returns why r is not a valid resource indicator, or "".
func checkResource(r string) string {
	if r == "" || len(r) > 2000 {
		return "must be 1-2000 characters"
	}
	for i := 0; i < len(r); i++ {
		if r[i] <= 0x20 || r[i] >= 0x7f {
			return "must be printable ASCII without spaces"
		}
	}
	if strings.Contains(r, "#") {
		return "must not have a fragment (RFC 8707 section 2)"
	}
	u, err := url.Parse(r)
	if err != nil || !u.IsAbs() {
		return "must be an absolute URI (RFC 8707 section 2)"
	}
	return ""
}

// requestedResources returns the request's resource parameters, without
// repeats (RFC 8707 §2: the parameter may be repeated).
//
// Errors: invalid_target for a value that is not an absolute URI without
// a fragment, or too many values.
func requestedResources(v url.Values) ([]string, *errors.Error) {
	res := v["resource"]
	if len(res) > maxResources {
		return nil, errors.E(errors.InvalidTarget, "At most "+strconv.Itoa(maxResources)+" resource parameters")
	}
	for _, r := range res {
		if why := checkResource(r); why != "" {
			return nil, errors.E(errors.InvalidTarget, "The resource parameter "+quoted(r, 100)+" "+why)
		}
	}
	return dedupe(res), nil
}

// resourceAllowed reports whether c may ask for a token for r: r is
// registered for c or served by the whole server.
func (s *Server) resourceAllowed(c *Client, r string) bool {
	return slices.Contains(s.cfg.Resources, r) || slices.Contains(c.Resources, r)
}

// allowedResources checks that c may ask for every one of res.
//
// Errors: invalid_target naming the first that it may not.
func (s *Server) allowedResources(c *Client, res []string) *errors.Error {
	for _, r := range res {
		if !s.resourceAllowed(c, r) {
			return errors.E(errors.InvalidTarget, "The resource "+quoted(r, 100)+" is not one this client may ask for")
		}
	}
	return nil
}

// splitResources reads a space-separated list of resources as stored in
// a code or a refresh token.
func splitResources(s string) []string { return strings.Fields(s) }

type grantResourcesKey struct{}

// withGrantResources hands the resources an authorization grants to
// tokenStore.Create, through go-oauth2's manager, which carries only its
// own fields, so that the code remembers them.
func withGrantResources(ctx context.Context, res []string) context.Context {
	return context.WithValue(ctx, grantResourcesKey{}, res)
}

func grantResourcesFrom(ctx context.Context) []string {
	res, _ := ctx.Value(grantResourcesKey{}).([]string)
	return res
}

type audienceKey struct{}

// withAudience hands the resources a token request asked for to the
// access-token generator, through go-oauth2's manager.
func withAudience(ctx context.Context, res []string) context.Context {
	return context.WithValue(ctx, audienceKey{}, res)
}

// tokenAudience is the aud of an access token for c: the resources the
// token request asked for, else those its grant granted, else the issuer.
// Each resource must still be allowed for c: an operator who took one
// away ends the grants for it at their next token.
//
// Errors: invalid_target.
func (s *Server) tokenAudience(ctx context.Context, c *Client, granted []string) (jwt.Audience, error) {
	res, _ := ctx.Value(audienceKey{}).([]string)
	if len(res) == 0 {
		res = granted
	}
	if len(res) == 0 {
		return jwt.Audience{s.issuer}, nil
	}
	for _, r := range res {
		if !s.resourceAllowed(c, r) {
			return nil, errors.E(errors.InvalidTarget, "The resource "+quoted(r, 100)+" is no longer one this client may ask for").
				WithCause("oauth.tokenAudience", errors.New("resource of the grant no longer allowed"))
		}
	}
	return jwt.Audience(slices.Clone(res)), nil
}

// forIssuer reports whether an access token's audience includes authd
// itself, the one audience authd's own APIs accept.
func (s *Server) forIssuer(aud jwt.Audience) bool { return aud.Contains(s.issuer) }
