// Package charset holds the character sets of OAuth 2.0's syntax
// (RFC 6749 Appendix A) that authd's responses and parameters keep to,
// and the functions that force text into them. The error writer
// (httperr), the resource SDK and the authorization server share them,
// so that every error response, whoever writes it, is in the same
// charset.
package charset

// VSChars reports whether every byte of s is a VSCHAR (%x20-7E): the
// characters of client_id, client_secret, code and state.
func VSChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// NQChars reports whether every byte of s is an NQCHAR (%x21 / %x23-5B /
// %x5D-7E): the characters of a scope-token and of error_uri.
func NQChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if !nqChar(s[i]) {
			return false
		}
	}
	return true
}

// NQSChars reports whether every byte of s is an NQSCHAR (%x20-21 /
// %x23-5B / %x5D-7E): the characters of error and error_description,
// which can also stand inside a quoted-string (RFC 9110 §5.6.4) as they
// are.
func NQSChars(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != ' ' && !nqChar(c) {
			return false
		}
	}
	return true
}

func nqChar(c byte) bool { return c >= 0x21 && c <= 0x7e && c != '"' && c != '\\' }

// SanitizeText returns s forced into NQSCHAR, the charset of error and
// error_description: a double quote becomes a single quote, a backslash a
// slash, and any other character outside the set (control characters,
// anything beyond ASCII, each byte of invalid UTF-8) a '?'. A string
// already in the set is returned as it is.
func SanitizeText(s string) string {
	if NQSChars(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, c := range s { // invalid UTF-8 yields one U+FFFD per bad byte
		switch {
		case c == '"':
			b = append(b, '\'')
		case c == '\\':
			b = append(b, '/')
		case c >= 0x20 && c <= 0x7e:
			b = append(b, byte(c))
		default:
			b = append(b, '?')
		}
	}
	return string(b)
}

// SanitizeURI returns s forced into NQCHAR, the charset of error_uri, by
// percent-encoding every byte outside it, which keeps a URI a URI. A
// string already in the set is returned as it is.
func SanitizeURI(s string) string {
	if NQChars(s) {
		return s
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, len(s)+16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if nqChar(c) {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hex[c>>4], hex[c&0xf])
	}
	return string(b)
}
