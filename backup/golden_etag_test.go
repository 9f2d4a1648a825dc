package backup

import (
	"bytes"
	"encoding/json"
	"testing"
)

// checkWriteGolden compares a successful PUT's JSON reply with its golden
// file, the ETag replaced by "<etag>" once it is checked to be the ETag
// header's value: ETags come from a sequence each test server counts up
// (or are random), so the pinned bytes would change whenever a test
// gained or lost a request before this one.
func checkWriteGolden(t *testing.T, name string, r reply) {
	t.Helper()
	var body struct {
		ETag string `json:"etag"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("%s: reply is not JSON: %s", name, r.body)
	}
	if body.ETag == "" || !isQuotedETag(body.ETag) || body.ETag != r.header.Get("ETag") {
		t.Fatalf("%s: etag %q in the body, ETag %q in the header", name, body.ETag, r.header.Get("ETag"))
	}
	tag, err := json.Marshal(body.ETag)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, name, bytes.Replace(r.body, tag, []byte(`"<etag>"`), 1))
}
