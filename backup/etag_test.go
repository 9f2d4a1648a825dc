package backup

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/authd-dev/authd/errors"
)

func TestParseConditions(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		want   conditions
		ok     bool
	}{
		{"none", http.Header{}, conditions{}, true},
		{"If-Match star", http.Header{"If-Match": {"*"}}, conditions{hasMatch: true, matchAny: true}, true},
		{"If-Match star with spaces", http.Header{"If-Match": {" * "}}, conditions{hasMatch: true, matchAny: true}, true},
		{"If-Match one", http.Header{"If-Match": {`"abc"`}}, conditions{hasMatch: true, match: []string{"abc"}}, true},
		{"If-Match list, weak dropped", http.Header{"If-Match": {`"a", W/"b" ,"c"`}}, conditions{hasMatch: true, match: []string{"a", "c"}}, true},
		{"If-Match only weak", http.Header{"If-Match": {`W/"a"`}}, conditions{hasMatch: true}, true},
		{"If-Match two field lines", http.Header{"If-Match": {`"a"`, `"b"`}}, conditions{hasMatch: true, match: []string{"a", "b"}}, true},
		{"If-Match empty elements", http.Header{"If-Match": {`, "a",,`}}, conditions{hasMatch: true, match: []string{"a"}}, true},
		{"If-Match empty opaque", http.Header{"If-Match": {`""`}}, conditions{hasMatch: true, match: []string{""}}, true},
		{"If-None-Match star", http.Header{"If-None-Match": {"*"}}, conditions{hasNone: true, noneAny: true}, true},
		{"If-None-Match weak kept", http.Header{"If-None-Match": {`W/"a", "b"`}}, conditions{hasNone: true, none: []string{"a", "b"}}, true},
		{"both", http.Header{"If-Match": {`"a"`}, "If-None-Match": {`"b"`}}, conditions{hasMatch: true, match: []string{"a"}, hasNone: true, none: []string{"b"}}, true},

		{"unquoted", http.Header{"If-Match": {"abc"}}, conditions{}, false},
		{"empty value", http.Header{"If-Match": {""}}, conditions{}, false},
		{"unterminated", http.Header{"If-Match": {`"abc`}}, conditions{}, false},
		{"star in a list", http.Header{"If-Match": {`*, "a"`}}, conditions{}, false},
		{"junk after tag", http.Header{"If-Match": {`"a"b`}}, conditions{}, false},
		{"space inside", http.Header{"If-Match": {`"a b"`}}, conditions{}, false},
		{"lower-case weak", http.Header{"If-Match": {`w/"a"`}}, conditions{}, false},
		{"control character", http.Header{"If-None-Match": {"\"a\x01\""}}, conditions{}, false},
		{"too many tags", http.Header{"If-Match": {strings.Repeat(`"a",`, maxTags+1)}}, conditions{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseConditions(tc.header)
			if !tc.ok {
				if errors.CodeOf(err) != errors.InvalidRequest {
					t.Fatalf("parseConditions = %+v, %v; want invalid_request", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("parseConditions = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestConditionsDecide(t *testing.T) {
	const cur = "cur"
	tests := []struct {
		name            string
		c               conditions
		create, replace bool
	}{
		{"none", conditions{}, true, true},
		{"If-Match *", conditions{hasMatch: true, matchAny: true}, false, true},
		{"If-Match current", conditions{hasMatch: true, match: []string{"x", cur}}, false, true},
		{"If-Match stale", conditions{hasMatch: true, match: []string{"x"}}, false, false},
		{"If-Match weak only", conditions{hasMatch: true}, false, false},
		{"If-None-Match *", conditions{hasNone: true, noneAny: true}, true, false},
		{"If-None-Match current", conditions{hasNone: true, none: []string{cur}}, true, false},
		{"If-None-Match other", conditions{hasNone: true, none: []string{"x"}}, true, true},
	}
	for _, tc := range tests {
		if got := tc.c.allowsCreate(); got != tc.create {
			t.Errorf("%s: allowsCreate = %v, want %v", tc.name, got, tc.create)
		}
		if got := tc.c.allowsReplace(cur); got != tc.replace {
			t.Errorf("%s: allowsReplace = %v, want %v", tc.name, got, tc.replace)
		}
		// mayReplace must never rule out a replace allowsReplace would allow.
		if tc.c.allowsReplace(cur) && !tc.c.mayReplace() {
			t.Errorf("%s: mayReplace = false though the current tag satisfies the conditions", tc.name)
		}
	}
}

func FuzzParseTagList(f *testing.F) {
	for _, s := range []string{`*`, `"a"`, `W/"a", "b"`, `,,`, `"a`, `"a"b`, ` * `} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		star, tags, ok := parseTagList([]string{s})
		if !ok {
			return
		}
		if star && len(tags) > 0 {
			t.Fatal("both * and tags")
		}
		if !star && len(tags) == 0 {
			t.Fatal("accepted an empty list")
		}
		for _, tag := range tags {
			if strings.ContainsAny(tag.opaque, "\" \t") {
				t.Fatalf("opaque tag %q holds a quote or space", tag.opaque)
			}
		}
	})
}
