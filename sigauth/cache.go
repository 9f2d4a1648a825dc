package sigauth

import (
	"crypto/sha256"
	"encoding/binary"
	"sync"

	"github.com/authd-dev/authd/authtoken"
)

// verifiedCache remembers signatures that verified, and the key that made
// each, so that a token presented again costs a hash instead of a
// public-key recovery. It holds at most size entries and forgets the
// oldest first. Only successes go in: a failure is never remembered, so
// the cache cannot make a bad signature pass, and its key covers
// everything the verification depended on.
type verifiedCache struct {
	mu   sync.Mutex
	set  map[[32]byte]authtoken.SignerKey
	ring [][32]byte
	next int
}

func newVerifiedCache(size int) *verifiedCache {
	return &verifiedCache{set: make(map[[32]byte]authtoken.SignerKey, size), ring: make([][32]byte, 0, size)}
}

// cacheKey is SHA-256 over the token exactly as sent (which fixes its
// syntax, scheme, signer, timestamp and signature bytes) and the message
// the signature was checked against, with the token's length first so
// that no two inputs share a key.
func cacheKey(token, msg string) [32]byte {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(token)))
	h.Write(n[:])
	h.Write([]byte(token))
	h.Write([]byte(msg))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *verifiedCache) get(k [32]byte) (authtoken.SignerKey, bool) {
	c.mu.Lock()
	signer, ok := c.set[k]
	c.mu.Unlock()
	return signer, ok
}

func (c *verifiedCache) add(k [32]byte, signer authtoken.SignerKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.set[k]; ok {
		return
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, k)
	} else {
		delete(c.set, c.ring[c.next])
		c.ring[c.next] = k
		c.next = (c.next + 1) % len(c.ring)
	}
	c.set[k] = signer
}
