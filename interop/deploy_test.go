package interop

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// postgresURL returns the database URL in MCP_TEST_POSTGRES (a role that
// may create databases). Without it the test is skipped, saying so, unless
// MCP_REQUIRE_POSTGRES=1 (scripts/test sets both), which makes it fail.
func postgresURL(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("MCP_TEST_POSTGRES")
	if dsn == "" {
		msg := "needs a PostgreSQL database: set MCP_TEST_POSTGRES to a postgres:// URL of a role that may create databases " +
			"(eval \"$(scripts/pgtmp start)\" starts a throwaway cluster)"
		if os.Getenv("MCP_REQUIRE_POSTGRES") == "1" {
			t.Fatal(msg + "; MCP_REQUIRE_POSTGRES=1 forbids skipping")
		}
		t.Skip(msg)
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		t.Fatalf("MCP_TEST_POSTGRES must be a postgres:// URL with a host (got %q)", redact(dsn))
	}
	return dsn
}

// redact hides the password of a database URL.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// newDatabase creates an empty database for one test on the server of
// admin (a database URL) and returns its URL; the database is dropped when
// t ends, after every process using it has stopped.
func newDatabase(t *testing.T, admin, name string) string {
	t.Helper()
	suffix := make([]byte, 4)
	rand.Read(suffix)
	db := "interop_" + strings.ReplaceAll(name, "-", "_") + "_" + hex.EncodeToString(suffix)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("setup: connect to MCP_TEST_POSTGRES (%s): %v", redact(admin), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
		t.Fatalf("setup: create database %s: %v", db, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("cleanup: connect to drop database %s: %v", db, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{db}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("cleanup: drop database %s: %v", db, err)
		}
	})
	u, _ := url.Parse(admin)
	u.Path = "/" + db
	return u.String()
}

// execSQL runs one statement in the database at dsn.
func execSQL(t *testing.T, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", redact(dsn), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// withHost returns dsn with its host:port replaced (to go through a
// tcpProxy, or to nowhere).
func withHost(dsn, hostport string) string {
	u, _ := url.Parse(dsn)
	u.Host = hostport
	return u.String()
}

// dbPassword returns the password in a database URL, or "".
func dbPassword(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return ""
	}
	pw, _ := u.User.Password()
	return pw
}

// withPassword returns dsn with its password replaced.
func withPassword(dsn, password string) string {
	u, _ := url.Parse(dsn)
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String()
}

// deployment is replicas of the generated server on one database behind a
// round-robin reverse proxy, the way an operator runs several: every
// replica gets the same --db and --users, --base-url is the proxy's URL, and
// the proxy is a trusted proxy (--trusted-proxies 127.0.0.1/32).
type deployment struct {
	t        *testing.T
	Name     string
	Project  *project
	DB       string // the --db of every replica
	Users    string // the users file of every replica
	Dir      string // replica logs and the proxy's record, kept as artifacts
	Proxy    *rrProxy
	Replicas []*replica
	// Srv is the deployment as one server, at the proxy's URL, for the
	// client tests that take a *server.
	Srv *server
}

// replica is one serve process.
type replica struct {
	Index  int
	Addr   string // its own listen address, 127.0.0.1:PORT
	Log    string // its stdout and stderr
	Args   []string
	exited <-chan error
	pid    int
	killed bool
	// HTTP sends requests to this replica only, whatever the URL's host,
	// so that URLs stay the public ones (the proxy's Host, as DNS-rebinding
	// protection wants) while the test picks the replica.
	HTTP *http.Client
}

// newDeployment prepares a deployment of n replicas on db (a --db value)
// with a users file holding testUser; start starts it. Every process is
// stopped when t ends; logs stay in $MCP_ARTIFACTS/replicas-NAME.
func newDeployment(t *testing.T, name string, n int, db string) *deployment {
	t.Helper()
	p := buildProject(t)
	dir := filepath.Join(artifactsDir(t), "replicas-"+name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	d := &deployment{t: t, Name: name, Project: p, DB: db, Dir: dir,
		Users: filepath.Join(t.TempDir(), "users.txt")}
	addUser(t, p, d.Users, testUser, testPassword)
	d.Proxy = newRRProxy(t)
	var addrs []string
	for i := range n {
		addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
		addrs = append(addrs, addr)
		r := &replica{Index: i, Addr: addr, Log: filepath.Join(dir, fmt.Sprintf("replica-%d.log", i))}
		dialer := &net.Dialer{Timeout: 5 * time.Second}
		r.HTTP = &http.Client{
			Timeout: 60 * time.Second,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return dialer.DialContext(ctx, network, addr)
				},
			},
		}
		d.Replicas = append(d.Replicas, r)
	}
	d.Proxy.setBackends(addrs)
	d.Srv = &server{BaseURL: d.Proxy.URL, MCPURL: d.Proxy.URL + "/mcp", Artifacts: dir, Log: d.Replicas[0].Log}
	t.Cleanup(func() {
		hits := d.Proxy.hitsSince(0)
		_ = os.WriteFile(filepath.Join(dir, "proxy.log"), []byte(formatHits(hits)), 0o644)
		// No replica ever writes the database password.
		for _, r := range d.Replicas {
			b, _ := os.ReadFile(r.Log)
			if pw := dbPassword(d.DB); pw != "" && strings.Contains(string(b), pw) {
				t.Errorf("replica %d's log (%s) shows the database password", r.Index, r.Log)
			}
		}
		if t.Failed() {
			for _, r := range d.Replicas {
				t.Logf("replica %d log (%s), last lines:\n%s", r.Index, r.Log, tail(r.Log, 25))
			}
			t.Logf("proxy record: %s", filepath.Join(dir, "proxy.log"))
		}
	})
	return d
}

// serveArgs returns the serve command line of replica r.
func (d *deployment) serveArgs(r *replica, extra ...string) []string {
	return append([]string{"serve",
		"--addr", r.Addr,
		"--base-url", d.Proxy.URL,
		"--db", d.DB,
		"--users", d.Users,
		"--trusted-proxies", "127.0.0.1/32",
	}, extra...)
}

// start starts every replica at the same moment (they migrate the database
// together) and waits until each answers. extra is added to every serve
// command line.
func (d *deployment) start(t *testing.T, extra ...string) {
	t.Helper()
	for _, r := range d.Replicas {
		d.startReplica(t, r, extra...)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(d.Replicas))
	for i, r := range d.Replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			md, err := r.waitReady(d.Proxy.URL)
			errs[i] = err
			if i == 0 && err == nil {
				d.Srv.Metadata = md
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("setup: replica %d: %v; log:\n%s", i, err, tail(d.Replicas[i].Log, 40))
		}
	}
	t.Logf("setup: %d replicas ready behind %s on %s", len(d.Replicas), d.Proxy.URL, redact(d.DB))
}

// startReplica starts replica r's serve process (appending to its log).
func (d *deployment) startReplica(t *testing.T, r *replica, extra ...string) {
	t.Helper()
	logFile, err := os.OpenFile(r.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("setup: replica log: %v", err)
	}
	d.t.Cleanup(func() { logFile.Close() })
	r.Args = d.serveArgs(r, extra...)
	cmd := exec.Command(d.Project.Bin, r.Args...)
	cmd.Dir = filepath.Dir(d.Users)
	cmd.Env = serverEnv()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	r.exited = startGroup(d.t, fmt.Sprintf("setup: start replica %d", r.Index), cmd)
	r.pid = cmd.Process.Pid
	r.killed = false
}

// serverEnv is the test's environment without MCP_ variables, so that the
// command line alone configures the server.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MCP_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReady polls the replica's authorization-server metadata (with the
// public Host) until it answers 200; it fails if the process exits.
func (r *replica) waitReady(public string) (map[string]any, error) {
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-r.exited:
			return nil, fmt.Errorf("serve exited while starting (%v)", err)
		default:
		}
		resp, err := r.HTTP.Get(public + "/.well-known/oauth-authorization-server")
		if err == nil {
			body, _ := readAll(resp)
			if resp.StatusCode == http.StatusOK {
				var md map[string]any
				if err := json.Unmarshal(body, &md); err != nil {
					return nil, fmt.Errorf("authorization-server metadata is not JSON: %v", err)
				}
				return md, nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	return nil, fmt.Errorf("not ready after 60s (%v)", last)
}

// kill kills replica i with SIGKILL (no shutdown of any kind) and waits
// until it is gone.
func (d *deployment) kill(t *testing.T, i int) {
	t.Helper()
	r := d.Replicas[i]
	if err := syscall.Kill(-r.pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill replica %d: %v", i, err)
	}
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("kill replica %d: still running 10s after SIGKILL", i)
	}
	r.killed = true
}

// live returns the replicas that have not been killed.
func (d *deployment) live() []*replica {
	var out []*replica
	for _, r := range d.Replicas {
		if !r.killed {
			out = append(out, r)
		}
	}
	return out
}

// client registers a public OAuth client through the proxy.
func (d *deployment) client(t *testing.T, ctx context.Context, name string) *mcpauthtest.Client {
	t.Helper()
	c, err := mcpauthtest.Register(ctx, d.Proxy.URL, map[string]any{
		"client_name":                name,
		"redirect_uris":              []string{loopbackRedirect},
		"token_endpoint_auth_method": "none",
	})
	if err != nil {
		t.Fatalf("register %s through the proxy: %v", name, err)
	}
	return c
}

// signIn runs the whole sign-in of c as user through the proxy and returns
// the tokens.
func (d *deployment) signIn(t *testing.T, ctx context.Context, c *mcpauthtest.Client, user, password string) *mcpauthtest.Token {
	t.Helper()
	res, err := c.Authorize(ctx, mcpauthtest.AuthorizeOptions{Username: user, Password: password, State: "replicas"})
	if err != nil {
		t.Fatalf("sign in as %s through the proxy: %v", user, err)
	}
	if res.Error != "" {
		t.Fatalf("sign in as %s through the proxy: error %s: %s", user, res.Error, res.ErrorDescription)
	}
	tok, err := c.Exchange(ctx, res.Code, res.Verifier)
	if err != nil {
		t.Fatalf("sign in as %s through the proxy: redeem the code: %v", user, err)
	}
	return tok
}

// on returns a copy of c that sends its requests to replica r only.
func on(c *mcpauthtest.Client, r *replica) *mcpauthtest.Client {
	cp := *c
	cp.HTTP = r.HTTP
	return &cp
}

// bearerOn returns the status of an MCP request with token sent to
// replica r directly.
func (d *deployment) bearerOn(t *testing.T, ctx context.Context, r *replica, token string) int {
	t.Helper()
	code, _, err := mcpauthtest.BearerStatus(ctx, r.HTTP, d.Srv.MCPURL, token)
	if err != nil {
		t.Fatalf("bearer check on replica %d: %v", r.Index, err)
	}
	return code
}
