package clientdoc

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
)

// fakeResolver answers from a table, and counts its lookups.
type fakeResolver struct {
	hosts map[string][]string
	calls atomic.Int32
}

func (r *fakeResolver) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	r.calls.Add(1)
	var out []netip.Addr
	for _, s := range r.hosts[host] {
		a := netip.MustParseAddr(s)
		if (network == "ip4") == a.Is4() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// docServer serves handler on 127.0.0.1 and returns the client_id of its
// document at /oauth/client.json.
func docServer(t *testing.T, handler func(w http.ResponseWriter, r *http.Request, id string)) string {
	t.Helper()
	var id string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler(w, r, id) }))
	t.Cleanup(srv.Close)
	id = srv.URL + "/oauth/client.json"
	return id
}

// serveDoc writes a metadata document naming id.
func serveDoc(w http.ResponseWriter, id string) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"client_id":%q,"client_name":"Doc App","redirect_uris":["http://127.0.0.1:7777/cb"],"token_endpoint_auth_method":"none"}`, id)
}

// wantDocError checks that err is invalid_client_metadata whose
// description says want.
func wantDocError(t *testing.T, err error, want string) *errors.Error {
	t.Helper()
	var e *errors.Error
	if !errors.As(err, &e) || e.Code != errors.InvalidClientMetadata {
		t.Fatalf("got %v, want invalid_client_metadata", err)
	}
	if !strings.Contains(e.Description, want) {
		t.Fatalf("description %q does not say %q", e.Description, want)
	}
	if !strings.HasPrefix(e.Description, "Client ID Metadata Document: ") {
		t.Errorf("description %q does not say it is about the metadata document", e.Description)
	}
	return e
}

func TestFetchDocument(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	f := New(Config{AllowLoopback: true, Now: func() time.Time { return now }})
	var hits atomic.Int32
	id := docServer(t, func(w http.ResponseWriter, r *http.Request, id string) {
		hits.Add(1)
		if r.Header.Get("Accept") != "application/json" || r.Method != "GET" {
			t.Errorf("request %s Accept %q", r.Method, r.Header.Get("Accept"))
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		serveDoc(w, id)
	})
	doc, err := f.Fetch(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var name string
	json.Unmarshal(doc.Fields["client_name"], &name)
	if name != "Doc App" || string(doc.Body) == "" {
		t.Errorf("document %v", doc.Fields)
	}
	if want := now.Add(time.Hour); !doc.Expires.Equal(want) {
		t.Errorf("expires %v, want %v (max-age=3600)", doc.Expires, want)
	}
	if !f.IsURL(id) || !f.IsURL("https://app.example/c") || f.IsURL("abcdef") || New(Config{}).IsURL(id) {
		t.Error("IsURL")
	}
}

// TestFetchRefusals: every way a document can be unusable is
// invalid_client_metadata saying what was wrong, and never echoes what
// the server sent.
func TestFetchRefusals(t *testing.T) {
	const marker = "zz-fetched-bytes-zz"
	f := New(Config{AllowLoopback: true, Timeout: 500 * time.Millisecond})
	for _, tc := range []struct {
		name    string
		handler func(w http.ResponseWriter, r *http.Request, id string)
		want    string
	}{
		{"redirect", func(w http.ResponseWriter, r *http.Request, id string) {
			http.Redirect(w, r, "/elsewhere/"+marker, http.StatusFound)
		}, "redirect (HTTP 302)"},
		{"permanent redirect", func(w http.ResponseWriter, r *http.Request, id string) {
			http.Redirect(w, r, "https://app.example/"+marker, http.StatusPermanentRedirect)
		}, "redirects are not followed"},
		{"not found", func(w http.ResponseWriter, r *http.Request, id string) {
			http.Error(w, marker, http.StatusNotFound)
		}, "HTTP 404, not 200"},
		{"server error", func(w http.ResponseWriter, r *http.Request, id string) {
			http.Error(w, marker, http.StatusInternalServerError)
		}, "HTTP 500"},
		{"html", func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprintf(w, `{"client_id":%q}`, id)
		}, "Content-Type application/json"},
		{"oversize, declared", func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "6000")
			w.Write([]byte(`{"x":"` + strings.Repeat(marker, 6000/len(marker)) + `"}`)[:6000])
		}, "larger than 5120 bytes"},
		{"oversize, chunked", func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"client_id":%q,"pad":"`, id)
			w.(http.Flusher).Flush()
			for range 10 {
				w.Write([]byte(strings.Repeat("a", 1000)))
				w.(http.Flusher).Flush()
			}
			w.Write([]byte(`"}`))
		}, "larger than 5120 bytes"},
		{"slow headers", func(w http.ResponseWriter, r *http.Request, id string) {
			time.Sleep(time.Second)
			serveDoc(w, id)
		}, "did not answer within 500ms"},
		{"slow body", func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"client_id":%q,`, id)
			w.(http.Flusher).Flush()
			time.Sleep(time.Second)
			w.Write([]byte(`"x":1}`))
		}, "did not answer within 500ms"},
		{"not JSON", func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(marker))
		}, "not a JSON object"},
		{"JSON array", func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`["` + marker + `"]`))
		}, "not a JSON object"},
		{"no client_id", func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"client_name":"` + marker + `"}`))
		}, "no client_id member"},
		{"another client_id", func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"client_id":"https://evil.example/%s"}`, marker)
		}, "client_id member is not exactly the URL"},
		{"client_id differing in case", func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"client_id":%q}`, strings.ToUpper(id))
		}, "client_id member is not exactly the URL"},
		{"client_id not a string", func(w http.ResponseWriter, r *http.Request, id string) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"client_id":["` + marker + `"]}`))
		}, "client_id member is not exactly the URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := docServer(t, tc.handler)
			_, err := f.Fetch(context.Background(), id)
			e := wantDocError(t, err, tc.want)
			if strings.Contains(e.Description, marker) {
				t.Errorf("description %q echoes the fetched bytes", e.Description)
			}
		})
	}
}

// TestFetchAddresses: documents at loopback (without the exception),
// private, link-local and IPv6 special addresses, and names resolving to
// them, are refused before any connection, saying which kind of address.
func TestFetchAddresses(t *testing.T) {
	var served atomic.Int32
	loop := docServer(t, func(w http.ResponseWriter, r *http.Request, id string) {
		served.Add(1)
		serveDoc(w, id)
	})
	port := loop[strings.LastIndex(loop, ":")+1 : strings.Index(loop, "/oauth")]
	res := &fakeResolver{hosts: map[string][]string{
		"private.example":  {"10.1.2.3"},
		"loopback.example": {"127.0.0.1"},
		"mixed.example":    {"93.184.215.14", "192.168.0.10"},
		"cgnat.example":    {"100.64.1.1"},
		"ula.example":      {"fd00::5"},
		"mapped.example":   {"::ffff:127.0.0.1"},
		"nat64.example":    {"64:ff9b::7f00:1"},
		"meta.example":     {"169.254.169.254"},
	}}
	strict := New(Config{Resolver: res, Timeout: time.Second})
	loopback := New(Config{Resolver: res, Timeout: time.Second, AllowLoopback: true})
	for _, tc := range []struct {
		f    *Fetcher
		id   string
		want string
	}{
		{strict, loop, "must use https"},
		{strict, "https://127.0.0.1:" + port + "/oauth/client.json", "loopback"},
		{strict, "https://loopback.example:" + port + "/c", "loopback"},
		{strict, "https://private.example/c", "private-use"},
		{strict, "https://mixed.example/c", "private-use"},
		{strict, "https://cgnat.example/c", "carrier-grade NAT"},
		{strict, "https://meta.example/latest", "link-local"},
		{strict, "https://169.254.169.254/latest/meta-data/", "link-local"},
		{strict, "https://10.0.0.1/c", "private-use"},
		{strict, "https://0.0.0.0/c", "this network"},
		{strict, "https://[::1]:" + port + "/c", "loopback"},
		{strict, "https://[fe80::1]/c", "link-local"},
		{strict, "https://[::ffff:127.0.0.1]/c", "IPv4-mapped"},
		{strict, "https://[64:ff9b::a9fe:a9fe]/c", "NAT64"},
		{strict, "https://ula.example/c", "unique-local"},
		{strict, "https://mapped.example/c", "IPv4-mapped"},
		{strict, "https://nat64.example/c", "NAT64"},
		{strict, "https://nowhere.example/c", "could not be resolved"},
		// The loopback exception is http://127.0.0.1:PORT/… and nothing
		// else.
		{loopback, "https://127.0.0.1:" + port + "/oauth/client.json", "loopback"},
		{loopback, "https://loopback.example:" + port + "/c", "loopback"},
		{loopback, "http://localhost:" + port + "/oauth/client.json", "http://127.0.0.1:PORT/path"},
		{loopback, "http://127.0.0.1/oauth/client.json", "http://127.0.0.1:PORT/path"},
		{loopback, "http://127.0.0.2:" + port + "/c", "http://127.0.0.1:PORT/path"},
		{loopback, "https://private.example/c", "private-use"},
	} {
		_, err := tc.f.Fetch(context.Background(), tc.id)
		var e *errors.Error
		if !errors.As(err, &e) || e.Code != errors.InvalidClientMetadata || !strings.Contains(e.Description, tc.want) {
			t.Errorf("%s: %v, want invalid_client_metadata saying %q", tc.id, err, tc.want)
		}
	}
	if n := served.Load(); n != 0 {
		t.Errorf("the loopback document server was reached %d times", n)
	}
	// With the exception, exactly http://127.0.0.1:PORT is fetched.
	if _, err := loopback.Fetch(context.Background(), loop); err != nil || served.Load() != 1 {
		t.Errorf("loopback exception: %v (served %d)", err, served.Load())
	}
}

// TestDialChecksTheSocket: the last check, on the address the socket
// connects to, refuses what the first would have, whatever resolution
// said; and a name is resolved once per connection.
func TestDialChecksTheSocket(t *testing.T) {
	d := &dialer{refused: Refused}
	for _, a := range []string{"127.0.0.1:443", "10.0.0.1:443", "[::1]:443", "[fe80::1]:443", "169.254.169.254:80"} {
		if err := d.control("tcp", a, nil); err == nil {
			t.Errorf("control let the socket connect to %s", a)
		}
	}
	if err := d.control("tcp4", "93.184.215.14:443", nil); err != nil {
		t.Errorf("control refused a public address: %v", err)
	}
	// The loopback fetcher's dialer connects to 127.0.0.1 only.
	lf := New(Config{AllowLoopback: true})
	ld := lf.loopback.Transport.(*http.Transport)
	if _, err := ld.DialContext(context.Background(), "tcp", "10.0.0.1:80"); err == nil {
		t.Error("the loopback dialer connects to 10.0.0.1")
	}
	// One resolution per connection: a second, different answer (DNS
	// rebinding) is never asked for.
	res := &fakeResolver{hosts: map[string][]string{"private.example": {"10.1.2.3"}}}
	f := New(Config{Resolver: res})
	f.Fetch(context.Background(), "https://private.example/c")
	if n := res.calls.Load(); n != 2 { // A and AAAA
		t.Errorf("%d lookups for one fetch, want 2 (A and AAAA)", n)
	}
}

// TestFetchNoProxy: a proxy in the environment is never used; it would
// fetch from wherever it is.
func TestFetchNoProxy(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("NO_PROXY", "")
	id := docServer(t, func(w http.ResponseWriter, r *http.Request, id string) { serveDoc(w, id) })
	if _, err := New(Config{AllowLoopback: true}).Fetch(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

// TestFetchTLS: over https, the server's certificate must chain to a
// trusted root for its host. The address check is lifted here, inside
// the package, because the test server is on loopback.
func TestFetchTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveDoc(w, "https://"+r.Host+"/oauth/client.json")
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake
	t.Cleanup(srv.Close)
	id := srv.URL + "/oauth/client.json"
	anywhere := func(netip.Addr) string { return "" }

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	f := New(Config{RootCAs: pool})
	f.public = f.client(anywhere)
	if _, err := f.Fetch(context.Background(), id); err != nil {
		t.Fatalf("trusted test CA: %v", err)
	}
	untrusted := New(Config{})
	untrusted.public = untrusted.client(anywhere)
	_, err := untrusted.Fetch(context.Background(), id)
	wantDocError(t, err, "certificate is not trusted")
}

func TestCheckURL(t *testing.T) {
	f := New(Config{AllowLoopback: true})
	for _, ok := range []string{
		"https://app.example/oauth/client.json",
		"https://app.example/",
		"https://app.example:8443/c?v=1",
		"https://[2606:4700::1]/c",
		"http://127.0.0.1:8080/client.json",
	} {
		if _, err := f.CheckURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, tc := range []struct{ id, want string }{
		{"http://app.example/c", "must use https"},
		{"ftp://app.example/c", "must use https"},
		{"https://app.example", "must have a path"},
		{"https://app.example/c#frag", "fragment"},
		{"https://user:pw@app.example/c", "user information"},
		{"https://user@app.example/c", "user information"},
		{"https:///c", "name a host"},
		{"https://app.example/a/../c", `"." or ".." segments`},
		{"https://app.example/./c", `"." or ".." segments`},
		{"https://app.example/a/%2e%2e/c", `"." or ".." segments`},
		{"https://app.example/a/%2E/c", `"." or ".." segments`},
		{"https://app.example/c d", "printable ASCII"},
		{"https://app.example/c\x00", "printable ASCII"},
		{"https://app.example/é", "printable ASCII"},
		{"https://app.example:0/c", "port"},
		{"https://app.example:70000/c", "port"},
		{"https://app.example/" + strings.Repeat("a", MaxURLLength), "longer than"},
		{"https:app.example/c", "parse"},
		{"app.example/c", "must use https"},
	} {
		if _, err := f.CheckURL(tc.id); err == nil {
			t.Errorf("%q accepted", tc.id)
		} else {
			wantDocError(t, err, tc.want)
		}
	}
}

// FuzzCheckURL: CheckURL never panics, and what it accepts can be
// fetched safely: https (or the exact loopback exception), a host, a
// path, no fragment or user information.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://app.example/c", "http://127.0.0.1:1/c", "https://a/../b", "https://[::1]/x", "https://u@h/p#f", "https://h/%2e%2E"} {
		f.Add(s)
	}
	fe := New(Config{AllowLoopback: true})
	f.Fuzz(func(t *testing.T, id string) {
		u, err := fe.CheckURL(id)
		if err != nil {
			return
		}
		if strings.Contains(id, "#") || u.User != nil || u.Host == "" || u.EscapedPath() == "" || len(id) > MaxURLLength {
			t.Fatalf("accepted %q", id)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && strings.HasPrefix(id, loopbackPrefix) && u.Hostname() == "127.0.0.1") {
			t.Fatalf("accepted scheme of %q", id)
		}
		for _, seg := range strings.Split(u.Path, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("accepted dot segment in %q", id)
			}
		}
	})
}

func TestFreshness(t *testing.T) {
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    map[string]string
		want time.Duration
	}{
		{nil, MinFreshness},
		{map[string]string{"Cache-Control": "max-age=3600"}, time.Hour},
		{map[string]string{"Cache-Control": "public, max-age=600, must-revalidate"}, 10 * time.Minute},
		{map[string]string{"Cache-Control": "max-age=3600, s-maxage=7200"}, 2 * time.Hour},
		{map[string]string{"Cache-Control": "max-age=60"}, MinFreshness},
		{map[string]string{"Cache-Control": "max-age=999999"}, MaxFreshness},
		{map[string]string{"Cache-Control": "max-age=99999999999999"}, MaxFreshness},
		{map[string]string{"Cache-Control": "max-age=nonsense"}, MinFreshness},
		{map[string]string{"Cache-Control": "no-store"}, MinFreshness},
		{map[string]string{"Cache-Control": "no-cache, max-age=3600"}, MinFreshness},
		{map[string]string{"Cache-Control": "max-age=7200", "Age": "3600"}, time.Hour},
		{map[string]string{"Expires": now.Add(3 * time.Hour).Format(http.TimeFormat), "Date": now.Format(http.TimeFormat)}, 3 * time.Hour},
		{map[string]string{"Expires": now.Add(3 * time.Hour).Format(http.TimeFormat)}, 3 * time.Hour},
		{map[string]string{"Expires": "0"}, MinFreshness},
		{map[string]string{"Expires": now.Add(3 * time.Hour).Format(http.TimeFormat), "Cache-Control": "max-age=1800"}, 30 * time.Minute},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		if got := Freshness(h, now); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.h, got, tc.want)
		}
	}
}
