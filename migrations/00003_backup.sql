-- +goose Up
-- backups holds each identity's one encrypted wallet backup.
-- subject is the identity: the signer's Bitcoin address for X-Auth-Token
-- requests, the access token's sub for Bearer requests. data is the backup
-- string exactly as uploaded (strict base64 of salt || iv || AES-256-GCM
-- ciphertext, at most 1 MiB). etag is an opaque value made anew on every
-- write: it is the ETag (quoted on the wire), and If-Match compares against
-- it inside the conditional UPDATE, so concurrent writers cannot both win.
-- A random tag, unlike a counter or a content hash, never comes back after
-- a DELETE or an identical re-upload. Times are unix milliseconds.
CREATE TABLE backups (
    subject    TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    etag       TEXT NOT NULL,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE backups;
