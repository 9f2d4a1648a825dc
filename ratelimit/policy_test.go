package ratelimit

import (
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	want := map[string]struct {
		limit  int
		window time.Duration
	}{
		Token: {10, time.Minute}, Authorize: {20, time.Minute}, Login: {5, time.Minute},
		Userinfo: {100, time.Minute}, BackupRead: {20, time.Minute}, BackupWrite: {10, time.Minute},
		BackupIP: {60, time.Minute}, Introspect: {600, time.Minute}, Revoke: {60, time.Minute},
		Register: {10, time.Hour},
	}
	ps := Defaults()
	if len(ps) != len(want) {
		t.Fatalf("Defaults has %d policies, want %d", len(ps), len(want))
	}
	for name, w := range want {
		p := ps[name]
		if p.Name != name || p.Limit != w.limit || p.Window != w.window || p.Validate() != nil {
			t.Errorf("Defaults()[%q] = %+v", name, p)
		}
	}
}

func TestParsePolicies(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want string // Policies.String of the result, or the error's text
		err  bool
	}{
		{"", Defaults().String(), false},
		{" , ", Defaults().String(), false},
		{"token=100/1m", strings.Replace(Defaults().String(), "token=10/1m0s", "token=100/1m0s", 1), false},
		{" login = 3 / 30s , backup_write=1/1h", strings.NewReplacer("login=5/1m0s", "login=3/30s", "backup_write=10/1m0s", "backup_write=1/1h0m0s").Replace(Defaults().String()), false},
		{"token=10/90s", strings.Replace(Defaults().String(), "token=10/1m0s", "token=10/1m30s", 1), false},
		{"introspect=5000/1m,revoke=1/1s", strings.NewReplacer("introspect=600/1m0s", "introspect=5000/1m0s", "revoke=60/1m0s", "revoke=1/1s").Replace(Defaults().String()), false},
		{"tokne=10/1m", `rate limit "tokne=10/1m": unknown policy "tokne"`, true},
		{"token=10/1m,token=5/1m", `rate limit "token=5/1m": policy "token" given twice`, true},
		{"token", `rate limit "token": want name=limit/window`, true},
		{"token=10", `rate limit "token=10": want name=limit/window`, true},
		{"token=ten/1m", `rate limit "token=ten/1m": limit "ten" is not an integer`, true},
		{"token=0/1m", `rate limit "token=0/1m": policy token: limit 0 outside`, true},
		{"token=1000001/1m", `rate limit "token=1000001/1m": policy token: limit 1000001 outside`, true},
		{"token=10/1500ms", `rate limit "token=10/1500ms": policy token: window 1.5s is not a whole number of seconds`, true},
		{"token=10/25h", `window 25h0m0s is not`, true},
		{"token=10/0s", `window 0s is not`, true},
		{"token=10/minute", `rate limit "token=10/minute": window "minute" is not a duration`, true},
		{"Token=10/1m", `policy name "Token"`, true},
	} {
		ps, err := ParsePolicies(tc.spec)
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ParsePolicies(%q) error = %v, want one containing %q", tc.spec, err, tc.want)
			}
			continue
		}
		if err != nil || ps.String() != tc.want {
			t.Errorf("ParsePolicies(%q) = %q, %v\nwant %q", tc.spec, ps, err, tc.want)
		}
	}
}

func FuzzParsePolicies(f *testing.F) {
	for _, s := range []string{"", "token=10/1m", "login=3/30s,userinfo=1000/1h", "token=1/1s,", "x=1/1s", "token=1/1.5s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		ps, err := ParsePolicies(spec)
		if err != nil {
			return
		}
		if len(ps) != len(Defaults()) {
			t.Fatalf("ParsePolicies(%q) has %d policies", spec, len(ps))
		}
		for name, p := range ps {
			if p.Name != name || p.Validate() != nil {
				t.Fatalf("ParsePolicies(%q)[%q] = %+v: %v", spec, name, p, p.Validate())
			}
		}
		again, err := ParsePolicies(ps.String())
		if err != nil || again.String() != ps.String() {
			t.Fatalf("ParsePolicies(%q) prints as %q, which parses to %q, %v", spec, ps, again, err)
		}
	})
}
