package oauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/go-oauth2/oauth2/v4"
)

// Access tokens are RFC 9068 JWTs: header {"alg":"ES256","kid":…,
// "typ":"at+jwt"}, claims iss, sub, aud (the resources the client asked
// for, RFC 8707, or the issuer: authd's own APIs), client_id, scope, exp,
// iat, jti. A jti is "<family>.<random>", so the deny list can revoke one
// token or a whole family with one Redis lookup.

// maxTokenLen bounds what is parsed as a token at all.
const maxTokenLen = 4096

// clockSkew is how far ahead of this server's clock a token's iat or nbf
// may be: it may come from another node whose clock runs ahead.
const clockSkew = time.Minute

type accessClaims struct {
	Iss      string           `json:"iss"`
	Sub      string           `json:"sub"`
	Aud      jwt.Audience     `json:"aud"`
	ClientID string           `json:"client_id"`
	Scope    string           `json:"scope,omitempty"`
	Exp      int64            `json:"exp"`
	Iat      int64            `json:"iat"`
	Nbf      *jwt.NumericDate `json:"nbf,omitempty"` // never written by authd; checked if present
	Jti      string           `json:"jti"`
}

// registered returns the claims' RFC 7519 §4.1 members, for go-jose's
// validator. A missing exp (0) stays missing.
func (c *accessClaims) registered() *jwt.Claims {
	std := &jwt.Claims{Issuer: c.Iss, Subject: c.Sub, Audience: c.Aud, NotBefore: c.Nbf, IssuedAt: jwt.NewNumericDate(time.Unix(c.Iat, 0)), ID: c.Jti}
	if c.Exp != 0 {
		std.Expiry = jwt.NewNumericDate(time.Unix(c.Exp, 0))
	}
	return std
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

// sign returns claims as an access token signed by sk: a compact JWS with
// header {"alg":"ES256","kid":…,"typ":"at+jwt"} (RFC 9068 §2.1).
func (sk *signingKey) sign(claims *accessClaims) (string, error) {
	if sk.access == nil {
		return "", errors.Errorf("key %s (%s) does not sign access tokens", sk.kid, sk.alg)
	}
	return signJWT(sk.access, claims)
}

// signJWT returns claims, as JSON, signed by signer in the JWS compact
// serialization. (go-jose's jwt.Signed builder would encode the claims,
// decode them into a map and encode that again: a third of the cost of
// an ES256 token.)
func signJWT(signer *jwsSigner, claims any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return signer.sign(payload)
}

// jwsSigner signs JWS compact serializations (RFC 7515 §7.1) with one key
// and one protected header. The header is made once, by go-jose, when the
// key is loaded, and its bytes are reused for every token: go-jose would
// build the same header as a map and encode it again for each one. The
// signature is the one go-jose makes: for ES256, R and S as 32 big-endian
// bytes each (RFC 7518 §3.4); for RS256, RSASSA-PKCS1-v1_5 with SHA-256
// (RFC 7518 §3.3).
type jwsSigner struct {
	header string // BASE64URL(UTF8(JWS Protected Header))
	priv   crypto.Signer
}

// newJWSSigner returns a signer of tokens whose header names alg, kid and
// typ, signed by priv (an *ecdsa.PrivateKey on P-256 for ES256, an
// *rsa.PrivateKey for RS256).
func newJWSSigner(alg, kid, typ string, priv crypto.Signer) (*jwsSigner, error) {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if alg != AlgES256 || k.Curve != elliptic.P256() {
			return nil, errors.Errorf("jws: an ECDSA key signs ES256 on P-256 only, not %s", alg)
		}
	case *rsa.PrivateKey:
		if alg != AlgRS256 {
			return nil, errors.Errorf("jws: an RSA key signs RS256 only, not %s", alg)
		}
	default:
		return nil, errors.Errorf("jws: unsupported key type %T", priv)
	}
	js, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: alg}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return nil, err
	}
	jws, err := js.Sign([]byte("{}"))
	if err != nil {
		return nil, err
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		return nil, err
	}
	header, _, _ := strings.Cut(compact, ".")
	return &jwsSigner{header: header, priv: priv}, nil
}

// sign returns payload signed in the JWS compact serialization:
// header.payload.signature, each BASE64URL without padding.
func (j *jwsSigner) sign(payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(j.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(512))
	buf = append(buf, j.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	var sig []byte
	switch k := j.priv.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, digest[:])
		if err != nil {
			return "", err
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case *rsa.PrivateKey:
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:]); err != nil {
			return "", err
		}
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
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
// an ES256 verification; its key must still be trusted, and its claims
// are validated on every use.
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
		s.verified.misses.Add(1)
		var err error
		if v, err = s.verifySigned(ctx, tok); err != nil {
			return nil, err
		}
		s.verified.add(key, v)
	}
	// Any audience: /introspect and /revoke take tokens for every
	// resource; authd's own APIs check theirs (forIssuer).
	if err := s.validateClaims(v.std, ""); err != nil {
		return nil, errBadToken(op, err)
	}
	c := *v.claims
	return &c, nil
}

// validateClaims checks a verified token's registered claims against this
// server at its clock: iss is the issuer, aud contains audience (any aud
// when audience is ""), nbf and
// iat are no further ahead than clockSkew (go-jose's validator), and exp
// is present and still ahead: RFC 7519 §4.1.4 makes the token invalid at
// exp itself, with no leeway (authd signs with its own clock).
func (s *Server) validateClaims(std *jwt.Claims, audience string) error {
	now := s.now()
	want := jwt.Expected{Issuer: s.issuer, Time: now}
	if audience != "" {
		want.AnyAudience = jwt.Audience{audience}
	}
	if err := std.ValidateWithLeeway(want, clockSkew); err != nil {
		return err
	}
	if std.Expiry == nil || *std.Expiry <= jwt.NumericDate(now.Unix()) {
		return errors.New("expired, or no exp")
	}
	return nil
}

// verifySigned checks everything about an access token that cannot
// change: its header, its signature by a trusted ES256 key, and that it
// names a subject, a client, an audience and a jti of a token family.
// Claims that depend on the clock are left to validateClaims.
func (s *Server) verifySigned(ctx context.Context, tok string) (verifiedToken, error) {
	const op = "oauth.verifyAccessToken"
	t, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return verifiedToken{}, errBadToken(op, err)
	}
	hdr := t.Headers[0]
	// RFC 9068 §4: typ must be at+jwt (or its full media type). No
	// critical extensions are understood.
	typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string)
	if _, crit := hdr.ExtraHeaders["crit"]; crit ||
		!(strings.EqualFold(typ, typAccessToken) || strings.EqualFold(typ, "application/"+typAccessToken)) {
		return verifiedToken{}, errBadToken(op, errors.Errorf("header typ %q", typ))
	}
	sk := s.keys.lookup(ctx, hdr.KeyID)
	if sk == nil || sk.access == nil {
		return verifiedToken{}, errBadToken(op, errors.Errorf("unknown kid %q", hdr.KeyID))
	}
	var c accessClaims
	if err := t.Claims(sk.public(), &c); err != nil {
		return verifiedToken{}, errBadToken(op, err)
	}
	if c.Sub == "" || c.ClientID == "" || len(c.Aud) == 0 {
		return verifiedToken{}, errBadToken(op, errors.New("no sub, client_id or aud"))
	}
	if _, ok := familyOf(c.Jti); !ok {
		return verifiedToken{}, errBadToken(op, errors.New("malformed jti"))
	}
	return verifiedToken{kid: hdr.KeyID, claims: &c, std: c.registered()}, nil
}

// verifiedToken is an access token whose signature and fixed claims
// verified, and the key that signed it.
type verifiedToken struct {
	kid    string
	claims *accessClaims // never modified once cached
	std    *jwt.Claims   // the same claims, for jwt.Claims.Validate
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

	// lookups counts calls of get; misses counts the lookups whose token
	// had to be verified (absent, or its key no longer trusted).
	lookups, misses atomic.Uint64
}

// TokenCacheStats counts the lookups of access tokens in the cache of
// verified tokens since the server started.
type TokenCacheStats struct {
	Hits   uint64 // answered from the cache: no signature verification
	Misses uint64 // not in the cache, or its key no longer trusted: verified
}

// TokenCacheStats returns the hits and misses of the cache of verified
// access tokens, which Bearer checks (/userinfo, /backup) and
// introspection share.
func (s *Server) TokenCacheStats() TokenCacheStats {
	// misses is read first: each miss was a lookup first, so Hits never
	// comes out negative while lookups are under way.
	m := s.verified.misses.Load()
	return TokenCacheStats{Hits: s.verified.lookups.Load() - m, Misses: m}
}

func newVerifiedTokens(size int) *verifiedTokens {
	return &verifiedTokens{m: make(map[[32]byte]verifiedToken, size), ring: make([][32]byte, 0, size)}
}

func (c *verifiedTokens) get(k [32]byte) (verifiedToken, bool) {
	c.lookups.Add(1)
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
