package client

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/authd-dev/authd/errors"
)

// Signer makes the X-Auth-Token of one request: a signature over target,
// the request-target the token covers, the body's bytes and the time.
type Signer interface {
	SignRequest(target string, body []byte, now time.Time) (token string, err error)
}

// DefaultMaxSignedBody is the largest body SigningTransport signs unless
// told otherwise.
const DefaultMaxSignedBody = 8 << 20

// SigningTransport is an http.RoundTripper that signs every attempt of a
// request with a Bitcoin key: it reads the body, has Signer make an
// X-Auth-Token over the request's path and query exactly as they will be
// sent (or, when Bound is set, over "<METHOD> <absolute URL>"), the body's
// SHA-256 and the current time, and sends the request with that header.
//
// Put it under a RetryTransport: each retry then carries a fresh token,
// which authd requires for POST, PUT, PATCH and DELETE (a signed unsafe
// request is accepted once).
type SigningTransport struct {
	// Next sends the signed request; nil means http.DefaultTransport.
	Next http.RoundTripper
	// Signer makes the tokens. Required.
	Signer Signer
	// Bound signs the method and absolute URL instead of the path and
	// query alone, so a token cannot be replayed against another method
	// or server. Set it only when the server accepts the bound form.
	Bound bool
	// MaxBody is the largest body signed; 0 means DefaultMaxSignedBody.
	// A larger body fails the request before anything is sent.
	MaxBody int64
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
}

// ErrBodyTooLarge is returned, wrapped, by SigningTransport for a body
// over its MaxBody.
var ErrBodyTooLarge = errors.New("client: request body too large to sign")

// RoundTrip implements http.RoundTripper. It does not modify req: it
// sends a copy carrying the token and the body it read.
func (t *SigningTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := t.readBody(req)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	if t.Signer == nil {
		return nil, errors.New("client: SigningTransport has no Signer")
	}
	tok, err := t.Signer.SignRequest(SignedTarget(req, t.Bound), body, now())
	if err != nil {
		return nil, errors.Errorf("client: signing %s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	r := req.Clone(req.Context())
	r.Header.Set("X-Auth-Token", tok)
	if req.Body != nil && req.Body != http.NoBody {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
	}
	next := t.Next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// readBody reads and closes req's body, at most MaxBody bytes.
func (t *SigningTransport) readBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return nil, nil
	}
	defer req.Body.Close()
	limit := t.MaxBody
	if limit <= 0 {
		limit = DefaultMaxSignedBody
	}
	if req.ContentLength > limit {
		return nil, errors.Errorf("%w: Content-Length %d over %d", ErrBodyTooLarge, req.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return nil, errors.Errorf("client: reading the body to sign: %w", err)
	}
	if int64(len(b)) > limit {
		return nil, errors.Errorf("%w: over %d bytes", ErrBodyTooLarge, limit)
	}
	return b, nil
}

// SignedTarget returns the request-target a token for req covers: the
// path and query exactly as net/http sends them (the origin-form of RFC
// 9112 §3.2.1), or with bound, "<METHOD> <scheme>://<host><path?query>".
func SignedTarget(req *http.Request, bound bool) string {
	t := req.URL.RequestURI()
	if !bound {
		return t
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	method := req.Method
	if method == "" {
		method = http.MethodGet
	}
	return method + " " + req.URL.Scheme + "://" + host + t
}
