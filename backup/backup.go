// Package backup is authd's encrypted wallet-backup service:
// every identity keeps one backup, the string the npm bitcoin-backup
// library makes (base64 of salt(16) || iv(12) || AES-256-GCM ciphertext),
// encrypted on the client. authd never sees a key: it refuses anything that
// looks like plaintext key material.
//
//	PUT    /backup  store or replace (201 created, 200 replaced), JSON {"etag","size","updated_at"}
//	GET    /backup  the stored string exactly, text/plain
//	HEAD   /backup  GET's headers
//	DELETE /backup  204
//
// A request acts for the identity proven by an X-Auth-Token (the signer's
// Bitcoin address) or by a Bearer access token with scope "backup" (its
// subject). Writes take If-Match and If-None-Match: * against the ETag, so
// two devices never overwrite each other's backup unknowingly.
//
// Wiring, outermost first, per method (the rate limiter keys on
// SubjectFromContext, so it sits between Identify and Handler):
//
//	httperr.LimitBody(backup.MaxSize, errors.BackupTooLarge,
//		svc.Identify(limiter(svc.Handler())))
package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/authd-dev/authd/errors"
	"github.com/authd-dev/authd/httperr"
)

// Config is what New needs.
type Config struct {
	// DB is authd's migrated database (migration 00003 makes the backups
	// table); PostgreSQL or SQLite.
	DB *sql.DB
	// Wallet verifies X-Auth-Token requests. Required.
	Wallet Wallet
	// Bearer validates Bearer access tokens; nil refuses them (the
	// request is then answered as one without credentials).
	Bearer Bearer
	// Timeout bounds each request's database work; 0 means 5 seconds.
	Timeout time.Duration
	// Now is the clock of updated_at; nil means time.Now.
	Now func() time.Time
	// Creates, when set, is asked before a PUT creates a backup (never
	// before a replace); nil lets every create through.
	Creates CreateLimiter
}

// CreateLimiter limits how many backups are created, per client say: a
// new Bitcoin key costs nothing, so a limit per identity never applies to
// someone who makes a key per backup.
type CreateLimiter interface {
	// ReserveCreate reserves one create for r, just before the backup is
	// written. It may set response headers on w (the handler has not
	// written yet). When the write is done, release is called once with
	// whether a backup was created: a reservation that created nothing
	// should be given back.
	//
	// Errors are *errors.Error: rate_limit_exceeded (the PUT is refused
	// with it and nothing is written), temporarily_unavailable.
	ReserveCreate(w http.ResponseWriter, r *http.Request) (release func(created bool), err error)
}

// Service serves /backup.
type Service struct {
	creates CreateLimiter
	db      *sql.DB
	wallet  Wallet
	bearer  Bearer
	timeout time.Duration
	now     func() time.Time
	newTag  func() string
}

// New returns the backup service. It returns a plain error (a wiring
// mistake, not a request's) when DB or Wallet is missing.
func New(cfg Config) (*Service, error) {
	if cfg.DB == nil {
		return nil, errors.New("backup.New: Config.DB is nil")
	}
	if cfg.Wallet == nil {
		return nil, errors.New("backup.New: Config.Wallet is nil")
	}
	s := &Service{db: cfg.DB, wallet: cfg.Wallet, bearer: cfg.Bearer, timeout: cfg.Timeout, now: cfg.Now, newTag: randomTag, creates: cfg.Creates}
	if s.timeout <= 0 {
		s.timeout = 5 * time.Second
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// randomTag makes a new opaque ETag value: 128 random bits, hex.
func randomTag() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Handler serves GET, HEAD, PUT and DELETE on /backup; any other method is
// method_not_allowed with Allow. It authenticates through Identify's
// stored result, or by itself when Identify did not run.
//
// Errors: missing_auth_token, invalid_request, the Wallet's and Bearer's
// codes (see Identify), backup_too_large, encryption_required,
// invalid_backup_format, backup_not_found, backup_conflict,
// method_not_allowed, temporarily_unavailable.
func (s *Service) Handler() http.Handler { return httperr.HandlerFunc(s.serve) }

func (s *Service) serve(w http.ResponseWriter, r *http.Request) error {
	var handle func(http.ResponseWriter, *http.Request, *identity) error
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		handle = s.get
	case http.MethodPut:
		handle = s.put
	case http.MethodDelete:
		handle = s.delete
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, DELETE")
		return errors.E(errors.MethodNotAllowed, "Method "+r.Method+" is not allowed on /backup; use GET, HEAD, PUT or DELETE")
	}
	id := identityFrom(r.Context())
	if id == nil {
		id = s.identify(r)
	}
	err := handle(w, r, id)
	if err != nil && r.ContentLength != 0 && !id.bodyRead {
		// An error answered before the body was read to its end (too
		// large, or not needed): close the connection rather than let
		// net/http read up to 512 KiB more of it, looking for its end, in
		// the hope of reusing the connection. (Even so it discards up to
		// 256 KiB of a chunked body before closing; that is read into no
		// buffer of ours.)
		w.Header().Set("Connection", "close")
	}
	return err
}

// caller returns the authenticated subject and, when needBody is set, the
// body of r; or the error to answer with.
func (s *Service) caller(w http.ResponseWriter, r *http.Request, id *identity, needBody bool) (subject string, body []byte, err error) {
	if id.err != nil {
		if s.bearer != nil && errors.CodeOf(id.err) == errors.MissingAuthToken {
			// httperr.Write puts the Bitcoin-Auth challenge first and keeps
			// this one after it.
			w.Header().Add("WWW-Authenticate", `Bearer realm="`+httperr.Realm+`"`)
		}
		return "", nil, id.err
	}
	if id.bodyRead || !needBody {
		return id.subject, id.body, nil
	}
	body, err = readBody(r) // a Bearer request, past the rate limiter now
	if err != nil {
		return "", nil, err
	}
	id.body, id.bodyRead = body, true
	return id.subject, body, nil
}

// noStore marks a response as never to be cached: it carries a backup or
// facts about one.
func noStore(h http.Header) {
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

func setMeta(h http.Header, rec *record) {
	noStore(h)
	h.Set("ETag", quoteETag(rec.etag))
	h.Set("Last-Modified", time.UnixMilli(rec.updatedAt).UTC().Format(http.TimeFormat))
}

func (s *Service) get(w http.ResponseWriter, r *http.Request, id *identity) error {
	const op = "backup.Get"
	subject, _, err := s.caller(w, r, id, false)
	if err != nil {
		return err
	}
	c, err := parseConditions(r.Header)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	rec, err := s.load(ctx, subject, r.Method == http.MethodGet)
	if err != nil {
		return err
	}
	if rec == nil {
		if c.hasMatch {
			return conflict(op)
		}
		return notFound(op)
	}
	if c.hasMatch && !c.matchAny && !contains(c.match, rec.etag) {
		return conflict(op)
	}
	h := w.Header()
	setMeta(h, rec)
	if c.hasNone && (c.noneAny || contains(c.none, rec.etag)) {
		w.WriteHeader(http.StatusNotModified) // RFC 9110 §13.1.2
		return nil
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.FormatInt(rec.size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		// A failed write means the client went away: nothing to answer.
		io.WriteString(w, rec.data)
	}
	return nil
}

// putResponse is the body of a successful PUT.
type putResponse struct {
	ETag      string `json:"etag"` // the ETag header's value, quotes included: send it back in If-Match
	Size      int64  `json:"size"` // bytes stored
	UpdatedAt string `json:"updated_at"`
}

func (s *Service) put(w http.ResponseWriter, r *http.Request, id *identity) error {
	const op = "backup.Put"
	subject, body, err := s.caller(w, r, id, true)
	if err != nil {
		return err
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return errors.E(errors.InvalidRequest, "Content-Encoding is not supported on PUT /backup; send the backup string uncompressed").WithCause(op, nil)
	}
	c, err := parseConditions(r.Header)
	if err != nil {
		return err
	}
	if err := Validate(body); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	var reserve func() (func(bool), error)
	if s.creates != nil {
		reserve = func() (func(bool), error) { return s.creates.ReserveCreate(w, r) }
	}
	rec, created, err := s.save(ctx, subject, body, c, reserve)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(putResponse{
		ETag:      quoteETag(rec.etag),
		Size:      rec.size,
		UpdatedAt: time.UnixMilli(rec.updatedAt).UTC().Format("2006-01-02T15:04:05.000Z07:00"),
	}); err != nil {
		return errors.E(errors.ServerError, "").WithCause(op, err)
	}
	h := w.Header()
	setMeta(h, &rec)
	h.Set("Content-Type", "application/json;charset=UTF-8") // as httperr.Write does
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
	return nil
}

func (s *Service) delete(w http.ResponseWriter, r *http.Request, id *identity) error {
	subject, _, err := s.caller(w, r, id, false)
	if err != nil {
		return err
	}
	c, err := parseConditions(r.Header)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.timeout)
	defer cancel()
	if err := s.remove(ctx, subject, c); err != nil {
		return err
	}
	noStore(w.Header())
	w.WriteHeader(http.StatusNoContent)
	return nil
}
