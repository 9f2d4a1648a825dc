package ratelimit

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/authd-dev/authd/errors"
)

// Proxies is the set of reverse proxies whose X-Forwarded-For authd
// believes (AUTHD_TRUSTED_PROXIES). The zero value trusts no one: the
// client IP is then always the connection's address.
type Proxies struct {
	prefixes []netip.Prefix
}

// ParseProxies parses a comma-separated list of CIDR prefixes or single
// addresses ("10.0.0.0/8, 192.0.2.7, fd00::/8"), the value of
// AUTHD_TRUSTED_PROXIES. An empty spec trusts no proxy. It returns a plain
// error quoting the first entry that is not a prefix or an address.
func ParseProxies(spec string) (Proxies, error) {
	var ps Proxies
	for _, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(entry, "/") {
			var err error
			p, err = netip.ParsePrefix(entry)
			if err != nil {
				return Proxies{}, errors.Errorf("trusted proxy %q is not a CIDR prefix or an IP address", entry)
			}
		} else {
			a, err := netip.ParseAddr(entry)
			if err != nil || a.Zone() != "" {
				return Proxies{}, errors.Errorf("trusted proxy %q is not a CIDR prefix or an IP address", entry)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			a := p.Addr().Unmap()
			bits := p.Bits() - 96
			if bits < 0 {
				return Proxies{}, errors.Errorf("trusted proxy %q is not a CIDR prefix or an IP address", entry)
			}
			p = netip.PrefixFrom(a, bits)
		}
		ps.prefixes = append(ps.prefixes, p.Masked())
	}
	return ps, nil
}

// Trusts reports whether a is one of the trusted proxies.
func (ps Proxies) Trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range ps.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// String returns the trusted prefixes, comma-separated.
func (ps Proxies) String() string {
	s := make([]string, len(ps.prefixes))
	for i, p := range ps.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// ClientIP returns the address of the client that sent r. It is the
// connection's peer address unless that peer is a trusted proxy; then
// X-Forwarded-For is walked from right to left, past trusted proxies, and
// the first address that is not a trusted proxy is the client. Entries left
// of it were written by the client and are never believed. When every
// entry is a trusted proxy, or an entry is not an address, the last
// address reached is the client, so a malformed header can only make the
// answer more conservative. IPv4-mapped IPv6 addresses are unmapped. The
// zero Addr means the peer address could not be read (r.RemoteAddr is not
// an IP, as on a Unix socket).
func (ps Proxies) ClientIP(r *http.Request) netip.Addr {
	peer := parseHost(r.RemoteAddr)
	if !peer.IsValid() || len(ps.prefixes) == 0 || !ps.Trusts(peer) {
		return peer
	}
	client := peer
	hops := r.Header.Values("X-Forwarded-For")
	for i := len(hops) - 1; i >= 0; i-- {
		line := hops[i]
		for line != "" {
			var hop string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				hop, line = line[j+1:], line[:j]
			} else {
				hop, line = line, ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue
			}
			a := parseHost(hop)
			if !a.IsValid() {
				return client
			}
			client = a
			if !ps.Trusts(a) {
				return client
			}
		}
	}
	return client
}

// parseHost parses "ip", "ip:port", "[ipv6]:port" or "[ipv6]" into an
// unmapped address without zone, or the zero Addr.
func parseHost(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap().WithZone("")
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap().WithZone("")
		}
	}
	return netip.Addr{}
}

// IPSubject returns the rate-limit subject for a client address: "ip:" and
// the IPv4 address, or "ip:" and the address's /64 prefix for IPv6, since
// one IPv6 client usually holds a whole /64 and could otherwise rotate
// addresses to escape its limit. The zero Addr gives "ip:unknown", one
// shared subject for every client whose address cannot be read.
func IPSubject(a netip.Addr) string {
	if !a.IsValid() {
		return "ip:unknown"
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + a.String()
}
