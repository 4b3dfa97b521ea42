package authstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The SQLite engine. Every connection gets the pragmas from the DSN: WAL (so
// readers never block the writer), a busy timeout, synchronous=FULL (a commit
// that was acknowledged survives power loss: a consumed code or a rotated
// refresh token never comes back), foreign keys, and BEGIN IMMEDIATE for
// every transaction (a deferred read-then-write upgrade fails with
// SQLITE_BUSY in WAL mode regardless of the busy timeout). Reads go through
// a memory map (mmap_size): token lookups on a large database then cost
// about what they cost on a small one. SQLite never writes through the map.

// dsnParams are appended to the database path, after busy_timeout.
const dsnParams = "&_pragma=journal_mode(WAL)" +
	"&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)&_txlock=immediate" +
	"&_pragma=mmap_size(268435456)"

// sqliteMigrations are the schema steps, numbered from 1 by their index + 1. The
// database records how many have run in PRAGMA user_version. Steps are
// forward-only and never edited once released: add a new step instead.
var sqliteMigrations = []string{
	// 1: clients, codes, grants, tokens.
	`CREATE TABLE clients (
		id             TEXT PRIMARY KEY,
		secret_hash    BLOB,
		auth_method    TEXT NOT NULL,
		redirect_uris  TEXT NOT NULL,
		grant_types    TEXT NOT NULL,
		response_types TEXT NOT NULL,
		client_name    TEXT NOT NULL DEFAULT '',
		scope          TEXT NOT NULL DEFAULT '',
		created_at     INTEGER NOT NULL
	);
	CREATE TABLE codes (
		hash           BLOB PRIMARY KEY,
		grant_id       TEXT NOT NULL,
		client_id      TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
		username       TEXT NOT NULL,
		redirect_uri   TEXT NOT NULL,
		code_challenge TEXT NOT NULL,
		scope          TEXT NOT NULL,
		resource       TEXT NOT NULL,
		stamp          TEXT NOT NULL,
		created_at     INTEGER NOT NULL,
		expires_at     INTEGER NOT NULL,
		used_at        INTEGER
	) WITHOUT ROWID;
	CREATE TABLE grants (
		id         TEXT PRIMARY KEY,
		client_id  TEXT NOT NULL,
		username   TEXT NOT NULL,
		scope      TEXT NOT NULL,
		resource   TEXT NOT NULL,
		stamp      TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		revoked_at INTEGER
	);
	CREATE TABLE tokens (
		hash       BLOB PRIMARY KEY,
		kind       INTEGER NOT NULL,
		grant_id   TEXT NOT NULL REFERENCES grants(id) ON DELETE CASCADE,
		scope      TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL,
		used_at    INTEGER,
		revoked_at INTEGER
	) WITHOUT ROWID;
	CREATE INDEX tokens_grant ON tokens(grant_id);`,

	// 2: server settings (the refresh-rotation key) and indexes for cleanup.
	`CREATE TABLE settings (
		name  TEXT PRIMARY KEY,
		value BLOB NOT NULL
	);
	CREATE INDEX tokens_expires ON tokens(expires_at);
	CREATE INDEX codes_expires ON codes(expires_at);
	CREATE INDEX grants_expires ON grants(expires_at);`,

	// 3: find a client's grants (unused-client cleanup).
	`CREATE INDEX grants_client ON grants(client_id);`,

	// 4: the state shared by replicas, and bounds on what strangers can
	// grow. Times are milliseconds since the Unix epoch. sizes counts the
	// rows of the bounded tables (kept by triggers, so a cap check is one
	// primary-key read, not a count over the table).
	`ALTER TABLE clients ADD COLUMN used_at INTEGER;
	UPDATE clients SET used_at = created_at
		WHERE EXISTS (SELECT 1 FROM grants g WHERE g.client_id = clients.id)
		   OR EXISTS (SELECT 1 FROM codes c WHERE c.client_id = clients.id);
	CREATE INDEX clients_unused ON clients(created_at) WHERE used_at IS NULL;
	ALTER TABLE grants ADD COLUMN last_used_at INTEGER;
	CREATE INDEX grants_user ON grants(username);

	CREATE TABLE signins (
		seq            INTEGER PRIMARY KEY,
		id_hash        BLOB NOT NULL UNIQUE,
		browser_hash   BLOB NOT NULL,
		addr_key       TEXT NOT NULL,
		client_id      TEXT NOT NULL,
		client_name    TEXT NOT NULL,
		redirect_uri   TEXT NOT NULL,
		state          TEXT NOT NULL,
		has_state      INTEGER NOT NULL,
		code_challenge TEXT NOT NULL,
		scope          TEXT NOT NULL,
		resource       TEXT NOT NULL,
		created_at     INTEGER NOT NULL,
		expires_at     INTEGER NOT NULL
	);
	CREATE INDEX signins_addr ON signins(addr_key, seq);
	CREATE INDEX signins_browser ON signins(browser_hash, seq);
	CREATE INDEX signins_expires ON signins(expires_at);

	CREATE TABLE throttles (
		rule      TEXT NOT NULL,
		key       BLOB NOT NULL,
		count     INTEGER NOT NULL,
		reset_at  INTEGER NOT NULL,
		last_seen INTEGER NOT NULL,
		PRIMARY KEY (rule, key)
	) WITHOUT ROWID;
	CREATE INDEX throttles_lru ON throttles(rule, last_seen);
	CREATE INDEX throttles_reset ON throttles(reset_at);

	CREATE TABLE sessions (
		seq        INTEGER PRIMARY KEY,
		id_hash    BLOB NOT NULL UNIQUE,
		username   TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		last_used  INTEGER NOT NULL
	);
	CREATE INDEX sessions_user ON sessions(username, last_used);
	CREATE INDEX sessions_last_used ON sessions(last_used);

	CREATE TABLE web_sessions (
		seq        INTEGER PRIMARY KEY,
		id_hash    BLOB NOT NULL UNIQUE,
		username   TEXT NOT NULL,
		stamp      TEXT NOT NULL,
		created_at INTEGER NOT NULL,
		expires_at INTEGER NOT NULL
	);
	CREATE INDEX web_sessions_user ON web_sessions(username, seq);
	CREATE INDEX web_sessions_expires ON web_sessions(expires_at);

	CREATE TABLE epoch (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		n  INTEGER NOT NULL
	);
	INSERT INTO epoch (id, n) VALUES (1, 0);
	CREATE TABLE replicas (
		id          TEXT PRIMARY KEY,
		acked_epoch INTEGER NOT NULL,
		seen_at     INTEGER NOT NULL
	);

	CREATE TABLE sizes (
		name TEXT PRIMARY KEY,
		n    INTEGER NOT NULL
	);
	INSERT INTO sizes (name, n) VALUES ('clients', (SELECT count(*) FROM clients)), ('signins', 0);
	CREATE TRIGGER clients_added AFTER INSERT ON clients BEGIN
		UPDATE sizes SET n = n + 1 WHERE name = 'clients';
	END;
	CREATE TRIGGER clients_deleted AFTER DELETE ON clients BEGIN
		UPDATE sizes SET n = n - 1 WHERE name = 'clients';
	END;
	CREATE TRIGGER signins_added AFTER INSERT ON signins BEGIN
		UPDATE sizes SET n = n + 1 WHERE name = 'signins';
	END;
	CREATE TRIGGER signins_deleted AFTER DELETE ON signins BEGIN
		UPDATE sizes SET n = n - 1 WHERE name = 'signins';
	END;
	CREATE TRIGGER throttles_added AFTER INSERT ON throttles BEGIN
		INSERT INTO sizes (name, n) VALUES ('throttles/' || NEW.rule, 1)
			ON CONFLICT (name) DO UPDATE SET n = n + 1;
	END;
	CREATE TRIGGER throttles_deleted AFTER DELETE ON throttles BEGIN
		UPDATE sizes SET n = n - 1 WHERE name = 'throttles/' || OLD.rule;
	END;`,
}

// Token kinds in the tokens table.
const (
	kindAccess  = 1
	kindRefresh = 2
)

// sqliteStore implements Store on a SQLite file.
type sqliteStore struct {
	db     *sql.DB
	key    []byte
	limits Limits

	lookupAccessStmt *sql.Stmt
}

var _ Store = (*sqliteStore)(nil)

// openSQLite opens (creating it with mode 0600 if needed) and migrates the
// database at path.
func openSQLite(ctx context.Context, path string) (*sqliteStore, error) {
	return openSQLiteWith(ctx, path, len(sqliteMigrations), Options{})
}

// openSQLiteAt is openSQLite migrating only up to version; tests use it to
// build databases at earlier schema versions.
func openSQLiteAt(ctx context.Context, path string, version int) (*sqliteStore, error) {
	return openSQLiteWith(ctx, path, version, Options{})
}

// openSQLiteWith is openSQLite with a schema version and options (of which
// LockTimeout becomes SQLite's busy_timeout).
func openSQLiteWith(ctx context.Context, path string, version int, opts Options) (*sqliteStore, error) {
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	db, err := openDB(path, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	s := &sqliteStore{db: db, limits: opts.Limits.withDefaults()}
	if err := s.init(ctx, version); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return s, nil
}

// openDB opens the file with the pragmas and checks they took effect.
func openDB(path string, lockTimeout time.Duration) (*sql.DB, error) {
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("database path %q: must not contain '?' or '#'", path)
	}
	// Create the file ourselves so that it (and the -wal and -shm files,
	// which SQLite creates with the database's mode) is private.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	f.Close()
	busy := max(lockTimeout.Milliseconds(), 1)
	db, err := sql.Open("sqlite", fmt.Sprintf("%s?_pragma=busy_timeout(%d)%s", path, busy, dsnParams))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(0)
	if err := checkPragmas(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}

// checkPragmas verifies the connection settings the store's guarantees rest on.
func checkPragmas(db *sql.DB) error {
	var mode string
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		return fmt.Errorf("read journal_mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("journal_mode is %q, want wal (is the file on a network filesystem?)", mode)
	}
	var syncMode, fk, timeout int
	if err := db.QueryRow("PRAGMA synchronous").Scan(&syncMode); err != nil {
		return fmt.Errorf("read synchronous: %w", err)
	}
	if syncMode != 2 {
		return fmt.Errorf("synchronous is %d, want 2 (FULL)", syncMode)
	}
	if err := db.QueryRow("PRAGMA foreign_keys").Scan(&fk); err != nil {
		return fmt.Errorf("read foreign_keys: %w", err)
	}
	if fk != 1 {
		return errors.New("foreign_keys is off")
	}
	if err := db.QueryRow("PRAGMA busy_timeout").Scan(&timeout); err != nil {
		return fmt.Errorf("read busy_timeout: %w", err)
	}
	if timeout <= 0 {
		return errors.New("busy_timeout is not set")
	}
	return nil
}

// init migrates to version, loads the rotation key and prepares statements.
func (s *sqliteStore) init(ctx context.Context, version int) error {
	if err := migrate(ctx, s.db, version); err != nil {
		return err
	}
	if version < len(sqliteMigrations) {
		return nil // test databases at old versions are not used as stores
	}
	if err := s.loadKey(ctx); err != nil {
		return err
	}
	var err error
	s.lookupAccessStmt, err = s.db.PrepareContext(ctx, `
		SELECT g.id, g.client_id, g.username, t.scope, g.resource, g.stamp, t.expires_at
		FROM tokens t JOIN grants g ON g.id = t.grant_id
		WHERE t.hash = ? AND t.kind = 1 AND t.revoked_at IS NULL AND t.expires_at > ?
		  AND g.revoked_at IS NULL`)
	if err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	return nil
}

// migrate runs the steps after the database's user_version, up to version,
// each in its own transaction together with the version bump.
func migrate(ctx context.Context, db *sql.DB, version int) error {
	for {
		done, err := migrateStep(ctx, db, version)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

func migrateStep(ctx context.Context, db *sql.DB, version int) (done bool, err error) {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: concurrent starts serialize
	if err != nil {
		return false, fmt.Errorf("migrate: %w", err)
	}
	defer tx.Rollback()
	var current int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return false, fmt.Errorf("read schema version: %w", err)
	}
	if current > len(sqliteMigrations) {
		return false, fmt.Errorf("schema version %d is newer than this program knows (%d); upgrade the server", current, len(sqliteMigrations))
	}
	if current >= version {
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, sqliteMigrations[current]); err != nil {
		return false, fmt.Errorf("migrate to schema version %d: %w", current+1, err)
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", current+1)); err != nil {
		return false, fmt.Errorf("set schema version %d: %w", current+1, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("migrate to schema version %d: %w", current+1, err)
	}
	return false, nil
}

// loadKey reads the refresh-rotation key, creating it on first run.
func (s *sqliteStore) loadKey(ctx context.Context) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, "SELECT value FROM settings WHERE name = 'rotation_key'").Scan(&s.key)
		if err == nil && len(s.key) == 32 {
			return nil
		}
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read rotation key: %w", err)
		}
		s.key = make([]byte, 32)
		rand.Read(s.key)
		_, err = tx.ExecContext(ctx, "INSERT OR REPLACE INTO settings(name, value) VALUES ('rotation_key', ?)", s.key)
		return err
	})
}

func (s *sqliteStore) RotationKey() []byte { return s.key }

func (s *sqliteStore) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// unavailable reports whether err means the database is locked or busy.
func (s *sqliteStore) unavailable(err error) bool { return isBusy(err) }

func (s *sqliteStore) Close() error {
	if s.lookupAccessStmt != nil {
		s.lookupAccessStmt.Close()
	}
	return s.db.Close()
}

// isBusy reports whether err is SQLite's "database is locked" family.
func isBusy(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
	}
	return false
}

// write runs fn in a BEGIN IMMEDIATE transaction, retrying once with jitter
// while the database is busy, and returns ErrUnavailable if it stays busy. With
// the default 3 s lock timeout a client waits at most about 6 s for its
// 503, well within common HTTP client timeouts.
func (s *sqliteStore) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	const attempts = 2
	var err error
	for i := range attempts {
		if i > 0 {
			d := time.Duration(10+mrand.IntN(40)) * time.Millisecond << i
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		err = s.tryWrite(ctx, fn)
		if err == nil || !isBusy(err) {
			return err
		}
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func (s *sqliteStore) tryWrite(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v) }

// listsJSON returns the client's list fields as the JSON arrays the clients
// table stores. (Marshalling a []string cannot fail.)
func listsJSON(c *Client) (redirectURIs, grantTypes, responseTypes string) {
	uris, _ := json.Marshal(c.RedirectURIs)
	grants, _ := json.Marshal(c.GrantTypes)
	resp, _ := json.Marshal(c.ResponseTypes)
	return string(uris), string(grants), string(resp)
}

func (s *sqliteStore) CreateClient(ctx context.Context, c *Client) error {
	uris, grants, resp := listsJSON(c)
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO clients
			(id, secret_hash, auth_method, redirect_uris, grant_types, response_types, client_name, scope, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.ID, c.SecretHash, c.AuthMethod, uris, grants, resp, c.Name, c.Scope, ms(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert client: %w", err)
		}
		return s.evictClients(ctx, tx, c.ID)
	})
}

// evictClients deletes the oldest never-used clients (never keep) while
// there are more than Limits.Clients, or fails with ErrFull.
func (s *sqliteStore) evictClients(ctx context.Context, tx *sql.Tx, keep string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT n FROM sizes WHERE name = 'clients'`).Scan(&n); err != nil {
		return fmt.Errorf("count clients: %w", err)
	}
	over := n - s.limits.Clients
	if over <= 0 {
		return nil
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM clients WHERE id IN (
		SELECT id FROM clients WHERE used_at IS NULL AND id <> ? ORDER BY created_at, id LIMIT ?)`, keep, over)
	if err != nil {
		return fmt.Errorf("evict unused clients: %w", err)
	}
	if deleted, err := res.RowsAffected(); err != nil || deleted < int64(over) {
		return fmt.Errorf("%w: %d clients are registered and every one has been used", ErrFull, n-1)
	}
	return nil
}

func (s *sqliteStore) SaveMetadataClient(ctx context.Context, c *Client) error {
	uris, grants, resp := listsJSON(c)
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO clients
			(id, secret_hash, auth_method, redirect_uris, grant_types, response_types, client_name, scope, created_at)
			VALUES (?, NULL, 'none', ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET secret_hash = NULL, auth_method = 'none',
				redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types,
				response_types = excluded.response_types, client_name = excluded.client_name,
				scope = excluded.scope, created_at = excluded.created_at`,
			c.ID, uris, grants, resp, c.Name, c.Scope, ms(c.CreatedAt))
		if err != nil {
			return fmt.Errorf("store metadata client: %w", err)
		}
		return nil
	})
}

func (s *sqliteStore) Client(ctx context.Context, id string) (*Client, error) {
	var c Client
	var uris, grants, resp string
	var created int64
	var used sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT id, secret_hash, auth_method, redirect_uris, grant_types,
		response_types, client_name, scope, created_at, used_at FROM clients WHERE id = ?`, id).
		Scan(&c.ID, &c.SecretHash, &c.AuthMethod, &uris, &grants, &resp, &c.Name, &c.Scope, &created, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read client: %w", err)
	}
	if err := errors.Join(json.Unmarshal([]byte(uris), &c.RedirectURIs),
		json.Unmarshal([]byte(grants), &c.GrantTypes),
		json.Unmarshal([]byte(resp), &c.ResponseTypes)); err != nil {
		return nil, fmt.Errorf("decode client %s: %w", id, err)
	}
	c.CreatedAt = fromMS(created)
	if used.Valid {
		c.UsedAt = fromMS(used.Int64)
	}
	return &c, nil
}

func (s *sqliteStore) CreateCode(ctx context.Context, c *Code, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO codes
			(hash, grant_id, client_id, username, redirect_uri, code_challenge, scope, resource, stamp, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.Hash, c.GrantID, c.ClientID, c.User, c.RedirectURI, c.CodeChallenge, c.Scope, c.Resource, c.Stamp,
			ms(now), ms(c.ExpiresAt))
		if err != nil {
			return fmt.Errorf("insert code: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE clients SET used_at = ? WHERE id = ? AND used_at IS NULL`,
			ms(now), c.ClientID); err != nil {
			return fmt.Errorf("mark client used: %w", err)
		}
		return nil
	})
}

func (s *sqliteStore) Code(ctx context.Context, hash []byte) (*Code, error) {
	var c Code
	var expires int64
	var used sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT hash, grant_id, client_id, username, redirect_uri, code_challenge,
		scope, resource, stamp, expires_at, used_at FROM codes WHERE hash = ?`, hash).
		Scan(&c.Hash, &c.GrantID, &c.ClientID, &c.User, &c.RedirectURI, &c.CodeChallenge,
			&c.Scope, &c.Resource, &c.Stamp, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read code: %w", err)
	}
	c.ExpiresAt = fromMS(expires)
	c.Used = used.Valid
	return &c, nil
}

func (s *sqliteStore) RedeemCode(ctx context.Context, hash []byte, g *Grant, t *Tokens, now time.Time) (bool, error) {
	var ok bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		ok = false
		res, err := tx.ExecContext(ctx,
			`UPDATE codes SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?`,
			ms(now), hash, ms(now))
		if err != nil {
			return fmt.Errorf("consume code: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return err // already used (or expired meanwhile): nothing issued
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO grants
			(id, client_id, username, scope, resource, stamp, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			g.ID, g.ClientID, g.User, g.Scope, g.Resource, g.Stamp, ms(now), ms(g.ExpiresAt)); err != nil {
			return fmt.Errorf("insert grant: %w", err)
		}
		if err := insertPair(ctx, tx, g.ID, g.Scope, t, now); err != nil {
			return err
		}
		ok = true
		return nil
	})
	return ok, err
}

// insertPair stores an access token and, if t has one, a refresh token.
func insertPair(ctx context.Context, tx *sql.Tx, grantID, grantScope string, t *Tokens, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, grant_id, scope, created_at, expires_at)
		VALUES (?, 1, ?, ?, ?, ?)`, t.AccessHash, grantID, t.AccessScope, ms(now), ms(t.AccessExpires)); err != nil {
		return fmt.Errorf("insert access token: %w", err)
	}
	if t.RefreshHash == nil {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (hash, kind, grant_id, scope, created_at, expires_at)
		VALUES (?, 2, ?, ?, ?, ?)`, t.RefreshHash, grantID, grantScope, ms(now), ms(t.RefreshExpires)); err != nil {
		return fmt.Errorf("insert refresh token: %w", err)
	}
	return nil
}

func (s *sqliteStore) RevokeGrant(ctx context.Context, grantID string, now time.Time) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ms(now), grantID)
		if err != nil {
			return fmt.Errorf("revoke grant: %w", err)
		}
		return bumpEpoch(ctx, tx)
	})
}

const selectRefresh = `SELECT t.hash, t.expires_at, t.used_at, t.revoked_at IS NOT NULL OR g.revoked_at IS NOT NULL,
	g.id, g.client_id, g.username, g.scope, g.resource, g.stamp, g.created_at, g.expires_at
	FROM tokens t JOIN grants g ON g.id = t.grant_id WHERE t.hash = ? AND t.kind = 2`

type rowScanner interface{ Scan(dest ...any) error }

func scanRefresh(row rowScanner) (*RefreshToken, error) {
	var r RefreshToken
	var expires, gCreated, gExpires int64
	var used sql.NullInt64
	err := row.Scan(&r.Hash, &expires, &used, &r.Revoked, &r.Grant.ID, &r.Grant.ClientID, &r.Grant.User,
		&r.Grant.Scope, &r.Grant.Resource, &r.Grant.Stamp, &gCreated, &gExpires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read refresh token: %w", err)
	}
	r.ExpiresAt = fromMS(expires)
	if used.Valid {
		r.UsedAt = fromMS(used.Int64)
	}
	r.Grant.CreatedAt = fromMS(gCreated)
	r.Grant.ExpiresAt = fromMS(gExpires)
	return &r, nil
}

func (s *sqliteStore) Refresh(ctx context.Context, hash []byte) (*RefreshToken, error) {
	return scanRefresh(s.db.QueryRowContext(ctx, selectRefresh, hash))
}

func (s *sqliteStore) RotateRefresh(ctx context.Context, oldHash []byte, t *Tokens, grace time.Duration, now time.Time) (Rotation, error) {
	var out Rotation
	err := s.write(ctx, func(tx *sql.Tx) error {
		old, err := scanRefresh(tx.QueryRowContext(ctx, selectRefresh, oldHash))
		if errors.Is(err, ErrNotFound) {
			out = Dead
			return nil
		}
		if err != nil {
			return err
		}
		if old.Revoked || !now.Before(old.ExpiresAt) || !now.Before(old.Grant.ExpiresAt) {
			out = Dead
			return nil
		}
		if old.UsedAt.IsZero() {
			if _, err := tx.ExecContext(ctx, `UPDATE tokens SET used_at = ? WHERE hash = ? AND used_at IS NULL`,
				ms(now), oldHash); err != nil {
				return fmt.Errorf("rotate refresh token: %w", err)
			}
			if err := insertPair(ctx, tx, old.Grant.ID, old.Grant.Scope, t, now); err != nil {
				return err
			}
			out = Rotated
			return nil
		}
		// Used before: a retry is allowed while the successor is unused and
		// the grace has not passed; anything else is reuse.
		var succUsed sql.NullInt64
		var succRevoked bool
		err = tx.QueryRowContext(ctx, `SELECT used_at, revoked_at IS NOT NULL FROM tokens WHERE hash = ? AND kind = 2`,
			t.RefreshHash).Scan(&succUsed, &succRevoked)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read successor refresh token: %w", err)
		}
		if err == nil && !succUsed.Valid && !succRevoked && now.Sub(old.UsedAt) <= grace {
			t2 := *t
			t2.RefreshHash = nil // the successor exists; only a new access token
			if err := insertPair(ctx, tx, old.Grant.ID, old.Grant.Scope, &t2, now); err != nil {
				return err
			}
			out = Retried
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
			ms(now), old.Grant.ID); err != nil {
			return fmt.Errorf("revoke grant: %w", err)
		}
		out = Reused
		return bumpEpoch(ctx, tx)
	})
	return out, err
}

func (s *sqliteStore) LookupAccess(ctx context.Context, hash []byte, now time.Time) (*Access, error) {
	var a Access
	var expires int64
	err := s.lookupAccessStmt.QueryRowContext(ctx, hash, ms(now)).
		Scan(&a.GrantID, &a.ClientID, &a.User, &a.Scope, &a.Resource, &a.Stamp, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("look up access token: %w", err)
	}
	a.ExpiresAt = fromMS(expires)
	return &a, nil
}

func (s *sqliteStore) RevokeToken(ctx context.Context, hash []byte, clientID string, now time.Time) (string, error) {
	var affected string
	err := s.write(ctx, func(tx *sql.Tx) error {
		affected = ""
		var kind int
		var grantID, owner string
		err := tx.QueryRowContext(ctx, `SELECT t.kind, g.id, g.client_id FROM tokens t JOIN grants g ON g.id = t.grant_id
			WHERE t.hash = ?`, hash).Scan(&kind, &grantID, &owner)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read token: %w", err)
		}
		if owner != clientID {
			return nil
		}
		affected = grantID
		if kind == kindRefresh {
			_, err = tx.ExecContext(ctx, `UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, ms(now), grantID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL`, ms(now), hash)
		}
		if err != nil {
			return fmt.Errorf("revoke token: %w", err)
		}
		return bumpEpoch(ctx, tx)
	})
	return affected, err
}

// clientIdleTTL is how long a registered client with no codes and no grants
// is kept: long enough to finish a sign-in, short enough that open
// registration cannot grow the database without bound.
const clientIdleTTL = 30 * 24 * time.Hour

// replicaGone is how long a replica that stopped acknowledging is listed.
const replicaGone = time.Hour

// Cleanup deletes expired tokens, codes past their expiry (consumed ones
// included: they are kept until then so a replay can still revoke), grants
// that are revoked, expired or have no tokens left, clients that have had
// nothing for clientIdleTTL or were never used within unusedClientTTL, and
// every other row past its time.
func (s *sqliteStore) Cleanup(ctx context.Context, now time.Time, unusedClientTTL time.Duration) error {
	unusedBefore := int64(math.MinInt64) // keep never-used clients
	if unusedClientTTL > 0 {
		unusedBefore = ms(now.Add(-unusedClientTTL))
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
			`DELETE FROM codes WHERE expires_at <= ?1`,
			`DELETE FROM grants WHERE expires_at <= ?1 OR revoked_at IS NOT NULL`,
			`DELETE FROM tokens WHERE expires_at <= ?1`,
			`DELETE FROM grants WHERE NOT EXISTS (SELECT 1 FROM tokens t WHERE t.grant_id = grants.id)
				AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.grant_id = grants.id)`,
			`DELETE FROM clients WHERE created_at <= ?2
				AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.client_id = clients.id)
				AND NOT EXISTS (SELECT 1 FROM codes c WHERE c.client_id = clients.id)`,
			`DELETE FROM clients WHERE used_at IS NULL AND created_at <= ?3`,
			`DELETE FROM signins WHERE expires_at <= ?1`,
			`DELETE FROM throttles WHERE reset_at <= ?1`,
			`DELETE FROM web_sessions WHERE expires_at <= ?1`,
			`DELETE FROM replicas WHERE seen_at <= ?5`,
		} {
			if _, err := tx.ExecContext(ctx, q, ms(now), ms(now.Add(-clientIdleTTL)), unusedBefore,
				ms(now.Add(-SessionIdle)), ms(now.Add(-replicaGone))); err != nil {
				return fmt.Errorf("cleanup: %w", err)
			}
		}
		// Idle sessions end: replicas drop them from their caches.
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE last_used <= ?`, ms(now.Add(-SessionIdle)))
		if err != nil {
			return fmt.Errorf("cleanup: %w", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return bumpEpoch(ctx, tx)
		}
		return nil
	})
}

func (s *sqliteStore) Stats(ctx context.Context, now time.Time) (Stats, error) {
	var st Stats
	if err := s.db.QueryRowContext(ctx, `SELECT n FROM sizes WHERE name = 'clients'`).Scan(&st.Clients); err != nil {
		return st, fmt.Errorf("count clients: %w", err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM grants WHERE revoked_at IS NULL AND expires_at > ?`,
		ms(now)).Scan(&st.Grants); err != nil {
		return st, fmt.Errorf("count grants: %w", err)
	}
	return st, nil
}

// bumpEpoch increments the revocation epoch; every revoking write calls
// it in its own transaction.
func bumpEpoch(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, `UPDATE epoch SET n = n + 1 WHERE id = 1`); err != nil {
		return fmt.Errorf("bump revocation epoch: %w", err)
	}
	return nil
}

// Copy support (copy.go).

func (s *sqliteStore) holdsGrants(ctx context.Context) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM (SELECT 1 FROM clients LIMIT 1))
		+ (SELECT count(*) FROM (SELECT 1 FROM grants LIMIT 1)) + (SELECT count(*) FROM (SELECT 1 FROM codes LIMIT 1))
		+ (SELECT count(*) FROM (SELECT 1 FROM tokens LIMIT 1))`).Scan(&n)
	return n > 0, err
}

func (s *sqliteStore) exportRows(ctx context.Context, table string, cols []string, emit func(row []any) error) error {
	rows, err := s.db.QueryContext(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM "+table)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		row := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		if err := emit(row); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (s *sqliteStore) importRows(ctx context.Context, overwrite bool, fill func(put func(table string, cols []string, row []any) error) error) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if overwrite {
			for _, t := range []string{"tokens", "codes", "grants", "clients"} {
				if _, err := tx.ExecContext(ctx, "DELETE FROM "+t); err != nil {
					return err
				}
			}
			if err := bumpEpoch(ctx, tx); err != nil {
				return err
			}
		}
		stmts := map[string]*sql.Stmt{}
		defer func() {
			for _, st := range stmts {
				st.Close()
			}
		}()
		return fill(func(table string, cols []string, row []any) error {
			st, ok := stmts[table]
			if !ok {
				q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES (?" +
					strings.Repeat(", ?", len(cols)-1) + ")"
				if table == "settings" {
					q += " ON CONFLICT (name) DO UPDATE SET value = excluded.value"
				}
				var err error
				if st, err = tx.PrepareContext(ctx, q); err != nil {
					return err
				}
				stmts[table] = st
			}
			_, err := st.ExecContext(ctx, row...)
			return err
		})
	})
}
