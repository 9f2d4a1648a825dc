package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func TestParseProxies(t *testing.T) {
	for _, tc := range []struct {
		spec, want string
		err        bool
	}{
		{"", "", false},
		{" , ", "", false},
		{"10.0.0.0/8", "10.0.0.0/8", false},
		{"10.1.2.3/8, 192.0.2.7 ,fd00::/8", "10.0.0.0/8,192.0.2.7/32,fd00::/8", false},
		{"2001:db8::1", "2001:db8::1/128", false},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", false},
		{"::ffff:10.0.0.1", "10.0.0.1/32", false},
		{"10.0.0.0/33", "", true},
		{"10.0.0", "", true},
		{"example.com", "", true},
		{"fe80::1%eth0", "", true},
		{"10.0.0.0/8,,bad", "", true},
	} {
		ps, err := ParseProxies(tc.spec)
		if (err != nil) != tc.err {
			t.Errorf("ParseProxies(%q) error = %v, want error %v", tc.spec, err, tc.err)
			continue
		}
		if err != nil {
			if !strings.Contains(err.Error(), "trusted proxy") {
				t.Errorf("ParseProxies(%q) error %q does not name the entry", tc.spec, err)
			}
			continue
		}
		if got := ps.String(); got != tc.want {
			t.Errorf("ParseProxies(%q) = %q, want %q", tc.spec, got, tc.want)
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted, err := ParseProxies("10.0.0.0/8, 2001:db8:ffff::/48")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		proxies Proxies
		remote  string
		xff     []string
		want    string
	}{
		{"no proxies", Proxies{}, "192.0.2.1:1234", nil, "192.0.2.1"},
		{"no proxies ignore XFF", Proxies{}, "192.0.2.1:1234", []string{"198.51.100.7"}, "192.0.2.1"},
		{"untrusted peer spoofing", trusted, "203.0.113.9:1234", []string{"198.51.100.7"}, "203.0.113.9"},
		{"trusted peer", trusted, "10.0.0.1:1234", []string{"198.51.100.7"}, "198.51.100.7"},
		{"trusted peer without XFF", trusted, "10.0.0.1:1234", nil, "10.0.0.1"},
		{"client-written entries ignored", trusted, "10.0.0.1:1234", []string{"1.2.3.4, 198.51.100.7"}, "198.51.100.7"},
		{"chain of proxies", trusted, "10.0.0.1:1234", []string{"1.2.3.4, 198.51.100.7, 10.9.9.9, 10.8.8.8"}, "198.51.100.7"},
		{"several header lines", trusted, "10.0.0.1:1234", []string{"1.2.3.4, 198.51.100.7", "10.9.9.9"}, "198.51.100.7"},
		{"all trusted", trusted, "10.0.0.1:1234", []string{"10.1.1.1, 10.2.2.2"}, "10.1.1.1"},
		{"garbage stops the walk", trusted, "10.0.0.1:1234", []string{"198.51.100.7, nonsense, 10.2.2.2"}, "10.2.2.2"},
		{"empty entries skipped", trusted, "10.0.0.1:1234", []string{" , 198.51.100.7 ,"}, "198.51.100.7"},
		{"entry with port", trusted, "10.0.0.1:1234", []string{"198.51.100.7:5000"}, "198.51.100.7"},
		{"bracketed IPv6 entry", trusted, "10.0.0.1:1234", []string{"[2001:db8::7]:5000"}, "2001:db8::7"},
		{"IPv6 peer", trusted, "[2001:db8:ffff::1]:443", []string{"2001:db8::9"}, "2001:db8::9"},
		{"mapped peer", trusted, "[::ffff:10.0.0.1]:443", []string{"198.51.100.7"}, "198.51.100.7"},
		{"mapped entry", trusted, "10.0.0.1:443", []string{"::ffff:198.51.100.7"}, "198.51.100.7"},
		{"zone dropped", Proxies{}, "[fe80::1%eth0]:443", nil, "fe80::1"},
		{"unix socket", trusted, "@", nil, "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.proxies.ClientIP(r).String(); got != tc.want {
				t.Errorf("ClientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIPSubject(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":             "ip:192.0.2.1",
		"::ffff:192.0.2.1":      "ip:192.0.2.1",
		"2001:db8:1:2:3:4:5:6":  "ip:2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::99": "ip:2001:db8:1:2::/64",
	} {
		if got := IPSubject(netip.MustParseAddr(in)); got != want {
			t.Errorf("IPSubject(%s) = %s, want %s", in, got, want)
		}
	}
	if got := IPSubject(netip.Addr{}); got != "ip:unknown" {
		t.Errorf("IPSubject(zero) = %s", got)
	}
}

func FuzzParseProxies(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "10.0.0.0/8, ::1", "::ffff:1.2.3.4/120", "x", "1.2.3.4/40"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ps, err := ParseProxies(spec)
		if err != nil {
			return
		}
		// What parses prints back to the same set.
		again, err := ParseProxies(ps.String())
		if err != nil || again.String() != ps.String() {
			t.Fatalf("ParseProxies(%q) = %q, which reparses to %q, %v", spec, ps, again, err)
		}
		for _, p := range ps.prefixes {
			if !p.IsValid() || p.Addr().Is4In6() || p != p.Masked() {
				t.Fatalf("ParseProxies(%q) kept prefix %v", spec, p)
			}
		}
	})
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.1:1", "1.2.3.4, 10.0.0.2")
	f.Add("203.0.113.1:1", "1.2.3.4")
	f.Add("[::1]:1", ",,,")
	trusted, _ := ParseProxies("10.0.0.0/8, ::1")
	f.Fuzz(func(t *testing.T, remote, xff string) {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		r.Header.Set("X-Forwarded-For", xff)
		got := trusted.ClientIP(r)
		peer := parseHost(remote)
		// An untrusted peer is always the answer, whatever the header says.
		if !trusted.Trusts(peer) && got != peer {
			t.Fatalf("untrusted peer %s, XFF %q: ClientIP = %s", remote, xff, got)
		}
		if got.IsValid() && (got.Is4In6() || got.Zone() != "") {
			t.Fatalf("ClientIP = %s: mapped or zoned", got)
		}
		if !got.IsValid() && peer.IsValid() {
			t.Fatalf("ClientIP lost a valid peer %s", peer)
		}
	})
}
