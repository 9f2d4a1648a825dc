package ratelimit

// Results of a decision, as Options.Count receives them.
const (
	resultAllowed = "allowed"
	resultLimited = "limited"
	resultError   = "error"
)

// countPolicies reports one decision under each of its policies.
func (l *Limiter) countPolicies(policies []Policy, result string) {
	if l.count == nil {
		return
	}
	for _, p := range policies {
		l.count(p.Name, result)
	}
}

// countQuotas reports one decision under each of its quotas.
func (l *Limiter) countQuotas(quotas []Quota, result string) {
	if l.count == nil {
		return
	}
	for _, q := range quotas {
		l.count(q.Name, result)
	}
}
