// Package loadtest runs load benchmarks against HTTP servers on loopback:
// parallel clients, throughput, latency percentiles and CPU per operation,
// and a bare go-oauth2 v4 server as the same-run baseline for the token
// endpoint.
package loadtest

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	libserver "github.com/go-oauth2/oauth2/v4/server"
	libstore "github.com/go-oauth2/oauth2/v4/store"
)

// Result is one load run's throughput and latencies.
type Result struct {
	Rate     float64 // operations per second
	P50, P99 time.Duration
	CPU      time.Duration // this process's CPU per operation
}

// Parallelism is the number of client goroutines per GOMAXPROCS.
const Parallelism = 8

// Run runs op b.N times from parallel clients and reports ops per second
// as unit, p50 and p99 latency, and this process's CPU per operation
// (server and load clients both; a database's or Redis's own CPU is not
// included). op returns an error for any unexpected answer.
func Run(b *testing.B, unit string, op func(c *http.Client) error) Result {
	b.Helper()
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(Parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		local := make([]time.Duration, 0, 1024)
		for pb.Next() {
			t0 := time.Now()
			if err := op(client); err != nil {
				b.Error(err)
				return
			}
			local = append(local, time.Since(t0))
		}
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	slices.Sort(lat)
	r := Result{Rate: float64(len(lat)) / elapsed.Seconds()}
	if n := len(lat); n > 0 {
		r.P50 = lat[n/2]
		r.P99 = lat[min(n-1, n*99/100)]
		r.CPU = cpu / time.Duration(n)
	}
	b.ReportMetric(r.Rate, unit)
	b.ReportMetric(float64(r.CPU.Microseconds()), "cpu-µs/op")
	b.ReportMetric(float64(r.P50.Microseconds()), "p50-µs")
	b.ReportMetric(float64(r.P99.Microseconds()), "p99-µs")
	b.ReportMetric(0, "ns/op") // wall time per op means little with parallel clients
	return r
}

// processCPU returns the user+system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Send does one request and fails unless it answers want.
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
		return nil, nil, fmt.Errorf("%s %s: status %d, want %d: %s", req.Method, req.URL.Path, resp.StatusCode, want, body)
	}
	return body, resp, nil
}

// ClientCredentials returns an op that runs one client_credentials grant
// at tokenURL with HTTP Basic client authentication.
func ClientCredentials(tokenURL, id, secret string) func(c *http.Client) error {
	body := url.Values{"grant_type": {"client_credentials"}}.Encode()
	return func(c *http.Client) error {
		req, _ := http.NewRequest("POST", tokenURL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		_, _, err := Send(c, req, 200)
		return err
	}
}

// BareGoOAuth2 starts a go-oauth2 v4 server with its defaults and memory
// stores (the library out of the box, none of authd's checks) and returns
// its token URL and a client allowed client_credentials.
func BareGoOAuth2(b *testing.B) (tokenURL, id, secret string) {
	m := manage.NewDefaultManager()
	m.MustTokenStorage(libstore.NewMemoryTokenStore())
	cs := libstore.NewClientStore()
	cs.Set("bench", &models.Client{ID: "bench", Secret: "bench-secret", Domain: "https://app.example.com"})
	m.MapClientStorage(cs)
	srv := libserver.NewDefaultServer(m)
	srv.SetClientInfoHandler(libserver.ClientBasicHandler)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.HandleTokenRequest(w, r)
	}))
	b.Cleanup(ts.Close)
	return ts.URL, "bench", "bench-secret"
}
