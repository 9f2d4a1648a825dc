-- +goose Up
-- Single sign-on. Times are unix milliseconds. Sessions themselves live
-- in Redis; what must survive is here.

-- oauth_consents remembers what people allowed clients: one row per
-- (subject, client, scope) allowed, by a signed sign-in (whose message
-- names the client and scopes) or on the consent page. A session answers
-- a client's authorization without asking when every scope it asks for
-- has a row.
CREATE TABLE oauth_consents (
    subject    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (subject, client_id, scope)
);
CREATE INDEX oauth_consents_client ON oauth_consents (client_id);

-- post_logout_redirect_uris is a JSON array of the exact URIs /logout may
-- send a client's users to after signing out (OpenID Connect
-- RP-Initiated Logout 1.0 §3.1).
ALTER TABLE oauth_clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';

-- +goose Down
ALTER TABLE oauth_clients DROP COLUMN post_logout_redirect_uris;
DROP TABLE oauth_consents;
