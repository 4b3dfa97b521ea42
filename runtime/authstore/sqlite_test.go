package authstore

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func openTestStore(t *testing.T) (*sqliteStore, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.db")
	s, err := openSQLite(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

// seedAtVersion writes rows that a database at schema version v can hold.
func seedAtVersion(t *testing.T, db *sql.DB, v int) {
	t.Helper()
	if v < 1 {
		return
	}
	now := time.Now().UnixMilli()
	stmts := []string{
		fmt.Sprintf(`INSERT INTO clients (id, auth_method, redirect_uris, grant_types, response_types, client_name, created_at)
			VALUES ('c1', 'none', '["http://127.0.0.1/cb"]', '["authorization_code","refresh_token"]', '["code"]', 'old client', %d)`, now),
		fmt.Sprintf(`INSERT INTO grants (id, client_id, username, scope, resource, stamp, created_at, expires_at)
			VALUES ('g1', 'c1', 'alice', 'mcp', 'http://127.0.0.1/mcp', 's', %d, %d)`, now, now+3600_000),
		fmt.Sprintf(`INSERT INTO tokens (hash, kind, grant_id, scope, created_at, expires_at)
			VALUES (x'01', 1, 'g1', 'mcp', %d, %d)`, now, now+3600_000),
	}
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("seed v%d: %v", v, err)
		}
	}
}

// TestMigrations migrates an empty file and a database at every earlier
// schema version to the latest, keeping the rows.
func TestMigrations(t *testing.T) {
	for v := 0; v <= len(sqliteMigrations); v++ {
		t.Run(fmt.Sprintf("from_v%d", v), func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "auth.db")
			if v > 0 {
				old, err := openSQLiteAt(ctx, path, v)
				if err != nil {
					t.Fatal(err)
				}
				seedAtVersion(t, old.db, v)
				old.Close()
			}
			s, err := openSQLite(ctx, path)
			if err != nil {
				t.Fatalf("migrate from v%d: %v", v, err)
			}
			defer s.Close()
			var got int
			if err := s.db.QueryRow("PRAGMA user_version").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != len(sqliteMigrations) {
				t.Fatalf("user_version = %d, want %d", got, len(sqliteMigrations))
			}
			if len(s.RotationKey()) != 32 {
				t.Fatalf("rotation key has %d bytes", len(s.RotationKey()))
			}
			if v >= 1 {
				c, err := s.Client(ctx, "c1")
				if err != nil || c.Name != "old client" || c.RedirectURIs[0] != "http://127.0.0.1/cb" {
					t.Fatalf("client after migration: %+v, %v", c, err)
				}
				if v < 4 && c.UsedAt.IsZero() {
					t.Error("a client with a grant is not marked used after migration")
				}
				info, err := s.LookupAccess(ctx, []byte{1}, time.Now())
				if err != nil || info.User != "alice" {
					t.Fatalf("token after migration: %+v, %v", info, err)
				}
			}
			// Reopening runs nothing and keeps the key.
			key := bytes.Clone(s.RotationKey())
			s.Close()
			s2, err := openSQLite(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if !bytes.Equal(s2.RotationKey(), key) {
				t.Fatal("rotation key changed on reopen")
			}
		})
	}
}

func TestMigrationRefusesNewerSchema(t *testing.T) {
	_, path := openTestStore(t)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", len(sqliteMigrations)+1)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := openSQLite(t.Context(), path); err == nil {
		t.Fatal("opened a database with a newer schema")
	}
}

// TestPragmas checks the settings on several fresh pooled connections, and
// the file modes.
func TestPragmas(t *testing.T) {
	s, path := openTestStore(t)
	ctx := t.Context()
	var conns []*sql.Conn
	for range 3 { // hold them so each is a distinct connection
		c, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		for _, p := range []struct {
			pragma string
			want   string
		}{
			{"journal_mode", "wal"},
			{"synchronous", "2"},
			{"foreign_keys", "1"},
			{"busy_timeout", "3000"},
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+p.pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != p.want {
				t.Errorf("connection %d: PRAGMA %s = %s, want %s", i, p.pragma, got, p.want)
			}
		}
		c.Close()
	}
	// A write so the WAL exists.
	if err := s.CreateClient(ctx, &Client{ID: "c", AuthMethod: "none", RedirectURIs: []string{"https://x/cb"}}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m&0o077 != 0 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(f), m)
		}
	}
}

// TestLockTimeout: while another connection holds the write lock, a write
// gives up with ErrUnavailable (after the configured lock timeout, twice),
// never succeeding falsely.
func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.db")
	s, err := Open(t.Context(), path, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	other, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	tx, err := other.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()

	err = s.CreateClient(t.Context(), &Client{ID: "c", AuthMethod: "none", RedirectURIs: []string{"https://x/cb"}})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("write under a held lock: %v, want ErrUnavailable", err)
	}
	tx.Rollback()
	if err := s.CreateClient(t.Context(), &Client{ID: "c", AuthMethod: "none", RedirectURIs: []string{"https://x/cb"}}); err != nil {
		t.Fatalf("write after the lock was released: %v", err)
	}
}
