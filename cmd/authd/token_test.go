package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
	"github.com/authd-dev/authd/sigauth"
	"github.com/redis/go-redis/v9"
)

// Test key: Bitcoin Core's message_sign key (util_tests.cpp), compressed.
const (
	cliTestWIF     = "L4WVo4zZ8QC795KtwPyqgH92T7Q23FC4p4wGkFeZiaWeyewugte7"
	cliTestAddress = "15CRxFdyRpGZLW9w8HnHvVduizdL5jKNbs"
)

type signRun struct {
	stdout, stderr string
	err            error
}

func runSign(t *testing.T, args []string, env map[string]string, stdin string) signRun {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err := runTokenSign(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errOut)
	return signRun{out.String(), errOut.String(), err}
}

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTokenSign(t *testing.T) {
	keyFile := writeFile(t, "key.wif", cliTestWIF+"\n", 0o600)
	openKeyFile := writeFile(t, "open.wif", cliTestWIF, 0o644)
	body := `c2FsdHNhbHRzYWx0c2FsdGl2aXZpdml2Y2lwaGVydGV4dA==`
	bodyFile := writeFile(t, "backup.txt", body, 0o600)
	const ts = "2026-11-21T22:00:00.000Z"
	at, _ := time.Parse(time.RFC3339, ts)

	const iss = "https://auth.example.com"
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		stdin      string
		method     string // request method the token must verify for (GET)
		target     string // request-target the token must verify for
		body       string
		scheme     string
		unbound    bool
		warn       string // substring expected on stderr
		verifyAt   time.Time
		wantPrefix string
		issuer     string // the issuer the token is bound to, when not iss
	}{
		{name: "path alone signs for the local default issuer", args: []string{"--wif-file", keyFile, "--method", "PUT", "--path", "/backup"}, method: "PUT", target: "/backup", scheme: "sigma",
			warn: "signing for http://127.0.0.1:8080/backup", issuer: "http://127.0.0.1:8080"},
		{name: "path alone follows AUTHD_ADDR", args: []string{"--wif-file", keyFile, "--path", "/backup"}, env: map[string]string{"AUTHD_ADDR": "0.0.0.0:9000"}, target: "/backup", scheme: "sigma",
			warn: "signing for http://localhost:9000/backup", issuer: "http://localhost:9000"},
		{name: "wif-file, url", args: []string{"--wif-file", keyFile, "--url", iss + "/backup"}, target: "/backup", scheme: "sigma", wantPrefix: "sigma-bound:"},
		{name: "wif from stdin", args: []string{"--wif", "-", "--url", iss + "/backup"}, stdin: cliTestWIF + "\n", target: "/backup", scheme: "sigma"},
		{name: "AUTHD_WIF", args: []string{"--url", iss + "/backup"}, env: map[string]string{"AUTHD_WIF": " " + cliTestWIF + "\n"}, target: "/backup", scheme: "sigma"},
		{name: "wif argument warns", args: []string{"--wif", cliTestWIF, "--url", iss + "/backup"}, target: "/backup", scheme: "sigma", warn: "shell history"},
		{name: "flag beats AUTHD_WIF", args: []string{"--wif-file", keyFile, "--url", iss + "/backup"}, env: map[string]string{"AUTHD_WIF": "garbage"}, target: "/backup", scheme: "sigma"},
		{name: "readable key file warns", args: []string{"--wif-file", openKeyFile, "--url", iss + "/backup"}, target: "/backup", scheme: "sigma", warn: "readable by other users"},
		{name: "method and body file", args: []string{"--wif-file", keyFile, "--method", "PUT", "--url", iss + "/backup", "--body", bodyFile}, method: "PUT", target: "/backup", body: body, scheme: "sigma"},
		{name: "body from stdin", args: []string{"--wif-file", keyFile, "--method", "PUT", "--url", iss + "/backup", "--body", "-"}, stdin: body, method: "PUT", target: "/backup", body: body, scheme: "sigma"},
		{name: "issuer and path", args: []string{"--wif-file", keyFile, "--method", "DELETE", "--issuer", iss, "--path", "/backup"}, method: "DELETE", target: "/backup", scheme: "sigma"},
		{name: "issuer with slash", args: []string{"--wif-file", keyFile, "--issuer", iss + "/", "--path", "/backup"}, target: "/backup", scheme: "sigma"},
		{name: "AUTHD_ISSUER and path", args: []string{"--wif-file", keyFile, "--path", "/authorize?client_id=app&state=a%20b"}, env: map[string]string{"AUTHD_ISSUER": iss}, target: "/authorize?client_id=app&state=a%20b", scheme: "sigma"},
		{name: "--issuer beats AUTHD_ISSUER", args: []string{"--wif-file", keyFile, "--issuer", iss, "--path", "/backup"}, env: map[string]string{"AUTHD_ISSUER": "https://other.example.com"}, target: "/backup", scheme: "sigma"},
		{name: "unbound", args: []string{"--wif-file", keyFile, "--unbound", "--path", "/backup"}, target: "/backup", scheme: "sigma", unbound: true, wantPrefix: "sigma:" + cliTestAddress + ":"},
		{name: "unbound query", args: []string{"--wif-file", keyFile, "--unbound", "--path", "/authorize?client_id=app&state=a%20b"}, target: "/authorize?client_id=app&state=a%20b", scheme: "sigma", unbound: true},
		{name: "timestamp", args: []string{"--wif-file", keyFile, "--url", iss + "/backup", "--timestamp", ts}, target: "/backup", scheme: "sigma",
			verifyAt: at, wantPrefix: "sigma-bound:" + cliTestAddress + ":" + ts + "|"},
		{name: "timestamp with offset becomes UTC", args: []string{"--wif-file", keyFile, "--unbound", "--path", "/backup", "--timestamp", "2026-11-21T23:00:00+01:00"}, target: "/backup", scheme: "sigma",
			unbound: true, verifyAt: at, wantPrefix: "sigma:" + cliTestAddress + ":" + ts + "|"},
		{name: "bitcoin-auth bsm", args: []string{"--wif-file", keyFile, "--url", iss + "/backup", "--format", "bitcoin-auth"}, target: "/backup", scheme: "bsm"},
		{name: "bitcoin-auth bsm unbound", args: []string{"--wif-file", keyFile, "--unbound", "--path", "/backup", "--format", "bitcoin-auth"}, target: "/backup", scheme: "bsm", unbound: true},
		{name: "bitcoin-auth brc77 body", args: []string{"--wif-file", keyFile, "--method", "POST", "--url", iss + "/backup", "--format", "bitcoin-auth", "--scheme", "brc77", "--body", bodyFile}, method: "POST", target: "/backup", body: body, scheme: "brc77"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSign(t, tt.args, tt.env, tt.stdin)
			if r.err != nil {
				t.Fatalf("error %v; stderr %q", r.err, r.stderr)
			}
			if !strings.HasSuffix(r.stdout, "\n") || strings.Count(r.stdout, "\n") != 1 {
				t.Fatalf("stdout %q is not one line", r.stdout)
			}
			token := strings.TrimSuffix(r.stdout, "\n")
			if tt.warn != "" && !strings.Contains(r.stderr, tt.warn) {
				t.Errorf("stderr %q lacks %q", r.stderr, tt.warn)
			}
			if tt.warn == "" && r.stderr != "" {
				t.Errorf("unexpected stderr %q", r.stderr)
			}
			if strings.Contains(r.stderr, cliTestWIF) || strings.Contains(token, cliTestWIF) {
				t.Error("the key was printed")
			}
			if tt.wantPrefix != "" && !strings.HasPrefix(token, tt.wantPrefix) {
				t.Errorf("token %q, want prefix %q", token, tt.wantPrefix)
			}
			now := tt.verifyAt
			if now.IsZero() {
				now = time.Now()
			}
			method := tt.method
			if method == "" {
				method = "GET"
			}
			issuer := iss
			if tt.issuer != "" {
				issuer = tt.issuer
			}
			req := authtoken.Request{Method: method, Target: tt.target, Issuer: issuer}
			id, err := authtoken.VerifyToken(token, req, []byte(tt.body), now, 0)
			if err != nil {
				t.Fatalf("VerifyToken(%q): %v", token, err)
			}
			if id.Address != cliTestAddress || id.Scheme != tt.scheme || id.Bound == tt.unbound {
				t.Errorf("identity %+v", id)
			}
			if _, err := authtoken.VerifyToken(token, req, []byte(tt.body+"x"), now, 0); errors.CodeOf(err) != errors.InvalidSignature {
				t.Errorf("other body: %v", err)
			}
			// A bound token is good for its method and server only.
			other := req
			other.Method, other.Issuer = "PATCH", "https://other.example.com"
			if _, err := authtoken.VerifyToken(token, other, []byte(tt.body), now, 0); (err == nil) != tt.unbound {
				t.Errorf("another method and server: %v", err)
			}
		})
	}
}

// TestTokenSignCurl: what the README's curl line sends is accepted by the
// server's verifier, the way the server would receive it.
func TestTokenSignCurl(t *testing.T) {
	keyFile := writeFile(t, "key.wif", cliTestWIF+"\n", 0o600)
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	v := sigauth.NewVerifier(sigauth.Config{Redis: rdb, RequireBinding: true, Issuer: issuer})
	var got sigauth.Identity
	srv.Config.Handler = httperr.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		id, err := v.Authenticate(r)
		got = id
		return err
	})
	srv.Start()
	defer srv.Close()

	for _, args := range [][]string{
		{"--wif-file", keyFile, "--method", "DELETE", "--url", issuer + "/backup?v=1"},
		{"--wif-file", keyFile, "--method", "DELETE", "--issuer", issuer, "--path", "/backup?v=1", "--format", "bitcoin-auth", "--scheme", "brc77"},
	} {
		r := runSign(t, args, nil, "")
		if r.err != nil {
			t.Fatal(r.err)
		}
		req, _ := http.NewRequest("DELETE", issuer+"/backup?v=1", nil)
		req.Header.Set("X-Auth-Token", strings.TrimSpace(r.stdout))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || got.Address != cliTestAddress {
			t.Errorf("%v: status %d, identity %+v", args, resp.StatusCode, got)
		}
	}
	// --unbound: refused for a DELETE by a server that requires binding.
	r := runSign(t, []string{"--wif-file", keyFile, "--unbound", "--path", "/backup"}, nil, "")
	req, _ := http.NewRequest("DELETE", issuer+"/backup", nil)
	req.Header.Set("X-Auth-Token", strings.TrimSpace(r.stdout))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "bound request target") {
		t.Errorf("unbound DELETE: %d %s", resp.StatusCode, b)
	}
}

func TestTokenSignErrors(t *testing.T) {
	keyFile := writeFile(t, "key.wif", cliTestWIF, 0o600)
	emptyFile := writeFile(t, "empty.wif", "\n", 0o600)
	testnetFile := writeFile(t, "testnet.wif", "cUeKHd5orzT3mz8P9pxyREHfsWtVfgsfDjiZZBcjUBAaGk1BTj7N", 0o600)
	badKey := cliTestWIF[:len(cliTestWIF)-1] + "8"
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string // substring of the error
	}{
		{"no key", []string{"--url", "https://auth.example.com/backup"}, nil, "no private key"},
		{"no target", []string{"--wif-file", keyFile}, nil, "--url https://auth.example.com/backup"},
		{"path with a bad AUTHD_ADDR", []string{"--wif-file", keyFile, "--path", "/backup"}, map[string]string{"AUTHD_ADDR": "nonsense"}, "AUTHD_ADDR"},
		{"issuer without path", []string{"--wif-file", keyFile, "--issuer", "https://auth.example.com"}, nil, "--issuer needs --path"},
		{"url and path", []string{"--wif-file", keyFile, "--url", "https://auth.example.com/backup", "--path", "/backup"}, nil, "not both"},
		{"url and issuer", []string{"--wif-file", keyFile, "--url", "https://auth.example.com/backup", "--issuer", "https://auth.example.com"}, nil, "not both"},
		{"relative url", []string{"--wif-file", keyFile, "--url", "/backup"}, nil, "--url"},
		{"url with fragment", []string{"--wif-file", keyFile, "--url", "https://auth.example.com/backup#x"}, nil, "--url"},
		{"url with user", []string{"--wif-file", keyFile, "--url", "https://u:p@auth.example.com/backup"}, nil, "user info"},
		{"bad issuer", []string{"--wif-file", keyFile, "--issuer", "auth.example.com", "--path", "/backup"}, nil, "issuer"},
		{"bad method", []string{"--wif-file", keyFile, "--method", "GE T", "--url", "https://auth.example.com/backup"}, nil, "method"},
		{"unbound with url", []string{"--wif-file", keyFile, "--unbound", "--url", "https://auth.example.com/backup"}, nil, "drop --url"},
		{"unbound with method", []string{"--wif-file", keyFile, "--unbound", "--method", "PUT", "--path", "/backup"}, nil, "drop --method"},
		{"unbound without path", []string{"--wif-file", keyFile, "--unbound"}, nil, "--unbound needs --path"},
		{"relative path", []string{"--wif-file", keyFile, "--unbound", "--path", "backup"}, nil, "must start with /"},
		{"two keys", []string{"--wif-file", keyFile, "--wif", "-", "--unbound", "--path", "/backup"}, nil, "not both"},
		{"two stdin readers", []string{"--wif", "-", "--body", "-", "--unbound", "--path", "/backup"}, nil, "standard input"},
		{"missing key file", []string{"--wif-file", "/nonexistent/key.wif", "--unbound", "--path", "/backup"}, nil, "--wif-file"},
		{"empty key file", []string{"--wif-file", emptyFile, "--unbound", "--path", "/backup"}, nil, "no key"},
		{"testnet key", []string{"--wif-file", testnetFile, "--unbound", "--path", "/backup"}, nil, "testnet"},
		{"bad key", []string{"--wif", badKey, "--unbound", "--path", "/backup"}, nil, "WIF"},
		{"bad env key", []string{"--unbound", "--path", "/backup"}, map[string]string{"AUTHD_WIF": badKey}, "WIF"},
		{"bad format", []string{"--wif-file", keyFile, "--unbound", "--path", "/backup", "--format", "jwt"}, nil, "--format"},
		{"bad scheme", []string{"--wif-file", keyFile, "--unbound", "--path", "/backup", "--format", "bitcoin-auth", "--scheme", "ecdsa"}, nil, "--scheme"},
		{"brc77 needs bitcoin-auth", []string{"--wif-file", keyFile, "--unbound", "--path", "/backup", "--scheme", "brc77"}, nil, "bitcoin-auth"},
		{"bar in bitcoin-auth path", []string{"--wif-file", keyFile, "--unbound", "--path", "/a|b", "--format", "bitcoin-auth"}, nil, "'|'"},
		{"bad timestamp", []string{"--wif-file", keyFile, "--unbound", "--path", "/backup", "--timestamp", "yesterday"}, nil, "--timestamp"},
		{"missing body file", []string{"--wif-file", keyFile, "--unbound", "--path", "/backup", "--body", "/nonexistent"}, nil, "--body"},
		{"extra argument", []string{"--wif-file", keyFile, "--unbound", "--path", "/backup", "extra"}, nil, "unexpected argument"},
		{"unknown flag", []string{"--wif-file", keyFile, "--unbound", "--path", "/backup", "--key", "x"}, nil, "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runSign(t, tt.args, tt.env, "")
			if r.err == nil {
				t.Fatalf("no error; stdout %q", r.stdout)
			}
			if !strings.Contains(r.err.Error(), tt.want) {
				t.Errorf("error %q lacks %q", r.err, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q on error", r.stdout)
			}
			for _, s := range []string{r.err.Error(), r.stderr} {
				if strings.Contains(s, cliTestWIF) || strings.Contains(s, badKey) {
					t.Errorf("the key was printed: %q", s)
				}
			}
		})
	}
}

func TestTokenSignHelp(t *testing.T) {
	r := runSign(t, []string{"-h"}, nil, "")
	if !errors.Is(r.err, flag.ErrHelp) {
		t.Fatalf("err %v, want flag.ErrHelp", r.err)
	}
	for _, s := range []string{"Usage: authd token sign", "--wif-file", "X-Auth-Token: $(authd token sign", "-path", "-url", "-unbound", "<METHOD> <absolute URL>"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("usage lacks %q:\n%s", s, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
}
