package authstore

import (
	"context"
	"errors"
	"fmt"
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
	var (
		e   engine
		err error
	)
	switch {
	case dsn == "":
		return nil, errors.New("authstore: no database given: pass a SQLite file path or a postgres:// URL")
	case isPostgres(dsn):
		e, err = openPostgres(ctx, dsn, opts)
	case isKeyValue(dsn):
		// Not a file name: opening it as SQLite would create a file named
		// after it, password included.
		return nil, fmt.Errorf("authstore: the database %q looks like a PostgreSQL key=value connection string; "+
			"give it as a URL instead, postgres://USER:PASSWORD@HOST:5432/DBNAME?sslmode=require", Redact(dsn))
	default:
		e, err = openSQLiteWith(ctx, dsn, len(sqliteMigrations), opts)
	}
	if err != nil {
		return nil, fmt.Errorf("authstore: %w", err)
	}
	return &checked{e: e, observe: opts.Observe}, nil
}

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
