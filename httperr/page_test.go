package httperr_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
)

// TestDocs checks the catalog page and its JSON twin: one id="<code>"
// anchor per code, and the same codes and statuses in errors.json.
func TestDocs(t *testing.T) {
	get := func(h httperr.HandlerFunc) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		httperr.Middleware(httperr.Config{URIBase: testBase}, h).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/docs/errors", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d", rec.Code)
		}
		return rec
	}

	page := get(httperr.Docs)
	if ct := page.Header().Get("Content-Type"); ct != "text/html;charset=UTF-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	html := page.Body.String()
	for _, e := range errors.Catalog() {
		anchor := `id="` + string(e.Code) + `"`
		if n := strings.Count(html, anchor); n != 1 {
			t.Errorf("%s: %d anchors %s on /docs/errors, want 1", e.Code, n, anchor)
		}
	}
	ids := regexp.MustCompile(`id="([^"]*)"`).FindAllStringSubmatch(html, -1)
	if len(ids) != len(errors.Catalog()) {
		t.Errorf("page has %d ids for %d codes", len(ids), len(errors.Catalog()))
	}
	for _, e := range errors.Catalog() {
		i := strings.Index(html, `id="`+string(e.Code)+`"`)
		if i < 0 {
			continue
		}
		section := html[i:]
		if j := strings.Index(section, "</section>"); j >= 0 {
			section = section[:j]
		}
		for _, want := range []string{strconv.Itoa(e.Status), "Common causes", "How to recover", "Retry"} {
			if !strings.Contains(section, want) {
				t.Errorf("%s: section lacks %q", e.Code, want)
			}
		}
	}

	js := get(httperr.DocsJSON)
	if ct := js.Header().Get("Content-Type"); ct != "application/json;charset=UTF-8" {
		t.Errorf("errors.json Content-Type = %q", ct)
	}
	var doc struct {
		Errors []struct {
			Code         string   `json:"code"`
			Status       int      `json:"status"`
			Description  string   `json:"description"`
			Retryable    *bool    `json:"retryable"`
			Causes       []string `json:"causes"`
			Fix          string   `json:"fix"`
			Redirectable *bool    `json:"redirectable"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(js.Body.Bytes(), &doc); err != nil {
		t.Fatalf("errors.json: %v", err)
	}
	cat := errors.Catalog()
	if len(doc.Errors) != len(cat) {
		t.Fatalf("errors.json lists %d codes, the catalog %d", len(doc.Errors), len(cat))
	}
	for i, e := range cat {
		d := doc.Errors[i]
		if d.Code != string(e.Code) || d.Status != e.Status || d.Description != e.Description || d.Retryable == nil || *d.Retryable != e.Retryable || d.Fix != e.Fix || len(d.Causes) != len(e.Causes) || d.Redirectable == nil {
			t.Errorf("errors.json entry %d = %+v, catalog %+v", i, d, e)
		}
	}
}
