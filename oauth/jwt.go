package oauth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/go-oauth2/oauth2/v4"
)

// Access tokens are RFC 9068 JWTs: header {"alg":"ES256","kid":…,
// "typ":"at+jwt"}, claims iss, sub, aud (the resources the client asked
// for, RFC 8707, or the issuer: authd's own APIs), client_id, scope, exp,
// iat, jti. A jti is
// "<family>.<random>", so the deny list can revoke one token or a whole
// family with one Redis lookup.

const typAccessToken = "at+jwt"

// maxTokenLen bounds what is parsed as a token at all.
const maxTokenLen = 4096

type accessClaims struct {
	Iss      string   `json:"iss"`
	Sub      string   `json:"sub"`
	Aud      audience `json:"aud"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	Exp      int64    `json:"exp"`
	Iat      int64    `json:"iat"`
	Jti      string   `json:"jti"`
}

// audience is the aud claim: authd writes a string, and accepts a string
// or an array when verifying (RFC 7519 §4.1.3).
type audience []string

func (a audience) MarshalJSON() ([]byte, error) {
	if len(a) == 1 {
		return json.Marshal(a[0])
	}
	return json.Marshal([]string(a))
}

func (a *audience) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

func (c *accessClaims) scopes() []string { return strings.Fields(c.Scope) }

// accessGenerator is authd's oauth2.AccessGenerate: go-oauth2's own JWT
// generator writes typ JWT, only sub/aud/exp, and re-parses a PEM key for
// every token.
type accessGenerator struct{ s *Server }

// Token implements oauth2.AccessGenerate. A refresh token is made only when
// the grant asks for one, the client registered the refresh_token grant,
// and there is a user (never for client_credentials).
func (g *accessGenerator) Token(ctx context.Context, data *oauth2.GenerateBasic, isGenRefresh bool) (string, string, error) {
	const op = "oauth.accessGenerator.Token"
	ti := data.TokenInfo
	family, granted := "", ""
	if eti, ok := ti.(oauth2.ExtendableTokenInfo); ok && eti.GetExtension() != nil {
		family = eti.GetExtension().Get(extFamily)
		granted = eti.GetExtension().Get(extResources)
	}
	if !validFamily(family) {
		return "", "", errors.E(errors.ServerError, "").WithCause(op, errors.New("token info without a family"))
	}
	sub := data.UserID
	if sub == "" {
		sub = data.Client.GetID() // RFC 9068 §2.2: client_credentials
	}
	c, ok := data.Client.(*Client)
	if !ok {
		return "", "", errors.E(errors.ServerError, "").WithCause(op, errors.New("client is not an *oauth.Client"))
	}
	aud, err := g.s.tokenAudience(ctx, c, splitResources(granted))
	if err != nil {
		return "", "", err
	}
	now := g.s.now()
	claims := accessClaims{
		Iss:      g.s.issuer,
		Sub:      sub,
		Aud:      aud,
		ClientID: data.Client.GetID(),
		Scope:    ti.GetScope(),
		Iat:      now.Unix(),
		Exp:      now.Add(ti.GetAccessExpiresIn()).Unix(),
		Jti:      family + "." + randomToken(16),
	}
	access, err := g.s.keys.keys(ctx).current.sign(&claims)
	if err != nil {
		return "", "", errors.E(errors.ServerError, "").WithCause(op, err)
	}
	refresh := ""
	if isGenRefresh && data.UserID != "" && c.allows(GrantRefreshToken) {
		refresh = randomToken(32)
	}
	return access, refresh, nil
}

// sign returns the compact JWS of claims (RFC 7515 §7.1, RFC 7518 §3.4:
// the signature is R || S, 32 bytes each).
func (sk *signingKey) sign(claims *accessClaims) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.Grow(len(sk.header) + 2 + base64.RawURLEncoding.EncodedLen(len(payload)) + 86)
	b.WriteString(sk.header)
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString(payload))
	h := sha256.Sum256([]byte(b.String()))
	r, s, err := ecdsa.Sign(rand.Reader, sk.priv, h[:])
	if err != nil {
		return "", err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	b.WriteByte('.')
	b.WriteString(base64.RawURLEncoding.EncodeToString(sig[:]))
	return b.String(), nil
}

// errBadToken is the one answer for every way a token can fail to verify:
// which check failed is logged, never sent.
func errBadToken(op string, cause error) *errors.Error {
	return errors.E(errors.InvalidToken, "The access token is invalid or expired").WithCause(op, cause)
}

// verifyAccessToken checks a JWT's header, signature, issuer and
// lifetime. It does not consult the deny list (see checkRevoked), nor the
// audience, which is authd itself only for tokens its own APIs accept
// (see forIssuer): /introspect and /revoke take tokens for any resource.
//
// A token whose signature verified is remembered (see verifiedTokens), so
// a resource server introspecting the same token again costs a hash, not
// an ES256 verification; its key must still be trusted and its lifetime is
// checked every time.
//
// Errors: invalid_token.
func (s *Server) verifyAccessToken(ctx context.Context, tok string) (*accessClaims, error) {
	const op = "oauth.verifyAccessToken"
	if len(tok) > maxTokenLen {
		return nil, errBadToken(op, errors.New("token too long"))
	}
	key := sha256.Sum256([]byte(tok))
	v, ok := s.verified.get(key)
	if !ok || s.keys.lookup(ctx, v.kid) == nil {
		var err error
		if v, err = s.verifySigned(ctx, tok); err != nil {
			return nil, err
		}
		s.verified.add(key, v)
	}
	c := *v.claims
	now := s.now().Unix()
	switch {
	case c.Exp <= now:
		return nil, errBadToken(op, errors.Errorf("expired %ds ago", now-c.Exp))
	case c.Iat > now+60:
		return nil, errBadToken(op, errors.New("issued in the future"))
	}
	return &c, nil
}

// verifySigned checks everything about a token that cannot change: its
// header, its signature by a trusted key, and its issuer, subject,
// client, jti and that it has an audience.
func (s *Server) verifySigned(ctx context.Context, tok string) (verifiedToken, error) {
	const op = "oauth.verifyAccessToken"
	h64, rest, ok1 := strings.Cut(tok, ".")
	p64, s64, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || h64 == "" || p64 == "" || s64 == "" || strings.Contains(s64, ".") {
		return verifiedToken{}, errBadToken(op, errors.New("not a compact JWS"))
	}
	hb, err := base64.RawURLEncoding.DecodeString(h64)
	if err != nil {
		return verifiedToken{}, errBadToken(op, errors.Errorf("header: %w", err))
	}
	var hdr struct {
		Alg  string          `json:"alg"`
		Kid  string          `json:"kid"`
		Typ  string          `json:"typ"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return verifiedToken{}, errBadToken(op, errors.Errorf("header: %w", err))
	}
	// RFC 9068 §4: typ must be at+jwt (or its full media type).
	if hdr.Alg != algES256 || hdr.Crit != nil ||
		!(strings.EqualFold(hdr.Typ, typAccessToken) || strings.EqualFold(hdr.Typ, "application/"+typAccessToken)) {
		return verifiedToken{}, errBadToken(op, errors.Errorf("header alg %q typ %q", hdr.Alg, hdr.Typ))
	}
	sk := s.keys.lookup(ctx, hdr.Kid)
	if sk == nil {
		return verifiedToken{}, errBadToken(op, errors.Errorf("unknown kid %q", hdr.Kid))
	}
	sig, err := base64.RawURLEncoding.DecodeString(s64)
	if err != nil || len(sig) != 64 {
		return verifiedToken{}, errBadToken(op, errors.New("signature is not 64 bytes of base64url"))
	}
	digest := sha256.Sum256([]byte(tok[:len(h64)+1+len(p64)]))
	r, ss := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(&sk.priv.PublicKey, digest[:], r, ss) {
		return verifiedToken{}, errBadToken(op, errors.New("bad signature"))
	}
	pb, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		return verifiedToken{}, errBadToken(op, errors.Errorf("payload: %w", err))
	}
	var c accessClaims
	if err := json.Unmarshal(pb, &c); err != nil {
		return verifiedToken{}, errBadToken(op, errors.Errorf("payload: %w", err))
	}
	switch {
	case c.Iss != s.issuer:
		return verifiedToken{}, errBadToken(op, errors.Errorf("iss %q", c.Iss))
	case len(c.Aud) == 0:
		return verifiedToken{}, errBadToken(op, errors.New("no aud"))
	case c.Sub == "" || c.ClientID == "":
		return verifiedToken{}, errBadToken(op, errors.New("no sub or client_id"))
	}
	if _, ok := familyOf(c.Jti); !ok {
		return verifiedToken{}, errBadToken(op, errors.New("malformed jti"))
	}
	return verifiedToken{kid: hdr.Kid, claims: &c}, nil
}

// verifiedToken is an access token whose signature and fixed claims
// verified, and the key that signed it.
type verifiedToken struct {
	kid    string
	claims *accessClaims // never modified once cached
}

// verifiedTokensSize bounds the cache of verified access tokens (about
// 400 bytes each).
const verifiedTokensSize = 10000

// verifiedTokens remembers tokens that verified, by SHA-256 of the whole
// token, forgetting the oldest first. Only successes go in, and the key
// covers every byte the verification read, so it cannot make a bad token
// pass; what can change (the key still trusted, the lifetime, the deny
// list) is checked on every use.
type verifiedTokens struct {
	mu   sync.Mutex
	m    map[[32]byte]verifiedToken
	ring [][32]byte
	next int
}

func newVerifiedTokens(size int) *verifiedTokens {
	return &verifiedTokens{m: make(map[[32]byte]verifiedToken, size), ring: make([][32]byte, 0, size)}
}

func (c *verifiedTokens) get(k [32]byte) (verifiedToken, bool) {
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	return v, ok
}

func (c *verifiedTokens) add(k [32]byte, v verifiedToken) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; ok {
		c.m[k] = v
		return
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, k)
	} else {
		delete(c.m, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % len(c.ring)
	}
	c.m[k] = v
}

// looksLikeJWT tells an access token (three base64url parts) from a
// refresh token (one).
func looksLikeJWT(tok string) bool { return strings.Count(tok, ".") == 2 }

// newFamily returns a new token-family id.
func newFamily() string { return randomToken(16) }

// validFamily checks the syntax newFamily produces: 22 base64url chars.
func validFamily(f string) bool {
	if len(f) != 22 {
		return false
	}
	for i := 0; i < len(f); i++ {
		c := f[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// familyOf returns the family part of a jti.
func familyOf(jti string) (string, bool) {
	f, r, ok := strings.Cut(jti, ".")
	if !ok || !validFamily(f) || r == "" || len(r) > 64 {
		return "", false
	}
	return f, true
}

// accessExpiry returns when claims expire.
func (c *accessClaims) expiry() time.Time { return time.Unix(c.Exp, 0) }
