package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/resource"
	"github.com/golang-jwt/jwt/v5"
)

// The speed target: Verifier.Verify of an access token whose key is known
// costs one ES256 verification plus at most 10 %. Compare, in one run:
//
//	go test -run '^$' -bench . -count 10 ./resource/ > bench.txt
//	go run golang.org/x/perf/cmd/benchstat@latest bench.txt
//
// BenchmarkVerifyOverECDSA reports the ratio itself, timing Verify and
// the baseline alternately in blocks so that load changes on a shared
// machine affect both alike, by the wall clock ("ratio") and by the
// process's CPU time ("cpu-ratio", which waiting for a CPU does not
// inflate); BenchmarkGolangJWTOverECDSA does the same for golang-jwt.
// BenchmarkVerify and BenchmarkECDSAVerify are the two halves alone.

// What is cached in BenchmarkVerify, as in a running API: the JWK Set,
// parsed once into *ecdsa.PublicKey values by kid (fetched before the
// timer starts; no network I/O in the loop), and the decoded JWS header,
// keyed by its base64url text and kept only for tokens whose signature
// verified. Nothing about the token itself is cached: every iteration
// decodes the signature and the payload, hashes the signing input,
// verifies the ES256 signature and parses and checks every claim.
//
// The baseline calls ecdsa.Verify(pub, digest, r, s) with the digest and
// (r, s) computed before the timer starts. Verify calls
// ecdsa.VerifyASN1 with an ASN.1 signature it builds on the stack, which
// is the same verification without ecdsa.Verify's allocations.

// benchSetup returns a Verifier with its keys fetched, an authd-shaped
// token, and the key that signed it.
func benchSetup(b *testing.B) (*resource.Verifier, string, *ecdsa.PrivateKey) {
	k := newECKey(b, "k1")
	as := newFakeAS(b, k)
	v := newVerifier(b, resource.Config{Issuer: as.iss, Resource: "https://api.example.com"})
	if err := v.Refresh(context.Background()); err != nil {
		b.Fatal(err)
	}
	c := claimsAt(as.iss, "https://api.example.com", time.Now().Add(time.Hour))
	c["iat"] = time.Now().Unix()
	c["jti"] = "AbCdEfGhIjKlMnOpQrStUv.WxYz0123456789abcdefgh"
	tok := k.sign(b, c, nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		b.Fatal(err)
	}
	return v, tok, k.ec
}

// bareInputs returns the digest and (r, s) of tok's signature: what
// ecdsa.Verify needs.
func bareInputs(b *testing.B, tok string) ([]byte, *big.Int, *big.Int) {
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil || len(sig) != 64 {
		b.Fatal("signature")
	}
	d := sha256.Sum256([]byte(tok[:i]))
	return d[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
}

func BenchmarkVerify(b *testing.B) {
	v, tok, _ := benchSetup(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkECDSAVerify is the baseline: the ES256 verification alone, same
// key, same digest, same signature.
func BenchmarkECDSAVerify(b *testing.B) {
	_, tok, key := benchSetup(b)
	digest, r, s := bareInputs(b, tok)
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.Verify(&key.PublicKey, digest, r, s) {
			b.Fatal("bad signature")
		}
	}
}

// BenchmarkGolangJWT is what the same checks cost through
// github.com/golang-jwt/jwt/v5, for comparison: the reason this package
// does not use it.
func BenchmarkGolangJWT(b *testing.B) {
	_, tok, key := benchSetup(b)
	iss := claimsIss(b, tok)
	p := jwt.NewParser(jwt.WithValidMethods([]string{"ES256", "RS256"}), jwt.WithIssuer(iss),
		jwt.WithAudience("https://api.example.com"), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second))
	keyfunc := func(t *jwt.Token) (any, error) { return &key.PublicKey, nil }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(tok, keyfunc); err != nil {
			b.Fatal(err)
		}
	}
}

func claimsIss(b *testing.B, tok string) string {
	c := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, c); err != nil {
		b.Fatal(err)
	}
	return c["iss"].(string)
}

// BenchmarkVerifyOverECDSA times Verify and the bare verification in
// alternating blocks and reports Verify's time over the baseline's: as
// "ratio" by the wall clock, as "cpu-ratio" by the CPU time the process
// used (which waiting for a CPU on a busy machine does not inflate). The
// target is <= 1.10.
func BenchmarkVerifyOverECDSA(b *testing.B) {
	v, tok, key := benchSetup(b)
	ctx := context.Background()
	overECDSA(b, tok, key, func() error {
		_, err := v.Verify(ctx, tok)
		return err
	})
}

// BenchmarkGolangJWTOverECDSA is the same comparison for the same checks
// through github.com/golang-jwt/jwt/v5.
func BenchmarkGolangJWTOverECDSA(b *testing.B) {
	_, tok, key := benchSetup(b)
	p := jwt.NewParser(jwt.WithValidMethods([]string{"ES256", "RS256"}), jwt.WithIssuer(claimsIss(b, tok)),
		jwt.WithAudience("https://api.example.com"), jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(30*time.Second))
	keyfunc := func(t *jwt.Token) (any, error) { return &key.PublicKey, nil }
	overECDSA(b, tok, key, func() error {
		_, err := p.Parse(tok, keyfunc)
		return err
	})
}

// overECDSA runs f and the bare verification of tok's signature in
// alternating blocks and reports f's time over the baseline's.
func overECDSA(b *testing.B, tok string, key *ecdsa.PrivateKey, f func() error) {
	digest, r, s := bareInputs(b, tok)
	const block = 32
	var wallF, wallB, cpuF, cpuB time.Duration
	for i := 0; i < b.N; i += 2 * block {
		c0, t0 := processCPU(), time.Now()
		for range block {
			if !ecdsa.Verify(&key.PublicKey, digest, r, s) {
				b.Fatal("bad signature")
			}
		}
		c1, t1 := processCPU(), time.Now()
		for range block {
			if err := f(); err != nil {
				b.Fatal(err)
			}
		}
		c2, t2 := processCPU(), time.Now()
		wallB += t1.Sub(t0)
		wallF += t2.Sub(t1)
		cpuB += c1 - c0
		cpuF += c2 - c1
	}
	b.ReportMetric(float64(wallF)/float64(wallB), "ratio")
	if cpuB > 0 {
		b.ReportMetric(float64(cpuF)/float64(cpuB), "cpu-ratio")
	}
}
