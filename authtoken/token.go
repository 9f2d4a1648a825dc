package authtoken

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/btcsuite/btcd/btcec/v2"
)

// Token syntaxes.
const (
	// FormatSigma is sigma:<address>:<timestamp>|<signature> (the unbound
	// form) or sigma-bound:<address>:<timestamp>|<signature> (the bound
	// form, see BoundTarget).
	FormatSigma = "sigma"
	// FormatBitcoinAuth is the npm bitcoin-auth library's
	// <pubkey>|<scheme>|<timestamp>|<requestPath>|<signature>; its
	// requestPath is the signed request target in either form.
	FormatBitcoinAuth = "bitcoin-auth"
)

// Signature schemes.
const (
	// SchemeSigma: a sigma token (a BSM signature by an address).
	SchemeSigma = "sigma"
	// SchemeBSM: a Bitcoin Signed Message signature (bitcoin-auth bsm
	// tokens, and the login form).
	SchemeBSM = "bsm"
	// SchemeBRC77: a BRC-77 signed message (bitcoin-auth brc77 tokens).
	SchemeBRC77 = "brc77"
)

const (
	// sigmaPrefix starts an unbound sigma token, sigmaBoundPrefix a bound
	// one. Both are the first of the three colon-separated fields, so the
	// rule "split on the first two colons, then on the last bar" reads
	// both, and a sigma token made before the bound form existed is read
	// exactly as before.
	sigmaPrefix      = "sigma:"
	sigmaBoundPrefix = "sigma-bound:"
	// MaxTokenLen bounds what is parsed at all. A bitcoin-auth token
	// repeats the request target, so it is a generous bound.
	MaxTokenLen  = 16 << 10
	pubKeyHexLen = 66
)

// ParsedToken is an X-Auth-Token whose syntax has been checked. Nothing in
// it has been verified: not the signature, not the time, not the target.
type ParsedToken struct {
	// Format is FormatSigma or FormatBitcoinAuth.
	Format string
	// Scheme is SchemeSigma, SchemeBSM or SchemeBRC77.
	Scheme string
	// Address is the signer's mainnet P2PKH address: as sent in a sigma
	// token, derived from the compressed pubkey in a bitcoin-auth token.
	Address string
	// PubKey is the 66-hex compressed public key of a bitcoin-auth token
	// (as sent, so possibly upper-case hex), else "".
	PubKey string
	// Timestamp is the timestamp exactly as sent; it is part of the signed
	// message. Time is its value.
	Timestamp string
	Time      time.Time
	// RequestPath is the request target a bitcoin-auth token names: a
	// path and query (unbound), or "<METHOD> <absolute URL>" (bound).
	// Empty for sigma tokens, which do not carry it.
	RequestPath string
	// Bound reports that the token signed the bound form of the request
	// target, "<METHOD> <absolute URL>" (see BoundTarget): a sigma-bound:
	// token, or a bitcoin-auth token whose requestPath has that form.
	Bound bool
	// Uncompressed reports that a BSM signature's header names the
	// uncompressed serialisation of the key (headers 27-30): a sigma token
	// signed with an uncompressed (5…) WIF key. The header is not signed,
	// so the same signature is also valid with the compressed header for
	// the key's other address: servers decide which form they accept.
	Uncompressed bool
	// Signature is the signature text as sent (base64).
	Signature string

	hash160 [20]byte
	pub     [33]byte
	compact [compactSigLen]byte // sigma and bsm
	env     []byte              // brc77 envelope
}

// ParseToken checks the syntax of an X-Auth-Token in either syntax. It
// does no curve work: a bitcoin-auth pubkey's syntax is checked here, its
// place on the curve by Check.
//
// Errors (*errors.Error):
//   - malformed_auth_token: not one of the two syntaxes, an unknown scheme,
//     an address that is not base58check mainnet P2PKH, a signature that is
//     not strict padded base64 of the right size, a bound request target
//     that is not "<METHOD> <http(s) URL>".
//   - invalid_public_key: a bitcoin-auth pubkey that is not 66 hex
//     characters starting 02 or 03.
//   - invalid_timestamp: a timestamp that is not RFC 3339 UTC.
func ParseToken(token string) (*ParsedToken, error) {
	t := new(ParsedToken)
	if err := t.parse(token); err != nil {
		return nil, err
	}
	return t, nil
}

// ParseTokenInto is ParseToken into a caller's ParsedToken, which it
// overwrites. On failure t.Address is still set whenever the token named a
// well-formed signer before the part that is wrong, so that a server can
// count the failure against that signer.
//
// Errors: as ParseToken.
func ParseTokenInto(token string, t *ParsedToken) error {
	*t = ParsedToken{}
	return t.parse(token)
}

func (t *ParsedToken) parse(token string) error {
	if len(token) > MaxTokenLen {
		return malformed("token too long")
	}
	switch {
	case strings.HasPrefix(token, sigmaPrefix):
		return t.parseSigma(token[len(sigmaPrefix):], false)
	case strings.HasPrefix(token, sigmaBoundPrefix):
		return t.parseSigma(token[len(sigmaBoundPrefix):], true)
	}
	return t.parseBitcoinAuth(token)
}

func malformed(cause string) *errors.Error {
	return errors.E(errors.MalformedAuthToken, descMalformed).WithCause("authtoken.ParseToken", errors.New(cause))
}

// parseSigma parses <address>:<timestamp>|<signature>: split on the first
// colon (timestamps contain colons), then on the last bar.
func (t *ParsedToken) parseSigma(s string, bound bool) error {
	t.Format, t.Scheme, t.Bound = FormatSigma, SchemeSigma, bound
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return malformed("sigma token without address separator")
	}
	rest := s[i+1:]
	j := strings.LastIndexByte(rest, '|')
	if j < 0 {
		return malformed("sigma token without signature separator")
	}
	h, ok := decodeAddress(s[:i])
	if !ok {
		return malformed("sigma address is not a mainnet P2PKH address")
	}
	t.Address, t.hash160 = s[:i], h
	t.Timestamp, t.Signature = rest[:j], rest[j+1:]
	if !decodeCompactSig(t.Signature, &t.compact) {
		return malformed("sigma signature is not 88 characters of strict base64")
	}
	t.Uncompressed = t.compact[0] < headerCompressed
	return t.parseTime()
}

// parseBitcoinAuth parses a token of the npm bitcoin-auth library:
// <pubkey>|<scheme>|<timestamp>|<requestPath>|<signature>.
func (t *ParsedToken) parseBitcoinAuth(s string) error {
	t.Format = FormatBitcoinAuth
	var parts [5]string
	for k := 0; k < 4; k++ {
		i := strings.IndexByte(s, '|')
		if i < 0 {
			return malformed("bitcoin-auth token with fewer than 5 parts")
		}
		parts[k], s = s[:i], s[i+1:]
	}
	if strings.IndexByte(s, '|') >= 0 {
		return malformed("bitcoin-auth token with more than 5 parts")
	}
	parts[4] = s
	switch parts[1] {
	case SchemeBSM, SchemeBRC77:
		t.Scheme = parts[1]
	default:
		return malformed("bitcoin-auth token with an unknown scheme")
	}
	t.PubKey, t.Timestamp, t.RequestPath, t.Signature = parts[0], parts[2], parts[3], parts[4]
	// The public key first: a token whose key is not a compressed
	// secp256k1 key is invalid_public_key, whatever else is wrong with it.
	if len(t.PubKey) != pubKeyHexLen || (t.PubKey[:2] != "02" && t.PubKey[:2] != "03") {
		return invalidPubKey("pubkey is not 66 hex characters starting 02 or 03")
	}
	if _, err := hex.Decode(t.pub[:], []byte(t.PubKey)); err != nil {
		return invalidPubKey("pubkey is not hex")
	}
	t.hash160 = hash160(t.pub[:])
	t.Address = encodeAddress(t.hash160)
	if t.Scheme == SchemeBSM {
		if !decodeCompactSig(t.Signature, &t.compact) {
			return malformed("bsm signature is not 88 characters of strict base64")
		}
		t.Uncompressed = t.compact[0] < headerCompressed
	} else {
		env, ok := decodeBRC77(t.Signature)
		if !ok {
			return malformed("brc77 signature is not strict base64 of a BRC-77 envelope")
		}
		t.env = env
	}
	if strings.IndexByte(t.RequestPath, ' ') >= 0 {
		// Request targets never hold a space (RFC 9112 §3): this is the
		// bound form, and it must be well-formed.
		if _, _, ok := splitBound(t.RequestPath); !ok {
			return malformed("bitcoin-auth requestPath with a space is not <METHOD> <absolute URL>")
		}
		t.Bound = true
	}
	return t.parseTime()
}

func invalidPubKey(cause string) *errors.Error {
	return errors.E(errors.InvalidPublicKey, descPublicKey).WithCause("authtoken.ParseToken", errors.New(cause))
}

func (t *ParsedToken) parseTime() error {
	tm, ok := ParseTimestamp(t.Timestamp)
	if !ok {
		return errors.E(errors.InvalidTimestamp, descTimestampSyntax).WithCause("authtoken.ParseToken", errors.New("timestamp is not RFC 3339 UTC"))
	}
	t.Time = tm
	return nil
}

// ParseTimestamp parses RFC 3339 UTC with an optional fraction of 1 to 9
// digits: 2006-01-02T15:04:05Z or 2006-01-02T15:04:05.000Z (what
// JavaScript's toISOString makes). Offsets other than Z are refused.
func ParseTimestamp(s string) (time.Time, bool) {
	if len(s) < 20 || len(s) > 30 || s[len(s)-1] != 'Z' ||
		s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(a, b int) (int, bool) {
		n := 0
		for i := a; i < b; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return 0, false
			}
			n = n*10 + int(c-'0')
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) {
		return time.Time{}, false
	}
	nsec := 0
	switch frac := s[19 : len(s)-1]; {
	case frac == "":
	case len(frac) >= 2 && frac[0] == '.':
		n, ok := num(20, len(s)-1)
		if !ok {
			return time.Time{}, false
		}
		for k := len(frac) - 1; k < 9; k++ {
			n *= 10
		}
		nsec = n
	default:
		return time.Time{}, false
	}
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	tm := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if tm.Day() != day { // 2026-02-30 normalises into March
		return time.Time{}, false
	}
	return tm, true
}

// FormatTimestamp formats t as bitcoin-auth and JavaScript's toISOString
// do: RFC 3339 UTC with milliseconds, 2026-11-21T22:00:00.000Z.
func FormatTimestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

// BodyHash returns the body part of the signed message: lowercase hex
// SHA-256 of body, or "" when body is empty.
func BodyHash(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// SignedMessage returns the message an X-Auth-Token signs:
// <requestTarget>|<timestamp>|<bodyHash>, where requestTarget is the
// request's path and query exactly as sent (unbound) or BoundTarget's
// "<METHOD> <absolute URL>" (bound).
func SignedMessage(requestTarget, timestamp, bodyHash string) string {
	return requestTarget + "|" + timestamp + "|" + bodyHash
}

// BoundTarget returns the bound form of a signed request target:
// "<METHOD> <absolute URL>", e.g. "DELETE https://auth.example.com/backup".
// The absolute URL is the server's issuer followed by the request-target
// exactly as sent (path and query, as in the request line), so a token in
// this form is good for one method at one server only. It is what the
// requestPath field of a bitcoin-auth token carries in the bound form.
func BoundTarget(method, absoluteURL string) string {
	return method + " " + absoluteURL
}

// splitBound splits a bound request target into its method (an RFC 9110
// token) and absolute http or https URL (no spaces, no fragment).
func splitBound(s string) (method, url string, ok bool) {
	method, url, ok = strings.Cut(s, " ")
	if !ok || !isToken(method) {
		return "", "", false
	}
	if !(strings.HasPrefix(url, "https://") || strings.HasPrefix(url, "http://")) ||
		strings.ContainsAny(url, " #") || !hasHost(url) {
		return "", "", false
	}
	return method, url, true
}

// hasHost reports whether an http(s) URL has a non-empty authority.
func hasHost(u string) bool {
	_, rest, _ := strings.Cut(u, "://")
	return rest != "" && rest[0] != '/' && rest[0] != '?'
}

// isToken reports whether s is an RFC 9110 §5.6.2 token, as HTTP methods are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`~", c) >= 0: // tchar, but '|' (a token separator here)
		default:
			return false
		}
	}
	return true
}

// TokenOptions says what Token signs. Set exactly one of URL (the bound
// form, with Method) and RequestPath (the unbound form).
type TokenOptions struct {
	// Format is FormatSigma (default) or FormatBitcoinAuth.
	Format string
	// Scheme is SchemeBSM (default) or SchemeBRC77; SchemeBRC77 needs
	// FormatBitcoinAuth.
	Scheme string

	// Method and URL make the bound form: the token signs
	// "<Method> <URL>" (BoundTarget) and is accepted only for that method
	// at that URL. URL is the absolute URL the request is sent to: the
	// server's issuer followed by the path and query exactly as the
	// request line carries them (for a *url.URL u whose scheme and host
	// are the issuer's: u.Scheme + "://" + u.Host + u.RequestURI()).
	Method string
	URL    string

	// RequestPath makes the unbound form: the request's path and query
	// exactly as they will be sent (the request-target), e.g. "/backup"
	// or "/authorize?client_id=x". Such a token is good for any method at
	// any server that accepts the key; servers may refuse it for unsafe
	// methods.
	RequestPath string

	// Body is the request body (nil or empty for none).
	Body []byte
	// Timestamp is the signing time; zero means now.
	Timestamp time.Time
	// Rand is the source of a BRC-77 signature's random key ID; nil means
	// crypto/rand. BSM signatures are deterministic (RFC 6979).
	Rand io.Reader
}

// Signer makes tokens with one private key. It is safe for concurrent
// use. Make one with NewSigner.
type Signer struct {
	key        *btcec.PrivateKey
	compressed bool
	address    string
	pubHex     string
}

// NewSigner returns a Signer for a mainnet WIF private key. Sigma tokens
// name the P2PKH address of the key as the WIF says (compressed for K…/L…,
// uncompressed for 5…); bitcoin-auth tokens always name the compressed
// public key, as the bitcoin-auth library does.
//
// Errors: a plain error (not an *errors.Error) when wif is not a mainnet
// WIF private key. Its text never contains the key.
func NewSigner(wif string) (*Signer, error) {
	key, compressed, err := ParseWIF(wif)
	if err != nil {
		return nil, err
	}
	return newSigner(key, compressed), nil
}

func newSigner(key *btcec.PrivateKey, compressed bool) *Signer {
	return &Signer{
		key:        key,
		compressed: compressed,
		address:    AddressOf(key.PubKey(), compressed),
		pubHex:     hex.EncodeToString(key.PubKey().SerializeCompressed()),
	}
}

// Address returns the P2PKH address sigma tokens (and BSM signatures by
// SignMessage) of this key name.
func (s *Signer) Address() string { return s.address }

// PubKey returns the 66-hex compressed public key that bitcoin-auth tokens
// carry.
func (s *Signer) PubKey() string { return s.pubHex }

// SignMessage returns the base64 BSM signature of message, as the
// package-level SignMessage does.
func (s *Signer) SignMessage(message string) string {
	return signMessage(s.key, s.compressed, message)
}

// Token makes an X-Auth-Token for one request, as the package-level Token
// does.
//
// Errors: plain errors, as Token's.
func (s *Signer) Token(opts TokenOptions) (string, error) {
	target, err := opts.target()
	if err != nil {
		return "", err
	}
	ts := opts.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	stamp := FormatTimestamp(ts)
	msg := SignedMessage(target, stamp, BodyHash(opts.Body))
	switch opts.Format {
	case "", FormatSigma:
		if opts.Scheme != "" && opts.Scheme != SchemeBSM {
			return "", errors.Errorf("authtoken: scheme %q needs the bitcoin-auth format", opts.Scheme)
		}
		prefix := sigmaPrefix
		if opts.URL != "" {
			prefix = sigmaBoundPrefix
		}
		return prefix + s.address + ":" + stamp + "|" + s.SignMessage(msg), nil
	case FormatBitcoinAuth:
		if strings.IndexByte(target, '|') >= 0 {
			return "", errors.New("authtoken: a bitcoin-auth request target cannot contain '|'")
		}
		var sig string
		scheme := opts.Scheme
		switch scheme {
		case "", SchemeBSM:
			scheme = SchemeBSM
			sig = signMessage(s.key, true, msg)
		case SchemeBRC77:
			env, err := signBRC77(s.key, msg, opts.Rand)
			if err != nil {
				return "", err
			}
			sig = base64.StdEncoding.EncodeToString(env)
		default:
			return "", errors.Errorf("authtoken: unknown scheme %q (want bsm or brc77)", opts.Scheme)
		}
		return s.pubHex + "|" + scheme + "|" + stamp + "|" + target + "|" + sig, nil
	default:
		return "", errors.Errorf("authtoken: unknown format %q (want sigma or bitcoin-auth)", opts.Format)
	}
}

// target returns the request target the options sign.
func (o *TokenOptions) target() (string, error) {
	switch {
	case o.URL != "" && o.RequestPath != "":
		return "", errors.New("authtoken: set URL (bound form) or RequestPath (unbound form), not both")
	case o.URL != "":
		t := BoundTarget(o.Method, o.URL)
		if _, _, ok := splitBound(t); !ok {
			return "", errors.Errorf("authtoken: bound form needs an HTTP method and an absolute http(s) URL without spaces or fragment, got method %q and URL %q", o.Method, o.URL)
		}
		return t, nil
	case o.Method != "":
		return "", errors.New("authtoken: Method is for the bound form: set URL too")
	case o.RequestPath == "":
		return "", errors.New("authtoken: a request target is required: URL (bound form) or RequestPath (unbound form)")
	case strings.IndexByte(o.RequestPath, ' ') >= 0:
		return "", errors.New("authtoken: a request path cannot contain a space")
	}
	return o.RequestPath, nil
}

// Token makes an X-Auth-Token for one request, signed with a mainnet WIF
// private key: what a wallet sends, what `authd token sign` prints. For
// many requests, make a Signer once.
//
// Errors: plain errors (never *errors.Error) for a bad WIF, an unknown
// format or scheme, a missing or malformed request target, or a request
// target containing '|' in the bitcoin-auth format (it could not be
// parsed back). Their text never contains the key.
func Token(wif string, opts TokenOptions) (string, error) {
	s, err := NewSigner(wif)
	if err != nil {
		return "", err
	}
	return s.Token(opts)
}
