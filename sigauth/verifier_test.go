package sigauth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"github.com/authd-dev/authd/internal/golden"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	// Tests stop Redis on purpose; go-redis would log every failed dial.
	redis.SetLogger(quietLogger{})
	os.Exit(m.Run())
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// Test keys. Never use them for anything else.
const (
	// Bitcoin Core's message_sign test key (util_tests.cpp), compressed.
	testWIF     = "L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7"
	testAddress = "15CRxFdyRpGZLW9w8HnHvVduizdL5jKNbs"
	// Private key 1, uncompressed (bitcoinjs-message fixtures).
	testWIFUncompressed = "5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf"
	// The @bsv/sdk BSM test key.
	otherWIF = "L211enC224G1kV8pyyq7bjVd9SxZebnRYEzzM3i7ZHCc1c5E7dQu"
)

var testStart = time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)

// testIssuer is the issuer of the Verifiers withIssuer configures.
const testIssuer = "https://auth.example.com"

func withIssuer(c *Config) { c.Issuer = testIssuer }

// testEnv is a Verifier on miniredis with a clock the test moves.
type testEnv struct {
	t   *testing.T
	mr  *miniredis.Miniredis
	rdb *redis.Client
	v   *Verifier
	now time.Time
	ip  netip.Addr
	log *bytes.Buffer
}

func newTestEnv(t *testing.T, opts ...func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{t: t, mr: miniredis.RunT(t), now: testStart, ip: netip.MustParseAddr("192.0.2.1"), log: new(bytes.Buffer)}
	e.rdb = redis.NewClient(&redis.Options{Addr: e.mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { e.rdb.Close() })
	e.mr.SetTime(e.now)
	cfg := Config{
		Redis:    e.rdb,
		Now:      func() time.Time { return e.now },
		ClientIP: func(*http.Request) netip.Addr { return e.ip },
		Logger:   slog.New(slog.NewTextHandler(e.log, nil)),
	}
	for _, o := range opts {
		o(&cfg)
	}
	e.v = NewVerifier(cfg)
	return e
}

// advance moves the verifier's clock and miniredis's together.
func (e *testEnv) advance(d time.Duration) {
	e.now = e.now.Add(d)
	e.mr.SetTime(e.now)
	e.mr.FastForward(d)
}

func (e *testEnv) token(wif string, opts TokenOptions) string {
	e.t.Helper()
	if opts.Timestamp.IsZero() {
		opts.Timestamp = e.now
	}
	tok, err := Token(wif, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// request builds a request with the token in X-Auth-Token.
func request(method, target, token string, body []byte) *http.Request {
	var r *http.Request
	if body == nil {
		r = httptest.NewRequest(method, target, nil)
	} else {
		r = httptest.NewRequest(method, target, bytes.NewReader(body))
	}
	if token != "" {
		r.Header.Set("X-Auth-Token", token)
	}
	return r
}

func (e *testEnv) auth(method, target, token string, body []byte) (Identity, error) {
	return e.v.Authenticate(request(method, target, token, body))
}

func wantCode(t *testing.T, err error, code errors.Code) *errors.Error {
	t.Helper()
	if got := errors.CodeOf(err); got != code {
		t.Fatalf("code %q (%v), want %q", got, err, code)
	}
	var e *errors.Error
	if code != "" && !errors.As(err, &e) {
		t.Fatalf("%T is not an *errors.Error", err)
	}
	return e
}

func TestAuthenticateFormats(t *testing.T) {
	key, _, _ := authtoken.ParseWIF(testWIF)
	pubHex := hexString(key.PubKey().SerializeCompressed())
	one, _, _ := authtoken.ParseWIF(testWIFUncompressed)
	body := []byte(`{"backup":"c2FsdA=="}`)
	tests := []struct {
		name   string
		wif    string
		opts   TokenOptions
		method string
		body   []byte
		header string
		want   Identity
		cfg    func(*Config)
	}{
		{"sigma GET", testWIF, TokenOptions{RequestPath: "/backup"}, "GET", nil, "X-Auth-Token",
			Identity{Address: testAddress, Scheme: SchemeSigma}, nil},
		{"sigma PUT body", testWIF, TokenOptions{RequestPath: "/backup", Body: body}, "PUT", body, "X-Auth-Token",
			Identity{Address: testAddress, Scheme: SchemeSigma}, nil},
		{"sigma uncompressed key, configured", testWIFUncompressed, TokenOptions{RequestPath: "/backup"}, "GET", nil, "X-Auth-Token",
			Identity{Address: authtoken.AddressOf(one.PubKey(), false), Scheme: SchemeSigma},
			func(c *Config) { c.UncompressedAddresses = []string{authtoken.AddressOf(one.PubKey(), false)} }},
		{"sigma bound", testWIF, TokenOptions{Method: "PUT", URL: testIssuer + "/backup?v=1", Body: body}, "PUT", body, "X-Auth-Token",
			Identity{Address: testAddress, Scheme: SchemeSigma}, withIssuer},
		{"bitcoin-auth bsm bound", testWIF, TokenOptions{Format: FormatBitcoinAuth, Method: "DELETE", URL: testIssuer + "/backup"}, "DELETE", nil, "X-Auth-Token",
			Identity{Address: testAddress, PubKey: pubHex, Scheme: SchemeBSM}, withIssuer},
		{"bitcoin-auth brc77 bound", testWIF, TokenOptions{Format: FormatBitcoinAuth, Scheme: SchemeBRC77, Method: "GET", URL: testIssuer + "/authorize?client_id=x"}, "GET", nil, "X-Auth-Token",
			Identity{Address: testAddress, PubKey: pubHex, Scheme: SchemeBRC77}, withIssuer},
		{"sigma query", testWIF, TokenOptions{RequestPath: "/authorize?client_id=a%20b&scope=profile+backup"}, "GET", nil, "X-Auth-Token",
			Identity{Address: testAddress, Scheme: SchemeSigma}, nil},
		{"bitcoin-auth bsm", testWIF, TokenOptions{Format: FormatBitcoinAuth, RequestPath: "/backup"}, "GET", nil, "X-Auth-Token",
			Identity{Address: testAddress, PubKey: pubHex, Scheme: SchemeBSM}, nil},
		{"bitcoin-auth bsm body", testWIF, TokenOptions{Format: FormatBitcoinAuth, Scheme: SchemeBSM, RequestPath: "/backup", Body: body}, "POST", body, "X-Auth-Token",
			Identity{Address: testAddress, PubKey: pubHex, Scheme: SchemeBSM}, nil},
		{"bitcoin-auth brc77", testWIF, TokenOptions{Format: FormatBitcoinAuth, Scheme: SchemeBRC77, RequestPath: "/backup"}, "GET", nil, "X-Auth-Token",
			Identity{Address: testAddress, PubKey: pubHex, Scheme: SchemeBRC77}, nil},
		{"bitcoin-auth brc77 body", testWIF, TokenOptions{Format: FormatBitcoinAuth, Scheme: SchemeBRC77, RequestPath: "/backup", Body: body}, "DELETE", body, "X-Auth-Token",
			Identity{Address: testAddress, PubKey: pubHex, Scheme: SchemeBRC77}, nil},
		{"bitcoin-auth uncompressed WIF names the compressed key", testWIFUncompressed, TokenOptions{Format: FormatBitcoinAuth, RequestPath: "/backup"}, "GET", nil, "X-Auth-Token",
			Identity{Address: authtoken.AddressOf(one.PubKey(), true), PubKey: hexString(one.PubKey().SerializeCompressed()), Scheme: SchemeBSM}, nil},
		{"Authorization: Bitcoin-Auth", testWIF, TokenOptions{RequestPath: "/backup"}, "GET", nil, "Authorization",
			Identity{Address: testAddress, Scheme: SchemeSigma}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*Config)
			if tt.cfg != nil {
				opts = append(opts, tt.cfg)
			}
			e := newTestEnv(t, opts...)
			tok := e.token(tt.wif, tt.opts)
			target := tt.opts.RequestPath
			if tt.opts.URL != "" {
				target = strings.TrimPrefix(tt.opts.URL, testIssuer)
			}
			r := request(tt.method, target, "", tt.body)
			if tt.header == "Authorization" {
				r.Header.Set("Authorization", "bitcoin-AUTH "+tok)
			} else {
				r.Header.Set(tt.header, tok)
			}
			id, err := e.v.Authenticate(r)
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if id != tt.want {
				t.Errorf("identity %+v, want %+v", id, tt.want)
			}
			// The body is there for the handler, byte for byte.
			got, _ := io.ReadAll(r.Body)
			if !bytes.Equal(got, tt.body) {
				t.Errorf("handler body %q, want %q", got, tt.body)
			}
			// The same token on another path, or with another body, fails.
			e2 := newTestEnv(t, opts...)
			if _, err := e2.auth(tt.method, target+"/x", tok, tt.body); errors.CodeOf(err) != errors.InvalidSignature {
				t.Errorf("other path: %v", err)
			}
			if _, err := e2.auth(tt.method, target, tok, append(append([]byte(nil), tt.body...), ' ')); errors.CodeOf(err) != errors.InvalidSignature {
				t.Errorf("other body: %v", err)
			}
			if tt.opts.URL != "" {
				if _, err := e2.auth("POST", target, tok, tt.body); errors.CodeOf(err) != errors.InvalidSignature {
					t.Errorf("bound token with another method: %v", err)
				}
			}
		})
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}

// TestWindowEdges: exactly ±window is accepted, one millisecond beyond is
// not, in both directions, for every format.
func TestWindowEdges(t *testing.T) {
	formats := []TokenOptions{
		{Format: FormatSigma},
		{Format: FormatBitcoinAuth, Scheme: SchemeBSM},
		{Format: FormatBitcoinAuth, Scheme: SchemeBRC77},
	}
	for _, window := range []time.Duration{0, 90 * time.Second} {
		effective := window
		if effective == 0 {
			effective = DefaultWindow
		}
		for _, f := range formats {
			for _, tc := range []struct {
				skew time.Duration
				ok   bool
			}{
				{0, true},
				{effective, true},
				{-effective, true},
				{effective + time.Millisecond, false},
				{-effective - time.Millisecond, false},
				{24 * time.Hour, false},
			} {
				e := newTestEnv(t, func(c *Config) { c.Window = window })
				f.RequestPath = "/backup"
				f.Timestamp = e.now.Add(tc.skew)
				tok := e.token(testWIF, f)
				_, err := e.auth("GET", "/backup", tok, nil)
				if tc.ok && err != nil {
					t.Errorf("window %v, %s/%s, skew %v: %v", effective, f.Format, f.Scheme, tc.skew, err)
				}
				if !tc.ok {
					if ee := wantCode(t, err, errors.InvalidTimestamp); !strings.HasPrefix(ee.Description, "Auth token timestamp is outside the accepted window") {
						t.Errorf("description %q", ee.Description)
					}
				}
			}
		}
	}
}

// TestReplay: a signed POST, PUT, PATCH or DELETE is accepted once; a
// repeated GET is accepted; the guard keys on the message, so the high-S
// twin of a used signature is refused too.
func TestReplay(t *testing.T) {
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		t.Run(method, func(t *testing.T) {
			e := newTestEnv(t)
			body := []byte("payload")
			tok := e.token(testWIF, TokenOptions{RequestPath: "/backup", Body: body})
			if _, err := e.auth(method, "/backup", tok, body); err != nil {
				t.Fatal(err)
			}
			e.advance(time.Second)
			ee := wantCode(t, func() error { _, err := e.auth(method, "/backup", tok, body); return err }(), errors.InvalidTimestamp)
			if ee.Description != descReplay {
				t.Errorf("description %q", ee.Description)
			}
			// The high-S twin: other signature bytes, same message.
			twin := highSTwin(t, tok)
			if twin == tok {
				t.Fatal("twin equals token")
			}
			if _, err := authtoken.VerifyToken(twin, authtoken.Request{Method: "GET", Target: "/backup"}, body, e.now, 0); err != nil {
				t.Fatalf("twin does not verify: %v", err)
			}
			_, err := e.auth(method, "/backup", twin, body)
			wantCode(t, err, errors.InvalidTimestamp)
		})
	}
	t.Run("GET repeats", func(t *testing.T) {
		e := newTestEnv(t)
		tok := e.token(testWIF, TokenOptions{RequestPath: "/backup"})
		for i := 0; i < 3; i++ {
			if _, err := e.auth("GET", "/backup", tok, nil); err != nil {
				t.Fatalf("GET %d: %v", i, err)
			}
			if _, err := e.auth("HEAD", "/backup", tok, nil); err != nil {
				t.Fatalf("HEAD %d: %v", i, err)
			}
		}
	})
	// The method is not signed, so a token for GET /backup is the same
	// message as DELETE /backup with an empty body: once seen on a GET,
	// it must not be spent on an unsafe method.
	t.Run("GET token replayed as DELETE", func(t *testing.T) {
		e := newTestEnv(t)
		tok := e.token(testWIF, TokenOptions{RequestPath: "/backup"})
		if _, err := e.auth("GET", "/backup", tok, nil); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"DELETE", "POST", "PUT", "PATCH"} {
			ee := wantCode(t, func() error { _, err := e.auth(m, "/backup", tok, nil); return err }(), errors.InvalidTimestamp)
			if ee.Description != descReplay {
				t.Errorf("%s: description %q", m, ee.Description)
			}
		}
		if _, err := e.auth("GET", "/backup", tok, nil); err != nil {
			t.Fatalf("GET after the refused DELETE: %v", err)
		}
	})
	t.Run("AuthenticateOnce refuses a repeated GET", func(t *testing.T) {
		e := newTestEnv(t)
		tok := e.token(testWIF, TokenOptions{RequestPath: "/authorize?client_id=x"})
		r := func() *http.Request {
			req := httptest.NewRequest("GET", "/authorize?client_id=x", nil)
			req.Header.Set("X-Auth-Token", tok)
			req.RemoteAddr = "192.0.2.1:1234"
			return req
		}
		if _, err := e.v.AuthenticateOnce(r()); err != nil {
			t.Fatal(err)
		}
		_, err := e.v.AuthenticateOnce(r())
		wantCode(t, err, errors.InvalidTimestamp)
	})
	t.Run("DELETE first, then GET", func(t *testing.T) {
		e := newTestEnv(t)
		tok := e.token(testWIF, TokenOptions{RequestPath: "/backup"})
		if _, err := e.auth("DELETE", "/backup", tok, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.auth("GET", "/backup", tok, nil); err != nil {
			t.Fatalf("GET of a message first used by DELETE: %v", err)
		}
	})
	t.Run("ttl", func(t *testing.T) {
		for _, skew := range []time.Duration{0, -4 * time.Minute, 4 * time.Minute} {
			e := newTestEnv(t)
			ts := e.now.Add(skew)
			tok := e.token(testWIF, TokenOptions{RequestPath: "/backup", Timestamp: ts})
			if _, err := e.auth("POST", "/backup", tok, nil); err != nil {
				t.Fatal(err)
			}
			key := e.v.replayKey(signerOf(t, testWIF), authtoken.SignedMessage("/backup", authtoken.FormatTimestamp(ts), ""))
			if !e.mr.Exists(key) {
				t.Fatalf("no replay key %s; keys %v", key, e.mr.Keys())
			}
			// TTL = timestamp + window − now + 1 s.
			if got, want := e.mr.TTL(key), ts.Add(DefaultWindow).Sub(e.now)+time.Second; got != want {
				t.Errorf("skew %v: TTL %v, want %v", skew, got, want)
			}
		}
	})
	t.Run("different body is another message", func(t *testing.T) {
		e := newTestEnv(t)
		a := e.token(testWIF, TokenOptions{RequestPath: "/backup", Body: []byte("a")})
		b := e.token(testWIF, TokenOptions{RequestPath: "/backup", Body: []byte("b")})
		if _, err := e.auth("PUT", "/backup", a, []byte("a")); err != nil {
			t.Fatal(err)
		}
		if _, err := e.auth("PUT", "/backup", b, []byte("b")); err != nil {
			t.Fatal(err)
		}
	})
}

// highSTwin returns a sigma token with the other valid form of its
// signature (s := n − s, recovery id parity flipped).
func highSTwin(t *testing.T, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '|')
	b := mustB64(tok[i+1:])
	s := new(big.Int).SetBytes(b[33:])
	s.Sub(btcec.S256().N, s)
	s.FillBytes(b[33:])
	b[0] = 27 + ((b[0] - 27) ^ 1) // flip the recovery id's parity
	return tok[:i+1] + base64.StdEncoding.EncodeToString(b)
}

// TestLockoutEscalation: 5 failures lock for 30 s, the next 5 within 24 h
// for 2 min, the next 5 for 10 min (and 10 min thereafter); retry_after
// counts down; a success or 24 h without failures resets the level.
func TestLockoutEscalation(t *testing.T) {
	e := newTestEnv(t)
	bad := func() error {
		// A well-formed token over another path: invalid_signature.
		tok := e.token(testWIF, TokenOptions{RequestPath: "/elsewhere"})
		_, err := e.auth("GET", "/backup", tok, nil)
		return err
	}
	good := func() error {
		_, err := e.auth("GET", "/backup", e.token(testWIF, TokenOptions{RequestPath: "/backup"}), nil)
		return err
	}
	fails := func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			wantCode(t, bad(), errors.InvalidSignature)
			e.advance(time.Second)
		}
	}
	locked := func(retry time.Duration) {
		t.Helper()
		err := good()
		ee := wantCode(t, err, errors.RateLimitExceeded)
		if ee.RetryAfter != retry {
			t.Fatalf("RetryAfter %v, want %v", ee.RetryAfter, retry)
		}
		if ee.Description != descLockout {
			t.Fatalf("description %q", ee.Description)
		}
	}

	fails(4)
	if err := good(); err != nil {
		t.Fatalf("4 failures locked: %v", err)
	}
	// The success reset the count: 4 more do not lock either.
	fails(4)
	wantCode(t, bad(), errors.InvalidSignature) // 5th: locks for 30 s
	locked(30 * time.Second)
	e.advance(10 * time.Second)
	locked(20 * time.Second)
	// While locked, bad tokens are answered 429 too, and not counted.
	wantCode(t, bad(), errors.RateLimitExceeded)
	e.advance(20 * time.Second)
	fails(4)
	wantCode(t, bad(), errors.InvalidSignature)
	locked(2 * time.Minute)
	e.advance(2 * time.Minute)
	fails(4)
	wantCode(t, bad(), errors.InvalidSignature)
	locked(10 * time.Minute)
	e.advance(10 * time.Minute)
	fails(4)
	wantCode(t, bad(), errors.InvalidSignature)
	locked(10 * time.Minute) // the last step repeats
	if !strings.Contains(e.log.String(), "lockout") {
		t.Errorf("no lockout log: %s", e.log)
	}

	// 24 hours without failures: back to the first step.
	e.advance(10*time.Minute + 24*time.Hour + time.Millisecond)
	fails(4)
	wantCode(t, bad(), errors.InvalidSignature)
	locked(30 * time.Second)

	// A success after the lock resets the level: next 5 → 30 s again.
	e.advance(30 * time.Second)
	if err := good(); err != nil {
		t.Fatal(err)
	}
	fails(4)
	wantCode(t, bad(), errors.InvalidSignature)
	locked(30 * time.Second)
}

// TestLockoutCountsEveryRejectedToken: malformed, bad key, bad time and bad
// signature all count; a missing token does not.
func TestLockoutCountsEveryRejectedToken(t *testing.T) {
	e := newTestEnv(t)
	good := e.token(testWIF, TokenOptions{RequestPath: "/backup"})
	rejects := []struct {
		tok  string
		code errors.Code
	}{
		{"sigma:nonsense", errors.MalformedAuthToken},
		{"02" + strings.Repeat("ff", 32) + "|bsm|" + authtoken.FormatTimestamp(e.now) + "|/backup|" + strings.Repeat("A", 86) + "==", errors.MalformedAuthToken},
		{e.token(testWIF, TokenOptions{RequestPath: "/backup", Timestamp: e.now.Add(-time.Hour)}), errors.InvalidTimestamp},
		{strings.Replace(e.token(testWIF, TokenOptions{Format: FormatBitcoinAuth, RequestPath: "/backup"}), "|", "x|", 1), errors.InvalidPublicKey},
		{e.token(otherWIF, TokenOptions{RequestPath: "/other"}), errors.InvalidSignature},
	}
	for i := 0; i < 3; i++ {
		if _, err := e.auth("GET", "/backup", "", nil); errors.CodeOf(err) != errors.MissingAuthToken {
			t.Fatalf("missing: %v", err)
		}
	}
	for _, rj := range rejects {
		_, err := e.auth("GET", "/backup", rj.tok, nil)
		wantCode(t, err, rj.code)
	}
	_, err := e.auth("GET", "/backup", good, nil)
	wantCode(t, err, errors.RateLimitExceeded)
}

// TestLockoutSubjects: failures count per client IP and per (IP, address),
// never per address alone: an attacker cannot lock a victim out from
// elsewhere, and cannot keep guessing at one address by mixing in
// successes of his own.
func TestLockoutSubjects(t *testing.T) {
	e := newTestEnv(t)
	victim := func() error {
		_, err := e.auth("GET", "/backup", e.token(testWIF, TokenOptions{RequestPath: "/backup"}), nil)
		return err
	}
	forged := func() error { // a token naming the victim's address, badly signed
		tok := e.token(testWIF, TokenOptions{RequestPath: "/elsewhere"})
		_, err := e.auth("GET", "/backup", tok, nil)
		return err
	}
	own := func() error {
		_, err := e.auth("GET", "/backup", e.token(otherWIF, TokenOptions{RequestPath: "/backup"}), nil)
		return err
	}

	attacker, victimIP := netip.MustParseAddr("198.51.100.7"), netip.MustParseAddr("203.0.113.9")
	e.ip = attacker
	// Successes with the attacker's own key between the forgeries do not
	// wipe the IP's count of failures at another address: the fifth
	// forgery locks the IP, whatever was mixed in.
	for i := 0; i < 4; i++ {
		wantCode(t, forged(), errors.InvalidSignature)
		if err := own(); err != nil {
			t.Fatalf("own %d: %v", i, err)
		}
	}
	wantCode(t, forged(), errors.InvalidSignature)
	wantCode(t, forged(), errors.RateLimitExceeded)
	wantCode(t, own(), errors.RateLimitExceeded)
	// The victim, from its own IP, is not affected at all.
	e.ip = victimIP
	if err := victim(); err != nil {
		t.Fatalf("victim locked out by another IP: %v", err)
	}

	// IPv6: a /64 is one client.
	e.ip = netip.MustParseAddr("2001:db8:1:2::1")
	for i := 0; i < 5; i++ {
		e.ip = netip.MustParseAddr("2001:db8:1:2::" + string(rune('a'+i)))
		wantCode(t, forged(), errors.InvalidSignature)
	}
	e.ip = netip.MustParseAddr("2001:db8:1:2:ffff::1")
	wantCode(t, victim(), errors.RateLimitExceeded)
	e.ip = netip.MustParseAddr("2001:db8:1:3::1")
	if err := victim(); err != nil {
		t.Fatalf("neighbouring /64 locked: %v", err)
	}
}

func TestVerifyLogin(t *testing.T) {
	e := newTestEnv(t)
	msg := "authd.example.com wants you to sign in\nnonce: 3f1c\n"
	sig, err := SignMessage(testWIF, msg)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/authorize/login", nil)
	id, err := e.v.VerifyLogin(r, testAddress, msg, sig)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Identity{Address: testAddress, Scheme: SchemeBSM}); id != want {
		t.Errorf("identity %+v, want %+v", id, want)
	}
	// Replays are the message's business (its nonce): accepted here.
	if _, err := e.v.VerifyLogin(r, testAddress, msg, sig); err != nil {
		t.Fatal(err)
	}
	_, err = e.v.VerifyLogin(r, "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", msg, sig)
	wantCode(t, err, errors.InvalidSignature)
	_, err = e.v.VerifyLogin(r, testAddress, msg+" ", sig)
	wantCode(t, err, errors.InvalidSignature)
	_, err = e.v.VerifyLogin(r, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", msg, sig)
	wantCode(t, err, errors.MalformedAuthToken)
	_, err = e.v.VerifyLogin(r, testAddress, msg, sig[:87])
	wantCode(t, err, errors.MalformedAuthToken)
	_, err = e.v.VerifyLogin(r, testAddress, msg+"  ", sig)
	wantCode(t, err, errors.InvalidSignature)
	_, err = e.v.VerifyLogin(r, testAddress, msg, sig)
	ee := wantCode(t, err, errors.RateLimitExceeded)
	if ee.RetryAfter != 30*time.Second {
		t.Errorf("RetryAfter %v", ee.RetryAfter)
	}
	e.advance(30 * time.Second)
	if _, err := e.v.VerifyLogin(r, testAddress, msg, sig); err != nil {
		t.Fatalf("after lock: %v", err)
	}
	// The success forgot its own (IP, address) pair; the IP's count stays,
	// since its failures also named another address, and so does the
	// other address's pair.
	if got, want := e.mr.Keys(), []string{"sigauth:lock:{192.0.2.1}", "sigauth:lock:{192.0.2.1}:1BoatSLRHtKNngkdXEeobR76b53LETtpyT"}; !slicesEqual(got, want) {
		t.Errorf("keys after success %v, want %v", got, want)
	}
}

// TestLockoutResetBySameAddress: a user's own typos are forgiven by their
// own success (a success resets the level); failures that
// named other addresses, or none, are not.
func TestLockoutResetBySameAddress(t *testing.T) {
	for _, tc := range []struct {
		name     string
		failWIF  []string // signer of each failed token ("" for a malformed one)
		resetsIP bool
	}{
		{"own typos", []string{testWIF, testWIF, testWIF}, true},
		{"another address", []string{testWIF, otherWIF}, false},
		{"a malformed token", []string{testWIF, ""}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			for _, w := range tc.failWIF {
				tok := "garbage"
				if w != "" {
					tok = e.token(w, TokenOptions{RequestPath: "/elsewhere"})
				}
				if _, err := e.auth("GET", "/backup", tok, nil); err == nil {
					t.Fatal("a bad token passed")
				}
			}
			if _, err := e.auth("GET", "/backup", e.token(testWIF, TokenOptions{RequestPath: "/backup"}), nil); err != nil {
				t.Fatal(err)
			}
			if got := e.mr.Exists("sigauth:lock:{192.0.2.1}"); got == tc.resetsIP {
				t.Errorf("IP count kept = %v, want %v (keys %v)", got, !tc.resetsIP, e.mr.Keys())
			}
			if e.mr.Exists("sigauth:lock:{192.0.2.1}:" + testAddress) {
				t.Error("the succeeding address's own pair was kept")
			}
		})
	}
}

// TestRedisFailure: Redis down is temporarily_unavailable (fail closed),
// except for a request without a token, which needs no Redis.
func TestRedisFailure(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RedisTimeout = 500 * time.Millisecond })
	tok := e.token(testWIF, TokenOptions{RequestPath: "/backup"})
	e.mr.SetError("LOADING Redis is loading the dataset in memory")
	_, err := e.auth("GET", "/backup", tok, nil)
	wantCode(t, err, errors.TemporarilyUnavailable)
	_, err = e.auth("GET", "/backup", "", nil)
	wantCode(t, err, errors.MissingAuthToken)
	_, err = e.v.VerifyLogin(httptest.NewRequest("POST", "/authorize/login", nil), testAddress, "m", strings.Repeat("A", 88))
	wantCode(t, err, errors.TemporarilyUnavailable)

	e.mr.SetError("")
	e.mr.Close()
	_, err = e.auth("POST", "/backup", tok, nil)
	wantCode(t, err, errors.TemporarilyUnavailable)
}

// TestReplayGuardFailure: the signature verified but the replay guard
// cannot be written: refused, not let through.
func TestReplayGuardFailure(t *testing.T) {
	e := newTestEnv(t)
	tok := e.token(testWIF, TokenOptions{RequestPath: "/backup"})
	hook := &failSetNX{}
	e.rdb.AddHook(hook) // lockout reads work; the SET NX fails
	_, err := e.auth("POST", "/backup", tok, nil)
	wantCode(t, err, errors.TemporarilyUnavailable)
	if !hook.hit {
		t.Fatal("SET NX was not attempted")
	}
}

type failSetNX struct{ hit bool }

func (h *failSetNX) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *failSetNX) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "set" {
			h.hit = true
			return errors.New("injected SET failure")
		}
		return next(ctx, cmd)
	}
}
func (h *failSetNX) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestBody: the body is read once through MaxBody and put back; a longer
// body is refused before (declared) or while (chunked) reading, with the
// route's body code.
func TestBody(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.MaxBody = 16 })
	small := []byte("0123456789abcdef")
	tok := e.token(testWIF, TokenOptions{RequestPath: "/backup", Body: small})
	if _, err := e.auth("PUT", "/backup", tok, small); err != nil {
		t.Fatal(err)
	}

	big := []byte("0123456789abcdefX")
	tok = e.token(testWIF, TokenOptions{RequestPath: "/backup", Body: big})
	for _, chunked := range []bool{false, true} {
		r := request("PUT", "/backup", tok, big)
		if chunked {
			r.ContentLength = -1
			r.Body = io.NopCloser(bytes.NewReader(big))
		}
		_, err := e.v.Authenticate(r)
		var mbe *http.MaxBytesError
		if !errors.As(err, &mbe) || mbe.Limit != 16 {
			t.Fatalf("chunked=%v: %v", chunked, err)
		}
		// Written as the route says: request_too_large by default...
		w := httptest.NewRecorder()
		httperr.Write(w, r, err)
		if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), `"request_too_large"`) {
			t.Errorf("written %d %s", w.Code, w.Body)
		}
	}
	// ...and backup_too_large behind httperr.LimitBody on a backup route.
	h := httperr.Middleware(httperr.Config{}, httperr.LimitBody(1<<20, errors.BackupTooLarge, authenticated(e.v, func(http.ResponseWriter, *http.Request, Identity) {})))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, request("PUT", "/backup", tok, big))
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), `"backup_too_large"`) {
		t.Errorf("behind LimitBody: %d %s", w.Code, w.Body)
	}

	// A body that fails to read is not a signature failure.
	r := request("PUT", "/backup", tok, nil)
	r.Body = io.NopCloser(io.MultiReader(strings.NewReader("012"), errReader{}))
	_, err := e.v.Authenticate(r)
	wantCode(t, err, errors.InvalidRequest)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestRequestTarget(t *testing.T) {
	tests := []struct {
		requestURI string
		url        string
		want       string
	}{
		{"/backup", "", "/backup"},
		{"/a%2Fb/c?x=%20y&z=a+b", "", "/a%2Fb/c?x=%20y&z=a+b"},
		{"/p?", "", "/p?"},
		{"http://auth.example.com/backup?x=1", "", "/backup?x=1"},
		{"https://auth.example.com", "", "/"},
		{"https://auth.example.com?q=1", "", "/?q=1"},
		{"*", "", "*"},
		{"", "http://auth.example.com/a%2Fb?x=1", "/a%2Fb?x=1"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.RequestURI = tt.requestURI
		if tt.url != "" {
			r, _ = http.NewRequest("GET", tt.url, nil)
		}
		if got := RequestTarget(r); got != tt.want {
			t.Errorf("RequestTarget(%q %q) = %q, want %q", tt.requestURI, tt.url, got, tt.want)
		}
	}
}

func TestTokenFromHeaders(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want string
		code errors.Code
	}{
		{"none", http.Header{}, "", errors.MissingAuthToken},
		{"empty", http.Header{"X-Auth-Token": {""}}, "", errors.MissingAuthToken},
		{"bearer only", http.Header{"Authorization": {"Bearer abc"}}, "", errors.MissingAuthToken},
		{"x-auth-token", http.Header{"X-Auth-Token": {"t1"}}, "t1", ""},
		{"alias", http.Header{"Authorization": {"Bitcoin-Auth t1"}}, "t1", ""},
		{"alias lower case", http.Header{"Authorization": {"bitcoin-auth t1"}}, "t1", ""},
		{"both, same", http.Header{"X-Auth-Token": {"t1"}, "Authorization": {"Bitcoin-Auth t1"}}, "t1", ""},
		{"x-auth-token and bearer", http.Header{"X-Auth-Token": {"t1"}, "Authorization": {"Bearer b"}}, "t1", ""},
		{"both, different", http.Header{"X-Auth-Token": {"t1"}, "Authorization": {"Bitcoin-Auth t2"}}, "", errors.MalformedAuthToken},
		{"two headers", http.Header{"X-Auth-Token": {"t1", "t2"}}, "", errors.MalformedAuthToken},
		{"two identical headers", http.Header{"X-Auth-Token": {"t1", "t1"}}, "t1", ""},
	}
	for _, tt := range tests {
		got, err := tokenFrom(tt.h)
		if got != tt.want || errors.CodeOf(err) != tt.code {
			t.Errorf("%s: %q, %v; want %q, %q", tt.name, got, err, tt.want, tt.code)
		}
	}
}

// authenticated serves next behind v.Authenticate, as the server's routes
// do: a failure goes to httperr.Write, a success reaches next with the
// identity.
func authenticated(v *Verifier, next func(http.ResponseWriter, *http.Request, Identity)) http.Handler {
	return httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, err := v.Authenticate(r)
		if err != nil {
			return err
		}
		next(w, r, id)
		return nil
	})
}

// TestWire pins the wire form of every failure written by httperr.Write
// (golden files, refreshed with -update) and checks that the identity
// reaches the handler.
func TestWire(t *testing.T) {
	e := newTestEnv(t)
	var got Identity
	var gotOK bool
	inner := func(w http.ResponseWriter, r *http.Request, id Identity) {
		got, gotOK = id, true
		w.WriteHeader(http.StatusNoContent)
	}
	h := httperr.Middleware(httperr.Config{URIBase: "https://auth.example.com/docs/errors", Logger: slog.New(slog.DiscardHandler)}, authenticated(e.v, inner))

	tok := e.token(testWIF, TokenOptions{RequestPath: "/backup"})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, request("GET", "/backup", tok, nil))
	if w.Code != http.StatusNoContent || !gotOK || got.Address != testAddress {
		t.Fatalf("success: %d %+v %v", w.Code, got, gotOK)
	}

	bsm := e.token(testWIF, TokenOptions{Format: FormatBitcoinAuth, RequestPath: "/backup"})
	cases := []struct {
		name  string
		token string
		setup func()
	}{
		{"missing_auth_token", "", nil},
		{"malformed_auth_token", "sigma:1abc", nil},
		{"invalid_public_key", "02" + strings.Repeat("ff", 32) + bsm[66:], nil},
		{"invalid_signature", e.token(testWIF, TokenOptions{RequestPath: "/other"}), nil},
		{"invalid_timestamp", e.token(testWIF, TokenOptions{RequestPath: "/backup", Timestamp: e.now.Add(-time.Hour)}), nil},
		{"rate_limit_exceeded", tok, func() {
			for i := 0; i < lockoutThreshold; i++ {
				e.auth("GET", "/backup", "sigma:bad", nil)
			}
		}},
		{"temporarily_unavailable", tok, func() { e.mr.SetError("ERR injected") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			gotOK = false
			if c.setup != nil {
				c.setup()
			}
			r := request("GET", "/backup", c.token, nil)
			r.Header.Set("X-Request-Id", "test-request-1")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if gotOK {
				t.Fatal("handler ran")
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", w.Body, err)
			}
			if body["error"] != c.name {
				t.Errorf("error %v, want %s", body["error"], c.name)
			}
			wire := struct {
				Status  int               `json:"status"`
				Headers map[string]string `json:"headers"`
				Body    json.RawMessage   `json:"body"`
			}{w.Code, map[string]string{}, json.RawMessage(bytes.TrimSpace(w.Body.Bytes()))}
			for _, k := range []string{"Content-Type", "Cache-Control", "Retry-After", "Www-Authenticate"} {
				if v := w.Header().Get(k); v != "" {
					wire.Headers[k] = v
				}
			}
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false) // as httperr.Write encodes it
			enc.SetIndent("", "  ")
			if err := enc.Encode(wire); err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", "golden", c.name+".json"), b.Bytes())
		})
	}
}

func TestNewVerifierNeedsRedis(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewVerifier without Redis did not panic")
		}
	}()
	NewVerifier(Config{})
}

func TestRemoteIP(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:1234":        "192.0.2.1",
		"[2001:db8::1]:443":     "2001:db8::1",
		"[::ffff:192.0.2.1]:80": "192.0.2.1",
		"192.0.2.7":             "192.0.2.7",
		"garbage":               "invalid IP",
		"[fe80::1%eth0]:8080":   "fe80::1%eth0",
	} {
		r := &http.Request{RemoteAddr: in}
		if got := RemoteIP(r).String(); got != want {
			t.Errorf("RemoteIP(%q) = %s, want %s", in, got, want)
		}
	}
	if got := lockSubject(netip.MustParseAddr("2001:db8:a:b:c:d:e:f")); got != "2001:db8:a:b::/64" {
		t.Errorf("lockSubject v6 = %s", got)
	}
	if got := lockSubject(netip.MustParseAddr("::ffff:192.0.2.1")); got != "192.0.2.1" {
		t.Errorf("lockSubject mapped = %s", got)
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestSlowBody: each Redis round trip has its own deadline, so a client
// that takes longer than RedisTimeout to send its body still gets its
// replay claim made.
func TestSlowBody(t *testing.T) {
	e := newTestEnv(t, func(c *Config) { c.RedisTimeout = 50 * time.Millisecond })
	body := []byte("slow body")
	tok := e.token(testWIF, TokenOptions{RequestPath: "/backup", Body: body})
	r := request("PUT", "/backup", tok, nil)
	r.Body = io.NopCloser(&slowReader{r: bytes.NewReader(body), delay: 150 * time.Millisecond})
	r.ContentLength = -1
	if _, err := e.v.Authenticate(r); err != nil {
		t.Fatal(err)
	}
}

type slowReader struct {
	r     io.Reader
	delay time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.r.Read(p)
}
