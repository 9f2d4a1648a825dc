package oauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/internal/testenv"
	. "github.com/authd-dev/authd/oauth"
	"github.com/authd-dev/authd/store"
)

// refuseIdentityWrites makes every INSERT or UPDATE of the identities
// table fail until the returned function is called: a sign-in that writes
// the identity then fails with temporarily_unavailable, one that only
// reads it succeeds. A BEFORE INSERT trigger fires for INSERT … ON
// CONFLICT even when the row exists, so it catches an upsert that would
// change nothing, too.
func refuseIdentityWrites(t *testing.T, db *store.DB) (allow func()) {
	t.Helper()
	var install, remove []string
	switch db.Dialect {
	case store.Postgres:
		install = []string{
			`CREATE FUNCTION refuse_identity_writes() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'identities are read-only in this test'; END $$ LANGUAGE plpgsql`,
			`CREATE TRIGGER refuse_identity_writes BEFORE INSERT OR UPDATE ON identities FOR EACH ROW EXECUTE FUNCTION refuse_identity_writes()`,
		}
		remove = []string{`DROP TRIGGER refuse_identity_writes ON identities`, `DROP FUNCTION refuse_identity_writes()`}
	default:
		install = []string{
			`CREATE TRIGGER refuse_identity_inserts BEFORE INSERT ON identities BEGIN SELECT RAISE(ABORT, 'identities are read-only in this test'); END`,
			`CREATE TRIGGER refuse_identity_updates BEFORE UPDATE ON identities BEGIN SELECT RAISE(ABORT, 'identities are read-only in this test'); END`,
		}
		remove = []string{`DROP TRIGGER refuse_identity_inserts`, `DROP TRIGGER refuse_identity_updates`}
	}
	run := func(stmts []string) {
		for _, q := range stmts {
			if _, err := db.ExecContext(context.Background(), q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
	run(install)
	done := false
	allow = func() {
		if !done {
			done = true
			run(remove)
		}
	}
	t.Cleanup(allow)
	return allow
}

// TestUpsertIdentityWritesOnlyChanges: a returning user whose identity
// would not change is only read (a wallet's every sign-in after its
// first, on the wire too), while anything UpsertIdentity learns anew — a
// provider's new e-mail, its verification, login, name or picture, a
// wallet's first public key — is still written, and updated_ms with it.
func TestUpsertIdentityWritesOnlyChanges(t *testing.T) {
	testenv.EachDB(t, func(t *testing.T, db *store.DB) {
		h := newHarness(t, db, nil)
		ctx := context.Background()
		t0 := time.Now().Truncate(time.Millisecond)
		h.clock.Set(t0)
		first := Identity{Subject: "google:42", Kind: KindGoogle, Email: "a@example.com", EmailVerified: true, Name: "Ada", Picture: "https://p.example/a.png"}
		if err := h.s.UpsertIdentity(ctx, first); err != nil {
			t.Fatal(err)
		}
		walletAddr := h.wallet.user()
		pub := h.wallet.pubkey(walletAddr)
		other := "02" + pub[2:]
		if other == pub {
			other = "03" + pub[2:]
		}
		if err := h.s.UpsertIdentity(ctx, Identity{Subject: walletAddr, Kind: KindWallet, Address: walletAddr, PubKey: pub}); err != nil {
			t.Fatal(err)
		}
		// A user who signed in before and signs in again.
		c, secret := h.client(ClientRegistration{RedirectURIs: []string{"https://app.example.com/cb"}, Scopes: []string{"profile"}})
		tr, addr := h.walletTokens(c, secret, "profile")
		if tr.AccessToken == "" {
			t.Fatal("no access token")
		}

		allow := refuseIdentityWrites(t, db)
		h.clock.Set(t0.Add(time.Minute))
		for _, same := range []Identity{
			first,
			{Subject: "google:42", Kind: KindGoogle, Email: "a@example.com", EmailVerified: true}, // empty keeps the stored value
			{Subject: "google:42", Kind: KindGoogle},
			{Subject: walletAddr, Kind: KindWallet, Address: walletAddr, PubKey: pub},
			{Subject: walletAddr, Kind: KindWallet, Address: walletAddr, PubKey: other}, // a known pubkey is never replaced
			{Subject: walletAddr, Kind: KindWallet, Address: walletAddr},
		} {
			if err := h.s.UpsertIdentity(ctx, same); err != nil {
				t.Errorf("unchanged %+v was written: %v", same, err)
			}
		}
		// The same wallet signs in again on the wire: nothing to write.
		p := codeParams(c, "https://app.example.com/cb", "")
		p.Set("scope", "profile")
		h.code(addr, p)

		for _, changed := range []Identity{
			{Subject: "google:42", Kind: KindGoogle, Email: "b@example.com", EmailVerified: true},
			{Subject: "google:42", Kind: KindGoogle, Email: "a@example.com", EmailVerified: false},
			{Subject: "google:42", Kind: KindGoogle, Login: "ada"},
			{Subject: "google:42", Kind: KindGoogle, Name: "Ada L."},
			{Subject: "google:42", Kind: KindGoogle, Picture: "https://p.example/b.png"},
			{Subject: "google:43", Kind: KindGoogle},
		} {
			if err := h.s.UpsertIdentity(ctx, changed); errors.CodeOf(err) != errors.TemporarilyUnavailable {
				t.Errorf("changed %+v: %v, want a write (refused here: temporarily_unavailable)", changed, err)
			}
		}
		allow()

		id, err := h.s.LookupIdentity(ctx, "google:42")
		if err != nil || id == nil || !id.UpdatedAt.Equal(t0) {
			t.Fatalf("unchanged identity: %+v %v, want updated at %v", id, err, t0)
		}
		if err := h.s.UpsertIdentity(ctx, Identity{Subject: "google:42", Kind: KindGoogle, Email: "b@example.com"}); err != nil {
			t.Fatal(err)
		}
		id, err = h.s.LookupIdentity(ctx, "google:42")
		if err != nil || id == nil || id.Email != "b@example.com" || id.EmailVerified || id.Name != "Ada" || !id.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Errorf("after a new e-mail: %+v %v", id, err)
		}
		// A wallet identity made before its public key was known learns it.
		bare := h.wallet.user()
		if err := h.s.UpsertIdentity(ctx, Identity{Subject: bare, Kind: KindWallet, Address: bare}); err != nil {
			t.Fatal(err)
		}
		if err := h.s.UpsertIdentity(ctx, Identity{Subject: bare, Kind: KindWallet, Address: bare, PubKey: h.wallet.pubkey(bare)}); err != nil {
			t.Fatal(err)
		}
		if id, err := h.s.LookupIdentity(ctx, bare); err != nil || id == nil || id.PubKey != h.wallet.pubkey(bare) {
			t.Errorf("wallet learning its pubkey: %+v %v", id, err)
		}
	})
}
