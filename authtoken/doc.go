// Package authtoken makes and checks X-Auth-Tokens, the Bitcoin-signed
// request credentials authd accepts, without any I/O: it is what a wallet
// or an SDK needs to sign requests, and what a server builds its verifier
// on. It imports no HTTP server, no Redis and no metrics.
//
// # Tokens
//
// A token proves that the holder of a Bitcoin key signed one request. Two
// syntaxes carry it, in the X-Auth-Token header (or Authorization:
// Bitcoin-Auth <token>):
//
//	sigma:<address>:<timestamp>|<signature>           unbound form
//	sigma-bound:<address>:<timestamp>|<signature>     bound form
//	<pubkey>|<bsm|brc77>|<timestamp>|<requestTarget>|<signature>
//
// The first two are read by splitting on the first two colons (timestamps
// hold colons) and then on the last bar; the third is the npm bitcoin-auth
// library's, exactly five bar-separated parts. The address is a mainnet
// P2PKH address, the pubkey 66 hex digits of a compressed key, the
// timestamp RFC 3339 UTC (2026-11-21T22:00:00.000Z) and the signature a
// base64 Bitcoin Signed Message (BSM) signature or a BRC-77 envelope.
//
// Each signs the UTF-8 message
//
//	<requestTarget>|<timestamp>|<bodyHash>
//
// where bodyHash is lowercase hex SHA-256 of the body ("" for none), and
// requestTarget is one of two forms:
//
//   - unbound: the request's path and query exactly as sent, e.g.
//     "/backup". Such a token is good for any method, at any server that
//     knows the key, for the few minutes around its timestamp.
//   - bound: "<METHOD> <absolute URL>", e.g.
//     "DELETE https://auth.example.com/backup", the URL being the
//     server's issuer followed by the path and query as sent
//     (BoundTarget). It is good for that method at that server only.
//
// A sigma token does not carry the target, so its first field says which
// form it signed (sigma or sigma-bound) and a verifier checks one message
// only. A bitcoin-auth token carries the target in its requestPath field,
// which is how the bitcoin-auth library produces the bound form: pass
// "DELETE https://auth.example.com/backup" as its requestPath.
//
// # Making tokens
//
// Token, or a Signer for many requests, makes a token from a WIF private
// key and TokenOptions: the bound form when URL (with Method) is set, the
// unbound form when RequestPath is. SignMessage and VerifyMessage are
// Bitcoin Core's signmessage and verifymessage for P2PKH addresses.
//
// # Checking tokens
//
// ParseToken checks syntax only. Check tests the public key, the time
// window and the request target against a Request; VerifySignature tests
// the signature and returns the signer's public key. VerifyToken does all
// three. None of them remembers anything: single use (a replay guard) and
// lockouts after failures belong to a server (authd's sigauth package).
//
// Errors that reach clients are *errors.Error values of the error model
// (malformed_auth_token, invalid_public_key, invalid_signature,
// invalid_timestamp); mistakes in signing options are plain errors.
package authtoken
