package authtoken

import (
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/btcsuite/btcd/btcec/v2"
)

// DefaultWindow is how far a token's timestamp may be from now, in either
// direction, unless a verifier is told otherwise.
const DefaultWindow = 5 * time.Minute

// Request is what a token is checked against: the request as the server
// received it.
type Request struct {
	// Method is the request's method, e.g. "DELETE".
	Method string
	// Target is the request-target exactly as sent: path and query, not a
	// re-encoding (r.RequestURI for an origin-form request).
	Target string
	// Issuer is the server's issuer URL without a trailing slash, e.g.
	// "https://auth.example.com". A bound token is accepted only when its
	// URL is Issuer + Target; with Issuer empty, no bound token is.
	Issuer string
}

// SignedTarget returns the request target of the form the token signed,
// for this request: Target for an unbound token, BoundTarget(Method,
// Issuer+Target) for a bound one. The second result is false when the
// token is bound and req has no Issuer.
func (t *ParsedToken) SignedTarget(req Request) (string, bool) {
	if !t.Bound {
		return req.Target, true
	}
	if req.Issuer == "" || req.Method == "" {
		return "", false
	}
	return BoundTarget(req.Method, req.Issuer+req.Target), true
}

// Check runs the checks that come before the signature: the public key on
// the curve (bitcoin-auth), the time window, and the request target. It
// returns the request target the token must have signed (see
// SignedTarget); the message to verify is then
// SignedMessage(target, t.Timestamp, BodyHash(body)). A window of zero
// means DefaultWindow.
//
// Errors (*errors.Error):
//   - invalid_public_key: a bitcoin-auth pubkey that is not on the curve.
//   - invalid_timestamp: a timestamp further than window from now.
//   - invalid_signature: a bitcoin-auth requestPath that is not this
//     request's target in the form it claims, or a bound token where req
//     has no Issuer; the same description as any other signature failure.
func (t *ParsedToken) Check(req Request, now time.Time, window time.Duration) (string, error) {
	const op = "authtoken.Check"
	if window <= 0 {
		window = DefaultWindow
	}
	if t.Format == FormatBitcoinAuth {
		if _, err := btcec.ParsePubKey(t.pub[:]); err != nil {
			return "", errors.E(errors.InvalidPublicKey, descPublicKey).WithCause(op, err)
		}
	}
	if d := now.Sub(t.Time); d > window || d < -window {
		return "", errors.E(errors.InvalidTimestamp, descTimestampWindow).WithCause(op, errors.Errorf("timestamp %s is %v from now", t.Timestamp, d))
	}
	target, ok := t.SignedTarget(req)
	if !ok {
		return "", errors.E(errors.InvalidSignature, descSignature).WithCause(op, errors.New("bound token, but no issuer to check its URL against"))
	}
	if t.Format == FormatBitcoinAuth && t.RequestPath != target {
		// The same answer as a bad signature: no oracle.
		return "", errors.E(errors.InvalidSignature, descSignature).WithCause(op, errors.New("token request target differs from the request's"))
	}
	return target, nil
}

// SignerKey is a signer's public key, compressed (SEC 1): one value per
// curve point, whichever serialisation an address or a signature header
// names.
type SignerKey [33]byte

// VerifySignature checks the token's signature over message and returns
// the public key that made it. For BSM signatures the key is recovered and
// must hash, serialised as the header says, to the token's address; for
// BRC-77 the envelope's signer must be the token's pubkey. High-S
// signatures are accepted, as Bitcoin Core accepts them. Call Check first:
// VerifySignature assumes a bitcoin-auth pubkey is on the curve.
func (t *ParsedToken) VerifySignature(message string) (SignerKey, bool) {
	if t.Scheme == SchemeBRC77 {
		pub, err := btcec.ParsePubKey(t.pub[:])
		if err != nil || !verifyBRC77(pub, &t.pub, message, t.env) {
			return SignerKey{}, false
		}
		return SignerKey(t.pub), true
	}
	pub, ok := verifyCompact(t.hash160, MessageHash(message), &t.compact)
	if !ok {
		return SignerKey{}, false
	}
	return SignerKey(pub.SerializeCompressed()), true
}

// UncompressedAddress returns the P2PKH address of key serialised
// uncompressed: the other address of the same key.
func (k SignerKey) UncompressedAddress() string {
	pub, err := btcec.ParsePubKey(k[:])
	if err != nil {
		return ""
	}
	return AddressOf(pub, false)
}

// Result is a verified token.
type Result struct {
	// Address is the signer's mainnet P2PKH address.
	Address string
	// PubKey is the 66-hex compressed public key when the token carried it
	// (bitcoin-auth tokens), else "".
	PubKey string
	// Scheme is SchemeSigma, SchemeBSM or SchemeBRC77.
	Scheme string
	// Bound reports that the token signed the bound form.
	Bound bool
	// Signer is the public key that made the signature.
	Signer SignerKey
	// Message is the message the signature covers.
	Message string
}

// VerifyToken verifies an X-Auth-Token for req with body, at time now,
// with the given window (zero: DefaultWindow). It does no I/O: no replay
// guard and no lockout, which a server adds; it suits clients and tests
// that check a token they were given.
//
// Errors (*errors.Error): malformed_auth_token, invalid_public_key,
// invalid_timestamp (unparseable or outside the window), invalid_signature
// (including a bitcoin-auth request target that is not req's, a bound
// token for another method or URL, and a BRC-77 envelope signed by another
// key than the token's pubkey).
func VerifyToken(token string, req Request, body []byte, now time.Time, window time.Duration) (Result, error) {
	const op = "authtoken.VerifyToken"
	var t ParsedToken
	if err := t.parse(token); err != nil {
		return Result{}, err
	}
	target, err := t.Check(req, now, window)
	if err != nil {
		return Result{}, err
	}
	msg := SignedMessage(target, t.Timestamp, BodyHash(body))
	signer, ok := t.VerifySignature(msg)
	if !ok {
		return Result{}, errors.E(errors.InvalidSignature, descSignature).WithCause(op, errors.New("signature does not verify"))
	}
	return t.Result(signer, msg), nil
}

// Result returns the Result of a token whose signature over message
// VerifySignature accepted with signer.
func (t *ParsedToken) Result(signer SignerKey, message string) Result {
	return Result{Address: t.Address, PubKey: t.PubKey, Scheme: t.Scheme, Bound: t.Bound, Signer: signer, Message: message}
}
