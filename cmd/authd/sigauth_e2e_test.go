package main

// End-to-end tests of attacks on Bitcoin request authentication, each
// against the whole wired server on real Redis and PostgreSQL: tokens
// spent on another method or taken from another service, and signatures
// re-dressed to act twice.

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/authd-dev/authd/authtoken"
)

// boundToken signs method at e's issuer + target with e's wallet.
func (e *e2e) boundToken(method, target string, body []byte, opts authtoken.TokenOptions) string {
	e.t.Helper()
	opts.Method, opts.URL, opts.Body = method, e.issuer+target, body
	tok, err := authtoken.Token(e.wif, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// unboundToken signs target alone with e's wallet, as a token made for any
// server that knows the key.
func (e *e2e) unboundToken(target string, body []byte, opts authtoken.TokenOptions) string {
	e.t.Helper()
	opts.RequestPath, opts.Body = target, body
	tok, err := authtoken.Token(e.wif, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func decodeError(t *testing.T, body []byte) errorBody {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("not an error body: %s", body)
	}
	return eb
}

// TestUnboundTokenRefusedWhenBindingRequired reproduces a token signed for
// another service with the same path (or a GET captured before it reached
// us) spent here as DELETE /backup and as a sign-in at /authorize. With
// AUTHD_SIGAUTH_REQUIRE_BINDING=true both are refused with a description
// that says to sign the bound form; the bound form works, in both token
// syntaxes, and only for its method at this issuer.
func TestUnboundTokenRefusedWhenBindingRequired(t *testing.T) {
	e := newE2E(t, map[string]string{"AUTHD_SIGAUTH_REQUIRE_BINDING": "true"}, false)
	// The victim's wallet signed "/backup" for some other service (or for a
	// GET that an attacker intercepted): never presented here. Spending it
	// here as a DELETE is refused before anything else: a server that took
	// it would answer 204, or 404 with nothing stored yet.
	attack := func(stage string) {
		t.Helper()
		for _, opts := range []authtoken.TokenOptions{{}, {Format: authtoken.FormatBitcoinAuth}, {Format: authtoken.FormatBitcoinAuth, Scheme: authtoken.SchemeBRC77}} {
			foreign := e.unboundToken("/backup", nil, opts)
			resp, body := e.do("DELETE", "/backup", nil, map[string]string{"X-Auth-Token": foreign})
			eb := decodeError(t, body)
			if resp.StatusCode != http.StatusBadRequest || eb.Error != "malformed_auth_token" ||
				!strings.Contains(eb.Description, "bound request target") || !strings.Contains(eb.Description, "DELETE https://") {
				t.Fatalf("%s: %s/%s unbound DELETE: %d %s", stage, opts.Format, opts.Scheme, resp.StatusCode, body)
			}
			e.checkErrorURI(eb.URI, "malformed_auth_token")
			// A safe method still takes the unbound form.
			want := http.StatusNotFound
			if stage == "with a backup" {
				want = http.StatusOK
			}
			if resp, body := e.do("GET", "/backup", nil, map[string]string{"X-Auth-Token": foreign}); resp.StatusCode != want {
				t.Fatalf("%s: %s/%s unbound GET: %d %s", stage, opts.Format, opts.Scheme, resp.StatusCode, body)
			}
		}
	}
	attack("no backup yet")

	data := []byte(base64.StdEncoding.EncodeToString(randomBytes(t, 300)))
	put := e.boundToken("PUT", "/backup", data, authtoken.TokenOptions{})
	if resp, body := e.do("PUT", "/backup", data, map[string]string{"X-Auth-Token": put}); resp.StatusCode != http.StatusCreated {
		t.Fatalf("bound PUT: %d %s", resp.StatusCode, body)
	}
	attack("with a backup")
	// The backup is still there.
	if resp, body := e.do("GET", "/backup", nil, map[string]string{"X-Auth-Token": e.boundToken("GET", "/backup", nil, authtoken.TokenOptions{})}); resp.StatusCode != http.StatusOK || string(body) != string(data) {
		t.Fatalf("backup after the refused DELETEs: %d", resp.StatusCode)
	}

	// A bound GET captured in flight is no DELETE; nor is a DELETE bound
	// to another service at the same path.
	for name, tok := range map[string]string{
		"bound GET as DELETE": e.boundToken("GET", "/backup", nil, authtoken.TokenOptions{}),
		"other service":       mustToken(t, e.wif, authtoken.TokenOptions{Method: "DELETE", URL: "https://wallet.example.net/backup"}),
		"other service, bitcoin-auth": mustToken(t, e.wif, authtoken.TokenOptions{Format: authtoken.FormatBitcoinAuth,
			Method: "DELETE", URL: "https://wallet.example.net/backup"}),
	} {
		resp, body := e.do("DELETE", "/backup", nil, map[string]string{"X-Auth-Token": tok})
		if eb := decodeError(t, body); resp.StatusCode != http.StatusUnauthorized || eb.Error != "invalid_signature" {
			t.Fatalf("%s: %d %s", name, resp.StatusCode, body)
		}
	}

	// Sign-in at /authorize: the unbound form is refused, answered directly
	// (no redirect); the bound form signs in.
	id, _ := e.client("--redirect-uri", "https://app.example.com/cb")
	target := "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"https://app.example.com/cb"}, "state": {"s"}}.Encode()
	resp, body := e.do("GET", target, nil, map[string]string{"X-Auth-Token": e.unboundToken(target, nil, authtoken.TokenOptions{}), "Accept": "application/json"})
	if eb := decodeError(t, body); resp.StatusCode != http.StatusBadRequest || eb.Error != "malformed_auth_token" || resp.Header.Get("Location") != "" {
		t.Fatalf("unbound sign-in: %d %s", resp.StatusCode, body)
	}
	resp, body = e.do("GET", target, nil, map[string]string{"X-Auth-Token": e.boundToken("GET", target, nil, authtoken.TokenOptions{Format: authtoken.FormatBitcoinAuth}), "Accept": "application/json"})
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("bound sign-in: %d %s", resp.StatusCode, body)
	}

	// The bound DELETE deletes.
	if resp, body := e.do("DELETE", "/backup", nil, map[string]string{"X-Auth-Token": e.boundToken("DELETE", "/backup", nil, authtoken.TokenOptions{})}); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("bound DELETE: %d %s", resp.StatusCode, body)
	}
}

// TestBoundTokensByDefault: without AUTHD_SIGAUTH_REQUIRE_BINDING, both
// forms are accepted, and a bound token still acts only for its method at
// this issuer and its exact request-target.
func TestBoundTokensByDefault(t *testing.T) {
	e := newE2E(t, nil, false)
	data := []byte(base64.StdEncoding.EncodeToString(randomBytes(t, 300)))
	// A request-target with escapes and a query, signed exactly as sent.
	target := "/backup?note=a%20b&x=%2F"
	for _, c := range []struct {
		name, method, target string
		tok                  string
		want                 int
	}{
		{"unbound PUT", "PUT", "/backup", e.unboundToken("/backup", data, authtoken.TokenOptions{}), http.StatusCreated},
		{"bound PUT, escaped query", "PUT", target, e.boundToken("PUT", target, data, authtoken.TokenOptions{Format: authtoken.FormatBitcoinAuth}), http.StatusOK},
		{"bound PUT, re-encoded query", "PUT", "/backup?note=a+b&x=%2F", e.boundToken("PUT", target, data, authtoken.TokenOptions{}), http.StatusUnauthorized},
		{"bound PUT as DELETE", "DELETE", "/backup", e.boundToken("PUT", "/backup", nil, authtoken.TokenOptions{}), http.StatusUnauthorized},
		{"bound DELETE", "DELETE", "/backup", e.boundToken("DELETE", "/backup", nil, authtoken.TokenOptions{Format: authtoken.FormatBitcoinAuth, Scheme: authtoken.SchemeBRC77}), http.StatusNoContent},
	} {
		var body []byte
		if c.method == "PUT" {
			body = data
		}
		resp, rb := e.do(c.method, c.target, body, map[string]string{"X-Auth-Token": c.tok})
		if resp.StatusCode != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, resp.StatusCode, rb, c.want)
		}
	}
}

func mustToken(t *testing.T, wif string, opts authtoken.TokenOptions) string {
	t.Helper()
	tok, err := authtoken.Token(wif, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// flipHeader re-dresses a sigma token's signature for the key's other
// address: the header's compression flag flipped (27-30 <-> 31-34) and the
// address of the key serialised the other way. Anyone who saw the token can
// do it; no key is needed.
func flipHeader(t *testing.T, tok, target string, body []byte) string {
	t.Helper()
	p, err := authtoken.ParseToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	sig, _ := base64.StdEncoding.DecodeString(p.Signature)
	msg := authtoken.SignedMessage(target, p.Timestamp, authtoken.BodyHash(body))
	signer, ok := p.VerifySignature(msg)
	if !ok {
		t.Fatalf("token does not verify for %s", target)
	}
	addr := signer.UncompressedAddress()
	if sig[0] >= 31 {
		sig[0] -= 4
	} else {
		sig[0] += 4
		pub, _, _ := authtoken.ParseWIF(uncompressedWIF)
		addr = authtoken.AddressOf(pub.PubKey(), true)
	}
	flipped := "sigma:" + addr + ":" + p.Timestamp + "|" + base64.StdEncoding.EncodeToString(sig)
	fp, _ := authtoken.ParseToken(flipped)
	if _, ok := fp.VerifySignature(msg); !ok {
		t.Fatalf("flipped token %s does not verify: the attack is not reproduced", flipped)
	}
	return flipped
}

// uncompressedWIF is private key 1 in its uncompressed WIF (public test
// vector): a legacy wallet.
const uncompressedWIF = "5HpHagT65TZzG1PH3CSu63k8DbpvD8s5ip4nEB3kEsreAnchuDf"

// TestHeaderFlipCannotActTwice reproduces the header flip: a sign-in and a
// PUT made with a compressed key, replayed with the signature's header
// flipped to uncompressed and the address changed to match, which verifies
// as a new token for an identity the user never signed in as. Both
// replays are refused, and no second code or backup is made; the same holds
// the other way for a legacy uncompressed key the operator configured.
func TestHeaderFlipCannotActTwice(t *testing.T) {
	one, _, _ := authtoken.ParseWIF(uncompressedWIF)
	legacy := authtoken.AddressOf(one.PubKey(), false)
	e := newE2E(t, map[string]string{"AUTHD_SIGAUTH_UNCOMPRESSED_ADDRESSES": legacy}, false)
	id, _ := e.client("--redirect-uri", "https://app.example.com/cb")

	for _, w := range []struct {
		name, wif string
		status    int    // of the flipped replay
		code      string // of the flipped replay
	}{
		// The uncompressed form of a compressed key is not configured.
		{"compressed key", e.wif, http.StatusBadRequest, "malformed_auth_token"},
		// The compressed form of a configured legacy key is not its identity.
		{"legacy key", uncompressedWIF, http.StatusUnauthorized, "invalid_signature"},
	} {
		t.Run(w.name, func(t *testing.T) {
			// A client IP of its own: the refusals below count towards
			// the lockout of the client that sends them.
			e.c.Transport = sourceTransport()
			// Sign-in at /authorize, then the flipped replay.
			target := "/authorize?" + url.Values{"response_type": {"code"}, "client_id": {id}, "redirect_uri": {"https://app.example.com/cb"}, "state": {w.name}}.Encode()
			tok := mustToken(t, w.wif, authtoken.TokenOptions{RequestPath: target})
			hdr := map[string]string{"X-Auth-Token": tok, "Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
			if resp, body := e.do("GET", target, nil, hdr); resp.StatusCode != http.StatusFound {
				t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
			}
			hdr["X-Auth-Token"] = flipHeader(t, tok, target, nil)
			for _, m := range []string{"GET", "POST"} {
				resp, body := e.do(m, target, nil, hdr)
				if resp.StatusCode != w.status || decodeError(t, body).Error != w.code || resp.Header.Get("Location") != "" {
					t.Fatalf("flipped sign-in as %s: %d %s (Location %q)", m, resp.StatusCode, body, resp.Header.Get("Location"))
				}
			}

			// PUT /backup, then the flipped replay: no backup for the other
			// address.
			data := []byte(base64.StdEncoding.EncodeToString(randomBytes(t, 300)))
			tok = mustToken(t, w.wif, authtoken.TokenOptions{RequestPath: "/backup", Body: data})
			if resp, body := e.do("PUT", "/backup", data, map[string]string{"X-Auth-Token": tok}); resp.StatusCode != http.StatusCreated {
				t.Fatalf("PUT: %d %s", resp.StatusCode, body)
			}
			flipped := flipHeader(t, tok, "/backup", data)
			resp, body := e.do("PUT", "/backup", data, map[string]string{"X-Auth-Token": flipped})
			if resp.StatusCode != w.status || decodeError(t, body).Error != w.code {
				t.Fatalf("flipped PUT: %d %s", resp.StatusCode, body)
			}
			fp, _ := authtoken.ParseToken(flipped)
			var n int
			if err := e.a.db.DB.QueryRow(`SELECT COUNT(*) FROM backups WHERE subject = $1`, fp.Address).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("%d backups stored for the flipped address %s", n, fp.Address)
			}
		})
	}
}
