package oauth

import (
	"container/list"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/authd-dev/authd/clientdoc"
	"github.com/authd-dev/authd/errors"
)

// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-
// document): with Config.ClientDocuments set, a client_id that is an https
// URL is not looked up but fetched, and the document found there is the
// client's registration. Such a client is public, must use PKCE, and its
// redirect URIs match exactly.
//
// Valid documents are cached in memory, for as long as their HTTP caching
// headers say within [5 minutes, 24 hours], and at most
// Config.ClientDocumentCacheSize of them; a failed fetch or an invalid
// document is never cached. When such a client is first granted
// something, and whenever its document changed since, a snapshot of it is
// written to the clients table (registration metadata_document): that is
// what `authd client list` shows and `authd client delete` deletes, and
// what tells a resource check that the client's tokens still stand.

// DocumentFetcher fetches Client ID Metadata Documents;
// *clientdoc.Fetcher is the one authd uses.
type DocumentFetcher interface {
	// IsURL reports whether a client_id is to be fetched.
	IsURL(clientID string) bool
	// Fetch fetches and checks the document at clientID: errors are
	// invalid_client_metadata.
	Fetch(ctx context.Context, clientID string) (*clientdoc.Document, error)
}

// DefaultClientDocumentCacheSize bounds the documents kept in memory.
const DefaultClientDocumentCacheSize = 1000

// docClients is the cache of metadata document clients, least recently
// used first out.
type docClients struct {
	fetcher DocumentFetcher
	size    int
	now     func() time.Time
	timeout time.Duration

	mu       sync.Mutex
	lru      *list.List               // of *docEntry, most recent first
	byID     map[string]*list.Element // client_id → element of lru
	inflight map[string]*docCall      // fetches under way, by client_id
}

type docEntry struct {
	id      string
	c       *Client // never modified once cached
	expires time.Time
}

// docCall is a fetch under way, which concurrent lookups of the same
// client_id wait for instead of fetching again.
type docCall struct {
	done chan struct{}
	c    *Client
	err  error
}

func newDocClients(f DocumentFetcher, size int, now func() time.Time) *docClients {
	if size <= 0 {
		size = DefaultClientDocumentCacheSize
	}
	return &docClients{fetcher: f, size: size, now: now, timeout: clientdoc.DefaultTimeout + time.Second,
		lru: list.New(), byID: map[string]*list.Element{}, inflight: map[string]*docCall{}}
}

// lookupClient finds the client with id: for a Client Identifier URL, when
// metadata documents are on, from its document (cached or fetched); else
// in the clients table. nil means there is no such client.
//
// Errors: invalid_client_metadata for a document that cannot be fetched
// or is invalid; temporarily_unavailable.
func (s *Server) lookupClient(ctx context.Context, id string) (*Client, error) {
	if s.docs != nil && s.docs.fetcher.IsURL(id) {
		return s.docs.get(ctx, s, id)
	}
	c, err := s.clients.get(ctx, id)
	if err != nil || c == nil {
		return c, err
	}
	if c.Registration == RegisteredByDocument {
		// A snapshot of a document, with metadata documents off.
		return nil, nil
	}
	return c, nil
}

// get returns the client whose document is at id, from the cache while it
// is fresh, else fetching it (once for all concurrent lookups).
func (d *docClients) get(ctx context.Context, s *Server, id string) (*Client, error) {
	now := d.now()
	d.mu.Lock()
	if el, ok := d.byID[id]; ok {
		e := el.Value.(*docEntry)
		if now.Before(e.expires) {
			d.lru.MoveToFront(el)
			d.mu.Unlock()
			return e.c, nil
		}
		d.lru.Remove(el)
		delete(d.byID, id)
	}
	call, ok := d.inflight[id]
	if !ok {
		call = &docCall{done: make(chan struct{})}
		d.inflight[id] = call
		// The fetch is shared: it must not end with the request that
		// happened to start it.
		go d.fetch(context.WithoutCancel(ctx), s, id, call)
	}
	d.mu.Unlock()
	select {
	case <-call.done:
		return call.c, call.err
	case <-ctx.Done():
		return nil, errors.E(errors.TemporarilyUnavailable, "").WithCause("oauth.docClients.get", ctx.Err())
	}
}

// fetch fetches and validates the document at id, caches the client when
// it is valid, and ends call.
func (d *docClients) fetch(ctx context.Context, s *Server, id string, call *docCall) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	c, expires, err := d.load(ctx, s, id)
	d.mu.Lock()
	delete(d.inflight, id)
	if err == nil {
		d.put(&docEntry{id: id, c: c, expires: expires})
	}
	d.mu.Unlock()
	call.c, call.err = c, err
	close(call.done)
}

// load fetches the document at id and makes it a client.
func (d *docClients) load(ctx context.Context, s *Server, id string) (*Client, time.Time, error) {
	doc, err := d.fetcher.Fetch(ctx, id)
	if err != nil {
		return nil, time.Time{}, err
	}
	c, e := s.parseClientMetadata(doc.Body, fromDocument)
	if e != nil {
		// Whatever is wrong with a document, bad redirect URIs included,
		// is invalid_client_metadata.
		return nil, time.Time{}, errors.E(errors.InvalidClientMetadata, "Client ID Metadata Document: "+e.Description)
	}
	c.ID = id
	c.Registration = RegisteredByDocument
	c.CreatedAt = time.UnixMilli(d.now().UnixMilli()).UTC()
	return c, doc.Expires, nil
}

// put caches e, dropping the least recently used entry when full. The
// caller holds d.mu.
func (d *docClients) put(e *docEntry) {
	if el, ok := d.byID[e.id]; ok {
		d.lru.Remove(el)
	}
	d.byID[e.id] = d.lru.PushFront(e)
	for d.lru.Len() > d.size {
		old := d.lru.Back()
		d.lru.Remove(old)
		delete(d.byID, old.Value.(*docEntry).id)
	}
}

// len is how many documents are cached.
func (d *docClients) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lru.Len()
}

// rememberDocumentClient writes a snapshot of the metadata document
// client c to the clients table when it is not there, or differs from
// what is there; other clients need nothing. It runs before c is granted
// anything, so that its tokens have a client to belong to.
//
// Errors: temporarily_unavailable.
func (s *Server) rememberDocumentClient(ctx context.Context, c *Client) error {
	const op = "oauth.rememberDocumentClient"
	if c.Registration != RegisteredByDocument {
		return nil
	}
	stored, err := s.clients.get(ctx, c.ID)
	if err != nil {
		return err
	}
	if stored != nil && stored.Registration == RegisteredByDocument && sameSnapshot(stored, c) {
		return nil
	}
	uris, _ := json.Marshal(c.RedirectURIs)
	md, _ := json.Marshal(c.metadata)
	qctx, cancel := s.opCtx(ctx)
	defer cancel()
	// A row of another registration never has a URL for its id; the
	// WHERE keeps it so regardless.
	if _, err := s.db.ExecContext(qctx, `INSERT INTO oauth_clients
		(id, secret_hash, name, redirect_uris, grant_types, scope, public, created_ms,
		 registration, resources, application_type, registration_token_hash, metadata, id_token_alg)
		VALUES ($1, '', $2, $3, $4, $5, 1, $6, 'metadata_document', '[]', $7, '', $8, $9)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, redirect_uris = excluded.redirect_uris,
			grant_types = excluded.grant_types, scope = excluded.scope,
			application_type = excluded.application_type, metadata = excluded.metadata,
			id_token_alg = excluded.id_token_alg
		WHERE oauth_clients.registration = 'metadata_document'`,
		c.ID, c.Name, string(uris), strings.Join(c.Grants, " "), strings.Join(c.Scopes, " "), s.now().UnixMilli(),
		c.ApplicationType, string(md), c.IDTokenAlg); err != nil {
		return errors.E(errors.TemporarilyUnavailable, "").WithCause(op, err)
	}
	s.clients.forget(c.ID)
	return nil
}

// sameSnapshot reports whether the stored snapshot a says what the
// document client b says.
func sameSnapshot(a, b *Client) bool {
	return a.Name == b.Name && slices.Equal(a.RedirectURIs, b.RedirectURIs) && slices.Equal(a.Grants, b.Grants) &&
		slices.Equal(a.Scopes, b.Scopes) && a.ApplicationType == b.ApplicationType && a.IDTokenAlg == b.IDTokenAlg
}
