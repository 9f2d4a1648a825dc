-- +goose Up
-- Signing keys are encrypted at rest. kek_id names the key-encryption key
-- (held outside the database) that encrypts private_key: then private_key
-- is base64 of a 12-byte nonce followed by the AES-256-GCM sealing of the
-- key's PKCS#8 DER, with the kid as additional data. An empty kek_id is a
-- key written before encryption existed (base64 PKCS#8 DER); authd
-- encrypts such rows when it starts and on authd migrate. PKCS#8 carries
-- any key type and the sealing does not look inside it, so keys of
-- another algorithm are stored the same way: alg, per row, tells them
-- apart.
ALTER TABLE oauth_signing_keys ADD COLUMN kek_id TEXT NOT NULL DEFAULT '';

-- +goose Down
-- An authd from before this migration cannot read encrypted keys: going
-- down deletes them (tokens they signed stop verifying), and that authd
-- generates a new key when it starts.
DELETE FROM oauth_signing_keys WHERE kek_id <> '';
ALTER TABLE oauth_signing_keys DROP COLUMN kek_id;
