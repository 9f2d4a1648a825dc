package oauth

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/go-jose/go-jose/v4"
)

// Signing keys, persisted in oauth_signing_keys so tokens survive restarts
// and every node signs with the same keys. Two algorithms, each with its
// own current key:
//
//   - ES256 (ECDSA P-256 with SHA-256, RFC 7518 §3.4) signs access tokens
//     and the ID Tokens of clients registered for ES256;
//   - RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3, 2048-bit keys)
//     signs every other ID Token: it is OpenID Connect's default
//     id_token_signed_response_alg, the one every relying party supports.
//
// A key's created_ms is the moment it starts signing. A rotated key is
// published in the JWKS at once but signs only after KeyActivationDelay,
// so relying parties that cache the JWKS know it before any token it
// signed reaches them ("next"). The newest active key of an algorithm
// signs ("current"); the one before ("previous"), and any older key
// superseded less than a token lifetime ago, still verify and are
// published, so a rotation never invalidates a live token. A leaked key is
// rotated out with an immediate rotation and then deleted (RetireKey).
//
// Keys are parsed once per load and kept in memory with their signers:
// parsing PKCS#8, or an RSA key's CRT precomputation, per token would cost
// more than the signature.
//
// Keys are encrypted at rest (KeyEncryption): a row holds the key's PKCS#8
// DER sealed with AES-256-GCM under a key-encryption key that never enters
// the database, the kid as additional data, so neither a copy of the
// database nor a backup of it can sign tokens, and a sealed key cannot be
// moved to another kid. The sealing knows nothing of the key's type: alg
// is kept per row, and parseSigningKey is the one place that turns DER of
// a given alg into a signer.

// Key algorithms (RFC 7518 §3.1).
const (
	AlgES256 = "ES256"
	AlgRS256 = "RS256"
)

// KeyAlgorithms are the algorithms of the keyring, in the order keys are
// made and listed.
var KeyAlgorithms = []string{AlgES256, AlgRS256}

const (
	// rsaBits is the size of RS256 keys (RFC 7518 §3.3: at least 2048).
	rsaBits = 2048
	// keyReload is how often a running server looks for a rotated key.
	keyReload = time.Minute
	// jwksMaxAge is how long relying parties may cache the JWKS.
	jwksMaxAge = 5 * time.Minute
	// KeyActivationDelay is how long a rotated key is published before it
	// signs: every cached JWKS and every authd node knows it by then, with
	// a minute to spare for clocks that disagree.
	KeyActivationDelay = jwksMaxAge + keyReload + time.Minute
	// unknownKidReload bounds reloads triggered by an unknown kid.
	unknownKidReload = 5 * time.Second
)

// JWS "typ" header values: RFC 9068 §2.1 for access tokens; ID Tokens say
// JWT (RFC 7519 §5.1), so neither can pass for the other.
const (
	typAccessToken = "at+jwt"
	typIDToken     = "JWT"
)

// signingKey is a parsed key with its signers, ready to sign.
type signingKey struct {
	kid     string
	alg     string
	priv    crypto.Signer // *ecdsa.PrivateKey or *rsa.PrivateKey
	created time.Time
	jwk     jose.JSONWebKey // the public key as published
	// access signs access tokens (ES256 keys only; nil for RSA keys);
	// idToken signs ID Tokens.
	access, idToken *jwsSigner
}

// public returns the key to verify the key's signatures with.
func (sk *signingKey) public() crypto.PublicKey { return sk.jwk.Key }

// keySet is one loaded generation of keys; it is replaced, never changed.
type keySet struct {
	// current is the ES256 key that signs access tokens and ES256 ID
	// Tokens; currentRS256 signs RS256 ID Tokens.
	current, currentRS256 *signingKey
	byKid                 map[string]*signingKey
	jwks                  []byte
	// nextAt is when the earliest published-but-not-yet-signing key
	// starts to sign (zero: none); the set is reloaded then.
	nextAt time.Time
}

// signer returns the current key of alg, nil when there is none.
func (ks *keySet) signer(alg string) *signingKey {
	switch alg {
	case AlgES256:
		return ks.current
	case AlgRS256:
		return ks.currentRS256
	}
	return nil
}

type keyring struct {
	db      *sql.DB
	enc     *KeyEncryption
	log     *slog.Logger
	now     func() time.Time
	timeout time.Duration
	// verifyFor is how long a superseded key keeps verifying: the longest
	// token lifetime (access token or ID Token), so no token it signed
	// dies early.
	verifyFor time.Duration

	set        atomic.Pointer[keySet]
	loadedAt   atomic.Int64 // unix nanoseconds of the last load attempt
	lastForced atomic.Int64
	// nextTried is the nextAt (unix nanoseconds) a reload was last
	// started for, so an activation triggers one reload, not one per
	// request while the database is down.
	nextTried atomic.Int64
	mu        sync.Mutex // one reload at a time
}

// init loads the keys, generating a first key for each algorithm that has
// none signing (a new installation, or one from before RS256 ID Tokens).
func (k *keyring) init(ctx context.Context) error {
	const op = "oauth.keyring.init"
	n, err := SealKeys(ctx, k.db, k.enc)
	if err != nil {
		return err
	}
	if n > 0 {
		k.log.LogAttrs(ctx, slog.LevelInfo, "encrypted signing keys that were stored in plaintext", slog.Int("count", n), slog.String("kek", k.enc.ID()))
	}
	if err := k.reload(ctx); err != nil {
		return err
	}
	made := false
	for _, alg := range KeyAlgorithms {
		if k.set.Load().signer(alg) != nil {
			continue
		}
		info, err := RotateKey(ctx, k.db, k.enc, alg, k.now()) // the first key signs at once
		if err != nil {
			return err
		}
		k.log.LogAttrs(ctx, slog.LevelInfo, "generated the first signing key", slog.String("alg", alg), slog.String("kid", info.KID))
		made = true
	}
	if !made {
		return nil
	}
	if err := k.reload(ctx); err != nil {
		return err
	}
	for _, alg := range KeyAlgorithms {
		if k.set.Load().signer(alg) == nil {
			return errors.E(errors.ServerError, "").WithCause(op, errors.Errorf("no %s signing key after generating one", alg))
		}
	}
	return nil
}

// reload reads the keys from SQL, for each algorithm: those waiting to
// sign, the current one, and the superseded ones that may still have
// signed a live token (the previous key always, older ones superseded less
// than verifyFor ago).
func (k *keyring) reload(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.loadedAt.Store(time.Now().UnixNano())
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	nowMS := k.now().UnixMilli()
	ks := &keySet{byKid: map[string]*signingKey{}}
	var list []jose.JSONWebKey
	for _, alg := range KeyAlgorithms {
		keys, err := k.loadAlg(ctx, alg, nowMS)
		if err != nil {
			return err
		}
		for _, sk := range keys {
			if sk.created.UnixMilli() > nowMS {
				if ks.nextAt.IsZero() || sk.created.Before(ks.nextAt) {
					ks.nextAt = sk.created
				}
			} else if ks.signer(alg) == nil {
				switch alg {
				case AlgES256:
					ks.current = sk
				case AlgRS256:
					ks.currentRS256 = sk
				}
			}
			ks.byKid[sk.kid] = sk
			list = append(list, sk.jwk)
		}
	}
	old := k.set.Load()
	if ks.current == nil && old != nil && old.current != nil {
		// Keys never disappear in normal operation; keep signing with
		// the loaded ones rather than with none.
		k.log.LogAttrs(ctx, slog.LevelError, "no signing keys in the database; keeping the loaded ones", slog.String("kid", old.current.kid))
		return nil
	}
	if list == nil {
		list = []jose.JSONWebKey{}
	}
	ks.jwks, _ = json.Marshal(jose.JSONWebKeySet{Keys: list})
	if old != nil {
		for _, alg := range KeyAlgorithms {
			if o, n := old.signer(alg), ks.signer(alg); o != nil && n != nil && o.kid != n.kid {
				k.log.LogAttrs(ctx, slog.LevelInfo, "signing key changed", slog.String("alg", alg), slog.String("kid", n.kid), slog.String("previous", o.kid))
			}
		}
	}
	k.set.Store(ks)
	return nil
}

// loadAlg reads the keys of one algorithm that matter at nowMS: waiting
// ones first (oldest first), then the active ones (newest first).
func (k *keyring) loadAlg(ctx context.Context, alg string, nowMS int64) ([]*signingKey, error) {
	const op = "oauth.keyring.reload"
	var out []*signingKey
	for _, q := range []string{
		`SELECT kid, alg, kek_id, private_key, created_ms FROM oauth_signing_keys WHERE alg = $2 AND created_ms > $1 ORDER BY created_ms, kid LIMIT 4`,
		`SELECT kid, alg, kek_id, private_key, created_ms FROM oauth_signing_keys WHERE alg = $2 AND created_ms <= $1 ORDER BY created_ms DESC, kid DESC LIMIT 10`,
	} {
		rows, err := k.db.QueryContext(ctx, q, nowMS, alg)
		if err != nil {
			return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
		active := 0
		var successor int64 // activation of the next newer active key
		for rows.Next() {
			var kid, a, kekID, stored string
			var created int64
			if err := rows.Scan(&kid, &a, &kekID, &stored, &created); err != nil {
				rows.Close()
				return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
			}
			if created <= nowMS {
				// Past the previous key, a key matters only while a token
				// it signed can be alive.
				if active >= 2 && successor <= nowMS-k.verifyFor.Milliseconds() {
					break
				}
				active++
				successor = created
			}
			der, err := k.enc.open(kid, kekID, stored)
			if err != nil {
				rows.Close()
				return nil, errors.E(errors.ServerError, "").WithCause(op, err)
			}
			sk, err := parseSigningKey(kid, a, der, created)
			if err != nil {
				rows.Close()
				return nil, errors.E(errors.ServerError, "").WithCause(op, err)
			}
			out = append(out, sk)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
	}
	return out, nil
}

// keys returns the loaded key set, reloading it once a minute and once
// when a published key's activation time comes (the reload runs in the
// request that notices; failures keep the old set and are logged).
func (k *keyring) keys(ctx context.Context) *keySet {
	last := k.loadedAt.Load()
	due := time.Since(time.Unix(0, last)) > keyReload
	if ks := k.set.Load(); ks != nil && !ks.nextAt.IsZero() && !k.now().Before(ks.nextAt) {
		// A published key starts to sign now: one reload for it.
		at := ks.nextAt.UnixNano()
		if tried := k.nextTried.Load(); tried != at && k.nextTried.CompareAndSwap(tried, at) {
			due = true
		}
	}
	if due && k.loadedAt.CompareAndSwap(last, time.Now().UnixNano()) {
		if err := k.reload(context.WithoutCancel(ctx)); err != nil {
			k.log.LogAttrs(ctx, slog.LevelWarn, "reloading signing keys failed; keeping the loaded ones", slog.Any("err", err))
		}
	}
	return k.set.Load()
}

// lookup returns the key with kid, reloading (at most every 5 s) when the
// kid is unknown: another node may have rotated.
func (k *keyring) lookup(ctx context.Context, kid string) *signingKey {
	ks := k.keys(ctx)
	if sk := ks.byKid[kid]; sk != nil {
		return sk
	}
	now := time.Now().UnixNano()
	last := k.lastForced.Load()
	if time.Duration(now-last) < unknownKidReload || !k.lastForced.CompareAndSwap(last, now) {
		return nil
	}
	if err := k.reload(context.WithoutCancel(ctx)); err != nil {
		k.log.LogAttrs(ctx, slog.LevelWarn, "reloading signing keys failed", slog.Any("err", err))
		return nil
	}
	return k.set.Load().byKid[kid]
}

// parseSigningKey turns a stored key's PKCS#8 DER into a key ready to
// sign with alg. A new algorithm is a new case in checkKeyType and
// generateKey: the storage and its encryption are the same for every key
// type.
func parseSigningKey(kid, alg string, der []byte, created int64) (*signingKey, error) {
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.Errorf("signing key %s: %w", kid, err)
	}
	priv, ok := pk.(crypto.Signer)
	if !ok {
		return nil, errors.Errorf("signing key %s: not a signing key", kid)
	}
	if err := checkKeyType(alg, priv); err != nil {
		return nil, errors.Errorf("signing key %s: %w", kid, err)
	}
	pub, err := publicJWK(alg, priv.Public())
	if err != nil {
		return nil, errors.Errorf("signing key %s: %w", kid, err)
	}
	if pub.KeyID != kid {
		return nil, errors.Errorf("signing key %s: kid does not match the key's thumbprint", kid)
	}
	sk := &signingKey{kid: kid, alg: alg, priv: priv, created: time.UnixMilli(created).UTC(), jwk: pub}
	signer := func(typ string) (*jwsSigner, error) { return newJWSSigner(alg, kid, typ, priv) }
	if alg == AlgES256 {
		if sk.access, err = signer(typAccessToken); err != nil {
			return nil, errors.Errorf("signing key %s: %w", kid, err)
		}
	}
	if sk.idToken, err = signer(typIDToken); err != nil {
		return nil, errors.Errorf("signing key %s: %w", kid, err)
	}
	return sk, nil
}

// checkKeyType checks that priv is the kind of key alg signs with.
func checkKeyType(alg string, priv crypto.Signer) error {
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if alg == AlgES256 && k.Curve == elliptic.P256() {
			return nil
		}
	case *rsa.PrivateKey:
		if alg == AlgRS256 && k.N.BitLen() >= rsaBits {
			return nil
		}
	}
	if !slices.Contains(KeyAlgorithms, alg) {
		return errors.Errorf("unsupported alg %q", alg)
	}
	return errors.Errorf("not a key for %s", alg)
}

// publicJWK returns a public key as a JWK for the JWKS (RFC 7517), with
// kid = its RFC 7638 SHA-256 thumbprint.
func publicJWK(alg string, pub crypto.PublicKey) (jose.JSONWebKey, error) {
	j := jose.JSONWebKey{Key: pub, Algorithm: alg, Use: "sig"}
	tp, err := j.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	j.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	return j, nil
}

// generateKey makes a new private key for alg.
func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgRS256:
		return rsa.GenerateKey(rand.Reader, rsaBits)
	}
	return nil, errors.Errorf("unsupported alg %q (want ES256 or RS256)", alg)
}

// KeyInfo describes a signing key, without its private part.
type KeyInfo struct {
	KID       string `json:"kid"`
	Algorithm string `json:"alg"`
	// ActiveFrom is when the key starts (or started) to sign.
	ActiveFrom time.Time `json:"active_from"`
	// Status, among the keys of its algorithm, is "next" (published,
	// signs from ActiveFrom), "current" (signs), "previous" (the key
	// before: verifies, published) or "superseded" (older: verifies only
	// while a token it signed may be alive, then is unused; RetireKey
	// deletes it).
	Status string `json:"status"`
	// KEK is the id of the key-encryption key the key is stored under;
	// empty for a key still in plaintext (see SealKeys).
	KEK string `json:"kek"`
}

// ErrUnknownAlg is returned by RotateKey for an algorithm other than
// ES256 and RS256.
var ErrUnknownAlg = errors.New("oauth: unknown key algorithm (want ES256 or RS256)")

// RotateKey generates a new signing key for alg (ES256 or RS256) and
// stores it to start signing at activeFrom; until then it is published as
// the next key, and the key it replaces stays published as the previous
// one. Pass now.Add(KeyActivationDelay) for a routine rotation, so that
// relying parties caching the JWKS know the key before its first token;
// now itself when the current key must stop signing at once (it leaked;
// then retire it with RetireKey). A key active now signs even if a
// routine rotation is pending: the pending key takes over at its own
// time. Running servers pick a key up within a minute of its activation.
// The key is stored encrypted under enc's first key-encryption key.
//
// Errors: ErrUnknownAlg; temporarily_unavailable.
func RotateKey(ctx context.Context, db *sql.DB, enc *KeyEncryption, alg string, activeFrom time.Time) (KeyInfo, error) {
	const op = "oauth.RotateKey"
	if !slices.Contains(KeyAlgorithms, alg) {
		return KeyInfo{}, ErrUnknownAlg
	}
	priv, err := generateKey(alg)
	if err != nil {
		return KeyInfo{}, errors.E(errors.ServerError, "").WithCause(op, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return KeyInfo{}, errors.E(errors.ServerError, "").WithCause(op, err)
	}
	j, err := publicJWK(alg, priv.Public())
	if err != nil {
		return KeyInfo{}, errors.E(errors.ServerError, "").WithCause(op, err)
	}
	kekID, sealed, err := enc.seal(j.KeyID, der)
	if err != nil {
		return KeyInfo{}, errors.E(errors.ServerError, "").WithCause(op, err)
	}
	// Keys of an algorithm are ordered by activation time, so no two
	// may share a millisecond: a collision moves the new key on by one.
	active := activeFrom.UnixMilli()
	for {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM oauth_signing_keys WHERE created_ms = $1 AND alg = $2`, active, alg).Scan(&n); err != nil {
			return KeyInfo{}, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
		if n == 0 {
			break
		}
		active++
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO oauth_signing_keys (kid, alg, kek_id, private_key, created_ms) VALUES ($1, $2, $3, $4, $5)`,
		j.KeyID, alg, kekID, sealed, active); err != nil {
		return KeyInfo{}, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	ki := KeyInfo{KID: j.KeyID, Algorithm: alg, ActiveFrom: time.UnixMilli(active).UTC(), Status: "current", KEK: kekID}
	if ki.ActiveFrom.After(time.Now()) {
		ki.Status = "next"
	}
	return ki, nil
}

// ErrKeyInUse is returned by RetireKey for a key that signs now.
var ErrKeyInUse = errors.New("oauth: the key signs tokens now; rotate with --now first")

// ErrNoKey is returned by RetireKey for a kid that is not stored.
var ErrNoKey = errors.New("oauth: no such signing key")

// RetireKey deletes a signing key that no longer signs, such as one that
// leaked: tokens it signed stop verifying and it leaves the JWKS. Running
// servers drop it at their next reload, within a minute.
//
// Errors: ErrKeyInUse for the current key of its algorithm, ErrNoKey;
// temporarily_unavailable.
func RetireKey(ctx context.Context, db *sql.DB, kid string, now time.Time) error {
	const op = "oauth.RetireKey"
	var current string
	err := db.QueryRowContext(ctx, `SELECT kid FROM oauth_signing_keys
		WHERE alg = (SELECT alg FROM oauth_signing_keys WHERE kid = $2) AND created_ms <= $1
		ORDER BY created_ms DESC, kid DESC LIMIT 1`, now.UnixMilli(), kid).Scan(&current)
	if err != nil && err != sql.ErrNoRows {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if kid == current {
		return ErrKeyInUse
	}
	res, err := db.ExecContext(ctx, `DELETE FROM oauth_signing_keys WHERE kid = $1`, kid)
	if err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	} else if n == 0 {
		return ErrNoKey
	}
	return nil
}

// ListKeys lists the signing keys, the latest to sign first, with their
// status at now among the keys of their algorithm.
//
// Errors: temporarily_unavailable.
func ListKeys(ctx context.Context, db *sql.DB, now time.Time) ([]KeyInfo, error) {
	const op = "oauth.ListKeys"
	rows, err := db.QueryContext(ctx, `SELECT kid, alg, kek_id, created_ms FROM oauth_signing_keys ORDER BY created_ms DESC, kid DESC`)
	if err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	defer rows.Close()
	out := []KeyInfo{}
	active := map[string]int{} // active keys seen so far, per algorithm
	for rows.Next() {
		var ki KeyInfo
		var created int64
		if err := rows.Scan(&ki.KID, &ki.Algorithm, &ki.KEK, &created); err != nil {
			return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
		ki.ActiveFrom = time.UnixMilli(created).UTC()
		switch n := active[ki.Algorithm]; {
		case ki.ActiveFrom.After(now):
			ki.Status = "next"
		case n == 0:
			ki.Status = "current"
		case n == 1:
			ki.Status = "previous"
		default:
			ki.Status = "superseded"
		}
		if !ki.ActiveFrom.After(now) {
			active[ki.Algorithm]++
		}
		out = append(out, ki)
	}
	if err := rows.Err(); err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return out, nil
}

// JWKS serves the public signing keys (RFC 7517) of both algorithms: the
// keys waiting to sign, the current ones, and the superseded ones that
// may have signed a live token.
//
// Errors: none (the keys are in memory).
func (s *Server) JWKS(w http.ResponseWriter, r *http.Request) error {
	ks := s.keys.keys(r.Context())
	h := w.Header()
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(jwksMaxAge/time.Second)))
	_, err := w.Write(ks.jwks)
	return err
}

// KEKSize is the length of a key-encryption key: AES-256.
const KEKSize = 32

// ErrKeyEncryption is wrapped by every error about a stored signing key
// that the key-encryption keys given cannot decrypt: encrypted under a
// key that is not among them, or altered.
var ErrKeyEncryption = errors.New("oauth: a signing key cannot be decrypted with the key-encryption keys given")

// KeyEncryption encrypts signing keys at rest with AES-256-GCM (NIST SP
// 800-38D) under key-encryption keys that are kept outside the database.
// The first key encrypts; every key decrypts, so a new key-encryption key
// can be put first while keys stored under the old one still load (then
// ReencryptKeys moves them to the new one). Each stored key records the id
// of the key-encryption key that sealed it. A KeyEncryption is safe for
// concurrent use.
type KeyEncryption struct {
	keks []kek
}

type kek struct {
	id   string
	aead cipher.AEAD
}

// NewKeyEncryption returns a KeyEncryption over keys, each KEKSize random
// bytes; keys[0] encrypts. There must be at least one, and no key may be
// given twice.
func NewKeyEncryption(keys ...[]byte) (*KeyEncryption, error) {
	if len(keys) == 0 {
		return nil, errors.New("oauth: no key-encryption key")
	}
	ke := &KeyEncryption{}
	for i, k := range keys {
		if len(k) != KEKSize {
			return nil, errors.Errorf("oauth: key-encryption key %d is %d bytes, want %d", i+1, len(k), KEKSize)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, errors.Errorf("oauth: key-encryption key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, errors.Errorf("oauth: key-encryption key %d: %w", i+1, err)
		}
		id := kekID(k)
		for j, prev := range ke.keks {
			if prev.id == id {
				return nil, errors.Errorf("oauth: key-encryption key %d repeats key %d", i+1, j+1)
			}
		}
		ke.keks = append(ke.keks, kek{id: id, aead: aead})
	}
	return ke, nil
}

// kekID names a key-encryption key in the database without revealing it:
// 64 bits of a domain-separated SHA-256 of the key.
func kekID(k []byte) string {
	h := sha256.New()
	h.Write([]byte("authd key-encryption key id\x00"))
	h.Write(k)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// ID returns the id of the key-encryption key that encrypts: the first.
func (ke *KeyEncryption) ID() string { return ke.keks[0].id }

// IDs returns the ids of every key-encryption key, the encrypting one first.
func (ke *KeyEncryption) IDs() []string {
	out := make([]string, len(ke.keks))
	for i, k := range ke.keks {
		out[i] = k.id
	}
	return out
}

// seal encrypts a key's DER for the row of kid under the first
// key-encryption key: base64 of nonce || ciphertext || tag, with kid as
// additional data.
func (ke *KeyEncryption) seal(kid string, der []byte) (kekID, sealed string, err error) {
	k := ke.keks[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(der)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", "", err
	}
	out := k.aead.Seal(nonce, nonce, der, []byte(kid))
	return k.id, base64.StdEncoding.EncodeToString(out), nil
}

// open returns the DER of the key stored in the row of kid: decrypted
// under the key-encryption key kekID, or, for a row not yet encrypted
// (kekID empty), decoded from base64.
//
// Errors: ErrKeyEncryption (wrapped) when no key-encryption key given
// has kekID, or the row does not decrypt.
func (ke *KeyEncryption) open(kid, kekID, stored string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(stored)
	if err != nil {
		return nil, errors.Errorf("signing key %s: private key is not base64: %w", kid, err)
	}
	if kekID == "" {
		return raw, nil
	}
	for _, k := range ke.keks {
		if k.id != kekID {
			continue
		}
		ns := k.aead.NonceSize()
		if len(raw) < ns+k.aead.Overhead() {
			return nil, errors.Errorf("signing key %s: encrypted key too short: %w", kid, ErrKeyEncryption)
		}
		der, err := k.aead.Open(nil, raw[:ns], raw[ns:], []byte(kid))
		if err != nil {
			return nil, errors.Errorf("signing key %s does not decrypt under key-encryption key %s (altered, or moved from another kid): %w", kid, kekID, ErrKeyEncryption)
		}
		return der, nil
	}
	return nil, errors.Errorf("signing key %s is encrypted under key-encryption key %s, which is not among the keys given (%s): %w",
		kid, kekID, strings.Join(ke.IDs(), ", "), ErrKeyEncryption)
}

// SealKeys encrypts the signing keys still stored in plaintext (written
// before keys were encrypted at rest, or by such a version of authd) under
// enc's first key-encryption key, and returns how many it encrypted. It is
// idempotent and safe to run from several processes at once: each row is
// rewritten only if it is still the plaintext that was read. authd runs it
// at start and on authd migrate.
//
// Errors: temporarily_unavailable; server_error for a row that is not
// base64.
func SealKeys(ctx context.Context, db *sql.DB, enc *KeyEncryption) (int, error) {
	return rewriteKeys(ctx, db, enc, "oauth.SealKeys", `SELECT kid, kek_id, private_key FROM oauth_signing_keys WHERE kek_id = ''`)
}

// ReencryptKeys rewrites every signing key not stored under enc's first
// key-encryption key (including plaintext ones) under it, and returns how
// many it rewrote. After it, key-encryption keys other than the first
// decrypt nothing and can be removed. It is idempotent.
//
// Errors: ErrKeyEncryption (wrapped in a server_error) when a key is
// stored under a key-encryption key enc does not hold — then nothing is
// rewritten; temporarily_unavailable.
func ReencryptKeys(ctx context.Context, db *sql.DB, enc *KeyEncryption) (int, error) {
	return rewriteKeys(ctx, db, enc, "oauth.ReencryptKeys", `SELECT kid, kek_id, private_key FROM oauth_signing_keys WHERE kek_id <> $1`, enc.ID())
}

// rewriteKeys decrypts every row query selects (kid, kek_id, private_key)
// and stores it again under enc's first key-encryption key, each with a
// conditional UPDATE so a concurrent rewrite is not undone. Every row is
// decrypted before any is written.
func rewriteKeys(ctx context.Context, db *sql.DB, enc *KeyEncryption, op, query string, args ...any) (int, error) {
	type row struct {
		kid, kekID, stored string
		der                []byte
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return 0, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.kid, &r.kekID, &r.stored); err != nil {
			rows.Close()
			return 0, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
		todo = append(todo, r)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	for i := range todo {
		if todo[i].der, err = enc.open(todo[i].kid, todo[i].kekID, todo[i].stored); err != nil {
			return 0, errors.E(errors.ServerError, "").WithCause(op, err)
		}
	}
	n := 0
	for _, r := range todo {
		kekID, sealed, err := enc.seal(r.kid, r.der)
		if err != nil {
			return n, errors.E(errors.ServerError, "").WithCause(op, err)
		}
		res, err := db.ExecContext(ctx, `UPDATE oauth_signing_keys SET kek_id = $1, private_key = $2 WHERE kid = $3 AND kek_id = $4 AND private_key = $5`,
			kekID, sealed, r.kid, r.kekID, r.stored)
		if err != nil {
			return n, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
		if m, err := res.RowsAffected(); err == nil && m == 1 {
			n++
		}
	}
	return n, nil
}
