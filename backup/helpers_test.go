package backup

import "github.com/authd-dev/authd/errors"

// codeOf is errors.CodeOf, short for tables.
func codeOf(err error) errors.Code { return errors.CodeOf(err) }
