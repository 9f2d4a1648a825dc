package oauth

import (
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestJWSSignerMatchesGoJose: the tokens jwsSigner makes are the ones
// go-jose makes for the same key, header and payload: byte for byte for
// RS256 (PKCS #1 v1.5 signatures are deterministic), and for ES256 the
// same header and payload with a signature go-jose verifies.
func TestJWSSignerMatchesGoJose(t *testing.T) {
	for _, alg := range KeyAlgorithms {
		t.Run(alg, func(t *testing.T) {
			sk := testSigningKey(t, alg)
			for _, typ := range []string{typIDToken, typAccessToken} {
				if alg == AlgRS256 && typ == typAccessToken {
					continue // RSA keys sign ID Tokens only
				}
				js, err := newJWSSigner(alg, sk.kid, typ, sk.priv)
				if err != nil {
					t.Fatal(err)
				}
				ref, err := jose.NewSigner(
					jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: jose.JSONWebKey{Key: sk.priv, KeyID: sk.kid, Algorithm: alg}},
					(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
				if err != nil {
					t.Fatal(err)
				}
				for _, payload := range []string{`{}`, `{"iss":"https://auth.example.com","sub":"1Abc","nonce":"ü\u2028<&>"}`, strings.Repeat("x", 1000)} {
					got, err := js.sign([]byte(payload))
					if err != nil {
						t.Fatal(err)
					}
					obj, err := ref.Sign([]byte(payload))
					if err != nil {
						t.Fatal(err)
					}
					want, err := obj.CompactSerialize()
					if err != nil {
						t.Fatal(err)
					}
					gotParts, wantParts := strings.Split(got, "."), strings.Split(want, ".")
					if len(gotParts) != 3 || gotParts[0] != wantParts[0] || gotParts[1] != wantParts[1] || len(gotParts[2]) != len(wantParts[2]) {
						t.Fatalf("%s %s: token %s, go-jose makes %s", alg, typ, got, want)
					}
					if alg == AlgRS256 && got != want {
						t.Errorf("RS256 token differs from go-jose's:\n%s\n%s", got, want)
					}
					parsed, err := jose.ParseSignedCompact(got, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
					if err != nil {
						t.Fatal(err)
					}
					out, err := parsed.Verify(sk.public())
					if err != nil || string(out) != payload {
						t.Errorf("%s %s: verify: %q %v", alg, typ, out, err)
					}
					if parsed.Signatures[0].Protected.KeyID != sk.kid || parsed.Signatures[0].Protected.ExtraHeaders[jose.HeaderType] != typ {
						t.Errorf("%s %s: header %+v", alg, typ, parsed.Signatures[0].Protected)
					}
				}
			}
			// A key signs only its own algorithm.
			other := AlgES256
			if alg == AlgES256 {
				other = AlgRS256
			}
			if _, err := newJWSSigner(other, sk.kid, typIDToken, sk.priv); err == nil {
				t.Errorf("a %s key made a %s signer", alg, other)
			}
		})
	}
}
