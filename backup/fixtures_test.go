package backup

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/authd-dev/authd/errors"
)

// npmBackup is one backup made by the npm bitcoin-backup library
// (testdata/gen/gen.mjs), with what is needed to decrypt it.
type npmBackup struct {
	Name            string   `json:"name"`
	File            string   `json:"file"`
	Passphrase      string   `json:"passphrase"`
	Iterations      int      `json:"iterations"`
	KeyHex          string   `json:"key_hex"`
	PlaintextSHA256 string   `json:"plaintext_sha256"`
	Fields          []string `json:"fields"`
	data            []byte
}

func npmBackups(t testing.TB) []npmBackup {
	t.Helper()
	dir := filepath.Join("testdata", "bitcoin-backup")
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var list []npmBackup
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 {
		t.Fatal("manifest.json lists no backups")
	}
	for i := range list {
		if list[i].data, err = os.ReadFile(filepath.Join(dir, list[i].File)); err != nil {
			t.Fatal(err)
		}
	}
	return list
}

// npmPlaintext returns the unencrypted key material gen.mjs exported with
// the npm libraries (WIF, xprv, tprv, mnemonics, backup payloads).
func npmPlaintext(t testing.TB) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "bitcoin-backup", "plaintext.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestNPMFixturesAreRealBackups decrypts every fixture the way
// bitcoin-backup does (AES-256-GCM over salt || iv || ciphertext, with the
// key PBKDF2-SHA256 derives from the passphrase and salt) and checks the
// plaintext against the manifest: the tests that accept these strings
// accept what the library really makes. The manifest carries each derived
// key, since 600,000 PBKDF2 rounds take seconds under -race; the first
// fixture's key is derived here to show the manifest's keys are right.
func TestNPMFixturesAreRealBackups(t *testing.T) {
	for i, b := range npmBackups(t) {
		t.Run(b.Name, func(t *testing.T) {
			raw, err := base64.StdEncoding.Strict().DecodeString(string(b.data))
			if err != nil {
				t.Fatalf("fixture is not strict base64: %v", err)
			}
			salt, iv, ct := raw[:16], raw[16:28], raw[28:]
			key, err := hex.DecodeString(b.KeyHex)
			if err != nil || len(key) != 32 {
				t.Fatalf("manifest key_hex %q: want 32 bytes of hex", b.KeyHex)
			}
			if i == 0 {
				derived, err := pbkdf2.Key(sha256.New, b.Passphrase, salt, b.Iterations, 32)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(derived, key) {
					t.Fatalf("PBKDF2 gives %x, the manifest says %x", derived, key)
				}
			}
			block, err := aes.NewCipher(key)
			if err != nil {
				t.Fatal(err)
			}
			gcm, err := cipher.NewGCM(block)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := gcm.Open(nil, iv, ct, nil)
			if err != nil {
				t.Fatalf("decrypt: %v", err)
			}
			sum := sha256.Sum256(plain)
			if got := hex.EncodeToString(sum[:]); got != b.PlaintextSHA256 {
				t.Fatalf("plaintext sha256 = %s, want %s", got, b.PlaintextSHA256)
			}
			var payload map[string]any
			if err := json.Unmarshal(plain, &payload); err != nil {
				t.Fatalf("plaintext is not a JSON object: %v", err)
			}
			for _, f := range b.Fields {
				if _, ok := payload[f]; !ok {
					t.Errorf("plaintext lacks field %q", f)
				}
			}
			// The plaintext itself is what PUT must refuse.
			if err := Validate(plain); codeOf(err) != errors.EncryptionRequired {
				t.Errorf("Validate(decrypted payload) = %v, want encryption_required", err)
			}
		})
	}
}

// randomBase64 returns strict base64 of n random bytes: what ciphertext
// looks like on the wire.
func randomBase64(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return []byte(base64.StdEncoding.EncodeToString(b))
}

// base64Body returns exactly size bytes of strict base64 of random bytes
// (size must be a multiple of 4).
func base64Body(t testing.TB, size int) []byte {
	t.Helper()
	if size%4 != 0 {
		t.Fatalf("base64Body(%d): size must be a multiple of 4", size)
	}
	b := randomBase64(t, size/4*3)
	if len(b) != size {
		t.Fatalf("base64Body: got %d bytes, want %d", len(b), size)
	}
	return b
}
