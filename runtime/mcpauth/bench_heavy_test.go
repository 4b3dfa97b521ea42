package mcpauth_test

// Benchmarks (issue 2, item 8). Never timed assertions: run them and
// compare.
//
//	go test -run '^$' -bench . -benchtime 3s ./runtime/mcpauth/
//
// BenchmarkToolsCall compares tools/call through the whole HTTP stack behind
// mcpauth (valid bearer) with the same mcp-go server bare.
// BenchmarkRefresh measures the refresh_token grant at /token.
// BenchmarkBearerRoundTrips counts the database operations of
// authenticated tools/call requests in steady state (one token, warmed up),
// on SQLite and, with MCP_TEST_POSTGRES, PostgreSQL: roundtrips/op counts
// those a request makes (the target is zero while the token is cached),
// background-roundtrips/op those of the replica's heartbeat and the
// probes, which do not grow with the load.
// BenchmarkBearerLookup measures requests to /mcp with 1k and 1M stored
// access tokens, each request carrying a token drawn uniformly from all of
// them. The seeded databases are built once and cached in
// $TMPDIR/mcpauth-bench (1M rows take a while); delete it to rebuild.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	_ "modernc.org/sqlite"

	"github.com/mcpgen/create-mcp-server/runtime/authstoretest"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
	"github.com/mcpgen/create-mcp-server/runtime/userfile"
)

// benchBase is the configured base URL of benchmark servers; requests go to
// the httptest listener (a loopback Host, which the server admits), so that
// the issuer and resource do not depend on the port and seeded databases
// can be reused.
const benchBase = "http://127.0.0.1:8080"

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func BenchmarkToolsCall(b *testing.B) {
	callLoop := func(b *testing.B, url, token string) {
		ctx := context.Background()
		c, err := mcpauthtest.Connect(ctx, url, token, "")
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		var req mcp.CallToolRequest
		req.Params.Name = "echo"
		req.Params.Arguments = map[string]any{"text": "hello"}
		b.ResetTimer()
		cpu := cpuTime()
		for b.Loop() {
			res, err := c.CallTool(ctx, req)
			if err != nil || res.IsError {
				b.Fatalf("tools/call: %v %v", err, res)
			}
		}
		reportCPU(b, cpu)
	}
	b.Run("auth", func(b *testing.B) {
		e := newEnv(b, func(c *mcpauth.Config) { c.Logger = quietLogger() })
		c := e.register(nil)
		tok := e.tokens(c)
		callLoop(b, e.mcpURL, tok.AccessToken)
	})
	b.Run("noauth", func(b *testing.B) {
		srv := httptest.NewServer(server.NewStreamableHTTPServer(newMCPServer()))
		defer srv.Close()
		callLoop(b, srv.URL+"/mcp", "")
	})
}

// backgroundOps are the store operations that do not come from a request:
// the replica protocol's heartbeat (coherence.go), /readyz and /healthz,
// the metrics gauges and the periodic cleanup.
var backgroundOps = map[string]bool{
	"epoch": true, "ack": true, "lagging": true, "watch_epochs": true, "leave_replica": true,
	"ping": true, "stats": true, "cleanup": true,
}

// dbOps returns how many store operations m has observed: made by
// requests, and in the background (backgroundOps).
func dbOps(b *testing.B, m *mcpauth.Metrics) (requests, background float64) {
	b.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "mcp_db_operation_duration_seconds" {
			continue
		}
		for _, metric := range f.GetMetric() {
			n := float64(metric.GetHistogram().GetSampleCount())
			for _, l := range metric.GetLabel() {
				if l.GetName() == "op" && backgroundOps[l.GetValue()] {
					background += n
					n = 0
				}
			}
			requests += n
		}
	}
	return requests, background
}

func BenchmarkBearerRoundTrips(b *testing.B) {
	for _, engine := range authstoretest.Engines() {
		for _, proto := range []string{"2026-07-28", "2025-11-25"} {
			b.Run(engine.Name+"/"+proto, func(b *testing.B) {
				dsn := engine.NewDSN(b)
				e := newEnv(b, func(c *mcpauth.Config) { c.Logger, c.Database = quietLogger(), dsn })
				tok := e.tokens(e.register(nil))
				ctx := context.Background()
				c, err := mcpauthtest.Connect(ctx, e.mcpURL, tok.AccessToken, proto)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				var req mcp.CallToolRequest
				req.Params.Name = "echo"
				req.Params.Arguments = map[string]any{"text": "hello"}
				call := func() {
					if res, err := c.CallTool(ctx, req); err != nil || res.IsError {
						b.Fatalf("tools/call: %v %v", err, res)
					}
				}
				call() // the token is cached, the grant's last use recorded
				time.Sleep(100 * time.Millisecond)
				req0, bg0 := dbOps(b, e.cfg.Metrics)
				for b.Loop() {
					call()
				}
				req1, bg1 := dbOps(b, e.cfg.Metrics)
				b.ReportMetric((req1-req0)/float64(b.N), "roundtrips/op")
				b.ReportMetric((bg1-bg0)/float64(b.N), "background-roundtrips/op")
			})
		}
	}
}

func BenchmarkRefresh(b *testing.B) {
	e := newEnv(b, func(c *mcpauth.Config) { c.Logger = quietLogger() })
	c := e.register(nil)
	tok := e.tokens(c)
	ctx := context.Background()
	rt := tok.RefreshToken
	b.ResetTimer()
	cpu := cpuTime()
	for b.Loop() {
		next, err := c.Refresh(ctx, rt)
		if err != nil {
			b.Fatal(err)
		}
		rt = next.RefreshToken
	}
	reportCPU(b, cpu)
}

func BenchmarkBearerLookup(b *testing.B) {
	for _, n := range []struct {
		name string
		n    int
	}{{"1k", 1_000}, {"1M", 1_000_000}} {
		db, users := seededDB(b, n.n)
		s, err := mcpauth.New(mcpauth.Config{BaseURL: benchBase, Database: db, UsersPath: users, Logger: quietLogger()}, newMCPServer())
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(s)
		hc := srv.Client()
		ctx := context.Background()
		if st, _, err := mcpauthtest.BearerStatus(ctx, hc, srv.URL+"/mcp", benchToken(0)); err != nil || st != 200 {
			b.Fatalf("seeded token rejected (%d, %v); delete %s to rebuild the cache", st, err, filepath.Dir(db))
		}
		// uniform: every request carries a token drawn from all n (mostly
		// cache misses at 1M). hot: 100 clients active among the n stored.
		for _, pattern := range []struct {
			name   string
			active int
		}{{"uniform", n.n}, {"hot100", 100}} {
			b.Run(n.name+"/"+pattern.name, func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				ids := make([]int, pattern.active)
				for i := range ids {
					ids[i] = rng.IntN(n.n)
				}
				b.ResetTimer()
				cpu := cpuTime()
				for b.Loop() {
					st, _, err := mcpauthtest.BearerStatus(ctx, hc, srv.URL+"/mcp", benchToken(ids[rng.IntN(len(ids))]))
					if err != nil || st != 200 {
						b.Fatalf("%d %v", st, err)
					}
				}
				reportCPU(b, cpu)
			})
		}
		srv.Close()
		s.Close()
	}
}

// cpuTime is the CPU time (user + system) this process has used so far.
// On a shared machine, CPU per operation is steadier than wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process CPU time per operation since start (client
// and server together: both run in this process).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

// benchToken is the raw value of the i-th seeded access token.
func benchToken(i int) string { return fmt.Sprintf("bench-access-token-%024d", i) } // 43 bytes, like real ones

// seededDB returns a database holding n live access tokens of alice (one
// grant per 10 tokens) and the users file they belong to, building and
// caching them on first use.
func seededDB(b *testing.B, n int) (dbPath, usersPath string) {
	b.Helper()
	dir := filepath.Join(os.TempDir(), "mcpauth-bench")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	usersPath = filepath.Join(dir, "users.txt")
	if _, err := os.Stat(usersPath); err != nil {
		writeUsers(b, usersPath, testUsers)
	}
	// The cache is keyed by the schema version of a fresh database.
	fresh := filepath.Join(b.TempDir(), "fresh.db")
	s, err := mcpauth.New(mcpauth.Config{BaseURL: benchBase, Database: fresh, UsersPath: usersPath, Logger: quietLogger()}, newMCPServer())
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	version := userVersion(b, fresh)
	dbPath = filepath.Join(dir, fmt.Sprintf("tokens-%d-schema%d.db", n, version))
	if _, err := os.Stat(dbPath); err == nil {
		return dbPath, usersPath
	}

	start := time.Now()
	uf, err := userfile.Open(usersPath)
	if err != nil {
		b.Fatal(err)
	}
	stamp, ok, err := uf.Stamp("alice")
	if err != nil || !ok {
		b.Fatalf("stamp: %v %v", ok, err)
	}
	tmp := dbPath + ".building"
	os.Remove(tmp)
	data, err := os.ReadFile(fresh)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		b.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+tmp+"?_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)&_pragma=foreign_keys(1)")
	if err != nil {
		b.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	forever := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	exec := func(q string, args ...any) {
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO clients (id, auth_method, redirect_uris, grant_types, response_types, client_name, created_at)
		VALUES ('bench-client', 'none', '["http://127.0.0.1/cb"]', '["authorization_code","refresh_token"]', '["code"]', 'bench', ?)`, now)
	grant, err := tx.PrepareContext(ctx, `INSERT INTO grants (id, client_id, username, scope, resource, stamp, created_at, expires_at)
		VALUES (?, 'bench-client', 'alice', 'mcp', ?, ?, ?, ?)`)
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
			if _, err := grant.ExecContext(ctx, gid, benchBase+"/mcp", stamp, now, forever); err != nil {
				b.Fatal(err)
			}
		}
		h := sha256.Sum256([]byte(benchToken(i)))
		if _, err := token.ExecContext(ctx, h[:], gid, now, forever); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		b.Fatal(err)
	}
	db.Close()
	if err := os.Rename(tmp, dbPath); err != nil {
		b.Fatal(err)
	}
	os.Remove(tmp + "-wal")
	os.Remove(tmp + "-shm")
	b.Logf("built %s in %v", dbPath, time.Since(start).Round(time.Second))
	return dbPath, usersPath
}

func userVersion(b *testing.B, path string) int {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		b.Fatal(err)
	}
	return v
}
