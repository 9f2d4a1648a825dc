package resource_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/authd-dev/authd/resource"
)

// oracleClaims reads doc with encoding/json (into a map: claim names are
// matched exactly) and renders the claims Verify uses, or fails where a
// claim has the wrong type or a date is out of range.
func oracleClaims(doc []byte) (string, bool) {
	var m map[string]any
	if json.Unmarshal(doc, &m) != nil || m == nil {
		return "", false
	}
	str := func(k string) (string, bool) {
		switch v := m[k].(type) {
		case nil:
			return "", true
		case string:
			return v, true
		}
		return "", false
	}
	date := func(k string) (any, bool) {
		switch v := m[k].(type) {
		case nil:
			return nil, true
		case float64:
			return v, v >= 0 && v <= 1<<40
		}
		return nil, false
	}
	var aud []string
	switch v := m["aud"].(type) {
	case nil:
	case string:
		aud = []string{v}
	case []any:
		aud = []string{}
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return "", false
			}
			aud = append(aud, s)
		}
	default:
		return "", false
	}
	iss, ok1 := str("iss")
	sub, ok2 := str("sub")
	cid, ok3 := str("client_id")
	scope, ok4 := str("scope")
	jti, ok5 := str("jti")
	exp, ok6 := date("exp")
	nbf, ok7 := date("nbf")
	iat, ok8 := date("iat")
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8) {
		return "", false
	}
	return resource.RenderClaims(iss, sub, cid, scope, jti, aud, exp, nbf, iat), true
}

// plainDoc reports whether doc's top-level names are all different and it
// nests no deeper than parsePayload follows: then it must read doc as
// encoding/json does.
func plainDoc(doc []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(doc))
	seen := map[string]bool{}
	depth, deepest := 0, 0
	wantName := false
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest <= 30
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
			wantName = depth == 1
			continue
		case json.Delim('}'), json.Delim(']'):
			depth--
			wantName = depth == 1
			continue
		}
		if depth != 1 {
			continue
		}
		if name, ok := tok.(string); ok && wantName {
			if seen[name] {
				return false
			}
			seen[name] = true
			wantName = false
		} else {
			wantName = true // a value of the top-level object
		}
	}
}

var payloadSeeds = []string{
	`{"iss":"https://auth.example.com","sub":"1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH","aud":"https://auth.example.com","client_id":"c_1","scope":"profile backup","exp":1900000900,"iat":1900000000,"jti":"f.r"}`,
	`{"aud":["a","b"],"exp":1.5e9,"nbf":null,"iat":0,"x":{"y":[1,true,null,"z",{"w":-0.5e-3}]},"sub":"\u00e9\ud83d\ude00","jti":"\"q\""}`,
	`{"ISS":"x","iss":"y","iss":"z"}`,
	`{"aud":[],"scope":null}`,
	`{"exp":-1}`, `{"exp":"1"}`, `{"aud":[1]}`, `{"sub":"a\u0000"}`, `{"sub":"\xff"}`,
	`{}`, ` { } `, `[]`, `{"a":1,}`, `{"a" 1}`, `{"a":01}`, `{"a":1.}`, `{"a":tru}`, `{"a":"b}`, `{"a":1} x`,
}

// TestParsePayload: the seeds read as encoding/json reads them.
func TestParsePayload(t *testing.T) {
	for _, doc := range payloadSeeds {
		got, err := resource.ParsePayload([]byte(doc))
		want, ok := oracleClaims([]byte(doc))
		if (err == nil) != ok && plainDoc([]byte(doc)) || err == nil && got != want {
			t.Errorf("%s:\n got  %q, %v\n want %q, %v", doc, got, err, want, ok)
		}
	}
}

// FuzzParsePayload holds the claims reader to encoding/json: whatever it
// accepts, encoding/json reads the same way; whatever encoding/json
// accepts without repeated names or deep nesting, it accepts too.
func FuzzParsePayload(f *testing.F) {
	for _, s := range payloadSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		got, err := resource.ParsePayload([]byte(doc))
		want, ok := oracleClaims([]byte(doc))
		if err == nil && (!ok || got != want) {
			t.Fatalf("%q:\n got  %q\n want %q (%v)", doc, got, want, ok)
		}
		if err != nil && ok && plainDoc([]byte(doc)) {
			t.Fatalf("%q: refused (%v), encoding/json reads %q", doc, err, want)
		}
	})
}
