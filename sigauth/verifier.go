// Package sigauth authenticates HTTP requests signed with Bitcoin keys on
// the server: the X-Auth-Token header in its two syntaxes (sigma and the
// npm bitcoin-auth library's, with BSM or BRC-77 signatures) over the
// request's target, timestamp and body, as package authtoken defines and
// checks them; plus what needs state: a time window against the server's
// clock, a replay guard, and an escalating lockout after failed
// verifications, per client IP and per (client IP, address).
//
// Signing (authtoken.Token, authtoken.SignMessage) lives in authtoken,
// which clients can import without this package's Redis dependency;
// SignMessage, VerifyMessage and Token here forward to it.
package sigauth

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
	"github.com/redis/go-redis/v9"
)

// Defaults of Config.
const (
	DefaultWindow       = authtoken.DefaultWindow
	DefaultMaxBody      = 1 << 20
	DefaultRedisTimeout = 2 * time.Second
	DefaultKeyPrefix    = "sigauth:"
)

// Identity is who signed a request.
type Identity struct {
	// Address is the signer's mainnet P2PKH address (for bitcoin-auth
	// tokens: of the compressed public key).
	Address string
	// PubKey is the 66-hex compressed public key when the token carried it
	// (bitcoin-auth tokens), else "".
	PubKey string
	// Scheme is SchemeSigma, SchemeBSM or SchemeBRC77.
	Scheme string
}

// Config configures a Verifier.
type Config struct {
	// Redis holds the replay guard and the lockout counters. Required.
	Redis redis.UniversalClient
	// Window is how far a token's timestamp may be from now, in either
	// direction. Zero means DefaultWindow (5 minutes).
	Window time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ClientIP returns the client address lockouts are counted against
	// (the server makes it trusted-proxy aware). Nil means the host of
	// r.RemoteAddr.
	ClientIP func(*http.Request) netip.Addr
	// MaxBody bounds the body read to hash it; zero means DefaultMaxBody
	// (1 MiB). A longer body fails with *http.MaxBytesError in the chain,
	// which httperr.Write answers with the route's body-limit code.
	MaxBody int64
	// Logger receives lockout events; nil means slog.Default().
	Logger *slog.Logger

	// KeyPrefix prefixes every Redis key; empty means DefaultKeyPrefix.
	KeyPrefix string
	// RedisTimeout bounds each Redis round trip; zero means
	// DefaultRedisTimeout.
	RedisTimeout time.Duration
	// Issuer is the server's issuer URL without a trailing slash, e.g.
	// https://auth.example.com. A token in the bound form,
	// "<METHOD> <absolute URL>", is accepted only when its method is the
	// request's and its URL is Issuer followed by the request-target as
	// sent. Empty: no bound token is accepted.
	Issuer string
	// RequireBinding refuses tokens in the unbound form (the path alone)
	// wherever accepting a token acts: on POST, PUT, PATCH and DELETE
	// (Authenticate) and on every AuthenticateOnce (the sign-in of a
	// signed GET /authorize). An unbound token was good for any method at
	// any server that knows the key, so one captured on a GET, or signed
	// for another service with the same path, could be spent here.
	RequireBinding bool
	// UncompressedAddresses are the P2PKH addresses of uncompressed keys
	// (5… WIFs) that may sign sigma tokens. A BSM signature's header says
	// which serialisation of the key its address hashes, and the header is
	// not signed: flipping it (and the address to match) turns any token
	// into a valid one for the key's other address, an identity its owner
	// never chose. So a sigma token whose header names the uncompressed
	// key is refused unless its address is listed here, and a key whose
	// uncompressed address is listed cannot sign as its compressed address
	// (in any syntax): each key has one identity.
	UncompressedAddresses []string
}

// Verifier authenticates requests. It is safe for concurrent use.
type Verifier struct {
	rdb            redis.UniversalClient
	issuer         string
	requireBinding bool
	uncompressed   map[string]bool
	window         time.Duration
	now            func() time.Time
	clientIP       func(*http.Request) netip.Addr
	maxBody        int64
	log            *slog.Logger
	prefix         string
	timeout        time.Duration
}

// NewVerifier returns a Verifier for cfg, with the defaults documented on
// Config. It panics if cfg.Redis is nil: authentication without the replay
// guard and the lockout is not offered.
func NewVerifier(cfg Config) *Verifier {
	if cfg.Redis == nil {
		panic("sigauth: NewVerifier: Config.Redis is required")
	}
	v := &Verifier{
		rdb:            cfg.Redis,
		issuer:         strings.TrimSuffix(cfg.Issuer, "/"),
		requireBinding: cfg.RequireBinding,
		window:         cfg.Window,
		now:            cfg.Now,
		clientIP:       cfg.ClientIP,
		maxBody:        cfg.MaxBody,
		log:            cfg.Logger,
		prefix:         cfg.KeyPrefix,
		timeout:        cfg.RedisTimeout,
	}
	if v.window <= 0 {
		v.window = DefaultWindow
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.clientIP == nil {
		v.clientIP = RemoteIP
	}
	if v.maxBody <= 0 {
		v.maxBody = DefaultMaxBody
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	if v.prefix == "" {
		v.prefix = DefaultKeyPrefix
	}
	if v.timeout <= 0 {
		v.timeout = DefaultRedisTimeout
	}
	for _, a := range cfg.UncompressedAddresses {
		if v.uncompressed == nil {
			v.uncompressed = make(map[string]bool)
		}
		v.uncompressed[a] = true
	}
	return v
}

// RemoteIP returns the host of r.RemoteAddr, the connection's peer, or the
// zero Addr when it cannot be parsed.
func RemoteIP(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

// bitcoinAuthCredentials returns the credentials of an Authorization header
// value with the Bitcoin-Auth scheme (case-insensitive, RFC 9110 §11.1).
func bitcoinAuthCredentials(a string) (string, bool) {
	const scheme = "bitcoin-auth "
	if len(a) < len(scheme) || !strings.EqualFold(a[:len(scheme)], scheme) {
		return "", false
	}
	return strings.TrimLeft(a[len(scheme):], " "), true
}

// tokenFrom returns the request's token, from X-Auth-Token or
// Authorization: Bitcoin-Auth. Two different tokens are malformed: which
// one would be meant?
func tokenFrom(h http.Header) (string, error) {
	tok := ""
	for _, name := range [...]string{"X-Auth-Token", "Authorization"} {
		for _, v := range h.Values(name) {
			if name == "Authorization" {
				var ok bool
				if v, ok = bitcoinAuthCredentials(v); !ok {
					continue
				}
			}
			switch {
			case v == "" || v == tok:
			case tok == "":
				tok = v
			default:
				return "", errors.E(errors.MalformedAuthToken, descMalformedHeader).WithCause("sigauth.Authenticate", errors.New("more than one token"))
			}
		}
	}
	if tok == "" {
		return "", errors.E(errors.MissingAuthToken, descMissing)
	}
	return tok, nil
}

// RequestTarget returns the request-target a token signs: the path and
// query exactly as the client sent them (r.RequestURI for an origin-form
// request, not a re-encoding); for an absolute-form request, its path and
// query. For a request built in-process (no RequestURI), r.URL.RequestURI().
func RequestTarget(r *http.Request) string {
	t := r.RequestURI
	if t == "" {
		return r.URL.RequestURI()
	}
	if t[0] == '/' || t == "*" {
		return t
	}
	if i := strings.Index(t, "://"); i >= 0 {
		rest := t[i+3:]
		j := strings.IndexAny(rest, "/?")
		switch {
		case j < 0:
			return "/"
		case rest[j] == '?':
			return "/" + rest[j:]
		default:
			return rest[j:]
		}
	}
	return t
}

// unsafeMethod reports whether the replay guard applies: each signed
// POST, PUT, PATCH or DELETE is accepted once.
func unsafeMethod(m string) bool {
	switch m {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

// counted reports whether a failure counts towards the lockout: every
// rejected token does; a missing one, a body that cannot be read and a
// Redis failure do not.
func counted(err error) bool {
	switch errors.CodeOf(err) {
	case errors.MalformedAuthToken, errors.InvalidPublicKey, errors.InvalidSignature, errors.InvalidTimestamp:
		return true
	}
	return false
}

// Authenticate verifies the request's X-Auth-Token (or Authorization:
// Bitcoin-Auth) and returns who signed it. In order: the lockout of the
// client IP and of (IP, signer) is checked before any curve work; then
// the token's syntax and the server's rules on its form (the bound form
// where Config.RequireBinding asks for it, uncompressed keys only for
// Config.UncompressedAddresses); then its public key, time window and
// request target (the path and query as sent, or for the bound form
// "<METHOD> <Issuer><path and query>"), and the signature over
// <target>|<timestamp>|<body hash>, the body being read once (at most
// MaxBody bytes) and put back into r.Body for the handler; then the
// replay guard, keyed on the signing key and the message, which records
// every accepted message and refuses a POST, PUT, PATCH or DELETE whose
// message was seen before (an unbound token does not sign the method, so
// a GET's token must not serve a DELETE). A rejected token counts towards
// the lockout; a success resets it as resetScript allows.
//
// Errors (*errors.Error unless said otherwise):
//   - missing_auth_token: no token.
//   - malformed_auth_token, invalid_public_key, invalid_signature,
//     invalid_timestamp: see authtoken.ParseToken and
//     authtoken.ParsedToken.Check; malformed_auth_token also for an
//     unbound token where binding is required and for an uncompressed-key
//     sigma signature by an address not configured for it; a replayed
//     request is invalid_timestamp.
//   - rate_limit_exceeded, with RetryAfter: locked out after failures.
//   - temporarily_unavailable: Redis failed or timed out.
//   - invalid_request: the body could not be read.
//   - a body over MaxBody: an error wrapping *http.MaxBytesError, which
//     httperr.Write answers with the route's body-limit code
//     (request_too_large unless httperr.LimitBody says otherwise).
func (v *Verifier) Authenticate(r *http.Request) (Identity, error) {
	return v.authenticate(r, unsafeMethod(r.Method))
}

// AuthenticateOnce is Authenticate with the replay guard applied whatever
// the method: a token is accepted on its first use only. Use it where one
// signed request acts once, such as the sign-in and consent of a signed
// GET /authorize, which issues a code each time it is accepted.
//
// Errors (*errors.Error): as Authenticate.
func (v *Verifier) AuthenticateOnce(r *http.Request) (Identity, error) {
	return v.authenticate(r, true)
}

func (v *Verifier) authenticate(r *http.Request, once bool) (Identity, error) {
	const op = "sigauth.Authenticate"
	raw, err := tokenFrom(r.Header)
	if errors.CodeOf(err) == errors.MissingAuthToken {
		return Identity{}, err
	}
	now := v.now()
	var tok authtoken.ParsedToken
	if err == nil {
		err = authtoken.ParseTokenInto(raw, &tok)
	}
	keys := v.lockKeys(v.clientIP(r), tok.Address)

	ctx := r.Context()
	st, lerr := v.locked(ctx, keys, now, op)
	if lerr != nil {
		return Identity{}, lerr
	}

	if err == nil {
		err = v.checkForm(&tok, once)
	}
	var id Identity
	var msg string
	var signer authtoken.SignerKey
	if err == nil {
		id, msg, signer, err = v.verifyRequest(r, &tok, now)
	}
	if err == nil {
		// Every accepted message is recorded; an unsafe method is accepted
		// only if it is the first use. An unbound token does not sign the
		// method, so a token for GET /backup is also one for DELETE
		// /backup: recording safe uses too means a GET token seen in
		// flight cannot be replayed as the DELETE. Repeating a GET stays
		// allowed.
		fresh, rerr := v.claimOnce(ctx, signer, msg, tok.Time, now)
		switch {
		case rerr != nil:
			return Identity{}, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, rerr)
		case !fresh && once:
			err = errors.E(errors.InvalidTimestamp, descReplay).WithCause(op, errors.New("replayed"))
		}
	}
	if err != nil {
		if counted(err) {
			if ferr := v.fail(ctx, r, keys, tok.Address, now); ferr != nil {
				return Identity{}, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, errors.Join(ferr, err))
			}
		}
		return Identity{}, err
	}
	if st.dirty {
		v.reset(ctx, keys, id.Address)
	}
	return id, nil
}

// fail records a failed verification and logs the lockout it may start.
func (v *Verifier) fail(ctx context.Context, r *http.Request, keys []string, address string, now time.Time) error {
	until, err := v.recordFailure(ctx, keys, address, now)
	if err != nil {
		return err
	}
	if !until.IsZero() {
		v.log.LogAttrs(ctx, slog.LevelWarn, "sigauth: lockout after failed verifications",
			slog.String("client", lockSubject(v.clientIP(r))),
			slog.String("address", address),
			slog.Time("until", until))
	}
	return nil
}

// locked checks the lockout of keys before any curve work.
//
// Errors: rate_limit_exceeded (with RetryAfter) while locked out;
// temporarily_unavailable.
func (v *Verifier) locked(ctx context.Context, keys []string, now time.Time, op string) (lockState, error) {
	st, err := v.checkLock(ctx, keys, now)
	if err != nil {
		return st, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if st.retry > 0 {
		return st, errors.E(errors.RateLimitExceeded, descLockout).WithCause(op, nil).WithRetryAfter(st.retry)
	}
	return st, nil
}

// reset forgets failures after a success by address (see resetScript). A
// failure to reset is logged, not returned: it leaves the client less
// trusted, never more.
func (v *Verifier) reset(ctx context.Context, keys []string, address string) {
	if len(keys) < 2 {
		return
	}
	if err := v.resetLock(ctx, keys, address); err != nil {
		v.log.LogAttrs(ctx, slog.LevelWarn, "sigauth: lockout reset failed", slog.Any("err", err))
	}
}

// checkForm applies the server's rules on the form of a token, before any
// curve work: a bound target where it is required (see
// Config.RequireBinding), and an uncompressed-key sigma signature only for
// an address listed in Config.UncompressedAddresses.
//
// Errors: malformed_auth_token, with a description that says what to sign.
func (v *Verifier) checkForm(tok *authtoken.ParsedToken, acts bool) error {
	const op = "sigauth.Authenticate"
	if v.requireBinding && acts && !tok.Bound {
		return errors.E(errors.MalformedAuthToken, descBindingRequired).WithCause(op, errors.New("unbound token where binding is required"))
	}
	if tok.Format == authtoken.FormatSigma && tok.Uncompressed && !v.uncompressed[tok.Address] {
		return errors.E(errors.MalformedAuthToken, descUncompressed).WithCause(op, errors.New("uncompressed-key sigma signature for an address not configured for it"))
	}
	return nil
}

// verifyRequest does everything but Redis I/O: public key, window, request
// target, body, signature. It returns the identity, the signed message and
// the key that signed it.
func (v *Verifier) verifyRequest(r *http.Request, tok *authtoken.ParsedToken, now time.Time) (Identity, string, authtoken.SignerKey, error) {
	const op = "sigauth.Authenticate"
	req := authtoken.Request{Method: r.Method, Target: RequestTarget(r), Issuer: v.issuer}
	target, err := tok.Check(req, now, v.window)
	if err != nil {
		return Identity{}, "", authtoken.SignerKey{}, err
	}
	bodyHash, err := v.hashBody(r)
	if err != nil {
		return Identity{}, "", authtoken.SignerKey{}, err
	}
	msg := authtoken.SignedMessage(target, tok.Timestamp, bodyHash)
	signer, ok := tok.VerifySignature(msg)
	if !ok {
		return Identity{}, "", authtoken.SignerKey{}, errors.E(errors.InvalidSignature, descSignature).WithCause(op, errors.New("signature does not verify"))
	}
	if len(v.uncompressed) > 0 && !tok.Uncompressed && v.uncompressed[signer.UncompressedAddress()] {
		// The key's owner signs as its uncompressed address; this token is
		// the same signature with the header flipped to the compressed
		// form, or a bitcoin-auth token, which can only name the
		// compressed key. The same answer as a bad signature.
		return Identity{}, "", authtoken.SignerKey{}, errors.E(errors.InvalidSignature, descSignature).WithCause(op, errors.New("compressed form of a key configured as uncompressed"))
	}
	return identityOf(tok), msg, signer, nil
}

func identityOf(tok *authtoken.ParsedToken) Identity {
	return Identity{Address: tok.Address, PubKey: tok.PubKey, Scheme: tok.Scheme}
}

// hashBody reads the body once, through the MaxBody limit, puts it back
// for the handler, and returns its BodyHash.
func (v *Verifier) hashBody(r *http.Request) (string, error) {
	const op = "sigauth.Authenticate"
	if r.Body == nil || r.Body == http.NoBody {
		return "", nil
	}
	if r.ContentLength > v.maxBody {
		return "", errors.Errorf("%s: body: %w", op, &http.MaxBytesError{Limit: v.maxBody})
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, v.maxBody+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			// httperr.LimitBody's own limit: the route's code applies.
			return "", errors.Errorf("%s: body: %w", op, err)
		}
		return "", errors.E(errors.InvalidRequest, descBodyUnreadable).WithCause(op, err)
	}
	if int64(len(b)) > v.maxBody {
		return "", errors.Errorf("%s: body: %w", op, &http.MaxBytesError{Limit: v.maxBody})
	}
	r.Body = &bufferedBody{Reader: bytes.NewReader(b), orig: r.Body}
	r.ContentLength = int64(len(b))
	return authtoken.BodyHash(b), nil
}

// bufferedBody is a request body already read, put back for the handler.
type bufferedBody struct {
	*bytes.Reader
	orig io.Closer
}

func (b *bufferedBody) Close() error { return b.orig.Close() }

// VerifyLogin verifies a BSM signature by address over message: the login
// form, where a person pastes the address and the signature that Electrum,
// Sparrow or Bitcoin Core made. Failures are counted against the request's
// client IP and (IP, address), as for tokens, and a success resets them as
// Authenticate's do. There
// is no replay guard: the message must carry its own single-use nonce.
//
// Errors (*errors.Error): malformed_auth_token, invalid_signature,
// rate_limit_exceeded (with RetryAfter), temporarily_unavailable.
func (v *Verifier) VerifyLogin(r *http.Request, address, message, signature string) (Identity, error) {
	const op = "sigauth.VerifyLogin"
	now := v.now()
	addr := ""
	if authtoken.ValidAddress(address) {
		addr = address
	}
	keys := v.lockKeys(v.clientIP(r), addr)
	ctx := r.Context()
	st, err := v.locked(ctx, keys, now, op)
	if err != nil {
		return Identity{}, err
	}
	if err := authtoken.VerifyMessage(address, message, signature); err != nil {
		if ferr := v.fail(ctx, r, keys, addr, now); ferr != nil {
			return Identity{}, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, errors.Join(ferr, err))
		}
		return Identity{}, err
	}
	if st.dirty {
		v.reset(ctx, keys, address)
	}
	return Identity{Address: address, Scheme: SchemeBSM}, nil
}
