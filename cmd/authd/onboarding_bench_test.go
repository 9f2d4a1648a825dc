package main

// The cost of resource indicators at the token endpoint, on real Redis and
// PostgreSQL: client_credentials grants with a resource (parsed, checked
// against the client's and the server-wide list, written as aud) against
// the same grants without one, in the same run.
//
//	. /tmp/authd-dev/env
//	go test -run '^$' -bench Resource -benchtime 5s -count 3 ./cmd/authd/

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd-dev/authd/internal/loadtest"
)

func BenchmarkResourceGrants(b *testing.B) {
	const api = "https://mcp.example.com/mcp"
	e := newE2E(b, map[string]string{"AUTHD_RATE_LIMITS": loadPolicies, "AUTHD_LOG_LEVEL": "error", "AUTHD_RESOURCES": api}, false)
	id, secret := e.client("--redirect-uri", "https://app.example.com/cb", "--grant", "client_credentials", "--resource", "https://api.example.com/v1")
	grant := func(form url.Values) func(c *http.Client) error {
		body := form.Encode()
		return func(c *http.Client) error {
			req, _ := http.NewRequest("POST", e.issuer+"/token", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(id, secret)
			_, _, err := loadtest.Send(c, req, 200)
			return err
		}
	}
	var baseline float64
	b.Run("baseline=no-resource", func(b *testing.B) {
		baseline = loadtest.Run(b, "grants/s", grant(url.Values{"grant_type": {"client_credentials"}})).Rate
	})
	b.Run("resources=2", func(b *testing.B) {
		r := loadtest.Run(b, "grants/s", grant(url.Values{"grant_type": {"client_credentials"}, "resource": {api, "https://api.example.com/v1"}}))
		if baseline > 0 {
			b.ReportMetric(r.Rate/baseline, "x-baseline")
		}
	})
}
