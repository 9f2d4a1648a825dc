package resource

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"

	"github.com/authd-dev/authd/errors"
)

// Limits on what a JWK Set may make the Verifier hold: a key set is
// parsed from at most maxJWKSBytes, of which at most maxKeys usable keys
// are kept, each with a kid of at most maxKidLen bytes and, for RSA, a
// modulus of minRSABits to maxRSABits. A key of either kind holds at most
// about 1.5 KiB.
const (
	maxJWKSBytes = 64 << 10
	maxKeys      = 32
	maxKidLen    = 128
	minRSABits   = 2048
	maxRSABits   = 4096
)

// Signature algorithms (RFC 7518 §3.1).
const (
	algES256 = "ES256"
	algRS256 = "RS256"
)

// publicKey is a verification key of the JWK Set.
type publicKey struct {
	kid string
	alg string // algES256 or algRS256: the one algorithm this key verifies
	ec  *ecdsa.PublicKey
	rsa *rsa.PublicKey
}

// verify checks sig over signingInput.
func (k *publicKey) verify(signingInput string, sig []byte) bool {
	var digest [32]byte
	if len(signingInput) <= 4096 {
		var buf [4096]byte // hashed from the stack: no copy of the token on the heap
		digest = sha256.Sum256(buf[:copy(buf[:], signingInput)])
	} else {
		digest = sha256.Sum256([]byte(signingInput))
	}
	switch k.alg {
	case algES256:
		// RFC 7518 §3.4: R || S, 32 bytes each; crypto/ecdsa takes the
		// ASN.1 form.
		if len(sig) != 64 {
			return false
		}
		var der [72]byte
		return ecdsa.VerifyASN1(k.ec, digest[:], asn1Signature(&der, sig[:32], sig[32:]))
	case algRS256:
		return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, digest[:], sig) == nil
	}
	return false
}

// asn1Signature writes the ECDSA-Sig-Value (RFC 3279 §2.2.3) of r and s,
// 32-byte big-endian integers, into buf and returns it: a SEQUENCE of two
// INTEGERs, each minimal, with a zero byte before a high bit.
func asn1Signature(buf *[72]byte, r, s []byte) []byte {
	out := append(buf[:0], 0x30, 0)
	for _, v := range [][]byte{r, s} {
		for len(v) > 1 && v[0] == 0 && v[1] < 0x80 {
			v = v[1:]
		}
		if v[0] < 0x80 {
			out = append(out, 0x02, byte(len(v)))
		} else {
			out = append(out, 0x02, byte(len(v)+1), 0)
		}
		out = append(out, v...)
	}
	out[1] = byte(len(out) - 2)
	return out
}

// rawJWK holds the members of a JWK (RFC 7517 §4, RFC 7518 §6) that a
// verification key uses.
type rawJWK struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Alg    string   `json:"alg"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
	N      string   `json:"n"`
	E      string   `json:"e"`
}

var b64 = base64.RawURLEncoding.Strict()

// parseJWKS returns the usable verification keys of a JWK Set document
// (RFC 7517 §5), by kid: ES256 keys on P-256 and RS256 keys of 2048 to
// 4096 bits, meant for signatures. Keys of other kinds, uses or
// algorithms are skipped; so are keys without a kid, repeated kids (both
// copies: which one is meant cannot be known) and keys past maxKeys. A
// document with no usable key is an error, so that a broken answer never
// replaces a working key set.
func parseJWKS(doc []byte) (map[string]*publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, errors.Errorf("JWK Set: %w", err)
	}
	keys := make(map[string]*publicKey)
	dup := make(map[string]bool)
	for _, raw := range set.Keys {
		var j rawJWK
		if json.Unmarshal(raw, &j) != nil {
			continue
		}
		k, ok := parseJWK(&j)
		if !ok {
			continue
		}
		if _, seen := keys[k.kid]; seen || dup[k.kid] {
			delete(keys, k.kid)
			dup[k.kid] = true
			continue
		}
		if len(keys) == maxKeys {
			continue
		}
		keys[k.kid] = k
	}
	if len(keys) == 0 {
		return nil, errors.New("JWK Set has no usable ES256 or RS256 signature key")
	}
	return keys, nil
}

func parseJWK(j *rawJWK) (*publicKey, bool) {
	if j.Kid == "" || len(j.Kid) > maxKidLen {
		return nil, false
	}
	if j.Use != "" && j.Use != "sig" {
		return nil, false
	}
	if j.KeyOps != nil && !contains(j.KeyOps, "verify") {
		return nil, false
	}
	switch j.Kty {
	case "EC":
		if j.Crv != "P-256" || (j.Alg != "" && j.Alg != algES256) {
			return nil, false
		}
		x, err1 := b64.DecodeString(j.X)
		y, err2 := b64.DecodeString(j.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return nil, false
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point) // checks the point is on the curve
		if err != nil {
			return nil, false
		}
		return &publicKey{kid: j.Kid, alg: algES256, ec: pub}, true
	case "RSA":
		if j.Alg != "" && j.Alg != algRS256 {
			return nil, false
		}
		n, err1 := b64.DecodeString(j.N)
		e, err2 := b64.DecodeString(j.E)
		if err1 != nil || err2 != nil || len(n) == 0 || n[0] == 0 || len(e) == 0 || len(e) > 4 || e[0] == 0 {
			return nil, false
		}
		bits := (len(n)-1)*8 + bitLen(n[0])
		if bits < minRSABits || bits > maxRSABits {
			return nil, false
		}
		exp := 0
		for _, b := range e {
			exp = exp<<8 | int(b)
		}
		if exp < 3 || exp%2 == 0 || exp > 1<<31-1 {
			return nil, false
		}
		return &publicKey{kid: j.Kid, alg: algRS256, rsa: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}}, true
	}
	return nil, false
}

func bitLen(b byte) int {
	n := 0
	for ; b != 0; b >>= 1 {
		n++
	}
	return n
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
