package backup

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/store"
)

const (
	alice = "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2"
	bob   = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"
)

// TestNPMBackupRoundTrip stores each backup the npm bitcoin-backup library
// made and reads it back byte for byte, with the headers of the package
// doc (ETag, Last-Modified, Cache-Control: no-store, nosniff).
func TestNPMBackupRoundTrip(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ts := newTestServer(t, db.DB, serverOptions{randomTags: true})
		for _, b := range npmBackups(t) {
			t.Run(b.Name, func(t *testing.T) {
				who := ts.wallet.register("1" + strings.Repeat(b.Name[:1], 25) + strconv.Itoa(len(b.data)))
				put := ts.do(t, call{method: "PUT", body: b.data, as: who})
				must(t, "PUT", put, http.StatusCreated, "")
				var meta struct {
					ETag      string `json:"etag"`
					Size      int    `json:"size"`
					UpdatedAt string `json:"updated_at"`
				}
				if err := json.Unmarshal(put.body, &meta); err != nil {
					t.Fatalf("PUT body %q: %v", put.body, err)
				}
				if meta.ETag != put.header.Get("ETag") || meta.Size != len(b.data) || meta.UpdatedAt != "2026-01-15T12:00:00.123Z" {
					t.Errorf("PUT body %+v; ETag header %s, %d bytes sent", meta, put.header.Get("ETag"), len(b.data))
				}
				if !isQuotedETag(meta.ETag) {
					t.Errorf("ETag %q is not in RFC 9110 quoted form", meta.ETag)
				}
				if got := put.header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("PUT Cache-Control = %q", got)
				}

				get := ts.do(t, call{method: "GET", as: who})
				must(t, "GET", get, http.StatusOK, "")
				if !bytes.Equal(get.body, b.data) {
					t.Fatalf("GET returned %d bytes that differ from the %d stored", len(get.body), len(b.data))
				}
				for k, want := range map[string]string{
					"ETag":           meta.ETag,
					"Content-Type":   "text/plain; charset=utf-8",
					"Cache-Control":  "no-store",
					"Content-Length": strconv.Itoa(len(b.data)),
					"Last-Modified":  "Thu, 15 Jan 2026 12:00:00 GMT",
				} {
					if got := get.header.Get(k); got != want {
						t.Errorf("GET %s = %q, want %q", k, got, want)
					}
				}

				head := ts.do(t, call{method: "HEAD", as: who})
				must(t, "HEAD", head, http.StatusOK, "")
				if len(head.body) != 0 {
					t.Errorf("HEAD sent a %d-byte body", len(head.body))
				}
				for _, k := range []string{"ETag", "Content-Type", "Cache-Control", "Content-Length", "Last-Modified"} {
					if head.header.Get(k) != get.header.Get(k) {
						t.Errorf("HEAD %s = %q, GET said %q", k, head.header.Get(k), get.header.Get(k))
					}
				}
			})
		}
	})
}

func isQuotedETag(s string) bool {
	return len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && !strings.Contains(s[1:len(s)-1], `"`)
}

// TestLifecycle walks one identity through create, conditional replace,
// conditional reads, delete and re-create, checking every status, code and
// ETag against RFC 9110's precondition rules.
func TestLifecycle(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ts := newTestServer(t, db.DB, serverOptions{})
		ts.wallet.register(alice)
		ts.wallet.register(bob)
		v1, v2, v3 := npmBackups(t)[0].data, npmBackups(t)[1].data, npmBackups(t)[2].data
		etag := func(r reply) string { return r.header.Get("ETag") }

		r := ts.do(t, call{method: "GET", as: alice})
		must(t, "GET before any PUT", r, 404, errors.BackupNotFound)
		checkGolden(t, "get_not_found", r.body)
		if r.header.Get("ETag") != "" {
			t.Error("404 carries an ETag")
		}
		must(t, "HEAD before any PUT", ts.do(t, call{method: "HEAD", as: alice}), 404, "")
		must(t, "DELETE before any PUT", ts.do(t, call{method: "DELETE", as: alice}), 404, errors.BackupNotFound)
		must(t, "PUT If-Match on nothing", ts.do(t, call{method: "PUT", body: v1, as: alice,
			header: map[string]string{"If-Match": `"00000000000000000000000000000000"`}}), 412, errors.BackupConflict)

		r = ts.do(t, call{method: "PUT", body: v1, as: alice, header: map[string]string{"If-None-Match": "*"}})
		must(t, "PUT If-None-Match: * (create)", r, 201, "")
		checkWriteGolden(t, "put_created", r)
		tag1 := etag(r)

		r = ts.do(t, call{method: "PUT", body: v2, as: alice, header: map[string]string{"If-None-Match": "*"}})
		must(t, "PUT If-None-Match: * over a backup", r, 412, errors.BackupConflict)
		checkGolden(t, "put_conflict", r.body)
		if r.header.Get("ETag") != "" {
			t.Error("412 carries an ETag")
		}
		must(t, "PUT stale If-Match", ts.do(t, call{method: "PUT", body: v2, as: alice,
			header: map[string]string{"If-Match": `"stale"`}}), 412, errors.BackupConflict)
		must(t, "PUT weak If-Match", ts.do(t, call{method: "PUT", body: v2, as: alice,
			header: map[string]string{"If-Match": "W/" + tag1}}), 412, errors.BackupConflict)
		must(t, "PUT malformed If-Match", ts.do(t, call{method: "PUT", body: v2, as: alice,
			header: map[string]string{"If-Match": "unquoted"}}), 400, errors.InvalidRequest)
		// obs-text tags (not UTF-8) never match, and never reach SQL,
		// where PostgreSQL would refuse them: 412, not 503.
		must(t, "PUT obs-text If-Match", ts.do(t, call{method: "PUT", body: v2, as: alice,
			header: map[string]string{"If-Match": "\"\xff\""}}), 412, errors.BackupConflict)
		must(t, "DELETE obs-text If-Match", ts.do(t, call{method: "DELETE", as: alice,
			header: map[string]string{"If-Match": "\"\xc3\""}}), 412, errors.BackupConflict)
		if r := ts.do(t, call{method: "GET", as: alice}); r.status != 200 {
			t.Fatalf("backup gone after refused obs-text writes: %d", r.status)
		}

		r = ts.do(t, call{method: "PUT", body: v2, as: alice, header: map[string]string{"If-Match": `"other", ` + tag1}})
		must(t, "PUT current If-Match in a list", r, 200, "")
		checkWriteGolden(t, "put_replaced", r)
		tag2 := etag(r)
		if tag2 == tag1 {
			t.Fatal("a replace kept the ETag")
		}

		r = ts.do(t, call{method: "GET", as: alice})
		must(t, "GET", r, 200, "")
		if !bytes.Equal(r.body, v2) || etag(r) != tag2 {
			t.Fatalf("GET = %d bytes, ETag %s; want the replacement, ETag %s", len(r.body), etag(r), tag2)
		}
		for _, inm := range []string{tag2, "W/" + tag2, `"x", ` + tag2, "*"} {
			r = ts.do(t, call{method: "GET", as: alice, header: map[string]string{"If-None-Match": inm}})
			must(t, "GET If-None-Match: "+inm, r, 304, "")
			if len(r.body) != 0 || etag(r) != tag2 || r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("304: body %q, ETag %q, Cache-Control %q", r.body, etag(r), r.header.Get("Cache-Control"))
			}
		}
		r = ts.do(t, call{method: "GET", as: alice, header: map[string]string{"If-None-Match": tag1}})
		must(t, "GET If-None-Match: old tag", r, 200, "")
		must(t, "GET stale If-Match", ts.do(t, call{method: "GET", as: alice,
			header: map[string]string{"If-Match": tag1}}), 412, errors.BackupConflict)
		must(t, "GET current If-Match", ts.do(t, call{method: "GET", as: alice,
			header: map[string]string{"If-Match": tag2}}), 200, "")

		r = ts.do(t, call{method: "PUT", body: v3, as: alice, header: map[string]string{"If-Match": "*"}})
		must(t, "PUT If-Match: *", r, 200, "")
		r = ts.do(t, call{method: "PUT", body: v1, as: alice})
		must(t, "PUT unconditional replace", r, 200, "")
		tag4 := etag(r)

		// Another identity sees none of it.
		must(t, "GET as bob", ts.do(t, call{method: "GET", as: bob}), 404, errors.BackupNotFound)
		must(t, "DELETE as bob", ts.do(t, call{method: "DELETE", as: bob}), 404, errors.BackupNotFound)

		must(t, "DELETE stale If-Match", ts.do(t, call{method: "DELETE", as: alice,
			header: map[string]string{"If-Match": tag2}}), 412, errors.BackupConflict)
		r = ts.do(t, call{method: "DELETE", as: alice, header: map[string]string{"If-Match": tag4}})
		must(t, "DELETE current If-Match", r, 204, "")
		if len(r.body) != 0 {
			t.Errorf("204 with body %q", r.body)
		}
		must(t, "GET after DELETE", ts.do(t, call{method: "GET", as: alice}), 404, errors.BackupNotFound)
		must(t, "PUT If-Match: * after DELETE", ts.do(t, call{method: "PUT", body: v1, as: alice,
			header: map[string]string{"If-Match": "*"}}), 412, errors.BackupConflict)
		must(t, "PUT old If-Match after DELETE", ts.do(t, call{method: "PUT", body: v1, as: alice,
			header: map[string]string{"If-Match": tag4}}), 412, errors.BackupConflict)
		r = ts.do(t, call{method: "PUT", body: v2, as: alice})
		must(t, "PUT after DELETE", r, 201, "")
		for _, old := range []string{tag1, tag2, tag4} {
			if etag(r) == old {
				t.Errorf("a new backup reuses the old ETag %s", old)
			}
		}
		must(t, "DELETE", ts.do(t, call{method: "DELETE", as: alice}), 204, "")
	})
}

// TestRejections sends each kind of refused body and checks its status,
// code and wire body; nothing refused is stored, and a refused PUT leaves
// the stored backup as it was.
func TestRejections(t *testing.T) {
	plain := npmPlaintext(t)
	zeros := []byte(b64(string(make([]byte, 1024))))
	tests := []struct {
		name   string
		body   []byte
		status int
		code   errors.Code
	}{
		{"json_with_key_fields", []byte(plain["payload_bap_master"]), 400, errors.EncryptionRequired},
		{"wif", []byte(wikiWIF), 400, errors.EncryptionRequired},
		{"xprv", []byte(bip32Vector1), 400, errors.EncryptionRequired},
		{"tprv", []byte(plain["tprv"]), 400, errors.EncryptionRequired},
		{"mnemonic", []byte(abandonAbout + "\n"), 400, errors.EncryptionRequired},
		{"not_base64", []byte("this is not base64!"), 400, errors.InvalidBackupFormat},
		{"trailing_newline", append(bytes.Clone(npmBackups(t)[0].data), '\n'), 400, errors.InvalidBackupFormat},
		{"short", []byte(b64(strings.Repeat("\xa7", 43))), 400, errors.InvalidBackupFormat},
		{"base64_text", []byte(b64(plain["payload_wif"])), 400, errors.EncryptionRequired},
		{"low_entropy", zeros, 400, errors.EncryptionRequired},
		{"too_large", bytes.Repeat([]byte("A"), MaxSize+1), 413, errors.BackupTooLarge},
	}
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ts := newTestServer(t, db.DB, serverOptions{})
		ts.wallet.register(alice)
		ts.wallet.register(bob)
		stored := npmBackups(t)[0].data
		must(t, "PUT", ts.do(t, call{method: "PUT", body: stored, as: alice}), 201, "")
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				for _, who := range []string{alice, bob} {
					r := ts.do(t, call{method: "PUT", body: tc.body, as: who})
					must(t, "PUT "+tc.name, r, tc.status, tc.code)
					checkGolden(t, "reject_"+tc.name, r.body)
					if r.header.Get("Content-Type") != "application/json;charset=UTF-8" || r.header.Get("Cache-Control") != "no-store" {
						t.Errorf("error headers: %v", r.header)
					}
				}
				must(t, "GET bob", ts.do(t, call{method: "GET", as: bob}), 404, errors.BackupNotFound)
				r := ts.do(t, call{method: "GET", as: alice})
				must(t, "GET alice", r, 200, "")
				if !bytes.Equal(r.body, stored) {
					t.Fatal("a refused PUT changed the stored backup")
				}
			})
		}
	})
}

// TestAuthentication covers the credential dispatch: X-Auth-Token and
// Authorization: Bitcoin-Auth through the Wallet, Bearer through the Bearer
// with scope backup, and every refusal with its status, code and
// challenge. It also checks that a request is authenticated exactly once
// and what the rate limiter between Identify and Handler sees.
func TestAuthentication(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ts := newTestServer(t, db.DB, serverOptions{})
		ts.wallet.register(alice)
		body := npmBackups(t)[0].data
		aliceToken := ts.bearer.issue(alice, "profile", Scope)
		profileOnly := ts.bearer.issue(alice, "profile")
		googleUser := ts.bearer.issue("google:1234567890", Scope)
		signed := func(method string, b []byte) string { return ts.wallet.sign(alice, method, "/backup", bodyHash(b)) }

		tests := []struct {
			name      string
			c         call
			status    int
			code      errors.Code
			challenge []string // WWW-Authenticate values, when checked
			subject   string   // what the limiter must see ("" = unauthenticated)
			// bodyUnread: the body is still unread when the limiter runs
			// (Bearer: the limiter can refuse before the body costs anything).
			bodyUnread bool
			golden     string
		}{
			{name: "no credentials", c: call{method: "GET"}, status: 401, code: errors.MissingAuthToken,
				challenge: []string{`Bitcoin-Auth realm="authd"`, `Bearer realm="authd"`}, golden: "auth_missing"},
			{name: "unknown Authorization scheme", c: call{method: "GET", header: map[string]string{"Authorization": "Basic YTpi"}},
				status: 401, code: errors.MissingAuthToken, challenge: []string{`Bitcoin-Auth realm="authd"`, `Bearer realm="authd"`}},
			{name: "malformed token", c: call{method: "GET", header: map[string]string{"X-Auth-Token": "sigma:nonsense"}},
				status: 400, code: errors.MalformedAuthToken},
			{name: "unknown signer", c: call{method: "PUT", body: body, as: bob}, status: 401, code: errors.InvalidSignature},
			{name: "signature over another body", c: call{method: "PUT", body: body,
				header: map[string]string{"X-Auth-Token": signed("PUT", []byte("other"))}}, status: 401, code: errors.InvalidSignature},
			{name: "signature over another method", c: call{method: "DELETE",
				header: map[string]string{"X-Auth-Token": signed("GET", nil)}}, status: 401, code: errors.InvalidSignature},
			{name: "X-Auth-Token", c: call{method: "PUT", body: body, as: alice}, status: 201, subject: alice},
			{name: "Authorization: Bitcoin-Auth", c: call{method: "GET",
				header: map[string]string{"Authorization": "Bitcoin-Auth " + signed("GET", nil)}}, status: 200, subject: alice},
			{name: "Bearer with scope backup, same identity", c: call{method: "GET", bearer: aliceToken}, status: 200, subject: alice},
			{name: "Bearer PUT", c: call{method: "PUT", body: body, bearer: aliceToken}, status: 200, subject: alice, bodyUnread: true},
			{name: "Bearer of a provider user", c: call{method: "GET", bearer: googleUser}, status: 404, code: errors.BackupNotFound,
				subject: "google:1234567890"},
			{name: "Bearer unknown", c: call{method: "GET", bearer: "nope"}, status: 401, code: errors.InvalidToken,
				challenge: []string{`Bearer realm="authd", error="invalid_token", error_description="The access token is missing, malformed, expired or revoked", error_uri="https://authd.example/docs/errors#invalid_token"`}},
			{name: "Bearer without scope backup", c: call{method: "GET", bearer: profileOnly}, status: 403, code: errors.InsufficientScope,
				challenge: []string{`Bearer realm="authd", error="insufficient_scope", error_description="The access token does not carry the scope this resource requires", error_uri="https://authd.example/docs/errors#insufficient_scope", scope="backup"`},
				golden:    "auth_insufficient_scope"},
			{name: "two credentials", c: call{method: "GET", as: alice, bearer: aliceToken}, status: 400, code: errors.InvalidRequest,
				golden: "auth_two_credentials"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := len(ts.limiterSaw())
				ts.bodyRead.Store(0)
				r := ts.do(t, tc.c)
				must(t, tc.name, r, tc.status, tc.code)
				if tc.challenge != nil {
					if got := r.header.Values("WWW-Authenticate"); strings.Join(got, "\n") != strings.Join(tc.challenge, "\n") {
						t.Errorf("WWW-Authenticate = %q, want %q", got, tc.challenge)
					}
				}
				if tc.golden != "" {
					checkGolden(t, tc.golden, r.body)
				}
				saw := ts.limiterSaw()
				if len(saw) != before+1 {
					t.Fatalf("the limiter ran %d times for one request", len(saw)-before)
				}
				v := saw[len(saw)-1]
				if v.ok != (tc.subject != "") || v.subject != tc.subject {
					t.Errorf("limiter saw %+v, want subject %q", v, tc.subject)
				}
				if tc.bodyUnread && v.bodyRead != 0 {
					t.Errorf("%d body bytes were read before the limiter ran", v.bodyRead)
				}
				if tc.c.as != "" && v.bodyRead != int64(len(tc.c.body)) {
					t.Errorf("the limiter ran after %d of %d body bytes; the Wallet needs all of them first", v.bodyRead, len(tc.c.body))
				}
			})
		}

		t.Run("replayed signed PUT", func(t *testing.T) {
			tok := signed("PUT", body)
			hdr := map[string]string{"X-Auth-Token": tok}
			must(t, "first", ts.do(t, call{method: "PUT", body: body, header: hdr}), 200, "")
			must(t, "replay", ts.do(t, call{method: "PUT", body: body, header: hdr}), 401, errors.InvalidTimestamp)
		})

		t.Run("authenticated once per request", func(t *testing.T) {
			if r := ts.do(t, call{method: "PUT", body: body, as: alice}); r.status != 200 && r.status != 201 {
				t.Fatalf("PUT: %d %s", r.status, r.body)
			}
			n := ts.wallet.calls.Load()
			for _, tc := range []struct {
				method string
				status int
			}{{"GET", 200}, {"HEAD", 200}, {"PUT", 200}, {"DELETE", 204}} {
				var b []byte
				if tc.method == "PUT" {
					b = body
				}
				must(t, tc.method, ts.do(t, call{method: tc.method, body: b, as: alice}), tc.status, "")
			}
			if got := ts.wallet.calls.Load() - n; got != 4 {
				t.Errorf("4 requests called the Wallet %d times", got)
			}
		})
	})

	t.Run("without Bearer", func(t *testing.T) {
		ts := newTestServer(t, testenv.DB(t, store.SQLite).DB, serverOptions{noBearer: true})
		for _, c := range []call{{method: "GET"}, {method: "GET", bearer: "anything"}} {
			r := ts.do(t, c)
			must(t, "GET", r, 401, errors.MissingAuthToken)
			if got := r.header.Values("WWW-Authenticate"); len(got) != 1 || got[0] != `Bitcoin-Auth realm="authd"` {
				t.Errorf("WWW-Authenticate = %q, want only the Bitcoin-Auth challenge", got)
			}
		}
	})
}

// TestHandlerWithoutIdentify: Handler alone authenticates by itself, and
// answers methods it does not serve with 405 and Allow.
func TestHandlerWithoutIdentify(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	w := newFakeWallet()
	w.register(alice)
	svc, err := New(Config{DB: db.DB, Wallet: w})
	if err != nil {
		t.Fatal(err)
	}
	h := svc.Handler()
	body := npmBackups(t)[0].data

	req := httptest.NewRequest("PUT", "/backup", bytes.NewReader(body))
	req.Header.Set("X-Auth-Token", w.sign(alice, "PUT", "/backup", bodyHash(body)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 201 {
		t.Fatalf("PUT = %d %s", rec.Code, rec.Body)
	}
	req = httptest.NewRequest("GET", "/backup", nil)
	req.Header.Set("X-Auth-Token", w.sign(alice, "GET", "/backup", ""))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), body) {
		t.Fatalf("GET = %d, %d bytes", rec.Code, rec.Body.Len())
	}
	if w.calls.Load() != 2 {
		t.Errorf("Wallet called %d times for 2 requests", w.calls.Load())
	}

	for _, m := range []string{"POST", "PATCH", "OPTIONS"} {
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/backup", nil))
		if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD, PUT, DELETE" {
			t.Errorf("%s = %d, Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	if _, ok := SubjectFromContext(req.Context()); ok {
		t.Error("SubjectFromContext reports a subject for a request Identify never saw")
	}

	// Identify twice around one request authenticates once: a signed PUT
	// would otherwise meet the replay guard on the second check.
	twice := svc.Identify(svc.Identify(h))
	calls := w.calls.Load()
	req = httptest.NewRequest("PUT", "/backup", bytes.NewReader(body))
	req.Header.Set("X-Auth-Token", w.sign(alice, "PUT", "/backup", bodyHash(body)))
	rec = httptest.NewRecorder()
	twice.ServeHTTP(rec, req)
	if rec.Code != 200 || w.calls.Load() != calls+1 {
		t.Errorf("PUT through Identify twice = %d %s, %d Wallet calls", rec.Code, rec.Body, w.calls.Load()-calls)
	}
}

func TestNew(t *testing.T) {
	db := testenv.DB(t, store.SQLite)
	for _, cfg := range []Config{{Wallet: newFakeWallet()}, {DB: db.DB}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}
