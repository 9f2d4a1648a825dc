-- +goose Up
-- authd_meta holds facts about this installation, such as when its schema
-- was first created. It is also the table /readyz reads to prove the
-- database answers with authd's schema in place.
CREATE TABLE authd_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO authd_meta (key, value) VALUES ('schema', 'authd');

-- +goose Down
DROP TABLE authd_meta;
