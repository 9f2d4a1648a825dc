package resource_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/resource"
)

// FuzzVerify: no input panics the Verifier, and none is accepted unless
// it is a token the key signed (the fuzzer only ever mutates one).
func FuzzVerify(f *testing.F) {
	k := newECKey(f, "k1")
	as := newFakeAS(f, k)
	v := newVerifier(f, resource.Config{Issuer: as.iss, MinRefreshInterval: time.Hour})
	if err := v.Refresh(context.Background()); err != nil {
		f.Fatal(err)
	}
	valid := k.sign(f, claimsAt(as.iss, as.iss, time.Now()), nil)
	f.Add(valid)
	f.Add(strings.Replace(valid, ".", "..", 1))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		if err == nil {
			if tok != valid {
				t.Fatalf("accepted a token the key did not sign: %q (%+v)", tok, c)
			}
			return
		}
		if code := errors.CodeOf(err); code != errors.InvalidToken {
			t.Fatalf("code %s for %q", code, tok)
		}
	})
}

// FuzzParseJWKS: no key set document panics the parser, and what it keeps
// stays within its bounds.
func FuzzParseJWKS(f *testing.F) {
	doc, _ := json.Marshal(map[string]any{"keys": []any{newECKey(f, "ec").jwk(), newRSAKey("rs").jwk()}})
	f.Add(string(doc))
	f.Add(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":"","kid":"a"}]}`)
	f.Add(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"a"}]}`)
	f.Fuzz(func(t *testing.T, doc string) {
		kids, err := resource.ParseJWKS([]byte(doc))
		if err == nil && (len(kids) == 0 || len(kids) > 32) {
			t.Fatalf("%d keys", len(kids))
		}
		for _, k := range kids {
			if len(k) > 128+len(":ES256") || !(strings.HasSuffix(k, ":ES256") || strings.HasSuffix(k, ":RS256")) {
				t.Fatalf("kept %q", k)
			}
		}
	})
}
