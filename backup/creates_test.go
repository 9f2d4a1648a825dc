package backup

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/store"
)

// fakeCreates allows n creates, and records what it was asked and told.
type fakeCreates struct {
	mu       sync.Mutex
	left     int
	asked    int
	released []bool
}

func (f *fakeCreates) ReserveCreate(w http.ResponseWriter, r *http.Request) (func(bool), error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked++
	w.Header().Set("X-Creates-Left", "checked")
	if f.left == 0 {
		return nil, errors.E(errors.RateLimitExceeded, "Too many backups created").WithRetryAfter(time.Hour)
	}
	f.left--
	return func(created bool) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.released = append(f.released, created)
		if !created {
			f.left++
		}
	}, nil
}

// TestCreateLimiter: the limiter is asked before a create only, never
// before a replace; a refusal writes nothing; a reservation that created
// nothing (a conflict) is released as such.
func TestCreateLimiter(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		fc := &fakeCreates{left: 1}
		ts := newTestServer(t, db.DB, serverOptions{creates: fc})
		ts.wallet.register(alice)
		ts.wallet.register(bob)
		v1, v2 := npmBackups(t)[0].data, npmBackups(t)[1].data

		r := ts.do(t, call{method: "PUT", body: v1, as: alice})
		must(t, "create", r, 201, "")
		if r.header.Get("X-Creates-Left") != "checked" {
			t.Error("the limiter's headers are not on the response")
		}
		for i := 0; i < 3; i++ {
			must(t, "replace", ts.do(t, call{method: "PUT", body: v2, as: alice}), 200, "")
		}
		r = ts.do(t, call{method: "PUT", body: v1, as: bob})
		must(t, "create over the limit", r, 429, errors.RateLimitExceeded)
		if r.header.Get("Retry-After") != "3600" {
			t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
		}
		must(t, "nothing written for bob", ts.do(t, call{method: "GET", as: bob}), 404, errors.BackupNotFound)
		fc.mu.Lock()
		if fc.asked != 2 || len(fc.released) != 1 || !fc.released[0] {
			t.Errorf("asked %d, released %v; want 2 asks (alice's create, bob's), one release(true)", fc.asked, fc.released)
		}
		fc.left = 2
		fc.mu.Unlock()
		// Two racing creates for bob with If-None-Match: *: both reserve,
		// one creates, and the loser's conflict releases its reservation
		// unused.
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for i := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				codes[i] = ts.do(t, call{method: "PUT", body: v1, as: bob, header: map[string]string{"If-None-Match": "*"}}).status
			}()
		}
		wg.Wait()
		if !(codes[0] == 201 && codes[1] == 412 || codes[0] == 412 && codes[1] == 201) {
			t.Fatalf("two racing creates: %v", codes)
		}
		fc.mu.Lock()
		defer fc.mu.Unlock()
		created := 0
		for _, c := range fc.released[1:] {
			if c {
				created++
			}
		}
		if len(fc.released) != 3 || created != 1 || fc.left != 1 {
			t.Errorf("released %v, %d left: the loser's reservation must be given back", fc.released, fc.left)
		}
	})
}
