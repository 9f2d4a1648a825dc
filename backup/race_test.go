package backup

import (
	"testing"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	"github.com/authd-dev/authd/store"
)

// TestConditionalDeleteRaces: writes that carry the same If-Match are
// decided by the database, whatever mix of PUT and DELETE races for one
// version: exactly one of them takes effect, every other gets
// backup_conflict 412, and what is stored afterwards is what the winner
// did. Many rounds on SQLite and PostgreSQL; run under -race.
func TestConditionalDeleteRaces(t *testing.T) {
	const racers = 8
	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		ts := newTestServer(t, db.DB, serverOptions{randomTags: true})
		ts.wallet.register(alice)
		put := func() string {
			t.Helper()
			r := ts.do(t, call{method: "PUT", body: randomBase64(t, 1200), as: alice})
			if r.status != 200 && r.status != 201 {
				t.Fatalf("PUT: %d %s", r.status, r.body)
			}
			return r.header.Get("ETag")
		}
		for round := range rounds {
			tag := put()
			// Half the racers delete, half replace, all If-Match: tag.
			calls := make([]call, racers)
			bodies := make([][]byte, racers)
			for i := range calls {
				if i%2 == 0 {
					calls[i] = call{method: "DELETE", as: alice, header: map[string]string{"If-Match": tag}}
				} else {
					bodies[i] = randomBase64(t, 1300+i)
					calls[i] = call{method: "PUT", body: bodies[i], as: alice, header: map[string]string{"If-Match": tag}}
				}
			}
			winner := -1
			for i, r := range race(t, ts, calls) {
				ok := (calls[i].method == "DELETE" && r.status == 204) || (calls[i].method == "PUT" && r.status == 200)
				switch {
				case ok && winner >= 0:
					t.Fatalf("round %d: racers %d (%s) and %d (%s) both won", round, winner, calls[winner].method, i, calls[i].method)
				case ok:
					winner = i
				case r.status == 412 && r.code() == errors.BackupConflict:
				default:
					t.Fatalf("round %d: racer %d (%s): %d %s", round, i, calls[i].method, r.status, r.body)
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: no racer won", round)
			}
			got := ts.do(t, call{method: "GET", as: alice})
			if calls[winner].method == "DELETE" {
				must(t, "GET after the DELETE won", got, 404, errors.BackupNotFound)
			} else {
				must(t, "GET after a PUT won", got, 200, "")
				if string(got.body) != string(bodies[winner]) {
					t.Fatalf("round %d: stored body is not the winner's", round)
				}
			}
		}

		// Only deletes: one 204; the rest find nothing to match
		// (RFC 9110 §13.1.1: If-Match fails without a current
		// representation).
		for round := range rounds {
			tag := put()
			calls := make([]call, racers)
			for i := range calls {
				calls[i] = call{method: "DELETE", as: alice, header: map[string]string{"If-Match": tag}}
			}
			deleted := 0
			for i, r := range race(t, ts, calls) {
				switch {
				case r.status == 204:
					deleted++
				case r.status == 412 && r.code() == errors.BackupConflict:
				default:
					t.Fatalf("round %d: racer %d: %d %s", round, i, r.status, r.body)
				}
			}
			if deleted != 1 {
				t.Fatalf("round %d: %d DELETEs with one If-Match succeeded; want exactly 1", round, deleted)
			}
		}
	})
}
