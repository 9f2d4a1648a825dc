-- +goose Up
-- A refresh token family lives at most a fixed time from the authorization
-- that started it, however often it rotates (RFC 9700 §4.14.2):
-- family_created_ms is that start, copied to every token of the family.
-- Families that existed before are dated from their oldest stored token,
-- the earliest start still known.
ALTER TABLE oauth_refresh_tokens ADD COLUMN family_created_ms BIGINT NOT NULL DEFAULT 0;
UPDATE oauth_refresh_tokens SET family_created_ms =
    (SELECT MIN(f.created_ms) FROM oauth_refresh_tokens f WHERE f.family = oauth_refresh_tokens.family);

-- +goose Down
ALTER TABLE oauth_refresh_tokens DROP COLUMN family_created_ms;
