package authtoken

import (
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
)

// The five codes a token can be refused with: missing_auth_token (sigauth,
// when no token is sent) and the four of the package doc.
var tokenCodes = map[errors.Code]bool{
	errors.MissingAuthToken:   true,
	errors.MalformedAuthToken: true,
	errors.InvalidPublicKey:   true,
	errors.InvalidSignature:   true,
	errors.InvalidTimestamp:   true,
}

var fuzzNow = testStart

// checkTokenResult fails unless a refusal is one of the five codes, as an
// *errors.Error, and a success is consistent with an independent check.
func checkTokenResult(t *testing.T, token string, req Request, body []byte, id Result, err error) {
	t.Helper()
	if err != nil {
		var e *errors.Error
		if !errors.As(err, &e) || !tokenCodes[e.Code] {
			t.Fatalf("token %q: refusal %v (%T) is not one of the five codes", token, err, err)
		}
		if e.Code == errors.InvalidSignature && e.Description != "Bitcoin signature verification failed" {
			t.Fatalf("description %q", e.Description)
		}
		return
	}
	if _, ok := decodeAddress(id.Address); !ok {
		t.Fatalf("token %q accepted for address %q", token, id.Address)
	}
	pt, perr := ParseToken(token)
	if perr != nil {
		t.Fatalf("token %q accepted but ParseToken says %v", token, perr)
	}
	if d := fuzzNow.Sub(pt.Time); d > DefaultWindow || d < -DefaultWindow {
		t.Fatalf("token %q accepted outside the window", token)
	}
	target := req.Target
	if pt.Bound {
		target = BoundTarget(req.Method, req.Issuer+req.Target)
	}
	if id.Bound != pt.Bound {
		t.Fatalf("token %q: Result.Bound %v, ParseToken says %v", token, id.Bound, pt.Bound)
	}
	msg := SignedMessage(target, pt.Timestamp, BodyHash(body))
	if id.Message != msg {
		t.Fatalf("token %q accepted for message %q, want %q", token, id.Message, msg)
	}
	switch pt.Scheme {
	case SchemeSigma, SchemeBSM:
		if err := VerifyMessage(id.Address, msg, pt.Signature); err != nil {
			t.Fatalf("token %q accepted but VerifyMessage says %v", token, err)
		}
	case SchemeBRC77:
		if pt.RequestPath != target || id.PubKey != pt.PubKey {
			t.Fatalf("brc77 token %q accepted for %q", token, target)
		}
	}
}

func FuzzSigmaToken(f *testing.F) {
	for _, opts := range []TokenOptions{
		{RequestPath: "/backup"},
		{RequestPath: "/backup", Body: []byte("body")},
		{RequestPath: "/authorize?client_id=x&state=a%20b"},
		{Method: "GET", URL: testIssuer + "/backup"},
		{Method: "PUT", URL: testIssuer + "/backup", Body: []byte("body")},
	} {
		opts.Timestamp = fuzzNow
		method, target := "GET", opts.RequestPath
		if opts.URL != "" {
			method, target = opts.Method, strings.TrimPrefix(opts.URL, testIssuer)
		}
		f.Add(mustToken(f, testWIF, opts), method, target, opts.Body)
		f.Add(mustToken(f, testWIFUncompressed, opts), method, target, opts.Body)
	}
	f.Add("sigma:"+testAddress+":2026-11-21T22:00:00Z|", "GET", "/", []byte(nil))
	f.Add("sigma::|", "GET", "/", []byte(nil))
	f.Add("sigma-bound::|", "GET", "/", []byte(nil))
	f.Add("sigma:"+testAddress+":2026-11-21T22:00:00Z|"+strings.Repeat("0", 88), "GET", "/", []byte(nil))
	f.Add("sigma:1111111111111111111114oLvT2:2026-11-21T22:00:00.000Z|"+strings.Repeat("A", 86)+"==", "GET", "/", []byte(nil))
	f.Fuzz(func(t *testing.T, token, method, target string, body []byte) {
		req := Request{Method: method, Target: target, Issuer: testIssuer}
		id, err := VerifyToken(token, req, body, fuzzNow, 0)
		checkTokenResult(t, token, req, body, id, err)
	})
}

func FuzzBitcoinAuthToken(f *testing.F) {
	var fx authFixtures
	loadJSON(f, "bitcoin-auth.json", &fx)
	for _, tok := range fx.Tokens {
		var body []byte
		if tok.Body != nil {
			body = []byte(*tok.Body)
		}
		f.Add(tok.Token, tok.RequestPath, body)
	}
	for _, scheme := range []string{SchemeBSM, SchemeBRC77} {
		opts := TokenOptions{Format: FormatBitcoinAuth, Scheme: scheme, RequestPath: "/backup", Timestamp: fuzzNow}
		f.Add(mustToken(f, testWIF, opts), "/backup", []byte(nil))
		opts.RequestPath, opts.Method, opts.URL = "", "DELETE", testIssuer+"/backup"
		f.Add(mustToken(f, testWIF, opts), "/backup", []byte(nil))
	}
	f.Add("02"+strings.Repeat("00", 32)+"|brc77|2026-11-21T22:00:00.000Z|/|", "/", []byte(nil))
	f.Add("02"+strings.Repeat("00", 32)+"|bsm|2026-11-21T22:00:00.000Z|GET https://x|", "/", []byte(nil))
	f.Add("||||", "", []byte(nil))
	f.Fuzz(func(t *testing.T, token, target string, body []byte) {
		// Both the plain parser and the whole verification, with the token's
		// own target as the request's, so that signatures get checked.
		req := Request{Method: "GET", Target: target, Issuer: testIssuer}
		if p, err := ParseToken(token); err == nil && p.Format == FormatBitcoinAuth {
			req.Target = p.RequestPath
			if m, u, ok := splitBound(p.RequestPath); ok && strings.HasPrefix(u, testIssuer) {
				req.Method, req.Target = m, strings.TrimPrefix(u, testIssuer)
			}
		}
		id, err := VerifyToken(token, req, body, fuzzNow, 0)
		checkTokenResult(t, token, req, body, id, err)
	})
}

func FuzzVerifyMessage(f *testing.F) {
	var vs bsmVectors
	loadJSON(f, "bsm-vectors.json", &vs)
	for _, v := range vs.Verify {
		f.Add(v.Address, v.Message, v.Signature)
	}
	f.Fuzz(func(t *testing.T, address, message, signature string) {
		err := VerifyMessage(address, message, signature)
		if err == nil {
			if _, ok := decodeAddress(address); !ok || len(signature) != 88 {
				t.Fatalf("accepted %q %q", address, signature)
			}
			return
		}
		var e *errors.Error
		if !errors.As(err, &e) || (e.Code != errors.MalformedAuthToken && e.Code != errors.InvalidSignature) {
			t.Fatalf("VerifyMessage(%q, %q, %q) = %v", address, message, signature, err)
		}
	})
}

// FuzzTimestamp: whatever parseTimestamp accepts is RFC 3339 UTC that the
// standard library reads as the same instant.
func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{"2026-11-21T22:00:00Z", "2026-11-21T22:00:00.123Z", "2024-02-29T00:00:00.123456789Z", "2026-02-30T00:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseTimestamp(s)
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil || !want.Equal(got) || !strings.HasSuffix(s, "Z") {
			t.Fatalf("ParseTimestamp(%q) = %v; time.Parse: %v, %v", s, got, want, err)
		}
	})
}
