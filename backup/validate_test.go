package backup

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/authd-dev/authd/errors"
)

// base58CheckEncode is the encoder the tests need to build keys of other
// versions (zprv, xpub) than the fixtures hold.
func base58CheckEncode(payload []byte) string {
	h := sha256.Sum256(payload)
	h = sha256.Sum256(h[:])
	b := append(append([]byte{}, payload...), h[:4]...)
	n := new(big.Int).SetBytes(b)
	var out []byte
	mod, base := new(big.Int), big.NewInt(58)
	for n.Sign() > 0 {
		n.DivMod(n, base, mod)
		out = append(out, base58Alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

// extendedKey builds a BIP-32 serialisation with the given version and a
// private (0x00-prefixed) or public (0x02) key.
func extendedKey(version uint32, private bool) string {
	p := make([]byte, 78)
	p[0], p[1], p[2], p[3] = byte(version>>24), byte(version>>16), byte(version>>8), byte(version)
	rand.Read(p[13:45]) // chain code
	rand.Read(p[46:])
	if private {
		p[45] = 0x00
	} else {
		p[45] = 0x02
	}
	return base58CheckEncode(p)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

const (
	// BIP-32 test vector 1, master key.
	bip32Vector1 = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
	// The uncompressed WIF of the Bitcoin wiki's example key.
	wikiWIF = "5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ"
	// BIP-39's all-zero-entropy test mnemonic.
	abandonAbout = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
)

func TestValidate(t *testing.T) {
	plain := npmPlaintext(t)
	fixture := npmBackups(t)[0].data
	short := randomBase64(t, MinDecodedSize-1)
	minimal := randomBase64(t, MinDecodedSize)
	// Random data with a '+' and '/' in it, in the URL-safe alphabet.
	urlsafe := func() []byte {
		for {
			b := randomBase64(t, 300)
			if bytes.ContainsAny(b, "+/") {
				return []byte(strings.NewReplacer("+", "-", "/", "_").Replace(string(b)))
			}
		}
	}()
	// 44 bytes end in "x=" where x carries 2 padding bits: set one.
	nonCanonical := func() []byte {
		b := bytes.Clone(minimal)
		i := bytes.IndexByte(b, '=') - 1
		b[i] = base64Alphabet[strings.IndexByte(base64Alphabet, b[i])|1]
		return b
	}()
	nibbles := make([]byte, 4096)
	for i := range nibbles {
		nibbles[i] = byte(i*7) & 0x0f // non-text, 4 bits per byte
	}
	lorem := strings.Repeat("The wallet backup must be encrypted before it reaches the server. ", 40)

	tests := []struct {
		name string
		body []byte
		code errors.Code // "" means accepted
		desc string      // a substring of the description, when it matters
	}{
		{"minimal ciphertext, 44 bytes", minimal, "", ""},
		{"npm fixture", fixture, "", ""},
		{"exactly 1 MiB", base64Body(t, MaxSize), "", ""},
		{"1 MiB and one byte", bytes.Repeat([]byte("A"), MaxSize+1), errors.BackupTooLarge, "1 MiB"},

		// Step 2: recognisable plaintext key material.
		{"npm WIF", []byte(plain["wif_compressed"]), errors.EncryptionRequired, "WIF"},
		{"npm testnet WIF", []byte(plain["wif_testnet"]), errors.EncryptionRequired, "WIF"},
		{"uncompressed WIF", []byte(wikiWIF), errors.EncryptionRequired, "WIF"},
		{"WIF in a note", []byte("my spending key: " + plain["wif_compressed"] + "\n"), errors.EncryptionRequired, "WIF"},
		{"npm xprv", []byte(plain["xprv"]), errors.EncryptionRequired, "xprv"},
		{"npm tprv", []byte(plain["tprv"]), errors.EncryptionRequired, "xprv"},
		{"BIP-32 vector 1", []byte(bip32Vector1 + "\n"), errors.EncryptionRequired, "xprv"},
		{"zprv", []byte(extendedKey(0x04b2430c, true)), errors.EncryptionRequired, "xprv"},
		{"npm 12-word mnemonic", []byte(plain["mnemonic_12"]), errors.EncryptionRequired, "mnemonic"},
		{"npm 24-word mnemonic", []byte(plain["mnemonic_24"] + "\n"), errors.EncryptionRequired, "mnemonic"},
		{"BIP-39 vector", []byte(abandonAbout), errors.EncryptionRequired, "mnemonic"},
		{"numbered word list", []byte(numbered(abandonAbout)), errors.EncryptionRequired, "mnemonic"},
		{"comma-separated words", []byte(strings.ReplaceAll(abandonAbout, " ", ",")), errors.EncryptionRequired, "mnemonic"},
		{"JSON array of words", []byte(`["` + strings.ReplaceAll(abandonAbout, " ", `","`) + `"]`), errors.EncryptionRequired, "mnemonic"},
		{"npm WIF payload", []byte(plain["payload_wif"]), errors.EncryptionRequired, "field wif"},
		{"npm BAP master payload", []byte(plain["payload_bap_master"]), errors.EncryptionRequired, "JSON"},
		{"npm 1Sat payload", []byte(plain["payload_onesat"]), errors.EncryptionRequired, "JSON"},
		{"JSON privateKey", []byte(`{"privateKey":"00"}`), errors.EncryptionRequired, "field privatekey"},
		{"nested JSON seed phrase", []byte(`{"a":{"b":[{"Seed_Phrase":"x"}]}}`), errors.EncryptionRequired, "field seedphrase"},
		{"truncated JSON", []byte(`{"label":"x","wif": "L1uyy5qTuGrPp5kK`), errors.EncryptionRequired, "field wif"},
		{"JavaScript object literal", []byte(`{ label: 'x', mnemonic: 'a b c' }`), errors.EncryptionRequired, "field mnemonic"},
		{"hex private key", []byte(strings.Repeat("0123456789abcdef", 4)), errors.EncryptionRequired, "hex"},
		{"hex seed", []byte(strings.Repeat("89ABCDEF", 16) + "\n"), errors.EncryptionRequired, "hex"},

		// Step 3: strict base64, at least 44 bytes.
		{"empty", nil, errors.InvalidBackupFormat, "empty"},
		{"prose", []byte("Hello, world!"), errors.InvalidBackupFormat, "not base64"},
		{"JSON without key fields", []byte(`{"hello":"world"}`), errors.InvalidBackupFormat, ""},
		{"trailing newline", append(bytes.Clone(fixture), '\n'), errors.InvalidBackupFormat, "trailing newline"},
		{"CRLF line breaks", append(append(bytes.Clone(fixture[:76]), "\r\n"...), fixture[76:]...), errors.InvalidBackupFormat, "one line"},
		{"URL-safe alphabet", urlsafe, errors.InvalidBackupFormat, "URL-safe"},
		{"quoted", []byte(`"` + string(fixture) + `"`), errors.InvalidBackupFormat, "quotes"},
		{"unpadded", bytes.TrimRight(minimal, "="), errors.InvalidBackupFormat, "multiple of 4"},
		{"non-canonical final bits", nonCanonical, errors.InvalidBackupFormat, "strict"},
		{"padding inside", append(bytes.Clone(minimal), minimal...), errors.InvalidBackupFormat, "strict"},
		{"43 bytes", short, errors.InvalidBackupFormat, "43 bytes"},
		{"xpub is public, not a backup", []byte(extendedKey(0x0488b21e, false)), errors.InvalidBackupFormat, ""},

		// Step 4: decoded data that is not ciphertext.
		{"base64 of a WIF payload", []byte(b64(plain["payload_wif"])), errors.EncryptionRequired, "field wif"},
		{"base64 of a mnemonic", []byte(b64(abandonAbout)), errors.EncryptionRequired, "mnemonic"},
		{"base64 of short text", []byte(b64("just some words, not a secret at all, but text")), errors.EncryptionRequired, "readable text"},
		{"base64 of long text", []byte(b64(lorem)), errors.EncryptionRequired, "readable text"},
		{"base64 of zeros", []byte(base64.StdEncoding.EncodeToString(make([]byte, 1000))), errors.EncryptionRequired, "low-entropy"},
		{"base64 of nibbles", []byte(base64.StdEncoding.EncodeToString(nibbles)), errors.EncryptionRequired, "low-entropy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.body)
			if got := codeOf(err); got != tc.code {
				t.Fatalf("Validate = %v; want code %q", err, tc.code)
			}
			if err == nil {
				return
			}
			var e *errors.Error
			if !errors.As(err, &e) || e.Description == "" {
				t.Fatalf("Validate = %#v; want an *errors.Error with a description", err)
			}
			if !strings.Contains(e.Description, tc.desc) {
				t.Errorf("description %q does not mention %q", e.Description, tc.desc)
			}
		})
	}
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

func numbered(words string) string {
	var b strings.Builder
	for i, w := range strings.Fields(words) {
		b.WriteString(strings.Repeat(" ", i%2) + string(rune('0'+i/10)) + string(rune('0'+i%10)) + ". " + w + "\n")
	}
	return b.String()
}

// TestValidateAcceptsCiphertextOfEverySize runs random bytes, which is what
// AES-GCM output looks like, of every length from the minimum to 2 KiB and
// of larger ones, through every check: none may refuse real ciphertext.
func TestValidateAcceptsCiphertextOfEverySize(t *testing.T) {
	sizes := []int{}
	for n := MinDecodedSize; n <= 2048; n++ {
		sizes = append(sizes, n)
	}
	for n := 2049; n < MaxSize/4*3; n = n*5/4 + 1 {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, MaxSize/4*3)
	for _, n := range sizes {
		body := randomBase64(t, n)
		if err := Validate(body); err != nil {
			t.Fatalf("Validate(random ciphertext of %d bytes) = %v", n, err)
		}
	}
}

// TestEntropyThreshold pins the formula of entropyThreshold and shows the
// margin random bytes keep above it where it is tightest (n = 256), and
// that text stays below it.
func TestEntropyThreshold(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want float64
	}{
		{44, math.Log2(44) - 1.5},
		{128, 5.5},
		{256, 6.5},
		{1 << 20, 6.5},
	} {
		if got := entropyThreshold(tc.n); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("entropyThreshold(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	worst := math.Inf(1)
	for range 2000 {
		b := make([]byte, 256)
		rand.Read(b)
		worst = min(worst, entropy(b)-entropyThreshold(len(b)))
	}
	if worst < 0.25 { // the mean is 0.68, the standard deviation 0.05
		t.Errorf("random 256-byte data came within %.3f bits/byte of the threshold", worst)
	}
	t.Logf("smallest margin of random 256-byte data over the threshold in 2000 draws: %.3f bits/byte", worst)
	text := []byte(strings.Repeat("{\"wif\":\"L1uyy5qTuGrPp5kKs9Dq32KdXz22hJ1L8cDPexN17v2sAn8XGjY5\"} ", 20))
	if h := entropy(text); h >= entropyThreshold(len(text)) {
		t.Errorf("entropy of JSON text = %.3f, not below the threshold %.3f", h, entropyThreshold(len(text)))
	}
	if got := entropy(nil); got != 0 {
		t.Errorf("entropy(nil) = %v", got)
	}
	if got := entropy([]byte{0, 1, 2, 3}); math.Abs(got-2) > 1e-12 {
		t.Errorf("entropy of 4 distinct bytes = %v, want 2", got)
	}
}

func TestBase58(t *testing.T) {
	// A WIF with one character changed keeps the alphabet and length but
	// fails the checksum: never taken for a key.
	bad := []byte(wikiWIF)
	bad[10] = map[bool]byte{true: 'A', false: 'B'}[bad[10] != 'A']
	for _, tc := range []struct {
		s    string
		kind secretKind
	}{
		{wikiWIF, secretWIF},
		{string(bad), secretNone},
		{bip32Vector1, secretExtended},
		{extendedKey(0x04358394, true), secretExtended},
		{extendedKey(0x0488b21e, false), secretNone}, // xpub
		{"x" + bip32Vector1, secretNone},             // a longer run is not a key
		{strings.Repeat("1", 52), secretNone},
	} {
		if got := base58Secret([]byte(tc.s)); got != tc.kind {
			t.Errorf("base58Secret(%.20s…) = %v, want %v", tc.s, got, tc.kind)
		}
	}
	if _, ok := base58Decode([]byte("0OIl")); ok {
		t.Error("base58Decode accepted characters outside the alphabet")
	}
	p, ok := base58Decode([]byte("1112"))
	if !ok || hex.EncodeToString(p) != "00000001" {
		t.Errorf("base58Decode(1112) = %x, %v; want 00000001", p, ok)
	}
}

// FuzzValidate: Validate never panics, every refusal carries one of the
// three backup codes, and whatever it accepts is within the limit, strict
// base64 and at least MinDecodedSize bytes decoded.
func FuzzValidate(f *testing.F) {
	for _, b := range npmBackups(f) {
		if len(b.data) < 4096 {
			f.Add(b.data)
		}
	}
	for _, s := range npmPlaintext(f) {
		f.Add([]byte(s))
	}
	f.Add([]byte(abandonAbout))
	f.Add([]byte(bip32Vector1))
	f.Add([]byte(`{"wif":`))
	f.Add([]byte("QUFB"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		err := Validate(body)
		if err == nil {
			if len(body) > MaxSize {
				t.Fatalf("accepted %d bytes", len(body))
			}
			d, err := base64.StdEncoding.Strict().DecodeString(string(body))
			if err != nil || bytes.ContainsAny(body, "\r\n") {
				t.Fatalf("accepted a body that is not strict base64: %q", body)
			}
			if len(d) < MinDecodedSize {
				t.Fatalf("accepted %d decoded bytes", len(d))
			}
			return
		}
		var e *errors.Error
		if !errors.As(err, &e) {
			t.Fatalf("Validate returned %T, not *errors.Error", err)
		}
		switch e.Code {
		case errors.BackupTooLarge, errors.EncryptionRequired, errors.InvalidBackupFormat:
		default:
			t.Fatalf("Validate returned code %q", e.Code)
		}
		if e.Description == "" {
			t.Fatal("refusal without a description")
		}
	})
}

// BenchmarkValidate1MiB validates a 1 MiB body of ciphertext-like base64:
// the worst case a PUT can bring.
func BenchmarkValidate1MiB(b *testing.B) {
	body := base64Body(b, MaxSize)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Validate(body); err != nil {
			b.Fatal(err)
		}
	}
}
