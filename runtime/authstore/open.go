package authstore

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// DefaultLockTimeout is the default of [Options.LockTimeout].
const DefaultLockTimeout = 3 * time.Second

// Options configures [Open]. The zero value means the defaults.
type Options struct {
	// LockTimeout bounds how long one statement waits for a lock that
	// another writer (another request, or another process on the same
	// SQLite file) holds. A write that times out is retried once; if the
	// database is still locked the method returns ErrUnavailable, which a
	// server answers with 503 rather than keeping its client waiting
	// (default DefaultLockTimeout).
	LockTimeout time.Duration

	// Limits bounds the tables that unauthenticated requests can grow
	// (zero fields: DefaultLimits).
	Limits Limits

	// Observe, if not nil, is called after every Store method with the
	// operation's name (the method name in snake_case, e.g.
	// "lookup_access", "rotate_refresh"), how long it took and the error it
	// returned (ErrNotFound included). A server feeds it to a latency
	// histogram. It must be fast and safe for concurrent use.
	Observe func(op string, d time.Duration, err error)
}

// Open opens the database named by dsn, creating and migrating it as
// needed, and returns it as a Store. dsn is a SQLite file path, or a
// "postgres://" or "postgresql://" URL. Errors name the database through
// [Redact].
func Open(ctx context.Context, dsn string, opts Options) (Store, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	opts.Limits = opts.Limits.withDefaults()
	if err := CheckDSN(dsn); err != nil {
		return nil, err
	}
	var (
		e   engine
		err error
	)
	if isPostgres(dsn) {
		e, err = openPostgres(ctx, dsn, opts)
	} else {
		e, err = openSQLiteWith(ctx, dsn, len(sqliteMigrations), opts)
	}
	if err != nil {
		return nil, fmt.Errorf("authstore: %w", err)
	}
	return &checked{e: e, observe: opts.Observe}, nil
}

// CheckDSN reports whether Open would take dsn for a database it knows:
// a "postgres://" or "postgresql://" URL, or a SQLite file path. It
// refuses, without a password in the message, what is neither but would
// otherwise be taken for a file name and created: a PostgreSQL key=value
// connection string, or a URL of another scheme (a typo such as
// "postgress://" or "postgres:/", or a forgotten scheme,
// "user:password@host"). A file name with a colon can start with "./".
func CheckDSN(dsn string) error {
	switch {
	case dsn == "":
		return errors.New("authstore: no database given: pass a SQLite file path or a postgres:// URL")
	case isPostgres(dsn):
		return nil
	case isKeyValue(dsn):
		return fmt.Errorf("authstore: the database %q looks like a PostgreSQL key=value connection string; "+
			"give it as a URL instead, postgres://USER:PASSWORD@HOST:5432/DBNAME?sslmode=require", Redact(dsn))
	case otherScheme.MatchString(dsn):
		return fmt.Errorf("authstore: the database %q is neither a postgres:// URL nor a SQLite file path; "+
			"for PostgreSQL give postgres://USER:PASSWORD@HOST:5432/DBNAME, for SQLite a file path "+
			"(one whose name has a colon can start with ./)", Redact(dsn))
	}
	return nil
}

// otherScheme matches the start of a URL ("scheme:"), or of "user:password@"
// without a scheme. One letter and a colon is a Windows drive, not a scheme.
var otherScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]+:`)

// isPostgres reports whether dsn is a PostgreSQL URL.
func isPostgres(dsn string) bool {
	lower := strings.ToLower(dsn)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// engine is a Store implementation that can tell which of its errors mean
// the database is unavailable (locked, busy, unreachable).
type engine interface {
	Store
	unavailable(err error) bool
}
