package client_test

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

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

func (f *fakeSigner) SignRequest(target string, body []byte, now time.Time) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return "", f.err
	}
	f.n++
	f.times = append(f.times, now)
	return "tok-" + strconv.Itoa(f.n) + "|" + target + "|" + string(body), nil
}

func TestSigningTransport(t *testing.T) {
	s, srv := newScript(t, ra(200, ""))
	host := strings.TrimPrefix(srv.URL, "http://")
	signer := &fakeSigner{}
	st := &client.SigningTransport{Signer: signer}
	for i, tc := range []struct {
		method, path, body string
		bound              bool
		host               string
		want               string
	}{
		{method: "GET", path: "/backup", want: "/backup|"},
		{method: "GET", path: "/authorize?client_id=a%20b&scope=profile+backup&x=%2F", want: "/authorize?client_id=a%20b&scope=profile+backup&x=%2F|"},
		{method: "GET", path: "/a%2Fb/c", want: "/a%2Fb/c|"},
		{method: "PUT", path: "/backup", body: "QUJD", want: "/backup|QUJD"},
		{method: "DELETE", path: "/backup?x=1", bound: true, want: "DELETE http://" + host + "/backup?x=1|"},
		{method: "POST", path: "/p", body: "b", bound: true, host: "auth.example.com", want: "POST http://auth.example.com/p|b"},
	} {
		st.Bound = tc.bound
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
