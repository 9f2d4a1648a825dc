package authtoken

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
)

// TestBoundForm: a bound token, in every syntax and scheme, is accepted
// for its method at its URL only; an unbound token is accepted for any
// method, as before.
func TestBoundForm(t *testing.T) {
	now := testStart
	req := Request{Method: "DELETE", Target: "/backup?v=1", Issuer: testIssuer}
	body := []byte("payload")
	for _, f := range []struct{ format, scheme string }{
		{FormatSigma, ""}, {FormatBitcoinAuth, SchemeBSM}, {FormatBitcoinAuth, SchemeBRC77},
	} {
		name := f.format + "/" + f.scheme
		tok := mustToken(t, testWIF, TokenOptions{Format: f.format, Scheme: f.scheme, Method: "DELETE",
			URL: testIssuer + "/backup?v=1", Body: body, Timestamp: now})
		p, err := ParseToken(tok)
		if err != nil || !p.Bound {
			t.Fatalf("%s: ParseToken = %+v, %v", name, p, err)
		}
		if f.format == FormatSigma && !strings.HasPrefix(tok, "sigma-bound:"+testAddress+":") {
			t.Errorf("%s: token %q", name, tok)
		}
		if f.format == FormatBitcoinAuth && p.RequestPath != "DELETE "+testIssuer+"/backup?v=1" {
			t.Errorf("%s: requestPath %q", name, p.RequestPath)
		}
		res, err := VerifyToken(tok, req, body, now, 0)
		if err != nil || !res.Bound || res.Address != testAddress {
			t.Fatalf("%s: VerifyToken = %+v, %v", name, res, err)
		}
		if res.Message != "DELETE "+testIssuer+"/backup?v=1|"+FormatTimestamp(now)+"|"+BodyHash(body) {
			t.Errorf("%s: message %q", name, res.Message)
		}
		for what, other := range map[string]Request{
			"another method":        {Method: "GET", Target: req.Target, Issuer: req.Issuer},
			"lower-case method":     {Method: "delete", Target: req.Target, Issuer: req.Issuer},
			"another issuer":        {Method: "DELETE", Target: req.Target, Issuer: "https://other.example.com"},
			"issuer with a path":    {Method: "DELETE", Target: req.Target, Issuer: testIssuer + "/auth"},
			"http issuer":           {Method: "DELETE", Target: req.Target, Issuer: "http://auth.example.com"},
			"another path":          {Method: "DELETE", Target: "/backup?v=2", Issuer: req.Issuer},
			"no issuer configured":  {Method: "DELETE", Target: req.Target},
			"no method":             {Target: req.Target, Issuer: req.Issuer},
			"path without query":    {Method: "DELETE", Target: "/backup", Issuer: req.Issuer},
			"absolute target twice": {Method: "DELETE", Target: testIssuer + "/backup?v=1", Issuer: req.Issuer},
		} {
			if _, err := VerifyToken(tok, other, body, now, 0); errors.CodeOf(err) != errors.InvalidSignature {
				t.Errorf("%s, %s: %v", name, what, err)
			}
		}
		// Stripping the marker from a bound sigma token (or rewriting a
		// bitcoin-auth requestPath to the unbound form) makes it a token
		// for another message: refused.
		var stripped string
		if f.format == FormatSigma {
			stripped = "sigma:" + strings.TrimPrefix(tok, "sigma-bound:")
		} else {
			parts := strings.Split(tok, "|")
			parts[3] = "/backup?v=1"
			stripped = strings.Join(parts, "|")
		}
		if _, err := VerifyToken(stripped, req, body, now, 0); errors.CodeOf(err) != errors.InvalidSignature {
			t.Errorf("%s, marker stripped: %v", name, err)
		}

		// The unbound form of the same request: accepted for any method.
		un := mustToken(t, testWIF, TokenOptions{Format: f.format, Scheme: f.scheme, RequestPath: "/backup?v=1", Body: body, Timestamp: now})
		for _, m := range []string{"GET", "DELETE"} {
			res, err := VerifyToken(un, Request{Method: m, Target: req.Target, Issuer: req.Issuer}, body, now, 0)
			if err != nil || res.Bound {
				t.Errorf("%s, unbound %s: %+v, %v", name, m, res, err)
			}
		}
		// Marking an unbound sigma token as bound: another message.
		if f.format == FormatSigma {
			if _, err := VerifyToken("sigma-bound:"+strings.TrimPrefix(un, "sigma:"), req, body, now, 0); errors.CodeOf(err) != errors.InvalidSignature {
				t.Errorf("unbound token marked bound: %v", err)
			}
		}
	}
}

// TestBoundSyntax: what ParseToken and Token accept as the bound form.
func TestBoundSyntax(t *testing.T) {
	ba := mustToken(t, testWIF, TokenOptions{Format: FormatBitcoinAuth, Method: "PUT", URL: testIssuer + "/backup", Timestamp: testStart})
	parts := strings.Split(ba, "|")
	with := func(target string) string {
		p := append([]string(nil), parts...)
		p[3] = target
		return strings.Join(p, "|")
	}
	for target, want := range map[string]errors.Code{
		"PUT https://auth.example.com/backup":        "",
		"PUT http://127.0.0.1:8080/backup?x=1":       "",
		"PUT https://auth.example.com":               "",
		"M-SEARCH https://auth.example.com/x":        "",
		"PUT  https://auth.example.com/backup":       errors.MalformedAuthToken, // two spaces
		"PUT https://auth.example.com/backup x":      errors.MalformedAuthToken,
		" https://auth.example.com/backup":           errors.MalformedAuthToken,
		"PUT ftp://auth.example.com/backup":          errors.MalformedAuthToken,
		"PUT /backup":                                errors.MalformedAuthToken,
		"PUT https:///backup":                        errors.MalformedAuthToken,
		"PUT https://auth.example.com/backup#x":      errors.MalformedAuthToken,
		"P(T https://auth.example.com/backup":        errors.MalformedAuthToken,
		"/backup":                                    "",
		"PUT\thttps://auth.example.com/backup":       "", // no space: an (odd) unbound path
		"GET https://auth.example.com/a?b=c%20d&e=f": "",
	} {
		p, err := ParseToken(with(target))
		if got := errors.CodeOf(err); got != want {
			t.Errorf("%q: %v, want %q", target, err, want)
		}
		if err == nil && p.Bound != strings.Contains(target, " ") {
			t.Errorf("%q: Bound = %v", target, p.Bound)
		}
	}
	// The split rule holds for the bound sigma prefix: the first two
	// colons, then the last bar.
	sb := mustToken(t, testWIF, TokenOptions{Method: "GET", URL: testIssuer + "/a:b|c", Timestamp: testStart})
	p, err := ParseToken(sb)
	if err != nil || p.Address != testAddress || p.Timestamp != FormatTimestamp(testStart) || !p.Bound {
		t.Fatalf("ParseToken(%q) = %+v, %v", sb, p, err)
	}
	if _, err := VerifyToken(sb, Request{Method: "GET", Target: "/a:b|c", Issuer: testIssuer}, nil, testStart, 0); err != nil {
		t.Errorf("bound sigma token with ':' and '|' in its URL: %v", err)
	}
	for _, bad := range []string{"sigma-bound:", "sigma-bound:" + testAddress, "Sigma-Bound:" + strings.TrimPrefix(sb, "sigma-bound:"), "sigma-bound" + strings.TrimPrefix(sb, "sigma-bound:")} {
		if _, err := ParseToken(bad); errors.CodeOf(err) != errors.MalformedAuthToken {
			t.Errorf("%q: %v", bad, err)
		}
	}

	for name, opts := range map[string]TokenOptions{
		"URL and path":       {Method: "GET", URL: testIssuer + "/", RequestPath: "/"},
		"URL without method": {URL: testIssuer + "/"},
		"method without URL": {Method: "GET", RequestPath: "/"},
		"relative URL":       {Method: "GET", URL: "/backup"},
		"URL with fragment":  {Method: "GET", URL: testIssuer + "/#x"},
		"URL with space":     {Method: "GET", URL: testIssuer + "/a b"},
		"method with space":  {Method: "GE T", URL: testIssuer + "/"},
		"bar in URL":         {Format: FormatBitcoinAuth, Method: "GET", URL: testIssuer + "/a|b"},
		"path with space":    {RequestPath: "/a b"},
	} {
		if tok, err := Token(testWIF, opts); err == nil {
			t.Errorf("%s: made %q", name, tok)
		}
	}
}

// TestSignerKey: VerifySignature returns the signing key as one curve
// point, whatever the malleable parts of the signature say: the header's
// compression flag (with the address to match) and s or n-s.
func TestSignerKey(t *testing.T) {
	key, _, _ := ParseWIF(testWIF)
	var want SignerKey
	copy(want[:], key.PubKey().SerializeCompressed())
	tok := mustToken(t, testWIF, TokenOptions{RequestPath: "/backup", Timestamp: testStart})
	msg := SignedMessage("/backup", FormatTimestamp(testStart), "")
	p, _ := ParseToken(tok)
	if p.Uncompressed {
		t.Error("a compressed key's signature reads as uncompressed")
	}
	got, ok := p.VerifySignature(msg)
	if !ok || got != want {
		t.Fatalf("VerifySignature = %x, %v", got, ok)
	}
	// The header flipped to uncompressed, with the key's uncompressed
	// address: a valid token for another address, by the same key.
	sig := mustB64(p.Signature)
	sig[0] -= 4
	uaddr := AddressOf(key.PubKey(), false)
	if want.UncompressedAddress() != uaddr {
		t.Errorf("UncompressedAddress = %s, want %s", want.UncompressedAddress(), uaddr)
	}
	flipped := "sigma:" + uaddr + ":" + p.Timestamp + "|" + base64.StdEncoding.EncodeToString(sig)
	fp, err := ParseToken(flipped)
	if err != nil || !fp.Uncompressed {
		t.Fatalf("flipped: %+v, %v", fp, err)
	}
	if got, ok := fp.VerifySignature(msg); !ok || got != want {
		t.Errorf("flipped: VerifySignature = %x, %v", got, ok)
	}
	// An uncompressed WIF's own token says so.
	up, _ := ParseToken(mustToken(t, testWIFUncompressed, TokenOptions{RequestPath: "/", Timestamp: testStart}))
	if !up.Uncompressed {
		t.Error("an uncompressed key's token does not read as uncompressed")
	}
	if _, err := verifyPath(flipped, "/backup", nil, testStart.Add(time.Second)); err != nil {
		t.Errorf("flipped token does not verify without a server's policy: %v", err)
	}
}
