package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/client"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/authdtest"
	"golang.org/x/oauth2"
)

// wallet is a fresh key and an HTTP client that signs every attempt with
// it, retries 429 and 503, and dials from a loopback address of its own.
type wallet struct {
	signer *authtoken.Signer
	hc     *http.Client
	seen   *statuses
}

// statuses records the status (and Retry-After) of every attempt that
// reached the server.
type statuses struct {
	mu   sync.Mutex
	list []string
	next http.RoundTripper
}

func (s *statuses) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := s.next.RoundTrip(r)
	if err == nil {
		s.mu.Lock()
		e := resp.Status[:3]
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			e += "/" + ra
		}
		s.list = append(s.list, e)
		s.mu.Unlock()
	}
	return resp, err
}

func (s *statuses) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.list
	s.list = nil
	return l
}

func newWallet(t *testing.T, issuer string) *wallet {
	t.Helper()
	wif, _, err := authtoken.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := authtoken.NewSigner(wif)
	if err != nil {
		t.Fatal(err)
	}
	seen := &statuses{next: authdtest.Transport()}
	return &wallet{signer: signer, seen: seen, hc: &http.Client{
		Transport:     &client.RetryTransport{Next: &client.SigningTransport{Next: seen, Signer: signer, Origin: issuer}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       time.Minute,
	}}
}

// backupData is a valid encrypted backup: base64 of random bytes.
func backupData(t *testing.T) []byte {
	b := make([]byte, 120)
	rand.Read(b)
	return []byte(base64.StdEncoding.EncodeToString(b))
}

// TestAgainstAuthd drives the real authd binary, on Redis and PostgreSQL,
// with the SDK: discovery, the wallet-driven authorization with PKCE,
// backups with ETags, and every form an error takes.
func TestAgainstAuthd(t *testing.T) {
	s := authdtest.Start(t)
	ctx := authdtest.Context(t)
	plain := &http.Client{Transport: authdtest.Transport(), Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	m, err := client.Discover(ctx, s.Issuer, plain)
	if err != nil {
		t.Fatal(err)
	}
	if m.Issuer != s.Issuer || m.TokenEndpoint != s.Issuer+"/token" || !m.AuthorizationResponseISSParameterSupported {
		t.Fatalf("metadata %+v", m)
	}
	w := newWallet(t, s.Issuer)

	// authorize signs the authorization request with w's key and returns
	// the redirect it answers with.
	authorize := func(conf *oauth2.Config, state, verifier string, opts ...oauth2.AuthCodeOption) *url.URL {
		t.Helper()
		resp, err := w.hc.Get(conf.AuthCodeURL(state, append(opts, oauth2.S256ChallengeOption(verifier))...))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("authorize: %d %v", resp.StatusCode, client.ParseError(resp))
		}
		return loc
	}
	id, secret := s.CreateClient(t, "--redirect-uri", "http://127.0.0.1/cb", "--scope", "profile backup")
	conf := m.OAuth2Config(id, secret, "http://127.0.0.1/cb", "profile", "backup")
	tokenCtx := context.WithValue(ctx, oauth2.HTTPClient, plain)

	var userToken *oauth2.Token
	t.Run("wallet sign-in", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		loc := authorize(conf, "state-1", verifier)
		code, err := client.ParseCallback(loc, "state-1", m.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		if userToken, err = conf.Exchange(tokenCtx, code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatal(err)
		}
		// A callback for another request is refused before its code is used.
		if _, err := client.ParseCallback(loc, "state-2", m.Issuer); err != client.ErrStateMismatch {
			t.Fatalf("another state: %v", err)
		}
	})

	t.Run("error in a redirect", func(t *testing.T) {
		loc := authorize(conf, "st&2", oauth2.GenerateVerifier(), oauth2.SetAuthURLParam("scope", "profile admin"))
		_, err := client.ParseCallback(loc, "st&2", m.Issuer)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != errors.InvalidScope || ce.State != "st&2" || ce.Issuer != s.Issuer ||
			ce.URI != s.Issuer+"/docs/errors#invalid_scope" || ce.Description == "" || ce.Status != 0 {
			t.Fatalf("%#v", err)
		}
	})

	t.Run("error in a JSON body", func(t *testing.T) {
		resp, err := plain.Get(s.Issuer + "/backup")
		if err != nil {
			t.Fatal(err)
		}
		var ce *client.Error
		if !errors.As(client.ParseError(resp), &ce) || ce.Code != errors.MissingAuthToken || ce.Status != 401 ||
			ce.RequestID != resp.Header.Get("X-Request-Id") || ce.RequestID == "" || ce.URI != s.Issuer+"/docs/errors#missing_auth_token" {
			t.Fatalf("%+v", ce)
		}
		chs := client.ParseChallenges(resp.Header.Values("WWW-Authenticate"))
		if len(chs) == 0 || chs[0].Scheme != "Bitcoin-Auth" || chs[0].Params["realm"] != "authd" {
			t.Fatalf("challenges %+v", chs)
		}
	})

	t.Run("error in WWW-Authenticate", func(t *testing.T) {
		for _, tc := range []struct {
			token string
			code  errors.Code
			scope string
		}{
			{"not-a-jwt", errors.InvalidToken, ""},
			{s.ClientToken(t, "backup").AccessToken, errors.InsufficientScope, "profile"},
		} {
			req, _ := http.NewRequestWithContext(ctx, "GET", s.Issuer+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+tc.token)
			resp, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			full := client.ParseErrorBody(resp.StatusCode, resp.Header, body)
			// The challenge alone says as much as the body.
			alone := client.ParseErrorBody(resp.StatusCode, http.Header{"Www-Authenticate": resp.Header.Values("WWW-Authenticate")}, nil)
			if full.Code != tc.code || alone.Code != tc.code || alone.Description != full.Description || alone.URI != full.URI ||
				alone.URI != s.Issuer+"/docs/errors#"+string(tc.code) || full.Scope != tc.scope || alone.Scope != tc.scope {
				t.Fatalf("body %+v\nchallenge %+v", full, alone)
			}
		}
	})

	t.Run("error from the token endpoint", func(t *testing.T) {
		resp, err := plain.PostForm(s.Issuer+"/token", url.Values{"grant_type": {"authorization_code"}, "code": {"nope"},
			"client_id": {id}, "client_secret": {secret}, "redirect_uri": {"http://127.0.0.1/cb"}})
		if err != nil {
			t.Fatal(err)
		}
		var ce *client.Error
		if !errors.As(client.ParseError(resp), &ce) || ce.Code != errors.InvalidGrant || ce.Status != 400 || ce.Temporary() {
			t.Fatalf("%+v", ce)
		}
	})

	t.Run("backups", func(t *testing.T) {
		b := client.NewBackups(s.Issuer, w.hc)
		if _, err := b.Get(ctx); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("Get before any: %v", err)
		}
		data := backupData(t)
		first, err := b.Put(ctx, data, client.CreateOnly())
		if err != nil || !first.Created || first.ETag == "" || first.Size != int64(len(data)) || time.Since(first.UpdatedAt) > time.Minute {
			t.Fatalf("create: %+v, %v", first, err)
		}
		if _, err := b.Put(ctx, backupData(t), client.CreateOnly()); !errors.Is(err, client.ErrConflict) {
			t.Fatalf("second create: %v", err)
		}
		got, err := b.Get(ctx)
		if err != nil || !bytes.Equal(got.Data, data) || got.ETag != first.ETag {
			t.Fatalf("Get: %+v, %v", got, err)
		}
		second, err := b.Put(ctx, backupData(t), client.IfMatch(got.ETag))
		if err != nil || second.Created || second.ETag == first.ETag {
			t.Fatalf("replace: %+v, %v", second, err)
		}
		var ce *client.Error
		if _, err := b.Put(ctx, backupData(t), client.IfMatch(first.ETag)); !errors.As(err, &ce) || ce.Code != errors.BackupConflict || ce.Status != 412 {
			t.Fatalf("stale If-Match: %v", err)
		}
		if err := b.Delete(ctx, client.IfMatch(first.ETag)); !errors.Is(err, client.ErrConflict) {
			t.Fatalf("stale delete: %v", err)
		}
		if _, err := b.Put(ctx, []byte(`{"privateKey":"L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7"}`)); client.CodeOf(err) != errors.EncryptionRequired {
			t.Fatalf("plaintext: %v", err)
		}
		// The user's access token (scope backup) opens the same backup.
		bearer := client.NewBackups(s.Issuer, conf.Client(tokenCtx, userToken))
		if got, err := bearer.Get(ctx); err != nil || got.ETag != second.ETag {
			t.Fatalf("Get by Bearer: %+v, %v", got, err)
		}
		if err := b.Delete(ctx, client.IfMatch(second.ETag)); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := bearer.Get(ctx); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("Get after delete: %v", err)
		}
		for _, st := range w.seen.take() {
			if st == "429" || st == "503" {
				t.Fatalf("rate limited with generous limits: %s", st)
			}
		}
	})
}

// TestRetriesAgainstAuthd: the real limiter's 429 and Retry-After, waited
// out by RetryTransport, with a fresh token for every attempt.
func TestRetriesAgainstAuthd(t *testing.T) {
	s := authdtest.Start(t, "AUTHD_RATE_LIMITS=backup_read=1/2s,backup_write=1/2s")
	ctx := authdtest.Context(t)
	w := newWallet(t, s.Issuer)
	b := client.NewBackups(s.Issuer, w.hc)

	if _, err := b.Put(ctx, backupData(t)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := b.Put(ctx, backupData(t)); err != nil {
		t.Fatalf("second PUT in the window: %v\n%s", err, s.Logs())
	}
	seen := w.seen.take()
	if len(seen) != 3 || seen[0] != "201" || !strings.HasPrefix(seen[1], "429/") || seen[2] != "200" {
		t.Fatalf("attempts %v, want 201, 429/<s>, 200", seen)
	}
	wait, _ := client.ParseRetryAfter(strings.TrimPrefix(seen[1], "429/"), time.Time{}, time.Now())
	if d := time.Since(start); d < wait || wait < time.Second || wait > 2*time.Second {
		t.Fatalf("retried after %v; Retry-After said %v", d, wait)
	}

	// Reads too, and a context that ends before the wait: no retry, the
	// error says how long to wait.
	if _, err := b.Get(ctx); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	_, err := b.Get(short)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != errors.RateLimitExceeded || !ce.Temporary() || ce.RetryAfter < time.Second || ce.Status != 429 {
		t.Fatalf("Get with 500 ms left: %v", err)
	}
	if seen := w.seen.take(); len(seen) != 2 || seen[0] != "200" || !strings.HasPrefix(seen[1], "429/") {
		t.Fatalf("attempts %v", seen)
	}

	// Why the signing transport goes under the retrying one: the same
	// token twice is a replay, refused whatever the limiter says.
	t.Run("a retry without a fresh token is refused", func(t *testing.T) {
		w := newWallet(t, s.Issuer)
		if _, err := client.NewBackups(s.Issuer, w.hc).Put(ctx, backupData(t)); err != nil {
			t.Fatal(err) // spends this wallet's write window
		}
		data := backupData(t)
		tok, err := w.signer.Token(authtoken.TokenOptions{RequestPath: "/backup", Body: data})
		if err != nil {
			t.Fatal(err)
		}
		seen := &statuses{next: authdtest.Transport()}
		hc := &http.Client{Transport: &client.RetryTransport{Next: &fixedToken{tok, seen}}}
		_, err = client.NewBackups(s.Issuer, hc).Put(ctx, data)
		attempts := seen.take()
		if client.CodeOf(err) != errors.InvalidTimestamp || len(attempts) != 2 || !strings.HasPrefix(attempts[0], "429/") || attempts[1] != "401" {
			t.Fatalf("replayed token: %v (attempts %v)", err, attempts)
		}
	})
}

// fixedToken sends every request with the same X-Auth-Token.
type fixedToken struct {
	token string
	next  http.RoundTripper
}

func (f *fixedToken) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Auth-Token", f.token)
	return f.next.RoundTrip(r)
}

// TestBindingAgainstAuthd: with AUTHD_SIGAUTH_REQUIRE_BINDING=true authd
// refuses tokens that sign the path alone for unsafe requests and
// sign-ins; the SigningTransport's default, the bound form, passes; its
// Unbound form is refused as the server says.
func TestBindingAgainstAuthd(t *testing.T) {
	s := authdtest.Start(t, "AUTHD_SIGAUTH_REQUIRE_BINDING=true")
	ctx := authdtest.Context(t)
	w := newWallet(t, s.Issuer)
	b := client.NewBackups(s.Issuer, w.hc)
	stored, err := b.Put(ctx, backupData(t), client.CreateOnly())
	if err != nil {
		t.Fatalf("bound PUT: %v", err)
	}
	if err := b.Delete(ctx, client.IfMatch(stored.ETag)); err != nil {
		t.Fatalf("bound DELETE: %v", err)
	}
	m, err := client.Discover(ctx, s.Issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := s.CreateClient(t, "--redirect-uri", "http://127.0.0.1/cb", "--public")
	conf := m.OAuth2Config(id, "", "http://127.0.0.1/cb")
	resp, err := w.hc.Get(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if _, err := client.ParseCallback(loc, "s", s.Issuer); err != nil {
		t.Fatalf("bound sign-in: %d %v", resp.StatusCode, err)
	}

	unbound := &http.Client{Transport: &client.SigningTransport{Next: authdtest.Transport(), Signer: w.signer, Origin: s.Issuer, Unbound: true}}
	_, err = client.NewBackups(s.Issuer, unbound).Put(ctx, backupData(t))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != errors.MalformedAuthToken || ce.Status != 400 {
		t.Fatalf("unbound PUT: %v", err)
	}
}
