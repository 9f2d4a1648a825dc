package oauth

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
)

// Identity kinds.
const (
	KindWallet = "wallet"
	KindGoogle = "google"
	KindGitHub = "github"
)

// Identity is a user of authd. Subject is the Bitcoin address for a wallet
// user, "google:<id>" or "github:<id>" for a provider user.
type Identity struct {
	Subject string
	Kind    string
	Address string // wallets
	PubKey  string // wallets, when known
	// What the provider says, for provider users, when known: the e-mail
	// address and whether the provider verified it, the login (GitHub's
	// user name), the name and a picture URL.
	Email         string
	EmailVerified bool
	Login         string
	Name          string
	Picture       string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// UpsertIdentity finds or creates the identity id.Subject. An existing
// identity learns a public key it did not know, and what a provider says
// anew (e-mail with its verification, login, name, picture; an empty
// value keeps the stored one); it is written only when something
// changed.
//
// A returning user whose identity would not change (every wallet sign-in
// after the first) costs one read-only SELECT: no INSERT … ON CONFLICT,
// which would lock the row, take a transaction id and flush the WAL to
// change nothing. When the SELECT finds the row missing or different, the
// upsert runs with the same rules in its WHERE clause, so concurrent
// sign-ins of one user still converge.
//
// Errors: server_error for an identity that breaks the rules of its kind
// (a caller's bug); temporarily_unavailable.
func (s *Server) UpsertIdentity(ctx context.Context, id Identity) error {
	const op = "oauth.UpsertIdentity"
	switch id.Kind {
	case KindWallet:
		if id.Subject == "" || id.Subject != id.Address {
			return errors.E(errors.ServerError, "").WithCause(op, errors.New("wallet subject must be its address"))
		}
	case KindGoogle, KindGitHub:
		if !strings.HasPrefix(id.Subject, id.Kind+":") || len(id.Subject) == len(id.Kind)+1 {
			return errors.E(errors.ServerError, "").WithCause(op, errors.New("provider subject must be <kind>:<id>"))
		}
	default:
		return errors.E(errors.ServerError, "").WithCause(op, errors.Errorf("unknown identity kind %q", id.Kind))
	}
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	verified := 0
	if id.EmailVerified && id.Email != "" {
		verified = 1
	}
	var stored Identity
	var storedVerified int
	err := s.db.QueryRowContext(ctx, `SELECT pubkey, email, email_verified, login, name, picture FROM identities WHERE subject = $1`, id.Subject).
		Scan(&stored.PubKey, &stored.Email, &storedVerified, &stored.Login, &stored.Name, &stored.Picture)
	switch {
	case err == sql.ErrNoRows:
	case err != nil:
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	default:
		stored.EmailVerified = storedVerified == 1
		if !identityChanges(&stored, &id) {
			return nil
		}
	}
	now := s.now().UnixMilli()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO identities
		(subject, kind, address, pubkey, email, email_verified, login, name, picture, created_ms, updated_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
		ON CONFLICT (subject) DO UPDATE SET
			pubkey = CASE WHEN identities.pubkey = '' THEN excluded.pubkey ELSE identities.pubkey END,
			email = CASE WHEN excluded.email <> '' THEN excluded.email ELSE identities.email END,
			email_verified = CASE WHEN excluded.email <> '' THEN excluded.email_verified ELSE identities.email_verified END,
			login = CASE WHEN excluded.login <> '' THEN excluded.login ELSE identities.login END,
			name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE identities.name END,
			picture = CASE WHEN excluded.picture <> '' THEN excluded.picture ELSE identities.picture END,
			updated_ms = excluded.updated_ms
		WHERE (identities.pubkey = '' AND excluded.pubkey <> '')
			OR (excluded.email <> '' AND (excluded.email <> identities.email OR excluded.email_verified <> identities.email_verified))
			OR (excluded.login <> '' AND excluded.login <> identities.login)
			OR (excluded.name <> '' AND excluded.name <> identities.name)
			OR (excluded.picture <> '' AND excluded.picture <> identities.picture)`,
		id.Subject, id.Kind, id.Address, id.PubKey, id.Email, verified, id.Login, id.Name, id.Picture, now); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return nil
}

// identityChanges reports whether upserting id would change the stored
// identity: the rules of UpsertIdentity's ON CONFLICT … WHERE, in Go.
func identityChanges(stored, id *Identity) bool {
	verified := id.EmailVerified && id.Email != ""
	return (stored.PubKey == "" && id.PubKey != "") ||
		(id.Email != "" && (id.Email != stored.Email || verified != stored.EmailVerified)) ||
		(id.Login != "" && id.Login != stored.Login) ||
		(id.Name != "" && id.Name != stored.Name) ||
		(id.Picture != "" && id.Picture != stored.Picture)
}

// LookupIdentity returns the identity with subject, or nil when there is
// none.
//
// Errors: temporarily_unavailable.
func (s *Server) LookupIdentity(ctx context.Context, subject string) (*Identity, error) {
	const op = "oauth.LookupIdentity"
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	var id Identity
	var created, updated int64
	var verified int
	err := s.db.QueryRowContext(ctx, `SELECT subject, kind, address, pubkey, email, email_verified, login, name, picture, created_ms, updated_ms
		FROM identities WHERE subject = $1`, subject).
		Scan(&id.Subject, &id.Kind, &id.Address, &id.PubKey, &id.Email, &verified, &id.Login, &id.Name, &id.Picture, &created, &updated)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	id.EmailVerified = verified == 1
	id.CreatedAt = time.UnixMilli(created).UTC()
	id.UpdatedAt = time.UnixMilli(updated).UTC()
	return &id, nil
}
