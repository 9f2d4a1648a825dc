package backup

import (
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/authd-dev/authd/errors"
)

// maxTags bounds the entity tags one precondition header may list.
const maxTags = 32

// conditions are a request's If-Match and If-None-Match headers
// (RFC 9110 §13.1.1, §13.1.2). Stored tags are opaque values without
// quotes.
type conditions struct {
	hasMatch bool
	matchAny bool     // If-Match: *
	match    []string // strong tags of If-Match; weak ones never match
	hasNone  bool
	noneAny  bool     // If-None-Match: *
	none     []string // tags of If-None-Match, weak or strong
}

// parseConditions reads If-Match and If-None-Match. A malformed header is
// invalid_request: ignoring a broken If-Match would turn a careful
// conditional write into a blind overwrite.
func parseConditions(h http.Header) (conditions, error) {
	const op = "backup.parseConditions"
	var c conditions
	if v, ok := h["If-Match"]; ok {
		star, tags, ok := parseTagList(v)
		if !ok {
			return c, errors.E(errors.InvalidRequest, `Invalid If-Match header: send * or the quoted ETag of the stored backup, e.g. If-Match: "<etag>"`).WithCause(op, nil)
		}
		c.hasMatch, c.matchAny = true, star
		for _, t := range tags {
			if !t.weak {
				c.match = append(c.match, t.opaque)
			}
		}
	}
	if v, ok := h["If-None-Match"]; ok {
		star, tags, ok := parseTagList(v)
		if !ok {
			return c, errors.E(errors.InvalidRequest, `Invalid If-None-Match header: send * (create only) or quoted ETags, e.g. If-None-Match: "<etag>"`).WithCause(op, nil)
		}
		c.hasNone, c.noneAny = true, star
		for _, t := range tags {
			c.none = append(c.none, t.opaque)
		}
	}
	return c, nil
}

type entityTag struct {
	weak   bool
	opaque string
}

// parseTagList parses the field values of If-Match or If-None-Match:
// "*" or a comma-separated list of entity-tags (RFC 9110 §8.8.3), empty
// list elements allowed (§5.6.1).
func parseTagList(values []string) (star bool, tags []entityTag, ok bool) {
	s := strings.Join(values, ",")
	if strings.Trim(s, " \t") == "*" {
		return true, nil, true
	}
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		var t entityTag
		if strings.HasPrefix(s, "W/") {
			t.weak, s = true, s[2:]
		}
		if len(s) < 2 || s[0] != '"' {
			return false, nil, false
		}
		end := strings.IndexByte(s[1:], '"')
		if end < 0 {
			return false, nil, false
		}
		t.opaque = s[1 : 1+end]
		for i := 0; i < len(t.opaque); i++ {
			// etagc = %x21 / %x23-7E / obs-text
			if c := t.opaque[i]; c < 0x21 || c == 0x7f {
				return false, nil, false
			}
		}
		s = strings.TrimLeft(s[2+end:], " \t")
		if s != "" && s[0] != ',' {
			return false, nil, false
		}
		if len(tags) == maxTags {
			return false, nil, false
		}
		tags = append(tags, t)
	}
	if len(tags) == 0 {
		return false, nil, false
	}
	return false, tags, true
}

// storable returns c without the tags that cannot equal any stored tag
// because they are not valid UTF-8 (obs-text, RFC 9110 §8.8.3): authd's
// tags are hex, and PostgreSQL refuses such bytes as a parameter, which
// would turn a client's odd header into a 503. An If-None-Match left with
// no tag holds for every backup, so it is dropped.
func (c conditions) storable() conditions {
	keep := func(tags []string) []string {
		var out []string
		for _, t := range tags {
			if utf8.ValidString(t) {
				out = append(out, t)
			}
		}
		return out
	}
	c.match, c.none = keep(c.match), keep(c.none)
	if c.hasNone && !c.noneAny && len(c.none) == 0 {
		c.hasNone = false
	}
	return c
}

// allowsCreate reports whether the conditions hold when no backup exists:
// If-Match fails (there is no current representation), If-None-Match holds.
func (c conditions) allowsCreate() bool { return !c.hasMatch }

// allowsReplace reports whether the conditions hold for a stored backup
// whose tag is etag: If-Match compares strongly, If-None-Match weakly.
func (c conditions) allowsReplace(etag string) bool {
	if c.hasMatch && !c.matchAny && !contains(c.match, etag) {
		return false
	}
	if c.hasNone && (c.noneAny || contains(c.none, etag)) {
		return false
	}
	return true
}

// mayReplace reports whether some stored backup could satisfy the
// conditions, so that a conditional UPDATE is worth sending.
func (c conditions) mayReplace() bool {
	if c.hasMatch && !c.matchAny && len(c.match) == 0 {
		return false // only weak tags: a strong comparison never matches
	}
	return !c.noneAny
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// quoteETag gives a stored tag its wire form (RFC 9110 §8.8.3).
func quoteETag(tag string) string { return `"` + tag + `"` }
