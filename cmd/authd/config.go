package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/authtoken"
	"github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/provider"
	"github.com/authd-dev/authd/ratelimit"
)

// config is the validated configuration of authd serve.
type config struct {
	Addr              string
	Issuer            string
	DatabaseURL       string
	RedisURL          string
	RedisClusterAddrs []string
	AccessTokenTTL    time.Duration
	IDTokenTTL        time.Duration
	RefreshTokenTTL   time.Duration
	RefreshFamilyMax  time.Duration
	CodeTTL           time.Duration
	LoginTTL          time.Duration
	MetricsAddr       string
	ErrorURIBase      string
	SigauthWindow     time.Duration
	// SigauthRequireBinding refuses X-Auth-Tokens that sign the path
	// alone on unsafe methods and at /authorize.
	SigauthRequireBinding bool
	// SigauthUncompressed lists the addresses of uncompressed keys that
	// may sign sigma tokens.
	SigauthUncompressed []string
	TrustedProxies      ratelimit.Proxies
	RateLimits          ratelimit.Policies
	// BackupIPDailyBytes and BackupIPDailyCreates cap, per client IP and
	// UTC day, the body bytes of PUT /backup and the backups created; 0
	// is no cap.
	BackupIPDailyBytes, BackupIPDailyCreates int64
	Google, GitHub                           providerConfig
	LogFormat                                string
	LogLevel                                 slog.Level
	// Onboarding: resource indicators, metadata documents, registration.
	Onboarding onboardingConfig
	// KeyFile holds the key-encryption keys of the signing keys
	// (AUTHD_KEY_ENCRYPTION_KEY_FILE, or the SQLite default beside the
	// database); see keyFile.
	KeyFile *keyFile

	// SessionIdle and SessionMax are the sign-in session lifetimes; 0 in
	// either turns sessions off.
	SessionIdle, SessionMax time.Duration

	// proxiesSet is whether AUTHD_TRUSTED_PROXIES names any proxy.
	proxiesSet bool

	// issuerFromAddr is set when the issuer (and so the error URI base)
	// was derived from AUTHD_ADDR: with port 0 it is fixed up once the
	// listener has its port.
	issuerFromAddr, errorBaseFromIssuer bool

	// providerTimeout overrides provider.Timeout (tests of slow
	// providers); zero keeps it.
	providerTimeout time.Duration
}

// setListenAddr derives the issuer and error URI base from the address the
// server really listens on, when they came from AUTHD_ADDR (port 0).
func (c *config) setListenAddr(addr net.Addr) {
	if !c.issuerFromAddr {
		return
	}
	host, _, _ := net.SplitHostPort(c.Addr)
	_, port, _ := net.SplitHostPort(addr.String())
	c.Issuer = issuerForAddr(host, port)
	if c.errorBaseFromIssuer {
		c.ErrorURIBase = c.Issuer + "/docs/errors"
	}
}

// issuerForAddr is the issuer authd assumes when AUTHD_ISSUER is unset:
// http on the listen address, with localhost for an empty or unspecified
// host.
func issuerForAddr(host, port string) string {
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// providerConfig is an upstream sign-in provider's settings; an empty
// ClientID means the provider is off.
type providerConfig struct {
	ClientID, ClientSecret string
	// Google: AuthURL, TokenURL, UserInfoURL. GitHub: BaseURL, APIURL.
	AuthURL, TokenURL, UserInfoURL string
	BaseURL, APIURL                string
}

// setting is one serve setting: a flag and its environment twin.
type setting struct {
	flag, env, def, help string
	value                string // after env and flags
}

// settings lists every serve setting. Each has a flag and an env twin;
// a flag beats the environment, which beats the default.
func settings() []*setting {
	return append([]*setting{
		{flag: "addr", env: "AUTHD_ADDR", def: "127.0.0.1:8080", help: "listen address (host:port)"},
		{flag: "issuer", env: "AUTHD_ISSUER", help: "issuer URL (default http://<addr>, localhost for an unspecified host); https unless loopback"},
		{flag: "database-url", env: "AUTHD_DATABASE_URL", def: "sqlite://authd.db", help: "sqlite://<path> or postgres://…"},
		{flag: "key-encryption-key-file", env: keyFileEnv, help: "file of key-encryption keys for the signing keys, one base64 key per line, the first encrypts (required with PostgreSQL; default with SQLite: <database>.keys, created on first start)"},
		{flag: "redis-url", env: "AUTHD_REDIS_URL", help: "redis:// or rediss:// URL (with ?master_name=… for Sentinel); empty starts an embedded Redis (development)"},
		{flag: "redis-cluster-addrs", env: "AUTHD_REDIS_CLUSTER_ADDRS", help: "host:port,host:port,… of a Redis Cluster"},
		{flag: "access-token-ttl", env: "AUTHD_ACCESS_TOKEN_TTL", def: "15m", help: "access token lifetime"},
		{flag: "id-token-ttl", env: "AUTHD_ID_TOKEN_TTL", def: "1h", help: "OpenID Connect ID Token lifetime"},
		{flag: "refresh-token-ttl", env: "AUTHD_REFRESH_TOKEN_TTL", def: "720h", help: "refresh token lifetime"},
		{flag: "refresh-family-max", env: "AUTHD_REFRESH_FAMILY_MAX", def: "2160h", help: "maximum lifetime of a grant's refresh tokens, however often they rotate"},
		{flag: "code-ttl", env: "AUTHD_CODE_TTL", def: "10m", help: "authorization code lifetime"},
		{flag: "login-ttl", env: "AUTHD_LOGIN_TTL", def: "10m", help: "lifetime of a login page's challenge, an upstream sign-in, and a consent or sign-out form"},
		{flag: "session-idle", env: "AUTHD_SESSION_IDLE", def: "1h", help: "a sign-in session ends after this long unused (single sign-on); 0 turns sessions off"},
		{flag: "session-max", env: "AUTHD_SESSION_MAX", def: "12h", help: "a sign-in session ends this long after its sign-in, however used; 0 turns sessions off"},
		{flag: "metrics-addr", env: "AUTHD_METRICS_ADDR", help: "separate listen address for /metrics (default: on the main listener)"},
		{flag: "error-uri-base", env: "AUTHD_ERROR_URI_BASE", help: "base of error_uri (default <issuer>/docs/errors)"},
		{flag: "sigauth-window", env: "AUTHD_SIGAUTH_WINDOW", def: "5m", help: "accepted clock difference of X-Auth-Token timestamps"},
		{flag: "sigauth-require-binding", env: "AUTHD_SIGAUTH_REQUIRE_BINDING", def: "false", help: "refuse X-Auth-Tokens that sign the path alone (not <METHOD> <absolute URL>) on POST, PUT, PATCH, DELETE and /authorize"},
		{flag: "sigauth-uncompressed-addresses", env: "AUTHD_SIGAUTH_UNCOMPRESSED_ADDRESSES", help: "comma-separated addresses of uncompressed (5… WIF) keys that may sign sigma tokens; every other uncompressed-key signature is refused"},
		{flag: "trusted-proxies", env: "AUTHD_TRUSTED_PROXIES", help: "comma-separated CIDRs whose X-Forwarded-For is trusted"},
		{flag: "rate-limits", env: "AUTHD_RATE_LIMITS", help: "rate-limit overrides, name=limit/window,… (token, authorize, login, userinfo, backup_read, backup_write, backup_ip, introspect, revoke, register)"},
		{flag: "backup-ip-daily-bytes", env: "AUTHD_BACKUP_IP_DAILY_BYTES", def: defaultBackupIPDailyBytes, help: "body bytes of PUT /backup one client IP may send per UTC day (KiB, MiB, GiB suffixes; 0: no cap)"},
		{flag: "backup-ip-daily-creates", env: "AUTHD_BACKUP_IP_DAILY_CREATES", def: defaultBackupIPDailyCreates, help: "backups one client IP may create per UTC day (0: no cap)"},
		{flag: "google-client-id", env: "AUTHD_GOOGLE_CLIENT_ID", help: "Google OAuth client id (empty: Google sign-in off)"},
		{flag: "google-client-secret", env: "AUTHD_GOOGLE_CLIENT_SECRET", help: "Google OAuth client secret"},
		{flag: "github-client-id", env: "AUTHD_GITHUB_CLIENT_ID", help: "GitHub OAuth client id (empty: GitHub sign-in off)"},
		{flag: "github-client-secret", env: "AUTHD_GITHUB_CLIENT_SECRET", help: "GitHub OAuth client secret"},
		{flag: "google-auth-url", env: "AUTHD_GOOGLE_AUTH_URL", def: provider.DefaultGoogle.AuthURL, help: "Google authorization endpoint"},
		{flag: "google-token-url", env: "AUTHD_GOOGLE_TOKEN_URL", def: provider.DefaultGoogle.TokenURL, help: "Google token endpoint"},
		{flag: "google-userinfo-url", env: "AUTHD_GOOGLE_USERINFO_URL", def: provider.DefaultGoogle.UserInfoURL, help: "Google OpenID userinfo endpoint"},
		{flag: "github-base-url", env: "AUTHD_GITHUB_BASE_URL", def: provider.DefaultGitHub.BaseURL, help: "GitHub (Enterprise Server) base URL, serving /login/oauth/*"},
		{flag: "github-api-url", env: "AUTHD_GITHUB_API_URL", def: provider.DefaultGitHub.APIURL, help: "GitHub REST API URL (GitHub Enterprise Server: <base>/api/v3)"},
		{flag: "log-format", env: "AUTHD_LOG_FORMAT", def: "text", help: "text or json"},
		{flag: "log-level", env: "AUTHD_LOG_LEVEL", def: "info", help: "debug, info, warn or error"},
	}, onboardingSettings()...)
}

// settingError names the setting that is wrong, by its env name and flag,
// so the one line authd prints at start tells the operator what to fix.
type settingError struct {
	s      *setting
	reason string
}

func (e *settingError) Error() string {
	v := e.s.value
	switch {
	case strings.HasSuffix(e.s.env, "_SECRET"), strings.HasSuffix(e.s.env, "_TOKEN"):
		v = "(hidden)"
	case strings.HasSuffix(e.s.env, "_URL"):
		v = redactURL(v) // never print a password
	}
	return fmt.Sprintf("invalid %s (--%s) %q: %s", e.s.env, e.s.flag, v, e.reason)
}

// parseConfig reads the serve settings from getenv and args.
func parseConfig(name string, args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	all := settings()
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	for _, s := range all {
		s.value = s.def
		if v, ok := lookup(getenv, s.env); ok {
			s.value = v
		}
		fs.StringVar(&s.value, s.flag, s.value, s.help+" ["+s.env+"]")
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: authd %s [flags]\n\nEvery flag has an environment twin, shown in brackets.\n\n", name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	get := func(env string) *setting {
		for _, s := range all {
			if s.env == env {
				return s
			}
		}
		panic("unknown setting " + env)
	}
	return validate(get)
}

// lookup returns getenv(name) and whether it is set to something.
func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func validate(get func(string) *setting) (*config, error) {
	c := &config{}
	fail := func(env, reason string) error { return &settingError{s: get(env), reason: reason} }

	s := get("AUTHD_ADDR")
	host, port, err := net.SplitHostPort(s.value)
	if err != nil || port == "" {
		return nil, fail("AUTHD_ADDR", "want host:port, e.g. 127.0.0.1:8080")
	}
	c.Addr = s.value

	s = get("AUTHD_ISSUER")
	if s.value == "" {
		s.value = issuerForAddr(host, port)
		c.issuerFromAddr = true
	}
	if err := oauth.CheckIssuer(s.value); err != nil {
		return nil, fail("AUTHD_ISSUER", err.Error())
	}
	c.Issuer = s.value

	s = get("AUTHD_DATABASE_URL")
	u, err := url.Parse(s.value)
	switch {
	case err != nil:
		return nil, fail("AUTHD_DATABASE_URL", "not a URL")
	case u.Scheme == "sqlite":
		if strings.TrimPrefix(s.value, "sqlite://") == "" || !strings.HasPrefix(s.value, "sqlite://") {
			return nil, fail("AUTHD_DATABASE_URL", "want sqlite://<path>, e.g. sqlite://authd.db or sqlite:///var/lib/authd/authd.db")
		}
	case u.Scheme == "postgres" || u.Scheme == "postgresql":
		if u.Host == "" {
			return nil, fail("AUTHD_DATABASE_URL", "postgres URL has no host")
		}
	default:
		return nil, fail("AUTHD_DATABASE_URL", "want sqlite://<path> or postgres://user:password@host:port/db")
	}
	c.DatabaseURL = s.value

	if c.KeyFile, err = resolveKeyFile(get(keyFileEnv).value, c.DatabaseURL); err != nil {
		return nil, err
	}

	s = get("AUTHD_REDIS_URL")
	if s.value != "" {
		u, err := url.Parse(s.value)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			return nil, fail("AUTHD_REDIS_URL", "want redis://host:port/db or rediss://…")
		}
		c.RedisURL = s.value
	}
	s = get("AUTHD_REDIS_CLUSTER_ADDRS")
	if s.value != "" {
		if c.RedisURL != "" {
			return nil, fail("AUTHD_REDIS_CLUSTER_ADDRS", "set either AUTHD_REDIS_URL or AUTHD_REDIS_CLUSTER_ADDRS, not both")
		}
		for _, a := range strings.Split(s.value, ",") {
			a = strings.TrimSpace(a)
			if _, p, err := net.SplitHostPort(a); err != nil || p == "" {
				return nil, fail("AUTHD_REDIS_CLUSTER_ADDRS", fmt.Sprintf("%q is not host:port", a))
			}
			c.RedisClusterAddrs = append(c.RedisClusterAddrs, a)
		}
	}

	for _, d := range []struct {
		env string
		dst *time.Duration
	}{
		{"AUTHD_ACCESS_TOKEN_TTL", &c.AccessTokenTTL},
		{"AUTHD_ID_TOKEN_TTL", &c.IDTokenTTL},
		{"AUTHD_REFRESH_TOKEN_TTL", &c.RefreshTokenTTL},
		{"AUTHD_REFRESH_FAMILY_MAX", &c.RefreshFamilyMax},
		{"AUTHD_CODE_TTL", &c.CodeTTL},
		{"AUTHD_LOGIN_TTL", &c.LoginTTL},
		{"AUTHD_SIGAUTH_WINDOW", &c.SigauthWindow},
	} {
		v, err := time.ParseDuration(get(d.env).value)
		if err != nil || v <= 0 {
			return nil, fail(d.env, "want a positive duration such as 90s, 15m or 720h")
		}
		*d.dst = v
	}
	if c.RefreshTokenTTL < c.AccessTokenTTL {
		return nil, fail("AUTHD_REFRESH_TOKEN_TTL", "shorter than AUTHD_ACCESS_TOKEN_TTL")
	}
	if c.RefreshFamilyMax < c.AccessTokenTTL {
		return nil, fail("AUTHD_REFRESH_FAMILY_MAX", "shorter than AUTHD_ACCESS_TOKEN_TTL")
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{
		{"AUTHD_SESSION_IDLE", &c.SessionIdle},
		{"AUTHD_SESSION_MAX", &c.SessionMax},
	} {
		v, err := time.ParseDuration(get(d.env).value)
		if err != nil || v < 0 || (v > 0 && v < time.Second) {
			return nil, fail(d.env, "want a duration of at least 1s such as 30m or 12h, or 0 to turn sessions off")
		}
		*d.dst = v
	}
	if c.SessionIdle > c.SessionMax && c.SessionMax > 0 {
		return nil, fail("AUTHD_SESSION_IDLE", "longer than AUTHD_SESSION_MAX, which ends every session first")
	}

	s = get("AUTHD_SIGAUTH_REQUIRE_BINDING")
	if c.SigauthRequireBinding, err = strconv.ParseBool(s.value); err != nil {
		return nil, fail("AUTHD_SIGAUTH_REQUIRE_BINDING", "want true or false")
	}
	s = get("AUTHD_SIGAUTH_UNCOMPRESSED_ADDRESSES")
	for _, a := range strings.Split(s.value, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		if !authtoken.ValidAddress(a) {
			return nil, fail("AUTHD_SIGAUTH_UNCOMPRESSED_ADDRESSES", fmt.Sprintf("%q is not a mainnet P2PKH address (1…)", a))
		}
		c.SigauthUncompressed = append(c.SigauthUncompressed, a)
	}

	s = get("AUTHD_METRICS_ADDR")
	if s.value != "" {
		if _, p, err := net.SplitHostPort(s.value); err != nil || p == "" {
			return nil, fail("AUTHD_METRICS_ADDR", "want host:port, e.g. 127.0.0.1:9090")
		}
		c.MetricsAddr = s.value
	}

	s = get("AUTHD_ERROR_URI_BASE")
	if s.value == "" {
		s.value = c.Issuer + "/docs/errors"
		c.errorBaseFromIssuer = true
	}
	if u, err := url.Parse(s.value); err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.RawQuery != "" {
		return nil, fail("AUTHD_ERROR_URI_BASE", "want an absolute URL without query or fragment")
	}
	c.ErrorURIBase = s.value

	s = get("AUTHD_TRUSTED_PROXIES")
	if c.TrustedProxies, err = ratelimit.ParseProxies(s.value); err != nil {
		return nil, fail("AUTHD_TRUSTED_PROXIES", "want comma-separated CIDRs or addresses such as 10.0.0.0/8 ("+err.Error()+")")
	}
	c.proxiesSet = strings.Trim(s.value, " ,") != ""

	s = get("AUTHD_RATE_LIMITS")
	if c.RateLimits, err = ratelimit.ParsePolicies(s.value); err != nil {
		return nil, fail("AUTHD_RATE_LIMITS", err.Error())
	}
	var ok bool
	if c.BackupIPDailyBytes, ok = parseByteSize(get("AUTHD_BACKUP_IP_DAILY_BYTES").value); !ok {
		return nil, fail("AUTHD_BACKUP_IP_DAILY_BYTES", "want a byte count such as 33554432, 32MiB or 0 (no cap)")
	}
	if c.BackupIPDailyCreates, err = strconv.ParseInt(get("AUTHD_BACKUP_IP_DAILY_CREATES").value, 10, 64); err != nil || c.BackupIPDailyCreates < 0 || c.BackupIPDailyCreates > ratelimit.MaxQuota {
		return nil, fail("AUTHD_BACKUP_IP_DAILY_CREATES", "want a count such as 20, or 0 (no cap)")
	}

	for _, p := range []struct {
		id, secret string
		dst        *providerConfig
		urls       map[string]*string
	}{
		{"AUTHD_GOOGLE_CLIENT_ID", "AUTHD_GOOGLE_CLIENT_SECRET", &c.Google, map[string]*string{
			"AUTHD_GOOGLE_AUTH_URL": &c.Google.AuthURL, "AUTHD_GOOGLE_TOKEN_URL": &c.Google.TokenURL, "AUTHD_GOOGLE_USERINFO_URL": &c.Google.UserInfoURL}},
		{"AUTHD_GITHUB_CLIENT_ID", "AUTHD_GITHUB_CLIENT_SECRET", &c.GitHub, map[string]*string{
			"AUTHD_GITHUB_BASE_URL": &c.GitHub.BaseURL, "AUTHD_GITHUB_API_URL": &c.GitHub.APIURL}},
	} {
		id, secret := get(p.id), get(p.secret)
		if id.value != "" && secret.value == "" {
			return nil, fail(p.secret, "required when "+p.id+" is set")
		}
		if id.value == "" && secret.value != "" {
			return nil, fail(p.id, "required when "+p.secret+" is set")
		}
		p.dst.ClientID, p.dst.ClientSecret = id.value, secret.value
		for env, dst := range p.urls {
			v := get(env).value
			if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
				return nil, fail(env, "want an absolute https (or http) URL")
			}
			*dst = v
		}
	}

	if err := validateOnboarding(c, get); err != nil {
		return nil, err
	}

	s = get("AUTHD_LOG_FORMAT")
	if s.value != "text" && s.value != "json" {
		return nil, fail("AUTHD_LOG_FORMAT", "want text or json")
	}
	c.LogFormat = s.value
	s = get("AUTHD_LOG_LEVEL")
	if err := c.LogLevel.UnmarshalText([]byte(s.value)); err != nil {
		return nil, fail("AUTHD_LOG_LEVEL", "want debug, info, warn or error")
	}
	return c, nil
}

// behindProxyWarning returns the warning authd logs at start when its
// issuer is a public name but no proxy is trusted, or "". Behind a
// reverse proxy every request then comes from the proxy's address, so all
// users share one client IP for rate limits and sign-in lockouts.
func (c *config) behindProxyWarning() string {
	u, err := url.Parse(c.Issuer)
	if err != nil || oauth.LoopbackHost(u.Hostname()) || c.proxiesSet {
		return ""
	}
	return "AUTHD_TRUSTED_PROXIES is empty but the issuer is not loopback: if authd runs behind a reverse proxy or load balancer, " +
		"every client shares the proxy's IP for rate limits and sign-in lockouts; set AUTHD_TRUSTED_PROXIES to the proxy's addresses"
}

// Defaults of the daily per-IP backup quotas (AUTHD_BACKUP_IP_DAILY_BYTES,
// AUTHD_BACKUP_IP_DAILY_CREATES).
const (
	defaultBackupIPDailyBytes   = "32MiB"
	defaultBackupIPDailyCreates = "20"
)

// parseByteSize reads a byte count: an integer, optionally followed by
// KiB, MiB or GiB (powers of 1024).
func parseByteSize(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, suffix)), m
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > ratelimit.MaxQuota/mult {
		return 0, false
	}
	return n * mult, true
}
