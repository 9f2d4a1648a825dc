package clientdoc

import (
	"net/netip"
	"strings"
	"testing"
)

// TestRefused: every special-purpose block is refused from its first to
// its last address, public neighbours of the blocks are not, and each
// refusal names the block.
func TestRefused(t *testing.T) {
	for _, b := range specialBlocks {
		first := b.prefix.Masked().Addr()
		last := lastAddr(b.prefix)
		for _, a := range []netip.Addr{first, last} {
			if why := Refused(a); why == "" {
				t.Errorf("%s (in %s) is not refused", a, b.prefix)
			}
		}
	}
	for _, tc := range []struct {
		addr string
		want string // part of the reason; "" = allowed
	}{
		// Public IPv4, next to the blocks.
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"9.255.255.255", ""},
		{"11.0.0.0", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"126.255.255.255", ""},
		{"128.0.0.0", ""},
		{"169.253.255.255", ""},
		{"169.255.0.0", ""},
		{"172.15.255.255", ""},
		{"172.32.0.0", ""},
		{"192.0.1.0", ""},
		{"192.167.255.255", ""},
		{"192.169.0.0", ""},
		{"198.17.255.255", ""},
		{"198.20.0.0", ""},
		{"223.255.255.255", ""},
		// Special IPv4.
		{"0.0.0.0", "this network"},
		{"0.1.2.3", "this network"},
		{"10.0.0.1", "private-use"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"169.254.169.254", "link-local"},
		{"172.16.0.1", "private-use"},
		{"172.31.255.255", "private-use"},
		{"192.0.0.8", "IETF protocol assignments"},
		{"192.0.2.1", "TEST-NET-1"},
		{"192.88.99.1", "6to4"},
		{"192.168.1.1", "private-use"},
		{"198.18.0.1", "benchmarking"},
		{"198.51.100.7", "TEST-NET-2"},
		{"203.0.113.9", "TEST-NET-3"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "broadcast"},
		// Public IPv6.
		{"2606:4700:4700::1111", ""},
		{"2a00:1450:4001:82b::200e", ""},
		{"2001:200::1", ""},
		// Special IPv6.
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "IPv4-mapped"},
		{"::ffff:10.0.0.1", "IPv4-mapped"},
		{"::ffff:8.8.8.8", "IPv4-mapped"},
		{"::127.0.0.1", "outside IPv6 global unicast"}, // IPv4-compatible, deprecated
		{"64:ff9b::a9fe:a9fe", "NAT64"},
		{"64:ff9b:1::1", "local-use IPv4/IPv6 translation"},
		{"100::1", "discard-only"},
		{"2001::1", "Teredo"},
		{"2001:db8::1", "documentation"},
		{"2002:a00:1::1", "6to4"},
		{"3fff::1", "documentation"},
		{"fc00::1", "unique-local"},
		{"fd12:3456::1", "unique-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "zone"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"4000::1", "outside IPv6 global unicast"},
	} {
		a := netip.MustParseAddr(tc.addr)
		got := Refused(a)
		switch {
		case tc.want == "" && got != "":
			t.Errorf("Refused(%s) = %q, want it allowed", tc.addr, got)
		case tc.want != "" && !strings.Contains(got, tc.want):
			t.Errorf("Refused(%s) = %q, want it refused as %q", tc.addr, got, tc.want)
		}
	}
	if Refused(netip.Addr{}) == "" {
		t.Error("the zero Addr is allowed")
	}
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr()
	b := a.AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	last, _ := netip.AddrFromSlice(b)
	return last
}
