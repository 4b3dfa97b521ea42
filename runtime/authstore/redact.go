package authstore

import (
	"net/url"
	"regexp"
	"strings"
)

// Redact returns dsn with any password replaced by "xxxxx", for logs and
// error messages: the password in the URL's user information and the
// password and sslpassword query parameters. A SQLite path is returned
// unchanged. A PostgreSQL URL that does not parse is reduced to its scheme,
// since where the password sits in it cannot be told; so is the user
// information of a string that only looks like a URL (a mistyped
// scheme: "postgress://app:s3cret@db" becomes "postgress:xxxxx@db").
func Redact(dsn string) string {
	if isKeyValue(dsn) {
		return keyValuePassword.ReplaceAllString(dsn, "${1}xxxxx")
	}
	if !isPostgres(dsn) {
		if scheme := otherScheme.FindString(dsn); scheme != "" {
			if at := strings.LastIndexByte(dsn, '@'); at >= 0 {
				return scheme + "xxxxx" + dsn[at:]
			}
		}
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

// keyValuePassword matches the value of a password in a key=value
// connection string, quoted or not.
var keyValuePassword = regexp.MustCompile(`(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S*)`)

// keyValueStart matches the first word of a libpq key=value connection
// string ("host=db dbname=mcp …").
var keyValueStart = regexp.MustCompile(`(?i)^\s*(host|hostaddr|port|dbname|user|password|passfile|sslmode|service|application_name|connect_timeout|options)\s*=`)

// isKeyValue reports whether dsn looks like a PostgreSQL key=value
// connection string rather than a SQLite file path or a URL.
func isKeyValue(dsn string) bool {
	return keyValueStart.MatchString(dsn) || keyValuePassword.MatchString(dsn) && strings.Contains(dsn, " ")
}
