package authtoken

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"io"
	"strings"

	"github.com/authd-dev/authd/errors"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
)

// Bitcoin Signed Message (BSM), as Bitcoin Core's signmessage and
// verifymessage RPCs, Electrum and Sparrow implement it for P2PKH addresses.

const (
	// bsmMagic is the prefix of every signed message, itself prefixed with
	// its length (0x18) as a CompactSize.
	bsmMagic = "\x18Bitcoin Signed Message:\n"

	// compactSigLen is the size of a compact signature: header, r, s.
	compactSigLen = 65
	// compactSigB64Len is its padded base64 length.
	compactSigB64Len = 88

	// Header bytes of a P2PKH compact signature: 27 + recovery id, plus 4
	// when the key is serialised compressed. BIP-137's segwit headers
	// (35-42) are refused, as Bitcoin Core refuses them.
	headerMin        = 27
	headerMax        = 34
	headerCompressed = 31
)

// strictB64 is the only base64 accepted for signatures: padded, canonical
// trailing bits. Length and CR/LF are checked before it is used, because
// the decoder skips newlines even in strict mode.
var strictB64 = base64.StdEncoding.Strict()

// Descriptions sent to clients. Every signature failure has the same one,
// whichever step failed, so that a failure tells nothing about the key.
const (
	descMalformed = "Auth token format is invalid; expected sigma[-bound]:<address>:<timestamp>|<signature> " +
		"or <pubkey>|<bsm|brc77>|<timestamp>|<requestPath>|<signature>"
	descMalformedMessage = "Auth token format is invalid; expected a mainnet P2PKH address (1...) " +
		"and an 88-character base64 Bitcoin signed-message signature"
	descPublicKey       = "Public key is not a valid secp256k1 point"
	descSignature       = "Bitcoin signature verification failed"
	descTimestampSyntax = "Auth token timestamp is not RFC 3339 UTC, e.g. 2026-11-21T22:00:00.000Z"
	descTimestampWindow = "Auth token timestamp is outside the accepted window; sign just before sending, with an accurate clock"
)

// MessageHash returns the BSM digest of message:
//
//	SHA-256(SHA-256(0x18 "Bitcoin Signed Message:\n" || CompactSize(len) || message))
func MessageHash(message string) [32]byte {
	var first [32]byte
	if len(message) <= 512 {
		// The common case (a request's message) without a heap digest.
		var buf [len(bsmMagic) + 3 + 512]byte
		b := append(buf[:0], bsmMagic...)
		b = compactSize(b, uint64(len(message)))
		b = append(b, message...)
		first = sha256.Sum256(b)
	} else {
		h := sha256.New()
		h.Write([]byte(bsmMagic))
		var n [9]byte
		h.Write(compactSize(n[:0], uint64(len(message))))
		io.WriteString(h, message)
		h.Sum(first[:0])
	}
	return sha256.Sum256(first[:])
}

// compactSize appends Bitcoin's variable-length integer encoding of n.
func compactSize(b []byte, n uint64) []byte {
	switch {
	case n < 0xfd:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.LittleEndian.AppendUint16(append(b, 0xfd), uint16(n))
	case n <= 0xffffffff:
		return binary.LittleEndian.AppendUint32(append(b, 0xfe), uint32(n))
	default:
		return binary.LittleEndian.AppendUint64(append(b, 0xff), n)
	}
}

// decodeCompactSig decodes a base64 compact signature: exactly 88
// characters of strict, padded base64 without whitespace, 65 bytes.
func decodeCompactSig(s string, out *[compactSigLen]byte) bool {
	if len(s) != compactSigB64Len || strings.ContainsAny(s, "\r\n") {
		return false
	}
	// Decode needs room for DecodedLen(88) = 66 bytes: 88 characters
	// without padding are 66 bytes, which must fail, not overflow.
	var buf [66]byte
	n, err := strictB64.Decode(buf[:], []byte(s))
	if err != nil || n != compactSigLen {
		return false
	}
	copy(out[:], buf[:compactSigLen])
	return true
}

// verifyCompact reports whether sig is a BSM signature of hash by the key
// whose hash160, serialised as the signature's header says, is want, and
// returns that key. Headers outside 27-34 fail before any curve work.
func verifyCompact(want [20]byte, hash [32]byte, sig *[compactSigLen]byte) (*btcec.PublicKey, bool) {
	if sig[0] < headerMin || sig[0] > headerMax {
		return nil, false
	}
	// RecoverCompact returns some key for any well-formed (r, s): only the
	// hash comparison below proves anything.
	pub, compressed, err := ecdsa.RecoverCompact(sig[:], hash[:])
	if err != nil {
		return nil, false
	}
	var ser []byte
	if compressed {
		ser = pub.SerializeCompressed()
	} else {
		ser = pub.SerializeUncompressed()
	}
	if hash160(ser) != want {
		return nil, false
	}
	return pub, true
}

// VerifyMessage checks a Bitcoin signed message, as Bitcoin Core's
// verifymessage does for P2PKH: nil when signature is a valid BSM
// signature of message by the key of address. High-S signatures are
// accepted; segwit headers are not.
//
// Errors (*errors.Error):
//   - malformed_auth_token: address is not a base58check mainnet P2PKH
//     address, or signature is not 88 characters of strict, padded base64
//     of 65 bytes. Detected before any curve work.
//   - invalid_signature: anything else (wrong key, wrong message, bad
//     header, invalid r/s), with one description whichever step failed.
func VerifyMessage(address, message, signature string) error {
	const op = "authtoken.VerifyMessage"
	want, ok := decodeAddress(address)
	var sig [compactSigLen]byte
	if !ok || !decodeCompactSig(signature, &sig) {
		return errors.E(errors.MalformedAuthToken, descMalformedMessage).WithCause(op, errors.New("address or signature encoding"))
	}
	if _, ok := verifyCompact(want, MessageHash(message), &sig); !ok {
		return errors.E(errors.InvalidSignature, descSignature)
	}
	return nil
}

// SignMessage signs message with a mainnet WIF private key and returns the
// base64 BSM signature that VerifyMessage, Bitcoin Core, Electrum and
// Sparrow accept for the key's P2PKH address. The header says compressed
// for a compressed WIF (K…/L…) and uncompressed for an uncompressed one
// (5…). The signature is deterministic (RFC 6979) and low-S.
//
// Errors: a plain error (not an *errors.Error) when wif is not a mainnet
// WIF private key. Its text never contains the key.
func SignMessage(wif, message string) (string, error) {
	key, compressed, err := ParseWIF(wif)
	if err != nil {
		return "", err
	}
	return signMessage(key, compressed, message), nil
}

func signMessage(key *btcec.PrivateKey, compressed bool, message string) string {
	h := MessageHash(message)
	return base64.StdEncoding.EncodeToString(ecdsa.SignCompact(key, h[:], compressed))
}

// ParseWIF decodes a mainnet WIF private key and reports whether it asks
// for the compressed public key. The error text never contains the key.
func ParseWIF(wif string) (*btcec.PrivateKey, bool, error) {
	wif = strings.TrimSpace(wif)
	var raw [38]byte
	var payload []byte
	switch {
	case b58CheckDecode(wif, raw[:]) && raw[33] == 0x01:
		payload = raw[:34]
	case b58CheckDecode(wif, raw[:37]):
		payload = raw[:33]
	default:
		return nil, false, errors.New("authtoken: not a WIF private key (base58check of 0x80 || key [|| 0x01])")
	}
	switch payload[0] {
	case versionWIF:
	case versionTestnetWIF:
		return nil, false, errors.New("authtoken: testnet WIF private key; authd uses mainnet keys and addresses")
	default:
		return nil, false, errors.New("authtoken: not a WIF private key (unknown version byte)")
	}
	var s btcec.ModNScalar
	if overflow := s.SetByteSlice(payload[1:33]); overflow || s.IsZero() {
		return nil, false, errors.New("authtoken: WIF private key is out of range")
	}
	return btcec.PrivKeyFromScalar(&s), len(payload) == 34, nil
}

// GenerateKey makes a new random key and returns it as a compressed
// mainnet WIF with its P2PKH address: a wallet for tests and tools.
func GenerateKey() (wif, address string, err error) {
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return "", "", err
	}
	return EncodeWIF(key, true), AddressOf(key.PubKey(), true), nil
}

// EncodeWIF returns key as a mainnet WIF private key, for the compressed
// public key (K…/L…) or the uncompressed one (5…).
func EncodeWIF(key *btcec.PrivateKey, compressed bool) string {
	secret := key.Key.Bytes()
	payload := make([]byte, 0, 34)
	payload = append(payload, versionWIF)
	payload = append(payload, secret[:]...)
	if compressed {
		payload = append(payload, 0x01)
	}
	return b58CheckEncode(payload)
}

// ValidAddress reports whether address is a mainnet P2PKH address
// (base58check, version 0x00, 20-byte payload), the only kind an
// X-Auth-Token or a signed message can name.
func ValidAddress(address string) bool {
	_, ok := decodeAddress(address)
	return ok
}

// AddressOf returns the mainnet P2PKH address of a public key, serialised
// compressed or uncompressed.
func AddressOf(pub *btcec.PublicKey, compressed bool) string {
	if compressed {
		return encodeAddress(hash160(pub.SerializeCompressed()))
	}
	return encodeAddress(hash160(pub.SerializeUncompressed()))
}
