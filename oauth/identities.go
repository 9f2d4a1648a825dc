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
	Subject   string
	Kind      string
	Address   string // wallets
	PubKey    string // wallets, when known
	Email     string // providers, when known
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UpsertIdentity finds or creates the identity id.Subject. An existing
// identity learns a public key it did not know and a changed e-mail; it
// is written only when something changed.
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
	now := s.now().UnixMilli()
	ctx, cancel := s.opCtx(ctx)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, `INSERT INTO identities (subject, kind, address, pubkey, email, created_ms, updated_ms)
		VALUES ($1, $2, $3, $4, $5, $6, $6)
		ON CONFLICT (subject) DO UPDATE SET
			pubkey = CASE WHEN identities.pubkey = '' THEN excluded.pubkey ELSE identities.pubkey END,
			email = CASE WHEN excluded.email <> '' THEN excluded.email ELSE identities.email END,
			updated_ms = excluded.updated_ms
		WHERE (identities.pubkey = '' AND excluded.pubkey <> '')
			OR (excluded.email <> '' AND excluded.email <> identities.email)`,
		id.Subject, id.Kind, id.Address, id.PubKey, id.Email, now); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return nil
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
	err := s.db.QueryRowContext(ctx, `SELECT subject, kind, address, pubkey, email, created_ms, updated_ms
		FROM identities WHERE subject = $1`, subject).
		Scan(&id.Subject, &id.Kind, &id.Address, &id.PubKey, &id.Email, &created, &updated)
	if err == sql.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	id.CreatedAt = time.UnixMilli(created).UTC()
	id.UpdatedAt = time.UnixMilli(updated).UTC()
	return &id, nil
}
