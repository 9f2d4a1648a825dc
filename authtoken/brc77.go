package authtoken

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"io"

	"github.com/authd-dev/authd/errors"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
)

// BRC-77 signed messages, as @bsv/sdk's SignedMessage makes them for
// "anyone" to verify (the bitcoin-auth library's brc77 scheme):
//
//	envelope = 42423301 || signer pubkey (33, compressed) || 0x00 || keyID (32) || DER(r, s)
//
// The signature is an ECDSA signature of SHA-256(message) by the signer's
// BRC-42 child key for the invoice number "2-message signing-" +
// base64(keyID), derived with the counterparty "anyone" (private key 1):
// the shared secret is then the signer's own public key, so
//
//	child = P + HMAC-SHA256(key = compressed(P), msg = invoice) · G.

var brc77Version = [4]byte{0x42, 0x42, 0x33, 0x01}

// errNoChildKey: the derived child key is zero (probability about 2^-256).
var errNoChildKey = errors.New("authtoken: BRC-42 child key is zero; sign again")

const (
	brc77KeyIDLen = 32
	// brc77HeadLen is everything before the DER signature, "anyone" form.
	brc77HeadLen = 4 + 33 + 1 + brc77KeyIDLen
	// DER signatures of secp256k1 are 8 to 72 bytes.
	derMinLen = 8
	derMaxLen = 72
	// An envelope for a specific verifier carries its 33-byte key instead of
	// 0x00; it is recognised (and refused) but never verified.
	brc77MinLen = brc77HeadLen + derMinLen
	brc77MaxLen = brc77HeadLen + 32 + derMaxLen

	brc77InvoicePrefix = "2-message signing-"
)

// brc77B64Max bounds the base64 text of an envelope before decoding.
var brc77B64Max = base64.StdEncoding.EncodedLen(brc77MaxLen)

// decodeBRC77 decodes the base64 envelope text: strict, padded base64 of
// brc77MinLen to brc77MaxLen bytes. Anything inside is checked by
// verifyBRC77.
func decodeBRC77(s string) ([]byte, bool) {
	if len(s) > brc77B64Max || len(s)%4 != 0 {
		return nil, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '\r' || s[i] == '\n' {
			return nil, false
		}
	}
	b, err := strictB64.DecodeString(s)
	if err != nil || len(b) < brc77MinLen || len(b) > brc77MaxLen {
		return nil, false
	}
	return b, true
}

// brc77Tweak returns HMAC-SHA256(compressed(P), invoice(keyID)) as a
// scalar mod n.
func brc77Tweak(signer []byte, keyID []byte) btcec.ModNScalar {
	inv := make([]byte, 0, len(brc77InvoicePrefix)+base64.StdEncoding.EncodedLen(brc77KeyIDLen))
	inv = append(inv, brc77InvoicePrefix...)
	inv = base64.StdEncoding.AppendEncode(inv, keyID)
	m := hmac.New(sha256.New, signer)
	m.Write(inv)
	var sum [32]byte
	m.Sum(sum[:0])
	var t btcec.ModNScalar
	t.SetBytes(&sum) // reduced mod n, as @bsv/sdk's point multiplication does
	return t
}

// verifyBRC77 reports whether env is an "anyone" BRC-77 envelope by the
// key pub (already parsed and on the curve; pubBytes its compressed form)
// over message. The signer named inside the envelope must be pub itself:
// @bsv/sdk's verify trusts the envelope's signer, and bitcoin-auth never
// compares it with the token's pubkey.
func verifyBRC77(pub *btcec.PublicKey, pubBytes *[33]byte, message string, env []byte) bool {
	if len(env) < brc77MinLen || [4]byte(env[:4]) != brc77Version {
		return false
	}
	if [33]byte(env[4:37]) != *pubBytes {
		return false
	}
	if env[37] != 0x00 {
		// Addressed to one verifier's key: only its holder could check it.
		return false
	}
	keyID := env[38 : 38+brc77KeyIDLen]
	der := env[brc77HeadLen:]
	// ParseDERSignature ignores bytes after the declared length; a strict
	// envelope has none (as @bsv/sdk's Signature.fromDER insists).
	if len(der) < derMinLen || len(der) > derMaxLen || der[0] != 0x30 || int(der[1])+2 != len(der) {
		return false
	}
	sig, err := ecdsa.ParseDERSignature(der)
	if err != nil {
		return false
	}
	t := brc77Tweak(pubBytes[:], keyID)
	var tg, p, child btcec.JacobianPoint
	btcec.ScalarBaseMultNonConst(&t, &tg)
	pub.AsJacobian(&p)
	btcec.AddNonConst(&p, &tg, &child)
	child.X.Normalize()
	child.Y.Normalize()
	child.Z.Normalize()
	if (child.X.IsZero() && child.Y.IsZero()) || child.Z.IsZero() {
		return false // the point at infinity: no key
	}
	child.ToAffine()
	h := sha256.Sum256([]byte(message))
	// High-S signatures are accepted, as for BSM.
	return sig.Verify(h[:], btcec.NewPublicKey(&child.X, &child.Y))
}

// signBRC77 makes an "anyone" BRC-77 envelope of message by key, with a
// random key ID from rnd (crypto/rand when nil).
func signBRC77(key *btcec.PrivateKey, message string, rnd io.Reader) ([]byte, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var keyID [brc77KeyIDLen]byte
	if _, err := io.ReadFull(rnd, keyID[:]); err != nil {
		return nil, err
	}
	pub := key.PubKey().SerializeCompressed()
	t := brc77Tweak(pub, keyID[:])
	var d btcec.ModNScalar
	d.Set(&key.Key).Add(&t)
	if d.IsZero() {
		return nil, errNoChildKey
	}
	child := btcec.PrivKeyFromScalar(&d)
	h := sha256.Sum256([]byte(message))
	der := ecdsa.Sign(child, h[:]).Serialize()
	env := make([]byte, 0, brc77HeadLen+len(der))
	env = append(env, brc77Version[:]...)
	env = append(env, pub...)
	env = append(env, 0x00)
	env = append(env, keyID[:]...)
	return append(env, der...), nil
}
