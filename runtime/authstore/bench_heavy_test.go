package authstore

// BenchmarkStoreLookupAccess measures the database side of the bearer
// check, without the server's token cache, with 1k and 1M stored access
// tokens (each lookup a token drawn uniformly from all of them). It
// complements BenchmarkBearerLookup (package mcpauth_test), which goes
// through HTTP and the cache. Databases are cached in
// $TMPDIR/authstore-bench; delete it to rebuild.

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func BenchmarkStoreLookupAccess(b *testing.B) {
	for _, n := range []struct {
		name string
		n    int
	}{{"1k", 1_000}, {"1M", 1_000_000}} {
		b.Run(n.name, func(b *testing.B) {
			path := benchStoreDB(b, n.n)
			ctx := context.Background()
			s, err := openSQLite(ctx, path)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			now := time.Now()
			rng := rand.New(rand.NewPCG(3, 4))
			b.ResetTimer()
			cpu := storeCPUTime()
			for b.Loop() {
				h := sha256.Sum256([]byte(benchStoreToken(rng.IntN(n.n))))
				if _, err := s.LookupAccess(ctx, h[:], now); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(storeCPUTime()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// storeCPUTime is the CPU time (user + system) this process has used.
func storeCPUTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchStoreToken(i int) string { return fmt.Sprintf("bench-store-token-%025d", i) }

// benchStoreDB returns a database with n live access tokens (one grant per
// ten), building and caching it on first use.
func benchStoreDB(b *testing.B, n int) string {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "authstore-bench")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	path := filepath.Join(dir, fmt.Sprintf("store-%d-schema%d.db", n, len(sqliteMigrations)))
	if _, err := os.Stat(path); err == nil {
		return path
	}
	start := time.Now()
	tmp := path + ".building"
	os.Remove(tmp)
	ctx := context.Background()
	s, err := openSQLite(ctx, tmp)
	if err != nil {
		b.Fatal(err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	forever := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	grant, err := tx.PrepareContext(ctx, `INSERT INTO grants (id, client_id, username, scope, resource, stamp, created_at, expires_at)
		VALUES (?, 'bench-client', 'alice', 'mcp', 'http://127.0.0.1:8080/mcp', 'stamp', ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	token, err := tx.PrepareContext(ctx, `INSERT INTO tokens (hash, kind, grant_id, scope, created_at, expires_at) VALUES (?, 1, ?, 'mcp', ?, ?)`)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		gid := fmt.Sprintf("bench-grant-%08d", i/10)
		if i%10 == 0 {
			if _, err := grant.ExecContext(ctx, gid, now, forever); err != nil {
				b.Fatal(err)
			}
		}
		h := sha256.Sum256([]byte(benchStoreToken(i)))
		if _, err := token.ExecContext(ctx, h[:], gid, now, forever); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	os.Remove(tmp + "-wal")
	os.Remove(tmp + "-shm")
	b.Logf("built %s in %v", path, time.Since(start).Round(time.Second))
	return path
}
