package charset

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// rfc6749 are the sets of RFC 6749 Appendix A, as the RFC writes them:
// the oracle every other test of the charset trusts.
var rfc6749 = map[string][][2]byte{
	"VSCHAR":  {{0x20, 0x7e}},
	"NQCHAR":  {{0x21, 0x21}, {0x23, 0x5b}, {0x5d, 0x7e}},
	"NQSCHAR": {{0x20, 0x21}, {0x23, 0x5b}, {0x5d, 0x7e}},
}

func inRFC(set string, c byte) bool {
	for _, r := range rfc6749[set] {
		if c >= r[0] && c <= r[1] {
			return true
		}
	}
	return false
}

// TestSets checks every byte against the RFC's ranges, alone and inside
// a string of valid characters.
func TestSets(t *testing.T) {
	for set, f := range map[string]func(string) bool{"VSCHAR": VSChars, "NQCHAR": NQChars, "NQSCHAR": NQSChars} {
		if !f("") {
			t.Errorf("%s: the empty string is not valid", set)
		}
		for i := range 256 {
			c := byte(i)
			want := inRFC(set, c)
			if got := f(string([]byte{c})); got != want {
				t.Errorf("%s(%#02x) = %v, want %v", set, c, got, want)
			}
			if got := f("ab" + string([]byte{c}) + "cd"); got != want {
				t.Errorf("%s(ab%#02xcd) = %v, want %v", set, c, got, want)
			}
		}
	}
}

func TestSanitizeText(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"Missing required parameter: client_id", "Missing required parameter: client_id"},
		{`say "hi"`, "say 'hi'"},
		{`C:\dir`, "C:/dir"},
		{"a\tb\nc\x7f", "a?b?c?"},
		{"café", "caf?"},
		{"\xff\xfe", "??"},
		{"日本", "??"},
	} {
		if got := SanitizeText(tt.in); got != tt.want {
			t.Errorf("SanitizeText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSanitizeURI(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"https://auth.example.com/docs/errors#invalid_request", "https://auth.example.com/docs/errors#invalid_request"},
		{"https://a.example/x y", "https://a.example/x%20y"},
		{`https://a.example/"q"\`, "https://a.example/%22q%22%5C"},
		{"https://a.example/é", "https://a.example/%C3%A9"},
		{"\x00\x7f", "%00%7F"},
	} {
		if got := SanitizeURI(tt.in); got != tt.want {
			t.Errorf("SanitizeURI(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// FuzzSanitize: whatever goes in, what comes out is in the set; what was
// in the set already comes out unchanged; SanitizeText replaces
// character for character.
func FuzzSanitize(f *testing.F) {
	for _, s := range []string{"", "ok", `"\`, "\x00\xff", "é日", "a b%c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		text := SanitizeText(s)
		for i := 0; i < len(text); i++ {
			if !inRFC("NQSCHAR", text[i]) {
				t.Fatalf("SanitizeText(%q) = %q has %#02x", s, text, text[i])
			}
		}
		if n := utf8.RuneCountInString(s); len(text) != n {
			t.Errorf("SanitizeText(%q) = %q: %d bytes for %d characters", s, text, len(text), n)
		}
		uri := SanitizeURI(s)
		for i := 0; i < len(uri); i++ {
			if !inRFC("NQCHAR", uri[i]) {
				t.Fatalf("SanitizeURI(%q) = %q has %#02x", s, uri, uri[i])
			}
		}
		if NQSChars(s) && text != s {
			t.Errorf("SanitizeText changed %q, already in the set, to %q", s, text)
		}
		if NQChars(s) && uri != s {
			t.Errorf("SanitizeURI changed %q, already in the set, to %q", s, uri)
		}
		if !strings.Contains(s, "%") && len(uri) != len(s)+2*strings.Count(uri, "%") {
			t.Errorf("SanitizeURI(%q) = %q: not one escape per byte", s, uri)
		}
	})
}
