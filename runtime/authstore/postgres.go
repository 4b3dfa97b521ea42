package authstore

// The PostgreSQL engine, on a pgx connection pool. Several replicas of a
// server may share one database.
//
// Semantics are the SQLite engine's, with these PostgreSQL means:
//   - Migrations run at Open under a session-level advisory lock (one per
//     schema), so replicas starting together migrate exactly once; the
//     others wait, then find nothing to do.
//   - Single-use checks (a code's redemption, a sign-in's take) are one
//     conditional UPDATE or DELETE … RETURNING: of concurrent attempts on
//     any number of replicas, exactly one sees the row.
//   - A refresh rotation locks its token row (SELECT … FOR UPDATE), so
//     concurrent rotations of one token queue up and see each other's
//     result: one chain.
//   - Transactions run at READ COMMITTED. A serialization failure or a
//     deadlock (which PostgreSQL may report under load, and distributed
//     PostgreSQL-compatible databases report often) is retried with
//     jitter, never passed on as a failure.
//   - LockTimeout becomes lock_timeout: a statement that waits longer for
//     a row lock fails, and the method returns ErrUnavailable.
//   - A lost connection is ErrUnavailable. The pool replaces broken
//     connections, so the store recovers on its own when the database
//     comes back.
//   - Revoking writes NOTIFY their new revocation epoch (delivered at
//     commit), so that other replicas drop their caches at once.
//
// Times are stored as milliseconds since the Unix epoch (bigint), as in
// the SQLite engine, so that both engines hold the same values.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// pgMigrations are the PostgreSQL schema steps, numbered from 1 by their
// index + 1; the schema_version table records how many have run. Steps are
// forward-only and never edited once released: add a new step instead.
var pgMigrations = []string{
	// 1: everything the SQLite engine has at its version 4.
	`CREATE TABLE clients (
		id             text PRIMARY KEY,
		secret_hash    bytea,
		auth_method    text NOT NULL,
		redirect_uris  text NOT NULL,
		grant_types    text NOT NULL,
		response_types text NOT NULL,
		client_name    text NOT NULL DEFAULT '',
		scope          text NOT NULL DEFAULT '',
		created_at     bigint NOT NULL,
		used_at        bigint
	);
	CREATE INDEX clients_unused ON clients (created_at) WHERE used_at IS NULL;

	CREATE TABLE codes (
		hash           bytea PRIMARY KEY,
		grant_id       text NOT NULL,
		client_id      text NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
		username       text NOT NULL,
		redirect_uri   text NOT NULL,
		code_challenge text NOT NULL,
		scope          text NOT NULL,
		resource       text NOT NULL,
		stamp          text NOT NULL,
		created_at     bigint NOT NULL,
		expires_at     bigint NOT NULL,
		used_at        bigint
	);
	CREATE INDEX codes_expires ON codes (expires_at);
	CREATE INDEX codes_client ON codes (client_id);
	CREATE INDEX codes_user ON codes (username);

	CREATE TABLE grants (
		id           text PRIMARY KEY,
		client_id    text NOT NULL,
		username     text NOT NULL,
		scope        text NOT NULL,
		resource     text NOT NULL,
		stamp        text NOT NULL,
		created_at   bigint NOT NULL,
		expires_at   bigint NOT NULL,
		revoked_at   bigint,
		last_used_at bigint
	);
	CREATE INDEX grants_expires ON grants (expires_at);
	CREATE INDEX grants_client ON grants (client_id);
	CREATE INDEX grants_user ON grants (username);

	CREATE TABLE tokens (
		hash       bytea PRIMARY KEY,
		kind       smallint NOT NULL,
		grant_id   text NOT NULL REFERENCES grants (id) ON DELETE CASCADE,
		scope      text NOT NULL,
		created_at bigint NOT NULL,
		expires_at bigint NOT NULL,
		used_at    bigint,
		revoked_at bigint
	);
	CREATE INDEX tokens_grant ON tokens (grant_id);
	CREATE INDEX tokens_expires ON tokens (expires_at);

	CREATE TABLE settings (
		name  text PRIMARY KEY,
		value bytea NOT NULL
	);

	CREATE TABLE signins (
		seq            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		id_hash        bytea NOT NULL UNIQUE,
		browser_hash   bytea NOT NULL,
		addr_key       text NOT NULL,
		client_id      text NOT NULL,
		client_name    text NOT NULL,
		redirect_uri   text NOT NULL,
		state          text NOT NULL,
		has_state      boolean NOT NULL,
		code_challenge text NOT NULL,
		scope          text NOT NULL,
		resource       text NOT NULL,
		created_at     bigint NOT NULL,
		expires_at     bigint NOT NULL
	);
	CREATE INDEX signins_addr ON signins (addr_key, seq);
	CREATE INDEX signins_browser ON signins (browser_hash, seq);
	CREATE INDEX signins_expires ON signins (expires_at);

	CREATE TABLE throttles (
		rule      text NOT NULL,
		key       bytea NOT NULL,
		count     integer NOT NULL,
		reset_at  bigint NOT NULL,
		last_seen bigint NOT NULL,
		PRIMARY KEY (rule, key)
	);
	CREATE INDEX throttles_lru ON throttles (rule, last_seen);
	CREATE INDEX throttles_reset ON throttles (reset_at);

	CREATE TABLE sessions (
		seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		id_hash    bytea NOT NULL UNIQUE,
		username   text NOT NULL,
		created_at bigint NOT NULL,
		last_used  bigint NOT NULL
	);
	CREATE INDEX sessions_user ON sessions (username, last_used);
	CREATE INDEX sessions_last_used ON sessions (last_used);

	CREATE TABLE web_sessions (
		seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		id_hash    bytea NOT NULL UNIQUE,
		username   text NOT NULL,
		stamp      text NOT NULL,
		created_at bigint NOT NULL,
		expires_at bigint NOT NULL
	);
	CREATE INDEX web_sessions_user ON web_sessions (username, seq);
	CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

	CREATE TABLE epoch (
		id integer PRIMARY KEY CHECK (id = 1),
		n  bigint NOT NULL
	);
	INSERT INTO epoch (id, n) VALUES (1, 0);
	CREATE TABLE replicas (
		id          text PRIMARY KEY,
		acked_epoch bigint NOT NULL,
		seen_at     bigint NOT NULL
	);

	-- sizes counts the rows of the bounded tables, kept by statement
	-- triggers, so that a cap check is one primary-key read.
	CREATE TABLE sizes (
		name text PRIMARY KEY,
		n    bigint NOT NULL
	);
	INSERT INTO sizes (name, n) VALUES ('clients', 0), ('signins', 0);
	CREATE FUNCTION sizes_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		UPDATE sizes SET n = n + (SELECT count(*) FROM new_rows)
			WHERE name = TG_TABLE_NAME AND EXISTS (SELECT 1 FROM new_rows);
		RETURN NULL;
	END $$;
	CREATE FUNCTION sizes_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		UPDATE sizes SET n = n - (SELECT count(*) FROM old_rows)
			WHERE name = TG_TABLE_NAME AND EXISTS (SELECT 1 FROM old_rows);
		RETURN NULL;
	END $$;
	CREATE FUNCTION throttles_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		INSERT INTO sizes (name, n) SELECT 'throttles/' || rule, count(*) FROM new_rows GROUP BY rule
			ON CONFLICT (name) DO UPDATE SET n = sizes.n + excluded.n;
		RETURN NULL;
	END $$;
	CREATE FUNCTION throttles_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		UPDATE sizes SET n = sizes.n - d.n
			FROM (SELECT 'throttles/' || rule AS name, count(*) AS n FROM old_rows GROUP BY rule) d
			WHERE sizes.name = d.name;
		RETURN NULL;
	END $$;
	CREATE TRIGGER clients_added AFTER INSERT ON clients REFERENCING NEW TABLE AS new_rows
		FOR EACH STATEMENT EXECUTE FUNCTION sizes_inserted();
	CREATE TRIGGER clients_deleted AFTER DELETE ON clients REFERENCING OLD TABLE AS old_rows
		FOR EACH STATEMENT EXECUTE FUNCTION sizes_deleted();
	CREATE TRIGGER signins_added AFTER INSERT ON signins REFERENCING NEW TABLE AS new_rows
		FOR EACH STATEMENT EXECUTE FUNCTION sizes_inserted();
	CREATE TRIGGER signins_deleted AFTER DELETE ON signins REFERENCING OLD TABLE AS old_rows
		FOR EACH STATEMENT EXECUTE FUNCTION sizes_deleted();
	CREATE TRIGGER throttles_added AFTER INSERT ON throttles REFERENCING NEW TABLE AS new_rows
		FOR EACH STATEMENT EXECUTE FUNCTION throttles_inserted();
	CREATE TRIGGER throttles_deleted AFTER DELETE ON throttles REFERENCING OLD TABLE AS old_rows
		FOR EACH STATEMENT EXECUTE FUNCTION throttles_deleted();`,
}

// pgEpochChannel is the NOTIFY channel of revocation epochs.
const pgEpochChannel = "authstore_epoch"

// pgConnectTimeout bounds connecting when the URL sets no connect_timeout,
// so that an unreachable host fails Open instead of hanging it.
const pgConnectTimeout = 10 * time.Second

// pgStore implements Store on a PostgreSQL database.
type pgStore struct {
	pool   *pgxpool.Pool
	cfg    *pgxpool.Config
	dsn    string // redacted, for messages
	key    []byte
	limits Limits
}

var _ Store = (*pgStore)(nil)

// openPostgres connects to the database at dsn, checks it answers, and
// migrates it.
func openPostgres(ctx context.Context, dsn string, opts Options) (*pgStore, error) {
	return openPostgresAt(ctx, dsn, len(pgMigrations), opts)
}

// openPostgresAt is openPostgres migrating only up to version (tests build
// databases at earlier versions with it).
func openPostgresAt(ctx context.Context, dsn string, version int, opts Options) (*pgStore, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	secret := dsnPassword(dsn)
	fail := func(err error) error {
		return &redactedError{msg: fmt.Sprintf("open database %s: %v", Redact(dsn), err), secret: secret, err: err}
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fail(errors.New("the URL is not a valid PostgreSQL connection URL"))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = pgConnectTimeout
	}
	// A statement waits at most LockTimeout for a row lock.
	cfg.ConnConfig.RuntimeParams["lock_timeout"] = fmt.Sprint(max(opts.LockTimeout.Milliseconds(), 1))
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "authstore"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fail(err)
	}
	s := &pgStore{pool: pool, cfg: cfg, dsn: Redact(dsn), limits: opts.Limits.withDefaults()}
	if err := s.init(ctx, version); err != nil {
		pool.Close()
		return nil, fail(explainConnect(err, cfg))
	}
	return s, nil
}

// explainConnect turns the usual reasons a first connection fails into
// messages that say what to do.
func explainConnect(err error, cfg *pgxpool.Config) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000": // invalid_password, invalid_authorization_specification
			return fmt.Errorf("PostgreSQL refused user %q (%s): check the user and password in the URL",
				cfg.ConnConfig.User, pgErr.Message)
		case "3D000": // invalid_catalog_name
			return fmt.Errorf("database %q does not exist: create it (createdb %s) or fix the URL",
				cfg.ConnConfig.Database, cfg.ConnConfig.Database)
		case "57P03": // cannot_connect_now
			return fmt.Errorf("PostgreSQL is starting up or shutting down; try again: %s", pgErr.Message)
		}
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) && pgErr == nil {
		// Several addresses (or TLS, then plain) may have been tried, one
		// line each: keep each distinct reason once, on one line.
		var reasons []string
		for _, line := range strings.Split(errors.Unwrap(connErr).Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" && !slices.Contains(reasons, line) {
				reasons = append(reasons, line)
			}
		}
		cause := strings.Join(reasons, "; ")
		return fmt.Errorf("cannot reach PostgreSQL at %s:%d (is it running, and are the host and port right?): %s%w",
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cause, quiet{err})
	}
	return err
}

// init migrates to version, loads the rotation key and checks the clock.
func (s *pgStore) init(ctx context.Context, version int) error {
	if err := s.migrate(ctx, version); err != nil {
		return err
	}
	if version < len(pgMigrations) {
		return nil // test databases at old versions are not used as stores
	}
	return s.loadKey(ctx)
}

// migrationLockTimeout is how long a starting replica waits for the
// migration lock, and a migration for the locks of the tables it changes.
const migrationLockTimeout = "10min"

// migrate runs the steps after the schema's version, up to version, while
// holding an advisory lock named after the schema: replicas that start
// together queue on the lock, and the first one migrates.
func (s *pgStore) migrate(ctx context.Context, version int) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	// The pool's lock_timeout (LockTimeout, a few seconds) is for requests;
	// a replica that starts while another runs a long migration waits for
	// it instead, as its DDL waits for the tables' locks.
	if _, err := conn.Exec(ctx, `SET lock_timeout = '`+migrationLockTimeout+`'`); err != nil {
		return fmt.Errorf("set lock_timeout for migration: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `RESET lock_timeout`) // back to the pool's
	const lockKey = `hashtext('authstore migrate ' || current_schema())`
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(`+lockKey+`)`); err != nil {
		return fmt.Errorf("lock for migration: %w", err)
	}
	defer func() {
		// A lost connection drops the lock with the session anyway.
		conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(`+lockKey+`)`)
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var current int
	err = conn.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := conn.Exec(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
			return fmt.Errorf("init schema_version: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if current > len(pgMigrations) {
		return fmt.Errorf("schema version %d is newer than this program knows (%d); upgrade the server", current, len(pgMigrations))
	}
	for v := current; v < version; v++ {
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, pgMigrations[v]); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, v+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to schema version %d: %w", v+1, err)
		}
	}
	return nil
}

// loadKey reads the refresh-rotation key, creating it on first run (the
// first replica's key wins; the others read it).
func (s *pgStore) loadKey(ctx context.Context) error {
	key := make([]byte, 32)
	rand.Read(key)
	if _, err := s.pool.Exec(ctx, `INSERT INTO settings (name, value) VALUES ('rotation_key', $1)
		ON CONFLICT (name) DO NOTHING`, key); err != nil {
		return fmt.Errorf("store rotation key: %w", err)
	}
	if err := s.pool.QueryRow(ctx, `SELECT value FROM settings WHERE name = 'rotation_key'`).Scan(&s.key); err != nil {
		return fmt.Errorf("read rotation key: %w", err)
	}
	if len(s.key) != 32 {
		return fmt.Errorf("rotation key has %d bytes, want 32", len(s.key))
	}
	return nil
}

func (s *pgStore) RotationKey() []byte { return s.key }

func (s *pgStore) Ping(ctx context.Context) error {
	return s.read(ctx, func() error {
		if err := s.pool.Ping(ctx); err != nil {
			return fmt.Errorf("ping database %s: %w", s.dsn, err)
		}
		return nil
	})
}

func (s *pgStore) Close() error {
	s.pool.Close()
	return nil
}

// pgRetryable reports whether a transaction that failed with err may simply
// be run again: a serialization failure, a deadlock, or a connection lost
// before anything was sent.
func pgRetryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "40001" || pgErr.Code == "40P01"
	}
	return pgconn.SafeToRetry(err)
}

// unavailable reports whether err means the database could not be used:
// unreachable, restarting, out of connections, a lock not granted within
// lock_timeout, or a connection lost mid-operation (whose outcome is
// unknown, so the caller must not report success).
func (s *pgStore) unavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	// A failed connection attempt, whatever the server said while refusing
	// it (e.g. 55000: the database does not accept connections now).
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection_exception
			strings.HasPrefix(pgErr.Code, "53"),          // insufficient_resources (too many connections)
			strings.HasPrefix(pgErr.Code, "57P"),         // admin shutdown, crash shutdown, cannot connect now
			pgErr.Code == "55P03",                        // lock_not_available (lock_timeout)
			pgErr.Code == "40001", pgErr.Code == "40P01": // still conflicting after retries
			return true
		}
		return false
	}
	var netErr net.Error
	return errors.As(err, &netErr) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) || errors.Is(err, context.DeadlineExceeded) ||
		strings.Contains(err.Error(), "conn closed") || strings.Contains(err.Error(), "closed pool")
}

// pgAttempts is how many times a transaction runs before a conflict is
// reported (as ErrUnavailable).
const pgAttempts = 8

// write runs fn in a transaction, retrying it on serialization failures,
// deadlocks and connections lost before anything was sent.
func (s *pgStore) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for i := range pgAttempts {
		if i > 0 {
			d := time.Duration(1+mrand.IntN(10<<min(i, 5))) * time.Millisecond
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err = pgx.BeginFunc(ctx, s.pool, fn)
		if err == nil || !pgRetryable(err) {
			return err
		}
	}
	return err
}

// read runs fn, once more if the connection it got was found broken before
// anything was sent (a pooled connection whose server went away).
func (s *pgStore) read(ctx context.Context, fn func() error) error {
	err := fn()
	if err != nil && pgconn.SafeToRetry(err) {
		err = fn()
	}
	return err
}

// dsnPassword returns the password in a PostgreSQL URL, "" if none.
func dsnPassword(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return ""
	}
	if p, ok := u.User.Password(); ok {
		return p
	}
	for k, v := range u.Query() {
		if strings.EqualFold(k, "password") && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// redactedError is an error whose message has the password taken out,
// whatever the underlying error said. errors.Is and errors.As still see
// the cause.
type redactedError struct {
	msg    string
	secret string
	err    error
}

func (e *redactedError) Error() string {
	if e.secret == "" {
		return e.msg
	}
	msg := strings.ReplaceAll(e.msg, e.secret, "xxxxx")
	if esc := url.QueryEscape(e.secret); esc != e.secret {
		msg = strings.ReplaceAll(msg, esc, "xxxxx")
	}
	return msg
}

func (e *redactedError) Unwrap() error { return e.err }

// quiet wraps an error without adding to the message: the cause stays
// visible to errors.Is and errors.As after its text was rephrased.
type quiet struct{ err error }

func (q quiet) Error() string { return "" }
func (q quiet) Unwrap() error { return q.err }
