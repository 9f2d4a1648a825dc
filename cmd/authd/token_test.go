package main

import (
	"bytes"
	"context"
	"flag"
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

	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		stdin      string
		target     string // request-target the token must verify for
		body       string
		scheme     string
		warn       string // substring expected on stderr
		verifyAt   time.Time
		wantPrefix string
	}{
		{name: "wif-file", args: []string{"--wif-file", keyFile, "--path", "/backup"}, target: "/backup", scheme: "sigma"},
		{name: "wif from stdin", args: []string{"--wif", "-", "--path", "/backup"}, stdin: cliTestWIF + "\n", target: "/backup", scheme: "sigma"},
		{name: "AUTHD_WIF", args: []string{"--path", "/backup"}, env: map[string]string{"AUTHD_WIF": " " + cliTestWIF + "\n"}, target: "/backup", scheme: "sigma"},
		{name: "wif argument warns", args: []string{"--wif", cliTestWIF, "--path", "/backup"}, target: "/backup", scheme: "sigma", warn: "shell history"},
		{name: "flag beats AUTHD_WIF", args: []string{"--wif-file", keyFile, "--path", "/backup"}, env: map[string]string{"AUTHD_WIF": "garbage"}, target: "/backup", scheme: "sigma"},
		{name: "readable key file warns", args: []string{"--wif-file", openKeyFile, "--path", "/backup"}, target: "/backup", scheme: "sigma", warn: "readable by other users"},
		{name: "body file", args: []string{"--wif-file", keyFile, "--path", "/backup", "--body", bodyFile}, target: "/backup", body: body, scheme: "sigma"},
		{name: "body from stdin", args: []string{"--wif-file", keyFile, "--path", "/backup", "--body", "-"}, stdin: body, target: "/backup", body: body, scheme: "sigma"},
		{name: "query", args: []string{"--wif-file", keyFile, "--path", "/authorize?client_id=app&state=a%20b"}, target: "/authorize?client_id=app&state=a%20b", scheme: "sigma"},
		{name: "timestamp", args: []string{"--wif-file", keyFile, "--path", "/backup", "--timestamp", ts}, target: "/backup", scheme: "sigma",
			verifyAt: at, wantPrefix: "sigma:" + cliTestAddress + ":" + ts + "|"},
		{name: "timestamp with offset becomes UTC", args: []string{"--wif-file", keyFile, "--path", "/backup", "--timestamp", "2026-11-21T23:00:00+01:00"}, target: "/backup", scheme: "sigma",
			verifyAt: at, wantPrefix: "sigma:" + cliTestAddress + ":" + ts + "|"},
		{name: "bitcoin-auth bsm", args: []string{"--wif-file", keyFile, "--path", "/backup", "--format", "bitcoin-auth"}, target: "/backup", scheme: "bsm"},
		{name: "bitcoin-auth brc77 body", args: []string{"--wif-file", keyFile, "--path", "/backup", "--format", "bitcoin-auth", "--scheme", "brc77", "--body", bodyFile}, target: "/backup", body: body, scheme: "brc77"},
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
			id, err := authtoken.VerifyToken(token, authtoken.Request{Method: "GET", Target: tt.target}, []byte(tt.body), now, 0)
			if err != nil {
				t.Fatalf("VerifyToken(%q): %v", token, err)
			}
			if id.Address != cliTestAddress || id.Scheme != tt.scheme {
				t.Errorf("identity %+v", id)
			}
			if _, err := authtoken.VerifyToken(token, authtoken.Request{Method: "GET", Target: tt.target}, []byte(tt.body+"x"), now, 0); errors.CodeOf(err) != errors.InvalidSignature {
				t.Errorf("other body: %v", err)
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
	v := sigauth.NewVerifier(sigauth.Config{Redis: rdb})
	var got sigauth.Identity
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = sigauth.FromContext(r.Context())
	})))
	defer srv.Close()

	for _, args := range [][]string{
		{"--wif-file", keyFile, "--path", "/backup?v=1"},
		{"--wif-file", keyFile, "--path", "/backup?v=1", "--format", "bitcoin-auth", "--scheme", "brc77"},
	} {
		r := runSign(t, args, nil, "")
		if r.err != nil {
			t.Fatal(r.err)
		}
		req, _ := http.NewRequest("GET", srv.URL+"/backup?v=1", nil)
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
		{"no key", []string{"--path", "/backup"}, nil, "no private key"},
		{"no path", []string{"--wif-file", keyFile}, nil, "--path is required"},
		{"relative path", []string{"--wif-file", keyFile, "--path", "backup"}, nil, "must start with /"},
		{"two keys", []string{"--wif-file", keyFile, "--wif", "-", "--path", "/backup"}, nil, "not both"},
		{"two stdin readers", []string{"--wif", "-", "--body", "-", "--path", "/backup"}, nil, "standard input"},
		{"missing key file", []string{"--wif-file", "/nonexistent/key.wif", "--path", "/backup"}, nil, "--wif-file"},
		{"empty key file", []string{"--wif-file", emptyFile, "--path", "/backup"}, nil, "no key"},
		{"testnet key", []string{"--wif-file", testnetFile, "--path", "/backup"}, nil, "testnet"},
		{"bad key", []string{"--wif", badKey, "--path", "/backup"}, nil, "WIF"},
		{"bad env key", []string{"--path", "/backup"}, map[string]string{"AUTHD_WIF": badKey}, "WIF"},
		{"bad format", []string{"--wif-file", keyFile, "--path", "/backup", "--format", "jwt"}, nil, "--format"},
		{"bad scheme", []string{"--wif-file", keyFile, "--path", "/backup", "--format", "bitcoin-auth", "--scheme", "ecdsa"}, nil, "--scheme"},
		{"brc77 needs bitcoin-auth", []string{"--wif-file", keyFile, "--path", "/backup", "--scheme", "brc77"}, nil, "bitcoin-auth"},
		{"bar in bitcoin-auth path", []string{"--wif-file", keyFile, "--path", "/a|b", "--format", "bitcoin-auth"}, nil, "'|'"},
		{"bad timestamp", []string{"--wif-file", keyFile, "--path", "/backup", "--timestamp", "yesterday"}, nil, "--timestamp"},
		{"missing body file", []string{"--wif-file", keyFile, "--path", "/backup", "--body", "/nonexistent"}, nil, "--body"},
		{"extra argument", []string{"--wif-file", keyFile, "--path", "/backup", "extra"}, nil, "unexpected argument"},
		{"unknown flag", []string{"--wif-file", keyFile, "--path", "/backup", "--key", "x"}, nil, "not defined"},
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
	for _, s := range []string{"Usage: authd token sign", "--wif-file", "X-Auth-Token: $(authd token sign", "-path"} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("usage lacks %q:\n%s", s, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout %q", r.stdout)
	}
}
