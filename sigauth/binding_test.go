package sigauth

import (
	"encoding/base64"
	"encoding/hex"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
)

// TestRequireBinding: with Config.RequireBinding, a token that signs the
// path alone is refused on unsafe methods and by AuthenticateOnce, with a
// description saying what to sign; bound tokens pass, and so do unbound
// tokens on safe methods. Without it, both forms pass everywhere.
func TestRequireBinding(t *testing.T) {
	body := []byte("b")
	for _, require := range []bool{false, true} {
		e := newTestEnv(t, withIssuer, func(c *Config) { c.RequireBinding = require })
		for _, m := range []string{"POST", "PUT", "PATCH", "DELETE", "GET", "HEAD"} {
			for _, f := range []TokenOptions{{}, {Format: FormatBitcoinAuth}, {Format: FormatBitcoinAuth, Scheme: SchemeBRC77}} {
				unbound, bound := f, f
				unbound.RequestPath, unbound.Body = "/backup", body
				bound.Method, bound.URL, bound.Body = m, testIssuer+"/backup", body
				_, err := e.auth(m, "/backup", e.token(testWIF, unbound), body)
				if require && unsafeMethod(m) {
					ee := wantCode(t, err, errors.MalformedAuthToken)
					if ee.Description != descBindingRequired || !strings.Contains(ee.Description, "DELETE https://auth.example.com/backup") {
						t.Errorf("description %q", ee.Description)
					}
				} else if err != nil {
					t.Errorf("require=%v %s %s/%s unbound: %v", require, m, f.Format, f.Scheme, err)
				}
				if _, err := e.auth(m, "/backup", e.token(testWIF, bound), body); err != nil {
					t.Errorf("require=%v %s %s/%s bound: %v", require, m, f.Format, f.Scheme, err)
				}
				e.advance(time.Millisecond) // a new timestamp, a new message
			}
		}
		// The sign-in of a signed GET /authorize.
		target := "/authorize?client_id=x&state=s"
		once := func(opts TokenOptions) error {
			r := httptest.NewRequest("GET", target, nil)
			r.Header.Set("X-Auth-Token", e.token(testWIF, opts))
			_, err := e.v.AuthenticateOnce(r)
			return err
		}
		err := once(TokenOptions{RequestPath: target})
		if require {
			wantCode(t, err, errors.MalformedAuthToken)
		} else if err != nil {
			t.Errorf("unbound sign-in: %v", err)
		}
		if err := once(TokenOptions{Method: "GET", URL: testIssuer + target}); err != nil {
			t.Errorf("require=%v bound sign-in: %v", require, err)
		}
	}
	// A bound token for another server or method never passes.
	e := newTestEnv(t, withIssuer, func(c *Config) { c.RequireBinding = true })
	for _, opts := range []TokenOptions{
		{Method: "DELETE", URL: "https://other.example.com/backup"},
		{Method: "GET", URL: testIssuer + "/backup"},
		{Method: "DELETE", URL: testIssuer + "/backup/"},
	} {
		_, err := e.auth("DELETE", "/backup", e.token(testWIF, opts), nil)
		wantCode(t, err, errors.InvalidSignature)
	}
	// No issuer configured: bound tokens are refused, as a bad signature.
	e = newTestEnv(t)
	_, err := e.auth("DELETE", "/backup", e.token(testWIF, TokenOptions{Method: "DELETE", URL: testIssuer + "/backup"}), nil)
	wantCode(t, err, errors.InvalidSignature)
}

// flipHeader returns a sigma token with its BSM header's compression flag
// flipped and the address changed to match: the same signature, valid for
// the key's other address. No key is needed to make it.
func flipHeader(t *testing.T, tok, wif string) string {
	t.Helper()
	p, err := authtoken.ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	sig := mustB64(p.Signature)
	priv, _, err := authtoken.ParseWIF(wif)
	if err != nil {
		t.Fatal(err)
	}
	key := priv.PubKey()
	var addr string
	if sig[0] >= 31 {
		sig[0] -= 4
		addr = authtoken.AddressOf(key, false)
	} else {
		sig[0] += 4
		addr = authtoken.AddressOf(key, true)
	}
	prefix := "sigma:"
	if p.Bound {
		prefix = "sigma-bound:"
	}
	return prefix + addr + ":" + p.Timestamp + "|" + base64.StdEncoding.EncodeToString(sig)
}

// TestHeaderFlip: flipping a used signature's header between compressed
// and uncompressed (and the address to match) makes a token that verifies
// for the key's other address. It must not act again: not as a second
// sign-in, not as a second PUT, in either direction.
func TestHeaderFlip(t *testing.T) {
	one, _, _ := authtoken.ParseWIF(testWIFUncompressed)
	legacy := authtoken.AddressOf(one.PubKey(), false) // an uncompressed key's address

	t.Run("compressed key, flipped to uncompressed", func(t *testing.T) {
		e := newTestEnv(t)
		tok := e.token(testWIF, TokenOptions{RequestPath: "/backup", Body: []byte("b")})
		if _, err := e.auth("PUT", "/backup", tok, []byte("b")); err != nil {
			t.Fatal(err)
		}
		flipped := flipHeader(t, tok, testWIF)
		if _, err := verifyPath(flipped, "/backup", []byte("b")); err != nil {
			t.Fatalf("the flipped token is not a valid signature: %v", err)
		}
		for _, m := range []string{"PUT", "GET"} {
			_, err := e.auth(m, "/backup", flipped, []byte("b"))
			if ee := wantCode(t, err, errors.MalformedAuthToken); ee.Description != descUncompressed {
				t.Errorf("%s: description %q", m, ee.Description)
			}
		}
	})
	t.Run("uncompressed key configured, flipped to compressed", func(t *testing.T) {
		e := newTestEnv(t, func(c *Config) { c.UncompressedAddresses = []string{legacy} })
		tok := e.token(testWIFUncompressed, TokenOptions{RequestPath: "/backup", Body: []byte("b")})
		if id, err := e.auth("PUT", "/backup", tok, []byte("b")); err != nil || id.Address != legacy {
			t.Fatalf("legacy key: %+v, %v", id, err)
		}
		flipped := flipHeader(t, tok, testWIFUncompressed)
		for _, m := range []string{"PUT", "GET"} {
			_, err := e.auth(m, "/backup", flipped, []byte("b"))
			wantCode(t, err, errors.InvalidSignature)
		}
		// Nor may that key sign fresh tokens as its compressed address,
		// in either syntax: one key, one identity.
		for _, f := range []TokenOptions{{Format: FormatBitcoinAuth}, {Format: FormatBitcoinAuth, Scheme: SchemeBRC77}} {
			f.RequestPath = "/backup"
			_, err := e.auth("GET", "/backup", e.token(testWIFUncompressed, f), nil)
			wantCode(t, err, errors.InvalidSignature)
		}
		// Other keys are not affected by the list.
		if _, err := e.auth("GET", "/backup", e.token(testWIF, TokenOptions{RequestPath: "/backup"}), nil); err != nil {
			t.Errorf("a compressed key beside the list: %v", err)
		}
	})
	t.Run("one replay key for every dress of a signature", func(t *testing.T) {
		e := newTestEnv(t)
		tok := e.token(testWIF, TokenOptions{RequestPath: "/backup"})
		p, _ := authtoken.ParseToken(tok)
		msg := authtoken.SignedMessage("/backup", p.Timestamp, "")
		priv, _, _ := authtoken.ParseWIF(testWIF)
		pubHex := hex.EncodeToString(priv.PubKey().SerializeCompressed())
		twins := map[string]string{
			"original":             tok,
			"high-S twin":          highSTwin(t, tok),
			"header flipped":       flipHeader(t, tok, testWIF),
			"flipped high-S twin":  highSTwin(t, flipHeader(t, tok, testWIF)),
			"as bitcoin-auth bsm":  pubHex + "|bsm|" + p.Timestamp + "|/backup|" + p.Signature,
			"high-S bitcoin-auth ": pubHex + "|bsm|" + p.Timestamp + "|/backup|" + highSTwin(t, tok)[strings.LastIndexByte(tok, '|')+1:],
		}
		want := e.v.replayKey(signerOf(t, testWIF), msg)
		for name, tw := range twins {
			tp, err := authtoken.ParseToken(tw)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			signer, ok := tp.VerifySignature(msg)
			if !ok {
				t.Fatalf("%s does not verify", name)
			}
			if got := e.v.replayKey(signer, msg); got != want {
				t.Errorf("%s: replay key %s, want %s", name, got, want)
			}
		}
		// And through Authenticate: the twins that pass the form rules
		// are replays of the original.
		if _, err := e.auth("DELETE", "/backup", tok, nil); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"high-S twin", "as bitcoin-auth bsm", "high-S bitcoin-auth "} {
			_, err := e.auth("DELETE", "/backup", twins[name], nil)
			if ee := wantCode(t, err, errors.InvalidTimestamp); ee.Description != descReplay {
				t.Errorf("%s: %q", name, ee.Description)
			}
		}
	})
}
