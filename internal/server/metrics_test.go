package server

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsLint: the server's metrics pass the Prometheus lint, the
// writer's counter is authd_errors_total{code,status} and the rate
// limiter's authd_ratelimit_decisions_total{policy,result}.
func TestMetricsLint(t *testing.T) {
	m := newMetrics()
	m.countError(errors.InvalidGrant, 400)
	m.countError(errors.InvalidGrant, 400)
	m.countDecision("token", "limited")
	if got := testutil.ToFloat64(m.decisions.WithLabelValues("token", "limited")); got != 1 {
		t.Errorf("authd_ratelimit_decisions_total{token,limited} = %v, want 1", got)
	}
	m.observe("POST /token", "BREW", 418, time.Millisecond)
	if got := testutil.ToFloat64(m.errors.WithLabelValues("invalid_grant", "400")); got != 2 {
		t.Errorf("authd_errors_total{invalid_grant,400} = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(m.requests); n != 1 {
		t.Errorf("%d request series, want 1", n)
	}
	mfs, err := m.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		if mf.GetName() != "authd_http_request_duration_seconds" {
			continue
		}
		for _, x := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range x.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			found = found || labels["method"] == "other" && labels["route"] == "POST /token" && labels["status"] == "418"
		}
	}
	if !found {
		t.Error(`no series {method="other",route="POST /token",status="418"}`)
	}
	for _, c := range []struct{ in, want string }{{"GET", "GET"}, {"get", "other"}, {"PROPFIND", "other"}, {"", "other"}} {
		if got := methodLabel(c.in); got != c.want {
			t.Errorf("methodLabel(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct {
		in   int
		want string
	}{{200, "200"}, {429, "429"}, {599, "other"}, {0, "other"}, {1000, "other"}} {
		if got := statusLabel(c.in); got != c.want {
			t.Errorf("statusLabel(%d) = %q, want %q", c.in, got, c.want)
		}
	}
	problems, err := testutil.GatherAndLint(m.registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "authd_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// TestTokenCacheMetric: the verified-token cache's counters are exported
// as authd_access_token_cache_lookups_total{result="hit"|"miss"}, read
// when scraped, and pass the lint.
func TestTokenCacheMetric(t *testing.T) {
	stats := oauth.TokenCacheStats{Hits: 7, Misses: 3}
	m := newMetrics()
	m.registry.MustRegister(newTokenCacheCollector(func() oauth.TokenCacheStats { return stats }))
	want := func(hits, misses uint64) {
		t.Helper()
		exp := fmt.Sprintf(`# HELP authd_access_token_cache_lookups_total Access-token verifications by result: hit (answered from the cache of verified tokens) or miss (signature verified).
# TYPE authd_access_token_cache_lookups_total counter
authd_access_token_cache_lookups_total{result="hit"} %d
authd_access_token_cache_lookups_total{result="miss"} %d
`, hits, misses)
		if err := testutil.GatherAndCompare(m.registry, strings.NewReader(exp), "authd_access_token_cache_lookups_total"); err != nil {
			t.Fatal(err)
		}
	}
	want(7, 3)
	stats = oauth.TokenCacheStats{Hits: 8, Misses: 5}
	want(8, 5)
	problems, err := testutil.GatherAndLint(m.registry, "authd_access_token_cache_lookups_total")
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
}
