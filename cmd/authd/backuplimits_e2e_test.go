package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd-dev/authd/authtoken"
)

// megabyteBackup returns a valid backup body of exactly 1 MiB: base64 of
// 786,432 random bytes.
func megabyteBackup(t *testing.T) []byte {
	t.Helper()
	raw := make([]byte, 3<<18)
	rand.Read(raw)
	b := []byte(base64.StdEncoding.EncodeToString(raw))
	if len(b) != 1<<20 {
		t.Fatalf("body of %d bytes", len(b))
	}
	return b
}

// freshPut signs a PUT /backup of body with a key made for the purpose,
// in the unbound form any client sends.
func (e *e2e) freshPut(body []byte) (tok, address string) {
	e.t.Helper()
	wif, addr, err := authtoken.GenerateKey()
	if err != nil {
		e.t.Fatal(err)
	}
	tok, err = authtoken.Token(wif, authtoken.TokenOptions{RequestPath: "/backup", Body: body})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok, addr
}

func (e *e2e) backupCount() int {
	e.t.Helper()
	var n int
	if err := e.a.db.DB.QueryRow(`SELECT COUNT(*) FROM backups`).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// TestBackupFloodFromOneIP reproduces one client IP storing 40 backups of
// 1 MiB in a second, each under a new key, so that no per-subject limit
// ever applies. With the defaults, the 21st create of the day is refused
// (AUTHD_BACKUP_IP_DAILY_CREATES=20) with 429, its headers and
// retry_after, and nothing more is stored; once the IP has sent 32 MiB
// (AUTHD_BACKUP_IP_DAILY_BYTES), requests are refused before their
// signature is checked or their token spent: such a token is still good
// from another client.
func TestBackupFloodFromOneIP(t *testing.T) {
	e := newE2E(t, nil, false)
	body := megabyteBackup(t)
	before := e.backupCount()
	created, byCreates, byBytes := 0, 0, 0
	var spared, sparedAddr string
	for i := 1; i <= 40; i++ {
		tok, addr := e.freshPut(body)
		resp, rb := e.do("PUT", "/backup", body, map[string]string{"X-Auth-Token": tok})
		h := resp.Header
		policies, counters := strings.Join(h.Values("RateLimit-Policy"), ", "), strings.Join(h.Values("RateLimit"), ", ")
		switch {
		case resp.StatusCode == http.StatusCreated && i <= 20:
			created++
			continue
		case resp.StatusCode != http.StatusTooManyRequests:
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, rb)
		case i <= 32:
			// The 21st to the 32nd: the creates of the day are spent.
			byCreates++
			if h.Get("X-RateLimit-Limit") != "20" || !strings.Contains(policies, `"backup_ip_creates";q=20;w=86400`) ||
				!strings.Contains(counters, `"backup_ip_creates";r=0;`) {
				t.Fatalf("request %d: %v", i, h)
			}
		default:
			// From the 33rd: 32 MiB sent, refused before verification.
			byBytes++
			if h.Get("X-RateLimit-Limit") != "33554432" || !strings.Contains(policies, `"backup_ip_bytes";q=33554432;w=86400;qu="content-bytes"`) ||
				!strings.Contains(counters, `"backup_ip_bytes";r=0;`) {
				t.Fatalf("request %d: %v", i, h)
			}
			if spared == "" {
				spared, sparedAddr = tok, addr
			}
		}
		eb := decodeError(t, rb)
		if eb.Error != "rate_limit_exceeded" || eb.RetryAfter < 1 || h.Get("Retry-After") != fmt.Sprint(eb.RetryAfter) ||
			h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset") == "" || !strings.Contains(policies, `"backup_ip";q=60;w=60`) {
			t.Fatalf("request %d: %d %v %s", i, resp.StatusCode, h, rb)
		}
		if i == 21 {
			e.checkErrorURI(eb.URI, "rate_limit_exceeded")
		}
	}
	if created != 20 || byCreates != 12 || byBytes != 8 || e.backupCount()-before != 20 {
		t.Fatalf("%d created, %d and %d refused, %d stored; want 20, 12 and 8, 20", created, byCreates, byBytes, e.backupCount()-before)
	}
	// A request refused for bytes never reached the verifier: its token is
	// unspent and stores a backup from another client IP.
	e.c.Transport = sourceTransport()
	if resp, rb := e.do("PUT", "/backup", body, map[string]string{"X-Auth-Token": spared}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("the refused token from another client: %d %s", resp.StatusCode, rb)
	}
	var n int
	if err := e.a.db.DB.QueryRow(`SELECT COUNT(*) FROM backups WHERE subject = $1`, sparedAddr).Scan(&n); err != nil || n != 1 {
		t.Fatalf("backup of %s: %d, %v", sparedAddr, n, err)
	}
}

// TestBackupDailyBytesPerIP: with creates uncapped, the bytes quota stops
// the same flood once the IP has sent AUTHD_BACKUP_IP_DAILY_BYTES; a
// replace counts its bytes too, but not as a create.
func TestBackupDailyBytesPerIP(t *testing.T) {
	e := newE2E(t, map[string]string{"AUTHD_BACKUP_IP_DAILY_BYTES": "8MiB", "AUTHD_BACKUP_IP_DAILY_CREATES": "0"}, false)
	body := megabyteBackup(t)
	for i := 1; i <= 9; i++ {
		tok, _ := e.freshPut(body)
		resp, rb := e.do("PUT", "/backup", body, map[string]string{"X-Auth-Token": tok})
		want := http.StatusCreated
		if i == 9 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, rb)
		}
		if want == http.StatusTooManyRequests && (resp.Header.Get("X-RateLimit-Limit") != "8388608" ||
			!strings.Contains(strings.Join(resp.Header.Values("RateLimit"), ", "), `"backup_ip_bytes";r=0;`)) {
			t.Fatalf("request %d: headers %v", i, resp.Header)
		}
		if strings.Contains(strings.Join(resp.Header.Values("RateLimit-Policy"), ", "), "backup_ip_creates") {
			t.Fatalf("creates quota on with AUTHD_BACKUP_IP_DAILY_CREATES=0: %v", resp.Header)
		}
	}
}

// TestBackupCreatesCountOnlyCreates: replacing one's own backup, again and
// again, is limited per subject, not by the daily creates of the IP.
func TestBackupCreatesCountOnlyCreates(t *testing.T) {
	e := newE2E(t, map[string]string{"AUTHD_BACKUP_IP_DAILY_CREATES": "1", "AUTHD_RATE_LIMITS": "backup_write=100/1m"}, false)
	body := []byte(base64.StdEncoding.EncodeToString(randomBytes(t, 300)))
	for i, want := range []int{http.StatusCreated, http.StatusOK, http.StatusOK, http.StatusOK} {
		tok := e.boundToken("PUT", "/backup", body, authtoken.TokenOptions{})
		if resp, rb := e.do("PUT", "/backup", body, map[string]string{"X-Auth-Token": tok}); resp.StatusCode != want {
			t.Fatalf("PUT %d: %d %s", i+1, resp.StatusCode, rb)
		}
	}
	// A failed PUT (bad signature) creates nothing and counts no create;
	// the next new key is the IP's second create of the day: refused.
	bad, _ := e.freshPut(body)
	resp, _ := e.do("PUT", "/backup", append(body[:len(body):len(body)], 'A'), map[string]string{"X-Auth-Token": bad})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", resp.StatusCode)
	}
	tok, _ := e.freshPut(body)
	if resp, rb := e.do("PUT", "/backup", body, map[string]string{"X-Auth-Token": tok}); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("second create: %d %s", resp.StatusCode, rb)
	}
}

// TestRevokeLimitedPerIP: /revoke counts every request per client IP,
// authenticated or not, and answers the 61st in a minute with 429 and the
// headers (the default revoke policy).
func TestRevokeLimitedPerIP(t *testing.T) {
	testLimitedPerIP(t, nil, "/revoke", 60, `"revoke";q=60;w=60`)
}

// TestIntrospectLimitedPerIP: /introspect likewise, at the limit
// AUTHD_RATE_LIMITS sets.
func TestIntrospectLimitedPerIP(t *testing.T) {
	testLimitedPerIP(t, map[string]string{"AUTHD_RATE_LIMITS": "introspect=3/1m"}, "/introspect", 3, `"introspect";q=3;w=60`)
}

func testLimitedPerIP(t *testing.T, env map[string]string, path string, limit int, policy string) {
	e := newE2E(t, env, false)
	id, secret := e.client("--redirect-uri", "https://app.example.com/cb", "--grant", "client_credentials")
	form := []byte(url.Values{"token": {"nonsense"}}.Encode())
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
	for i := 1; i <= limit+1; i++ {
		hdr := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
		if i%2 == 1 {
			hdr["Authorization"] = auth // authenticated or not, every request counts
		}
		resp, rb := e.do("POST", path, form, hdr)
		if i <= limit {
			if resp.StatusCode == http.StatusTooManyRequests || resp.Header.Get("X-RateLimit-Remaining") != fmt.Sprint(limit-i) ||
				resp.Header.Get("RateLimit-Policy") != policy {
				t.Fatalf("%s %d: %d %v", path, i, resp.StatusCode, resp.Header)
			}
			continue
		}
		eb := decodeError(t, rb)
		if resp.StatusCode != http.StatusTooManyRequests || eb.Error != "rate_limit_exceeded" || resp.Header.Get("Retry-After") != fmt.Sprint(eb.RetryAfter) ||
			eb.RetryAfter < 1 || resp.Header.Get("RateLimit-Policy") != policy {
			t.Fatalf("%s %d: %d %v %s", path, i, resp.StatusCode, resp.Header, rb)
		}
		e.checkErrorURI(eb.URI, "rate_limit_exceeded")
	}
}
