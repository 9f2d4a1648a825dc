package sigauth

import "github.com/authd-dev/authd/authtoken"

// Descriptions sent to clients by the server-side checks. Every signature
// failure has authtoken's one description, whichever step failed.
const (
	descMalformedHeader = "Auth token format is invalid; send exactly one X-Auth-Token " +
		"(or Authorization: Bitcoin-Auth) header"
	descMissing        = "X-Auth-Token header is required for Bitcoin authentication"
	descSignature      = "Bitcoin signature verification failed"
	descReplay         = "Auth token was already used; sign every POST, PUT, PATCH and DELETE request anew"
	descLockout        = "Too many failed signature verifications; retry after the indicated delay"
	descBodyUnreadable = "Request body could not be read"
	descUncompressed   = "Auth token format is invalid; sigma signatures by uncompressed keys (5... WIF, signature header 27-30) " +
		"are accepted only for addresses the server is configured with; sign with a compressed key"
	descBindingRequired = "Auth token must sign the bound request target, <METHOD> <absolute URL> " +
		"(e.g. DELETE https://auth.example.com/backup), in a sigma-bound: token or as the requestPath " +
		"of a bitcoin-auth token; this server refuses tokens that sign the path alone for POST, PUT, PATCH, DELETE and /authorize"
)

// Token syntaxes and signature schemes (see authtoken), as Identity.Scheme
// reports them.
const (
	FormatSigma       = authtoken.FormatSigma
	FormatBitcoinAuth = authtoken.FormatBitcoinAuth
	SchemeSigma       = authtoken.SchemeSigma
	SchemeBSM         = authtoken.SchemeBSM
	SchemeBRC77       = authtoken.SchemeBRC77
)

// VerifyMessage checks a Bitcoin signed message, as Bitcoin Core's
// verifymessage does for P2PKH: it is authtoken.VerifyMessage.
//
// Errors (*errors.Error): malformed_auth_token (address or signature
// encoding, detected before any curve work), invalid_signature.
func VerifyMessage(address, message, signature string) error {
	return authtoken.VerifyMessage(address, message, signature)
}

// SignMessage signs message with a mainnet WIF private key: it is
// authtoken.SignMessage.
//
// Errors: a plain error when wif is not a mainnet WIF private key; its
// text never contains the key.
func SignMessage(wif, message string) (string, error) {
	return authtoken.SignMessage(wif, message)
}

// TokenOptions says what Token signs: authtoken.TokenOptions.
type TokenOptions = authtoken.TokenOptions

// Token makes an X-Auth-Token for one request: it is authtoken.Token.
//
// Errors: plain errors, as authtoken.Token's.
func Token(wif string, opts TokenOptions) (string, error) {
	return authtoken.Token(wif, opts)
}
