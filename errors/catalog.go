package errors

import (
	"slices"
)

// The codes. RFC 6749 §4.1.2.1 and §5.2 define the OAuth ones, RFC 6750 §3.1
// the Bearer ones, RFC 7009 §2.2.1 unsupported_token_type; the rest are
// authd's. The list is append-only.
const (
	InvalidRequest          Code = "invalid_request"
	UnauthorizedClient      Code = "unauthorized_client"
	AccessDenied            Code = "access_denied"
	UnsupportedResponseType Code = "unsupported_response_type"
	InvalidScope            Code = "invalid_scope"
	ServerError             Code = "server_error"
	TemporarilyUnavailable  Code = "temporarily_unavailable"
	InvalidClient           Code = "invalid_client"
	InvalidGrant            Code = "invalid_grant"
	UnsupportedGrantType    Code = "unsupported_grant_type"
	UnsupportedTokenType    Code = "unsupported_token_type"
	InvalidToken            Code = "invalid_token"
	InsufficientScope       Code = "insufficient_scope"
	MissingAuthToken        Code = "missing_auth_token"
	MalformedAuthToken      Code = "malformed_auth_token"
	InvalidPublicKey        Code = "invalid_public_key"
	InvalidSignature        Code = "invalid_signature"
	InvalidTimestamp        Code = "invalid_timestamp"
	BackupNotFound          Code = "backup_not_found"
	BackupTooLarge          Code = "backup_too_large"
	InvalidBackupFormat     Code = "invalid_backup_format"
	EncryptionRequired      Code = "encryption_required"
	BackupConflict          Code = "backup_conflict"
	RateLimitExceeded       Code = "rate_limit_exceeded"
	GoogleAuthFailed        Code = "google_auth_failed"
	GitHubAuthFailed        Code = "github_auth_failed"
	NotFound                Code = "not_found"
	MethodNotAllowed        Code = "method_not_allowed"
	RequestTooLarge         Code = "request_too_large"
)

// The OpenID Connect authorization errors
// (OpenID Connect Core 1.0 §3.1.2.6).
const (
	LoginRequired            Code = "login_required"
	ConsentRequired          Code = "consent_required"
	InteractionRequired      Code = "interaction_required"
	AccountSelectionRequired Code = "account_selection_required"
	RequestNotSupported      Code = "request_not_supported"
	RequestURINotSupported   Code = "request_uri_not_supported"
	RegistrationNotSupported Code = "registration_not_supported"
)

// The client onboarding errors: RFC 8707 §2 invalid_target, and the
// client registration errors of RFC 7591 §3.2.2.
const (
	InvalidTarget            Code = "invalid_target"
	InvalidRedirectURI       Code = "invalid_redirect_uri"
	InvalidClientMetadata    Code = "invalid_client_metadata"
	InvalidSoftwareStatement Code = "invalid_software_statement"
)

// Entry is one code's row in the catalog: what the status is, where it is
// used, and what a client developer should do about it. The page at
// /docs/errors and /docs/errors.json are generated from these rows.
type Entry struct {
	Code   Code   `json:"code"`
	Status int    `json:"status"`
	Title  string `json:"title"`
	// Description is the default error_description, and for statuses >= 500
	// the only one ever sent.
	Description string   `json:"description"`
	UsedBy      []string `json:"used_by"`
	Headers     []string `json:"headers,omitempty"`
	// Retryable says whether sending the same request again can succeed.
	Retryable bool     `json:"retryable"`
	Retry     string   `json:"retry"`
	Causes    []string `json:"causes"`
	Fix       string   `json:"fix"`
	// Redirectable codes may be delivered to a validated redirect_uri
	// (RFC 6749 §4.1.2.1); all others are answered directly.
	Redirectable bool `json:"redirectable"`
}

// catalog is the source of truth for every code. Codes are wire values:
// append new codes at the end, and never change a published status.
var catalog = []Entry{
	{
		Code: InvalidRequest, Status: 400,
		Title:       "Invalid request",
		Description: "The request is missing a required parameter, repeats a parameter, or has a malformed one",
		UsedBy:      []string{"all endpoints"},
		Retry:       "No. Fix the parameter named in error_description first.",
		Causes: []string{
			"A required parameter is missing (the description names it, e.g. \"Missing required parameter: client_id\").",
			"A parameter appears twice in the query or the form.",
			"A parameter has the wrong syntax, e.g. a code_verifier shorter than 43 characters.",
			"A public client sent no PKCE code_challenge, or used the plain method.",
			"Two client authentication methods in one token request (Basic header and client_secret in the form).",
			"An unknown client_id or unregistered redirect_uri at /authorize (never redirected).",
			"A consent or sign-out form that expired (AUTHD_LOGIN_TTL) or was already answered; the page says to start again from the application.",
			"At /logout: an id_token_hint that is not an ID Token authd issued, a client_id other than the hint's audience, an unknown client_id, or a post_logout_redirect_uri the client did not register exactly (authd client create --post-logout-redirect-uri) or sent without client_id or id_token_hint. Answered on a page, never redirected.",
		},
		Fix:          "Read error_description: it names the parameter. Send each parameter once, with the syntax the RFC requires.",
		Redirectable: true,
	},
	{
		Code: UnauthorizedClient, Status: 400,
		Title:        "Client not authorized for this grant",
		Description:  "The client is not allowed to use this grant type or response type",
		UsedBy:       []string{"/authorize", "/token"},
		Retry:        "No. The client's registration must change first.",
		Causes:       []string{"The client was registered without this grant (client_credentials must be asked for at registration)."},
		Fix:          "Register the client with the grant it needs: authd client create --grant authorization_code,refresh_token,client_credentials.",
		Redirectable: true,
	},
	{
		Code: AccessDenied, Status: 403,
		Title:       "Access denied",
		Description: "The resource owner or authorization server denied the request",
		UsedBy:      []string{"/authorize", "/authorize/login", "/authorize/consent", "/logout"},
		Retry:       "Only if the user chooses to sign in again.",
		Causes: []string{
			"The user declined to sign in, or chose Deny on the consent page (redirected to the client).",
			"Sign-in with Google or GitHub failed; error_uri then points at google_auth_failed or github_auth_failed.",
			"The sign-in form was posted from another site (a foreign Origin, or Sec-Fetch-Site: cross-site), or from a browser the sign-in page was not shown to (its login cookie is missing or belongs to another sign-in). Such a post could sign a person in to someone else's account (login CSRF), so it is refused, answered directly and never redirected; the sign-in it names stays usable in the browser that opened it.",
			"A consent or sign-out form was posted from another site, from another browser, or after the sign-in session it belongs to ended (signed out, expired, revoked, or replaced by a new sign-in). Answered directly; the form stays usable in its own browser and session.",
		},
		Fix:          "Show the user that sign-in did not complete and offer to start again.",
		Redirectable: true,
	},
	{
		Code: UnsupportedResponseType, Status: 400,
		Title:        "Unsupported response type",
		Description:  "Only response_type=code is supported",
		UsedBy:       []string{"/authorize"},
		Retry:        "No.",
		Causes:       []string{"response_type was token (implicit flow) or anything other than code."},
		Fix:          "Use the authorization-code flow with PKCE: response_type=code.",
		Redirectable: true,
	},
	{
		Code: InvalidScope, Status: 400,
		Title:        "Invalid scope",
		Description:  "The requested scope is invalid, unknown, or exceeds what the client may ask for",
		UsedBy:       []string{"/authorize", "/token"},
		Retry:        "No. Ask for fewer scopes.",
		Causes:       []string{"A scope the client was not registered for.", "A refresh request asking for more scope than the original grant.", "A scope value outside the RFC 6749 §3.3 syntax."},
		Fix:          "Ask only for scopes registered for the client; omit scope to get all of them. A refresh may only narrow scope.",
		Redirectable: true,
	},
	{
		Code: ServerError, Status: 500,
		Title:        "Internal server error",
		Description:  "The server encountered an unexpected condition",
		UsedBy:       []string{"all endpoints"},
		Retryable:    true,
		Retry:        "Yes, with backoff. If it persists, report the request_id to the operator.",
		Causes:       []string{"A bug or an unexpected failure inside authd. The cause is logged with the request_id; it is never sent."},
		Fix:          "Retry later. Operators: search the logs for the request_id.",
		Redirectable: true,
	},
	{
		Code: TemporarilyUnavailable, Status: 503,
		Title:       "Temporarily unavailable",
		Description: "The service is temporarily unable to handle the request; retry after the indicated delay",
		UsedBy:      []string{"all endpoints"},
		Headers:     []string{"Retry-After"},
		Retryable:   true,
		Retry:       "Yes, after Retry-After seconds (also in retry_after).",
		Causes:      []string{"Redis or the database is unreachable or timed out.", "The server is shutting down."},
		Fix:         "Wait retry_after seconds and send the request again. Operators: check /readyz.",
	},
	{
		Code: InvalidClient, Status: 401,
		Title:       "Client authentication failed",
		Description: "Client authentication failed",
		UsedBy:      []string{"/token", "/revoke", "/introspect"},
		Headers:     []string{`WWW-Authenticate: Basic realm="authd", or the auth-scheme the client used in Authorization (RFC 6749 §5.2), e.g. Bearer realm="authd"`},
		Retry:       "No. Fix the credentials.",
		Causes:      []string{"Unknown client_id.", "Wrong client_secret.", "A confidential client sent no credentials.", "A public client on an endpoint that needs client authentication."},
		Fix:         "Send client_id and client_secret with HTTP Basic (each form-urlencoded first, RFC 6749 §2.3.1) or in the form body, not both.",
	},
	{
		Code: InvalidGrant, Status: 400,
		Title:       "Invalid grant",
		Description: "The authorization code or refresh token is invalid, expired, revoked, or was issued to another client",
		UsedBy:      []string{"/token"},
		Retry:       "No. Start a new authorization.",
		Causes: []string{
			"The code expired (10 minutes) or was already used; a reused code also revokes the tokens issued from it.",
			"The refresh token expired, was revoked, was already rotated, or belongs to another client.",
			"PKCE: the code_verifier does not match the code_challenge, is missing, or was sent for a code issued without a challenge.",
			"The redirect_uri differs from the one in the authorization request.",
		},
		Fix: "Run the authorization flow again. Redeem each code once, and use only the newest refresh token.",
	},
	{
		Code: UnsupportedGrantType, Status: 400,
		Title:       "Unsupported grant type",
		Description: "The grant type is not supported",
		UsedBy:      []string{"/token"},
		Retry:       "No.",
		Causes:      []string{"grant_type was not authorization_code, refresh_token or client_credentials. A missing grant_type is invalid_request."},
		Fix:         "Use authorization_code, refresh_token or client_credentials.",
	},
	{
		Code: UnsupportedTokenType, Status: 400,
		Title:       "Unsupported token type",
		Description: "The server does not support revocation of this token type",
		UsedBy:      []string{"/revoke"},
		Retry:       "No.",
		Causes:      []string{"token_type_hint named a token type authd does not issue (RFC 7009 §2.2.1)."},
		Fix:         "Use token_type_hint=access_token or refresh_token, or omit it.",
	},
	{
		Code: InvalidToken, Status: 401,
		Title:       "Invalid access token",
		Description: "The access token is missing, malformed, expired or revoked",
		UsedBy:      []string{"/userinfo", "/backup (Bearer)"},
		Headers:     []string{`WWW-Authenticate: Bearer realm="authd", error="invalid_token", … (only realm when no credentials were sent, RFC 6750 §3.1)`},
		Retry:       "No. Refresh the access token, then retry once.",
		Causes:      []string{"No Authorization: Bearer header.", "The token expired, was revoked, or was not issued by this server.", "The token was sent in the query string, which is refused."},
		Fix:         "Send a current access token in the Authorization header: Authorization: Bearer <token>. Use the refresh token to get a new one.",
	},
	{
		Code: InsufficientScope, Status: 403,
		Title:       "Insufficient scope",
		Description: "The access token does not carry the scope this resource requires",
		UsedBy:      []string{"/userinfo", "/backup (Bearer)"},
		Headers:     []string{`WWW-Authenticate: Bearer realm="authd", error="insufficient_scope", scope="…"`},
		Retry:       "No. A new authorization with the scope is needed.",
		Causes:      []string{"The token lacks profile (for /userinfo) or backup (for /backup)."},
		Fix:         "Ask for the scope named in the WWW-Authenticate header when authorizing.",
	},
	{
		Code: MissingAuthToken, Status: 401,
		Title:       "Bitcoin authentication required",
		Description: "X-Auth-Token header is required for Bitcoin authentication",
		UsedBy:      []string{"Bitcoin-authenticated routes (/backup, /authorize)"},
		Headers:     []string{`WWW-Authenticate: Bitcoin-Auth realm="authd"`},
		Retry:       "No. Sign the request first.",
		Causes:      []string{"Neither X-Auth-Token nor Authorization: Bitcoin-Auth was sent."},
		Fix:         "Sign the request with your key (for example with authd token sign) and send the token in X-Auth-Token.",
	},
	{
		Code: MalformedAuthToken, Status: 400,
		Title:       "Malformed auth token",
		Description: "Auth token format is invalid; expected sigma[-bound]:<address>:<timestamp>|<signature> or <pubkey>|<bsm|brc77>|<timestamp>|<requestPath>|<signature>",
		UsedBy:      []string{"Bitcoin-authenticated routes"},
		Retry:       "No.",
		Causes: []string{
			"The token has the wrong number of parts or an unknown scheme.",
			"The address is not a base58check mainnet P2PKH address (starting with 1).",
			"The signature is not 88 characters of strict, padded base64 (65 bytes).",
			"A bitcoin-auth requestPath with a space is not the bound form <METHOD> <absolute http(s) URL>.",
			"The server requires the bound form (AUTHD_SIGAUTH_REQUIRE_BINDING) and the token signs the path alone, on a POST, PUT, PATCH or DELETE or at /authorize.",
			"A sigma signature by an uncompressed key (header 27-30) for an address the server is not configured to accept from uncompressed keys (AUTHD_SIGAUTH_UNCOMPRESSED_ADDRESSES).",
		},
		Fix: "Build the token exactly in one of the two syntaxes; the bitcoin-auth npm library and authd token sign do. " +
			"Sign the bound form, <METHOD> <absolute URL> such as DELETE https://auth.example.com/backup: in a sigma-bound: token, " +
			"or as the requestPath of a bitcoin-auth token (authd token sign does by default). Sign with a compressed key.",
	},
	{
		Code: InvalidPublicKey, Status: 400,
		Title:       "Invalid public key",
		Description: "Public key is not a valid secp256k1 point",
		UsedBy:      []string{"Bitcoin-authenticated routes"},
		Retry:       "No.",
		Causes:      []string{"The pubkey part is not 66 hex characters of a compressed key (02/03 prefix) on the secp256k1 curve."},
		Fix:         "Send the compressed public key of the signing key, hex encoded.",
	},
	{
		Code: InvalidSignature, Status: 401,
		Title:       "Invalid signature",
		Description: "Bitcoin signature verification failed",
		UsedBy:      []string{"Bitcoin-authenticated routes"},
		Headers:     []string{`WWW-Authenticate: Bitcoin-Auth realm="authd"`},
		Retry:       "No. Repeated failures lock the client out for a while (rate_limit_exceeded).",
		Causes: []string{
			"The signature was made by another key, or over another message.",
			"The request path, query or body differs from what was signed (the message is <target>|<timestamp>|<sha256(body) hex>, the target being <path?query> or, bound, <METHOD> <issuer><path?query>).",
			"A bound token for another method, another server (issuer) or another request target.",
			"The signature uses a segwit header (BIP-137 35-42); only P2PKH signatures are accepted.",
			"The key's uncompressed address is the one configured for it, and the token names its compressed address.",
		},
		Fix: "Sign exactly <target>|<timestamp>|<lowercase hex SHA-256 of the body, or empty> with the key of the address, " +
			"where target is the path and query as sent or, in the bound form, <METHOD> <issuer URL><path and query as sent>.",
	},
	{
		Code: InvalidTimestamp, Status: 401,
		Title:       "Invalid or replayed timestamp",
		Description: "Auth token timestamp is outside the accepted window or was already used",
		UsedBy:      []string{"Bitcoin-authenticated routes"},
		Headers:     []string{`WWW-Authenticate: Bitcoin-Auth realm="authd"`},
		Retry:       "Only with a newly signed token.",
		Causes:      []string{"The timestamp is more than the window (5 minutes by default) from the server's clock, in either direction.", "The timestamp is not RFC 3339 UTC.", "The same signed POST, PUT, PATCH or DELETE, or signed sign-in at /authorize, was sent twice, also with the signature re-encoded (its high-S twin, another header byte, the other token syntax): once is per signing key and signed message.", "An unbound token already used for a GET or HEAD was sent with POST, PUT, PATCH or DELETE: that form does not sign the method, so each unsafe request needs a token of its own."},
		Fix:         "Sign each request just before sending it, with an accurate clock, and never resend a signed unsafe request.",
	},
	{
		Code: BackupNotFound, Status: 404,
		Title:       "Backup not found",
		Description: "No backup found for this user",
		UsedBy:      []string{"/backup"},
		Retry:       "No.",
		Causes:      []string{"This identity has never stored a backup, or deleted it."},
		Fix:         "Store a backup with PUT /backup first.",
	},
	{
		Code: BackupTooLarge, Status: 413,
		Title:       "Backup too large",
		Description: "Backup exceeds the 1 MiB limit (1048576 bytes)",
		UsedBy:      []string{"/backup"},
		Retry:       "No.",
		Causes:      []string{"The request body is over 1,048,576 bytes."},
		Fix:         "Store only the encrypted wallet secrets; a backup made by bitcoin-backup is a few kilobytes.",
	},
	{
		Code: InvalidBackupFormat, Status: 400,
		Title:       "Invalid backup format",
		Description: "Backup must be strict base64 of salt(16) || iv(12) || AES-256-GCM ciphertext, at least 44 bytes decoded",
		UsedBy:      []string{"/backup"},
		Retry:       "No.",
		Causes:      []string{"The body is not strict, padded base64.", "The decoded data is shorter than 44 bytes."},
		Fix:         "Send the string the bitcoin-backup library's encrypt function returns, unchanged.",
	},
	{
		Code: EncryptionRequired, Status: 400,
		Title:       "Encryption required",
		Description: "Backup looks like unencrypted key material; encrypt it on the client before upload",
		UsedBy:      []string{"/backup"},
		Retry:       "No.",
		Causes:      []string{"The body is JSON, a WIF private key, an xprv/tprv, or a mnemonic word list.", "The decoded data has far too little entropy to be ciphertext."},
		Fix:         "Encrypt the backup on the client (bitcoin-backup does) and upload only the ciphertext. authd never accepts plaintext keys.",
	},
	{
		Code: BackupConflict, Status: 412,
		Title:       "Backup changed",
		Description: "The stored backup does not match the request's precondition (If-Match or If-None-Match)",
		UsedBy:      []string{"/backup"},
		Retry:       "Only after fetching the current backup and its ETag.",
		Causes:      []string{"If-Match named an ETag that is no longer current: another device wrote first.", "If-None-Match: * was sent and a backup already exists."},
		Fix:         "GET /backup, merge, and PUT again with If-Match set to the new ETag.",
	},
	{
		Code: RateLimitExceeded, Status: 429,
		Title:       "Rate limit exceeded",
		Description: "Too many requests; retry after the indicated delay",
		UsedBy:      []string{"every rate-limited route", "Bitcoin authentication lockout"},
		Headers:     []string{"Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"},
		Retryable:   true,
		Retry:       "Yes, after retry_after seconds.",
		Causes: []string{
			"More requests than the route's policy allows in its window, per client IP or per subject (RateLimit-Policy names the policies).",
			"A daily quota of the client IP is spent: the body bytes of PUT /backup (backup_ip_bytes) or the backups created (backup_ip_creates); they reset at 00:00 UTC.",
			"Repeated failed signature verifications: 5 failures lock out for 30 s, then 2 min, then 10 min.",
		},
		Fix: "Wait retry_after seconds. Spread requests out, and do not retry failed signatures in a loop. " +
			"Operators: the limits are AUTHD_RATE_LIMITS, AUTHD_BACKUP_IP_DAILY_BYTES and AUTHD_BACKUP_IP_DAILY_CREATES; clients behind one address share them.",
	},
	{
		Code: GoogleAuthFailed, Status: 401,
		Title:       "Google sign-in failed",
		Description: "Google authentication was unsuccessful",
		UsedBy:      []string{"/callback/google"},
		Headers:     []string{`WWW-Authenticate: Google realm="authd" (the sign-in to start again; every 401 names one, RFC 9110 §15.5.2)`},
		Retry:       "Only by starting the sign-in again.",
		Causes: []string{
			"provider_error is Google's own error, e.g. access_denied when the user cancelled.",
			"provider_error invalid_state: the sign-in took too long or the callback was opened twice.",
			"provider_error server_error or timeout: Google could not be reached or answered badly.",
		},
		Fix: "Start the authorization again from the client application.",
	},
	{
		Code: GitHubAuthFailed, Status: 401,
		Title:       "GitHub sign-in failed",
		Description: "GitHub authentication was unsuccessful",
		UsedBy:      []string{"/callback/github"},
		Headers:     []string{`WWW-Authenticate: GitHub realm="authd" (the sign-in to start again; every 401 names one, RFC 9110 §15.5.2)`},
		Retry:       "Only by starting the sign-in again.",
		Causes: []string{
			"provider_error is GitHub's own error, e.g. access_denied when the user cancelled.",
			"provider_error invalid_state: the sign-in took too long or the callback was opened twice.",
			"provider_error server_error or timeout: GitHub could not be reached or answered badly.",
		},
		Fix: "Start the authorization again from the client application.",
	},
	{
		Code: NotFound, Status: 404,
		Title:       "Not found",
		Description: "No such endpoint",
		UsedBy:      []string{"unknown routes"},
		Retry:       "No.",
		Causes:      []string{"The path is not one of authd's endpoints."},
		Fix:         "Check the path against the server metadata at /.well-known/oauth-authorization-server.",
	},
	{
		Code: MethodNotAllowed, Status: 405,
		Title:       "Method not allowed",
		Description: "The endpoint does not support this HTTP method",
		UsedBy:      []string{"every route"},
		Headers:     []string{"Allow"},
		Retry:       "No.",
		Causes:      []string{"For example GET /token (the token endpoint takes POST only)."},
		Fix:         "Use one of the methods listed in the Allow header.",
	},
	{
		Code: RequestTooLarge, Status: 413,
		Title:       "Request too large",
		Description: "The request body exceeds this endpoint's limit",
		UsedBy:      []string{"every route with a body"},
		Retry:       "No.",
		Causes:      []string{"A form post over 64 KiB, or a body over the route's limit."},
		Fix:         "Send a smaller body; OAuth form posts are a few hundred bytes.",
	},
	{
		Code: LoginRequired, Status: 400,
		Title:       "Sign-in required",
		Description: "The user must sign in, and the request forbids showing a page",
		UsedBy:      []string{"/authorize (OpenID Connect)"},
		Retry:       "Yes, without prompt=none, so the user can sign in.",
		Causes: []string{
			"prompt=none on an authorization request that is not signed by the wallet (X-Auth-Token), from a browser without a live sign-in session: it never signed in, signed out, its session expired (AUTHD_SESSION_IDLE unused, AUTHD_SESSION_MAX after sign-in) or was revoked, or sessions are off. Signing in would need the login page.",
			"prompt=none with a max_age shorter than the time since the session's sign-in.",
			"prompt=none with provider=google or provider=github: the provider's pages would be needed.",
			"id_token_hint names another user than the one who signed in, or than the browser session's user under prompt=none.",
		},
		Fix:          "Send the authorization request again without prompt=none, or sign it with the wallet; with id_token_hint, let the user it names sign in.",
		Redirectable: true,
	},
	{
		Code: ConsentRequired, Status: 400,
		Title:        "Consent required",
		Description:  "The user must consent, and the request forbids showing a page",
		UsedBy:       []string{"/authorize (OpenID Connect)"},
		Retry:        "Yes, without prompt=none, so the user can consent.",
		Causes:       []string{"prompt=none, the browser's sign-in session could answer, but its user has not allowed this client every scope requested (consent is remembered per user, client and scope). A wallet-signed authorization request is consent in itself and never gets this error."},
		Fix:          "Send the authorization request again without prompt=none: the consent page lets the user allow the scopes, and later requests for them succeed under prompt=none.",
		Redirectable: true,
	},
	{
		Code: InteractionRequired, Status: 400,
		Title:        "Interaction required",
		Description:  "The request needs a page the user must act on, and it forbids showing one",
		UsedBy:       []string{"/authorize (OpenID Connect)"},
		Retry:        "Yes, without prompt=none.",
		Causes:       []string{"prompt=none, and authd would need to show a page other than sign-in or consent."},
		Fix:          "Send the authorization request again without prompt=none.",
		Redirectable: true,
	},
	{
		Code: AccountSelectionRequired, Status: 400,
		Title:        "Account selection required",
		Description:  "The user must choose an account, and the request forbids showing a page",
		UsedBy:       []string{"/authorize (OpenID Connect)"},
		Retry:        "Yes, without prompt=none.",
		Causes:       []string{"prompt=none, and more than one account could answer the request, so the user would have to choose."},
		Fix:          "Send the authorization request again without prompt=none, or with an id_token_hint or login_hint naming the account.",
		Redirectable: true,
	},
	{
		Code: RequestNotSupported, Status: 400,
		Title:        "Request objects not supported",
		Description:  "The request parameter (a request object) is not supported",
		UsedBy:       []string{"/authorize"},
		Retry:        "No. Send the parameters in the query instead.",
		Causes:       []string{"The authorization request carried a request parameter: a signed or plain request object (OpenID Connect Core 1.0 §6.1, RFC 9101). Without a registered redirect_uri in the query the error is answered directly, 400."},
		Fix:          "Send every authorization parameter (client_id, redirect_uri, scope, state, nonce, …) in the query string. The server metadata says request_parameter_supported: false.",
		Redirectable: true,
	},
	{
		Code: RequestURINotSupported, Status: 400,
		Title:        "request_uri not supported",
		Description:  "The request_uri parameter is not supported",
		UsedBy:       []string{"/authorize"},
		Retry:        "No. Send the parameters in the query instead.",
		Causes:       []string{"The authorization request carried request_uri: a request object by reference, or a pushed authorization request (OpenID Connect Core 1.0 §6.2, RFC 9126). Without a registered redirect_uri in the query the error is answered directly, 400."},
		Fix:          "Send every authorization parameter in the query string. The server metadata says request_uri_parameter_supported: false.",
		Redirectable: true,
	},
	{
		Code: RegistrationNotSupported, Status: 400,
		Title:        "registration parameter not supported",
		Description:  "The registration parameter is not supported",
		UsedBy:       []string{"/authorize"},
		Retry:        "No.",
		Causes:       []string{"The authorization request carried registration: client metadata for a client that is not registered (OpenID Connect Core 1.0 §7.2.1). Without a registered redirect_uri in the query the error is answered directly, 400."},
		Fix:          "Register the client first (authd client create, or dynamic registration at /register where the server offers it) and send its client_id.",
		Redirectable: true,
	},
	{
		Code: InvalidTarget, Status: 400,
		Title:       "Invalid target",
		Description: "The requested resource is invalid, unknown, or not one this client may ask for",
		UsedBy:      []string{"/authorize", "/token"},
		Retry:       "No. Ask only for resources the client may use.",
		Causes: []string{
			"A resource parameter (RFC 8707) that is not an absolute URI, or that has a fragment.",
			"A resource that is neither registered for the client (authd client create --resource) nor served by the whole server (AUTHD_RESOURCES).",
			"A token request whose resource was not granted by the authorization it redeems: a code exchange or refresh may repeat or narrow the resources of the authorization, never widen them.",
			"A resource that was allowed when the grant was made but is no longer allowed for the client.",
		},
		Fix:          "Send each resource as an absolute URI without a fragment, exactly as the operator registered it (the server metadata lists the server-wide ones in protected_resources). On refresh, send only resources of the original authorization, or none for all of them.",
		Redirectable: true,
	},
	{
		Code: InvalidRedirectURI, Status: 400,
		Title:       "Invalid redirect URI",
		Description: "One or more redirect URIs of the client registration are invalid",
		UsedBy:      []string{"/register", "/register/{client_id}"},
		Retry:       "No. Fix the redirect URIs.",
		Causes: []string{
			"redirect_uris is missing, though the client registers the authorization_code grant.",
			"A redirect URI that is not absolute, has a fragment, user information or a wildcard.",
			"A web client (application_type web, or no application_type and no loopback or private-use redirect URI) with a redirect URI that is not https.",
			"A native client with a redirect URI other than loopback http (127.0.0.1, [::1], localhost, any port), a private-use scheme in reverse-domain form (com.example.app:/callback), or https.",
		},
		Fix: "Register absolute redirect URIs without fragments: https for web clients; for native clients (application_type native) loopback http, a private-use scheme or https (RFC 8252).",
	},
	{
		Code: InvalidClientMetadata, Status: 400,
		Title:       "Invalid client metadata",
		Description: "A client metadata field is invalid, or the client's metadata document could not be used",
		UsedBy:      []string{"/register", "/register/{client_id}", "/authorize and /token for a client_id that is a URL (Client ID Metadata Documents)"},
		Retry:       "No. Fix the metadata named in error_description.",
		Causes: []string{
			"A registration field of the wrong type, or a value authd does not support: a grant type other than authorization_code, refresh_token or client_credentials, a response type other than code, grant_types and response_types that do not match, a token_endpoint_auth_method other than none, client_secret_basic or client_secret_post, a scope the server does not offer, a client_name with control characters or over 200 characters.",
			"A body that is not a JSON object, or a registration update whose client_id differs from the one in the URL.",
			"A client_id that is an https URL (a Client ID Metadata Document) that could not be fetched: it resolves to a private, loopback, link-local or other special-purpose address, the server answered with a redirect or a status other than 200, took longer than 5 seconds, sent more than 5 KiB or something other than a JSON object.",
			"A metadata document whose client_id is not exactly its own URL, that asks for a client secret, or whose redirect URIs or grants are invalid. Such clients are public (token_endpoint_auth_method none) and must use PKCE.",
			"Client ID Metadata Documents are answered directly, never redirected to the client, since its redirect URIs are not known to be valid.",
		},
		Fix: "Read error_description: it names the field or what was wrong with the document. A metadata document must be served at its client_id URL with status 200 and Content-Type application/json, without redirects, and contain \"client_id\" equal to that URL.",
	},
	{
		Code: InvalidSoftwareStatement, Status: 400,
		Title:       "Software statement not supported",
		Description: "Software statements are not supported",
		UsedBy:      []string{"/register", "/register/{client_id}"},
		Retry:       "No.",
		Causes:      []string{"The registration request carried a software_statement (RFC 7591 §2.3); authd accepts no software statements, so none is ever approved or rejected on its contents."},
		Fix:         "Register without software_statement, sending the metadata as plain registration fields.",
	},
}

var byCode = func() map[Code]*Entry {
	m := make(map[Code]*Entry, len(catalog))
	for i := range catalog {
		m[catalog[i].Code] = &catalog[i]
	}
	return m
}()

// Catalog returns a copy of every catalog entry, in catalog order.
func Catalog() []Entry {
	out := make([]Entry, len(catalog))
	for i := range catalog {
		out[i] = catalog[i].clone()
	}
	return out
}

// Lookup returns a copy of the catalog entry for code.
func Lookup(code Code) (Entry, bool) {
	e, ok := byCode[code]
	if !ok {
		return Entry{}, false
	}
	return e.clone(), true
}

// clone copies e deeply, so no caller can edit the catalog through a copy.
func (e *Entry) clone() Entry {
	c := *e
	c.UsedBy = slices.Clone(e.UsedBy)
	c.Headers = slices.Clone(e.Headers)
	c.Causes = slices.Clone(e.Causes)
	return c
}

// Status returns the HTTP status for code: the catalog's, or 500 for a code
// the catalog does not know.
func (c Code) Status() int {
	if e, ok := byCode[c]; ok {
		return e.Status
	}
	return 500
}
