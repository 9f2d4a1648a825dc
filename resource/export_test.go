package resource

import (
	"net/http"
	"slices"
	"time"
)

// ParseJWKS returns the kids parseJWKS keeps, sorted, with their algorithms.
func ParseJWKS(doc []byte) ([]string, error) {
	keys, err := parseJWKS(doc)
	var out []string
	for kid, k := range keys {
		out = append(out, kid+":"+k.alg)
	}
	slices.Sort(out)
	return out, err
}

// CacheTTL is v.cacheTTL.
func (v *Verifier) CacheTTL(h http.Header) time.Duration { return v.cacheTTL(h) }
