package resource_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/client"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/authdtest"
	"github.com/authd-dev/authd/resource"
)

// TestAgainstAuthd runs the real authd binary on Redis and PostgreSQL and
// verifies the access tokens it issues: a wallet user's from the
// authorization-code flow and a client's from client_credentials.
func TestAgainstAuthd(t *testing.T) {
	s := authdtest.Start(t)
	wif, addr, err := authtoken.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	user := s.WalletToken(t, wif, "profile backup")
	svc := s.ClientToken(t, "profile")
	hc := &http.Client{Transport: authdtest.Transport(), Timeout: 10 * time.Second}
	ctx := authdtest.Context(t)
	v := newVerifier(t, resource.Config{Issuer: s.Issuer, HTTPClient: hc})

	uc, err := v.Verify(ctx, user.AccessToken)
	if err != nil {
		t.Fatalf("a user's token: %v\n%s", err, s.Logs())
	}
	if c := uc; c.Subject != addr || c.ForClient() || !c.HasScope("backup") || !c.HasScope("profile") || c.Issuer != s.Issuer ||
		c.ID == "" || c.Expiry.Sub(c.IssuedAt) != 15*time.Minute || time.Until(c.Expiry) < 14*time.Minute {
		t.Fatalf("claims %+v", c)
	}
	if c, err := v.Verify(ctx, svc.AccessToken); err != nil || !c.ForClient() || c.HasScope("backup") {
		t.Fatalf("a client_credentials token: %+v, %v", c, err)
	}

	t.Run("tampered", func(t *testing.T) {
		parts := strings.Split(user.AccessToken, ".")
		for i, p := range parts {
			b := []byte(p)
			if b[len(b)/2] != 'A' { // another base64url character, so the part still decodes
				b[len(b)/2] = 'A'
			} else {
				b[len(b)/2] = 'B'
			}
			tampered := append(append([]string{}, parts[:i]...), append([]string{string(b)}, parts[i+1:]...)...)
			if _, err := v.Verify(ctx, strings.Join(tampered, ".")); codeOf(err) != errors.InvalidToken {
				t.Errorf("part %d tampered: %v", i, err)
			}
		}
	})
	t.Run("expired", func(t *testing.T) {
		at := uc.Expiry.Add(-time.Second)
		v := newVerifier(t, resource.Config{Issuer: s.Issuer, HTTPClient: hc, Leeway: -1, Now: func() time.Time { return at }})
		if _, err := v.Verify(ctx, user.AccessToken); err != nil {
			t.Fatalf("a second before exp: %v", err)
		}
		at = uc.Expiry
		if _, err := v.Verify(ctx, user.AccessToken); codeOf(err) != errors.InvalidToken {
			t.Fatalf("at exp: %v", err)
		}
	})
	t.Run("wrong audience", func(t *testing.T) {
		v := newVerifier(t, resource.Config{Issuer: s.Issuer, Resource: "https://api.example.com", HTTPClient: hc})
		if _, err := v.Verify(ctx, user.AccessToken); codeOf(err) != errors.InvalidToken {
			t.Fatalf("token for authd at another API: %v", err)
		}
	})
	t.Run("wrong issuer", func(t *testing.T) {
		// The same server under another name: its metadata names the real
		// issuer, so its keys are not trusted for this one.
		other := strings.Replace(s.Issuer, "127.0.0.1", "localhost", 1)
		v := newVerifier(t, resource.Config{Issuer: other, HTTPClient: hc})
		if err := v.Refresh(ctx); err == nil || !strings.Contains(err.Error(), "names issuer") {
			t.Fatalf("Refresh: %v", err)
		}
		if _, err := v.Verify(ctx, user.AccessToken); codeOf(err) != errors.TemporarilyUnavailable {
			t.Fatalf("Verify: %v", err)
		}
	})
	t.Run("an ID token is not an access token", func(t *testing.T) {
		// Same key, same claims, another typ: what RFC 9068 §4 guards against.
		if _, err := v.Verify(ctx, retyped(t, user.AccessToken)); codeOf(err) != errors.InvalidToken {
			t.Fatalf("%v", err)
		}
	})

	t.Run("middleware", func(t *testing.T) {
		api := httptest.NewServer(protected(v, "backup"))
		defer api.Close()
		get := func(tok string) *http.Response {
			req, _ := http.NewRequestWithContext(ctx, "GET", api.URL+"/notes", nil)
			if tok != "" {
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
		resp := get(user.AccessToken)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != fmt.Sprintf("hello %s via %s", addr, uc.ClientID) {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		// The client SDK reads the refusals.
		var ce *client.Error
		if !errors.As(client.ParseError(get(svc.AccessToken)), &ce) || ce.Status != 403 || ce.Code != errors.InsufficientScope ||
			ce.Scope != "backup" || ce.URI != s.Issuer+"/docs/errors#insufficient_scope" || ce.RequestID == "" {
			t.Fatalf("client_credentials token without backup: %+v", ce)
		}
		resp = get("")
		chs := client.ParseChallenges(resp.Header.Values("WWW-Authenticate"))
		if len(chs) != 1 || chs[0].Params["resource_metadata"] != v.MetadataURL() || chs[0].Params["error"] != "" {
			t.Fatalf("no credentials: %+v", chs)
		}
		resp.Body.Close()
	})
}

// retyped returns tok with its header's typ changed to JWT, the kid kept.
func retyped(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.SplitN(tok, ".", 3)
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(hb, &h); err != nil || h["typ"] != "at+jwt" || h["kid"] == nil {
		t.Fatalf("authd's header %s", hb)
	}
	h["typ"] = "JWT"
	hb, _ = json.Marshal(h)
	return b64(hb) + "." + parts[1] + "." + parts[2]
}
