package ratelimit

import "github.com/prometheus/client_golang/prometheus"

// Values of the result label of authd_ratelimit_decisions_total.
const (
	resultAllowed = "allowed"
	resultLimited = "limited"
	resultError   = "error"
)

// decisionsTotal counts decisions per policy and result.
var decisionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "authd_ratelimit_decisions_total",
	Help: "Rate-limit decisions, by policy and result: allowed, limited, or error when Redis failed or did not answer in time (the request was refused with 503).",
}, []string{"policy", "result"})

// Collector returns the rate-limit metrics
// (authd_ratelimit_decisions_total{policy,result}) for registration with a
// Prometheus registry. A decision over several policies counts once under
// each of them, with the decision's result.
func Collector() prometheus.Collector { return decisionsTotal }

func countDecision(policies []Policy, result string) {
	for _, p := range policies {
		decisionsTotal.WithLabelValues(p.Name, result).Inc()
	}
}
