package authstore

import (
	"net/url"
	"strings"
)

// Redact returns dsn with any password replaced by "xxxxx", for logs and
// error messages: the password in the URL's user information and the
// password and sslpassword query parameters. A SQLite path is returned
// unchanged. A PostgreSQL URL that does not parse is reduced to its scheme,
// since where the password sits in it cannot be told.
func Redact(dsn string) string {
	if !isPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		scheme, _, _ := strings.Cut(dsn, ":")
		return scheme + "://(unparsable URL)"
	}
	q := u.Query()
	changed := false
	for k := range q {
		switch strings.ToLower(k) {
		case "password", "sslpassword":
			q.Set(k, "xxxxx")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
