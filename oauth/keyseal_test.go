package oauth_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// testKeyEncryption encrypts the signing keys of every server in this
// package's tests: several servers share a database.
var testKeyEncryption = newTestKeyEncryption()

func newTestKeyEncryption() *KeyEncryption {
	ke, err := NewKeyEncryption(randomKEK())
	if err != nil {
		panic(err)
	}
	return ke
}

func randomKEK() []byte {
	k := make([]byte, KEKSize)
	rand.Read(k)
	return k
}

// storedKey is a signing key row as the database holds it.
type storedKey struct{ kid, alg, kekID, privateKey string }

func storedKeys(t *testing.T, db *store.DB) []storedKey {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT kid, alg, kek_id, private_key FROM oauth_signing_keys ORDER BY created_ms`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedKey
	for rows.Next() {
		var k storedKey
		if err := rows.Scan(&k.kid, &k.alg, &k.kekID, &k.privateKey); err != nil {
			t.Fatal(err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSigningKeysEncryptedAtRest: what the database holds of a signing key
// is AES-256-GCM ciphertext bound to its kid: no PKCS#8 in it, no key
// without the key-encryption key, no moving it to another row. RSA keys
// are stored as the ECDSA ones are.
func TestSigningKeysEncryptedAtRest(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		keys := storedKeys(t, db)
		if len(keys) != 2 || keys[0].alg == keys[1].alg {
			t.Fatalf("keys after start: %+v", keys)
		}
		for _, k := range keys {
			t.Run(k.alg, func(t *testing.T) { checkSealed(t, h, k) })
		}

		// A server without the key-encryption key does not start.
		_, rdb := miniredisClient(t)
		_, err := New(context.Background(), Config{Issuer: h.issuer, DB: db.DB, Dialect: string(db.Dialect), Redis: rdb, Wallet: noWallet{}, KeyEncryption: newTestKeyEncryption(), Logger: quiet})
		if !errors.Is(err, ErrKeyEncryption) {
			t.Errorf("New with the wrong key-encryption key: %v", err)
		}
	})
}

// checkSealed checks one stored key: encrypted under the test
// key-encryption key, bound to its kid, published by the server.
func checkSealed(t *testing.T, h *harness, k storedKey) {
	if k.kekID != testKeyEncryption.ID() {
		t.Fatalf("stored under %q (alg %s), want %q", k.kekID, k.alg, testKeyEncryption.ID())
	}
	raw, err := base64.StdEncoding.DecodeString(k.privateKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParsePKCS8PrivateKey(raw); err == nil {
		t.Fatal("the stored key parses as PKCS#8: not encrypted")
	}
	// The key signs: the server's own JWKS has its kid.
	resp, body := h.get("/.well-known/jwks.json", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), k.kid) {
		t.Fatalf("JWKS %d %s", resp.StatusCode, body)
	}

	// Another key-encryption key opens nothing.
	other := newTestKeyEncryption()
	if _, err := other.Open(k.kid, k.kekID, k.privateKey); !errors.Is(err, ErrKeyEncryption) {
		t.Errorf("opened with a key that is not the one: %v", err)
	}
	// The ciphertext is bound to its kid (GCM additional data).
	if _, err := testKeyEncryption.Open("another-kid", k.kekID, k.privateKey); !errors.Is(err, ErrKeyEncryption) {
		t.Errorf("opened under another kid: %v", err)
	}
	// A flipped bit is refused.
	flipped := bytes.Clone(raw)
	flipped[len(flipped)-1] ^= 1
	if _, err := testKeyEncryption.Open(k.kid, k.kekID, base64.StdEncoding.EncodeToString(flipped)); !errors.Is(err, ErrKeyEncryption) {
		t.Errorf("opened an altered key: %v", err)
	}
	der, err := testKeyEncryption.Open(k.kid, k.kekID, k.privateKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSigningKey(k.kid, k.alg, der, 0); err != nil {
		t.Errorf("decrypted key: %v", err)
	}
}

// plaintextKey stores an ES256 key as authd stored keys before they were
// encrypted (base64 PKCS#8 DER, no kek_id) and returns it.
func plaintextKey(t *testing.T, db *store.DB, created time.Time) *SigningKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := PublicKID(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(context.Background(), `INSERT INTO oauth_signing_keys (kid, alg, private_key, created_ms) VALUES ($1, 'ES256', $2, $3)`,
		kid, base64.StdEncoding.EncodeToString(der), created.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	sk, err := ParseSigningKey(kid, "ES256", der, created.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// TestPlaintextKeysEncryptedAtStart: a database whose signing key is still
// plaintext has it encrypted when a server starts, and a token that key
// signed before keeps verifying.
func TestPlaintextKeysEncryptedAtStart(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		old := plaintextKey(t, db, time.Now().Add(-time.Hour))
		h := newHarness(t, db, nil)
		keys := storedKeys(t, db)
		// The old ES256 key, encrypted, and a new RS256 key for ID Tokens.
		if len(keys) != 2 || keys[0].kid != old.KID() || keys[0].kekID != testKeyEncryption.ID() ||
			keys[1].alg != AlgRS256 || keys[1].kekID != testKeyEncryption.ID() {
			t.Fatalf("after start: %+v", keys)
		}
		// A token the plaintext key signed before the upgrade verifies.
		c, secret := h.client(ClientRegistration{Grants: []string{GrantClientCredentials}})
		now := time.Now()
		tok, err := old.SignAccessToken(h.issuer, c.ID, c.ID, "profile", NewFamily()+".x", now, now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		resp, body := h.postForm("/introspect", url.Values{"token": {tok}}, map[string]string{"Authorization": basicAuth(c.ID, secret)})
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"active":true`) {
			t.Fatalf("token signed before the upgrade: %d %s", resp.StatusCode, body)
		}
		// Sealing again finds nothing to do.
		if n, err := SealKeys(context.Background(), db.DB, testKeyEncryption); err != nil || n != 0 {
			t.Errorf("second SealKeys: %d %v", n, err)
		}
	})
}

// TestReencryptKeys: with a new key-encryption key first, every key still
// loads; ReencryptKeys moves them all under it, after which the old
// key-encryption key can go.
func TestReencryptKeys(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		oldKEK := randomKEK()
		oldEnc, _ := NewKeyEncryption(oldKEK)
		for i := range 2 {
			if _, err := RotateKey(ctx, db.DB, oldEnc, AlgES256, time.Now().Add(time.Duration(i-2)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		plaintextKey(t, db, time.Now().Add(-3*time.Minute))
		newKEK := randomKEK()
		both, err := NewKeyEncryption(newKEK, oldKEK)
		if err != nil {
			t.Fatal(err)
		}
		onlyNew, _ := NewKeyEncryption(newKEK)
		if _, err := ReencryptKeys(ctx, db.DB, onlyNew); !errors.Is(err, ErrKeyEncryption) {
			t.Fatalf("ReencryptKeys without the old key-encryption key: %v", err)
		}
		for _, k := range storedKeys(t, db) {
			if k.kekID == onlyNew.ID() {
				t.Fatal("a failed ReencryptKeys rewrote a key")
			}
		}
		n, err := ReencryptKeys(ctx, db.DB, both)
		if err != nil || n != 3 {
			t.Fatalf("ReencryptKeys = %d, %v; want 3", n, err)
		}
		for _, k := range storedKeys(t, db) {
			if k.kekID != onlyNew.ID() {
				t.Errorf("key %s still under %q", k.kid, k.kekID)
			}
		}
		if n, err := ReencryptKeys(ctx, db.DB, both); err != nil || n != 0 {
			t.Errorf("second ReencryptKeys = %d, %v", n, err)
		}
		list, err := ListKeys(ctx, db.DB, time.Now())
		if err != nil || len(list) != 3 || list[0].KEK != onlyNew.ID() {
			t.Errorf("ListKeys %+v %v", list, err)
		}
		// The new key alone now runs a server.
		_, rdb := miniredisClient(t)
		if _, err := New(ctx, Config{Issuer: "https://auth.example.com", DB: db.DB, Dialect: string(db.Dialect), Redis: rdb,
			Wallet: noWallet{}, KeyEncryption: onlyNew, Logger: quiet}); err != nil {
			t.Errorf("New with only the new key-encryption key: %v", err)
		}
	})
}
