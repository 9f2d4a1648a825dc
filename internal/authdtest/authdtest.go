// Package authdtest runs the real authd binary for tests of the code that
// talks to it from outside (the Go SDK and its examples): built from
// cmd/authd once per test process, served on a free loopback port, on the
// test Redis and a fresh PostgreSQL database (see internal/testenv).
//
// Tests that use it are skipped with -short (they build the binary) and,
// like every test needing a real server, when the servers' variables are
// unset (they fail instead under CI=true).
package authdtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/internal/testenv"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Server is a running authd.
type Server struct {
	// Issuer is its base URL, "http://127.0.0.1:<port>".
	Issuer string
	// Bin is the path of the binary.
	Bin string
	// Env is the environment it runs with (also used by Run).
	Env  []string
	logs *logBuffer
}

// generous are rate limits high enough that tests sharing one Redis never
// meet them unless they lower one on purpose (the daily backup caps per
// client IP are turned off too).
const generous = "token=100000/1m,authorize=100000/1m,login=100000/1m,userinfo=100000/1m,backup_read=100000/1m,backup_write=100000/1m," +
	"backup_ip=100000/1m,introspect=100000/1m,revoke=100000/1m"

var build = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "authd-sdk-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "authd")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/authd-dev/authd/cmd/authd").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// Binary returns the path of the authd binary, built once per process.
func Binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the authd binary")
	}
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Start runs authd on Redis and a new PostgreSQL database until t ends.
// env entries ("AUTHD_X=v") are added to its environment and win over
// the defaults (issuer on a free port, error-level logs, generous rate
// limits).
func Start(t testing.TB, env ...string) *Server {
	t.Helper()
	bin := Binary(t)
	db := testenv.PostgresURL(t)
	redis := testenv.RedisURL(t)
	addr := freeAddr(t)
	s := &Server{Issuer: "http://" + addr, Bin: bin, logs: &logBuffer{}}
	// The key that encrypts the signing keys in the database: 32 random
	// bytes, base64, in a file of mode 0600 (as openssl rand -base64 32
	// makes it).
	kek := make([]byte, 32)
	rand.Read(kek)
	keyFile := filepath.Join(t.TempDir(), "authd.keys")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(kek)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Env = append(os.Environ(),
		"AUTHD_ADDR="+addr, "AUTHD_DATABASE_URL="+db, "AUTHD_REDIS_URL="+redis,
		"AUTHD_KEY_ENCRYPTION_KEY_FILE="+keyFile,
		"AUTHD_LOG_LEVEL=error", "AUTHD_RATE_LIMITS="+generous,
		"AUTHD_BACKUP_IP_DAILY_BYTES=0", "AUTHD_BACKUP_IP_DAILY_CREATES=0")
	s.Env = append(s.Env, env...)
	cmd := exec.Command(bin)
	cmd.Env = s.Env
	cmd.Dir = t.TempDir()
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.Issuer + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case <-done:
			t.Fatalf("authd exited:\n%s", s.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("authd did not answer /healthz in 30 s:\n%s", s.logs.String())
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// Logs returns what authd wrote on stderr so far.
func (s *Server) Logs() string { return s.logs.String() }

// Run runs an authd command (e.g. "client", "create", …) with the
// server's environment and returns its standard output.
func (s *Server) Run(t testing.TB, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(s.Bin, args...)
	cmd.Env = s.Env
	cmd.Dir = t.TempDir()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("authd %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// CreateClient registers an OAuth client with `authd client create --name
// SDK <args>` and returns its id and, for a confidential client, secret.
func (s *Server) CreateClient(t testing.TB, args ...string) (id, secret string) {
	t.Helper()
	out := s.Run(t, append([]string{"client", "create", "--name", "SDK test"}, args...)...)
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &c); err != nil || c.ClientID == "" {
		t.Fatalf("client create printed %q: %v", out, err)
	}
	return c.ClientID, c.ClientSecret
}

// WalletToken runs the wallet-driven authorization-code flow with PKCE
// for a new confidential client with scopes (space-separated), the wallet
// of key wif signing the authorization request, and returns the access
// token. It uses authtoken and golang.org/x/oauth2 directly, not the SDK.
func (s *Server) WalletToken(t testing.TB, wif, scopes string) *oauth2.Token {
	t.Helper()
	id, secret := s.CreateClient(t, "--redirect-uri", "http://127.0.0.1/cb", "--scope", scopes)
	conf := &oauth2.Config{ClientID: id, ClientSecret: secret, RedirectURL: "http://127.0.0.1/cb",
		Endpoint: oauth2.Endpoint{AuthURL: s.Issuer + "/authorize", TokenURL: s.Issuer + "/token"}}
	verifier := oauth2.GenerateVerifier()
	au, err := url.Parse(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := authtoken.Token(wif, authtoken.TokenOptions{RequestPath: au.RequestURI()})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: Transport(), Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", au.String(), nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("signed authorize: %d %s\n%s", resp.StatusCode, loc, s.Logs())
	}
	ctx := context.WithValue(Context(t), oauth2.HTTPClient, hc)
	token, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// ClientToken returns a client_credentials access token of a new
// confidential client with scopes.
func (s *Server) ClientToken(t testing.TB, scopes string) *oauth2.Token {
	t.Helper()
	id, secret := s.CreateClient(t, "--redirect-uri", "http://127.0.0.1/cb", "--scope", scopes, "--grant", "client_credentials")
	conf := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: s.Issuer + "/token"}
	ctx := context.WithValue(Context(t), oauth2.HTTPClient, &http.Client{Transport: Transport(), Timeout: 30 * time.Second})
	tok, err := conf.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Transport returns an HTTP transport whose connections come from a random
// address in 127.0.0.0/8: each test is a client of its own to authd's
// rate limiter and lockouts, whose state on the shared Redis outlives any
// one test.
func Transport() *http.Transport {
	var b [3]byte
	rand.Read(b[:])
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, b[0], b[1], b[2]|1)}, Timeout: 5 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	return tr
}

// Context returns a context that ends with t (or after a minute).
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
