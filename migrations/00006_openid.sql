-- +goose Up
-- OpenID Connect. Times are unix milliseconds, flags 0/1 integers.

-- id_token_alg is the client's id_token_signed_response_alg (OpenID
-- Connect Dynamic Client Registration 1.0 §2): RS256, OpenID Connect's
-- default, or ES256.
ALTER TABLE oauth_clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'RS256';

-- What Google or GitHub said about a provider user, for /userinfo: login
-- (GitHub's user name), name, picture (a URL), and whether the provider
-- verified the e-mail address. Empty when unknown.
ALTER TABLE identities ADD COLUMN login TEXT NOT NULL DEFAULT '';
ALTER TABLE identities ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE identities ADD COLUMN picture TEXT NOT NULL DEFAULT '';
ALTER TABLE identities ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;

-- A refresh token of an OpenID Connect authorization remembers how its
-- user signed in, for the ID Token each refresh returns: auth_time_ms
-- (0 for a grant without openid) and amr, the space-separated
-- authentication methods (RFC 8176).
ALTER TABLE oauth_refresh_tokens ADD COLUMN auth_time_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE oauth_refresh_tokens ADD COLUMN amr TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE oauth_refresh_tokens DROP COLUMN amr;
ALTER TABLE oauth_refresh_tokens DROP COLUMN auth_time_ms;
ALTER TABLE identities DROP COLUMN email_verified;
ALTER TABLE identities DROP COLUMN picture;
ALTER TABLE identities DROP COLUMN name;
ALTER TABLE identities DROP COLUMN login;
ALTER TABLE oauth_clients DROP COLUMN id_token_alg;
