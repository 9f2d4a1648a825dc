package resource_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"encoding/json"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd-dev/authd/resource"
)

func TestParseJWKS(t *testing.T) {
	ec := newECKey(t, "ec").jwk()
	rs := newRSAKey("rs").jwk()
	with := func(k map[string]any, kv ...any) map[string]any {
		c := map[string]any{}
		for a, b := range k {
			c[a] = b
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	big8k := new(big.Int).Lsh(big.NewInt(1), 4200)
	offCurve := with(ec, "kid", "off")
	offCurve["y"] = offCurve["x"]
	many := []any{}
	for i := range 40 {
		many = append(many, with(ec, "kid", fmt.Sprint("k", i)))
	}
	for _, tc := range []struct {
		name string
		keys []any
		want string // kids kept, or "error"
	}{
		{"authd's keys", []any{ec, rs}, "ec:ES256 rs:RS256"},
		{"no alg member", []any{with(ec, "alg", nil), with(rs, "alg", nil)}, "ec:ES256 rs:RS256"},
		{"encryption key skipped", []any{ec, with(rs, "use", "enc")}, "ec:ES256"},
		{"key_ops without verify", []any{ec, with(rs, "key_ops", []string{"encrypt"})}, "ec:ES256"},
		{"key_ops with verify", []any{with(ec, "use", nil, "key_ops", []string{"verify"})}, "ec:ES256"},
		{"EC with RS256 alg", []any{with(ec, "alg", "RS256"), rs}, "rs:RS256"},
		{"P-384", []any{with(ec, "crv", "P-384"), rs}, "rs:RS256"},
		{"off the curve", []any{offCurve, rs}, "rs:RS256"},
		{"short x", []any{with(ec, "x", "AAAA"), rs}, "rs:RS256"},
		{"no kid", []any{with(ec, "kid", nil), rs}, "rs:RS256"},
		{"long kid", []any{with(ec, "kid", strings.Repeat("k", 129)), rs}, "rs:RS256"},
		{"RSA 1024", []any{ec, with(rs, "n", b64(small.N.Bytes()))}, "ec:ES256"},
		{"RSA over 4096", []any{ec, with(rs, "n", b64(big8k.Bytes()))}, "ec:ES256"},
		{"RSA even exponent", []any{ec, with(rs, "e", b64([]byte{1, 0, 0}))}, "ec:ES256"},
		{"RSA exponent 1", []any{ec, with(rs, "e", b64([]byte{1}))}, "ec:ES256"},
		{"symmetric key", []any{ec, map[string]any{"kty": "oct", "k": "c2VjcmV0", "kid": "hs"}}, "ec:ES256"},
		{"repeated kid: both dropped", []any{ec, with(rs, "kid", "ec"), newECKey(t, "x").jwk()}, "x:ES256"},
		{"garbage entries", []any{"x", 5, ec}, "ec:ES256"},
		{"at most 32 keys", many, "32"},
		{"nothing usable", []any{with(ec, "use", "enc")}, "error"},
		{"empty", []any{}, "error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, _ := json.Marshal(map[string]any{"keys": tc.keys})
			kids, err := resource.ParseJWKS(doc)
			got := strings.Join(kids, " ")
			switch {
			case tc.want == "error":
				if err == nil {
					t.Fatalf("kept %s", got)
				}
			case tc.want == "32":
				if err != nil || len(kids) != 32 {
					t.Fatalf("kept %d: %v", len(kids), err)
				}
			case err != nil || got != tc.want:
				t.Fatalf("kept %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	if _, err := resource.ParseJWKS([]byte(`{"keys":`)); err == nil {
		t.Error("truncated document accepted")
	}
}

// TestJWKSTooLarge: a key set document over 64 KiB is refused (at most
// 64 KiB + 1 bytes are read), and the keys held before are kept.
func TestJWKSTooLarge(t *testing.T) {
	k1 := newECKey(t, "k1")
	var size atomic.Int64
	size.Store(70 << 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, _ := json.Marshal(map[string]any{"keys": []any{k1.jwk()}, "pad": strings.Repeat("A", int(size.Load()))})
		w.Write(doc)
	}))
	defer srv.Close()
	v := newVerifier(t, resource.Config{Issuer: srv.URL, JWKSURI: srv.URL + "/jwks"})
	if err := v.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("Refresh of a 70 KiB key set: %v", err)
	}
	size.Store(1 << 10)
	if err := v.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh of a 1 KiB key set: %v", err)
	}
	tok := k1.sign(t, claimsAt(srv.URL, srv.URL, time.Now()), nil)
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	size.Store(70 << 10)
	v.Refresh(t.Context())
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("the keys held before were dropped: %v", err)
	}
}

func TestCacheTTL(t *testing.T) {
	v := newVerifier(t, resource.Config{Issuer: "https://auth.example.com", MinCacheTTL: 30 * time.Second, MaxCacheTTL: 2 * time.Hour})
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Cache-Control": {"public, max-age=300"}}, 300 * time.Second},
		{http.Header{"Cache-Control": {"public, max-age=300"}, "Age": {"100"}}, 200 * time.Second},
		{http.Header{"Cache-Control": {"public, max-age=300"}, "Age": {"1000"}}, 30 * time.Second},
		{http.Header{"Cache-Control": {"public", "MAX-AGE=\"600\""}}, 600 * time.Second},
		{http.Header{"Cache-Control": {"max-age=9999999999999"}}, 2 * time.Hour},
		{http.Header{"Cache-Control": {"max-age=-5"}}, resource.DefaultCacheTTL},
		{http.Header{"Cache-Control": {"max-age=300, no-store"}}, 30 * time.Second},
		{http.Header{}, resource.DefaultCacheTTL},
	} {
		if got := v.CacheTTL(tc.h); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}

// TestASN1Signature: the DER made from a JWS signature's R || S is what
// encoding/asn1 makes of the same integers, at the edges too (leading
// zero bytes, the high bit set, one-byte values).
func TestASN1Signature(t *testing.T) {
	pad := func(b []byte) []byte { return append(make([]byte, 32-len(b)), b...) }
	cases := [][2][]byte{
		{pad([]byte{1}), pad([]byte{0x80})},
		{pad([]byte{0x7f, 0xff}), append([]byte{0xff}, make([]byte, 31)...)},
		{pad([]byte{0x00, 0x80, 1}), pad(nil)},
	}
	for range 2000 {
		r, s := make([]byte, 32), make([]byte, 32)
		rand.Read(r)
		rand.Read(s)
		for i := range mrand.IntN(4) {
			r[i] = 0 // leading zero bytes, as one R in 256 has
		}
		cases = append(cases, [2][]byte{r, s})
	}
	for _, c := range cases {
		want, err := asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(c[0]), new(big.Int).SetBytes(c[1])})
		if err != nil {
			t.Fatal(err)
		}
		if got := resource.ASN1Signature(c[0], c[1]); !bytes.Equal(got, want) {
			t.Fatalf("R %x S %x:\n got  %x\n want %x", c[0], c[1], got, want)
		}
	}
}
