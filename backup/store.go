package backup

import (
	"context"
	"database/sql"
	"strconv"
	"strings"

	"github.com/authd-dev/authd/errors"
)

// record is one stored backup. data is empty when it was not loaded.
type record struct {
	data      string
	etag      string
	size      int64
	updatedAt int64 // unix milliseconds
}

func conflict(op string) *errors.Error {
	return errors.E(errors.BackupConflict, "The stored backup does not match If-Match or If-None-Match; GET /backup for the current version and ETag, merge, and PUT again with If-Match set to that ETag").WithCause(op, nil)
}

func notFound(op string) *errors.Error {
	return errors.E(errors.BackupNotFound, "No backup found for this user; store one with PUT /backup first").WithCause(op, nil)
}

// load returns subject's backup, or nil when there is none. The data is
// read only when withData is set (HEAD needs only the metadata).
//
// Errors: temporarily_unavailable.
func (s *Service) load(ctx context.Context, subject string, withData bool) (*record, error) {
	const op = "backup.load"
	var rec record
	var err error
	if withData {
		err = s.db.QueryRowContext(ctx,
			`SELECT data, etag, size, updated_at FROM backups WHERE subject = $1`, subject,
		).Scan(&rec.data, &rec.etag, &rec.size, &rec.updatedAt)
	} else {
		err = s.db.QueryRowContext(ctx,
			`SELECT etag, size, updated_at FROM backups WHERE subject = $1`, subject,
		).Scan(&rec.etag, &rec.size, &rec.updatedAt)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return &rec, nil
}

// save stores data as subject's backup if the conditions allow, in one
// transaction: either the whole new backup is committed or the previous
// one is left as it was. It reports whether the backup was created (rather
// than replaced).
//
// Concurrent writers are decided by the database, not by a read before the
// write: the replace is one UPDATE whose WHERE clause carries the If-Match
// tags, the create one INSERT … ON CONFLICT DO NOTHING, and RowsAffected
// says which of them took effect. On PostgreSQL a second UPDATE waits for
// the first's row lock and then re-checks its WHERE clause against the new
// row; on SQLite the immediate transaction serialises writers. Either way
// exactly one of several PUTs with the same If-Match wins.
//
// reserve, when not nil, is called once before the first INSERT is tried,
// that is only when no existing backup was replaced; its error ends save
// with nothing written, and the release it returns is told whether the
// backup was created.
//
// Errors: backup_conflict, temporarily_unavailable, and reserve's.
func (s *Service) save(ctx context.Context, subject string, data []byte, c conditions, reserve func() (func(bool), error)) (rec record, created bool, err error) {
	const op = "backup.save"
	c = c.storable()
	rec = record{etag: s.newTag(), size: int64(len(data)), updatedAt: s.now().UnixMilli()}
	canUpdate, canInsert := c.mayReplace(), c.allowsCreate()
	if !canUpdate && !canInsert {
		return record{}, false, conflict(op)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return record{}, false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	defer tx.Rollback()

	update, args := updateStatement(c, subject, string(data), rec)
	// Without conditions, an INSERT can lose to a concurrent create between
	// the UPDATE and itself (PostgreSQL, READ COMMITTED): the next UPDATE
	// then sees that row. Three rounds is far more than that race needs.
	for range 3 {
		if canUpdate {
			res, err := tx.ExecContext(ctx, update, args...)
			if err != nil {
				return record{}, false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return record{}, false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
			} else if n == 1 {
				return rec, false, s.commit(tx, op)
			}
		}
		if canInsert && reserve != nil {
			release, rerr := reserve()
			if rerr != nil {
				return record{}, false, rerr
			}
			reserve = nil
			// created and err are save's results, as returned.
			defer func() { release(created && err == nil) }()
		}
		if canInsert {
			res, err := tx.ExecContext(ctx,
				`INSERT INTO backups (subject, data, etag, size, created_at, updated_at)
				 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subject) DO NOTHING`,
				subject, string(data), rec.etag, rec.size, rec.updatedAt, rec.updatedAt)
			if err != nil {
				return record{}, false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return record{}, false, errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
			} else if n == 1 {
				return rec, true, s.commit(tx, op)
			}
		}
		// Neither statement wrote. If one of them was ruled out by the
		// conditions, or the UPDATE carried If-None-Match tags, a backup
		// exists that the conditions refuse (or one appeared meanwhile,
		// which the client did not know about either): a conflict.
		if !canUpdate || !canInsert || c.hasNone {
			return record{}, false, conflict(op)
		}
	}
	return record{}, false, conflict(op)
}

// updateStatement builds the conditional UPDATE of save: If-Match tags
// become "etag IN (…)", If-None-Match tags "etag NOT IN (…)".
func updateStatement(c conditions, subject, data string, rec record) (string, []any) {
	var b strings.Builder
	b.WriteString(`UPDATE backups SET data = $2, etag = $3, size = $4, updated_at = $5 WHERE subject = $1`)
	args := []any{subject, data, rec.etag, rec.size, rec.updatedAt}
	args = appendTagCondition(&b, args, c)
	return b.String(), args
}

// appendTagCondition adds the If-Match and If-None-Match tags of c to a
// WHERE clause on the etag column.
func appendTagCondition(b *strings.Builder, args []any, c conditions) []any {
	list := func(tags []string) {
		b.WriteByte('(')
		for i, t := range tags {
			if i > 0 {
				b.WriteString(", ")
			}
			args = append(args, t)
			b.WriteString("$" + strconv.Itoa(len(args)))
		}
		b.WriteByte(')')
	}
	if c.hasMatch && !c.matchAny {
		b.WriteString(" AND etag IN ")
		list(c.match)
	}
	if c.hasNone && !c.noneAny {
		b.WriteString(" AND etag NOT IN ")
		list(c.none)
	}
	return args
}

// remove deletes subject's backup if the conditions allow, in one
// transaction.
//
// Errors: backup_not_found, backup_conflict, temporarily_unavailable.
func (s *Service) remove(ctx context.Context, subject string, c conditions) error {
	const op = "backup.remove"
	c = c.storable()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	defer tx.Rollback()
	if c.mayReplace() {
		var b strings.Builder
		b.WriteString(`DELETE FROM backups WHERE subject = $1`)
		args := appendTagCondition(&b, []any{subject}, c)
		res, err := tx.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
		} else if n == 1 {
			return s.commit(tx, op)
		}
	}
	// Nothing deleted: tell "there is none" from "the conditions refused".
	var etag string
	err = tx.QueryRowContext(ctx, `SELECT etag FROM backups WHERE subject = $1`, subject).Scan(&etag)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if c.hasMatch {
			return conflict(op) // If-Match fails when nothing is stored (RFC 9110 §13.1.1)
		}
		return notFound(op)
	case err != nil:
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return conflict(op)
}

func (s *Service) commit(tx *sql.Tx, op string) error {
	if err := tx.Commit(); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	return nil
}
