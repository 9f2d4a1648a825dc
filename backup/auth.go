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
// that is unknown) and the body it read on the way.
type identity struct {
	subject string
	err     error
	body    []byte
}

type identityKey struct{}

func identityFrom(ctx context.Context) *identity {
	id, _ := ctx.Value(identityKey{}).(*identity)
	return id
}

// Identify reads the request body (at most MaxSize bytes: a declared
// Content-Length over the limit is refused unread, a longer chunked body
// after MaxSize+1 bytes), authenticates the request once — X-Auth-Token or
// Authorization: Bitcoin-Auth through the Wallet, Authorization: Bearer
// through the Bearer with scope "backup" — and stores the outcome in the
// request's context without failing the request, so that a rate limiter
// placed between Identify and Handler can key on SubjectFromContext.
// Handler then answers with the stored error, if any: backup_too_large for
// an oversize body (whatever the credentials), missing_auth_token,
// invalid_request (two kinds of credentials at once), or the Wallet's or
// Bearer's own error.
//
// Identify gives next a request whose Body reads the same bytes again.
// Handler works without Identify too (it then authenticates by itself);
// Identify must not run twice on one request, or a signed PUT would meet
// the signature replay guard.
func (s *Service) Identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := s.identify(r)
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		if id.body != nil {
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

// identify reads r's body and authenticates r.
func (s *Service) identify(r *http.Request) *identity {
	body, err := readBody(r)
	if err != nil {
		return &identity{err: err}
	}
	// The verifier gets its own reader over the body: whatever it does
	// with it, the handler reads the bytes again from id.body.
	ar := r.WithContext(r.Context())
	ar.Body = io.NopCloser(bytes.NewReader(body))
	ar.ContentLength = int64(len(body))
	if body == nil {
		ar.Body = http.NoBody
	}
	sub, err := s.authenticate(ar)
	return &identity{subject: sub, err: err, body: body}
}

// authenticate picks the credential kind the request carries and asks the
// matching verifier.
func (s *Service) authenticate(r *http.Request) (string, error) {
	const op = "backup.authenticate"
	scheme := strings.ToLower(authScheme(r.Header.Get("Authorization")))
	bearer := scheme == "bearer"
	wallet := r.Header.Get("X-Auth-Token") != "" || scheme == "bitcoin-auth"
	var sub string
	var err error
	switch {
	case bearer && wallet:
		return "", &errors.Error{Code: errors.InvalidRequest, Op: op,
			Description: "Send one credential: either X-Auth-Token (or Authorization: Bitcoin-Auth) or Authorization: Bearer, not both"}
	case bearer && s.bearer == nil:
		return "", &errors.Error{Code: errors.MissingAuthToken, Op: op,
			Description: "Bearer tokens are not accepted here; sign the request and send the token in X-Auth-Token"}
	case bearer:
		sub, err = s.bearer.AuthenticateBearer(r, Scope)
		var e *errors.Error
		if errors.As(err, &e) && e.Code == errors.InsufficientScope && e.Scope == "" {
			c := *e
			c.Scope = Scope
			err = &c
		}
	case wallet:
		sub, err = s.wallet.AuthenticateWallet(r)
	default:
		desc := "X-Auth-Token header is required for Bitcoin authentication; sign the request with your key (for example with authd token sign)"
		if s.bearer != nil {
			desc += " or send Authorization: Bearer with an access token of scope backup"
		}
		return "", &errors.Error{Code: errors.MissingAuthToken, Op: op, Description: desc}
	}
	if err == nil && sub == "" {
		err = &errors.Error{Code: errors.ServerError, Op: op, Err: errors.New("verifier returned no subject and no error")}
	}
	if err != nil {
		return "", err
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
			return nil, &errors.Error{Code: errors.InvalidRequest, Op: op, Err: err,
				Description: "The request body could not be read completely; send the request again"}
		}
	}
}
