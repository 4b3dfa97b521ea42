package mcpauth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"golang.org/x/crypto/bcrypt"

	"github.com/mcpgen/create-mcp-server/runtime/mcpauth"
	"github.com/mcpgen/create-mcp-server/runtime/mcpauthtest"
)

// Test users. Their hashes use bcrypt.MinCost so that the suite stays fast
// under -race; the server must not care about the cost.
var testUsers = map[string]string{
	"alice": "alice-password",
	"bob":   "bob-password",
}

// env is one mcpauth server over real HTTP, on a SQLite file and a users
// file in a fresh temporary directory.
type env struct {
	t         testing.TB
	srv       *httptest.Server
	base      string // issuer
	mcpURL    string
	dir       string
	dbPath    string
	usersPath string
	cfg       mcpauth.Config
	logs      *syncBuffer
	cur       atomic.Pointer[mcpauth.Server]
	skew      atomic.Int64 // nanoseconds added to the server's clock
	hc        *http.Client // follows no redirects
	// mcpSessions is how many legacy sessions mcp-go holds in memory
	// (registered with the MCP server and not yet unregistered), as
	// its session hooks report them.
	mcpSessions atomic.Int64
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (the logger).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newMCPServer returns the MCP server behind mcpauth in every test: "whoami"
// reports the caller's identity as "user|client|scope scope", "echo" echoes.
func newMCPServer(opts ...server.ServerOption) *server.MCPServer {
	s := server.NewMCPServer("mcpauth-test", "0.0.1", append([]server.ServerOption{server.WithToolCapabilities(false)}, opts...)...)
	s.AddTool(mcp.NewTool("whoami", mcp.WithDescription("reports the caller")),
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			id, ok := mcpauth.IdentityFromContext(ctx)
			if !ok {
				return mcp.NewToolResultError("no identity"), nil
			}
			return mcp.NewToolResultText(id.User + "|" + id.ClientID + "|" + strings.Join(id.Scopes, " ")), nil
		})
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("echoes text"), mcp.WithString("text")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(req.GetString("text", "")), nil
		})
	return s
}

// writeUsers writes a users file with bcrypt.MinCost hashes.
func writeUsers(t testing.TB, path string, users map[string]string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("# test users\n")
	for name, pw := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", name, h)
	}
	writeFileNewer(t, path, b.String())
}

// editUsers runs edit, which changes the users file of the servers, and
// waits until each of them serves a new version of it: a server checks
// its file every userfile.PollInterval, in the background.
func editUsers(t testing.TB, edit func(), servers ...*mcpauth.Server) {
	t.Helper()
	before := make([]uint64, len(servers))
	for i, s := range servers {
		before[i] = mcpauth.UsersVersion(s)
	}
	edit()
	deadline := time.Now().Add(10 * time.Second)
	for i, s := range servers {
		for mcpauth.UsersVersion(s) == before[i] {
			if time.Now().After(deadline) {
				t.Fatalf("server %d did not reload its users file within 10 s", i)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// writeFileNewer replaces path atomically and moves its mtime forward, so a
// reader that watches the modification time notices even within a second.
func writeFileNewer(t testing.TB, path, content string) {
	t.Helper()
	var old time.Time
	if fi, err := os.Stat(path); err == nil {
		old = fi.ModTime()
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if !old.IsZero() {
		next := old.Add(2 * time.Second)
		if err := os.Chtimes(tmp, next, next); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newEnv starts a server; mutate may adjust its Config before New.
func newEnv(t testing.TB, mutate ...func(*mcpauth.Config)) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{
		t:         t,
		dir:       dir,
		dbPath:    filepath.Join(dir, "auth.db"),
		usersPath: filepath.Join(dir, "users.txt"),
		logs:      &syncBuffer{},
		hc: &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	writeUsers(t, e.usersPath, testUsers)
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.cur.Load().ServeHTTP(w, r)
	}))
	e.base = "http://" + e.srv.Listener.Addr().String()
	e.mcpURL = e.base + "/mcp"
	e.cfg = mcpauth.Config{
		BaseURL:   e.base,
		Addr:      e.srv.Listener.Addr().String(),
		Database:  e.dbPath,
		UsersPath: e.usersPath,
		Logger:    slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) },
	}
	for _, m := range mutate {
		m(&e.cfg)
	}
	if e.cfg.Metrics == nil {
		e.cfg.Metrics = mcpauth.NewMetrics()
	}
	s, err := mcpauth.New(e.cfg, e.newMCPServer())
	if err != nil {
		t.Fatalf("mcpauth.New: %v", err)
	}
	e.cur.Store(s)
	e.srv.Start()
	t.Cleanup(func() {
		e.srv.Close()
		if err := e.cur.Load().Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

// newMCPServer returns the test MCP server with the tool audit installed,
// as a generated server has it, and hooks that count the sessions it holds
// (mcpSessions).
func (e *env) newMCPServer() *server.MCPServer {
	hooks := &server.Hooks{}
	hooks.AddOnRegisterSession(func(context.Context, server.ClientSession) { e.mcpSessions.Add(1) })
	hooks.AddOnUnregisterSession(func(context.Context, server.ClientSession) { e.mcpSessions.Add(-1) })
	return newMCPServer(server.WithToolHandlerMiddleware(mcpauth.ToolAudit(e.cfg.Logger, e.cfg.Metrics)),
		server.WithHooks(hooks))
}

// advance moves the server's clock forward by d.
func (e *env) advance(d time.Duration) { e.skew.Add(int64(d)) }

// restart closes the server and opens a new one on the same files.
func (e *env) restart() {
	e.t.Helper()
	s, err := mcpauth.New(e.cfg, e.newMCPServer())
	if err != nil {
		e.t.Fatalf("mcpauth.New (restart): %v", err)
	}
	old := e.cur.Swap(s)
	if err := old.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// register registers a client; meta overrides mcpauthtest's defaults.
func (e *env) register(meta map[string]any) *mcpauthtest.Client {
	e.t.Helper()
	c, err := mcpauthtest.Register(ctx(e.t), e.base, meta)
	if err != nil {
		e.t.Fatalf("register: %v", err)
	}
	return c
}

// authorize logs in as alice (unless opts names a user) and returns the
// redirect parameters.
func (e *env) authorize(c *mcpauthtest.Client, opts mcpauthtest.AuthorizeOptions) *mcpauthtest.AuthorizeResult {
	e.t.Helper()
	if opts.Username == "" {
		opts.Username, opts.Password = "alice", testUsers["alice"]
	}
	res, err := c.Authorize(ctx(e.t), opts)
	if err != nil {
		e.t.Fatalf("authorize: %v", err)
	}
	if res.Code == "" {
		e.t.Fatalf("authorize: no code in %s", res.Location)
	}
	return res
}

// tokens runs the whole flow as alice and returns the first token pair.
func (e *env) tokens(c *mcpauthtest.Client) *mcpauthtest.Token {
	e.t.Helper()
	res := e.authorize(c, mcpauthtest.AuthorizeOptions{})
	tok, err := c.Exchange(ctx(e.t), res.Code, res.Verifier)
	if err != nil {
		e.t.Fatalf("exchange: %v", err)
	}
	return tok
}

// bearer returns the status of a request to /mcp with the access token.
func (e *env) bearer(at string) int {
	e.t.Helper()
	st, _, err := mcpauthtest.BearerStatus(ctx(e.t), e.hc, e.mcpURL, at)
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// live reports whether the access token is accepted at /mcp.
func (e *env) live(at string) bool {
	e.t.Helper()
	st := e.bearer(at)
	if st >= 500 {
		e.t.Errorf("/mcp answered %d", st)
	}
	return st != http.StatusUnauthorized && st != http.StatusForbidden
}

// do sends a request and returns the response with its body read.
func (e *env) do(req *http.Request) (*http.Response, []byte) {
	e.t.Helper()
	resp, err := e.hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, body
}

// get GETs base+pathAndQuery (the query is sent as written).
func (e *env) get(pathAndQuery string, header http.Header) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+"/", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	path, query, _ := strings.Cut(pathAndQuery, "?")
	req.URL.Path = path
	req.URL.RawQuery = query
	for k, v := range header {
		req.Header[k] = v
	}
	return e.do(req)
}

// postForm POSTs a form-encoded body to base+path.
func (e *env) postForm(path, body string, header http.Header) (*http.Response, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	return e.do(req)
}

// authorizeQuery builds an /authorize query for c with a valid PKCE
// challenge; changes overrides parameters (an empty slice deletes one).
func authorizeQuery(c *mcpauthtest.Client, changes url.Values) url.Values {
	_, challenge := mcpauthtest.PKCE()
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ClientID},
		"redirect_uri":          {c.RedirectURI},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
		"state":                 {"st"},
	}
	for k, v := range changes {
		if len(v) == 0 {
			delete(q, k)
		} else {
			q[k] = v
		}
	}
	return q
}

// assertNoRedirect fails unless resp is a 4xx answer without Location.
func assertNoRedirect(t testing.TB, what string, resp *http.Response, body []byte, want ...int) {
	t.Helper()
	if loc := resp.Header.Get("Location"); loc != "" {
		t.Errorf("%s: Location %q (status %d), want no redirect", what, loc, resp.StatusCode)
	}
	if bytes.Contains(bytes.ToLower(body), []byte(`http-equiv="refresh"`)) || bytes.Contains(bytes.ToLower(body), []byte("http-equiv=refresh")) {
		t.Errorf("%s: body has a meta refresh", what)
	}
	if len(want) == 0 {
		want = []int{http.StatusBadRequest}
	}
	for _, w := range want {
		if resp.StatusCode == w {
			return
		}
	}
	t.Errorf("%s: status %d, want one of %v; body: %.200s", what, resp.StatusCode, want, body)
}

// oauthErr decodes an RFC 6749 §5.2 error body.
func oauthErr(body []byte) string {
	var v struct {
		Error string `json:"error"`
	}
	json.Unmarshal(body, &v)
	return v.Error
}

// wantGrantErr fails unless err is an *mcpauthtest.Error with the status and
// OAuth code.
func wantGrantErr(t testing.TB, what string, err error, status int, code string) {
	t.Helper()
	var e *mcpauthtest.Error
	if !errors.As(err, &e) {
		t.Errorf("%s: err = %v, want HTTP %d %s", what, err, status, code)
		return
	}
	if e.Status != status || e.Code != code {
		t.Errorf("%s: got HTTP %d %q (%s), want HTTP %d %q", what, e.Status, e.Code, e.Description, status, code)
	}
}

// metadata fetches a JSON document from base+path.
func (e *env) metadata(path string) map[string]any {
	e.t.Helper()
	resp, body := e.get(path, nil)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	return m
}

// callWhoami calls the whoami tool with at.
func (e *env) callWhoami(at string) string {
	e.t.Helper()
	res, err := mcpauthtest.CallTool(ctx(e.t), e.mcpURL, at, "whoami", nil)
	if err != nil {
		e.t.Fatalf("whoami: %v", err)
	}
	if res.IsError {
		e.t.Fatalf("whoami: tool error %s", mcpauthtest.ResultText(res))
	}
	return mcpauthtest.ResultText(res)
}
