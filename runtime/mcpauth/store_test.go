package mcpauth

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
	t.Cleanup(func() { s.close() })
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
	for v := 0; v <= len(migrations); v++ {
		t.Run(fmt.Sprintf("from_v%d", v), func(t *testing.T) {
			ctx := t.Context()
			path := filepath.Join(t.TempDir(), "auth.db")
			if v > 0 {
				old, err := openSQLiteAt(ctx, path, v)
				if err != nil {
					t.Fatal(err)
				}
				seedAtVersion(t, old.db, v)
				old.close()
			}
			s, err := openSQLite(ctx, path)
			if err != nil {
				t.Fatalf("migrate from v%d: %v", v, err)
			}
			defer s.close()
			var got int
			if err := s.db.QueryRow("PRAGMA user_version").Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != len(migrations) {
				t.Fatalf("user_version = %d, want %d", got, len(migrations))
			}
			if len(s.rotationKey()) != 32 {
				t.Fatalf("rotation key has %d bytes", len(s.rotationKey()))
			}
			if v >= 1 {
				c, err := s.getClient(ctx, "c1")
				if err != nil || c.Name != "old client" || c.RedirectURIs[0] != "http://127.0.0.1/cb" {
					t.Fatalf("client after migration: %+v, %v", c, err)
				}
				info, err := s.lookupAccess(ctx, []byte{1}, time.Now())
				if err != nil || info.User != "alice" {
					t.Fatalf("token after migration: %+v, %v", info, err)
				}
			}
			// Reopening runs nothing and keeps the key.
			key := bytes.Clone(s.rotationKey())
			s.close()
			s2, err := openSQLite(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			defer s2.close()
			if !bytes.Equal(s2.rotationKey(), key) {
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
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", len(migrations)+1)); err != nil {
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
	if err := s.createClient(ctx, &client{ID: "c", AuthMethod: "none", RedirectURIs: []string{"https://x/cb"}}); err != nil {
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

func seedCode(t *testing.T, s *sqliteStore, raw string, expires time.Time) *authCode {
	t.Helper()
	ctx := t.Context()
	if _, err := s.getClient(ctx, "c"); errors.Is(err, errNotFound) {
		if err := s.createClient(ctx, &client{ID: "c", AuthMethod: "none", RedirectURIs: []string{"https://x/cb"},
			GrantTypes: []string{"authorization_code", "refresh_token"}, ResponseTypes: []string{"code"}}); err != nil {
			t.Fatal(err)
		}
	}
	c := &authCode{Hash: hashSecret(raw), GrantID: "grant-" + raw, ClientID: "c", User: "alice", RedirectURI: "https://x/cb",
		CodeChallenge: "x", Scope: "mcp", Resource: "https://h/mcp", Stamp: "s", ExpiresAt: expires}
	if err := s.createCode(ctx, c, time.Now()); err != nil {
		t.Fatal(err)
	}
	return c
}

func pairFor(raw string) *issued {
	return &issued{AccessHash: hashSecret("at-" + raw), AccessScope: "mcp", AccessExpires: time.Now().Add(time.Hour),
		RefreshHash: hashSecret("rt-" + raw), RefreshExpires: time.Now().Add(time.Hour)}
}

// TestRedeemCodeSingleUse: of many concurrent redemptions of one code
// exactly one stores tokens; an expired code stores none.
func TestRedeemCodeSingleUse(t *testing.T) {
	s, _ := openTestStore(t)
	now := time.Now()
	c := seedCode(t, s, "code1", now.Add(time.Minute))

	const n = 20
	var wg sync.WaitGroup
	results := make([]bool, n)
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			g := &grant{ID: c.GrantID, ClientID: "c", User: "alice", Scope: "mcp", Resource: c.Resource, Stamp: "s", ExpiresAt: now.Add(time.Hour)}
			results[i], errs[i] = s.redeemCode(context.Background(), c.Hash, g, pairFor(fmt.Sprint(i)), now)
		})
	}
	close(start)
	wg.Wait()
	wins := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("redemption %d: %v", i, errs[i])
		}
		if results[i] {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d redemptions succeeded, want exactly 1", wins)
	}
	var tokens int
	s.db.QueryRow("SELECT count(*) FROM tokens").Scan(&tokens)
	if tokens != 2 {
		t.Fatalf("%d tokens stored, want 2 (one pair)", tokens)
	}
	got, err := s.getCode(t.Context(), c.Hash)
	if err != nil || !got.Used {
		t.Fatalf("code after redemption: %+v, %v", got, err)
	}

	expired := seedCode(t, s, "code2", now.Add(-time.Second))
	g := &grant{ID: expired.GrantID, ClientID: "c", User: "alice", Scope: "mcp", Resource: "r", Stamp: "s", ExpiresAt: now.Add(time.Hour)}
	ok, err := s.redeemCode(t.Context(), expired.Hash, g, pairFor("x"), now)
	if err != nil || ok {
		t.Fatalf("expired code redeemed: %v, %v", ok, err)
	}
}

// TestRotateRefresh covers rotation, the retry grace and reuse detection.
func TestRotateRefresh(t *testing.T) {
	const grace = time.Minute
	tests := []struct {
		name string
		// after the first rotation at t0: optionally use the successor,
		// then present the old token again at t0+delay.
		useSuccessor bool
		delay        time.Duration
		want         rotation
	}{
		{"retry within grace", false, 10 * time.Second, retried},
		{"retry after grace", false, grace + time.Second, reused},
		{"reuse after successor used", true, time.Second, reused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := openTestStore(t)
			ctx := t.Context()
			t0 := time.Now()
			c := seedCode(t, s, "code", t0.Add(time.Minute))
			g := &grant{ID: c.GrantID, ClientID: "c", User: "alice", Scope: "mcp", Resource: c.Resource, Stamp: "s", ExpiresAt: t0.Add(time.Hour)}
			first := pairFor("1") // refresh token "rt-1"
			if ok, err := s.redeemCode(ctx, c.Hash, g, first, t0); !ok || err != nil {
				t.Fatal(ok, err)
			}
			second := pairFor("2")
			if out, err := s.rotateRefresh(ctx, first.RefreshHash, second, grace, t0); out != rotated || err != nil {
				t.Fatalf("first rotation: %v, %v", out, err)
			}
			if tc.useSuccessor {
				if out, err := s.rotateRefresh(ctx, second.RefreshHash, pairFor("3"), grace, t0); out != rotated || err != nil {
					t.Fatalf("successor rotation: %v, %v", out, err)
				}
			}
			retry := pairFor("2") // same successor, as the server derives it
			retry.AccessHash = hashSecret("at-retry")
			out, err := s.rotateRefresh(ctx, first.RefreshHash, retry, grace, t0.Add(tc.delay))
			if err != nil || out != tc.want {
				t.Fatalf("old token again: %v, %v; want %v", out, err, tc.want)
			}
			_, err = s.lookupAccess(ctx, second.AccessHash, t0)
			if tc.want == reused {
				if !errors.Is(err, errNotFound) {
					t.Fatalf("access token of a revoked grant still valid: %v", err)
				}
				if out, _ := s.rotateRefresh(ctx, second.RefreshHash, pairFor("4"), grace, t0); out == rotated || out == retried {
					t.Fatal("successor of a revoked grant still rotates")
				}
			} else if err != nil {
				t.Fatalf("access token after retry: %v", err)
			}
		})
	}
}

// TestCleanupKeepsConsumedCodes: cleanup deletes expired rows but keeps a
// consumed code until it expires, so a replay can still be detected.
func TestCleanupKeepsConsumedCodes(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	now := time.Now()
	c := seedCode(t, s, "code", now.Add(time.Minute))
	g := &grant{ID: c.GrantID, ClientID: "c", User: "alice", Scope: "mcp", Resource: c.Resource, Stamp: "s", ExpiresAt: now.Add(time.Hour)}
	p := pairFor("1")
	p.AccessExpires = now.Add(30 * time.Second)
	if ok, err := s.redeemCode(ctx, c.Hash, g, p, now); !ok || err != nil {
		t.Fatal(ok, err)
	}

	if err := s.cleanup(ctx, now.Add(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if got, err := s.getCode(ctx, c.Hash); err != nil || !got.Used {
		t.Fatalf("consumed code removed before expiry: %v, %v", got, err)
	}
	if _, err := s.lookupAccess(ctx, p.AccessHash, now.Add(10*time.Second)); err != nil {
		t.Fatalf("live access token removed: %v", err)
	}

	later := now.Add(45 * time.Second) // access token expired, code not
	if err := s.cleanup(ctx, later); err != nil {
		t.Fatal(err)
	}
	var n int
	s.db.QueryRow("SELECT count(*) FROM tokens WHERE hash = ?", p.AccessHash).Scan(&n)
	if n != 0 {
		t.Fatal("expired access token kept")
	}
	if _, err := s.getRefresh(ctx, p.RefreshHash); err != nil {
		t.Fatalf("live refresh token removed: %v", err)
	}

	if err := s.cleanup(ctx, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.getCode(ctx, c.Hash); !errors.Is(err, errNotFound) {
		t.Fatalf("expired code kept: %v", err)
	}

	if err := s.revokeGrant(ctx, g.ID, now); err != nil {
		t.Fatal(err)
	}
	if err := s.cleanup(ctx, now.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	s.db.QueryRow("SELECT count(*) FROM grants").Scan(&n)
	if n != 0 {
		t.Fatal("revoked grant kept")
	}
}

// TestHashSecret: secrets have 256 bits and are stored as SHA-256.
func TestHashSecret(t *testing.T) {
	a, b := newSecret(), newSecret()
	if len(a) != 43 || a == b {
		t.Fatalf("newSecret: %q, %q", a, b)
	}
	if bytes.Contains(hashSecret(a), []byte(a)) || len(hashSecret(a)) != 32 {
		t.Fatal("hashSecret does not hash")
	}
}

// TestCleanupUnusedClients: a client with nothing stored is deleted after
// clientIdleTTL; one with a live grant is kept.
func TestCleanupUnusedClients(t *testing.T) {
	s, _ := openTestStore(t)
	ctx := t.Context()
	now := time.Now()
	for _, id := range []string{"idle", "used"} {
		if err := s.createClient(ctx, &client{ID: id, AuthMethod: "none", RedirectURIs: []string{"https://x/cb"}, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	code := &authCode{Hash: hashSecret("c"), GrantID: "g", ClientID: "used", User: "alice", RedirectURI: "https://x/cb",
		CodeChallenge: "x", Scope: "mcp", Resource: "r", Stamp: "s", ExpiresAt: now.Add(time.Minute)}
	if err := s.createCode(ctx, code, now); err != nil {
		t.Fatal(err)
	}
	later := now.Add(clientIdleTTL + time.Hour)
	g := &grant{ID: "g", ClientID: "used", User: "alice", Scope: "mcp", Resource: "r", Stamp: "s", ExpiresAt: later.Add(time.Hour)}
	p := pairFor("1")
	p.AccessExpires, p.RefreshExpires = later.Add(time.Hour), later.Add(time.Hour)
	if ok, err := s.redeemCode(ctx, code.Hash, g, p, now); !ok || err != nil {
		t.Fatal(ok, err)
	}

	if err := s.cleanup(ctx, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.getClient(ctx, "idle"); err != nil {
		t.Fatalf("idle client deleted before clientIdleTTL: %v", err)
	}
	if err := s.cleanup(ctx, later); err != nil {
		t.Fatal(err)
	}
	if _, err := s.getClient(ctx, "idle"); !errors.Is(err, errNotFound) {
		t.Fatalf("idle client kept after clientIdleTTL: %v", err)
	}
	if _, err := s.getClient(ctx, "used"); err != nil {
		t.Fatalf("client with a live grant deleted: %v", err)
	}
	if n, err := s.countClients(ctx); err != nil || n != 1 {
		t.Fatalf("countClients = %d, %v; want 1", n, err)
	}
}

// TestLockTimeout: while another connection holds the write lock, a write
// gives up with errBusy (after the configured lock timeout, twice), never
// succeeding falsely.
func TestLockTimeout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.db")
	s, err := openSQLiteWith(t.Context(), path, len(migrations), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
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

	err = s.createClient(t.Context(), &client{ID: "c", AuthMethod: "none", RedirectURIs: []string{"https://x/cb"}})
	if !errors.Is(err, errBusy) {
		t.Fatalf("write under a held lock: %v, want errBusy", err)
	}
	tx.Rollback()
	if err := s.createClient(t.Context(), &client{ID: "c", AuthMethod: "none", RedirectURIs: []string{"https://x/cb"}}); err != nil {
		t.Fatalf("write after the lock was released: %v", err)
	}
}
