package sigauth

import (
	"crypto/sha256"
	"sync"
)

// verifiedCache remembers signatures that verified, so that a token
// presented again costs a hash instead of a public-key recovery. It holds
// at most size entries and forgets the oldest first. Only successes go in:
// a failure is never remembered, so the cache cannot make a bad signature
// pass, and its key covers everything the verification depended on.
type verifiedCache struct {
	mu   sync.Mutex
	set  map[[32]byte]struct{}
	ring [][32]byte
	next int
}

func newVerifiedCache(size int) *verifiedCache {
	return &verifiedCache{set: make(map[[32]byte]struct{}, size), ring: make([][32]byte, 0, size)}
}

// cacheKey is SHA-256 over the scheme, the signer (hash160, or the
// compressed key for BRC-77), the message and the signature bytes, with
// lengths so that no two inputs share a key.
func cacheKey(tok *ParsedToken, msg string) [32]byte {
	h := sha256.New()
	h.Write([]byte{byte(len(tok.Scheme))})
	h.Write([]byte(tok.Scheme))
	if tok.Scheme == SchemeBRC77 {
		h.Write(tok.pub[:])
		h.Write([]byte{byte(len(tok.env))})
		h.Write(tok.env)
	} else {
		h.Write(tok.hash160[:])
		h.Write(tok.compact[:])
	}
	h.Write([]byte(msg))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

func (c *verifiedCache) has(k [32]byte) bool {
	c.mu.Lock()
	_, ok := c.set[k]
	c.mu.Unlock()
	return ok
}

func (c *verifiedCache) add(k [32]byte) {
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
	c.set[k] = struct{}{}
}
