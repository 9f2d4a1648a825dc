-- +goose Up
-- The OAuth 2.0 authorization server's durable state. Times are unix
-- milliseconds, flags are 0/1 integers, bytes are text, so the same file
-- runs on PostgreSQL and SQLite.

-- oauth_clients are the registered OAuth clients (authd client create).
-- secret_hash is the lowercase hex SHA-256 of the generated 256-bit secret,
-- empty for public clients. redirect_uris is a JSON array of exact URIs,
-- grant_types and scope are space-separated lists.
CREATE TABLE oauth_clients (
    id            TEXT PRIMARY KEY,
    secret_hash   TEXT NOT NULL,
    name          TEXT NOT NULL,
    redirect_uris TEXT NOT NULL,
    grant_types   TEXT NOT NULL,
    scope         TEXT NOT NULL,
    public        INTEGER NOT NULL CHECK (public IN (0, 1)),
    created_ms    BIGINT NOT NULL
);

-- identities are the users: subject is the Bitcoin address for wallets,
-- google:<id> or github:<id> for provider sign-ins.
CREATE TABLE identities (
    subject    TEXT PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('wallet', 'google', 'github')),
    address    TEXT NOT NULL DEFAULT '',
    pubkey     TEXT NOT NULL DEFAULT '',
    email      TEXT NOT NULL DEFAULT '',
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- oauth_refresh_tokens holds refresh tokens by the hex SHA-256 of their
-- value. A row is redeemed once (used_ms set by a conditional UPDATE) and
-- kept until it expires, so presenting it again is recognised as reuse.
-- family ties every token issued from one authorization together.
CREATE TABLE oauth_refresh_tokens (
    hash       TEXT PRIMARY KEY,
    family     TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    used_ms    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX oauth_refresh_tokens_family ON oauth_refresh_tokens (family);
CREATE INDEX oauth_refresh_tokens_client ON oauth_refresh_tokens (client_id);
CREATE INDEX oauth_refresh_tokens_expires ON oauth_refresh_tokens (expires_ms);

-- oauth_revoked_families lists token families revoked after a reused code
-- or refresh token, or by RFC 7009 revocation. A refresh token whose family
-- is listed here never redeems, even one inserted after the revocation.
CREATE TABLE oauth_revoked_families (
    family     TEXT PRIMARY KEY,
    revoked_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);

-- oauth_signing_keys are the ES256 keys that sign access tokens. The newest
-- signs, the newest two are published in the JWKS. private_key is base64
-- PKCS#8 DER; kid is the RFC 7638 thumbprint of the public key.
CREATE TABLE oauth_signing_keys (
    kid         TEXT PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_key TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE oauth_signing_keys;
DROP TABLE oauth_revoked_families;
DROP TABLE oauth_refresh_tokens;
DROP TABLE identities;
DROP TABLE oauth_clients;
