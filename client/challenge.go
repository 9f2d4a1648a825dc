package client

import (
	"strings"
)

// Challenge is one authentication challenge of a WWW-Authenticate header
// (RFC 9110 §11.6.1, formerly RFC 7235 §4.1): a scheme, then either a
// token68 or a list of parameters.
type Challenge struct {
	// Scheme is the auth-scheme as sent ("Bearer", "Basic",
	// "Bitcoin-Auth"); compare it case-insensitively.
	Scheme string
	// Token68 is the challenge's token68 form, if it used that form.
	Token68 string
	// Params are the auth-params, names lower-cased, quoted-string values
	// unescaped. A repeated name keeps its first value.
	Params map[string]string
}

// maxChallenges bounds how many challenges ParseChallenges returns.
const maxChallenges = 16

// ParseChallenges parses the values of WWW-Authenticate header fields
// (RFC 9110 §11.6.1, §5.6: lists, quoted-string and quoted-pair):
//
//	Bearer realm="authd", error="invalid_token", error_description="…"
//	Bitcoin-Auth realm="authd", Bearer realm="authd"
//
// Several fields are read as one comma-separated list. Parsing is
// lenient where the grammar allows and stops at the first byte it cannot
// make sense of, returning the challenges before it; it never fails.
func ParseChallenges(values []string) []Challenge {
	p := challengeParser{s: strings.Join(values, ", ")}
	var out []Challenge
	for len(out) < maxChallenges {
		p.skipListSeparators()
		if p.done() {
			break
		}
		scheme := p.token()
		if scheme == "" {
			break
		}
		c := Challenge{Scheme: scheme}
		if !p.params(&c) {
			out = append(out, c)
			break
		}
		out = append(out, c)
	}
	return out
}

type challengeParser struct {
	s string
	i int
}

func (p *challengeParser) done() bool { return p.i >= len(p.s) }

func (p *challengeParser) skipWS() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// skipListSeparators skips OWS and empty list elements (RFC 9110 §5.6.1).
func (p *challengeParser) skipListSeparators() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == ',') {
		p.i++
	}
}

// token reads a token (RFC 9110 §5.6.2).
func (p *challengeParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTchar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

// params reads what follows a scheme: a token68 or #auth-param, up to the
// next challenge. It reports false when it met bytes it cannot parse.
func (p *challengeParser) params(c *Challenge) bool {
	// A scheme alone, at the end or before a comma.
	save := p.i
	p.skipWS()
	if p.done() || p.s[p.i] == ',' {
		return true
	}
	if p.i == save {
		return false // the scheme must be followed by a space
	}
	// token68: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
	// followed by the end or a comma; an auth-param starts with a token
	// and "=" then a value, so try the parameter form first.
	if t, ok := p.tryToken68(); ok {
		c.Token68 = t
		return true
	}
	for {
		start := p.i
		name := p.token()
		if name == "" {
			return false
		}
		p.skipWS()
		if p.done() || p.s[p.i] != '=' {
			// Not a parameter: the start of the next challenge.
			p.i = start
			return true
		}
		p.i++ // '='
		p.skipWS()
		var val string
		if p.i < len(p.s) && p.s[p.i] == '"' {
			v, ok := p.quoted()
			if !ok {
				return false
			}
			val = v
		} else {
			val = p.token()
			if val == "" {
				return false
			}
		}
		if c.Params == nil {
			c.Params = make(map[string]string, 4)
		}
		key := strings.ToLower(name)
		if _, dup := c.Params[key]; !dup {
			c.Params[key] = val
		}
		p.skipWS()
		if p.done() {
			return true
		}
		if p.s[p.i] != ',' {
			return false
		}
		// After the comma: another parameter, or the next challenge.
		p.skipListSeparators()
		if p.done() {
			return true
		}
	}
}

// tryToken68 reads a token68 when the text at p is one followed by the end
// or a list separator, and is not the start of an auth-param.
func (p *challengeParser) tryToken68() (string, bool) {
	j := p.i
	for j < len(p.s) && isToken68Char(p.s[j]) {
		j++
	}
	if j == p.i {
		return "", false
	}
	k := j
	for k < len(p.s) && p.s[k] == '=' {
		k++
	}
	end := k
	for end < len(p.s) && (p.s[end] == ' ' || p.s[end] == '\t') {
		end++
	}
	if end < len(p.s) && p.s[end] != ',' {
		return "", false // "name = value" or "name=value": a parameter
	}
	// "name=" before the end or a comma is a token68 ending in "=" (an
	// auth-param needs a value).
	t := p.s[p.i:k]
	p.i = k
	return t, true
}

// quoted reads a quoted-string, unescaping quoted-pairs (RFC 9110 §5.6.4).
func (p *challengeParser) quoted() (string, bool) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return b.String(), true
		case c == '\\':
			// quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
			if p.i+1 >= len(p.s) || isCtl(p.s[p.i+1]) {
				return "", false
			}
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case isCtl(c):
			return "", false
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", false
}

// isCtl reports whether c is a control byte that qdtext and quoted-pair
// exclude (everything below SP but HTAB, and DEL).
func isCtl(c byte) bool { return c < 0x20 && c != '\t' || c == 0x7f }

// isTchar reports whether c is a tchar (RFC 9110 §5.6.2).
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func isToken68Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'
}

// formatChallenge writes a WWW-Authenticate value, quoting every
// parameter value (RFC 9110 §11.2; RFC 6750 §3 quotes them all), in the
// order of names; parameters with names that are not tokens are left out.
func formatChallenge(scheme string, names []string, params map[string]string) string {
	var b strings.Builder
	b.WriteString(scheme)
	first := true
	for _, n := range names {
		v, ok := params[n]
		if !ok || n == "" || !allTchar(n) {
			continue
		}
		if first {
			b.WriteByte(' ')
			first = false
		} else {
			b.WriteString(", ")
		}
		b.WriteString(n)
		b.WriteString(`="`)
		for i := 0; i < len(v); i++ {
			if v[i] == '"' || v[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(v[i])
		}
		b.WriteByte('"')
	}
	return b.String()
}

func allTchar(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isTchar(s[i]) {
			return false
		}
	}
	return true
}
