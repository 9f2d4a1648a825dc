package resource

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd-dev/authd/errors"
)

// Defaults of Config.
const (
	DefaultLeeway             = 30 * time.Second
	DefaultMinRefreshInterval = 5 * time.Second
	DefaultMinCacheTTL        = time.Minute
	DefaultMaxCacheTTL        = time.Hour
	// DefaultCacheTTL is how long a JWK Set is kept when its response
	// says nothing of caching.
	DefaultCacheTTL = 5 * time.Minute
	// MaxStale is how long past its expiry a JWK Set is still used while
	// it cannot be refreshed: authd being briefly unreachable does not
	// stop an API, a long outage does not keep a retired key trusted.
	MaxStale = 24 * time.Hour
)

// maxTokenLen bounds what is parsed as a token at all.
const maxTokenLen = 8 << 10

// Config configures a Verifier.
type Config struct {
	// Issuer is authd's issuer URL, exactly as its metadata and its
	// tokens' "iss" say (e.g. "https://auth.example.com"). Required.
	Issuer string
	// Resource is this API's identifier: an absolute https URI (http for
	// loopback) without fragment, as clients ask for it with the
	// "resource" parameter (RFC 8707) and as its metadata names it (RFC
	// 9728); the metadata is served under its host. Empty means Issuer.
	Resource string
	// Audience is what an access token's "aud" must contain. Empty means
	// Resource, and so, when both are empty, the issuer: the audience of
	// the tokens authd issues for its own APIs. Set it to the issuer to
	// accept those at an API with an identifier of its own.
	Audience string
	// JWKSURI is where authd's keys are, skipping discovery; empty means
	// the jwks_uri of the issuer's metadata (RFC 8414).
	JWKSURI string
	// HTTPClient fetches the metadata and the keys; nil means a client
	// with a 10-second timeout.
	HTTPClient *http.Client
	// Leeway is the clock skew tolerated on exp, nbf and iat; 0 means
	// DefaultLeeway, a negative value none.
	Leeway time.Duration
	// MinRefreshInterval is the least time between two fetches of the
	// keys, however many tokens name an unknown key; 0 means
	// DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// MinCacheTTL and MaxCacheTTL bound how long a key set is kept,
	// whatever its Cache-Control max-age says; 0 means DefaultMinCacheTTL
	// and DefaultMaxCacheTTL.
	MinCacheTTL, MaxCacheTTL time.Duration

	// Realm is the realm of WWW-Authenticate challenges; empty means
	// Resource.
	Realm string
	// ScopesSupported, ResourceName and ResourceDocumentation are
	// published by MetadataHandler (RFC 9728 §2).
	ScopesSupported       []string
	ResourceName          string
	ResourceDocumentation string
	// ErrorURIBase is the base of error_uri in error responses: the page
	// that documents each code. Empty means "<Issuer>/docs/errors",
	// authd's catalog.
	ErrorURIBase string
	// Logger receives the reason a token was refused (debug level) and
	// key-set fetch failures (warn level); nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier verifies authd's access tokens (RFC 9068 JWTs) for one
// resource. It finds authd's keys through the issuer's metadata, keeps
// them as long as their Cache-Control allows (within MinCacheTTL and
// MaxCacheTTL), fetches them again at most every MinRefreshInterval when a
// token names a key it does not know (one fetch at a time, whatever the
// number of waiting requests), and keeps using the last good keys while
// authd cannot be reached (up to MaxStale past their expiry).
//
// A Verifier is safe for concurrent use. Verifying a token whose key is
// known does no I/O.
type Verifier struct {
	cfg          Config
	leeway       time.Duration
	metadataURL  string
	errorURIBase string
	hc           *http.Client
	log          *slog.Logger
	now          func() time.Time

	keys    atomic.Pointer[keySet]
	headers atomic.Pointer[map[string]header] // headers of verified tokens

	mu          sync.Mutex
	flight      *flight
	lastAttempt time.Time
	lastErr     error
	jwksURI     string // discovered, or Config.JWKSURI
}

// keySet is one fetched generation of keys; replaced, never changed.
type keySet struct {
	byKid   map[string]*publicKey
	expires time.Time
}

// flight is a key-set fetch in progress.
type flight struct {
	done chan struct{}
	err  error
}

// NewVerifier checks cfg and returns a Verifier. It does no I/O: the keys
// are fetched when the first token needs them (call Refresh to fetch them
// at start).
//
// Errors: a plain error naming the setting for an Issuer or Resource that
// is not an absolute http(s) URI, or an ErrorURIBase that is not one.
func NewVerifier(cfg Config) (*Verifier, error) {
	if err := checkURI("Issuer", cfg.Issuer, false); err != nil {
		return nil, err
	}
	if cfg.Resource == "" {
		cfg.Resource = cfg.Issuer
	}
	if err := checkURI("Resource", cfg.Resource, true); err != nil {
		return nil, err
	}
	if cfg.Audience == "" {
		cfg.Audience = cfg.Resource
	}
	if cfg.JWKSURI != "" {
		if err := checkURI("JWKSURI", cfg.JWKSURI, true); err != nil {
			return nil, err
		}
	}
	v := &Verifier{cfg: cfg, hc: cfg.HTTPClient, log: cfg.Logger, now: cfg.Now, jwksURI: cfg.JWKSURI}
	if v.hc == nil {
		v.hc = &http.Client{Timeout: 10 * time.Second}
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case cfg.Leeway == 0:
		v.leeway = DefaultLeeway
	case cfg.Leeway > 0:
		v.leeway = cfg.Leeway
	}
	if v.cfg.MinRefreshInterval <= 0 {
		v.cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if v.cfg.MinCacheTTL <= 0 {
		v.cfg.MinCacheTTL = DefaultMinCacheTTL
	}
	if v.cfg.MaxCacheTTL <= 0 {
		v.cfg.MaxCacheTTL = DefaultMaxCacheTTL
	}
	if v.cfg.MaxCacheTTL < v.cfg.MinCacheTTL {
		v.cfg.MaxCacheTTL = v.cfg.MinCacheTTL
	}
	if v.cfg.Realm == "" {
		v.cfg.Realm = cfg.Resource
	}
	v.errorURIBase = cfg.ErrorURIBase
	if v.errorURIBase == "" {
		v.errorURIBase = strings.TrimSuffix(cfg.Issuer, "/") + "/docs/errors"
	} else if err := checkURI("ErrorURIBase", v.errorURIBase, false); err != nil {
		return nil, err
	}
	v.metadataURL = metadataURL(cfg.Resource)
	empty := map[string]header{}
	v.headers.Store(&empty)
	return v, nil
}

// checkURI checks that s is an absolute http(s) URI without fragment (and,
// unless query is allowed, without query).
func checkURI(name, s string, query bool) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || u.User != nil || (!query && u.RawQuery != "") {
		return errors.Errorf("resource: Config.%s %q is not an absolute http(s) URI without fragment", name, s)
	}
	return nil
}

// Resource returns the resource identifier of this API.
func (v *Verifier) Resource() string { return v.cfg.Resource }

// Audience returns the value a token's "aud" must contain.
func (v *Verifier) Audience() string { return v.cfg.Audience }

// Issuer returns the issuer whose tokens v accepts.
func (v *Verifier) Issuer() string { return v.cfg.Issuer }

// Claims are the claims of a verified access token (RFC 9068 §2.2).
type Claims struct {
	// Subject is "sub": the user (a Bitcoin address, google:<id>,
	// github:<id>), or the client itself for a client_credentials token.
	Subject string
	// ClientID is "client_id": the OAuth client the token was issued to.
	ClientID string
	// Scopes are the space-separated "scope" values.
	Scopes []string
	// Audience is "aud"; it contains the Verifier's Audience.
	Audience []string
	// Issuer is "iss".
	Issuer string
	// Expiry, IssuedAt and NotBefore are "exp", "iat" and "nbf" (zero
	// when absent).
	Expiry, IssuedAt, NotBefore time.Time
	// ID is "jti", the token's unique identifier.
	ID string
}

// HasScope reports whether the token carries scope.
func (c *Claims) HasScope(scope string) bool { return contains(c.Scopes, scope) }

// ForClient reports whether the token acts for its client alone (a
// client_credentials grant: RFC 9068 §2.2 makes its sub the client_id)
// rather than for a user.
func (c *Claims) ForClient() bool { return c.Subject == c.ClientID }

// header is a JWS protected header (RFC 7515 §4.1) as far as Verify
// reads it.
type header struct {
	Alg  string          `json:"alg"`
	Kid  string          `json:"kid"`
	Typ  string          `json:"typ"`
	Crit json.RawMessage `json:"crit"`
}

// maxHeaders bounds the cache of verified tokens' headers. authd's
// header is the same for every token a key signs, so a handful suffice.
const maxHeaders = 64

// payload is the JWT claims set as Verify reads it (parsePayload).
type payload struct {
	Iss, Sub, ClientID, Scope, Jti string
	Aud                            audience
	Exp, Nbf, Iat                  numericDate
}

// audience is "aud": a string or an array of strings (RFC 7519 §4.1.3).
type audience []string

// numericDate is a NumericDate (RFC 7519 §2): seconds since the epoch,
// possibly with a fraction. set records that the claim was present.
type numericDate struct {
	sec float64
	set bool
}

func (d numericDate) time() time.Time {
	if !d.set {
		return time.Time{}
	}
	s, frac := math.Modf(d.sec)
	return time.Unix(int64(s), int64(frac*1e9))
}

// errInvalid is the one answer for every way a token can fail: which
// check failed is for the log (Err), never for the client.
func errInvalid(cause string) *errors.Error {
	return errors.E(errors.InvalidToken, "The access token is invalid or expired").WithCause("resource.Verify", errors.New(cause))
}

// Verify checks an access token and returns its claims: a compact JWS
// (RFC 7515) with header "typ" "at+jwt" (RFC 9068 §4), "alg" ES256 or
// RS256 matching its key, no "crit"; a signature by a key of the issuer's
// JWK Set named by "kid"; "iss" equal to the issuer; "aud" containing
// Config.Audience (by default the resource, itself by default the
// issuer); "exp" not passed and "nbf" reached (with Leeway), "iat" not in
// the future; "sub", "client_id" and "jti" present.
//
// Errors (*errors.Error): invalid_token for any token that fails a check;
// temporarily_unavailable (with RetryAfter) when the keys the token needs
// cannot be fetched and none are known.
func (v *Verifier) Verify(ctx context.Context, token string) (*Claims, error) {
	if len(token) > maxTokenLen {
		return nil, errInvalid("token too long")
	}
	dot1 := strings.IndexByte(token, '.')
	if dot1 <= 0 {
		return nil, errInvalid("not a compact JWS")
	}
	rest := token[dot1+1:]
	dot2 := strings.IndexByte(rest, '.')
	if dot2 <= 0 || dot2 == len(rest)-1 || strings.IndexByte(rest[dot2+1:], '.') >= 0 {
		return nil, errInvalid("not a compact JWS")
	}
	h64, p64, s64 := token[:dot1], rest[:dot2], rest[dot2+1:]

	hdr, cached := (*v.headers.Load())[h64]
	if !cached {
		var err error
		if hdr, err = parseHeader(h64); err != nil {
			return nil, err
		}
	}
	key, err := v.key(ctx, hdr.Kid)
	if err != nil {
		return nil, err
	}
	if key.alg != hdr.Alg {
		return nil, errInvalid("alg " + hdr.Alg + " does not match key " + key.alg)
	}
	var sig [512]byte
	n, ok := decodeB64(sig[:], s64)
	if !ok {
		return nil, errInvalid("signature is not base64url of at most 512 bytes")
	}
	if !key.verify(token[:dot1+1+dot2], sig[:n]) {
		return nil, errInvalid("bad signature")
	}
	// The payload is decoded once into a string; the claims parsed from
	// it share its memory.
	var pbuf [2048]byte
	var ps string
	if n, ok := decodeB64(pbuf[:], p64); ok {
		ps = string(pbuf[:n])
	} else {
		pb, err := b64.DecodeString(p64)
		if err != nil {
			return nil, errInvalid("payload is not base64url")
		}
		ps = string(pb)
	}
	var p payload
	if err := parsePayload(ps, &p); err != nil {
		return nil, errInvalid("payload: " + err.Error())
	}
	if !cached {
		v.rememberHeader(h64, hdr)
	}
	return v.check(&p)
}

// decodeB64 decodes the base64url (no padding) s into dst, which must
// have room for it, without allocating.
func decodeB64(dst []byte, s string) (int, bool) {
	if b64.DecodedLen(len(s)) > len(dst) || len(s) > 4096 {
		return 0, false
	}
	var src [4096]byte
	n := copy(src[:], s)
	m, err := b64.Decode(dst, src[:n])
	return m, err == nil
}

// parseHeader decodes and checks a JWS header.
func parseHeader(h64 string) (header, error) {
	var hdr header
	hb, err := b64.DecodeString(h64)
	if err != nil {
		return hdr, errInvalid("header is not base64url")
	}
	if err := json.Unmarshal(hb, &hdr); err != nil {
		return hdr, errInvalid("header: " + err.Error())
	}
	switch {
	case hdr.Alg != algES256 && hdr.Alg != algRS256:
		return hdr, errInvalid("alg " + strconv.Quote(hdr.Alg))
	case !strings.EqualFold(hdr.Typ, "at+jwt") && !strings.EqualFold(hdr.Typ, "application/at+jwt"):
		// RFC 9068 §4: keeps an ID Token or another JWT from passing as an
		// access token.
		return hdr, errInvalid("typ " + strconv.Quote(hdr.Typ))
	case hdr.Crit != nil:
		return hdr, errInvalid("crit header")
	case hdr.Kid == "":
		return hdr, errInvalid("no kid")
	}
	return hdr, nil
}

// rememberHeader caches the parsed header of a token whose signature
// verified, so the next token of the same key skips decoding it. Only
// verified headers go in, so forged tokens cannot fill it.
func (v *Verifier) rememberHeader(h64 string, hdr header) {
	old := *v.headers.Load()
	if len(old) >= maxHeaders {
		old = nil
	}
	m := make(map[string]header, len(old)+1)
	for k, x := range old {
		m[k] = x
	}
	m[h64] = hdr
	v.headers.Store(&m)
}

// check checks the claims of a token whose signature verified.
func (v *Verifier) check(p *payload) (*Claims, error) {
	now := v.now()
	switch {
	case p.Iss != v.cfg.Issuer:
		return nil, errInvalid("iss " + strconv.Quote(p.Iss))
	case !contains(p.Aud, v.cfg.Audience):
		return nil, errInvalid("aud does not contain " + v.cfg.Audience)
	case !p.Exp.set:
		return nil, errInvalid("no exp")
	case !now.Before(p.Exp.time().Add(v.leeway)):
		return nil, errInvalid("expired at " + p.Exp.time().UTC().Format(time.RFC3339))
	case p.Nbf.set && now.Add(v.leeway).Before(p.Nbf.time()):
		return nil, errInvalid("not valid before " + p.Nbf.time().UTC().Format(time.RFC3339))
	case !p.Iat.set:
		return nil, errInvalid("no iat")
	case now.Add(v.leeway).Before(p.Iat.time()):
		return nil, errInvalid("issued in the future")
	case p.Sub == "" || p.ClientID == "" || p.Jti == "":
		return nil, errInvalid("no sub, client_id or jti")
	}
	return &Claims{
		Subject:   p.Sub,
		ClientID:  p.ClientID,
		Scopes:    strings.Fields(p.Scope),
		Audience:  p.Aud,
		Issuer:    p.Iss,
		Expiry:    p.Exp.time(),
		IssuedAt:  p.Iat.time(),
		NotBefore: p.Nbf.time(),
		ID:        p.Jti,
	}, nil
}
