// Package loadtest puts HTTP servers on loopback under load and says what
// one operation costs: the rate and latency percentiles the clients see,
// the CPU time each server process used (read from /proc, apart from the
// load generator's own), and the commands and statements the run sent to
// Redis and PostgreSQL. It also holds the bare go-oauth2 server that load
// benchmarks are measured against.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Parallelism is the number of client goroutines per GOMAXPROCS.
const Parallelism = 8

// Op is the i-th operation of a load run, sent with c. It returns an
// error for any unexpected answer.
type Op func(c *http.Client, i int) error

// Measures are what a run reads before its first operation and after its
// last: the CPU of the server processes and the counters of the stores.
type Measures struct {
	CPU      []CPUMeter
	Counters []Counter
}

// Result is one load run: what the clients saw, and what one operation
// cost each server process and store.
type Result struct {
	Ops int // operations that succeeded
	// Shed is the number of operations the server turned away with 503
	// (overloaded: a store call ran out of time), which the run goes on
	// past; they count in no figure but this one.
	Shed     int
	Elapsed  time.Duration
	Rate     float64 // successful operations per second
	P50, P99 time.Duration
	// LoadGenCPU is this process's CPU per operation: the load
	// generator's, the servers' not included.
	LoadGenCPU time.Duration
	// CPU is each metered server process's CPU per operation.
	CPU []CPUCost
	// Counts is each counter's increase per operation.
	Counts []Count
}

// CPUCost is the CPU time a metered process used per operation.
type CPUCost struct {
	Name  string
	PerOp time.Duration
}

// Count is one counter's increase per operation: Key (a command, a
// statement, a series) of Source (the counter's name).
type Count struct {
	Source, Key string
	PerOp       float64
}

// ServerCPU is the CPU of all metered processes per operation.
func (r *Result) ServerCPU() time.Duration {
	var d time.Duration
	for _, c := range r.CPU {
		d += c.PerOp
	}
	return d
}

// CPUOf is the CPU per operation of the meter named name, and whether
// there is one.
func (r *Result) CPUOf(name string) (time.Duration, bool) {
	for _, c := range r.CPU {
		if c.Name == name {
			return c.PerOp, true
		}
	}
	return 0, false
}

// Total is the sum of source's counts per operation, and whether the run
// read that source at all.
func (r *Result) Total(source string) (float64, bool) {
	var sum float64
	found := false
	for _, c := range r.Counts {
		if c.Source == source {
			sum += c.PerOp
			found = true
		}
	}
	return sum, found
}

// Count is source's count of key per operation (0 when it did not move).
func (r *Result) Count(source, key string) float64 {
	for _, c := range r.Counts {
		if c.Source == source && c.Key == key {
			return c.PerOp
		}
	}
	return 0
}

// Breakdown lists source's counts per operation, largest first, as
// "key 1.00, key 0.0012"; counts below min per operation are left out.
func (r *Result) Breakdown(source string, min float64) string {
	var parts []string
	for _, c := range r.Counts {
		if c.Source == source && c.PerOp >= min {
			parts = append(parts, fmt.Sprintf("%s %.3g", c.Key, c.PerOp))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Report reports r as b's metrics, each unit prefixed with prefix (""
// for the target, "base-" for a baseline): the rate in unit, the share of
// operations answered 503 (shed-%), p50 and p99 latency, the CPU per operation of the metered processes (server-cpu,
// and each one's when there are several), the load generator's, and the
// Redis commands and PostgreSQL statements per operation when counted.
func (r *Result) Report(b *testing.B, prefix, unit string) {
	b.ReportMetric(r.Rate, prefix+unit)
	b.ReportMetric(100*float64(r.Shed)/float64(r.Ops+r.Shed), prefix+"shed-%")
	b.ReportMetric(micros(r.P50), prefix+"p50-µs")
	b.ReportMetric(micros(r.P99), prefix+"p99-µs")
	if len(r.CPU) > 1 {
		for _, c := range r.CPU {
			b.ReportMetric(micros(c.PerOp), prefix+c.Name+"-cpu-µs/op")
		}
	}
	b.ReportMetric(micros(r.ServerCPU()), prefix+"server-cpu-µs/op")
	b.ReportMetric(micros(r.LoadGenCPU), prefix+"loadgen-cpu-µs/op")
	for _, s := range []struct{ source, unit string }{{SourceRedis, "redis-cmds/op"}, {SourcePostgres, "pg-stmts/op"}} {
		if n, ok := r.Total(s.source); ok {
			b.ReportMetric(n, prefix+s.unit)
		}
	}
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Run sends n operations (op(c, 0) … op(c, n-1)) from Parallelism ×
// GOMAXPROCS client goroutines over keep-alive connections. Right before
// the first it reads m's counters, then its CPU meters and this
// process's CPU; right after the last, the CPU first and the counters
// last, so that reading a counter (a scrape, a query) costs the metered
// processes nothing inside the window. The increases divided by n are
// the cost of one successful operation. An operation answered 503 (see
// IsShed) is counted in Result.Shed and the run goes on; the first other
// failure ends it with its error, and so does shedding more than
// MaxShed of the operations, when the figures would mean little.
func Run(ctx context.Context, n int, op Op, m Measures) (*Result, error) {
	if n <= 0 {
		return nil, fmt.Errorf("loadtest.Run: %d operations", n)
	}
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	counts0, err := readCounters(ctx, m.Counters)
	if err != nil {
		return nil, err
	}
	cpu0, err := readCPU(m.CPU)
	if err != nil {
		return nil, err
	}
	self0 := selfCPU()
	start := time.Now()

	workers := min(n, Parallelism*runtime.GOMAXPROCS(0))
	var (
		next     atomic.Int64
		shed     atomic.Int64
		failed   atomic.Bool
		firstErr error
		errOnce  sync.Once
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, n)
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, n/workers+1)
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					break
				}
				t0 := time.Now()
				if err := op(client, i); IsShed(err) {
					shed.Add(1)
					continue
				} else if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("operation %d: %w", i, err) })
					failed.Store(true)
					break
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	self := selfCPU() - self0
	cpu1, cpuErr := readCPU(m.CPU)
	counts1, countErr := readCounters(ctx, m.Counters)
	if firstErr != nil {
		return nil, firstErr
	}
	if cpuErr != nil {
		return nil, cpuErr
	}
	if countErr != nil {
		return nil, countErr
	}
	ok, turned := len(lat), int(shed.Load())
	if float64(turned) > MaxShed*float64(n) {
		return nil, fmt.Errorf("%d of %d operations answered 503: overloaded", turned, n)
	}

	r := &Result{Ops: ok, Shed: turned, Elapsed: elapsed, Rate: float64(ok) / elapsed.Seconds(), LoadGenCPU: self / time.Duration(ok)}
	r.P50, r.P99 = percentiles(lat)
	for i, c := range m.CPU {
		r.CPU = append(r.CPU, CPUCost{Name: c.Name, PerOp: (cpu1[i] - cpu0[i]) / time.Duration(ok)})
	}
	for i, c := range m.Counters {
		for k, v := range counts1[i] {
			if d := v - counts0[i][k]; d != 0 {
				r.Counts = append(r.Counts, Count{Source: c.Name, Key: k, PerOp: d / float64(ok)})
			}
		}
	}
	slices.SortFunc(r.Counts, func(a, b Count) int {
		if a.Source != b.Source {
			return strings.Compare(a.Source, b.Source)
		}
		if a.PerOp != b.PerOp {
			if a.PerOp > b.PerOp {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Key, b.Key)
	})
	return r, nil
}

// percentiles returns the median and the 99th percentile of lat (nearest
// rank), sorting it.
func percentiles(lat []time.Duration) (p50, p99 time.Duration) {
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	rank := func(p int) time.Duration { return lat[max(0, (len(lat)*p+99)/100-1)] }
	return rank(50), rank(99)
}

func readCPU(meters []CPUMeter) ([]time.Duration, error) {
	out := make([]time.Duration, len(meters))
	for i, m := range meters {
		d, err := m.Read()
		if err != nil {
			return nil, fmt.Errorf("CPU of %s: %w", m.Name, err)
		}
		out[i] = d
	}
	return out, nil
}

func readCounters(ctx context.Context, cs []Counter) ([]map[string]float64, error) {
	out := make([]map[string]float64, len(cs))
	for i, c := range cs {
		v, err := c.Read(ctx)
		if err != nil {
			return nil, fmt.Errorf("counters of %s: %w", c.Name, err)
		}
		out[i] = v
	}
	return out, nil
}

// MaxShed is the share of a run's operations that may be answered 503
// before Run gives up on it.
const MaxShed = 0.1

// StatusError is an answer with another status than the one expected.
type StatusError struct {
	Method, Path string
	Status, Want int
	Body         []byte
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d, want %d: %s", e.Method, e.Path, e.Status, e.Want, e.Body)
}

// IsShed reports whether err is a 503 answer: the server shedding load
// (authd answers temporarily_unavailable when a store call runs out of
// time), not a wrong answer.
func IsShed(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusServiceUnavailable
}

// Send does one request and fails with a *StatusError unless it answers
// want.
func Send(c *http.Client, req *http.Request, want int) ([]byte, *http.Response, error) {
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != want {
		return nil, nil, &StatusError{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, Want: want, Body: body}
	}
	return body, resp, nil
}

// FormRequest is a POST of form to target with HTTP Basic client
// authentication (RFC 6749 §2.3.1: id and secret form-encoded first).
func FormRequest(target string, form url.Values, id, secret string) *http.Request {
	req, _ := http.NewRequest("POST", target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return req
}

// ClientCredentials returns an op that runs one client_credentials grant
// (RFC 6749 §4.4) at tokenURL and checks that it answers an access token.
//
// extra, when set, adds parameters to every grant (resource indicators).
func ClientCredentials(tokenURL, id, secret string, extra url.Values) Op {
	form := url.Values{"grant_type": {"client_credentials"}}
	for k, vs := range extra {
		form[k] = append(form[k], vs...)
	}
	return func(c *http.Client, _ int) error {
		body, _, err := Send(c, FormRequest(tokenURL, form, id, secret), 200)
		if err == nil && !strings.Contains(string(body), `"access_token":"`) {
			err = fmt.Errorf("token response without an access token: %s", body)
		}
		return err
	}
}
