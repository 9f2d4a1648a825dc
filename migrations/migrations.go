// Package migrations holds authd's SQL schema as goose migration files,
// embedded in the binary. One set serves PostgreSQL and SQLite: the files
// use only TEXT, INTEGER and BIGINT columns (bytes as text, times as unix
// milliseconds) and $1 placeholders.
package migrations

import "embed"

// FS holds the migration files, named NNNNN_<what>.sql.
//
//go:embed *.sql
var FS embed.FS
