package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/authd-dev/authd/errors"
	"github.com/go-oauth2/oauth2/v4"
	liberrors "github.com/go-oauth2/oauth2/v4/errors"
)

// Grant types (RFC 6749 §4).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// Client is a registered OAuth client. It implements go-oauth2's
// oauth2.ClientInfo and oauth2.ClientPasswordVerifier.
type Client struct {
	ID           string    `json:"client_id"`
	Name         string    `json:"client_name"`
	RedirectURIs []string  `json:"redirect_uris"`
	Grants       []string  `json:"grant_types"`
	Scopes       []string  `json:"-"`
	Public       bool      `json:"-"`
	IDTokenAlg   string    `json:"-"` // id_token_signed_response_alg: AlgRS256 (default) or AlgES256
	CreatedAt    time.Time `json:"-"`
	secretHash   []byte    // SHA-256 of the secret; nil for public clients

	// PostLogoutRedirectURIs are where /logout may send the browser
	// after signing out (OpenID Connect RP-Initiated Logout 1.0 §3.1),
	// matched exactly.
	PostLogoutRedirectURIs []string `json:"-"`

	// Registration says who registered the client: an operator, the
	// client itself (RFC 7591), or nobody (a metadata document).
	Registration Registration `json:"-"`
	// Resources are the resource URIs (RFC 8707) the client may ask
	// tokens for, besides the server-wide ones.
	Resources []string `json:"-"`
	// ApplicationType is "web" or "native" for a client that registered
	// itself or has a metadata document (OpenID Connect Dynamic Client
	// Registration 1.0 §2), "" for an operator's.
	ApplicationType string `json:"-"`
	// metadata is the other client metadata the client registered,
	// echoed back to it.
	metadata clientExtra
	// registrationHash is the SHA-256 of a self-registered client's
	// registration access token (RFC 7592); nil for other clients.
	registrationHash []byte
}

// Registration says how a client came to be known to authd.
type Registration string

// The ways a client is registered.
const (
	// RegisteredByOperator: authd client create.
	RegisteredByOperator Registration = "operator"
	// RegisteredDynamically: the client registered itself at /register
	// (RFC 7591).
	RegisteredDynamically Registration = "dynamic"
	// RegisteredByDocument: the client_id is the URL of the client's
	// metadata document (draft-ietf-oauth-client-id-metadata-document),
	// fetched by authd.
	RegisteredByDocument Registration = "metadata_document"
)

// Verified reports whether an operator registered the client, and so
// vouches for its name. Pages that show a client (sign-in, consent) mark
// any other client as unverified and show its Origin or redirect host.
func (c *Client) Verified() bool { return c.Registration == RegisteredByOperator }

// Origin is where an unverified client's identity comes from, for pages
// to show next to its self-chosen name: the scheme and host of a
// metadata document client's client_id URL, which is that client's
// identity (the draft's "OAuth Phishing Attacks" section asks to show it).
// It is "" for other clients: an operator's is verified, and a
// self-registered client is known only by the redirect URI of the
// request, whose host the pages show.
func (c *Client) Origin() string {
	if c.Registration != RegisteredByDocument {
		return ""
	}
	u, err := url.Parse(c.ID)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// displayName is the name pages and the signed sign-in message show: the
// registered name, or a placeholder for a self-registered client that
// gave none.
func (c *Client) displayName() string {
	if c.Name == "" {
		return "Unnamed application"
	}
	return c.Name
}

// authMethod is the client's token_endpoint_auth_method (RFC 7591 §2).
func (c *Client) authMethod() string {
	switch {
	case c.Public:
		return "none"
	case c.metadata.AuthMethod != "":
		return c.metadata.AuthMethod
	}
	return "client_secret_basic"
}

// MarshalJSON writes the client in RFC 7591 client-metadata terms, without
// any secret, and says how it was registered.
func (c *Client) MarshalJSON() ([]byte, error) {
	uris := c.RedirectURIs
	if uris == nil {
		uris = []string{}
	}
	res := c.Resources
	if res == nil {
		res = []string{}
	}
	reg := c.Registration
	if reg == "" {
		reg = RegisteredByOperator
	}
	return json.Marshal(struct {
		ID           string       `json:"client_id"`
		Name         string       `json:"client_name"`
		URIs         []string     `json:"redirect_uris"`
		Grants       []string     `json:"grant_types"`
		Scope        string       `json:"scope"`
		AuthMethod   string       `json:"token_endpoint_auth_method"`
		Resources    []string     `json:"resources"`
		AppType      string       `json:"application_type,omitempty"`
		IDTokenAlg   string       `json:"id_token_signed_response_alg"`
		Registration Registration `json:"registration"`
		IssuedAt     int64        `json:"client_id_issued_at"`
		LogoutURIs   []string     `json:"post_logout_redirect_uris,omitempty"`
	}{c.ID, c.Name, uris, c.Grants, strings.Join(c.Scopes, " "), c.authMethod(), res, c.ApplicationType, c.IDTokenAlg, reg, c.CreatedAt.Unix(), c.PostLogoutRedirectURIs})
}

// redirectAllowed reports whether uri is one of the client's redirect
// URIs: matchRedirectURI's rules, except that a metadata document
// client's URIs match exactly, loopback ports included.
func (c *Client) redirectAllowed(uri string) bool {
	if c.Registration == RegisteredByDocument {
		return slices.Contains(c.RedirectURIs, uri)
	}
	return matchRedirectURI(c.RedirectURIs, uri)
}

// allows reports whether the client registered grant.
func (c *Client) allows(grant string) bool { return slices.Contains(c.Grants, grant) }

// GetID implements oauth2.ClientInfo.
func (c *Client) GetID() string { return c.ID }

// GetSecret implements oauth2.ClientInfo. Secrets are stored hashed, so it
// returns nothing; the library checks secrets through VerifyPassword.
func (c *Client) GetSecret() string { return "" }

// GetDomain implements oauth2.ClientInfo: the registered redirect URIs,
// one per line, for validateRedirectURIList.
func (c *Client) GetDomain() string { return strings.Join(c.RedirectURIs, "\n") }

// IsPublic implements oauth2.ClientInfo.
func (c *Client) IsPublic() bool { return c.Public }

// GetUserID implements oauth2.ClientInfo.
func (c *Client) GetUserID() string { return "" }

// VerifyPassword implements oauth2.ClientPasswordVerifier: a confidential
// client's secret is compared by hash in constant time; a public client
// has no secret.
func (c *Client) VerifyPassword(secret string) bool {
	if c.Public {
		return secret == ""
	}
	h := sha256.Sum256([]byte(secret))
	return len(c.secretHash) == sha256.Size && subtle.ConstantTimeCompare(h[:], c.secretHash) == 1
}

// dummyHash keeps an unknown client_id as slow as a wrong secret.
var dummyHash = sha256.Sum256([]byte("authd: no such client"))

// clientStore reads clients from SQL. It implements oauth2.ClientStore;
// a client the handler already loaded for this request comes from the
// context, so the library's lookups cost no second query.
type clientStore struct {
	db      *sql.DB
	timeout time.Duration
	// byID is the lookup every token request makes, prepared once: SQLite
	// would otherwise parse it on every request.
	byID *sql.Stmt

	// recent holds clients found in the last clientCacheTTL: a wallet
	// sign-in looks its client up three times (authorize, code, token).
	// Clients change only through the CLI; a deleted or changed client
	// is seen by running servers within clientCacheTTL. Unknown ids are
	// never cached, so a new client works at once.
	mu     sync.Mutex
	recent map[string]cachedClient
}

// clientCacheTTL bounds how long a running server may use a client record
// after it changed in the database.
const clientCacheTTL = time.Second

// clientCacheSize bounds recent; when full it is emptied.
const clientCacheSize = 1024

type cachedClient struct {
	c     *Client // never modified once cached
	until time.Time
}

const clientColumns = `id, secret_hash, name, redirect_uris, grant_types, scope, public, id_token_alg, created_ms,
	registration, resources, application_type, registration_token_hash, metadata, post_logout_redirect_uris`

// prepare prepares the hot statements.
func (cs *clientStore) prepare(ctx context.Context) error {
	st, err := cs.db.PrepareContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients WHERE id = $1`)
	if err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause("oauth.clientStore.prepare", err)
	}
	cs.byID = st
	return nil
}

type clientCtxKey struct{}

// withClient records the client authenticated for this request.
func withClient(ctx context.Context, c *Client) context.Context {
	return context.WithValue(ctx, clientCtxKey{}, c)
}

// GetByID implements oauth2.ClientStore.
//
// Errors: invalid_client for an unknown client; temporarily_unavailable.
func (cs *clientStore) GetByID(ctx context.Context, id string) (oauth2.ClientInfo, error) {
	if c, ok := ctx.Value(clientCtxKey{}).(*Client); ok && c.ID == id {
		return c, nil
	}
	c, err := cs.get(ctx, id)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.E(errors.InvalidClient, "Client authentication failed").WithCause("oauth.clientStore.GetByID", liberrors.ErrInvalidClient)
	}
	return c, nil
}

// get returns the client with id, or nil when there is none.
//
// Errors: temporarily_unavailable.
func (cs *clientStore) get(ctx context.Context, id string) (*Client, error) {
	const op = "oauth.clientStore.get"
	if !validClientID(id) {
		return nil, nil
	}
	now := time.Now()
	cs.mu.Lock()
	hit, ok := cs.recent[id]
	cs.mu.Unlock()
	if ok && now.Before(hit.until) {
		return hit.c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, cs.timeout)
	defer cancel()
	row := cs.byID.QueryRowContext(ctx, id)
	c, err := scanClient(row)
	if err == sql.ErrNoRows {
		cs.forget(id)
		return nil, nil
	}
	if err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	cs.mu.Lock()
	if cs.recent == nil || len(cs.recent) >= clientCacheSize {
		cs.recent = make(map[string]cachedClient)
	}
	cs.recent[id] = cachedClient{c: c, until: now.Add(clientCacheTTL)}
	cs.mu.Unlock()
	return c, nil
}

// clientExists checks that the client an access token issued at iat (unix
// seconds) was issued to is still registered: deleting a client ends its
// tokens at every resource check (Bearer at /userinfo and /backup,
// /introspect) within clientCacheTTL, not when they expire. A metadata
// document client comes back after a deletion when its client_id is used
// again, as a new client: its tokens from before are not.
//
// Errors: invalid_token for a deleted client; temporarily_unavailable.
func (s *Server) clientExists(ctx context.Context, id string, iat int64) error {
	c, err := s.clients.get(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case c == nil:
		return errBadToken("oauth.clientExists", errors.New("the token's client was deleted"))
	case c.Registration == RegisteredByDocument && (s.docs == nil || iat < c.CreatedAt.Unix()):
		return errBadToken("oauth.clientExists", errors.New("metadata documents are off, or the token is older than its client"))
	}
	return nil
}

// forget drops id from the cache.
func (cs *clientStore) forget(id string) {
	cs.mu.Lock()
	delete(cs.recent, id)
	cs.mu.Unlock()
}

type scanner interface{ Scan(dest ...any) error }

func scanClient(row scanner) (*Client, error) {
	var (
		c                               Client
		secretHex, uris, grants, scopes string
		public                          int
		created                         int64
		resources, regHash, metadata    string
		logoutURIs                      string
	)
	if err := row.Scan(&c.ID, &secretHex, &c.Name, &uris, &grants, &scopes, &public, &c.IDTokenAlg, &created,
		&c.Registration, &resources, &c.ApplicationType, &regHash, &metadata, &logoutURIs); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return nil, errors.Errorf("client %s: redirect_uris: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(resources), &c.Resources); err != nil {
		return nil, errors.Errorf("client %s: resources: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(metadata), &c.metadata); err != nil {
		return nil, errors.Errorf("client %s: metadata: %w", c.ID, err)
	}
	if err := json.Unmarshal([]byte(logoutURIs), &c.PostLogoutRedirectURIs); err != nil {
		return nil, errors.Errorf("client %s: post_logout_redirect_uris: %w", c.ID, err)
	}
	c.Grants = strings.Fields(grants)
	c.Scopes = strings.Fields(scopes)
	c.Public = public == 1
	c.CreatedAt = time.UnixMilli(created).UTC()
	if !c.Public {
		h, err := hex.DecodeString(secretHex)
		if err != nil || len(h) != sha256.Size {
			return nil, errors.Errorf("client %s: bad secret hash", c.ID)
		}
		c.secretHash = h
	}
	if regHash != "" {
		h, err := hex.DecodeString(regHash)
		if err != nil || len(h) != sha256.Size {
			return nil, errors.Errorf("client %s: bad registration token hash", c.ID)
		}
		c.registrationHash = h
	}
	return &c, nil
}

// validClientID is RFC 6749 Appendix A.1 (client-id = *VSCHAR, %x20-7E),
// at most 2000 characters (a Client Identifier URL's limit): a bound on
// what reaches SQL.
func validClientID(id string) bool {
	if id == "" || len(id) > 2000 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return false
		}
	}
	return true
}

// ClientRegistration is what `authd client create` asks for.
type ClientRegistration struct {
	Name         string
	RedirectURIs []string
	Public       bool
	// Scopes defaults to ["profile"].
	Scopes []string
	// Grants defaults to authorization_code and refresh_token.
	Grants []string
	// IDTokenAlg defaults to AlgRS256.
	IDTokenAlg string
	// Resources are the resource URIs (RFC 8707) the client may ask
	// tokens for besides the server-wide ones: absolute URIs without a
	// fragment.
	Resources []string
	// PostLogoutRedirectURIs are where /logout may send the browser
	// after signing out; the same rules as RedirectURIs.
	PostLogoutRedirectURIs []string
}

// CreateClient validates reg, stores a new client and returns it with its
// secret (empty for public clients). The secret is 256 random bits and is
// stored only as its SHA-256: it cannot be shown again.
//
// Errors: invalid_redirect_uri for a bad redirect URI (absolute, no
// fragment, https except loopback http and private-use schemes);
// invalid_client_metadata naming any other bad field;
// temporarily_unavailable.
func CreateClient(ctx context.Context, db *sql.DB, reg ClientRegistration, now time.Time) (*Client, string, error) {
	c := &Client{
		Name:         strings.TrimSpace(reg.Name),
		RedirectURIs: reg.RedirectURIs,
		Public:       reg.Public,
		Scopes:       reg.Scopes,
		Grants:       reg.Grants,
		IDTokenAlg:   reg.IDTokenAlg,
		Resources:    reg.Resources,
		Registration: RegisteredByOperator,
		CreatedAt:    time.UnixMilli(now.UnixMilli()).UTC(),

		PostLogoutRedirectURIs: reg.PostLogoutRedirectURIs,
	}
	if c.Name == "" {
		return nil, "", errors.E(errors.InvalidClientMetadata, "Client name must be 1-200 characters without control characters")
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{ScopeProfile}
	}
	if len(c.Grants) == 0 {
		c.Grants = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	if slices.Contains(c.Grants, GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return nil, "", errors.E(errors.InvalidRedirectURI, "The authorization_code grant needs at least one --redirect-uri")
	}
	if err := c.check(); err != nil {
		return nil, "", err
	}
	secret, _, err := insertClient(ctx, db, c, false)
	if err != nil {
		return nil, "", err
	}
	return c, secret, nil
}

// check validates what every client must satisfy, however it was
// registered, and removes repeated values: its name, scopes, grants,
// redirect URIs and resources.
//
// Errors: invalid_redirect_uri; invalid_client_metadata naming the field.
func (c *Client) check() *errors.Error {
	if len(c.Name) > 200 || !utf8.ValidString(c.Name) || strings.IndexFunc(c.Name, isControl) >= 0 {
		return errors.E(errors.InvalidClientMetadata, "Client name must be 1-200 characters without control characters")
	}
	for _, sc := range c.Scopes {
		if !validScopeToken(sc) {
			return errors.E(errors.InvalidClientMetadata, "Invalid scope "+strconv.Quote(sc)+": scope tokens are printable ASCII without spaces, quotes or backslashes (RFC 6749 section 3.3)")
		}
	}
	c.Scopes = dedupe(c.Scopes)
	for _, g := range c.Grants {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
		default:
			return errors.E(errors.InvalidClientMetadata, "Unknown grant "+strconv.Quote(printable(g, 40))+" (want authorization_code, refresh_token or client_credentials)")
		}
	}
	c.Grants = dedupe(c.Grants)
	switch c.IDTokenAlg {
	case "":
		c.IDTokenAlg = AlgRS256
	case AlgRS256, AlgES256:
	default:
		return errors.E(errors.InvalidClientMetadata, "Unknown ID Token algorithm "+quoted(c.IDTokenAlg, 40)+" (want RS256 or ES256)")
	}
	if c.Public && c.allows(GrantClientCredentials) {
		return errors.E(errors.InvalidClientMetadata, "A public client cannot use client_credentials (RFC 6749 section 4.4)")
	}
	if c.allows(GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return errors.E(errors.InvalidRedirectURI, "The authorization_code grant needs at least one redirect URI")
	}
	if len(c.RedirectURIs) > maxListLen {
		return errors.E(errors.InvalidRedirectURI, "At most "+strconv.Itoa(maxListLen)+" redirect URIs")
	}
	for _, u := range c.RedirectURIs {
		if err := CheckRedirectURI(u); err != nil {
			return err
		}
	}
	c.RedirectURIs = dedupe(c.RedirectURIs)
	if len(c.PostLogoutRedirectURIs) > maxListLen {
		return errors.E(errors.InvalidClientMetadata, "At most "+strconv.Itoa(maxListLen)+" post-logout redirect URIs")
	}
	for _, u := range c.PostLogoutRedirectURIs {
		if err := checkURI("Post-logout redirect URI", errors.InvalidClientMetadata, u); err != nil {
			return err
		}
	}
	c.PostLogoutRedirectURIs = dedupe(c.PostLogoutRedirectURIs)
	if len(c.Resources) > maxListLen {
		return errors.E(errors.InvalidClientMetadata, "At most "+strconv.Itoa(maxListLen)+" resources")
	}
	for _, r := range c.Resources {
		if why := checkResource(r); why != "" {
			return errors.E(errors.InvalidClientMetadata, "Resource "+strconv.Quote(printable(r, 100))+" "+why)
		}
	}
	c.Resources = dedupe(c.Resources)
	return nil
}

// maxListLen bounds the redirect URIs and resources of one client.
const maxListLen = 20

// insertClient stores the new client c under a new client_id, with a new
// secret unless c is public and, when withRegistrationToken, a new
// registration access token (RFC 7592); it returns the secret and the
// token, which are stored only as their SHA-256.
//
// Errors: temporarily_unavailable.
func insertClient(ctx context.Context, db *sql.DB, c *Client, withRegistrationToken bool) (secret, regToken string, err error) {
	const op = "oauth.insertClient"
	c.ID = newClientID()
	if !c.Public {
		secret = randomToken(32)
		h := sha256.Sum256([]byte(secret))
		c.secretHash = h[:]
	}
	if withRegistrationToken {
		regToken = randomToken(32)
		h := sha256.Sum256([]byte(regToken))
		c.registrationHash = h[:]
	}
	uris, _ := json.Marshal(c.RedirectURIs)
	res, _ := json.Marshal(nonNil(c.Resources))
	md, _ := json.Marshal(c.metadata)
	logoutURIs, _ := json.Marshal(nonNil(c.PostLogoutRedirectURIs))
	if _, err := db.ExecContext(ctx, `INSERT INTO oauth_clients
		(id, secret_hash, name, redirect_uris, grant_types, scope, public, id_token_alg, created_ms,
		 registration, resources, application_type, registration_token_hash, metadata, post_logout_redirect_uris)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		c.ID, hexOrEmpty(c.secretHash), c.Name, string(uris), strings.Join(c.Grants, " "), strings.Join(c.Scopes, " "), boolInt(c.Public), c.IDTokenAlg, c.CreatedAt.UnixMilli(),
		string(c.Registration), string(res), c.ApplicationType, hexOrEmpty(c.registrationHash), string(md), string(logoutURIs)); err != nil {
		return "", "", errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return secret, regToken, nil
}

func hexOrEmpty(b []byte) string {
	if b == nil {
		return ""
	}
	return hex.EncodeToString(b)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// ListClients returns every registered client, oldest first.
//
// Errors: temporarily_unavailable.
func ListClients(ctx context.Context, db *sql.DB) ([]*Client, error) {
	const op = "oauth.ListClients"
	rows, err := db.QueryContext(ctx, `SELECT `+clientColumns+` FROM oauth_clients ORDER BY created_ms, id`)
	if err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	defer rows.Close()
	out := []*Client{}
	for rows.Next() {
		c, err := scanClient(rows)
		if err != nil {
			return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return out, nil
}

// ErrNoClient is returned (wrapped in an *errors.Error) by DeleteClient for
// an unknown id.
var ErrNoClient = errors.New("oauth: no such client")

// DeleteClient removes the client, its refresh tokens and the consents
// people gave it, however it was registered. Access tokens already
// issued to it are refused by every resource check from then on (running
// servers notice within a second, the client cache's lifetime). A
// metadata document client is forgotten with its tokens; it is known
// again, as a new client, the next time its client_id is used while
// metadata documents are on.
//
// Errors: invalid_request (wrapping ErrNoClient) for an unknown id;
// temporarily_unavailable.
func DeleteClient(ctx context.Context, db *sql.DB, id string) error {
	const op = "oauth.DeleteClient"
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM oauth_clients WHERE id = $1`, id)
	if err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	} else if n == 0 {
		return errors.E(errors.InvalidRequest, "No client with that client_id").WithCause(op, ErrNoClient)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_refresh_tokens WHERE client_id = $1`, id); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_consents WHERE client_id = $1`, id); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if err := tx.Commit(); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return nil
}

// CheckRedirectURI validates a redirect URI for registration (RFC 8252,
// RFC 9700 §2.1): absolute, no fragment, no user information,
// and either https with a host, http on a loopback host (127.0.0.1, [::1],
// localhost), or a private-use scheme in reverse-domain form
// (com.example.app:/cb).
//
// Errors: invalid_redirect_uri saying what is wrong.
func CheckRedirectURI(raw string) *errors.Error {
	return checkURI("Redirect URI", errors.InvalidRedirectURI, raw)
}

// checkURI is CheckRedirectURI for a URI called what, failing with code.
func checkURI(what string, code errors.Code, raw string) *errors.Error {
	bad := func(why string) *errors.Error {
		return errors.E(code, what+" "+strconv.Quote(printable(raw, 200))+" "+why)
	}
	if raw == "" || len(raw) > 2000 {
		return bad("must be 1-2000 characters")
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] <= 0x20 || raw[i] >= 0x7f {
			return bad("must be printable ASCII without spaces (percent-encode the rest)")
		}
	}
	if strings.Contains(raw, "#") {
		return bad("must not have a fragment")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("is not a valid URI")
	}
	if u.Scheme == "" {
		return bad("must be absolute")
	}
	if u.User != nil {
		return bad("must not contain user information")
	}
	if strings.Contains(u.Host, "*") || strings.Contains(u.Path, "*") {
		return bad("must not contain wildcards")
	}
	switch u.Scheme {
	case "https":
		if u.Host == "" || u.Hostname() == "" {
			return bad("must name a host")
		}
	case "http":
		switch u.Hostname() {
		case "127.0.0.1", "::1", "localhost":
		default:
			return bad("must use https (http is allowed only for 127.0.0.1, [::1] and localhost)")
		}
	default:
		// RFC 8252 §7.1: private-use schemes are reverse domain names.
		if !strings.Contains(u.Scheme, ".") {
			return bad("must use https, loopback http, or a private-use scheme in reverse-domain form such as com.example.app:/callback")
		}
		if u.Host != "" || strings.HasPrefix(u.Opaque, "//") {
			return bad("with a private-use scheme must have a path and no authority, such as com.example.app:/callback")
		}
	}
	return nil
}

// matchRedirectURI reports whether got is one of the registered URIs:
// exactly equal, or for a registered loopback IP literal
// (http://127.0.0.1 or http://[::1]) equal except for the port (RFC 8252
// §7.3, RFC 9700 §2.1). The comparison is on the raw strings, so no
// re-encoding can make two different URIs equal.
func matchRedirectURI(registered []string, got string) bool {
	for _, r := range registered {
		if r == got {
			return true
		}
		for _, prefix := range []string{"http://127.0.0.1", "http://[::1]"} {
			rr, ok1 := strings.CutPrefix(r, prefix)
			gr, ok2 := strings.CutPrefix(got, prefix)
			if ok1 && ok2 && validPortPart(rr) && validPortPart(gr) && stripPort(rr) == stripPort(gr) {
				return true
			}
		}
	}
	return false
}

// stripPort removes a leading ":<digits>" from the part of a loopback URI
// after its host.
func stripPort(rest string) string {
	if !strings.HasPrefix(rest, ":") {
		return rest
	}
	i := 1
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	return rest[i:]
}

// validPortPart reports whether rest starts with no port or a valid one
// (1-65535, no leading zero), followed by a path, query or nothing.
func validPortPart(rest string) bool {
	after := stripPort(rest)
	if after != "" && after[0] != '/' && after[0] != '?' {
		return false
	}
	if !strings.HasPrefix(rest, ":") {
		return true
	}
	digits := rest[1 : len(rest)-len(after)]
	if digits == "" || len(digits) > 5 || digits[0] == '0' {
		return false
	}
	n, err := strconv.Atoi(digits)
	return err == nil && n >= 1 && n <= 65535
}

// validateRedirectURIList replaces go-oauth2's DefaultValidateURI (a
// host-suffix check) in the manager: baseURI is Client.GetDomain().
func validateRedirectURIList(baseURI, redirectURI string) error {
	if matchRedirectURI(strings.Split(baseURI, "\n"), redirectURI) {
		return nil
	}
	return liberrors.ErrInvalidRedirectURI
}

// isControl reports whether r is a control or format character: C0, DEL,
// C1, and the invisible ones that can disguise text (bidirectional
// overrides, zero-width characters, line and paragraph separators).
func isControl(r rune) bool {
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp)
}

func dedupe(in []string) []string {
	out := make([]string, 0, len(in))
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// newClientID returns 128 random bits as 26 lowercase base32 characters:
// easy to copy, and never starting with "-" on a command line.
func newClientID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// randomToken returns n random bytes, base64url without padding.
func randomToken(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
