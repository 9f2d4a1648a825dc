package resource_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/resource"
	"github.com/golang-jwt/jwt/v5"
)

// signingKey is a key of the fake authorization server.
type signingKey struct {
	kid string
	ec  *ecdsa.PrivateKey
	rsa *rsa.PrivateKey
}

// tb is what the helpers need of a testing.TB; the examples pass one
// that panics.
type tb interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

func newECKey(t tb, kid string) *signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &signingKey{kid: kid, ec: k}
}

var rsaKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func newRSAKey(kid string) *signingKey { return &signingKey{kid: kid, rsa: rsaKey()} }

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk is the public JWK of k, as authd publishes its keys.
func (k *signingKey) jwk() map[string]any {
	if k.ec != nil {
		x, y := make([]byte, 32), make([]byte, 32)
		k.ec.X.FillBytes(x)
		k.ec.Y.FillBytes(y)
		return map[string]any{"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y), "kid": k.kid, "use": "sig", "alg": "ES256"}
	}
	return map[string]any{"kty": "RSA", "n": b64(k.rsa.N.Bytes()), "e": b64(big.NewInt(int64(k.rsa.E)).Bytes()), "kid": k.kid, "use": "sig", "alg": "RS256"}
}

// sign makes a JWT with golang-jwt, an implementation independent of the
// one under test. header entries override the defaults (kid, typ at+jwt);
// a nil value deletes one.
func (k *signingKey) sign(t tb, claims jwt.MapClaims, header map[string]any) string {
	t.Helper()
	var m jwt.SigningMethod = jwt.SigningMethodES256
	var key any = k.ec
	if k.rsa != nil {
		m, key = jwt.SigningMethodRS256, k.rsa
	}
	tok := jwt.NewWithClaims(m, claims)
	tok.Header["kid"] = k.kid
	tok.Header["typ"] = "at+jwt"
	for h, v := range header {
		if v == nil {
			delete(tok.Header, h)
		} else {
			tok.Header[h] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeAS is an authorization server's metadata and JWKS endpoints.
type fakeAS struct {
	srv *httptest.Server
	iss string

	mu           sync.Mutex
	keys         []*signingKey
	cacheControl string
	down         bool
	issuerName   string // the issuer the metadata claims; "" means iss
	metaFetches  int
	jwksFetches  int
	gate         chan struct{} // when set, JWKS requests wait for it to close
}

func newFakeAS(t tb, keys ...*signingKey) *fakeAS {
	as := &fakeAS{keys: keys, cacheControl: "public, max-age=300"}
	as.srv = httptest.NewUnstartedServer(http.HandlerFunc(as.serve))
	as.iss = "http://" + as.srv.Listener.Addr().String() // before Start: the handler reads it
	as.srv.Start()
	t.Cleanup(as.srv.Close)
	return as
}

func (as *fakeAS) serve(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	down, gate := as.down, as.gate
	as.mu.Unlock()
	if down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	switch r.URL.Path {
	case "/.well-known/oauth-authorization-server":
		as.mu.Lock()
		as.metaFetches++
		name := as.issuerName
		as.mu.Unlock()
		if name == "" {
			name = as.iss
		}
		json.NewEncoder(w).Encode(map[string]any{"issuer": name, "jwks_uri": as.iss + "/.well-known/jwks.json",
			"authorization_endpoint": as.iss + "/authorize", "token_endpoint": as.iss + "/token"})
	case "/.well-known/jwks.json":
		if gate != nil {
			<-gate
		}
		as.mu.Lock()
		as.jwksFetches++
		var keys []any
		for _, k := range as.keys {
			keys = append(keys, k.jwk())
		}
		cc := as.cacheControl
		as.mu.Unlock()
		if cc != "" {
			w.Header().Set("Cache-Control", cc)
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	default:
		http.NotFound(w, r)
	}
}

func (as *fakeAS) set(f func(as *fakeAS)) {
	as.mu.Lock()
	defer as.mu.Unlock()
	f(as)
}

func (as *fakeAS) fetches() (meta, jwks int) {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.metaFetches, as.jwksFetches
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Unix(1_900_000_000, 0)} }

// claimsAt are authd's access-token claims, issued at now for audience aud.
func claimsAt(iss, aud string, now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": iss, "sub": "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH", "aud": aud, "client_id": "c_123",
		"scope": "profile backup", "exp": now.Add(15 * time.Minute).Unix(), "iat": now.Unix(), "jti": "fam.rand",
	}
}

// exampleT is a tb for the examples: it panics on failure and runs no
// cleanups (the examples close what they open).
type exampleT struct{}

func (exampleT) Helper()           {}
func (exampleT) Fatal(args ...any) { panic(fmt.Sprint(args...)) }
func (exampleT) Cleanup(func())    {}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newVerifier(t testing.TB, cfg resource.Config) *resource.Verifier {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = discard()
	}
	v, err := resource.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
