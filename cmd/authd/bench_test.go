package main

// Load benchmarks of authd as it runs in production: the real binary as
// a process of its own, on real Redis and PostgreSQL (or the embedded
// defaults), driven over loopback from this process by
// loadtest.Parallelism × GOMAXPROCS clients on keep-alive connections.
//
// Each round reads, before its first operation and after its last:
//   - the CPU time (user + system, /proc/<pid>/stat, 10 ms ticks) of
//     authd, of redis-server, and of the PostgreSQL postmaster with all its
//     children (backends, and background workers such as autovacuum and
//     the WAL writer, whatever they are doing); and apart from those, this
//     process's own, the load generator's;
//   - Redis's INFO commandstats (commands clients sent and commands
//     scripts ran, alike), pg_stat_statements for authd's database (which
//     scripts/testenv.sh preloads), and authd's
//     authd_access_token_cache_lookups_total on /metrics.
//
// Once per scenario, a few operations run under Redis MONITOR, which
// tells the commands authd sent from those its scripts ran. With the
// embedded setup the stores run inside authd: their CPU is authd's, and
// their commands are not counted. Each target is measured against its
// baseline, go-oauth2 v4 with its memory stores as a process of its own
// (the bareoauth2 command), in the same round, each first in every other
// round.
//
// Run with the test servers up (scripts/testenv.sh start DIR, then
// . DIR/env; or scripts/testenv.sh run make bench), on an idle machine if
// you can. On a shared one, rates follow the machine's load: compare the
// ratios measured in the same round, and the CPU per operation, which
// moves less.
//
//	go test -run '^$' -bench Load -benchtime 4000x -count 5 -timeout 90m ./cmd/authd/ | tee load.txt
//	benchstat load.txt
//
// What is remembered between operations, and what is checked every time:
//
//   - The signing keys are in memory (reloaded from SQL once a minute).
//   - Clients are cached for a second (clientCacheTTL): the SELECT of a
//     client runs about once a second per client, not per request.
//   - Access tokens whose signature verified are cached by their SHA-256
//     (10,000 of them, oldest out first): a hit costs a hash, a miss an
//     ES256 verification. Their lifetime, their key's trust, the deny list
//     in Redis (one EXISTS) and their client's existence (client cache)
//     are checked on every use.
//   - Nothing caches a grant: each client_credentials grant runs the
//     rate limiter's script in Redis and signs a new JWT (ES256).
//   - Each wallet sign-in verifies its X-Auth-Token signature, checks the
//     sign-in lockout and the replay guard in Redis, writes and redeems its
//     code in Redis, reads the user's identity in SQL (and writes it only
//     when it changed: never in these flows, which all sign in one wallet),
//     inserts the refresh token, and reads the identity back at /userinfo.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/authd-dev/authd/internal/loadtest"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/sigauth"
	"github.com/authd-dev/authd/store"
	"github.com/redis/go-redis/v9"
)

// loadPolicies raises every limit far above what a loopback run reaches:
// every request still pays its limiter decision.
const loadPolicies = "token=1000000/1s,authorize=1000000/1s,login=1000000/1s,userinfo=1000000/1s,backup_read=1000000/1s,backup_write=1000000/1s," +
	"backup_ip=1000000/1s,introspect=1000000/1s,revoke=1000000/1s,register=1000000/1s"

// setup is a way to deploy authd: on Redis and PostgreSQL, or on its
// embedded defaults (SQLite and an in-process Redis, for development).
type setup struct {
	name     string
	embedded bool
}

var (
	redisPostgres = setup{"redis+postgres", false}
	embedded      = setup{"embedded", true}
)

// scenario is one row of BenchmarkLoad: an operation on authd, and the
// same operation on the baseline server in the same round when there is
// one. Sub-benchmarks are named name/authd=<setup>.
type scenario struct {
	name   string
	unit   string // the rate's unit, "grants/s"
	setups []setup
	env    map[string]string // settings of authd beyond loadEnv
	// start runs once per authd process, before its first round, and
	// returns what makes each round's n operations before the clock
	// starts (registering clients, minting tokens, signing requests).
	start func(b *testing.B, a *authdProc) roundFunc
	// baseline, when set, does the same on the go-oauth2 server.
	baseline func(b *testing.B, s *bareProc) roundFunc
}

// roundFunc makes the n operations of one round.
type roundFunc func(b *testing.B, n int) loadtest.Op

// tokenPopulation is the number of distinct tokens the warm introspection
// cycles through: half the verified-token cache (10,000), so that every
// one of them stays in it.
const tokenPopulation = 5000

// loadScenarios are the load benchmarks. A new variant of a flow (an
// OpenID Connect sign-in, another signing algorithm) is one more row.
var loadScenarios = []scenario{
	{
		// One client_credentials grant (RFC 6749 §4.4) by one confidential
		// client: the limiter's script in Redis, the client from the
		// client cache (SQL once a second), one ES256 signature; nothing
		// is written.
		name: "client_credentials", unit: "grants/s", setups: []setup{redisPostgres, embedded},
		start: func(b *testing.B, a *authdProc) roundFunc {
			id, secret := a.client(b, "--grant", "client_credentials")
			return func(*testing.B, int) loadtest.Op {
				return loadtest.ClientCredentials(a.issuer+"/token", id, secret, nil)
			}
		},
		baseline: func(b *testing.B, s *bareProc) roundFunc {
			return func(*testing.B, int) loadtest.Op {
				return loadtest.ClientCredentials(s.url+"/token", loadtest.BaselineClientID, loadtest.BaselineClientSecret, nil)
			}
		},
	},
	{
		// The same grant naming two resources (RFC 8707): each is parsed
		// and checked against the client's and the server-wide list, and
		// the token's aud names both. The baseline is the same grant on
		// go-oauth2, which knows no resource indicators; compare with the
		// client_credentials row for their own cost.
		name: "client_credentials/resources=2", unit: "grants/s", setups: []setup{redisPostgres},
		env: map[string]string{"AUTHD_RESOURCES": "https://mcp.example.com/mcp"},
		start: func(b *testing.B, a *authdProc) roundFunc {
			id, secret := a.client(b, "--grant", "client_credentials", "--resource", "https://api.example.com/v1")
			extra := url.Values{"resource": {"https://mcp.example.com/mcp", "https://api.example.com/v1"}}
			return func(*testing.B, int) loadtest.Op {
				return loadtest.ClientCredentials(a.issuer+"/token", id, secret, extra)
			}
		},
		baseline: func(b *testing.B, s *bareProc) roundFunc {
			return func(*testing.B, int) loadtest.Op {
				return loadtest.ClientCredentials(s.url+"/token", loadtest.BaselineClientID, loadtest.BaselineClientSecret, nil)
			}
		},
	},
	{
		// A resource server introspects (RFC 7662) tokenPopulation
		// distinct access tokens in turn, each already introspected once
		// before the first round: the verified-token cache answers
		// (expect 100 % hits). Each introspection still runs the
		// introspect limiter's script in Redis, authenticates the
		// resource server (client cache), asks the deny list in Redis
		// (one EXISTS) and checks the token's client (client cache).
		name: "introspect/warm", unit: "introspections/s", setups: []setup{redisPostgres, embedded},
		env: map[string]string{"AUTHD_ACCESS_TOKEN_TTL": "2h"},
		start: func(b *testing.B, a *authdProc) roundFunc {
			rs := a.resourceServer(b)
			toks := a.mint(b, tokenPopulation)
			introspect(b, rs, toks) // warm the cache, unmeasured
			return func(*testing.B, int) loadtest.Op { return rs.introspectOp(toks) }
		},
		baseline: func(b *testing.B, s *bareProc) roundFunc {
			rs := s.resourceServer()
			toks := s.mint(b, tokenPopulation)
			return func(*testing.B, int) loadtest.Op { return rs.introspectOp(toks) }
		},
	},
	{
		// Every introspected token is new to the cache (expect 0 % hits):
		// each costs an ES256 verification on top of the warm case. The
		// round's tokens are minted before its clock starts.
		name: "introspect/cold", unit: "introspections/s", setups: []setup{redisPostgres},
		env: map[string]string{"AUTHD_ACCESS_TOKEN_TTL": "2h"},
		start: func(b *testing.B, a *authdProc) roundFunc {
			rs := a.resourceServer(b)
			return func(b *testing.B, n int) loadtest.Op { return rs.introspectOp(a.mint(b, n)) }
		},
		baseline: func(b *testing.B, s *bareProc) roundFunc {
			rs := s.resourceServer()
			return func(b *testing.B, n int) loadtest.Op { return rs.introspectOp(s.mint(b, n)) }
		},
	},
	walletFlowScenario("wallet_flow", nil, nil, idToken(false)),
	// The same flow as an OpenID Connect sign-in: scope openid profile
	// and a nonce, so /token also signs an ID Token, RS256 (the default)
	// or ES256 for a client registered for it.
	oidcFlowScenario("RS256"),
	oidcFlowScenario("ES256"),
}

// oidcFlowScenario is the wallet flow as an OpenID Connect sign-in by a
// client whose ID Tokens are signed with alg.
func oidcFlowScenario(alg string) scenario {
	sc := walletFlowScenario("oidc_flow/alg="+alg, []string{"--scope", "openid profile", "--id-token-alg", alg},
		func() url.Values { return url.Values{"scope": {"openid profile"}, "nonce": {randomNonce()}} },
		idToken(true))
	sc.setups = []setup{redisPostgres}
	return sc
}

// idToken checks that a token response carries an ID Token, or none.
func idToken(want bool) func([]byte) error {
	return func(body []byte) error {
		var tr struct {
			IDToken string `json:"id_token"`
		}
		if err := json.Unmarshal(body, &tr); err != nil {
			return err
		}
		if (tr.IDToken != "") != want {
			return fmt.Errorf("token response: id_token %q, want one: %v", tr.IDToken, want)
		}
		return nil
	}
}

// randomNonce is an OpenID Connect nonce.
func randomNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// walletFlowScenario is a complete wallet sign-in by a public client: a
// signed GET /authorize (sign-in and consent at once) → 302 with a code →
// POST /token with PKCE → GET /userinfo with the new access token. The
// wallet signs its requests before the round's clock starts: that is the
// wallet's work, not the server's. clientArgs are added to `authd client
// create`; params, when set, adds parameters to each authorize request
// (a nonce, a scope); check, when set, checks each token response.
//
// Stores per flow, as counted: in Redis, three limiter scripts
// (authorize, token, userinfo), the sign-in lockout check (two HMGET in
// one pipeline), the replay guard (SET NX), the code written (MULTI,
// HSET, PEXPIRE, EXEC) and redeemed (a script), one deny-list EXISTS; in
// SQL, the identity read at sign-in (one wallet signs every flow, so it
// is never rewritten) and again at /userinfo, and the grant's refresh
// token inserted.
func walletFlowScenario(name string, clientArgs []string, params func() url.Values, check func(tokenResponse []byte) error) scenario {
	return scenario{
		name: name, unit: "flows/s", setups: []setup{redisPostgres, embedded},
		start: func(b *testing.B, a *authdProc) roundFunc {
			const ru = "http://127.0.0.1/cb"
			id, _ := a.client(b, append([]string{"--redirect-uri", ru, "--public"}, clientArgs...)...)
			return func(b *testing.B, n int) loadtest.Op {
				flows := make([]walletFlow, n)
				for i := range flows {
					var extra url.Values
					if params != nil {
						extra = params()
					}
					flows[i] = newWalletFlow(b, id, ru, extra)
				}
				return func(c *http.Client, i int) error { return flows[i].run(c, a.issuer, id, ru, check) }
			}
		},
	}
}

// BenchmarkLoad runs loadScenarios. Each reports its rate in its unit
// (operations that succeeded), the share answered 503 (shed-%: authd
// sheds load when a store call runs out of time, as the rate limiter's
// decisions do after 300 ms; the run goes on, up to loadtest.MaxShed),
// p50 and p99 latency, the CPU per operation of authd, Redis and
// PostgreSQL (authd-, redis-, pg-cpu-µs/op; their sum server-cpu-µs/op)
// and of the load generator (loadgen-cpu-µs/op), the Redis commands and
// PostgreSQL statements per operation, the verified-token cache's hit
// rate (cache-hit-%) when tokens were verified, and, against a baseline,
// the baseline's figures (base-…) and the ratios x-base-rate and
// x-base-server-cpu. Each round logs the stores it touched per operation.
func BenchmarkLoad(b *testing.B) {
	var f fleet
	b.Cleanup(f.stop)
	for _, sc := range loadScenarios {
		for _, st := range sc.setups {
			b.Run(sc.name+"/authd="+st.name, func(b *testing.B) {
				f.use(b, sc, st)
				f.round(b, sc)
			})
		}
	}
}

// fleet holds the processes of the scenario being measured. They are
// started afresh for each -count repetition (each has a *testing.B of its
// own), so that repetitions are alike, and kept from its first round
// (b.N = 1) to its next.
type fleet struct {
	b                  *testing.B
	a                  *authdProc
	s                  *bareProc
	authdRound, bRound roundFunc
	// measured counts the rounds of more than one operation, whose
	// parity decides which server goes first.
	measured int
}

func (f *fleet) use(b *testing.B, sc scenario, st setup) {
	if f.b == b {
		return
	}
	f.stop()
	f.a = startAuthd(b, st, sc.env)
	f.authdRound = sc.start(b, f.a)
	if sc.baseline != nil {
		f.s = startBare(b)
		f.bRound = sc.baseline(b, f.s)
	}
	f.b = b
	if f.a.rdb != nil {
		// Which Redis commands authd sends, and which its scripts run:
		// MONITOR tells them apart (INFO commandstats, read every round,
		// counts both alike), but slows Redis, so a few operations of
		// their own.
		const n = 20
		op := f.authdRound(b, n) // its preparation untraced
		tr, err := loadtest.TraceRedis(context.Background(), f.a.rdb, func() (int, error) {
			_, err := loadtest.Run(context.Background(), n, op, loadtest.Measures{})
			return n, err
		})
		if err != nil {
			b.Fatalf("tracing Redis: %v", err)
		}
		b.Logf("Redis per op (MONITOR over %d ops): authd sent %s; its scripts ran %s", n, tr.Per(tr.Client), tr.Per(tr.Scripts))
	}
}

func (f *fleet) stop() {
	if f.a != nil {
		f.a.stop()
	}
	if f.s != nil {
		f.s.stop()
	}
	*f = fleet{measured: f.measured}
}

// round runs b.N operations on authd, and on the baseline when the
// scenario has one (first in every other measured round, so that
// neither always meets the machine's load first), and reports both.
func (f *fleet) round(b *testing.B, sc scenario) {
	b.StopTimer()
	ctx := context.Background()
	aop := f.authdRound(b, b.N)
	var bop loadtest.Op
	if f.bRound != nil {
		bop = f.bRound(b, b.N)
	}
	var ar, br *loadtest.Result
	runA := func() {
		var err error
		if ar, err = loadtest.Run(ctx, b.N, aop, f.a.measures); err != nil {
			b.Fatalf("authd: %v\n%s", err, f.a.logs.String())
		}
	}
	runB := func() {
		var err error
		if br, err = loadtest.Run(ctx, b.N, bop, f.s.measures); err != nil {
			b.Fatalf("baseline: %v", err)
		}
	}
	if b.N > 1 {
		f.measured++
	}
	b.StartTimer()
	switch {
	case bop == nil:
		runA()
	case f.measured%2 == 0:
		runB()
		runA()
	default:
		runA()
		runB()
	}
	b.StopTimer()

	ar.Report(b, "", sc.unit)
	hits, misses := ar.Count("authd", "hit"), ar.Count("authd", "miss")
	if hits+misses > 0 {
		b.ReportMetric(100*hits/(hits+misses), "cache-hit-%")
	}
	if br != nil {
		br.Report(b, "base-", sc.unit)
		b.ReportMetric(ar.Rate/br.Rate, "x-base-rate")
		b.ReportMetric(float64(ar.ServerCPU())/float64(br.ServerCPU()), "x-base-server-cpu")
	}
	b.ReportMetric(0, "ns/op") // wall time per op means little with parallel clients
	if b.N > 1 {
		stores := "in the authd process (SQLite, embedded Redis): not counted"
		if !f.a.setup.embedded {
			stores = "redis: " + ar.Breakdown(loadtest.SourceRedis, 1e-4) + "; pg: " + ar.Breakdown(loadtest.SourcePostgres, 1e-4)
		}
		b.Logf("n=%d: %d answered 503; per op: %s; token cache: %.3g hits + %.3g misses", b.N, ar.Shed, stores, hits, misses)
	}
}

// authdProc is the authd binary serving on loopback as a process of its
// own, with the measures of a load run on it.
type authdProc struct {
	setup    setup
	issuer   string
	env      []string // its environment, for `authd client create`
	cmd      *exec.Cmd
	logs     *syncBuffer
	rdb      *redis.Client // the Redis server it uses, unless embedded
	measures loadtest.Measures
	cleanup  []func()
}

// loadEnv are the settings of every authd under load.
var loadEnv = map[string]string{"AUTHD_RATE_LIMITS": loadPolicies, "AUTHD_LOG_LEVEL": "error"}

// startAuthd starts the authd binary on setup with loadEnv and env, and
// meters it: its CPU and its verified-token cache always; Redis's and
// PostgreSQL's CPU, commands and statements when they are servers of
// their own.
func startAuthd(b *testing.B, st setup, env map[string]string) *authdProc {
	b.Helper()
	bin := binary(b)
	a := &authdProc{setup: st, logs: &syncBuffer{}}
	ok := false
	defer func() {
		if !ok {
			a.stop()
		}
	}()
	dir, err := os.MkdirTemp("", "authd-load-")
	if err != nil {
		b.Fatal(err)
	}
	a.cleanup = append(a.cleanup, func() { os.RemoveAll(dir) })
	addr := freeAddr(b)
	a.issuer = "http://" + addr
	full := map[string]string{"AUTHD_ADDR": addr, "AUTHD_ISSUER": a.issuer}
	for k, v := range loadEnv {
		full[k] = v
	}
	for k, v := range env {
		full[k] = v
	}
	ctx := context.Background()
	var admin *store.DB
	var dbName string
	if st.embedded {
		full["AUTHD_DATABASE_URL"] = "sqlite://" + filepath.Join(dir, "authd.db")
	} else {
		redisURL := testenv.RedisURL(b)
		base := testenv.PostgresServerURL(b)
		if admin, err = store.Open(ctx, base); err != nil {
			b.Fatal(err)
		}
		a.cleanup = append(a.cleanup, func() { admin.Close() })
		dbName = testenv.Name("authd_load_")
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+dbName); err != nil {
			b.Fatal(err)
		}
		a.cleanup = append(a.cleanup, func() {
			admin.ExecContext(context.Background(), "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
		})
		u, _ := url.Parse(base)
		u.Path = "/" + dbName
		keyFile := filepath.Join(dir, "authd.keys")
		if err := os.WriteFile(keyFile, []byte(newKeyLine()+"\n"), 0o600); err != nil {
			b.Fatal(err)
		}
		full["AUTHD_DATABASE_URL"] = u.String()
		full["AUTHD_REDIS_URL"] = redisURL
		full[keyFileEnv] = keyFile
	}
	a.env = os.Environ()
	for k, v := range full {
		a.env = append(a.env, k+"="+v)
	}
	a.cmd = exec.Command(bin)
	a.cmd.Dir = dir
	a.cmd.Env = a.env
	a.cmd.Stderr = a.logs
	if err := a.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	a.cleanup = append(a.cleanup, func() { a.cmd.Process.Kill(); a.cmd.Wait() })
	waitListening(b, a.issuer+"/healthz", a.logs)

	a.measures.CPU = []loadtest.CPUMeter{loadtest.ProcessCPU("authd", a.cmd.Process.Pid)}
	a.measures.Counters = []loadtest.Counter{loadtest.PrometheusSeries("authd", a.issuer+"/metrics", map[string]string{
		"hit":  `authd_access_token_cache_lookups_total{result="hit"}`,
		"miss": `authd_access_token_cache_lookups_total{result="miss"}`,
	})}
	if !st.embedded {
		opt, err := redis.ParseURL(full["AUTHD_REDIS_URL"])
		if err != nil {
			b.Fatal(err)
		}
		rdb := redis.NewClient(opt)
		a.rdb = rdb
		a.cleanup = append(a.cleanup, func() { rdb.Close() })
		rpid, err := loadtest.RedisPID(ctx, rdb)
		if err != nil {
			b.Fatal(err)
		}
		ppid, err := loadtest.PostmasterPID(ctx, admin.DB)
		if err != nil {
			b.Fatal(err)
		}
		a.measures.CPU = append(a.measures.CPU, loadtest.ProcessCPU("redis", rpid), loadtest.ProcessTreeCPU("pg", ppid))
		a.measures.Counters = append(a.measures.Counters, loadtest.RedisCommands(rdb))
		if err := loadtest.EnablePostgresStatements(ctx, admin.DB); err != nil {
			b.Logf("PostgreSQL statements are not counted: %v", err)
		} else {
			a.measures.Counters = append(a.measures.Counters, loadtest.PostgresStatements(admin.DB, dbName))
		}
	}
	ok = true
	return a
}

func (a *authdProc) stop() {
	for i := len(a.cleanup) - 1; i >= 0; i-- {
		a.cleanup[i]()
	}
	a.cleanup = nil
}

// client registers an OAuth client with `authd client create`.
func (a *authdProc) client(b *testing.B, args ...string) (id, secret string) {
	b.Helper()
	if !strings.Contains(strings.Join(args, " "), "--redirect-uri") {
		args = append(args, "--redirect-uri", "https://app.example.com/cb")
	}
	out, err := runBinary(binary(b), a.env, append([]string{"client", "create", "--name", "Load"}, args...)...)
	if err != nil {
		b.Fatalf("client create: %v\n%s", err, out)
	}
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(out, &c); err != nil || c.ClientID == "" {
		b.Fatalf("client create printed %s", out)
	}
	return c.ClientID, c.ClientSecret
}

// mint returns n new access tokens from client_credentials grants of a
// client of its own, made in parallel and unmeasured.
func (a *authdProc) mint(b *testing.B, n int) []string {
	b.Helper()
	id, secret := a.client(b, "--grant", "client_credentials")
	return mintTokens(b, a.issuer+"/token", id, secret, n)
}

// resourceServer registers the confidential client that introspects.
func (a *authdProc) resourceServer(b *testing.B) introspector {
	id, secret := a.client(b, "--grant", "client_credentials")
	return introspector{url: a.issuer + "/introspect", id: id, secret: secret}
}

// bareProc is the baseline server (the bareoauth2 command) as a process
// of its own.
type bareProc struct {
	url      string
	cmd      *exec.Cmd
	measures loadtest.Measures
}

// buildBare builds the bareoauth2 command once per test binary.
var buildBare = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "bareoauth2-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "bareoauth2")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/authd-dev/authd/internal/loadtest/bareoauth2").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build bareoauth2: %v\n%s", err, out)
	}
	return bin, nil
})

func startBare(b *testing.B) *bareProc {
	b.Helper()
	bin, err := buildBare()
	if err != nil {
		b.Fatal(err)
	}
	addr := freeAddr(b)
	s := &bareProc{url: "http://" + addr, cmd: exec.Command(bin, "-addr", addr)}
	logs := &syncBuffer{}
	s.cmd.Stderr = logs
	if err := s.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	waitListening(b, s.url+"/healthz", logs)
	s.measures.CPU = []loadtest.CPUMeter{loadtest.ProcessCPU("go-oauth2", s.cmd.Process.Pid)}
	return s
}

func (s *bareProc) stop() { s.cmd.Process.Kill(); s.cmd.Wait() }

func (s *bareProc) mint(b *testing.B, n int) []string {
	return mintTokens(b, s.url+"/token", loadtest.BaselineClientID, loadtest.BaselineClientSecret, n)
}

func (s *bareProc) resourceServer() introspector {
	return introspector{url: s.url + "/introspect", id: loadtest.BaselineClientID, secret: loadtest.BaselineClientSecret}
}

// mintTokens runs n client_credentials grants and returns their access
// tokens, asking again for those a busy server turned away.
func mintTokens(b *testing.B, tokenURL, id, secret string, n int) []string {
	b.Helper()
	toks := make([]string, n)
	form := url.Values{"grant_type": {"client_credentials"}}
	for missing := n; missing > 0; {
		var todo []int
		for i, t := range toks {
			if t == "" {
				todo = append(todo, i)
			}
		}
		_, err := loadtest.Run(context.Background(), len(todo), func(c *http.Client, j int) error {
			body, _, err := loadtest.Send(c, loadtest.FormRequest(tokenURL, form, id, secret), 200)
			if err != nil {
				return err
			}
			var tr struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
				return fmt.Errorf("token response %s", body)
			}
			toks[todo[j]] = tr.AccessToken
			return nil
		}, loadtest.Measures{})
		if err != nil {
			b.Fatalf("minting %d tokens: %v", len(todo), err)
		}
		missing = 0
		for _, t := range toks {
			if t == "" {
				missing++
			}
		}
	}
	return toks
}

// introspector is a confidential client calling an introspection
// endpoint.
type introspector struct{ url, id, secret string }

// introspectOp introspects toks[i % len(toks)] and wants it active.
func (in introspector) introspectOp(toks []string) loadtest.Op {
	return func(c *http.Client, i int) error {
		tok := toks[i%len(toks)]
		body, _, err := loadtest.Send(c, loadtest.FormRequest(in.url, url.Values{"token": {tok}}, in.id, in.secret), 200)
		if err == nil && !strings.Contains(string(body), `"active":true`) {
			err = fmt.Errorf("introspection of token %d: %s", i%len(toks), body)
		}
		return err
	}
}

// introspect introspects every token once, unmeasured.
func introspect(b *testing.B, in introspector, toks []string) {
	b.Helper()
	if _, err := loadtest.Run(context.Background(), len(toks), in.introspectOp(toks), loadtest.Measures{}); err != nil {
		b.Fatal(err)
	}
}

// walletFlow is one prepared sign-in: a PKCE verifier and the signed
// authorize request for its challenge.
type walletFlow struct {
	verifier, target, token string
}

func newWalletFlow(b *testing.B, clientID, ru string, extra url.Values) walletFlow {
	verifier, challenge := pkcePair()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {ru},
		"state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for k, v := range extra {
		q[k] = v
	}
	target := "/authorize?" + q.Encode()
	tok, err := sigauth.Token(walletWIF, sigauth.TokenOptions{RequestPath: target})
	if err != nil {
		b.Fatal(err)
	}
	return walletFlow{verifier: verifier, target: target, token: tok}
}

// run is one complete wallet flow: signed GET /authorize → 302 with a
// code → POST /token with PKCE → GET /userinfo. check, when set, checks
// the token response.
func (f walletFlow) run(c *http.Client, issuer, clientID, ru string, check func([]byte) error) error {
	req, _ := http.NewRequest("GET", issuer+f.target, nil)
	req.Header.Set("X-Auth-Token", f.token)
	_, resp, err := loadtest.Send(c, req, http.StatusFound)
	if err != nil {
		return err
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {loc.Query().Get("code")},
		"redirect_uri": {ru}, "code_verifier": {f.verifier}}
	req, _ = http.NewRequest("POST", issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	body, _, err := loadtest.Send(c, req, 200)
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(body); err != nil {
			return err
		}
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return err
	}
	req, _ = http.NewRequest("GET", issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	_, _, err = loadtest.Send(c, req, 200)
	return err
}
