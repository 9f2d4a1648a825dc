package oauth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd-dev/authd/clientdoc"
	"github.com/authd-dev/authd/errors"
)

// fakeDocs serves documents from memory, counting fetches; a fetch waits
// for release when it is set.
type fakeDocs struct {
	fetches atomic.Int32
	release chan struct{}
	fail    bool
	expires time.Time
}

func (f *fakeDocs) IsURL(id string) bool { return len(id) > 8 && id[:8] == "https://" }

func (f *fakeDocs) Fetch(ctx context.Context, id string) (*clientdoc.Document, error) {
	f.fetches.Add(1)
	if f.release != nil {
		<-f.release
	}
	if f.fail {
		return nil, errors.E(errors.InvalidClientMetadata, "Client ID Metadata Document: the server answered HTTP 500, not 200")
	}
	body := fmt.Sprintf(`{"client_id":%q,"client_name":"Doc","redirect_uris":["https://app.example/cb"],"token_endpoint_auth_method":"none"}`, id)
	return &clientdoc.Document{Body: []byte(body), Expires: f.expires}, nil
}

// TestDocCache: documents are cached until they expire, at most size of
// them, least recently used out first; failures are never cached; and
// concurrent lookups of one client_id make one fetch.
func TestDocCache(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	f := &fakeDocs{expires: now.Add(10 * time.Minute)}
	s := &Server{issuer: "https://auth.example.com", now: clock}
	s.docs = newDocClients(f, 2, clock)
	ctx := context.Background()
	get := func(id string) *Client {
		t.Helper()
		c, err := s.lookupClient(ctx, id)
		if err != nil || c == nil || c.ID != id || c.Registration != RegisteredByDocument || !c.Public {
			t.Fatalf("lookup %s: %+v %v", id, c, err)
		}
		return c
	}
	a, b, c := "https://a.example/c", "https://b.example/c", "https://c.example/c"
	get(a)
	get(a)
	if n := f.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for two lookups of a fresh document", n)
	}
	get(b)
	get(a) // a is now the most recently used
	get(c) // evicts b
	if s.docs.len() != 2 {
		t.Errorf("cache holds %d documents, bound 2", s.docs.len())
	}
	f.fetches.Store(0)
	get(a)
	get(c)
	if n := f.fetches.Load(); n != 0 {
		t.Errorf("a and c were refetched (%d)", n)
	}
	get(b)
	if n := f.fetches.Load(); n != 1 {
		t.Errorf("b was not refetched after its eviction (%d)", n)
	}

	// Expiry: one nanosecond before, cached; at the instant, fetched.
	f.fetches.Store(0)
	f.expires = now.Add(20 * time.Minute)
	advance(10*time.Minute - time.Nanosecond)
	get(c) // cached with b; a was the least recently used
	if n := f.fetches.Load(); n != 0 {
		t.Errorf("fetched before expiry (%d)", n)
	}
	advance(time.Nanosecond)
	get(c)
	if n := f.fetches.Load(); n != 1 {
		t.Errorf("not fetched at expiry (%d)", n)
	}

	// Failures are not cached.
	f.fail = true
	f.fetches.Store(0)
	for range 2 {
		if _, err := s.lookupClient(ctx, "https://d.example/c"); errors.CodeOf(err) != errors.InvalidClientMetadata {
			t.Fatalf("failed fetch: %v", err)
		}
	}
	if n := f.fetches.Load(); n != 2 {
		t.Errorf("%d fetches for two lookups of a failing document; failures must not be cached", n)
	}
	f.fail = false

	// Concurrent lookups share one fetch.
	f.fetches.Store(0)
	f.release = make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); get("https://e.example/c") }()
	}
	time.Sleep(50 * time.Millisecond)
	close(f.release)
	wg.Wait()
	if n := f.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for 8 concurrent lookups", n)
	}
}

// FuzzClientMetadata feeds arbitrary JSON to the client metadata parser
// of registrations and metadata documents: it never panics, fails only
// with the registration errors, and what it accepts obeys every rule.
func FuzzClientMetadata(f *testing.F) {
	for _, s := range []string{
		`{"redirect_uris":["http://localhost:1/cb"],"token_endpoint_auth_method":"none","grant_types":["authorization_code","refresh_token"]}`,
		`{"redirect_uris":["https://a.example/cb"],"application_type":"web","scope":"openid profile"}`,
		`{"redirect_uris":["com.example.app:/cb"],"client_name":"App","resources":["https://mcp.example/mcp"]}`,
		`{"grant_types":["client_credentials"],"response_types":[]}`,
		`{"redirect_uris":"x","software_statement":"a.b.c"}`,
		`{"client_name":"\u202e","contacts":["a@b"],"client_uri":"https://a.example"}`,
		`[]`, `null`, `{"redirect_uris":[null]}`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	s := &Server{issuer: "https://auth.example.com", cfg: Config{Resources: []string{"https://mcp.example/mcp"}}}
	f.Fuzz(func(t *testing.T, raw []byte, doc bool) {
		src := fromRegistration
		if doc {
			src = fromDocument
		}
		c, e := s.parseClientMetadata(raw, src)
		if e != nil {
			switch e.Code {
			case errors.InvalidClientMetadata, errors.InvalidRedirectURI, errors.InvalidSoftwareStatement:
			default:
				t.Fatalf("code %s", e.Code)
			}
			if c != nil {
				t.Fatal("a client with an error")
			}
			return
		}
		if doc && !c.Public {
			t.Fatal("a confidential document client")
		}
		if c.Public && c.allows(GrantClientCredentials) {
			t.Fatal("a public client with client_credentials")
		}
		if c.allows(GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
			t.Fatal("authorization_code without redirect URIs")
		}
		if c.allows(GrantRefreshToken) && !c.allows(GrantAuthorizationCode) {
			t.Fatal("refresh_token without authorization_code")
		}
		for _, u := range c.RedirectURIs {
			if CheckRedirectURI(u) != nil || (c.ApplicationType == appWeb && !strings.HasPrefix(u, "https:")) {
				t.Fatalf("accepted redirect URI %q for a %s client", u, c.ApplicationType)
			}
		}
		if c.ApplicationType != appWeb && c.ApplicationType != appNative {
			t.Fatalf("application type %q", c.ApplicationType)
		}
		if !subset(c.Scopes, scopesSupported) || !subset(c.Resources, s.cfg.Resources) {
			t.Fatalf("scopes %q, resources %q", c.Scopes, c.Resources)
		}
		if plainText("client_name", c.Name, 200) != nil || (c.IDTokenAlg != AlgRS256 && c.IDTokenAlg != AlgES256) {
			t.Fatalf("name %q, alg %q", c.Name, c.IDTokenAlg)
		}
	})
}
