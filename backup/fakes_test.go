package backup

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/authd-dev/authd/errors"
)

// fakeWallet stands in for sigauth's request verifier. It checks what the
// real one checks, with an HMAC where sigauth has a Bitcoin signature:
// the token names a registered signer, covers the method, the request
// target and the SHA-256 of the body, and an unsafe request is accepted
// once. Like a verifier that does not care about limits, it reads the
// whole body and leaves it consumed.
//
// Token: "fake.<address>.<nonce>.<hex HMAC-SHA256(secret, message)>",
// message "<method> <request-uri>|<nonce>|<hex sha256(body) or empty>".
type fakeWallet struct {
	mu      sync.Mutex
	secrets map[string][]byte
	used    map[string]bool
	calls   atomic.Int64
}

func newFakeWallet() *fakeWallet {
	return &fakeWallet{secrets: map[string][]byte{}, used: map[string]bool{}}
}

// register makes address a known signer and returns it.
func (f *fakeWallet) register(address string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.secrets[address] == nil {
		s := make([]byte, 32)
		rand.Read(s)
		f.secrets[address] = s
	}
	return address
}

func bodyHash(body []byte) string {
	if len(body) == 0 {
		return ""
	}
	h := sha256.Sum256(body)
	return hex.EncodeToString(h[:])
}

// sign returns a fresh token for a request; bodyHashHex as bodyHash makes
// it (callers streaming a huge body hash it themselves).
func (f *fakeWallet) sign(address, method, uri, bodyHashHex string) string {
	f.mu.Lock()
	secret := f.secrets[address]
	f.mu.Unlock()
	if secret == nil { // an unknown signer signs with a key of its own
		secret = []byte("not registered")
	}
	var n [8]byte
	rand.Read(n[:])
	nonce := hex.EncodeToString(n[:])
	return "fake." + address + "." + nonce + "." + mac(secret, method, uri, nonce, bodyHashHex)
}

func mac(secret []byte, method, uri, nonce, bh string) string {
	m := hmac.New(sha256.New, secret)
	io.WriteString(m, method+" "+uri+"|"+nonce+"|"+bh)
	return hex.EncodeToString(m.Sum(nil))
}

func (f *fakeWallet) AuthenticateWallet(r *http.Request) (string, error) {
	f.calls.Add(1)
	tok := r.Header.Get("X-Auth-Token")
	if tok == "" {
		if v := r.Header.Get("Authorization"); len(v) > len("Bitcoin-Auth ") && strings.EqualFold(v[:len("Bitcoin-Auth ")], "Bitcoin-Auth ") {
			tok = v[len("Bitcoin-Auth "):]
		}
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 4 || parts[0] != "fake" {
		return "", errors.E(errors.MalformedAuthToken, "Auth token format is invalid")
	}
	address, nonce, sig := parts[1], parts[2], parts[3]
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return "", errors.E(errors.InvalidRequest, "body unreadable").WithCause("fakeWallet", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	secret := f.secrets[address]
	if secret == nil || !hmac.Equal([]byte(sig), []byte(mac(secret, r.Method, r.RequestURI, nonce, bodyHash(body)))) {
		return "", errors.E(errors.InvalidSignature, "Bitcoin signature verification failed")
	}
	switch r.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if f.used[tok] {
			return "", errors.E(errors.InvalidTimestamp, "Auth token timestamp is outside the accepted window or was already used")
		}
		f.used[tok] = true
	}
	return address, nil
}

// fakeBearer stands in for oauth's access-token validation: known tokens
// with a subject and scopes.
type fakeBearer struct {
	mu     sync.Mutex
	tokens map[string]bearerGrant
}

type bearerGrant struct {
	subject string
	scopes  []string
}

func newFakeBearer() *fakeBearer { return &fakeBearer{tokens: map[string]bearerGrant{}} }

// issue returns a new access token for subject with scopes.
func (f *fakeBearer) issue(subject string, scopes ...string) string {
	var b [16]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	f.mu.Lock()
	f.tokens[tok] = bearerGrant{subject, scopes}
	f.mu.Unlock()
	return tok
}

func (f *fakeBearer) AuthenticateBearer(r *http.Request, scope string) (string, error) {
	v := r.Header.Get("Authorization")
	if len(v) < 7 || !strings.EqualFold(v[:7], "Bearer ") {
		return "", errors.E(errors.InvalidToken, "The access token is missing, malformed, expired or revoked")
	}
	f.mu.Lock()
	g, ok := f.tokens[strings.TrimSpace(v[7:])]
	f.mu.Unlock()
	if !ok {
		return "", errors.E(errors.InvalidToken, "The access token is missing, malformed, expired or revoked")
	}
	for _, s := range g.scopes {
		if s == scope {
			return g.subject, nil
		}
	}
	// Like a careless adapter, leave Scope unset: the service fills it in.
	return "", errors.E(errors.InsufficientScope, "The access token does not carry the scope this resource requires")
}
