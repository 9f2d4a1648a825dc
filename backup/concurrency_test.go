package backup

import (
	"bytes"
	"sync"
	"testing"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/store"
)

// race sends calls at once (released together) and returns the replies in
// the same order.
func race(t *testing.T, ts *testServer, calls []call) []reply {
	t.Helper()
	replies := make([]reply, len(calls))
	errs := make([]error, len(calls))
	var start, done sync.WaitGroup
	start.Add(1)
	for i, c := range calls {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			replies[i], errs[i] = ts.send(c)
		}()
	}
	start.Done()
	done.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return replies
}

// TestConcurrentWrites: of several PUTs with the same If-Match (or
// If-None-Match: * on an empty slot), exactly one wins and the others get
// backup_conflict 412; the stored backup is then exactly the winner's
// body, never another's nor a mix. Unconditional PUTs racing to create a
// backup all succeed (one 201, the rest 200).
func TestConcurrentWrites(t *testing.T) {
	const racers = 8
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ts := newTestServer(t, db.DB, serverOptions{randomTags: true})
		ts.wallet.register(alice)
		ts.wallet.register(bob)

		bodies := func() [][]byte {
			b := make([][]byte, racers)
			for i := range b {
				b[i] = randomBase64(t, 1500+i*100) // distinct lengths too
			}
			return b
		}
		// check finds the one winner among replies and that the stored
		// backup is its body, and returns the stored ETag.
		check := func(t *testing.T, replies []reply, bodies [][]byte, winStatus int) string {
			t.Helper()
			winner := -1
			for i, r := range replies {
				switch {
				case r.status == winStatus:
					if winner >= 0 {
						t.Fatalf("racers %d and %d both won (%d)", winner, i, winStatus)
					}
					winner = i
				case r.status == 412 && r.code() == errors.BackupConflict:
				default:
					t.Fatalf("racer %d: %d %s", i, r.status, r.body)
				}
			}
			if winner < 0 {
				t.Fatal("no racer won")
			}
			got := ts.do(t, call{method: "GET", as: alice})
			must(t, "GET", got, 200, "")
			if !bytes.Equal(got.body, bodies[winner]) {
				for i, b := range bodies {
					if bytes.Equal(got.body, b) {
						t.Fatalf("stored body is racer %d's, but racer %d won", i, winner)
					}
				}
				t.Fatalf("stored %d bytes that are no racer's body", len(got.body))
			}
			if got.header.Get("ETag") != replies[winner].header.Get("ETag") {
				t.Fatalf("stored ETag %s, winner was told %s", got.header.Get("ETag"), replies[winner].header.Get("ETag"))
			}
			return got.header.Get("ETag")
		}

		t.Run("If-None-Match: * creates once", func(t *testing.T) {
			b := bodies()
			calls := make([]call, racers)
			for i := range calls {
				calls[i] = call{method: "PUT", body: b[i], as: alice, header: map[string]string{"If-None-Match": "*"}}
			}
			check(t, race(t, ts, calls), b, 201)
		})

		t.Run("If-Match replaces once", func(t *testing.T) {
			tag := ts.do(t, call{method: "GET", as: alice}).header.Get("ETag")
			for range rounds {
				b := bodies()
				calls := make([]call, racers)
				for i := range calls {
					calls[i] = call{method: "PUT", body: b[i], as: alice, header: map[string]string{"If-Match": tag}}
				}
				next := check(t, race(t, ts, calls), b, 200)
				if next == tag {
					t.Fatal("the ETag did not change")
				}
				tag = next
			}
		})

		t.Run("unconditional creates all succeed", func(t *testing.T) {
			for range rounds {
				b := bodies()
				calls := make([]call, racers)
				for i := range calls {
					calls[i] = call{method: "PUT", body: b[i], as: bob}
				}
				created := 0
				for i, r := range race(t, ts, calls) {
					switch r.status {
					case 201:
						created++
					case 200:
					default:
						t.Fatalf("racer %d: %d %s", i, r.status, r.body)
					}
				}
				if created != 1 {
					t.Fatalf("%d racers were told they created the backup", created)
				}
				got := ts.do(t, call{method: "GET", as: bob})
				found := false
				for _, x := range b {
					found = found || bytes.Equal(got.body, x)
				}
				if !found {
					t.Fatal("the stored backup is no racer's body")
				}
				must(t, "DELETE", ts.do(t, call{method: "DELETE", as: bob}), 204, "")
			}
		})
	})
}
