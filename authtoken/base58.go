package authtoken

import (
	"crypto/sha256"

	//lint:ignore SA1019 Bitcoin's hash160 (addresses) is RIPEMD-160 of SHA-256.
	"golang.org/x/crypto/ripemd160"
)

// Version bytes of base58check payloads (Bitcoin mainnet, and testnet WIFs,
// which are recognised only to be refused with a clear message).
const (
	versionP2PKH      = 0x00
	versionWIF        = 0x80
	versionTestnetWIF = 0xef
)

const b58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var b58Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(b58Alphabet); i++ {
		t[b58Alphabet[i]] = int8(i)
	}
	return t
}()

// b58Decode decodes s into out and reports whether s is the base58
// encoding of exactly len(out) bytes (at most 40). It never allocates: the
// value is accumulated in 32-bit limbs, one multiply-add per limb and digit.
func b58Decode(s string, out []byte) bool {
	n := len(out)
	if n == 0 || n > 40 || len(s) == 0 || len(s) > 2*n {
		return false
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	if zeros > n {
		return false
	}
	var limbs [10]uint32 // big-endian; the value must fit in n bytes
	nl := (n + 3) / 4
	for i := zeros; i < len(s); i++ {
		d := b58Index[s[i]]
		if d < 0 {
			return false
		}
		carry := uint64(d)
		for k := nl - 1; k >= 0; k-- {
			t := uint64(limbs[k])*58 + carry
			limbs[k] = uint32(t)
			carry = t >> 32
		}
		if carry != 0 {
			return false
		}
	}
	// Bytes of the top limb beyond n must be zero.
	if extra := nl*4 - n; extra > 0 && limbs[0]>>(32-8*extra) != 0 {
		return false
	}
	for i := 0; i < n; i++ {
		pos := nl*4 - n + i // byte index in the limbs
		out[i] = byte(limbs[pos/4] >> (24 - 8*(pos%4)))
	}
	// Canonical: exactly as many leading zero bytes as leading '1's.
	lz := 0
	for lz < n && out[lz] == 0 {
		lz++
	}
	return lz == zeros
}

// b58Encode returns the base58 encoding of b (at most 40 bytes). The value
// is held in 32-bit limbs and divided by 58^5 at a time: five digits per
// pass over the limbs.
func b58Encode(b []byte) string {
	if len(b) > 40 {
		panic("authtoken: b58Encode: input too long")
	}
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	var limbs [10]uint32
	nl := (len(b) + 3) / 4
	for i, c := range b {
		pos := nl*4 - len(b) + i
		limbs[pos/4] |= uint32(c) << (24 - 8*(pos%4))
	}
	const base5 = 58 * 58 * 58 * 58 * 58
	var digits [56]byte // 40 bytes need at most 55 digits
	n := 0
	for top := 0; ; {
		for top < nl && limbs[top] == 0 {
			top++
		}
		if top == nl {
			break
		}
		var rem uint64
		for k := top; k < nl; k++ {
			cur := rem<<32 | uint64(limbs[k])
			limbs[k] = uint32(cur / base5)
			rem = cur % base5
		}
		for j := 0; j < 5; j++ {
			digits[n] = byte(rem % 58)
			rem /= 58
			n++
		}
	}
	for n > 0 && digits[n-1] == 0 { // the last pass may pad with zeros
		n--
	}
	out := make([]byte, zeros+n)
	for i := 0; i < zeros; i++ {
		out[i] = '1'
	}
	for i := 0; i < n; i++ {
		out[zeros+i] = b58Alphabet[digits[n-1-i]]
	}
	return string(out)
}

// checksum returns the first four bytes of SHA-256(SHA-256(b)).
func checksum(b []byte) [4]byte {
	h := sha256.Sum256(b)
	h = sha256.Sum256(h[:])
	return [4]byte(h[:4])
}

// b58CheckDecode decodes a base58check string of exactly len(out)-4 payload
// bytes into out (payload then checksum) and verifies the checksum.
func b58CheckDecode(s string, out []byte) bool {
	if !b58Decode(s, out) {
		return false
	}
	n := len(out) - 4
	return checksum(out[:n]) == [4]byte(out[n:])
}

// b58CheckEncode returns base58(payload || checksum(payload)).
func b58CheckEncode(payload []byte) string {
	c := checksum(payload)
	return b58Encode(append(payload[:len(payload):len(payload)], c[:]...))
}

// decodeAddress returns the hash160 of a mainnet P2PKH address (version
// 0x00, 20-byte payload, valid checksum).
func decodeAddress(address string) (h [20]byte, ok bool) {
	// A P2PKH address is 25 bytes: 26 to 34 base58 digits.
	if len(address) < 26 || len(address) > 35 {
		return h, false
	}
	var raw [25]byte
	if !b58CheckDecode(address, raw[:]) || raw[0] != versionP2PKH {
		return h, false
	}
	copy(h[:], raw[1:21])
	return h, true
}

// encodeAddress returns the mainnet P2PKH address of a hash160.
func encodeAddress(h [20]byte) string {
	var p [21]byte
	p[0] = versionP2PKH
	copy(p[1:], h[:])
	return b58CheckEncode(p[:])
}

// hash160 returns RIPEMD-160(SHA-256(b)).
func hash160(b []byte) (out [20]byte) {
	s := sha256.Sum256(b)
	r := ripemd160.New()
	r.Write(s[:])
	r.Sum(out[:0])
	return out
}
