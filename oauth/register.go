package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
)

// Dynamic client registration (RFC 7591) and its management (RFC 7592).
// With Config.Registration on, a client registers itself with POST
// /register and gets a client_id, a secret when it is confidential, and
// a registration access token with which it reads, replaces and deletes
// its registration at /register/{client_id}. authd validates a
// registration as it validates `authd client create`, with the rules of
// clients nobody vouches for on top (see parseClientMetadata), and pages
// show such clients as unverified.

// MaxRegistrationBody bounds a registration request's body.
const MaxRegistrationBody = 16 << 10

// registrationResponse is the client information response (RFC 7591
// §3.2.1, RFC 7592 §3): every metadata member registered, echoed.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	Scope                   string   `json:"scope"`
	ApplicationType         string   `json:"application_type"`
	IDTokenAlg              string   `json:"id_token_signed_response_alg"`
	Resources               []string `json:"resources,omitempty"`
	ClientURI               string   `json:"client_uri,omitempty"`
	Contacts                []string `json:"contacts,omitempty"`
	SoftwareID              string   `json:"software_id,omitempty"`
	SoftwareVersion         string   `json:"software_version,omitempty"`
}

// registrationEndpoint is /register's URL, or "" when registration is
// off.
func (s *Server) registrationEndpoint() string {
	if !s.RegistrationEnabled() {
		return ""
	}
	return s.endpoint("/register")
}

// clientInformation is c's registration, with secret (when just issued)
// and its registration access token.
func (s *Server) clientInformation(c *Client, secret, regToken string) registrationResponse {
	out := registrationResponse{
		ClientID:                c.ID,
		ClientSecret:            secret,
		ClientIDIssuedAt:        c.CreatedAt.Unix(),
		RegistrationAccessToken: regToken,
		RegistrationClientURI:   s.endpoint("/register/" + c.ID),
		RedirectURIs:            nonNil(c.RedirectURIs),
		TokenEndpointAuthMethod: c.authMethod(),
		GrantTypes:              c.Grants,
		ResponseTypes:           []string{},
		ClientName:              c.Name,
		Scope:                   strings.Join(c.Scopes, " "),
		ApplicationType:         c.ApplicationType,
		IDTokenAlg:              c.IDTokenAlg,
		Resources:               c.Resources,
		ClientURI:               c.metadata.ClientURI,
		Contacts:                c.metadata.Contacts,
		SoftwareID:              c.metadata.SoftwareID,
		SoftwareVersion:         c.metadata.SoftwareVersion,
	}
	if c.allows(GrantAuthorizationCode) {
		out.ResponseTypes = []string{"code"}
	}
	if !c.Public {
		never := int64(0) // RFC 7591 §3.2.1: 0, the secret does not expire
		out.ClientSecretExpiresAt = &never
	}
	return out
}

// writeRegistration writes a client information response: it holds
// secrets, so it is never stored.
func writeRegistration(w http.ResponseWriter, status int, v registrationResponse) error {
	setNoStore(w.Header())
	return writeJSON(w, status, v)
}

// Register handles POST /register (RFC 7591 §3): a client registers
// itself. With Config.Registration token the request must carry the
// initial access token as a Bearer token. The body is the client's
// metadata as JSON (see parseClientMetadata); the answer is 201 with
// every registered member, the client_secret once (confidential clients),
// and the registration access token and URI for RFC 7592 management.
//
// Errors: invalid_token (401: missing or wrong initial access token);
// invalid_request (not application/json); invalid_client_metadata;
// invalid_redirect_uri; invalid_software_statement; request_too_large;
// temporarily_unavailable.
func (s *Server) Register(w http.ResponseWriter, r *http.Request) error {
	setNoStore(w.Header())
	if err := s.checkInitialToken(r); err != nil {
		return err
	}
	raw, err := readJSON(w, r)
	if err != nil {
		return err
	}
	c, e := s.parseClientMetadata(raw, fromRegistration)
	if e != nil {
		return e
	}
	c.Registration = RegisteredDynamically
	c.CreatedAt = time.UnixMilli(s.now().UnixMilli()).UTC()
	ctx, cancel := s.opCtx(r.Context())
	defer cancel()
	secret, regToken, err := insertClient(ctx, s.db, c, true)
	if err != nil {
		return err
	}
	return writeRegistration(w, http.StatusCreated, s.clientInformation(c, secret, regToken))
}

// ReadRegistration handles GET /register/{client_id} (RFC 7592 §2.1): the
// client's registration, for its registration access token. The secret,
// stored only as its hash, is not in it.
//
// Errors: invalid_token (401: missing or wrong registration access token,
// another client's, or an unknown client); temporarily_unavailable.
func (s *Server) ReadRegistration(w http.ResponseWriter, r *http.Request) error {
	setNoStore(w.Header())
	c, tok, err := s.registeredClient(r)
	if err != nil {
		return err
	}
	return writeRegistration(w, http.StatusOK, s.clientInformation(c, "", tok))
}

// updateForbidden are the members an update must not send (RFC 7592
// §2.2).
var updateForbidden = []string{"registration_access_token", "registration_client_uri", "client_secret_expires_at", "client_id_issued_at"}

// UpdateRegistration handles PUT /register/{client_id} (RFC 7592 §2.2):
// the body replaces the client's metadata, validated as a registration;
// members it leaves out take their defaults. It must name the client's
// client_id, and may send its current client_secret. A client that turns
// confidential gets a client_secret (in the answer, once); one that stays
// confidential keeps its secret; one that turns public loses it.
//
// Errors: invalid_token (401, as ReadRegistration); invalid_request (not
// application/json); invalid_client_metadata (also for a client_id or
// client_secret that is not the client's, or a member an update must not
// send); invalid_redirect_uri; invalid_software_statement;
// request_too_large; temporarily_unavailable.
func (s *Server) UpdateRegistration(w http.ResponseWriter, r *http.Request) error {
	const op = "oauth.UpdateRegistration"
	setNoStore(w.Header())
	old, tok, err := s.registeredClient(r)
	if err != nil {
		return err
	}
	raw, err := readJSON(w, r)
	if err != nil {
		return err
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(raw, &members) != nil || members == nil {
		return metaError("The client metadata must be a JSON object")
	}
	var id string
	if json.Unmarshal(members["client_id"], &id) != nil || id != old.ID {
		return metaError("An update must include the client's own client_id (RFC 7592 section 2.2)")
	}
	for _, m := range updateForbidden {
		if _, ok := members[m]; ok {
			return metaError("An update must not include " + m + " (RFC 7592 section 2.2)")
		}
	}
	if rawSecret, ok := members["client_secret"]; ok {
		var secret string
		if json.Unmarshal(rawSecret, &secret) != nil || old.Public || !old.VerifyPassword(secret) {
			return metaError("client_secret is not the client's current secret; leave it out, a client cannot choose its secret")
		}
	}
	c, e := s.parseClientMetadata(raw, fromRegistration)
	if e != nil {
		return e
	}
	c.ID, c.CreatedAt, c.Registration, c.registrationHash = old.ID, old.CreatedAt, RegisteredDynamically, old.registrationHash
	secret := ""
	switch {
	case c.Public:
	case old.secretHash != nil:
		c.secretHash = old.secretHash
	default:
		secret = randomToken(32)
		h := sha256.Sum256([]byte(secret))
		c.secretHash = h[:]
	}
	uris, _ := json.Marshal(c.RedirectURIs)
	res, _ := json.Marshal(nonNil(c.Resources))
	md, _ := json.Marshal(c.metadata)
	ctx, cancel := s.opCtx(r.Context())
	defer cancel()
	result, err := s.db.ExecContext(ctx, `UPDATE oauth_clients SET secret_hash = $2, name = $3, redirect_uris = $4,
		grant_types = $5, scope = $6, public = $7, resources = $8, application_type = $9, metadata = $10, id_token_alg = $11
		WHERE id = $1 AND registration = 'dynamic'`,
		c.ID, hexOrEmpty(c.secretHash), c.Name, string(uris), strings.Join(c.Grants, " "), strings.Join(c.Scopes, " "),
		boolInt(c.Public), string(res), c.ApplicationType, string(md), c.IDTokenAlg)
	if err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	if n, err := result.RowsAffected(); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	} else if n == 0 {
		return errRegistrationToken(op, "client deleted during the update")
	}
	s.clients.forget(c.ID)
	return writeRegistration(w, http.StatusOK, s.clientInformation(c, secret, tok))
}

// DeleteRegistration handles DELETE /register/{client_id} (RFC 7592
// §2.3): the client, its refresh tokens and its registration access token
// are gone, and its access tokens are refused from then on. 204.
//
// Errors: invalid_token (401, as ReadRegistration);
// temporarily_unavailable.
func (s *Server) DeleteRegistration(w http.ResponseWriter, r *http.Request) error {
	const op = "oauth.DeleteRegistration"
	c, _, err := s.registeredClient(r)
	if err != nil {
		return err
	}
	ctx, cancel := s.opCtx(r.Context())
	defer cancel()
	if err := DeleteClient(ctx, s.db, c.ID); err != nil {
		if errors.Is(err, ErrNoClient) {
			return errRegistrationToken(op, "client deleted meanwhile")
		}
		return err
	}
	s.clients.forget(c.ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkInitialToken checks the initial access token of a registration
// when Config.Registration is token (RFC 7591 §3: an RFC 6750 Bearer
// token), comparing hashes in constant time.
//
// Errors: invalid_token.
func (s *Server) checkInitialToken(r *http.Request) error {
	if s.cfg.Registration != RegistrationToken {
		return nil
	}
	tok, err := registrationBearer(r, "Registration needs the initial access token of this server's operator: send Authorization: Bearer <token>")
	if err != nil {
		return err
	}
	got, want := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(s.cfg.RegistrationToken))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return errors.E(errors.InvalidToken, "The initial access token is not valid for registration").WithCause("oauth.Register", errors.New("wrong initial access token"))
	}
	return nil
}

// registeredClient authenticates a client configuration request (RFC
// 7592 §2): the registration access token of the self-registered client
// in the path. Every failure, an unknown client included, is the same
// 401 (RFC 7592 §2.1).
//
// Errors: invalid_token; temporarily_unavailable.
func (s *Server) registeredClient(r *http.Request) (*Client, string, error) {
	const op = "oauth.registeredClient"
	tok, err := registrationBearer(r, "Send the registration access token the registration returned: Authorization: Bearer <token>")
	if err != nil {
		return nil, "", err
	}
	c, err := s.clients.get(r.Context(), r.PathValue("client_id"))
	if err != nil {
		return nil, "", err
	}
	want := dummyHash[:]
	if c != nil && c.Registration == RegisteredDynamically && len(c.registrationHash) == sha256.Size {
		want = c.registrationHash
	}
	got := sha256.Sum256([]byte(tok))
	if subtle.ConstantTimeCompare(got[:], want) != 1 || c == nil || c.Registration != RegisteredDynamically {
		return nil, "", errRegistrationToken(op, "unknown client, not self-registered, or another token")
	}
	return c, tok, nil
}

// errRegistrationToken is the one answer for a registration access token
// that does not open the client in the path.
func errRegistrationToken(op, cause string) *errors.Error {
	return errors.E(errors.InvalidToken, "The registration access token is not valid for this client").WithCause(op, errors.New(cause))
}

// registrationBearer returns r's Bearer token (RFC 6750 §2.1: the
// Authorization header only); missing is the description when there is
// none.
//
// Errors: invalid_token.
func registrationBearer(r *http.Request, missing string) (string, error) {
	h := r.Header.Values("Authorization")
	switch {
	case len(h) == 0:
		return "", errors.E(errors.InvalidToken, missing)
	case len(h) > 1:
		return "", errors.E(errors.InvalidToken, "Authorization header included more than once")
	}
	scheme, tok, _ := strings.Cut(h[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errors.E(errors.InvalidToken, "The Authorization header must use the Bearer scheme")
	}
	tok = strings.TrimLeft(tok, " ")
	if !validB64Token(tok) {
		return "", errors.E(errors.InvalidToken, "The Bearer token is malformed (RFC 6750 section 2.1)")
	}
	return tok, nil
}

// readJSON reads r's application/json body, at most
// MaxRegistrationBody bytes.
//
// Errors: invalid_request (wrong content type, unreadable body);
// request_too_large.
func readJSON(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	const op = "oauth.readJSON"
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return nil, errors.E(errors.InvalidRequest, "Content-Type must be application/json (RFC 7591 section 3.1)")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxRegistrationBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, errors.E(errors.RequestTooLarge, "Request body exceeds this endpoint's limit of "+strconv.FormatInt(mbe.Limit, 10)+" bytes").WithCause(op, err)
		}
		return nil, errors.E(errors.InvalidRequest, "The request body could not be read").WithCause(op, err)
	}
	return body, nil
}
