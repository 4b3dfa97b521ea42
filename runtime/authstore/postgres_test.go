package authstore

// PostgreSQL-only behaviour: connection errors, migrations under the
// advisory lock, lost connections, notifications. The shared semantics are
// in the suite (suite_test.go), which runs on PostgreSQL too.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// adminConn connects to the schema of url (from testPostgresURL) directly.
func adminConn(t *testing.T, u string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// withParam returns u with the query parameter k=v.
func withParam(t *testing.T, u, k, v string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	q.Set(k, v)
	p.RawQuery = q.Encode()
	return p.String()
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"auth.db", "auth.db"},
		{"/var/lib/mcp/auth.db", "/var/lib/mcp/auth.db"},
		{"postgres://app:s3cret@db:5432/auth", "postgres://app:xxxxx@db:5432/auth"},
		{"postgresql://app@db/auth?sslmode=require", "postgresql://app@db/auth?sslmode=require"},
		{"postgres://db/auth?password=s3cret&user=app", "postgres://db/auth?password=xxxxx&user=app"},
		{"postgres://app:s3cret@db/auth?sslpassword=k3y", "postgres://app:xxxxx@db/auth?sslpassword=xxxxx"},
		{"postgres://app:s3cret@db:bad port/auth", "postgres://(unparsable URL)"},
		{"host=db dbname=auth user=app password=s3cret", "host=db dbname=auth user=app password=xxxxx"},
		{"host=db password='s3 cret' sslmode=require", "host=db password=xxxxx sslmode=require"},
		{"dbname=auth sslpassword = k3y", "dbname=auth sslpassword = xxxxx"},
		// Mistyped or missing schemes: not opened, but named in the refusal.
		{"postgress://app:s3cret@db.example.com/auth", "postgress:xxxxx@db.example.com/auth"},
		{"postgres:/app:s3cret@db.example.com/auth", "postgres:xxxxx@db.example.com/auth"},
		{"app:s3cret@db.example.com", "app:xxxxx@db.example.com"},
		{"sqlite:auth2.db", "sqlite:auth2.db"},
		{`C:\data\auth.db`, `C:\data\auth.db`},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestOpenRefusesNonDatabases: what is neither a postgres:// URL nor a
// SQLite file path (a libpq key=value string, a mistyped scheme, a URL
// whose scheme was forgotten) is refused with a message asking for a URL
// or a path, without its password, and without creating a SQLite file
// named after it.
func TestOpenRefusesNonDatabases(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, dsn := range []string{
		"host=db.example.com dbname=mcp user=mcp password=kv-s3cret",
		"password=kv-s3cret host=db.example.com",
		"dbname=mcp sslmode=require",
		"postgress://mcp:kv-s3cret@db.example.com/mcp",
		"postgres:/mcp:kv-s3cret@db.example.com/mcp",
		"mcp:kv-s3cret@db.example.com",
		"sqlite:auth2.db",
	} {
		_, err := Open(t.Context(), dsn, Options{})
		if err == nil || !strings.Contains(err.Error(), "postgres://") || strings.Contains(err.Error(), "kv-s3cret") {
			t.Errorf("Open(%q) = %v; want a refusal asking for a postgres:// URL, without the password", dsn, err)
		}
	}
	if entries, _ := os.ReadDir("."); len(entries) != 0 {
		t.Errorf("Open of non-databases created %d files", len(entries))
	}
	// A file name with a colon still works, starting with "./".
	st, err := Open(t.Context(), "./auth:2.db", Options{})
	if err != nil {
		t.Fatalf("Open(./auth:2.db): %v", err)
	}
	st.Close()
}

// TestPostgresOpenErrors: the usual misconfigurations fail Open with a
// message that says what is wrong, names the database without its
// password, and never contains the password.
func TestPostgresOpenErrors(t *testing.T) {
	base := os.Getenv("MCP_TEST_POSTGRES")
	good := testPostgresURL(t) // skips without PostgreSQL
	u, _ := url.Parse(good)
	const secret = "wr0ng-Pa55word"

	wrongPassword := *u
	wrongPassword.User = url.UserPassword(u.User.Username(), secret)
	missingDB := *u // with the right password
	missingDB.Path = "/authstore_no_such_database"
	unreachable := *u
	unreachable.Host = "127.0.0.1:1"
	unreachable.User = url.UserPassword(u.User.Username(), secret)

	for _, tc := range []struct {
		name, dsn string
		want      string
	}{
		{"wrong password", wrongPassword.String(), "check the user and password"},
		{"missing database", missingDB.String(), `database "authstore_no_such_database" does not exist`},
		{"unreachable host", unreachable.String(), "cannot reach PostgreSQL at 127.0.0.1:1"},
		{"not a URL", "postgres://u:" + secret + "@host:port/x", "not a valid PostgreSQL connection URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			s, err := Open(ctx, tc.dsn, Options{})
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not say %q", msg, tc.want)
			}
			if !strings.Contains(msg, Redact(tc.dsn)) {
				t.Errorf("error %q does not name the database as %q", msg, Redact(tc.dsn))
			}
			for _, pw := range []string{secret, dsnPassword(base)} {
				if pw != "" && strings.Contains(msg, pw) {
					t.Errorf("error contains the password: %q", msg)
				}
			}
		})
	}
}

// TestPostgresConcurrentOpen: replicas starting together migrate exactly
// once and share one rotation key.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := testPostgresURL(t)
	const n = 8
	stores := make([]Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), dsn, Options{})
		})
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open %d: %v", i, errs[i])
		}
		defer stores[i].Close()
		if !bytes.Equal(stores[i].RotationKey(), stores[0].RotationKey()) {
			t.Errorf("replica %d has another rotation key", i)
		}
	}
	var version, rows int
	conn := adminConn(t, dsn)
	if err := conn.QueryRow(t.Context(), `SELECT max(version), count(*) FROM schema_version`).Scan(&version, &rows); err != nil {
		t.Fatal(err)
	}
	if version != len(pgMigrations) || rows != 1 {
		t.Fatalf("schema_version: version %d in %d rows, want %d in 1", version, rows, len(pgMigrations))
	}
}

// TestPostgresOpenWaitsForMigration: a replica that starts while another
// holds the migration lock longer than LockTimeout waits for it, then
// opens, instead of failing on the lock timeout.
func TestPostgresOpenWaitsForMigration(t *testing.T) {
	dsn := testPostgresURL(t)
	s, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	conn := adminConn(t, dsn)
	const lockKey = `hashtext('authstore migrate ' || current_schema())`
	if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_lock(`+lockKey+`)`); err != nil {
		t.Fatal(err)
	}
	opened := make(chan error, 1)
	go func() {
		s, err := Open(t.Context(), dsn, Options{LockTimeout: 50 * time.Millisecond})
		if err == nil {
			// The pool's connections keep LockTimeout for requests.
			var lt string
			if err = s.(*checked).e.(*pgStore).pool.QueryRow(t.Context(), `SHOW lock_timeout`).Scan(&lt); err == nil && lt != "50ms" {
				err = fmt.Errorf("lock_timeout after the migration is %s, want 50ms", lt)
			}
			s.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("Open returned while the migration lock was held: %v", err)
	case <-time.After(500 * time.Millisecond): // ten times LockTimeout
	}
	if _, err := conn.Exec(t.Context(), `SELECT pg_advisory_unlock(`+lockKey+`)`); err != nil {
		t.Fatal(err)
	}
	if err := <-opened; err != nil {
		t.Fatalf("Open after the migration lock was released: %v", err)
	}
}

func TestPostgresRefusesNewerSchema(t *testing.T) {
	dsn := testPostgresURL(t)
	s, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := adminConn(t, dsn).Exec(t.Context(), `UPDATE schema_version SET version = $1`, len(pgMigrations)+1); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), dsn, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this program knows") {
		t.Fatalf("Open of a newer schema: %v", err)
	}
}

// TestPostgresLockTimeout: a write that waits longer than LockTimeout for a
// row lock returns ErrUnavailable, and works once the lock is released.
func TestPostgresLockTimeout(t *testing.T) {
	dsn := testPostgresURL(t)
	s, err := Open(t.Context(), dsn, Options{LockTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tx, err := adminConn(t, dsn).Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT n FROM epoch FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeGrant(t.Context(), "g", time.Now()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("revocation under a held lock: %v, want ErrUnavailable", err)
	}
	tx.Rollback(t.Context())
	if err := s.RevokeGrant(t.Context(), "g", time.Now()); err != nil {
		t.Fatalf("after the lock was released: %v", err)
	}
}

// TestPostgresBackendTerminated: a connection killed in the middle of an
// operation makes it fail with ErrUnavailable (never a false success), and
// the next operations work on fresh connections.
func TestPostgresBackendTerminated(t *testing.T) {
	dsn := testPostgresURL(t)
	app := "authstore_test_" + fmt.Sprint(time.Now().UnixNano())
	s, err := Open(t.Context(), withParam(t, dsn, "application_name", app), Options{LockTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	admin := adminConn(t, dsn)
	// Hold the epoch row so that a revocation blocks in the database.
	tx, err := admin.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(t.Context(), `SELECT n FROM epoch FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.RevokeGrant(context.Background(), "g", time.Now()) }()
	killer := adminConn(t, dsn)
	for {
		var waiting int
		if err := killer.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := killer.Exec(t.Context(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, app); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("revocation on a terminated connection: %v, want ErrUnavailable", err)
	}
	tx.Rollback(t.Context())
	now := time.Now()
	seedClient(t, s, "after", now)
	if _, err := s.Client(t.Context(), "after"); err != nil {
		t.Fatalf("after the connections were terminated: %v", err)
	}
}

// TestPostgresDatabaseStalls: a database that stops answering without
// closing anything (a partition) makes operations fail with
// ErrUnavailable after a bounded time instead of hanging, and they work
// again once it answers.
func TestPostgresDatabaseStalls(t *testing.T) {
	s, proxy := openProxied(t)
	ctx := t.Context() // no deadline: only the store's own bound ends a stalled operation
	now := time.Now()
	seedClient(t, s, "c", now)

	proxy.setStalled(true)
	var wg sync.WaitGroup
	for name, op := range map[string]func() error{
		"Client":      func() error { _, err := s.Client(ctx, "c"); return err },
		"RevokeGrant": func() error { return s.RevokeGrant(ctx, "g", now) },
		"Ping":        func() error { return s.Ping(ctx) },
	} {
		wg.Go(func() {
			if err := op(); !errors.Is(err, ErrUnavailable) {
				t.Errorf("%s with the database stalled: %v, want ErrUnavailable", name, err)
			}
		})
	}
	wg.Wait()

	proxy.setStalled(false)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.Client(ctx, "c")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after the database answered again: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPostgresDatabaseDown: while the database cannot be reached, every
// method returns ErrUnavailable; when it is back, the same Store works.
func TestPostgresDatabaseDown(t *testing.T) {
	s, proxy := openProxied(t)
	ctx := t.Context()
	now := time.Now()
	seedClient(t, s, "c", now)

	proxy.setDown(true)
	for name, op := range map[string]func() error{
		"Client":       func() error { _, err := s.Client(ctx, "c"); return err },
		"LookupAccess": func() error { _, err := s.LookupAccess(ctx, hashOf("t"), now); return err },
		"RevokeGrant":  func() error { return s.RevokeGrant(ctx, "g", now) },
		"Allow":        func() error { _, _, err := s.Allow(ctx, Limit{"l", 1, time.Minute}, "k", now); return err },
		"Ping":         func() error { return s.Ping(ctx) },
	} {
		if err := op(); !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with the database down: %v, want ErrUnavailable", name, err)
		}
	}

	proxy.setDown(false)
	if _, err := s.Client(ctx, "c"); err != nil {
		t.Fatalf("after the database came back: %v", err)
	}
}

// TestPostgresWatchEpochs: a revocation committed by one replica reaches
// another's watcher.
func TestPostgresWatchEpochs(t *testing.T) {
	dsn := testPostgresURL(t)
	a, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := a.WatchEpochs(ctx)
	if err != nil || ch == nil {
		t.Fatalf("WatchEpochs: %v, %v", ch, err)
	}
	if err := b.RevokeGrant(t.Context(), "g", time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(time.Minute):
		t.Fatal("no notification of a committed revocation")
	}
	cancel()
	for range ch { // closed when ctx ends
	}
}

// openProxied opens a store on a fresh PostgreSQL schema reached through a
// tcpProxy, which the test can take down or stall. The store is closed
// when t ends.
func openProxied(t *testing.T) (Store, *tcpProxy) {
	t.Helper()
	u, _ := url.Parse(testPostgresURL(t))
	proxy := newTCPProxy(t, u.Host)
	u.Host = proxy.addr
	s, err := Open(t.Context(), withParam(t, u.String(), "connect_timeout", "2"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, proxy
}

// tcpProxy forwards connections to a backend until it is set down: then it
// cuts every connection and refuses new ones.
type tcpProxy struct {
	addr    string
	backend string
	mu      sync.Mutex
	down    bool
	stalled bool
	conns   []net.Conn
}

func newTCPProxy(t *testing.T, backend string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{addr: ln.Addr().String(), backend: backend}
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
	return p
}

func (p *tcpProxy) serve(c net.Conn) {
	p.waitFlowing()
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		c.Close()
		return
	}
	b, err := net.Dial("tcp", p.backend)
	if err != nil {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns = append(p.conns, c, b)
	p.mu.Unlock()
	go p.pipe(b, c)
	p.pipe(c, b)
}

// pipe copies src to dst, holding what it reads while the proxy is
// stalled, until either side fails; then it closes dst.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.waitFlowing()
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitFlowing returns once the proxy is not stalled.
func (p *tcpProxy) waitFlowing() {
	for {
		p.mu.Lock()
		stalled := p.stalled && !p.down
		p.mu.Unlock()
		if !stalled {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// setStalled makes the proxy a black hole, as a network partition that
// drops packets: connections stay open and new ones are accepted, but
// nothing is forwarded until it is set flowing again.
func (p *tcpProxy) setStalled(stalled bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stalled = stalled
}

func (p *tcpProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}
