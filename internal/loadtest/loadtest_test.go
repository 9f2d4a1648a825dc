package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/store"
)

// TestRun: every operation runs exactly once, the server sees each, the
// latencies are ordered, counters are divided by the number of
// operations, and a failing operation ends the run with its error.
func TestRun(t *testing.T) {
	var served atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		time.Sleep(time.Duration(r.URL.Query().Get("i")[0]-'0') * time.Millisecond)
		if st := r.URL.Query().Get("status"); st != "" && st != "200" {
			code, _ := strconv.Atoi(st)
			w.WriteHeader(code)
		}
	}))
	defer ts.Close()
	const n = 200
	var mu sync.Mutex
	seen := map[int]int{}
	op := func(c *http.Client, i int) error {
		mu.Lock()
		seen[i]++
		mu.Unlock()
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/?i=%d", ts.URL, i%10), nil)
		_, _, err := Send(c, req, 200)
		return err
	}
	var reads atomic.Int64
	counter := Counter{Name: "fake", Read: func(context.Context) (map[string]float64, error) {
		// Two readings: 0 before, 3n after, so 3 per operation; "still"
		// does not move and is left out.
		if reads.Add(1) == 1 {
			return map[string]float64{"thing": 0, "still": 7}, nil
		}
		return map[string]float64{"thing": 3 * n, "still": 7}, nil
	}}
	r, err := Run(context.Background(), n, op, Measures{Counters: []Counter{counter},
		CPU: []CPUMeter{ProcessCPU("self", os.Getpid())}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Ops != n || served.Load() != n || len(seen) != n {
		t.Fatalf("%d ops, %d served, %d distinct indexes; want %d", r.Ops, served.Load(), len(seen), n)
	}
	for i, k := range seen {
		if k != 1 || i < 0 || i >= n {
			t.Fatalf("operation %d ran %d times", i, k)
		}
	}
	if r.P50 <= 0 || r.P99 < r.P50 || r.P99 < 9*time.Millisecond || r.Rate <= 0 {
		t.Fatalf("p50 %v p99 %v rate %v", r.P50, r.P99, r.Rate)
	}
	if got := r.Count("fake", "thing"); got != 3 {
		t.Errorf("fake thing per op = %v, want 3", got)
	}
	if len(r.Counts) != 1 {
		t.Errorf("counts %+v: only the one that moved", r.Counts)
	}
	if _, ok := r.CPUOf("self"); !ok || len(r.CPU) != 1 {
		t.Errorf("CPU %+v", r.CPU)
	}

	boom := errors.New("boom")
	_, err = Run(context.Background(), 1000, func(c *http.Client, i int) error {
		if i == 50 {
			return boom
		}
		return nil
	}, Measures{})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "operation 50") {
		t.Fatalf("failing run: %v", err)
	}
	// 503s are counted and the run goes on, up to MaxShed of it; any
	// other wrong status ends it.
	status := func(bad map[int]int) Op {
		return func(c *http.Client, i int) error {
			code := 200
			if s, ok := bad[i]; ok {
				code = s
			}
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/?i=0&status=%d", ts.URL, code), nil)
			_, _, err := Send(c, req, 200)
			return err
		}
	}
	r, err = Run(context.Background(), 100, status(map[int]int{3: 503, 50: 503, 99: 503}), Measures{})
	if err != nil || r.Ops != 97 || r.Shed != 3 {
		t.Fatalf("three 503s in 100: %+v, %v", r, err)
	}
	eleven := map[int]int{}
	for i := range 11 {
		eleven[i*9] = 503
	}
	if _, err := Run(context.Background(), 100, status(eleven), Measures{}); err == nil || !strings.Contains(err.Error(), "11 of 100") {
		t.Fatalf("eleven 503s in 100: %v", err)
	}
	var se *StatusError
	if _, err := Run(context.Background(), 100, status(map[int]int{7: 404}), Measures{}); !errors.As(err, &se) || se.Status != 404 || IsShed(err) {
		t.Fatalf("a 404: %v", err)
	}
	if _, err := Run(context.Background(), 0, op, Measures{}); err == nil {
		t.Fatal("a run of no operations")
	}
	failing := Counter{Name: "down", Read: func(context.Context) (map[string]float64, error) { return nil, boom }}
	if _, err := Run(context.Background(), 1, op, Measures{Counters: []Counter{failing}}); !errors.Is(err, boom) {
		t.Fatalf("a counter that cannot be read: %v", err)
	}
}

func TestPercentiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var out []time.Duration
		for _, x := range v {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100 … 1, unsorted
	}
	for _, c := range []struct {
		in       []time.Duration
		p50, p99 time.Duration
	}{
		{nil, 0, 0},
		{ms(7), 7 * time.Millisecond, 7 * time.Millisecond},
		{ms(3, 1, 2), 2 * time.Millisecond, 3 * time.Millisecond},
		{ms(hundred...), 50 * time.Millisecond, 99 * time.Millisecond},
		{ms(append(hundred, 1000)...), 51 * time.Millisecond, 100 * time.Millisecond},
	} {
		p50, p99 := percentiles(c.in)
		if p50 != c.p50 || p99 != c.p99 {
			t.Errorf("percentiles of %d values: %v %v, want %v %v", len(c.in), p50, p99, c.p50, c.p99)
		}
	}
}

func TestParseStat(t *testing.T) {
	for _, c := range []struct {
		line string
		want procStat
		bad  bool
	}{
		{line: "4242 (postgres) S 4200 4242 4242 0 -1 4194560 1 0 0 0 25 7 3 4 20 0 1 0 100 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0",
			want: procStat{ppid: 4200, utime: 25, stime: 7, cutime: 3, cstime: 4}},
		// A command name with spaces and parentheses of its own.
		{line: "77 (a) b (c) R 1 77 77 0 -1 0 0 0 0 0 100 50 0 0 20 0 1 0",
			want: procStat{ppid: 1, utime: 100, stime: 50}},
		{line: "77 (x) R 1 2 3", bad: true},
		{line: "77 x R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15", bad: true},
		{line: "77 (x) R 1 77 77 0 -1 0 0 0 0 0 abc 50 0 0 20", bad: true},
	} {
		got, err := parseStat([]byte(c.line))
		if c.bad {
			if err == nil {
				t.Errorf("parseStat(%q) = %+v, want an error", c.line, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseStat(%q) = %+v, %v; want %+v", c.line, got, err, c.want)
		}
	}
	if st := (procStat{utime: 150, stime: 50, cutime: 1}); st.own() != 2*time.Second || st.children() != 10*time.Millisecond {
		t.Errorf("ticks: own %v children %v", st.own(), st.children())
	}
}

// spin burns about d of this process's CPU.
func spin(d time.Duration) {
	start := selfCPU()
	x := 0
	for selfCPU()-start < d {
		for i := range 100000 {
			x += i
		}
	}
	_ = x
}

// TestProcessCPU: /proc says what getrusage says about this process, to
// the 10 ms of a clock tick.
func TestProcessCPU(t *testing.T) {
	m := ProcessCPU("self", os.Getpid())
	p0, err := m.Read()
	if err != nil {
		t.Fatal(err)
	}
	s0 := selfCPU()
	spin(300 * time.Millisecond)
	s1 := selfCPU()
	p1, err := m.Read()
	if err != nil {
		t.Fatal(err)
	}
	if d, want := p1-p0, s1-s0; d < want-30*time.Millisecond || d > want+30*time.Millisecond {
		t.Fatalf("/proc says %v, getrusage %v", d, want)
	}
	if _, err := ProcessCPU("gone", 1<<30).Read(); err == nil {
		t.Fatal("a process that does not exist")
	}
}

// TestProcessTreeCPU: a child's CPU counts while it runs and after it
// has been waited for, once.
func TestProcessTreeCPU(t *testing.T) {
	tree := ProcessTreeCPU("tree", os.Getpid())
	read := func() time.Duration {
		t.Helper()
		d, err := tree.Read()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	busy := exec.Command("sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	defer busy.Process.Kill()
	child := ProcessCPU("child", busy.Process.Pid)
	before, c0 := read(), must(child.Read())
	deadline := time.Now().Add(20 * time.Second)
	for must(child.Read())-c0 < 200*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatal("the busy child got no CPU")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c1 := must(child.Read())
	after := read()
	if d := after - before; d < c1-c0-20*time.Millisecond {
		t.Fatalf("tree grew %v while its living child used %v", d, c1-c0)
	}
	busy.Process.Kill()
	busy.Wait()

	// A child waited for: its time moves to this process's cutime.
	self0 := selfCPU()
	before = read()
	once := exec.Command("sh", "-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
	if err := once.Run(); err != nil {
		t.Fatal(err)
	}
	after = read()
	ran := once.ProcessState.UserTime() + once.ProcessState.SystemTime()
	if ran < 50*time.Millisecond {
		t.Skipf("the child ran only %v: too little to tell from a clock tick", ran)
	}
	self := selfCPU() - self0
	if d := after - before; d < ran-30*time.Millisecond || d > ran+self+30*time.Millisecond {
		t.Fatalf("tree grew %v for a waited child of %v (this process: %v)", d, ran, self)
	}
}

func must(d time.Duration, err error) time.Duration {
	if err != nil {
		panic(err)
	}
	return d
}

func TestParseCommandStats(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_evalsha:calls=120,usec=900,usec_per_call=7.50,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_info:calls=9,usec=1,usec_per_call=0.1,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_client|setname:calls=3,usec=1,usec_per_call=0.33,rejected_calls=0,failed_calls=0\r\n"
	got, err := parseCommandStats(info)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got["evalsha"] != 120 || got["client|setname"] != 3 {
		t.Fatalf("got %v", got)
	}
	if _, err := parseCommandStats("cmdstat_get:calls=x,usec=1"); err == nil {
		t.Fatal("a count that is not a number")
	}
}

// TestRedisCommands: on the real server, commands are counted by name,
// and the counter's own INFO is not.
func TestRedisCommands(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	c := RedisCommands(rdb)
	before, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// ECHO: a command no other test sends to the shared server.
	for range 3 {
		if err := rdb.Echo(ctx, "x").Err(); err != nil {
			t.Fatal(err)
		}
	}
	after, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := after["echo"] - before["echo"]; d != 3 {
		t.Fatalf("echo counted %v times, want 3", d)
	}
	if _, ok := after["info"]; ok {
		t.Fatal("the counter counts its own INFO")
	}
	pid, err := RedisPID(ctx, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || !strings.HasPrefix(string(comm), "redis-server") {
		t.Fatalf("RedisPID %d is %q (%v)", pid, comm, err)
	}
}

func TestStatementLabel(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SELECT id, secret_hash FROM oauth_clients WHERE id = $1", "SELECT oauth_clients"},
		{"select x\n  from \"Things\" t", "SELECT things"},
		{"INSERT INTO oauth_refresh_tokens (a, b) VALUES ($1, $2)", "INSERT oauth_refresh_tokens"},
		{"UPDATE identities SET seen = $1", "UPDATE identities"},
		{"DELETE FROM backups WHERE subject = $1", "DELETE backups"},
		{"begin", "BEGIN"},
		{"COMMIT", "COMMIT"},
		{"SELECT $1", "SELECT"},
		{"WITH x AS (SELECT 1) SELECT * FROM x", "WITH"},
		{"   ", "(empty)"},
	} {
		if got := statementLabel(c.in); got != c.want {
			t.Errorf("statementLabel(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// TestPostgresStatements: the statements of one database are counted by
// execution, prepared ones included; another database's are not; and
// PostmasterPID finds the server, whose tree CPUMeter can read.
func TestPostgresStatements(t *testing.T) {
	u := testenv.PostgresURL(t)
	ctx := context.Background()
	base := os.Getenv("AUTHD_TEST_DATABASE_URL")
	admin, err := store.Open(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := EnablePostgresStatements(ctx, admin.DB); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("%v: scripts/testenv.sh starts PostgreSQL with it", err)
	}
	db, err := store.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pu, _ := url.Parse(u)
	c := PostgresStatements(admin.DB, strings.TrimPrefix(pu.Path, "/"))
	if _, err := db.ExecContext(ctx, `CREATE TABLE load_probe (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	before, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := db.PrepareContext(ctx, `INSERT INTO load_probe (x) VALUES ($1)`)
	if err != nil {
		t.Fatal(err)
	}
	defer ins.Close()
	for i := range 3 {
		if _, err := ins.ExecContext(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM load_probe`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	// The admin database's statements are not this database's.
	if _, err := admin.ExecContext(ctx, `SELECT count(*) FROM pg_database`); err != nil {
		t.Fatal(err)
	}
	after, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := after["INSERT load_probe"] - before["INSERT load_probe"]; d != 3 {
		t.Errorf("INSERT load_probe: %v, want 3 (%v)", d, after)
	}
	if d := after["SELECT load_probe"] - before["SELECT load_probe"]; d != 2 {
		t.Errorf("SELECT load_probe: %v, want 2 (%v)", d, after)
	}
	if d := after["SELECT pg_database"] - before["SELECT pg_database"]; d != 0 {
		t.Errorf("another database's statement counted %v times", d)
	}

	pid, err := PostmasterPID(ctx, db.DB)
	if err != nil {
		t.Fatal(err)
	}
	if comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err != nil || !strings.HasPrefix(string(comm), "postgres") {
		t.Fatalf("PostmasterPID %d is %q (%v)", pid, comm, err)
	}
	m := ProcessTreeCPU("pg", pid)
	c0, err := m.Read()
	if err != nil {
		t.Fatal(err)
	}
	// Work in a backend: the tree's CPU grows by at least what it used.
	if _, err := db.ExecContext(ctx, `SELECT count(*) FROM generate_series(1, 3000000)`); err != nil {
		t.Fatal(err)
	}
	if c1, err := m.Read(); err != nil || c1-c0 < 50*time.Millisecond {
		t.Fatalf("PostgreSQL's CPU grew %v (%v) over three million rows", c1-c0, err)
	}
}

func TestPrometheusSeries(t *testing.T) {
	body := "# HELP x_total X.\n# TYPE x_total counter\nx_total{result=\"hit\"} 12\nx_total{result=\"miss\"} 3\nx_totally 99\n"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
	defer ts.Close()
	c := PrometheusSeries("authd", ts.URL, map[string]string{"hit": `x_total{result="hit"}`, "miss": `x_total{result="miss"}`})
	got, err := c.Read(context.Background())
	if err != nil || len(got) != 2 || got["hit"] != 12 || got["miss"] != 3 {
		t.Fatalf("got %v, %v", got, err)
	}
	c = PrometheusSeries("authd", ts.URL, map[string]string{"other": `x_total{result="other"}`})
	if _, err := c.Read(context.Background()); err == nil {
		t.Fatal("a series that is not exposed")
	}
	body = "x_total{result=\"hit\"} twelve\nx_total{result=\"miss\"} 3\n"
	c = PrometheusSeries("authd", ts.URL, map[string]string{"hit": `x_total{result="hit"}`})
	if _, err := c.Read(context.Background()); err == nil {
		t.Fatal("a value that is not a number")
	}
}

// TestBaselineHandler: the baseline grants client_credentials, introspects
// its own tokens, and refuses a wrong secret.
func TestBaselineHandler(t *testing.T) {
	ts := httptest.NewServer(BaselineHandler())
	defer ts.Close()
	c := ts.Client()
	if err := ClientCredentials(ts.URL+"/token", BaselineClientID, BaselineClientSecret, nil)(c, 0); err != nil {
		t.Fatal(err)
	}
	body, _, err := Send(c, FormRequest(ts.URL+"/token", url.Values{"grant_type": {"client_credentials"}}, BaselineClientID, BaselineClientSecret), 200)
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
		t.Fatalf("token response %s", body)
	}
	introspect := func(tok, secret string, want int) map[string]any {
		t.Helper()
		body, _, err := Send(c, FormRequest(ts.URL+"/introspect", url.Values{"token": {tok}}, BaselineClientID, secret), want)
		if err != nil {
			t.Fatal(err)
		}
		var out map[string]any
		json.Unmarshal(body, &out)
		return out
	}
	if out := introspect(tr.AccessToken, BaselineClientSecret, 200); out["active"] != true || out["client_id"] != BaselineClientID {
		t.Fatalf("introspect a live token: %v", out)
	}
	if out := introspect("nope", BaselineClientSecret, 200); out["active"] != false {
		t.Fatalf("introspect an unknown token: %v", out)
	}
	introspect(tr.AccessToken, "wrong", 401)
	if err := ClientCredentials(ts.URL+"/token", BaselineClientID, "wrong", nil)(c, 0); err == nil {
		t.Fatal("a grant with a wrong secret")
	}
}

func TestParseMonitorLine(t *testing.T) {
	for _, c := range []struct {
		line, name string
		script, ok bool
	}{
		{`+1700000000.123456 [0 127.0.0.1:5000] "EVALSHA" "abc" "1" "k"` + "\r\n", "evalsha", false, true},
		{`+1700000000.123457 [0 lua] "zadd" "k" "NX" "1" "m"` + "\r\n", "zadd", true, true},
		{`+1700000000.123458 [3 unix:/tmp/redis.sock] "get" "x"` + "\r\n", "get", false, true},
		{"+OK\r\n", "", false, false},
		{`+1700000000.1 [0 lua] zadd` + "\r\n", "", false, false},
		{`-ERR no`, "", false, false},
	} {
		name, script, ok := parseMonitorLine(c.line)
		if name != c.name || script != c.script || ok != c.ok {
			t.Errorf("parseMonitorLine(%q) = %q %v %v, want %q %v %v", c.line, name, script, ok, c.name, c.script, c.ok)
		}
	}
}

// TestTraceRedis: what clients send and what scripts run are told apart,
// and nothing sent before the trace ended is missed.
func TestTraceRedis(t *testing.T) {
	rdb := testenv.Redis(t)
	ctx := context.Background()
	key := testenv.Name("loadtest-trace-")
	defer rdb.Del(ctx, key)
	// STRLEN and ECHO: commands no other test sends to the shared server,
	// one from the script only and one from the client only.
	script := `redis.call('SET', KEYS[1], '1'); return redis.call('STRLEN', KEYS[1])`
	tr, err := TraceRedis(ctx, rdb, func() (int, error) {
		for range 4 {
			if err := rdb.Eval(ctx, script, []string{key}).Err(); err != nil {
				return 0, err
			}
			if err := rdb.Echo(ctx, "traced").Err(); err != nil {
				return 0, err
			}
		}
		return 4, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Ops != 4 || tr.Client["eval"] < 4 || tr.Scripts["set"] < 4 ||
		tr.Scripts["strlen"] != 4 || tr.Client["strlen"] != 0 || tr.Client["echo"] != 4 || tr.Scripts["echo"] != 0 {
		t.Fatalf("trace %+v", tr)
	}
	if got := tr.Per(map[string]int{"eval": 4, "exists": 2}); got != "eval 1, exists 0.5" {
		t.Fatalf("Per = %q", got)
	}
	boom := errors.New("boom")
	if _, err := TraceRedis(ctx, rdb, func() (int, error) { return 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("a failing trace: %v", err)
	}
}
