// Package client is the Go SDK for services and wallets that call authd.
//
// It holds what a caller needs beside net/http and golang.org/x/oauth2:
//
//   - Error, authd's error as a Go value, parsed from any of the forms an
//     authd error takes: the JSON body (RFC 6749 §5.2), the query of an
//     authorization redirect (RFC 6749 §4.1.2.1, RFC 9207) and the
//     WWW-Authenticate challenge (RFC 6750 §3, RFC 9110 §11.6.1).
//   - RetryTransport, an http.RoundTripper that waits out 429 and 503
//     answers as their Retry-After says, within a cap, with jitter and a
//     retry budget.
//   - SigningTransport, an http.RoundTripper that signs every attempt of a
//     request with a Bitcoin key (the X-Auth-Token header).
//   - Backups, the encrypted wallet-backup API, with ETag preconditions.
//   - Discover, the authorization server's metadata (RFC 8414), which
//     becomes an oauth2.Config.
//
// The package depends on neither Redis nor SQL nor Prometheus: it is meant
// to be linked into other people's programs.
package client
