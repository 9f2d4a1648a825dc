package clientdoc

import "net/netip"

// special is a special-purpose address block: one a metadata document is
// never fetched from.
type special struct {
	prefix netip.Prefix
	what   string
}

func block(p, what string) special { return special{netip.MustParsePrefix(p), what} }

// specialBlocks are the IANA IPv4 and IPv6 Special-Purpose Address
// Registries (RFC 6890 and its successors), with the other blocks that
// reach no public web server: multicast, the reserved 240/4 (with the
// limited broadcast address), and the IPv6 translation prefixes, through
// which a public-looking IPv6 address reaches an IPv4 one. Blocks that the
// registries mark globally reachable (the AS112 and AMT anycast services,
// for instance) are refused too: no client publishes its metadata there.
var specialBlocks = []special{
	block("0.0.0.0/8", `"this network" (RFC 791)`),
	block("10.0.0.0/8", "private-use (RFC 1918)"),
	block("100.64.0.0/10", "shared address space, carrier-grade NAT (RFC 6598)"),
	block("127.0.0.0/8", "loopback (RFC 1122)"),
	block("169.254.0.0/16", "link-local (RFC 3927)"),
	block("172.16.0.0/12", "private-use (RFC 1918)"),
	block("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
	block("192.0.2.0/24", "documentation, TEST-NET-1 (RFC 5737)"),
	block("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
	block("192.52.193.0/24", "AMT (RFC 7450)"),
	block("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
	block("192.168.0.0/16", "private-use (RFC 1918)"),
	block("192.175.48.0/24", "direct delegation AS112 service (RFC 7534)"),
	block("198.18.0.0/15", "benchmarking (RFC 2544)"),
	block("198.51.100.0/24", "documentation, TEST-NET-2 (RFC 5737)"),
	block("203.0.113.0/24", "documentation, TEST-NET-3 (RFC 5737)"),
	block("224.0.0.0/4", "multicast (RFC 5771)"),
	block("240.0.0.0/4", "reserved, and the limited broadcast address (RFC 1112, RFC 919)"),

	block("::/128", "the unspecified address (RFC 4291)"),
	block("::1/128", "loopback (RFC 4291)"),
	block("::ffff:0:0/96", "IPv4-mapped (RFC 4291)"),
	block("64:ff9b::/96", "IPv4/IPv6 translation, NAT64 (RFC 6052)"),
	block("64:ff9b:1::/48", "local-use IPv4/IPv6 translation (RFC 8215)"),
	block("100::/64", "discard-only (RFC 6666)"),
	block("2001::/23", "IETF protocol assignments, Teredo included (RFC 2928, RFC 4380)"),
	block("2001:db8::/32", "documentation (RFC 3849)"),
	block("2002::/16", "6to4 (RFC 3056)"),
	block("2620:4f:8000::/48", "direct delegation AS112 service (RFC 7534)"),
	block("3fff::/20", "documentation (RFC 9637)"),
	block("5f00::/16", "segment routing SIDs (RFC 9602)"),
	block("fc00::/7", "unique-local (RFC 4193)"),
	block("fe80::/10", "link-local (RFC 4291)"),
	block("fec0::/10", "deprecated site-local (RFC 3879)"),
	block("ff00::/8", "multicast (RFC 4291)"),
}

// globalUnicast6 is the only IPv6 space allocated for global unicast
// (RFC 4291 §2.4): everything outside it is reserved or special.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// Refused returns why a metadata document may not be fetched from a, or
// "" when it may: a must be a public unicast address, outside every
// special-purpose block. An IPv4-mapped IPv6 address is refused whatever
// IPv4 address it carries, and so is an address with a zone.
func Refused(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "not an IP address"
	case a.Zone() != "":
		return "a scoped address (with a zone)"
	}
	for _, b := range specialBlocks {
		if b.prefix.Contains(a) {
			return b.what
		}
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return "outside IPv6 global unicast space 2000::/3 (RFC 4291)"
	}
	return ""
}
