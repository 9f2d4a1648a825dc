package server

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/oauth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values outside the closed sets. Every label value of authd's
// metrics comes from a closed set, so no request can add a series: a
// client controls the method and the path it sends, and a series per
// invented method (any token up to the header limit) or path would grow
// the server's memory, and every scraper's, without bound.
const (
	// otherLabel stands for a method or status outside the known ones.
	otherLabel = "other"
	// unmatchedRoute is the route label of a request no route matched
	// (answered not_found or method_not_allowed).
	unmatchedRoute = "unmatched"
)

// methodLabels are the methods that label the request metric as
// themselves: those of RFC 9110 §9 and PATCH. Anything else is "other".
var methodLabels = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodConnect: true,
	http.MethodOptions: true, http.MethodTrace: true,
}

// methodLabel is the method label of the request metric.
func methodLabel(m string) string {
	if methodLabels[m] {
		return m
	}
	return otherLabel
}

// metrics are one server's Prometheus metrics, in a registry of its own.
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.HistogramVec
	errors    *prometheus.CounterVec
	decisions *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "authd_http_request_duration_seconds",
		Help:    "Time to answer HTTP requests, by route pattern (unmatched: none), method (other: not a standard method) and status.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"route", "method", "status"})
	m.errors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authd_errors_total",
		Help: "Error responses written, by error code and HTTP status (302 for authorization redirects).",
	}, []string{"code", "status"})
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "authd_ratelimit_decisions_total",
		Help: "Rate-limit decisions, by policy and result: allowed, limited, or error when Redis failed or did not answer in time (the request was refused with 503).",
	}, []string{"policy", "result"})
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.errors,
		m.requests,
		m.decisions,
	)
	return m
}

// tokenCacheCollector exports the hits and misses of the cache of
// verified access tokens, read from the oauth server when scraped.
type tokenCacheCollector struct {
	desc  *prometheus.Desc
	stats func() oauth.TokenCacheStats
}

func newTokenCacheCollector(stats func() oauth.TokenCacheStats) *tokenCacheCollector {
	return &tokenCacheCollector{stats: stats, desc: prometheus.NewDesc("authd_access_token_cache_lookups_total",
		"Access-token verifications by result: hit (answered from the cache of verified tokens) or miss (signature verified).",
		[]string{"result"}, nil)}
}

func (c *tokenCacheCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *tokenCacheCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(st.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(st.Misses), "miss")
}

// observe records one request under labels from closed sets: route is a
// registered pattern or unmatchedRoute (the caller checks), the method
// and the status are mapped here.
func (m *metrics) observe(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, methodLabel(method), statusLabel(status)).Observe(d.Seconds())
}

// countError counts one error response (httperr.Config.Count). httperr.Write
// sends only catalog codes, and statuses from the catalog or 302.
func (m *metrics) countError(code errors.Code, status int) {
	m.errors.WithLabelValues(string(code), strconv.Itoa(status)).Inc()
}

// countDecision counts one rate-limit decision under one policy or quota
// (ratelimit.Options.Count). Policy and quota names come from the server's
// configuration, results from a closed set.
func (m *metrics) countDecision(policy, result string) {
	m.decisions.WithLabelValues(policy, result).Inc()
}

// handler serves the registry in the Prometheus exposition format.
func (m *metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError)})
}
