package sigauth

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

// Token formats (DESIGN §3.1).
const (
	// FormatSigma is sigma:<address>:<timestamp>|<signature>.
	FormatSigma = "sigma"
	// FormatBitcoinAuth is the npm bitcoin-auth library's
	// <pubkey>|<scheme>|<timestamp>|<requestPath>|<signature>.
	FormatBitcoinAuth = "bitcoin-auth"
)

// Signature schemes, as Identity.Scheme reports them.
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
	sigmaPrefix = "sigma:"
	// maxTokenLen bounds what is parsed at all. A bitcoin-auth token
	// repeats the request path, so it is a generous bound.
	maxTokenLen  = 16 << 10
	pubKeyHexLen = 66
)

// ParsedToken is an X-Auth-Token whose syntax has been checked. Nothing in
// it has been verified: not the signature, not the time.
type ParsedToken struct {
	// Format is FormatSigma or FormatBitcoinAuth.
	Format string
	// Scheme is SchemeSigma, SchemeBSM or SchemeBRC77.
	Scheme string
	// Address is the signer's mainnet P2PKH address: as sent in a sigma
	// token, derived from the compressed pubkey in a bitcoin-auth token.
	Address string
	// PubKey is the 66-hex compressed public key of a bitcoin-auth token.
	PubKey string
	// Timestamp is the timestamp exactly as sent; it is part of the signed
	// message. Time is its value.
	Timestamp string
	Time      time.Time
	// RequestPath is the request path a bitcoin-auth token names.
	RequestPath string
	// Signature is the signature text as sent (base64).
	Signature string

	hash160 [20]byte
	pub     [33]byte
	compact [compactSigLen]byte // sigma and bsm
	env     []byte              // brc77 envelope
}

// ParseToken checks the syntax of an X-Auth-Token in either format
// (DESIGN §3.1). It does no curve work: a bitcoin-auth pubkey's syntax is
// checked here, its place on the curve by the verification.
//
// Errors (*errors.Error):
//   - malformed_auth_token: not one of the two syntaxes, an unknown scheme,
//     an address that is not base58check mainnet P2PKH, a signature that is
//     not strict padded base64 of the right size.
//   - invalid_public_key: a bitcoin-auth pubkey that is not 66 hex
//     characters starting 02 or 03.
//   - invalid_timestamp: a timestamp that is not RFC 3339 UTC.
func ParseToken(token string) (*ParsedToken, error) {
	t := new(ParsedToken)
	if err := parseToken(token, t); err != nil {
		return nil, err
	}
	return t, nil
}

// parseToken fills t as far as token's syntax allows; t.Address is set
// whenever the token names a well-formed signer, even if a later part is
// bad, so failures can be counted against it.
func parseToken(token string, t *ParsedToken) error {
	if len(token) > maxTokenLen {
		return malformed("token too long")
	}
	if strings.HasPrefix(token, sigmaPrefix) {
		return parseSigma(token[len(sigmaPrefix):], t)
	}
	return parseBitcoinAuth(token, t)
}

func malformed(cause string) *errors.Error {
	return errors.E(errors.MalformedAuthToken, descMalformed).WithCause("sigauth.ParseToken", errors.New(cause))
}

// parseSigma parses <address>:<timestamp>|<signature>: split on the first
// colon (timestamps contain colons), then on the last bar.
func parseSigma(s string, t *ParsedToken) error {
	t.Format, t.Scheme = FormatSigma, SchemeSigma
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
	return parseTime(t)
}

// parseBitcoinAuth parses <pubkey>|<scheme>|<timestamp>|<requestPath>|<signature>.
func parseBitcoinAuth(s string, t *ParsedToken) error {
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
	// The public key first (DESIGN §3.2): a token whose key is not a
	// compressed secp256k1 key is invalid_public_key, whatever else is
	// wrong with it.
	if len(t.PubKey) != pubKeyHexLen || (t.PubKey[:2] != "02" && t.PubKey[:2] != "03") {
		return invalidPubKey("pubkey is not 66 hex characters starting 02 or 03")
	}
	if _, err := hex.Decode(t.pub[:], []byte(t.PubKey)); err != nil {
		return invalidPubKey("pubkey is not hex")
	}
	if t.Scheme == SchemeBSM {
		if !decodeCompactSig(t.Signature, &t.compact) {
			return malformed("bsm signature is not 88 characters of strict base64")
		}
	} else {
		env, ok := decodeBRC77(t.Signature)
		if !ok {
			return malformed("brc77 signature is not strict base64 of a BRC-77 envelope")
		}
		t.env = env
	}
	t.hash160 = hash160(t.pub[:])
	t.Address = encodeAddress(t.hash160)
	return parseTime(t)
}

func invalidPubKey(cause string) *errors.Error {
	return errors.E(errors.InvalidPublicKey, descPublicKey).WithCause("sigauth.ParseToken", errors.New(cause))
}

func parseTime(t *ParsedToken) error {
	tm, ok := parseTimestamp(t.Timestamp)
	if !ok {
		return errors.E(errors.InvalidTimestamp, descTimestampSyntax).WithCause("sigauth.ParseToken", errors.New("timestamp is not RFC 3339 UTC"))
	}
	t.Time = tm
	return nil
}

// parseTimestamp parses RFC 3339 UTC with an optional fraction of 1 to 9
// digits: 2006-01-02T15:04:05Z or 2006-01-02T15:04:05.000Z (what
// JavaScript's toISOString makes). Offsets other than Z are refused.
func parseTimestamp(s string) (time.Time, bool) {
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

// SignedMessage returns the message an X-Auth-Token signs (DESIGN §3.1):
// <requestPath>|<timestamp>|<bodyHash>.
func SignedMessage(requestPath, timestamp, bodyHash string) string {
	return requestPath + "|" + timestamp + "|" + bodyHash
}

// TokenOptions says what Token signs.
type TokenOptions struct {
	// Format is FormatSigma (default) or FormatBitcoinAuth.
	Format string
	// Scheme is SchemeBSM (default) or SchemeBRC77; SchemeBRC77 needs
	// FormatBitcoinAuth.
	Scheme string
	// RequestPath is the request's path and query exactly as it will be
	// sent (the request-target), e.g. "/backup" or "/authorize?client_id=x".
	RequestPath string
	// Body is the request body (nil or empty for none).
	Body []byte
	// Timestamp is the signing time; zero means now.
	Timestamp time.Time

	// rand is the source of the BRC-77 key ID (tests); nil is crypto/rand.
	rand io.Reader
}

// Token makes an X-Auth-Token for one request, signed with a mainnet WIF
// private key: what a wallet sends, what `authd token sign` prints.
//
// A sigma token names the P2PKH address of the key as the WIF says
// (compressed for K…/L…, uncompressed for 5…). A bitcoin-auth token always
// names the compressed public key, as the bitcoin-auth library does.
//
// Errors: plain errors (never *errors.Error) for a bad WIF, an unknown
// format or scheme, a missing request path, or a request path containing
// '|' in the bitcoin-auth format (it could not be parsed back). Their text
// never contains the key.
func Token(wif string, opts TokenOptions) (string, error) {
	key, compressed, err := ParseWIF(wif)
	if err != nil {
		return "", err
	}
	return tokenFor(key, compressed, opts)
}

func tokenFor(key *btcec.PrivateKey, compressed bool, opts TokenOptions) (string, error) {
	if opts.RequestPath == "" {
		return "", errors.New("sigauth: token: request path is required")
	}
	ts := opts.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	stamp := FormatTimestamp(ts)
	msg := SignedMessage(opts.RequestPath, stamp, BodyHash(opts.Body))
	switch opts.Format {
	case "", FormatSigma:
		if opts.Scheme != "" && opts.Scheme != SchemeBSM {
			return "", errors.Errorf("sigauth: token: scheme %q needs the bitcoin-auth format", opts.Scheme)
		}
		addr := AddressOf(key.PubKey(), compressed)
		return sigmaPrefix + addr + ":" + stamp + "|" + signMessage(key, compressed, msg), nil
	case FormatBitcoinAuth:
		if strings.IndexByte(opts.RequestPath, '|') >= 0 {
			return "", errors.New("sigauth: token: a bitcoin-auth request path cannot contain '|'")
		}
		pub := hex.EncodeToString(key.PubKey().SerializeCompressed())
		var sig string
		switch opts.Scheme {
		case "", SchemeBSM:
			opts.Scheme = SchemeBSM
			sig = signMessage(key, true, msg)
		case SchemeBRC77:
			env, err := signBRC77(key, msg, opts.rand)
			if err != nil {
				return "", err
			}
			sig = base64.StdEncoding.EncodeToString(env)
		default:
			return "", errors.Errorf("sigauth: token: unknown scheme %q (want bsm or brc77)", opts.Scheme)
		}
		return pub + "|" + opts.Scheme + "|" + stamp + "|" + opts.RequestPath + "|" + sig, nil
	default:
		return "", errors.Errorf("sigauth: token: unknown format %q (want sigma or bitcoin-auth)", opts.Format)
	}
}
