package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/authd-dev/authd/errors"
)

// MaxSize is the largest backup accepted: 1 MiB (1,048,576 bytes) of
// request body. A body of exactly MaxSize bytes is accepted; one byte more
// is backup_too_large.
const MaxSize = 1 << 20

// MinDecodedSize is the shortest backup accepted, in decoded bytes: the
// salt (16), the AES-GCM nonce (12) and the GCM tag (16) of the npm
// bitcoin-backup format, salt || iv || ciphertext.
const MinDecodedSize = 16 + 12 + 16

// entropyMargin is how far below log2(min(n, 256)) bits per byte the
// Shannon entropy of n decoded bytes may fall before they are refused as
// not ciphertext. Uniformly random bytes of any length sit
// well above the threshold: where the margin is smallest, at n = 256, it is
// 0.68 bit per byte on average, 13 standard deviations (measured over
// 100,000 draws per size). Text, JSON and padding fall below it.
const entropyMargin = 1.5

const encryptAdvice = "; encrypt it on the client (the bitcoin-backup library's encryptBackup does) and upload only the base64 string it returns"

// Validate checks a backup body in this order and returns nil when it may
// be stored:
//
//  1. size: more than MaxSize bytes is backup_too_large;
//  2. recognisable plaintext key material in the body — JSON holding key
//     fields, a WIF private key, an extended private key (xprv, tprv and
//     their kin), a mnemonic-like word list, a bare hex private key — is
//     encryption_required;
//  3. anything but strict, padded, single-line standard base64, or fewer
//     than MinDecodedSize decoded bytes, is invalid_backup_format;
//  4. decoded bytes that are readable text, or whose Shannon entropy is
//     below log2(min(n, 256)) − 1.5 bits per byte, are encryption_required:
//     ciphertext is neither.
//
// Every error is an *errors.Error with one of those three codes and a
// description that tells the user what to do.
func Validate(body []byte) error {
	const op = "backup.Validate"
	if len(body) > MaxSize {
		return tooLarge(op)
	}
	b64 := onlyBase64(body)
	if what := keyMaterial(body, b64); what != "" {
		return errors.E(errors.EncryptionRequired, "Backup "+what+" in plain text"+encryptAdvice).WithCause(op, nil)
	}
	data, desc := decodeStrict(body, b64)
	if desc != "" {
		return errors.E(errors.InvalidBackupFormat, desc).WithCause(op, nil)
	}
	if len(data) < MinDecodedSize {
		return errors.E(errors.InvalidBackupFormat, "Backup decodes to "+
			strconv.Itoa(len(data))+" bytes; an encrypted backup is at least 44 (salt 16, iv 12, GCM tag 16): upload the whole string encryptBackup returns").WithCause(op, nil)
	}
	if isText(data) {
		// Ciphertext is readable text with a chance below 2^-60 at the
		// shortest length: this is base64 of something in the clear.
		desc := "Backup decodes to readable text, not ciphertext" + encryptAdvice
		if what := keyMaterial(data, false); what != "" {
			desc = "Backup is base64 of plain text that " + what + encryptAdvice
		}
		return errors.E(errors.EncryptionRequired, desc).WithCause(op, nil)
	}
	if entropy(data) < entropyThreshold(len(data)) {
		return errors.E(errors.EncryptionRequired, "Backup decodes to low-entropy data, not ciphertext"+encryptAdvice).WithCause(op, nil)
	}
	return nil
}

// tooLarge is backup_too_large with the catalog's description, the one
// httperr.LimitBody sends too: a client sees the same text whichever
// layer noticed the size.
func tooLarge(op string) *errors.Error {
	e, _ := errors.Lookup(errors.BackupTooLarge)
	return errors.E(errors.BackupTooLarge, e.Description).WithCause(op, nil)
}

// keyMaterial reports what plaintext key material b holds, as the middle
// of a sentence about the backup ("contains a WIF private key"), or "" when
// it finds none. The checks are exact where they can be (base58check
// checksums), so real ciphertext never trips them. b64 says b holds only
// base64 characters, so it can be neither JSON nor a word list.
func keyMaterial(b []byte, b64 bool) string {
	if !b64 {
		if field, ok := jsonKeyField(b); ok {
			return "is JSON holding wallet data (field " + field + ")"
		}
	}
	switch base58Secret(b) {
	case secretWIF:
		return "contains a WIF private key"
	case secretExtended:
		return "contains an extended private key (xprv/tprv)"
	}
	if !b64 && mnemonicLike(b) {
		return "contains a mnemonic word list"
	}
	if hexKey(b) {
		return "is a hex-encoded private key or seed"
	}
	return ""
}

// keyFields are JSON member names, lower-cased with '_', '-' and spaces
// removed, that hold secrets in wallet exports: those of bitcoin-backup's
// payloads (wif, xprv, mnemonic, rootPk, ordPk, payPk, identityPk, and
// encryptedVault and chromeStorage, which mark its vault and Yours Wallet
// payloads: an unencrypted payload of the library is what a client that
// skipped encryptBackup sends) and the usual names elsewhere.
var keyFields = map[string]bool{
	"wif": true, "xprv": true, "xpriv": true, "tprv": true, "mnemonic": true,
	"seed": true, "seedphrase": true, "seedwords": true, "recoveryphrase": true,
	"secret": true, "secretkey": true, "privkey": true, "privatekey": true,
	"prvkey": true, "masterkey": true, "rootpk": true, "ordpk": true,
	"paypk": true, "identitypk": true, "encryptedvault": true, "chromestorage": true,
}

// keyFieldSuffixes catch compound names (spendingPrivateKey, ownerWif).
var keyFieldSuffixes = []string{"privkey", "privatekey", "wif", "xprv", "mnemonic", "seedphrase", "secretkey"}

func isKeyField(name string) (string, bool) {
	n := strings.Map(func(r rune) rune {
		switch r {
		case '_', '-', ' ':
			return -1
		}
		return unicode.ToLower(r)
	}, name)
	if keyFields[n] {
		return n, true
	}
	for _, s := range keyFieldSuffixes {
		if strings.HasSuffix(n, s) {
			return n, true
		}
	}
	return "", false
}

// looseKey finds member names in JSON-looking text that does not parse
// (truncated JSON, a JavaScript object literal).
var looseKey = regexp.MustCompile(`[{,]\s*["']?([A-Za-z][A-Za-z0-9_\- ]{0,40})["']?\s*:`)

// jsonKeyField reports the first key field of b when b is JSON (or text
// shaped like a JSON object) holding one, or a string array or value that
// is a mnemonic.
func jsonKeyField(b []byte) (string, bool) {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || (t[0] != '{' && t[0] != '[') {
		return "", false
	}
	if json.Valid(t) {
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.UseNumber()
		var v any
		if dec.Decode(&v) == nil {
			return walkJSON(v, 0)
		}
	}
	for _, m := range looseKey.FindAllSubmatch(t, 64) {
		if f, ok := isKeyField(string(m[1])); ok {
			return f, true
		}
	}
	return "", false
}

func walkJSON(v any, depth int) (string, bool) {
	if depth > 64 {
		return "", false
	}
	switch v := v.(type) {
	case map[string]any:
		keys := slices.Sorted(maps.Keys(v)) // the same answer every time
		for _, k := range keys {
			if f, ok := isKeyField(k); ok {
				return f, true
			}
		}
		for _, k := range keys {
			if f, ok := walkJSON(v[k], depth+1); ok {
				return f, true
			}
		}
	case []any:
		words := make([]string, 0, len(v))
		for _, e := range v {
			if s, ok := e.(string); ok {
				words = append(words, s)
			}
			if f, ok := walkJSON(e, depth+1); ok {
				return f, true
			}
		}
		if len(words) == len(v) && mnemonicLike([]byte(strings.Join(words, " "))) {
			return "mnemonic word list", true
		}
	case string:
		if mnemonicLike([]byte(v)) {
			return "mnemonic word list", true
		}
	}
	return "", false
}

// The base58 alphabet of Bitcoin addresses and keys.
const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var base58Index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(base58Alphabet); i++ {
		t[base58Alphabet[i]] = int8(i)
	}
	return t
}()

type secretKind int

const (
	secretNone secretKind = iota
	secretWIF
	secretExtended
)

// base58Secret scans b for maximal runs of base58 characters the length of
// a WIF (51 or 52) or of an extended key (111) and reports the first that
// is one: right version or private-key marker, and a valid base58check
// checksum. Base64 ciphertext holds such runs by chance; the 32-bit
// checksum keeps them from ever passing.
func base58Secret(b []byte) secretKind {
	for i := 0; i < len(b); {
		if base58Index[b[i]] < 0 {
			i++
			continue
		}
		j := i + 1
		for j < len(b) && base58Index[b[j]] >= 0 {
			j++
		}
		switch j - i {
		case 51, 52:
			if isWIF(b[i:j]) {
				return secretWIF
			}
		case 111:
			if isExtendedPrivate(b[i:j]) {
				return secretExtended
			}
		}
		i = j
	}
	return secretNone
}

// isWIF reports whether s is a WIF private key (mainnet 0x80 or testnet
// 0xef; 32-byte key, with the 0x01 compression flag or without).
func isWIF(s []byte) bool {
	p, ok := base58Check(s)
	if !ok || (p[0] != 0x80 && p[0] != 0xef) {
		return false
	}
	return len(p) == 33 || (len(p) == 34 && p[33] == 0x01)
}

// isExtendedPrivate reports whether s is a BIP-32 extended private key of
// any network or script version (xprv, tprv, yprv, zprv, …): 78 bytes whose
// key data starts with the 0x00 that marks a private key.
func isExtendedPrivate(s []byte) bool {
	p, ok := base58Check(s)
	return ok && len(p) == 78 && p[45] == 0x00
}

// base58Check decodes s and verifies its 4-byte double-SHA-256 checksum,
// returning the payload without it.
func base58Check(s []byte) ([]byte, bool) {
	raw, ok := base58Decode(s)
	if !ok || len(raw) < 5 {
		return nil, false
	}
	p, sum := raw[:len(raw)-4], raw[len(raw)-4:]
	h := sha256.Sum256(p)
	h = sha256.Sum256(h[:])
	return p, bytes.Equal(h[:4], sum)
}

// base58Decode decodes a base58 string (at most 111 characters here).
func base58Decode(s []byte) ([]byte, bool) {
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	// log(58)/log(256) < 0.733: enough bytes for the number.
	out := make([]byte, len(s)*733/1000+1)
	for _, c := range s {
		carry := int(base58Index[c])
		if carry < 0 {
			return nil, false
		}
		for k := len(out) - 1; k >= 0; k-- {
			carry += 58 * int(out[k])
			out[k] = byte(carry)
			carry >>= 8
		}
		if carry != 0 {
			return nil, false
		}
	}
	k := 0
	for k < len(out) && out[k] == 0 {
		k++
	}
	return append(make([]byte, zeros, zeros+len(out)-k), out[k:]...), true
}

// mnemonicLike reports whether b holds a run of at least 12 consecutive
// words shaped like those of a BIP-39 (or Electrum) mnemonic: lower-case
// letters only, 3 to 8 of them for ASCII words, 1 to 8 for other scripts.
// List numbering ("1.", "2)") and surrounding punctuation are skipped.
func mnemonicLike(b []byte) bool {
	run := 0
	for _, tok := range bytes.FieldsFunc(b, func(r rune) bool { return unicode.IsSpace(r) || r == ',' }) {
		tok = bytes.Trim(tok, "\"'.;:()[]{}#")
		switch {
		case len(tok) == 0 || isDigits(tok):
			continue
		case isMnemonicWord(tok):
			run++
			if run >= 12 {
				return true
			}
		default:
			run = 0
		}
	}
	return false
}

func isDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isMnemonicWord(w []byte) bool {
	n, ascii := 0, true
	for _, r := range string(w) {
		if !unicode.IsLetter(r) || unicode.IsUpper(r) || unicode.IsTitle(r) {
			return false
		}
		if r >= utf8.RuneSelf {
			ascii = false
		}
		n++
	}
	if ascii {
		return n >= 3 && n <= 8
	}
	return n >= 1 && n <= 8
}

// hexKey reports whether b (surrounding whitespace aside) is 64 or 128 hex
// digits: a raw private key or a BIP-39 seed. Both are also valid base64
// that would decode to high-entropy bytes, so they need their own check.
func hexKey(b []byte) bool {
	t := bytes.TrimSpace(b)
	if len(t) != 64 && len(t) != 128 {
		return false
	}
	for _, c := range t {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// decodeStrict decodes b as strict, padded, standard base64 with nothing
// else in it (Go's decoder alone would skip CR and LF); b64 says whether
// onlyBase64(b) holds. On failure it returns a description of what is
// wrong and what to send instead.
func decodeStrict(b []byte, b64 bool) ([]byte, string) {
	if len(b) == 0 {
		return nil, "Backup body is empty; send the encrypted backup string the bitcoin-backup library's encryptBackup returns"
	}
	if !b64 {
		return nil, notBase64(b)
	}
	if len(b)%4 != 0 {
		return nil, "Backup base64 is truncated or unpadded: its length must be a multiple of 4, with = padding; send the whole string encryptBackup returns"
	}
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Strict().Decode(dst, b)
	if err != nil {
		return nil, "Backup is not strict base64 (misplaced = padding or non-canonical final bits); send the string encryptBackup returns, unchanged"
	}
	return dst[:n], ""
}

// notBase64 describes what keeps b, which holds a byte outside the base64
// alphabet, from being a backup, naming the usual mistakes.
func notBase64(b []byte) string {
	var space, urlsafe, other bool
	for _, c := range b {
		switch {
		case base64Bytes[c]:
		case c == '\n' || c == '\r' || c == ' ' || c == '\t':
			space = true
		case c == '-' || c == '_':
			urlsafe = true
		default:
			other = true
		}
	}
	switch {
	case !other && !urlsafe && onlyBase64(bytes.TrimRight(b, " \t\r\n")):
		return "Backup ends with a line break or space; send the base64 string alone, with no trailing newline (printf '%s', not echo)"
	case !other && !urlsafe:
		return "Backup contains spaces or line breaks; send the base64 string on one line, exactly as encryptBackup returns it"
	case !other && !space:
		return "Backup uses the URL-safe base64 alphabet; send standard base64 (with + and /) as encryptBackup returns it"
	case len(b) > 2 && b[0] == '"' && b[len(b)-1] == '"' && onlyBase64(b[1:len(b)-1]):
		return "Backup is wrapped in quotes; send the base64 string without them"
	}
	return "Backup is not base64; send the string the bitcoin-backup library's encryptBackup returns, unchanged"
}

// base64Bytes marks the bytes of the standard base64 alphabet and '='.
var base64Bytes = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") {
		t[c] = true
	}
	return t
}()

// onlyBase64 reports whether every byte of b is a base64 character or '='.
func onlyBase64(b []byte) bool {
	for _, c := range b {
		if !base64Bytes[c] {
			return false
		}
	}
	return true
}

// isText reports whether b is valid UTF-8 without control characters other
// than tab, CR and LF: readable text, which AES-GCM output is not.
func isText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r >= 0x7f && r < 0xa0 {
			return false
		}
	}
	return true
}

// entropy returns the Shannon entropy of b's byte distribution, in bits
// per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

// entropyThreshold is the least entropy, in bits per byte, that n decoded
// bytes must have: log2(min(n, 256)) − entropyMargin. n bytes can show
// at most log2(min(n, 256)) bits per byte, hence the min.
func entropyThreshold(n int) float64 {
	return math.Log2(float64(min(n, 256))) - entropyMargin
}
