package sigauth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/authd-dev/authd/authtoken"
)

func mustToken(t testing.TB, wif string, opts TokenOptions) string {
	t.Helper()
	tok, err := authtoken.Token(wif, opts)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustB64(s string) []byte {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// verifyPath verifies an unbound token for a GET of target without I/O.
func verifyPath(token, target string, body []byte) (authtoken.Result, error) {
	return authtoken.VerifyToken(token, authtoken.Request{Method: "GET", Target: target}, body, testStart, 0)
}

// TestBitcoinAuthFixturesAuthenticate: the tokens the npm bitcoin-auth
// library made (authtoken's fixtures) pass the whole Authenticate path,
// with the clock frozen at each token's time.
func TestBitcoinAuthFixturesAuthenticate(t *testing.T) {
	b, err := os.ReadFile("../authtoken/testdata/bitcoin-auth.json")
	if err != nil {
		t.Fatal(err)
	}
	var fx struct {
		Tokens []struct {
			Description, Address, PubKey, Scheme, Timestamp, Token, Want string
			RequestPath                                                  string `json:"requestPath"`
			Body                                                         *string
		}
	}
	if err := json.Unmarshal(b, &fx); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fx.Tokens {
		if f.Want != "ok" {
			continue
		}
		n++
		t.Run(f.Description, func(t *testing.T) {
			ts, ok := authtoken.ParseTimestamp(f.Timestamp)
			if !ok {
				t.Fatalf("timestamp %q", f.Timestamp)
			}
			var body []byte
			if f.Body != nil {
				body = []byte(*f.Body)
			}
			env := newTestEnv(t, withIssuer)
			env.now = ts
			method, target := http.MethodPost, f.RequestPath
			if m, u, ok := strings.Cut(f.RequestPath, " "); ok {
				method, target = m, strings.TrimPrefix(u, testIssuer)
			}
			r := httptest.NewRequest(method, target, bytes.NewReader(body))
			r.Header.Set("X-Auth-Token", f.Token)
			want := Identity{Address: f.Address, PubKey: f.PubKey, Scheme: f.Scheme}
			if id, err := env.v.Authenticate(r); err != nil || id != want {
				t.Fatalf("Authenticate = %+v, %v; want %+v", id, err, want)
			}
		})
	}
	if n < 6 {
		t.Fatalf("%d valid fixtures", n)
	}
}

// signerOf returns the public key of a WIF, as VerifySignature reports it.
func signerOf(t testing.TB, wif string) authtoken.SignerKey {
	t.Helper()
	key, _, err := authtoken.ParseWIF(wif)
	if err != nil {
		t.Fatal(err)
	}
	return authtoken.SignerKey(key.PubKey().SerializeCompressed())
}
