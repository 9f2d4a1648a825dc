package sigauth

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/btcsuite/btcd/btcec/v2/ecdsa"
)

// Verification cost against its floor, bare public-key recovery, on the
// same input: one sigma token for GET /backup. Compare with
//
//	go test -run '^$' -bench . -count 10 ./sigauth/ > sig.bench
//	benchstat -col .name -filter '.name:/^(RecoverCompact|VerifyMessage|VerifyToken|AuthenticateNoIO)$/' sig.bench
//
// The Redis round trips are measured apart (BenchmarkRedis*), on the test
// Redis server.

type benchInput struct {
	token, target, address, message, signature string
	hash                                       [32]byte
	compact                                    []byte
}

func newBenchInput(b *testing.B, opts TokenOptions) benchInput {
	b.Helper()
	opts.Timestamp = testStart
	if opts.RequestPath == "" {
		opts.RequestPath = "/backup"
	}
	tok := mustToken(b, testWIF, opts)
	pt, err := authtoken.ParseToken(tok)
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput{token: tok, target: opts.RequestPath, address: pt.Address, signature: pt.Signature}
	in.message = authtoken.SignedMessage(opts.RequestPath, pt.Timestamp, authtoken.BodyHash(opts.Body))
	in.hash = authtoken.MessageHash(in.message)
	in.compact = mustB64(pt.Signature)
	return in
}

var (
	sinkErr error
	sinkID  Identity
	sinkRes authtoken.Result
)

// BenchmarkRecoverCompact is the floor: btcec's recovery alone, on the
// signature and digest the other benchmarks verify.
func BenchmarkRecoverCompact(b *testing.B) {
	in := newBenchInput(b, TokenOptions{})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ecdsa.RecoverCompact(in.compact, in.hash[:]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyMessage: address and base64 decoding, digest, recovery,
// hash160 comparison.
func BenchmarkVerifyMessage(b *testing.B) {
	in := newBenchInput(b, TokenOptions{})
	b.ReportAllocs()
	for b.Loop() {
		if sinkErr = VerifyMessage(in.address, in.message, in.signature); sinkErr != nil {
			b.Fatal(sinkErr)
		}
	}
}

// BenchmarkVerifyToken: the whole token, parsed and verified against a
// request target, no I/O.
func BenchmarkVerifyToken(b *testing.B) {
	in := newBenchInput(b, TokenOptions{})
	b.ReportAllocs()
	for b.Loop() {
		if sinkRes, sinkErr = verifyPath(in.token, in.target, nil); sinkErr != nil {
			b.Fatal(sinkErr)
		}
	}
}

// BenchmarkAuthenticateNoIO: what Authenticate does for a request apart
// from its Redis round trips: header, parse, checks, body, signature.
func BenchmarkAuthenticateNoIO(b *testing.B) {
	in := newBenchInput(b, TokenOptions{})
	v := &Verifier{window: DefaultWindow, maxBody: DefaultMaxBody}
	r := httptest.NewRequest("GET", in.target, nil)
	r.Header.Set("X-Auth-Token", in.token)
	b.ReportAllocs()
	for b.Loop() {
		sinkID, sinkErr = authenticateNoIO(v, r, testStart)
		if sinkErr != nil {
			b.Fatal(sinkErr)
		}
	}
}

// authenticateNoIO is Authenticate without the lockout and replay steps.
func authenticateNoIO(v *Verifier, r *http.Request, now time.Time) (Identity, error) {
	raw, err := tokenFrom(r.Header)
	if err != nil {
		return Identity{}, err
	}
	var tok authtoken.ParsedToken
	if err := authtoken.ParseTokenInto(raw, &tok); err != nil {
		return Identity{}, err
	}
	id, _, _, err := v.verifyRequest(r, &tok, now)
	return id, err
}

// BenchmarkOverhead times bare recovery and AuthenticateNoIO alternately
// within each iteration, so that load from other processes falls on both
// alike, and reports the overhead of the whole verification over the bare
// recovery as overhead-% (the target is <= 3).
func BenchmarkOverhead(b *testing.B) {
	in := newBenchInput(b, TokenOptions{})
	v := &Verifier{window: DefaultWindow, maxBody: DefaultMaxBody}
	r := httptest.NewRequest("GET", in.target, nil)
	r.Header.Set("X-Auth-Token", in.token)
	var bare, whole time.Duration
	bareFn := func() {
		t0 := time.Now()
		if _, _, err := ecdsa.RecoverCompact(in.compact, in.hash[:]); err != nil {
			b.Fatal(err)
		}
		bare += time.Since(t0)
	}
	auth := func() {
		t0 := time.Now()
		if sinkID, sinkErr = authenticateNoIO(v, r, testStart); sinkErr != nil {
			b.Fatal(sinkErr)
		}
		whole += time.Since(t0)
	}
	n := 0
	for b.Loop() {
		if n%2 == 0 {
			bareFn()
			auth()
		} else {
			auth()
			bareFn()
		}
		n++
	}
	b.ReportMetric(float64(bare.Nanoseconds())/float64(n), "recover-ns/op")
	b.ReportMetric(float64(whole.Nanoseconds())/float64(n), "authenticate-ns/op")
	b.ReportMetric(100*(float64(whole)/float64(bare)-1), "overhead-%")
}

// BenchmarkVerifyTokenFormats: the other token forms, for reference. The
// bitcoin-auth forms also parse the public key onto the curve (a square
// root); brc77 is a BRC-42 derivation plus an ECDSA verification.
func BenchmarkVerifyTokenFormats(b *testing.B) {
	body := []byte(`c2FsdHNhbHRzYWx0c2FsdGl2aXZpdml2Y2lwaGVydGV4dA==`)
	for _, tc := range []struct {
		name string
		opts TokenOptions
	}{
		{"sigma+body", TokenOptions{Body: body}},
		{"bsm", TokenOptions{Format: FormatBitcoinAuth}},
		{"brc77", TokenOptions{Format: FormatBitcoinAuth, Scheme: SchemeBRC77}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			in := newBenchInput(b, tc.opts)
			b.ReportAllocs()
			for b.Loop() {
				if sinkRes, sinkErr = verifyPath(in.token, in.target, tc.opts.Body); sinkErr != nil {
					b.Fatal(sinkErr)
				}
			}
		})
	}
}

func benchVerifier(b *testing.B) (*Verifier, func()) {
	b.Helper()
	rdb := testenv.Redis(b)
	prefix := testenv.Name("sigauth_bench_") + ":"
	v := NewVerifier(Config{Redis: rdb, KeyPrefix: prefix, Logger: slog.New(slog.DiscardHandler)})
	return v, func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	}
}

// BenchmarkRedis: the round trips Authenticate adds, each alone, on the
// test Redis server: the lockout check (every request), the replay claim
// (POST, PUT, PATCH, DELETE), a failure record and a reset (after
// failures only).
func BenchmarkRedis(b *testing.B) {
	v, cleanup := benchVerifier(b)
	defer cleanup()
	ctx := context.Background()
	keys := v.lockKeys(RemoteIP(httptest.NewRequest("GET", "/", nil)), testAddress)
	now := time.Now()
	b.Run("lockout-check", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.checkLock(ctx, keys, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("replay-claim", func(b *testing.B) {
		signer := signerOf(b, testWIF)
		i := 0
		for b.Loop() {
			i++
			if _, err := v.claimOnce(ctx, signer, "/backup|"+strconv.Itoa(i)+"|", now, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failure-record", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.recordFailure(ctx, keys, testAddress, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reset", func(b *testing.B) {
		for b.Loop() {
			if err := v.resetLock(ctx, keys, testAddress); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkAuthenticateRedis: whole requests on the test Redis server: a
// GET (verification + lockout check) and a PUT (+ replay claim; a fresh
// token per request, signed before the timer starts).
func BenchmarkAuthenticateRedis(b *testing.B) {
	v, cleanup := benchVerifier(b)
	defer cleanup()
	b.Run("GET", func(b *testing.B) {
		tok := mustToken(b, testWIF, TokenOptions{RequestPath: "/backup"})
		r := httptest.NewRequest("GET", "/backup", nil)
		r.Header.Set("X-Auth-Token", tok)
		for b.Loop() {
			if _, err := v.Authenticate(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("PUT", func(b *testing.B) {
		const n = 512
		reqs := make([]*http.Request, n)
		for i := range reqs {
			path := "/backup/" + strconv.Itoa(i)
			reqs[i] = httptest.NewRequest("PUT", path, nil)
			reqs[i].Header.Set("X-Auth-Token", mustToken(b, testWIF, TokenOptions{RequestPath: path}))
		}
		i := 0
		for b.Loop() {
			if i == n { // out of fresh tokens: reuse after forgetting them
				b.StopTimer()
				cleanup()
				i = 0
				b.StartTimer()
			}
			if _, err := v.Authenticate(reqs[i]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
