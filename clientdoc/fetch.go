// Package clientdoc fetches OAuth Client ID Metadata Documents
// (draft-ietf-oauth-client-id-metadata-document): the JSON a client
// publishes at the https URL it uses as its client_id, in place of a
// registration.
//
// The URL comes from whoever sends an authorization request, so fetching
// it is a server-side request forgery risk: a Fetcher fetches only from
// public unicast addresses (see Refused). It resolves the host once,
// refuses the whole name when any of its addresses is special-purpose,
// dials exactly the address it checked, and checks the connected address
// again on the socket, so a DNS answer that changes between the check and
// the connection (DNS rebinding) gains nothing. It never uses a proxy,
// never follows a redirect, gives up after Timeout (5 seconds) and reads
// at most MaxSize (5 KiB). For tests and development, Config.AllowLoopback
// accepts client_ids of the exact form http://127.0.0.1:PORT/path.
//
// Caching is the caller's: a document is cacheable only once the caller
// has found it valid, and Document.Expires says until when.
package clientdoc

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/authd-dev/authd/errors"
)

// Limits of a fetch, and the bounds on how long a document is fresh.
const (
	DefaultTimeout = 5 * time.Second
	MaxSize        = 5 << 10 // bytes of body
	MinFreshness   = 5 * time.Minute
	MaxFreshness   = 24 * time.Hour
	// MaxURLLength bounds a client_id URL.
	MaxURLLength = 2000
	// maxHeaderBytes bounds the response headers.
	maxHeaderBytes = 16 << 10
)

// loopbackPrefix starts every client_id Config.AllowLoopback admits.
const loopbackPrefix = "http://127.0.0.1:"

// Resolver resolves host names; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Config configures a Fetcher. The zero value is the production
// configuration.
type Config struct {
	// AllowLoopback accepts client_ids of the form
	// http://127.0.0.1:PORT/path and fetches them from 127.0.0.1. For
	// tests and development only: it lets anyone who can send an
	// authorization request make the server fetch from its own host.
	AllowLoopback bool
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// RootCAs are the certificate authorities trusted for https; nil
	// means the system's.
	RootCAs *x509.CertPool
	// Timeout bounds a whole fetch, body included; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// Now is the clock of Document.Expires; nil means time.Now.
	Now func() time.Time
}

// Fetcher fetches Client ID Metadata Documents. It is safe for
// concurrent use.
type Fetcher struct {
	cfg      Config
	public   *http.Client // public unicast addresses only
	loopback *http.Client // 127.0.0.1 only; nil unless AllowLoopback
}

// New returns a Fetcher for cfg.
func New(cfg Config) *Fetcher {
	if cfg.Resolver == nil {
		cfg.Resolver = net.DefaultResolver
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Fetcher{cfg: cfg}
	f.public = f.client(Refused)
	if cfg.AllowLoopback {
		f.loopback = f.client(func(a netip.Addr) string {
			if a != netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
				return "not 127.0.0.1"
			}
			return ""
		})
	}
	return f
}

// client returns an HTTP client that connects only to addresses refused
// says "" for.
func (f *Fetcher) client(refused func(netip.Addr) string) *http.Client {
	d := &dialer{resolver: f.cfg.Resolver, refused: refused, timeout: f.cfg.Timeout}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                  nil, // never through a proxy: it would fetch from anywhere
			DialContext:            d.dial,
			TLSClientConfig:        &tls.Config{RootCAs: f.cfg.RootCAs, MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:    f.cfg.Timeout,
			ResponseHeaderTimeout:  f.cfg.Timeout,
			MaxResponseHeaderBytes: maxHeaderBytes,
			DisableKeepAlives:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       f.cfg.Timeout,
	}
}

// IsURL reports whether the server treats id as a Client Identifier URL,
// to be fetched rather than looked up: it starts with https://, or, when
// loopback is allowed, with http://127.0.0.1:. Whether it is a valid one
// is Fetch's to say.
func (f *Fetcher) IsURL(id string) bool {
	return strings.HasPrefix(id, "https://") || (f.cfg.AllowLoopback && strings.HasPrefix(id, loopbackPrefix))
}

// Document is a fetched Client ID Metadata Document: a JSON object whose
// client_id is the URL it was fetched from.
type Document struct {
	// Body is the document as it was served.
	Body []byte
	// Fields are its members, undecoded.
	Fields map[string]json.RawMessage
	// Expires is when the document stops being fresh, from its HTTP
	// caching headers (RFC 9111), bounded to [MinFreshness, MaxFreshness]
	// from now.
	Expires time.Time
}

// errDoc is the one error of a fetch: invalid_client_metadata, saying
// what was wrong with the document or its URL, never what it contained.
func errDoc(why string, cause error) *errors.Error {
	e := errors.E(errors.InvalidClientMetadata, "Client ID Metadata Document: "+why)
	if cause != nil {
		e = e.WithCause("clientdoc.Fetch", cause)
	}
	return e
}

// CheckURL checks that id is a Client Identifier URL the Fetcher may
// fetch: https (or http://127.0.0.1:PORT with AllowLoopback), a host, a
// path without "." or ".." segments, no user information, no fragment,
// at most MaxURLLength characters of printable ASCII. A query is allowed.
//
// Errors: invalid_client_metadata saying what is wrong.
func (f *Fetcher) CheckURL(id string) (*url.URL, error) {
	bad := func(why string) (*url.URL, error) {
		return nil, errDoc("the client_id is not a valid Client Identifier URL: "+why, nil)
	}
	if len(id) > MaxURLLength {
		return bad("longer than " + strconv.Itoa(MaxURLLength) + " characters")
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= 0x20 || id[i] >= 0x7f {
			return bad("it must be printable ASCII without spaces")
		}
	}
	if strings.Contains(id, "#") {
		return bad("it must not have a fragment")
	}
	u, err := url.Parse(id)
	if err != nil || u.Opaque != "" {
		return bad("it does not parse as a URL")
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && f.cfg.AllowLoopback:
		if !strings.HasPrefix(id, loopbackPrefix) || u.Hostname() != "127.0.0.1" || u.Port() == "" {
			return bad("it must use https, or with the loopback exception be http://127.0.0.1:PORT/path")
		}
	default:
		return bad("it must use https")
	}
	if u.User != nil {
		return bad("it must not contain user information")
	}
	if u.Hostname() == "" {
		return bad("it must name a host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("its port is not 1-65535")
		}
	}
	if u.EscapedPath() == "" {
		return bad("it must have a path, such as https://app.example/oauth/client.json")
	}
	for _, seg := range strings.Split(u.EscapedPath(), "/") {
		if d, err := url.PathUnescape(seg); err == nil && (d == "." || d == "..") {
			return bad(`its path must not have "." or ".." segments`)
		}
	}
	return u, nil
}

// Fetch fetches and checks the Client ID Metadata Document at clientID:
// status 200, a JSON media type (application/json, or application/…+json),
// at most MaxSize bytes of a JSON object whose client_id member is exactly
// clientID (RFC 3986 §6.2.1 simple string comparison). What the members
// mean is the caller's to check.
//
// Errors: invalid_client_metadata, with a description of what was wrong
// (an address that may not be fetched, a redirect, a timeout, a body too
// large, not JSON, another client_id), never echoing what was fetched.
func (f *Fetcher) Fetch(ctx context.Context, clientID string) (*Document, error) {
	u, err := f.CheckURL(clientID)
	if err != nil {
		return nil, err
	}
	c := f.public
	if u.Scheme == "http" {
		c = f.loopback
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, clientID, nil)
	if err != nil {
		return nil, errDoc("the client_id does not parse as a URL", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "authd (Client ID Metadata Document fetch)")
	start := f.cfg.Now()
	resp, err := c.Do(req)
	if err != nil {
		return nil, fetchError(err, f.cfg.Timeout)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, errDoc("the server answered with a redirect (HTTP "+strconv.Itoa(resp.StatusCode)+"); redirects are not followed, serve the document at the client_id URL itself", nil)
	case resp.StatusCode != http.StatusOK:
		return nil, errDoc("the server answered HTTP "+strconv.Itoa(resp.StatusCode)+", not 200", nil)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil ||
		!(mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil, errDoc("the server must send it with Content-Type application/json", nil)
	}
	if resp.ContentLength > MaxSize {
		return nil, errDoc("it is larger than "+strconv.Itoa(MaxSize)+" bytes", nil)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxSize+1))
	if err != nil {
		return nil, fetchError(err, f.cfg.Timeout)
	}
	if len(body) > MaxSize {
		return nil, errDoc("it is larger than "+strconv.Itoa(MaxSize)+" bytes", nil)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, errDoc("it is not a JSON object", err)
	}
	var id string
	if raw, ok := fields["client_id"]; !ok {
		return nil, errDoc("it has no client_id member", nil)
	} else if json.Unmarshal(raw, &id) != nil || id != clientID {
		return nil, errDoc("its client_id member is not exactly the URL it was fetched from", nil)
	}
	return &Document{Body: body, Fields: fields, Expires: start.Add(Freshness(resp.Header, start))}, nil
}

// fetchError describes a failed request without the details of the
// network, which go to the log as the cause.
func fetchError(err error, timeout time.Duration) *errors.Error {
	var ra *refusedAddr
	switch {
	case errors.As(err, &ra):
		return errDoc("its host resolves to an address that may not be fetched: "+ra.why, err)
	case errors.Is(err, errNoAddress):
		return errDoc("its host name could not be resolved", err)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return errDoc("the server did not answer within "+timeout.String(), err)
	}
	var ce *tls.CertificateVerificationError
	var he tls.RecordHeaderError
	if errors.As(err, &ce) || errors.As(err, &he) {
		return errDoc("the TLS connection failed: the server's certificate is not trusted for its host", err)
	}
	return errDoc("the server could not be reached", err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Freshness is how long a response with headers h, received at now,
// stays fresh (RFC 9111 §4.2.1: s-maxage, max-age, or Expires minus
// Date; less Age), bounded to [MinFreshness, MaxFreshness]. no-store,
// no-cache and a response without any of those headers get MinFreshness:
// authd never fetches a document more often.
func Freshness(h http.Header, now time.Time) time.Duration {
	var life time.Duration
	known := false
	directives := map[string]string{}
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			directives[strings.ToLower(k)] = strings.Trim(val, `"`)
		}
	}
	_, noStore := directives["no-store"]
	_, noCache := directives["no-cache"]
	switch {
	case noStore || noCache:
		known = true
	case directives["s-maxage"] != "":
		life, known = seconds(directives["s-maxage"])
	case directives["max-age"] != "":
		life, known = seconds(directives["max-age"])
	case h.Get("Expires") != "":
		exp, err := http.ParseTime(h.Get("Expires"))
		if err != nil {
			known = true // an invalid Expires means already expired (RFC 9111 §5.3)
			break
		}
		date := now
		if d, err := http.ParseTime(h.Get("Date")); err == nil {
			date = d
		}
		life, known = exp.Sub(date), true
	}
	if age, ok := seconds(h.Get("Age")); ok && known {
		life -= age
	}
	return min(max(life, MinFreshness), MaxFreshness)
}

// seconds parses a delta-seconds value (RFC 9111 §1.2.2).
func seconds(s string) (time.Duration, bool) {
	if s == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return MaxFreshness, true
		}
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// errNoAddress is a host name that resolved to nothing.
var errNoAddress = errors.New("clientdoc: host has no address")

// refusedAddr is an address a fetch may not connect to.
type refusedAddr struct {
	host string
	addr netip.Addr
	why  string
}

func (e *refusedAddr) Error() string {
	return "clientdoc: " + e.host + " is " + e.addr.String() + ", " + e.why
}

// dialer connects to a host's checked address, and only to it.
type dialer struct {
	resolver Resolver
	refused  func(netip.Addr) string
	timeout  time.Duration
}

// dial resolves addr's host once, refuses it when any of its addresses
// may not be fetched, and connects to the checked addresses in turn; the
// socket's Control checks the address it connects to once more.
func (d *dialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	ips, err := d.resolve(ctx, host)
	if err != nil {
		return nil, err
	}
	for _, ip := range ips {
		if why := d.refused(ip); why != "" {
			return nil, &refusedAddr{host: host, addr: ip, why: why}
		}
	}
	nd := &net.Dialer{Timeout: d.timeout, Control: d.control}
	var first error
	for _, ip := range ips {
		c, err := nd.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// resolve returns host's addresses: host itself when it is an IP
// literal, else its A records (as IPv4 addresses) and AAAA records (as
// they are: an IPv4-mapped address there is refused).
func (d *dialer) resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip}, nil
	}
	v4, err4 := d.resolver.LookupNetIP(ctx, "ip4", host)
	v6, err6 := d.resolver.LookupNetIP(ctx, "ip6", host)
	var ips []netip.Addr
	for _, ip := range v4 {
		ips = append(ips, ip.Unmap()) // net.Resolver hands IPv4 answers over in the mapped form
	}
	ips = append(ips, v6...)
	if len(ips) == 0 {
		return nil, errors.Join(errNoAddress, err4, err6)
	}
	return ips, nil
}

// control is the socket's last check before it connects: the address it
// connects to must be allowed.
func (d *dialer) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return err
	}
	ip := ap.Addr()
	if ip.Is4In6() && (network == "tcp4" || network == "udp4") {
		ip = ip.Unmap()
	}
	if why := d.refused(ip); why != "" {
		return &refusedAddr{host: address, addr: ip, why: why}
	}
	return nil
}
