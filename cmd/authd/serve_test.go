package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authd-dev/authd/internal/testenv"
	"github.com/redis/go-redis/v9"
)

// syncBuffer is a bytes.Buffer safe for a server goroutine to write while
// the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var listeningRE = regexp.MustCompile(`msg="authd listening" addr=(\S+)`)

// runServer runs authd in-process with env (plus AUTHD_ADDR=127.0.0.1:0 when
// unset) in a fresh working directory and returns its base URL. The server
// stops when the test ends.
func runServer(t *testing.T, env map[string]string) (base string, logs *syncBuffer) {
	t.Helper()
	t.Chdir(t.TempDir())
	if env == nil {
		env = map[string]string{}
	}
	if env["AUTHD_ADDR"] == "" {
		env["AUTHD_ADDR"] = "127.0.0.1:0"
	}
	ctx, cancel := context.WithCancel(context.Background())
	logs = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, envFunc(env), strings.NewReader(""), io.Discard, logs) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("server did not stop")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningRE.FindStringSubmatch(logs.String()); m != nil {
			return "http://" + m[1], logs
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("server did not start:\n%s", logs.String())
	return "", nil
}

type errorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	URI         string `json:"error_uri"`
	RetryAfter  int    `json:"retry_after"`
	RequestID   string `json:"request_id"`
}

func do(t *testing.T, method, url string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestServeWithoutConfiguration starts authd as a newcomer would: no
// database, no Redis, nothing but a free port.
func TestServeWithoutConfiguration(t *testing.T) {
	base, logs := runServer(t, nil)

	resp, body := do(t, "GET", base+"/healthz", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("/healthz = %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", base+"/readyz", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz = %d %s", resp.StatusCode, body)
	}
	if _, err := os.Stat("authd.db"); err != nil {
		t.Errorf("default SQLite database not created in the working directory: %v", err)
	}
	if !strings.Contains(logs.String(), "embedded Redis") {
		t.Errorf("embedded Redis not logged:\n%s", logs.String())
	}

	// Unknown route: 404 not_found through the error writer.
	resp, body = do(t, "GET", base+"/no/such/route", http.Header{"X-Request-Id": {"req-123"}})
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("404 body %q: %v", body, err)
	}
	if resp.StatusCode != 404 || e.Error != "not_found" || e.URI != base+"/docs/errors#not_found" || e.RequestID != "req-123" {
		t.Fatalf("unknown route = %d %+v", resp.StatusCode, e)
	}
	if resp.Header.Get("X-Request-Id") != "req-123" || resp.Header.Get("Content-Type") != "application/json;charset=UTF-8" {
		t.Fatalf("unknown route headers = %v", resp.Header)
	}

	// Wrong method on a known route: 405 with Allow.
	resp, body = do(t, "DELETE", base+"/healthz", nil)
	e = errorBody{}
	json.Unmarshal(body, &e)
	if resp.StatusCode != 405 || e.Error != "method_not_allowed" || !strings.Contains(resp.Header.Get("Allow"), "GET") || e.RequestID == "" {
		t.Fatalf("wrong method = %d %v %+v", resp.StatusCode, resp.Header, e)
	}

	// The error_uri resolves to an anchor on the catalog page.
	resp, body = do(t, "GET", base+"/docs/errors", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `id="not_found"`) || !strings.Contains(string(body), `id="method_not_allowed"`) {
		t.Fatalf("/docs/errors = %d, anchors missing", resp.StatusCode)
	}
	resp, body = do(t, "GET", base+"/docs/errors.json", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"code": "not_found"`) {
		t.Fatalf("/docs/errors.json = %d %.200s", resp.StatusCode, body)
	}

	// Metrics count errors. The counter belongs to the process, which
	// other tests share: compare before and after.
	notFound := `authd_errors_total{code="not_found",status="404"}`
	before := metricValue(t, base, notFound)
	for _, p := range []string{"/no/such/route", "/nor/this"} {
		if resp, body := do(t, "GET", base+p, nil); resp.StatusCode != 404 {
			t.Fatalf("GET %s = %d %s", p, resp.StatusCode, body)
		}
	}
	if after := metricValue(t, base, notFound); after != before+2 {
		t.Fatalf("%s went from %v to %v after two unknown routes", notFound, before, after)
	}
}

// metricValue returns the value of series on base's /metrics (0 when it
// is not there yet).
func metricValue(t *testing.T, base, series string) float64 {
	t.Helper()
	resp, body := do(t, "GET", base+"/metrics", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics = %d", resp.StatusCode)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return f
		}
	}
	return 0
}

func TestMetricsOnSeparateListener(t *testing.T) {
	t.Chdir(t.TempDir())
	ln := freeAddr(t)
	base, _ := runServer(t, map[string]string{"AUTHD_METRICS_ADDR": ln})
	resp, _ := do(t, "GET", base+"/metrics", nil)
	if resp.StatusCode != 404 {
		t.Errorf("/metrics on the main listener = %d, want 404 when AUTHD_METRICS_ADDR is set", resp.StatusCode)
	}
	resp, body := do(t, "GET", "http://"+ln+"/metrics", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("/metrics on %s = %d", ln, resp.StatusCode)
	}
}

// TestReadyzFollowsRedis stops and restarts a Redis under a running authd.
func TestReadyzFollowsRedis(t *testing.T) {
	rs := testenv.StartRedisServer(t)
	base, _ := runServer(t, map[string]string{"AUTHD_REDIS_URL": rs.URL()})

	resp, body := do(t, "GET", base+"/readyz", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz with Redis up = %d %s", resp.StatusCode, body)
	}
	rs.Stop()
	resp, body = do(t, "GET", base+"/readyz", nil)
	var e errorBody
	json.Unmarshal(body, &e)
	if resp.StatusCode != 503 || e.Error != "temporarily_unavailable" || e.RetryAfter < 1 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("/readyz with Redis down = %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if strings.Contains(strings.ToLower(string(body)), "redis") || strings.Contains(string(body), "connection refused") {
		t.Fatalf("503 body leaks the cause: %s", body)
	}
	rs.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, body = do(t, "GET", base+"/readyz", nil)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after Redis came back = %d %s", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestReadyzFollowsDatabase(t *testing.T) {
	cfg, err := parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_DATABASE_URL": testenv.SQLiteURL(t)}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(context.Background(), cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	h := a.handler()
	if rec := serveOnce(h, "GET", "/readyz"); rec.StatusCode != 200 {
		t.Fatalf("/readyz = %d", rec.StatusCode)
	}
	a.db.Close()
	rec := serveOnce(h, "GET", "/readyz")
	if rec.StatusCode != 503 || rec.Header.Get("Retry-After") == "" {
		t.Fatalf("/readyz with the database closed = %d %v", rec.StatusCode, rec.Header)
	}
}

// TestEmbeddedRedisExpiresKeys proves the embedded miniredis's clock moves:
// without the ticker, keys with a TTL would live forever.
func TestEmbeddedRedisExpiresKeys(t *testing.T) {
	cfg, err := parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_DATABASE_URL": testenv.SQLiteURL(t)}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(context.Background(), cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if a.redis.embedded == nil {
		t.Fatal("no AUTHD_REDIS_URL, but Redis is not embedded")
	}
	ctx := context.Background()
	if err := a.redis.Set(ctx, "ttl-probe", "x", 300*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := a.redis.Exists(ctx, "ttl-probe").Result(); err != nil || n != 1 {
		t.Fatalf("key missing right after SET: %d %v", n, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := a.redis.Exists(ctx, "ttl-probe").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key with a 300ms TTL still exists after 5s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And a key without TTL stays.
	if err := a.redis.Set(ctx, "no-ttl", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n, err := a.redis.Exists(ctx, "no-ttl").Result(); err != nil || n != 1 {
		t.Fatalf("key without TTL vanished: %d %v", n, err)
	}
}

func TestRunUsageAndVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"version"}, envFunc(nil), nil, &out, &errb); err != nil || out.String() != "authd dev\n" {
		t.Fatalf("version = %q, %v", out.String(), err)
	}
	err := run(context.Background(), []string{"frobnicate"}, envFunc(nil), nil, &out, &errb)
	if err == nil || exitCode(err) != 2 {
		t.Fatalf("unknown command: err %v, exit %d", err, exitCode(err))
	}
}

func TestMigrateCommand(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(testing.TB) string
	}{{"sqlite", testenv.SQLiteURL}, {"postgres", testenv.PostgresURL}} {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url(t)
			keys := writeKeyFile(t)
			var out bytes.Buffer
			ctx := context.Background()
			if err := run(ctx, []string{"migrate", "status", "--database-url", u}, envFunc(nil), nil, &out, io.Discard); err == nil {
				// status before up is fine on Postgres and SQLite
				// alike; it must list pending work
				if !strings.Contains(out.String(), "pending") {
					t.Fatalf("status before up:\n%s", out.String())
				}
			} else {
				t.Fatal(err)
			}
			out.Reset()
			if err := run(ctx, []string{"migrate", "--database-url", u, "--key-encryption-key-file", keys}, envFunc(nil), nil, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.String(), "applied ") || strings.HasPrefix(out.String(), "applied 0 ") {
				t.Fatalf("migrate up printed %q", out.String())
			}
			out.Reset()
			env := envFunc(map[string]string{"AUTHD_DATABASE_URL": u, keyFileEnv: keys})
			if err := run(ctx, []string{"migrate", "up"}, env, nil, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(out.String(), "applied 0 ") {
				t.Fatalf("second migrate printed %q", out.String())
			}
			out.Reset()
			if err := run(ctx, []string{"migrate", "status"}, env, nil, &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out.String(), "pending") || !strings.Contains(out.String(), "00001_meta.sql") {
				t.Fatalf("status after up:\n%s", out.String())
			}
		})
	}
	if err := run(context.Background(), []string{"migrate", "sideways"}, envFunc(nil), nil, io.Discard, io.Discard); exitCode(err) != 2 {
		t.Fatalf("migrate sideways: %v", err)
	}
}

// buildBinary builds authd once per test run, with a version stamped in.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "authd-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "authd")
	out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9-test", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

func binary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the authd binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestBinaryVersion(t *testing.T) {
	out, err := exec.Command(binary(t), "version").Output()
	if err != nil || string(out) != "authd v9.9.9-test\n" {
		t.Fatalf("authd version = %q, %v", out, err)
	}
}

// TestBinaryBadConfig: a bad setting exits non-zero with one line on stderr
// that names it, before listening or touching the database.
func TestBinaryBadConfig(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ env, value string }{
		{"AUTHD_SIGAUTH_WINDOW", "soon"},
		{"AUTHD_ADDR", "nowhere"},
		{"AUTHD_ISSUER", "http://auth.example.com"},
	} {
		cmd := exec.Command(binary(t))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), tc.env+"="+tc.value)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
			t.Errorf("%s=%s: exit %v, want non-zero", tc.env, tc.value, err)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], tc.env) {
			t.Errorf("%s=%s: stderr = %q, want one line naming %s", tc.env, tc.value, stderr.String(), tc.env)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "authd.db")); err == nil {
		t.Error("a bad configuration still created the database")
	}
}

// TestBinarySIGTERMDrains sends SIGTERM to a real authd while a request is
// in flight: the request completes, new connections are refused, and the
// process exits 0. Redis is made slow with DEBUG SLEEP so /readyz is the
// slow request.
func TestBinarySIGTERMDrains(t *testing.T) {
	bin := binary(t)
	rs := testenv.StartRedisServer(t)
	addr := freeAddr(t)
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "AUTHD_ADDR="+addr, "AUTHD_REDIS_URL="+rs.URL())
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer cmd.Process.Kill()
	waitListening(t, "http://"+addr+"/healthz", &logs)

	slow := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer slow.Close()
	if err := slow.Ping(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	slept := make(chan error, 1)
	go func() { slept <- slow.Do(context.Background(), "DEBUG", "SLEEP", "0.8").Err() }()
	time.Sleep(50 * time.Millisecond) // Redis is now asleep
	start := time.Now()

	type result struct {
		status int
		err    error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		resp.Body.Close()
		inflight <- result{status: resp.StatusCode}
	}()
	time.Sleep(100 * time.Millisecond) // the request reached the server
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	signaled := time.Since(start)
	r := <-inflight
	took := time.Since(start)
	if err := <-slept; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	if r.err != nil || r.status != 200 {
		t.Fatalf("in-flight request during shutdown: status %d, err %v\n%s", r.status, r.err, logs.String())
	}
	if took < 500*time.Millisecond || took <= signaled {
		t.Fatalf("the request took %v and SIGTERM came at %v: it was not in flight during shutdown", took, signaled)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("authd exited with %v after SIGTERM\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("authd did not exit after SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "draining") || !strings.Contains(logs.String(), "stopped") {
		t.Errorf("shutdown not logged:\n%s", logs.String())
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Error("server still accepts connections after shutdown")
	}
}

func waitListening(t testing.TB, url string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatalf("authd did not start:\n%s", logs.String())
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// serveOnce runs one request through h.
func serveOnce(h http.Handler, method, target string) *http.Response {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	return rec.Result()
}

// TestEmbeddedRedisNeedsPassword: the embedded Redis listens on loopback
// TCP; without its random password, another local process gets nothing.
func TestEmbeddedRedisNeedsPassword(t *testing.T) {
	cfg, err := parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_DATABASE_URL": testenv.SQLiteURL(t)}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newApp(context.Background(), cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	ctx := context.Background()
	if err := a.redis.Set(ctx, "k", "v", time.Minute).Err(); err != nil {
		t.Fatalf("authd's own client: %v", err)
	}
	stranger := redis.NewClient(&redis.Options{Addr: a.redis.embedded.Addr()})
	defer stranger.Close()
	if v, err := stranger.Get(ctx, "k").Result(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("a client without the password read %q, err %v", v, err)
	}
}

// TestSentinel: AUTHD_REDIS_URL with master_name goes through Redis
// Sentinel to the master it names.
func TestSentinel(t *testing.T) {
	// The master and the sentinel both want a password: the URL's user
	// info serves both, as README documents.
	master := testenv.StartRedisServer(t)
	admin := redis.NewClient(&redis.Options{Addr: master.Addr()})
	if err := admin.ConfigSet(context.Background(), "requirepass", "s3cret").Err(); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	dir := t.TempDir()
	port := freePort(t)
	conf := filepath.Join(dir, "sentinel.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nrequirepass s3cret\nsentinel monitor authdtest 127.0.0.1 %d 1\nsentinel auth-pass authdtest s3cret\n", port, dir, master.Port)), 0o600)
	sentinel := exec.Command("redis-server", conf, "--sentinel")
	if err := sentinel.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { sentinel.Process.Kill(); sentinel.Wait() }()
	sc := redis.NewSentinelClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port), Password: "s3cret"})
	defer sc.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if addr, err := sc.GetMasterAddrByName(context.Background(), "authdtest").Result(); err == nil && len(addr) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("sentinel did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}

	base, _ := runServer(t, map[string]string{"AUTHD_REDIS_URL": fmt.Sprintf("redis://:s3cret@127.0.0.1:%d/0?master_name=authdtest", port)})
	resp, body := do(t, "GET", base+"/readyz", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz through Sentinel: %d %s", resp.StatusCode, body)
	}
	// The limiter's keys land on the master the sentinel named.
	if resp, body := do(t, "GET", base+"/authorize", http.Header{"Accept": {"application/json"}}); resp.StatusCode != 400 {
		t.Fatalf("GET /authorize without parameters through Sentinel: %d %s", resp.StatusCode, body)
	}
	mc := redis.NewClient(&redis.Options{Addr: master.Addr(), Password: "s3cret"})
	defer mc.Close()
	if keys, err := mc.Keys(context.Background(), "rl:*").Result(); err != nil || len(keys) == 0 {
		t.Fatalf("no rate-limit keys on the master behind the sentinel: %v", err)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
