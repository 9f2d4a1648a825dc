package client

import (
	"net/http"
	"time"
)

// SetRetryHooks replaces t's timer and jitter source.
func SetRetryHooks(t *RetryTransport, after func(time.Duration) (<-chan time.Time, func() bool), jitter func(int64) int64) {
	t.after, t.jitter = after, jitter
}

// FormatChallenge is formatChallenge, for the fuzzer's round trip.
var FormatChallenge = formatChallenge

// Tokens reports the budget's tokens.
func (b *RetryBudget) Tokens() float64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokens
}

var _ http.RoundTripper = (*RetryTransport)(nil)
