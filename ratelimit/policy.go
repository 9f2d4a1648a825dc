package ratelimit

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
)

// Names of the default policies (Defaults). A policy name is part of the
// Redis key, of the metric label and of the RateLimit-Policy header.
const (
	// Token limits POST /token per client IP.
	Token = "token"
	// Authorize limits GET|POST /authorize per client IP.
	Authorize = "authorize"
	// Login limits POST /authorize/login per client IP.
	Login = "login"
	// Userinfo limits GET|POST /userinfo per subject.
	Userinfo = "userinfo"
	// BackupRead limits GET and HEAD /backup per subject.
	BackupRead = "backup_read"
	// BackupWrite limits PUT and DELETE /backup per subject.
	BackupWrite = "backup_write"
	// BackupIP limits every /backup request per client IP, before its
	// signature is verified: a new key costs nothing, so per-subject
	// limits alone never stop one client with many keys.
	BackupIP = "backup_ip"
	// Introspect limits POST /introspect per client IP.
	Introspect = "introspect"
	// Revoke limits POST /revoke per client IP.
	Revoke = "revoke"
	// Register limits POST /register (dynamic client registration) per
	// client IP.
	Register = "register"
)

// Names of the backup quotas per client IP, whose limits the server reads
// from its own settings.
const (
	// BackupIPBytes is the body bytes of PUT /backup a client IP may send
	// per day.
	BackupIPBytes = "backup_ip_bytes"
	// BackupIPCreates is the number of backups a client IP may create per
	// day.
	BackupIPCreates = "backup_ip_creates"
)

// Bounds of a policy. A window is a whole number of seconds because the
// RateLimit-Policy header carries it as an integer (w=60); each admitted
// unit costs Redis one ZSET member, so the limit is bounded too.
const (
	MinWindow = time.Second
	MaxWindow = 24 * time.Hour
	MaxLimit  = 1_000_000
)

// Policy is one sliding-window limit: at most Limit units in any window of
// length Window.
type Policy struct {
	// Name identifies the policy: 1-32 characters of [a-z0-9_-].
	Name string
	// Limit is the number of units admitted per window, 1..MaxLimit.
	Limit int
	// Window is the window length, a whole number of seconds in
	// MinWindow..MaxWindow.
	Window time.Duration
}

// String returns the policy in the syntax ParsePolicies reads, e.g.
// "token=10/1m0s".
func (p Policy) String() string {
	return p.Name + "=" + strconv.Itoa(p.Limit) + "/" + p.Window.String()
}

// Validate reports whether p can be used. It returns nil or a plain error
// naming what is wrong (a configuration or programming mistake, not a
// client error).
func (p Policy) Validate() error {
	if !validName(p.Name) {
		return errors.Errorf("policy name %q: want 1-32 characters of [a-z0-9_-]", p.Name)
	}
	if p.Limit < 1 || p.Limit > MaxLimit {
		return errors.Errorf("policy %s: limit %d outside 1..%d", p.Name, p.Limit, MaxLimit)
	}
	if p.Window < MinWindow || p.Window > MaxWindow || p.Window%time.Second != 0 {
		return errors.Errorf("policy %s: window %s is not a whole number of seconds in %s..%s",
			p.Name, p.Window, MinWindow, MaxWindow)
	}
	return nil
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Policies maps a policy name to its policy.
type Policies map[string]Policy

// Defaults returns the default policies:
//
//	token         10/1m  client IP   POST /token
//	authorize     20/1m  client IP   GET|POST /authorize
//	login          5/1m  client IP   POST /authorize/login
//	userinfo     100/1m  subject     GET|POST /userinfo
//	backup_read   20/1m  subject     GET|HEAD /backup
//	backup_write  10/1m  subject     PUT|DELETE /backup
//	backup_ip     60/1m  client IP   every /backup request
//	introspect   600/1m  client IP   POST /introspect
//	revoke        60/1m  client IP   POST /revoke
//	register      10/1h  client IP   POST /register
//
// introspect is generous because resource servers introspect a token per
// request they serve; each is one client IP, usually.
func Defaults() Policies {
	return Policies{
		Token:       {Name: Token, Limit: 10, Window: time.Minute},
		Authorize:   {Name: Authorize, Limit: 20, Window: time.Minute},
		Login:       {Name: Login, Limit: 5, Window: time.Minute},
		Userinfo:    {Name: Userinfo, Limit: 100, Window: time.Minute},
		BackupRead:  {Name: BackupRead, Limit: 20, Window: time.Minute},
		BackupWrite: {Name: BackupWrite, Limit: 10, Window: time.Minute},
		BackupIP:    {Name: BackupIP, Limit: 60, Window: time.Minute},
		Introspect:  {Name: Introspect, Limit: 600, Window: time.Minute},
		Revoke:      {Name: Revoke, Limit: 60, Window: time.Minute},
		Register:    {Name: Register, Limit: 10, Window: time.Hour},
	}
}

// ParsePolicies returns the default policies with the overrides in spec,
// the value of AUTHD_RATE_LIMITS. The syntax is a comma-separated list of
//
//	name=limit/window
//
// where name is one of the default policy names (token, authorize, login,
// userinfo, backup_read, backup_write, backup_ip, introspect, revoke,
// register), limit an integer in 1..1000000 and window a Go duration that
// is a whole number of seconds from 1s to 24h ("30s", "1m", "1h30m").
// Spaces around entries are ignored; an empty spec keeps every default.
// Example:
//
//	AUTHD_RATE_LIMITS="token=100/1m, login=3/30s"
//
// Policies not named keep their defaults. An unknown name, a repeated name
// or a malformed entry is an error that quotes the entry.
func ParsePolicies(spec string) (Policies, error) {
	ps := Defaults()
	seen := make(map[string]bool)
	for _, entry := range strings.Split(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		p, err := parsePolicy(entry)
		if err != nil {
			return nil, errors.Errorf("rate limit %q: %w", entry, err)
		}
		if _, ok := ps[p.Name]; !ok {
			return nil, errors.Errorf("rate limit %q: unknown policy %q (known: %s)", entry, p.Name, strings.Join(ps.Names(), ", "))
		}
		if seen[p.Name] {
			return nil, errors.Errorf("rate limit %q: policy %q given twice", entry, p.Name)
		}
		seen[p.Name] = true
		ps[p.Name] = p
	}
	return ps, nil
}

func parsePolicy(entry string) (Policy, error) {
	name, rest, ok := strings.Cut(entry, "=")
	if !ok {
		return Policy{}, errors.New("want name=limit/window")
	}
	limit, window, ok := strings.Cut(strings.TrimSpace(rest), "/")
	if !ok {
		return Policy{}, errors.New("want name=limit/window")
	}
	n, err := strconv.Atoi(strings.TrimSpace(limit))
	if err != nil {
		return Policy{}, errors.Errorf("limit %q is not an integer", limit)
	}
	w, err := time.ParseDuration(strings.TrimSpace(window))
	if err != nil {
		return Policy{}, errors.Errorf("window %q is not a duration such as 1m or 30s", window)
	}
	p := Policy{Name: strings.TrimSpace(name), Limit: n, Window: w}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

// Names returns the policy names in lexical order.
func (ps Policies) Names() []string {
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// String returns ps in the syntax ParsePolicies reads, in name order.
func (ps Policies) String() string {
	var b strings.Builder
	for i, n := range ps.Names() {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(ps[n].String())
	}
	return b.String()
}
