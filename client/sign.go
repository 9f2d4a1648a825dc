package client

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/errors"
)

// Signer makes the X-Auth-Token of one request from the options
// SigningTransport fills in: the request target (RequestPath, or Method
// and URL for the bound form), the body and the time. *authtoken.Signer,
// made from a WIF private key with authtoken.NewSigner, is one; a
// hardware wallet can be another (authtoken.SignedMessage says what to
// sign).
type Signer interface {
	Token(opts authtoken.TokenOptions) (string, error)
}

// DefaultMaxSignedBody is the largest body SigningTransport signs unless
// told otherwise.
const DefaultMaxSignedBody = 8 << 20

// SigningTransport is an http.RoundTripper that signs every attempt of a
// request with a Bitcoin key: it reads the body, has Signer make an
// X-Auth-Token over the request target ("<METHOD> <absolute URL>", the
// path and query exactly as they will be sent; or, when Unbound is set,
// the path and query alone), the body's SHA-256 and the current time, and
// sends the request with that header.
//
// Put it under a RetryTransport: each retry then carries a fresh token,
// which authd requires for POST, PUT, PATCH and DELETE (a signed unsafe
// request is accepted once).
type SigningTransport struct {
	// Next sends the signed request; nil means http.DefaultTransport.
	Next http.RoundTripper
	// Signer makes the tokens. Required.
	Signer Signer
	// Format is the token syntax: authtoken.FormatSigma (the default) or
	// authtoken.FormatBitcoinAuth, as the npm bitcoin-auth library makes.
	Format string
	// Scheme is the signature scheme of the bitcoin-auth syntax:
	// authtoken.SchemeBSM (the default) or authtoken.SchemeBRC77.
	Scheme string
	// Unbound signs the request's path and query alone, for servers that
	// predate the bound form. By default a token signs the method and the
	// absolute URL the request is sent to ("<METHOD> <absolute URL>"), so
	// it is good for that method at that server only; authd then needs
	// the URL to be its issuer followed by the path and query, so send
	// requests to the issuer's scheme, host and port exactly as it names
	// them.
	Unbound bool
	// Origin, when set ("https://auth.example.com"), is the one scheme,
	// host and port requests are signed for; a request anywhere else fails
	// with ErrForeignOrigin before it is signed or sent. A token is a
	// credential: without Origin, a redirect followed by the http.Client
	// would carry a fresh one to whatever server it names.
	Origin string
	// MaxBody is the largest body signed; 0 means DefaultMaxSignedBody.
	// A larger body fails the request before anything is sent.
	MaxBody int64
	// Now is the signing clock; nil means time.Now.
	Now func() time.Time
}

// Errors of SigningTransport, returned wrapped.
var (
	// ErrBodyTooLarge: the body is over MaxBody.
	ErrBodyTooLarge = errors.New("client: request body too large to sign")
	// ErrForeignOrigin: the request goes to another origin than Origin.
	ErrForeignOrigin = errors.New("client: refusing to sign a request to another origin")
)

// sameOrigin reports whether u has origin's scheme and host (with port,
// compared without case).
func sameOrigin(origin string, u *url.URL) bool {
	o, err := url.Parse(origin)
	return err == nil && strings.EqualFold(o.Scheme, u.Scheme) && strings.EqualFold(o.Host, u.Host)
}

// NewSignedClient returns an *http.Client for calling the authd at issuer
// as the holder of signer's key: every request, and every retry of it,
// carries a fresh X-Auth-Token (SigningTransport, restricted to issuer's
// origin); 429 and 503 answers are retried as they ask (RetryTransport);
// redirects are not followed (the response is returned), so that no token
// is made for another server; and each request, retries included, has
// a minute.
func NewSignedClient(issuer string, signer Signer) *http.Client {
	return &http.Client{
		Transport:     &RetryTransport{Next: &SigningTransport{Signer: signer, Origin: issuer}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       time.Minute,
	}
}

// RoundTrip implements http.RoundTripper. It does not modify req: it
// sends a copy carrying the token and the body it read.
func (t *SigningTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.Signer == nil {
		return nil, errors.New("client: SigningTransport has no Signer")
	}
	if t.Origin != "" && !sameOrigin(t.Origin, req.URL) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errors.Errorf("%w: %s", ErrForeignOrigin, req.URL.Redacted())
	}
	body, err := t.readBody(req)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if t.Now != nil {
		now = t.Now
	}
	opts := authtoken.TokenOptions{Format: t.Format, Scheme: t.Scheme, Body: body, Timestamp: now()}
	if t.Unbound {
		opts.RequestPath = req.URL.RequestURI()
	} else {
		opts.Method, opts.URL = signedMethodURL(req)
	}
	tok, err := t.Signer.Token(opts)
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

// signedMethodURL returns the method and absolute URL of the bound form:
// the URL the request is sent to, its path and query exactly as the
// request line carries them.
func signedMethodURL(req *http.Request) (method, absoluteURL string) {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	method = req.Method
	if method == "" {
		method = http.MethodGet
	}
	return method, req.URL.Scheme + "://" + host + req.URL.RequestURI()
}
