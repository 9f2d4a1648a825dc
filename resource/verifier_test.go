package resource_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/resource"
	"github.com/golang-jwt/jwt/v5"
)

func codeOf(err error) errors.Code {
	if err == nil {
		return ""
	}
	return errors.CodeOf(err)
}

func TestVerify(t *testing.T) {
	ec, rs := newECKey(t, "ec1"), newRSAKey("rsa1")
	as := newFakeAS(t, ec, rs)
	clk := newClock()
	now := clk.Now()
	const api = "https://api.example.com"
	v := newVerifier(t, resource.Config{Issuer: as.iss, Resource: api, Now: clk.Now})
	base := func() jwt.MapClaims { return claimsAt(as.iss, api, now) }
	with := func(k string, val any) jwt.MapClaims {
		c := base()
		if val == nil {
			delete(c, k)
		} else {
			c[k] = val
		}
		return c
	}
	leeway := resource.DefaultLeeway
	valid := ec.sign(t, base(), nil)
	parts := strings.Split(valid, ".")
	// An HS256 token MACed with the EC key's JWK x as secret: the
	// classic algorithm confusion.
	hs := func() string {
		h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"ec1","typ":"at+jwt"}`))
		m := hmac.New(sha256.New, []byte(ec.jwk()["x"].(string)))
		m.Write([]byte(h + "." + parts[1]))
		return h + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}()
	flipped := []byte(parts[2])
	flipped[10] ^= 1
	for _, tc := range []struct {
		name  string
		token string
		ok    bool
	}{
		{"ES256", valid, true},
		{"RS256", rs.sign(t, base(), nil), true},
		{"typ application/at+jwt", ec.sign(t, base(), map[string]any{"typ": "application/AT+JWT"}), true},
		{"aud array", ec.sign(t, with("aud", []string{"https://other.example", api}), nil), true},
		{"fractional dates", ec.sign(t, with("exp", float64(now.Unix())+0.5), nil), true},
		{"nbf within leeway", ec.sign(t, with("nbf", now.Add(leeway-time.Second).Unix()), nil), true},
		{"iat within leeway", ec.sign(t, with("iat", now.Add(leeway-time.Second).Unix()), nil), true},
		{"expired within leeway", ec.sign(t, with("exp", now.Add(-leeway+time.Second).Unix()), nil), true},

		{"expired at leeway", ec.sign(t, with("exp", now.Add(-leeway).Unix()), nil), false},
		{"nbf beyond leeway", ec.sign(t, with("nbf", now.Add(leeway+time.Second).Unix()), nil), false},
		{"iat beyond leeway", ec.sign(t, with("iat", now.Add(leeway+time.Second).Unix()), nil), false},
		{"typ JWT", ec.sign(t, base(), map[string]any{"typ": "JWT"}), false},
		{"no typ", ec.sign(t, base(), map[string]any{"typ": nil}), false},
		{"no kid", ec.sign(t, base(), map[string]any{"kid": nil}), false},
		{"crit", ec.sign(t, base(), map[string]any{"crit": []string{"exp"}}), false},
		{"RS256 key, ES256 kid", rs.sign(t, base(), map[string]any{"kid": "ec1"}), false},
		{"HS256 with the public key", hs, false},
		{"alg none", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"ec1","typ":"at+jwt"}`)) + "." + parts[1] + ".", false},
		{"wrong issuer", ec.sign(t, with("iss", as.iss+"/"), nil), false},
		{"wrong audience", ec.sign(t, with("aud", as.iss), nil), false},
		{"no audience", ec.sign(t, with("aud", nil), nil), false},
		{"no exp", ec.sign(t, with("exp", nil), nil), false},
		{"no iat", ec.sign(t, with("iat", nil), nil), false},
		{"no sub", ec.sign(t, with("sub", nil), nil), false},
		{"no client_id", ec.sign(t, with("client_id", nil), nil), false},
		{"no jti", ec.sign(t, with("jti", nil), nil), false},
		{"exp not a number", ec.sign(t, with("exp", "soon"), nil), false},
		{"exp negative", ec.sign(t, with("exp", -5), nil), false},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"`+as.iss+`","sub":"x","aud":"`+api+`","client_id":"c","exp":9999999999,"iat":1,"jti":"j"}`)) + "." + parts[2], false},
		{"tampered signature", parts[0] + "." + parts[1] + "." + string(flipped), false},
		{"short signature", parts[0] + "." + parts[1] + "." + parts[2][:40], false},
		{"padded signature", valid + "==", false},
		{"four parts", valid + ".x", false},
		{"two parts", parts[0] + "." + parts[1], false},
		{"empty", "", false},
		{"unknown kid", newECKey(t, "ec9").sign(t, base(), nil), false},
		{"too long", ec.sign(t, with("pad", strings.Repeat("x", 9000)), nil), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tc.token)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if c.Subject != "1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH" || c.ClientID != "c_123" || c.ID != "fam.rand" || c.Issuer != as.iss ||
					!c.HasScope("backup") || !c.HasScope("profile") || c.HasScope("openid") || c.ForClient() || c.IssuedAt.IsZero() || c.Expiry.IsZero() {
					t.Fatalf("claims %+v", c)
				}
				return
			}
			if codeOf(err) != errors.InvalidToken || c != nil {
				t.Fatalf("got %+v, %v; want invalid_token", c, err)
			}
			var e *errors.Error
			if errors.As(err, &e); e.Description != "The access token is invalid or expired" {
				t.Fatalf("description %q gives the reason away", e.Description)
			}
		})
	}
}

// TestVerifyDefaultAudience: without Resource, tokens for authd's own
// APIs (aud = the issuer) are the ones accepted.
func TestVerifyDefaultAudience(t *testing.T) {
	ec := newECKey(t, "k")
	as := newFakeAS(t, ec)
	v := newVerifier(t, resource.Config{Issuer: as.iss})
	now := time.Now()
	if _, err := v.Verify(context.Background(), ec.sign(t, claimsAt(as.iss, as.iss, now), nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), ec.sign(t, claimsAt(as.iss, "https://api.example.com", now), nil)); codeOf(err) != errors.InvalidToken {
		t.Fatalf("another audience: %v", err)
	}
}

// TestVerifyLeewayConfig: a negative Leeway means none, on both sides of
// the deadline.
func TestVerifyLeewayConfig(t *testing.T) {
	ec := newECKey(t, "k")
	as := newFakeAS(t, ec)
	clk := newClock()
	v := newVerifier(t, resource.Config{Issuer: as.iss, Leeway: -1, Now: clk.Now})
	c := claimsAt(as.iss, as.iss, clk.Now())
	c["exp"] = clk.Now().Add(time.Second).Unix()
	tok := ec.sign(t, c, nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("a second before exp: %v", err)
	}
	clk.add(time.Second)
	if _, err := v.Verify(context.Background(), tok); codeOf(err) != errors.InvalidToken {
		t.Fatalf("at exp: %v", err)
	}
}

func TestNewVerifierConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg resource.Config
		ok  bool
	}{
		{resource.Config{Issuer: "https://auth.example.com"}, true},
		{resource.Config{Issuer: "https://auth.example.com", Resource: "https://api.example.com/v1?x=1"}, true},
		{resource.Config{}, false},
		{resource.Config{Issuer: "auth.example.com"}, false},
		{resource.Config{Issuer: "https://auth.example.com?x"}, false},
		{resource.Config{Issuer: "https://auth.example.com", Resource: "urn:api"}, false},
		{resource.Config{Issuer: "https://auth.example.com", Resource: "https://api.example.com#f"}, false},
		{resource.Config{Issuer: "https://auth.example.com", JWKSURI: "/keys"}, false},
		{resource.Config{Issuer: "https://auth.example.com", ErrorURIBase: "docs"}, false},
	} {
		_, err := resource.NewVerifier(tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}

// TestKeyRotation: a token signed by a key published after the set was
// cached makes the Verifier fetch the set again, once.
func TestKeyRotation(t *testing.T) {
	k1, k2 := newECKey(t, "k1"), newECKey(t, "k2")
	as := newFakeAS(t, k1)
	clk := newClock()
	v := newVerifier(t, resource.Config{Issuer: as.iss, Now: clk.Now})
	ctx := context.Background()
	if _, err := v.Verify(ctx, k1.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil)); err != nil {
		t.Fatal(err)
	}
	as.set(func(as *fakeAS) { as.keys = append(as.keys, k2) })
	clk.add(resource.DefaultMinRefreshInterval)
	for range 3 {
		if _, err := v.Verify(ctx, k2.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil)); err != nil {
			t.Fatal(err)
		}
	}
	if meta, jwks := as.fetches(); meta != 1 || jwks != 2 {
		t.Fatalf("%d metadata and %d JWKS fetches, want 1 and 2", meta, jwks)
	}
}

// TestUnknownKidRateLimited: tokens naming unknown keys cause at most one
// fetch per MinRefreshInterval, however many arrive.
func TestUnknownKidRateLimited(t *testing.T) {
	k1 := newECKey(t, "k1")
	as := newFakeAS(t, k1)
	clk := newClock()
	v := newVerifier(t, resource.Config{Issuer: as.iss, Now: clk.Now, MinRefreshInterval: 10 * time.Second})
	ctx := context.Background()
	v.Refresh(ctx)
	forged := newECKey(t, "nope")
	for i := range 50 {
		if i == 25 {
			clk.add(9 * time.Second) // still within the interval
		}
		if _, err := v.Verify(ctx, forged.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil)); codeOf(err) != errors.InvalidToken {
			t.Fatalf("unknown kid: %v", err)
		}
	}
	if _, jwks := as.fetches(); jwks != 1 {
		t.Fatalf("%d JWKS fetches within the interval, want 1 (the first)", jwks)
	}
	clk.add(time.Second)
	v.Verify(ctx, forged.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil))
	if _, jwks := as.fetches(); jwks != 2 {
		t.Fatalf("%d JWKS fetches after the interval, want 2", jwks)
	}
}

// TestSingleFlight: many requests that need the keys at once share one
// fetch.
func TestSingleFlight(t *testing.T) {
	k1 := newECKey(t, "k1")
	as := newFakeAS(t, k1)
	gate := make(chan struct{})
	as.set(func(as *fakeAS) { as.gate = gate })
	v := newVerifier(t, resource.Config{Issuer: as.iss})
	tok := k1.sign(t, claimsAt(as.iss, as.iss, time.Now()), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		})
	}
	time.Sleep(100 * time.Millisecond) // all 20 are waiting on the gate
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, jwks := as.fetches(); jwks != 1 {
		t.Fatalf("%d JWKS fetches for 20 concurrent requests, want 1", jwks)
	}
}

// TestVerifyContextEnds: a request whose context ends while it waits for
// the keys gives up (the fetch goes on for the others).
func TestVerifyContextEnds(t *testing.T) {
	k1 := newECKey(t, "k1")
	as := newFakeAS(t, k1)
	gate := make(chan struct{})
	as.set(func(as *fakeAS) { as.gate = gate })
	defer close(gate)
	v := newVerifier(t, resource.Config{Issuer: as.iss})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := v.Verify(ctx, k1.sign(t, claimsAt(as.iss, as.iss, time.Now()), nil))
	var e *errors.Error
	if !errors.As(err, &e) || e.Code != errors.TemporarilyUnavailable || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// TestCacheControl: the key set is kept as long as its max-age says,
// within the configured bounds; a stale set is served while a new one is
// fetched.
func TestCacheControl(t *testing.T) {
	for _, tc := range []struct {
		cacheControl string
		keep         time.Duration
	}{
		{"public, max-age=300", 300 * time.Second},
		{"max-age=120, must-revalidate", 120 * time.Second},
		{"max-age=5", time.Minute},      // MinCacheTTL
		{"max-age=99999999", time.Hour}, // MaxCacheTTL
		{"no-store", time.Minute},       // MinCacheTTL
		{"no-cache, max-age=600", time.Minute},
		{"", resource.DefaultCacheTTL},
	} {
		t.Run(tc.cacheControl, func(t *testing.T) {
			k1 := newECKey(t, "k1")
			as := newFakeAS(t, k1)
			as.set(func(as *fakeAS) { as.cacheControl = tc.cacheControl })
			clk := newClock()
			v := newVerifier(t, resource.Config{Issuer: as.iss, Now: clk.Now})
			ctx := context.Background()
			verify := func() {
				t.Helper()
				if _, err := v.Verify(ctx, k1.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil)); err != nil {
					t.Fatal(err)
				}
			}
			verify()
			clk.add(tc.keep - time.Second)
			verify()
			if _, jwks := as.fetches(); jwks != 1 {
				t.Fatalf("fetched again %v before expiry", time.Second)
			}
			clk.add(time.Second)
			verify() // stale: answered from the cache, refreshed behind
			waitFor(t, func() bool { _, jwks := as.fetches(); return jwks == 2 })
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 5 s")
}

// TestOutage: while authd cannot be reached, the last good keys keep
// working, up to MaxStale past their expiry; with no keys at all, tokens
// get temporarily_unavailable and authd is asked at most once per
// MinRefreshInterval.
func TestOutage(t *testing.T) {
	k1 := newECKey(t, "k1")
	as := newFakeAS(t, k1)
	clk := newClock()
	v := newVerifier(t, resource.Config{Issuer: as.iss, Now: clk.Now})
	ctx := context.Background()
	if err := v.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	as.set(func(as *fakeAS) { as.down = true })
	clk.add(10 * time.Minute) // expired
	for range 3 {
		if _, err := v.Verify(ctx, k1.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil)); err != nil {
			t.Fatalf("stale keys during an outage: %v", err)
		}
	}
	if err := v.Refresh(ctx); err == nil {
		t.Fatal("Refresh during an outage succeeded")
	}
	// A new key cannot be learnt: unavailable, not invalid.
	clk.add(resource.DefaultMinRefreshInterval)
	_, err := v.Verify(ctx, newECKey(t, "k2").sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil))
	var e *errors.Error
	if !errors.As(err, &e) || e.Code != errors.TemporarilyUnavailable || e.RetryAfter != resource.DefaultMinRefreshInterval {
		t.Fatalf("unknown kid during an outage: %v", err)
	}
	// Past MaxStale the old keys are no longer trusted.
	clk.add(resource.MaxStale)
	if _, err := v.Verify(ctx, k1.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil)); codeOf(err) != errors.TemporarilyUnavailable {
		t.Fatalf("keys a day stale: %v", err)
	}
	as.set(func(as *fakeAS) { as.down = false })
	clk.add(resource.DefaultMinRefreshInterval)
	if _, err := v.Verify(ctx, k1.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil)); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

func TestNoKeysYet(t *testing.T) {
	k1 := newECKey(t, "k1")
	as := newFakeAS(t, k1)
	as.set(func(as *fakeAS) { as.down = true })
	clk := newClock()
	v := newVerifier(t, resource.Config{Issuer: as.iss, Now: clk.Now})
	ctx := context.Background()
	for range 5 {
		if _, err := v.Verify(ctx, k1.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil)); codeOf(err) != errors.TemporarilyUnavailable {
			t.Fatalf("no keys: %v", err)
		}
	}
	if meta, _ := as.fetches(); meta != 0 {
		t.Fatalf("down server counted %d", meta)
	}
	as.set(func(as *fakeAS) { as.down = false })
	if _, err := v.Verify(ctx, k1.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil)); codeOf(err) != errors.TemporarilyUnavailable {
		t.Fatalf("within the interval after a failure: %v", err)
	}
	if meta, _ := as.fetches(); meta != 0 {
		t.Fatalf("asked again within the interval")
	}
	clk.add(resource.DefaultMinRefreshInterval)
	if _, err := v.Verify(ctx, k1.sign(t, claimsAt(as.iss, as.iss, clk.Now()), nil)); err != nil {
		t.Fatal(err)
	}
}

// TestDiscoveryIssuerMismatch: metadata naming another issuer is refused
// (RFC 8414 §3.3), so its keys are never used.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	k1 := newECKey(t, "k1")
	as := newFakeAS(t, k1)
	as.set(func(as *fakeAS) { as.issuerName = "https://evil.example" })
	v := newVerifier(t, resource.Config{Issuer: as.iss})
	if err := v.Refresh(context.Background()); err == nil || !strings.Contains(err.Error(), "evil.example") {
		t.Fatalf("Refresh: %v", err)
	}
	if _, jwks := as.fetches(); jwks != 0 {
		t.Fatal("fetched the keys of a mismatched document")
	}
	// With the keys' location configured, no discovery is needed.
	v = newVerifier(t, resource.Config{Issuer: as.iss, JWKSURI: as.iss + "/.well-known/jwks.json"})
	if _, err := v.Verify(context.Background(), k1.sign(t, claimsAt(as.iss, as.iss, time.Now()), nil)); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyAudience: an API with an identifier of its own accepts tokens
// naming it, and tokens naming the issuer only when told to.
func TestVerifyAudience(t *testing.T) {
	ec := newECKey(t, "k")
	as := newFakeAS(t, ec)
	now := time.Now()
	forAPI := ec.sign(t, claimsAt(as.iss, api, now), nil)
	forAuthd := ec.sign(t, claimsAt(as.iss, as.iss, now), nil)
	for _, tc := range []struct {
		audience           string
		api, authd         bool
		wantAudienceMethod string
	}{
		{"", true, false, api},
		{as.iss, false, true, as.iss},
	} {
		v := newVerifier(t, resource.Config{Issuer: as.iss, Resource: api, Audience: tc.audience})
		_, errAPI := v.Verify(context.Background(), forAPI)
		_, errAuthd := v.Verify(context.Background(), forAuthd)
		if (errAPI == nil) != tc.api || (errAuthd == nil) != tc.authd || v.Audience() != tc.wantAudienceMethod || v.Resource() != api {
			t.Errorf("Audience %q: token for the API %v, for authd %v", tc.audience, errAPI, errAuthd)
		}
	}
}
