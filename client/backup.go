package client

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
)

// MaxBackupSize is the largest backup authd stores: 1 MiB.
const MaxBackupSize = 1 << 20

// Backups is the encrypted wallet-backup API of an authd server (GET, PUT
// and DELETE /backup), for the identity its HTTP client authenticates:
// a wallet's key through a SigningTransport, or an OAuth client's access
// token with scope "backup" (an oauth2.Config's Client).
//
// A backup is the string the npm bitcoin-backup library makes: base64 of
// salt, IV and AES-256-GCM ciphertext, encrypted on the device. authd
// refuses plaintext key material (encryption_required), anything that is
// not strict base64 of at least 44 bytes (invalid_backup_format) and more
// than MaxBackupSize bytes (backup_too_large).
type Backups struct {
	url string
	hc  *http.Client
}

// NewBackups returns the backup API of the authd at issuer (its base URL,
// e.g. "https://auth.example.com"), called through hc. A nil hc is
// http.DefaultClient, which sends no credentials.
func NewBackups(issuer string, hc *http.Client) *Backups {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Backups{url: strings.TrimSuffix(issuer, "/") + "/backup", hc: hc}
}

// Backup is a stored backup.
type Backup struct {
	// Data is the backup string exactly as stored.
	Data []byte
	// ETag is the version's entity tag, quotes included, as the ETag
	// header sends it: pass it to IfMatch.
	ETag string
	// UpdatedAt is when this version was stored (to the second).
	UpdatedAt time.Time
}

// Stored describes the version a Put stored.
type Stored struct {
	// ETag is the new version's entity tag, quotes included.
	ETag string
	// Size is the number of bytes stored.
	Size int64
	// UpdatedAt is when it was stored.
	UpdatedAt time.Time
	// Created is true when there was no backup before.
	Created bool
}

// Precondition makes a Put or Delete conditional (RFC 9110 §13.1).
type Precondition func(http.Header)

// IfMatch applies the write only if the stored backup is still the
// version etag (as Get or Put returned it; quotes may be left out).
// Otherwise the write fails with ErrConflict and nothing changes.
func IfMatch(etag string) Precondition {
	if !strings.HasPrefix(etag, `"`) && !strings.HasPrefix(etag, `W/"`) {
		etag = `"` + etag + `"`
	}
	return func(h http.Header) { h.Set("If-Match", etag) }
}

// CreateOnly applies a Put only if no backup exists (If-None-Match: *), so
// a new device never overwrites one it has not seen. Otherwise the Put
// fails with ErrConflict.
func CreateOnly() Precondition {
	return func(h http.Header) { h.Set("If-None-Match", "*") }
}

// Get returns the stored backup.
//
// Errors: ErrNotFound (backup_not_found) when there is none; otherwise an
// *Error with authd's code (missing_auth_token, invalid_signature,
// invalid_token, insufficient_scope, rate_limit_exceeded,
// temporarily_unavailable, …), or the transport's error.
func (b *Backups) Get(ctx context.Context) (*Backup, error) {
	resp, err := b.do(ctx, http.MethodGet, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, b.unexpected(resp)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxBackupSize+1))
	if err != nil {
		return nil, errors.Errorf("client: reading the backup: %w", err)
	}
	if len(data) > MaxBackupSize {
		return nil, errors.Errorf("client: backup larger than %d bytes", MaxBackupSize)
	}
	bk := &Backup{Data: data, ETag: resp.Header.Get("ETag")}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		bk.UpdatedAt = t
	}
	return bk, nil
}

// Put stores data as the backup, replacing any other unless a
// precondition says otherwise, and returns the new version.
//
// Errors: ErrConflict (backup_conflict) when a precondition fails;
// otherwise an *Error with authd's code (encryption_required,
// invalid_backup_format, backup_too_large, the authentication codes,
// rate_limit_exceeded, temporarily_unavailable, …), or the transport's
// error.
func (b *Backups) Put(ctx context.Context, data []byte, conds ...Precondition) (*Stored, error) {
	if len(data) > MaxBackupSize {
		// authd would refuse it with backup_too_large; do not send it.
		// Status stays 0: no response was received.
		return nil, &Error{Code: errors.BackupTooLarge, Description: "Backup exceeds the 1 MiB limit; nothing was sent"}
	}
	resp, err := b.do(ctx, http.MethodPut, data, conds)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return nil, b.unexpected(resp)
	}
	var body struct {
		ETag      string `json:"etag"`
		Size      int64  `json:"size"`
		UpdatedAt string `json:"updated_at"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&body); err != nil {
		return nil, errors.Errorf("client: reading the PUT /backup answer: %w", err)
	}
	s := &Stored{ETag: resp.Header.Get("ETag"), Size: body.Size, Created: resp.StatusCode == http.StatusCreated}
	if s.ETag == "" {
		s.ETag = body.ETag
	}
	if t, err := time.Parse(time.RFC3339Nano, body.UpdatedAt); err == nil {
		s.UpdatedAt = t
	}
	return s, nil
}

// Delete removes the backup; with IfMatch, only that version.
//
// Errors: ErrNotFound when there is none, ErrConflict when a
// precondition fails; otherwise an *Error with authd's code, or the
// transport's error.
func (b *Backups) Delete(ctx context.Context, conds ...Precondition) error {
	resp, err := b.do(ctx, http.MethodDelete, nil, conds)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusOK {
		return b.unexpected(resp)
	}
	return nil
}

func (b *Backups) do(ctx context.Context, method string, data []byte, conds []Precondition) (*http.Response, error) {
	var body io.Reader
	if data != nil {
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, b.url, body)
	if err != nil {
		return nil, err
	}
	if data != nil {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	for _, c := range conds {
		c(req.Header)
	}
	return b.hc.Do(req)
}

// unexpected returns the error of a response with a status the caller
// did not expect: authd's *Error for a 4xx or 5xx, else a plain error.
func (b *Backups) unexpected(resp *http.Response) error {
	if err := ParseError(resp); err != nil {
		return err
	}
	return errors.Errorf("client: unexpected HTTP status %q from %s", resp.Status, b.url)
}
