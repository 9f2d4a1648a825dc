package resource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/internal/golden"
	"github.com/authd-dev/authd/resource"
)

const api = "https://api.example.com/v1"

// dump renders a response as the golden files hold it: status, sorted
// headers, blank line, body.
func dump(resp *http.Response) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP %d\n", resp.StatusCode)
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	body, _ := io.ReadAll(resp.Body)
	b.Write(body)
	return b.Bytes()
}

// protected is an API with one endpoint that needs scope "backup" and
// answers with the token's subject.
func protected(v *resource.Verifier, scopes ...string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(v.MetadataPath(), resource.MetadataHandler(v))
	mux.Handle("/notes", resource.Middleware(v, scopes...)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := resource.FromContext(r.Context())
		if !ok {
			http.Error(w, "no claims", 500)
			return
		}
		fmt.Fprintf(w, "hello %s via %s", c.Subject, c.ClientID)
	})))
	return mux
}

func TestMiddleware(t *testing.T) {
	ec := newECKey(t, "k1")
	as := newFakeAS(t, ec)
	v := newVerifier(t, resource.Config{Issuer: as.iss, Resource: api, ScopesSupported: []string{"notes", "backup"}})
	h := protected(v, "backup", "notes")
	now := time.Now()
	full := claimsAt(as.iss, api, now)
	full["scope"] = "notes backup profile"
	good := ec.sign(t, full, nil)
	partial := ec.sign(t, claimsAt(as.iss, api, now), nil) // profile backup
	for _, tc := range []struct {
		name   string
		target string
		header map[string]string
		status int
		body   string
	}{
		{name: "ok", target: "/notes", header: map[string]string{"Authorization": "Bearer " + good}, status: 200, body: "hello 1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH via c_123"},
		{name: "scheme is case-insensitive", target: "/notes", header: map[string]string{"Authorization": "bearer " + good}, status: 200},
		{name: "no credentials", target: "/notes", status: 401},
		{name: "invalid token", target: "/notes", header: map[string]string{"Authorization": "Bearer " + good[:len(good)-4] + "AAAA"}, status: 401},
		{name: "not a b64token", target: "/notes", header: map[string]string{"Authorization": "Bearer a b"}, status: 401},
		{name: "Basic", target: "/notes", header: map[string]string{"Authorization": "Basic dXNlcjpwdw=="}, status: 401},
		{name: "token in the query", target: "/notes?access_token=" + good, status: 401},
		{name: "insufficient scope", target: "/notes", header: map[string]string{"Authorization": "Bearer " + partial}, status: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.target, nil)
			req.Header.Set("X-Request-Id", "golden-request-0001")
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			resp := rec.Result()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 {
				if tc.body != "" && rec.Body.String() != tc.body {
					t.Fatalf("body %q", rec.Body.String())
				}
				return
			}
			out := bytes.ReplaceAll(dump(resp), []byte(as.iss), []byte("https://auth.example.com"))
			golden.Check(t, filepath.Join("testdata", "middleware", strings.ReplaceAll(tc.name, " ", "_")+".golden"), out)
		})
	}
}

// TestMiddlewareTwoAuthorizationHeaders: a request with two
// Authorization headers is refused whatever they hold.
func TestMiddlewareTwoAuthorizationHeaders(t *testing.T) {
	ec := newECKey(t, "k1")
	as := newFakeAS(t, ec)
	v := newVerifier(t, resource.Config{Issuer: as.iss, Resource: api})
	good := ec.sign(t, claimsAt(as.iss, api, time.Now()), nil)
	req := httptest.NewRequest("GET", "/notes", nil)
	req.Header.Add("Authorization", "Bearer "+good)
	req.Header.Add("Authorization", "Bearer "+good)
	rec := httptest.NewRecorder()
	protected(v).ServeHTTP(rec, req)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "more than once") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
}

// TestMiddlewareUnavailable: with authd unreachable and no keys, the API
// answers 503 temporarily_unavailable with Retry-After, not 401: the
// client's token may well be good.
func TestMiddlewareUnavailable(t *testing.T) {
	ec := newECKey(t, "k1")
	as := newFakeAS(t, ec)
	as.set(func(as *fakeAS) { as.down = true })
	v := newVerifier(t, resource.Config{Issuer: as.iss, Resource: api})
	req := httptest.NewRequest("GET", "/notes", nil)
	req.Header.Set("X-Request-Id", "golden-request-0001")
	req.Header.Set("Authorization", "Bearer "+ec.sign(t, claimsAt(as.iss, api, time.Now()), nil))
	rec := httptest.NewRecorder()
	protected(v).ServeHTTP(rec, req)
	out := bytes.ReplaceAll(dump(rec.Result()), []byte(as.iss), []byte("https://auth.example.com"))
	golden.Check(t, filepath.Join("testdata", "middleware", "unavailable.golden"), out)
}

// TestMiddlewareMatchesAuthd: for the same error, the middleware's answer
// is authd's own writer's, byte for byte, but for the challenge's
// resource_metadata parameter (RFC 9728 §5.1), which authd's own APIs do
// not send.
func TestMiddlewareMatchesAuthd(t *testing.T) {
	ec := newECKey(t, "k1")
	as := newFakeAS(t, ec)
	v := newVerifier(t, resource.Config{Issuer: as.iss, Resource: api, Realm: httperr.Realm})
	partial := ec.sign(t, claimsAt(as.iss, api, time.Now()), nil)
	for _, tc := range []struct {
		name   string
		auth   string
		scopes []string
		err    *errors.Error
	}{
		{"no credentials", "", nil, errors.E(errors.InvalidToken, "No access token: send Authorization: Bearer <token>")},
		{"bad token", "Bearer abc", nil, errors.E(errors.InvalidToken, "The access token is invalid or expired")},
		{"scope", "Bearer " + partial, []string{"notes"}, errors.E(errors.InsufficientScope, "The access token does not carry the notes scope").WithScope("notes")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			serve := func(h http.Handler) *http.Response {
				req := httptest.NewRequest("GET", "/notes", nil)
				req.Header.Set("X-Request-Id", "same-id")
				if tc.auth != "" {
					req.Header.Set("Authorization", tc.auth)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec.Result()
			}
			ours := serve(protected(v, tc.scopes...))
			theirs := serve(httperr.Middleware(httperr.Config{URIBase: as.iss + "/docs/errors", Logger: discard()},
				httperr.HandlerFunc(func(http.ResponseWriter, *http.Request) error { return tc.err })))
			if ours.StatusCode != theirs.StatusCode {
				t.Fatalf("status %d, authd %d", ours.StatusCode, theirs.StatusCode)
			}
			suffix := `, resource_metadata="` + v.MetadataURL() + `"`
			ch := ours.Header.Get("WWW-Authenticate")
			if !strings.HasSuffix(ch, suffix) || strings.TrimSuffix(ch, suffix) != theirs.Header.Get("WWW-Authenticate") {
				t.Errorf("challenge\n %s\nauthd's\n %s", ch, theirs.Header.Get("WWW-Authenticate"))
			}
			for _, k := range []string{"Content-Type", "Cache-Control", "Pragma", "X-Content-Type-Options", "X-Request-Id", "Retry-After"} {
				if ours.Header.Get(k) != theirs.Header.Get(k) {
					t.Errorf("%s: %q, authd %q", k, ours.Header.Get(k), theirs.Header.Get(k))
				}
			}
			ob, _ := io.ReadAll(ours.Body)
			tb, _ := io.ReadAll(theirs.Body)
			if !bytes.Equal(ob, tb) {
				t.Errorf("body\n %s\nauthd's\n %s", ob, tb)
			}
		})
	}
}

// TestMiddlewareSanitizes: configured texts that break the wire charset
// are forced into it, as authd's writer does.
func TestMiddlewareSanitizes(t *testing.T) {
	ec := newECKey(t, "k1")
	as := newFakeAS(t, ec)
	v := newVerifier(t, resource.Config{Issuer: as.iss, Resource: api, Realm: "my \"api\"\r\n", ErrorURIBase: "https://docs.example.com/err\"ors"})
	req := httptest.NewRequest("GET", "/notes", nil)
	req.Header.Set("Authorization", "Bearer "+ec.sign(t, claimsAt(as.iss, api, time.Now()), nil))
	rec := httptest.NewRecorder()
	protected(v, "sc\"ope").ServeHTTP(rec, req)
	ch := rec.Header().Get("WWW-Authenticate")
	want := `Bearer realm="my 'api'??", error="insufficient_scope", error_description="The access token does not carry the sc'ope scope", error_uri="https://docs.example.com/err%22ors#insufficient_scope", scope="sc'ope", resource_metadata="https://api.example.com/.well-known/oauth-protected-resource/v1"`
	if ch != want {
		t.Fatalf("challenge\n %s\nwant\n %s", ch, want)
	}
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error_uri"] != "https://docs.example.com/err%22ors#insufficient_scope" {
		t.Fatalf("body %s", rec.Body)
	}
}

func TestFromContext(t *testing.T) {
	if _, ok := resource.FromContext(context.Background()); ok {
		t.Fatal("claims from nowhere")
	}
	c := &resource.Claims{Subject: "s"}
	if got, ok := resource.FromContext(resource.NewContext(context.Background(), c)); !ok || got != c {
		t.Fatal("NewContext/FromContext")
	}
}

func TestMetadataHandler(t *testing.T) {
	for _, tc := range []struct{ resource, url, path string }{
		{"https://api.example.com", "https://api.example.com/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource"},
		{"https://api.example.com/", "https://api.example.com/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource"},
		{"https://api.example.com/v1", "https://api.example.com/.well-known/oauth-protected-resource/v1", "/.well-known/oauth-protected-resource/v1"},
		{"http://127.0.0.1:9000/a/b", "http://127.0.0.1:9000/.well-known/oauth-protected-resource/a/b", "/.well-known/oauth-protected-resource/a/b"},
	} {
		v := newVerifier(t, resource.Config{Issuer: "https://auth.example.com", Resource: tc.resource})
		if v.MetadataURL() != tc.url || v.MetadataPath() != tc.path {
			t.Errorf("%s: %s %s", tc.resource, v.MetadataURL(), v.MetadataPath())
		}
	}
	v := newVerifier(t, resource.Config{Issuer: "https://auth.example.com", Resource: api,
		ScopesSupported: []string{"notes"}, ResourceName: "Notes API", ResourceDocumentation: "https://api.example.com/docs"})
	h := protected(v)
	for _, method := range []string{"GET", "HEAD", "OPTIONS", "POST"} {
		req := httptest.NewRequest(method, "/.well-known/oauth-protected-resource/v1", nil)
		req.Header.Set("X-Request-Id", "golden-request-0001")
		req.Header.Set("Origin", "https://app.example")
		if method == "OPTIONS" {
			req.Header.Set("Access-Control-Request-Method", "GET")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		golden.Check(t, filepath.Join("testdata", "metadata", method+".golden"), dump(rec.Result()))
	}
}
