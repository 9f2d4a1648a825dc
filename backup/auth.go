package backup

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/authd-dev/authd/errors"
)

// Scope is the OAuth scope a Bearer access token needs for /backup.
const Scope = "backup"

// Wallet verifies X-Auth-Token requests (also sent as Authorization:
// Bitcoin-Auth <token>) and returns the signer's Bitcoin address. The
// signature covers a hash of the body, so AuthenticateWallet reads
// r.Body; Identify hands it a copy of the body it already read (at most
// MaxSize bytes), so the verifier needs no limit of its own, and may leave
// r.Body consumed.
//
// Errors are *errors.Error with the sigauth codes: malformed_auth_token,
// invalid_public_key, invalid_signature, invalid_timestamp,
// rate_limit_exceeded (lockout), temporarily_unavailable.
type Wallet interface {
	AuthenticateWallet(r *http.Request) (address string, err error)
}

// Bearer validates an Authorization: Bearer access token and checks that
// it carries scope, returning the token's subject.
//
// Errors are *errors.Error: invalid_token, insufficient_scope (with Scope
// set to the scope needed), temporarily_unavailable.
type Bearer interface {
	AuthenticateBearer(r *http.Request, scope string) (subject string, err error)
}

// identity is what Identify learned about a request: who sent it (or why
// that is unknown) and, when the Wallet needed it, the body.
type identity struct {
	subject  string
	err      error
	body     []byte
	bodyRead bool // body holds the request body (else it is still unread)
}

type identityKey struct{}

func identityFrom(ctx context.Context) *identity {
	id, _ := ctx.Value(identityKey{}).(*identity)
	return id
}

// Identify authenticates the request once and stores the outcome in the
// request's context without failing the request, so that a rate limiter
// placed between Identify and Handler can key on SubjectFromContext;
// Handler then answers with the stored error, if any.
//
//   - A declared Content-Length over MaxSize is backup_too_large at once,
//     whatever the credentials, and nothing is read.
//   - X-Auth-Token or Authorization: Bitcoin-Auth: the signature covers the
//     body, so Identify reads it first, at most MaxSize+1 bytes (a longer
//     body is backup_too_large and the Wallet is never asked), and gives
//     the Wallet its own copy; next reads the same bytes again from Body.
//   - Authorization: Bearer: the Bearer validates the token with scope
//     "backup"; the body is left for Handler, after the rate limiter.
//   - Neither: missing_auth_token, and the body is never read. Both:
//     invalid_request.
//
// Errors, stored for Handler: backup_too_large, missing_auth_token,
// invalid_request, and the Wallet's or Bearer's codes.
//
// Handler works without Identify too (it then authenticates by itself).
// A request passes Identify's check once: a second Identify around the
// same request finds the stored outcome and does nothing, so a signed PUT
// never meets the signature replay guard twice.
func (s *Service) Identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if identityFrom(r.Context()) != nil {
			next.ServeHTTP(w, r)
			return
		}
		id := s.identify(r)
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		if id.bodyRead && id.body != nil {
			r.Body = io.NopCloser(bytes.NewReader(id.body))
		}
		next.ServeHTTP(w, r)
	})
}

// SubjectFromContext returns the identity Identify authenticated for the
// request whose context is ctx, and false when Identify did not run or the
// request is not authenticated (a rate limiter then keys on the client IP).
func SubjectFromContext(ctx context.Context) (string, bool) {
	id := identityFrom(ctx)
	if id == nil || id.err != nil || id.subject == "" {
		return "", false
	}
	return id.subject, true
}

// The kinds of credentials a request can carry.
type credential int

const (
	noCredential credential = iota
	walletCredential
	bearerCredential
)

// identify authenticates r, reading its body first when the Wallet needs
// it.
func (s *Service) identify(r *http.Request) *identity {
	const op = "backup.identify"
	if r.ContentLength > MaxSize {
		return &identity{err: tooLarge(op)}
	}
	kind, err := s.credentialOf(r)
	if err != nil {
		return &identity{err: err}
	}
	if kind == bearerCredential {
		sub, err := s.checkSubject(s.bearer.AuthenticateBearer(r, Scope))
		var e *errors.Error
		if errors.As(err, &e) && e.Code == errors.InsufficientScope && e.Scope == "" {
			c := *e
			c.Scope = Scope // the challenge must name the scope (RFC 6750 §3)
			err = &c
		}
		return &identity{subject: sub, err: err}
	}
	body, err := readBody(r)
	if err != nil {
		return &identity{err: err}
	}
	// The verifier gets its own reader over the body: whatever it does
	// with it, the handler reads the bytes again from id.body.
	ar := r.WithContext(r.Context())
	ar.Body, ar.ContentLength = http.NoBody, 0
	if body != nil {
		ar.Body, ar.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	}
	sub, err := s.checkSubject(s.wallet.AuthenticateWallet(ar))
	return &identity{subject: sub, err: err, body: body, bodyRead: true}
}

// credentialOf tells which kind of credentials r carries.
//
// Errors: missing_auth_token (none, or Bearer where it is not accepted),
// invalid_request (both kinds at once).
func (s *Service) credentialOf(r *http.Request) (credential, error) {
	const op = "backup.credentialOf"
	scheme := strings.ToLower(authScheme(r.Header.Get("Authorization")))
	bearer := scheme == "bearer"
	wallet := r.Header.Get("X-Auth-Token") != "" || scheme == "bitcoin-auth"
	switch {
	case bearer && wallet:
		return noCredential, errors.E(errors.InvalidRequest, "Send one credential: either X-Auth-Token (or Authorization: Bitcoin-Auth) or Authorization: Bearer, not both").WithCause(op, nil)
	case bearer && s.bearer == nil:
		return noCredential, errors.E(errors.MissingAuthToken, "Bearer tokens are not accepted here; sign the request and send the token in X-Auth-Token").WithCause(op, nil)
	case bearer:
		return bearerCredential, nil
	case wallet:
		return walletCredential, nil
	}
	desc := "X-Auth-Token header is required for Bitcoin authentication; sign the request with your key (for example with authd token sign)"
	if s.bearer != nil {
		desc += " or send Authorization: Bearer with an access token of scope backup"
	}
	return noCredential, errors.E(errors.MissingAuthToken, desc).WithCause(op, nil)
}

// checkSubject passes a verifier's answer on, refusing a success without
// a subject, which would be a bug in the verifier.
func (s *Service) checkSubject(sub string, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if sub == "" {
		return "", errors.E(errors.ServerError, "").WithCause("backup.checkSubject", errors.New("verifier returned no subject and no error"))
	}
	return sub, nil
}

// authScheme returns the auth-scheme of an Authorization header value.
func authScheme(v string) string {
	v = strings.TrimLeft(v, " ")
	if i := strings.IndexByte(v, ' '); i >= 0 {
		return v[:i]
	}
	return v
}

// readBody reads r's body, holding and reading at most MaxSize+1 bytes. It
// returns nil for a request without a body.
//
// Errors: backup_too_large (declared Content-Length over MaxSize, refused
// before reading; or a longer body, including one cut off by an outer
// http.MaxBytesReader), invalid_request (the body could not be read).
func readBody(r *http.Request) ([]byte, error) {
	const op = "backup.readBody"
	if r.ContentLength > MaxSize {
		return nil, tooLarge(op)
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil
	}
	size := 4 << 10
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1 // +1 to see EOF without growing
	}
	buf := make([]byte, 0, size)
	lr := io.LimitReader(r.Body, MaxSize+1)
	for {
		if len(buf) == cap(buf) {
			// Double, up to MaxSize+1: a body of unknown length costs at
			// most about twice its size in allocations (append's own
			// growth, 1.25x for large slices, would cost five times).
			grown := make([]byte, len(buf), min(2*cap(buf), MaxSize+1))
			copy(grown, buf)
			buf = grown
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > MaxSize {
			return nil, tooLarge(op)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, tooLarge(op)
			}
			return nil, errors.E(errors.InvalidRequest, "The request body could not be read completely; send the request again").WithCause(op, err)
		}
	}
}
