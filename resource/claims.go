package resource

import (
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/authd-dev/authd/errors"
)

// parsePayload decodes a JWT claims set (a JSON object, RFC 7519 §4) into
// p. It reads the claims Verify checks and skips every other member after
// checking its syntax; claim names are matched exactly, as RFC 7519 §10
// wants (encoding/json would match "ISS" too), and a repeated member
// counts once, the last. It exists because encoding/json's reflection
// and its second pass over the input cost a few percent of a whole
// verification; FuzzParsePayload holds it to encoding/json's reading of
// the same bytes.
func parsePayload(b string, p *payload) error {
	d := jsonReader{b: b}
	d.ws()
	if !d.byte('{') {
		return errBadJSON
	}
	d.ws()
	if d.byte('}') {
		return d.end()
	}
	for {
		d.ws()
		key, ok := d.str()
		if !ok {
			return errBadJSON
		}
		d.ws()
		if !d.byte(':') {
			return errBadJSON
		}
		d.ws()
		var err error
		switch key {
		case "iss":
			p.Iss, err = d.strOrNull()
		case "sub":
			p.Sub, err = d.strOrNull()
		case "client_id":
			p.ClientID, err = d.strOrNull()
		case "scope":
			p.Scope, err = d.strOrNull()
		case "jti":
			p.Jti, err = d.strOrNull()
		case "aud":
			p.Aud, err = d.audience()
		case "exp":
			p.Exp, err = d.date()
		case "nbf":
			p.Nbf, err = d.date()
		case "iat":
			p.Iat, err = d.date()
		default:
			if !d.skip(0) {
				err = errBadJSON
			}
		}
		if err != nil {
			return err
		}
		d.ws()
		if d.byte('}') {
			return d.end()
		}
		if !d.byte(',') {
			return errBadJSON
		}
	}
}

var errBadJSON = errors.New("claims are not a JSON object of the expected members")

// maxDepth bounds the nesting of skipped members.
const maxDepth = 32

// jsonReader reads JSON from a string, so that the strings it returns
// share the input's memory instead of each being a copy.
type jsonReader struct {
	b string
	i int
}

func (d *jsonReader) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonReader) byte(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *jsonReader) end() error {
	d.ws()
	if d.i != len(d.b) {
		return errBadJSON
	}
	return nil
}

func (d *jsonReader) literal(s string) bool {
	if len(d.b)-d.i >= len(s) && d.b[d.i:d.i+len(s)] == s {
		d.i += len(s)
		return true
	}
	return false
}

// str reads a JSON string. Plain ASCII or UTF-8 without escapes is taken
// as is; anything else goes through encoding/json, so escapes and invalid
// UTF-8 read exactly as they would there.
func (d *jsonReader) str() (string, bool) {
	if !d.byte('"') {
		return "", false
	}
	start := d.i
	simple := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			raw := d.b[start:d.i]
			d.i++
			if simple && utf8.ValidString(raw) {
				return raw, true
			}
			var s string
			if json.Unmarshal([]byte(d.b[start-1:d.i]), &s) != nil {
				return "", false
			}
			return s, true
		case c == '\\':
			simple = false
			d.i += 2
		case c < 0x20:
			return "", false
		default:
			d.i++
		}
	}
	return "", false
}

func (d *jsonReader) strOrNull() (string, error) {
	if d.literal("null") {
		return "", nil
	}
	s, ok := d.str()
	if !ok {
		return "", errBadJSON
	}
	return s, nil
}

// audience reads "aud": a string, an array of strings, or null.
func (d *jsonReader) audience() (audience, error) {
	switch {
	case d.literal("null"):
		return nil, nil
	case d.i < len(d.b) && d.b[d.i] == '"':
		s, ok := d.str()
		if !ok {
			return nil, errBadJSON
		}
		return audience{s}, nil
	case d.byte('['):
		a := audience{}
		d.ws()
		if d.byte(']') {
			return a, nil
		}
		for {
			d.ws()
			s, ok := d.str()
			if !ok {
				return nil, errBadJSON
			}
			a = append(a, s)
			d.ws()
			if d.byte(']') {
				return a, nil
			}
			if !d.byte(',') {
				return nil, errBadJSON
			}
		}
	}
	return nil, errBadJSON
}

// date reads a NumericDate (RFC 7519 §2), or null.
func (d *jsonReader) date() (numericDate, error) {
	if d.literal("null") {
		return numericDate{}, nil
	}
	start := d.i
	if !d.number() {
		return numericDate{}, errBadJSON
	}
	f, err := strconv.ParseFloat(d.b[start:d.i], 64)
	if err != nil || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return numericDate{}, errors.New("NumericDate out of range")
	}
	return numericDate{sec: f, set: true}, nil
}

// number reads a JSON number (RFC 8259 §6).
func (d *jsonReader) number() bool {
	d.byte('-')
	switch {
	case d.byte('0'):
	case d.i < len(d.b) && d.b[d.i] >= '1' && d.b[d.i] <= '9':
		d.digits()
	default:
		return false
	}
	if d.byte('.') && !d.digits() {
		return false
	}
	if d.byte('e') || d.byte('E') {
		if !d.byte('+') {
			d.byte('-')
		}
		if !d.digits() {
			return false
		}
	}
	return true
}

func (d *jsonReader) digits() bool {
	start := d.i
	for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}

// skip reads any JSON value, checking its syntax.
func (d *jsonReader) skip(depth int) bool {
	if d.i >= len(d.b) || depth > maxDepth {
		return false
	}
	switch d.b[d.i] {
	case '"':
		_, ok := d.str()
		return ok
	case '{', '[':
		open, closing := d.b[d.i], byte('}')
		if open == '[' {
			closing = ']'
		}
		d.i++
		d.ws()
		if d.byte(closing) {
			return true
		}
		for {
			d.ws()
			if open == '{' {
				if _, ok := d.str(); !ok {
					return false
				}
				d.ws()
				if !d.byte(':') {
					return false
				}
				d.ws()
			}
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			if d.byte(closing) {
				return true
			}
			if !d.byte(',') {
				return false
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return d.number()
}
