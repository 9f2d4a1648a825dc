package loadtest

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Counter reads cumulative counts from a server, by key.
type Counter struct {
	Name string // the source: SourceRedis, SourcePostgres, or a server's name
	Read func(ctx context.Context) (map[string]float64, error)
}

// The names of the store counters, as Result.Total takes them.
const (
	SourceRedis    = "redis"
	SourcePostgres = "pg"
)

// RedisCommands counts the commands a Redis server ran, by command name,
// from INFO commandstats: what every client sent, and what scripts ran
// with redis.call as well. INFO itself (the counter's own reading) is
// left out.
func RedisCommands(rdb *redis.Client) Counter {
	return Counter{Name: SourceRedis, Read: func(ctx context.Context) (map[string]float64, error) {
		s, err := rdb.Info(ctx, "commandstats").Result()
		if err != nil {
			return nil, err
		}
		return parseCommandStats(s)
	}}
}

// parseCommandStats reads "cmdstat_<name>:calls=N,usec=…" lines.
func parseCommandStats(info string) (map[string]float64, error) {
	out := map[string]float64{}
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "cmdstat_")
		if !ok {
			continue
		}
		name, fields, ok := strings.Cut(rest, ":")
		if !ok {
			return nil, fmt.Errorf("commandstats: %q", line)
		}
		if name == "info" {
			continue
		}
		for _, f := range strings.Split(fields, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return nil, fmt.Errorf("commandstats: %q: %w", line, err)
				}
				out[name] = n
			}
		}
	}
	return out, nil
}

// RedisPID is the process id of the Redis server rdb talks to (INFO
// server), for ProcessCPU: the server must run on this machine.
func RedisPID(ctx context.Context, rdb *redis.Client) (int, error) {
	s, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("INFO server has no process_id")
}

// EnablePostgresStatements makes pg_stat_statements readable through
// admin (a superuser's connection): the extension must be in the server's
// shared_preload_libraries, which only a restart sets.
func EnablePostgresStatements(ctx context.Context, admin *sql.DB) error {
	if _, err := admin.ExecContext(ctx, `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`); err != nil {
		return fmt.Errorf("create extension pg_stat_statements: %w", err)
	}
	var n int64
	if err := admin.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_statements`).Scan(&n); err != nil {
		return fmt.Errorf("pg_stat_statements (is it in shared_preload_libraries?): %w", err)
	}
	return nil
}

// PostgresStatements counts the statements run in database dbname, by
// statement (pg_stat_statements' calls, which count each execution of a
// prepared statement, and BEGIN and COMMIT as statements of their own),
// read through admin, a connection to another database of the same
// server. Statements are labelled by verb and table ("SELECT
// oauth_clients") as statementLabel makes them.
func PostgresStatements(admin *sql.DB, dbname string) Counter {
	return Counter{Name: SourcePostgres, Read: func(ctx context.Context) (map[string]float64, error) {
		rows, err := admin.QueryContext(ctx, `SELECT s.query, s.calls FROM pg_stat_statements s
			JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1`, dbname)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := map[string]float64{}
		for rows.Next() {
			var q string
			var calls int64
			if err := rows.Scan(&q, &calls); err != nil {
				return nil, err
			}
			out[statementLabel(q)] += float64(calls)
		}
		return out, rows.Err()
	}}
}

// statementLabel names a statement by its verb and the table it works on:
// "SELECT oauth_clients", "INSERT oauth_refresh_tokens", "UPDATE x",
// "BEGIN". A statement of another shape keeps its verb alone.
func statementLabel(q string) string {
	f := strings.Fields(q)
	if len(f) == 0 {
		return "(empty)"
	}
	verb := strings.ToUpper(f[0])
	after := func(word string) string {
		for i := 1; i+1 < len(f); i++ {
			if strings.EqualFold(f[i], word) {
				return strings.Trim(strings.ToLower(f[i+1]), `"();,`)
			}
		}
		return ""
	}
	table := ""
	switch verb {
	case "SELECT", "DELETE":
		table = after("from")
	case "INSERT":
		table = after("into")
	case "UPDATE":
		if len(f) > 1 {
			table = strings.Trim(strings.ToLower(f[1]), `"();,`)
		}
	}
	if table == "" {
		return verb
	}
	return verb + " " + table
}

// PostmasterPID is the process id of the PostgreSQL server db talks to:
// the parent of db's own backend. The server must run on this machine.
func PostmasterPID(ctx context.Context, db *sql.DB) (int, error) {
	var backend int
	if err := db.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&backend); err != nil {
		return 0, err
	}
	st, err := readStat(backend)
	if err != nil {
		return 0, fmt.Errorf("backend %d: %w", backend, err)
	}
	return st.ppid, nil
}

// PrometheusSeries counts series of a Prometheus text exposition at url:
// keys maps a key of the result to the series as exposed, labels and
// all (`authd_x_total{result="hit"}`). A series that is not exposed is an
// error.
func PrometheusSeries(name, url string, keys map[string]string) Counter {
	return Counter{Name: name, Read: func(ctx context.Context) (map[string]float64, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return parseSeries(resp.Body, keys)
	}}
}

// parseSeries reads the values of the series keys names from a text
// exposition: "series value" lines, the value after the last space.
func parseSeries(r io.Reader, keys map[string]string) (map[string]float64, error) {
	want := make(map[string]string, len(keys))
	for k, s := range keys {
		want[s] = k
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		k, ok := want[line[:i]]
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("series %s: %w", line[:i], err)
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for k, s := range keys {
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("no series %s", s)
		}
	}
	return out, nil
}

// RedisTrace is what a Redis server ran while a traced function ran, by
// command name: what clients sent, and what scripts ran with redis.call.
type RedisTrace struct {
	Ops             int // the operations traced, to divide by
	Client, Scripts map[string]int
}

// TraceRedis runs f while a MONITOR connection to rdb's server records
// every command the server runs, and returns them; f returns the number
// of operations it ran. MONITOR slows the server: trace a few operations,
// apart from measured runs. The trace ends at an ECHO of a marker sent
// after f returns, so no command of f is missed.
func TraceRedis(ctx context.Context, rdb *redis.Client, f func() (int, error)) (*RedisTrace, error) {
	opt := rdb.Options()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", opt.Addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(5 * time.Minute))
	}
	rd := bufio.NewReader(conn)
	send := func(args ...string) error {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		_, err := io.WriteString(conn, b.String())
		return err
	}
	if opt.Password != "" {
		args := []string{"AUTH", opt.Password}
		if opt.Username != "" {
			args = []string{"AUTH", opt.Username, opt.Password}
		}
		if err := send(args...); err != nil {
			return nil, err
		}
		if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
			return nil, fmt.Errorf("AUTH: %q %v", line, err)
		}
	}
	if err := send("MONITOR"); err != nil {
		return nil, err
	}
	if line, err := rd.ReadString('\n'); err != nil || !strings.HasPrefix(line, "+OK") {
		return nil, fmt.Errorf("MONITOR: %q %v", line, err)
	}
	// Read as the server writes, so that its buffer for this connection
	// stays small, until the marker.
	marker := fmt.Sprintf("loadtest-trace-end-%d", time.Now().UnixNano())
	tr := &RedisTrace{Client: map[string]int{}, Scripts: map[string]int{}}
	done := make(chan error, 1)
	go func() {
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				done <- fmt.Errorf("MONITOR: %w", err)
				return
			}
			name, script, ok := parseMonitorLine(line)
			switch {
			case !ok:
			case name == "echo" && strings.Contains(line, `"`+marker+`"`):
				done <- nil
				return
			case script:
				tr.Scripts[name]++
			default:
				tr.Client[name]++
			}
		}
	}()
	ops, err := f()
	if err == nil {
		err = rdb.Echo(ctx, marker).Err()
	}
	if err != nil {
		conn.Close() // ends the reader
		<-done
		return nil, err
	}
	if err := <-done; err != nil {
		return nil, err
	}
	tr.Ops = ops
	return tr, nil
}

// parseMonitorLine reads a MONITOR line,
// `+1700000000.123456 [0 127.0.0.1:5000] "evalsha" "…"`, or `[0 lua]` for
// a command a script ran: the command's name in lower case, and whether a
// script ran it.
func parseMonitorLine(line string) (name string, script bool, ok bool) {
	open := strings.IndexByte(line, '[')
	closing := strings.IndexByte(line, ']')
	if !strings.HasPrefix(line, "+") || open < 0 || closing < open {
		return "", false, false
	}
	src := strings.Fields(line[open+1 : closing])
	rest := strings.TrimSpace(line[closing+1:])
	if !strings.HasPrefix(rest, `"`) {
		return "", false, false
	}
	end := strings.IndexByte(rest[1:], '"')
	if end < 0 {
		return "", false, false
	}
	return strings.ToLower(rest[1 : 1+end]), len(src) == 2 && src[1] == "lua", true
}

// Per returns the counts of m per traced operation, largest first, as
// "evalsha 1, exists 0.5".
func (t *RedisTrace) Per(m map[string]int) string {
	type kv struct {
		k string
		v int
	}
	var l []kv
	for k, v := range m {
		l = append(l, kv{k, v})
	}
	slices.SortFunc(l, func(a, b kv) int {
		if a.v != b.v {
			return b.v - a.v
		}
		return strings.Compare(a.k, b.k)
	})
	var parts []string
	for _, x := range l {
		parts = append(parts, fmt.Sprintf("%s %.3g", x.k, float64(x.v)/float64(max(t.Ops, 1))))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
