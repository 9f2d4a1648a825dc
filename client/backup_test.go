package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/client"
	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
)

// fakeBackups is /backup as authd answers it, with one stored backup, its
// errors written by authd's own writer. It records the precondition
// headers it received.
type fakeBackups struct {
	mu      sync.Mutex
	data    string
	etag    string
	version int
	conds   []string
}

func (f *fakeBackups) serve(w http.ResponseWriter, r *http.Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path != "/tenant/backup" {
		return errors.E(errors.NotFound, "")
	}
	im, inm := r.Header.Get("If-Match"), r.Header.Get("If-None-Match")
	f.conds = append(f.conds, r.Method+" If-Match="+im+" If-None-Match="+inm)
	conflict := errors.E(errors.BackupConflict, "The stored backup changed")
	switch r.Method {
	case "GET":
		if f.etag == "" {
			return errors.E(errors.BackupNotFound, "No backup found for this user")
		}
		w.Header().Set("ETag", f.etag)
		w.Header().Set("Last-Modified", time.Unix(1_800_000_000, 0).UTC().Format(http.TimeFormat))
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, f.data)
	case "PUT":
		if (im != "" && im != f.etag) || (inm == "*" && f.etag != "") {
			return conflict
		}
		b, _ := io.ReadAll(r.Body)
		created := f.etag == ""
		f.version++
		f.data, f.etag = string(b), fmt.Sprintf(`"v%d"`, f.version)
		w.Header().Set("ETag", f.etag)
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		if created {
			w.WriteHeader(http.StatusCreated)
		}
		json.NewEncoder(w).Encode(map[string]any{"etag": f.etag, "size": len(b), "updated_at": "2027-01-15T08:00:00.123Z"})
	case "DELETE":
		if f.etag == "" {
			return errors.E(errors.BackupNotFound, "No backup found for this user")
		}
		if im != "" && im != f.etag {
			return conflict
		}
		f.data, f.etag = "", ""
		w.WriteHeader(http.StatusNoContent)
	}
	return nil
}

func TestBackups(t *testing.T) {
	fake := &fakeBackups{}
	srv := httptest.NewServer(httperr.Middleware(httperr.Config{Logger: discard()}, httperr.HandlerFunc(fake.serve)))
	defer srv.Close()
	ctx := context.Background()
	b := client.NewBackups(srv.URL+"/tenant/", srv.Client())

	if _, err := b.Get(ctx); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Get of nothing: %v", err)
	}
	if err := b.Delete(ctx); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("Delete of nothing: %v", err)
	}
	first, err := b.Put(ctx, []byte("c2VjcmV0"), client.CreateOnly())
	if err != nil || !first.Created || first.ETag != `"v1"` || first.Size != 8 ||
		!first.UpdatedAt.Equal(time.Date(2027, 1, 15, 8, 0, 0, 123e6, time.UTC)) {
		t.Fatalf("first Put: %+v, %v", first, err)
	}
	// Another device creating blindly loses, and learns why.
	_, err = b.Put(ctx, []byte("b3RoZXI="), client.CreateOnly())
	var ce *client.Error
	if !errors.Is(err, client.ErrConflict) || !errors.As(err, &ce) || ce.Status != 412 || ce.RequestID == "" || ce.Description != "The stored backup changed" {
		t.Fatalf("second create: %#v", err)
	}
	got, err := b.Get(ctx)
	if err != nil || string(got.Data) != "c2VjcmV0" || got.ETag != `"v1"` || got.UpdatedAt.Unix() != 1_800_000_000 {
		t.Fatalf("Get: %+v, %v", got, err)
	}
	second, err := b.Put(ctx, []byte("bmV3ZXI="), client.IfMatch(got.ETag))
	if err != nil || second.Created || second.ETag != `"v2"` {
		t.Fatalf("replace: %+v, %v", second, err)
	}
	// The version read before is stale now; an unquoted tag is quoted.
	if _, err := b.Put(ctx, []byte("eA=="), client.IfMatch("v1")); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("stale If-Match: %v", err)
	}
	if err := b.Delete(ctx, client.IfMatch(`"v1"`)); !errors.Is(err, client.ErrConflict) {
		t.Fatalf("stale delete: %v", err)
	}
	if err := b.Delete(ctx, client.IfMatch(second.ETag)); err != nil {
		t.Fatalf("delete: %v", err)
	}
	want := []string{
		"GET If-Match= If-None-Match=",
		"DELETE If-Match= If-None-Match=",
		"PUT If-Match= If-None-Match=*",
		"PUT If-Match= If-None-Match=*",
		"GET If-Match= If-None-Match=",
		`PUT If-Match="v1" If-None-Match=`,
		`PUT If-Match="v1" If-None-Match=`,
		`DELETE If-Match="v1" If-None-Match=`,
		`DELETE If-Match="v2" If-None-Match=`,
	}
	if strings.Join(fake.conds, "\n") != strings.Join(want, "\n") {
		t.Errorf("server saw\n%s\nwant\n%s", strings.Join(fake.conds, "\n"), strings.Join(want, "\n"))
	}
}

func TestBackupsRefusesOversizeLocally(t *testing.T) {
	var calls int
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls++ }))
	defer srv.Close()
	_, err := client.NewBackups(srv.URL, nil).Put(context.Background(), make([]byte, client.MaxBackupSize+1))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != errors.BackupTooLarge || calls != 0 {
		t.Fatalf("%v, %d calls", err, calls)
	}
}

// TestBackupsUnexpectedStatus: a status authd never sends is an error, not
// a success.
func TestBackupsUnexpectedStatus(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer srv.Close()
	b := client.NewBackups(srv.URL, nil)
	if _, err := b.Get(context.Background()); err == nil || !strings.Contains(err.Error(), "202") {
		t.Errorf("Get: %v", err)
	}
	if _, err := b.Put(context.Background(), []byte("x")); err == nil {
		t.Error("Put: no error")
	}
	if err := b.Delete(context.Background()); err == nil {
		t.Error("Delete: no error")
	}
}
