package client_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/client"
	"github.com/authd-dev/authd/errors"
)

// fakeSigner numbers its tokens and writes what it signed into them.
type fakeSigner struct {
	mu    sync.Mutex
	n     int
	times []time.Time
	err   error
}

func (f *fakeSigner) Token(opts authtoken.TokenOptions) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.n++
	f.times = append(f.times, opts.Timestamp)
	target := opts.RequestPath
	if opts.URL != "" {
		target = opts.Method + " " + opts.URL
	}
	return "tok-" + strconv.Itoa(f.n) + "|" + target + "|" + string(opts.Body), nil
}

func TestSigningTransport(t *testing.T) {
	s, srv := newScript(t, ra(200, ""))
	host := strings.TrimPrefix(srv.URL, "http://")
	signer := &fakeSigner{}
	st := &client.SigningTransport{Signer: signer}
	for i, tc := range []struct {
		method, path, body string
		unbound            bool
		host               string
		want               string
	}{
		{method: "GET", path: "/backup", unbound: true, want: "/backup|"},
		{method: "GET", path: "/authorize?client_id=a%20b&scope=profile+backup&x=%2F", unbound: true, want: "/authorize?client_id=a%20b&scope=profile+backup&x=%2F|"},
		{method: "GET", path: "/a%2Fb/c", unbound: true, want: "/a%2Fb/c|"},
		{method: "PUT", path: "/backup", body: "QUJD", unbound: true, want: "/backup|QUJD"},
		{method: "DELETE", path: "/backup?x=1", want: "DELETE http://" + host + "/backup?x=1|"},
		{method: "GET", path: "/authorize?client_id=a%20b&x=%2F", want: "GET http://" + host + "/authorize?client_id=a%20b&x=%2F|"},
		{method: "POST", path: "/p", body: "b", host: "auth.example.com", want: "POST http://auth.example.com/p|b"},
	} {
		st.Unbound = tc.unbound
		req := mustRequest(t, tc.method, srv.URL+tc.path, tc.body)
		req.Host = tc.host
		req.Header.Set("X-Keep", "1")
		resp, err := st.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := s.seen()[i]
		want := "tok-" + strconv.Itoa(i+1) + "|" + tc.want
		if got.token != want || got.body != tc.body || got.target != tc.path {
			t.Errorf("%s %s: server saw %+v, want token %q", tc.method, tc.path, got, want)
		}
		if req.Header.Get("X-Auth-Token") != "" {
			t.Error("the caller's request was modified")
		}
	}
}

func TestSigningTransportFailures(t *testing.T) {
	s, srv := newScript(t, ra(200, ""))
	st := &client.SigningTransport{Signer: &fakeSigner{}, MaxBody: 4}
	// Declared too large: refused before reading.
	if _, err := st.RoundTrip(mustRequest(t, "PUT", srv.URL, "12345")); !errors.Is(err, client.ErrBodyTooLarge) {
		t.Errorf("declared 5 bytes: %v", err)
	}
	// Streamed too large.
	req := mustRequest(t, "PUT", srv.URL, "")
	req.Body = io.NopCloser(strings.NewReader("12345"))
	req.ContentLength = -1
	if _, err := st.RoundTrip(req); !errors.Is(err, client.ErrBodyTooLarge) {
		t.Errorf("streamed 5 bytes: %v", err)
	}
	// At the limit: sent.
	if resp, err := st.RoundTrip(mustRequest(t, "PUT", srv.URL, "1234")); err != nil || resp.StatusCode != 200 {
		t.Errorf("4 bytes: %v", err)
	}
	// A signer's failure stops the request.
	boom := errors.New("no key")
	st = &client.SigningTransport{Signer: &fakeSigner{err: boom}}
	if _, err := st.RoundTrip(mustRequest(t, "GET", srv.URL, "")); !errors.Is(err, boom) {
		t.Errorf("signer failure: %v", err)
	}
	if n := len(s.seen()); n != 1 {
		t.Errorf("%d requests reached the server, want 1", n)
	}
}

// TestSigningClock: every attempt is signed at its own time.
func TestSigningClock(t *testing.T) {
	_, srv := newScript(t, ra(503, "0"), ra(200, ""))
	signer := &fakeSigner{}
	clock := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	st := &client.SigningTransport{Signer: signer, Now: func() time.Time { clock = clock.Add(time.Second); return clock }}
	rt := &client.RetryTransport{Next: st}
	instantWaits(rt)
	resp, err := rt.RoundTrip(mustRequest(t, "GET", srv.URL, ""))
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	}
	if len(signer.times) != 2 || !signer.times[1].After(signer.times[0]) {
		t.Fatalf("signing times %v", signer.times)
	}
}

// TestSigningTransportOrigin: with Origin set, a request to any other
// scheme, host or port is refused before anything is signed or sent.
func TestSigningTransportOrigin(t *testing.T) {
	s, srv := newScript(t, ra(200, ""))
	signer := &fakeSigner{}
	st := &client.SigningTransport{Signer: signer, Origin: srv.URL + "/tenant"}
	resp, err := st.RoundTrip(mustRequest(t, "GET", strings.ToUpper(srv.URL[:4])+srv.URL[4:]+"/backup", ""))
	if err != nil {
		t.Fatalf("same origin: %v", err)
	}
	resp.Body.Close()
	for _, u := range []string{"http://evil.example/backup", "https" + srv.URL[4:] + "/backup", srv.URL + "0/backup"} {
		if _, err := st.RoundTrip(mustRequest(t, "GET", u, "")); !errors.Is(err, client.ErrForeignOrigin) {
			t.Errorf("%s: %v", u, err)
		}
	}
	if signer.n != 1 || len(s.seen()) != 1 {
		t.Fatalf("%d signed, %d sent; want 1, 1", signer.n, len(s.seen()))
	}
}

// TestSignedClientNoRedirects: NewSignedClient does not follow a redirect,
// so it never signs a request for the server a redirect names.
func TestSignedClientNoRedirects(t *testing.T) {
	other, otherSrv := newScript(t, ra(200, ""))
	_, srv := newScript(t, answer{302, map[string]string{"Location": otherSrv.URL + "/backup"}})
	signer, err := authtoken.NewSigner("L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.NewSignedClient(srv.URL, signer).Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || len(other.seen()) != 0 {
		t.Fatalf("status %d; the other server saw %d requests", resp.StatusCode, len(other.seen()))
	}
}

// TestSigningTransportRealTokens: tokens made by authtoken's Signer
// through the transport verify at a server that checks them against the
// request exactly as it arrived (r.RequestURI, the body read), in every
// syntax and scheme, bound and unbound.
func TestSigningTransportRealTokens(t *testing.T) {
	signer, err := authtoken.NewSigner("L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7")
	if err != nil {
		t.Fatal(err)
	}
	var issuer string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		res, err := authtoken.VerifyToken(r.Header.Get("X-Auth-Token"),
			authtoken.Request{Method: r.Method, Target: r.RequestURI, Issuer: issuer}, body, time.Now(), 0)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s %s %v", res.Address, res.Scheme, res.Bound)
	}))
	issuer = "http://" + srv.Listener.Addr().String() // before Start: the handler reads it
	srv.Start()
	defer srv.Close()
	for _, format := range []string{authtoken.FormatSigma, authtoken.FormatBitcoinAuth} {
		for _, scheme := range []string{authtoken.SchemeBSM, authtoken.SchemeBRC77} {
			if format == authtoken.FormatSigma && scheme == authtoken.SchemeBRC77 {
				continue
			}
			for _, bound := range []bool{false, true} {
				for _, tc := range []struct{ method, path, body string }{
					{"GET", "/backup", ""},
					{"PUT", "/backup?v=a%20b&x=%2F", "c2VjcmV0IGJhY2t1cA=="},
					{"DELETE", "/a%2Fb/c?q=1+2", ""},
				} {
					name := fmt.Sprintf("%s/%s/bound=%v/%s %s", format, scheme, bound, tc.method, tc.path)
					st := &client.SigningTransport{Signer: signer, Format: format, Scheme: scheme, Unbound: !bound, Origin: issuer}
					resp, err := st.RoundTrip(mustRequest(t, tc.method, srv.URL+tc.path, tc.body))
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					wantScheme := scheme
					if format == authtoken.FormatSigma {
						wantScheme = authtoken.SchemeSigma
					}
					if want := fmt.Sprintf("%s %s %v", signer.Address(), wantScheme, bound); resp.StatusCode != 200 || string(b) != want {
						t.Errorf("%s: %d %s; want %s", name, resp.StatusCode, b, want)
					}
				}
			}
		}
	}
}
