package oauth_test

import (
	"testing"

	"github.com/authd-dev/authd/oauth"
)

func TestCheckIssuer(t *testing.T) {
	for _, tt := range []struct {
		issuer string
		ok     bool
	}{
		{"https://auth.example.com", true},
		{"https://auth.example.com:8443/tenant", true},
		{"http://localhost:8080", true},
		{"http://127.0.0.1:9000", true},
		{"http://127.0.0.2", true},
		{"http://[::1]:8080", true},
		{"http://[::ffff:127.0.0.1]:8080", true},
		{"https://localhost", true},

		{"", false},
		{"auth.example.com", false},
		{"/auth", false},
		{"https://", false},
		{"https://auth.example.com/", false},
		{"https://auth.example.com?x=1", false},
		{"https://auth.example.com?", false},
		{"https://auth.example.com#f", false},
		{"https://auth.example.com#", false},
		{"https://user@auth.example.com", false},
		{"http://auth.example.com", false},
		{"http://localhost.example.com", false},
		{"http://10.0.0.1", false},
		{"ftp://auth.example.com", false},
		{"mailto:admin@example.com", false},
	} {
		err := oauth.CheckIssuer(tt.issuer)
		if (err == nil) != tt.ok {
			t.Errorf("CheckIssuer(%q) = %v, want ok = %v", tt.issuer, err, tt.ok)
		}
	}
}

func TestLoopbackHost(t *testing.T) {
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"localhost", true}, {"127.0.0.1", true}, {"127.255.0.9", true}, {"::1", true},
		{"::ffff:127.0.0.1", true},
		{"", false}, {"LOCALHOST.", false}, {"localhost.example.com", false}, {"0.0.0.0", false},
		{"::", false}, {"10.0.0.1", false}, {"example.com", false}, {"[::1]", false},
	} {
		if got := oauth.LoopbackHost(tt.host); got != tt.want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}
