package authtoken

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/btcsuite/btcd/btcec/v2"
)

// Public vectors (testdata/bsm-vectors.json), signatures made by @bsv/sdk
// (testdata/bsm-sdk.json) and tokens made by the npm bitcoin-auth library
// (testdata/bitcoin-auth.json, see testdata/gen).

func loadJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type bsmVectors struct {
	MagicHash []struct {
		Source, Message, Hash string
	} `json:"magic_hash"`
	Sign []struct {
		Source, WIF, Address, Message, Signature string
		Testnet                                  bool
	} `json:"sign"`
	Verify []struct {
		Source, Address, Message, Signature, Want string
	} `json:"verify"`
}

// codeOrOK returns the code of err, or "ok" for nil.
func codeOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return string(errors.CodeOf(err))
}

func TestMessageHashVectors(t *testing.T) {
	var vs bsmVectors
	loadJSON(t, "bsm-vectors.json", &vs)
	if len(vs.MagicHash) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vs.MagicHash {
		h := MessageHash(v.Message)
		if got := hex.EncodeToString(h[:]); got != v.Hash {
			t.Errorf("MessageHash(%q) = %s, want %s (%s)", v.Message, got, v.Hash, v.Source)
		}
	}
}

func TestVerifyMessageVectors(t *testing.T) {
	var vs bsmVectors
	loadJSON(t, "bsm-vectors.json", &vs)
	wants := map[string]int{}
	for _, v := range vs.Verify {
		wants[v.Want]++
		err := VerifyMessage(v.Address, v.Message, v.Signature)
		if got := codeOrOK(err); got != v.Want {
			t.Errorf("VerifyMessage(%q, %q, %q) = %s (%v), want %s\nsource: %s", v.Address, v.Message, v.Signature, got, err, v.Want, v.Source)
		}
		if err != nil {
			var e *errors.Error
			if !errors.As(err, &e) {
				t.Errorf("%s: error %T is not an *errors.Error", v.Source, err)
			} else if e.Code == errors.InvalidSignature && e.Description != "Bitcoin signature verification failed" {
				t.Errorf("%s: description %q", v.Source, e.Description)
			} else if e.Code == errors.MalformedAuthToken && !strings.HasPrefix(e.Description, "Auth token format is invalid") {
				t.Errorf("%s: description %q", v.Source, e.Description)
			}
		}
	}
	for _, w := range []string{"ok", "malformed_auth_token", "invalid_signature"} {
		if wants[w] == 0 {
			t.Errorf("no vector wants %s", w)
		}
	}
}

func TestSignMessageVectors(t *testing.T) {
	var vs bsmVectors
	loadJSON(t, "bsm-vectors.json", &vs)
	for _, v := range vs.Sign {
		sig, err := SignMessage(v.WIF, v.Message)
		if v.Testnet {
			if err == nil {
				t.Errorf("SignMessage accepted a testnet WIF (%s)", v.Source)
			}
			if err != nil && strings.Contains(err.Error(), v.WIF) {
				t.Errorf("error text contains the key: %v", err)
			}
			// The signature does not depend on the network: sign with the
			// raw key and compare.
			var raw [38]byte
			if !b58CheckDecode(v.WIF, raw[:]) {
				t.Fatalf("cannot decode %s", v.WIF)
			}
			key, _ := btcec.PrivKeyFromBytes(raw[1:33])
			sig, err = signMessage(key, raw[33] == 1, v.Message), nil
		}
		if err != nil {
			t.Errorf("SignMessage(%s): %v", v.Source, err)
			continue
		}
		if sig != v.Signature {
			t.Errorf("SignMessage(%q) = %s, want %s (%s)", v.Message, sig, v.Signature, v.Source)
		}
		if v.Address != "" {
			if err := VerifyMessage(v.Address, v.Message, sig); err != nil {
				t.Errorf("VerifyMessage of own signature (%s): %v", v.Source, err)
			}
		}
	}
}

// TestHighSTwins: every valid signature has a second valid form (s := n−s,
// recovery id parity flipped), and both verify, as in Bitcoin Core.
func TestHighSTwins(t *testing.T) {
	var vs bsmVectors
	loadJSON(t, "bsm-vectors.json", &vs)
	n := btcec.S256().N
	for _, v := range vs.Verify {
		if v.Want != "ok" {
			continue
		}
		b, _ := base64.StdEncoding.DecodeString(v.Signature)
		s := new(big.Int).SetBytes(b[33:])
		s.Sub(n, s)
		twin := make([]byte, 65)
		copy(twin, b[:33])
		s.FillBytes(twin[33:])
		twin[0] = 27 + ((b[0] - 27) ^ 1) // flip the recovery id's parity
		if err := VerifyMessage(v.Address, v.Message, base64.StdEncoding.EncodeToString(twin)); err != nil {
			t.Errorf("twin of %s: %v", v.Source, err)
		}
	}
}

type sdkVectors struct {
	WIF     string `json:"wif"`
	Vectors []struct {
		Source        string
		Address       string
		Compressed    bool
		Message       *string
		MessageRepeat string `json:"message_repeat"`
		MessageLength int    `json:"message_length"`
		MagicHash     string `json:"magic_hash"`
		Signature     string
	}
}

func repeatMessage(unit string, n int) string {
	var b strings.Builder
	for b.Len() < n {
		rest := n - b.Len()
		if rest >= len(unit) {
			b.WriteString(unit)
		} else {
			b.WriteString(unit[:rest])
		}
	}
	return b.String()
}

// TestSDKVectors: signatures by @bsv/sdk over messages in every
// CompactSize length class (0-252: one byte; 253-65535: 0xFD; more: 0xFE),
// compressed and uncompressed, and the library's own digests.
func TestSDKVectors(t *testing.T) {
	var vs sdkVectors
	loadJSON(t, "bsm-sdk.json", &vs)
	seen := map[int]bool{}
	for _, v := range vs.Vectors {
		msg := repeatMessage(v.MessageRepeat, v.MessageLength)
		if v.Message != nil {
			msg = *v.Message
		}
		seen[len(msg)] = true
		h := MessageHash(msg)
		if got := hex.EncodeToString(h[:]); got != v.MagicHash {
			t.Errorf("len %d: MessageHash = %s, want %s", len(msg), got, v.MagicHash)
		}
		if err := VerifyMessage(v.Address, msg, v.Signature); err != nil {
			t.Errorf("len %d compressed=%v: %v", len(msg), v.Compressed, err)
		}
		if err := VerifyMessage(v.Address, msg+"x", v.Signature); errors.CodeOf(err) != errors.InvalidSignature {
			t.Errorf("len %d: longer message: %v", len(msg), err)
		}
	}
	for _, n := range []int{0, 252, 253, 65535, 65536} {
		if !seen[n] {
			t.Errorf("no vector of length %d", n)
		}
	}
}

type authFixtures struct {
	Tokens []struct {
		Description string
		Source      string
		WIF         string `json:"wif"`
		PubKey      string
		Address     string
		Scheme      string
		RequestPath string `json:"requestPath"`
		Timestamp   string
		Body        *string
		Token       string
		Want        string
		JSVerifies  bool `json:"js_verifies"`
	}
}

// TestBitcoinAuthFixtures verifies the tokens the npm bitcoin-auth
// library made, at their own timestamps (a frozen clock), and rejects every
// tampered variant.
func TestBitcoinAuthFixtures(t *testing.T) {
	var fx authFixtures
	loadJSON(t, "bitcoin-auth.json", &fx)
	schemes := map[string]bool{}
	for _, f := range fx.Tokens {
		t.Run(f.Description, func(t *testing.T) {
			ts, ok := ParseTimestamp(f.Timestamp)
			if !ok {
				t.Fatalf("timestamp %q", f.Timestamp)
			}
			var body []byte
			if f.Body != nil {
				body = []byte(*f.Body)
			}
			if f.Want == "ok" {
				schemes[f.Scheme+map[bool]string{true: "+body", false: ""}[len(body) > 0]] = true
				if strings.Contains(f.RequestPath, " ") {
					schemes[f.Scheme+map[bool]string{true: "+body", false: ""}[len(body) > 0]+" bound"] = true
				}
				if !f.JSVerifies {
					t.Errorf("fixture not accepted by the JS library")
				}
			}

			id, err := verifyFixture(f.Token, f.RequestPath, body, ts)
			if got := codeOrOK(err); got != f.Want {
				t.Fatalf("VerifyToken = %s (%v), want %s", got, err, f.Want)
			}
			if f.Want != "ok" {
				return
			}
			if id.Address != f.Address || id.PubKey != f.PubKey || id.Scheme != f.Scheme || id.Bound != strings.Contains(f.RequestPath, " ") {
				t.Errorf("result %+v, want address %s pubkey %s scheme %s", id, f.Address, f.PubKey, f.Scheme)
			}

			// Tampered variants: all rejected, each with its code.
			for _, tc := range tamper(f.Token, f.RequestPath, body) {
				_, err := verifyFixture(tc.token, tc.target, tc.body, ts)
				if got := errors.CodeOf(err); got != tc.want {
					t.Errorf("%s: got %s (%v), want %s", tc.name, got, err, tc.want)
				}
			}
			// One millisecond outside the window, both sides.
			for _, d := range []time.Duration{DefaultWindow + time.Millisecond, -DefaultWindow - time.Millisecond} {
				if _, err := verifyFixture(f.Token, f.RequestPath, body, ts.Add(d)); errors.CodeOf(err) != errors.InvalidTimestamp {
					t.Errorf("now %+v: %v", d, err)
				}
			}
		})
	}
	for _, s := range []string{"bsm", "bsm+body", "brc77", "brc77+body", "bsm bound", "brc77+body bound"} {
		if !schemes[s] {
			t.Errorf("no valid fixture for %s", s)
		}
	}
}

type tamperCase struct {
	name   string
	token  string
	target string
	body   []byte
	want   errors.Code
}

// tamper returns variants of a valid bitcoin-auth token and its request,
// each of which must fail.
func tamper(token, target string, body []byte) []tamperCase {
	parts := strings.Split(token, "|")
	with := func(i int, s string) string {
		p := append([]string(nil), parts...)
		p[i] = s
		return strings.Join(p, "|")
	}
	flipByte := func(s string, i int) string {
		b, _ := base64.StdEncoding.DecodeString(s)
		b[i] ^= 0x01
		return base64.StdEncoding.EncodeToString(b)
	}
	sig := parts[4]
	sigLen := len(mustB64(sig))
	cases := []tamperCase{
		{"other body", token, target, append(append([]byte(nil), body...), 'x'), errors.InvalidSignature},
		{"other path", token, target + "x", body, errors.InvalidSignature},
		{"path in token and request both changed", with(3, target+"x"), target + "x", body, errors.InvalidSignature},
		{"other timestamp", with(2, shiftTimestamp(parts[2])), target, body, errors.InvalidSignature},
		{"last signature byte", with(4, flipByte(sig, sigLen-1)), target, body, errors.InvalidSignature},
		{"middle signature byte", with(4, flipByte(sig, sigLen/2)), target, body, errors.InvalidSignature},
		{"pubkey of another key", with(0, "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"), target, body, errors.InvalidSignature},
		{"pubkey off the curve", with(0, "02"+strings.Repeat("ff", 32)), target, body, errors.InvalidPublicKey},
		{"uncompressed pubkey", with(0, "04"+parts[0][2:]), target, body, errors.InvalidPublicKey},
		{"pubkey not hex", with(0, "02"+strings.Repeat("zz", 32)), target, body, errors.InvalidPublicKey},
		{"unknown scheme", with(1, "ecdsa"), target, body, errors.MalformedAuthToken},
		{"six parts", token + "|x", target, body, errors.MalformedAuthToken},
		{"signature not base64", with(4, "!"+sig[1:]), target, body, errors.MalformedAuthToken},
		{"timestamp with offset", with(2, strings.TrimSuffix(parts[2], "Z")+"+00:00"), target, body, errors.InvalidTimestamp},
	}
	if parts[1] == "bsm" {
		cases = append(cases, tamperCase{"as brc77", with(1, "brc77"), target, body, errors.MalformedAuthToken})
		// Header changed to uncompressed: the key hashes to another address.
		b := mustB64(sig)
		b[0] -= 4
		cases = append(cases, tamperCase{"uncompressed header", with(4, base64.StdEncoding.EncodeToString(b)), target, body, errors.InvalidSignature})
	} else {
		cases = append(cases,
			tamperCase{"as bsm", with(1, "bsm"), target, body, errors.MalformedAuthToken},
			tamperCase{"version byte", with(4, flipByte(sig, 0)), target, body, errors.InvalidSignature},
			tamperCase{"envelope signer byte", with(4, flipByte(sig, 10)), target, body, errors.InvalidSignature},
			tamperCase{"key ID byte", with(4, flipByte(sig, 40)), target, body, errors.InvalidSignature},
			tamperCase{"verifier byte", with(4, flipByte(sig, 37)), target, body, errors.InvalidSignature},
			tamperCase{"trailing byte after DER", with(4, base64.StdEncoding.EncodeToString(append(mustB64(sig), 0))), target, body, errors.InvalidSignature},
		)
	}
	return cases
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// shiftTimestamp returns ts one millisecond later, in the same format.
func shiftTimestamp(ts string) string {
	t, ok := ParseTimestamp(ts)
	if !ok {
		panic(ts)
	}
	return FormatTimestamp(t.Add(time.Millisecond))
}

// verifyFixture verifies a fixture token for the request its requestPath
// describes: a GET of that path, or for the bound form the method and URL
// it names (at testIssuer).
func verifyFixture(token, requestPath string, body []byte, now time.Time) (Result, error) {
	req := Request{Method: "GET", Target: requestPath, Issuer: testIssuer}
	if m, u, ok := splitBound(requestPath); ok && strings.HasPrefix(u, testIssuer) {
		req.Method, req.Target = m, strings.TrimPrefix(u, testIssuer)
	}
	return VerifyToken(token, req, body, now, 0)
}
