package main

import (
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/authd-dev/authd/ratelimit"
)

func envFunc(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestConfigDefaults(t *testing.T) {
	c, err := parseConfig("serve", nil, envFunc(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Addr:            "127.0.0.1:8080",
		Issuer:          "http://127.0.0.1:8080",
		DatabaseURL:     "sqlite://authd.db",
		AccessTokenTTL:  15 * time.Minute,
		RefreshTokenTTL: 720 * time.Hour,
		ErrorURIBase:    "http://127.0.0.1:8080/docs/errors",
		SigauthWindow:   5 * time.Minute,
		LogFormat:       "text",
		LogLevel:        slog.LevelInfo,
	}
	if c.CodeTTL != 10*time.Minute || c.LoginTTL != 10*time.Minute {
		t.Errorf("code ttl %v, login ttl %v; want 10m each", c.CodeTTL, c.LoginTTL)
	}
	if c.Addr != want.Addr || c.Issuer != want.Issuer || c.DatabaseURL != want.DatabaseURL ||
		c.AccessTokenTTL != want.AccessTokenTTL || c.RefreshTokenTTL != want.RefreshTokenTTL ||
		c.ErrorURIBase != want.ErrorURIBase || c.SigauthWindow != want.SigauthWindow ||
		c.LogFormat != want.LogFormat || c.LogLevel != want.LogLevel ||
		c.RedisURL != "" || c.RedisClusterAddrs != nil || c.MetricsAddr != "" || c.TrustedProxies.String() != "" ||
		c.RateLimits.String() != ratelimit.Defaults().String() || c.Google.ClientID != "" || c.GitHub.ClientID != "" ||
		c.SigauthRequireBinding || c.SigauthUncompressed != nil ||
		c.BackupIPDailyBytes != 32<<20 || c.BackupIPDailyCreates != 20 {
		t.Fatalf("defaults = %+v\nwant %+v", *c, want)
	}
}

func TestConfigDerivedIssuer(t *testing.T) {
	for _, tc := range []struct{ addr, issuer string }{
		{"0.0.0.0:9000", "http://localhost:9000"},
		{":9000", "http://localhost:9000"},
		{"[::]:9000", "http://localhost:9000"},
		{"127.0.0.1:9000", "http://127.0.0.1:9000"},
		{"[::1]:9000", "http://[::1]:9000"},
	} {
		c, err := parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_ADDR": tc.addr}), io.Discard)
		if err != nil {
			t.Errorf("AUTHD_ADDR=%s: %v", tc.addr, err)
			continue
		}
		if c.Issuer != tc.issuer || c.ErrorURIBase != tc.issuer+"/docs/errors" {
			t.Errorf("AUTHD_ADDR=%s: issuer %q, error base %q; want %q", tc.addr, c.Issuer, c.ErrorURIBase, tc.issuer)
		}
	}
}

func TestConfigFlagBeatsEnv(t *testing.T) {
	env := envFunc(map[string]string{"AUTHD_ACCESS_TOKEN_TTL": "5m", "AUTHD_LOG_FORMAT": "json"})
	c, err := parseConfig("serve", []string{"--access-token-ttl", "7m"}, env, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.AccessTokenTTL != 7*time.Minute || c.LogFormat != "json" {
		t.Fatalf("access ttl %v, log format %q; want 7m from the flag and json from the env", c.AccessTokenTTL, c.LogFormat)
	}
}

func TestConfigValues(t *testing.T) {
	env := map[string]string{
		"AUTHD_ISSUER":               "https://auth.example.com",
		"AUTHD_REDIS_URL":            "rediss://:pw@redis.example.com:6380/2",
		"AUTHD_TRUSTED_PROXIES":      "10.0.0.0/8, 192.168.1.7,fd00::/8",
		"AUTHD_METRICS_ADDR":         "127.0.0.1:9090",
		"AUTHD_DATABASE_URL":         "postgres://authd:pw@db:5432/authd?sslmode=disable",
		keyFileEnv:                   writeKeyFile(t),
		"AUTHD_LOG_LEVEL":            "debug",
		"AUTHD_GOOGLE_CLIENT_ID":     "g",
		"AUTHD_GOOGLE_CLIENT_SECRET": "s",
	}
	c, err := parseConfig("serve", nil, envFunc(env), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://auth.example.com" || c.ErrorURIBase != "https://auth.example.com/docs/errors" {
		t.Errorf("issuer %q, error base %q", c.Issuer, c.ErrorURIBase)
	}
	if !c.TrustedProxies.Trusts(netip.MustParseAddr("192.168.1.7")) || !c.TrustedProxies.Trusts(netip.MustParseAddr("10.1.2.3")) || c.TrustedProxies.Trusts(netip.MustParseAddr("192.168.1.8")) {
		t.Errorf("trusted proxies = %v", c.TrustedProxies)
	}
	if c.LogLevel != slog.LevelDebug || c.MetricsAddr != "127.0.0.1:9090" {
		t.Errorf("log level %v, metrics %q", c.LogLevel, c.MetricsAddr)
	}
	c, err = parseConfig("serve", []string{"--sigauth-require-binding=true"}, envFunc(map[string]string{
		"AUTHD_SIGAUTH_UNCOMPRESSED_ADDRESSES": " 1EHNa6Q4Jz2uvNExL497mE43ikXhwF6kZm, 15CRxFdyRpGZLW9w8HnHvVduizdL5jKNbs ",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !c.SigauthRequireBinding || strings.Join(c.SigauthUncompressed, ",") != "1EHNa6Q4Jz2uvNExL497mE43ikXhwF6kZm,15CRxFdyRpGZLW9w8HnHvVduizdL5jKNbs" {
		t.Errorf("require binding %v, uncompressed %q", c.SigauthRequireBinding, c.SigauthUncompressed)
	}
	for v, want := range map[string]int64{"0": 0, "1048576": 1 << 20, "512KiB": 512 << 10, " 64 MiB": 64 << 20, "2GiB": 2 << 30} {
		c, err := parseConfig("serve", []string{"--backup-ip-daily-bytes", v, "--backup-ip-daily-creates", "0"}, envFunc(nil), io.Discard)
		if err != nil || c.BackupIPDailyBytes != want || c.BackupIPDailyCreates != 0 {
			t.Errorf("--backup-ip-daily-bytes %q: %v, %v", v, c, err)
		}
	}
	c, err = parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_REDIS_CLUSTER_ADDRS": "a:1, b:2,c:3"}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.RedisClusterAddrs, ",") != "a:1,b:2,c:3" {
		t.Errorf("cluster addrs = %v", c.RedisClusterAddrs)
	}
}

// TestConfigErrors checks that every bad value fails with one line naming
// the setting an operator has to fix.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		args    []string
		setting string
	}{
		{env: map[string]string{"AUTHD_ADDR": "8080"}, setting: "AUTHD_ADDR"},
		{env: map[string]string{"AUTHD_ISSUER": "http://auth.example.com"}, setting: "AUTHD_ISSUER"},
		{env: map[string]string{"AUTHD_ISSUER": "https://auth.example.com/"}, setting: "AUTHD_ISSUER"},
		{env: map[string]string{"AUTHD_ISSUER": "https://auth.example.com?x=1"}, setting: "AUTHD_ISSUER"},
		{env: map[string]string{"AUTHD_ISSUER": "auth.example.com"}, setting: "AUTHD_ISSUER"},
		{env: map[string]string{"AUTHD_DATABASE_URL": "mysql://x"}, setting: "AUTHD_DATABASE_URL"},
		{env: map[string]string{"AUTHD_DATABASE_URL": "sqlite://"}, setting: "AUTHD_DATABASE_URL"},
		{env: map[string]string{"AUTHD_DATABASE_URL": "postgres:///db"}, setting: "AUTHD_DATABASE_URL"},
		{env: map[string]string{"AUTHD_REDIS_URL": "http://x"}, setting: "AUTHD_REDIS_URL"},
		{env: map[string]string{"AUTHD_REDIS_URL": "redis://a:1", "AUTHD_REDIS_CLUSTER_ADDRS": "a:1"}, setting: "AUTHD_REDIS_CLUSTER_ADDRS"},
		{env: map[string]string{"AUTHD_REDIS_CLUSTER_ADDRS": "a:1,b"}, setting: "AUTHD_REDIS_CLUSTER_ADDRS"},
		{env: map[string]string{"AUTHD_ACCESS_TOKEN_TTL": "15"}, setting: "AUTHD_ACCESS_TOKEN_TTL"},
		{env: map[string]string{"AUTHD_ACCESS_TOKEN_TTL": "-1m"}, setting: "AUTHD_ACCESS_TOKEN_TTL"},
		{env: map[string]string{"AUTHD_REFRESH_TOKEN_TTL": "1m"}, setting: "AUTHD_REFRESH_TOKEN_TTL"},
		{env: map[string]string{"AUTHD_SIGAUTH_WINDOW": "5x"}, setting: "AUTHD_SIGAUTH_WINDOW"},
		{env: map[string]string{"AUTHD_CODE_TTL": "0s"}, setting: "AUTHD_CODE_TTL"},
		{env: map[string]string{"AUTHD_SIGAUTH_REQUIRE_BINDING": "yes"}, setting: "AUTHD_SIGAUTH_REQUIRE_BINDING"},
		{env: map[string]string{"AUTHD_BACKUP_IP_DAILY_BYTES": "32MB"}, setting: "AUTHD_BACKUP_IP_DAILY_BYTES"},
		{env: map[string]string{"AUTHD_BACKUP_IP_DAILY_BYTES": "-1"}, setting: "AUTHD_BACKUP_IP_DAILY_BYTES"},
		{env: map[string]string{"AUTHD_BACKUP_IP_DAILY_BYTES": "99999999GiB"}, setting: "AUTHD_BACKUP_IP_DAILY_BYTES"},
		{env: map[string]string{"AUTHD_BACKUP_IP_DAILY_CREATES": "twenty"}, setting: "AUTHD_BACKUP_IP_DAILY_CREATES"},
		{args: []string{"--backup-ip-daily-creates", "-5"}, setting: "AUTHD_BACKUP_IP_DAILY_CREATES"},
		{args: []string{"--sigauth-require-binding", "maybe"}, setting: "AUTHD_SIGAUTH_REQUIRE_BINDING"},
		{env: map[string]string{"AUTHD_SIGAUTH_UNCOMPRESSED_ADDRESSES": "1EHNa6Q4Jz2uvNExL497mE43ikXhwF6kZm,bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}, setting: "AUTHD_SIGAUTH_UNCOMPRESSED_ADDRESSES"},
		{env: map[string]string{"AUTHD_LOGIN_TTL": "ten"}, setting: "AUTHD_LOGIN_TTL"},
		{args: []string{"--sigauth-window", "0s"}, setting: "AUTHD_SIGAUTH_WINDOW"},
		{env: map[string]string{"AUTHD_METRICS_ADDR": "metrics"}, setting: "AUTHD_METRICS_ADDR"},
		{env: map[string]string{"AUTHD_ERROR_URI_BASE": "/docs/errors"}, setting: "AUTHD_ERROR_URI_BASE"},
		{env: map[string]string{"AUTHD_ERROR_URI_BASE": "https://x/docs#frag"}, setting: "AUTHD_ERROR_URI_BASE"},
		{env: map[string]string{"AUTHD_TRUSTED_PROXIES": "10.0.0.0/8,nonsense"}, setting: "AUTHD_TRUSTED_PROXIES"},
		{env: map[string]string{"AUTHD_GOOGLE_CLIENT_ID": "id"}, setting: "AUTHD_GOOGLE_CLIENT_SECRET"},
		{env: map[string]string{"AUTHD_GITHUB_CLIENT_SECRET": "s"}, setting: "AUTHD_GITHUB_CLIENT_ID"},
		{env: map[string]string{"AUTHD_LOG_FORMAT": "xml"}, setting: "AUTHD_LOG_FORMAT"},
		{env: map[string]string{"AUTHD_RATE_LIMITS": "token=ten/1m"}, setting: "AUTHD_RATE_LIMITS"},
		{env: map[string]string{"AUTHD_RATE_LIMITS": "tokens=10/1m"}, setting: "AUTHD_RATE_LIMITS"},
		{env: map[string]string{"AUTHD_GOOGLE_TOKEN_URL": "/token"}, setting: "AUTHD_GOOGLE_TOKEN_URL"},
		{env: map[string]string{"AUTHD_GITHUB_API_URL": "ftp://api"}, setting: "AUTHD_GITHUB_API_URL"},
		{env: map[string]string{"AUTHD_LOG_LEVEL": "loud"}, setting: "AUTHD_LOG_LEVEL"},
	} {
		_, err := parseConfig("serve", tc.args, envFunc(tc.env), io.Discard)
		if err == nil {
			t.Errorf("%v %v: no error", tc.env, tc.args)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.setting) || strings.Contains(msg, "\n") {
			t.Errorf("%v %v: error %q does not name %s on one line", tc.env, tc.args, msg, tc.setting)
		}
	}
}

func TestConfigErrorHidesNothingOfTheSetting(t *testing.T) {
	// The message quotes the bad value so the operator sees what was read.
	_, err := parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_SIGAUTH_WINDOW": "five minutes"}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), `"five minutes"`) || !strings.Contains(err.Error(), "--sigauth-window") {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigErrorRedactsPasswords(t *testing.T) {
	_, err := parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_DATABASE_URL": "mysql://u:hunter2@db/x"}), io.Discard)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v; want an error without the password", err)
	}
	_, err = parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_REDIS_URL": "redis:/nohost?master_name=m&password=hunter2"}), io.Discard)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v; want an error without the query password", err)
	}
	_, err = parseConfig("serve", nil, envFunc(map[string]string{"AUTHD_GITHUB_CLIENT_SECRET": "hunter2"}), io.Discard)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v; want an error without the secret", err)
	}
}

func TestConfigRateLimitsAndProviders(t *testing.T) {
	c, err := parseConfig("serve", nil, envFunc(map[string]string{
		"AUTHD_RATE_LIMITS":          "token=100/1m, login=3/30s",
		"AUTHD_GITHUB_CLIENT_ID":     "gh",
		"AUTHD_GITHUB_CLIENT_SECRET": "s",
		"AUTHD_GITHUB_BASE_URL":      "https://ghe.example.com",
		"AUTHD_GITHUB_API_URL":       "https://ghe.example.com/api/v3",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if p := c.RateLimits[ratelimit.Token]; p.Limit != 100 || p.Window != time.Minute {
		t.Errorf("token policy %v", p)
	}
	if p := c.RateLimits[ratelimit.Login]; p.Limit != 3 || p.Window != 30*time.Second {
		t.Errorf("login policy %v", p)
	}
	if p := c.RateLimits[ratelimit.Authorize]; p.Limit != 20 {
		t.Errorf("authorize policy %v kept no default", p)
	}
	if c.GitHub.ClientID != "gh" || c.GitHub.BaseURL != "https://ghe.example.com" || c.GitHub.APIURL != "https://ghe.example.com/api/v3" {
		t.Errorf("github %+v", c.GitHub)
	}
	if c.Google.ClientID != "" || c.Google.TokenURL != "https://oauth2.googleapis.com/token" {
		t.Errorf("google %+v", c.Google)
	}
}
