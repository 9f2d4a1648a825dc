package oauth_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/authd-dev/authd/internal/server"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// raceTrials is how many times each race below is run: a lost race shows
// only now and then, so one trial proves little.
func raceTrials() int {
	if testing.Short() {
		return 5
	}
	return 25
}

// raceRequests sends n copies of a request at once (made by req, one per
// racer) through h's client and returns the responses in order.
func raceRequests(t *testing.T, h *harness, n int, req func() *http.Request) ([]*http.Response, [][]byte) {
	t.Helper()
	resps := make([]*http.Response, n)
	bodies := make([][]byte, n)
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = req()
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resps[i], bodies[i] = h.do(reqs[i])
		}()
	}
	close(start)
	wg.Wait()
	return resps, bodies
}

// TestLoginChallengeRace: one login page's challenge, signed correctly and
// posted by 8 racers at once, signs in exactly one of them (303 with a
// code); the others are told the sign-in request was already used.
func TestLoginChallengeRace(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		const ru = "https://app.example.com/cb"
		c, _ := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		addr := h.wallet.user()
		for trial := range raceTrials() {
			h.c = h.browser() // without the session of the last trial's sign-in
			resp, body := h.get(authorizeURL(codeParams(c, ru, "")), nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("login page: %d %s", resp.StatusCode, body)
			}
			id, msg := loginPage(t, body)
			form := url.Values{"login_id": {id}, "address": {addr}, "signature": {h.wallet.sign(addr, msg)}}
			resps, bodies := raceRequests(t, h, 8, func() *http.Request {
				req, err := http.NewRequest("POST", h.issuer+"/authorize/login", strings.NewReader(form.Encode()))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.Header.Set("Accept", "application/json")
				return req
			})
			won, lost := 0, 0
			for i, resp := range resps {
				var e map[string]any
				switch {
				case resp.StatusCode == http.StatusSeeOther:
					loc, err := url.Parse(resp.Header.Get("Location"))
					if err != nil || loc.Host != "app.example.com" || loc.Query().Get("code") == "" {
						t.Fatalf("trial %d racer %d: redirect %q", trial, i, resp.Header.Get("Location"))
					}
					won++
				case resp.StatusCode == http.StatusBadRequest && json.Unmarshal(bodies[i], &e) == nil && e["error"] == "invalid_request" &&
					strings.Contains(e["error_description"].(string), "already used"):
					lost++
				default:
					t.Fatalf("trial %d racer %d: %d %s", trial, i, resp.StatusCode, bodies[i])
				}
			}
			if won != 1 || lost != 7 {
				t.Fatalf("trial %d: %d sign-ins and %d refusals; want exactly 1 and 7", trial, won, lost)
			}
		}
	})
}

// TestUpstreamStateRace: the provider's callback for one state, sent by 8
// racers at once from the browser that started the sign-in, finishes it
// exactly once; the others get invalid_state.
func TestUpstreamStateRace(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		google := newFakeUpstream(KindGoogle)
		h := newHarness(t, db, nil, func(c *server.Config) { c.Upstreams = []Upstream{google} })
		const ru = "https://app.example.com/cb"
		c, _ := h.client(ClientRegistration{RedirectURIs: []string{ru}})
		grantConsent(t, h, c, "google:4242")
		for trial := range raceTrials() {
			v := codeParams(c, ru, "")
			v.Set("provider", KindGoogle)
			resp, body := h.get(authorizeURL(v), nil)
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("authorize with provider: %d %s", resp.StatusCode, body)
			}
			q := google.consent(t, resp.Header.Get("Location"))
			resps, bodies := raceRequests(t, h, 8, func() *http.Request {
				req, err := http.NewRequest("GET", h.issuer+"/callback/google?"+q.Encode(), nil)
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Accept", "application/json")
				return req
			})
			won, lost := 0, 0
			for i, resp := range resps {
				var e map[string]any
				switch {
				case resp.StatusCode == http.StatusFound && strings.Contains(resp.Header.Get("Location"), "code="):
					won++
				case resp.StatusCode == http.StatusUnauthorized && json.Unmarshal(bodies[i], &e) == nil &&
					e["error"] == "google_auth_failed" && e["provider_error"] == "invalid_state":
					lost++
				default:
					t.Fatalf("trial %d racer %d: %d %s", trial, i, resp.StatusCode, bodies[i])
				}
			}
			if won != 1 || lost != 7 {
				t.Fatalf("trial %d: %d sign-ins and %d refusals; want exactly 1 and 7", trial, won, lost)
			}
		}
	})
}
