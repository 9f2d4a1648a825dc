package main

// Load benchmarks of the whole server as main wires it (rate limiter,
// sigauth, oauth, error layer, access log) over loopback: the speed
// targets of DESIGN §10. Rate-limit policies are raised through
// AUTHD_RATE_LIMITS, as a load run must; every request still pays its
// limiter decision. Run with the test servers up:
//
//	. /tmp/authd-dev/env
//	go test -run '^$' -bench Load -benchtime 5s -count 3 ./cmd/authd/
//
// Each sub-benchmark reports its rate (grants/s, introspections/s,
// flows/s), p50/p99 latency and this process's CPU per operation (server
// and load clients both). The baseline is a bare go-oauth2 v4 server with
// its memory stores, in the same run.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authd-dev/authd/internal/loadtest"
	"github.com/authd-dev/authd/sigauth"
)

// loadPolicies raises every limit far above what a loopback run reaches.
const loadPolicies = "token=1000000/1s,authorize=1000000/1s,login=1000000/1s,userinfo=1000000/1s,backup_read=1000000/1s,backup_write=1000000/1s," +
	"backup_ip=1000000/1s,introspect=1000000/1s,revoke=1000000/1s,register=1000000/1s"

var setups = []struct {
	name     string
	embedded bool
}{
	{"redis+postgres", false},
	{"embedded", true},
}

func benchE2E(b *testing.B, embedded bool) *e2e {
	return newE2E(b, map[string]string{"AUTHD_RATE_LIMITS": loadPolicies, "AUTHD_LOG_LEVEL": "error"}, embedded)
}

func BenchmarkLoad(b *testing.B) {
	var baseline float64
	b.Run("client_credentials/baseline=go-oauth2-memory", func(b *testing.B) {
		tokenURL, id, secret := loadtest.BareGoOAuth2(b)
		baseline = loadtest.Run(b, "grants/s", loadtest.ClientCredentials(tokenURL, id, secret)).Rate
	})
	for _, s := range setups {
		b.Run("client_credentials/authd="+s.name, func(b *testing.B) {
			e := benchE2E(b, s.embedded)
			id, secret := e.client("--redirect-uri", "https://app.example.com/cb", "--grant", "client_credentials")
			r := loadtest.Run(b, "grants/s", loadtest.ClientCredentials(e.issuer+"/token", id, secret))
			if baseline > 0 {
				b.ReportMetric(r.Rate/baseline, "x-baseline")
			}
		})
	}
	for _, s := range setups {
		b.Run("introspect/authd="+s.name, func(b *testing.B) {
			e := benchE2E(b, s.embedded)
			id, secret := e.client("--redirect-uri", "https://app.example.com/cb", "--grant", "client_credentials")
			body, _, err := loadtest.Send(e.c, tokenRequest(e.issuer, id, secret), 200)
			if err != nil {
				b.Fatal(err)
			}
			var tr struct {
				AccessToken string `json:"access_token"`
			}
			json.Unmarshal(body, &tr)
			form := url.Values{"token": {tr.AccessToken}}.Encode()
			auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
			loadtest.Run(b, "introspections/s", func(c *http.Client) error {
				req, _ := http.NewRequest("POST", e.issuer+"/introspect", strings.NewReader(form))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Authorization", auth)
				body, _, err := loadtest.Send(c, req, 200)
				if err == nil && !strings.Contains(string(body), `"active":true`) {
					err = fmt.Errorf("introspection: %s", body)
				}
				return err
			})
		})
	}
	for _, s := range setups {
		b.Run("wallet_flow/authd="+s.name, func(b *testing.B) {
			e := benchE2E(b, s.embedded)
			const ru = "http://127.0.0.1/cb"
			id, _ := e.client("--redirect-uri", ru, "--public")
			// Signing is the wallet's work, not the server's: the signed
			// authorize requests are made before the clock starts.
			flows := make([]walletFlow, b.N)
			for i := range flows {
				flows[i] = newWalletFlow(b, id, ru)
			}
			var next atomic.Int64
			loadtest.Run(b, "flows/s", func(c *http.Client) error {
				return flows[next.Add(1)-1].run(c, e.issuer, id, ru)
			})
		})
	}
	// The same flow as an OpenID Connect sign-in: scope openid profile
	// and a nonce, so /token also signs an ID Token (RS256 by default,
	// ES256 for a client registered for it).
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run("oidc_flow/alg="+alg+"/authd=redis+postgres", func(b *testing.B) {
			e := benchE2E(b, false)
			const ru = "http://127.0.0.1/cb"
			id, _ := e.client("--redirect-uri", ru, "--public", "--scope", "openid profile", "--id-token-alg", alg)
			flows := make([]walletFlow, b.N)
			for i := range flows {
				flows[i] = newWalletFlow(b, id, ru, "scope", "openid profile", "nonce", randomNonce())
			}
			var next atomic.Int64
			loadtest.Run(b, "flows/s", func(c *http.Client) error {
				return flows[next.Add(1)-1].run(c, e.issuer, id, ru)
			})
		})
	}
}

func randomNonce() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// walletFlow is one prepared sign-in: a PKCE verifier and the signed
// authorize request for its challenge.
type walletFlow struct {
	verifier, target, token string
}

func newWalletFlow(b *testing.B, clientID, ru string, params ...string) walletFlow {
	verifier, challenge := pkcePair()
	q := url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {ru},
		"state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(params); i += 2 {
		q.Set(params[i], params[i+1])
	}
	target := "/authorize?" + q.Encode()
	tok, err := sigauth.Token(walletWIF, sigauth.TokenOptions{RequestPath: target})
	if err != nil {
		b.Fatal(err)
	}
	return walletFlow{verifier: verifier, target: target, token: tok}
}

// run is one complete wallet flow: signed GET /authorize → 302 with a
// code → POST /token with PKCE (an ID Token too with scope openid) → GET
// /userinfo.
func (f walletFlow) run(c *http.Client, issuer, clientID, ru string) error {
	req, _ := http.NewRequest("GET", issuer+f.target, nil)
	req.Header.Set("X-Auth-Token", f.token)
	_, resp, err := loadtest.Send(c, req, http.StatusFound)
	if err != nil {
		return err
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		return err
	}
	form := url.Values{"grant_type": {"authorization_code"}, "client_id": {clientID}, "code": {loc.Query().Get("code")},
		"redirect_uri": {ru}, "code_verifier": {f.verifier}}
	req, _ = http.NewRequest("POST", issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	body, _, err := loadtest.Send(c, req, 200)
	if err != nil {
		return err
	}
	var tr struct {
		AccessToken string `json:"access_token"`
		IDToken     string `json:"id_token"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return err
	}
	if strings.Contains(f.target, "openid") != (tr.IDToken != "") {
		return fmt.Errorf("token response: id_token %q for %s", tr.IDToken, f.target)
	}
	req, _ = http.NewRequest("GET", issuer+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tr.AccessToken)
	_, _, err = loadtest.Send(c, req, 200)
	return err
}

func tokenRequest(issuer, id, secret string) *http.Request {
	req, _ := http.NewRequestWithContext(context.Background(), "POST", issuer+"/token",
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	return req
}
