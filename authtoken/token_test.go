package authtoken

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
)

func TestParseTimestamp(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-21T22:00:00Z", time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC), true},
		{"2026-11-21T22:00:00.000Z", time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC), true},
		{"2026-11-21T22:00:00.5Z", time.Date(2026, 11, 21, 22, 0, 0, 500_000_000, time.UTC), true},
		{"2026-11-21T22:00:00.123Z", time.Date(2026, 11, 21, 22, 0, 0, 123_000_000, time.UTC), true},
		{"2026-11-21T22:00:00.123456789Z", time.Date(2026, 11, 21, 22, 0, 0, 123456789, time.UTC), true},
		{"2024-02-29T23:59:59.999Z", time.Date(2024, 2, 29, 23, 59, 59, 999_000_000, time.UTC), true},
		{"2026-11-21T22:00:00.1234567890Z", time.Time{}, false},
		{"2026-11-21T22:00:00.Z", time.Time{}, false},
		{"2026-11-21T22:00:00", time.Time{}, false},
		{"2026-11-21T22:00:00+00:00", time.Time{}, false},
		{"2026-11-21T23:00:00+01:00", time.Time{}, false},
		{"2026-11-21t22:00:00Z", time.Time{}, false},
		{"2026-11-21 22:00:00Z", time.Time{}, false},
		{"2026-11-21T22:00:00z", time.Time{}, false},
		{"2026-13-21T22:00:00Z", time.Time{}, false},
		{"2026-02-29T22:00:00Z", time.Time{}, false},
		{"2026-11-31T22:00:00Z", time.Time{}, false},
		{"2026-11-00T22:00:00Z", time.Time{}, false},
		{"2026-11-21T24:00:00Z", time.Time{}, false},
		{"2026-11-21T22:60:00Z", time.Time{}, false},
		{"2026-11-21T22:00:60Z", time.Time{}, false},
		{"+026-11-21T22:00:00Z", time.Time{}, false},
		{"2026-11-21T22:00:0aZ", time.Time{}, false},
		{"2026-11-21T22:00:00.12a4Z", time.Time{}, false},
		{"1763762400", time.Time{}, false},
		{"", time.Time{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseTimestamp(tt.in)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("ParseTimestamp(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok {
			// JavaScript's toISOString form survives a round trip.
			if f := FormatTimestamp(got); len(tt.in) == 24 && f != tt.in {
				t.Errorf("FormatTimestamp = %q, want %q", f, tt.in)
			}
		}
	}
}

func TestParseToken(t *testing.T) {
	now := testStart
	sigma := mustToken(t, testWIF, TokenOptions{RequestPath: "/backup", Timestamp: now})
	ba := mustToken(t, testWIF, TokenOptions{Format: FormatBitcoinAuth, RequestPath: "/backup?x=1", Timestamp: now})
	brc := mustToken(t, testWIF, TokenOptions{Format: FormatBitcoinAuth, Scheme: SchemeBRC77, RequestPath: "/backup", Timestamp: now})
	sigmaSig := sigma[strings.LastIndexByte(sigma, '|')+1:]
	baParts := strings.Split(ba, "|")
	stamp := FormatTimestamp(now)

	tests := []struct {
		name    string
		token   string
		code    errors.Code
		address string // when the token names a well-formed signer
	}{
		{"sigma", sigma, "", testAddress},
		{"bitcoin-auth bsm", ba, "", testAddress},
		{"bitcoin-auth brc77", brc, "", testAddress},
		{"sigma without Z fraction", "sigma:" + testAddress + ":2026-11-21T22:00:00Z|" + sigmaSig, "", testAddress},
		{"sigma, empty", "sigma:", errors.MalformedAuthToken, ""},
		{"sigma, no address separator", "sigma:" + testAddress, errors.MalformedAuthToken, ""},
		{"sigma, no signature separator", "sigma:" + testAddress + ":" + stamp, errors.MalformedAuthToken, ""},
		{"sigma, testnet address", "sigma:mpLQjfK79b7CCV4VMJWEWAj5Mpx8Up5zxB:" + stamp + "|" + sigmaSig, errors.MalformedAuthToken, ""},
		{"sigma, P2SH address", "sigma:3B5fQsEXEaV8v6U3ejYc8XaKXAkyQj2MjV:" + stamp + "|" + sigmaSig, errors.MalformedAuthToken, ""},
		{"sigma, bech32 address", "sigma:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4:" + stamp + "|" + sigmaSig, errors.MalformedAuthToken, ""},
		{"sigma, address bad checksum", "sigma:15CRxFdyRpGZLW9w8HnHvVduizdL5jKNbt:" + stamp + "|" + sigmaSig, errors.MalformedAuthToken, ""},
		{"sigma, short signature", "sigma:" + testAddress + ":" + stamp + "|" + sigmaSig[:84], errors.MalformedAuthToken, testAddress},
		{"sigma, URL-safe base64", "sigma:" + testAddress + ":" + stamp + "|" + "IPojfrX2dfPnH26UegfbGQQLrdK844DlHq5157_P6h57WyuS_Qsl-h_WSVGDF4MUi4rWSswW38oimDYfNNUBUOk=", errors.MalformedAuthToken, testAddress},
		{"sigma, bad timestamp", "sigma:" + testAddress + ":yesterday|" + sigmaSig, errors.InvalidTimestamp, testAddress},
		{"sigma, timestamp with bar", "sigma:" + testAddress + ":" + stamp + "|x|" + sigmaSig, errors.InvalidTimestamp, testAddress},
		{"sigma, upper-case prefix", "SIGMA:" + testAddress + ":" + stamp + "|" + sigmaSig, errors.MalformedAuthToken, ""},
		{"bitcoin-auth, 4 parts", strings.Join(baParts[:4], "|"), errors.MalformedAuthToken, ""},
		{"bitcoin-auth, 6 parts", ba + "|", errors.MalformedAuthToken, ""},
		{"bitcoin-auth, bar in path", strings.Join([]string{baParts[0], "bsm", stamp, "/a|b", baParts[4]}, "|"), errors.MalformedAuthToken, ""},
		{"bitcoin-auth, unknown scheme", strings.Join([]string{baParts[0], "BSM", stamp, "/backup", baParts[4]}, "|"), errors.MalformedAuthToken, ""},
		{"bitcoin-auth, short pubkey", strings.Join([]string{baParts[0][:64], "bsm", stamp, "/backup", baParts[4]}, "|"), errors.InvalidPublicKey, ""},
		{"bitcoin-auth, 04 pubkey", strings.Join([]string{"04" + baParts[0][2:], "bsm", stamp, "/backup", baParts[4]}, "|"), errors.InvalidPublicKey, ""},
		{"bitcoin-auth, upper-case hex", strings.Join([]string{strings.ToUpper(baParts[0]), "bsm", stamp, "/backup", baParts[4]}, "|"), "", testAddress},
		{"bitcoin-auth, bad timestamp", strings.Join([]string{baParts[0], "bsm", "now", "/backup", baParts[4]}, "|"), errors.InvalidTimestamp, testAddress},
		{"empty", "", errors.MalformedAuthToken, ""},
		{"Bearer token", "eyJhbGciOiJFUzI1NiJ9.e30.sig", errors.MalformedAuthToken, ""},
		{"too long", "sigma:" + strings.Repeat("1", MaxTokenLen), errors.MalformedAuthToken, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var pt ParsedToken
			err := ParseTokenInto(tt.token, &pt)
			if got := errors.CodeOf(err); got != tt.code {
				t.Fatalf("code %q (%v), want %q", got, err, tt.code)
			}
			if pt.Address != tt.address {
				t.Errorf("address %q, want %q", pt.Address, tt.address)
			}
			tok, err2 := ParseToken(tt.token)
			if (err2 == nil) != (tt.code == "") || (err2 == nil && tok.Address != tt.address) {
				t.Errorf("ParseToken = %+v, %v", tok, err2)
			}
		})
	}
}

func mustToken(t testing.TB, wif string, opts TokenOptions) string {
	t.Helper()
	tok, err := Token(wif, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestTokenErrors(t *testing.T) {
	tests := []struct {
		name string
		wif  string
		opts TokenOptions
	}{
		{"no path", testWIF, TokenOptions{}},
		{"bad format", testWIF, TokenOptions{Format: "jwt", RequestPath: "/"}},
		{"bad scheme", testWIF, TokenOptions{Format: FormatBitcoinAuth, Scheme: "ecdsa", RequestPath: "/"}},
		{"brc77 in sigma", testWIF, TokenOptions{Scheme: SchemeBRC77, RequestPath: "/"}},
		{"bar in bitcoin-auth path", testWIF, TokenOptions{Format: FormatBitcoinAuth, RequestPath: "/a|b"}},
		{"testnet WIF", "cUeKHd5orzT3mz8P9pxyREHfsWtVfgsfDjiZZBcjUBAaGk1BTj7N", TokenOptions{RequestPath: "/"}},
		{"WIF bad checksum", testWIF[:len(testWIF)-1] + "8", TokenOptions{RequestPath: "/"}},
		{"address, not WIF", testAddress, TokenOptions{RequestPath: "/"}},
		{"hex key, not WIF", strings.Repeat("11", 32), TokenOptions{RequestPath: "/"}},
	}
	for _, tt := range tests {
		_, err := Token(tt.wif, tt.opts)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if strings.Contains(err.Error(), tt.wif) || strings.Contains(err.Error(), testWIF[:20]) {
			t.Errorf("%s: error text contains the key: %v", tt.name, err)
		}
		var e *errors.Error
		if errors.As(err, &e) {
			t.Errorf("%s: %T is a wire error", tt.name, err)
		}
	}
	// A bar is fine in a sigma path: the token does not carry the path.
	if _, err := Token(testWIF, TokenOptions{RequestPath: "/a|b"}); err != nil {
		t.Errorf("sigma with bar: %v", err)
	}
}

// TestTokenFormat pins the shape of what Token makes.
func TestTokenFormat(t *testing.T) {
	ts := time.Date(2026, 11, 21, 22, 0, 0, 123456789, time.UTC)
	sigma := mustToken(t, testWIF, TokenOptions{RequestPath: "/backup", Timestamp: ts})
	if !strings.HasPrefix(sigma, "sigma:"+testAddress+":2026-11-21T22:00:00.123Z|") {
		t.Errorf("sigma token %q", sigma)
	}
	// Deterministic: RFC 6979.
	if again := mustToken(t, testWIF, TokenOptions{RequestPath: "/backup", Timestamp: ts}); again != sigma {
		t.Errorf("not deterministic: %q, %q", sigma, again)
	}
	ba := mustToken(t, testWIF, TokenOptions{Format: FormatBitcoinAuth, RequestPath: "/backup", Body: []byte("x"), Timestamp: ts})
	p := strings.Split(ba, "|")
	if len(p) != 5 || p[1] != "bsm" || p[2] != "2026-11-21T22:00:00.123Z" || p[3] != "/backup" || len(p[0]) != 66 {
		t.Errorf("bitcoin-auth token %q", ba)
	}
	key, _, _ := ParseWIF(testWIF)
	if p[0] != hex.EncodeToString(key.PubKey().SerializeCompressed()) {
		t.Errorf("pubkey %s", p[0])
	}
	// The body hash: hex SHA-256, or empty.
	if got := BodyHash([]byte("x")); got != "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881" {
		t.Errorf("BodyHash = %s", got)
	}
	if BodyHash(nil) != "" || BodyHash([]byte{}) != "" {
		t.Error("BodyHash of empty body is not empty")
	}
	// BRC-77 with a fixed key ID is deterministic; its envelope has the
	// documented layout.
	opts := TokenOptions{Format: FormatBitcoinAuth, Scheme: SchemeBRC77, RequestPath: "/backup", Timestamp: ts}
	opts.Rand = bytes.NewReader(bytes.Repeat([]byte{7}, 32))
	brc, err := newSigner(key, true).Token(opts)
	if err != nil {
		t.Fatal(err)
	}
	env := mustB64(strings.Split(brc, "|")[4])
	if !bytes.Equal(env[:4], []byte{0x42, 0x42, 0x33, 0x01}) || !bytes.Equal(env[4:37], key.PubKey().SerializeCompressed()) ||
		env[37] != 0 || !bytes.Equal(env[38:70], bytes.Repeat([]byte{7}, 32)) || env[70] != 0x30 {
		t.Errorf("envelope %x", env)
	}
	if _, err := verifyPath(brc, "/backup", nil, ts); err != nil {
		t.Errorf("own brc77 token: %v", err)
	}
}

func TestCompactSize(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{
		{0, "00"}, {0xfc, "fc"}, {0xfd, "fdfd00"}, {0xffff, "fdffff"},
		{0x10000, "fe00000100"}, {0xffffffff, "feffffffff"}, {0x100000000, "ff0000000001000000"},
	}
	for _, tt := range tests {
		if got := hex.EncodeToString(compactSize(nil, tt.n)); got != tt.want {
			t.Errorf("compactSize(%#x) = %s, want %s", tt.n, got, tt.want)
		}
	}
}

func TestBase58(t *testing.T) {
	for _, s := range []string{testAddress, "1111111111111111111114oLvT2", "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH"} {
		h, ok := decodeAddress(s)
		if !ok {
			t.Fatalf("decodeAddress(%s) failed", s)
		}
		if got := encodeAddress(h); got != s {
			t.Errorf("round trip %s -> %s", s, got)
		}
	}
	for _, s := range []string{
		"", "1", "0BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH", "lBgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH",
		"11BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH", "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAM",
		"1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMHH", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
		"5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf", // a WIF, not an address
	} {
		if _, ok := decodeAddress(s); ok {
			t.Errorf("decodeAddress(%q) accepted", s)
		}
	}
}

func TestParseWIF(t *testing.T) {
	k, compressed, err := ParseWIF(testWIF)
	if err != nil || !compressed || AddressOf(k.PubKey(), true) != testAddress {
		t.Errorf("compressed WIF: %v %v", compressed, err)
	}
	k, compressed, err = ParseWIF(" " + testWIFUncompressed + "\n")
	if err != nil || compressed || AddressOf(k.PubKey(), false) != "1EHNa6Q4Jz2uvNExL497mE43ikXhwF6kZm" {
		t.Errorf("uncompressed WIF: %v %v", compressed, err)
	}
	// The order n itself, as a WIF, is out of range.
	n := btcecOrderWIF(t)
	if _, _, err := ParseWIF(n); err == nil {
		t.Error("WIF of n accepted")
	}
}

// btcecOrderWIF returns the compressed WIF of the group order: a
// well-formed WIF of an invalid key.
func btcecOrderWIF(t *testing.T) string {
	order, _ := hex.DecodeString("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")
	return b58CheckEncode(append(append([]byte{0x80}, order...), 0x01))
}

// TestBRC77Envelope: the checks inside the envelope, each on its own.
func TestBRC77Envelope(t *testing.T) {
	key, _, _ := ParseWIF(testWIF)
	other, _, _ := ParseWIF(otherWIF)
	msg := "/backup|2026-11-21T22:00:00.000Z|"
	env, err := signBRC77(key, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	var pb [33]byte
	copy(pb[:], key.PubKey().SerializeCompressed())
	if !verifyBRC77(key.PubKey(), &pb, msg, env) {
		t.Fatal("valid envelope refused")
	}
	var ob [33]byte
	copy(ob[:], other.PubKey().SerializeCompressed())
	if verifyBRC77(other.PubKey(), &ob, msg, env) {
		t.Error("envelope accepted for another key")
	}
	// The envelope names another signer, who really signed: still refused
	// for this token's key.
	oenv, _ := signBRC77(other, msg, nil)
	if verifyBRC77(key.PubKey(), &pb, msg, oenv) {
		t.Error("other signer's envelope accepted")
	}
	// The high-S twin of the DER signature verifies too (no low-S rule).
	sig, err := ecdsa.ParseDERSignature(env[brc77HeadLen:])
	if err != nil {
		t.Fatal(err)
	}
	r, s := sig.R(), sig.S()
	s.Negate()
	rb, sb := r.Bytes(), s.Bytes()
	high := append(append([]byte(nil), env[:brc77HeadLen]...), derEncode(rb[:], sb[:])...)
	if !verifyBRC77(key.PubKey(), &pb, msg, high) {
		t.Error("high-S twin refused")
	}
	if bytes.Equal(high, env) {
		t.Error("twin equals the original")
	}
	mut := func(f func([]byte) []byte) []byte { return f(append([]byte(nil), env...)) }
	for name, e := range map[string][]byte{
		"short":          env[:brc77MinLen-1],
		"version":        mut(func(b []byte) []byte { b[3] = 2; return b }),
		"trailing":       mut(func(b []byte) []byte { return append(b, 0) }),
		"DER length":     mut(func(b []byte) []byte { b[brc77HeadLen+1]--; return b }),
		"not DER":        mut(func(b []byte) []byte { b[brc77HeadLen] = 0x31; return b }),
		"truncated DER":  mut(func(b []byte) []byte { return b[:len(b)-1] }),
		"other message":  env,
		"keyID":          mut(func(b []byte) []byte { b[50] ^= 1; return b }),
		"named verifier": mut(func(b []byte) []byte { b[37] = 2; return b }),
	} {
		m := msg
		if name == "other message" {
			m += "x"
		}
		if verifyBRC77(key.PubKey(), &pb, m, e) {
			t.Errorf("%s: accepted", name)
		}
	}
	// Base64 bounds of the envelope text.
	if _, ok := decodeBRC77(base64.StdEncoding.EncodeToString(env)); !ok {
		t.Error("decodeBRC77 refused a valid envelope")
	}
	unpadded := env
	if len(unpadded)%3 == 0 {
		unpadded = unpadded[:len(unpadded)-1]
	}
	for _, s := range []string{
		base64.StdEncoding.EncodeToString(env[:brc77MinLen-1]),
		base64.StdEncoding.EncodeToString(make([]byte, brc77MaxLen+1)),
		base64.RawStdEncoding.EncodeToString(unpadded),
		base64.StdEncoding.EncodeToString(env)[:20] + "\n" + base64.StdEncoding.EncodeToString(env)[20:],
	} {
		if _, ok := decodeBRC77(s); ok {
			t.Errorf("decodeBRC77(%q) accepted", s)
		}
	}
}

// derEncode encodes (r, s) in DER without normalising s.
func derEncode(r, s []byte) []byte {
	integer := func(b []byte) []byte {
		for len(b) > 1 && b[0] == 0 {
			b = b[1:]
		}
		if b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{0x02, byte(len(b))}, b...)
	}
	body := append(integer(r), integer(s)...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

// FuzzBase58: decoding accepts exactly the canonical encodings.
func FuzzBase58(f *testing.F) {
	for _, s := range []string{testAddress, "1111111111111111111114oLvT2", "1", "11", "z", "5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf"} {
		f.Add(s, 25)
	}
	f.Add("5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf", 37)
	f.Add(testWIF, 38)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 1 || n > 40 {
			return
		}
		out := make([]byte, n)
		if b58Decode(s, out) {
			if enc := b58Encode(out); enc != s {
				t.Fatalf("b58Decode(%q) = %x, which encodes as %q", s, out, enc)
			}
		}
		// And every n-byte value round-trips: use s's bytes as one.
		b := make([]byte, n)
		copy(b, s)
		back := make([]byte, n)
		if enc := b58Encode(b); !b58Decode(enc, back) || !bytes.Equal(back, b) {
			t.Fatalf("round trip of %x via %q failed: %x", b, enc, back)
		}
	})
}

func TestGenerateKey(t *testing.T) {
	wif, addr, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	key, compressed, err := ParseWIF(wif)
	if err != nil || !compressed || AddressOf(key.PubKey(), true) != addr || addr[0] != '1' {
		t.Fatalf("GenerateKey = %q %q: %v compressed=%v", wif, addr, err, compressed)
	}
	sig, err := SignMessage(wif, "hello")
	if err != nil || VerifyMessage(addr, "hello", sig) != nil {
		t.Fatalf("a signature by the generated key does not verify: %v", err)
	}
	if w2, _, _ := GenerateKey(); w2 == wif {
		t.Fatal("two generated keys are equal")
	}
}
