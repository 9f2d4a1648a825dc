-- +goose Up
-- Clients that register themselves, clients identified by a metadata
-- document, and resource indicators (RFC 8707).

-- registration says who registered a client: 'operator' (authd client
-- create), 'dynamic' (the client itself, RFC 7591) or 'metadata_document'
-- (a client_id that is the URL of its Client ID Metadata Document: the row
-- is a snapshot of the document, written when the client is first granted
-- something, so that operators can list and delete such clients).
-- resources is a JSON array of the resource URIs (RFC 8707) the client may
-- ask tokens for, besides the server-wide ones. application_type is
-- 'web', 'native' or '' (operator clients). registration_token_hash is
-- the lowercase hex SHA-256 of a dynamic client's registration access
-- token (RFC 7592), empty otherwise. metadata is a JSON object of the
-- other client metadata registered (RFC 7591 §2), echoed to the client.
ALTER TABLE oauth_clients ADD COLUMN registration TEXT NOT NULL DEFAULT 'operator'
    CHECK (registration IN ('operator', 'dynamic', 'metadata_document'));
ALTER TABLE oauth_clients ADD COLUMN resources TEXT NOT NULL DEFAULT '[]';
ALTER TABLE oauth_clients ADD COLUMN application_type TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN registration_token_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE oauth_clients ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';

-- A refresh token remembers the resources its authorization granted
-- (space-separated; empty: authd's own APIs), so that a refresh can
-- repeat or narrow them but never widen them.
ALTER TABLE oauth_refresh_tokens ADD COLUMN resources TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE oauth_refresh_tokens DROP COLUMN resources;
ALTER TABLE oauth_clients DROP COLUMN metadata;
ALTER TABLE oauth_clients DROP COLUMN registration_token_hash;
ALTER TABLE oauth_clients DROP COLUMN application_type;
ALTER TABLE oauth_clients DROP COLUMN resources;
ALTER TABLE oauth_clients DROP COLUMN registration;
